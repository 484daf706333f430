//! The message server: who is connected, from which node, in which room (the robust
//! messenger's `server`). Exported as [`MESSAGE_SERVER`], so client nodes reach it.
//!
//! Identity: a join names a nick and a node; the server sends the session token to that
//! node's message handler, and the user exists once the handler sends it back. Every later
//! request carries the token, whose MAC the server checks: a client cannot act as another
//! nick, whatever it sends.
//!
//! Restarts: tokens are checked with a key that outlives this server, and clients rejoin
//! with their token when it goes down, so a crash costs users nothing. Rooms keep their
//! members meanwhile; a restarted room asks for them again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use otp::node::{Node, NodeEvent, RemoteRef};
use otp::supervisor::{ChildSpec, DynamicSupervisorRef};
use otp::{BoxError, CallResponse, Context, ExitReason, Flow, GenServer, Info, ReplyTo, ServerRef};

use super::keys::SessionKeys;
use super::room::{registered_name, Member, RoomCast, RoomServer};
use crate::client::MessageHandler;
use crate::names::{Nick, Room};
use crate::protocol::{Request, ServerCall, ServerCast, ServerReply, ToClient, Token};
use crate::protocol::{MESSAGE_HANDLER, MESSAGE_SERVER};
use crate::throttle::Throttle;

/// The registered name of the rooms' dynamic supervisor (see the server's spec file).
pub const ROOMS: &str = "rooms";

/// How long the shutdown notice waits for each client.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a join may wait for its node to confirm the token.
const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The behaviour.
#[derive(Clone)]
pub struct MessageServer;

/// What the program gives the message server (the same on every restart).
#[derive(Clone)]
pub struct MessageServerArgs {
    /// Mints and checks session tokens; outlives restarts of this server.
    pub keys: SessionKeys,
    /// Per-user flood limit: sustained messages per second.
    pub rate: f64,
    /// Per-user flood limit: burst.
    pub burst: f64,
}

/// Local messages (never from the network).
pub enum ServerInfo {
    /// A room (re)started and needs its members.
    RoomStarted(Room),
    /// A join's challenge expired unanswered: forget the claim.
    ChallengeExpired(Claim, Instant),
    /// Test fault hook: crash now.
    Fault,
}

/// A nick as claimed from a node.
pub type Claim = (Nick, String);

/// Joins in progress at once, at most (each expires after [`CHALLENGE_TIMEOUT`]).
const MAX_PENDING: usize = 1024;

/// A joined user.
struct User {
    node: String,
    handler: RemoteRef<MessageHandler>,
    room: Option<Room>,
    throttle: Throttle,
    /// Told about the throttle since their last accepted message: say it once per flood.
    warned: bool,
}

/// A join waiting for its node to confirm the token.
struct Pending {
    room: Option<Room>,
    handler: RemoteRef<MessageHandler>,
    since: Instant,
}

/// The server's state.
pub struct State {
    args: MessageServerArgs,
    node: Node,
    rooms: DynamicSupervisorRef,
    users: HashMap<Nick, User>,
    /// Joins waiting for their token to come back, by nick *and* node: a pending join
    /// holds no nick, so a client that cannot confirm (one claiming another's node)
    /// cannot keep anyone out. The first confirmed join of a nick wins.
    pending: HashMap<Claim, Pending>,
}

impl GenServer for MessageServer {
    type Args = MessageServerArgs;
    type State = State;
    type Call = ServerCall;
    type Reply = ServerReply;
    type Cast = ServerCast;
    type Info = ServerInfo;

    async fn init(&self, me: &Context<Self>, args: MessageServerArgs) -> Result<State, BoxError> {
        let node = Node::local().await?;
        node.export::<MessageServer>(MESSAGE_SERVER).await?;
        node.monitor_nodes(me.server()).await?;
        let rooms = DynamicSupervisorRef::whereis(ROOMS)
            .ok_or("the rooms supervisor is not running (see the server's spec file)")?;
        let state = State {
            args,
            node,
            rooms,
            users: HashMap::new(),
            pending: HashMap::new(),
        };
        state.room(&Room::lobby()).await?;
        Ok(state)
    }

