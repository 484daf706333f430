//! The GenServer behaviour: a process that owns state and serves calls, casts and infos,
//! one at a time, written as plain sequential callbacks.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the [`GenServer`] trait and what its callbacks return |
//! | `protocol.rs` | [`Protocol`]: the messages, all a caller needs |
//! | `reply.rs` | [`ReplyTo`]: the caller's half of a call, answerable now or later |
//! | `server_ref.rs` | [`ServerRef`] and [`Named`]: call, cast, stop, timers |
//! | `any_server.rs` | [`AnyServer`]: a server of any protocol, for tools that look at a whole tree |
//! | `request.rs` | [`RequestId`], [`RequestIds`]: calls in flight, answers collected later |
//! | `sys.rs` | [`sys`]: state, status, suspend and resume, statistics, trace of any server |
//! | `mailbox.rs` | counting a server's queued messages for `sys` statistics |
//! | `context.rs` | [`Context`]: the `me` of every callback; monitors |
//! | `lineage.rs` | how a supervisor knows a child's whole subtree is gone |
//! | `process.rs` | the ractor actor that runs a GenServer and turns OTP semantics into ractor's |
//!
//! # Example
//! ```
//! use otp::{BoxError, CallResponse, Context, Flow, GenServer, Protocol, ReplyTo};
//!
//! struct Counter;
//!
//! impl Protocol for Counter {
//!     type Call = ();
//!     type Reply = u64;
//!     type Cast = u64;
//! }
//!
//! impl GenServer for Counter {
//!     type Protocol = Self;
//!     type Args = u64;
//!     type State = u64;
//!     type Info = ();
//!
//!     async fn init(&self, _me: &Context<Self>, start: u64) -> Result<u64, BoxError> {
//!         Ok(start)
//!     }
//!     async fn handle_call(&self, _me: &Context<Self>, _req: (), _from: &mut ReplyTo<u64>,
//!                          count: &mut u64) -> Result<CallResponse<u64>, BoxError> {
//!         Ok(CallResponse::Reply(*count))
//!     }
//!     async fn handle_cast(&self, _me: &Context<Self>, add: u64, count: &mut u64)
//!                          -> Result<Flow, BoxError> {
//!         *count += add;
//!         Ok(Flow::Continue)
//!     }
//! }
//!
//! # #[tokio::main] async fn main() {
//! let counter = Counter.start(40).await.unwrap();
//! counter.cast(2);
//! assert_eq!(counter.call(()).await.unwrap(), 42);
//! # }
//! ```

mod any_server;
mod context;
mod lineage;
mod mailbox;
mod process;
mod protocol;
mod reply;
mod request;
mod server_ref;
pub mod sys;

use std::future::Future;

use ractor::ActorId;

pub use any_server::AnyServer;
pub use context::Context;
pub(crate) use lineage::{Gone, Lineage};
pub(crate) use process::{request_stop, spawn, spawn_with, Envelope, Linked};
pub use protocol::Protocol;
pub use reply::ReplyTo;
pub use request::{Collected, RequestId, RequestIds};
pub use server_ref::{Named, ServerRef, Timeout, Timer, DEFAULT_CALL_TIMEOUT};

use crate::{BoxError, ExitReason, StartError};

/// What `handle_call` decided.
#[derive(Debug)]
pub enum CallResponse<R> {
    /// Answer the caller now (`{reply, R, S}`).
    Reply(R),
    /// Do not answer now (`{noreply, S}`). To answer later, take the caller's handle with
    /// [`ReplyTo::take`] and keep it; a caller whose handle is dropped unanswered gets
    /// [`CallError::NoReply`](crate::CallError::NoReply) at once instead of waiting for its
    /// timeout.
    NoReply,
    /// Stop the server (`{stop, Reason, Reply, S}`), answering first if `reply` is given.
    /// Without a reply the caller gets [`CallError::Exited`](crate::CallError::Exited).
    Stop {
        /// The exit reason the supervisor and monitors will see.
        reason: ExitReason,
        /// An answer sent before `terminate` runs.
        reply: Option<R>,
    },
}

/// What `handle_cast` and `handle_info` decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving (`{noreply, S}`).
    Continue,
    /// Stop with this reason (`{stop, Reason, S}`); `terminate` runs first.
    Stop(ExitReason),
}

/// Everything a server receives that is neither a call nor a cast.
#[derive(Debug)]
#[non_exhaustive]
pub enum Info<M> {
    /// The server's own info message: from [`ServerRef::send_info`],
    /// [`ServerRef::send_after`] or [`ServerRef::send_interval`].
    Message(M),
    /// A process this server monitors ([`Context::monitor`]) has exited (`'DOWN'`).
    /// Delivered once per monitor; a process that was already gone reports
    /// [`ExitReason::NoProc`].
    Down(ProcessExit),
    /// A process linked to this server has exited (`'EXIT'`, as if trapping exits). Only
    /// supervisors link children to themselves.
    Exit(ProcessExit),
    /// No message came within the idle timeout a callback set with
    /// [`Context::idle_timeout`] (OTP's `timeout` info).
    Timeout,
}

/// Which process exited and why: the payload of [`Info::Down`] and [`Info::Exit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessExit {
    /// The process that exited.
    pub id: ActorId,
    /// The exit reason; [`ExitReason::NoProc`] when the process was already gone when the
    /// monitor was set.
    pub reason: ExitReason,
}

/// A server's call requests.
pub type CallOf<G> = <<G as GenServer>::Protocol as Protocol>::Call;
/// A server's call replies.
pub type ReplyOf<G> = <<G as GenServer>::Protocol as Protocol>::Reply;
/// A server's casts.
pub type CastOf<G> = <<G as GenServer>::Protocol as Protocol>::Cast;

