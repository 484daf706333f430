//! OTP's `sys` for every GenServer and supervisor: look at a running server and steer it
//! without its code's help. Each request is a system message the server's process answers
//! itself, between two of its messages, and also while suspended.
//!
//! ```
//! # use otp::{Context, Flow, GenServer};
//! # otp::protocol! { pub Counter; casts CounterCast { Add(u64) } }
//! #[derive(Clone, Debug, PartialEq)]
//! struct CounterServer(u64);
//! # impl GenServer for CounterServer {
//! #     type Protocol = Counter;
//! #     async fn handle_cast(&mut self, cast: CounterCast, _: &Context<Self>) -> otp::Result {
//! #         let CounterCast::Add(Add(n)) = cast;
//! #         self.0 += n;
//! #         Ok(Flow::Continue)
//! #     }
//! #     fn format_status(&self) -> String { format!("count {}", self.0) }
//! # }
//! use otp::sys;
//! # #[tokio::main] async fn main() {
//! let counter = CounterServer(0).start().await.unwrap();
//! counter.cast(Add(2));
//! assert_eq!(sys::get_state::<CounterServer>(&counter).await.unwrap(), CounterServer(2));
//! sys::replace_state::<CounterServer>(&counter, |counter| counter.0 = 40).await.unwrap();
//! let status = sys::get_status(&counter).await.unwrap();
//! assert_eq!(status.state, "count 40");
//! # }
//! ```

use std::any::Any;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{Envelope, GenServer, Protocol, ServerRef};
use crate::CallError;

/// How long a `sys` request waits for its answer, as OTP's default.
pub const SYS_TIMEOUT: Duration = Duration::from_secs(5);

/// What `sys::get_status` answers (OTP's `{status, Pid, {module, Mod}, [.., SysState, ..,
/// Misc]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The process id.
    pub pid: String,
    /// Its registered name, if any.
    pub name: Option<String>,
    /// The type that implements the behaviour (OTP's module).
    pub behaviour: String,
    /// Suspended by [`suspend`]: it answers only system messages.
    pub suspended: bool,
    /// [`trace`] is on.
    pub tracing: bool,
    /// Its state as its `format_status` shows it (secrets left out).
    pub state: String,
    /// Counts since it started.
    pub statistics: Statistics,
}

/// What `sys::statistics` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    /// When the process started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// Messages it has handled: calls, casts, infos, exits, timeouts (not system
    /// messages).
    pub handled: u64,
    /// Messages waiting in its mailbox now; `None` unless counting is on
    /// ([`statistics`]`(server, true)`); messages queued before that are not counted.
    pub queued: Option<usize>,
}

/// Why a `sys` request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SysError {
    /// The server could not be asked or did not answer.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The server is not of the type asked for.
    #[error("the server is not a {expected}: ask with the server's own type")]
    WrongType {
        /// The state type that was asked for.
        expected: &'static str,
    },
    /// From another node: the server's owner did not allow `sys` when exporting it.
    #[error("sys from other nodes is not allowed for this server: its owner exports it with ExportOptions {{ sys: true }} to allow it")]
    NotAllowed,
    /// From another node: the server's node could not get an answer from it.
    #[error("the server's node answered: {0}")]
    Remote(String),
}

/// What `get_state` and `replace_state` run on the state.
pub(crate) type StateVisit = Box<dyn FnOnce(&mut dyn Any) + Send>;

/// A system message: answered by the process itself, never by the server's callbacks.
pub(crate) enum SysRequest {
    /// Runs with the state (as `dyn Any`: handles are typed by protocol, not server).
    WithState(StateVisit),
    GetStatus(oneshot::Sender<Status>),
    Suspend(oneshot::Sender<()>),
    Resume(oneshot::Sender<()>),
    /// Counting the mailbox on or off.
    Count(bool, oneshot::Sender<()>),
    Statistics(oneshot::Sender<Statistics>),
    Trace(bool, oneshot::Sender<()>),
}

/// What `sys` can ask: any server's handle, a supervisor's.
pub trait SysTarget: sealed::Target {}

pub(crate) mod sealed {
    use ractor::ActorId;

    /// How a handle delivers a system message, whatever its protocol.
    pub trait Target {
        /// Queues the request; false if the process is gone.
        fn post_sys(&self, request: super::SysMessage) -> bool;
        fn process(&self) -> ActorId;
    }
}

