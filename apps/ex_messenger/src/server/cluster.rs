//! One chat across several servers: this server's part in it.
//!
//! Every server runs the same tree. Servers find each other through their links (a server
//! started with `--join` dials the given ones; each then learns the others and links to
//! them) and, on the otp framework's process groups and name tables:
//! - **nicks** are unique across the cluster: each user's nick is a name in the table
//!   [`NICKS`], held by the relay of the server the user is connected to;
//! - **rooms** span servers: a room runs on every server with members in it. A line said
//!   in a room is placed by the sender's server, then broadcast to the group of every
//!   server's relay (`servers`, in the scope [`SCOPE`]): it crosses each link once, and a
//!   server with members in that room places it among its own lines (as Phoenix.PubSub
//!   sends to every node and fans out locally). Sending to the servers that have members
//!   in the room only would lose the lines said in the moment before a server's first
//!   member there is known to the others;
//! - `/pm` reaches the relay holding the receiver's nick; `/users`, `/rooms` and a room's
//!   user list read the roster (`roster.rs`): each server tells the others where its
//!   users sit.
//!
//! # Who is a server
//! Clients hold the cookie too, so a client node could join the scope and name table, or
//! send the relays anything. Servers share a second secret, the *cluster key* (a file
//! only servers read, `~/.ex_messenger.cluster` by default): a peer counts as a server
//! once it proves it holds the key, answering a random challenge with a MAC bound to its
//! own node name ([`Prove`]); the scope and name table take members and names
//! from proven servers only ([`Peers::Admitted`](otp::node::pg::Peers::Admitted)); and every message between relays
//! carries a MAC under the key ([`Sealed`]). The same key signs session tokens, so a
//! token is valid on every server of the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use otp::gen_server::Init;
use otp::node::global::{Conflict, Global, GlobalError};
use otp::node::pg::{GroupEvent, Scope};
use otp::node::{MemberId, Node, NodeEvent};
use otp::{BoxError, Context, Flow, GenServer, Info, ServerRef};
use ring::hmac;
use serde::{Deserialize, Serialize};

use super::message_server::{LocalChatServer, ServerInfo};
use super::room::{registered_name, ChatRoom, Relay, RelayedLine, RelayedNotice};
use super::roster::Roster;
use crate::names::{Nick, Room};
use crate::protocol::{Private, Seq, MESSAGE_SERVER};

/// The registered (and exported) name of every server's relay.
pub const CLUSTER: &str = "cluster";
/// The process-group scope of the chat's servers.
pub const SCOPE: &str = "ex_messenger";
/// The name table of the chat's nicks.
pub const NICKS: &str = "ex_messenger.nicks";
/// The group every server's relay is in.
pub const SERVERS: &str = "servers";
/// How long a proof may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often lost servers are dialed again.
const REDIAL_EVERY: Duration = Duration::from_secs(1);

/// The cluster key: proves a peer is a server, seals what servers tell each other, signs
/// session tokens.
#[derive(Clone)]
pub struct ClusterKey(hmac::Key);

impl ClusterKey {
    /// The key from the cluster's secret (the cluster key file's contents).
    pub fn from_secret(secret: &[u8]) -> Self {
        Self(super::keys::derive(secret, "ex_messenger cluster"))
    }

    fn sign(&self, parts: &[impl AsRef<[u8]>]) -> String {
        hex(hmac::sign(&self.0, &framed(parts)).as_ref())
    }

    fn verify(&self, parts: &[impl AsRef<[u8]>], mac: &str) -> bool {
        unhex(mac).is_some_and(|mac| hmac::verify(&self.0, &framed(parts), &mac).is_ok())
    }
}

