pub enum CounterCall {
    Get,
}
pub enum CounterCast {
    Add(u64),
}
impl CounterCall {
    pub fn get() -> Ask<Self, u64> {
        Ask::new(Self::Get, Some)
    }
}
pub struct Counter(u64);
impl GenServer for Counter {
    type Call = CounterCall;
    type Reply = u64;
    type Cast = CounterCast;
    async fn handle_call(
        &mut self,
        _: CounterCall,
        _: &Context<Self>,
    ) -> Result<CallResponse<u64>, BoxError> {
        Ok(CallResponse::Reply(self.0))
    }
    async fn handle_cast(
        &mut self,
        CounterCast::Add(n): CounterCast,
        _: &Context<Self>,
    ) -> Result<Flow, BoxError> {
        self.0 += n;
        Ok(Flow::Continue)
    }
}
