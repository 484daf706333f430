//! Two nodes in two processes: this program starts node `a` with a counter exported to
//! peers, then runs itself again as node `b`, which connects, casts and calls across.
//!
//! `cargo run --example two_nodes`

use std::process::Command;

use otp::node::{Cookie, Node, NodeConfig, COOKIE_ENV};
use otp::{Context, Flow, GenServer};
use serde::{Deserialize, Serialize};

otp::protocol! {
    /// The counter, as both nodes know it: its messages cross nodes as JSON.
    #[derive(Serialize, Deserialize)]
    pub Counter;
    calls CounterCall { Get -> u64 }
    casts CounterCast { Add(u64) }
}

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

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    match std::env::args().nth(1).as_deref() {
        Some("b") => node_b(&std::env::args().nth(2).ok_or("node b needs a's address")?).await,
        _ => node_a().await,
    }
}

/// Node `a`: the counter's home. Both nodes share a cookie made for this run.
async fn node_a() -> Result<(), Error> {
    let cookie = Cookie::random();
    let config = NodeConfig::new("a", "127.0.0.1:0".parse()?, cookie.clone());
    let a = Node::start(config).await?;
    CounterServer(40).start_named("counter").await?;
    a.export::<Counter>("counter").await?;
    println!("[a] {} serves the counter", a.name());

    let b = Command::new(std::env::current_exe()?)
        .args(["b", &a.address().to_string()])
        .env(COOKIE_ENV, cookie.secret())
        .status()?;
    a.stop().await;
    if !b.success() {
        return Err(format!("node b failed: {b}").into());
    }
    Ok(())
}

/// Node `b`, in its own process: connects to `a` and uses its counter by name.
async fn node_b(a_address: &str) -> Result<(), Error> {
    let cookie = Cookie::resolve(None, None)?; // from $OTP_COOKIE
    let b = Node::start(NodeConfig::new("b", "127.0.0.1:0".parse()?, cookie)).await?;
    let a = b.connect(a_address).await?;
    println!("[b] {} connected to {a}", b.name());
    let counter = b.remote::<Counter>(&a, "counter").await?;
    counter.cast(Add(2));
    let count: u64 = counter.call(Get).await?;
    println!("[b] the counter on {a} says {count}");
    b.stop().await;
    Ok(())
}
