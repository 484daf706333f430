//! A chat room: one GenServer per room, under the `rooms` dynamic supervisor (the seed's
//! "each channel is a GenServer, restarted by a supervisor").
//!
//! The room owns the fan-out: it holds a handle to each member's message handler, numbers
//! every line ([`Placed`]), casts it to all but its sender and then acknowledges it to the
//! sender. Who is in which room is decided by the message server, which keeps the record
//! a room reads its members from when it starts ([`RoomArgs::members`]); a restarted room
//! tells them, so that they send again what its predecessor never placed.
//!
//! # Slow readers
//! The room counts what it sent each member and what each reported reading ([`Read`]). A
//! member more than [`RoomArgs::max_backlog`] bytes behind, or more than half of that for
//! [`SLOW_GRACE`], is dropped: the message server disconnects it and tells it why when it
//! comes back. So a reader that stopped reading costs the server a bounded amount of
//! memory and nobody else any delay. When many members fall behind at once the server
//! itself is the bottleneck: the room then holds back its acknowledgements, which slows
//! every sender to what the readers take.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use otp::gen_server::Init;
use otp::node::RemoteRef;
use otp::{Context, Flow, GenServer, Info, ServerRef};

use crate::names::{Nick, Room};
use crate::protocol::{line_cost, Ack, ChatClient, Joined, Notice, Placed, RoomRestarted, Said};
use crate::protocol::{Seq, ToClient, WINDOW};

/// How long a member may stay more than half the bound behind before it is dropped: a
/// pause (a terminal scrolled back, a busy machine) is forgiven, a stall is not.
pub const SLOW_GRACE: Duration = Duration::from_secs(10);

/// How often the room looks at its members' backlogs when nobody speaks.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The registered name of a room's GenServer.
pub fn registered_name(room: &Room) -> String {
    format!("ex_messenger.room/{}", room.as_str())
}

/// What a room is started with.
#[derive(Clone)]
pub struct RoomArgs {
    /// The room's name.
    pub room: Room,
    /// Bytes (by [`line_cost`]) a member may be behind before it is dropped.
    pub max_backlog: u64,
    /// Where the room reports: a room knows nothing of who started it.
    pub report: Reporter,
    /// Who is in the room when it starts (after a restart: those its predecessor had).
    pub members: Members,
    /// Where the room hands what its own members said and did, for the same room on the
    /// cluster's other servers (which place it among their lines).
    pub relay: Relayer,
    /// The room's users on the cluster's other servers, for the user list of who enters.
    pub elsewhere: Elsewhere,
}

/// A room's users on other servers.
pub type Elsewhere = std::sync::Arc<dyn Fn(&Room) -> Vec<Nick> + Send + Sync>;

/// What a room hands on to the same room on other servers.
#[derive(Debug, Clone)]
pub enum Relay {
    /// A member here said `text`: request `sent` of session `session`.
    Line {
        room: Room,
        from: Nick,
        text: String,
        session: u64,
        sent: Seq,
    },
    /// A notice for every member (`**alice has joined**`).
    Notice { room: Room, text: String },
}

/// Delivers a room's [`Relay`]s.
pub type Relayer = std::sync::Arc<dyn Fn(Relay) + Send + Sync>;

/// What a room reports to whoever owns its membership (the message server).
pub enum RoomEvent {
    /// The room (re)started as `server`, with its members from [`RoomArgs::members`].
    Started {
        room: Room,
        server: ServerRef<ChatRoom>,
    },
    /// The room dropped `nick`, `behind` bytes behind: disconnect them.
    TooSlow { nick: Nick, behind: u64 },
}

/// Delivers a room's [`RoomEvent`]s.
pub type Reporter = std::sync::Arc<dyn Fn(RoomEvent) + Send + Sync>;

/// A room's members as the record of who is where has them.
pub type Members = std::sync::Arc<dyn Fn(&Room) -> Vec<Entrant> + Send + Sync>;

impl RoomArgs {
    /// Behind by more than this, a member is behind: dropped after [`SLOW_GRACE`] (when
    /// the room as a whole keeps up), and counted towards holding the room's answers.
    fn soft_backlog(&self) -> u64 {
        self.max_backlog / 2
    }
}

/// A member as the message server hands it over: who, and where their lines go.
pub type Entrant = (Nick, RemoteRef<ChatClient>);

