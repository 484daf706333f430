#[derive(Serialize, Deserialize)]
pub enum CacheCall {
    Get(String),
    Len,
}
#[derive(Serialize, Deserialize)]
pub enum CacheReply {
    Value(Option<String>),
    Len(usize),
}
#[derive(Serialize, Deserialize)]
pub enum CacheCast {
    Put(String, String),
}
impl CacheCall {
    pub fn get(key: String) -> Ask<Self, Option<String>> {
        Ask::new(Self::Get(key), |reply| match reply {
            CacheReply::Value(value) => Some(value),
            _ => None,
        })
    }
    pub fn len() -> Ask<Self, usize> {
        Ask::new(Self::Len, |reply| match reply {
            CacheReply::Len(len) => Some(len),
            _ => None,
        })
    }
}
#[derive(Default)]
pub struct Cache {
    map: HashMap<String, String>,
}
impl GenServer for Cache {
    type Call = CacheCall;
    type Reply = CacheReply;
    type Cast = CacheCast;
    async fn handle_call(
        &mut self,
        call: CacheCall,
        _: &Context<Self>,
    ) -> Result<CallResponse<CacheReply>, BoxError> {
        Ok(CallResponse::Reply(match call {
            CacheCall::Get(key) => CacheReply::Value(self.map.get(&key).cloned()),
            CacheCall::Len => CacheReply::Len(self.map.len()),
        }))
    }
    async fn handle_cast(
        &mut self,
        CacheCast::Put(key, value): CacheCast,
        _: &Context<Self>,
    ) -> Result<Flow, BoxError> {
        self.map.insert(key, value);
        Ok(Flow::Continue)
    }
}
