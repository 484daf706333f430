//! The observer (feature `observer`): a live page of the running program, in a browser, as
//! Erlang's `observer` shows a node: its supervision trees (each supervisor's strategy and
//! restart intensity used; each child's protocol, state, restarts, mailbox and messages
//! per second), a timeline of supervisor reports, the node's links, and a process's
//! `sys` status. It can act: kill a process, terminate or restart a child, suspend,
//! resume, trace, with the access token it makes at start.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`serve`], [`child_spec`], [`ObserverConfig`]; the observer's own process |
//! | `snapshot.rs` | one look at the node: [`NodeView`], walked from [`supervisor::roots`] |
//! | `feed.rs` | snapshots once a second while a page watches; peers' snapshots; reports kept |
//! | `actions.rs` | [`Action`]: what the page may do, and how |
//! | `http.rs` | the accept loop, its limits, the routes |
//! | `assets/` | the page: one HTML file, one script, one style sheet, served from the binary |
//!
//! Nothing is sampled while no page is open. With a page open, each process is asked its
//! `sys` status once a second, and its mailbox is counted from then on (see
//! [`sys::statistics`]).
//!
//! **In a cluster**, each node's observer shares its snapshot with its peers
//! ([`ObserverConfig::share`]: exported as [`AGENT_NAME`], with `sys` allowed, so sharing
//! is the owner's choice); the page shows every connected node's tree. Actions stay on
//! the node whose page it is: its token says nothing about another node's.
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
mod http;
mod snapshot;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use actions::{Action, ActionError};
pub use feed::{Page, PeerView};
pub use snapshot::{NodeView, ProcessView, RunState, SupervisorView};

use crate::node::kernel::{bind, AbortOnDrop};
use crate::node::{ExportOptions, Node};
use crate::supervisor::ChildSpec;
use crate::{BoxError, CallResponse, Context, GenServer, Protocol, ReplyTo, ServerRef, StartError};

/// The name the observer is registered and exported under: a peer's observer asks it for
/// this node's snapshot.
pub const AGENT_NAME: &str = "otp.observer";

/// The default address: loopback, port 4380.
pub const DEFAULT_ADDRESS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 4380);

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
    server: ServerRef<ObserverServer>,
    address: SocketAddr,
    token: String,
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

    /// The page's address with the token (after `#`, so it never travels to the server in
    /// a request line or a log): what to open in a browser.
    pub fn url(&self) -> String {
        format!("http://{}/#token={}", self.address, self.token)
    }

    /// The observer running in this program, if any (one started by a supervisor, say).
    pub async fn running() -> Option<Self> {
        let server = ServerRef::<ObserverServer>::whereis(AGENT_NAME)?;
        let (address, token) = server.call(Request::Whoami).await.ok()?.into_whoami()?;
        Some(Self {
            server,
            address,
            token,
        })
    }

    /// Stops it: its port closes and every page's connection ends.
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
    let token = config.token.clone();
    let server = ObserverServer.start_named(AGENT_NAME, config).await?;
    let address = match server.call(Request::Whoami).await {
        Ok(Reply::Whoami(address, _)) => address,
        _ => return Err(StartError::init("the observer stopped as it started")),
    };
    Ok(Observer {
        server,
        address,
        token,
    })
}

/// A child spec that runs the observer under a supervisor; [`Observer::running`] finds
/// it.
pub fn child_spec(id: impl Into<String>, config: ObserverConfig) -> ChildSpec {
    ChildSpec::worker(id, move |parent| {
        parent.start_named(AGENT_NAME, ObserverServer, config.clone())
    })
}

/// The observer's process: it owns the HTTP accept loop and the feed's tasks (they end
/// with it, however it ends), and answers peers' observers.
pub(crate) struct ObserverServer;

/// What the observer answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// This node's snapshot (what a peer's observer asks).
    Snapshot,
    /// Its address and token; answered to local callers only.
    Whoami,
}

/// The observer's answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    /// This node now.
    Snapshot(Box<NodeView>),
    /// Address and token (the token never leaves the node: a peer gets an empty one).
    Whoami(SocketAddr, String),
}

impl Reply {
    fn into_whoami(self) -> Option<(SocketAddr, String)> {
        match self {
            Self::Whoami(address, token) => Some((address, token)),
            Self::Snapshot(_) => None,
        }
    }
}

impl Protocol for ObserverServer {
    type Call = Request;
    type Reply = Reply;
    type Cast = ();
}

pub(crate) struct State {
    config: ObserverConfig,
    address: SocketAddr,
    feed: Arc<feed::Feed>,
    /// The accept loop, the sampling loop and the report keeper: they end with this
    /// process (a kill skips `terminate`, but still drops the state).
    _tasks: [AbortOnDrop; 3],
}

impl GenServer for ObserverServer {
    type Protocol = Self;
    type Args = ObserverConfig;
    type State = State;
    type Info = ();

    async fn init(&self, _me: &Context<Self>, config: ObserverConfig) -> Result<State, BoxError> {
        // First, so that no report is missed.
        let reports = crate::supervisor::report::subscribe();
        let listener = bind(config.listen).await?;
        let address = listener.local_addr()?;
        let feed = feed::Feed::new();
        let shared = http::Shared {
            feed: feed.clone(),
            token: Arc::from(config.token.as_str()),
            address,
        };
        let router = http::router(shared);
        let tasks = [
            AbortOnDrop::spawn(http::serve(listener, router, config.max_connections)),
            AbortOnDrop::spawn(feed.clone().run()),
            AbortOnDrop::spawn(feed.clone().keep_reports(reports)),
        ];
        if config.share {
            share().await;
        }
        if !address.ip().is_loopback() {
            tracing::warn!(%address, "the observer listens beyond loopback: the page needs its token to show anything");
        }
        Ok(State {
            config,
            address,
            feed,
            _tasks: tasks,
        })
    }

    async fn handle_call(
        &self,
        _me: &Context<Self>,
        request: Request,
        from: &mut ReplyTo<Reply>,
        state: &mut State,
    ) -> Result<CallResponse<Reply>, BoxError> {
        match request {
            Request::Whoami if from.is_local() => Ok(CallResponse::Reply(Reply::Whoami(
                state.address,
                state.config.token.clone(),
            ))),
            Request::Whoami => Ok(CallResponse::Reply(Reply::Whoami(
                state.address,
                String::new(),
            ))),
            Request::Snapshot => {
                // Walked by a task of its own: the walk asks this process too.
                let from = from.take();
                let feed = state.feed.clone();
                tokio::spawn(async move {
                    from.reply(Reply::Snapshot(Box::new(feed.local().await)));
                });
                Ok(CallResponse::NoReply)
            }
        }
    }

    async fn terminate(&self, _me: &Context<Self>, _reason: &crate::ExitReason, state: &mut State) {
        state.feed.stop().await;
    }
}

/// Lets peers' observers ask for this node's snapshot, if a node runs.
async fn share() {
    let Ok(node) = Node::local().await else {
        return;
    };
    if let Err(error) = node
        .export_with::<ObserverServer>(AGENT_NAME, ExportOptions { sys: true })
        .await
    {
        tracing::warn!(%error, "observer: could not share this node's tree with peers");
    }
}
