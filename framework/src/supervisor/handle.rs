//! Handles to running supervisors: the `supervisor` module's control functions.

use std::sync::Arc;

use ractor::{ActorCell, ActorId};

use super::adoption::{self, Adoptions};
use super::process::{
    CountChildren, DeleteChild, GetChildSpec, Internal, RestartChild, StartChild, Supervision,
    SupervisorProcess, Target, TerminateChild, WhichChildren,
};
use super::{
    report, AutoShutdown, ChildCounts, ChildInfo, ChildSpec, Overview, Parent, SupervisorError,
};
use crate::{CallError, ExitReason, RequestOf, ServerRef, StartError};

/// Asks a supervisor. The wait is unbounded, as OTP's `supervisor` calls are: a child's
/// `init` may take its time, and a supervisor that dies answers at once with its exit
/// reason.
async fn ask<R: RequestOf<Supervision>>(
    server: &ServerRef<Supervision>,
    request: R,
) -> Result<R::Reply, SupervisorError> {
    Ok(server
        .call_timeout(request, crate::Timeout::Infinity)
        .await?)
}

/// A running supervisor. A dynamic supervisor is one too (as in OTP, one process type
/// runs both), so this handle also reaches a dynamic supervisor found by name.
#[derive(Clone, Debug)]
pub struct SupervisorRef {
    server: ServerRef<Supervision>,
}

impl SupervisorRef {
    pub(crate) fn new(server: ServerRef<Supervision>) -> Self {
        Self { server }
    }

    /// The supervisor registered under `name`, if any.
    pub fn whereis(name: &str) -> Option<Self> {
        ServerRef::whereis(name).map(Self::new)
    }

