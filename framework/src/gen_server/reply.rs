//! The caller's half of a call (OTP's `From`).

use tokio::sync::oneshot;

use crate::ExitReason;

/// What travels back to a caller: the reply, or why the server exited instead.
pub(crate) type Answer<R> = Result<R, ExitReason>;

/// Where a call's answer goes. `handle_call` gets it as `&mut`: return
/// [`CallResponse::Reply`](crate::CallResponse::Reply) to answer now, or
/// [`take`](ReplyTo::take) it, keep it anywhere (another process included) and
/// [`reply`](ReplyTo::reply) later (OTP's deferred `gen_server:reply/2`).
///
/// A reply that arrives after the caller's timeout is dropped, as since OTP 24.
#[derive(Debug)]
pub struct ReplyTo<R> {
    /// `None` once taken or answered, so a second answer cannot be sent by mistake.
    sender: Option<oneshot::Sender<Answer<R>>>,
}

impl<R> ReplyTo<R> {
    pub(crate) fn new(sender: oneshot::Sender<Answer<R>>) -> Self {
        Self {
            sender: Some(sender),
        }
    }

    /// Moves the caller's handle out, leaving an empty one behind, so the server can answer
    /// after `handle_call` has returned [`CallResponse::NoReply`](crate::CallResponse::NoReply).
    pub fn take(&mut self) -> ReplyTo<R> {
        ReplyTo {
            sender: self.sender.take(),
        }
    }

    /// Answers the caller. Returns false if nobody is waiting any more: the caller timed out
    /// or was itself stopped, or this handle was already answered or taken.
    pub fn reply(mut self, value: R) -> bool {
        self.answer(Ok(value))
    }

    /// True while a caller still waits on this handle.
    pub fn is_waiting(&self) -> bool {
        self.sender.as_ref().is_some_and(|s| !s.is_closed())
    }

    /// Tells the caller the server exited before answering.
    pub(crate) fn exited(mut self, reason: ExitReason) {
        self.answer(Err(reason));
    }

    fn answer(&mut self, answer: Answer<R>) -> bool {
        self.sender.take().is_some_and(|s| s.send(answer).is_ok())
    }
}
