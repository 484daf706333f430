//! The ractor actor that runs a [`GenServer`].
//!
//! OTP semantics that ractor does not have, and how they are made here:
//! - *terminate on every orderly stop and crash*: callbacks run under `catch_unwind`, and every
//!   way to stop goes through [`Running::begin_exit`], which calls `terminate` exactly once.
//! - *callers learn the exit reason*: after deciding to stop, the server does not vanish at
//!   once (ractor would drop its mailbox and every queued caller with it). It enqueues an
//!   [`Envelope::Exit`] marker to itself and, until the marker comes round, answers each
//!   queued call with the exit reason. Then it stops with the encoded reason, which its
//!   supervisor and monitors decode.
//! - *monitors and links*: ractor delivers both as supervision events; they become
//!   [`Info::Down`] and [`Info::Exit`]. A monitor on something that is not a local
//!   process (a server on another node) reports through [`Envelope::Down`].
//! - *one mailbox per protocol*: the mailbox is typed by the server's [`Protocol`], so
//!   that every implementation of a protocol can be reached through one handle type.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::Either;
use futures::FutureExt;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};
use tokio::sync::oneshot;

use super::mailbox::Counter;
use super::reply::ReplySlot;
use super::sys::{Status, SysRequest};
use super::{
    Context, Flow, GenServer, Gone, Info, Lineage, ProcessExit, Protocol, ServerRef, Start,
    Starting,
};
use crate::{BoxError, ExitReason, StartError};
use bookkeeping::{trace_event, Extras};

mod bookkeeping;

/// A GenServer's mailbox entry.
pub(crate) enum Envelope<P: Protocol> {
    Call(P::Calls, ReplySlot<P::Replies>),
    Cast(P::Cast),
    Info(P::Info),
    /// `ServerRef::stop` or a supervisor's orderly shutdown: in order, like OTP's exit
    /// signal to a process that traps exits. The waiter, if any, learns the reason the
    /// server exited with: another one if its `terminate` crashed.
    Stop(ExitReason, Option<oneshot::Sender<ExitReason>>),
    /// The marker a stopping server sends itself; see the module docs.
    Exit,
    /// The idle timer of this generation ran out (see [`Context::idle_timeout`]); one of
    /// an older generation is stale.
    Idle(u64),
    /// A `sys` request, answered by the process itself (also while suspended).
    Sys(SysRequest),
    /// What a monitor reported by other means than ractor's ([`Context::monitor_with`]),
    /// or that a monitored process was gone before the monitor was in place (sent after
    /// it finished, so its own exit event, if it reached us, is handled first).
    Down(ActorId, ExitReason),
}

// Local only: remote messaging wraps these in serde types (the distribution layer). With
// ractor's `cluster` feature (which `distribution` turns on) every message type must say
// so; without it, ractor implements this for every type itself.
#[cfg(feature = "distribution")]
impl<P: Protocol> ractor::Message for Envelope<P> {}

/// The ractor actor; the user's server value is its state, inside [`Running`].
pub(crate) struct Process<G> {
    /// Held here, not in the state (which ractor hands to the parent with the exit
    /// event), so that it goes only when the process itself is gone.
    lineage: Option<Arc<Lineage>>,
    server: PhantomData<fn() -> G>,
}

/// What a child is started under: the supervisor it links to, and its lineage there.
pub(crate) struct Linked {
    supervisor: ActorCell,
    lineage: Arc<Lineage>,
}

impl Linked {
    /// Under `supervisor`, whose own lineage is `up`; the [`Gone`] is the supervisor's.
    pub fn new(supervisor: ActorCell, up: Option<Arc<Lineage>>) -> (Self, Gone) {
        let (lineage, gone) = Lineage::new(up);
        let linked = Self {
            supervisor,
            lineage,
        };
        (linked, gone)
    }
}

/// The actor state: the user's server plus what the framework tracks for it.
pub(crate) struct Running<G: GenServer> {
    server: G,
    me: Context<G>,
    /// For `sys` statistics: when it started, how many messages it handled.
    started: SystemTime,
    handled: u64,
    /// What only some servers use, made on first use: the others pay a pointer, and one
    /// load per message.
    extras: Option<Box<Extras<G::Protocol>>>,
}

/// What a suspended server keeps for later.
enum Deferred<P: Protocol> {
    Message(Envelope<P>),
    /// An exit of a linked or monitored process (its final state already dropped).
    Exit(ActorId, ExitReason),
}