    async fn handle_call(
        &self,
        me: &Context<Self>,
        request: ServerCall,
        _from: &mut ReplyTo<ServerReply>,
        state: &mut State,
    ) -> Result<CallResponse<ServerReply>, BoxError> {
        let reply = match request {
            ServerCall::Join {
                nick,
                node,
                room,
                resume,
            } => state.join(me, nick, node, room, resume).await,
            ServerCall::Quit { token } => {
                if let Some(nick) = state.verified(&token) {
                    state.remove(&nick, true).await;
                }
                ServerReply::Bye
            }
        };
        Ok(CallResponse::Reply(reply))
    }

    async fn handle_cast(
        &self,
        _me: &Context<Self>,
        message: ServerCast,
        state: &mut State,
    ) -> Result<Flow, BoxError> {
        match message {
            ServerCast::Confirm { token } => state.confirm(token).await,
            ServerCast::Request {
                token,
                room,
                request,
            } => state.request(token, room, request).await,
        }
        Ok(Flow::Continue)
    }

    async fn handle_info(
        &self,
        _me: &Context<Self>,
        info: Info<ServerInfo>,
        state: &mut State,
    ) -> Result<Flow, BoxError> {
        match info {
            Info::Message(ServerInfo::RoomStarted(room)) => {
                let members = state.members_of(&room);
                if let Some(server) = ServerRef::<RoomServer>::whereis(&registered_name(&room)) {
                    server.cast(RoomCast::Reset(members));
                }
            }
            Info::Message(ServerInfo::ChallengeExpired(claim, since))
                if state.pending.get(&claim).is_some_and(|p| p.since == since) =>
            {
                tracing::info!(
                    nick = claim.0.as_str(),
                    node = claim.1,
                    "join not confirmed in time"
                );
                state.pending.remove(&claim);
            }
            Info::Message(ServerInfo::Fault) => {
                return Err("fault injected (message server)".into())
            }
            Info::Node(NodeEvent::Down(node)) => state.node_down(&node).await,
            _ => {}
        }
        Ok(Flow::Continue)
    }

    async fn terminate(&self, _me: &Context<Self>, reason: &ExitReason, state: &mut State) {
        // Told by call, concurrently, so the notice is through before the node closes
        // the connections; a client that does not answer within a second is not waited for.
        if reason.is_orderly() {
            let mut notices = tokio::task::JoinSet::new();
            for user in state.users.values() {
                let handler = user.handler.clone();
                notices.spawn(async move {
                    let notice = handler.call_timeout(ToClient::ServerStopping, NOTICE_TIMEOUT);
                    let _ = notice.await;
                });
            }
            while notices.join_next().await.is_some() {}
        }
    }
}

impl State {
    async fn join(
        &mut self,
        me: &Context<MessageServer>,
        nick: Nick,
        node: String,
        room: Option<Room>,
        resume: Option<Token>,
    ) -> ServerReply {
        let Ok(handler) = self.handler_on(&node).await else {
            return ServerReply::NotConnectedYet;
        };
        let taken_elsewhere = self.users.get(&nick).is_some_and(|u| u.node != node);
        let resuming =
            resume.is_some_and(|t| t.nick == nick && t.node == node && self.args.keys.verify(&t));
        if taken_elsewhere || (!resuming && self.users.contains_key(&nick)) {
            return ServerReply::Refused(nick_in_use(&nick));
        }
        if !resuming && self.pending.len() >= MAX_PENDING {
            return ServerReply::Refused(
                "server_busy: too many joins in progress; try again in a few seconds".into(),
            );
        }
        if resuming {
            tracing::info!(nick = nick.as_str(), %node, "session resumed");
            self.activate(nick, node, handler, room).await;
        } else {
            let since = Instant::now();
            handler.cast(ToClient::Challenge {
                token: self.args.keys.issue(&nick, &node),
            });
            let claim = (nick, node);
            me.send_after(
                CHALLENGE_TIMEOUT,
                ServerInfo::ChallengeExpired(claim.clone(), since),
            );
            let pending = Pending {
                room,
                handler,
                since,
            };
            self.pending.insert(claim, pending);
        }
        ServerReply::Accepted
    }