otp::protocol! {
    /// What a room answers: the message server's casts (who comes and goes, what they say
    /// and read), the relay's (what the same room on other servers said), and the room's
    /// own infos. Rooms are not exported: only this server's processes reach them.
    pub ChatRoom;
    calls RoomCall {
        /// The members' nicks.
        Nicks -> Vec<Nick>,
    }
    casts RoomCast {
        /// `nick` is in the room now. `greet`: tell them `Joined` with the user list and
        /// tell the others; a silent enter restores a member after a restart. `then`: a
        /// notice for them, after `Joined`.
        Enter {
            nick: Nick,
            handler: RemoteRef<ChatClient>,
            greet: bool,
            then: Option<String>,
        },
        /// `nick` is out; `announce` tells the others.
        Exit { nick: Nick, announce: bool },
        /// `from` says `text` (already checked and cleaned): request `sent` of session
        /// `session`, acknowledged to `handler` once placed.
        Say {
            from: Nick,
            text: String,
            session: u64,
            sent: Seq,
            handler: RemoteRef<ChatClient>,
        },
        /// `nick` has read `bytes` of incarnation `epoch`.
        Read { nick: Nick, epoch: u64, bytes: u64 },
        /// `from`, a member on another server, said `text` (already checked there): placed
        /// here among this room's lines and sent to every member here, acknowledged by
        /// that server's room.
        RelayedLine {
            from: Nick,
            text: String,
            session: u64,
            sent: Seq,
        },
        /// A notice from the room on another server, for every member here.
        RelayedNotice(String),
    }
    infos RoomInfo;
}

/// The room's own messages.
pub enum RoomInfo {
    /// Time to look at backlogs and held acknowledgements.
    Check,
    /// Test fault hook: crash now.
    #[cfg(feature = "fault-hook")]
    Fault,
    /// Test fault hook: handle nothing for this long (saying when it begins).
    #[cfg(feature = "fault-hook")]
    Stall(Duration, tokio::sync::oneshot::Sender<()>),
}

/// A member of the room.
struct Member {
    handler: RemoteRef<ChatClient>,
    /// Bytes sent to it since it entered (this incarnation).
    sent: u64,
    /// Bytes it reported reading.
    read: u64,
    /// Since when it has been more than half the bound behind.
    behind_since: Option<Instant>,
    /// When it last reported reading more, or was last seen keeping up: a member behind
    /// that reads nothing for [`SLOW_GRACE`] is dropped even while the whole room is behind.
    progressed: Instant,
    /// Reported too slow: sent nothing more until the message server removes it.
    dropped: bool,
}

impl Member {
    fn new(handler: RemoteRef<ChatClient>) -> Self {
        Self {
            handler,
            sent: 0,
            read: 0,
            behind_since: None,
            progressed: Instant::now(),
            dropped: false,
        }
    }

    fn behind(&self) -> u64 {
        self.sent.saturating_sub(self.read)
    }
}

/// A room: its members, the numbering of its lines, the acknowledgements it holds back.
pub struct RoomServer {
    args: RoomArgs,
    /// This incarnation, random: members tell a restarted room's lines from its
    /// predecessor's.
    epoch: u64,
    /// The last line's number.
    last: u64,
    members: BTreeMap<Nick, Member>,
    /// Acknowledgements held back while readers are behind.
    held: VecDeque<HeldAck>,
    /// How many of them are each sender's. A client waits with at most [`WINDOW`] lines in
    /// flight, so holding more of one sender's slows nobody: a hand-made client that does
    /// not wait gets its oldest answers back instead of growing this queue.
    held_by: HashMap<Nick, usize>,
}

/// An acknowledgement held back: line `seq` of `nick`, placed `at`, answered to `handler`.
struct HeldAck {
    nick: Nick,
    handler: RemoteRef<ChatClient>,
    seq: Seq,
    at: Placed,
}

impl HeldAck {
    fn send(self) {
        self.handler.cast(Ack {
            seq: self.seq,
            placed: Some(self.at),
        });
    }
}

impl RoomServer {
    fn nicks(&self) -> Vec<Nick> {
        self.members.keys().cloned().collect()
    }

    fn here(&self) -> Placed {
        Placed {
            epoch: self.epoch,
            seq: self.last,
        }
    }

    /// Tells the members here (all but `except`) and the room's members on other servers.
    fn announce(&self, except: &Nick, text: String) {
        (self.args.relay)(Relay::Notice {
            room: self.args.room.clone(),
            text: text.clone(),
        });
        self.tell_others(except, Notice(text).into());
    }

