//! A supervision tree from a JSON file, checked before anything starts: the file names
//! the strategy, and each child's start name, arguments and registered name; the program
//! maps start names to servers.
//!
//! `cargo run --example spec_tree`

use std::path::Path;

use otp::{Context, Flow, GenServer, Named};

otp::protocol! {
    pub Counter;
    calls CounterCall { Get -> u64 }
    casts CounterCast { Add(u64) }
}

/// Built from a file's `"args"` (a number) for every start.
struct CounterServer(u64);

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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = otp::spec::Registry::new();
    registry.gen_server("counter", CounterServer);

    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tree.json");
    let top = otp::spec::load(&file, &registry)?.start().await?;
    for name in ["store", "hits"] {
        let counter = Named::<Counter>::new(name);
        counter.cast(Add(1));
        println!("{name}: {}", counter.call(Get).await?);
    }
    for child in top.which_children().await? {
        println!("child {:?}: {:?}", child.id, child.kind);
    }
    top.stop().await?;

    // A bad file is refused in one line that names the file, the field and the fix.
    let bad = r#"{ "strategy": "one_for_one", "children": [ { "id": "x", "start": "counter", "args": "ten" } ] }"#;
    match otp::spec::parse(bad, "bad.json", &registry) {
        Err(error) => println!("refused: {error}"),
        Ok(_) => println!("a bad file was accepted"),
    }
    Ok(())
}
