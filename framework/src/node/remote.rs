//! GenServers across nodes: an exported server is reached through a small endpoint actor
//! whose messages travel as JSON; callers hold a [`RemoteRef`].
//!
//! Why an endpoint instead of the server itself: ractor_cluster delivers bytes to an actor
//! whose message type can decode them, and a GenServer's message types need not be serde
//! types. The endpoint decodes, then forwards by *name*, so a restarted server is reached
//! without re-exporting. It hands the server a reply slot that encodes the answer back
//! onto the wire: deferred replies work across nodes as they do locally. A remote caller
//! decodes the answer as its own request's answer type: the protocol's enum of answers
//! never travels.
//!
//! Only exported servers are reachable: every other local actor's message type refuses bytes
//! from the network (ractor drops what it cannot decode).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::gen_server::{EncodeReplies, ReplyEncoder, ReplySlot};
use crate::sys::{self, Statistics, Status, SysError};
use crate::{
    CallError, Context, ExitReason, GenServer, Named, Protocol, RequestOf, ServerRef, Timeout,
};

/// A protocol whose calls, casts and answers cross nodes as JSON: what
/// [`Node::export`](super::Node::export) and [`RemoteRef`] need. Every protocol whose
/// requests, casts and answers are serde types is one (`protocol!` with `#[derive(Serialize,
/// Deserialize)]`, and serde answers).
pub trait RemoteProtocol: Protocol {
    #[doc(hidden)]
    fn encode_calls(calls: &Self::Calls) -> serde_json::Result<Vec<u8>>;
    #[doc(hidden)]
    fn decode_calls(bytes: &[u8]) -> serde_json::Result<Self::Calls>;
    #[doc(hidden)]
    fn encode_cast(cast: &Self::Cast) -> serde_json::Result<Vec<u8>>;
    #[doc(hidden)]
    fn decode_cast(bytes: &[u8]) -> serde_json::Result<Self::Cast>;
    /// The answer as it travels (`Answer::Reply` of it).
    #[doc(hidden)]
    fn encode_answer(replies: &Self::Replies) -> Result<Vec<u8>, String>;
}

impl<P> RemoteProtocol for P
where
    P: Protocol,
    P::Calls: Serialize + DeserializeOwned,
    P::Cast: Serialize + DeserializeOwned,
    P::Replies: EncodeReplies<AnswerJson>,
{
    fn encode_calls(calls: &P::Calls) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(calls)
    }
    fn decode_calls(bytes: &[u8]) -> serde_json::Result<P::Calls> {
        serde_json::from_slice(bytes)
    }
    fn encode_cast(cast: &P::Cast) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(cast)
    }
    fn decode_cast(bytes: &[u8]) -> serde_json::Result<P::Cast> {
        serde_json::from_slice(bytes)
    }
    fn encode_answer(replies: &P::Replies) -> Result<Vec<u8>, String> {
        replies.encode_with(&AnswerJson)
    }
}

/// Encodes one answer as a remote call's [`Answer::Reply`], whatever its request.
#[doc(hidden)]
#[derive(Debug)]
pub struct AnswerJson;

impl<T: Serialize> ReplyEncoder<T> for AnswerJson {
    fn encode(&self, reply: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(&Answer::Reply(reply)).map_err(|error| error.to_string())
    }
}

/// The process-group name under which the endpoint of server `name` is found.
pub(crate) fn group_of(name: &str) -> String {
    format!("otp.remote/{name}")
}

/// What travels: JSON payloads; a call carries ractor_cluster's reply port.
pub(crate) enum Wire {
    Call {
        payload: Vec<u8>,
        reply: RpcReplyPort<Vec<u8>>,
    },
    Cast {
        payload: Vec<u8>,
    },
    /// Answered only when the exported server exits (or at once if none runs): a remote
    /// monitor. If the link drops first, the caller's pending call fails, which is the
    /// `noconnection` DOWN. `watcher` names the watching node, so that the port can be let
    /// go when that node goes down (ractor_cluster keeps a task and the dead session alive
    /// for as long as the port is held).
    Monitor {
        reply: RpcReplyPort<Vec<u8>>,
        watcher: String,
    },
    /// Local only, from the node kernel: `node` is down; drop the monitors it held.
    Forget {
        node: String,
    },
    /// A `sys` request ([`SysOp`], as JSON), answered only if the owner allowed it.
    Sys {
        payload: Vec<u8>,
        reply: RpcReplyPort<Vec<u8>>,
    },
}

