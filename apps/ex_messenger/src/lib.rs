//! # ex_messenger: a supervised, distributed chat on the `otp` framework
//!
//! A port of the Elixir `ex_messenger` chat and the Erlang "robust messenger" tutorial:
//! a server node with a message server and one GenServer per room, and client nodes whose
//! message handler joins, shows incoming lines and rejoins after outages. Both sides run
//! supervision trees loaded from `supervisor-specs/`.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line: `server`, `client` and `bench` subcommands |
//! | [`protocol`] | what travels between nodes (the only thing `client` and `server` share): requests, refusals, the session token |
//! | [`server`] | the server's tree: [`server::message_server`] (sessions, membership, room directory, policy), [`server::room`] |
//! | [`client`] | the client's tree: [`client::handler`], and the terminal it talks to |
//! | [`names`] | nicknames and room names: what is allowed, and the `nick_not_allowed` refusal |
//! | [`command`] | what a line typed by a user means (`/pm`, `/join`, plain text, ...) |
//! | [`sanitize`] | text made safe for other people's terminals (no control or escape sequences) |
//! | [`throttle`] | flood control per user: bursts pass, a sustained flood is cut to a rate |
//! | [`bench`](mod@bench) | the load tool: many client processes, one room, throughput and latency |
//! | [`soak`] | the reliability check: numbered lines under load and faults, every delivery checked |
//! | `trees` | what both supervision trees share: start names, loading the spec file |
//! | `random` | randomness for node names, bench cookies and jitter |

pub mod bench;
pub mod cli;
pub mod client;
pub mod command;
pub mod names;
pub mod protocol;
mod random;
pub mod sanitize;
pub mod server;
mod signals;
pub mod soak;
mod stdout;
pub mod throttle;
mod trees;

/// The largest message a user may send, in bytes (UTF-8), as the server enforces it.
pub const MAX_MESSAGE_BYTES: usize = 4096;
