pub struct Get;
pub struct Add(pub u64);
pub struct Counter(u64);
impl Actor for Counter {}
impl Handle<Get> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _: Get, _: &Context<Self>) -> u64 {
        self.0
    }
}
impl Handle<Add> for Counter {
    type Reply = ();
    async fn handle(&mut self, Add(n): Add, _: &Context<Self>) {
        self.0 += n;
    }
}