const CALL: &str = "call";
const CAST: &str = "cast";
const MONITOR: &str = "monitor";
const SYS: &str = "sys";

/// The `sys` requests another node may send an exported server whose owner allowed it.
/// The state itself never travels: only what `format_status` shows of it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum SysOp {
    GetStatus,
    Suspend,
    Resume,
    Statistics(bool),
    GetStatistics,
    Trace(bool),
}

/// A remote `sys` request's answer.
#[derive(Debug, Serialize, Deserialize)]
enum SysReply {
    Status(Status),
    Statistics(Statistics),
    Done,
    /// The owner exported the server without allowing `sys`.
    NotAllowed,
    /// The server did not answer (the local `sys` error, as text).
    Failed(String),
}

impl ractor::Message for Wire {
    fn serializable() -> bool {
        true
    }

    fn serialize(self) -> Result<SerializedMessage, BoxedDowncastErr> {
        Ok(match self {
            Wire::Call { payload, reply } => SerializedMessage::Call {
                variant: CALL.to_owned(),
                args: payload,
                reply,
                metadata: None,
            },
            Wire::Cast { payload } => SerializedMessage::Cast {
                variant: CAST.to_owned(),
                args: payload,
                metadata: None,
            },
            Wire::Monitor { reply, watcher } => SerializedMessage::Call {
                variant: MONITOR.to_owned(),
                args: watcher.into_bytes(),
                reply,
                metadata: None,
            },
            Wire::Sys { payload, reply } => SerializedMessage::Call {
                variant: SYS.to_owned(),
                args: payload,
                reply,
                metadata: None,
            },
            Wire::Forget { .. } => return Err(BoxedDowncastErr),
        })
    }

    fn deserialize(message: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        match message {
            SerializedMessage::Call {
                variant,
                args,
                reply,
                ..
            } if variant == CALL => Ok(Wire::Call {
                payload: args,
                reply,
            }),
            SerializedMessage::Cast { variant, args, .. } if variant == CAST => {
                Ok(Wire::Cast { payload: args })
            }
            SerializedMessage::Call {
                variant,
                reply,
                args,
                ..
            } if variant == MONITOR => Ok(Wire::Monitor {
                reply,
                watcher: String::from_utf8_lossy(&args).into_owned(),
            }),
            SerializedMessage::Call {
                variant,
                args,
                reply,
                ..
            } if variant == SYS => Ok(Wire::Sys {
                payload: args,
                reply,
            }),
            _ => Err(BoxedDowncastErr),
        }
    }
}

/// A remote call's answer on the wire.
#[derive(Serialize, Deserialize)]
enum Answer<R> {
    Reply(R),
    /// The server exited before replying; the encoded [`ExitReason`].
    Exited(String),
    /// Nothing runs under the exported name right now.
    NoProc,
    /// The request did not decode into the server's call type.
    BadRequest(String),
    /// The server dropped the caller's `ReplyTo` without answering.
    NoReply,
}

/// Remote monitors held by this process's endpoints, for [`Node::census`](super::Node::census).
pub(crate) static REMOTE_MONITORS: AtomicUsize = AtomicUsize::new(0);

/// A remote monitor's reply port, and the node that asked; counted while held.
struct Watcher {
    node: String,
    reply: Option<RpcReplyPort<Vec<u8>>>,
}

impl Watcher {
    fn new(node: String, reply: RpcReplyPort<Vec<u8>>) -> Self {
        REMOTE_MONITORS.fetch_add(1, Ordering::Relaxed);
        Self {
            node,
            reply: Some(reply),
        }
    }

