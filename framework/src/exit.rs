//! Exit reasons, as OTP defines them.
//!
//! ractor reports an actor's end as `ActorTerminated(cell, state, Option<String>)` or
//! `ActorFailed(cell, error)`. Every exit in this crate travels through that string, so the
//! encoding lives here, in one place: `ExitReason::encode` writes it and
//! `ExitReason::from_event` reads it back, for supervisors and monitors alike.

use std::fmt;

use ractor::SupervisionEvent;

/// Why a process ended.
///
/// `Normal`, `Shutdown` and `ShutdownWith` are orderly: a `transient` child that exits with one
/// of them is not restarted, and nothing is logged as an error. `Killed` and `Error` are crashes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// The process finished its work (`normal`).
    Normal,
    /// Asked to stop by its supervisor or owner (`shutdown`).
    Shutdown,
    /// An orderly stop that carries a term for whoever watches (`{shutdown, Term}`).
    ShutdownWith(String),
    /// Brutally killed; `terminate` did not run (`killed`).
    Killed,
    /// The process did not exist when it was monitored (`noproc`); only seen in
    /// [`Info::Down`](crate::Info::Down).
    NoProc,
    /// The node a monitored process lived on went down or disconnected (`noconnection`);
    /// only seen in [`Info::Down`](crate::Info::Down).
    NoConnection,
    /// A crash: a callback returned an error or panicked, or the process chose an abnormal
    /// reason. The text is the error's message.
    Error(String),
}

const NORMAL: &str = "normal";
const SHUTDOWN: &str = "shutdown";
const SHUTDOWN_WITH: &str = "shutdown: ";
const KILLED: &str = "killed";
const NO_PROC: &str = "noproc";
const NO_CONNECTION: &str = "noconnection";
const ERROR: &str = "error: ";

impl ExitReason {
    /// A crash reason from anything printable (`ExitReason::error("disk full")`).
    pub fn error(message: impl fmt::Display) -> Self {
        Self::Error(message.to_string())
    }

    /// True for `normal`, `shutdown` and `{shutdown, _}`: the reasons after which a
    /// `transient` child stays down and no crash is reported.
    pub fn is_orderly(&self) -> bool {
        matches!(self, Self::Normal | Self::Shutdown | Self::ShutdownWith(_))
    }

    /// The stop-reason string handed to ractor. [`ExitReason::decode`] is its inverse.
    pub(crate) fn encode(&self) -> String {
        match self {
            Self::Normal => NORMAL.to_owned(),
            Self::Shutdown => SHUTDOWN.to_owned(),
            Self::ShutdownWith(term) => format!("{SHUTDOWN_WITH}{term}"),
            Self::Killed => KILLED.to_owned(),
            Self::NoProc => NO_PROC.to_owned(),
            Self::NoConnection => NO_CONNECTION.to_owned(),
            Self::Error(message) => format!("{ERROR}{message}"),
        }
    }

    /// Reads a ractor stop reason. `None` is how a plain ractor actor stops normally; a string
    /// we did not write (a foreign actor's reason) is taken as a crash carrying that text.
    pub(crate) fn decode(reason: Option<&str>) -> Self {
        let Some(reason) = reason else {
            return Self::Normal;
        };
        match reason {
            NORMAL => Self::Normal,
            SHUTDOWN => Self::Shutdown,
            KILLED => Self::Killed,
            NO_PROC => Self::NoProc,
            NO_CONNECTION => Self::NoConnection,
            _ => {
                if let Some(term) = reason.strip_prefix(SHUTDOWN_WITH) {
                    Self::ShutdownWith(term.to_owned())
                } else if let Some(message) = reason.strip_prefix(ERROR) {
                    Self::Error(message.to_owned())
                } else {
                    Self::Error(reason.to_owned())
                }
            }
        }
    }

    /// The exit reason carried by a ractor supervision event, if it reports an exit.
    pub(crate) fn from_event(event: &SupervisionEvent) -> Option<Self> {
        match event {
            SupervisionEvent::ActorTerminated(_, _, reason) => {
                Some(Self::decode(reason.as_deref()))
            }
            SupervisionEvent::ActorFailed(_, error) => Some(Self::Error(error.to_string())),
            _ => None,
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str(NORMAL),
            Self::Shutdown => f.write_str(SHUTDOWN),
            Self::ShutdownWith(term) => write!(f, "{{shutdown, {term}}}"),
            Self::Killed => f.write_str(KILLED),
            Self::NoProc => f.write_str(NO_PROC),
            Self::NoConnection => f.write_str(NO_CONNECTION),
            Self::Error(message) => f.write_str(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_survives_the_ractor_string() {
        for reason in [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::ShutdownWith("user quit".into()),
            ExitReason::Killed,
            ExitReason::NoProc,
            ExitReason::NoConnection,
            ExitReason::error("normal"),
            ExitReason::error("shutdown: not really"),
        ] {
            assert_eq!(ExitReason::decode(Some(&reason.encode())), reason);
        }
    }

    #[test]
    fn foreign_reasons_are_crashes_and_none_is_normal() {
        assert_eq!(ExitReason::decode(None), ExitReason::Normal);
        assert_eq!(
            ExitReason::decode(Some("Drained")),
            ExitReason::error("Drained")
        );
        assert!(!ExitReason::Killed.is_orderly());
        assert!(ExitReason::ShutdownWith("x".into()).is_orderly());
    }
}