/// The parts of a signed message, each after its length, so that no two lists of parts
/// frame to the same bytes.
fn framed(parts: &[impl AsRef<[u8]>]) -> Vec<u8> {
    let mut message = Vec::new();
    for part in parts.iter().map(AsRef::as_ref) {
        message.extend_from_slice(&(part.len() as u64).to_le_bytes());
        message.extend_from_slice(part);
    }
    message
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The cluster's scope and nick table, started by the server's tree before the relay and
/// the message server.
async fn tables() -> Result<(Scope, Global), BoxError> {
    let scope = Scope::whereis(SCOPE)
        .await
        .ok_or("the cluster scope is not running (see the server's spec file)")?;
    let nicks = Global::whereis(NICKS)
        .await
        .ok_or("the nick table is not running (see the server's spec file)")?;
    Ok((scope, nicks))
}

otp::protocol! {
    /// What servers' relays answer each other: all a relay needs to reach another.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub ClusterPeer;
    calls PeerCall {
        /// Prove you hold the cluster key: a MAC over `nonce` and your node name. The
        /// answer comes back over the link to the node asked, so it is that node's (and it
        /// counts once that node is proven).
        Prove { nonce: u64 } -> Proof,
    }
    casts PeerCast {
        /// What a relay hands on, sealed.
        Tell(Sealed),
    }
}

otp::protocol! {
    /// The relay as this server's own processes reach it: what other servers' relays send
    /// it ([`ClusterPeer`]), and its own infos ([`RelayInfo`]).
    pub LocalClusterPeer: ClusterPeer { infos RelayInfo; }
}

/// The answer to [`Prove`]: the proof, where clients reach this server, and the servers
/// it knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proof {
    /// The MAC under the cluster key over the nonce, the prover's node name, and the rest
    /// of this answer (see `proof`).
    pub mac: String,
    /// Where clients reach the prover.
    pub address: String,
    /// The servers the prover knows.
    pub servers: Vec<String>,
}

/// A message between relays, with a MAC under the cluster key over its body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sealed {
    body: String,
    mac: String,
}

/// What a relay hands on.
#[derive(Debug, Serialize, Deserialize)]
enum Relayed {
    /// A line said in `room` on another server.
    Line {
        room: Room,
        from: Nick,
        text: String,
        session: u64,
        sent: Seq,
    },
    /// A room notice from another server.
    Notice { room: Room, text: String },
    /// `from` on another server says `text` to `to`, here.
    Private {
        to: Nick,
        from: Nick,
        text: String,
        session: u64,
        sent: Seq,
    },
    /// The servers the sender knows (told when one joins, so that every server links to
    /// every other).
    Servers(Vec<String>),
    /// `nick`, a user of `server`, is in `room` now (`None`: in none).
    Seat {
        server: String,
        nick: Nick,
        room: Option<Room>,
    },
    /// Every user of `server` and their room: sent to a server when it links.
    Roster {
        server: String,
        seats: Vec<(Nick, Room)>,
    },
}

impl Sealed {
    fn seal(key: &ClusterKey, relayed: &Relayed) -> Option<Self> {
        let body = serde_json::to_string(relayed).ok()?;
        let mac = key.sign(&[body.as_bytes()]);
        Some(Self { body, mac })
    }

    fn open(self, key: &ClusterKey) -> Option<Relayed> {
        if !key.verify(&[self.body.as_bytes()], &self.mac) {
            return None;
        }
        serde_json::from_str(&self.body).ok()
    }
}

/// This server's way into the cluster, for the message server and its rooms.
#[derive(Clone)]
pub struct Cluster {
    key: ClusterKey,
    /// The other servers' users, as this server knows them.
    roster: Roster,
    /// This server's node name.
    here: String,
    scope: Scope,
    nicks: Global,
    relay: ServerRef<LocalClusterPeer>,
}

impl Cluster {
    /// The running cluster's parts (started by the server's tree before the message
    /// server).
    pub async fn local(key: ClusterKey, roster: Roster) -> Result<Self, BoxError> {
        let (scope, nicks) = tables().await?;
        let relay = ServerRef::<LocalClusterPeer>::whereis(CLUSTER)
            .ok_or("the cluster relay is not running (see the server's spec file)")?;
        Ok(Self {
            key,
            roster,
            here: Node::local().await?.name().to_owned(),
            scope,
            nicks,
            relay,
        })
    }