impl<P: Protocol> Envelope<P> {
    /// What kind of message it is, for `sys::trace` (payloads need not be printable).
    fn kind(&self) -> &'static str {
        match self {
            Self::Call(..) => "call",
            Self::Cast(_) => "cast",
            Self::Info(_) => "info",
            Self::Stop(..) => "stop",
            Self::Exit => "exit marker",
            Self::Idle(_) => "idle timeout",
            Self::Sys(_) => "system message",
            Self::Down(..) => "down",
        }
    }
}

/// Asks the server behind `cell` to stop in order with `reason`. Returns false if it is gone.
/// Stored as a plain `fn` in child records so a supervisor can stop any kind of child.
pub(crate) fn request_stop<P: Protocol>(cell: &ActorCell, reason: ExitReason) -> bool {
    super::mailbox::sent(cell.get_id());
    cell.send_message(Envelope::<P>::Stop(reason, None)).is_ok()
}

/// Spawns and initialises a server; returns once `init` has finished.
pub(crate) async fn spawn<G: GenServer>(
    server: Start<G>,
    name: Option<String>,
    parent: Option<Linked>,
) -> Result<ServerRef<G::Protocol>, StartError> {
    let (supervisor, lineage) = match parent {
        Some(Linked {
            supervisor,
            lineage,
        }) => (Some(supervisor), Some(lineage)),
        None => (None, None),
    };
    let process = Process {
        lineage,
        server: PhantomData,
    };
    let spawned = match supervisor {
        Some(supervisor) => Actor::spawn_linked(name, process, server, supervisor).await,
        None => Actor::spawn(name, process, server).await,
    };
    match spawned {
        Ok((actor, _)) => Ok(ServerRef::from_actor(actor)),
        Err(SpawnErr::ActorAlreadyRegistered(name)) => Err(StartError::already_started(name)),
        Err(SpawnErr::StartupFailed(reason)) => Err(match reason.downcast::<StartError>() {
            Ok(structured) => *structured,
            Err(reason) if reason.is::<crate::Ignore>() => StartError::Ignored,
            Err(reason) => StartError::init(reason),
        }),
        Err(other) => Err(StartError::init(other)),
    }
}

/// [`spawn`] with a start timeout: an `init` still running when it is up is dropped, and
/// ractor's cleanup frees the process and its name as for a kill.
pub(crate) async fn spawn_with<G: GenServer>(
    server: Start<G>,
    options: super::StartOptions,
    parent: Option<Linked>,
) -> Result<ServerRef<G::Protocol>, StartError> {
    let spawning = spawn(server, options.name, parent);
    match options.timeout {
        Some(limit) => tokio::time::timeout(limit, spawning)
            .await
            .unwrap_or(Err(StartError::Timeout(limit))),
        None => spawning.await,
    }
}

/// Runs a callback, turning a panic into an error so that a crash takes the same path as an
/// `Err` return (`terminate`, then exit with the message).
async fn guarded<T>(callback: impl Future<Output = Result<T, BoxError>>) -> Result<T, ExitReason> {
    match AssertUnwindSafe(callback).catch_unwind().await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(ExitReason::error(error)),
        Err(panic) => Err(ExitReason::Error(panic_message(panic))),
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(text) => format!("panicked: {text}"),
        Err(panic) => match panic.downcast::<&'static str>() {
            Ok(text) => format!("panicked: {text}"),
            Err(_) => "panicked".to_owned(),
        },
    }
}

impl<G: GenServer> Running<G> {
    /// The one way a server stops: `terminate` once, then drain callers until the marker.
    /// A crash in `terminate` becomes the exit reason, as in OTP (so a transient child that
    /// stops `normal` but crashes on the way out is restarted). Returns the exit reason.
    async fn begin_exit(&mut self, reason: ExitReason) -> ExitReason {
        let terminated = AssertUnwindSafe(self.server.terminate(&reason, &self.me))
            .catch_unwind()
            .await;
        let reason = match terminated {
            Ok(()) => reason,
            Err(panic) => {
                let crash = ExitReason::Error(panic_message(panic));
                tracing::error!(server = %self.me.id(), %reason, %crash, "terminate crashed");
                crash
            }
        };
        if !reason.is_orderly() {
            tracing::error!(server = %self.me.id(), name = ?self.me.name(), %reason, "server terminating");
        }
        self.cancel_idle();
        if self.me.actor().send_message(Envelope::Exit).is_err() {
            self.me.actor().stop(Some(reason.encode()));
        }
        self.me.drop_monitors();
        self.extras().exiting = Some(reason.clone());
        // What waited while suspended is answered as what comes after the stop.
        let myself = self.me.actor().clone();
        for deferred in self.take_suspended() {
            if let Deferred::Message(message) = deferred {
                self.after_exit(message, &myself);
            }
        }
        reason
    }

