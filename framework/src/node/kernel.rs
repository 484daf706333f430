//! The node process (Erlang's `net_kernel`): a GenServer that owns ractor_cluster's
//! `NodeServer`, our accept loop and the exported endpoints, and applies the session policy
//! ractor_cluster lacks: an authentication deadline, caps on connections, connect calls that
//! return only once the peer is authenticated, and node up/down notices.
//!
//! Every session is seen through ractor_cluster's event subscription, whichever listener
//! accepted it, so the policy holds for all of them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::tasks::{bind, AbortOnDrop};
use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, ActorId, ActorRef};
use ractor_cluster::node::{NodeConnectionMode, NodeServerSessionInformation};
use ractor_cluster::{NodeEventSubscription, NodeServer, NodeServerMessage};

use super::listener::{
    accept_loop, AcceptPolicy, Admission, LabeledStream, Limit, Limits, Link, Noted,
};
use super::remote::{RemoteRef, Wire};
use super::{Census, ConnectError, ExportError, NodeConfig, NodeEvent};
use crate::gen_server::Init;
use crate::{BoxError, Context, ExitReason, Flow, GenServer, Info, ReplyTo, ServerRef};

/// Starts a remote endpoint linked to the node process; type-erased so one request carries
/// any exported server type.
pub(crate) type ExportFn =
    Box<dyn FnOnce(ActorCell) -> BoxFuture<'static, Result<ActorCell, String>> + Send>;

/// Delivers a node event to one subscribed server; false once that server is gone.
pub(crate) type Watcher = Box<dyn Fn(NodeEvent) -> bool + Send>;

crate::protocol! {
    /// What the node process answers.
    pub(crate) Kernel;
    calls KernelCall {
        /// Hand an outgoing connection to ractor_cluster, dialed at this address; answered
        /// once it is ready (with the peer's name) or failed.
        Connect(Box<LabeledStream>, SocketAddr) -> Result<String, ConnectError>,
        /// The peer already connected through a connection we dialed at this address, if
        /// any.
        DialedPeer(SocketAddr) -> Option<String>,
        /// Whether a link we dialed at this address closed within the authentication
        /// deadline: the peer may still hold its end (see [`NodeProcess::closed_lately`]).
        ClosedLately(SocketAddr) -> bool,
        /// Connected, authenticated peers: name and ractor_cluster node id.
        Peers -> Vec<(String, u64)>,
        /// Every ready link: peer, since when, liveness, traffic.
        Links -> Vec<super::LinkInfo>,
        /// The name of the authenticated peer with this ractor_cluster node id.
        PeerName(u64) -> Option<String>,
        /// This node's full name, listen address and settings.
        Whoami -> Identity,
        /// Export a server under a name, with options, through a function that starts its
        /// endpoint.
        Export(String, super::ExportOptions, ExportFn) -> Result<(), ExportError>,
        Watch(Watcher) -> (),
        /// Close every link to this peer (`erlang:disconnect_node/1`); answers whether it
        /// was connected.
        Disconnect(String) -> bool,
        /// What the node holds now.
        TakeCensus -> Census,
    }
    infos Event;
}

/// The answer to [`Whoami`]: full name, listen address, settings.
pub(crate) type Identity = (String, SocketAddr, Box<NodeConfig>);

/// ractor_cluster's session events, forwarded as infos, and our own timers.
pub(crate) enum Event {
    Opened(NodeServerSessionInformation),
    Authenticated(NodeServerSessionInformation),
    Ready(NodeServerSessionInformation),
    Disconnected(NodeServerSessionInformation),
    /// A session's authentication deadline has come.
    Deadline(ActorId),
    /// Time to check on peers and ping them.
    Tick,
    /// A peer answered a heartbeat on this session.
    Alive(ActorId),
}

/// This process's node name, for remote monitor requests to carry (one node per process).
static LOCAL_NAME: std::sync::RwLock<String> = std::sync::RwLock::new(String::new());