    /// Every child in start order: id, process (or restarting / undefined), type.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        ask(&self.server, WhichChildren).await
    }

    /// Counts of specs, running children, supervisors and workers.
    pub async fn count_children(&self) -> Result<ChildCounts, SupervisorError> {
        ask(&self.server, CountChildren).await
    }

    /// Strategy, restart intensity and its use, and every child, in one answer (what an
    /// observer shows; OTP spreads it over `which_children` and `sys:get_status`). Asked
    /// as a system message, as OTP's observer reads a supervisor through `sys`: it is
    /// answered while the supervisor is suspended too, and it is not counted among the
    /// messages the supervisor handled (so looking does not change the rates shown).
    pub async fn overview(&self) -> Result<Overview, crate::sys::SysError> {
        crate::sys::with_state::<SupervisorProcess, _>(&self.server, |supervisor| {
            supervisor.overview()
        })
        .await
    }

    /// The supervisor running as `server`, if it is one.
    pub fn from_server(server: &crate::AnyServer) -> Option<Self> {
        ServerRef::from_cell(server.cell().clone()).map(Self::new)
    }

    /// Adds a child at the end of the start order and starts it. `None` if its `init`
    /// returned [`Ignore`](crate::Ignore): its spec is kept, not running (a temporary
    /// one's is not).
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Option<ActorCell>, SupervisorError> {
        ask(&self.server, StartChild(spec)).await?
    }

    /// Stops a child by its shutdown policy; its spec stays (unless temporary), so
    /// [`restart_child`](Self::restart_child) can start it again.
    pub async fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.terminate(Target::Id(id.to_owned())).await
    }

    /// As [`terminate_child`](Self::terminate_child), naming the child by its process
    /// (also the one a pending restart replaces).
    pub async fn terminate_child_process(&self, pid: ActorId) -> Result<(), SupervisorError> {
        self.terminate(Target::Process(pid)).await
    }

    async fn terminate(&self, target: Target) -> Result<(), SupervisorError> {
        ask(&self.server, TerminateChild(target)).await?
    }

    /// Starts a stopped child again; `None` if it ignored its start.
    pub async fn restart_child(&self, id: &str) -> Result<Option<ActorCell>, SupervisorError> {
        ask(&self.server, RestartChild(id.to_owned())).await?
    }

    /// The spec of the child `id` (`supervisor:get_childspec/2`).
    pub async fn get_childspec(&self, id: &str) -> Result<ChildSpec, SupervisorError> {
        self.spec_of(Target::Id(id.to_owned())).await
    }

    async fn spec_of(&self, target: Target) -> Result<ChildSpec, SupervisorError> {
        ask(&self.server, GetChildSpec(target)).await?
    }

    /// Removes a stopped child's spec.
    pub async fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        ask(&self.server, DeleteChild(id.to_owned())).await?
    }

    /// Stops the supervisor: its children in reverse start order, each within its budget
    /// (a dynamic supervisor's all at once).
    pub async fn stop(&self) -> Result<(), SupervisorError> {
        Ok(self.server.stop(ExitReason::Shutdown).await?)
    }

    /// The supervisor's process.
    pub fn cell(&self) -> ActorCell {
        self.server.cell()
    }

    /// The supervisor as a server of any protocol (for `sys` and tools).
    pub fn server(&self) -> crate::AnyServer {
        crate::AnyServer::new(&self.server)
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

impl crate::sys::sealed::Target for SupervisorRef {
    fn post_sys(&self, request: crate::sys::SysMessage) -> bool {
        crate::sys::sealed::Target::post_sys(&self.server, request)
    }

    fn process(&self) -> ActorId {
        self.server.id()
    }
}

/// `sys` reaches supervisors too: status (strategy, intensity, children), statistics, ...
impl crate::sys::SysTarget for SupervisorRef {}

impl crate::sys::sealed::Target for DynamicSupervisorRef {
    fn post_sys(&self, request: crate::sys::SysMessage) -> bool {
        crate::sys::sealed::Target::post_sys(&self.supervisor, request)
    }

    fn process(&self) -> ActorId {
        self.supervisor.server.id()
    }
}

impl crate::sys::SysTarget for DynamicSupervisorRef {}

/// A running dynamic supervisor: its children are addressed by process (their ids need
/// not differ), and a stopped child is forgotten, so there is no `restart_child` or
/// `delete_child`.
#[derive(Clone, Debug)]
pub struct DynamicSupervisorRef {
    supervisor: SupervisorRef,
    /// Where the children this handle starts wait for adoption; `None` for a supervisor
    /// that starts them itself (with `max_children`, or a static one found by name).
    adoptions: Option<Arc<Adoptions>>,
}

impl DynamicSupervisorRef {
    pub(crate) fn new(supervisor: SupervisorRef) -> Self {
        let adoptions = adoption::find(supervisor.server.id());
        Self {
            supervisor,
            adoptions,
        }
    }

    /// The supervisor registered under `name`, if any (a static one too: its calls by
    /// process work on it as well).
    pub fn whereis(name: &str) -> Option<Self> {
        SupervisorRef::whereis(name).map(Self::new)
    }

    /// Starts a child and returns its process; `None` if it ignored its start (then
    /// nothing is kept).
    ///
    /// Unlike OTP, the child's `init` runs in the caller's task, not in the supervisor's,
    /// unless the supervisor has `max_children`: the child starts linked to the supervisor,
    /// which adopts it before it handles anything else, so that every later request sees
    /// it. Starts from many tasks run their `init`s side by side, and none waits for the
    /// supervisor (busy restarting another child, say). Await the start to its end: a
    /// start dropped while its child's start function runs may leave that child linked
    /// but unknown to the supervisor.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Option<ActorCell>, SupervisorError> {
        match &self.adoptions {
            Some(adoptions) => self.start_adopted(adoptions, spec).await,
            None => self.supervisor.start_child(spec).await,
        }
    }

    /// Starts the child here, linked to the supervisor, and leaves it for adoption (see
    /// `adoption.rs`). A supervisor shutting down refuses as one that is gone.
    async fn start_adopted(
        &self,
        adoptions: &Adoptions,
        spec: ChildSpec,
    ) -> Result<Option<ActorCell>, SupervisorError> {
        spec.check(AutoShutdown::Never)?;
        let wake = || self.supervisor.server.send_info(Internal::Adopt);
        let start = adoptions
            .begin(wake)
            .await
            .map_err(|_| SupervisorError::Call(CallError::NoProc))?;
        let parent = Parent {
            cell: self.supervisor.cell(),
            up: adoptions.up.upgrade(),
        };
        match spec.start(parent).await {
            Ok(child) => {
                let cell = child.cell().clone();
                report::started(&adoptions.label, &spec.id, cell.get_id());
                if start.started(spec, child) {
                    self.supervisor.server.send_info(Internal::Adopt);
                }
                Ok(Some(cell))
            }
            Err(StartError::Ignored) => {
                report::ignored(&adoptions.label, &spec.id);
                Ok(None)
            }
            Err(failed) => {
                report::start_failed(&adoptions.label, &spec.id, &failed);
                Err(failed.into())
            }
        }
    }

    /// Stops a child by its process id; dynamic children are not kept once stopped.
    pub async fn terminate_child(&self, pid: ActorId) -> Result<(), SupervisorError> {
        self.supervisor.terminate(Target::Process(pid)).await
    }

    /// The spec a child was started from, by its process id.
    pub async fn get_childspec(&self, pid: ActorId) -> Result<ChildSpec, SupervisorError> {
        self.supervisor.spec_of(Target::Process(pid)).await
    }

    /// Every child, in start order.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        self.supervisor.which_children().await
    }

    /// Counts of children.
    pub async fn count_children(&self) -> Result<ChildCounts, SupervisorError> {
        self.supervisor.count_children().await
    }

    /// Stops the supervisor and all its children, concurrently.
    pub async fn stop(&self) -> Result<(), SupervisorError> {
        self.supervisor.stop().await
    }

    /// The supervisor's process.
    pub fn cell(&self) -> ActorCell {
        self.supervisor.cell()
    }

    /// Waits until the supervisor has exited.
    pub async fn wait_exit(&self) {
        self.supervisor.wait_exit().await
    }
}
