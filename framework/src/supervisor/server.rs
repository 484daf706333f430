//! The supervisor process: a GenServer that links its children and, when one exits, applies
//! the restart type, the strategy and the restart intensity, as OTP's `supervisor.erl`.
//!
//! State machine of one child: `Running` --exit--> decision:
//! - `temporary`, or `transient` after an orderly exit: no restart (temporary is removed);
//! - otherwise a restart, counted against the intensity. Too many: every child is stopped in
//!   reverse start order and the supervisor exits with `shutdown`, which its own parent
//!   handles like any child exit (escalation).
//!
//! A restart that fails to start is retried through the mailbox (OTP's `try_again_restart`),
//! each try counted, so a child that cannot start ends in escalation, not a busy loop.

use ractor::{ActorCell, ActorId};

use super::shutdown::stop_child;
use super::{
    ChildCounts, ChildInfo, ChildProcess, ChildRef, ChildSpec, ChildType, Parent, Restart,
    RestartBudget, Strategy, SupervisorError, SupervisorSpec,
};
use crate::{
    BoxError, CallResponse, Context, ExitReason, Flow, GenServer, Info, Protocol, ReplyTo,
    StartError,
};

/// The GenServer behaviour of every static supervisor; its args are the tree's spec.
pub(crate) struct SupervisorProcess;

/// Control requests (`supervisor:which_children/1`, ...), each with its own typed answer.
pub(crate) enum Request {
    WhichChildren(ReplyTo<Vec<ChildInfo>>),
    CountChildren(ReplyTo<ChildCounts>),
    StartChild(ChildSpec, ReplyTo<Result<ActorCell, SupervisorError>>),
    TerminateChild(String, ReplyTo<Result<(), SupervisorError>>),
    RestartChild(String, ReplyTo<Result<ActorCell, SupervisorError>>),
    DeleteChild(String, ReplyTo<Result<(), SupervisorError>>),
}

/// A restart to try again (OTP's `{try_again_restart, Id}`).
pub(crate) struct RetryRestart(String);

pub(crate) struct State {
    /// Name or id, for reports.
    label: String,
    strategy: Strategy,
    budget: RestartBudget,
    /// In start order: starting goes forwards, stopping backwards.
    children: Vec<Child>,
}

struct Child {
    spec: ChildSpec,
    status: Status,
}

enum Status {
    Running(ChildRef),
    /// A restart failed and is queued for another try.
    Restarting,
    /// Not running: exited without restart, terminated by request, or not yet restarted.
    Stopped,
}

impl Protocol for SupervisorProcess {
    type Call = Request;
    /// Each request carries its own typed answer.
    type Reply = ();
    type Cast = ();
}

impl GenServer for SupervisorProcess {
    type Protocol = Self;
    type Args = SupervisorSpec;
    type State = State;
    type Info = RetryRestart;

    async fn init(&self, me: &Context<Self>, spec: SupervisorSpec) -> Result<State, BoxError> {
        let label = me.name().unwrap_or_else(|| me.id().to_string());
        if let Some(duplicate) = spec.duplicate_id() {
            return Err(Box::new(StartError::DuplicateChildId(duplicate.to_owned())));
        }
        let mut state = State {
            label,
            strategy: spec.flags.strategy,
            budget: RestartBudget::new(spec.flags.intensity, spec.flags.period),
            children: Vec::with_capacity(spec.children.len()),
        };
        for spec in spec.children {
            match start(me, &state.label, &spec).await {
                Ok(child) => state.children.push(Child {
                    spec,
                    status: Status::Running(child),
                }),
                Err(reason) => {
                    state.stop_range(0..state.children.len()).await;
                    return Err(Box::new(StartError::Child {
                        id: spec.id,
                        reason: Box::new(reason),
                    }));
                }
            }
        }
        Ok(state)
    }

