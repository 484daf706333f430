//! GenServer semantics, case by case after OTP's `gen_server_SUITE`.

mod common;

use std::time::Duration;

use common::{
    next, probe, Add, Behaviour, Defer, Echo, Event, Fail, Get, Monitor, Panic, ReleaseDeferred,
    Slow, Stop, StopReplying, StopWith, TickAfter,
};
use otp::gen_server::Init;
use otp::{CallError, Context, ExitReason, GenServer, Named, ServerRef, StartError, Timeout};

#[tokio::test]
async fn call_cast_and_state() {
    let (server, mut events) = probe("a");
    let server = server.with_value(1).start().await.unwrap();
    assert_eq!(next(&mut events).await, Event::Started("a".into()));
    server.cast(Add(41));
    assert_eq!(server.call(Get).await, Ok(42));
    assert_eq!(server.call(Echo(7)).await, Ok(7));
}

#[tokio::test]
async fn init_error_fails_start_and_frees_the_name() {
    let (server, _events) = probe("first");
    let err = server
        .behaving(Behaviour::FailInit)
        .with_value(0)
        .start_named("init-fails")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StartError::Init(reason) if reason.to_string().contains("refusing to start")),
        "{err}"
    );
    let (server, _events) = probe("second");
    let server = server
        .with_value(0)
        .start_named("init-fails")
        .await
        .unwrap();
    assert_eq!(server.name().as_deref(), Some("init-fails"));
}

#[tokio::test]
async fn deferred_reply_answers_later_from_another_message() {
    let (server, _events) = probe("deferred");
    let server = server.with_value(0).start().await.unwrap();
    let caller = {
        let server = server.clone();
        tokio::spawn(async move { server.call(Defer).await })
    };
    // The server keeps serving while the deferred caller waits.
    assert_eq!(server.call(Echo(1)).await, Ok(1));
    // The deferred call is queued before this call, so by the time `Get` returns it is held.
    assert_eq!(server.call(Get).await, Ok(0));
    server.cast(ReleaseDeferred(99));
    assert_eq!(caller.await.unwrap(), Ok(99));
}

#[tokio::test]
async fn call_timeout_then_late_reply_is_dropped() {
    let (server, _events) = probe("slow");
    let server = server.with_value(5).start().await.unwrap();
    let result = server
        .call_timeout(Slow(Duration::from_millis(300)), Duration::from_millis(20))
        .await;
    assert_eq!(result, Err(CallError::Timeout(Duration::from_millis(20))));
    // The next call gets its own answer, not the late one.
    assert_eq!(server.call(Echo(3)).await, Ok(3));
}

#[tokio::test]
async fn call_to_a_dead_server_is_noproc() {
    let (server, _events) = probe("dead");
    let server = server.with_value(0).start().await.unwrap();
    server.stop(ExitReason::Normal).await.unwrap();
    assert_eq!(server.call(Get).await, Err(CallError::NoProc));
    assert_eq!(
        server.stop(ExitReason::Normal).await,
        Err(CallError::NoProc)
    );
    assert_eq!(
        Named::<common::Probe>::new("never-registered")
            .call(Get)
            .await,
        Err(CallError::NoProc)
    );
    // A cast to a dead server is silently dropped, as in OTP.
    server.cast(Add(1));
}

#[tokio::test]
async fn stop_from_call_tells_the_caller_and_queued_callers_the_reason() {
    let (server, mut events) = probe("stopper");
    let server = server.with_value(0).start().await.unwrap();
    assert_eq!(next(&mut events).await, Event::Started("stopper".into()));
    let reason = ExitReason::ShutdownWith("done".into());
    let queued = {
        let server = server.clone();
        // Deferred first so the stop request below is queued behind a call that waits.
        tokio::spawn(async move { server.call(Defer).await })
    };
    assert_eq!(server.call(Get).await, Ok(0));
    assert_eq!(
        server.call(StopWith(reason.clone())).await,
        Err(CallError::Exited(reason.clone()))
    );
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("stopper".into(), reason.clone())
    );
    // The deferred caller's handle was dropped with the state: it learns at once.
    assert_eq!(queued.await.unwrap(), Err(CallError::NoReply));
    server.wait_exit().await;
}