    async fn confirm(&mut self, token: Token) {
        if !self.args.keys.verify(&token) {
            return tracing::warn!(?token, "confirmation with a forged token; ignored");
        }
        let Some(pending) = self
            .pending
            .remove(&(token.nick.clone(), token.node.clone()))
        else {
            return;
        };
        if self.users.contains_key(&token.nick) {
            // Another node confirmed this nick first.
            return pending
                .handler
                .cast(ToClient::JoinRefused(nick_in_use(&token.nick)));
        }
        tracing::info!(nick = token.nick.as_str(), node = %token.node, "joined");
        self.activate(token.nick, token.node, pending.handler, pending.room)
            .await;
    }

    /// Makes `nick` a user (or updates one resuming) and puts them in `room`.
    async fn activate(
        &mut self,
        nick: Nick,
        node: String,
        handler: RemoteRef<MessageHandler>,
        room: Option<Room>,
    ) {
        let previous = self.users.remove(&nick);
        let left = previous.as_ref().and_then(|u| u.room.clone());
        if left.is_some() && left != room {
            self.leave_room(&nick, left, true).await;
        }
        let (rate, burst) = (self.args.rate, self.args.burst);
        let throttle = previous
            .map(|u| u.throttle)
            .unwrap_or_else(|| Throttle::new(rate, burst, Instant::now()));
        self.users.insert(
            nick.clone(),
            User {
                node,
                handler: handler.clone(),
                room: room.clone(),
                throttle,
                warned: false,
            },
        );
        match room {
            Some(room) => self.enter(&nick, &room, handler, true).await,
            None => handler.cast(ToClient::Left),
        }
    }

    /// The nick a token speaks for, if the token is genuine and its session is known
    /// (from the node it names).
    fn verified(&self, token: &Token) -> Option<Nick> {
        let user = self.users.get(&token.nick)?;
        (user.node == token.node && self.args.keys.verify(token)).then(|| token.nick.clone())
    }

    async fn request(&mut self, token: Token, room: Option<Room>, request: Request) {
        let nick = match self.verified(&token) {
            Some(nick) => nick,
            None if self.args.keys.verify(&token) && !self.taken_by_other(&token) => {
                // A session this server lost in a restart: restore it in place.
                self.restore(&token, room).await;
                token.nick.clone()
            }
            None => return tracing::warn!(?token, "request with an unknown or forged token"),
        };
        // Every request counts against the flood limit, not only lines said: a `/pm` or
        // `/join` storm costs the server as much.
        if !self.admit(&nick) {
            return;
        }
        match request {
            Request::Say { text } => self.say(&nick, text).await,
            Request::Pm { to, text } => self.pm(&nick, &to, text),
            Request::Join(room) => {
                self.switch(&nick, Some(room.unwrap_or_else(Room::lobby)))
                    .await
            }
            Request::Leave => self.switch(&nick, None).await,
            Request::Users => self.users_of(&nick).await,
            Request::Rooms => self.list_rooms(&nick),
        }
    }

    /// Takes one request from `nick`'s flood allowance; past it the request is dropped and
    /// the user told, once per flood.
    fn admit(&mut self, nick: &Nick) -> bool {
        let Some(user) = self.users.get_mut(nick) else {
            return false;
        };
        match user.throttle.take(Instant::now()) {
            Ok(()) => {
                user.warned = false;
                true
            }
            Err(wait) => {
                if !std::mem::replace(&mut user.warned, true) {
                    user.handler.cast(ToClient::Refused(format!(
                        "slow down: you are sending too fast; requests are dropped for {:.1} s",
                        wait.as_secs_f64()
                    )));
                }
                false
            }
        }
    }

