pub struct Submit(pub Job);
pub struct Await(pub JobId);
pub struct Done(pub JobId, pub Result<Output, JobError>);
pub struct Jobs {
    next: JobId,
    results: HashMap<JobId, Result<Output, JobError>>,
    waiting: HashMap<JobId, ReplyTo<Result<Output, JobError>>>,
    workers: WorkerPool,
}
impl Actor for Jobs {}
impl Handle<Submit> for Jobs {
    type Reply = JobId;
    async fn handle(&mut self, Submit(job): Submit, me: &Context<Self>) -> JobId {
        self.next += 1;
        self.workers.run(self.next, job, me.actor_ref());
        self.next
    }
}
impl Handle<Await> for Jobs {
    type Reply = Delegated<Result<Output, JobError>>;
    async fn handle(&mut self, Await(id): Await, me: &Context<Self>) -> Self::Reply {
        if let Some(result) = self.results.remove(&id) {
            return Delegated::now(result);
        }
        let (later, delegated) = me.defer();
        self.waiting.insert(id, later);
        delegated
    }
}
impl Handle<Done> for Jobs {
    type Reply = ();
    async fn handle(&mut self, Done(id, result): Done, _: &Context<Self>) {
        match self.waiting.remove(&id) {
            Some(waiting) => waiting.send(result),
            None => {
                self.results.insert(id, result);
            }
        }
    }
}
