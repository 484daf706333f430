//! The errors a user of the framework can get back, as `thiserror` types.

use std::time::Duration;

use ractor::ActorCell;

use crate::ExitReason;

/// A boxed error for callbacks: anything `?` can turn into it (ractor's `ActorProcessingErr`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a call did not return a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No reply within the timeout. The server may still handle the request; a late reply
    /// is dropped.
    #[error("call timed out after {0:?}; the server is busy or stuck: raise the timeout or check the server")]
    Timeout(Duration),
    /// No such process: the name is not registered or the server had already exited.
    #[error("no such process (noproc): the server is not running; start it or check its name")]
    NoProc,
    /// The server exited while the call was queued or being handled.
    #[error("the server exited before replying: {0}")]
    Exited(ExitReason),
    /// The node the server lives on went down, or the connection to it closed.
    #[error("node {0} is down or disconnected")]
    NodeDown(String),
    /// The remote side could not decode the request, or we could not decode its reply
    /// (the two nodes disagree on the message types).
    #[error("bad request or reply on the wire: {0}")]
    BadRequest(String),
    /// A server called itself from one of its own callbacks (OTP's `calling_self`): it
    /// would wait for its own answer.
    #[error("a server called itself (calling_self): it cannot answer while it waits; use the state at hand, or cast to itself")]
    CallingSelf,
    /// The server was killed, or dropped the caller's `ReplyTo` without answering.
    #[error("the server dropped the call without replying (killed, or its ReplyTo was dropped)")]
    NoReply,
}

/// Why a process (server or supervisor) did not start.
///
/// `Display` and `Error` are written by hand, not derived: the error `init` returned is
/// shared (`Arc`, so that this stays `Clone`), and `source()` must hand out that error
/// itself, where a derived one would hand out the `Arc` (which hides its type from
/// `downcast_ref`).
#[derive(Debug, Clone)]
pub enum StartError {
    /// The name is taken by a running process (`{already_started, Pid}`); `existing` is it,
    /// or `None` if it exited meanwhile.
    AlreadyStarted {
        /// The contested name.
        name: String,
        /// The running process under it.
        existing: Option<ActorCell>,
    },
    /// `init` returned an error or panicked, kept whole: [`source()`](std::error::Error)
    /// is the error `init` returned (a panic becomes an error with its message).
    Init(std::sync::Arc<dyn std::error::Error + Send + Sync>),
    /// A supervisor's child failed to start; the children started before it were stopped.
    Child {
        /// The child spec id.
        id: String,
        /// What its start returned.
        reason: Box<StartError>,
    },
    /// A supervisor's spec names two children with this id: ids must be unique within a
    /// supervisor (they are how its children are addressed).
    DuplicateChildId(String),
    /// A child spec its supervisor refuses (OTP's `bad_combination` and friends).
    BadChildSpec {
        /// The child spec id.
        id: String,
        /// What is wrong and what to do.
        problem: &'static str,
    },
    /// `init` returned [`Ignore`]: nothing was started, and that is not a failure (OTP's
    /// `ignore`). A supervisor keeps such a child's spec as not running.
    Ignored,
    /// `init` did not finish within the start timeout; the process was killed.
    Timeout(Duration),
}

/// What `init` returns to start nothing without failing (OTP's `ignore`):
/// `return Err(Ignore.into())`. The start then answers [`StartError::Ignored`]; a static
/// supervisor keeps the child's spec as not running, a dynamic one keeps nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("init returned ignore")]
pub struct Ignore;

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AlreadyStarted { name, .. } => write!(
                f,
                "a process is already registered as {name:?}: stop it first or pick another name"
            ),
            Self::Init(error) => write!(f, "init failed: {error}"),
            Self::Child { id, reason } => write!(f, "child {id:?} failed to start: {reason}"),
            Self::DuplicateChildId(id) => write!(
                f,
                "duplicate child id {id:?}: ids must be unique within a supervisor"
            ),
            Self::BadChildSpec { id, problem } => write!(f, "child {id:?}: {problem}"),
            Self::Ignored => write!(f, "init returned ignore: nothing was started"),
            Self::Timeout(limit) => write!(
                f,
                "init did not finish within {limit:?}, so the start was abandoned: raise the start timeout, or move slow work to handle_continue"
            ),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Init(error) => Some(&**error),
            Self::Child { reason, .. } => Some(&**reason),
            _ => None,
        }
    }
}

impl StartError {
    /// An `init` failure, from the error it returned.
    pub fn init(error: impl Into<BoxError>) -> Self {
        Self::Init(std::sync::Arc::from(error.into()))
    }

    pub(crate) fn already_started(name: String) -> Self {
        let existing = ractor::registry::where_is(&name);
        Self::AlreadyStarted { name, existing }
    }
}
