//! One look at the node: every supervision tree (walked from [`supervisor::roots`]), each
//! process's counts through `sys`, and the node's links. Taken once a second while a page
//! watches, and never otherwise.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use futures::future::{join_all, BoxFuture};
use futures::FutureExt;
use ractor::ActorId;
use serde::{Deserialize, Serialize};

use crate::node::{LinkInfo, Node};
use crate::supervisor::{self, ChildProcess, ChildType, Strategy, SupervisorRef};
use crate::sys::{self, Status};
use crate::AnyServer;

/// How long one process may take to answer while a snapshot is taken: a busy process is
/// shown as busy rather than holding up the whole page.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_millis(800);

/// A node at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeView {
    /// The node's name (`local` when distribution is not started).
    pub node: String,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub taken_ms: u64,
    /// Its supervision trees, oldest root first.
    pub trees: Vec<ProcessView>,
    /// Its links to peers.
    pub links: Vec<LinkInfo>,
}

impl NodeView {
    /// The process with spec id `id` (a root's: its name), in any tree, depth first.
    pub fn find(&self, id: &str) -> Option<&ProcessView> {
        self.trees.iter().find_map(|tree| tree.find(id))
    }
}

/// One process of a tree: a root supervisor, or a supervisor's child (running or not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessView {
    /// The child spec id (a root's name, or its pid).
    pub id: String,
    /// Worker or supervisor.
    pub kind: ChildType,
    /// `running`, `restarting` or `not_running`.
    pub state: RunState,
    /// Restarts so far under its supervisor.
    pub restarts: u32,
    /// Its process id, while running.
    pub pid: Option<String>,
    /// Its registered name.
    pub name: Option<String>,
    /// The protocol it serves (a type name).
    pub protocol: Option<String>,
    /// The type that implements its behaviour.
    pub behaviour: Option<String>,
    /// Messages waiting in its mailbox (counted since the observer first saw it).
    pub mailbox: Option<usize>,
    /// Messages handled per second since the last snapshot.
    pub per_second: Option<f64>,
    /// Messages handled since it started.
    pub handled: Option<u64>,
    /// Suspended through `sys::suspend`.
    pub suspended: bool,
    /// `sys::trace` is on.
    pub tracing: bool,
    /// It did not answer within the snapshot's time: a long callback, or a full mailbox.
    pub busy: bool,
    /// Its own children, if it is a supervisor.
    pub supervisor: Option<SupervisorView>,
}

impl ProcessView {
    /// This process or the first below it with spec id `id`, depth first.
    pub fn find(&self, id: &str) -> Option<&ProcessView> {
        if self.id == id {
            return Some(self);
        }
        let children = &self.supervisor.as_ref()?.children;
        children.iter().find_map(|child| child.find(id))
    }
}

/// Whether a child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Running.
    Running,
    /// Its restart failed and will be tried again.
    Restarting,
    /// Not running: exited without restart, or terminated on request.
    NotRunning,
    /// Its process is gone, and its supervisor has not handled the exit yet (it is busy,
    /// or suspended).
    Exited,
}

/// A supervisor's flags and its children.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SupervisorView {
    /// Its restart strategy.
    pub strategy: Strategy,
    /// A dynamic supervisor (children addressed by process, not kept once stopped).
    pub dynamic: bool,
    /// Restarts allowed per period.
    pub intensity: u32,
    /// The period, in milliseconds.
    pub period_ms: u64,
    /// Restarts within the last period.
    pub restarts_used: usize,
    /// Its children, in start order.
    pub children: Vec<ProcessView>,
}

/// A running process the observer can act on, found again by its pid.
#[derive(Clone, Debug)]
pub(crate) struct Known {
    pub(crate) server: AnyServer,
    /// Its supervisor and child id; `None` for a root.
    pub(crate) parent: Option<Parent>,
}