    /// Handles one message of a running, unsuspended server, then what its callback asked
    /// for after it: its work is chosen before its future is made.
    ///
    /// A process's task is as large as the largest future it awaits, for its whole life
    /// (twice over: ractor moves each message's future into a select with its signals).
    /// So the common messages get a future that holds only what they need, their
    /// callback's own future; stops, monitors' downs and idle timeouts are boxed, paid
    /// for when they happen.
    fn serve<'a>(
        &'a mut self,
        message: Envelope<G::Protocol>,
    ) -> impl Future<Output = ()> + Send + 'a {
        self.serving(&message);
        match message {
            Envelope::Call(request, from) => Either::Left(Either::Left(self.call(request, from))),
            Envelope::Cast(message) => Either::Left(Either::Right(self.cast(message))),
            Envelope::Info(message) => Either::Right(Either::Left(self.info_message(message))),
            other => Either::Right(Either::Right(Box::pin(self.serve_rare(other)))),
        }
    }

    async fn call(
        &mut self,
        request: <G::Protocol as Protocol>::Calls,
        mut from: ReplySlot<<G::Protocol as Protocol>::Replies>,
    ) {
        let call = <G::Protocol as Protocol>::bind(request, &mut from);
        let stop = flow(guarded(self.server.handle_call(call, &self.me)).await);
        // Neither answered nor taken: the caller learns why the server stopped, or that
        // it got no answer (the slot dropped here).
        if let Some(reason) = &stop {
            from.exited(reason.clone());
        }
        if let Some(after) = self.after(stop) {
            after.await;
        }
    }

    async fn cast(&mut self, message: <G::Protocol as Protocol>::Cast) {
        let stop = flow(guarded(self.server.handle_cast(message, &self.me)).await);
        if let Some(after) = self.after(stop) {
            after.await;
        }
    }

    async fn info_message(&mut self, message: super::InfoOf<G>) {
        let stop = self.info(Info::Message(message)).await;
        if let Some(after) = self.after(stop) {
            after.await;
        }
    }

    /// What to do after a callback, if anything: most ask for nothing after them (one
    /// load, no future).
    fn after(
        &mut self,
        stop: Option<ExitReason>,
    ) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        if stop.is_none() && !self.me.asked_after() {
            return None;
        }
        Some(Box::pin(self.settle_or_exit(stop)))
    }

    /// [`serve`](Self::serve)'s other messages: stops, downs, idle timeouts.
    async fn serve_rare(&mut self, message: Envelope<G::Protocol>) {
        let stop = match message {
            Envelope::Stop(reason, waiter) => {
                let exited = self.begin_exit(reason).await;
                if let Some(waiter) = waiter {
                    let _ = waiter.send(exited);
                }
                return;
            }
            Envelope::Down(id, reason) => {
                if !self.me.forget_monitor(id) {
                    return;
                }
                self.info(Info::Down(ProcessExit { id, reason })).await
            }
            Envelope::Idle(generation) => {
                let current = |extras: &&mut Box<Extras<_>>| {
                    extras.idle.is_some() && extras.idle_generation == generation
                };
                let Some(extras) = self.extras.as_mut().filter(current) else {
                    return;
                };
                extras.idle = None;
                extras.idle_for = None;
                self.info(Info::Timeout).await
            }
            // Calls, casts and infos are served by `serve`, system messages by `handle`.
            // The marker arrives here only if someone forged it; ignoring it keeps the
            // server alive.
            Envelope::Call(..)
            | Envelope::Cast(_)
            | Envelope::Info(_)
            | Envelope::Exit
            | Envelope::Sys(_) => return,
        };
        self.settle_or_exit(stop).await;
    }

    /// After a callback: exits if it stopped, else does what it asked for (and exits if a
    /// continuation stopped).
    async fn settle_or_exit(&mut self, stop: Option<ExitReason>) {
        let stop = match stop {
            Some(reason) => Some(reason),
            None => self.settle().await,
        };
        if let Some(reason) = stop {
            self.begin_exit(reason).await;
        }
    }

    /// A linked or monitored process exited: `Info::Exit` or `Info::Down`.
    async fn exit_event(&mut self, id: ActorId, reason: ExitReason) {
        self.handled += 1;
        if self.tracing() {
            trace_event(self, "exit of a linked or monitored process");
        }
        self.cancel_idle();
        let exit = ProcessExit { id, reason };
        let info = if self.me.forget_monitor(exit.id) {
            Info::Down(exit)
        } else {
            Info::Exit(exit)
        };
        let stop = self.info(info).await;
        self.settle_or_exit(stop).await;
    }

    /// Answers a system message (`sys`); a resume replays what waited, in order. The idle
    /// timer stops meanwhile and starts again after (see [`Context::idle_timeout`]).
    async fn system(&mut self, request: SysRequest) {
        if let Some(counter) = self.counter() {
            counter.handled();
        }
        if let Some(extras) = &mut self.extras {
            extras.pause_idle();
        }
        match request {
            SysRequest::WithState(with) => {
                // A panicking function leaves the server running (its caller gets
                // `NoReply`), as OTP's `replace_state` leaves a crash to the caller.
                let state: &mut dyn Any = &mut self.server;
                if std::panic::catch_unwind(AssertUnwindSafe(|| with(state))).is_err() {
                    tracing::error!(server = %self.me.id(), "a sys state function panicked; the server goes on");
                }
            }
            SysRequest::GetStatus(answer) => {
                let status = Status {
                    pid: self.me.id().to_string(),
                    name: self.me.name(),
                    behaviour: std::any::type_name::<G>().to_owned(),
                    suspended: self.is_suspended(),
                    tracing: self.tracing(),
                    state: std::panic::catch_unwind(AssertUnwindSafe(|| {
                        self.server.format_status()
                    }))
                    .unwrap_or_else(|panic| format!("(format_status {})", panic_message(panic))),
                    statistics: self.statistics(),
                };
                let _ = answer.send(status);
            }
            SysRequest::Suspend(answer) => {
                self.extras().suspended.get_or_insert_with(VecDeque::new);
                let _ = answer.send(());
            }
            SysRequest::Resume(answer) => {
                let waited = self.take_suspended();
                let _ = answer.send(());
                let myself = self.me.actor().clone();
                for deferred in waited {
                    match deferred {
                        Deferred::Message(message) if self.exiting().is_some() => {
                            self.after_exit(message, &myself)
                        }
                        Deferred::Message(message) => self.serve(message).await,
                        Deferred::Exit(_, _) if self.exiting().is_some() => {}
                        Deferred::Exit(id, reason) => self.exit_event(id, reason).await,
                    }
                }
            }
            SysRequest::Count(on, answer) => {
                let id = self.me.id();
                let extras = self.extras();
                let counting = extras.counter.take();
                extras.counter = on.then(|| counting.unwrap_or_else(|| Counter::start(id)));
                let _ = answer.send(());
            }
            SysRequest::Statistics(answer) => _ = answer.send(self.statistics()),
            SysRequest::Trace(on, answer) => {
                self.extras().tracing = on;
                let _ = answer.send(());
            }
        }
        let waiting = !self.is_suspended() && self.exiting().is_none();
        let paused = self.extras.as_ref().filter(|extras| extras.idle.is_none());
        if let (true, Some(after)) = (waiting, paused.and_then(|extras| extras.idle_for)) {
            self.arm_idle(after);
        }
    }

    async fn info(&mut self, info: Info<super::InfoOf<G>>) -> Option<ExitReason> {
        flow(guarded(self.server.handle_info(info, &self.me)).await)
    }

    /// Does what the callback that just returned asked for: `handle_continue` first (it
    /// may ask for more), then the last idle timeout asked for. Returns a stop reason if a
    /// continuation decided to stop.
    async fn settle(&mut self) -> Option<ExitReason> {
        let mut idle = None;
        while let Some(after) = self.me.take_after() {
            idle = after.idle;
            let Some(work) = after.continuation else {
                break;
            };
            // As in OTP, a callback continues or times out; the continuation's own
            // return decides the timeout.
            idle = None;
            let continued = guarded(self.server.handle_continue(work, &self.me));
            if let Some(reason) = flow(continued.await) {
                return Some(reason);
            }
        }
        if let Some(after) = idle {
            self.arm_idle(after);
        }
        None
    }
}

