#[derive(Serialize, Deserialize)]
pub struct Get(pub String);
#[derive(Serialize, Deserialize)]
pub struct Len;
#[derive(Serialize, Deserialize)]
pub struct Put(pub String, pub String);
#[derive(Default)]
pub struct Cache {
    map: HashMap<String, String>,
}
impl Actor for Cache {}
impl Handle<Get> for Cache {
    type Reply = Option<String>;
    async fn handle(&mut self, Get(key): Get, _: &Context<Self>) -> Option<String> {
        self.map.get(&key).cloned()
    }
}
impl Handle<Len> for Cache {
    type Reply = usize;
    async fn handle(&mut self, _: Len, _: &Context<Self>) -> usize {
        self.map.len()
    }
}
impl Handle<Put> for Cache {
    type Reply = ();
    async fn handle(&mut self, Put(key, value): Put, _: &Context<Self>) {
        self.map.insert(key, value);
    }
}
impl Remote for Cache {
    fn messages(registry: &mut Messages<Self>) {
        registry
            .call::<Get>("Get")
            .call::<Len>("Len")
            .cast::<Put>("Put");
    }
}