/// The full name of the node running in this process (empty if none has started).
pub(crate) fn local_name() -> String {
    LOCAL_NAME
        .read()
        .map(|name| name.clone())
        .unwrap_or_default()
}

/// The registered and exported name of every node's heartbeat server.
const HEARTBEAT: &str = "otp.heartbeat";

crate::protocol! {
    /// A node's liveness: peers ping it.
    #[derive(serde::Serialize, serde::Deserialize)]
    pub(crate) Heartbeat;
    calls HeartbeatCall { Ping -> () }
}

/// Answers peers' liveness pings. A separate server so that a busy node process does not
/// look dead: the ping measures whether the peer's runtime answers at all.
pub(crate) struct HeartbeatServer;

impl GenServer for HeartbeatServer {
    type Protocol = Heartbeat;

    async fn handle_call(&mut self, call: HeartbeatCall<'_>, _: &Context<Self>) -> crate::Result {
        let HeartbeatCall::Ping(Ping, caller) = call;
        Ok(caller.reply(()))
    }
}

/// Forwards ractor_cluster's synchronous callbacks into the node's mailbox.
struct Forward(ServerRef<Kernel>);

impl NodeEventSubscription for Forward {
    fn node_session_opened(&self, session: NodeServerSessionInformation) {
        self.0.send_info(Event::Opened(session));
    }
    fn node_session_disconnected(&self, session: NodeServerSessionInformation) {
        self.0.send_info(Event::Disconnected(session));
    }
    fn node_session_authenticated(&self, session: NodeServerSessionInformation) {
        self.0.send_info(Event::Authenticated(session));
    }
    fn node_session_ready(&self, session: NodeServerSessionInformation) {
        self.0.send_info(Event::Ready(session));
    }
}

/// The node process: its sessions, links, exports and watchers.
pub(crate) struct NodeProcess {
    config: NodeConfig,
    full_name: String,
    address: SocketAddr,
    node_server: ActorRef<NodeServerMessage>,
    /// The accept loop; it owns the listening socket, so it must end with this process
    /// however that ends (a kill skips `terminate`, but still drops this state).
    accept: AbortOnDrop,
    /// The accept loop's caps and counts, and the rate-limited log of refusals.
    admission: std::sync::Arc<Admission>,
    sessions: HashMap<ActorId, Session>,
    /// Outgoing connects waiting for their session to be ready, by connection label, with
    /// their link (held from the start: a link whose peer refuses it at once may be gone
    /// before its session's opening is handled here).
    pending: HashMap<String, Dialing>,
    /// When a ready link we dialed closed, by address. The peer may not have seen the close
    /// yet: ractor_cluster's duplicate-session election there then refuses a new link
    /// from us, which looks like a failed authentication; `connect` tries again then.
    /// Entries older than the authentication deadline are dropped as others come.
    closed_lately: HashMap<SocketAddr, Instant>,
    watchers: Vec<Watcher>,
    /// When the liveness check last ran: a check that comes far too late means this node
    /// itself was stopped (SIGSTOP, a stalled machine), and its peers' silence is its own.
    last_tick: Instant,
    /// The last stall was forgiven: the next late check is not, until one comes on time.
    graced: bool,
    /// The global name table's process: the node is not whole without it, so its exit is
    /// the node's (the node's supervisor starts both again; handles to the old table go).
    global: ActorId,
    /// Exported server names and their endpoints.
    exports: HashMap<String, Exported>,
    /// Who asked the name of a session not ready yet, by ractor_cluster node id.
    naming: Vec<(u64, ReplyTo<PeerName>)>,
}

/// An exported server's endpoint, and the options it was exported with.
struct Exported {
    endpoint: ActorCell,
    options: super::ExportOptions,
}

/// An outgoing connect waiting for its session to be ready.
struct Dialing {
    from: ReplyTo<Connect>,
    /// The address dialed.
    address: SocketAddr,
    link: Option<std::sync::Arc<Link>>,
}

