//! The dynamic supervisor (Elixir's `DynamicSupervisor`, OTP's `simple_one_for_one`):
//! starts with no children, adds them at run time, restarts them one for one, and stops
//! them all at once on shutdown.

use std::collections::HashMap;
use std::time::Duration;

use ractor::{ActorCell, ActorId};

use super::server::{report_exit, report_giving_up, start};
use super::shutdown::stop_all;
use super::{
    ChildCounts, ChildInfo, ChildProcess, ChildRef, ChildSpec, ChildType, RestartBudget,
    SupervisorError, DEFAULT_INTENSITY, DEFAULT_PERIOD,
};
use crate::{
    BoxError, CallResponse, Context, ExitReason, Flow, GenServer, Info, Protocol, ReplyTo,
};

/// Settings of a dynamic supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicFlags {
    /// Restarts allowed within `period` before the supervisor gives up.
    pub intensity: u32,
    /// The window for `intensity`.
    pub period: Duration,
    /// Refuse `start_child` beyond this many children (`max_children`); `None`: no limit.
    pub max_children: Option<usize>,
}

impl Default for DynamicFlags {
    fn default() -> Self {
        Self {
            intensity: DEFAULT_INTENSITY,
            period: DEFAULT_PERIOD,
            max_children: None,
        }
    }
}

pub(crate) struct DynamicProcess;

/// Control requests, each with its own typed answer.
pub(crate) enum Request {
    StartChild(ChildSpec, ReplyTo<Result<ActorCell, SupervisorError>>),
    TerminateChild(ActorId, ReplyTo<Result<(), SupervisorError>>),
    WhichChildren(ReplyTo<Vec<ChildInfo>>),
    CountChildren(ReplyTo<ChildCounts>),
}

/// Try the failed restarts again.
pub(crate) struct RetryRestarts;

pub(crate) struct State {
    label: String,
    budget: RestartBudget,
    max_children: Option<usize>,
    /// Keyed by process: dynamic children are addressed by pid, their ids need not differ.
    children: HashMap<ActorId, (ChildSpec, ChildRef)>,
    /// Children whose restart failed, waiting for [`RetryRestarts`].
    restarting: Vec<ChildSpec>,
}

impl Protocol for DynamicProcess {
    type Call = Request;
    /// Each request carries its own typed answer.
    type Reply = ();
    type Cast = ();
}

impl GenServer for DynamicProcess {
    type Protocol = Self;
    type Args = DynamicFlags;
    type State = State;
    type Info = RetryRestarts;

    async fn init(&self, me: &Context<Self>, flags: DynamicFlags) -> Result<State, BoxError> {
        Ok(State {
            label: me.name().unwrap_or_else(|| me.id().to_string()),
            budget: RestartBudget::new(flags.intensity, flags.period),
            max_children: flags.max_children,
            children: HashMap::new(),
            restarting: Vec::new(),
        })
    }

    async fn handle_call(
        &self,
        me: &Context<Self>,
        request: Request,
        _from: &mut ReplyTo<()>,
        state: &mut State,
    ) -> Result<CallResponse<()>, BoxError> {
        match request {
            Request::StartChild(spec, answer) => {
                _ = answer.reply(state.start_child(me, spec).await)
            }
            Request::TerminateChild(pid, answer) => {
                _ = answer.reply(state.terminate_child(pid).await)
            }
            Request::WhichChildren(answer) => _ = answer.reply(state.which_children()),
            Request::CountChildren(answer) => _ = answer.reply(state.count_children()),
        }
        Ok(CallResponse::NoReply)
    }

    async fn handle_info(
        &self,
        me: &Context<Self>,
        message: Info<RetryRestarts>,
        state: &mut State,
    ) -> Result<Flow, BoxError> {
        Ok(match message {
            Info::Exit(exit) => state.child_exited(me, exit.id, exit.reason).await,
            Info::Message(RetryRestarts) => {
                for spec in std::mem::take(&mut state.restarting) {
                    if let Flow::Stop(reason) = state.restart(me, spec).await {
                        return Ok(Flow::Stop(reason));
                    }
                }
                Flow::Continue
            }
            _ => Flow::Continue,
        })
    }

    async fn terminate(&self, _me: &Context<Self>, _reason: &ExitReason, state: &mut State) {
        state.stop_everyone().await;
    }
}

impl State {
    async fn start_child(
        &mut self,
        me: &Context<DynamicProcess>,
        spec: ChildSpec,
    ) -> Result<ActorCell, SupervisorError> {
        if let Some(max) = self.max_children {
            if self.children.len() + self.restarting.len() >= max {
                return Err(SupervisorError::MaxChildren(max));
            }
        }
        let running = start(me, &self.label, &spec).await?;
        let cell = running.cell().clone();
        self.children.insert(cell.get_id(), (spec, running));
        Ok(cell)
    }

    async fn terminate_child(&mut self, pid: ActorId) -> Result<(), SupervisorError> {
        let (spec, running) = self
            .children
            .remove(&pid)
            .ok_or_else(|| SupervisorError::NotFound(pid.to_string()))?;
        super::shutdown::stop_child(&self.label, &spec.id, &running, spec.shutdown).await;
        Ok(())
    }

    async fn child_exited(
        &mut self,
        me: &Context<DynamicProcess>,
        pid: ActorId,
        reason: ExitReason,
    ) -> Flow {
        let Some((spec, _)) = self.children.remove(&pid) else {
            return Flow::Continue;
        };
        let restart = spec.restart.restarts_after(&reason);
        report_exit(&self.label, &spec.id, &reason, restart);
        if restart {
            self.restart(me, spec).await
        } else {
            Flow::Continue
        }
    }

    async fn restart(&mut self, me: &Context<DynamicProcess>, spec: ChildSpec) -> Flow {
        if !self.budget.allow_restart() {
            report_giving_up(&self.label, &spec.id);
            self.stop_everyone().await;
            return Flow::Stop(ExitReason::Shutdown);
        }
        match start(me, &self.label, &spec).await {
            Ok(running) => {
                self.children
                    .insert(running.cell().get_id(), (spec, running));
            }
            Err(_) => {
                self.restarting.push(spec);
                me.send_info(RetryRestarts);
            }
        }
        Flow::Continue
    }

    async fn stop_everyone(&mut self) {
        let children = std::mem::take(&mut self.children);
        stop_all(
            &self.label,
            children
                .values()
                .map(|(spec, running)| (spec.id.as_str(), running, spec.shutdown)),
        )
        .await;
    }

    fn which_children(&self) -> Vec<ChildInfo> {
        let running = self.children.values().map(|(spec, running)| ChildInfo {
            id: spec.id.clone(),
            process: ChildProcess::Running(running.cell().clone()),
            kind: spec.kind,
        });
        let restarting = self.restarting.iter().map(|spec| ChildInfo {
            id: spec.id.clone(),
            process: ChildProcess::Restarting,
            kind: spec.kind,
        });
        running.chain(restarting).collect()
    }

    fn count_children(&self) -> ChildCounts {
        let mut counts = ChildCounts {
            specs: self.children.len() + self.restarting.len(),
            active: self.children.len(),
            ..ChildCounts::default()
        };
        let kinds = self
            .children
            .values()
            .map(|(spec, _)| spec.kind)
            .chain(self.restarting.iter().map(|spec| spec.kind));
        for kind in kinds {
            match kind {
                ChildType::Worker => counts.workers += 1,
                ChildType::Supervisor => counts.supervisors += 1,
            }
        }
        counts
    }
}
