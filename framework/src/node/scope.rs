//! The scope process (OTP's `pg` scope, and `global`'s name table): local servers held
//! under keys, in a table every connected node running a scope of the same name keeps a
//! copy of. [`pg`](super::pg) reads it as process groups, [`global`](super::global) as
//! unique names.
//!
//! How copies stay in step, and why this way:
//! - Scope processes find each other through ractor's process groups, which ractor_cluster
//!   keeps in step across nodes: each joins the group of its scope's name, and sees its
//!   peers' proxies join and leave (a peer's proxy leaves when its node's link drops, so its
//!   members leave at once).
//! - Each scope *pulls* each peer's own entries: it calls the peer with the version it has
//!   seen, and the peer answers with what changed since (or a snapshot), or holds the call
//!   until something changes. A message over ractor_cluster carries no sender, but the
//!   answer to a call comes back over the link to the node that was called: so a peer can
//!   only ever speak for its own processes. No node can put a process of another into a
//!   group, or register a name for it.
//! - A broadcast crosses each link once: one message to each peer scope that has members
//!   in the group, which hands it to its local members (decoded once).
//!
//! The table is shared (`Arc<RwLock<Table>>`, as OTP's pg reads its ETS table): lookups
//! and broadcasts run in the caller's task, only changes go through the process.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::remote::{self, RemoteProtocol};
use crate::gen_server::{Init, Never};
use crate::{BoxError, Context, ExitReason, Flow, GenServer, Info, ServerRef};

/// The ractor process-group scope in which scope processes find their peers (group: the
/// scope's name).
const SCOPES: &str = "otp.scopes";

/// Changes kept for peers that pull; one further behind gets a snapshot.
const LOG_LENGTH: usize = 1024;

/// How often a held pull is answered even without changes, so that one whose puller went
/// away is let go (ractor_cluster keeps a dead link's task while its reply port is held).
const PULL_REFRESH: Duration = Duration::from_secs(30);

/// The pause before asking again a peer that dropped a pull unanswered.
const PULL_RETRY: Duration = Duration::from_secs(1);

/// A member as every node names it: its node and its process number there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberId {
    /// The node's full name (empty for a process of a node-less program).
    pub node: String,
    /// The process's number on its node.
    pub pid: u64,
}

impl std::fmt::Display for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}.{}>", self.node, self.pid)
    }
}

/// A local server, type-erased so that one table holds servers of any protocol.
pub(crate) trait Sink: Send + Sync {
    fn id(&self) -> ActorId;
    fn cell(&self) -> ActorCell;
    /// The typed handle, for callers that name the protocol (`ServerRef<P>`).
    fn as_any(&self) -> &dyn Any;
    /// Decodes a cast that came over the wire, once for all members of a group.
    fn decode_cast(&self, payload: &[u8]) -> Result<Box<dyn Any + Send>, serde_json::Error>;
    /// Casts a decoded message (ignored if it is of another protocol's type).
    fn cast_decoded(&self, message: &dyn Any);
    /// Delivers a call that came over the wire.
    fn call(&self, payload: &[u8], reply: RpcReplyPort<Vec<u8>>);
    /// Stops the server in order with `reason`, without waiting.
    fn stop(&self, reason: ExitReason);
}

impl<P> Sink for ServerRef<P>
where
    P: RemoteProtocol,
    P::Cast: Clone,
{
    fn id(&self) -> ActorId {
        ServerRef::id(self)
    }

    fn cell(&self) -> ActorCell {
        ServerRef::cell(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn decode_cast(&self, payload: &[u8]) -> Result<Box<dyn Any + Send>, serde_json::Error> {
        Ok(Box::new(P::decode_cast(payload)?))
    }

    fn cast_decoded(&self, message: &dyn Any) {
        if let Some(message) = message.downcast_ref::<P::Cast>() {
            self.cast(message.clone());
        }
    }

    fn call(&self, payload: &[u8], reply: RpcReplyPort<Vec<u8>>) {
        remote::deliver_call(Some(self.clone()), payload, reply, "a group member");
    }

    fn stop(&self, reason: ExitReason) {
        let server = self.clone();
        tokio::spawn(async move { server.stop(reason).await });
    }
}

/// What happens to a local holder of a unique key that loses it to an older one.
#[derive(Clone)]
pub(crate) enum Loser {
    /// Stopped with `{shutdown, "global name conflict: <name>"}`.
    Exit,
    /// Told, and left running without the name.
    Notify(Arc<dyn Fn(Conflict) + Send + Sync>),
}

/// A unique key was held on two nodes (after a split healed, or two registrations within
/// a round trip); the holder told of it lost the key to `winner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The key (a global name).
    pub name: String,
    /// Who keeps it.
    pub winner: MemberId,
}

/// One holder of a key, as peers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) pid: u64,
    /// When it took the key, in milliseconds of its node's clock: the older holder of a
    /// unique key keeps it.
    pub(crate) since_ms: u64,
}

/// A local holder of a key.
pub(crate) struct Held {
    pub(crate) sink: Arc<dyn Sink>,
    pub(crate) since_ms: u64,
    /// What it is told if it loses a unique key (`None`: the key is a group's).
    loser: Option<Loser>,
}

