//! The message server: routes between users and rooms (the robust messenger's `server`).
//! Exported as [`MESSAGE_SERVER`], so client nodes reach it. What it keeps is split by
//! concern:
//!
//! | | |
//! |---|---|
//! | `sessions.rs` | who has joined, tokens, joins in progress, request order |
//! | `membership.rs` | who is in which room (shared with the rooms) |
//! | `directory.rs` | the rooms' processes |
//! | `policy.rs` | what is accepted: flood limit, size, cleaning |
//!
//! Restarts: tokens are checked with a key that outlives this server, and the membership
//! record outlives it too; clients rejoin with their token when it goes down, so a crash
//! costs users nothing. A restarted room reads its members from the record.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use otp::gen_server::Init;
use otp::node::{MemberId, Node, NodeEvent, RemoteRef};
use otp::supervisor::DynamicSupervisorRef;
use otp::{Context, ExitReason, Flow, GenServer, Info, ServerRef};

use super::cluster::{Cluster, ClusterKey};
use super::directory::{Directory, Lines, Opened};
use super::keys::SessionKeys;
use super::membership::Membership;
use super::policy;
use super::room::{ChatRoom, Enter, Exit, Read, RoomArgs, RoomEvent, Say};
use super::roster::Roster;
use super::sessions::{Claim, Order, Pending, Sessions, Turn, User};
use crate::names::{Nick, Room};
use crate::protocol::{Ack, Challenge, JoinRefused, Left, Notice, Private, Refused, Resend};
use crate::protocol::{ChatClient, ChatServer, Refusal, MESSAGE_HANDLER, MESSAGE_SERVER};
use crate::protocol::{Confirm, Delivered, Join, NotJoined, Quit, ServerCall, ServerCast, Submit};
use crate::protocol::{Request, Seq, ServerStopping, Servers, Token};
use crate::throttle::Throttle;

/// The registered name of the rooms' dynamic supervisor (see the server's spec file).
pub const ROOMS: &str = "rooms";

/// How long the shutdown notice waits for each client.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a join may wait for its node to confirm the token.
const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often nicks another server still held when their users moved here are claimed
/// again.
const CLAIM_AGAIN: Duration = Duration::from_millis(500);

/// What the program gives the message server (the same on every restart).
#[derive(Clone)]
pub struct MessageServerArgs {
    /// Mints and checks session tokens; outlives restarts of this server.
    pub keys: SessionKeys,
    /// The cluster key: seals what this server tells the others.
    pub cluster_key: ClusterKey,
    /// Who is in which room; outlives restarts of this server and of the rooms.
    pub membership: Membership,
    /// Who is in which room on the cluster's other servers (kept by the relay).
    pub roster: Roster,
    /// Per-user flood limit: sustained messages per second.
    pub rate: f64,
    /// Per-user flood limit: burst.
    pub burst: f64,
    /// Bytes a room member may fall behind before it is disconnected (see
    /// [`room`](super::room)).
    pub max_backlog: u64,
}

otp::protocol! {
    /// The message server as this server's own processes reach it: what clients send it
    /// ([`ChatServer`]), and what only the rooms, the relay, its own timers and the fault
    /// hook tell it ([`ServerInfo`]).
    pub LocalChatServer: ChatServer { infos ServerInfo; }
}

/// Local messages (never from the network).
pub enum ServerInfo {
    /// What a room reported.
    Room(RoomEvent),
    /// A join's challenge expired unanswered: forget the claim.
    ChallengeExpired(Claim, Instant),
    /// A client node came or went.
    Node(NodeEvent),
    /// The cluster's servers now, this one first: where users may move.
    Servers(Vec<String>),
    /// `nick`, a user here, lost their nick to `winner`'s user when a split healed.
    NickLost(Nick, MemberId),
    /// A private message from a user on another server to `to`, a user here.
    Private { to: Nick, line: Private },
    /// Time to claim again the nicks other servers still held.
    ClaimAgain,
    /// A server linked: tell it where this server's users are.
    Linked(String),
    /// Test fault hook: crash now.
    #[cfg(feature = "fault-hook")]
    Fault,
}

