//! Per-request answers (`otp::protocol!`): each call answers its own type from one handle,
//! now or later, locally; a protocol that extends a shared one; `Init`; waiting for a
//! restart. (Remote calls are checked with real nodes in `tests/tests/distribution.rs`.)

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::PATIENCE;
use otp::gen_server::{Init, Never};
use otp::supervisor::{self, ChildSpec, SupervisorSpec};
use otp::{CallError, Context, Flow, GenServer, Info, Named, ReplyTo, StartError};

otp::protocol! {
    /// A cache whose calls answer three different types, one of them later.
    pub Cache;
    calls CacheCall {
        Get(String) -> Option<String>,
        Len -> usize,
        /// Answered once `key` is put.
        WaitFor(String) -> String,
    }
    casts CacheCast {
        Put(String, String),
    }
}

#[derive(Default)]
struct CacheServer {
    map: HashMap<String, String>,
    waiting: Vec<(String, ReplyTo<WaitFor>)>,
}

impl GenServer for CacheServer {
    type Protocol = Cache;

    async fn handle_call(&mut self, call: CacheCall<'_>, _: &Context<Self>) -> otp::Result {
        Ok(match call {
            CacheCall::Get(Get(key), caller) => caller.reply(self.map.get(&key).cloned()),
            CacheCall::Len(Len, caller) => caller.reply(self.map.len()),
            CacheCall::WaitFor(WaitFor(key), caller) => match self.map.get(&key) {
                Some(value) => caller.reply(value.clone()),
                None => {
                    self.waiting.push((key, caller.take()));
                    Flow::Continue
                }
            },
        })
    }

    async fn handle_cast(&mut self, cast: CacheCast, _: &Context<Self>) -> otp::Result {
        let CacheCast::Put(Put(key, value)) = cast;
        let (ready, waiting) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition::<Vec<_>, _>(|(wanted, _)| *wanted == key);
        self.waiting = waiting;
        for (_, later) in ready {
            later.reply(value.clone());
        }
        self.map.insert(key, value);
        Ok(Flow::Continue)
    }
}

#[tokio::test]
async fn each_request_answers_its_own_type_from_one_handle() {
    let cache = CacheServer::default().start().await.unwrap();
    cache.cast(Put("a".into(), "1".into()));
    let found: Option<String> = cache.call(Get("a".into())).await.unwrap();
    let missing: Option<String> = cache.call(Get("b".into())).await.unwrap();
    let len: usize = cache.call(Len).await.unwrap();
    assert_eq!((found.as_deref(), missing, len), (Some("1"), None, 1));
}

#[tokio::test]
async fn a_deferred_answer_keeps_its_type_and_comes_when_ready() {
    let cache = CacheServer::default().start().await.unwrap();
    let waiting = cache.send_request(WaitFor("k".into()));
    // The server answered a later call while the first waits: it was deferred, not held.
    assert_eq!(cache.call(Len).await.unwrap(), 0);
    cache.cast(Put("k".into(), "v".into()));
    assert_eq!(waiting.receive_response(PATIENCE).await.unwrap(), "v");
}

#[tokio::test]
async fn a_deferred_caller_dropped_with_its_server_learns_it_got_no_answer() {
    let cache = CacheServer::default().start().await.unwrap();
    let waiting = cache.send_request(WaitFor("never".into()));
    assert_eq!(cache.call(Len).await.unwrap(), 0);
    cache.kill();
    let answer = waiting.receive_response(PATIENCE).await;
    assert_eq!(answer, Err(CallError::NoReply));
}

