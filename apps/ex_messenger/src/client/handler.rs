//! The message handler: a client node's one GenServer (the original's
//! `ExMessengerClient.MessageHandler`). It joins, shows what the server sends, forwards
//! what the user types, and when the server goes away says so and rejoins with the same
//! nick and room once it is back.
//!
//! What the user types goes through the [`Outbox`]: numbered, a window at a time, kept
//! until the server answers, sent again after any outage; what arrives goes through the
//! [`Inbox`]: shown once however often it is sent, and counted so the server knows how
//! far behind this client is (see [`crate::protocol`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otp::gen_server::Init;
use otp::node::{Node, RemoteRef};
use otp::{ActorId, CallError, Context, ExitReason, Flow, GenServer, Info};
use tokio::sync::{mpsc, oneshot};

use super::inbox::{Channel, Inbox};
use super::outbox::{Full, Outbox};
use crate::names::{Nick, Room};
use crate::protocol::{Ack, Challenge, JoinRefused, Joined, Left, Notice, Private, Refused};
use crate::protocol::{ChatClient, ChatServer, ClientCall, MESSAGE_HANDLER, MESSAGE_SERVER};
use crate::protocol::{Confirm, Delivered, Join, NotJoined, Quit, ServerStopping, Submit};
use crate::protocol::{Placed, Refusal, Request, Seq, Token};
use crate::protocol::{Resend, RoomRestarted, Said, Servers, ToClient};
use crate::sanitize::clean;

/// First wait before reconnecting; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long to keep knocking while the server answers "busy" before saying so.
const BUSY_PATIENCE: Duration = Duration::from_secs(30);
/// Unanswered requests with no answer at all for this long are sent again: a request lost
/// where no event tells the client (a line dropped by a restarting room it was not yet a
/// member of) is not lost for good. The server drops what it has already handled.
const RESEND_AFTER: Duration = Duration::from_secs(10);
/// How often that is checked.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How long a join may take before it is sent again.
const JOIN_TIMEOUT: Duration = Duration::from_secs(3);

/// What the handler tells the terminal.
#[derive(Debug)]
pub enum Output {
    /// A line to show.
    Line(String),
    /// Cannot go on (refused nick, unreachable server, gave up): show, exit non-zero.
    Fatal(String),
}

/// What a client did and saw, for a tool that checks deliveries (the soak): one event per
/// request made, answered or refused, per line received, per (re)entry and per outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    /// A line typed was numbered `seq`.
    Queued { seq: Seq, text: String },
    /// A line typed could not even be kept (too many waiting).
    Dropped { text: String },
    /// Request `seq` was done (a line: placed in the room so).
    Acked { seq: Seq, placed: Option<Placed> },
    /// Request `seq` was refused.
    Refused { seq: Seq, reason: Refusal },
    /// A room line arrived; `shown` unless it was a repeat of one already shown.
    Received {
        from: Nick,
        session: u64,
        sent: Seq,
        at: Placed,
        shown: bool,
    },
    /// In `room` from line `at` on.
    Joined { room: Room, at: Placed },
    /// The room restarted as incarnation `epoch`, this client in it.
    Restarted { room: Room, epoch: u64 },
    /// Out of the chat until a rejoin, for this reason.
    Lost { reason: String },
}

/// The session as the client knows it; shared with the program so that it survives a
/// restart of the handler.
#[derive(Debug, Default)]
pub struct Session {
    /// Random per client process: names this client's lines, with their numbers.
    pub id: u64,
    /// Proof of identity, once the server issued it.
    pub token: Option<Token>,
    /// Where the user wants to be: `None` after `/leave`.
    pub room: Option<Room>,
    /// Joined at least once: later joins are rejoins.
    pub joined_once: bool,
    /// What the user asked for and the server has not answered.
    pub outbox: Outbox,
    /// What has been received.
    pub inbox: Inbox,
}

