otp::protocol! {
    #[derive(Serialize, Deserialize)]
    pub Cache;
    calls CacheCall {
        Get(String) -> Option<String>,
        Len -> usize,
    }
    casts CacheCast { Put(String, String) }
}
#[derive(Default)]
pub struct CacheServer {
    map: HashMap<String, String>,
}
impl GenServer for CacheServer {
    type Protocol = Cache;
    async fn handle_call(&mut self, call: CacheCall<'_>, _: &Context<Self>) -> otp::Result {
        Ok(match call {
            CacheCall::Get(Get(key), caller) => caller.reply(self.map.get(&key).cloned()),
            CacheCall::Len(Len, caller) => caller.reply(self.map.len()),
        })
    }
    async fn handle_cast(&mut self, cast: CacheCast, _: &Context<Self>) -> otp::Result {
        let CacheCast::Put(Put(key, value)) = cast;
        self.map.insert(key, value);
        Ok(Flow::Continue)
    }
}
