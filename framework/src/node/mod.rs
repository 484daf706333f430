//! Distribution (feature `distribution`, on by default): named nodes that connect over
//! TCP, authenticate with a shared cookie, and call and cast each other's GenServers, on
//! ractor_cluster's protocol.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Node`], [`NodeConfig`], [`NodeEvent`], [`ConnectError`] |
//! | `cookie.rs` | [`Cookie`]: flag, environment or a private cookie file |
//! | `kernel.rs` | the node process (`net_kernel`): sessions, deadlines, caps, node events |
//! | `listener.rs` | our accept loop in front of ractor_cluster (keepalive, labels; caps per source, adaptive handshake deadlines, "busy" refusals, a rate-limited log) |
//! | `remote.rs` | exported servers and [`RemoteRef`]: calls and casts as JSON |
//! | `scope.rs` | the scope process: a table of local servers under keys, kept in step with the same scope on every peer |
//! | `member.rs` | [`Member`]: a server found in a scope, local or remote |
//! | [`pg`] | process groups in scopes (OTP's `pg`), broadcast once per node |
//! | [`global`] | names unique across the cluster (OTP's `global`), with a conflict rule |
//!
//! # Two nodes
//! ```no_run
//! # use otp::node::{Cookie, Node, NodeConfig};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let cookie = Cookie::resolve(None, None)?; // $OTP_COOKIE or ~/.otp.cookie
//! let a = Node::start(NodeConfig::new("a", "127.0.0.1:4370".parse()?, cookie.clone())).await?;
//! let b = Node::start(NodeConfig::new("b", "127.0.0.1:4371".parse()?, cookie)).await?;
//! let peer = b.connect("127.0.0.1:4370").await?; // returns once authenticated: "a@127.0.0.1"
//! # Ok(()) }
//! ```
//! A server becomes reachable with [`Node::export`]; a peer reaches it with
//! [`Node::remote`] and calls it like a local one. Message types travel as JSON (serde).

mod cookie;
pub mod global;
mod kernel;
mod listener;
mod member;
pub mod pg;
mod remote;
mod scope;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::ToSocketAddrs;

pub use cookie::{Cookie, CookieError, COOKIE_ENV, COOKIE_FILE_NAME};
use kernel::{
    ClosedLately, Connect, DialedPeer, Disconnect, Export, Kernel, Links, NodeProcess, PeerName,
    Peers, TakeCensus, Watch, Whoami,
};
pub use listener::Limit;
pub use member::{Member, RemoteMember};
#[doc(hidden)]
pub use remote::AnswerJson;
pub use remote::{RemoteProtocol, RemoteRef};
pub use scope::MemberId;
pub use tls::{Tls, TlsError};

use crate::gen_server::{InfoOf, Init};
use crate::supervisor::ChildSpec;
use crate::{Context, GenServer, RequestOf, ServerRef, StartError, Timeout};

/// The registered name of the node process: one node per OS process, as in Erlang.
pub const NODE_PROCESS: &str = "otp.node";

/// How a node runs. Defaults suit a chat-sized cluster on an untrusted network.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The short name; the full name is `name@<listen ip>`.
    pub name: String,
    /// Where to accept connections (port 0: any free port; see [`Node::address`]).
    pub listen: SocketAddr,
    /// The shared secret.
    pub cookie: Cookie,
    /// A connection that has not authenticated within this is closed. Under load the
    /// deadline is shorter: a connection admitted while more than half of the
    /// `max_unauthenticated` slots are taken gets less, the fuller the less (by the square
    /// of the fill beyond half: three quarters full, 75% of the way from 500 ms to this;
    /// 63 of 64, 0.78 s of 5 s), down to 500 ms with every slot taken; admitting one also
    /// closes older handshakes past that shorter deadline. A flood of connections that
    /// never authenticate then turns over within about a second instead of holding every
    /// slot. A connection must also send its first bytes within 2 s (or its deadline, if
    /// shorter): a dialing node speaks at once.
    pub auth_timeout: Duration,
    /// Sessions at once, authenticated or not.
    pub max_connections: usize,
    /// Sessions still authenticating at once. A connection over this (or over a
    /// per-source cap) is refused at accept with a "busy" answer, which a dialing node
    /// reports as [`ConnectError::Busy`].
    pub max_unauthenticated: usize,
    /// Connections still authenticating at once from one source address (an IPv4 address
    /// or an IPv6 /64; 127.0.0.1 and 127.0.0.2 are two sources), so that one host cannot
    /// take every slot.
    pub max_unauthenticated_per_source: usize,
    /// Connections at once from one source, authenticated or not. Authenticated peers
    /// know the cookie; this bounds what one host (or NAT gateway) can hold.
    pub max_connections_per_source: usize,
    /// The largest frame accepted from a peer; a larger one closes the connection.
    pub max_frame_bytes: u64,
    /// A peer that answers no heartbeat for this long is declared down, its connection
    /// closed (Erlang's `net_ticktime`, whose default takes 45 to 75 s).
    pub liveness_timeout: Duration,
    /// Processes one peer may make known here (each costs a local proxy actor, about
    /// 10 KiB); a peer that announces more is disconnected.
    pub max_peer_processes: usize,
    /// Mutual TLS for every link; `None`: plain TCP (cookie authentication only). Nodes of
    /// one cluster must agree.
    pub tls: Option<Tls>,
    /// The local address connections this node dials are made from; `None`: the one the
    /// operating system picks.
    pub connect_from: Option<IpAddr>,
}

