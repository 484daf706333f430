//! Where a call's answer goes (OTP's `From`): [`ReplySlot`], the framework's untyped end,
//! and [`ReplyTo`], a caller taken out of `handle_call` to answer later, typed by its
//! request.

use std::marker::PhantomData;

use tokio::sync::oneshot;

use super::Request;
use crate::ExitReason;

/// What travels back to a caller: the answer, or why the server exited instead.
pub(crate) type Answer<T> = Result<T, ExitReason>;

/// Where one call's answer goes, whatever the request: a local caller's channel, or a
/// function that forwards it (the distribution layer's encoder of a remote caller's
/// answer). `T` is the protocol's [`Replies`](super::Protocol::Replies). Empty once
/// answered or taken, so that a second answer cannot be sent by mistake.
#[doc(hidden)]
pub struct ReplySlot<T> {
    sink: Option<Sink<T>>,
}

enum Sink<T> {
    Local(oneshot::Sender<Answer<T>>),
    /// Gets `None` if the slot is dropped unanswered: the wire does not carry a dropped
    /// reply port, so the remote caller must be told (it gets `NoReply`, as a local
    /// caller would).
    #[cfg_attr(not(feature = "distribution"), allow(dead_code))]
    Forward(Box<dyn FnOnce(Option<Answer<T>>) -> bool + Send>),
}

impl<T> ReplySlot<T> {
    pub(crate) fn new(sender: oneshot::Sender<Answer<T>>) -> Self {
        Self {
            sink: Some(Sink::Local(sender)),
        }
    }

    /// A slot whose answer goes to `send` instead of a waiting task; `send` returns
    /// whether the answer got through.
    #[cfg(feature = "distribution")]
    pub(crate) fn forward(send: impl FnOnce(Option<Answer<T>>) -> bool + Send + 'static) -> Self {
        Self {
            sink: Some(Sink::Forward(Box::new(send))),
        }
    }

    /// Moves the caller out, leaving this slot empty.
    pub(crate) fn take(&mut self) -> Self {
        Self {
            sink: self.sink.take(),
        }
    }

    /// True while a caller still waits (for a caller on another node: until answered,
    /// since its timeout is not known here).
    pub(crate) fn is_waiting(&self) -> bool {
        match &self.sink {
            Some(Sink::Local(sender)) => !sender.is_closed(),
            Some(Sink::Forward(_)) => true,
            None => false,
        }
    }

    /// Tells the caller the server exited before answering (nothing if it was answered).
    pub(crate) fn exited(mut self, reason: ExitReason) {
        self.answer(Err(reason));
    }

    /// Sends the answer; false if nobody waits for it any more.
    pub(crate) fn answer(&mut self, answer: Answer<T>) -> bool {
        match self.sink.take() {
            Some(Sink::Local(sender)) => sender.send(answer).is_ok(),
            Some(Sink::Forward(send)) => send(Some(answer)),
            None => false,
        }
    }
}

impl<T> Drop for ReplySlot<T> {
    fn drop(&mut self) {
        if let Some(Sink::Forward(send)) = self.sink.take() {
            send(None);
        }
    }
}

/// A caller taken out of `handle_call` with [`Caller::take`](super::Caller::take), to
/// answer later with [`reply`](ReplyTo::reply), from this server or any other process
/// (OTP's deferred `gen_server:reply/2`). Typed by the request: it takes only that
/// request's answer.
///
/// Dropping it unanswered tells the caller at once
/// ([`CallError::NoReply`](crate::CallError::NoReply)) instead of leaving it to its
/// timeout. An answer that comes after the caller's timeout is dropped, as since OTP 24.
pub struct ReplyTo<R: Request> {
    slot: ReplySlot<R::Replies>,
    request: PhantomData<fn() -> R>,
}

impl<R: Request> ReplyTo<R> {
    pub(crate) fn new(slot: ReplySlot<R::Replies>) -> Self {
        Self {
            slot,
            request: PhantomData,
        }
    }

    /// Answers the caller. Returns false if nobody waits any more: the caller timed out
    /// or was itself stopped.
    pub fn reply(mut self, answer: R::Reply) -> bool {
        self.slot.answer(Ok(R::wrap(answer)))
    }

    /// True while the caller still waits (for a caller on another node: until answered,
    /// since its timeout is not known here).
    pub fn is_waiting(&self) -> bool {
        self.slot.is_waiting()
    }
}

impl<R: Request> std::fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ReplyTo")
            .field(&std::any::type_name::<R>())
            .field(&self.is_waiting())
            .finish()
    }
}
