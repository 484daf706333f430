//! # otp: Erlang/OTP's behaviours on ractor
//!
//! Processes that own their state and serve messages one at a time ([`GenServer`]),
//! supervisors that restart them by OTP's rules ([`supervisor`]), trees declared in JSON
//! ([`spec`]), `sys` to look inside any of them ([`sys`]), and nodes that call each other's
//! servers over the network (`node`, feature `distribution`), with a live page of it all
//! in a browser (`observer`, feature `observer`).
//!
//! # Where to start
//! 1. **A server**: declare what callers send with [`protocol!`]: each call with the type
//!    of its answer, the casts, the server's own infos. Then `impl GenServer`: one `match`
//!    in `handle_call`, where each call comes with its [`Caller`], which takes only that
//!    call's answer type. The server value is its state; a state that its own process must
//!    build is built by [`Init`] (OTP's `init/1`). See [`gen_server`].
//! 2. **Callers** hold a [`ServerRef`] (a process) or a [`Named`] (whatever process holds a
//!    name now), typed by the protocol, never by the server: `server.call(Get(key))`
//!    answers what `Get` declares. Calls in flight: [`ServerRef::send_request`].
//! 3. **Supervision**: [`supervisor::ChildSpec::worker`] says how to start a child; a
//!    [`supervisor::SupervisorSpec`] is a tree (or write it as a file, [`spec`]); a crashed
//!    child is started again from a fresh value. [`supervisor::restarted`] waits for that.
//! 4. **Nodes** (feature `distribution`): `otp::node::Node::start`, `connect`,
//!    `export::<P>(name)` on one side and `remote::<P>(node, name)` on the other; process
//!    groups (`otp::node::pg`) and global names (`otp::node::global`).
//!
//! The repository's `examples/` run each of these (`cargo run --example counter`, `pool`,
//! `spec_tree`, `sys_requests`, `two_nodes`, `chat_room`).
//!
//! # How the pieces fit
//!
//! | module | OTP counterpart |
//! |---|---|
//! | [`gen_server`] | `gen_server`: init (ignore, start timeout), call (reply, deferred reply, stop), cast, info, continue, idle timeout, terminate, names, monitors, timers, requests in flight |
//! | [`sys`] | `sys`: get_state, replace_state, get_status (through `format_status`), suspend, resume, statistics, trace |
//! | [`supervisor`] | `supervisor` and Elixir's `DynamicSupervisor` and `PartitionSupervisor`: strategies, restart intensity, ordered shutdown, reports |
//! | [`spec`] | supervision trees as data: JSON files, validated before anything starts |
//! | [`exit`] | exit reasons (`normal`, `shutdown`, `{shutdown, T}`, `killed`, errors) |
//! | `node` (feature `distribution`) | distribution: nodes, cookies, TLS, remote calls and casts, monitors, node up/down (`net_kernel`); process groups (`pg`); names unique across nodes (`global`) |
//! | `observer` (feature `observer`) | `observer`: the running system in a browser |
//!
//! Everything runs on ractor actors: a GenServer is one ractor actor, a supervisor is a
//! GenServer that links its children. Where we differ from OTP, the item's docs say why.
//!
//! **Layers.** `gen_server` at the bottom; `supervisor` on it; `spec` builds supervisors
//! from files; `node` on all three; `observer` on top. A module never imports one above
//! it: the GenServer knows nothing of nodes, and a node event or a remote DOWN reaches a
//! server through the generic paths (its protocol's infos, [`Info::Down`]).
//!
//! # Feature flags
//! - `distribution` (default): the `node` module, on ractor_cluster, with TLS (rustls on
//!   `ring`). Without it the crate is local only, and builds without either.
//! - `observer`: the `observer` module (axum on hyper); needs `distribution`.
//! - `message-spans`: attach the sender's tracing span to every message (ractor's default;
//!   off here because it costs 15 to 25% of call and cast throughput).
//!
//! Items behind a feature say which in their docs.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod exit;
pub mod gen_server;
#[cfg(feature = "distribution")]
#[cfg_attr(docsrs, doc(cfg(feature = "distribution")))]
pub mod node;
#[cfg(feature = "observer")]
#[cfg_attr(docsrs, doc(cfg(feature = "observer")))]
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
    AnyServer, Caller, Context, Flow, GenServer, Info, Init, Named, Never, ProcessExit, Protocol,
    ReplyTo, Request, RequestOf, ServerRef, Start, StartOptions, Timeout, Timer,
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

/// The crate README's example (what crates.io shows), compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeExample;
