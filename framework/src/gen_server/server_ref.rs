//! Handles to a running server: by reference ([`ServerRef`]) or by name ([`Named`]).

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use ractor::{ActorCell, ActorId, ActorRef};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::reply::{Answer, ReplySlot};
use super::{Envelope, Protocol, Request, RequestId, RequestOf};
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

/// A handle to one server process (OTP's pid), typed by the [`Protocol`] it serves, not by
/// the server's code. Cheap to clone.
///
/// It keeps pointing at the same process: after a restart, use the name ([`Named`]) to reach
/// the new one.
pub struct ServerRef<P: Protocol> {
    actor: ActorRef<Envelope<P>>,
}

impl<P: Protocol> ServerRef<P> {
    pub(crate) fn from_actor(actor: ActorRef<Envelope<P>>) -> Self {
        Self { actor }
    }

    pub(crate) fn actor(&self) -> &ActorRef<Envelope<P>> {
        &self.actor
    }

    /// The registered server serving `P` under `name`, if any (`whereis/1`). A process
    /// serving another protocol under that name is not returned.
    pub fn whereis(name: &str) -> Option<Self> {
        Self::from_cell(ractor::registry::where_is(name)?)
    }

    /// Types an untyped cell, if it runs a server of protocol `P`.
    pub fn from_cell(cell: ActorCell) -> Option<Self> {
        (cell.is_message_type_of::<Envelope<P>>() == Some(true))
            .then(|| Self { actor: cell.into() })
    }

    /// Calls with the default 5 s timeout (`gen_server:call/2`): the answer's type is the
    /// request's (`server.call(Get(key))` answers what `Get` is declared to answer).
    pub async fn call<R: RequestOf<P>>(&self, request: R) -> Result<R::Reply, CallError> {
        self.call_timeout(request, DEFAULT_CALL_TIMEOUT).await
    }

    /// Calls and waits at most `timeout` (a `Duration`, or [`Timeout::Infinity`]) for the
    /// answer (`gen_server:call/3`). The server still handles a request that timed out;
    /// its late answer is dropped.
    pub async fn call_timeout<R: RequestOf<P>>(
        &self,
        request: R,
        timeout: impl Into<Timeout>,
    ) -> Result<R::Reply, CallError> {
        let (sender, answer) = oneshot::channel();
        self.send_call(request.into_calls(), ReplySlot::new(sender))
            .map_err(|_| CallError::NoProc)?;
        unpack::<R>(wait(answer, timeout.into()).await?)
    }

    /// Sends a call without waiting for its answer (`gen_server:send_request/2`): collect
    /// it from the [`RequestId`], alone or among others in a
    /// [`RequestIds`](super::RequestIds). A server that is not running answers
    /// [`CallError::NoProc`] there.
    pub fn send_request<R: RequestOf<P>>(&self, request: R) -> RequestId<R> {
        let (sender, answer) = oneshot::channel();
        if let Err(Some(slot)) = self.send_call(request.into_calls(), ReplySlot::new(sender)) {
            slot.exited(ExitReason::NoProc);
        }
        RequestId::new(answer)
    }

    /// Queues a call with its reply slot; if the server is gone, gives the slot back when
    /// ractor returns it (a slot dropped unanswered tells its caller so anyway).
    pub(crate) fn send_call(
        &self,
        request: P::Calls,
        from: ReplySlot<P::Replies>,
    ) -> Result<(), Option<ReplySlot<P::Replies>>> {
        match self.post(Envelope::Call(request, from)) {
            Ok(()) => Ok(()),
            Err(ractor::MessagingErr::SendErr(Envelope::Call(_, from))) => Err(Some(from)),
            Err(_) => Err(None),
        }
    }

    /// Puts a message in the server's mailbox (counted for `sys` statistics if it counts).
    pub(crate) fn post(
        &self,
        message: Envelope<P>,
    ) -> Result<(), ractor::MessagingErr<Envelope<P>>> {
        super::mailbox::sent(self.actor.get_id());
        self.actor.send_message(message)
    }

    /// Sends a cast (`gen_server:cast/2`): one of the protocol's cast structs, or its cast
    /// enum. Never blocks and never fails: a cast to a server that is gone is dropped, as
    /// in OTP.
    pub fn cast(&self, message: impl Into<P::Cast>) {
        let _ = self.post(Envelope::Cast(message.into()));
    }

    /// Sends one of the server's own info messages (`Pid ! Msg`), delivered to
    /// `handle_info` as [`Info::Message`](crate::Info). Dropped if the server is gone.
    pub fn send_info(&self, message: P::Info) {
        let _ = self.post(Envelope::Info(message));
    }

    /// Reports what a monitor set up with
    /// [`Context::monitor_with`](crate::Context::monitor_with) saw; false once the server
    /// is gone.
    pub(crate) fn send_down(&self, id: ActorId, reason: ExitReason) -> bool {
        self.post(Envelope::Down(id, reason)).is_ok()
    }

