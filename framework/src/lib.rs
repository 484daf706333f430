//! # otp: Erlang/OTP's GenServer and Supervisor, on ractor
//!
//! Write a server as sequential callbacks ([`GenServer`]), put it under a [`supervisor`]
//! that restarts it by OTP's rules, and declare whole trees in JSON ([`spec`]).
//!
//! | module | OTP counterpart |
//! |---|---|
//! | [`gen_server`] | `gen_server`: init, call (reply, deferred reply, stop), cast, info, terminate, names, monitors, timers |
//! | [`supervisor`] | `supervisor` and Elixir's `DynamicSupervisor`: strategies, restart intensity, ordered shutdown |
//! | [`node`] | distribution: nodes, cookies, remote calls and casts, node up/down (`net_kernel`) |
//! | [`spec`] | supervision trees as data: JSON files under `supervisor-specs/`, validated before anything starts |
//! | [`exit`] | exit reasons (`normal`, `shutdown`, `{shutdown, T}`, `killed`, errors) |
//!
//! Everything runs on ractor actors: a GenServer is one ractor actor, a supervisor is a
//! GenServer that links its children. Where we differ from OTP, the item's docs say why.
//!
//! ## Feature flags
//! - `message-spans`: attach the sender's tracing span to every message (ractor's default;
//!   off here because it costs 15 to 25% of call and cast throughput).

pub mod exit;
pub mod gen_server;
pub mod node;
pub mod spec;
pub mod supervisor;

mod error;

pub use error::{BoxError, CallError, StartError};
pub use exit::ExitReason;
pub use gen_server::{
    CallResponse, Context, Flow, GenServer, Info, Named, ProcessExit, ReplyTo, ServerRef, Timeout,
    Timer,
};
pub use ractor::{ActorCell, ActorId};

/// The README's examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
