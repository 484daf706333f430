//! What pages are shown: snapshots of this node and of the peers that share theirs, taken
//! once a second while at least one page watches, each with a sample of the node for the
//! charts (kept in [`history`](super::history)), and the supervisor reports of late.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use ractor::ActorId;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::history::{self, Meter, NodeHistory, NodeSample};
use super::snapshot::{self, Index, NodeView, Sampler, ANSWER_WITHIN};
use super::{Agent, Snapshot, AGENT_NAME};
use crate::node::Node;

/// How often pages get a new snapshot (and the node is sampled for the charts).
const EVERY: Duration = Duration::from_secs(1);

/// A snapshot younger than this is answered again rather than taken anew (a page and a
/// peer asking in the same moment share one walk; an action finds its process in it).
const FRESH: Duration = Duration::from_millis(500);

/// How long a peer's observer may take to send its snapshot.
const PEER_WITHIN: Duration = Duration::from_secs(2);

/// Reports a page opened now is shown from the past.
pub(crate) const KEPT_REPORTS: usize = 200;

/// Mailboxes stay counted this long after the last page closed (a page reloaded keeps
/// its counts), then counting stops: while any process counts, every send in the program
/// looks its target up.
const STOP_COUNTING_AFTER: Duration = Duration::from_secs(60);

/// The observer's shared state: its sampler and the last snapshot.
pub(crate) struct Feed {
    /// The observer's own process: it cannot answer its own `sys` request as it stops.
    observer: ActorId,
    /// One walk at a time: rates are per walk.
    sampler: tokio::sync::Mutex<Sampler>,
    /// The last local snapshot, with the processes it found (for actions).
    latest: Mutex<Option<Latest>>,
    /// When a walk was last asked for, by a page here, a peer's page or an action.
    last_walk: Mutex<Instant>,
    /// What pages are sent, as JSON (empty: nothing yet); each receiver is a page.
    snapshots: watch::Sender<Arc<str>>,
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
    /// This node's numbers for the charts, taken with this snapshot (the page adds it to
    /// the history it was sent as it connected).
    #[serde(default)]
    pub sample: NodeSample,
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
    pub(crate) fn new(observer: ActorId) -> Arc<Self> {
        Arc::new(Self {
            observer,
            sampler: tokio::sync::Mutex::default(),
            latest: Mutex::new(None),
            last_walk: Mutex::new(Instant::now()),
            snapshots: watch::channel(Arc::from("")).0,
        })
    }

    /// A page starts watching: it gets every snapshot from the next one on.
    pub(crate) fn watch(&self) -> watch::Receiver<Arc<str>> {
        self.snapshots.subscribe()
    }

    /// The processes of a snapshot at most [`FRESH`] old, by pid (what actions may name):
    /// an action never acts on what the page showed long ago, or before any page opened.
    pub(crate) async fn index(&self) -> Arc<Index> {
        self.local().await;
        lock(&self.latest)
            .as_ref()
            .map(|latest| latest.index.clone())
            .unwrap_or_default()
    }

    /// This node now, or as it was less than [`FRESH`] ago.
    pub(crate) async fn local(&self) -> NodeView {
        let node = tokio::time::timeout(ANSWER_WITHIN, Node::local()).await;
        self.local_with(node.ok().and_then(Result::ok).as_ref())
            .await
    }

    /// As [`local`](Self::local), with the node (looked up anew each time: a node
    /// restarted by its supervisor is another incarnation, with another handle).
    async fn local_with(&self, node: Option<&Node>) -> NodeView {
        *lock(&self.last_walk) = Instant::now();
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

    /// The node's samples of the last five minutes, for a page that connects now.
    pub(crate) fn history(&self) -> NodeHistory {
        history::recent(EVERY)
    }

    /// Sends pages a snapshot each [`EVERY`], with a sample of the node (kept for pages
    /// opened later), while any page watches.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut meter = Meter::default();
        loop {
            tick.tick().await;
            if self.snapshots.receiver_count() == 0 {
                meter.pause();
                // A page opened later must not be shown this old one first.
                self.snapshots
                    .send_if_modified(|json| !std::mem::replace(json, Arc::from("")).is_empty());
                if lock(&self.last_walk).elapsed() > STOP_COUNTING_AFTER {
                    snapshot::stop_counting(None).await;
                }
                continue;
            }
            let node = tokio::time::timeout(ANSWER_WITHIN, Node::local()).await;
            let node = node.ok().and_then(Result::ok);
            let local = self.local_with(node.as_ref()).await;
            if let Some(sample) = meter.sample(&local) {
                history::keep(sample);
            }
            let sample = meter.last().cloned().unwrap_or_default();
            let peers = match &node {
                Some(node) => peers(node, &local).await,
                None => Vec::new(),
            };
            match serde_json::to_string(&Page {
                local,
                peers,
                sample,
            }) {
                Ok(json) => _ = self.snapshots.send(Arc::from(json)),
                Err(error) => tracing::warn!(%error, "observer: a snapshot did not encode"),
            }
        }
    }

    /// Turns off the mailbox counting the observer turned on, as it stops: without
    /// waiting (the processes asked include its own supervisor, which waits for it), and
    /// not its own (it cannot answer any more).
    pub(crate) fn stop_counting(&self) {
        tokio::spawn(snapshot::stop_counting(Some(self.observer)));
    }
}

/// Each linked peer's snapshot, from its own observer where its owner shares it.
async fn peers(node: &Node, local: &NodeView) -> Vec<PeerView> {
    let asks = local.links.iter().map(|link| async move {
        let ask = async {
            let agent = node
                .remote::<Agent>(&link.peer, AGENT_NAME)
                .await
                .map_err(|error| error.to_string())?;
            agent
                .call_timeout(Snapshot, PEER_WITHIN)
                .await
                .map_err(|error| match error {
                    crate::CallError::NoProc => "no observer there shares its tree".to_owned(),
                    error => format!("its observer did not answer: {error}"),
                })
        };
        let answer = tokio::time::timeout(PEER_WITHIN, ask)
            .await
            .unwrap_or_else(|_| Err("its observer did not answer in time".to_owned()));
        let (view, error) = match answer {
            Ok(view) => (Some(view), None),
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