/// Where a child sits: its supervisor, its spec id, and whether that supervisor is
/// dynamic (its children are terminated by process, not by id).
#[derive(Clone, Debug)]
pub(crate) struct Parent {
    pub(crate) supervisor: SupervisorRef,
    pub(crate) child: String,
    pub(crate) dynamic: bool,
    pub(crate) strategy: Strategy,
}

/// Takes snapshots, remembering what rates need between two of them.
#[derive(Default)]
pub(crate) struct Sampler {
    /// Messages handled at the last snapshot, by process.
    last_handled: HashMap<ActorId, (u64, Instant)>,
}

/// Processes whose mailbox counting an observer turned on (not those that counted
/// already: their owner wants it). Kept beside the observer, not in it, so that one
/// restarted after a kill still knows which counts are its own to turn off.
fn counting() -> &'static Mutex<HashMap<ActorId, AnyServer>> {
    static COUNTING: OnceLock<Mutex<HashMap<ActorId, AnyServer>>> = OnceLock::new();
    COUNTING.get_or_init(Mutex::default)
}

fn lock_counting() -> std::sync::MutexGuard<'static, HashMap<ActorId, AnyServer>> {
    counting()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Turns off the mailbox counting observers turned on, all at once; not that of
/// `except` (an observer that is stopping cannot answer).
pub(crate) async fn stop_counting(except: Option<ActorId>) {
    let counting: Vec<AnyServer> = lock_counting()
        .drain()
        .map(|(_, server)| server)
        .filter(|server| Some(server.id()) != except)
        .collect();
    let stops = counting
        .iter()
        .map(|server| tokio::time::timeout(ANSWER_WITHIN, sys::statistics(server, false)));
    join_all(stops).await;
}

/// What one walk finds beside the view: the processes by pid, for actions.
pub(crate) type Index = HashMap<String, Known>;

/// What asking one process gave: its status, if it answered in time.
type Answer = Option<Status>;

/// Asks one process its status, turning its mailbox counting on the first time; `None`
/// if it does not answer within [`ANSWER_WITHIN`].
async fn ask(server: &AnyServer) -> Answer {
    let count = sys::queued(server).is_none();
    if count {
        // Ours from the moment it is asked: an answer that comes late still turns
        // counting on.
        lock_counting().insert(server.id(), server.clone());
    }
    let ask = async {
        if count {
            sys::statistics(server, true).await.ok()?;
        }
        sys::get_status(server).await.ok()
    };
    tokio::time::timeout(ANSWER_WITHIN, ask)
        .await
        .ok()
        .flatten()
}

impl Sampler {
    /// Looks at the whole node.
    pub(crate) async fn take(&mut self, node: Option<&Node>) -> (NodeView, Index) {
        let mut index = Index::new();
        let roots: Vec<AnyServer> = supervisor::roots()
            .iter()
            .map(SupervisorRef::server)
            .collect();
        let answers = join_all(roots.iter().map(ask)).await;
        let mut trees = Vec::with_capacity(roots.len());
        for (server, answer) in roots.iter().zip(answers) {
            let mut view = self.view_of(server, answer, None, &mut index).await;
            view.id = server.name().unwrap_or_else(|| server.id().to_string());
            view.kind = ChildType::Supervisor;
            trees.push(view);
        }
        let links = match node {
            Some(node) => tokio::time::timeout(ANSWER_WITHIN, node.links()).await,
            None => Ok(Ok(Vec::new())),
        };
        let seen: HashSet<ActorId> = index.values().map(|known| known.server.id()).collect();
        self.last_handled.retain(|id, _| seen.contains(id));
        lock_counting().retain(|id, server| seen.contains(id) || server.is_alive());
        let view = NodeView {
            node: node.map_or_else(|| "local".to_owned(), |node| node.name().to_owned()),
            taken_ms: sys::unix_ms(SystemTime::now()),
            trees,
            links: links.ok().and_then(Result::ok).unwrap_or_default(),
        };
        (view, index)
    }