/// An Erlang/OTP `gen_server`: implement the callbacks; the framework runs the loop.
///
/// Callbacks are `async` so they may await I/O, but a server handles one message at a time:
/// while a callback runs, its mailbox waits (as in OTP). A callback that returns `Err` or
/// panics ends the server with [`ExitReason::Error`] carrying the message, after
/// `terminate`.
pub trait GenServer: Sized + Send + Sync + 'static {
    /// The calls and casts it serves: all its callers know of it (often `Self`).
    type Protocol: Protocol;
    /// Passed to `init`.
    type Args: Send + 'static;
    /// The server's state, owned by its process.
    type State: Send + 'static;
    /// The server's own info messages (timers, [`Context::send_info`], and what the
    /// services it subscribes to send it). Use `()` if none.
    type Info: Send + 'static;

    /// Builds the initial state. `start` returns only after `init` finished; an error makes
    /// `start` fail with [`StartError::Init`] and frees the name. Returning
    /// `Err(`[`Ignore`](crate::Ignore)`.into())` starts nothing without failing (OTP's
    /// `ignore`): `start` answers [`StartError::Ignored`].
    fn init(
        &self,
        me: &Context<Self>,
        args: Self::Args,
    ) -> impl Future<Output = Result<Self::State, BoxError>> + Send;

    /// Serves a call. The default ends the server: a call it does not expect is a bug.
    fn handle_call(
        &self,
        me: &Context<Self>,
        request: CallOf<Self>,
        from: &mut ReplyTo<ReplyOf<Self>>,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<CallResponse<ReplyOf<Self>>, BoxError>> + Send {
        let _ = (me, request, from, state);
        async { Err("unexpected call: this server has no handle_call".into()) }
    }

    /// Serves a cast. The default ends the server: a cast it does not expect is a bug.
    fn handle_cast(
        &self,
        me: &Context<Self>,
        message: CastOf<Self>,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<Flow, BoxError>> + Send {
        let _ = (me, message, state);
        async { Err("unexpected cast: this server has no handle_cast".into()) }
    }

    /// Serves everything else. The default logs and continues, as OTP's does.
    fn handle_info(
        &self,
        me: &Context<Self>,
        message: Info<Self::Info>,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<Flow, BoxError>> + Send {
        let _ = state;
        tracing::warn!(server = %me.id(), kind = info_kind(&message), "unexpected info message");
        async { Ok(Flow::Continue) }
    }

    /// Runs the work a callback asked for with [`Context::continue_with`], right after
    /// that callback and before any queued message (OTP's `handle_continue/2`): for work
    /// that must come first but should not hold up the caller, such as the slow part of a
    /// start. The default hands it to `handle_info` as [`Info::Message`].
    fn handle_continue(
        &self,
        me: &Context<Self>,
        work: Self::Info,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<Flow, BoxError>> + Send {
        self.handle_info(me, Info::Message(work), state)
    }

    /// How `sys::get_status` shows the state (OTP's `format_status/1`): leave out secrets,
    /// shorten what is long. The default shows nothing of it, as a state need not be
    /// printable.
    fn format_status(&self, state: &Self::State) -> String {
        let _ = state;
        "(not shown: the server has no format_status)".to_owned()
    }

    /// Runs when the server stops: after a `Stop` return, a callback error or panic, a
    /// [`ServerRef::stop`], or an orderly shutdown by its supervisor. Not after a brutal
    /// kill (nothing runs then, as in OTP).
    fn terminate(
        &self,
        me: &Context<Self>,
        reason: &ExitReason,
        state: &mut Self::State,
    ) -> impl Future<Output = ()> + Send {
        let _ = (me, reason, state);
        async {}
    }

    /// Starts the server unlinked and unnamed (`gen_server:start/3`).
    fn start(
        self,
        args: Self::Args,
    ) -> impl Future<Output = Result<ServerRef<Self::Protocol>, StartError>> + Send {
        process::spawn(self, args, None, None)
    }

    /// Starts the server registered under `name` (`gen_server:start({local, Name}, ...)`).
    /// A running server under that name makes it fail with [`StartError::AlreadyStarted`].
    fn start_named(
        self,
        name: impl Into<String>,
        args: Self::Args,
    ) -> impl Future<Output = Result<ServerRef<Self::Protocol>, StartError>> + Send {
        process::spawn(self, args, Some(name.into()), None)
    }

    /// Starts the server with [`StartOptions`]: a name, a start timeout.
    fn start_with(
        self,
        args: Self::Args,
        options: StartOptions,
    ) -> impl Future<Output = Result<ServerRef<Self::Protocol>, StartError>> + Send {
        process::spawn_with(self, args, options, None)
    }
}

/// How to start a server, beyond its arguments (OTP's start options).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Register it under this name (`{local, Name}`).
    pub name: Option<String>,
    /// Give `init` at most this long (`{timeout, T}`): past it the start is abandoned, the
    /// half-started process is killed (its `terminate` does not run), and the start fails
    /// with [`StartError::Timeout`]. `None`: wait as long as `init` takes.
    pub timeout: Option<std::time::Duration>,
}

impl StartOptions {
    /// Registered under `name`, no start timeout.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            timeout: None,
        }
    }
}

fn info_kind<M>(info: &Info<M>) -> &'static str {
    match info {
        Info::Message(_) => "message",
        Info::Down(_) => "down",
        Info::Exit(_) => "exit",
        Info::Timeout => "timeout",
    }
}