    /// Whether a user of another server has `nick`: by the nick table, or by the roster
    /// (which has a user who just entered a room there before the table may).
    pub fn held_elsewhere(&self, nick: &Nick) -> bool {
        let held = self.nicks.holder(nick.as_str());
        held.is_some_and(|holder| holder.node != self.here) || self.roster.server_of(nick).is_some()
    }

    /// Takes `nick` for a user of this server; should another server's user turn out to
    /// have had it first (after a split), the message server is told.
    pub async fn claim(&self, nick: &Nick) -> Result<(), MemberId> {
        let lost = nick.clone();
        let tell = move |conflict: Conflict| {
            if let Some(server) = ServerRef::<LocalChatServer>::whereis(MESSAGE_SERVER) {
                server.send_info(ServerInfo::NickLost(lost.clone(), conflict.winner));
            }
        };
        match self
            .nicks
            .register_name_notify(nick.as_str(), &self.relay, tell)
            .await
        {
            Ok(()) => Ok(()),
            // Already ours (the message server restarted; the relay kept its names).
            Err(GlobalError::Taken { holder, .. }) if holder.node == self.here => Ok(()),
            Err(GlobalError::Taken { holder, .. }) => Err(holder),
            // The table is stopping with the server: nothing to hold the nick against.
            Err(_) => Ok(()),
        }
    }

    /// Lets `nick` go.
    pub async fn release(&self, nick: &Nick) {
        let _ = self.nicks.unregister_name(nick.as_str()).await;
    }