impl NodeConfig {
    /// A config with the defaults: 5 s to authenticate (less under load), 1024
    /// connections, 64 of them unauthenticated, per source address 512 connections and 8
    /// unauthenticated, 1 MiB frames, peers declared down after 15 s of silence and
    /// disconnected beyond 10,000 processes.
    pub fn new(name: impl Into<String>, listen: SocketAddr, cookie: Cookie) -> Self {
        Self {
            name: name.into(),
            listen,
            cookie,
            auth_timeout: Duration::from_secs(5),
            max_connections: 1024,
            max_unauthenticated: 64,
            // Eight handshakes at once are plenty for a host starting its nodes; one
            // address can then hold at most an eighth of the slots.
            max_unauthenticated_per_source: 8,
            // Half of the connections: a NAT gateway with many users still fits.
            max_connections_per_source: 512,
            max_frame_bytes: 1024 * 1024,
            liveness_timeout: Duration::from_secs(15),
            max_peer_processes: 10_000,
            tls: None,
            connect_from: None,
        }
    }
}

/// A peer node came up or went down; delivered to subscribed servers as their own info
/// message ([`Node::monitor_nodes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// Connected and authenticated (`nodeup`).
    Up(String),
    /// Connection lost (`nodedown`).
    Down(String),
}

/// What a node holds at one moment ([`Node::census`]): each count returns to its baseline
/// once peers are gone, however many came and went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    /// Connected, authenticated peers.
    pub peers: usize,
    /// Sessions, authenticated or not.
    pub sessions: usize,
    /// Remote monitors peers hold on this node's exported servers.
    pub remote_monitors: usize,
    /// Open TCP links (ours and peers'), counted until both their reader and the node let go.
    pub links: usize,
}

/// One connected peer as [`Node::links`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkInfo {
    /// The peer's node name.
    pub peer: String,
    /// When the link became ready, in milliseconds since the Unix epoch.
    pub up_since_ms: u64,
    /// How long since the peer last proved alive (sent anything, or answered a
    /// heartbeat), in milliseconds: the link is dropped once this passes the liveness
    /// timeout.
    pub silent_ms: u64,
    /// Whether this node dialed the link (else the peer did).
    pub dialed: bool,
    /// What went each way; `None` for a link made by ractor_cluster's own listener
    /// rather than ours.
    pub traffic: Option<Traffic>,
}

/// What went over one link so far, counted above TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Traffic {
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// ractor_cluster messages received: remote calls, casts and replies, and also
    /// heartbeats and group updates.
    pub messages_in: u64,
    /// ractor_cluster messages sent.
    pub messages_out: u64,
}

/// Why a connection attempt or node request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// No TCP connection: nothing listens there, or the host is unreachable.
    #[error("cannot reach {address}: {reason}")]
    Unreachable {
        /// Where we tried.
        address: String,
        /// The network error.
        reason: String,
    },
    /// The peer closed the connection while authenticating: the nodes do not share a cookie
    /// (or the peer requires TLS and this node does not use it; the two look alike from here).
    #[error("authentication failed: the peer closed the link during authentication (do both nodes use the same cookie, and the same TLS setting?)")]
    AuthenticationFailed,
    /// The peer turned the connection away for load: too many connections are being set
    /// up there (from everywhere, or from this address). Nothing is wrong with the
    /// cookie; try again after a pause, as [`Node::connect_retrying`] does.
    #[error("the server is busy: too many connections being set up; try again shortly")]
    Busy,
    /// Authentication did not complete in time.
    #[error("the peer did not complete authentication in time")]
    Timeout,
    /// The connection closed right after authenticating.
    #[error("the connection closed during set-up")]
    Closed,
    /// The TLS handshake failed: the peer does not speak TLS, or its certificate is not
    /// signed by our CA (or ours not by its).
    #[error("{0}")]
    Tls(String),
    /// A limit of this node refused the connection.
    #[error("refused by this node's {0} limit")]
    Refused(Limit),
    /// The node is stopping.
    #[error("the node is stopping")]
    NodeStopping,
    /// The node process could not be asked.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// The node process could not be asked: no node runs in this process, or it is stopping.