    fn taken_by_other(&self, token: &Token) -> bool {
        self.users
            .get(&token.nick)
            .is_some_and(|u| u.node != token.node)
    }

    async fn restore(&mut self, token: &Token, room: Option<Room>) {
        let Ok(handler) = self.handler_on(&token.node).await else {
            return;
        };
        tracing::info!(
            nick = token.nick.as_str(),
            "session restored from its token"
        );
        let throttle = Throttle::new(self.args.rate, self.args.burst, Instant::now());
        self.users.insert(
            token.nick.clone(),
            User {
                node: token.node.clone(),
                handler: handler.clone(),
                room: room.clone(),
                throttle,
                warned: false,
            },
        );
        if let Some(room) = room {
            self.enter(&token.nick, &room, handler, false).await;
        }
    }

    async fn say(&mut self, nick: &Nick, text: String) {
        let Some(user) = self.users.get_mut(nick) else {
            return;
        };
        let Some(room) = user.room.clone() else {
            return user.handler.cast(ToClient::Refused(
                "not_in_chatroom: you are not in the chatroom; /join to rejoin".into(),
            ));
        };
        if let Some(refusal) = too_long(&text) {
            return user.handler.cast(refusal);
        }
        let text = crate::sanitize::clean(&text);
        if text.trim().is_empty() {
            return;
        }
        if let Some(server) = ServerRef::<RoomServer>::whereis(&registered_name(&room)) {
            server.cast(RoomCast::Say {
                from: nick.clone(),
                text,
            });
        }
    }

    fn pm(&self, nick: &Nick, to: &Nick, text: String) {
        let Some(sender) = self.users.get(nick) else {
            return;
        };
        if let Some(refusal) = too_long(&text) {
            return sender.handler.cast(refusal);
        }
        match self.users.get(to) {
            Some(receiver) => receiver.handler.cast(ToClient::Private {
                from: nick.clone(),
                text: crate::sanitize::clean(&text),
            }),
            None => sender.handler.cast(ToClient::Refused(format!(
                "receiver_not_found: nobody is called {}",
                to.as_str()
            ))),
        }
    }

    /// Moves `nick` to `room` (`None`: out of any room).
    async fn switch(&mut self, nick: &Nick, room: Option<Room>) {
        let Some(user) = self.users.get_mut(nick) else {
            return;
        };
        let handler = user.handler.clone();
        let old = std::mem::replace(&mut user.room, room.clone());
        if old.is_some() && old == room {
            // Already there: just show the room again.
            return self
                .enter(nick, &room.unwrap_or_else(Room::lobby), handler, true)
                .await;
        }
        self.leave_room(nick, old, true).await;
        match room {
            Some(room) => self.enter(nick, &room, handler, true).await,
            None => handler.cast(ToClient::Left),
        }
    }

    async fn users_of(&self, nick: &Nick) {
        let Some(user) = self.users.get(nick) else {
            return;
        };
        let answer = match &user.room {
            None => ToClient::Refused("not_in_chatroom: you are not in a room; /join one".into()),
            Some(room) => {
                let members = self.members_of(room);
                let nicks = members.iter().map(|(nick, _)| nick.as_str()).collect();
                ToClient::Notice(format!("**Users in room: {}**", sorted(nicks)))
            }
        };
        user.handler.cast(answer);
    }

    fn list_rooms(&self, nick: &Nick) {
        let Some(user) = self.users.get(nick) else {
            return;
        };
        let mut counts: HashMap<&str, usize> = HashMap::from([(crate::names::DEFAULT_ROOM, 0)]);
        for room in self.users.values().filter_map(|u| u.room.as_ref()) {
            *counts.entry(room.as_str()).or_default() += 1;
        }
        let rooms: Vec<String> = counts.iter().map(|(r, n)| format!("{r} ({n})")).collect();
        user.handler
            .cast(ToClient::Notice(format!("**Rooms: {}**", sorted(rooms))));
    }

