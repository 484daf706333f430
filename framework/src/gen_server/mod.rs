//! The GenServer behaviour: a process that owns state and serves calls, casts and infos,
//! one at a time, written as plain sequential callbacks.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the [`GenServer`] trait and what its callbacks return |
//! | `protocol.rs` | [`Protocol`], [`Request`], [`protocol!`](crate::protocol!): the messages, each call with its answer's type; [`Caller`] |
//! | `reply.rs` | [`ReplyTo`]: a caller taken out of `handle_call`, answered later |
//! | `start.rs` | [`Init`] (OTP's `init(Args)`), [`Start`], [`StartOptions`]: how a server comes to life |
//! | `server_ref.rs` | [`ServerRef`] and [`Named`]: call, cast, stop, timers |
//! | `any_server.rs` | [`AnyServer`]: a server of any protocol, for tools that look at a whole tree |
//! | `request.rs` | [`RequestId`], [`RequestIds`]: calls in flight, answers collected later |
//! | `sys.rs` | [`sys`]: state, status, suspend and resume, statistics, trace of any server |
//! | `mailbox.rs` | counting a server's queued messages for `sys` statistics |
//! | `context.rs` | [`Context`]: the `me` of every callback; monitors |
//! | `lineage.rs` | how a supervisor knows a child's whole subtree is gone |
//! | `process/` | the ractor actor that runs a GenServer and turns OTP semantics into ractor's; `bookkeeping.rs`: `sys` counting, tracing, suspension, the idle timer |
//!
//! # Example
//! ```
//! use otp::{Context, Flow, GenServer};
//!
//! otp::protocol! { pub Counter; calls CounterCall { Get -> u64 } casts CounterCast { Add(u64) } }
//!
//! struct CounterServer(u64);
//!
//! impl GenServer for CounterServer {
//!     type Protocol = Counter;
//!     async fn handle_call(&mut self, call: CounterCall<'_>, _: &Context<Self>) -> otp::Result {
//!         let CounterCall::Get(Get, caller) = call;
//!         Ok(caller.reply(self.0))
//!     }
//!     async fn handle_cast(&mut self, cast: CounterCast, _: &Context<Self>) -> otp::Result {
//!         let CounterCast::Add(Add(n)) = cast;
//!         self.0 += n;
//!         Ok(Flow::Continue)
//!     }
//! }
//!
//! # #[tokio::main] async fn main() {
//! let counter = CounterServer(40).start().await.unwrap();
//! counter.cast(Add(2));
//! assert_eq!(counter.call(Get).await.unwrap(), 42);
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
mod start;
pub mod sys;

use std::future::Future;

use ractor::ActorId;

pub use any_server::AnyServer;
pub use context::Context;
pub(crate) use lineage::{Gone, Lineage};
pub(crate) use process::{request_stop, spawn, spawn_with, Envelope, Linked};
#[doc(hidden)]
pub use protocol::{no_calls, EncodeReplies, ReplyEncoder};
pub use protocol::{Caller, Never, Protocol, Request, RequestOf};
#[doc(hidden)]
pub use reply::ReplySlot;
pub use reply::ReplyTo;
pub use request::{Collected, RequestId, RequestIds};
pub use server_ref::{Named, ServerRef, Timeout, Timer, DEFAULT_CALL_TIMEOUT};
pub(crate) use start::Starting;
pub use start::{Init, Start, StartOptions};

use crate::{ExitReason, StartError};

/// What a callback decided: go on, or stop (OTP's `{noreply, S}` and `{stop, Reason,
/// S}`). A call answered with [`Caller::reply`] then stopped is OTP's `{stop, Reason,
/// Reply, S}`; a call neither answered nor taken when the server stops gets the exit
/// reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving.
    Continue,
    /// Stop with this reason; `terminate` runs first.
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

/// A server's calls, as `handle_call` gets them.
pub type CallOf<'a, G> = <<G as GenServer>::Protocol as Protocol>::Call<'a>;
/// A server's casts.
pub type CastOf<G> = <<G as GenServer>::Protocol as Protocol>::Cast;
/// A server's own info messages.
pub type InfoOf<G> = <<G as GenServer>::Protocol as Protocol>::Info;