/// What every node operation but `connect` can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node process unavailable: {0}")]
pub struct Unavailable(String);

/// Why [`Node::export`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The node process could not be asked.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The endpoint that makes the server reachable could not start.
    #[error("cannot export: {0}")]
    Endpoint(String),
    /// The name is already exported, with other options.
    #[error(
        "{0:?} is already exported with other options: export it once, with the options it needs"
    )]
    OptionsDiffer(String),
}

/// Why [`Node::remote`] found no server to reach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The node process could not be asked.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// No connected node has this name.
    #[error("not connected to node {0:?}: connect to it first")]
    UnknownNode(String),
}

/// How a server is exported ([`Node::export_with`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Peers may use `sys` on it ([`RemoteRef::sys_get_status`] and the others): its
    /// status as `format_status` shows it, statistics, suspend and resume, trace. Off by
    /// default: a peer that may call a server need not be allowed to pause it.
    pub sys: bool,
}

/// A handle to this process's node.
#[derive(Clone, Debug)]
pub struct Node {
    server: ServerRef<Kernel>,
    name: String,
    address: SocketAddr,
    /// The node's settings: `connect` applies its TLS and deadline in the caller's task,
    /// so that handshakes never hold up the node process.
    config: Box<NodeConfig>,
    /// The cluster's global names, as this node sees them.
    global: global::Global,
}

impl Node {
    /// Starts the node, unsupervised. Fails if the address is taken or a node already runs
    /// in this process.
    pub async fn start(config: NodeConfig) -> Result<Self, StartError> {
        let server = NodeProcess::with_args(config)
            .start_named(NODE_PROCESS)
            .await?;
        Self::from_server(server).await.map_err(StartError::init)
    }

    /// A child spec that runs the node under a supervisor (restarted like any child; peers
    /// must reconnect after a restart, as with Erlang's distribution).
    pub fn child_spec(id: impl Into<String>, config: NodeConfig) -> ChildSpec {
        ChildSpec::worker(id, move |parent| {
            parent.start_named(NODE_PROCESS, NodeProcess::with_args(config.clone()))
        })
    }

    /// The node running in this process, if any (e.g. one started by a supervisor).
    pub async fn local() -> Result<Self, Unavailable> {
        let server = ServerRef::whereis(NODE_PROCESS)
            .ok_or_else(|| Unavailable("no node runs in this process".into()))?;
        Self::from_server(server).await
    }

    async fn from_server(server: ServerRef<Kernel>) -> Result<Self, Unavailable> {
        let (name, address, config) = ask(&server, Whoami, Timeout::Infinity).await?;
        let table = scope::whereis(global::GLOBAL)
            .await
            .ok_or_else(|| Unavailable("the global name table is not running".into()))?;
        Ok(Self {
            server,
            name,
            address,
            config,
            global: global::Global::new(table),
        })
    }

    /// The cluster's global names (OTP's `global`), as this node sees them.
    pub fn global(&self) -> &global::Global {
        &self.global
    }

