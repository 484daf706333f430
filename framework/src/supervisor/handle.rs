//! Handles to running supervisors: the `supervisor` module's control functions.

use ractor::{ActorCell, ActorId};

use super::dynamic::{self, DynamicProcess};
use super::server::{self, SupervisorProcess};
use super::{ChildCounts, ChildInfo, ChildSpec, SupervisorError};
use crate::{ExitReason, ReplyTo, ServerRef};

/// Asks a supervisor; each request has its own answer type. The wait is unbounded, as
/// OTP's `supervisor` calls are: a child's `init` may take its time, and a supervisor that
/// dies answers at once with its exit reason.
async fn ask<P: crate::Protocol<Reply = ()>, T: Send + 'static>(
    server: &ServerRef<P>,
    request: impl FnOnce(ReplyTo<T>) -> P::Call,
) -> Result<T, SupervisorError> {
    Ok(server.request(request, crate::Timeout::Infinity).await?)
}

/// A running static supervisor.
#[derive(Clone, Debug)]
pub struct SupervisorRef {
    server: ServerRef<SupervisorProcess>,
}

impl SupervisorRef {
    pub(crate) fn new(server: ServerRef<SupervisorProcess>) -> Self {
        Self { server }
    }

    /// The supervisor registered under `name`, if it is a static supervisor.
    pub fn whereis(name: &str) -> Option<Self> {
        ServerRef::whereis(name).map(Self::new)
    }

    /// Every child in start order: id, process (or restarting / undefined), type.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        ask(&self.server, server::Request::WhichChildren).await
    }

    /// Counts of specs, running children, supervisors and workers.
    pub async fn count_children(&self) -> Result<ChildCounts, SupervisorError> {
        ask(&self.server, server::Request::CountChildren).await
    }

    /// Adds a child at the end of the start order and starts it.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ActorCell, SupervisorError> {
        ask(&self.server, |a| server::Request::StartChild(spec, a)).await?
    }

    /// Stops a child by its shutdown policy; its spec stays (unless temporary), so
    /// [`restart_child`](Self::restart_child) can start it again.
    pub async fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        ask(&self.server, |a| {
            server::Request::TerminateChild(id.to_owned(), a)
        })
        .await?
    }

    /// Starts a stopped child again.
    pub async fn restart_child(&self, id: &str) -> Result<ActorCell, SupervisorError> {
        ask(&self.server, |a| {
            server::Request::RestartChild(id.to_owned(), a)
        })
        .await?
    }

    /// Removes a stopped child's spec.
    pub async fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        ask(&self.server, |a| {
            server::Request::DeleteChild(id.to_owned(), a)
        })
        .await?
    }

    /// Stops the supervisor: its children in reverse start order, each within its budget.
    pub async fn stop(&self) -> Result<(), SupervisorError> {
        Ok(self.server.stop(ExitReason::Shutdown).await?)
    }

    /// The supervisor's process.
    pub fn cell(&self) -> ActorCell {
        self.server.cell()
    }

    /// Waits until the supervisor has exited (after giving up, or being stopped).
    pub async fn wait_exit(&self) {
        self.server.wait_exit().await
    }

    /// True until the supervisor begins to exit.
    pub fn is_alive(&self) -> bool {
        self.server.is_alive()
    }
}

/// A running dynamic supervisor.
#[derive(Clone, Debug)]
pub struct DynamicSupervisorRef {
    server: ServerRef<DynamicProcess>,
}

impl DynamicSupervisorRef {
    pub(crate) fn new(server: ServerRef<DynamicProcess>) -> Self {
        Self { server }
    }

    /// The dynamic supervisor registered under `name`, if any.
    pub fn whereis(name: &str) -> Option<Self> {
        ServerRef::whereis(name).map(Self::new)
    }

    /// Starts a child and returns its process.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ActorCell, SupervisorError> {
        ask(&self.server, |a| dynamic::Request::StartChild(spec, a)).await?
    }

    /// Stops a child by its process id; dynamic children are not kept once stopped.
    pub async fn terminate_child(&self, pid: ActorId) -> Result<(), SupervisorError> {
        ask(&self.server, |a| dynamic::Request::TerminateChild(pid, a)).await?
    }

    /// Every child (in no particular order).
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        ask(&self.server, dynamic::Request::WhichChildren).await
    }

    /// Counts of children.
    pub async fn count_children(&self) -> Result<ChildCounts, SupervisorError> {
        ask(&self.server, dynamic::Request::CountChildren).await
    }

    /// Stops the supervisor and all its children, concurrently.
    pub async fn stop(&self) -> Result<(), SupervisorError> {
        Ok(self.server.stop(ExitReason::Shutdown).await?)
    }

    /// The supervisor's process.
    pub fn cell(&self) -> ActorCell {
        self.server.cell()
    }

    /// Waits until the supervisor has exited.
    pub async fn wait_exit(&self) {
        self.server.wait_exit().await
    }
}
