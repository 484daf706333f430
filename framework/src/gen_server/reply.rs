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
pub struct ReplyTo<R> {
    /// `None` once taken or answered, so a second answer cannot be sent by mistake.
    sender: Option<Sink<R>>,
}

/// Where the answer goes: a local caller's channel, or a function that forwards it (the
/// distribution layer's encoder of a remote caller's reply).
enum Sink<R> {
    Local(oneshot::Sender<Answer<R>>),
    /// `None` means dropped unanswered: the wire does not carry a dropped reply port, so
    /// the remote caller must be told (it gets `NoReply`, as a local caller would).
    Forward(Box<dyn FnOnce(Option<Answer<R>>) -> bool + Send>),
}

impl<R> std::fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.sender {
            None => "answered",
            Some(Sink::Local(_)) => "local",
            Some(Sink::Forward(_)) => "forwarded",
        };
        f.debug_tuple("ReplyTo").field(&kind).finish()
    }
}

impl<R> ReplyTo<R> {
    pub(crate) fn new(sender: oneshot::Sender<Answer<R>>) -> Self {
        Self {
            sender: Some(Sink::Local(sender)),
        }
    }

    /// A handle whose answer goes to `send` instead of a waiting task: `Some(Ok(reply))`,
    /// `Some(Err(reason))` if the server exited first, `None` if the handle was dropped
    /// unanswered. `send` returns whether the answer got through. For bridges to other
    /// transports: the distribution layer answers remote callers with it.
    pub fn forward(
        send: impl FnOnce(Option<Result<R, ExitReason>>) -> bool + Send + 'static,
    ) -> Self {
        Self {
            sender: Some(Sink::Forward(Box::new(send))),
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

    /// True while a caller still waits on this handle (for a caller on another node: until
    /// answered, since its timeout is not known here).
    pub fn is_waiting(&self) -> bool {
        match &self.sender {
            Some(Sink::Local(sender)) => !sender.is_closed(),
            Some(Sink::Forward(_)) => true,
            None => false,
        }
    }

    /// Tells the caller the server exited before answering.
    pub(crate) fn exited(mut self, reason: ExitReason) {
        self.answer(Err(reason));
    }

    fn answer(&mut self, answer: Answer<R>) -> bool {
        match self.sender.take() {
            Some(Sink::Local(sender)) => sender.send(answer).is_ok(),
            Some(Sink::Forward(send)) => send(Some(answer)),
            None => false,
        }
    }
}

impl<R> Drop for ReplyTo<R> {
    fn drop(&mut self) {
        if let Some(Sink::Forward(send)) = self.sender.take() {
            send(None);
        }
    }
}