    /// Places a line a member on another server said, and sends it to every member here.
    fn place_relayed(&mut self, from: Nick, text: String, session: u64, sent: Seq) {
        self.last += 1;
        let at = self.here();
        let cost = line_cost(&from, &text);
        for member in self.members.values_mut().filter(|m| !m.dropped) {
            member.sent += cost;
        }
        let line = Said {
            from,
            text,
            at,
            session,
            sent,
        };
        let live = self.members.values().filter(|m| !m.dropped);
        RemoteRef::cast_all(live.map(|m| &m.handler), &line.into());
        self.check();
    }

    fn tell_others(&self, except: &Nick, message: ToClient) {
        let others = self
            .members
            .iter()
            .filter(|(nick, member)| *nick != except && !member.dropped)
            .map(|(_, member)| &member.handler);
        RemoteRef::cast_all(others, &message);
    }

    /// Places a line, sends it to the others and acknowledges it (or holds the
    /// acknowledgement back while readers are behind).
    fn say(
        &mut self,
        Say {
            from,
            text,
            session,
            sent,
            handler: sender,
        }: Say,
    ) {
        self.last += 1;
        let at = self.here();
        let cost = line_cost(&from, &text);
        for (nick, member) in &mut self.members {
            if *nick != from && !member.dropped {
                member.sent += cost;
            }
        }
        (self.args.relay)(Relay::Line {
            room: self.args.room.clone(),
            from: from.clone(),
            text: text.clone(),
            session,
            sent,
        });
        let line = Said {
            from: from.clone(),
            text,
            at,
            session,
            sent,
        };
        self.tell_others(&from, line.into());
        let theirs = self.held_by.entry(from.clone()).or_default();
        *theirs += 1;
        if *theirs > WINDOW {
            *theirs -= 1;
            let oldest = self.held.iter().position(|ack| ack.nick == from);
            if let Some(ack) = oldest.and_then(|at| self.held.remove(at)) {
                ack.send();
            }
        }
        self.held.push_back(HeldAck {
            nick: from,
            handler: sender,
            seq: sent,
            at,
        });
        self.check();
    }

    /// Drops members too far behind (telling the message server) and releases held
    /// acknowledgements once most readers keep up.
    fn check(&mut self) {
        let now = Instant::now();
        let (max, soft) = (self.args.max_backlog, self.args.soft_backlog());
        // When most readers are behind, the server is the bottleneck, not them: only the
        // hard bound applies (and the held answers keep everyone under it).
        let pressed = self.pressed();
        let mut too_slow = Vec::new();
        for (nick, member) in self.members.iter_mut().filter(|(_, m)| !m.dropped) {
            let behind = member.behind();
            if behind <= soft {
                // Keeping up counts as progress: the stall clock starts when a member
                // falls behind, not when it last had to report (a member that entered
                // long ago and had little to read has not reported for as long).
                member.behind_since = None;
                member.progressed = now;
                continue;
            }
            let since = *member.behind_since.get_or_insert(now);
            let stalled = now.duration_since(member.progressed) > SLOW_GRACE;
            if behind > max || stalled || (!pressed && now.duration_since(since) > SLOW_GRACE) {
                member.dropped = true;
                too_slow.push((nick.clone(), behind));
            }
        }
        for (nick, behind) in too_slow {
            tracing::info!(
                room = self.args.room.as_str(),
                nick = nick.as_str(),
                behind,
                "member too slow; dropped"
            );
            (self.args.report)(RoomEvent::TooSlow { nick, behind });
        }
        if !self.pressed() {
            self.held.drain(..).for_each(HeldAck::send);
            self.held_by.clear();
        }
    }

    /// Whether readers as a whole are behind (at least two, and a quarter of the room):
    /// the server cannot write as fast as the room speaks, so senders must wait. One slow
    /// reader is not the room's problem but its own.
    fn pressed(&self) -> bool {
        let soft = self.args.soft_backlog();
        let live = self.members.values().filter(|m| !m.dropped);
        let behind = live.clone().filter(|m| m.behind() > soft).count();
        behind >= 2 && behind * 4 > live.count()
    }
}

