//! The observer (feature `observer`): a live page of the running program, in a browser, as
//! Erlang's `observer` shows a node: its supervision trees (each supervisor's strategy and
//! restart intensity used; each child's protocol, state, restarts, mailbox and messages
//! per second), charts of the node's last five minutes (messages handled per second,
//! memory, how busy the runtime's workers are, its tasks) and of the selected process's
//! (messages per second, mailbox), the busiest processes, a timeline of supervisor
//! reports, the node's links, and a process's `sys` status. It can act: kill a process,
//! terminate or restart a child, suspend, resume, trace, with the access token it makes
//! at start.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`serve`], [`child_spec`], [`ObserverConfig`]; the observer's own process |
//! | `snapshot.rs` | one look at the node: [`NodeView`], walked from [`supervisor::roots`] |
//! | `feed.rs` | snapshots once a second while a page watches; peers' snapshots; reports kept |
//! | `history.rs` | the node's samples for the charts: [`NodeSample`], the last 5 minutes kept |
//! | `actions.rs` | [`Action`]: what the page may do, and how |
//! | `http.rs` | the accept loop, its limits, the routes |
//! | `assets/` | the page: one HTML file, one script, one style sheet, served from the binary |
//!
//! Nothing is sampled while no page is open (here, or on a peer whose page shows this
//! node), but for an action or a status asked over HTTP. With a page open, each process
//! is asked its `sys` status once a second, and its mailbox is counted (see
//! [`sys::statistics`]) until nothing has looked for a minute (counting makes every send
//! in the program look its target up). Supervisor reports are kept (the last 200) from
//! the first start of an observer on, so that a page shows what came before it, the
//! observer's own restart included; so are the node's samples of the last five minutes
//! (one a second, taken only while a page of this observer watches: the charts show the
//! time nobody watched as a gap). The selected process's charts are drawn from the
//! snapshots the page itself received.
//!
//! **In a cluster**, each node's observer shares its snapshot with its peers'
//! observers if its owner lets it ([`ObserverConfig::share`], exported as
//! [`AGENT_NAME`]): the page shows every connected node's tree, as `sys` shows it on that
//! node (each process's status, never its state). Actions stay on the node whose page it
//! is: its token says nothing about another node's.
//!
//! **Access.** By default it listens on loopback: anyone who can log in to the machine can
//! read the page, but acting needs the token (`Authorization: Bearer`). On any other
//! address reading needs the token too. On loopback, requests must name localhost (a web
//! page elsewhere cannot point a name of its own at 127.0.0.1 and read the node).
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), otp::StartError> {
//! let observer = otp::observer::serve("127.0.0.1:4380".parse().unwrap()).await?;
//! println!("observer: {}", observer.url());
//! # Ok(()) }
//! ```
//!
//! [`supervisor::roots`]: crate::supervisor::roots
//! [`sys::statistics`]: crate::sys::statistics

mod actions;
mod feed;
mod history;
mod http;
mod snapshot;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

pub use actions::{Action, ActionError};
pub use feed::{Page, PeerView};
pub use history::{NodeHistory, NodeSample};
pub use snapshot::{NodeView, ProcessView, RunState, SupervisorView};

use crate::gen_server::Init;
use crate::node::{ExportOptions, Node};
use crate::supervisor::{report, ChildSpec};
use crate::tasks::{bind, AbortOnDrop};
use crate::{BoxError, Context, Flow, GenServer, ServerRef, StartError};

/// The name the observer is registered and exported under: a peer's observer asks it for
/// this node's snapshot.
pub const AGENT_NAME: &str = "otp.observer";

/// How an observer runs.
#[derive(Clone)]
pub struct ObserverConfig {
    /// Where to serve the page (port 0: any free one; see [`Observer::address`]).
    pub listen: SocketAddr,
    /// The access token actions need; made at random by [`ObserverConfig::new`], so it
    /// stays the same when a supervisor restarts the observer.
    pub token: String,
    /// Whether peers' observers may show this node's tree.
    pub share: bool,
    /// HTTP connections at once (a page holds one or two); more are refused with 503.
    pub max_connections: usize,
}

impl ObserverConfig {
    /// Serve on `listen`, with a fresh random token, shared with peers, 64 connections.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            token: random_token(),
            share: true,
            max_connections: 64,
        }
    }
}

impl std::fmt::Debug for ObserverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserverConfig")
            .field("listen", &self.listen)
            .field("token", &"(hidden)")
            .field("share", &self.share)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// 128 random bits, in hex.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A running observer.
#[derive(Clone, Debug)]
pub struct Observer {
    server: ServerRef<Agent>,
    address: SocketAddr,
    token: String,
}

/// Where the running observer serves, and its token: set by its `init`, so that
/// [`Observer::running`] finds them without asking the process (the token is no message:
/// a peer can send the observer messages).
fn running_slot() -> &'static Mutex<Option<(SocketAddr, String)>> {
    static RUNNING: Mutex<Option<(SocketAddr, String)>> = Mutex::new(None);
    &RUNNING
}