struct Session {
    info: NodeServerSessionInformation,
    /// The link under a session that came through our listener or `connect` (not one on
    /// ractor_cluster's internal listener): when its peer last sent anything, and a sure way
    /// to close it.
    link: Option<std::sync::Arc<Link>>,
    authenticated: bool,
    ready: bool,
    /// When the peer last proved alive (ready, or answered a heartbeat).
    last_seen: Instant,
    /// When it became ready (for the observer's "up since").
    up_since: Option<std::time::SystemTime>,
    /// The address we dialed, for a session we opened: connecting there again is a no-op.
    dialed: Option<SocketAddr>,
    /// Set when we close the session ourselves, so its end is reported with the cause.
    closed_by_us: Option<ConnectError>,
    /// The authentication deadline's timer, cancelled once the peer is in (a timer left
    /// to run would hold a task for the whole deadline, per connection).
    deadline: Option<crate::Timer>,
    /// Came through our listener, whose caps on connections still authenticating already
    /// apply to it.
    admitted: bool,
}

impl Init<NodeConfig> for NodeProcess {
    async fn init(config: NodeConfig, me: &Context<Self>) -> Result<Self, BoxError> {
        let listener = bind(config.listen).await?;
        let address = listener.local_addr()?;
        let host = address.ip().to_string();
        let full_name = format!("{}@{host}", config.name);
        // ractor_cluster always opens a listener of its own; it gets loopback and an
        // ephemeral port, and its sessions fall under the same policy as ours.
        // With TLS, that listener demands the same mutual TLS: no plaintext way in, even
        // from this host.
        let internal_encryption = config
            .tls
            .as_ref()
            .map(|tls| ractor_cluster::IncomingEncryptionMode::Tls(tls.acceptor.clone()));
        let server = NodeServer::new(
            0,
            config.cookie.secret().to_owned(),
            config.name.clone(),
            host,
            internal_encryption,
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr(std::net::Ipv4Addr::LOCALHOST.into())
        .with_max_inbound_frame_size(config.max_frame_bytes);
        let (node_server, _) = Actor::spawn_linked(None, server, (), me.cell()).await?;
        node_server.cast(NodeServerMessage::SubscribeToEvents {
            id: "otp.node".to_owned(),
            subscription: Box::new(Forward(me.server().clone())),
        })?;
        // One node per process: a heartbeat still registered belongs to a killed
        // predecessor whose linked children are being torn down. Retire it first, or the
        // name clash would fail this restart.
        if let Some(stale) = ractor::registry::where_is(HEARTBEAT) {
            stale.kill();
            let _ = stale.wait(Some(Duration::from_secs(5))).await;
        }
        // Linked under the kernel's lineage, so the kernel's own supervisor restarts it
        // only once this heartbeat is gone too.
        let (under_me, _) = crate::gen_server::Linked::new(me.cell(), me.lineage());
        let heartbeat = HeartbeatServer.into();
        crate::gen_server::spawn(heartbeat, Some(HEARTBEAT.to_owned()), Some(under_me)).await?;
        // The global name table, one per node as OTP's `global` server; linked the same way.
        let global = super::scope::server_name(super::global::GLOBAL);
        if let Some(stale) = ractor::registry::where_is(global.clone()) {
            stale.kill();
            let _ = stale.wait(Some(Duration::from_secs(5))).await;
        }
        let (under_me, _) = crate::gen_server::Linked::new(me.cell(), me.lineage());
        let options = super::scope::Options {
            unique: true,
            peers: super::scope::Peers::All,
        };
        let names =
            super::scope::ScopeServer::with_args((super::global::GLOBAL.to_owned(), options));
        let global = crate::gen_server::spawn(names, Some(global), Some(under_me))
            .await?
            .id();
        super::remote::export::<Heartbeat>(HEARTBEAT, false, me.cell()).await?;
        me.send_interval(heartbeat_interval(&config), || Event::Tick);
        let admission = Admission::new(Limits {
            max_connections: config.max_connections,
            max_unauthenticated: config.max_unauthenticated,
            max_connections_per_source: config.max_connections_per_source,
            max_unauthenticated_per_source: config.max_unauthenticated_per_source,
            auth_timeout: config.auth_timeout,
        });
        let policy = AcceptPolicy {
            tls: config.tls.clone(),
            admission: admission.clone(),
        };
        let accept = AbortOnDrop::spawn(accept_loop(listener, node_server.clone(), policy));
        if let Ok(mut name) = LOCAL_NAME.write() {
            name.clone_from(&full_name);
        }
        tracing::info!(node = %full_name, %address, "node started");
        Ok(NodeProcess {
            config,
            full_name,
            address,
            node_server,
            accept,
            admission,
            sessions: HashMap::new(),
            pending: HashMap::new(),
            closed_lately: HashMap::new(),
            watchers: Vec::new(),
            exports: HashMap::new(),
            naming: Vec::new(),
            last_tick: Instant::now(),
            graced: false,
            global,
        })
    }
}

impl GenServer for NodeProcess {
    type Protocol = Kernel;