impl Init<RoomArgs> for RoomServer {
    async fn init(args: RoomArgs, me: &Context<Self>) -> otp::Result<Self> {
        // Reported first: the message server must have rewound the members' requests
        // before their resends (asked for below) reach it, and its mailbox keeps order.
        (args.report)(RoomEvent::Started {
            room: args.room.clone(),
            server: me.server().clone(),
        });
        me.send_interval(CHECK_EVERY, || RoomInfo::Check);
        let members: BTreeMap<Nick, Member> = (args.members)(&args.room)
            .into_iter()
            .map(|(nick, handler)| (nick, Member::new(handler)))
            .collect();
        let epoch = crate::random::number();
        // Members already here were in the room's predecessor: what it had not placed
        // went with it, so they send again every line not acknowledged yet.
        let restarted = RoomRestarted {
            room: args.room.clone(),
            epoch,
        };
        RemoteRef::cast_all(members.values().map(|m| &m.handler), &restarted.into());
        Ok(RoomServer {
            args,
            epoch,
            last: 0,
            members,
            held: VecDeque::new(),
            held_by: HashMap::new(),
        })
    }
}

impl GenServer for RoomServer {
    type Protocol = ChatRoom;

    async fn handle_call(&mut self, call: RoomCall<'_>, _me: &Context<Self>) -> otp::Result {
        let RoomCall::Nicks(Nicks, caller) = call;
        Ok(caller.reply(self.nicks()))
    }

    async fn handle_cast(&mut self, cast: RoomCast, _me: &Context<Self>) -> otp::Result {
        match cast {
            RoomCast::Enter(Enter {
                nick,
                handler,
                greet,
                then,
            }) => {
                let new = match self.members.get_mut(&nick) {
                    Some(member) if !greet => {
                        member.handler = handler.clone();
                        false
                    }
                    _ => self
                        .members
                        .insert(nick.clone(), Member::new(handler.clone()))
                        .is_none(),
                };
                if greet {
                    let mut users = self.nicks();
                    users.extend((self.args.elsewhere)(&self.args.room));
                    users.sort();
                    users.dedup();
                    handler.cast(Joined {
                        room: self.args.room.clone(),
                        users,
                        at: self.here(),
                    });
                    if new {
                        self.announce(&nick, format!("**{} has joined**", nick.as_str()));
                    }
                }
                if let Some(notice) = then {
                    handler.cast(Notice(notice));
                }
            }
            RoomCast::Exit(Exit { nick, announce }) => {
                if self.members.remove(&nick).is_some() && announce {
                    self.announce(&nick, format!("**{} has left**", nick.as_str()));
                }
                // Holding a leaver's answers slows nobody here any more; held, they would
                // go if this room crashed, leaving lines it placed unanswered for good.
                let (leaver, others) = std::mem::take(&mut self.held)
                    .into_iter()
                    .partition::<VecDeque<_>, _>(|ack| ack.nick == nick);
                self.held = others;
                self.held_by.remove(&nick);
                leaver.into_iter().for_each(HeldAck::send);
                self.check();
            }
            RoomCast::Say(say) => self.say(say),
            RoomCast::RelayedLine(RelayedLine {
                from,
                text,
                session,
                sent,
            }) => self.place_relayed(from, text, session, sent),
            RoomCast::RelayedNotice(RelayedNotice(text)) => {
                let live = self.members.values().filter(|m| !m.dropped);
                RemoteRef::cast_all(live.map(|m| &m.handler), &Notice(text).into());
            }
            RoomCast::Read(Read { nick, epoch, bytes }) => {
                if let (Some(member), true) = (self.members.get_mut(&nick), epoch == self.epoch) {
                    // Nobody reads more than was sent: a forged report cannot hide a backlog.
                    let read = bytes.min(member.sent);
                    if read > member.read {
                        member.read = read;
                        member.progressed = Instant::now();
                    }
                }
                self.check();
            }
        }
        Ok(Flow::Continue)
    }

    async fn handle_info(&mut self, info: Info<RoomInfo>, _me: &Context<Self>) -> otp::Result {
        match info {
            #[cfg(feature = "fault-hook")]
            Info::Message(RoomInfo::Fault) => Err("fault injected (room)".into()),
            #[cfg(feature = "fault-hook")]
            Info::Message(RoomInfo::Stall(pause, began)) => {
                let _ = began.send(());
                tokio::time::sleep(pause).await;
                Ok(Flow::Continue)
            }
            Info::Message(RoomInfo::Check) => {
                self.check();
                Ok(Flow::Continue)
            }
            _ => Ok(Flow::Continue),
        }
    }
}