    /// The full node name, `name@ip`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address peers connect to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Connects to the node at `address` and returns its name once authenticated and
    /// ready; if this node already dialed that address and is connected, returns at once
    /// (as `net_kernel:connect_node/1`). Fails within the authentication timeout, telling an unreachable host
    /// ([`ConnectError::Unreachable`]) from a cookie mismatch
    /// ([`ConnectError::AuthenticationFailed`]) and from a peer too busy to take the
    /// connection now ([`ConnectError::Busy`]).
    pub async fn connect(
        &self,
        address: impl ToSocketAddrs + std::fmt::Display,
    ) -> Result<String, ConnectError> {
        let text = address.to_string();
        let deadline = self.config.auth_timeout;
        let target = tokio::net::lookup_host(&address)
            .await
            .map_err(|e| unreachable(&text, e))?
            .next()
            .ok_or_else(|| unreachable(&text, "the name resolves to no address"))?;
        // Already connected there: a second link would make ractor_cluster drop one of
        // the two, which peers would see as the node going down and up.
        if let Some(peer) = ask(&self.server, DialedPeer(target), Timeout::Infinity).await? {
            return Ok(peer);
        }
        // A link to there that closed a moment ago may still be open at the peer, whose
        // ractor_cluster then keeps it and refuses the new one as a duplicate; that looks
        // like a failed authentication. Try again, for as long as the deadline, while so.
        let give_up = tokio::time::Instant::now() + deadline;
        let mut pause = Duration::from_millis(10);
        loop {
            let outcome = self.dial_once(target, &text).await;
            let again = matches!(outcome, Err(ConnectError::AuthenticationFailed))
                && tokio::time::Instant::now() + pause < give_up
                && ask(&self.server, ClosedLately(target), Timeout::Infinity).await?;
            if !again {
                return outcome;
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }

    /// One connection attempt to `target`: dial, TLS if set, hand it to the node, wait
    /// until it is ready or failed.
    async fn dial_once(&self, target: SocketAddr, address: &str) -> Result<String, ConnectError> {
        let deadline = self.config.auth_timeout;
        let stream = tokio::time::timeout(deadline, dial(target, self.config.connect_from))
            .await
            .map_err(|_| unreachable(address, "timed out"))?
            .map_err(|e| unreachable(address, e))?;
        let stream = listener::LabeledStream::establish(
            stream,
            listener::Direction::Out,
            self.config.tls.as_ref(),
            deadline,
            None,
        )
        .await?;
        // The node closes a session that does not authenticate in its own deadline; this
        // bound only guards against the node process itself being stuck.
        let bound = Timeout::After(deadline * 2);
        ask(&self.server, Connect(Box::new(stream), target), bound).await?
    }

    /// [`connect`](Self::connect), tried again while the peer answers
    /// [`ConnectError::Busy`], after pauses that start at 50 ms and double up to 2 s, each
    /// a random part of that (so that clients turned away together do not come back
    /// together), until `patience` is spent; then the last error. Other errors return at
    /// once.
    pub async fn connect_retrying<A>(
        &self,
        address: A,
        patience: Duration,
    ) -> Result<String, ConnectError>
    where
        A: ToSocketAddrs + std::fmt::Display,
        for<'a> &'a A: ToSocketAddrs,
    {
        let give_up = tokio::time::Instant::now() + patience;
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.connect(&address).await {
                Err(ConnectError::Busy) => {
                    let pause = backoff.mul_f64(0.5 + 0.5 * jitter());
                    if tokio::time::Instant::now() + pause >= give_up {
                        return Err(ConnectError::Busy);
                    }
                    tokio::time::sleep(pause).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                outcome => return outcome,
            }
        }
    }

    /// Names of the connected, authenticated peers.
    pub async fn peers(&self) -> Result<Vec<String>, Unavailable> {
        let peers = ask(&self.server, Peers, Timeout::Infinity).await?;
        Ok(peers.into_iter().map(|(name, _)| name).collect())
    }

    /// Every connected peer's link: since when, liveness, traffic each way.
    pub async fn links(&self) -> Result<Vec<LinkInfo>, Unavailable> {
        ask(&self.server, Links, Timeout::Infinity).await
    }

    /// Makes the local server registered as `name` reachable from peers by that name.
    /// Its requests, casts and answers travel as JSON. Exporting a name again is a no-op,
    /// so a server may export itself in `init` and stay reachable across restarts.
    pub async fn export<P: RemoteProtocol + Send + Sync>(
        &self,
        name: &str,
    ) -> Result<(), ExportError> {
        self.export_with::<P>(name, ExportOptions::default()).await
    }

    /// [`export`](Self::export), with [`ExportOptions`]: whether peers may use `sys` on it.
    /// Exporting a name again with the same options is a no-op; with others it fails with
    /// [`ExportError::OptionsDiffer`].
    pub async fn export_with<P: RemoteProtocol + Send + Sync>(
        &self,
        name: &str,
        options: ExportOptions,
    ) -> Result<(), ExportError> {
        let exported = name.to_owned();
        let start: kernel::ExportFn = Box::new(move |parent| {
            Box::pin(async move {
                remote::export::<P>(&exported, options.sys, parent)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        let export = Export(name.to_owned(), options, start);
        ask(&self.server, export, Timeout::Infinity).await?
    }

    /// The server exported as `name` on the connected node `node` (`{Name, Node}`).
    pub async fn remote<P: RemoteProtocol>(
        &self,
        node: &str,
        name: &str,
    ) -> Result<RemoteRef<P>, LookupError> {
        ask(&self.server, Peers, Timeout::Infinity)
            .await?
            .into_iter()
            .find(|(peer, _)| peer == node)
            .map(|(peer, id)| RemoteRef::new(id, peer, name.to_owned()))
            .ok_or_else(|| LookupError::UnknownNode(node.to_owned()))
    }

    /// Closes every link to `peer` (`erlang:disconnect_node/1`); both sides see it go down.
    /// Returns whether it was connected.
    pub async fn disconnect(&self, peer: &str) -> Result<bool, Unavailable> {
        ask(&self.server, Disconnect(peer.to_owned()), Timeout::Infinity).await
    }

    /// What this node holds now: peers, sessions, remote monitors, links.
    pub async fn census(&self) -> Result<Census, Unavailable> {
        ask(&self.server, TakeCensus, Timeout::Infinity).await
    }

    /// Subscribes the server `me` to node events (`net_kernel:monitor_nodes(true)`): it
    /// gets `wrap(event)` as an info message for every peer up now and every later change
    /// (a [`NodeEvent`] wrapped in its own info type, often an enum variant).
    pub async fn monitor_nodes<G: GenServer>(
        &self,
        me: &Context<G>,
        wrap: impl Fn(NodeEvent) -> InfoOf<G> + Send + Sync + 'static,
    ) -> Result<(), Unavailable> {
        let server = me.server().clone();
        let watcher: kernel::Watcher = Box::new(move |event| {
            server.send_info(wrap(event));
            server.is_alive()
        });
        ask(&self.server, Watch(watcher), Timeout::Infinity).await
    }

    /// Stops the node: its connections close, peers see it go down. It returns once the
    /// peers' processes it mirrored have ended too (at most a second later), so that a node
    /// started next in this process finds its peers' processes from the start.
    pub async fn stop(&self) {
        let _ = self.server.stop(crate::ExitReason::Shutdown).await;
    }
}

/// The name of the authenticated peer that ractor_cluster numbers `node_id`, as this
/// node's own session to it knows it (not as the peer says it is called).
pub(crate) async fn peer_name(node_id: u64) -> Option<String> {
    let node = ServerRef::<Kernel>::whereis(NODE_PROCESS)?;
    ask(&node, PeerName(node_id), Timeout::Infinity)
        .await
        .ok()
        .flatten()
}

/// A TCP connection to `target`, from `from` if given.
/// [`ConnectError::Unreachable`] for `address`, with why.
fn unreachable(address: &str, reason: impl std::fmt::Display) -> ConnectError {
    ConnectError::Unreachable {
        address: address.to_owned(),
        reason: reason.to_string(),
    }
}

async fn dial(target: SocketAddr, from: Option<IpAddr>) -> std::io::Result<tokio::net::TcpStream> {
    let Some(from) = from else {
        return tokio::net::TcpStream::connect(target).await;
    };
    let socket = match from {
        IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket
        .bind(SocketAddr::new(from, 0))
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot dial from {from}: {e}")))?;
    socket.connect(target).await
}

/// A number in [0, 1), for jitter.
fn jitter() -> f64 {
    f64::from(getrandom::u32().unwrap_or(u32::MAX / 2)) / (f64::from(u32::MAX) + 1.0)
}

/// Asks the node process.
async fn ask<R: RequestOf<Kernel>>(
    server: &ServerRef<Kernel>,
    request: R,
    timeout: Timeout,
) -> Result<R::Reply, Unavailable> {
    server
        .call_timeout(request, timeout)
        .await
        .map_err(|e| Unavailable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_suit_a_chat_on_an_untrusted_network() {
        let config = NodeConfig::new("n", "127.0.0.1:0".parse().unwrap(), Cookie::random());
        assert_eq!(config.auth_timeout, Duration::from_secs(5));
        assert_eq!(config.liveness_timeout, Duration::from_secs(15));
        assert_eq!(config.max_frame_bytes, 1024 * 1024);
        assert_eq!(config.max_unauthenticated, 64);
        assert_eq!(config.max_connections, 1024);
        assert_eq!(config.max_unauthenticated_per_source, 8);
        assert_eq!(config.max_connections_per_source, 512);
        assert_eq!(config.max_peer_processes, 10_000);
        assert!(config.tls.is_none());
        assert!(config.connect_from.is_none());
    }
}
