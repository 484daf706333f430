//! A configurable test server and helpers shared by the framework's integration tests.
#![allow(dead_code)]

use std::time::Duration;

use otp::gen_server::{Init, Start};
use otp::{Context, ExitReason, Flow, GenServer, Info, ReplyTo};
use tokio::sync::mpsc;

/// Upper bound for waiting on any event in tests: generous, since CI machines are slow;
/// tests never sleep for a fixed time, they wait for the event with this bound.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// What a [`ProbeServer`] reports to its test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started(String),
    Terminated(String, ExitReason),
    Down(ExitReason),
    Tick,
    /// A `Slow` call has begun.
    Busy,
}

otp::protocol! {
    /// What a probe serves: calls that all answer a `u64`, casts, and its own events as
    /// infos.
    pub Probe;
    calls ProbeCall {
        Get -> u64,
        Echo(u64) -> u64,
        /// Defer: keep the caller; answered by a later `ReleaseDeferred` cast.
        Defer -> u64,
        /// Stop without reply.
        StopWith(ExitReason) -> u64,
        /// Stop after replying.
        StopReplying(ExitReason, u64) -> u64,
        Panic -> u64,
        Fail -> u64,
        /// Wait this long before replying (to test timeouts).
        Slow(Duration) -> u64,
    }
    casts ProbeCast {
        Add(u64),
        ReleaseDeferred(u64),
        Stop(ExitReason),
        /// Panics in `handle_cast`.
        PanicInCast,
        Monitor(ractor::ActorCell),
        TickAfter(Duration),
    }
    infos Event;
}

/// A probe as a test builds it, whose behaviour the test chooses message by message; it
/// starts from a value ([`ProbeConfig::with_value`]).
#[derive(Clone)]
pub struct ProbeConfig {
    pub label: String,
    pub events: mpsc::UnboundedSender<Event>,
    pub behaviour: Behaviour,
}

/// What a probe does beyond what its messages ask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Behaviour {
    #[default]
    Normal,
    /// `init` fails: a start failure.
    FailInit,
    /// `terminate` never finishes: a child that outlives its shutdown budget.
    HangInTerminate,
    /// `terminate` reports, then panics.
    PanicInTerminate,
    /// `init` returns `Ignore`: nothing starts, and that is not a failure.
    IgnoreInit,
}

impl ProbeConfig {
    /// This probe, behaving so.
    pub fn behaving(self, behaviour: Behaviour) -> Self {
        Self { behaviour, ..self }
    }

    /// This probe, ready to start holding `value`: its `init` runs in its own process.
    pub fn with_value(self, value: u64) -> Start<ProbeServer> {
        ProbeServer::with_args((self, value))
    }
}

/// A running probe: how it was built, and its state.
pub struct ProbeServer {
    pub probe: ProbeConfig,
    pub value: u64,
    pub deferred: Vec<ReplyTo<Defer>>,
}

impl Init<(ProbeConfig, u64)> for ProbeServer {
    async fn init((probe, value): (ProbeConfig, u64), _me: &Context<Self>) -> otp::Result<Self> {
        match probe.behaviour {
            Behaviour::FailInit => return Err("refusing to start".into()),
            Behaviour::IgnoreInit => return Err(otp::Ignore.into()),
            _ => {}
        }
        let _ = probe.events.send(Event::Started(probe.label.clone()));
        Ok(ProbeServer {
            probe,
            value,
            deferred: Vec::new(),
        })
    }
}

impl GenServer for ProbeServer {
    type Protocol = Probe;

    async fn handle_call(&mut self, call: ProbeCall<'_>, _me: &Context<Self>) -> otp::Result {
        Ok(match call {
            ProbeCall::Get(Get, caller) => caller.reply(self.value),
            ProbeCall::Echo(Echo(value), caller) => caller.reply(value),
            ProbeCall::Defer(Defer, caller) => {
                self.deferred.push(caller.take());
                Flow::Continue
            }
            // Unanswered: the caller gets the exit reason.
            ProbeCall::StopWith(StopWith(reason), _caller) => Flow::Stop(reason),
            ProbeCall::StopReplying(StopReplying(reason, value), caller) => {
                caller.reply(value);
                Flow::Stop(reason)
            }
            ProbeCall::Panic(Panic, _caller) => panic!("asked to panic"),
            ProbeCall::Fail(Fail, _caller) => return Err("asked to fail".into()),
            ProbeCall::Slow(Slow(delay), caller) => {
                let _ = self.probe.events.send(Event::Busy);
                tokio::time::sleep(delay).await;
                caller.reply(self.value)
            }
        })
    }