    /// Answers the monitor with the server's exit.
    fn answer(mut self, answer: Answer<()>) {
        if let Some(reply) = self.reply.take() {
            send::<()>(reply, answer);
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        REMOTE_MONITORS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An endpoint's state.
struct EndpointState<P: Protocol> {
    /// Remote monitors waiting for a server to exit, by that server's process id.
    watchers: HashMap<ActorId, Vec<Watcher>>,
    /// The server last found under the name; looked up again once it has exited, so a
    /// restarted server is reached without a lookup per message.
    target: Option<ServerRef<P>>,
}

impl<P: Protocol> EndpointState<P> {
    fn target(&mut self, name: &Named<P>) -> Option<ServerRef<P>> {
        if let Some(target) = self.target.as_ref().filter(|t| t.is_alive()) {
            return Some(target.clone());
        }
        self.target = name.resolve().ok();
        self.target.clone()
    }
}

/// The endpoint actor of one exported server.
struct Endpoint<P: Protocol> {
    server: Named<P>,
    /// Its owner allows `sys` from other nodes ([`ExportOptions::sys`](super::ExportOptions)).
    sys: bool,
}

impl<P> Actor for Endpoint<P>
where
    P: RemoteProtocol + Send + Sync,
{
    type Msg = Wire;
    type State = EndpointState<P>;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Wire>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        Ok(EndpointState {
            watchers: HashMap::new(),
            target: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Wire>,
        message: Wire,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            Wire::Monitor { reply, watcher } => {
                let Some(target) = state.target(&self.server) else {
                    send::<()>(reply, Answer::NoProc);
                    return Ok(());
                };
                myself.monitor(target.cell());
                // Gone between lookup and monitor: no exit event will come.
                if !target.is_alive() {
                    send::<()>(reply, Answer::NoProc);
                    return Ok(());
                }
                let watcher = Watcher::new(watcher, reply);
                state.watchers.entry(target.id()).or_default().push(watcher);
            }
            Wire::Forget { node } => {
                state.watchers.retain(|_, watchers| {
                    watchers.retain(|w| w.node != node);
                    !watchers.is_empty()
                });
            }
            Wire::Cast { payload } => match P::decode_cast(&payload) {
                Ok(cast) => {
                    if let Some(target) = state.target(&self.server) {
                        target.cast(cast);
                    }
                }
                Err(error) => tracing::warn!(
                    server = self.server.name(),
                    %error,
                    "dropped a remote cast that does not decode"
                ),
            },
            Wire::Sys { payload, reply } => {
                let Ok(op) = serde_json::from_slice::<SysOp>(&payload) else {
                    send::<SysReply>(reply, Answer::BadRequest("not a sys request".into()));
                    return Ok(());
                };
                if !self.sys {
                    send(reply, Answer::Reply(SysReply::NotAllowed));
                    return Ok(());
                }
                let Some(target) = state.target(&self.server) else {
                    send::<SysReply>(reply, Answer::NoProc);
                    return Ok(());
                };
                // Off the endpoint's own loop: a busy server must not hold up its calls.
                tokio::spawn(async move {
                    send(reply, Answer::Reply(run_sys(&target, op).await));
                });
            }
            Wire::Call { payload, reply } => {
                deliver_call(
                    state.target(&self.server),
                    &payload,
                    reply,
                    self.server.name(),
                );
            }
        }
        Ok(())
    }

    /// A watched server exited: answer its remote monitors with the reason.
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Wire>,
        event: ractor::SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (Some(reason), Some(cell)) = (ExitReason::from_event(&event), event.actor_cell())
        else {
            return Ok(());
        };
        myself.unmonitor(cell.clone());
        for watcher in state.watchers.remove(&cell.get_id()).unwrap_or_default() {
            watcher.answer(Answer::Exited(reason.encode()));
        }
        Ok(())
    }
}

/// Decodes a call that came over the wire and hands it to `target`, whose answer (or exit)
/// travels back on `reply`; `what` names the target in the log.
pub(crate) fn deliver_call<P: RemoteProtocol>(
    target: Option<ServerRef<P>>,
    payload: &[u8],
    reply: RpcReplyPort<Vec<u8>>,
    what: &str,
) {
    let request = match P::decode_calls(payload) {
        Ok(request) => request,
        Err(error) => {
            tracing::warn!(server = what, %error, "refused a remote call that does not decode");
            send::<()>(reply, Answer::BadRequest(error.to_string()));
            return;
        }
    };
    let Some(target) = target else {
        send::<()>(reply, Answer::NoProc);
        return;
    };
    let from = ReplySlot::forward(
        move |answer: Option<Result<P::Replies, ExitReason>>| match answer {
            Some(Ok(replies)) => match P::encode_answer(&replies) {
                Ok(bytes) => reply.send(bytes).is_ok(),
                Err(error) => {
                    tracing::error!(%error, "a remote answer does not encode; the caller is told");
                    send::<()>(
                        reply,
                        Answer::BadRequest(format!("undecodable reply: {error}")),
                    )
                }
            },
            Some(Err(reason)) => send::<()>(reply, Answer::Exited(reason.encode())),
            None => send::<()>(reply, Answer::NoReply),
        },
    );
    if let Err(Some(from)) = target.send_call(request, from) {
        // The server went away between lookup and send: answer for it.
        from.exited(ExitReason::NoProc);
    }
}

/// Answers a call for a server that is not here.
pub(crate) fn no_proc(reply: RpcReplyPort<Vec<u8>>) {
    send::<()>(reply, Answer::NoProc);
}

/// Sends what `send` makes around a fresh reply port (false: the link to `node` is gone)
/// and waits for the answer's bytes, at most `timeout`.
pub(crate) async fn round_trip(
    send: impl FnOnce(RpcReplyPort<Vec<u8>>) -> bool,
    timeout: Timeout,
    node: &str,
) -> Result<Vec<u8>, CallError> {
    let (sender, receiver) = oneshot::channel();
    if !send(sender.into()) {
        return Err(CallError::NodeDown(node.to_owned()));
    }
    match timeout {
        Timeout::Infinity => receiver.await,
        Timeout::After(after) => tokio::time::timeout(after, receiver)
            .await
            .map_err(|_| CallError::Timeout(after))?,
    }
    .map_err(|_| CallError::NodeDown(node.to_owned()))
}

/// Runs a remote `sys` request on the local server.
async fn run_sys<P: Protocol>(target: &ServerRef<P>, op: SysOp) -> SysReply {
    let outcome = match op {
        SysOp::GetStatus => sys::get_status(target).await.map(SysReply::Status),
        SysOp::Suspend => sys::suspend(target).await.map(|()| SysReply::Done),
        SysOp::Resume => sys::resume(target).await.map(|()| SysReply::Done),
        SysOp::Statistics(on) => sys::statistics(target, on).await.map(|()| SysReply::Done),
        SysOp::GetStatistics => sys::get_statistics(target).await.map(SysReply::Statistics),
        SysOp::Trace(on) => sys::trace(target, on).await.map(|()| SysReply::Done),
    };
    outcome.unwrap_or_else(|error| SysReply::Failed(error.to_string()))
}

/// Watches the server behind `endpoint` until it exits; the returned future yields the exit
/// reason, or `noconnection` if the link to its node drops first. The request is sent now,
/// before the future is polled, so it travels in order with the caller's later messages.
pub(crate) fn watch(
    endpoint: ActorRef<Wire>,
) -> impl std::future::Future<Output = ExitReason> + Send {
    let (sender, receiver) = oneshot::channel();
    let sent = endpoint
        .send_message(Wire::Monitor {
            reply: sender.into(),
            watcher: super::kernel::local_name(),
        })
        .is_ok();
    async move {
        if !sent {
            return ExitReason::NoConnection;
        }
        match receiver.await {
            Ok(bytes) => match serde_json::from_slice::<Answer<()>>(&bytes) {
                Ok(Answer::Exited(reason)) => ExitReason::decode(Some(&reason)),
                Ok(Answer::NoProc) => ExitReason::NoProc,
                Ok(_) | Err(_) => ExitReason::error("undecodable monitor answer"),
            },
            Err(_) => ExitReason::NoConnection,
        }
    }
}

/// A request as it travels.
pub(crate) fn encode_request<P: RemoteProtocol, R: RequestOf<P>>(
    request: R,
) -> Result<Vec<u8>, CallError> {
    P::encode_calls(&request.into_calls()).map_err(|error| CallError::BadRequest(error.to_string()))
}

/// Decodes an endpoint's answer.
pub(crate) fn answer<R: DeserializeOwned>(bytes: &[u8]) -> Result<R, CallError> {
    match serde_json::from_slice::<Answer<R>>(bytes) {
        Ok(Answer::Reply(reply)) => Ok(reply),
        Ok(Answer::Exited(reason)) => Err(CallError::Exited(ExitReason::decode(Some(&reason)))),
        Ok(Answer::NoProc) => Err(CallError::NoProc),
        Ok(Answer::NoReply) => Err(CallError::NoReply),
        Ok(Answer::BadRequest(why)) => Err(CallError::BadRequest(why)),
        Err(error) => Err(CallError::BadRequest(format!("undecodable reply: {error}"))),
    }
}

/// A remote `sys` answer of the wrong kind: the peer speaks another version.
fn unexpected(reply: SysReply) -> SysError {
    SysError::Remote(format!("unexpected sys answer: {reply:?}"))
}

fn send<R: Serialize>(port: RpcReplyPort<Vec<u8>>, answer: Answer<R>) -> bool {
    match serde_json::to_vec(&answer) {
        Ok(bytes) => port.send(bytes).is_ok(),
        Err(error) => {
            tracing::error!(%error, "a remote reply does not encode; the caller will time out");
            false
        }
    }
}

/// Starts the endpoint for the local server registered as `name`, linked to `parent`, and
/// announces it in the process group peers look it up in.
pub(crate) async fn export<P: RemoteProtocol + Send + Sync>(
    name: &str,
    sys: bool,
    parent: ActorCell,
) -> Result<ActorCell, ActorProcessingErr> {
    let endpoint = Endpoint::<P> {
        server: Named::new(name),
        sys,
    };
    let (actor, _) = Actor::spawn_linked(None, endpoint, (), parent).await?;
    ractor::pg::join(group_of(name), vec![actor.get_cell()]);
    Ok(actor.get_cell())
}

/// A server of protocol `P` on another node, by node and registered name (`{Name,
/// Node}`). Looked up on each use, like [`Named`].
pub struct RemoteRef<P> {
    node_id: u64,
    node: String,
    /// The process group of the server's endpoint, computed once.
    group: String,
    /// The endpoint last found, shared by clones; looked up again once its proxy is gone
    /// (node down, or the server re-exported).
    endpoint: Arc<Mutex<Option<ActorRef<Wire>>>>,
    protocol: PhantomData<fn() -> P>,
}

impl<P> Clone for RemoteRef<P> {
    fn clone(&self) -> Self {
        Self {
            node_id: self.node_id,
            node: self.node.clone(),
            group: self.group.clone(),
            endpoint: self.endpoint.clone(),
            protocol: PhantomData,
        }
    }
}

impl<P> std::fmt::Debug for RemoteRef<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteRef({} on {})", self.group, self.node)
    }
}

