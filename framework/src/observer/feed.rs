//! What pages are shown: snapshots of this node and of the peers that share theirs, taken
//! once a second while at least one page watches, and the supervisor reports of late.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use super::snapshot::{Index, NodeView, Sampler};
use super::{ObserverServer, Reply, Request, AGENT_NAME};
use crate::node::Node;
use crate::supervisor::report::Report;

/// How often pages get a new snapshot.
pub(crate) const EVERY: Duration = Duration::from_secs(1);

/// A snapshot younger than this is answered again rather than taken anew (a page and a
/// peer asking in the same moment share one walk).
const FRESH: Duration = Duration::from_millis(500);

/// How long a peer's observer may take to send its snapshot.
const PEER_WITHIN: Duration = Duration::from_secs(2);

/// Reports a page opened now is shown from the past.
const BACKLOG: usize = 200;

/// The observer's shared state: its sampler, the last snapshot, the reports of late.
pub(crate) struct Feed {
    /// One walk at a time: rates are per walk.
    sampler: tokio::sync::Mutex<Sampler>,
    /// The last local snapshot, with the processes it found (for actions).
    latest: Mutex<Option<Latest>>,
    /// What pages are sent, as JSON: every subscriber is a page watching.
    pages: watch::Sender<Arc<str>>,
    /// The latest reports, oldest first.
    reports: Mutex<VecDeque<Report>>,
}

struct Latest {
    at: Instant,
    view: NodeView,
    index: Arc<Index>,
}

/// What a page gets each second (the data of a `snapshot` event, as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page {
    /// This node.
    pub local: NodeView,
    /// Each linked peer.
    pub peers: Vec<PeerView>,
}

/// A peer's tree, or why it is not shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerView {
    /// The peer's node name.
    pub node: String,
    /// Its tree, if its observer shares it.
    pub view: Option<NodeView>,
    /// Why not, otherwise.
    pub error: Option<String>,
}

impl Feed {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            sampler: tokio::sync::Mutex::default(),
            latest: Mutex::new(None),
            pages: watch::channel(Arc::from("")).0,
            reports: Mutex::new(VecDeque::with_capacity(BACKLOG)),
        })
    }

    /// A page starts watching: it gets every snapshot from the next one on.
    pub(crate) fn watch(&self) -> watch::Receiver<Arc<str>> {
        self.pages.subscribe()
    }

    /// The reports kept so far, oldest first.
    pub(crate) fn backlog(&self) -> Vec<Report> {
        lock(&self.reports).iter().cloned().collect()
    }

    /// The processes of the last snapshot, by pid (what actions may name).
    pub(crate) fn index(&self) -> Arc<Index> {
        lock(&self.latest)
            .as_ref()
            .map(|latest| latest.index.clone())
            .unwrap_or_default()
    }

    /// This node now, or as it was less than [`FRESH`] ago.
    pub(crate) async fn local(&self) -> NodeView {
        self.local_with(Node::local().await.ok().as_ref()).await
    }

    /// As [`local`](Self::local), with the node (looked up anew each time: a node
    /// restarted by its supervisor is another incarnation, with another handle).
    async fn local_with(&self, node: Option<&Node>) -> NodeView {
        let mut sampler = self.sampler.lock().await;
        if let Some(latest) = lock(&self.latest).as_ref() {
            if latest.at.elapsed() < FRESH {
                return latest.view.clone();
            }
        }
        let (view, index) = sampler.take(node).await;
        *lock(&self.latest) = Some(Latest {
            at: Instant::now(),
            view: view.clone(),
            index: Arc::new(index),
        });
        view
    }

    /// Sends pages a snapshot each [`EVERY`], while any page watches.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.pages.receiver_count() == 0 {
                continue;
            }
            let node = Node::local().await.ok();
            let local = self.local_with(node.as_ref()).await;
            let peers = match &node {
                Some(node) => peers(node, &local).await,
                None => Vec::new(),
            };
            match serde_json::to_string(&Page { local, peers }) {
                Ok(json) => _ = self.pages.send(Arc::from(json)),
                Err(error) => tracing::warn!(%error, "observer: a snapshot did not encode"),
            }
        }
    }
}

/// Each linked peer's snapshot, from its own observer where its owner shares it.
async fn peers(node: &Node, local: &NodeView) -> Vec<PeerView> {
    let asks = local.links.iter().map(|link| async move {
        let answer = match node.remote::<ObserverServer>(&link.peer, AGENT_NAME).await {
            Ok(agent) => match agent.call_timeout(Request::Snapshot, PEER_WITHIN).await {
                Err(crate::CallError::NoProc) => {
                    Err("no observer there shares its tree".to_owned())
                }
                Err(error) => Err(format!("its observer did not answer: {error}")),
                Ok(reply) => Ok(reply),
            },
            Err(error) => Err(error.to_string()),
        };
        let (view, error) = match answer {
            Ok(Reply::Snapshot(view)) => (Some(*view), None),
            Ok(Reply::Whoami(..)) => (
                None,
                Some("its observer answered something else".to_owned()),
            ),
            Err(error) => (None, Some(error)),
        };
        PeerView {
            node: link.peer.clone(),
            view,
            error,
        }
    });
    join_all(asks).await
}

impl Feed {
    /// Keeps the latest reports for pages opened later.
    pub(crate) async fn keep_reports(self: Arc<Self>, mut reports: broadcast::Receiver<Report>) {
        loop {
            match reports.recv().await {
                Ok(report) => {
                    let mut kept = lock(&self.reports);
                    if kept.len() == BACKLOG {
                        kept.pop_front();
                    }
                    kept.push_back(report);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Turns off the mailbox counting this observer turned on.
    pub(crate) async fn stop(&self) {
        let index = self.index();
        self.sampler.lock().await.stop_counting(&index).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