impl Session {
    /// A new user's session, to be shared with the handler: bound for the default room.
    pub fn shared() -> Arc<Mutex<Session>> {
        Arc::new(Mutex::new(Session {
            id: crate::random::number(),
            room: Some(Room::lobby()),
            ..Session::default()
        }))
    }
}

/// What the program gives the handler (the same on every restart).
#[derive(Clone)]
pub struct HandlerArgs {
    /// The server's address, `HOST:PORT`, or several, comma-separated: servers of one
    /// cluster, tried in turn.
    pub server: String,
    /// Who the user is, already checked.
    pub nick: Nick,
    /// Where lines for the user go.
    pub output: mpsc::UnboundedSender<Output>,
    pub session: Arc<Mutex<Session>>,
    /// Stop retrying after the server has been unreachable this long.
    pub give_up_after: Duration,
    /// Where to report what happens to each line, for the soak (`None`: nobody asks).
    pub trace: Option<mpsc::UnboundedSender<Trace>>,
}

otp::protocol! {
    /// The message handler as the client's own processes reach it: what the server sends
    /// it ([`ChatClient`]), and what the terminal and its own timers tell it
    /// ([`HandlerInfo`]).
    pub LocalChatClient: ChatClient { infos HandlerInfo; }
}

/// Local messages: from the terminal and from the handler's own timers.
pub enum HandlerInfo {
    /// (Re)connect and join now.
    Connect,
    /// The join numbered so has had time to complete: if it has not, join again (a
    /// challenge can be lost while a new connection settles).
    JoinTimeout(u64),
    /// The user typed this.
    Input(Request),
    /// Leave for good, then answer.
    Quit(oneshot::Sender<()>),
    /// Time to check that unanswered requests are not stuck.
    Check,
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not connected yet, or connecting again after `down_since`.
    Connecting,
    /// Join sent, waiting for the challenge and then `Joined`.
    Joining,
    /// Joined (in a room or not).
    Joined,
    /// Quitting: ignore the rest.
    Quitting,
}

/// The message handler: the connection, and where it stands.
pub struct MessageHandler {
    args: HandlerArgs,
    node: Node,
    /// The servers to reach: those given, then those the cluster told of. The one at
    /// `at` is tried next; a failed attempt moves on to the next.
    servers: Vec<String>,
    at: usize,
    /// Failed first attempts: the first join fails only once every server was tried.
    first_failures: usize,
    server: Option<RemoteRef<ChatServer>>,
    /// The remote monitor on the message server.
    watching: Option<ActorId>,
    phase: Phase,
    /// When the server was lost; `None` while connected.
    down_since: Option<Instant>,
    backoff: Duration,
    /// Rejoining after the message server restarted: the user need not hear about it.
    quiet: bool,
    /// "Connecting to ..." has been shown.
    announced: bool,
    /// Join attempts so far, to match each with its timeout.
    attempts: u64,
    /// The last refusal shown, until a request is done again: a flood of refusals for one
    /// cause is shown once.
    refusing: Option<Refusal>,
    /// "Lines wait until reconnected" has been said during this outage.
    told_waiting: bool,
    /// When the server last answered a request (or the outbox last started filling): the
    /// clock for [`RESEND_AFTER`].
    last_answer: Instant,
}

impl Init<HandlerArgs> for MessageHandler {
    async fn init(args: HandlerArgs, me: &Context<Self>) -> otp::Result<Self> {
        let node = Node::local().await?;
        node.export::<LocalChatClient>(MESSAGE_HANDLER).await?;
        me.send_info(HandlerInfo::Connect);
        me.send_interval(CHECK_EVERY, || HandlerInfo::Check);
        let servers = args
            .server
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        Ok(MessageHandler {
            args,
            node,
            servers,
            at: 0,
            first_failures: 0,
            server: None,
            watching: None,
            phase: Phase::Connecting,
            down_since: None,
            backoff: FIRST_BACKOFF,
            quiet: false,
            announced: false,
            attempts: 0,
            refusing: None,
            told_waiting: false,
            last_answer: Instant::now(),
        })
    }
}

