//! The supervisor process, static and dynamic alike (OTP runs both in `supervisor.erl`): a
//! GenServer that links its children and, when one exits, applies the restart type, the
//! strategy and the restart intensity.
//!
//! State machine of one child: `Running` --exit--> decision:
//! - `temporary`, or `transient` after an orderly exit: no restart. The spec is forgotten
//!   if the child is temporary or the supervisor dynamic, else kept as not running;
//! - otherwise a restart, counted against the intensity. Too many: every child is stopped
//!   and the supervisor exits with `shutdown`, which its own parent handles like any child
//!   exit (escalation).
//!
//! An exited child is restarted only once every process it started is gone too (see
//! `gen_server/lineage.rs`): a killed child's own children die a moment after it.
//!
//! A restart that fails to start is retried through the mailbox (OTP's
//! `try_again_restart`), each try counted, so a child that cannot start ends in
//! escalation, not a busy loop.
//!
//! Static and dynamic supervisors differ only where [`Kind`] says: which siblings a restart
//! concerns, whether a stopped child's spec is kept, whether ids must be unique, and
//! whether children are stopped one by one in reverse order or all at once.

use std::sync::{Arc, Weak};

use ractor::{ActorCell, ActorId};

use super::adoption::{self, Adoptions};
use super::children::{Children, Place};
use super::report;
use super::shutdown::{stop_all, stop_child, subtree_gone};
use super::{
    AutoShutdown, ChildCounts, ChildInfo, ChildProcess, ChildRef, ChildSpec, DynamicFlags, Flags,
    Overview, Parent, Restart, RestartBudget, Strategy, SupervisorError, SupervisorSpec,
};
use crate::gen_server::Init;
use crate::{BoxError, Context, ExitReason, Flow, GenServer, Info, ServerRef, StartError};

crate::protocol! {
    /// What a supervisor answers: OTP's `supervisor` control functions, each with its own
    /// answer.
    pub(crate) Supervision;
    calls SupervisionCall {
        WhichChildren -> Vec<ChildInfo>,
        CountChildren -> ChildCounts,
        StartChild(ChildSpec) -> Result<Option<ActorCell>, SupervisorError>,
        TerminateChild(Target) -> Result<(), SupervisorError>,
        RestartChild(String) -> Result<Option<ActorCell>, SupervisorError>,
        DeleteChild(String) -> Result<(), SupervisorError>,
        GetChildSpec(Target) -> Result<ChildSpec, SupervisorError>,
    }
    infos Internal;
}

/// What a supervisor is started with.
pub(crate) struct Args {
    /// `Some` for a dynamic supervisor, with its `max_children`.
    dynamic: Option<Option<usize>>,
    /// Builds the spec (intensity, period, the children to start in order), inside the
    /// supervisor's own process as OTP runs `Mod:init/1`: so an `init` that panics fails
    /// this start like one that returns an error, and never takes down the caller (a
    /// parent supervisor counts it as a failed start of that child).
    build: Box<dyn FnOnce() -> Result<SupervisorSpec, BoxError> + Send>,
}

impl Args {
    pub fn fixed(spec: SupervisorSpec) -> Self {
        Self {
            dynamic: None,
            build: Box::new(move || Ok(spec)),
        }
    }

    /// A supervisor built by its `init`.
    pub fn from_init<S: super::Supervisor>(supervisor: S) -> Self {
        Self {
            dynamic: None,
            build: Box::new(move || supervisor.init()),
        }
    }

    pub fn dynamic(flags: DynamicFlags) -> Self {
        let spec = SupervisorSpec {
            flags: Flags {
                strategy: Strategy::OneForOne,
                intensity: flags.intensity,
                period: flags.period,
                auto_shutdown: AutoShutdown::Never,
            },
            children: Vec::new(),
        };
        Self {
            dynamic: Some(flags.max_children),
            build: Box::new(move || Ok(spec)),
        }
    }
}

/// Static or dynamic: the only thing that sets them apart.
#[derive(Clone, Copy)]
enum Kind {
    /// Restarts by strategy, keeps a stopped child's spec (for `restart_child`), needs
    /// unique ids, stops its children one by one in reverse start order.
    Static(Strategy),
    /// OTP's `simple_one_for_one`, Elixir's `DynamicSupervisor`: restarts one for one,
    /// forgets a child that is not restarted, stops all its children at once.
    Dynamic { max_children: Option<usize> },
}