    /// Hands what a room here said or did to the same room on the other servers.
    pub fn relay(&self, relay: Relay) {
        let relayed = match relay {
            Relay::Line {
                room,
                from,
                text,
                session,
                sent,
            } => Relayed::Line {
                room,
                from,
                text,
                session,
                sent,
            },
            Relay::Notice { room, text } => Relayed::Notice { room, text },
        };
        let nodes = self.tell_others(&relayed);
        if matches!(relayed, Relayed::Line { .. }) {
            RELAYED_LINES.fetch_add(nodes as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// `from` says `text` to `to`, whose nick another server holds; false if none does.
    pub fn private(&self, to: &Nick, from: &Nick, text: &str, session: u64, sent: Seq) -> bool {
        // The nick table, or else the roster: a user who entered a room on another server
        // a moment ago is in the roster as soon as their entrance was announced here (both
        // come the same way), while the nick table may still be on its way.
        // Looked up as `LocalClusterPeer`, the protocol this server's relay holds nicks
        // with: a nick this server's relay still holds (a user not yet restored after a
        // restart of the message server) is found too, and the line comes back here as
        // from another server. A holder elsewhere is taken at its word whatever the type.
        let holder = self
            .nicks
            .whereis_name::<LocalClusterPeer>(to.as_str())
            .or_else(|| {
                let server = self.roster.server_of(to)?;
                let relays = self.scope.members::<LocalClusterPeer>(SERVERS);
                relays.into_iter().find(|relay| relay.id().node == server)
            });
        let Some(holder) = holder else {
            return false;
        };
        let relayed = Relayed::Private {
            to: to.clone(),
            from: from.clone(),
            text: text.to_owned(),
            session,
            sent,
        };
        match Sealed::seal(&self.key, &relayed) {
            Some(sealed) => {
                holder.cast(Tell(sealed));
                true
            }
            None => false,
        }
    }

    /// The users in `room` on the other servers, as this server knows them.
    pub fn users_elsewhere(&self, room: &Room) -> Vec<Nick> {
        self.roster.nicks(room)
    }

    /// The rooms on the other servers, with how many of their users are in each.
    pub fn rooms_elsewhere(&self) -> Vec<(Room, usize)> {
        self.roster.rooms()
    }

    /// `nick`, a user here, is in `room` now (`None`: in none): the other servers' rosters
    /// follow.
    pub fn seated(&self, nick: &Nick, room: Option<&Room>) {
        let seat = Relayed::Seat {
            server: self.here.clone(),
            nick: nick.clone(),
            room: room.cloned(),
        };
        self.tell_others(&seat);
    }

    /// Tells the relay of the server `node` (every other server's, if `None`) where each of
    /// this server's users is: `seats`, all of them.
    pub fn send_roster(&self, node: Option<&str>, seats: Vec<(Nick, Room)>) {
        let roster = Relayed::Roster {
            server: self.here.clone(),
            seats,
        };
        let Some(sealed) = Sealed::seal(&self.key, &roster) else {
            return;
        };
        let relays = self.scope.members::<ClusterPeer>(SERVERS).into_iter();
        let theirs = relays.filter(|m| !m.is_local() && node.is_none_or(|n| m.id().node == n));
        for relay in theirs {
            relay.cast(Tell(sealed.clone()));
        }
    }

    /// Sends `relayed` to every other server's relay, once per link; returns to how many.
    fn tell_others(&self, relayed: &Relayed) -> usize {
        // Every line passes here: alone, a server neither builds the members nor seals.
        if !self.scope.has_remote_members(SERVERS) {
            return 0;
        }
        match Sealed::seal(&self.key, relayed) {
            Some(sealed) => {
                let tell = Tell(sealed).into();
                self.scope.broadcast_remote::<ClusterPeer>(SERVERS, &tell)
            }
            None => 0,
        }
    }
}

/// Room lines this server sent to other servers, one per server reached (the server
/// prints it when it stops; `bench --servers` counts it).
pub static RELAYED_LINES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What the relay is started with.
#[derive(Clone)]
pub struct RelayArgs {
    pub key: ClusterKey,
    /// Servers to dial at start (`--join`), and again whenever not linked.
    pub join: Vec<String>,
    /// The other servers' users' seats, kept here.
    pub roster: Roster,
}

/// The relay's own messages.
pub enum RelayInfo {
    Node(NodeEvent),
    /// A server's relay joined or left the group of servers (as this server sees it).
    Group(GroupEvent),
    /// `node` proved it is a server: clients reach it at `address`; it knows `servers`.
    Proven {
        node: String,
        address: String,
        servers: Vec<String>,
    },
    /// Time to dial servers not linked.
    Redial,
    /// A dial to this address ended (linked or not).
    Dialed(String),
}

/// The relay: this server's member of the cluster's groups, holder of its users' nicks.
pub struct ClusterRelay {
    args: RelayArgs,
    node: Node,
    scope: Scope,
    nicks: Global,
    /// Where clients reach this server.
    address: String,
    /// Proven servers now linked: node name → client address.
    proven: BTreeMap<String, String>,
    /// Every server address known (given or learned), to dial again when not linked.
    known: BTreeSet<String>,
    /// Addresses being dialed now: a frozen server takes a dial's whole authentication
    /// time to fail, and one dial at a time is enough.
    dialing: BTreeSet<String>,
}

impl ClusterRelay {
    /// Every server's address, this one's first.
    fn servers(&self) -> Vec<String> {
        let mut all = vec![self.address.clone()];
        all.extend(self.proven.values().cloned());
        all
    }

    /// Tells the message server which servers its users may move to.
    fn announce(&self) {
        if let Some(server) = ServerRef::<LocalChatServer>::whereis(MESSAGE_SERVER) {
            server.send_info(ServerInfo::Servers(self.servers()));
        }
    }

    /// Dials the known servers not linked now. Of two servers that know each other, the
    /// one with the smaller address dials, so that they never dial each other at once (a
    /// `--join` target is dialed by the joiner).
    fn redial(&mut self, me: &Context<Self>) {
        let linked: BTreeSet<&String> = self.proven.values().collect();
        for address in &self.known {
            let ours = self.args.join.contains(address) || self.address < *address;
            let skip = linked.contains(address) || self.dialing.contains(address);
            if skip || *address == self.address || !ours {
                continue;
            }
            self.dialing.insert(address.clone());
            let (node, address, me) = (self.node.clone(), address.clone(), me.server().clone());
            tokio::spawn(async move {
                if let Err(error) = node.connect(address.as_str()).await {
                    tracing::debug!(%error, %address, "cannot reach a server of the cluster");
                }
                me.send_info(RelayInfo::Dialed(address));
            });
        }
    }
}

impl Init<RelayArgs> for ClusterRelay {
    async fn init(args: RelayArgs, me: &Context<Self>) -> otp::Result<Self> {
        let node = Node::local().await?;
        let (scope, nicks) = tables().await?;
        // What was known of the others before a restart may be stale: they tell again.
        args.roster.clear();
        node.export::<LocalClusterPeer>(CLUSTER).await?;
        scope.join(SERVERS, me.server()).await?;
        scope.monitor(me, SERVERS, RelayInfo::Group).await?;
        node.monitor_nodes(me, RelayInfo::Node).await?;
        me.send_interval(REDIAL_EVERY, || RelayInfo::Redial);
        let mut relay = ClusterRelay {
            address: node.address().to_string(),
            known: args.join.iter().cloned().collect(),
            args,
            node,
            scope,
            nicks,
            proven: BTreeMap::new(),
            dialing: BTreeSet::new(),
        };
        relay.redial(me);
        Ok(relay)
    }
}

impl GenServer for ClusterRelay {
    type Protocol = LocalClusterPeer;

    async fn handle_call(&mut self, call: PeerCall<'_>, _me: &Context<Self>) -> otp::Result {
        let PeerCall::Prove(Prove { nonce }, caller) = call;
        let servers = self.servers();
        let proof = proof(nonce, self.node.name(), &self.address, &servers);
        Ok(caller.reply(Proof {
            mac: self.args.key.sign(&proof),
            address: self.address.clone(),
            servers,
        }))
    }

    async fn handle_cast(&mut self, cast: PeerCast, me: &Context<Self>) -> otp::Result {
        let PeerCast::Tell(Tell(sealed)) = cast;
        let Some(relayed) = sealed.open(&self.args.key) else {
            tracing::warn!("a relayed message without a valid cluster MAC; dropped");
            return Ok(Flow::Continue);
        };
        match relayed {
            Relayed::Line {
                room,
                from,
                text,
                session,
                sent,
            } => {
                if let Some(server) = ServerRef::<ChatRoom>::whereis(&registered_name(&room)) {
                    server.cast(RelayedLine {
                        from,
                        text,
                        session,
                        sent,
                    });
                }
            }
            Relayed::Notice { room, text } => {
                if let Some(server) = ServerRef::<ChatRoom>::whereis(&registered_name(&room)) {
                    server.cast(RelayedNotice(text));
                }
            }
            Relayed::Servers(servers) => {
                self.known.extend(servers);
                self.redial(me);
            }
            Relayed::Seat { server, nick, room } => self.args.roster.seat(&server, nick, room),
            // Linked once its users are known here too: from then on, what is said here
            // reaches it, and who is there is known here.
            Relayed::Roster { server, seats } => {
                self.args.roster.replace(&server, seats);
                let at = self.proven.get(&server).map_or("?", String::as_str);
                crate::stdout::line(format_args!("Linked to server {server} at {at}"));
            }
            Relayed::Private {
                to,
                from,
                text,
                session,
                sent,
            } => {
                if let Some(server) = ServerRef::<LocalChatServer>::whereis(MESSAGE_SERVER) {
                    let line = Private {
                        from,
                        text,
                        session,
                        sent,
                    };
                    server.send_info(ServerInfo::Private { to, line });
                }
            }
        }
        Ok(Flow::Continue)
    }

    async fn handle_info(&mut self, info: Info<RelayInfo>, me: &Context<Self>) -> otp::Result {
        let Info::Message(info) = info else {
            return Ok(Flow::Continue);
        };
        match info {
            RelayInfo::Node(NodeEvent::Up(peer)) => prove(me, &self.node, peer, &self.args.key),
            RelayInfo::Node(NodeEvent::Down(peer)) => {
                if self.proven.remove(&peer).is_some() {
                    self.args.roster.forget(&peer);
                    let _ = self.scope.admit(&peer, false).await;
                    let _ = self.nicks.admit(&peer, false).await;
                    self.announce();
                }
            }
            RelayInfo::Proven {
                node,
                address,
                servers,
            } => {
                self.scope.admit(&node, true).await?;
                self.nicks.admit(&node, true).await?;
                let new = self.proven.insert(node, address.clone()).is_none();
                self.known.insert(address);
                self.known.extend(servers);
                self.announce();
                self.redial(me);
                if new {
                    // The others may not know it yet: every server links to every other.
                    let known = Relayed::Servers(self.known.iter().cloned().collect());
                    if let Some(sealed) = Sealed::seal(&self.args.key, &known) {
                        let tell = Tell(sealed).into();
                        self.scope.broadcast_remote::<ClusterPeer>(SERVERS, &tell);
                    }
                }
            }
            RelayInfo::Group(event) => {
                let here = self.node.name();
                for node in event.members.iter().map(|m| &m.node).filter(|n| *n != here) {
                    match event.joined {
                        // It gets this server's users from the message server, which also
                        // sends every change of a seat: one sender keeps them in order.
                        true => {
                            let server = ServerRef::<LocalChatServer>::whereis(MESSAGE_SERVER);
                            if let Some(server) = server {
                                server.send_info(ServerInfo::Linked(node.clone()));
                            }
                        }
                        false => {
                            self.args.roster.forget(node);
                            crate::stdout::line(format_args!("Lost server {node}"));
                        }
                    }
                }
            }
            RelayInfo::Redial => self.redial(me),
            RelayInfo::Dialed(address) => _ = self.dialing.remove(&address),
        }
        Ok(Flow::Continue)
    }
}

/// What a proof signs: the challenge, the prover's node name, and what it tells of itself
/// (where clients reach it, the servers it knows), so that none of it can be swapped.
fn proof<'a>(nonce: u64, node: &'a str, address: &'a str, servers: &[String]) -> [Vec<u8>; 4] {
    [
        nonce.to_le_bytes().to_vec(),
        node.as_bytes().to_vec(),
        address.as_bytes().to_vec(),
        servers.join(",").into_bytes(),
    ]
}

/// Asks `peer` to prove it is a server, off the relay's loop; a proof comes back as
/// [`RelayInfo::Proven`]. A client node exports no relay, or cannot prove: nothing comes.
fn prove(me: &Context<ClusterRelay>, node: &Node, peer: String, key: &ClusterKey) {
    let (me, node, key) = (me.server().clone(), node.clone(), key.clone());
    tokio::spawn(async move {
        let Ok(relay) = node.remote::<ClusterPeer>(&peer, CLUSTER).await else {
            return;
        };
        let nonce = crate::random::number();
        let answer = relay.call_timeout(Prove { nonce }, ASK_TIMEOUT).await;
        let Ok(Proof {
            mac,
            address,
            servers,
        }) = answer
        else {
            return;
        };
        if key.verify(&proof(nonce, &peer, &address, &servers), &mac) {
            me.send_info(RelayInfo::Proven {
                node: peer,
                address,
                servers,
            });
        } else {
            crate::stdout::line(format_args!(
                "Refused {peer} as a server: its proof does not hold the cluster key"
            ));
        }
    });
}