/// Which peers a scope takes members (or names) from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Peers {
    /// Every connected node that runs a scope of the same name, as OTP's `pg` and
    /// `global` (whose nodes all hold the cookie, and are all trusted).
    #[default]
    All,
    /// Only nodes this one admitted (`admit`): for a cluster whose cookie also
    /// reaches nodes that must not place members or names in it (a chat's clients).
    Admitted,
}

/// How a scope runs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Keys are unique (global names): a key held twice goes to its oldest holder.
    pub(crate) unique: bool,
    pub(crate) peers: Peers,
}

/// What a peer scope holds, as last pulled.
pub(crate) struct Peer {
    /// The peer's scope process (a ractor_cluster proxy), which broadcasts and calls go to.
    pub(crate) scope: ActorRef<ScopeMsg>,
    /// Its node's name (known from its first answer on).
    pub(crate) node: String,
    pub(crate) entries: HashMap<String, Vec<Entry>>,
    /// The last version of its table applied here.
    version: u64,
    /// The pull loop taking its entries, by number (with [`Peers::Admitted`], only once
    /// its node is); an answer to an older loop's pull is dropped, so that expelling and
    /// admitting a node again never runs two loops.
    pulling: Option<u64>,
}

/// The table: this node's holders and each peer's. Written only by the scope process.
#[derive(Default)]
pub(crate) struct Table {
    pub(crate) local: HashMap<String, Vec<Held>>,
    pub(crate) peers: HashMap<ActorId, Peer>,
}

impl Table {
    /// Every holder of `key` as (since, member id), oldest first (the order in which a
    /// unique key's holders rank).
    pub(crate) fn ranked(&self, key: &str) -> Vec<(u64, MemberId, Option<&Held>)> {
        let node = super::kernel::local_name();
        let mut all: Vec<_> = self
            .local
            .get(key)
            .into_iter()
            .flatten()
            .map(|held| (held.since_ms, member_id(&node, held.sink.id()), Some(held)))
            .collect();
        for peer in self.peers.values() {
            for entry in peer.entries.get(key).into_iter().flatten() {
                let id = MemberId {
                    node: peer.node.clone(),
                    pid: entry.pid,
                };
                all.push((entry.since_ms, id, None));
            }
        }
        all.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        all
    }

    /// The keys with at least one holder, anywhere.
    pub(crate) fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.local.keys().cloned().collect();
        for peer in self.peers.values() {
            keys.extend(peer.entries.keys().cloned());
        }
        keys.sort();
        keys.dedup();
        keys
    }
}