    /// A running process, and below it, if it is a supervisor, its children.
    fn view_of<'a>(
        &'a mut self,
        server: &'a AnyServer,
        answer: Answer,
        parent: Option<Parent>,
        index: &'a mut Index,
    ) -> BoxFuture<'a, ProcessView> {
        async move {
            let status = answer;
            let now = Instant::now();
            let per_second = status.as_ref().and_then(|status| {
                let handled = status.statistics.handled;
                let last = self.last_handled.insert(server.id(), (handled, now));
                let (before, then) = last?;
                let elapsed = now.duration_since(then).as_secs_f64();
                (elapsed > 0.0).then(|| handled.saturating_sub(before) as f64 / elapsed)
            });
            index.insert(
                server.id().to_string(),
                Known {
                    server: server.clone(),
                    parent,
                },
            );
            // A supervisor that did not answer its status would not answer this either.
            let supervisor = match (&status, SupervisorRef::from_server(server)) {
                (Some(_), Some(supervisor)) => self.supervisor(&supervisor, index).await,
                _ => None,
            };
            ProcessView {
                id: String::new(),
                kind: ChildType::Worker,
                state: RunState::Running,
                restarts: 0,
                pid: Some(server.id().to_string()),
                name: server.name(),
                protocol: Some(server.protocol().to_owned()),
                behaviour: status.as_ref().map(|status| status.behaviour.clone()),
                mailbox: sys::queued(server),
                per_second,
                handled: status.as_ref().map(|status| status.statistics.handled),
                suspended: status.as_ref().is_some_and(|status| status.suspended),
                tracing: status.as_ref().is_some_and(|status| status.tracing),
                busy: status.is_none(),
                supervisor,
            }
        }
        .boxed()
    }

    /// A supervisor's flags and children (asked all at once); `None` if it did not
    /// answer in time.
    async fn supervisor(
        &mut self,
        supervisor: &SupervisorRef,
        index: &mut Index,
    ) -> Option<SupervisorView> {
        let overview = tokio::time::timeout(ANSWER_WITHIN, supervisor.overview())
            .await
            .ok()?
            .ok()?;
        let asks = overview.children.iter().map(|child| async {
            match &child.process {
                ChildProcess::Running(server) => ask(server).await,
                _ => None,
            }
        });
        let answers = join_all(asks).await;
        let mut children = Vec::with_capacity(overview.children.len());
        for (child, answer) in overview.children.into_iter().zip(answers) {
            let parent = Parent {
                supervisor: supervisor.clone(),
                child: child.id.clone(),
                dynamic: overview.dynamic,
                strategy: overview.strategy,
            };
            let mut view = match &child.process {
                ChildProcess::Running(server) if !server.is_alive() => stopped(RunState::Exited),
                ChildProcess::Running(server) => {
                    self.view_of(server, answer, Some(parent), index).await
                }
                ChildProcess::Restarting => stopped(RunState::Restarting),
                ChildProcess::Undefined => stopped(RunState::NotRunning),
            };
            view.id = child.id;
            view.kind = child.kind;
            view.restarts = child.restarts;
            children.push(view);
        }
        Some(SupervisorView {
            strategy: overview.strategy,
            dynamic: overview.dynamic,
            intensity: overview.intensity,
            period_ms: u64::try_from(overview.period.as_millis()).unwrap_or(u64::MAX),
            restarts_used: overview.restarts_used,
            children,
        })
    }
}

fn stopped(state: RunState) -> ProcessView {
    ProcessView {
        id: String::new(),
        kind: ChildType::Worker,
        state,
        restarts: 0,
        pid: None,
        name: None,
        protocol: None,
        behaviour: None,
        mailbox: None,
        per_second: None,
        handled: None,
        suspended: false,
        tracing: false,
        busy: false,
        supervisor: None,
    }
}