impl Observer {
    /// Where it serves the page.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The access token actions need.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The page's address with the token after `#`: what to open in a browser. The part
    /// after `#` is not sent with the page's request; the page then sends the token with
    /// each action, and with its reads only when the observer is not on loopback.
    pub fn url(&self) -> String {
        let mut address = self.address;
        if address.ip().is_unspecified() {
            // Listening on every address: this machine's own browser reaches it on loopback.
            address.set_ip(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        format!("http://{address}/#token={}", self.token)
    }

    /// The observer running in this program, if any (one started by a supervisor, say).
    /// One restarted by its supervisor serves on the same address with the same token,
    /// unless its port was 0: then on another port.
    pub fn running() -> Option<Self> {
        let server = ServerRef::<Agent>::whereis(AGENT_NAME)?;
        let (address, token) = lock(running_slot()).clone()?;
        Some(Self {
            server,
            address,
            token,
        })
    }

    /// Stops it: its port closes and every page's connection ends. One under a
    /// supervisor is a permanent child, started again: stop its supervisor instead.
    pub async fn stop(&self) -> Result<(), crate::CallError> {
        self.server.stop(crate::ExitReason::Shutdown).await
    }
}

/// Starts an observer on `listen` with a fresh token (see [`ObserverConfig::new`]).
pub async fn serve(listen: SocketAddr) -> Result<Observer, StartError> {
    serve_with(ObserverConfig::new(listen)).await
}

/// Starts an observer, not supervised.
pub async fn serve_with(config: ObserverConfig) -> Result<Observer, StartError> {
    ObserverServer::with_args(config)
        .start_named(AGENT_NAME)
        .await?;
    Observer::running().ok_or_else(|| StartError::init("the observer stopped as it started"))
}

/// A child spec that runs the observer under a supervisor; [`Observer::running`] finds
/// it.
pub fn child_spec(id: impl Into<String>, config: ObserverConfig) -> ChildSpec {
    ChildSpec::worker(id, move |parent| {
        parent.start_named(AGENT_NAME, ObserverServer::with_args(config.clone()))
    })
}

crate::protocol! {
    /// What a peer's observer asks: this node's snapshot.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(crate) Agent;
    calls AgentCall { Snapshot -> NodeView }
}

/// Peers' snapshot requests walked at once, at most; more are dropped (the asker gets
/// no answer and shows the node as not answering): the walks share one sampler anyway.
const PEER_WALKS: usize = 4;

/// The observer's process: it owns the HTTP accept loop and the feed's tasks (they end
/// with it, however it ends), and answers peers' observers.
pub(crate) struct ObserverServer {
    feed: Arc<feed::Feed>,
    /// Bounds the tasks peers' requests start.
    peer_walks: Arc<Semaphore>,
    /// The accept loop, the sampling loop and the sharing loop: they end with this
    /// process (a kill skips `terminate`, but still drops the state).
    _tasks: [AbortOnDrop; 3],
}

/// How often the observer makes sure its node shares it: a node restarted by its
/// supervisor is a new incarnation, without the old one's exports.
const SHARE_EVERY: Duration = Duration::from_secs(5);

impl Init<ObserverConfig> for ObserverServer {
    async fn init(config: ObserverConfig, me: &Context<Self>) -> Result<Self, BoxError> {
        let listener = bind(config.listen).await?;
        report::keep(feed::KEPT_REPORTS);
        let address = listener.local_addr()?;
        let feed = feed::Feed::new(me.id());
        let shared = http::Shared {
            feed: feed.clone(),
            token: Arc::from(config.token.as_str()),
            address,
        };
        let router = http::router(shared);
        let tasks = [
            AbortOnDrop::spawn(http::serve(listener, router, config.max_connections)),
            AbortOnDrop::spawn(feed.clone().run()),
            AbortOnDrop::spawn(share(config.share)),
        ];
        if !address.ip().is_loopback() {
            tracing::warn!(%address, "the observer listens beyond loopback: the page needs its token to show anything, and travels unencrypted");
        }
        *lock(running_slot()) = Some((address, config.token));
        Ok(ObserverServer {
            feed,
            peer_walks: Arc::new(Semaphore::new(PEER_WALKS)),
            _tasks: tasks,
        })
    }
}

impl GenServer for ObserverServer {
    type Protocol = Agent;

    async fn handle_call(&mut self, call: AgentCall<'_>, _: &Context<Self>) -> crate::Result {
        let AgentCall::Snapshot(Snapshot, caller) = call;
        if let Ok(walk) = self.peer_walks.clone().try_acquire_owned() {
            // Walked by a task of its own: the walk asks this process too.
            let caller = caller.take();
            let feed = self.feed.clone();
            tokio::spawn(async move {
                caller.reply(feed.local().await);
                drop(walk);
            });
        }
        Ok(Flow::Continue)
    }

    async fn terminate(&mut self, _reason: &crate::ExitReason, _: &Context<Self>) {
        *lock(running_slot()) = None;
        self.feed.stop_counting();
    }
}

/// Lets peers' observers ask for this node's snapshot, whenever a node runs (exporting
/// again is a no-op). Exported without `sys`: a peer may read the tree, not suspend or
/// trace the observer.
async fn share(share: bool) {
    if !share {
        return;
    }
    let mut told = false;
    loop {
        if let Ok(Ok(node)) = tokio::time::timeout(SHARE_EVERY, Node::local()).await {
            let export = node.export_with::<Agent>(AGENT_NAME, ExportOptions { sys: false });
            match tokio::time::timeout(SHARE_EVERY, export).await {
                Ok(Err(error)) if !std::mem::replace(&mut told, true) => {
                    tracing::warn!(%error, "observer: could not share this node's tree with peers");
                }
                _ => {}
            }
        }
        tokio::time::sleep(SHARE_EVERY).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    /// The page finds the observer in the trees by its protocol's name (`OBSERVER_PROTOCOL`
    /// in `assets/app.js`), to ask before an action that may take it down.
    #[test]
    fn the_page_knows_the_observer_by_its_protocol_name() {
        assert_eq!(
            std::any::type_name::<super::Agent>(),
            "otp::observer::Agent"
        );
        let script = include_str!("assets/app.js");
        assert!(script.contains("const OBSERVER_PROTOCOL = 'otp::observer::Agent';"));
    }
}