#[tokio::test]
async fn stop_with_reply_replies_then_terminates() {
    let (server, mut events) = probe("reply-stop");
    let server = server.with_value(0).start().await.unwrap();
    next(&mut events).await;
    assert_eq!(
        server.call(StopReplying(ExitReason::Normal, 8)).await,
        Ok(8)
    );
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("reply-stop".into(), ExitReason::Normal)
    );
}

#[tokio::test]
async fn calls_queued_behind_a_stop_get_the_exit_reason() {
    let (server, mut events) = probe("queue");
    let server = server.with_value(0).start().await.unwrap();
    next(&mut events).await;
    // Park the server in a slow call so the next messages queue up behind it.
    let slow = {
        let server = server.clone();
        tokio::spawn(async move { server.call(Slow(Duration::from_millis(100))).await })
    };
    assert_eq!(next(&mut events).await, Event::Busy);
    let reason = ExitReason::error("boom");
    server.cast(Stop(reason.clone()));
    let queued = server.call(Get).await;
    assert_eq!(slow.await.unwrap(), Ok(0));
    assert_eq!(queued, Err(CallError::Exited(reason)));
}

#[tokio::test]
async fn panic_and_error_in_callbacks_crash_with_the_message_after_terminate() {
    let (server, mut events) = probe("panics");
    let server = server.with_value(0).start().await.unwrap();
    next(&mut events).await;
    let result = server.call(Panic).await;
    assert!(
        matches!(&result, Err(CallError::Exited(ExitReason::Error(m))) if m.contains("asked to panic")),
        "{result:?}"
    );
    assert!(matches!(
        next(&mut events).await,
        Event::Terminated(_, ExitReason::Error(m)) if m.contains("asked to panic")
    ));

    let (server, mut events) = probe("fails");
    let server = server.with_value(0).start().await.unwrap();
    next(&mut events).await;
    let expected = ExitReason::error("asked to fail");
    assert_eq!(
        server.call(Fail).await,
        Err(CallError::Exited(expected.clone()))
    );
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("fails".into(), expected)
    );
}

#[tokio::test]
async fn terminate_runs_on_stop_but_not_on_kill() {
    let (server, mut events) = probe("stopped");
    let server = server.with_value(0).start().await.unwrap();
    next(&mut events).await;
    server.stop(ExitReason::Shutdown).await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("stopped".into(), ExitReason::Shutdown)
    );

    let (server, mut events) = probe("killed");
    let server = server.with_value(0).start().await.unwrap();
    next(&mut events).await;
    server.kill();
    server.wait_exit().await;
    // Only the channel's end follows: no Terminated event was sent.
    drop(server);
    common::no_more_events(events).await;
}

#[tokio::test]
async fn name_clash_returns_the_running_server_and_the_name_is_reused_after_exit() {
    let (first, _e1) = probe("first");
    let first = first.with_value(1).start_named("clash").await.unwrap();
    let (second, _e2) = probe("second");
    match second.with_value(2).start_named("clash").await {
        Err(StartError::AlreadyStarted { name, existing }) => {
            assert_eq!(name, "clash");
            let existing = ServerRef::<common::Probe>::from_cell(existing.unwrap()).unwrap();
            assert_eq!(existing.id(), first.id());
        }
        other => panic!("expected AlreadyStarted, got {other:?}"),
    }
    let by_name = Named::<common::Probe>::new("clash");
    assert_eq!(by_name.call(Get).await, Ok(1));
    first.stop(ExitReason::Normal).await.unwrap();
    assert_eq!(by_name.call(Get).await, Err(CallError::NoProc));
    let (third, _e3) = probe("third");
    third.with_value(3).start_named("clash").await.unwrap();
    assert_eq!(by_name.call(Get).await, Ok(3));
}

#[tokio::test]
async fn whereis_is_typed() {
    let (server, _events) = probe("typed");
    let _server = server
        .with_value(0)
        .start_named("typed-name")
        .await
        .unwrap();
    assert!(ServerRef::<common::Probe>::whereis("typed-name").is_some());
    assert!(ServerRef::<Other>::whereis("typed-name").is_none());
}