impl GenServer for MessageHandler {
    type Protocol = LocalChatClient;

    async fn handle_call(&mut self, call: ClientCall<'_>, me: &Context<Self>) -> otp::Result {
        let ClientCall::ServerStopping(ServerStopping, caller) = call;
        if self.phase != Phase::Quitting {
            self.lost(me, "the server is shutting down".into());
        }
        Ok(caller.reply(()))
    }

    async fn handle_cast(&mut self, cast: ToClient, _me: &Context<Self>) -> otp::Result {
        if self.phase == Phase::Quitting {
            return Ok(Flow::Continue);
        }
        match cast {
            ToClient::Challenge(Challenge { token }) => self.challenged(token),
            ToClient::Joined(Joined { room, users, at }) => self.joined(room, users, at),
            ToClient::Said(said) => self.said(said),
            ToClient::Private(Private {
                from,
                text,
                session,
                sent,
            }) => {
                if self
                    .session()
                    .inbox
                    .is_new(Channel::Private, &from, session, sent)
                {
                    self.show(format!("{} (private): {}", from.as_str(), clean(&text)));
                }
            }
            ToClient::Ack(Ack { seq, placed }) => self.answered(seq, Ok(placed)),
            ToClient::Refused(Refused {
                seq: Some(seq),
                reason,
            }) => self.answered(seq, Err(reason)),
            ToClient::Refused(Refused { seq: None, reason }) => {
                self.show(clean(&reason.to_string()))
            }
            ToClient::Notice(Notice(text)) => self.show(clean(&text)),
            ToClient::Resend(Resend { from }) => {
                tracing::info!(from, "the server lost requests; sending again");
                self.session().outbox.resend();
                self.pump();
            }
            ToClient::RoomRestarted(RoomRestarted { room, epoch }) => {
                self.trace(Trace::Restarted {
                    room: room.clone(),
                    epoch,
                });
                let mut session = self.session();
                session.inbox.entered(&room, epoch);
                // Lines the old room had not placed yet went with it: send them again.
                session.outbox.resend();
                drop(session);
                self.pump();
            }
            // A nick lost when servers that were apart met again ends the session.
            ToClient::JoinRefused(JoinRefused(reason @ Refusal::NickLost { .. })) => {
                let reason = clean(&reason.to_string());
                return Ok(self.fatal(format!("Disconnected, reason: {reason}")));
            }
            ToClient::JoinRefused(JoinRefused(reason)) if self.phase == Phase::Joining => {
                let reason = clean(&reason.to_string());
                return Ok(self.fatal(format!("Could not join chatroom, reason: {reason}")));
            }
            ToClient::JoinRefused(_) => {}
            ToClient::Left(Left) => {
                self.session().room = None;
                self.show(
                    "You have exited the chatroom, you can rejoin with /join or quit with /quit"
                        .into(),
                );
            }
            ToClient::Servers(Servers(servers)) => self.servers_told(servers),
        }
        Ok(Flow::Continue)
    }