/// A child named in a request: by id, or by process (dynamic children share ids).
pub(crate) enum Target {
    Id(String),
    Process(ActorId),
}

/// What a supervisor sends itself.
pub(crate) enum Internal {
    /// A restart to try again (OTP's `{try_again_restart, Id}`).
    RetryRestart(Place),
    /// Children wait for adoption, one of them already gone (see `adoption.rs`).
    Adopt,
    /// An adopted child had exited before its adoption: its exit, handled in turn.
    ExitedEarly(ActorId, ExitReason),
}

/// A dynamic supervisor's children started by their callers (see `adoption.rs`).
struct Adopting {
    adoptions: Arc<Adoptions>,
    /// Its own handle, to hand itself the exits that came before an adoption.
    me: ServerRef<Supervision>,
}

/// Every supervisor's process: its children and what it decides by.
pub(crate) struct SupervisorProcess {
    /// Name or id, for reports.
    label: String,
    kind: Kind,
    budget: RestartBudget,
    /// When significant children's end is this supervisor's end.
    auto_shutdown: AutoShutdown,
    children: Children,
    /// A dynamic supervisor without `max_children` adopts the children its handles start.
    adopting: Option<Adopting>,
}

impl Init<Args> for SupervisorProcess {
    async fn init(args: Args, me: &Context<Self>) -> Result<Self, BoxError> {
        let spec = (args.build)()?;
        let kind = match args.dynamic {
            Some(max_children) => Kind::Dynamic { max_children },
            None => Kind::Static(spec.flags.strategy),
        };
        if let (Kind::Static(_), Some(duplicate)) = (kind, spec.duplicate_id()) {
            return Err(Box::new(StartError::DuplicateChildId(duplicate.to_owned())));
        }
        // As OTP, every spec is checked before any child starts.
        for child in &spec.children {
            child.check(spec.flags.auto_shutdown)?;
        }
        let label = me.name().unwrap_or_else(|| me.id().to_string());
        let adopting = matches!(kind, Kind::Dynamic { max_children: None }).then(|| {
            let up = me.lineage().as_ref().map_or_else(Weak::new, Arc::downgrade);
            let adoptions = Arc::new(Adoptions::new(label.clone(), up));
            adoption::register(me.id(), &adoptions);
            Adopting {
                adoptions,
                me: me.server().clone(),
            }
        });
        let mut supervisor = SupervisorProcess {
            label,
            kind,
            budget: RestartBudget::new(spec.flags.intensity, spec.flags.period),
            auto_shutdown: spec.flags.auto_shutdown,
            children: Children::default(),
            adopting,
        };
        for child in spec.children {
            let id = child.id.clone();
            if let Err(reason) = supervisor.add(me, child).await {
                // OTP: those already started are stopped, and the start fails naming the child.
                supervisor.stop_everyone().await;
                let reason = Box::new(reason);
                return Err(Box::new(StartError::Child { id, reason }));
            }
        }
        Ok(supervisor)
    }
}

impl GenServer for SupervisorProcess {
    type Protocol = Supervision;

    async fn handle_call(
        &mut self,
        call: SupervisionCall<'_>,
        me: &Context<Self>,
    ) -> crate::Result {
        self.adopt();
        Ok(match call {
            SupervisionCall::WhichChildren(_, caller) => caller.reply(self.children.infos()),
            SupervisionCall::CountChildren(_, caller) => caller.reply(self.children.counts()),
            SupervisionCall::StartChild(StartChild(spec), caller) => {
                caller.reply(self.start_child(me, spec).await)
            }
            SupervisionCall::TerminateChild(TerminateChild(target), caller) => {
                caller.reply(self.terminate_child(target).await)
            }
            SupervisionCall::RestartChild(RestartChild(id), caller) => {
                caller.reply(self.restart_child(me, &id).await)
            }
            SupervisionCall::DeleteChild(DeleteChild(id), caller) => {
                caller.reply(self.delete_child(&id))
            }
            SupervisionCall::GetChildSpec(GetChildSpec(target), caller) => {
                caller.reply(self.child_spec(&target))
            }
        })
    }

