//! What a GenServer does between and around messages, after OTP's `gen_server_SUITE`:
//! `handle_continue`, the idle timeout, `stop/3`'s timeout, the start timeout, and
//! `send_request` with request-id collections.

use std::time::Duration;

use otp::gen_server::{Collected, RequestIds, StartOptions};
use otp::{
    BoxError, CallError, CallResponse, Context, ExitReason, Flow, GenServer, Info, Protocol,
    ReplyTo, ServerRef, StartError,
};
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(10);

/// A server that writes what happens to it in a journal, and tells the test about idle
/// timeouts as they come.
#[derive(Clone)]
struct Journal {
    timeouts: mpsc::UnboundedSender<()>,
}

#[derive(Default)]
struct Setup {
    /// `init` asks to continue with this.
    continue_with: Option<&'static str>,
    /// `init` sets this idle timeout.
    idle: Option<Duration>,
    /// `init` takes this long.
    slow: Option<Duration>,
}

enum Call {
    Read,
    /// Answers `n` after `wait`.
    Echo(u64, Duration),
}

enum Cast {
    Note(&'static str),
    NoteThenContinue(&'static str, &'static str),
    NoteThenIdle(&'static str, Duration),
    /// The next `terminate` never ends.
    HangOnStop,
}

struct State {
    journal: Vec<String>,
    hang_on_stop: bool,
}

impl Protocol for Journal {
    type Call = Call;
    type Reply = Vec<String>;
    type Cast = Cast;
}

impl GenServer for Journal {
    type Protocol = Self;
    type Args = Setup;
    type State = State;
    type Info = &'static str;

    async fn init(&self, me: &Context<Self>, setup: Setup) -> Result<State, BoxError> {
        if let Some(slow) = setup.slow {
            tokio::time::sleep(slow).await;
        }
        if let Some(work) = setup.continue_with {
            me.continue_with(work);
        }
        if let Some(idle) = setup.idle {
            me.idle_timeout(idle);
        }
        Ok(State {
            journal: vec!["init".into()],
            hang_on_stop: false,
        })
    }

    async fn handle_call(
        &self,
        _me: &Context<Self>,
        request: Call,
        _from: &mut ReplyTo<Vec<String>>,
        state: &mut State,
    ) -> Result<CallResponse<Vec<String>>, BoxError> {
        match request {
            Call::Read => Ok(CallResponse::Reply(state.journal.clone())),
            Call::Echo(n, wait) => {
                tokio::time::sleep(wait).await;
                Ok(CallResponse::Reply(vec![n.to_string()]))
            }
        }
    }

    async fn handle_cast(
        &self,
        me: &Context<Self>,
        message: Cast,
        state: &mut State,
    ) -> Result<Flow, BoxError> {
        match message {
            Cast::Note(note) => state.journal.push(note.into()),
            Cast::NoteThenContinue(note, work) => {
                state.journal.push(note.into());
                me.continue_with(work);
            }
            Cast::NoteThenIdle(note, idle) => {
                state.journal.push(note.into());
                me.idle_timeout(idle);
            }
            Cast::HangOnStop => state.hang_on_stop = true,
        }
        Ok(Flow::Continue)
    }

    async fn handle_continue(
        &self,
        _me: &Context<Self>,
        work: &'static str,
        state: &mut State,
    ) -> Result<Flow, BoxError> {
        state.journal.push(format!("continued {work}"));
        Ok(Flow::Continue)
    }

    async fn handle_info(
        &self,
        _me: &Context<Self>,
        message: Info<&'static str>,
        state: &mut State,
    ) -> Result<Flow, BoxError> {
        if let Info::Timeout = message {
            state.journal.push("timeout".into());
            let _ = self.timeouts.send(());
        }
        Ok(Flow::Continue)
    }

    async fn terminate(&self, _me: &Context<Self>, _reason: &ExitReason, state: &mut State) {
        if state.hang_on_stop {
            std::future::pending::<()>().await;
        }
    }
}

fn journal() -> (Journal, mpsc::UnboundedReceiver<()>) {
    let (timeouts, receiver) = mpsc::unbounded_channel();
    (Journal { timeouts }, receiver)
}

async fn read(server: &ServerRef<Journal>) -> Vec<String> {
    server.call(Call::Read).await.unwrap()
}

async fn next_timeout(timeouts: &mut mpsc::UnboundedReceiver<()>) {
    tokio::time::timeout(PATIENCE, timeouts.recv())
        .await
        .expect("an idle timeout within the test's patience")
        .expect("the server is alive");
}

/// OTP's `continue`: `{ok, S, {continue, C}}` runs before any message, even one queued
/// while `init` ran.
#[tokio::test]
async fn a_continuation_asked_by_init_runs_before_any_message() {
    let (server, _timeouts) = journal();
    let setup = Setup {
        continue_with: Some("setup"),
        ..Setup::default()
    };
    let server = server.start(setup).await.unwrap();
    assert_eq!(read(&server).await, ["init", "continued setup"]);
}

#[tokio::test]
async fn a_continuation_runs_before_the_messages_queued_behind_its_callback() {
    let (server, _timeouts) = journal();
    let server = server.start(Setup::default()).await.unwrap();
    // Both casts are queued before the server handles the first.
    server.cast(Cast::NoteThenContinue("first", "work"));
    server.cast(Cast::Note("second"));
    assert_eq!(
        read(&server).await,
        ["init", "first", "continued work", "second"]
    );
}

#[tokio::test]
async fn an_idle_server_gets_a_timeout_info() {
    let (server, mut timeouts) = journal();
    let setup = Setup {
        idle: Some(Duration::from_millis(10)),
        ..Setup::default()
    };
    let server = server.start(setup).await.unwrap();
    next_timeout(&mut timeouts).await;
    server.cast(Cast::NoteThenIdle("again", Duration::from_millis(10)));
    next_timeout(&mut timeouts).await;
    assert_eq!(read(&server).await, ["init", "timeout", "again", "timeout"]);
}

/// Any message cancels the timeout. The clock is virtual: it moves only once every task
/// waits, so the server has handled both casts, and the timer that would have fired has,
/// before the test reads the journal.
#[tokio::test(start_paused = true)]
async fn any_message_cancels_the_idle_timeout() {
    let (server, _timeouts) = journal();
    let server = server.start(Setup::default()).await.unwrap();
    // Queued together: the second arrives before the first's timeout can run out.
    server.cast(Cast::NoteThenIdle("armed", Duration::from_millis(10)));
    server.cast(Cast::Note("cancels"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(read(&server).await, ["init", "armed", "cancels"]);
}

/// OTP's `stop/3` with a timeout: the caller is told, the server goes on stopping.
#[tokio::test]
async fn stop_with_a_timeout_answers_timeout_when_terminate_hangs() {
    let (server, _timeouts) = journal();
    let server = server.start(Setup::default()).await.unwrap();
    server.cast(Cast::HangOnStop);
    let limit = Duration::from_millis(20);
    assert_eq!(
        server.stop_timeout(ExitReason::Normal, limit).await,
        Err(CallError::Timeout(limit))
    );
    server.kill();
    server.wait_exit().await;
    let (server, _timeouts) = journal();
    let server = server.start(Setup::default()).await.unwrap();
    assert_eq!(
        server.stop_timeout(ExitReason::Normal, PATIENCE).await,
        Ok(())
    );
}

/// OTP's start option `{timeout, T}`: an `init` that takes longer fails the start, and
/// leaves neither process nor name behind.
#[tokio::test(start_paused = true)]
async fn a_start_timeout_abandons_a_slow_init_and_frees_the_name() {
    let (server, _timeouts) = journal();
    let setup = Setup {
        slow: Some(Duration::from_secs(60)),
        ..Setup::default()
    };
    let options = StartOptions {
        name: Some("slow-journal".into()),
        timeout: Some(Duration::from_secs(1)),
    };
    let started = server.clone().start_with(setup, options.clone()).await;
    assert!(
        matches!(started, Err(StartError::Timeout(limit)) if limit == Duration::from_secs(1)),
        "{started:?}"
    );
    assert!(ServerRef::<Journal>::whereis("slow-journal").is_none());
    let quick = server.start_with(Setup::default(), options).await.unwrap();
    assert_eq!(quick.name().as_deref(), Some("slow-journal"));
}

/// OTP's `send_request` with `receive_response`, `wait_response`, `check_response`. The
/// clock is virtual: the server's 50 ms take no real time, and no stall of this machine
/// can make them pass before the test looks.
#[tokio::test(start_paused = true)]
async fn a_request_in_flight_is_collected_later() {
    let (server, _timeouts) = journal();
    let server = server.start(Setup::default()).await.unwrap();
    let mut slow = server.send_request(Call::Echo(1, Duration::from_millis(50)));
    let quick = server.send_request(Call::Echo(2, Duration::ZERO));
    // The server takes requests in order: the first is not answered yet.
    assert_eq!(slow.check_response(), None);
    assert_eq!(
        slow.wait_response(Duration::from_millis(1)).await,
        Err(CallError::Timeout(Duration::from_millis(1)))
    );
    // A timed-out wait keeps the request: its answer still comes.
    assert_eq!(slow.wait_response(PATIENCE).await, Ok(vec!["1".into()]));
    assert_eq!(quick.receive_response(PATIENCE).await, Ok(vec!["2".into()]));
    // Collected once: asking again says so.
    assert_eq!(slow.check_response(), Some(Err(CallError::NoReply)));
}

#[tokio::test]
async fn a_request_to_a_server_that_is_gone_answers_noproc() {
    let (server, _timeouts) = journal();
    let server = server.start(Setup::default()).await.unwrap();
    server.stop(ExitReason::Normal).await.unwrap();
    let request = server.send_request(Call::Read);
    assert_eq!(
        request.receive_response(PATIENCE).await,
        Err(CallError::NoProc)
    );
}

/// OTP's request-id collections: many calls to several servers, answers in the order
/// they come, each with its label.
#[tokio::test]
async fn a_collection_gathers_answers_from_many_servers_by_label() {
    let mut pending = RequestIds::new();
    let mut servers = Vec::new();
    for n in 0..4u64 {
        let (server, _timeouts) = journal();
        let server = server.start(Setup::default()).await.unwrap();
        // The first is the slowest: answers do not come in the order sent.
        let wait = Duration::from_millis(10 * (3 - n));
        pending.add(server.send_request(Call::Echo(n, wait)), n);
        servers.push(server);
    }
    assert_eq!(pending.len(), 4);
    let mut answered = Vec::new();
    loop {
        match pending.wait_response(PATIENCE).await {
            Collected::Answered(label, answer) => {
                assert_eq!(answer, Ok(vec![label.to_string()]));
                answered.push(label);
            }
            Collected::Empty => break,
            Collected::Pending => panic!("no answer within the test's patience"),
        }
    }
    answered.sort_unstable();
    assert_eq!(answered, [0, 1, 2, 3]);
    assert!(matches!(pending.check_response(), Collected::Empty));
}

/// `receive_response` on a collection abandons what is left at its timeout; `wait_response`
/// keeps it.
#[tokio::test(start_paused = true)]
async fn receive_response_abandons_the_rest_at_its_timeout_and_wait_response_does_not() {
    let (server, _timeouts) = journal();
    let server = server.start(Setup::default()).await.unwrap();
    let mut pending = RequestIds::new();
    pending.add(
        server.send_request(Call::Echo(1, Duration::from_millis(50))),
        "a",
    );
    let short = Duration::from_millis(1);
    assert!(matches!(
        pending.wait_response(short).await,
        Collected::Pending
    ));
    assert_eq!(pending.len(), 1);
    assert!(matches!(
        pending.receive_response(short).await,
        Collected::Pending
    ));
    assert!(pending.is_empty());
    // The server is unharmed by the abandoned request.
    assert_eq!(read(&server).await, ["init"]);
}

/// OTP's `system_continue`: a system message, a suspension included, does not end the wait
/// for an idle timeout, nor let it run out meanwhile; the full timeout starts again after
/// it. A message that waited during the suspension ends it.
#[tokio::test(start_paused = true)]
async fn a_suspension_pauses_the_idle_timeout_and_a_waiting_message_ends_it() {
    let (server, _timeouts) = journal();
    let server = server.start(Setup::default()).await.unwrap();
    server.cast(Cast::NoteThenIdle("armed", Duration::from_millis(30)));
    otp::sys::suspend(&server).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.cast(Cast::Note("waited"));
    otp::sys::resume(&server).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(read(&server).await, ["init", "armed", "waited"]);
}

#[tokio::test(start_paused = true)]
async fn a_system_message_starts_the_idle_timeout_again() {
    let (server, mut timeouts) = journal();
    let server = server.start(Setup::default()).await.unwrap();
    server.cast(Cast::NoteThenIdle("armed", Duration::from_millis(30)));
    otp::sys::get_status(&server).await.unwrap();
    next_timeout(&mut timeouts).await;
    assert_eq!(read(&server).await, ["init", "armed", "timeout"]);
}
