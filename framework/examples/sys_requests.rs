//! Looking inside running servers with `sys`, and asking many at once with
//! `send_request`.
//!
//! `cargo run --example sys_requests`

use std::time::Duration;

use otp::gen_server::{Collected, RequestIds};
use otp::{sys, Context, GenServer};

otp::protocol! {
    /// A worker that squares numbers, slowly.
    pub Squarer;
    calls SquarerCall { Square(u64) -> u64 }
}

#[derive(Clone, Debug)]
struct SquarerServer {
    /// Squares computed so far.
    done: u64,
}

impl GenServer for SquarerServer {
    type Protocol = Squarer;

    async fn handle_call(&mut self, call: SquarerCall<'_>, _: &Context<Self>) -> otp::Result {
        let SquarerCall::Square(Square(n), caller) = call;
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.done += 1;
        Ok(caller.reply(n * n))
    }

    fn format_status(&self) -> String {
        format!("{} squares done", self.done)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(SquarerServer { done: 0 }.start().await?);
    }

    // Four requests in flight at once, one per worker, collected as they come.
    let mut pending = RequestIds::new();
    for (n, worker) in (1..).zip(&workers) {
        pending.add(worker.send_request(Square(n)), n);
    }
    let mut sum = 0;
    while let Collected::Answered(n, square) = pending.wait_response(Duration::from_secs(5)).await {
        let square = square?;
        println!("{n}² = {square}");
        sum += square;
    }
    println!("sum of squares: {sum}");

    // `sys`: the state as format_status shows it, counts, and the state itself.
    let first = &workers[0];
    let status = sys::get_status(first).await?;
    println!(
        "status: {} (handled {} messages)",
        status.state, status.statistics.handled
    );
    sys::replace_state::<SquarerServer>(first, |server| server.done = 100).await?;
    println!(
        "state now: {:?}",
        sys::get_state::<SquarerServer>(first).await?
    );

    // Suspended, it holds calls until resumed, in order.
    sys::suspend(first).await?;
    let held = first.send_request(Square(9));
    sys::resume(first).await?;
    println!(
        "answered after resume: {}",
        held.receive_response(Duration::from_secs(5)).await?
    );
    Ok(())
}
