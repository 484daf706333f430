//! # ex_messenger: a supervised, distributed chat on the `otp` framework
//!
//! A port of the Elixir `ex_messenger` chat and the Erlang "robust messenger" tutorial.
//! Built so far: the pieces every part of the chat relies on, each unit-tested.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line: `server` and `client` subcommands, their flags and defaults |
//! | [`names`] | nicknames and room names: what is allowed, and the `nick_not_allowed` refusal |
//! | [`command`] | what a line typed by a user means (`/pm`, `/join`, plain text, ...) |
//! | [`sanitize`] | text made safe for other people's terminals (no control or escape sequences) |
//! | [`throttle`] | flood control per user: bursts pass, a sustained flood is cut to a rate |

pub mod cli;
pub mod command;
pub mod names;
pub mod sanitize;
pub mod throttle;

/// The largest message a user may send, in bytes (UTF-8), as the server enforces it.
pub const MAX_MESSAGE_BYTES: usize = 4096;