impl<P: RemoteProtocol> RemoteRef<P> {
    pub(crate) fn new(node_id: u64, node: String, name: String) -> Self {
        Self {
            node_id,
            node,
            group: group_of(&name),
            endpoint: Arc::default(),
            protocol: PhantomData,
        }
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The endpoint on the target node, if that node exported `name`. Only members that
    /// live on the target node count: another peer joining the group cannot stand in.
    pub(crate) fn endpoint(&self) -> Option<ActorRef<Wire>> {
        let mut cached = self.endpoint.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(endpoint) = cached.as_ref() {
            if endpoint.get_status() < ractor::ActorStatus::Stopping {
                return Some(endpoint.clone());
            }
        }
        *cached = ractor::pg::get_members(&self.group)
            .into_iter()
            .find(|cell| match cell.get_id() {
                ractor::ActorId::Remote { node_id, .. } => node_id == self.node_id,
                ractor::ActorId::Local(_) => false,
            })
            .map(ActorRef::from);
        cached.clone()
    }

    /// Calls with the default 5 s timeout; the answer's type is the request's.
    pub async fn call<R>(&self, request: R) -> Result<R::Reply, CallError>
    where
        R: RequestOf<P>,
        R::Reply: DeserializeOwned,
    {
        self.call_timeout(request, crate::gen_server::DEFAULT_CALL_TIMEOUT)
            .await
    }

    /// Calls, waiting at most `timeout`. A node that goes down fails the call at once with
    /// [`CallError::NodeDown`].
    pub async fn call_timeout<R>(
        &self,
        request: R,
        timeout: impl Into<Timeout>,
    ) -> Result<R::Reply, CallError>
    where
        R: RequestOf<P>,
        R::Reply: DeserializeOwned,
    {
        let payload = encode_request::<P, R>(request)?;
        let call = |reply| Wire::Call { payload, reply };
        let bytes = self.round_trip(call, timeout.into()).await?;
        answer(&bytes)
    }

    /// Sends what `wire` makes around a reply port to the endpoint, and waits for the
    /// answer's bytes.
    async fn round_trip(
        &self,
        wire: impl FnOnce(RpcReplyPort<Vec<u8>>) -> Wire,
        timeout: Timeout,
    ) -> Result<Vec<u8>, CallError> {
        let endpoint = self.endpoint().ok_or(CallError::NoProc)?;
        let send = |reply| endpoint.send_message(wire(reply)).is_ok();
        round_trip(send, timeout, &self.node).await
    }

    /// `sys:get_status/1` from another node, if the owner allowed `sys` when exporting
    /// ([`ExportOptions::sys`](super::ExportOptions)); else [`SysError::NotAllowed`].
    pub async fn sys_get_status(&self) -> Result<Status, SysError> {
        match self.sys(SysOp::GetStatus).await? {
            SysReply::Status(status) => Ok(status),
            other => Err(unexpected(other)),
        }
    }

    /// `sys:suspend/1` from another node (see [`sys_get_status`](Self::sys_get_status)).
    pub async fn sys_suspend(&self) -> Result<(), SysError> {
        self.sys_done(SysOp::Suspend).await
    }

    /// `sys:resume/1` from another node.
    pub async fn sys_resume(&self) -> Result<(), SysError> {
        self.sys_done(SysOp::Resume).await
    }

    /// `sys:statistics/2` (counting on or off) from another node.
    pub async fn sys_statistics(&self, on: bool) -> Result<(), SysError> {
        self.sys_done(SysOp::Statistics(on)).await
    }

    /// `sys:statistics(Name, get)` from another node.
    pub async fn sys_get_statistics(&self) -> Result<Statistics, SysError> {
        match self.sys(SysOp::GetStatistics).await? {
            SysReply::Statistics(statistics) => Ok(statistics),
            other => Err(unexpected(other)),
        }
    }

    /// `sys:trace/2` from another node: events are logged on the server's node.
    pub async fn sys_trace(&self, on: bool) -> Result<(), SysError> {
        self.sys_done(SysOp::Trace(on)).await
    }

    async fn sys_done(&self, op: SysOp) -> Result<(), SysError> {
        match self.sys(op).await? {
            SysReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn sys(&self, op: SysOp) -> Result<SysReply, SysError> {
        let payload = serde_json::to_vec(&op).map_err(|e| CallError::BadRequest(e.to_string()))?;
        let request = |reply| Wire::Sys { payload, reply };
        let bytes = self.round_trip(request, sys::SYS_TIMEOUT.into()).await?;
        match answer::<SysReply>(&bytes)? {
            SysReply::NotAllowed => Err(SysError::NotAllowed),
            SysReply::Failed(why) => Err(SysError::Remote(why)),
            reply => Ok(reply),
        }
    }

    /// Casts one message to many servers (of one protocol, on any nodes), encoding it
    /// once: a fan-out's cost is then the sends, not one encoding per target. Dropped for
    /// targets that are not there, as any cast.
    pub fn cast_all<'a>(targets: impl IntoIterator<Item = &'a RemoteRef<P>>, message: &P::Cast)
    where
        P: 'a,
    {
        let payload = match P::encode_cast(message) {
            Ok(payload) => payload,
            Err(error) => return tracing::warn!(%error, "a cast does not encode; dropped"),
        };
        for target in targets {
            if let Some(endpoint) = target.endpoint() {
                let _ = endpoint.send_message(Wire::Cast {
                    payload: payload.clone(),
                });
            }
        }
    }

    /// Casts; dropped if the node or the server is not there (as any cast).
    pub fn cast(&self, message: impl Into<P::Cast>) {
        Self::cast_all([self], &message.into());
    }

    /// Monitors this server from the server `me` (`erlang:monitor(process, {Name,
    /// Node})`): `me` gets one [`Info::Down`](crate::Info::Down) when it exits (with its
    /// reason), or with [`ExitReason::NoConnection`] if the link to its node drops first.
    /// Returns the id the DOWN will carry; fails with [`CallError::NoProc`] if the node
    /// exports no such server.
    pub fn monitor<G: GenServer>(&self, me: &Context<G>) -> Result<ActorId, CallError> {
        let endpoint = self.endpoint().ok_or(CallError::NoProc)?;
        let id = endpoint.get_id();
        me.monitor_with(id, watch(endpoint));
        Ok(id)
    }
}