    async fn handle_info(&mut self, info: Info<Internal>, me: &Context<Self>) -> crate::Result {
        self.adopt();
        Ok(match info {
            Info::Exit(exit) => self.child_exited(me, exit.id, exit.reason).await,
            Info::Message(Internal::ExitedEarly(pid, reason)) => {
                self.child_exited(me, pid, reason).await
            }
            Info::Message(Internal::RetryRestart(place)) if self.children.is_restarting(place) => {
                self.restart(me, place).await
            }
            _ => Flow::Continue,
        })
    }

    async fn terminate(&mut self, _reason: &ExitReason, _me: &Context<Self>) {
        // Starts in flight end first, so that their children stop with the others.
        if let Some(adopting) = &self.adopting {
            adopting.adoptions.close().await;
        }
        self.adopt();
        self.stop_everyone().await;
    }

    /// What `sys::get_status` shows of a supervisor: kind, restart intensity used,
    /// children.
    fn format_status(&self) -> String {
        let kind = match self.kind {
            Kind::Static(Strategy::OneForOne) => "one_for_one",
            Kind::Static(Strategy::OneForAll) => "one_for_all",
            Kind::Static(Strategy::RestForOne) => "rest_for_one",
            Kind::Dynamic { .. } => "dynamic (simple_one_for_one)",
        };
        let counts = self.children.counts();
        format!(
            "{kind}; {}; {} of {} children running",
            self.budget, counts.active, counts.specs
        )
    }
}

/// Starts one child under this supervisor, with OTP's progress or start-error report.
async fn start(
    me: &Context<SupervisorProcess>,
    label: &str,
    spec: &ChildSpec,
) -> Result<ChildRef, StartError> {
    let parent = Parent {
        cell: me.cell(),
        up: me.lineage(),
    };
    match spec.start(parent).await {
        Ok(child) => {
            report::started(label, &spec.id, child.cell().get_id());
            Ok(child)
        }
        Err(StartError::Ignored) => {
            report::ignored(label, &spec.id);
            Err(StartError::Ignored)
        }
        Err(reason) => {
            report::start_failed(label, &spec.id, &reason);
            Err(reason)
        }
    }
}

impl SupervisorProcess {
    /// Adopts the children its handles started (see `adoption.rs`); those that exited
    /// first have their exit handled in turn.
    fn adopt(&mut self) {
        let Some(adopting) = &self.adopting else {
            return;
        };
        let adopted = adopting.adoptions.take();
        for (spec, child) in adopted.children {
            self.children.push(spec, Some(child));
        }
        for (pid, reason) in adopted.exits {
            adopting.me.send_info(Internal::ExitedEarly(pid, reason));
        }
    }

    /// Flags, intensity used and children, in one answer.
    pub(crate) fn overview(&mut self) -> Overview {
        self.adopt();
        let (strategy, dynamic) = match self.kind {
            Kind::Static(strategy) => (strategy, false),
            Kind::Dynamic { .. } => (Strategy::OneForOne, true),
        };
        Overview {
            strategy,
            dynamic,
            intensity: self.budget.intensity(),
            period: self.budget.period(),
            restarts_used: self.budget.used(),
            children: self.children.infos(),
        }
    }

    /// `start_child`: a static supervisor refuses an id it has, a dynamic one refuses
    /// beyond `max_children`.
    async fn start_child(
        &mut self,
        me: &Context<SupervisorProcess>,
        spec: ChildSpec,
    ) -> Result<Option<ActorCell>, SupervisorError> {
        spec.check(self.auto_shutdown)?;
        match self.kind {
            Kind::Static(_) => {
                if let Some(existing) = self.children.place_of_id(&spec.id) {
                    let process = self.children.get(existing).map(|child| child.process());
                    return Err(match process.as_ref().and_then(ChildProcess::cell) {
                        Some(running) => SupervisorError::AlreadyStarted(running.clone()),
                        None => SupervisorError::AlreadyPresent(spec.id),
                    });
                }
            }
            Kind::Dynamic {
                max_children: Some(max),
            } if self.children.len() >= max => return Err(SupervisorError::MaxChildren(max)),
            Kind::Dynamic { .. } => {}
        }
        Ok(self.add(me, spec).await?)
    }