fn member_id(node: &str, id: ActorId) -> MemberId {
    MemberId {
        node: node.to_owned(),
        pid: id.pid(),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A change of the members under one key, for monitors (`pg:monitor/2`'s join and leave
/// notices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEvent {
    /// The group (or name) that changed.
    pub group: String,
    /// Joined (true) or left (false).
    pub joined: bool,
    /// Who.
    pub members: Vec<MemberId>,
}

/// Delivers a group event to one monitoring server; false once that server is gone.
pub(crate) type Watcher = Box<dyn Fn(GroupEvent) -> bool + Send>;

/// Why a key could not be taken.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A unique key already held, by this member.
    Taken(MemberId),
    /// The key's local holders are servers of another protocol.
    OtherProtocol,
}

/// The scope process's messages: from peers (over the wire), and from this node.
pub(crate) enum ScopeMsg {
    /// A peer asks for what changed after version `since`. `from` is the puller, as it
    /// names itself: held pulls are let go when that peer goes (a peer that lies only
    /// gets its own pulls, or another's, answered early; it asks again).
    Pull {
        since: u64,
        from: Puller,
        reply: RpcReplyPort<Vec<u8>>,
    },
    /// A cast for every local member of `key`, as JSON.
    Broadcast { key: String, payload: Vec<u8> },
    /// A cast for one local member.
    Send { pid: u64, payload: Vec<u8> },
    /// A call for one local member.
    Call {
        pid: u64,
        payload: Vec<u8>,
        reply: RpcReplyPort<Vec<u8>>,
    },
    /// From this node only.
    Local(Local),
}

pub(crate) enum Local {
    /// `sink` takes `key` (a unique key, with what to tell it should it lose it).
    Add {
        key: String,
        sink: Arc<dyn Sink>,
        loser: Option<Loser>,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// Removes one holding of `key` by `id`; answers whether there was one.
    Remove {
        key: String,
        id: ActorId,
        reply: oneshot::Sender<bool>,
    },
    /// Subscribes `watcher` to the changes of `key` (of every key if `None`); answers the
    /// holders of the watched keys at that moment.
    Watch {
        key: Option<String>,
        watcher: Watcher,
        reply: oneshot::Sender<Vec<(String, Vec<MemberId>)>>,
    },
    /// A pull's answer came (`None`: the peer or the link is gone), in pull loop `round`.
    Pulled {
        peer: ActorId,
        round: u64,
        answer: Option<Vec<u8>>,
    },
    /// Answer held pulls (see [`PULL_REFRESH`]).
    Refresh,
    /// A discovered peer's node name, as our session to it knows it: pulling starts
    /// (if its node is admitted, where that is asked for).
    Named { peer: ActorId, node: String },
    /// Take members from `node` (true) or no more (false).
    Admit {
        node: String,
        admitted: bool,
        reply: oneshot::Sender<()>,
    },
}

const PULL: &str = "pull";
const BROADCAST: &str = "broadcast";
const SEND: &str = "send";
const CALL: &str = "call";

impl ractor::Message for ScopeMsg {
    fn serializable() -> bool {
        true
    }

    fn serialize(self) -> Result<SerializedMessage, BoxedDowncastErr> {
        Ok(match self {
            ScopeMsg::Pull { since, from, reply } => SerializedMessage::Call {
                variant: PULL.to_owned(),
                args: [
                    &since.to_le_bytes()[..],
                    &from.pid.to_le_bytes(),
                    from.node.as_bytes(),
                ]
                .concat(),
                reply,
                metadata: None,
            },
            ScopeMsg::Broadcast { key, payload } => SerializedMessage::Cast {
                variant: BROADCAST.to_owned(),
                args: keyed(&key, &payload),
                metadata: None,
            },
            ScopeMsg::Send { pid, payload } => SerializedMessage::Cast {
                variant: SEND.to_owned(),
                args: numbered(pid, &payload),
                metadata: None,
            },
            ScopeMsg::Call {
                pid,
                payload,
                reply,
            } => SerializedMessage::Call {
                variant: CALL.to_owned(),
                args: numbered(pid, &payload),
                reply,
                metadata: None,
            },
            ScopeMsg::Local(_) => return Err(BoxedDowncastErr),
        })
    }

    fn deserialize(message: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        match message {
            SerializedMessage::Call {
                variant,
                args,
                reply,
                ..
            } => match variant.as_str() {
                PULL => {
                    let (since, rest) = unnumbered(args)?;
                    let (pid, node) = unnumbered(rest)?;
                    let node = String::from_utf8(node).map_err(|_| BoxedDowncastErr)?;
                    let from = Puller { node, pid };
                    Ok(ScopeMsg::Pull { since, from, reply })
                }
                CALL => {
                    let (pid, payload) = unnumbered(args)?;
                    Ok(ScopeMsg::Call {
                        pid,
                        payload,
                        reply,
                    })
                }
                _ => Err(BoxedDowncastErr),
            },
            SerializedMessage::Cast { variant, args, .. } => match variant.as_str() {
                BROADCAST => {
                    let (key, payload) = unkeyed(&args)?;
                    Ok(ScopeMsg::Broadcast { key, payload })
                }
                SEND => {
                    let (pid, payload) = unnumbered(args)?;
                    Ok(ScopeMsg::Send { pid, payload })
                }
                _ => Err(BoxedDowncastErr),
            },
            _ => Err(BoxedDowncastErr),
        }
    }
}

/// `key` and a JSON payload in one frame, without encoding the payload again: the key's
/// length (4 bytes), the key, the payload.
fn keyed(key: &str, payload: &[u8]) -> Vec<u8> {
    let mut args = Vec::with_capacity(4 + key.len() + payload.len());
    args.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes());
    args.extend_from_slice(key.as_bytes());
    args.extend_from_slice(payload);
    args
}

fn unkeyed(args: &[u8]) -> Result<(String, Vec<u8>), BoxedDowncastErr> {
    let (length, rest) = args.split_first_chunk::<4>().ok_or(BoxedDowncastErr)?;
    let length = usize::try_from(u32::from_le_bytes(*length)).map_err(|_| BoxedDowncastErr)?;
    if rest.len() < length {
        return Err(BoxedDowncastErr);
    }
    let (key, payload) = rest.split_at(length);
    let key = String::from_utf8(key.to_vec()).map_err(|_| BoxedDowncastErr)?;
    Ok((key, payload.to_vec()))
}

fn numbered(pid: u64, payload: &[u8]) -> Vec<u8> {
    let mut args = Vec::with_capacity(8 + payload.len());
    args.extend_from_slice(&pid.to_le_bytes());
    args.extend_from_slice(payload);
    args
}

fn unnumbered(mut args: Vec<u8>) -> Result<(u64, Vec<u8>), BoxedDowncastErr> {
    let pid = args.first_chunk::<8>().ok_or(BoxedDowncastErr)?;
    let pid = u64::from_le_bytes(*pid);
    args.drain(..8);
    Ok((pid, args))
}

/// Who sent a pull: its node, and its scope process's number there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Puller {
    node: String,
    pid: u64,
}

/// A pull's answer.
#[derive(Serialize, Deserialize)]
struct Update {
    version: u64,
    changes: Changes,
}

#[derive(Serialize, Deserialize)]
enum Changes {
    /// Everything the peer holds now.
    Snapshot(HashMap<String, Vec<Entry>>),
    /// What changed since the version asked for, in order.
    Delta(Vec<Change>),
}

#[derive(Clone, Serialize, Deserialize)]
enum Change {
    Add(String, Entry),
    Remove(String, u64),
}

/// Process numbers by key.
type ByKey = Vec<(String, Vec<u64>)>;

/// The scope process.
pub(crate) struct ScopeProcess {
    pub(crate) name: String,
    pub(crate) options: Options,
    pub(crate) table: Arc<RwLock<Table>>,
}

/// The scope process's own state (the table is shared, the rest is not).
pub(crate) struct ScopeState {
    /// Bumped by every local change; peers pull by it.
    version: u64,
    /// The last changes, for peers a little behind.
    log: VecDeque<(u64, Change)>,
    /// Pulls waiting for a change.
    held: Vec<(Puller, RpcReplyPort<Vec<u8>>)>,
    /// Local processes holding any key, with how many keys: monitored while above zero.
    holders: HashMap<ActorId, (usize, Arc<dyn Sink>)>,
    watchers: Vec<(Option<String>, Watcher)>,
    /// With [`Peers::Admitted`]: the nodes whose entries are taken in.
    admitted: std::collections::HashSet<String>,
    /// Pull loops started so far, to number the next.
    rounds: u64,
    _refresh: ractor::concurrency::JoinHandle<()>,
}

