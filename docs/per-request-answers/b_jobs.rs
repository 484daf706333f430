pub enum JobsCall {
    Submit(Job),
    Await(JobId),
}
pub enum JobsReply {
    Submitted(JobId),
    Finished(Result<Output, JobError>),
}
pub enum JobsCast {
    Done(JobId, Result<Output, JobError>),
}
impl JobsCall {
    pub fn submit(job: Job) -> Ask<Self, JobId> {
        Ask::new(Self::Submit(job), |reply| match reply {
            JobsReply::Submitted(id) => Some(id),
            _ => None,
        })
    }
    pub fn wait(id: JobId) -> Ask<Self, Result<Output, JobError>> {
        Ask::new(Self::Await(id), |reply| match reply {
            JobsReply::Finished(result) => Some(result),
            _ => None,
        })
    }
}
pub struct Jobs {
    next: JobId,
    results: HashMap<JobId, Result<Output, JobError>>,
    waiting: HashMap<JobId, ReplyTo<JobsReply>>,
    workers: WorkerPool,
}
impl GenServer for Jobs {
    type Call = JobsCall;
    type Reply = JobsReply;
    type Cast = JobsCast;
    async fn handle_call(
        &mut self,
        call: JobsCall,
        from: &mut ReplyTo<JobsReply>,
        me: &Context<Self>,
    ) -> Result<CallResponse<JobsReply>, BoxError> {
        Ok(match call {
            JobsCall::Submit(job) => {
                self.next += 1;
                self.workers.run(self.next, job, me.server());
                CallResponse::Reply(JobsReply::Submitted(self.next))
            }
            JobsCall::Await(id) => match self.results.remove(&id) {
                Some(result) => CallResponse::Reply(JobsReply::Finished(result)),
                None => {
                    self.waiting.insert(id, from.take());
                    CallResponse::NoReply
                }
            },
        })
    }
    async fn handle_cast(
        &mut self,
        JobsCast::Done(id, result): JobsCast,
        _: &Context<Self>,
    ) -> Result<Flow, BoxError> {
        match self.waiting.remove(&id) {
            Some(waiting) => waiting.reply(JobsReply::Finished(result)),
            None => {
                self.results.insert(id, result);
            }
        }
        Ok(Flow::Continue)
    }
}