fn flow(result: Result<Flow, ExitReason>) -> Option<ExitReason> {
    match result {
        Ok(Flow::Continue) => None,
        Ok(Flow::Stop(reason)) => Some(reason),
        Err(crash) => Some(crash),
    }
}

impl<G: GenServer> Actor for Process<G> {
    type Msg = Envelope<G::Protocol>;
    type State = Running<G>;
    type Arguments = Start<G>;

    async fn pre_start(
        &self,
        myself: ActorRef<Envelope<G::Protocol>>,
        Start(server): Start<G>,
    ) -> Result<Running<G>, ActorProcessingErr> {
        let me = Context::new(ServerRef::from_actor(myself), self.lineage.as_ref());
        let server = match server {
            Starting::Ready(server) => server,
            // The error box goes through ractor untouched so that `spawn` can recover a
            // structured `StartError` (a supervisor's child failure) from it.
            Starting::Built(build) => match AssertUnwindSafe(build(&me)).catch_unwind().await {
                Ok(result) => result?,
                Err(panic) => return Err(panic_message(panic).into()),
            },
        };
        Ok(Running {
            server,
            me,
            started: SystemTime::now(),
            handled: 0,
            extras: None,
        })
    }

    /// Before any message: what `init` asked for (`{ok, S, {continue, C}}`, or a timeout).
    async fn post_start(
        &self,
        _myself: ActorRef<Envelope<G::Protocol>>,
        run: &mut Running<G>,
    ) -> Result<(), ActorProcessingErr> {
        // Most `init`s ask for nothing after them: no box, no poll.
        if run.me.asked_after() {
            Box::pin(run.settle_or_exit(None)).await;
        }
        Ok(())
    }