impl Actor for ScopeProcess {
    type Msg = ScopeMsg;
    type State = ScopeState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<ScopeMsg>,
        _: (),
    ) -> Result<ScopeState, ActorProcessingErr> {
        ractor::pg::monitor_scope(SCOPES.to_owned(), myself.get_cell());
        ractor::pg::join_scoped(
            SCOPES.to_owned(),
            self.name.clone(),
            vec![myself.get_cell()],
        );
        let refresh = myself.send_interval(PULL_REFRESH, || ScopeMsg::Local(Local::Refresh));
        Ok(ScopeState {
            version: 0,
            log: VecDeque::new(),
            held: Vec::new(),
            holders: HashMap::new(),
            watchers: Vec::new(),
            admitted: std::collections::HashSet::new(),
            rounds: 0,
            _refresh: refresh,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<ScopeMsg>,
        _: &mut ScopeState,
    ) -> Result<(), ActorProcessingErr> {
        let present = ractor::pg::get_scoped_members(&SCOPES.to_owned(), &self.name);
        self.discovered(&myself, present);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ScopeMsg>,
        message: ScopeMsg,
        state: &mut ScopeState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ScopeMsg::Pull { since, from, reply } => {
                if since == state.version {
                    // One held pull per puller: a newer one replaces it (the older is
                    // let go, its puller gone or asking again), so pulls cannot pile up.
                    state.held.retain(|(puller, _)| *puller != from);
                    state.held.push((from, reply));
                } else {
                    let update = self.update_since(state, since);
                    answer_pull(reply, &update);
                }
            }
            ScopeMsg::Broadcast { key, payload } => self.fan_out(&key, &payload),
            ScopeMsg::Send { pid, payload } => {
                if let Some(sink) = Self::local_sink(state, pid) {
                    match sink.decode_cast(&payload) {
                        Ok(message) => sink.cast_decoded(message.as_ref()),
                        Err(error) => {
                            tracing::warn!(scope = %self.name, %error, "dropped a cast to a member that does not decode")
                        }
                    }
                }
            }
            ScopeMsg::Call {
                pid,
                payload,
                reply,
            } => match Self::local_sink(state, pid) {
                Some(sink) => sink.call(&payload, reply),
                None => remote::no_proc(reply),
            },
            ScopeMsg::Local(local) => self.handle_local(&myself, local, state),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<ScopeMsg>,
        event: ractor::SupervisionEvent,
        state: &mut ScopeState,
    ) -> Result<(), ActorProcessingErr> {
        use ractor::pg::GroupChangeMessage;
        match event {
            ractor::SupervisionEvent::ProcessGroupChanged(change) => match change {
                GroupChangeMessage::Join(scope, group, cells)
                    if scope == SCOPES && group == self.name =>
                {
                    self.discovered(&myself, cells);
                }
                GroupChangeMessage::Leave(scope, group, cells)
                    if scope == SCOPES && group == self.name =>
                {
                    for cell in cells {
                        self.peer_gone(state, cell.get_id());
                    }
                }
                _ => {}
            },
            ractor::SupervisionEvent::ActorTerminated(cell, ..)
            | ractor::SupervisionEvent::ActorFailed(cell, _) => {
                self.holder_gone(&myself, state, cell.get_id());
            }
            _ => {}
        }
        Ok(())
    }
}

/// Answers every held pull with `update`, encoded once.
fn answer_held(held: &mut Vec<(Puller, RpcReplyPort<Vec<u8>>)>, update: &Update) {
    match serde_json::to_vec(update) {
        Ok(bytes) => {
            for (_, reply) in held.drain(..) {
                let _ = reply.send(bytes.clone());
            }
        }
        Err(error) => tracing::error!(%error, "a scope update does not encode"),
    }
}

fn answer_pull(reply: RpcReplyPort<Vec<u8>>, update: &Update) {
    match serde_json::to_vec(update) {
        Ok(bytes) => {
            let _ = reply.send(bytes);
        }
        Err(error) => tracing::error!(%error, "a scope update does not encode"),
    }
}

impl ScopeProcess {
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The local holder numbered `pid`, for a call or cast that names it.
    fn local_sink(state: &ScopeState, pid: u64) -> Option<Arc<dyn Sink>> {
        let holder = state.holders.get(&ActorId::Local(pid));
        holder.map(|(_, sink)| Arc::clone(sink))
    }

    /// Hands a broadcast that came over the wire to the local members of `key`, decoded
    /// once.
    fn fan_out(&self, key: &str, payload: &[u8]) {
        let table = self.read();
        let Some(members) = table.local.get(key).filter(|m| !m.is_empty()) else {
            return;
        };
        match members[0].sink.decode_cast(payload) {
            Ok(message) => {
                for held in members {
                    held.sink.cast_decoded(message.as_ref());
                }
            }
            Err(error) => {
                tracing::warn!(scope = %self.name, group = key, %error, "dropped a broadcast that does not decode");
            }
        }
    }

    fn handle_local(&self, myself: &ActorRef<ScopeMsg>, local: Local, state: &mut ScopeState) {
        match local {
            Local::Add {
                key,
                sink,
                loser,
                reply,
            } => {
                if let Err(refusal) = self.admits(&key, sink.as_ref()) {
                    let _ = reply.send(Err(refusal));
                    return;
                }
                let id = sink.id();
                if !state.holders.contains_key(&id) {
                    myself.monitor(sink.cell());
                    // Already gone: ractor's monitor would never fire for it, so it would
                    // hold the key for good. As in OTP, a dead process joins nothing.
                    if sink.cell().get_status() >= ractor::ActorStatus::Stopping {
                        myself.unmonitor(sink.cell());
                        let _ = reply.send(Ok(()));
                        return;
                    }
                }
                let (holds, _) = state
                    .holders
                    .entry(id)
                    .or_insert_with(|| (0, Arc::clone(&sink)));
                *holds += 1;
                let since_ms = now_ms();
                self.write()
                    .local
                    .entry(key.clone())
                    .or_default()
                    .push(Held {
                        sink,
                        since_ms,
                        loser,
                    });
                let entry = Entry {
                    pid: id.pid(),
                    since_ms,
                };
                self.publish(state, Change::Add(key.clone(), entry));
                self.notify(state, &key, true, vec![id.pid()], None);
                let _ = reply.send(Ok(()));
            }
            Local::Remove { key, id, reply } => {
                let removed = self.remove_local(myself, state, &key, id);
                let _ = reply.send(removed);
            }
            Local::Watch {
                key,
                watcher,
                reply,
            } => {
                let now = {
                    let table = self.read();
                    let keys = match &key {
                        Some(key) => vec![key.clone()],
                        None => table.keys(),
                    };
                    keys.into_iter()
                        .map(|key| {
                            let holders = table.ranked(&key).into_iter().map(|(_, id, _)| id);
                            let holders = holders.collect();
                            (key, holders)
                        })
                        .collect()
                };
                state.watchers.push((key, watcher));
                let _ = reply.send(now);
            }
            Local::Pulled {
                peer,
                round,
                answer,
            } => self.pulled(myself, state, peer, round, answer),
            Local::Named { peer, node } => {
                let admitted = self.options.peers == Peers::All || state.admitted.contains(&node);
                if let Some(view) = self.write().peers.get_mut(&peer) {
                    view.node = node;
                }
                if admitted {
                    self.start_pulling(myself, state, peer, None);
                }
            }
            Local::Admit {
                node,
                admitted,
                reply,
            } => {
                self.admit(myself, state, node, admitted);
                let _ = reply.send(());
            }
            Local::Refresh => {
                let update = self.update_since(state, state.version);
                answer_held(&mut state.held, &update);
            }
        }
    }

    /// Whether `sink` may take `key`: a unique key must be free; a group's local members
    /// share one protocol (a broadcast is decoded once for all of them).
    fn admits(&self, key: &str, sink: &dyn Sink) -> Result<(), Refusal> {
        let table = self.read();
        if self.options.unique {
            if let Some((_, holder, _)) = table.ranked(key).into_iter().next() {
                return Err(Refusal::Taken(holder));
            }
        }
        let protocol = sink.as_any().type_id();
        let local = table.local.get(key).into_iter().flatten();
        if local
            .map(|held| held.sink.as_any().type_id())
            .any(|t| t != protocol)
        {
            return Err(Refusal::OtherProtocol);
        }
        Ok(())
    }

    /// Takes one holding of `key` by `id` away; false if there was none.
    fn remove_local(
        &self,
        myself: &ActorRef<ScopeMsg>,
        state: &mut ScopeState,
        key: &str,
        id: ActorId,
    ) -> bool {
        {
            let mut table = self.write();
            let Some(holders) = table.local.get_mut(key) else {
                return false;
            };
            let Some(at) = holders.iter().position(|held| held.sink.id() == id) else {
                return false;
            };
            holders.remove(at);
            if holders.is_empty() {
                table.local.remove(key);
            }
        }
        if let Some((holds, _)) = state.holders.get_mut(&id) {
            *holds -= 1;
            if *holds == 0 {
                if let Some((_, sink)) = state.holders.remove(&id) {
                    myself.unmonitor(sink.cell());
                }
            }
        }
        self.publish(state, Change::Remove(key.to_owned(), id.pid()));
        self.notify(state, key, false, vec![id.pid()], None);
        true
    }

    /// A local holder exited: every key it held is let go.
    fn holder_gone(&self, myself: &ActorRef<ScopeMsg>, state: &mut ScopeState, id: ActorId) {
        let keys: Vec<String> = self
            .read()
            .local
            .iter()
            .flat_map(|(key, holders)| {
                holders
                    .iter()
                    .filter(|held| held.sink.id() == id)
                    .map(move |_| key.clone())
            })
            .collect();
        for key in keys {
            self.remove_local(myself, state, &key, id);
        }
    }

    /// Records a local change for peers and answers the pulls waiting for one.
    fn publish(&self, state: &mut ScopeState, change: Change) {
        state.version += 1;
        state.log.push_back((state.version, change));
        if state.log.len() > LOG_LENGTH {
            state.log.pop_front();
        }
        if state.held.is_empty() {
            return;
        }
        let since = state.version - 1;
        let update = self.update_since(state, since);
        answer_held(&mut state.held, &update);
    }

    /// What a peer that has seen version `since` needs: the changes after it if the log
    /// still has them all, else a snapshot.
    fn update_since(&self, state: &ScopeState, since: u64) -> Update {
        let covered = state
            .log
            .front()
            .is_some_and(|(first, _)| *first <= since + 1)
            || since == state.version;
        let changes = if covered && since <= state.version {
            Changes::Delta(
                state
                    .log
                    .iter()
                    .filter(|(version, _)| *version > since)
                    .map(|(_, change)| change.clone())
                    .collect(),
            )
        } else {
            let table = self.read();
            Changes::Snapshot(
                table
                    .local
                    .iter()
                    .map(|(key, holders)| {
                        let entries = holders
                            .iter()
                            .map(|held| Entry {
                                pid: held.sink.id().pid(),
                                since_ms: held.since_ms,
                            })
                            .collect();
                        (key.clone(), entries)
                    })
                    .collect(),
            )
        };
        Update {
            version: state.version,
            changes,
        }
    }

    /// Peer scopes appeared (or were there when this one started): each is named by our
    /// session to its node, then pulled.
    fn discovered(&self, myself: &ActorRef<ScopeMsg>, cells: Vec<ActorCell>) {
        for cell in cells {
            let id = cell.get_id();
            if id.is_local() || self.read().peers.contains_key(&id) {
                continue;
            }
            let scope = ActorRef::<ScopeMsg>::from(cell);
            self.write().peers.insert(
                id,
                Peer {
                    scope,
                    node: String::new(),
                    entries: HashMap::new(),
                    version: 0,
                    pulling: None,
                },
            );
            let myself = myself.clone();
            tokio::spawn(async move {
                let Some(node) = super::peer_name(id.node()).await else {
                    return tracing::warn!(peer = %id, "a peer scope of an unknown node; ignored");
                };
                let named = Local::Named { peer: id, node };
                let _ = myself.send_message(ScopeMsg::Local(named));
            });
        }
    }

    /// Starts or stops taking entries from `node`'s scope; entries it stops taking leave.
    fn admit(
        &self,
        myself: &ActorRef<ScopeMsg>,
        state: &mut ScopeState,
        node: String,
        admitted: bool,
    ) {
        let peers: Vec<ActorId> = self
            .read()
            .peers
            .iter()
            .filter(|(_, peer)| peer.node == node && peer.pulling.is_some() != admitted)
            .map(|(id, _)| *id)
            .collect();
        if admitted {
            state.admitted.insert(node.clone());
        } else {
            state.admitted.remove(&node);
        }
        for id in peers {
            if admitted {
                self.start_pulling(myself, state, id, None);
            } else {
                self.stop_pulling(state, id);
            }
        }
    }

    /// Starts a new pull loop for peer `id`, from a snapshot (after `delay`, if any).
    fn start_pulling(
        &self,
        myself: &ActorRef<ScopeMsg>,
        state: &mut ScopeState,
        id: ActorId,
        delay: Option<Duration>,
    ) {
        state.rounds += 1;
        let round = state.rounds;
        let scope = {
            let mut table = self.write();
            let Some(peer) = table.peers.get_mut(&id) else {
                return;
            };
            peer.pulling = Some(round);
            peer.version = 0;
            peer.scope.clone()
        };
        pull(myself, scope, 0, delay, round);
    }

    /// Stops taking entries from peer `id`: its entries leave.
    fn stop_pulling(&self, state: &mut ScopeState, id: ActorId) {
        let (node, left) = {
            let mut table = self.write();
            let Some(peer) = table.peers.get_mut(&id) else {
                return;
            };
            peer.pulling = None;
            peer.version = 0;
            (peer.node.clone(), std::mem::take(&mut peer.entries))
        };
        for (key, entries) in left {
            let pids = entries.iter().map(|entry| entry.pid).collect();
            self.notify(state, &key, false, pids, Some(&node));
        }
    }

    /// A peer scope is gone (its node's link dropped, or it stopped): its members leave.
    fn peer_gone(&self, state: &mut ScopeState, id: ActorId) {
        let Some(peer) = self.write().peers.remove(&id) else {
            return;
        };
        // Its held pulls would keep its dead link's task alive until the next refresh.
        let gone = Puller {
            node: peer.node.clone(),
            pid: id.pid(),
        };
        state.held.retain(|(from, _)| *from != gone);
        for (key, entries) in peer.entries {
            let pids = entries.iter().map(|entry| entry.pid).collect();
            self.notify(state, &key, false, pids, Some(&peer.node));
        }
    }

    fn pulled(
        &self,
        myself: &ActorRef<ScopeMsg>,
        state: &mut ScopeState,
        peer: ActorId,
        round: u64,
        answer: Option<Vec<u8>>,
    ) {
        let Some(scope) = self
            .read()
            .peers
            .get(&peer)
            .filter(|p| p.pulling == Some(round))
            .map(|p| p.scope.clone())
        else {
            return;
        };
        let Some(bytes) = answer else {
            // The link is going or the peer scope stopped, and its proxy's leave follows.
            // If the proxy still runs, the peer dropped the pull (it may speak another
            // version): ask again, without hurry.
            if scope.get_status() < ractor::ActorStatus::Stopping {
                let since = self.read().peers.get(&peer).map_or(0, |p| p.version);
                pull(myself, scope, since, Some(PULL_RETRY), round);
            }
            return;
        };
        let update = match serde_json::from_slice::<Update>(&bytes) {
            Ok(update) => update,
            Err(error) => {
                // Its entries can no longer be trusted to be current: they leave, and a
                // fresh snapshot is asked for, without hurry.
                tracing::warn!(scope = %self.name, %error, "a peer scope's update does not decode; asking it again");
                self.stop_pulling(state, peer);
                self.start_pulling(myself, state, peer, Some(PULL_RETRY));
                return;
            }
        };
        let (joined, left) = self.apply(peer, update);
        let node = self
            .read()
            .peers
            .get(&peer)
            .map(|p| p.node.clone())
            .unwrap_or_default();
        for (key, pids) in left {
            self.notify(state, &key, false, pids, Some(&node));
        }
        let mut touched = Vec::new();
        for (key, pids) in joined {
            self.notify(state, &key, true, pids, Some(&node));
            touched.push(key);
        }
        if self.options.unique {
            for key in touched {
                self.settle(myself, state, &key);
            }
        }
        let since = self.read().peers.get(&peer).map_or(0, |p| p.version);
        pull(myself, scope, since, None, round);
    }

    /// Applies a peer's update to its entries; returns who joined and who left.
    fn apply(&self, peer: ActorId, update: Update) -> (ByKey, ByKey) {
        let mut table = self.write();
        let Some(view) = table.peers.get_mut(&peer) else {
            return (Vec::new(), Vec::new());
        };
        view.version = update.version;
        let mut joined: HashMap<String, Vec<u64>> = HashMap::new();
        let mut left: HashMap<String, Vec<u64>> = HashMap::new();
        match update.changes {
            Changes::Snapshot(entries) => {
                for (key, old) in &view.entries {
                    let new = entries.get(key);
                    for entry in old {
                        if !new.is_some_and(|n| n.contains(entry)) {
                            left.entry(key.clone()).or_default().push(entry.pid);
                        }
                    }
                }
                for (key, new) in &entries {
                    let old = view.entries.get(key);
                    for entry in new {
                        if !old.is_some_and(|o| o.contains(entry)) {
                            joined.entry(key.clone()).or_default().push(entry.pid);
                        }
                    }
                }
                view.entries = entries;
            }
            Changes::Delta(changes) => {
                for change in changes {
                    match change {
                        Change::Add(key, entry) => {
                            joined.entry(key.clone()).or_default().push(entry.pid);
                            view.entries.entry(key).or_default().push(entry);
                        }
                        Change::Remove(key, pid) => {
                            if let Some(entries) = view.entries.get_mut(&key) {
                                if let Some(at) = entries.iter().position(|e| e.pid == pid) {
                                    entries.remove(at);
                                    left.entry(key.clone()).or_default().push(pid);
                                }
                                if entries.is_empty() {
                                    view.entries.remove(&key);
                                }
                            }
                        }
                    }
                }
            }
        }
        (joined.into_iter().collect(), left.into_iter().collect())
    }

    /// A unique key may now be held twice: local holders other than the oldest lose it.
    fn settle(&self, myself: &ActorRef<ScopeMsg>, state: &mut ScopeState, key: &str) {
        let (winner, losers) = {
            let table = self.read();
            let ranked = table.ranked(key);
            let Some((_, winner, _)) = ranked.first() else {
                return;
            };
            let losers: Vec<(ActorId, Option<Loser>, Arc<dyn Sink>)> = ranked
                .iter()
                .skip(1)
                .filter_map(|(_, _, held)| {
                    held.map(|h| (h.sink.id(), h.loser.clone(), h.sink.clone()))
                })
                .collect();
            (winner.clone(), losers)
        };
        for (id, loser, sink) in losers {
            self.remove_local(myself, state, key, id);
            tracing::warn!(name = key, %winner, "global name conflict: the older registration keeps the name");
            match loser {
                Some(Loser::Exit) | None => {
                    sink.stop(ExitReason::ShutdownWith(format!(
                        "global name conflict: {key}"
                    )));
                }
                Some(Loser::Notify(tell)) => tell(Conflict {
                    name: key.to_owned(),
                    winner: winner.clone(),
                }),
            }
        }
    }

    /// Tells the monitors of `key` (and of the whole scope) who joined or left.
    fn notify(
        &self,
        state: &mut ScopeState,
        key: &str,
        joined: bool,
        pids: Vec<u64>,
        node: Option<&str>,
    ) {
        if pids.is_empty() || state.watchers.is_empty() {
            return;
        }
        let node = node.map_or_else(super::kernel::local_name, str::to_owned);
        let event = GroupEvent {
            group: key.to_owned(),
            joined,
            members: pids
                .into_iter()
                .map(|pid| MemberId {
                    node: node.clone(),
                    pid,
                })
                .collect(),
        };
        state.watchers.retain(|(watched, watcher)| {
            if watched.as_deref().is_some_and(|w| w != key) {
                return true;
            }
            watcher(event.clone())
        });
    }
}

/// Asks `peer` for what changed after `since` (after `delay`, if any), in pull loop
/// `round`; its answer comes back as a [`Local::Pulled`].
fn pull(
    myself: &ActorRef<ScopeMsg>,
    peer: ActorRef<ScopeMsg>,
    since: u64,
    delay: Option<Duration>,
    round: u64,
) {
    let myself = myself.clone();
    tokio::spawn(async move {
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let (sender, receiver) = oneshot::channel();
        let id = peer.get_id();
        let sent = peer
            .send_message(ScopeMsg::Pull {
                since,
                from: Puller {
                    node: super::kernel::local_name(),
                    pid: myself.get_id().pid(),
                },
                reply: sender.into(),
            })
            .is_ok();
        let answer = if sent { receiver.await.ok() } else { None };
        let pulled = Local::Pulled {
            peer: id,
            round,
            answer,
        };
        let _ = myself.send_message(ScopeMsg::Local(pulled));
    });
}

/// The supervised face of a scope: a GenServer that owns the scope process (whose messages
/// must cross the wire, which a GenServer's cannot) and hands out [`Handle`]s to it. It
/// stops if the scope process dies, so its supervisor starts both again.
pub(crate) struct ScopeServer(Handle);

/// What callers use a scope through: its process (for changes) and its table (for reads).
#[derive(Clone)]
pub(crate) struct Handle {
    pub(crate) name: Arc<str>,
    pub(crate) process: ActorRef<ScopeMsg>,
    pub(crate) table: Arc<RwLock<Table>>,
}

impl Handle {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes entries from `node` (with [`Peers::Admitted`]), or no more.
    pub(crate) async fn admit(&self, node: &str, admitted: bool) -> Result<(), crate::CallError> {
        let admit = |reply| Local::Admit {
            node: node.to_owned(),
            admitted,
            reply,
        };
        self.ask(admit).await
    }

    /// Puts `sink` under `key` (with what to tell it should it lose a unique key); the
    /// inner error says why the scope refused.
    pub(crate) async fn add(
        &self,
        key: &str,
        sink: Arc<dyn Sink>,
        loser: Option<Loser>,
    ) -> Result<Result<(), Refusal>, crate::CallError> {
        let key = key.to_owned();
        self.ask(|reply| Local::Add {
            key,
            sink,
            loser,
            reply,
        })
        .await
    }

    /// Takes one holding of `key` by `id` away; whether there was one.
    pub(crate) async fn remove(&self, key: &str, id: ActorId) -> Result<bool, crate::CallError> {
        let key = key.to_owned();
        self.ask(|reply| Local::Remove { key, id, reply }).await
    }

    /// Asks the scope process to do `local`, and waits for its answer.
    pub(crate) async fn ask<T>(
        &self,
        local: impl FnOnce(oneshot::Sender<T>) -> Local,
    ) -> Result<T, crate::CallError> {
        let (sender, receiver) = oneshot::channel();
        self.process
            .send_message(ScopeMsg::Local(local(sender)))
            .map_err(|_| crate::CallError::NoProc)?;
        receiver.await.map_err(|_| crate::CallError::NoProc)
    }
}

/// The registered name of the scope server of scope `scope`.
pub(crate) fn server_name(scope: &str) -> String {
    format!("otp.scope.{scope}")
}

/// Starts the scope `name`, unsupervised.
pub(crate) async fn start(name: &str, options: Options) -> Result<Handle, crate::StartError> {
    let server = ScopeServer::with_args((name.to_owned(), options))
        .start_named(server_name(name))
        .await?;
    server
        .call(GetHandle)
        .await
        .map_err(crate::StartError::init)
}

/// A child spec that runs the scope `name` under a supervisor.
pub(crate) fn child_spec(id: String, name: &str, options: Options) -> crate::supervisor::ChildSpec {
    let name = name.to_owned();
    crate::supervisor::ChildSpec::worker(id, move |parent| {
        let server = ScopeServer::with_args((name.clone(), options));
        parent.start_named(server_name(&name), server)
    })
}

/// The scope `name` running on this node, if any.
pub(crate) async fn whereis(name: &str) -> Option<Handle> {
    let server = ServerRef::<ScopeFace>::whereis(&server_name(name))?;
    server.call(GetHandle).await.ok()
}

crate::protocol! {
    /// The scope server's one request: the handle to its scope.
    pub(crate) ScopeFace;
    calls ScopeFaceCall { GetHandle -> Handle }
}

/// The scope's name, and how it runs.
impl Init<(String, Options)> for ScopeServer {
    async fn init(
        (name, options): (String, Options),
        me: &Context<Self>,
    ) -> Result<Self, BoxError> {
        let table = Arc::default();
        let process = ScopeProcess {
            name: name.clone(),
            options,
            table: Arc::clone(&table),
        };
        let (process, _) = Actor::spawn_linked(None, process, (), me.cell()).await?;
        Ok(ScopeServer(Handle {
            name: name.into(),
            process,
            table,
        }))
    }
}

impl GenServer for ScopeServer {
    type Protocol = ScopeFace;

    async fn handle_call(&mut self, call: ScopeFaceCall<'_>, _: &Context<Self>) -> crate::Result {
        let ScopeFaceCall::GetHandle(GetHandle, caller) = call;
        Ok(caller.reply(self.0.clone()))
    }

    async fn handle_info(&mut self, info: Info<Never>, _: &Context<Self>) -> crate::Result {
        match info {
            Info::Exit(exit) if exit.id == self.0.process.get_id() => Ok(Flow::Stop(
                ExitReason::error(format!("scope process exited: {}", exit.reason)),
            )),
            _ => Ok(Flow::Continue),
        }
    }

    async fn terminate(&mut self, _reason: &ExitReason, _: &Context<Self>) {
        self.0.process.stop(None);
    }
}