/// The message server: who has joined and where they are, the rooms, the cluster.
pub struct MessageServer {
    /// The flood limit every user starts with: sustained rate and burst.
    flood: (f64, f64),
    /// For the slow reader's disconnection notice (the rooms enforce it).
    max_backlog: u64,
    node: Node,
    sessions: Sessions,
    membership: Membership,
    rooms: Directory,
    cluster: Cluster,
    /// The cluster's servers, this one first (told to users, who move to another when
    /// this one goes).
    servers: Vec<String>,
    /// Users who moved here while another server still held their nick (it let go of
    /// it once it saw them leave): claimed again until it is theirs.
    unclaimed: HashSet<Nick>,
}

impl Init<MessageServerArgs> for MessageServer {
    async fn init(args: MessageServerArgs, me: &Context<Self>) -> otp::Result<Self> {
        let node = Node::local().await?;
        node.export::<LocalChatServer>(MESSAGE_SERVER).await?;
        node.monitor_nodes(me, ServerInfo::Node).await?;
        let supervisor = DynamicSupervisorRef::whereis(ROOMS)
            .ok_or("the rooms supervisor is not running (see the server's spec file)")?;
        let cluster = Cluster::local(args.cluster_key.clone(), args.roster.clone()).await?;
        let template = room_template(&args, &cluster);
        me.send_interval(CLAIM_AGAIN, || ServerInfo::ClaimAgain);
        let mut server = MessageServer {
            flood: (args.rate, args.burst),
            max_backlog: args.max_backlog,
            servers: vec![node.address().to_string()],
            node,
            sessions: Sessions::new(args.keys),
            membership: args.membership,
            rooms: Directory::load(supervisor, template).await?,
            cluster,
            unclaimed: HashSet::new(),
        };
        server.recover().await?;
        // Started again while linked, the others forgot this server's users when its relay
        // restarted before it (or they never heard of them): tell them all.
        server.cluster.send_roster(None, server.membership.seats());
        Ok(server)
    }
}

impl GenServer for MessageServer {
    type Protocol = LocalChatServer;

    /// What `sys::get_status` (and the observer) shows: counts, never the session key
    /// or anyone's token.
    fn format_status(&self) -> String {
        let rooms = self.membership.rooms();
        format!(
            "{} users in {} rooms; flood limit {}/s, burst {}",
            self.sessions.users().count(),
            rooms.len(),
            self.flood.0,
            self.flood.1
        )
    }

    async fn handle_call(&mut self, call: ServerCall<'_>, me: &Context<Self>) -> otp::Result {
        Ok(match call {
            ServerCall::Join(join, caller) => caller.reply(self.join(me, join).await),
            ServerCall::Quit(Quit { token }, caller) => {
                if let Some(nick) = self.sessions.verified(&token) {
                    self.remove(&nick, true).await;
                }
                caller.reply(())
            }
        })
    }

    async fn handle_cast(&mut self, cast: ServerCast, _me: &Context<Self>) -> otp::Result {
        match cast {
            ServerCast::Confirm(Confirm { token }) => self.confirm(token).await,
            ServerCast::Submit(submit) => self.request(submit).await,
            ServerCast::Delivered(Delivered {
                token,
                room,
                epoch,
                bytes,
            }) => {
                if let Some(nick) = self.sessions.verified(&token) {
                    if let Lines::To(server) = self.rooms.lines(&room) {
                        server.cast(Read { nick, epoch, bytes });
                    }
                }
            }
        }
        Ok(Flow::Continue)
    }

