//! A counter under a supervisor: call it, cast to it, kill it, and wait for the
//! supervisor to start it again.
//!
//! `cargo run --example counter` (add `RUST_LOG=info` to see the supervisor's reports).

use std::time::Duration;

use otp::supervisor::{self, ChildSpec, SupervisorSpec};
use otp::{Context, Flow, GenServer, Named};

otp::protocol! {
    /// A counter: `Get` reads it, `Add` adds to it.
    pub Counter;
    calls CounterCall { Get -> u64 }
    casts CounterCast { Add(u64) }
}

/// The server. Its value is its state: a supervisor starts it from `CounterServer(0)`.
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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();

    let tree = SupervisorSpec {
        flags: Default::default(), // one_for_one, 3 restarts in 5 s
        children: vec![ChildSpec::worker("counter", |parent| {
            parent.start_named("counter", CounterServer(0))
        })],
    };
    let top = tree.start().await?;

    // A handle by name reaches whichever process holds the name now.
    let counter = Named::<Counter>::new("counter");
    counter.cast(Add(2));
    let count: u64 = counter.call(Get).await?;
    println!("count: {count}");

    let old = counter.resolve()?;
    old.kill();
    let new = supervisor::restarted(&counter, old.id(), Duration::from_secs(5)).await?;
    println!(
        "killed {}; the supervisor started {} from a fresh state: count {}",
        old.id(),
        new.id(),
        counter.call(Get).await?
    );

    top.stop().await?; // children stop in reverse start order
    Ok(())
}