    async fn handle_cast(&mut self, cast: ProbeCast, me: &Context<Self>) -> otp::Result {
        match cast {
            ProbeCast::Add(Add(n)) => self.value += n,
            ProbeCast::ReleaseDeferred(ReleaseDeferred(value)) => {
                for from in self.deferred.drain(..) {
                    from.reply(value);
                }
            }
            ProbeCast::Stop(Stop(reason)) => return Ok(Flow::Stop(reason)),
            ProbeCast::PanicInCast(PanicInCast) => panic!("cast panic"),
            ProbeCast::Monitor(Monitor(target)) => me.monitor(target),
            ProbeCast::TickAfter(TickAfter(delay)) => {
                me.send_after(delay, Event::Tick);
            }
        }
        Ok(Flow::Continue)
    }

    async fn handle_info(&mut self, info: Info<Event>, _me: &Context<Self>) -> otp::Result {
        let event = match info {
            Info::Message(event) => event,
            Info::Down(down) => Event::Down(down.reason),
            _ => return Ok(Flow::Continue),
        };
        let _ = self.probe.events.send(event);
        Ok(Flow::Continue)
    }

    fn format_status(&self) -> String {
        format!("value {}", self.value)
    }

    async fn terminate(&mut self, reason: &ExitReason, _me: &Context<Self>) {
        let _ = self
            .probe
            .events
            .send(Event::Terminated(self.probe.label.clone(), reason.clone()));
        match self.probe.behaviour {
            Behaviour::HangInTerminate => std::future::pending::<()>().await,
            Behaviour::PanicInTerminate => panic!("terminate fails"),
            _ => {}
        }
    }
}

/// A probe and the receiving end of its events.
pub fn probe(label: &str) -> (ProbeConfig, mpsc::UnboundedReceiver<Event>) {
    let (events, receiver) = mpsc::unbounded_channel();
    (
        ProbeConfig {
            label: label.to_owned(),
            events,
            behaviour: Behaviour::Normal,
        },
        receiver,
    )
}

/// A probe reporting into an existing channel (several probes, one ordered event log).
pub fn probe_into(label: &str, events: &mpsc::UnboundedSender<Event>) -> ProbeConfig {
    ProbeConfig {
        label: label.to_owned(),
        events: events.clone(),
        behaviour: Behaviour::Normal,
    }
}

/// The next event, or a test failure after [`PATIENCE`].
pub async fn next(events: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("timed out waiting for an event")
        .expect("event channel closed")
}

/// Waits for a condition that becomes true through another process's work, polling with
/// a bounded deadline (used only where no event can be awaited, e.g. a registry entry).
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in time"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A permanent worker spec running a probe labelled `id` that reports into `events`.
pub fn probe_spec(id: &str, events: &mpsc::UnboundedSender<Event>) -> otp::supervisor::ChildSpec {
    probe_spec_behaving(id, events, Behaviour::Normal)
}

/// [`probe_spec`], with a probe behaving so.
pub fn probe_spec_behaving(
    id: &str,
    events: &mpsc::UnboundedSender<Event>,
    behaviour: Behaviour,
) -> otp::supervisor::ChildSpec {
    let probe = probe_into(id, events).behaving(behaviour);
    otp::supervisor::ChildSpec::worker(id, move |parent| parent.start(probe.clone().with_value(0)))
}

/// The running probe under `id` in a supervisor.
pub async fn child_of(
    supervisor: &otp::supervisor::SupervisorRef,
    id: &str,
) -> otp::ServerRef<Probe> {
    let children = supervisor.which_children().await.expect("which_children");
    let cell = children
        .into_iter()
        .find(|child| child.id == id)
        .and_then(|child| child.process.cell().cloned())
        .unwrap_or_else(|| panic!("child {id} is not running"));
    otp::ServerRef::from_cell(cell).expect("child is a probe")
}

/// Ids of the running children, in start order.
pub async fn running_ids(supervisor: &otp::supervisor::SupervisorRef) -> Vec<String> {
    supervisor
        .which_children()
        .await
        .expect("which_children")
        .into_iter()
        .filter(|child| child.process.cell().is_some())
        .map(|child| child.id)
        .collect()
}

/// Asserts that nothing more arrives: once every sender is gone, the channel just ends.
pub async fn no_more_events(mut events: mpsc::UnboundedReceiver<Event>) {
    let last = tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("the event channel did not end");
    assert_eq!(last, None, "an unexpected event arrived");
}

/// A probe outside any tree that monitors `target` and reports its DOWN.
pub async fn watch(target: ractor::ActorCell) -> mpsc::UnboundedReceiver<Event> {
    let (watcher, mut events) = probe("watcher");
    let watcher = watcher.with_value(0).start().await.unwrap();
    next(&mut events).await;
    watcher.cast(Monitor(target));
    // The call returns after the cast was handled: the monitor is in place.
    watcher.call(Get).await.unwrap();
    events
}

/// Collects what a `tracing` subscriber writes, for tests that read the logs.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures this thread's `tracing` events at info level and above until the guard
    /// drops. On a current-thread runtime (`#[tokio::test]`'s default) every actor runs on
    /// this thread, so this sees their events too.
    pub fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Self::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