    async fn node_down(&mut self, node: &str) {
        self.pending.retain(|(_, from), _| from != node);
        let gone: Vec<Nick> = self
            .users
            .iter()
            .filter(|(_, u)| u.node == node)
            .map(|(n, _)| n.clone())
            .collect();
        for nick in gone {
            tracing::info!(nick = nick.as_str(), node, "user's node went down");
            self.remove(&nick, true).await;
        }
    }

    async fn remove(&mut self, nick: &Nick, announce: bool) {
        if let Some(user) = self.users.remove(nick) {
            self.leave_room(nick, user.room, announce).await;
        }
    }

    async fn enter(
        &mut self,
        nick: &Nick,
        room: &Room,
        handler: RemoteRef<MessageHandler>,
        greet: bool,
    ) {
        match self.room(room).await {
            Ok(server) => server.cast(RoomCast::Enter {
                nick: nick.clone(),
                handler,
                greet,
            }),
            Err(why) => {
                handler.cast(ToClient::Refused(format!(
                    "cannot open room {}: {why}",
                    room.as_str()
                )));
                if let Some(user) = self.users.get_mut(nick) {
                    user.room = None;
                }
            }
        }
    }

    async fn leave_room(&mut self, nick: &Nick, room: Option<Room>, announce: bool) {
        let Some(room) = room else { return };
        let Some(server) = ServerRef::<RoomServer>::whereis(&registered_name(&room)) else {
            return;
        };
        server.cast(RoomCast::Exit {
            nick: nick.clone(),
            announce,
        });
        // An empty room other than the default one closes.
        if room != Room::lobby() && self.members_of(&room).is_empty() {
            if let Err(error) = self.rooms.terminate_child(server.id()).await {
                tracing::warn!(room = room.as_str(), %error, "could not close an empty room");
            }
        }
    }

    /// The room's GenServer, started if it does not exist yet.
    async fn room(&self, room: &Room) -> Result<ServerRef<RoomServer>, String> {
        let name = registered_name(room);
        if let Some(server) = ServerRef::whereis(&name) {
            return Ok(server);
        }
        let spec = {
            let (room, name) = (room.clone(), name.clone());
            ChildSpec::worker(name.clone(), move |parent| {
                parent.start_named(name.clone(), RoomServer, room.clone())
            })
        };
        let cell = self
            .rooms
            .start_child(spec)
            .await
            .map_err(|e| e.to_string())?;
        ServerRef::from_cell(cell).ok_or_else(|| "the room did not start".to_owned())
    }

    fn members_of(&self, room: &Room) -> Vec<Member> {
        self.users
            .iter()
            .filter(|(_, u)| u.room.as_ref() == Some(room))
            .map(|(n, u)| (n.clone(), u.handler.clone()))
            .collect()
    }

    async fn handler_on(
        &self,
        node: &str,
    ) -> Result<RemoteRef<MessageHandler>, otp::node::ConnectError> {
        self.node
            .remote::<MessageHandler>(node, MESSAGE_HANDLER)
            .await
    }
}

fn nick_in_use(nick: &Nick) -> String {
    format!(
        "nick_in_use: {} is taken; pick another nickname",
        nick.as_str()
    )
}

/// The refusal for a message over the size limit (the client checks too; a hand-made
/// client may not).
fn too_long(text: &str) -> Option<ToClient> {
    (text.len() > crate::MAX_MESSAGE_BYTES).then(|| {
        ToClient::Refused(format!(
            "message too long ({} bytes): the limit is {} bytes",
            text.len(),
            crate::MAX_MESSAGE_BYTES
        ))
    })
}

fn sorted<S: AsRef<str> + Ord>(mut items: Vec<S>) -> String {
    items.sort();
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}