#[tokio::test]
async fn monitor_delivers_down_with_the_reason_once() {
    let (watcher, mut events) = probe("watcher");
    let watcher = watcher.with_value(0).start().await.unwrap();
    next(&mut events).await;
    let (target, _target_events) = probe("target");
    let target = target.with_value(0).start().await.unwrap();
    watcher.cast(Monitor(target.cell()));
    // A call after the cast guarantees the monitor is in place.
    assert_eq!(watcher.call(Get).await, Ok(0));
    target.cast(Stop(ExitReason::error("crashed")));
    assert_eq!(
        next(&mut events).await,
        Event::Down(ExitReason::error("crashed"))
    );

    let (killed, _killed_events) = probe("killed-target");
    let killed = killed.with_value(0).start().await.unwrap();
    watcher.cast(Monitor(killed.cell()));
    assert_eq!(watcher.call(Get).await, Ok(0));
    killed.kill();
    assert_eq!(next(&mut events).await, Event::Down(ExitReason::Killed));
}

#[tokio::test]
async fn monitoring_a_dead_process_delivers_noproc() {
    let (watcher, mut events) = probe("watcher2");
    let watcher = watcher.with_value(0).start().await.unwrap();
    next(&mut events).await;
    let (target, _target_events) = probe("gone");
    let target = target.with_value(0).start().await.unwrap();
    target.stop(ExitReason::Normal).await.unwrap();
    watcher.cast(Monitor(target.cell()));
    assert_eq!(next(&mut events).await, Event::Down(ExitReason::NoProc));
    // Exactly one DOWN: the next event is the tick we ask for now.
    watcher.cast(TickAfter(Duration::from_millis(1)));
    assert_eq!(next(&mut events).await, Event::Tick);
}

#[tokio::test]
async fn send_after_delivers_an_info() {
    let (server, mut events) = probe("timer");
    let server = server.with_value(0).start().await.unwrap();
    next(&mut events).await;
    server.cast(TickAfter(Duration::from_millis(5)));
    assert_eq!(next(&mut events).await, Event::Tick);
    let timer = server.send_after(Duration::from_secs(3600), Event::Tick);
    timer.cancel();
    let ticks = server.send_interval(Duration::from_millis(2), || Event::Tick);
    assert_eq!(next(&mut events).await, Event::Tick);
    assert_eq!(next(&mut events).await, Event::Tick);
    ticks.cancel();
}

otp::protocol! {
    /// A second protocol, to check that names are typed.
    pub Other;
}

otp::protocol! {
    /// A protocol with two implementations below.
    pub Greeting;
    calls GreetingCall {
        Greet(String) -> String,
    }
}

struct English;

impl GenServer for English {
    type Protocol = Greeting;

    async fn handle_call(&mut self, call: GreetingCall<'_>, _me: &Context<Self>) -> otp::Result {
        let GreetingCall::Greet(Greet(who), caller) = call;
        Ok(caller.reply(format!("hello, {who}")))
    }
}

/// Greets in French and counts whom it greeted: another state, the same protocol.
struct French {
    greeted: u32,
}

impl GenServer for French {
    type Protocol = Greeting;

    async fn handle_call(&mut self, call: GreetingCall<'_>, _me: &Context<Self>) -> otp::Result {
        let GreetingCall::Greet(Greet(who), caller) = call;
        self.greeted += 1;
        Ok(caller.reply(format!("bonjour {who} (#{})", self.greeted)))
    }
}

#[tokio::test]
async fn two_implementations_of_one_protocol_are_interchangeable_behind_one_name() {
    let greeter = Named::<Greeting>::new("greeter");
    let english = English.start_named("greeter").await.unwrap();
    assert_eq!(
        greeter.call(Greet("joe".into())).await.unwrap(),
        "hello, joe"
    );
    english.stop(ExitReason::Normal).await.unwrap();
    French { greeted: 0 }.start_named("greeter").await.unwrap();
    assert_eq!(
        greeter.call(Greet("joe".into())).await.unwrap(),
        "bonjour joe (#1)"
    );
    // Looked up by its protocol, whichever server runs under the name.
    let found: ServerRef<Greeting> = ServerRef::whereis("greeter").unwrap();
    assert_eq!(
        found.call(Greet("mike".into())).await.unwrap(),
        "bonjour mike (#2)"
    );
}

otp::protocol! {
    /// Requests each with its own answer type.
    pub Asked;
    calls Ask {
        Length(String) -> usize,
        Upper(String) -> String,
        Crash -> (),
    }
}

struct AskedServer;

impl GenServer for AskedServer {
    type Protocol = Asked;