    async fn handle_call(&mut self, call: KernelCall<'_>, me: &Context<Self>) -> crate::Result {
        match call {
            KernelCall::DialedPeer(DialedPeer(address), answer) => {
                let peer = self
                    .sessions
                    .values()
                    .filter(|s| s.ready && s.dialed == Some(address))
                    .find_map(|s| Some(s.info.peer_name.as_ref()?.name.clone()));
                answer.reply(peer);
            }
            KernelCall::ClosedLately(ClosedLately(address), answer) => {
                let window = self.config.auth_timeout;
                let lately = self
                    .closed_lately
                    .get(&address)
                    .is_some_and(|closed| closed.elapsed() < window);
                answer.reply(lately);
            }
            KernelCall::Connect(Connect(stream, address), answer) => {
                let label = stream.label().to_owned();
                let link = Link::find(&label);
                let opened = NodeServerMessage::ConnectionOpenedExternal {
                    stream,
                    is_server: false,
                };
                if self.node_server.cast(opened).is_err() {
                    answer.reply(Err(ConnectError::NodeStopping));
                } else {
                    let dialing = Dialing {
                        from: answer.take(),
                        address,
                        link,
                    };
                    self.pending.insert(label, dialing);
                }
            }
            KernelCall::Peers(_, answer) => _ = answer.reply(self.peers()),
            KernelCall::Links(_, answer) => _ = answer.reply(self.links()),
            // Answered once the session is ready, so that a link refused as a second one
            // under a connected node's name is never named (and never taken for that node).
            KernelCall::PeerName(PeerName(node_id), answer) => {
                let session = self.sessions.values().find(|s| s.info.node_id == node_id);
                match session {
                    Some(session) if session.ready => {
                        answer.reply(session.peer().map(str::to_owned));
                    }
                    Some(_) => self.naming.push((node_id, answer.take())),
                    None => _ = answer.reply(None),
                }
            }
            KernelCall::Whoami(_, answer) => {
                let config = Box::new(self.config.clone());
                answer.reply((self.full_name.clone(), self.address, config));
            }
            // Already exported: the endpoint forwards by name, so it already reaches a
            // restarted server; replacing it would end remote monitors for nothing. With
            // other options it is refused rather than silently kept as it was.
            KernelCall::Export(Export(name, options, _), answer)
                if self
                    .exports
                    .get(&name)
                    .is_some_and(|e| e.endpoint.get_status() < ractor::ActorStatus::Stopping) =>
            {
                let same = self.exports.get(&name).map(|e| e.options) == Some(options);
                answer.reply(if same {
                    Ok(())
                } else {
                    Err(ExportError::OptionsDiffer(name))
                });
            }
            KernelCall::Export(Export(name, options, start), answer) => {
                let outcome = match start(me.cell()).await {
                    Ok(endpoint) => {
                        let exported = Exported { endpoint, options };
                        if let Some(old) = self.exports.insert(name, exported) {
                            old.endpoint.stop(None);
                        }
                        Ok(())
                    }
                    Err(error) => Err(ExportError::Endpoint(error)),
                };
                answer.reply(outcome);
            }
            KernelCall::Disconnect(Disconnect(peer), answer) => {
                let mut found = false;
                for session in self.sessions.values_mut() {
                    if session.peer() == Some(peer.as_str()) {
                        found = true;
                        session.close(ConnectError::Closed);
                    }
                }
                if found {
                    tracing::info!(%peer, "disconnecting on request");
                }
                answer.reply(found);
            }
            KernelCall::TakeCensus(_, answer) => {
                answer.reply(Census {
                    peers: self.peers().len(),
                    sessions: self.sessions.len(),
                    remote_monitors: super::remote::REMOTE_MONITORS
                        .load(std::sync::atomic::Ordering::Relaxed),
                    links: Link::count(),
                });
            }
            KernelCall::Watch(Watch(watcher), answer) => {
                // A new watcher learns which nodes are up now, as if they had just come up.
                for (peer, _) in self.peers() {
                    watcher(NodeEvent::Up(peer));
                }
                self.watchers.push(watcher);
                answer.reply(());
            }
        }
        Ok(Flow::Continue)
    }

