otp::protocol! {
    pub Jobs;
    calls JobsCall {
        Submit(Job) -> JobId,
        Await(JobId) -> Result<Output, JobError>,
    }
    casts JobsCast { Done(JobId, Result<Output, JobError>) }
}
pub struct JobsServer {
    next: JobId,
    results: HashMap<JobId, Result<Output, JobError>>,
    waiting: HashMap<JobId, ReplyTo<Await>>,
    workers: WorkerPool,
}
impl GenServer for JobsServer {
    type Protocol = Jobs;
    async fn handle_call(&mut self, call: JobsCall<'_>, me: &Context<Self>) -> otp::Result {
        Ok(match call {
            JobsCall::Submit(Submit(job), caller) => {
                self.next += 1;
                self.workers.run(self.next, job, me.server());
                caller.reply(self.next)
            }
            JobsCall::Await(Await(id), caller) => match self.results.remove(&id) {
                Some(result) => caller.reply(result),
                None => {
                    self.waiting.insert(id, caller.take());
                    Flow::Continue
                }
            },
        })
    }
    async fn handle_cast(&mut self, cast: JobsCast, _: &Context<Self>) -> otp::Result {
        let JobsCast::Done(Done(id, result)) = cast;
        match self.waiting.remove(&id) {
            Some(waiting) => _ = waiting.reply(result),
            None => _ = self.results.insert(id, result),
        }
        Ok(Flow::Continue)
    }
}
