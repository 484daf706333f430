//! What the page may do to a process: OTP's `exit(Pid, kill)`, `supervisor:terminate_child`
//! and `restart_child`, `sys:suspend`, `resume` and `trace`. Each names its target by the
//! pid the page was shown, looked up in a snapshot at most half a second old; a process
//! gone since then is refused, never guessed at.

use serde::Deserialize;

use super::snapshot::{Index, Known};
use crate::supervisor::{Strategy, SupervisorError};
use crate::sys::{self, SysError};

/// One action, as the page sends it (JSON with an `action` tag).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Kill the process: no `terminate`, exit reason `killed`; its supervisor decides.
    Kill {
        /// The process.
        pid: String,
    },
    /// Stop it through its supervisor, by its shutdown policy; not restarted.
    TerminateChild {
        /// The process.
        pid: String,
    },
    /// Start a stopped child of a static supervisor again.
    RestartChild {
        /// The supervisor's process.
        supervisor: String,
        /// The child's spec id.
        child: String,
    },
    /// `sys::suspend`.
    Suspend {
        /// The process.
        pid: String,
    },
    /// `sys::resume`.
    Resume {
        /// The process.
        pid: String,
    },
    /// `sys::trace` on or off.
    Trace {
        /// The process.
        pid: String,
        /// On or off.
        on: bool,
    },
}

/// Why an action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The pid is not a process of the trees shown (it may have exited meanwhile).
    #[error(
        "no process {0} in the supervision trees now: it may have exited; look at the page again"
    )]
    UnknownProcess(String),
    /// A root supervisor has no supervisor to terminate or restart it.
    #[error("{0} is a root supervisor: it has no supervisor to terminate it (kill it instead)")]
    Root(String),
    /// `restart_child` named a process that is no supervisor.
    #[error(
        "{0} is no supervisor: restart_child names the supervisor of the child to start again"
    )]
    NotASupervisor(String),
    /// Dynamic children are forgotten once stopped, so cannot be restarted by id.
    #[error("{0} belongs to a dynamic supervisor, which forgets stopped children: start a new one instead")]
    Dynamic(String),
    /// The supervisor refused or failed.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    /// The `sys` request failed.
    #[error(transparent)]
    Sys(#[from] SysError),
}

impl Action {
    /// Does it; answers what was done, for the page to show.
    pub(crate) async fn perform(self, index: &Index) -> Result<String, ActionError> {
        let known = |pid: &str| {
            index
                .get(pid)
                .filter(|known| known.server.is_alive())
                .cloned()
                .ok_or_else(|| ActionError::UnknownProcess(pid.to_owned()))
        };
        match self {
            Self::Kill { pid } => {
                known(&pid)?.server.kill();
                Ok(format!("killed {pid}"))
            }
            Self::TerminateChild { pid } => {
                let Known { server, parent } = known(&pid)?;
                let parent = parent.ok_or(ActionError::Root(pid.clone()))?;
                match parent.dynamic {
                    true => {
                        parent
                            .supervisor
                            .terminate_child_process(server.id())
                            .await?
                    }
                    false => parent.supervisor.terminate_child(&parent.child).await?,
                }
                let mut done = format!("terminated {} ({pid})", parent.child);
                if parent.strategy != Strategy::OneForOne && !parent.dynamic {
                    // As in OTP: the strategy applies to exits, not to these requests.
                    done.push_str("; restart_child will start only it, not the siblings its strategy ties to it (kill it instead to have the strategy restart them)");
                }
                Ok(done)
            }
            Self::RestartChild { supervisor, child } => {
                let Known { server, .. } = known(&supervisor)?;
                let supervisor_ref = crate::supervisor::SupervisorRef::from_server(&server)
                    .ok_or_else(|| ActionError::NotASupervisor(supervisor.clone()))?;
                let started = supervisor_ref
                    .restart_child(&child)
                    .await
                    .map_err(|e| match e {
                        SupervisorError::Dynamic => ActionError::Dynamic(child.clone()),
                        other => other.into(),
                    })?;
                Ok(match started {
                    Some(cell) => format!("restarted {child} as {}", cell.get_id()),
                    None => format!("{child} ignored its restart"),
                })
            }
            Self::Suspend { pid } => {
                sys::suspend(&known(&pid)?.server).await?;
                Ok(format!("suspended {pid}"))
            }
            Self::Resume { pid } => {
                sys::resume(&known(&pid)?.server).await?;
                Ok(format!("resumed {pid}"))
            }
            Self::Trace { pid, on } => {
                sys::trace(&known(&pid)?.server, on).await?;
                Ok(match on {
                    true => format!("trace on for {pid}: its events go to the node's log (target otp::sys, level info)"),
                    false => format!("trace off for {pid}"),
                })
            }
        }
    }
}