    async fn handle_info(&mut self, info: Info<HandlerInfo>, me: &Context<Self>) -> otp::Result {
        match info {
            Info::Message(HandlerInfo::Connect) => return Ok(self.connect(me).await),
            Info::Message(HandlerInfo::JoinTimeout(attempt))
                if self.phase == Phase::Joining && attempt == self.attempts =>
            {
                tracing::info!("join not completed in time; joining again");
                self.phase = Phase::Connecting;
                return Ok(self.connect(me).await);
            }
            Info::Message(HandlerInfo::Input(request)) => self.input(request),
            Info::Message(HandlerInfo::Check) => self.check_stuck(),
            Info::Message(HandlerInfo::Quit(done)) => {
                self.quit().await;
                let _ = done.send(());
                return Ok(Flow::Stop(ExitReason::Normal));
            }
            Info::Down(exit) if Some(exit.id) == self.watching => {
                self.watching = None;
                match exit.reason {
                    // The message server crashed or restarted; its node is still there.
                    ExitReason::Error(_) | ExitReason::Killed | ExitReason::NoProc => {
                        tracing::info!(reason = %exit.reason, "message server restarted; rejoining");
                        self.quiet = self.phase == Phase::Joined;
                        self.phase = Phase::Connecting;
                        me.send_after(Duration::from_millis(20), HandlerInfo::Connect);
                    }
                    reason => self.lost(me, reason.to_string()),
                }
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }
}

impl MessageHandler {
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.args.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn show(&self, line: String) {
        let _ = self.args.output.send(Output::Line(line));
    }

    fn trace(&self, event: Trace) {
        if let Some(trace) = &self.args.trace {
            let _ = trace.send(event);
        }
    }

    fn fatal(&self, line: String) -> Flow {
        let _ = self.args.output.send(Output::Fatal(line));
        Flow::Stop(ExitReason::Normal)
    }

    /// Connects and sends the join; on failure retries with backoff (or gives up).
    async fn connect(&mut self, me: &Context<Self>) -> Flow {
        if self.phase != Phase::Connecting {
            return Flow::Continue;
        }
        let first = !self.session().joined_once;
        let server = self.servers.get(self.at).cloned().unwrap_or_default();
        let announce = !std::mem::replace(&mut self.announced, true);
        if announce {
            self.show(format!(
                "Connecting to {server} from {}...",
                self.node.name()
            ));
        }
        // A server busy setting up other connections turns us away for a moment: that is
        // retried here (with growing, jittered pauses), not reported.
        let peer = match self
            .node
            .connect_retrying(server.as_str(), BUSY_PATIENCE)
            .await
        {
            Ok(peer) => peer,
            Err(error) if first && self.first_failures + 1 >= self.servers.len() => {
                return self.fatal(format!("Could not connect to server, reason: {error}"))
            }
            Err(error) => {
                self.first_failures += usize::from(first);
                self.next_server();
                return match first {
                    true => self.connect_now(me),
                    false => self.retry(me, error.to_string()),
                };
            }
        };
        if announce {
            self.show("Connected".into());
        }
        let remote = match self.node.remote::<ChatServer>(&peer, MESSAGE_SERVER).await {
            Ok(remote) => remote,
            Err(error) => return self.retry(me, error.to_string()),
        };
        let (room, resume) = {
            let session = self.session();
            (session.room.clone(), session.token.clone())
        };
        let join = Join {
            nick: self.args.nick.clone(),
            node: self.node.name().to_owned(),
            session: self.session().id,
            room,
            resume,
        };
        match remote.call(join).await {
            Ok(Ok(())) => {
                self.watching = remote.monitor(me).ok();
                self.server = Some(remote);
                self.phase = Phase::Joining;
                self.attempts += 1;
                me.send_after(JOIN_TIMEOUT, HandlerInfo::JoinTimeout(self.attempts));
                Flow::Continue
            }
            // Busy is for now: try again, as after any other passing trouble.
            Ok(Err(NotJoined::Refused(Refusal::ServerBusy))) => {
                self.retry(me, Refusal::ServerBusy.to_string())
            }
            Ok(Err(NotJoined::Refused(reason))) => self.fatal(format!(
                "Could not join chatroom, reason: {}",
                clean(&reason.to_string())
            )),
            Ok(Err(NotJoined::NotConnectedYet)) => {
                // Our end saw the connection complete before the server's end did.
                me.send_after(Duration::from_millis(20), HandlerInfo::Connect);
                Flow::Continue
            }
            Err(CallError::NoProc) => self.retry(me, "the message server is restarting".into()),
            Err(error) if first => self.fatal(format!("Could not join chatroom, reason: {error}")),
            Err(error) => self.retry(me, error.to_string()),
        }
    }

    /// The next server of the list is tried next.
    fn next_server(&mut self) {
        self.at = (self.at + 1) % self.servers.len().max(1);
    }

    fn connect_now(&mut self, me: &Context<Self>) -> Flow {
        me.send_info(HandlerInfo::Connect);
        Flow::Continue
    }

    /// The cluster's servers, the one connected first: the list to move along if it goes.
    fn servers_told(&mut self, servers: Vec<String>) {
        let given = std::mem::take(&mut self.servers);
        self.servers = servers;
        for server in given {
            if !self.servers.contains(&server) {
                self.servers.push(server);
            }
        }
        self.at = 0;
    }

    /// Tries again later, or gives up once the server has been gone too long.
    fn retry(&mut self, me: &Context<Self>, why: String) -> Flow {
        let since = *self.down_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.args.give_up_after {
            return self.fatal(format!(
                "Giving up: the server at {} has been unreachable for {} s ({why})",
                self.servers.join(", "),
                self.args.give_up_after.as_secs()
            ));
        }
        tracing::debug!(%why, backoff = ?self.backoff, "rejoin failed; retrying");
        me.send_after(self.backoff, HandlerInfo::Connect);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Flow::Continue
    }

    /// The server went away: say so once, then reconnect.
    fn lost(&mut self, me: &Context<Self>, reason: String) {
        if self.phase == Phase::Connecting && self.down_since.is_some() {
            return;
        }
        self.show(format!("Server down: {reason}"));
        self.trace(Trace::Lost { reason });
        // A DOWN still to come from the old monitor no longer matches: ignored.
        self.watching = None;
        self.server = None;
        self.phase = Phase::Connecting;
        self.quiet = false;
        self.down_since = Some(Instant::now());
        self.backoff = FIRST_BACKOFF;
        me.send_after(FIRST_BACKOFF, HandlerInfo::Connect);
    }

    fn challenged(&mut self, token: Token) {
        let mine = token.nick == self.args.nick && token.node == self.node.name();
        let (true, Phase::Joining, Some(server)) = (mine, self.phase, self.server.as_ref()) else {
            return tracing::warn!(?token, "unexpected challenge; ignored");
        };
        server.cast(Confirm {
            token: token.clone(),
        });
        self.session().token = Some(token);
    }

    fn joined(&mut self, room: Room, users: Vec<Nick>, at: Placed) {
        let quiet = std::mem::take(&mut self.quiet);
        let first = !self.session().joined_once;
        let rejoined = self.phase == Phase::Joining;
        if rejoined && self.down_since.take().is_some() && !first {
            self.show("Reconnected".into());
        }
        self.phase = Phase::Joined;
        self.backoff = FIRST_BACKOFF;
        self.told_waiting = false;
        let same_room = self.session().room.as_ref() == Some(&room);
        {
            let mut session = self.session();
            session.room = Some(room.clone());
            session.joined_once = true;
            session.inbox.entered(&room, at.epoch);
            if rejoined {
                // Whatever was unanswered when the server went away goes again.
                session.outbox.resend();
            }
        }
        self.trace(Trace::Joined {
            room: room.clone(),
            at,
        });
        self.pump();
        if quiet && same_room {
            return;
        }
        if room == Room::lobby() {
            self.show("**Joined the chatroom**".into());
        } else {
            self.show(format!("**Joined the chatroom {}**", room.as_str()));
        }
        let users: Vec<&str> = users.iter().map(Nick::as_str).collect();
        self.show(format!("**Users in room: {}**", users.join(", ")));
        if first {
            self.show("**Type /help for options**".into());
        }
    }

    /// A request typed by the user: numbered, kept until answered, sent when the window
    /// allows.
    fn input(&mut self, request: Request) {
        let said = match &request {
            Request::Say { text } => Some(text.clone()),
            _ => None,
        };
        if self.session().outbox.is_empty() {
            self.last_answer = Instant::now();
        }
        let kept = self.session().outbox.push(request);
        match (kept, said) {
            (Ok(seq), Some(text)) => self.trace(Trace::Queued { seq, text }),
            (Ok(_), None) => {}
            (Err(Full), said) => {
                if let Some(text) = said {
                    self.trace(Trace::Dropped { text });
                }
                return self.show(format!(
                    "not sent: {} requests already wait for the server; slow down",
                    crate::protocol::WINDOW + super::outbox::WAITING
                ));
            }
        }
        if self.down_since.is_some() && !std::mem::replace(&mut self.told_waiting, true) {
            self.show(
                "Not connected to the server right now; what you type is sent once reconnected"
                    .into(),
            );
        }
        self.pump();
    }

    /// Sends what the window allows, while joined (also while quietly rejoining a restarted
    /// message server: the token stays valid and the server restores the session from it).
    fn pump(&mut self) {
        let (Some(server), true) = (&self.server, self.down_since.is_none()) else {
            return;
        };
        if self.phase != Phase::Joined && !self.quiet {
            return;
        }
        let mut session = self.session();
        let Some(token) = session.token.clone() else {
            return;
        };
        let room = session.room.clone();
        let since = session.outbox.oldest().unwrap_or_default();
        for (seq, request) in session.outbox.take_sendable() {
            server.cast(Submit {
                token: token.clone(),
                room: room.clone(),
                seq,
                since,
                request,
            });
        }
    }

    /// Sends everything unanswered again if nothing has been answered for a long while.
    fn check_stuck(&mut self) {
        let stuck = !self.session().outbox.is_empty()
            && self.phase == Phase::Joined
            && self.last_answer.elapsed() >= RESEND_AFTER;
        if stuck {
            tracing::info!("no answer for {RESEND_AFTER:?}; sending unanswered requests again");
            self.last_answer = Instant::now();
            self.session().outbox.resend();
            self.pump();
        }
    }

    /// The server answered request `seq`: done (a line placed so), or refused.
    fn answered(&mut self, seq: Seq, outcome: Result<Option<Placed>, Refusal>) {
        if !self.session().outbox.answered(seq) {
            return; // an answer to a request sent twice
        }
        self.last_answer = Instant::now();
        match outcome {
            Ok(placed) => {
                self.refusing = None;
                self.trace(Trace::Acked { seq, placed });
            }
            Err(reason) => {
                // One line per flood of refusals for the same cause (flood limits differ
                // only in the time they give).
                let same = self.refusing.as_ref().is_some_and(|shown| {
                    shown == &reason
                        || matches!(
                            (shown, &reason),
                            (Refusal::SlowDown { .. }, Refusal::SlowDown { .. })
                        )
                });
                if !same {
                    self.show(clean(&reason.to_string()));
                    self.refusing = Some(reason.clone());
                }
                self.trace(Trace::Refused { seq, reason });
            }
        }
        self.pump();
    }

    /// A room line: shown once, counted, and what has been read reported when due.
    fn said(
        &mut self,
        Said {
            from,
            text,
            at,
            session: sender,
            sent,
        }: Said,
    ) {
        let (new, report, token) = {
            let mut session = self.session();
            let new = session.inbox.is_new(Channel::Room, &from, sender, sent);
            let report = session.inbox.read(at, &from, &text);
            (new, report, session.token.clone())
        };
        self.trace(Trace::Received {
            from: from.clone(),
            session: sender,
            sent,
            at,
            shown: new,
        });
        if new {
            self.show(format!("{}: {}", from.as_str(), clean(&text)));
        }
        if let (Some(report), Some(server), Some(token)) = (report, &self.server, token) {
            server.cast(Delivered {
                token,
                room: report.room,
                epoch: report.epoch,
                bytes: report.bytes,
            });
        }
    }

    async fn quit(&mut self) {
        self.phase = Phase::Quitting;
        let token = self.session().token.clone();
        if let (Some(server), Some(token)) = (&self.server, token) {
            let bye = server.call_timeout(Quit { token }, Duration::from_secs(2));
            if let Err(error) = bye.await {
                tracing::info!(%error, "the server did not acknowledge the quit");
            }
        }
    }
}
