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
use otp::supervisor::{ChildSpec, DynamicSupervisorRef, SupervisorError};
use otp::{BoxError, CallResponse, Context, ExitReason, Flow, GenServer, Info, ReplyTo, ServerRef};

use super::keys::SessionKeys;
use super::room::{registered_name, Entrant, RoomArgs, RoomCast, RoomEvent, RoomServer};
use crate::names::{Nick, Room};
use crate::protocol::{ChatClient, ChatServer, MESSAGE_HANDLER, MESSAGE_SERVER};
use crate::protocol::{Request, Seq, ServerCall, ServerCast, ServerReply, ToClient, Token};
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
    /// Bytes a room member may fall behind before it is disconnected (see
    /// [`room`](super::room)).
    pub max_backlog: u64,
}

/// Local messages (never from the network).
pub enum ServerInfo {
    /// What a room reported.
    Room(RoomEvent),
    /// A join's challenge expired unanswered: forget the claim.
    ChallengeExpired(Claim, Instant),
    /// A client node came or went.
    Node(NodeEvent),
    /// Test fault hook: crash now.
    #[cfg(feature = "fault-hook")]
    Fault,
}

/// A nick as claimed from a node.
pub type Claim = (Nick, String);

/// Joins in progress at once, at most (each expires after [`CHALLENGE_TIMEOUT`]).
const MAX_PENDING: usize = 1024;

/// How long the reason a user was disconnected is kept for their return, and how many
/// such reasons at most.
const REMEMBER_REMOVALS: Duration = Duration::from_secs(600);
const MAX_REMOVALS: usize = 10_000;

/// A joined user.
struct User {
    node: String,
    /// The client process's session id (names its lines for receivers).
    session: u64,
    handler: RemoteRef<ChatClient>,
    room: Option<Room>,
    throttle: Throttle,
    /// The request number expected next (`None`: not known yet, as for a session just
    /// joined or restored: its first request must be its oldest unanswered one).
    next: Option<Seq>,
    /// A resend has been asked for since the last request handled: ask once per gap.
    asked: bool,
    /// The first request after the one that moved the user into their room (`None`: they
    /// entered it on joining). When the room restarts, resends are taken from here on:
    /// older requests belonged to the room before, and must not be placed in this one.
    entered: Option<Seq>,
    /// The room the user left last, while lines they said there may still be unanswered.
    departed: Option<Departed>,
}

/// A room a user left, and which of their requests went to it. If it restarts, lines it
/// had not placed went with it: those are taken again and placed there, not in the room
/// the user is in now (a line placed twice is shown once: receivers drop repeats).
struct Departed {
    room: Room,
    /// Requests `from..upto` were for that room.
    from: Seq,
    upto: Seq,
    /// The room restarted since the user left: resent lines of that span are placed again.
    restarted: bool,
}

impl Departed {
    /// The room a resent line `seq` goes to again, if it was said there before a restart.
    fn replaces(&self, seq: Seq) -> Option<&Room> {
        (self.restarted && (self.from..self.upto).contains(&seq)).then_some(&self.room)
    }
}

/// A join waiting for its node to confirm the token.
struct Pending {
    session: u64,
    room: Option<Room>,
    handler: RemoteRef<ChatClient>,
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
    /// Why users were disconnected by the server, to tell them when they come back.
    removed: HashMap<Claim, (String, Instant)>,
}

impl GenServer for MessageServer {
    type Protocol = ChatServer;
    type Args = MessageServerArgs;
    type State = State;
    type Info = ServerInfo;