    /// Delivers `message` to `handle_info` after `delay` (`erlang:send_after/3`).
    pub fn send_after(&self, delay: Duration, message: P::Info) -> Timer {
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
        make: impl Fn() -> P::Info + Send + 'static,
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
    /// runs. Fails with [`CallError::NoProc`] if it was not running, and with
    /// [`CallError::Exited`] if it exited with another reason (its `terminate` crashed).
    pub async fn stop(&self, reason: ExitReason) -> Result<(), CallError> {
        self.stop_timeout(reason, Timeout::Infinity).await
    }

    /// As [`stop`](Self::stop), waiting at most `timeout` (`gen_server:stop/3`): then
    /// [`CallError::Timeout`], and the server goes on stopping (the stop is queued).
    pub async fn stop_timeout(
        &self,
        reason: ExitReason,
        timeout: impl Into<Timeout>,
    ) -> Result<(), CallError> {
        match timeout.into() {
            Timeout::Infinity => self.stop_and_wait(reason).await,
            Timeout::After(limit) => tokio::time::timeout(limit, self.stop_and_wait(reason))
                .await
                .map_err(|_| CallError::Timeout(limit))?,
        }
    }

    async fn stop_and_wait(&self, reason: ExitReason) -> Result<(), CallError> {
        let (waiter, exited) = oneshot::channel();
        self.post(Envelope::Stop(reason.clone(), Some(waiter)))
            .map_err(|_| CallError::NoProc)?;
        let exited = exited.await;
        let _ = self.actor.wait(None).await;
        match exited {
            // Another reason than asked: its `terminate` crashed (OTP's `gen_server:stop`
            // exits with that reason).
            Ok(other) if other != reason => Err(CallError::Exited(other)),
            _ => Ok(()),
        }
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

impl<P: Protocol> Clone for ServerRef<P> {
    fn clone(&self) -> Self {
        Self {
            actor: self.actor.clone(),
        }
    }
}

impl<P: Protocol> fmt::Debug for ServerRef<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerRef")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish()
    }
}

impl<P: Protocol> From<ServerRef<P>> for ActorCell {
    fn from(server: ServerRef<P>) -> ActorCell {
        server.cell()
    }
}

impl<P: Protocol> From<&ServerRef<P>> for ActorCell {
    fn from(server: &ServerRef<P>) -> ActorCell {
        server.cell()
    }
}

/// A server reached by its registered name, looked up on every use (`gen_server:call(Name,
/// ..)`): after a supervisor restarts it, the next call reaches the new process.
pub struct Named<P: Protocol> {
    name: String,
    protocol: PhantomData<fn() -> P>,
}

impl<P: Protocol> Named<P> {
    /// A handle to whatever server of protocol `P` is registered as `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            protocol: PhantomData,
        }
    }

    /// The current process under the name, or [`CallError::NoProc`].
    pub fn resolve(&self) -> Result<ServerRef<P>, CallError> {
        ServerRef::whereis(&self.name).ok_or(CallError::NoProc)
    }

    /// Calls the current process under the name with the default timeout.
    pub async fn call<R: RequestOf<P>>(&self, request: R) -> Result<R::Reply, CallError> {
        self.resolve()?.call(request).await
    }

    /// Calls the current process under the name, waiting at most `timeout`.
    pub async fn call_timeout<R: RequestOf<P>>(
        &self,
        request: R,
        timeout: impl Into<Timeout>,
    ) -> Result<R::Reply, CallError> {
        self.resolve()?.call_timeout(request, timeout).await
    }

    /// Casts to the current process under the name; dropped if none.
    pub fn cast(&self, message: impl Into<P::Cast>) {
        if let Ok(server) = self.resolve() {
            server.cast(message);
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<P: Protocol> Clone for Named<P> {
    fn clone(&self) -> Self {
        Self::new(self.name.clone())
    }
}

impl<P: Protocol> fmt::Debug for Named<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Named").field(&self.name).finish()
    }
}

/// Waits for a call's answer, whatever the request.
pub(crate) async fn wait<T>(
    answer: oneshot::Receiver<Answer<T>>,
    timeout: Timeout,
) -> Result<T, CallError> {
    let answer = match timeout {
        Timeout::Infinity => answer.await,
        Timeout::After(after) => tokio::time::timeout(after, answer)
            .await
            .map_err(|_| CallError::Timeout(after))?,
    };
    match answer {
        Ok(Ok(replies)) => Ok(replies),
        Ok(Err(ExitReason::NoProc)) => Err(CallError::NoProc),
        Ok(Err(reason)) => Err(CallError::Exited(reason)),
        Err(_) => Err(CallError::NoReply),
    }
}

/// The answer of request `R` out of its protocol's answers.
pub(crate) fn unpack<R: Request>(replies: R::Replies) -> Result<R::Reply, CallError> {
    R::unwrap(replies).ok_or_else(|| {
        CallError::BadRequest(format!(
            "answered with another request's reply (expected the answer to {})",
            std::any::type_name::<R>()
        ))
    })
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