    async fn handle_info(&mut self, message: Info<Event>, me: &Context<Self>) -> crate::Result {
        match message {
            Info::Message(event) => self.session_event(me, event),
            Info::Exit(exit) if exit.id == self.node_server.get_id() => {
                return Ok(Flow::Stop(ExitReason::error(format!(
                    "the cluster node server exited: {}",
                    exit.reason
                ))));
            }
            Info::Exit(exit) if exit.id == self.global => {
                return Ok(Flow::Stop(ExitReason::error(format!(
                    "the global name table exited: {}",
                    exit.reason
                ))));
            }
            Info::Exit(exit) => {
                self.exports.retain(|name, exported| {
                    let gone = exported.endpoint.get_id() == exit.id;
                    if gone {
                        tracing::error!(server = %name, reason = %exit.reason, "remote endpoint exited; no longer exported");
                    }
                    !gone
                });
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }

    async fn terminate(&mut self, reason: &ExitReason, _me: &Context<Self>) {
        self.accept.abort();
        self.admission.flush_log_now();
        for (name, Exported { endpoint, .. }) in self.exports.drain() {
            ractor::pg::leave(super::remote::group_of(&name), vec![endpoint.clone()]);
            endpoint.stop(None);
        }
        for (_, dialing) in self.pending.drain() {
            dialing.from.reply(Err(ConnectError::NodeStopping));
        }
        // The peers' processes mirrored here. ractor_cluster numbers a node's links from 0,
        // so a node started next in this process gives its mirrors the same ids: these,
        // killed with their links but left to end in their own time, would then take the
        // new ones out of their groups as they go. Waited for, they are gone first.
        let mirrors: Vec<_> = self
            .sessions
            .values()
            .flat_map(|session| session.info.actor.get_children())
            .collect();
        let _ = self
            .node_server
            .stop_and_wait(None, Some(Duration::from_secs(5)))
            .await;
        let ended = async {
            for mirror in mirrors {
                let _ = mirror.wait(None).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), ended).await;
        tracing::info!(node = %self.full_name, %reason, "node stopped");
    }
}

impl NodeProcess {
    fn links(&self) -> Vec<super::LinkInfo> {
        let mut links: Vec<_> = self
            .sessions
            .values()
            .filter(|s| s.ready)
            .filter_map(|s| {
                let silent = match &s.link {
                    Some(link) => link.silent_for().min(s.last_seen.elapsed()),
                    None => s.last_seen.elapsed(),
                };
                Some(super::LinkInfo {
                    peer: s.peer()?.to_owned(),
                    up_since_ms: s.up_since.map_or(0, crate::sys::unix_ms),
                    silent_ms: u64::try_from(silent.as_millis()).unwrap_or(u64::MAX),
                    dialed: s.dialed.is_some(),
                    traffic: s.link.as_ref().map(|link| link.traffic()),
                })
            })
            .collect();
        links.sort_by(|a, b| a.peer.cmp(&b.peer));
        links
    }

    fn peers(&self) -> Vec<(String, u64)> {
        let mut peers: Vec<_> = self
            .sessions
            .values()
            .filter(|s| s.ready)
            .filter_map(|s| Some((s.info.peer_name.as_ref()?.name.clone(), s.info.node_id)))
            .collect();
        peers.sort();
        peers.dedup_by(|a, b| a.0 == b.0);
        peers
    }

    fn session_event(&mut self, me: &Context<NodeProcess>, event: Event) {
        match event {
            Event::Opened(info) => self.opened(me, info),
            Event::Authenticated(info) => {
                if let Some(session) = self.sessions.get_mut(&info.actor.get_id()) {
                    session.authenticated = true;
                    session.info = info;
                    session.cancel_deadline();
                    if let Some(link) = &session.link {
                        link.authenticated();
                    }
                }
            }
            Event::Ready(info) => self.ready(info),
            Event::Disconnected(info) => self.disconnected(info),
            Event::Tick => {
                self.admission.flush_log();
                let late = std::mem::replace(&mut self.last_tick, Instant::now()).elapsed();
                let stalled = late
                    > (self.config.liveness_timeout / 2).max(heartbeat_interval(&self.config) * 3);
                // Once per stall: a node that stays overloaded must still find dead peers.
                if stalled && !std::mem::replace(&mut self.graced, true) {
                    // Declaring every peer down now would blame them for our own stop:
                    // each gets a fresh window instead (what they sent meanwhile is
                    // still in the socket buffers). Peers that are really gone fail it.
                    tracing::warn!(stalled = ?late, "this node was stopped; its peers get a fresh liveness window");
                    let now = Instant::now();
                    self.sessions.values_mut().for_each(|s| s.last_seen = now);
                } else if !stalled {
                    self.graced = false;
                }
                self.check_liveness(me);
            }
            Event::Alive(id) => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    session.last_seen = Instant::now();
                }
            }
            Event::Deadline(id) => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    if !session.authenticated {
                        tracing::debug!(peer = %session.info.peer_addr, "closing a connection that did not authenticate in time");
                        self.admission.note(Noted::TimedOut);
                        session.close(ConnectError::Timeout);
                    }
                }
            }
        }
    }

    /// A new session. One our listener admitted already passed its caps on connections
    /// still authenticating, and has its deadline from there; the others (our own dials,
    /// ractor_cluster's loopback listener) are capped here, among themselves.
    fn opened(&mut self, me: &Context<NodeProcess>, info: NodeServerSessionInformation) {
        let id = info.actor.get_id();
        let link = Link::find(&info.peer_addr);
        let admitted = link.as_ref().is_some_and(|link| link.admitted());
        let unauthenticated = 1 + self
            .sessions
            .values()
            .filter(|s| !s.authenticated && !s.admitted)
            .count();
        let refusal = if self.sessions.len() >= self.config.max_connections {
            Some(Limit::Connections)
        } else if !admitted && unauthenticated > self.config.max_unauthenticated {
            Some(Limit::Unauthenticated)
        } else {
            None
        };
        let deadline = link
            .as_ref()
            .and_then(|link| link.handshake_deadline())
            .map_or(self.config.auth_timeout, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
        let mut session = Session {
            info,
            link,
            authenticated: false,
            ready: false,
            last_seen: Instant::now(),
            up_since: None,
            dialed: None,
            closed_by_us: None,
            deadline: None,
            admitted,
        };
        if let Some(limit) = refusal {
            tracing::debug!(peer = %session.info.peer_addr, %limit, "connection refused: limit reached");
            self.admission.note(Noted::Refused(limit));
            session.close(ConnectError::Refused(limit));
        } else {
            session.deadline = Some(me.send_after(deadline, Event::Deadline(id)));
        }
        self.sessions.insert(id, session);
        self.count_others();
    }

    /// Tells our listener how many sessions did not come through it, for its cap on
    /// connections.
    fn count_others(&self) {
        let others = self.sessions.values().filter(|s| !s.admitted).count();
        self.admission.set_others(others);
    }

    fn ready(&mut self, info: NodeServerSessionInformation) {
        let id = info.actor.get_id();
        let name = info.peer_name.as_ref().map(|p| p.name.clone());
        // A second link under the name of a node connected now is refused: a node name
        // names one node, and a cookie holder must not pass for a connected one (a node
        // restarted while its old link lingers gets in once that link closes).
        let taken = name.as_ref().is_some_and(|name| {
            self.sessions.iter().any(|(other, s)| {
                *other != id
                    && s.ready
                    && s.closed_by_us.is_none()
                    && s.peer() == Some(name.as_str())
            })
        });
        if taken {
            tracing::warn!(peer = ?name, "a second link under the name of a connected node; refused");
            if let Some(dialing) = self.pending.remove(&info.peer_addr) {
                dialing.from.reply(Err(ConnectError::Closed));
            }
            self.answer_naming(info.node_id, None);
            if let Some(session) = self.sessions.get_mut(&id) {
                session.close(ConnectError::Closed);
            }
            return;
        }
        self.answer_naming(info.node_id, name);
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        session.authenticated = true;
        session.ready = true;
        session.last_seen = Instant::now();
        session.up_since = Some(std::time::SystemTime::now());
        session.cancel_deadline();
        session.info = info;
        if let Some(link) = &session.link {
            link.authenticated();
        }
        let Some(peer) = session.info.peer_name.as_ref().map(|p| p.name.clone()) else {
            return;
        };
        let label = session.info.peer_addr.clone();
        let already_up = self
            .sessions
            .values()
            .filter(|s| s.ready && s.info.peer_name.as_ref().is_some_and(|p| p.name == peer))
            .count()
            > 1;
        tracing::info!(node = %self.full_name, %peer, "node up");
        if let Some(dialing) = self.pending.remove(&label) {
            if let Some(session) = self.sessions.get_mut(&id) {
                session.dialed = Some(dialing.address);
            }
            dialing.from.reply(Ok(peer.clone()));
        }
        if !already_up {
            self.notify(NodeEvent::Up(peer));
        }
    }

    /// Answers who asked the name of session `node_id`.
    fn answer_naming(&mut self, node_id: u64, name: Option<String>) {
        let (theirs, others) = std::mem::take(&mut self.naming)
            .into_iter()
            .partition::<Vec<_>, _>(|(asked, _)| *asked == node_id);
        self.naming = others;
        for (_, answer) in theirs {
            answer.reply(name.clone());
        }
    }

    fn disconnected(&mut self, info: NodeServerSessionInformation) {
        self.answer_naming(info.node_id, None);
        let Some(mut session) = self.sessions.remove(&info.actor.get_id()) else {
            return;
        };
        self.count_others();
        session.cancel_deadline();
        // The connection no longer counts against our listener's caps.
        if let Some(link) = &session.link {
            link.release();
        }
        if let Some(Dialing { from, link, .. }) = self.pending.remove(&session.info.peer_addr) {
            // Our link, not the session's: a link refused at once may have been gone
            // before the session's opening was handled.
            let busy = link.is_some_and(|link| link.refused_busy());
            let error = session.closed_by_us.clone().unwrap_or(if busy {
                ConnectError::Busy
            } else if session.authenticated {
                ConnectError::Closed
            } else {
                ConnectError::AuthenticationFailed
            });
            from.reply(Err(error));
        }
        if let (true, Some(address)) = (session.ready, session.dialed) {
            let window = self.config.auth_timeout;
            self.closed_lately
                .retain(|_, closed| closed.elapsed() < window);
            self.closed_lately.insert(address, Instant::now());
        }
        let Some(peer) = session.info.peer_name.as_ref().map(|p| p.name.clone()) else {
            return;
        };
        let still_up = self
            .sessions
            .values()
            .any(|s| s.ready && s.info.peer_name.as_ref().is_some_and(|p| p.name == peer));
        if still_up {
            return;
        }
        // Remote monitors the peer held here can never be answered: let them go. A link
        // carries requests from its authentication on, and may never be ready here:
        // ractor_cluster handles a session's exit before queued messages, so a link that
        // closes at once can lose its ready notice.
        if session.authenticated {
            for Exported { endpoint, .. } in self.exports.values() {
                let _ = endpoint.send_message(Wire::Forget { node: peer.clone() });
            }
        }
        if session.ready {
            tracing::warn!(node = %self.full_name, %peer, "node down");
            self.notify(NodeEvent::Down(peer));
        }
    }

    /// Closes sessions whose peer has been silent too long or announced too many processes
    /// (each a local proxy actor), then pings the others. Each ping runs in its own task so
    /// that a frozen peer cannot stall the node process.
    fn check_liveness(&mut self, me: &Context<NodeProcess>) {
        let timeout = self.config.liveness_timeout;
        let patience = heartbeat_interval(&self.config);
        for (id, session) in &mut self.sessions {
            if !session.ready || session.closed_by_us.is_some() {
                continue;
            }
            let processes = session.info.actor.get_children().len();
            if processes > self.config.max_peer_processes {
                tracing::warn!(peer = ?session.peer(), processes, "peer announced too many processes; closing its connection");
                session.close(ConnectError::Refused(Limit::PeerProcesses));
                continue;
            }
            // A peer whose bytes keep arriving is alive, even when its heartbeat answers
            // wait behind a backlog of data on the link.
            let silent_for = session.last_seen.elapsed().min(
                session
                    .link
                    .as_ref()
                    .map_or(Duration::MAX, |link| link.silent_for()),
            );
            if silent_for > timeout {
                tracing::warn!(peer = ?session.peer(), ?silent_for, "peer stopped answering; closing its connection");
                session.close(ConnectError::Closed);
                continue;
            }
            let Some(peer) = session.info.peer_name.as_ref().map(|p| p.name.clone()) else {
                continue;
            };
            let heartbeat =
                RemoteRef::<Heartbeat>::new(session.info.node_id, peer, HEARTBEAT.to_owned());
            let (node, id) = (me.server().clone(), *id);
            tokio::spawn(async move {
                if heartbeat.call_timeout(Ping, patience).await.is_ok() {
                    node.send_info(Event::Alive(id));
                }
            });
        }
    }

    fn notify(&mut self, event: NodeEvent) {
        self.watchers.retain(|watcher| watcher(event.clone()));
    }
}

impl Session {
    fn peer(&self) -> Option<&str> {
        self.info.peer_name.as_ref().map(|p| p.name.as_str())
    }

    fn cancel_deadline(&mut self) {
        if let Some(deadline) = self.deadline.take() {
            deadline.cancel();
        }
    }

    /// Closes the session, remembering why. Killing the session actor alone leaves
    /// ractor_cluster's reader and writer tasks waiting on the socket; shutting the socket
    /// ends them.
    fn close(&mut self, why: ConnectError) {
        self.closed_by_us = Some(why);
        self.info.actor.kill();
        if let Some(link) = &self.link {
            link.close();
        }
    }
}

/// Checks and pings run every second, or three times per liveness timeout if that is
/// shorter, so one or two lost pings do not condemn a peer and a process flood is cut
/// within a second.
fn heartbeat_interval(config: &NodeConfig) -> Duration {
    (config.liveness_timeout / 3).clamp(Duration::from_millis(10), Duration::from_secs(1))
}
