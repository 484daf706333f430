//! Handles to a running server: by reference ([`ServerRef`]) or by name ([`Named`]).

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use ractor::{ActorCell, ActorId, ActorRef};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Envelope, GenServer, ReplyTo};
use crate::{CallError, ExitReason};

/// OTP's default call timeout.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call waits for its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// Fail with [`CallError::Timeout`] after this long.
    After(Duration),
    /// Wait as long as the server lives (OTP's `infinity`). Cheaper: no timer is armed.
    Infinity,
}

impl From<Duration> for Timeout {
    fn from(after: Duration) -> Self {
        Self::After(after)
    }
}

/// A typed handle to one server process (OTP's pid, typed). Cheap to clone.
///
/// It keeps pointing at the same process: after a restart, use the name ([`Named`]) to reach
/// the new one.
pub struct ServerRef<G: GenServer> {
    actor: ActorRef<Envelope<G>>,
}

impl<G: GenServer> ServerRef<G> {
    pub(crate) fn from_actor(actor: ActorRef<Envelope<G>>) -> Self {
        Self { actor }
    }

    pub(crate) fn actor(&self) -> &ActorRef<Envelope<G>> {
        &self.actor
    }

    /// The registered server of type `G` under `name`, if any (`whereis/1`). A process of
    /// another type under that name is not returned.
    pub fn whereis(name: &str) -> Option<Self> {
        Self::from_cell(ractor::registry::where_is(name)?)
    }

    /// Types an untyped cell, if it runs a `G`.
    pub fn from_cell(cell: ActorCell) -> Option<Self> {
        (cell.is_message_type_of::<Envelope<G>>() == Some(true))
            .then(|| Self { actor: cell.into() })
    }

    /// Calls with the default 5 s timeout (`gen_server:call/2`).
    pub async fn call(&self, request: G::Call) -> Result<G::Reply, CallError> {
        self.call_timeout(request, DEFAULT_CALL_TIMEOUT).await
    }

    /// Calls and waits at most `timeout` (a `Duration`, or [`Timeout::Infinity`]) for the
    /// reply (`gen_server:call/3`). The server still handles a request that timed out; its
    /// late reply is dropped.
    pub async fn call_timeout(
        &self,
        request: G::Call,
        timeout: impl Into<Timeout>,
    ) -> Result<G::Reply, CallError> {
        let (sender, reply) = oneshot::channel();
        self.actor
            .send_message(Envelope::Call(request, ReplyTo::new(sender)))
            .map_err(|_| CallError::NoProc)?;
        let answer = match timeout.into() {
            Timeout::Infinity => reply.await,
            Timeout::After(after) => tokio::time::timeout(after, reply)
                .await
                .map_err(|_| CallError::Timeout(after))?,
        };
        match answer {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(reason)) => Err(CallError::Exited(reason)),
            Err(_) => Err(CallError::NoReply),
        }
    }

    /// Sends a cast (`gen_server:cast/2`). Never blocks and never fails: a cast to a server
    /// that is gone is dropped, as in OTP.
    pub fn cast(&self, message: G::Cast) {
        let _ = self.actor.send_message(Envelope::Cast(message));
    }

    /// Sends an info message, delivered to `handle_info` as [`Info::Message`](crate::Info)
    /// (`Pid ! Msg`). Dropped if the server is gone.
    pub fn send_info(&self, message: G::Info) {
        let _ = self.actor.send_message(Envelope::Info(message));
    }

    /// Delivers a node event; false once the server is gone.
    pub(crate) fn notify_node(&self, event: crate::node::NodeEvent) -> bool {
        self.actor.send_message(Envelope::Node(event)).is_ok()
    }

    /// Delivers `message` to `handle_info` after `delay` (`erlang:send_after/3`).
    pub fn send_after(&self, delay: Duration, message: G::Info) -> Timer {
        let target = self.clone();
        Timer(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            target.send_info(message);
        }))
    }

    /// Delivers a fresh `make()` to `handle_info` every `period` until the timer is
    /// cancelled or the server is gone (`timer:send_interval/3`).
    pub fn send_interval(
        &self,
        period: Duration,
        make: impl Fn() -> G::Info + Send + 'static,
    ) -> Timer {
        let target = self.clone();
        Timer(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            while target.is_alive() {
                ticks.tick().await;
                target.send_info(make());
            }
        }))
    }

    /// Stops the server in order with `reason` and waits until it has exited
    /// (`gen_server:stop/2`): queued messages before the stop are served first, `terminate`
    /// runs. Fails with [`CallError::NoProc`] if it was not running.
    pub async fn stop(&self, reason: ExitReason) -> Result<(), CallError> {
        self.actor
            .send_message(Envelope::Stop(reason))
            .map_err(|_| CallError::NoProc)?;
        let _ = self.actor.wait(None).await;
        Ok(())
    }

    /// Kills the server at once (`exit(Pid, kill)`): `terminate` does not run.
    pub fn kill(&self) {
        self.actor.kill();
    }

    /// Waits until the server has exited.
    pub async fn wait_exit(&self) {
        let _ = self.actor.wait(None).await;
    }

    /// True until the server has begun to exit.
    pub fn is_alive(&self) -> bool {
        self.actor.get_status() < ractor::ActorStatus::Stopping
    }

    /// The process id.
    pub fn id(&self) -> ActorId {
        self.actor.get_id()
    }

    /// The registered name, if any.
    pub fn name(&self) -> Option<String> {
        self.actor.get_name()
    }

    /// The untyped ractor cell (to monitor, link, or hand to ractor APIs).
    pub fn cell(&self) -> ActorCell {
        self.actor.get_cell()
    }
}