    /// Starts a child and adds it after the others. One that ignores its start is kept as
    /// not running if a restart could start it (OTP's `{ok, undefined}`).
    async fn add(
        &mut self,
        me: &Context<SupervisorProcess>,
        spec: ChildSpec,
    ) -> Result<Option<ActorCell>, StartError> {
        match start(me, &self.label, &spec).await {
            Ok(running) => {
                let cell = running.cell().clone();
                self.children.push(spec, Some(running));
                Ok(Some(cell))
            }
            Err(StartError::Ignored) => {
                // Kept as after an exit without restart.
                let place = self.children.push(spec, None);
                self.forget_if_done(place);
                Ok(None)
            }
            Err(failed) => Err(failed),
        }
    }

    async fn child_exited(
        &mut self,
        me: &Context<SupervisorProcess>,
        pid: ActorId,
        reason: ExitReason,
    ) -> Flow {
        // An exit from a child we already stopped or replaced is stale: ignore it. One from
        // a child whose start is still in flight is kept for its adoption.
        let Some(place) = self.children.place_of_running(pid) else {
            if let Some(adopting) = &self.adopting {
                if let Some(reason) = adopting.adoptions.unknown_exit(pid, reason) {
                    // Left for adoption since this callback began: adopted next turn.
                    adopting.me.send_info(Internal::ExitedEarly(pid, reason));
                }
            }
            return Flow::Continue;
        };
        let exited = self.children.mark_stopped(place);
        let Some(child) = self.children.get(place) else {
            return Flow::Continue;
        };
        let restart = child.spec.restart.restarts_after(&reason);
        report::exited(&self.label, &child.spec.id, &reason, restart);
        if restart {
            if let Some(exited) = exited {
                subtree_gone(&self.label, &child.spec.id, exited, child.spec.shutdown).await;
            }
            return self.restart(me, place).await;
        }
        let significant = child.spec.significant;
        self.forget_if_done(place);
        if significant && self.auto_shutdown_due() {
            tracing::info!(
                supervisor = self.label,
                "auto_shutdown: its significant children are done; shutting down"
            );
            self.stop_everyone().await;
            return Flow::Stop(ExitReason::Shutdown);
        }
        Flow::Continue
    }