    async fn init(&self, me: &Context<Self>, args: MessageServerArgs) -> Result<State, BoxError> {
        let node = Node::local().await?;
        node.export::<ChatServer>(MESSAGE_SERVER).await?;
        node.monitor_nodes(me, ServerInfo::Node).await?;
        let rooms = DynamicSupervisorRef::whereis(ROOMS)
            .ok_or("the rooms supervisor is not running (see the server's spec file)")?;
        let state = State {
            args,
            node,
            rooms,
            users: HashMap::new(),
            pending: HashMap::new(),
            removed: HashMap::new(),
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
                session,
                room,
                resume,
            } => state.join(me, nick, node, session, room, resume).await,
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
                seq,
                since,
                request,
            } => state.request(token, room, (seq, since), request).await,
            ServerCast::Delivered {
                token,
                room,
                epoch,
                bytes,
            } => {
                if let Some(nick) = state.verified(&token) {
                    if let Some(server) = ServerRef::<RoomServer>::whereis(&registered_name(&room))
                    {
                        server.cast(RoomCast::Delivered { nick, epoch, bytes });
                    }
                }
            }
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
            Info::Message(ServerInfo::Room(RoomEvent::Started(room))) => {
                // Lines its predecessor had not placed come again, older than some the
                // members sent since: accept them again from each one's oldest, back to
                // the request that brought them into this room (not before: those were
                // for another room).
                for user in state.users.values_mut() {
                    if user.room.as_ref() == Some(&room) {
                        user.next = user.entered;
                        user.asked = false;
                    } else if let Some(departed) = user.departed.as_mut().filter(|d| d.room == room)
                    {
                        departed.restarted = true;
                        user.handler.cast(ToClient::Resend {
                            from: departed.from,
                        });
                    }
                }
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
            Info::Message(ServerInfo::Room(RoomEvent::TooSlow { nick, behind })) => {
                state.too_slow(&nick, behind).await
            }
            #[cfg(feature = "fault-hook")]
            Info::Message(ServerInfo::Fault) => {
                return Err("fault injected (message server)".into())
            }
            Info::Message(ServerInfo::Node(NodeEvent::Down(node))) => state.node_down(&node).await,
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
        session: u64,
        room: Option<Room>,
        resume: Option<Token>,
    ) -> ServerReply {
        let Ok(handler) = self.handler_on(&node).await else {
            return ServerReply::NotConnectedYet;
        };
        let taken_elsewhere = self.users.get(&nick).is_some_and(|u| u.node != node);
        let resuming = resume.is_some_and(|t| {
            t.nick == nick && t.node == node && t.session == session && self.args.keys.verify(&t)
        });
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
            self.activate(nick, node, session, handler, room).await;
        } else {
            let since = Instant::now();
            handler.cast(ToClient::Challenge {
                token: self.args.keys.issue(&nick, &node, session),
            });
            let claim = (nick, node);
            me.send_after(
                CHALLENGE_TIMEOUT,
                ServerInfo::ChallengeExpired(claim.clone(), since),
            );
            let pending = Pending {
                session,
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
        let session = pending.session;
        self.activate(
            token.nick,
            token.node,
            session,
            pending.handler,
            pending.room,
        )
        .await;
    }

    /// Makes `nick` a user (or updates one resuming) and puts them in `room`.
    async fn activate(
        &mut self,
        nick: Nick,
        node: String,
        session: u64,
        handler: RemoteRef<ChatClient>,
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
        let removal = self.removed.remove(&(nick.clone(), node.clone()));
        self.users.insert(
            nick.clone(),
            User {
                node,
                session,
                handler: handler.clone(),
                room: room.clone(),
                throttle,
                next: None,
                asked: false,
                entered: None,
                departed: None,
            },
        );
        let removal = removal.map(|(reason, _)| reason);
        match room {
            Some(room) => self.enter(&nick, &room, handler, true, removal).await,
            None => {
                handler.cast(ToClient::Left);
                if let Some(reason) = removal {
                    handler.cast(ToClient::Notice(reason));
                }
            }
        }
    }

    /// A room dropped `nick` for reading too slowly: out of the chat, and their link
    /// closed, which frees what the server still holds for them; they are told why when
    /// they come back.
    async fn too_slow(&mut self, nick: &Nick, behind: u64) {
        let Some(node) = self.users.get(nick).map(|u| u.node.clone()) else {
            return;
        };
        tracing::warn!(nick = nick.as_str(), behind, "user too slow; disconnecting");
        self.remove(nick, true).await;
        let now = Instant::now();
        self.removed
            .retain(|_, (_, when)| now.duration_since(*when) < REMEMBER_REMOVALS);
        if self.removed.len() < MAX_REMOVALS {
            let reason = format!(
                "You were disconnected: you were {:.1} KiB behind the room (the limit is {:.1} KiB, or half of it for {} s); what was said meanwhile is not shown",
                behind as f64 / 1024.0,
                self.args.max_backlog as f64 / 1024.0,
                super::room::SLOW_GRACE.as_secs()
            );
            self.removed
                .insert((nick.clone(), node.clone()), (reason, now));
        }
        if let Err(error) = self.node.disconnect(&node).await {
            tracing::warn!(%error, node, "could not disconnect a slow client");
        }
    }

    /// The nick a token speaks for, if the token is genuine and its session is known
    /// (from the node it names).
    fn verified(&self, token: &Token) -> Option<Nick> {
        let user = self.users.get(&token.nick)?;
        (user.node == token.node && self.args.keys.verify(token)).then(|| token.nick.clone())
    }

    async fn request(
        &mut self,
        token: Token,
        room: Option<Room>,
        (seq, since): (Seq, Seq),
        request: Request,
    ) {
        let nick = match self.verified(&token) {
            Some(nick) => nick,
            None if self.args.keys.verify(&token) && !self.taken_by_other(&token) => {
                // A session this server lost in a restart: restore it in place.
                self.restore(&token, room).await;
                token.nick.clone()
            }
            None => return tracing::warn!(?token, "request with an unknown or forged token"),
        };
        let Some(user) = self.users.get_mut(&nick) else {
            return;
        };
        let handler = user.handler.clone();
        if user.departed.as_ref().is_some_and(|d| since >= d.upto) {
            // Everything said in the room left before is answered.
            user.departed = None;
        }
        // In order, without gaps: a request that overtook others lost in a crash waits
        // for them (the client sends them all again), a repeat is dropped.
        let expected = user.next.unwrap_or(0).max(since);
        if seq < expected {
            tracing::debug!(
                nick = nick.as_str(),
                seq,
                expected,
                "a request already handled came again"
            );
            let again = user
                .departed
                .as_ref()
                .and_then(|d| d.replaces(seq))
                .cloned();
            if let (Some(room), Request::Say { text }) = (again, request) {
                self.say_again(&nick, &room, seq, text);
            }
            return;
        }
        if seq > expected {
            user.next = Some(expected);
            if !std::mem::replace(&mut user.asked, true) {
                handler.cast(ToClient::Resend { from: expected });
            }
            return;
        }
        user.next = Some(seq.saturating_add(1));
        user.asked = false;
        // Every request counts against the flood limit, not only lines said: a `/pm` or
        // `/join` storm costs the server as much.
        let outcome = match self.admit(&nick) {
            Err(refusal) => Err(refusal),
            Ok(()) => match request {
                // Acknowledged by the room, once placed.
                Request::Say { text } => match self.say(&nick, seq, text) {
                    Ok(true) => return,
                    Ok(false) => {
                        // The room is restarting: this line comes again once it is back.
                        if let Some(user) = self.users.get_mut(&nick) {
                            user.next = Some(seq);
                        }
                        return;
                    }
                    Err(refusal) => Err(refusal),
                },
                Request::Pm { to, text } => self.pm(&nick, seq, &to, text),
                Request::Join(room) => {
                    let room = room.unwrap_or_else(Room::lobby);
                    self.switch(&nick, seq, Some(room)).await;
                    Ok(())
                }
                Request::Leave => {
                    self.switch(&nick, seq, None).await;
                    Ok(())
                }
                Request::Users => self.users_of(&nick),
                Request::Rooms => {
                    self.list_rooms(&nick);
                    Ok(())
                }
            },
        };
        handler.cast(match outcome {
            Ok(()) => ToClient::Ack { seq, placed: None },
            Err(reason) => ToClient::Refused {
                seq: Some(seq),
                reason,
            },
        });
    }

    /// Takes one request from `nick`'s flood allowance; past it the request is refused.
    fn admit(&mut self, nick: &Nick) -> Result<(), String> {
        let Some(user) = self.users.get_mut(nick) else {
            return Err("not joined".into());
        };
        user.throttle.take(Instant::now()).map_err(|wait| {
            format!(
                "slow down: you are sending too fast; requests are refused for {:.1} s",
                wait.as_secs_f64()
            )
        })
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
                session: token.session,
                handler: handler.clone(),
                room: room.clone(),
                throttle,
                next: None,
                asked: false,
                entered: None,
                departed: None,
            },
        );
        if let Some(room) = room {
            self.enter(&token.nick, &room, handler, false, None).await;
        }
    }

    /// Hands a line to the user's room, which places and acknowledges it; `Ok(false)` if
    /// the room is restarting (it tells its members when back, and they send again).
    fn say(&mut self, nick: &Nick, seq: Seq, text: String) -> Result<bool, String> {
        let user = self.users.get(nick).ok_or("not joined")?;
        let room = user
            .room
            .clone()
            .ok_or("not_in_chatroom: you are not in the chatroom; /join to rejoin")?;
        let text = line_to_say(&text)?;
        Ok(self.hand_to(&room, nick, seq, text))
    }

    /// A line said in `room`, which `nick` has left since and which restarted before it
    /// answered: placed there again. Checked again too: what comes back from a client is
    /// not what was checked the first time, whatever its number says.
    fn say_again(&self, nick: &Nick, room: &Room, seq: Seq, text: String) {
        let refusal = match line_to_say(&text) {
            Ok(text) => match self.hand_to(room, nick, seq, text) {
                true => return,
                false => format!(
                    "not sent: room {} closed before your line reached it",
                    room.as_str()
                ),
            },
            Err(reason) => reason,
        };
        if let Some(user) = self.users.get(nick) {
            user.handler.cast(ToClient::Refused {
                seq: Some(seq),
                reason: refusal,
            });
        }
    }

    /// Casts a checked line to `room`'s GenServer; false if the room is not running.
    fn hand_to(&self, room: &Room, nick: &Nick, seq: Seq, text: String) -> bool {
        let (Some(user), Some(server)) = (
            self.users.get(nick),
            ServerRef::<RoomServer>::whereis(&registered_name(room)),
        ) else {
            return false;
        };
        server.cast(RoomCast::Say {
            from: nick.clone(),
            text,
            session: user.session,
            sent: seq,
            handler: user.handler.clone(),
        });
        true
    }

    fn pm(&self, nick: &Nick, seq: Seq, to: &Nick, text: String) -> Result<(), String> {
        let sender = self.users.get(nick).ok_or("not joined")?;
        too_long(&text)?;
        let receiver = self
            .users
            .get(to)
            .ok_or_else(|| format!("receiver_not_found: nobody is called {}", to.as_str()))?;
        receiver.handler.cast(ToClient::Private {
            from: nick.clone(),
            text: crate::sanitize::clean(&text),
            session: sender.session,
            sent: seq,
        });
        Ok(())
    }

    /// Request `seq` moves `nick` to `room` (`None`: out of any room).
    async fn switch(&mut self, nick: &Nick, seq: Seq, room: Option<Room>) {
        let Some(user) = self.users.get_mut(nick) else {
            return;
        };
        let handler = user.handler.clone();
        let old = std::mem::replace(&mut user.room, room.clone());
        if old.is_some() && old == room {
            // Already there: just show the room again.
            return self
                .enter(nick, &room.unwrap_or_else(Room::lobby), handler, true, None)
                .await;
        }
        // Later requests are for the new room; those before, for the old one.
        let from = user.entered.replace(seq.saturating_add(1));
        if let Some(room) = old.clone() {
            user.departed = Some(Departed {
                room,
                from: from.unwrap_or(0),
                upto: seq,
                restarted: false,
            });
        }
        self.leave_room(nick, old, true).await;
        match room {
            Some(room) => self.enter(nick, &room, handler, true, None).await,
            None => handler.cast(ToClient::Left),
        }
    }

    fn users_of(&self, nick: &Nick) -> Result<(), String> {
        let user = self.users.get(nick).ok_or("not joined")?;
        let room = user
            .room
            .as_ref()
            .ok_or("not_in_chatroom: you are not in a room; /join one")?;
        let members = self.members_of(room);
        let nicks = members.iter().map(|(nick, _)| nick.as_str()).collect();
        user.handler.cast(ToClient::Notice(format!(
            "**Users in room: {}**",
            sorted(nicks)
        )));
        Ok(())
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
        handler: RemoteRef<ChatClient>,
        greet: bool,
        then: Option<String>,
    ) {
        match self.room(room).await {
            Ok(server) => server.cast(RoomCast::Enter {
                nick: nick.clone(),
                handler,
                greet,
                then,
            }),
            Err(why) => {
                let reason = match why.starts_with("room_limit") {
                    true => why,
                    false => format!("cannot open room {}: {why}", room.as_str()),
                };
                handler.cast(ToClient::Refused { seq: None, reason });
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
        // An empty room other than the default one closes. In order: a GenServer is asked
        // to stop after what it was sent before, so a line said just before its last
        // member left is still placed and answered.
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
            let name = name.clone();
            let args = RoomArgs {
                room: room.clone(),
                max_backlog: self.args.max_backlog,
                report: std::sync::Arc::new(|event| {
                    // By name: the message server may have restarted since the room did.
                    if let Some(server) = ServerRef::<ChatServer>::whereis(MESSAGE_SERVER) {
                        server.send_info(ServerInfo::Room(event));
                    }
                }),
            };
            ChildSpec::worker(name.clone(), move |parent| {
                parent.start_named(name.clone(), RoomServer, args.clone())
            })
        };
        let cell = self.rooms.start_child(spec).await.map_err(|error| match error {
            SupervisorError::MaxChildren(limit) => format!(
                "room_limit: the server has {limit} rooms open, its limit; join one of them (/rooms)"
            ),
            error => error.to_string(),
        })?;
        ServerRef::from_cell(cell).ok_or_else(|| "the room did not start".to_owned())
    }

    fn members_of(&self, room: &Room) -> Vec<Entrant> {
        self.users
            .iter()
            .filter(|(_, u)| u.room.as_ref() == Some(room))
            .map(|(n, u)| (n.clone(), u.handler.clone()))
            .collect()
    }

    async fn handler_on(
        &self,
        node: &str,
    ) -> Result<RemoteRef<ChatClient>, otp::node::LookupError> {
        self.node.remote::<ChatClient>(node, MESSAGE_HANDLER).await
    }
}

fn nick_in_use(nick: &Nick) -> String {
    format!(
        "nick_in_use: {} is taken; pick another nickname",
        nick.as_str()
    )
}

/// A line as a room shows it: within the size limit, cleaned, and not empty once cleaned;
/// or the refusal.
fn line_to_say(text: &str) -> Result<String, String> {
    too_long(text)?;
    let text = crate::sanitize::clean(text);
    match text.trim().is_empty() {
        true => Err("nothing to say: the line is empty once cleaned".into()),
        false => Ok(text),
    }
}

/// The refusal for a message over the size limit (the client checks too; a hand-made
/// client may not).
fn too_long(text: &str) -> Result<(), String> {
    match text.len() > crate::MAX_MESSAGE_BYTES {
        true => Err(format!(
            "message too long ({} bytes): the limit is {} bytes",
            text.len(),
            crate::MAX_MESSAGE_BYTES
        )),
        false => Ok(()),
    }
}

fn sorted<S: AsRef<str> + Ord>(mut items: Vec<S>) -> String {
    items.sort();
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}
