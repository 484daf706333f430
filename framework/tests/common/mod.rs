//! A configurable test server and helpers shared by the framework's integration tests.
#![allow(dead_code)]

use std::time::Duration;

use otp::{BoxError, CallResponse, Context, ExitReason, Flow, GenServer, Info, Protocol, ReplyTo};
use tokio::sync::mpsc;

/// Upper bound for waiting on any event in tests: generous, since CI machines are slow;
/// tests never sleep for a fixed time, they wait for the event with this bound.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// What a [`Probe`] reports to its test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started(String),
    Terminated(String, ExitReason),
    Down(ExitReason),
    Tick,
    /// A `Slow` call has begun.
    Busy,
}

/// A server whose behaviour the test chooses message by message.
#[derive(Clone)]
pub struct Probe {
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

impl Probe {
    /// This probe, behaving so.
    pub fn behaving(self, behaviour: Behaviour) -> Self {
        Self { behaviour, ..self }
    }
}

pub enum Call {
    Get,
    Echo(u64),
    /// Defer: keep the caller; answered by a later `ReleaseDeferred` cast.
    Defer,
    /// Stop without reply.
    StopWith(ExitReason),
    /// Stop after replying.
    StopReplying(ExitReason, u64),
    Panic,
    Fail,
    /// Wait this long before replying (to test timeouts).
    Slow(Duration),
}

pub enum Cast {
    Add(u64),
    ReleaseDeferred(u64),
    Stop(ExitReason),
    Panic,
    Monitor(ractor::ActorCell),
    TickAfter(Duration),
}

pub struct State {
    pub value: u64,
    pub deferred: Vec<ReplyTo<u64>>,
}

impl Protocol for Probe {
    type Call = Call;
    type Reply = u64;
    type Cast = Cast;
}

impl GenServer for Probe {
    type Protocol = Self;
    type Args = u64;
    type State = State;
    type Info = Event;

    async fn init(&self, _me: &Context<Self>, value: u64) -> Result<State, BoxError> {
        match self.behaviour {
            Behaviour::FailInit => return Err("refusing to start".into()),
            Behaviour::IgnoreInit => return Err(otp::Ignore.into()),
            _ => {}
        }
        let _ = self.events.send(Event::Started(self.label.clone()));
        Ok(State {
            value,
            deferred: Vec::new(),
        })
    }

    async fn handle_call(
        &self,
        _me: &Context<Self>,
        request: Call,
        from: &mut ReplyTo<u64>,
        state: &mut State,
    ) -> Result<CallResponse<u64>, BoxError> {
        Ok(match request {
            Call::Get => CallResponse::Reply(state.value),
            Call::Echo(value) => CallResponse::Reply(value),
            Call::Defer => {
                state.deferred.push(from.take());
                CallResponse::NoReply
            }
            Call::StopWith(reason) => CallResponse::Stop {
                reason,
                reply: None,
            },
            Call::StopReplying(reason, value) => CallResponse::Stop {
                reason,
                reply: Some(value),
            },
            Call::Panic => panic!("asked to panic"),
            Call::Fail => return Err("asked to fail".into()),
            Call::Slow(delay) => {
                let _ = self.events.send(Event::Busy);
                tokio::time::sleep(delay).await;
                CallResponse::Reply(state.value)
            }
        })
    }

    async fn handle_cast(
        &self,
        me: &Context<Self>,
        message: Cast,
        state: &mut State,
    ) -> Result<Flow, BoxError> {
        match message {
            Cast::Add(n) => state.value += n,
            Cast::ReleaseDeferred(value) => {
                for from in state.deferred.drain(..) {
                    from.reply(value);
                }
            }
            Cast::Stop(reason) => return Ok(Flow::Stop(reason)),
            Cast::Panic => panic!("cast panic"),
            Cast::Monitor(target) => me.monitor(target),
            Cast::TickAfter(delay) => {
                me.send_after(delay, Event::Tick);
            }
        }
        Ok(Flow::Continue)
    }

    async fn handle_info(
        &self,
        _me: &Context<Self>,
        message: Info<Event>,
        _state: &mut State,
    ) -> Result<Flow, BoxError> {
        let event = match message {
            Info::Message(event) => event,
            Info::Down(down) => Event::Down(down.reason),
            _ => return Ok(Flow::Continue),
        };
        let _ = self.events.send(event);
        Ok(Flow::Continue)
    }

    fn format_status(&self, state: &State) -> String {
        format!("value {}", state.value)
    }

    async fn terminate(&self, _me: &Context<Self>, reason: &ExitReason, _state: &mut State) {
        let _ = self
            .events
            .send(Event::Terminated(self.label.clone(), reason.clone()));
        match self.behaviour {
            Behaviour::HangInTerminate => std::future::pending::<()>().await,
            Behaviour::PanicInTerminate => panic!("terminate fails"),
            _ => {}
        }
    }
}

/// A probe and the receiving end of its events.
pub fn probe(label: &str) -> (Probe, mpsc::UnboundedReceiver<Event>) {
    let (events, receiver) = mpsc::unbounded_channel();
    (
        Probe {
            label: label.to_owned(),
            events,
            behaviour: Behaviour::Normal,
        },
        receiver,
    )
}

/// A probe reporting into an existing channel (several probes, one ordered event log).
pub fn probe_into(label: &str, events: &mpsc::UnboundedSender<Event>) -> Probe {
    Probe {
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
    otp::supervisor::ChildSpec::worker(id, move |parent| parent.start(probe.clone(), 0))
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
    let watcher = GenServer::start(watcher, 0).await.unwrap();
    next(&mut events).await;
    watcher.cast(Cast::Monitor(target));
    // The call returns after the cast was handled: the monitor is in place.
    watcher.call(Call::Get).await.unwrap();
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
