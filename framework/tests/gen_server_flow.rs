//! What a GenServer does between and around messages, after OTP's `gen_server_SUITE`:
//! `handle_continue`, the idle timeout, `stop/3`'s timeout, the start timeout, and
//! `send_request` with request-id collections.

use std::time::Duration;

use otp::gen_server::{Collected, Init, RequestIds, Start, StartOptions};
use otp::{CallError, Context, ExitReason, Flow, GenServer, Info, ServerRef, StartError};
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(10);

otp::protocol! {
    /// What a journal serves: its journal, echoes, and notes; its continuations are infos.
    pub Journal;
    calls JournalCall {
        Read -> Vec<String>,
        /// Answers `n` after `wait`.
        Echo(u64, Duration) -> Vec<String>,
    }
    casts JournalCast {
        Note(&'static str),
        NoteThenContinue(&'static str, &'static str),
        NoteThenIdle(&'static str, Duration),
        /// The next `terminate` never ends.
        HangOnStop,
    }
    infos &'static str;
}

/// Where a journal tells the test about idle timeouts as they come: what a test starts one
/// with, beside a [`Setup`].
#[derive(Clone)]
struct Teller {
    timeouts: mpsc::UnboundedSender<()>,
}

impl Teller {
    /// A journal telling here, ready to start: its `init` runs in its own process.
    fn with(self, setup: Setup) -> Start<JournalServer> {
        JournalServer::with_args((self, setup))
    }
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

/// A server that writes what happens to it in a journal, and tells the test about idle
/// timeouts as they come.
struct JournalServer {
    timeouts: mpsc::UnboundedSender<()>,
    journal: Vec<String>,
    hang_on_stop: bool,
}

impl Init<(Teller, Setup)> for JournalServer {
    async fn init((teller, setup): (Teller, Setup), me: &Context<Self>) -> otp::Result<Self> {
        if let Some(slow) = setup.slow {
            tokio::time::sleep(slow).await;
        }
        if let Some(work) = setup.continue_with {
            me.continue_with(work);
        }
        if let Some(idle) = setup.idle {
            me.idle_timeout(idle);
        }
        Ok(JournalServer {
            timeouts: teller.timeouts,
            journal: vec!["init".into()],
            hang_on_stop: false,
        })
    }
}

impl GenServer for JournalServer {
    type Protocol = Journal;

    async fn handle_call(&mut self, call: JournalCall<'_>, _me: &Context<Self>) -> otp::Result {
        Ok(match call {
            JournalCall::Read(Read, caller) => caller.reply(self.journal.clone()),
            JournalCall::Echo(Echo(n, wait), caller) => {
                tokio::time::sleep(wait).await;
                caller.reply(vec![n.to_string()])
            }
        })
    }

    async fn handle_cast(&mut self, cast: JournalCast, me: &Context<Self>) -> otp::Result {
        match cast {
            JournalCast::Note(Note(note)) => self.journal.push(note.into()),
            JournalCast::NoteThenContinue(NoteThenContinue(note, work)) => {
                self.journal.push(note.into());
                me.continue_with(work);
            }
            JournalCast::NoteThenIdle(NoteThenIdle(note, idle)) => {
                self.journal.push(note.into());
                me.idle_timeout(idle);
            }
            JournalCast::HangOnStop(HangOnStop) => self.hang_on_stop = true,
        }
        Ok(Flow::Continue)
    }

    async fn handle_continue(&mut self, work: &'static str, _me: &Context<Self>) -> otp::Result {
        self.journal.push(format!("continued {work}"));
        Ok(Flow::Continue)
    }

    async fn handle_info(&mut self, info: Info<&'static str>, _me: &Context<Self>) -> otp::Result {
        if let Info::Timeout = info {
            self.journal.push("timeout".into());
            let _ = self.timeouts.send(());
        }
        Ok(Flow::Continue)
    }

    async fn terminate(&mut self, _reason: &ExitReason, _me: &Context<Self>) {
        if self.hang_on_stop {
            std::future::pending::<()>().await;
        }
    }
}

fn journal() -> (Teller, mpsc::UnboundedReceiver<()>) {
    let (timeouts, receiver) = mpsc::unbounded_channel();
    (Teller { timeouts }, receiver)
}

async fn read(server: &ServerRef<Journal>) -> Vec<String> {
    server.call(Read).await.unwrap()
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
    let server = server.with(setup).start().await.unwrap();
    assert_eq!(read(&server).await, ["init", "continued setup"]);
}

#[tokio::test]
async fn a_continuation_runs_before_the_messages_queued_behind_its_callback() {
    let (server, _timeouts) = journal();
    let server = server.with(Setup::default()).start().await.unwrap();
    // Both casts are queued before the server handles the first.
    server.cast(NoteThenContinue("first", "work"));
    server.cast(Note("second"));
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
    let server = server.with(setup).start().await.unwrap();
    next_timeout(&mut timeouts).await;
    server.cast(NoteThenIdle("again", Duration::from_millis(10)));
    next_timeout(&mut timeouts).await;
    assert_eq!(read(&server).await, ["init", "timeout", "again", "timeout"]);
}

/// Any message cancels the timeout. The clock is virtual: it moves only once every task
/// waits, so the server has handled both casts, and the timer that would have fired has,
/// before the test reads the journal.
#[tokio::test(start_paused = true)]
async fn any_message_cancels_the_idle_timeout() {
    let (server, _timeouts) = journal();
    let server = server.with(Setup::default()).start().await.unwrap();
    // Queued together: the second arrives before the first's timeout can run out.
    server.cast(NoteThenIdle("armed", Duration::from_millis(10)));
    server.cast(Note("cancels"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(read(&server).await, ["init", "armed", "cancels"]);
}

/// OTP's `stop/3` with a timeout: the caller is told, the server goes on stopping.
#[tokio::test]
async fn stop_with_a_timeout_answers_timeout_when_terminate_hangs() {
    let (server, _timeouts) = journal();
    let server = server.with(Setup::default()).start().await.unwrap();
    server.cast(HangOnStop);
    let limit = Duration::from_millis(20);
    assert_eq!(
        server.stop_timeout(ExitReason::Normal, limit).await,
        Err(CallError::Timeout(limit))
    );
    server.kill();
    server.wait_exit().await;
    let (server, _timeouts) = journal();
    let server = server.with(Setup::default()).start().await.unwrap();
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
    let started = server.clone().with(setup).start_with(options.clone()).await;
    assert!(
        matches!(started, Err(StartError::Timeout(limit)) if limit == Duration::from_secs(1)),
        "{started:?}"
    );
    assert!(ServerRef::<Journal>::whereis("slow-journal").is_none());
    let quick = server
        .with(Setup::default())
        .start_with(options)
        .await
        .unwrap();
    assert_eq!(quick.name().as_deref(), Some("slow-journal"));
}

/// OTP's `send_request` with `receive_response`, `wait_response`, `check_response`. The
/// clock is virtual: the server's 50 ms take no real time, and no stall of this machine
/// can make them pass before the test looks.
#[tokio::test(start_paused = true)]
async fn a_request_in_flight_is_collected_later() {
    let (server, _timeouts) = journal();
    let server = server.with(Setup::default()).start().await.unwrap();
    let mut slow = server.send_request(Echo(1, Duration::from_millis(50)));
    let quick = server.send_request(Echo(2, Duration::ZERO));
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
    let server = server.with(Setup::default()).start().await.unwrap();
    server.stop(ExitReason::Normal).await.unwrap();
    let request = server.send_request(Read);
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
        let server = server.with(Setup::default()).start().await.unwrap();
        // The first is the slowest: answers do not come in the order sent.
        let wait = Duration::from_millis(10 * (3 - n));
        pending.add(server.send_request(Echo(n, wait)), n);
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
    let server = server.with(Setup::default()).start().await.unwrap();
    let mut pending = RequestIds::new();
    pending.add(server.send_request(Echo(1, Duration::from_millis(50))), "a");
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
    let server = server.with(Setup::default()).start().await.unwrap();
    server.cast(NoteThenIdle("armed", Duration::from_millis(30)));
    otp::sys::suspend(&server).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.cast(Note("waited"));
    otp::sys::resume(&server).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(read(&server).await, ["init", "armed", "waited"]);
}

#[tokio::test(start_paused = true)]
async fn a_system_message_starts_the_idle_timeout_again() {
    let (server, mut timeouts) = journal();
    let server = server.with(Setup::default()).start().await.unwrap();
    server.cast(NoteThenIdle("armed", Duration::from_millis(30)));
    otp::sys::get_status(&server).await.unwrap();
    next_timeout(&mut timeouts).await;
    assert_eq!(read(&server).await, ["init", "armed", "timeout"]);
}