/// A system message on its way, opaque outside this crate (it only names [`SysTarget`]'s
/// plumbing).
#[doc(hidden)]
pub struct SysMessage(pub(crate) SysRequest);

impl<P: Protocol> sealed::Target for ServerRef<P> {
    fn post_sys(&self, SysMessage(request): SysMessage) -> bool {
        self.post(Envelope::Sys(request)).is_ok()
    }

    fn process(&self) -> ractor::ActorId {
        self.id()
    }
}

impl<P: Protocol> SysTarget for ServerRef<P> {}

/// Sends a system message and waits for its answer.
async fn ask<T>(
    server: &impl SysTarget,
    request: impl FnOnce(oneshot::Sender<T>) -> SysRequest,
) -> Result<T, SysError> {
    let (sender, answer) = oneshot::channel();
    if !server.post_sys(SysMessage(request(sender))) {
        return Err(CallError::NoProc.into());
    }
    match tokio::time::timeout(SYS_TIMEOUT, answer).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(CallError::NoReply.into()),
        Err(_) => Err(CallError::Timeout(SYS_TIMEOUT).into()),
    }
}

/// Runs `with` on the server, between two of its messages, if it is a `G`, and answers
/// what `with` returns: to read part of a state that is not `Clone` as a whole, or to
/// change it and say how.
pub async fn with_state<G: GenServer, T: Send + 'static>(
    server: &ServerRef<G::Protocol>,
    with: impl FnOnce(&mut G) -> T + Send + 'static,
) -> Result<T, SysError> {
    let outcome = ask(server, |answer| {
        SysRequest::WithState(Box::new(move |state: &mut dyn Any| {
            let _ = answer.send(state.downcast_mut::<G>().map(with));
        }))
    });
    outcome.await?.ok_or(SysError::WrongType {
        expected: std::any::type_name::<G>(),
    })
}

/// A copy of the server's state, the server value itself (`sys:get_state/1`).
pub async fn get_state<G>(server: &ServerRef<G::Protocol>) -> Result<G, SysError>
where
    G: GenServer + Clone,
{
    with_state::<G, _>(server, |state| state.clone()).await
}

/// Changes the server's state in place (`sys:replace_state/2`), between two messages.
pub async fn replace_state<G: GenServer>(
    server: &ServerRef<G::Protocol>,
    change: impl FnOnce(&mut G) + Send + 'static,
) -> Result<(), SysError> {
    with_state::<G, _>(server, change).await
}

/// The server's status (`sys:get_status/1`), its state shown by its `format_status`.
pub async fn get_status(server: &impl SysTarget) -> Result<Status, SysError> {
    ask(server, SysRequest::GetStatus).await
}

/// Suspends the server (`sys:suspend/1`): it answers only system messages, and an
/// orderly stop, until [`resume`]; everything else waits, in order.
pub async fn suspend(server: &impl SysTarget) -> Result<(), SysError> {
    ask(server, SysRequest::Suspend).await
}

/// Resumes a suspended server (`sys:resume/1`): it handles what waited, in order.
pub async fn resume(server: &impl SysTarget) -> Result<(), SysError> {
    ask(server, SysRequest::Resume).await
}

/// Turns counting of the server's queued messages on or off (`sys:statistics/2` with
/// `true` or `false`); see [`Statistics::queued`].
pub async fn statistics(server: &impl SysTarget, on: bool) -> Result<(), SysError> {
    ask(server, |answer| SysRequest::Count(on, answer)).await
}

/// The server's counts (`sys:statistics(Name, get)`).
pub async fn get_statistics(server: &impl SysTarget) -> Result<Statistics, SysError> {
    ask(server, SysRequest::Statistics).await
}

/// How many messages wait for the server now, read without asking it (as OTP's
/// `process_info(Pid, message_queue_len)`): `None` unless counting is on
/// ([`statistics`]`(server, true)`).
pub fn queued(server: &impl SysTarget) -> Option<usize> {
    super::mailbox::queued(server.process())
}

/// Turns tracing on or off (`sys:trace/2`): each event the server handles is logged
/// through `tracing` (target `otp::sys`, level info), with the server's id and name.
pub async fn trace(server: &impl SysTarget, on: bool) -> Result<(), SysError> {
    ask(server, |answer| SysRequest::Trace(on, answer)).await
}

/// Milliseconds since the Unix epoch, for [`Statistics::started_at_ms`].
pub(crate) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}
