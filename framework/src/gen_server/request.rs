//! Calls in flight (OTP's `gen_server:send_request/2` and request-id collections): one task
//! sends many requests, to one server or several, and collects the answers later, in the
//! order they come.
//!
//! ```
//! # use otp::{Context, GenServer};
//! # use otp::gen_server::{Collected, RequestIds};
//! # use std::time::Duration;
//! otp::protocol! { pub Doubler; calls DoublerCall { Double(u64) -> u64 } }
//! # struct DoublerServer;
//! # impl GenServer for DoublerServer {
//! #     type Protocol = Doubler;
//! #     async fn handle_call(&mut self, call: DoublerCall<'_>, _: &Context<Self>) -> otp::Result {
//! #         let DoublerCall::Double(Double(n), caller) = call;
//! #         Ok(caller.reply(2 * n))
//! #     }
//! # }
//! # #[tokio::main] async fn main() {
//! let server = DoublerServer.start().await.unwrap();
//! let mut pending = RequestIds::new();
//! for n in 1..=3 {
//!     pending.add(server.send_request(Double(n)), n);
//! }
//! let mut sum = 0;
//! while let Collected::Answered(_label, answer) = pending.wait_response(Duration::from_secs(5)).await {
//!     sum += answer.unwrap();
//! }
//! assert_eq!(sum, 12);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use tokio::sync::oneshot;

use super::reply::Answer;
use super::server_ref::unpack;
use super::Request;
use crate::{CallError, ExitReason};

/// One call of request type `R` in flight, from
/// [`ServerRef::send_request`](super::ServerRef::send_request). Dropping it abandons the
/// request: a late answer is dropped.
pub struct RequestId<R: Request> {
    /// `None` once the answer was collected: asking again answers
    /// [`CallError::NoReply`].
    reply: Option<oneshot::Receiver<Answer<R::Replies>>>,
}

impl<R: Request> std::fmt::Debug for RequestId<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestId")
            .field("request", &std::any::type_name::<R>())
            .field("collected", &self.reply.is_none())
            .finish()
    }
}

impl<R: Request> RequestId<R> {
    pub(crate) fn new(reply: oneshot::Receiver<Answer<R::Replies>>) -> Self {
        Self { reply: Some(reply) }
    }

    /// Waits at most `timeout` for the answer (`wait_response/2`). On
    /// [`CallError::Timeout`] the request stays in flight: wait again, or drop it.
    pub async fn wait_response(&mut self, timeout: Duration) -> Result<R::Reply, CallError> {
        let Some(reply) = self.reply.as_mut() else {
            return Err(CallError::NoReply);
        };
        let delivered = tokio::time::timeout(timeout, reply)
            .await
            .map_err(|_| CallError::Timeout(timeout))?;
        self.reply = None;
        outcome::<R>(delivered)
    }

    /// Waits at most `timeout` for the answer, then abandons the request
    /// (`receive_response/2`): an answer that comes later is dropped.
    pub async fn receive_response(mut self, timeout: Duration) -> Result<R::Reply, CallError> {
        self.wait_response(timeout).await
    }

    /// The answer if it has come, without waiting (`check_response/2`); `None` if not yet.
    pub fn check_response(&mut self) -> Option<Result<R::Reply, CallError>> {
        let Some(reply) = self.reply.as_mut() else {
            return Some(Err(CallError::NoReply));
        };
        let answer = match reply.try_recv() {
            Err(oneshot::error::TryRecvError::Empty) => return None,
            Ok(answer) => outcome::<R>(Ok(answer)),
            Err(oneshot::error::TryRecvError::Closed) => Err(CallError::NoReply),
        };
        self.reply = None;
        Some(answer)
    }
}

/// What a call's channel delivered, as the caller sees it.
fn outcome<R: Request>(
    delivered: Result<Answer<R::Replies>, oneshot::error::RecvError>,
) -> Result<R::Reply, CallError> {
    match delivered {
        Ok(Ok(replies)) => unpack::<R>(replies),
        // The request never reached a server (see `ServerRef::send_request`).
        Ok(Err(ExitReason::NoProc)) => Err(CallError::NoProc),
        Ok(Err(reason)) => Err(CallError::Exited(reason)),
        Err(_) => Err(CallError::NoReply),
    }
}

/// What collecting from [`RequestIds`] gave.
#[derive(Debug)]
pub enum Collected<L, R> {
    /// A request was answered or failed: its label and outcome. It has left the collection.
    Answered(L, Result<R, CallError>),
    /// The collection holds no request (OTP's `no_request`).
    Empty,
    /// Nothing was answered within the wait (`timeout`), or yet (`no_reply`).
    Pending,
}

/// Many calls of request type `R` in flight, each with a label (OTP's request-id
/// collection: `reqids_new`, `reqids_add`, `reqids_size`, and the collection forms of
/// `wait_response`, `receive_response`, `check_response`).
pub struct RequestIds<R: Request, L> {
    pending: FuturesUnordered<Labeled<R, L>>,
}

/// A request and its label, answering both.
struct Labeled<R: Request, L> {
    label: Option<L>,
    reply: oneshot::Receiver<Answer<R::Replies>>,
}

impl<R: Request, L: Unpin> Future for Labeled<R, L> {
    type Output = (L, Result<R::Reply, CallError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let delivered = std::task::ready!(self.reply.poll_unpin(cx));
        let label = self.label.take().expect("a labeled request completes once");
        Poll::Ready((label, outcome::<R>(delivered)))
    }
}

impl<R: Request, L: Unpin> Default for RequestIds<R, L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Request, L: Unpin> RequestIds<R, L> {
    /// An empty collection (`reqids_new/0`).
    pub fn new() -> Self {
        Self {
            pending: FuturesUnordered::new(),
        }
    }

    /// Adds a request under `label` (`reqids_add/3`).
    /// A request whose answer was already collected is not added.
    pub fn add(&mut self, id: RequestId<R>, label: L) {
        if let Some(reply) = id.reply {
            self.pending.push(Labeled {
                label: Some(label),
                reply,
            });
        }
    }

    /// Requests still in the collection (`reqids_size/1`).
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True if no request is left.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The next answer to come, waiting at most `timeout` (`wait_response/3`); the others
    /// stay in flight, on a timeout too.
    pub async fn wait_response(&mut self, timeout: Duration) -> Collected<L, R::Reply> {
        if self.pending.is_empty() {
            return Collected::Empty;
        }
        match tokio::time::timeout(timeout, self.pending.next()).await {
            Ok(Some((label, outcome))) => Collected::Answered(label, outcome),
            Ok(None) => Collected::Empty,
            Err(_) => Collected::Pending,
        }
    }

    /// As [`wait_response`](Self::wait_response), but a timeout abandons every request
    /// left (`receive_response/3`): their answers are dropped when they come.
    pub async fn receive_response(&mut self, timeout: Duration) -> Collected<L, R::Reply> {
        let collected = self.wait_response(timeout).await;
        if let Collected::Pending = collected {
            self.pending.clear();
        }
        collected
    }

    /// An answer that has already come, without waiting (`check_response/3`).
    pub fn check_response(&mut self) -> Collected<L, R::Reply> {
        match self.pending.next().now_or_never() {
            Some(Some((label, outcome))) => Collected::Answered(label, outcome),
            Some(None) => Collected::Empty,
            None => Collected::Pending,
        }
    }
}

impl<R: Request, L> std::fmt::Debug for RequestIds<R, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestIds")
            .field("pending", &self.pending.len())
            .finish()
    }
}
