//! The servers the benchmarks compare: the same counter written as a raw ractor actor and as
//! an `otp` GenServer, and a raw ractor "supervisor" that only re-spawns (the baseline that
//! `../shared/ANCHORS.md` measured).
#![allow(dead_code)]

use otp::{BoxError, CallResponse, Context, Flow, GenServer, Protocol, ReplyTo};

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

/// The same counter as a GenServer.
#[derive(Clone)]
pub struct Counter;

impl Protocol for Counter {
    type Call = u64;
    type Reply = u64;
    type Cast = u64;
}

impl GenServer for Counter {
    type Protocol = Self;
    type Args = ();
    type State = u64;
    type Info = ();

    async fn init(&self, _me: &Context<Self>, _: ()) -> Result<u64, BoxError> {
        Ok(0)
    }

    async fn handle_call(
        &self,
        _me: &Context<Self>,
        n: u64,
        _from: &mut ReplyTo<u64>,
        count: &mut u64,
    ) -> Result<CallResponse<u64>, BoxError> {
        *count += n;
        Ok(CallResponse::Reply(*count))
    }

    async fn handle_cast(
        &self,
        _me: &Context<Self>,
        n: u64,
        count: &mut u64,
    ) -> Result<Flow, BoxError> {
        *count += n;
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