    async fn handle_call(&mut self, call: Ask<'_>, _me: &Context<Self>) -> otp::Result {
        Ok(match call {
            Ask::Length(Length(text), caller) => caller.reply(text.len()),
            Ask::Upper(Upper(text), caller) => caller.reply(text.to_uppercase()),
            Ask::Crash(Crash, _unanswered) => return Err("asked to crash".into()),
        })
    }
}

#[tokio::test]
async fn each_request_can_have_its_own_reply_type() {
    let server = AskedServer.start().await.unwrap();
    let length = server.call_timeout(Length("four".into()), Timeout::Infinity);
    assert_eq!(length.await, Ok(4));
    let upper = server.call_timeout(Upper("four".into()), Timeout::Infinity);
    assert_eq!(upper.await.as_deref(), Ok("FOUR"));
    // A server that exits instead of answering tells the caller why, as for any call.
    let crashed = server.call_timeout(Crash, Timeout::Infinity).await;
    assert!(
        matches!(&crashed, Err(CallError::Exited(ExitReason::Error(why))) if why.contains("asked to crash")),
        "{crashed:?}"
    );
}

/// What a server's `init` fails with, of the user's own type.
#[derive(Debug)]
struct DiskFull;

impl std::fmt::Display for DiskFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("disk full")
    }
}

impl std::error::Error for DiskFull {}

struct NeedsDisk;

impl Init<()> for NeedsDisk {
    async fn init((): (), _me: &Context<Self>) -> otp::Result<Self> {
        Err(Box::new(DiskFull))
    }
}

impl GenServer for NeedsDisk {
    type Protocol = Greeting;
}

#[tokio::test]
async fn an_init_error_keeps_its_cause() {
    let error = NeedsDisk::with_args(()).start().await.unwrap_err();
    assert_eq!(error.to_string(), "init failed: disk full");
    let cause = std::error::Error::source(&error).expect("the init error is the source");
    assert!(cause.downcast_ref::<DiskFull>().is_some(), "{cause:?}");
}

otp::protocol! {
    /// What [`SelfCaller`] answers: both calls with what a call gave.
    pub SelfCalling;
    calls SelfCall {
        /// Call yourself with `Value`, and answer what that call gave.
        CallYourself -> Result<u64, CallError>,
        Value -> Result<u64, CallError>,
    }
}

/// A server that, asked to, calls itself from its own `handle_call`.
struct SelfCaller;

impl GenServer for SelfCaller {
    type Protocol = SelfCalling;

    async fn handle_call(&mut self, call: SelfCall<'_>, me: &Context<Self>) -> otp::Result {
        Ok(match call {
            // Through the timeout's worth of waiting this would be a Timeout.
            SelfCall::CallYourself(CallYourself, caller) => {
                caller.reply(me.call(Value).await.and_then(|inner| inner))
            }
            SelfCall::Value(Value, caller) => caller.reply(Ok(7)),
        })
    }
}

#[tokio::test]
async fn a_call_to_itself_from_a_callback_fails_at_once_with_calling_self() {
    let server = SelfCaller.start().await.unwrap();
    assert_eq!(
        server.call(CallYourself).await,
        Ok(Err(CallError::CallingSelf))
    );
    // From outside, the same call is answered as usual.
    assert_eq!(server.call(Value).await, Ok(Ok(7)));
}

#[tokio::test]
async fn a_crash_in_terminate_becomes_the_exit_reason() {
    let (server, mut events) = probe("crashy");
    let server = server
        .behaving(Behaviour::PanicInTerminate)
        .with_value(0)
        .start()
        .await
        .unwrap();
    assert_eq!(next(&mut events).await, Event::Started("crashy".into()));
    let (watcher, mut watched) = probe("watcher");
    let watcher = watcher.with_value(0).start().await.unwrap();
    watcher.cast(Monitor(server.cell()));
    watcher.call(Get).await.unwrap(); // the monitor is in place
    let stopped = server.stop(ExitReason::Normal).await;
    assert!(
        matches!(&stopped, Err(CallError::Exited(ExitReason::Error(why))) if why.contains("terminate fails")),
        "{stopped:?}"
    );
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("crashy".into(), ExitReason::Normal)
    );
    assert_eq!(next(&mut watched).await, Event::Started("watcher".into()));
    assert!(
        matches!(next(&mut watched).await, Event::Down(ExitReason::Error(why)) if why.contains("terminate fails")),
        "monitors see the crash, not normal"
    );
}
