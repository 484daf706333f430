otp::protocol! {
    pub Counter;
    calls CounterCall { Get -> u64 }
    casts CounterCast { Add(u64) }
}
pub struct CounterServer(u64);
impl GenServer for CounterServer {
    type Protocol = Counter;
    async fn handle_call(&mut self, call: CounterCall<'_>, _: &Context<Self>) -> otp::Result {
        let CounterCall::Get(Get, caller) = call;
        Ok(caller.reply(self.0))
    }
    async fn handle_cast(&mut self, cast: CounterCast, _: &Context<Self>) -> otp::Result {
        let CounterCast::Add(Add(n)) = cast;
        self.0 += n;
        Ok(Flow::Continue)
    }
}
