//! The servers the benchmarks compare: the same counter written as a raw ractor actor and as
//! an `otp` GenServer, and a raw ractor "supervisor" that only re-spawns (the baseline that
//! `../shared/ANCHORS.md` measured).
#![allow(dead_code)]

use otp::{Context, Flow, GenServer};

pub mod kameo;

/// With the `bench-jemalloc` feature the benchmarks run on jemalloc, as the chat's
/// binary does.
#[cfg(feature = "bench-jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The allocator this benchmark binary runs on, for its report.
pub const ALLOCATOR_NAME: &str = if cfg!(feature = "bench-jemalloc") {
    "jemalloc"
} else {
    "system (glibc)"
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

/// The raw ractor counter's messages.
pub enum RawMsg {
    Call(u64, RpcReplyPort<u64>),
    Cast(u64),
}

// Needed with ractor's `cluster` feature (on with `distribution`); ractor implements it
// for every type otherwise.
#[cfg(feature = "distribution")]
impl ractor::Message for RawMsg {}

/// A counter as a plain ractor actor.
pub struct RawCounter;

impl Actor for RawCounter {
    type Msg = RawMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<RawMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ActorRef<RawMsg>,
        message: RawMsg,
        count: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RawMsg::Call(n, reply) => {
                *count += n;
                let _ = reply.send(*count);
            }
            RawMsg::Cast(n) => *count += n,
        }
        Ok(())
    }
}

otp::protocol! {
    /// The same counter's messages, for the GenServer.
    pub Counter;
    calls CounterCall {
        /// Adds `n` and answers the count.
        AddGet(u64) -> u64,
    }
    casts CounterCast {
        /// Adds `n`.
        Add(u64),
    }
}

/// The same counter as a GenServer.
#[derive(Default)]
pub struct CounterServer {
    count: u64,
}

impl GenServer for CounterServer {
    type Protocol = Counter;

    async fn handle_call(&mut self, call: CounterCall<'_>, _me: &Context<Self>) -> otp::Result {
        let CounterCall::AddGet(AddGet(n), caller) = call;
        self.count += n;
        Ok(caller.reply(self.count))
    }

    async fn handle_cast(&mut self, cast: CounterCast, _me: &Context<Self>) -> otp::Result {
        let CounterCast::Add(Add(n)) = cast;
        self.count += n;
        Ok(Flow::Continue)
    }
}

/// A raw ractor parent that re-spawns its child under the same name when it exits: no
/// intensity accounting, no ordered shutdown.
pub struct RawRespawner {
    pub child_name: String,
}

impl Actor for RawRespawner {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Actor::spawn_linked(
            Some(self.child_name.clone()),
            RawCounter,
            (),
            myself.get_cell(),
        )
        .await?;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorTerminated(..) | SupervisionEvent::ActorFailed(..) = event {
            Actor::spawn_linked(
                Some(self.child_name.clone()),
                RawCounter,
                (),
                myself.get_cell(),
            )
            .await?;
        }
        Ok(())
    }
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