impl<G: GenServer> Clone for ServerRef<G> {
    fn clone(&self) -> Self {
        Self {
            actor: self.actor.clone(),
        }
    }
}

impl<G: GenServer> fmt::Debug for ServerRef<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerRef")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish()
    }
}

impl<G: GenServer> From<ServerRef<G>> for ActorCell {
    fn from(server: ServerRef<G>) -> ActorCell {
        server.cell()
    }
}

impl<G: GenServer> From<&ServerRef<G>> for ActorCell {
    fn from(server: &ServerRef<G>) -> ActorCell {
        server.cell()
    }
}

/// A server reached by its registered name, looked up on every use (`gen_server:call(Name,
/// ..)`): after a supervisor restarts it, the next call reaches the new process.
pub struct Named<G: GenServer> {
    name: String,
    server: PhantomData<fn() -> G>,
}

impl<G: GenServer> Named<G> {
    /// A handle to whatever server of type `G` is registered as `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            server: PhantomData,
        }
    }

    /// The current process under the name, or [`CallError::NoProc`].
    pub fn resolve(&self) -> Result<ServerRef<G>, CallError> {
        ServerRef::whereis(&self.name).ok_or(CallError::NoProc)
    }

    /// Calls the current process under the name with the default timeout.
    pub async fn call(&self, request: G::Call) -> Result<G::Reply, CallError> {
        self.resolve()?.call(request).await
    }

    /// Calls the current process under the name, waiting at most `timeout`.
    pub async fn call_timeout(
        &self,
        request: G::Call,
        timeout: impl Into<Timeout>,
    ) -> Result<G::Reply, CallError> {
        self.resolve()?.call_timeout(request, timeout).await
    }

    /// Casts to the current process under the name; dropped if none.
    pub fn cast(&self, message: G::Cast) {
        if let Ok(server) = self.resolve() {
            server.cast(message);
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<G: GenServer> Clone for Named<G> {
    fn clone(&self) -> Self {
        Self::new(self.name.clone())
    }
}

impl<G: GenServer> fmt::Debug for Named<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Named").field(&self.name).finish()
    }
}

/// A pending timer from [`ServerRef::send_after`] or [`ServerRef::send_interval`].
/// Dropping it leaves the timer running; [`Timer::cancel`] stops it.
#[derive(Debug)]
pub struct Timer(JoinHandle<()>);

impl Timer {
    /// Cancels the timer (`erlang:cancel_timer/1`); a message already sent stays sent.
    pub fn cancel(self) {
        self.0.abort();
    }
}