    /// Whether a significant child's end, just recorded, ends this supervisor.
    fn auto_shutdown_due(&self) -> bool {
        match self.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => !self.children.any_significant_alive(),
        }
    }

    /// Forgets a stopped child that will not run again: temporary ones, and any child of a
    /// dynamic supervisor.
    fn forget_if_done(&mut self, place: Place) {
        match self.kind {
            Kind::Dynamic { .. } => self.children.remove(place),
            Kind::Static(_) => self.forget_if_temporary(place),
        }
    }

    /// Restarts the child at `place` and, by strategy, its siblings.
    async fn restart(&mut self, me: &Context<SupervisorProcess>, place: Place) -> Flow {
        if !self.budget.allow_restart() {
            if let Some(child) = self.children.get(place) {
                report::gave_up(&self.label, &child.spec.id);
            }
            self.stop_everyone().await;
            return Flow::Stop(ExitReason::Shutdown);
        }
        // The one-child case, by far the most common, allocates nothing.
        let (alone, siblings);
        let group: &[Place] = match self.kind {
            Kind::Static(Strategy::OneForOne) | Kind::Dynamic { .. } => {
                alone = [place];
                &alone
            }
            Kind::Static(Strategy::OneForAll) => {
                siblings = self.children.places(..);
                &siblings
            }
            Kind::Static(Strategy::RestForOne) => {
                siblings = self.children.places(place..);
                &siblings
            }
        };
        self.stop_in_reverse(group).await;
        // Temporary siblings stopped for the restart are not restarted: they go.
        for &sibling in group {
            self.forget_if_temporary(sibling);
        }
        for &member in group {
            let Some(child) = self.children.get(member) else {
                continue;
            };
            match start(me, &self.label, &child.spec).await {
                Ok(running) => self.children.set_running(member, running),
                // Not running, as after an exit without restart.
                Err(StartError::Ignored) => self.forget_if_done(member),
                Err(_) => {
                    self.children.set_restarting(member);
                    me.send_info(Internal::RetryRestart(member));
                    break;
                }
            }
        }
        Flow::Continue
    }

    fn forget_if_temporary(&mut self, place: Place) {
        if self
            .children
            .get(place)
            .is_some_and(|child| child.spec.restart == Restart::Temporary)
        {
            self.children.remove(place);
        }
    }

    /// Stops the running children among `places`, last started first.
    async fn stop_in_reverse(&mut self, places: &[Place]) {
        for &place in places.iter().rev() {
            if let Some(running) = self.children.mark_stopped(place) {
                if let Some(child) = self.children.get(place) {
                    stop_child(&self.label, &child.spec.id, running, child.spec.shutdown).await;
                }
            }
        }
    }

    /// Stops every child: a static supervisor in reverse start order, a dynamic one all
    /// at once ("in no particular order", as OTP's `simple_one_for_one`).
    async fn stop_everyone(&mut self) {
        let places = self.children.places(..);
        if let Kind::Static(_) = self.kind {
            return self.stop_in_reverse(&places).await;
        }
        let running: Vec<_> = places
            .into_iter()
            .filter_map(|place| Some((place, self.children.mark_stopped(place)?)))
            .collect();
        let children = &self.children;
        stop_all(
            &self.label,
            running.into_iter().filter_map(|(place, running)| {
                let spec = &children.get(place)?.spec;
                Some((spec.id.as_str(), running, spec.shutdown))
            }),
        )
        .await;
    }

    /// The child a request names. A dynamic supervisor's children are named by process
    /// only (OTP answers `{error, simple_one_for_one}`).
    fn find(&self, target: &Target) -> Result<Place, SupervisorError> {
        if let (Kind::Dynamic { .. }, Target::Id(_)) = (self.kind, target) {
            return Err(SupervisorError::Dynamic);
        }
        match target {
            Target::Id(id) => self.children.place_of_id(id),
            Target::Process(pid) => self.children.place_of_process(*pid),
        }
        .ok_or_else(|| not_found(target))
    }

    /// `get_childspec`.
    fn child_spec(&self, target: &Target) -> Result<ChildSpec, SupervisorError> {
        let place = self.find(target)?;
        let child = self.children.get(place).ok_or_else(|| not_found(target))?;
        Ok(ChildSpec::clone(&child.spec))
    }

    async fn terminate_child(&mut self, target: Target) -> Result<(), SupervisorError> {
        let place = self.find(&target)?;
        self.stop_in_reverse(&[place]).await;
        self.forget_if_done(place);
        Ok(())
    }

    async fn restart_child(
        &mut self,
        me: &Context<SupervisorProcess>,
        id: &str,
    ) -> Result<Option<ActorCell>, SupervisorError> {
        let place = self.stopped(id)?;
        let Some(child) = self.children.get(place) else {
            return Err(SupervisorError::NotFound(id.to_owned()));
        };
        let running = match start(me, &self.label, &child.spec).await {
            Ok(running) => running,
            Err(StartError::Ignored) => return Ok(None),
            Err(failed) => return Err(failed.into()),
        };
        let cell = running.cell().clone();
        self.children.set_running(place, running);
        Ok(Some(cell))
    }

    fn delete_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let place = self.stopped(id)?;
        self.children.remove(place);
        Ok(())
    }

    /// The place of the child `id` if it is stopped; else why not.
    fn stopped(&self, id: &str) -> Result<Place, SupervisorError> {
        if let Kind::Dynamic { .. } = self.kind {
            return Err(SupervisorError::Dynamic);
        }
        let place = self
            .children
            .place_of_id(id)
            .ok_or_else(|| SupervisorError::NotFound(id.to_owned()))?;
        match self.children.get(place).map(|child| child.process()) {
            Some(ChildProcess::Undefined) => Ok(place),
            Some(ChildProcess::Restarting) => Err(SupervisorError::Restarting(id.to_owned())),
            _ => Err(SupervisorError::Running(id.to_owned())),
        }
    }
}

fn not_found(target: &Target) -> SupervisorError {
    SupervisorError::NotFound(match target {
        Target::Id(id) => id.clone(),
        Target::Process(pid) => pid.to_string(),
    })
}