/// An Erlang/OTP `gen_server`: implement the callbacks; the framework runs the loop.
///
/// The server value is its state (OTP's `State`), owned by its process: build it, then
/// [`start`](GenServer::start) it; a supervisor builds a fresh one for every restart. A
/// state that must be built in the server's own process is built by [`Init`] from its
/// arguments. Every callback is optional but the ones for the messages its protocol has.
///
/// Callbacks are `async` so they may await I/O, but a server handles one message at a time:
/// while a callback runs, its mailbox waits (as in OTP). A callback that returns `Err` or
/// panics ends the server with [`ExitReason::Error`] carrying the message, after
/// `terminate`.
pub trait GenServer: Sized + Send + 'static {
    /// The calls, casts and infos it serves: all its callers know of it.
    type Protocol: Protocol;

    /// Serves a call: `match` it, and answer each request through its [`Caller`] (now,
    /// or later once [taken](Caller::take)). The default ends the server: a call it does
    /// not expect is a bug.
    // `'a` ties the call to `self` only so that it is a late-bound lifetime, as the one an
    // implementation's `call: MyCall<'_>` gets (a lifetime seen only through the
    // protocol's `Call<'a>` would be early-bound, and the two would not match).
    fn handle_call<'a>(
        &'a mut self,
        call: CallOf<'a, Self>,
        me: &Context<Self>,
    ) -> impl Future<Output = crate::Result> + Send {
        let _ = (call, me);
        async { Err("unexpected call: this server has no handle_call".into()) }
    }

    /// Serves a cast. The default ends the server: a cast it does not expect is a bug.
    fn handle_cast(
        &mut self,
        cast: CastOf<Self>,
        me: &Context<Self>,
    ) -> impl Future<Output = crate::Result> + Send {
        let _ = (cast, me);
        async { Err("unexpected cast: this server has no handle_cast".into()) }
    }

    /// Serves everything else. The default logs and continues, as OTP's does.
    fn handle_info(
        &mut self,
        info: Info<InfoOf<Self>>,
        me: &Context<Self>,
    ) -> impl Future<Output = crate::Result> + Send {
        tracing::warn!(server = %me.id(), kind = info_kind(&info), "unexpected info message");
        async { Ok(Flow::Continue) }
    }

    /// Runs the work a callback asked for with [`Context::continue_with`], right after
    /// that callback and before any queued message (OTP's `handle_continue/2`): for work
    /// that must come first but should not hold up the caller, such as the slow part of a
    /// start. The default hands it to `handle_info` as [`Info::Message`].
    fn handle_continue(
        &mut self,
        work: InfoOf<Self>,
        me: &Context<Self>,
    ) -> impl Future<Output = crate::Result> + Send {
        self.handle_info(Info::Message(work), me)
    }

    /// How `sys::get_status` shows the state (OTP's `format_status/1`): leave out secrets,
    /// shorten what is long. The default shows nothing of it, as a state need not be
    /// printable.
    fn format_status(&self) -> String {
        "(not shown: the server has no format_status)".to_owned()
    }

    /// Runs when the server stops: after a `Stop` return, a callback error or panic, a
    /// [`ServerRef::stop`], or an orderly shutdown by its supervisor. Not after a brutal
    /// kill (nothing runs then, as in OTP).
    fn terminate(
        &mut self,
        reason: &ExitReason,
        me: &Context<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reason, me);
        async {}
    }

    /// Starts the server unlinked and unnamed (`gen_server:start/3`).
    fn start(self) -> impl Future<Output = Result<ServerRef<Self::Protocol>, StartError>> + Send {
        Start::from(self).start()
    }

    /// Starts the server registered under `name` (`gen_server:start({local, Name}, ...)`).
    /// A running server under that name makes it fail with [`StartError::AlreadyStarted`].
    fn start_named(
        self,
        name: impl Into<String>,
    ) -> impl Future<Output = Result<ServerRef<Self::Protocol>, StartError>> + Send {
        Start::from(self).start_named(name)
    }

    /// Starts the server with [`StartOptions`]: a name, a start timeout.
    fn start_with(
        self,
        options: StartOptions,
    ) -> impl Future<Output = Result<ServerRef<Self::Protocol>, StartError>> + Send {
        Start::from(self).start_with(options)
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