    async fn handle_call(
        &self,
        me: &Context<Self>,
        request: Request,
        _from: &mut ReplyTo<()>,
        state: &mut State,
    ) -> Result<CallResponse<()>, BoxError> {
        match request {
            Request::WhichChildren(answer) => _ = answer.reply(state.which_children()),
            Request::CountChildren(answer) => _ = answer.reply(state.count_children()),
            Request::StartChild(spec, answer) => {
                _ = answer.reply(state.start_child(me, spec).await)
            }
            Request::TerminateChild(id, answer) => {
                _ = answer.reply(state.terminate_child(&id).await)
            }
            Request::RestartChild(id, answer) => {
                _ = answer.reply(state.restart_child(me, &id).await)
            }
            Request::DeleteChild(id, answer) => _ = answer.reply(state.delete_child(&id)),
        }
        Ok(CallResponse::NoReply)
    }

    async fn handle_info(
        &self,
        me: &Context<Self>,
        message: Info<RetryRestart>,
        state: &mut State,
    ) -> Result<Flow, BoxError> {
        Ok(match message {
            Info::Exit(exit) => state.child_exited(me, exit.id, exit.reason).await,
            Info::Message(RetryRestart(id)) => match state.index_of(&id) {
                Some(index) if matches!(state.children[index].status, Status::Restarting) => {
                    state.restart(me, index).await
                }
                _ => Flow::Continue,
            },
            _ => Flow::Continue,
        })
    }

    async fn terminate(&self, _me: &Context<Self>, _reason: &ExitReason, state: &mut State) {
        state.stop_range(0..state.children.len()).await;
    }
}

/// Starts one child under this supervisor, with OTP's progress or start-error report.
pub(crate) async fn start<G: GenServer>(
    me: &Context<G>,
    label: &str,
    spec: &ChildSpec,
) -> Result<ChildRef, StartError> {
    let parent = Parent { cell: me.cell() };
    match spec.start(parent).await {
        Ok(child) => {
            tracing::info!(supervisor = label, child = %spec.id, pid = %child.cell().get_id(), "child started");
            Ok(child)
        }
        Err(reason) => {
            tracing::error!(supervisor = label, child = %spec.id, %reason, "start_error: child failed to start");
            Err(reason)
        }
    }
}

/// OTP's `child_terminated` report, with the decision taken.
pub(crate) fn report_exit(label: &str, id: &str, reason: &ExitReason, restart: bool) {
    if reason.is_orderly() {
        tracing::info!(supervisor = label, child = id, %reason, restart, "child terminated");
    } else {
        tracing::error!(supervisor = label, child = id, %reason, restart, "child_terminated");
    }
}

/// OTP's `shutdown` supervisor report: too many restarts, the supervisor gives up.
pub(crate) fn report_giving_up(label: &str, offender: &str) {
    tracing::error!(
        supervisor = label,
        child = offender,
        "shutdown: reached_max_restart_intensity; stopping all children"
    );
}