    async fn handle_info(&mut self, info: Info<ServerInfo>, _me: &Context<Self>) -> otp::Result {
        match info {
            Info::Message(ServerInfo::Room(RoomEvent::Started { room, server })) => {
                self.room_started(room, server).await
            }
            Info::Message(ServerInfo::Room(RoomEvent::TooSlow { nick, behind })) => {
                self.too_slow(&nick, behind).await
            }
            Info::Message(ServerInfo::ChallengeExpired(claim, since))
                if self.sessions.expire(&claim, since) =>
            {
                let (nick, node) = claim;
                tracing::info!(nick = nick.as_str(), node, "join not confirmed in time");
            }
            Info::Message(ServerInfo::Node(NodeEvent::Down(node))) => self.node_down(&node).await,
            Info::Message(ServerInfo::Servers(servers)) => self.servers_changed(servers),
            Info::Message(ServerInfo::NickLost(nick, winner)) => {
                self.nick_lost(&nick, &winner).await
            }
            Info::Message(ServerInfo::Private { to, line }) => {
                self.private_from_elsewhere(&to, line)
            }
            Info::Message(ServerInfo::Linked(node)) => {
                let seats = self.membership.seats();
                self.cluster.send_roster(Some(&node), seats);
            }
            Info::Message(ServerInfo::ClaimAgain) if !self.unclaimed.is_empty() => {
                self.claim_again().await
            }
            #[cfg(feature = "fault-hook")]
            Info::Message(ServerInfo::Fault) => {
                return Err("fault injected (message server)".into())
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }

    async fn terminate(&mut self, reason: &ExitReason, _me: &Context<Self>) {
        // Told by call, concurrently, so the notice is through before the node closes
        // the connections; a client that does not answer within a second is not waited for.
        if reason.is_orderly() {
            let mut notices = tokio::task::JoinSet::new();
            for (_, user) in self.sessions.users() {
                let handler = user.handler.clone();
                notices.spawn(async move {
                    let notice = handler.call_timeout(ServerStopping, NOTICE_TIMEOUT);
                    let _ = notice.await;
                });
            }
            while notices.join_next().await.is_some() {}
        }
    }
}

/// What every room is started with: it reports to the message server by name (which may
/// have restarted since the room did) and reads its members from the shared record.
fn room_template(args: &MessageServerArgs, cluster: &Cluster) -> RoomArgs {
    let membership = args.membership.clone();
    let cluster = cluster.clone();
    let roster = args.roster.clone();
    RoomArgs {
        room: Room::lobby(),
        max_backlog: args.max_backlog,
        report: std::sync::Arc::new(|event| {
            if let Some(server) = ServerRef::<LocalChatServer>::whereis(MESSAGE_SERVER) {
                server.send_info(ServerInfo::Room(event));
            }
        }),
        members: std::sync::Arc::new(move |room| membership.members(room)),
        relay: std::sync::Arc::new(move |relay| cluster.relay(relay)),
        elsewhere: std::sync::Arc::new(move |room| roster.nicks(room)),
    }
}

impl MessageServer {
    /// After a restart of this server: members whose node went meanwhile are out (nobody
    /// was there to see it go), and every room with members runs again (the lobby always).
    async fn recover(&mut self) -> Result<(), otp::node::Unavailable> {
        let peers: HashSet<String> = self.node.peers().await?.into_iter().collect();
        for nick in self
            .membership
            .seated(|handler| !peers.contains(handler.node()))
        {
            tracing::info!(
                nick = nick.as_str(),
                "user's node went while the server was down"
            );
            self.leave_room(&nick, true).await;
        }
        let rooms = self.membership.rooms().into_iter().map(|(room, _)| room);
        for room in std::iter::once(Room::lobby()).chain(rooms) {
            if let Err(refusal) = self.rooms.open(&room).await {
                tracing::warn!(room = room.as_str(), %refusal, "could not reopen a room");
            }
        }
        Ok(())
    }

    /// The room `nick` may enter now, opened if need be; or why not.
    async fn open(&mut self, room: &Room) -> Result<ServerRef<ChatRoom>, Refusal> {
        match self.rooms.open(room).await? {
            Opened::Running(server) => Ok(server),
            Opened::Restarting => Err(Refusal::RoomUnavailable { room: room.clone() }),
        }
    }

    async fn join(
        &mut self,
        me: &Context<Self>,
        Join {
            nick,
            node,
            session,
            room,
            resume,
        }: Join,
    ) -> Result<(), NotJoined> {
        let Ok(handler) = self.handler_on(&node).await else {
            return Err(NotJoined::NotConnectedYet);
        };
        let resuming = resume.is_some_and(|t| {
            t.nick == nick
                && t.node == node
                && t.session == session
                && self.sessions.keys().verify(&t)
        });
        if !self.sessions.nick_free(&nick, &node, resuming) {
            return Err(Refusal::NickInUse { nick }.into());
        }
        if resuming {
            // The user may come from another server that still holds the nick: theirs
            // by their token, claimed once that server lets go.
            tracing::info!(nick = nick.as_str(), %node, "session resumed");
            self.claim_moved(&nick).await;
            self.activate(nick, node, session, handler, room).await;
            return Ok(());
        }
        if self.cluster.held_elsewhere(&nick) {
            return Err(Refusal::NickInUse { nick }.into());
        }
        if self.sessions.pending_full() {
            return Err(Refusal::ServerBusy.into());
        }
        let since = Instant::now();
        handler.cast(Challenge {
            token: self.sessions.keys().issue(&nick, &node, session),
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
        self.sessions.await_confirmation(claim, pending);
        Ok(())
    }

    async fn confirm(&mut self, token: Token) {
        if !self.sessions.keys().verify(&token) {
            return tracing::warn!(?token, "confirmation with a forged token; ignored");
        }
        let claim = (token.nick.clone(), token.node.clone());
        let Some(pending) = self.sessions.confirmed(&claim) else {
            return;
        };
        // Another node confirmed this nick first, here or on another server.
        let taken = self.sessions.get(&token.nick).is_some()
            || self.cluster.claim(&token.nick).await.is_err();
        if taken {
            let refusal = Refusal::NickInUse { nick: token.nick };
            return pending.handler.cast(JoinRefused(refusal));
        }
        tracing::info!(nick = token.nick.as_str(), node = %token.node, "joined");
        let (nick, node) = claim;
        self.activate(nick, node, pending.session, pending.handler, pending.room)
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
        let previous = self.sessions.remove(&nick);
        if self
            .membership
            .room_of(&nick)
            .is_some_and(|left| Some(left) != room)
        {
            self.leave_room(&nick, true).await;
        }
        let throttle = previous.map_or_else(|| self.fresh_throttle(), |user| user.throttle);
        let removal = self.sessions.take_removal(&(nick.clone(), node.clone()));
        let user = User {
            node,
            session,
            handler: handler.clone(),
            throttle,
            order: Order::default(),
        };
        self.sessions.insert(nick.clone(), user);
        handler.cast(Servers(self.servers.clone()));
        let entered = match room {
            Some(room) => match self.open(&room).await {
                Ok(server) => {
                    self.enter(
                        &nick,
                        &room,
                        &server,
                        handler.clone(),
                        true,
                        removal.clone(),
                    );
                    true
                }
                Err(refusal) => {
                    handler.cast(Refused {
                        seq: None,
                        reason: refusal,
                    });
                    false
                }
            },
            None => false,
        };
        if !entered {
            handler.cast(Left);
            if let Some(reason) = removal {
                handler.cast(Notice(reason));
            }
        }
    }

    /// Claims the nick of a user who resumed their session here; if another server
    /// still holds it, again until it is theirs.
    async fn claim_moved(&mut self, nick: &Nick) {
        if self.cluster.claim(nick).await.is_err() {
            self.unclaimed.insert(nick.clone());
        }
    }

    async fn claim_again(&mut self) {
        for nick in std::mem::take(&mut self.unclaimed) {
            if self.sessions.get(&nick).is_some() {
                self.claim_moved(&nick).await;
            }
        }
    }

    /// `nick` lost their nick in a healed split: told why, and out.
    async fn nick_lost(&mut self, nick: &Nick, winner: &MemberId) {
        let Some(handler) = self.sessions.get(nick).map(|u| u.handler.clone()) else {
            return;
        };
        tracing::info!(nick = nick.as_str(), %winner, "nick lost to an older user on another server");
        let refusal = Refusal::NickLost { nick: nick.clone() };
        handler.cast(JoinRefused(refusal));
        self.remove(nick, true).await;
    }

    /// A private message from another server's user, for `to` here.
    fn private_from_elsewhere(&self, to: &Nick, line: Private) {
        if let Some(receiver) = self.sessions.get(to) {
            receiver.handler.cast(line);
        }
    }

    /// The cluster's servers changed: every user hears where they may move.
    fn servers_changed(&mut self, servers: Vec<String>) {
        self.servers = servers;
        let handlers = self.sessions.users().map(|(_, user)| &user.handler);
        RemoteRef::cast_all(handlers, &Servers(self.servers.clone()).into());
    }

    fn fresh_throttle(&self) -> Throttle {
        let (rate, burst) = self.flood;
        Throttle::new(rate, burst, Instant::now())
    }

    /// A room dropped `nick` for reading too slowly: out of the chat, and their link
    /// closed, which frees what the server still holds for them; they are told why when
    /// they come back.
    async fn too_slow(&mut self, nick: &Nick, behind: u64) {
        let Some(node) = self.sessions.get(nick).map(|u| u.node.clone()) else {
            return;
        };
        tracing::warn!(nick = nick.as_str(), behind, "user too slow; disconnecting");
        self.remove(nick, true).await;
        let reason = format!(
            "You were disconnected: you were {:.1} KiB behind the room (the limit is {:.1} KiB, or half of it for {} s); what was said meanwhile is not shown",
            behind as f64 / 1024.0,
            self.max_backlog as f64 / 1024.0,
            super::room::SLOW_GRACE.as_secs()
        );
        self.sessions
            .remember_removal((nick.clone(), node.clone()), reason);
        if let Err(error) = self.node.disconnect(&node).await {
            tracing::warn!(%error, node, "could not disconnect a slow client");
        }
    }

    /// `room` (re)started as `server`: lines its predecessor had not placed come again,
    /// and from now on lines go to the new incarnation. Its members were told by the room;
    /// told here are those who entered it since (with a line waiting for it) and those who
    /// left it with lines unanswered. A room that emptied meanwhile closes.
    async fn room_started(&mut self, room: Room, server: ServerRef<ChatRoom>) {
        if !self.rooms.started(room.clone(), server) {
            return; // a late report from an incarnation that is gone again
        }
        let members: HashSet<Nick> = self.membership.nicks(&room).into_iter().collect();
        for (nick, user) in self.sessions.users_mut() {
            let resend = match members.contains(nick) {
                true => user.order.room_restarted(),
                false => user.order.departed_room_restarted(&room),
            };
            if let Some(from) = resend {
                user.handler.cast(Resend { from });
            }
        }
        if members.is_empty() && room != Room::lobby() {
            self.rooms.close(&room).await;
        }
    }

    async fn request(
        &mut self,
        Submit {
            token,
            room,
            seq,
            since,
            request,
        }: Submit,
    ) {
        let nick = match self.sessions.verified(&token) {
            Some(nick) => nick,
            None if self.sessions.restorable(&token)
                && !self.cluster.held_elsewhere(&token.nick) =>
            {
                // A session this server lost in a restart: restore it in place.
                self.restore(&token, room).await;
                token.nick.clone()
            }
            None => return tracing::warn!(?token, "request with an unknown or forged token"),
        };
        let Some(user) = self.sessions.get_mut(&nick) else {
            return;
        };
        let handler = user.handler.clone();
        match user.order.take(seq, since) {
            Turn::Now => {}
            Turn::Repeat(again) => {
                tracing::debug!(
                    nick = nick.as_str(),
                    seq,
                    "a request already handled came again"
                );
                if let (Some(room), Request::Say { text }) = (again, request) {
                    self.say_again(&nick, &room, seq, &text);
                }
                return;
            }
            Turn::Early(ask) => {
                if let Some(from) = ask {
                    handler.cast(Resend { from });
                }
                return;
            }
        }
        let outcome = match policy::admit(&mut user.throttle) {
            Err(refusal) => Err(refusal),
            Ok(()) => match request {
                Request::Say { text } => match self.say(&nick, seq, &text) {
                    // Acknowledged by the room, once placed.
                    Ok(true) => return,
                    Ok(false) => {
                        // The room is restarting: this line comes again once it is back.
                        if let Some(user) = self.sessions.get_mut(&nick) {
                            user.order.again(seq);
                        }
                        return;
                    }
                    Err(refusal) => Err(refusal),
                },
                Request::Pm { to, text } => self.pm(&nick, seq, &to, &text),
                Request::Join(room) => {
                    self.switch(&nick, seq, Some(room.unwrap_or_else(Room::lobby)))
                        .await
                }
                Request::Leave => self.switch(&nick, seq, None).await,
                Request::Users => self.users_of(&nick, &handler),
                Request::Rooms => {
                    self.list_rooms(&handler);
                    Ok(())
                }
            },
        };
        match outcome {
            Ok(()) => handler.cast(Ack { seq, placed: None }),
            Err(reason) => handler.cast(Refused {
                seq: Some(seq),
                reason,
            }),
        }
    }

    /// A session lost in a restart of this server comes back from its token. The
    /// membership record kept its room; `claimed` (where the client believes it is) is
    /// used only if the record has none.
    async fn restore(&mut self, token: &Token, claimed: Option<Room>) {
        let Ok(handler) = self.handler_on(&token.node).await else {
            return;
        };
        tracing::info!(
            nick = token.nick.as_str(),
            "session restored from its token"
        );
        self.claim_moved(&token.nick).await;
        let user = User {
            node: token.node.clone(),
            session: token.session,
            handler: handler.clone(),
            throttle: self.fresh_throttle(),
            order: Order::default(),
        };
        self.sessions.insert(token.nick.clone(), user);
        let room = match (self.membership.room_of(&token.nick), claimed) {
            // Kept by the record; running, or coming back with them in it.
            (Some(room), _) => {
                if let Err(refusal) = self.rooms.open(&room).await {
                    tracing::warn!(room = room.as_str(), %refusal, "a restored user's room cannot be opened");
                }
                return;
            }
            (None, Some(room)) => room,
            (None, None) => return,
        };
        match self.open(&room).await {
            Ok(server) => self.enter(&token.nick, &room, &server, handler, false, None),
            Err(refusal) => handler.cast(Refused {
                seq: None,
                reason: refusal,
            }),
        }
    }

    /// Hands a line to the user's room, which places and acknowledges it; `Ok(false)` if
    /// the room is restarting (its start asks for the line again).
    fn say(&self, nick: &Nick, seq: Seq, text: &str) -> Result<bool, Refusal> {
        let room = self
            .membership
            .room_of(nick)
            .ok_or(Refusal::NotInChatroom)?;
        let text = policy::text(text)?;
        Ok(self.hand_to(&room, nick, seq, text))
    }

    /// A line said in `room`, which `nick` has left since and which restarted before it
    /// answered: placed there again. Checked again too: what comes back from a client is
    /// not what was checked the first time, whatever its number says.
    fn say_again(&self, nick: &Nick, room: &Room, seq: Seq, text: &str) {
        let refusal = match policy::text(text).map(|text| self.hand_to(room, nick, seq, text)) {
            Ok(true) => return,
            // Restarting again: its start asks for the line once more.
            Ok(false) if !matches!(self.rooms.lines(room), Lines::Closed) => return,
            Ok(false) => Refusal::RoomClosed { room: room.clone() },
            Err(refusal) => refusal,
        };
        if let Some(user) = self.sessions.get(nick) {
            user.handler.cast(Refused {
                seq: Some(seq),
                reason: refusal,
            });
        }
    }

    /// Casts a checked line to `room`; false if the room is not taking lines.
    fn hand_to(&self, room: &Room, nick: &Nick, seq: Seq, text: String) -> bool {
        let (Some(user), Lines::To(server)) = (self.sessions.get(nick), self.rooms.lines(room))
        else {
            return false;
        };
        server.cast(Say {
            from: nick.clone(),
            text,
            session: user.session,
            sent: seq,
            handler: user.handler.clone(),
        });
        true
    }

    /// A private line to `to`, here or on another server.
    fn pm(&self, nick: &Nick, seq: Seq, to: &Nick, text: &str) -> Result<(), Refusal> {
        let text = policy::text(text)?;
        let Some(sender) = self.sessions.get(nick) else {
            return Ok(());
        };
        if let Some(receiver) = self.sessions.get(to) {
            receiver.handler.cast(Private {
                from: nick.clone(),
                text,
                session: sender.session,
                sent: seq,
            });
            return Ok(());
        }
        match self.cluster.private(to, nick, &text, sender.session, seq) {
            true => Ok(()),
            false => Err(Refusal::ReceiverNotFound { nick: to.clone() }),
        }
    }

    /// Request `seq` moves `nick` to `room` (`None`: out of any room). A room that cannot
    /// be entered is refused before the user leaves the one they are in.
    async fn switch(&mut self, nick: &Nick, seq: Seq, room: Option<Room>) -> Result<(), Refusal> {
        let Some(handler) = self.sessions.get(nick).map(|user| user.handler.clone()) else {
            return Ok(());
        };
        let old = self.membership.room_of(nick);
        let new = match &room {
            Some(room) => Some(self.open(room).await?),
            None => None,
        };
        if let (Some(room), Some(server)) = (&room, &new) {
            if old.as_ref() == Some(room) {
                // Already there: just show the room again.
                self.enter(nick, room, server, handler, true, None);
                return Ok(());
            }
        }
        // Later requests are for the new room; those before, for the old one.
        if let Some(user) = self.sessions.get_mut(nick) {
            user.order.moved(seq, old);
        }
        self.leave_room(nick, true).await;
        match (&room, &new) {
            (Some(room), Some(server)) => self.enter(nick, room, server, handler, true, None),
            _ => handler.cast(Left),
        }
        Ok(())
    }

    fn users_of(&self, nick: &Nick, handler: &RemoteRef<ChatClient>) -> Result<(), Refusal> {
        let room = self
            .membership
            .room_of(nick)
            .ok_or(Refusal::NotInChatroom)?;
        let mut nicks = self.membership.nicks(&room);
        nicks.extend(self.cluster.users_elsewhere(&room));
        nicks.sort();
        nicks.dedup();
        let nicks: Vec<String> = nicks.iter().map(Nick::to_string).collect();
        handler.cast(Notice(format!("**Users in room: {}**", nicks.join(", "))));
        Ok(())
    }

    fn list_rooms(&self, handler: &RemoteRef<ChatClient>) {
        let mut counts = BTreeMap::from([(Room::lobby(), 0)]);
        let everywhere = self.membership.rooms().into_iter();
        for (room, users) in everywhere.chain(self.cluster.rooms_elsewhere()) {
            *counts.entry(room).or_default() += users;
        }
        let rooms: Vec<String> = counts.iter().map(|(r, n)| format!("{r} ({n})")).collect();
        handler.cast(Notice(format!("**Rooms: {}**", rooms.join(", "))));
    }

    /// A client node went: its users and pending joins with it (and seats of users this
    /// server has not restored since a restart).
    async fn node_down(&mut self, node: &str) {
        let mut gone: HashSet<Nick> = self.sessions.node_down(node).into_iter().collect();
        gone.extend(self.membership.on_node(node));
        for nick in gone {
            tracing::info!(nick = nick.as_str(), node, "user's node went down");
            self.remove(&nick, true).await;
        }
    }

    async fn remove(&mut self, nick: &Nick, announce: bool) {
        self.sessions.remove(nick);
        self.unclaimed.remove(nick);
        self.cluster.release(nick).await;
        self.leave_room(nick, announce).await;
    }

    /// Puts `nick` in `room`, running as `server`: the record first, then the room.
    fn enter(
        &self,
        nick: &Nick,
        room: &Room,
        server: &ServerRef<ChatRoom>,
        handler: RemoteRef<ChatClient>,
        greet: bool,
        then: Option<String>,
    ) {
        self.membership.seat(nick, room, handler.clone());
        self.cluster.seated(nick, Some(room));
        server.cast(Enter {
            nick: nick.clone(),
            handler,
            greet,
            then,
        });
    }

    /// Takes `nick` out of their room: the record first, then the room; an empty room
    /// other than the default one closes.
    async fn leave_room(&mut self, nick: &Nick, announce: bool) {
        let Some(room) = self.membership.unseat(nick) else {
            return;
        };
        self.cluster.seated(nick, None);
        if let Some(server) = self.rooms.running(&room) {
            server.cast(Exit {
                nick: nick.clone(),
                announce,
            });
        }
        if room != Room::lobby() && self.membership.is_empty(&room) {
            self.rooms.close(&room).await;
        }
    }

    async fn handler_on(
        &self,
        node: &str,
    ) -> Result<RemoteRef<ChatClient>, otp::node::LookupError> {
        self.node.remote::<ChatClient>(node, MESSAGE_HANDLER).await
    }
}
