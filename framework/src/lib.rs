//! # otp: Erlang/OTP's GenServer and Supervisor, on ractor
//!
//! Write a server as sequential callbacks ([`GenServer`]), put it under a [`supervisor`]
//! that restarts it by OTP's rules, and declare whole trees in JSON ([`spec`]). Callers
//! name a server's [`Protocol`] (its messages), never its code.
//!
//! | module | OTP counterpart |
//! |---|---|
//! | [`gen_server`] | `gen_server`: init (ignore, start timeout), call (reply, deferred reply, stop), cast, info, continue, idle timeout, terminate, names, monitors, timers, requests in flight |
//! | [`sys`] | `sys`: get_state, replace_state, get_status (through `format_status`), suspend, resume, statistics, trace |
//! | [`supervisor`] | `supervisor` and Elixir's `DynamicSupervisor`: strategies, restart intensity, ordered shutdown |
//! | `node` | distribution (feature `distribution`): nodes, cookies, remote calls and casts, node up/down (`net_kernel`); process groups across nodes (`pg`, with scopes, broadcast once per node); names unique across nodes (`global`) |
//! | [`spec`] | supervision trees as data: JSON files under `supervisor-specs/`, validated before anything starts |
//! | [`exit`] | exit reasons (`normal`, `shutdown`, `{shutdown, T}`, `killed`, errors) |
//!
//! Everything runs on ractor actors: a GenServer is one ractor actor, a supervisor is a
//! GenServer that links its children. Where we differ from OTP, the item's docs say why.
//!
//! ## Layers
//! `gen_server` at the bottom; `supervisor` on it; `spec` builds supervisors from files;
//! `node` (distribution) on top of all three. A module never imports one above it: the
//! GenServer knows nothing of nodes, and a node event or a remote DOWN reaches a server
//! through the generic paths (its own info type, [`Info::Down`]).
//!
//! ## Feature flags
//! - `distribution` (default): the `node` module, on ractor_cluster, with TLS (rustls).
//!   Without it the crate is local only, and builds without either.
//! - `message-spans`: attach the sender's tracing span to every message (ractor's default;
//!   off here because it costs 15 to 25% of call and cast throughput).

pub mod exit;
pub mod gen_server;
#[cfg(feature = "distribution")]
pub mod node;
#[cfg(feature = "observer")]
pub mod observer;
pub mod spec;
pub mod supervisor;

mod error;
#[cfg(feature = "distribution")]
mod tasks;

pub use error::{BoxError, CallError, Ignore, StartError};
pub use exit::ExitReason;
pub use gen_server::sys;
pub use gen_server::{
    AnyServer, Caller, Context, Flow, GenServer, Info, Named, ProcessExit, Protocol, ReplyTo,
    Request, RequestOf, ServerRef, StartOptions, Timeout, Timer,
};
pub use ractor::{ActorCell, ActorId};

/// What every callback returns: by default a [`Flow`] (go on or stop), or an error that
/// ends the server (`?` turns any error into it).
pub type Result<T = Flow, E = BoxError> = std::result::Result<T, E>;

/// The README's examples, compiled and run as doctests so they cannot rot (they include
/// nodes, so only with distribution).
#[cfg(all(doctest, feature = "distribution"))]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