impl State {
    fn index_of(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|child| child.spec.id == id)
    }

    fn index_of_process(&self, pid: ActorId) -> Option<usize> {
        self.children.iter().position(|child| match &child.status {
            Status::Running(running) => running.cell().get_id() == pid,
            _ => false,
        })
    }

    async fn child_exited(
        &mut self,
        me: &Context<SupervisorProcess>,
        pid: ActorId,
        reason: ExitReason,
    ) -> Flow {
        // An exit from a child we already stopped or replaced is stale: ignore it.
        let Some(index) = self.index_of_process(pid) else {
            return Flow::Continue;
        };
        let child = &mut self.children[index];
        child.status = Status::Stopped;
        let restart = child.spec.restart.restarts_after(&reason);
        report_exit(&self.label, &child.spec.id, &reason, restart);
        if child.spec.restart == Restart::Temporary {
            self.children.remove(index);
        }
        if restart {
            self.restart(me, index).await
        } else {
            Flow::Continue
        }
    }

    /// Restarts the child at `index` and, by strategy, its siblings.
    async fn restart(&mut self, me: &Context<SupervisorProcess>, index: usize) -> Flow {
        if !self.budget.allow_restart() {
            report_giving_up(&self.label, &self.children[index].spec.id);
            self.stop_range(0..self.children.len()).await;
            return Flow::Stop(ExitReason::Shutdown);
        }
        let group = match self.strategy {
            Strategy::OneForOne => index..index + 1,
            Strategy::OneForAll => 0..self.children.len(),
            Strategy::RestForOne => index..self.children.len(),
        };
        self.stop_range(group.clone()).await;
        // Temporary siblings stopped for the restart are not restarted: they go.
        let mut end = group.end;
        let mut at = group.start;
        while at < end {
            if self.children[at].spec.restart == Restart::Temporary {
                self.children.remove(at);
                end -= 1;
            } else {
                at += 1;
            }
        }
        for at in group.start..end {
            let child = &mut self.children[at];
            match start(me, &self.label, &child.spec).await {
                Ok(running) => child.status = Status::Running(running),
                Err(_) => {
                    child.status = Status::Restarting;
                    me.send_info(RetryRestart(child.spec.id.clone()));
                    break;
                }
            }
        }
        Flow::Continue
    }

    /// Stops the running children in `range`, last started first.
    async fn stop_range(&mut self, range: std::ops::Range<usize>) {
        for child in self.children[range].iter_mut().rev() {
            if let Status::Running(running) = std::mem::replace(&mut child.status, Status::Stopped)
            {
                stop_child(&self.label, &child.spec.id, &running, child.spec.shutdown).await;
            }
        }
    }

    fn which_children(&self) -> Vec<ChildInfo> {
        self.children
            .iter()
            .map(|child| ChildInfo {
                id: child.spec.id.clone(),
                process: match &child.status {
                    Status::Running(running) => ChildProcess::Running(running.cell().clone()),
                    Status::Restarting => ChildProcess::Restarting,
                    Status::Stopped => ChildProcess::Undefined,
                },
                kind: child.spec.kind,
            })
            .collect()
    }

    fn count_children(&self) -> ChildCounts {
        let mut counts = ChildCounts {
            specs: self.children.len(),
            ..ChildCounts::default()
        };
        for child in &self.children {
            if matches!(child.status, Status::Running(_)) {
                counts.active += 1;
            }
            match child.spec.kind {
                ChildType::Worker => counts.workers += 1,
                ChildType::Supervisor => counts.supervisors += 1,
            }
        }
        counts
    }

    async fn start_child(
        &mut self,
        me: &Context<SupervisorProcess>,
        spec: ChildSpec,
    ) -> Result<ActorCell, SupervisorError> {
        if let Some(index) = self.index_of(&spec.id) {
            return Err(match &self.children[index].status {
                Status::Running(running) => SupervisorError::AlreadyStarted(running.cell().clone()),
                _ => SupervisorError::AlreadyPresent(spec.id),
            });
        }
        let running = start(me, &self.label, &spec).await?;
        let cell = running.cell().clone();
        self.children.push(Child {
            spec,
            status: Status::Running(running),
        });
        Ok(cell)
    }

    async fn terminate_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let index = self
            .index_of(id)
            .ok_or_else(|| SupervisorError::NotFound(id.to_owned()))?;
        self.stop_range(index..index + 1).await;
        if self.children[index].spec.restart == Restart::Temporary {
            self.children.remove(index);
        }
        Ok(())
    }

    async fn restart_child(
        &mut self,
        me: &Context<SupervisorProcess>,
        id: &str,
    ) -> Result<ActorCell, SupervisorError> {
        let index = self
            .index_of(id)
            .ok_or_else(|| SupervisorError::NotFound(id.to_owned()))?;
        let child = &mut self.children[index];
        match child.status {
            Status::Running(_) => Err(SupervisorError::Running(id.to_owned())),
            Status::Restarting => Err(SupervisorError::Restarting(id.to_owned())),
            Status::Stopped => {
                let running = start(me, &self.label, &child.spec).await?;
                let cell = running.cell().clone();
                child.status = Status::Running(running);
                Ok(cell)
            }
        }
    }

    fn delete_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let index = self
            .index_of(id)
            .ok_or_else(|| SupervisorError::NotFound(id.to_owned()))?;
        match self.children[index].status {
            Status::Running(_) => Err(SupervisorError::Running(id.to_owned())),
            Status::Restarting => Err(SupervisorError::Restarting(id.to_owned())),
            Status::Stopped => {
                self.children.remove(index);
                Ok(())
            }
        }
    }
}