    /// Not an `async fn`: what to do is chosen before the future is made, so that the
    /// future holds only that (see [`Running::serve`]).
    fn handle(
        &self,
        myself: ActorRef<Envelope<G::Protocol>>,
        message: Envelope<G::Protocol>,
        run: &mut Running<G>,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        let done: Pin<Box<dyn Future<Output = ()> + Send + '_>> = match message {
            message if run.exiting().is_some() => {
                run.after_exit(message, &myself);
                Box::pin(std::future::ready(()))
            }
            // Suspended: only system messages and an orderly stop get through; the rest
            // still counts as queued.
            message
                if run.is_suspended()
                    && !matches!(message, Envelope::Sys(_) | Envelope::Stop(..)) =>
            {
                run.defer(Deferred::Message(message));
                Box::pin(std::future::ready(()))
            }
            // Boxed, as the rare messages of `serve`.
            Envelope::Sys(request) => Box::pin(run.system(request)),
            message => return Either::Left(run.serve(message).map(Ok)),
        };
        Either::Right(done.map(Ok))
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Envelope<G::Protocol>>,
        event: SupervisionEvent,
        run: &mut Running<G>,
    ) -> Result<(), ActorProcessingErr> {
        let (Some(reason), Some(id)) = (ExitReason::from_event(&event), event.actor_id()) else {
            return Ok(());
        };
        // ractor hands over the dead actor's final state inside the event, even after a
        // kill. Free it before handling the exit: a restart must not find its predecessor's
        // resources (a listening socket, say) still held, as in OTP a dead process holds
        // nothing.
        drop(event);
        if run.exiting().is_some() {
            return Ok(());
        }
        if run.is_suspended() {
            run.defer(Deferred::Exit(id, reason));
        } else {
            // Boxed, as `step`'s rare paths: see there.
            Box::pin(run.exit_event(id, reason)).await;
        }
        Ok(())
    }

    /// Reached only when something stopped the actor through ractor directly (not through
    /// this crate): give `terminate` its orderly run anyway.
    async fn post_stop(
        &self,
        _myself: ActorRef<Envelope<G::Protocol>>,
        run: &mut Running<G>,
    ) -> Result<(), ActorProcessingErr> {
        if run.exiting().is_none() {
            let reason = ExitReason::Shutdown;
            let _ = AssertUnwindSafe(run.server.terminate(&reason, &run.me))
                .catch_unwind()
                .await;
        }
        Ok(())
    }
}