otp::protocol! {
    /// A shared protocol (say, exported to other nodes): only calls.
    pub Shared;
    calls SharedCall { Ping -> &'static str }
}

/// What only the server's own processes send it.
#[derive(Debug)]
pub enum Tick {
    Now,
}

otp::protocol! {
    /// The shared protocol, and the server's own infos.
    pub Local: Shared { infos Tick; }
}

#[derive(Default)]
struct Ticker {
    ticks: usize,
}

impl GenServer for Ticker {
    type Protocol = Local;

    async fn handle_call(&mut self, call: SharedCall<'_>, _: &Context<Self>) -> otp::Result {
        let SharedCall::Ping(Ping, caller) = call;
        Ok(caller.reply(if self.ticks > 0 { "ticked" } else { "pong" }))
    }

    async fn handle_info(&mut self, info: Info<Tick>, _: &Context<Self>) -> otp::Result {
        if let Info::Message(Tick::Now) = info {
            self.ticks += 1;
        }
        Ok(Flow::Continue)
    }
}

#[tokio::test]
async fn a_protocol_that_extends_a_shared_one_takes_its_requests_and_its_own_infos() {
    let ticker = Ticker::default().start().await.unwrap();
    assert_eq!(ticker.call(Ping).await.unwrap(), "pong");
    ticker.send_info(Tick::Now);
    assert_eq!(ticker.call(Ping).await.unwrap(), "ticked");
}

/// Built in its own process from a starting count; refuses a negative one, ignores zero.
struct Countdown(u32);

impl Init<i64> for Countdown {
    async fn init(start: i64, _: &Context<Self>) -> otp::Result<Self> {
        match start {
            ..0 => Err(format!("cannot count down from {start}").into()),
            0 => Err(otp::Ignore.into()),
            start => Ok(Countdown(u32::try_from(start)?)),
        }
    }
}

otp::protocol! { pub Remaining; calls RemainingCall { Left -> u32 } }

impl GenServer for Countdown {
    type Protocol = Remaining;

    async fn handle_call(&mut self, call: RemainingCall<'_>, _: &Context<Self>) -> otp::Result {
        let RemainingCall::Left(Left, caller) = call;
        Ok(caller.reply(self.0))
    }
}

#[tokio::test]
async fn init_builds_the_server_from_its_arguments_in_its_process() {
    let countdown = Countdown::with_args(3).start().await.unwrap();
    assert_eq!(countdown.call(Left).await.unwrap(), 3);
}

#[tokio::test]
async fn init_refusing_fails_the_start_with_its_reason() {
    match Countdown::with_args(-1).start().await {
        Err(StartError::Init(reason)) => {
            assert_eq!(reason.to_string(), "cannot count down from -1")
        }
        other => panic!("expected an init failure, got {other:?}"),
    }
}

#[tokio::test]
async fn init_ignoring_starts_nothing() {
    let started = Countdown::with_args(0)
        .start_named("countdown.ignored")
        .await;
    assert!(matches!(started, Err(StartError::Ignored)), "{started:?}");
    assert!(Named::<Remaining>::new("countdown.ignored")
        .resolve()
        .is_err());
}

otp::protocol! { pub Idle; }

struct IdleServer;

impl GenServer for IdleServer {
    type Protocol = Idle;
}

#[tokio::test]
async fn a_protocol_without_calls_casts_or_infos_has_never_there() {
    fn is_never<T: 'static>() -> bool {
        std::any::TypeId::of::<T>() == std::any::TypeId::of::<Never>()
    }
    type P = Idle;
    assert!(is_never::<<P as otp::Protocol>::Calls>());
    assert!(is_never::<<P as otp::Protocol>::Cast>());
    assert!(is_never::<<P as otp::Protocol>::Info>());
    let idle = IdleServer.start().await.unwrap();
    assert!(idle.is_alive());
}

#[tokio::test]
async fn restarted_returns_the_process_the_supervisor_started_again() {
    let tree = SupervisorSpec {
        flags: Default::default(),
        children: vec![ChildSpec::worker("cache", |parent| {
            parent.start_named("restarted.cache", CacheServer::default())
        })],
    };
    let top = tree.start().await.unwrap();
    let cache = Named::<Cache>::new("restarted.cache");
    let old = cache.resolve().unwrap();
    old.kill();
    let new = supervisor::restarted(&cache, old.id(), PATIENCE)
        .await
        .unwrap();
    assert_ne!(new.id(), old.id());
    assert_eq!(new.call(Len).await.unwrap(), 0);
    top.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn restarted_gives_up_after_its_bound_when_nothing_restarts() {
    let cache = CacheServer::default()
        .start_named("restarted.none")
        .await
        .unwrap();
    let named = Named::<Cache>::new("restarted.none");
    let waited = supervisor::restarted(&named, cache.id(), Duration::from_secs(1)).await;
    assert_eq!(
        waited.unwrap_err(),
        CallError::Timeout(Duration::from_secs(1))
    );
}
