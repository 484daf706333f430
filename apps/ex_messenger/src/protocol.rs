//! What travels between client nodes and the server, as JSON through `otp::node`.
//!
//! ractor_cluster messages carry no sender identity: any node that knows the cookie can
//! send anything to an exported server. So every request after joining carries a
//! [`Token`] that the server issued to the *node* the nick joined from (delivered to that
//! node's message handler only, see [`Challenge`]), and that only the server can mint.
//!
//! # Nothing accepted is lost
//! Each request a client makes has a number ([`Seq`]) in its client session. The server
//! answers every one: [`Ack`] once done (for a line said in a room: once the room has sent
//! it to every member, with the line's place in the room), or [`Refused`] with the reason.
//! A client keeps what is unanswered and sends it again after any outage (a lost link, a
//! restarted message server or room), so a line is never lost between client and room; it
//! may then arrive twice, and receivers drop what they have already shown ([`Said`]
//! carries the sender's session and number). Rooms number their lines ([`Placed`]); each
//! member reports how much it has read ([`Delivered`]), which bounds what the server holds
//! for a slow reader.
//!
//! # Messages and answers
//! Each protocol ([`ChatServer`], [`ChatClient`]) is declared with `otp::protocol!`: every
//! message is a struct of its own ([`Join`], [`Said`], ...), and every call has its own
//! answer's type (a [`Join`] is answered `Result<(), NotJoined>`, a [`Quit`] `()`).

use serde::{Deserialize, Serialize};

use crate::names::{Nick, Room};

/// The registered (and exported) name of the server's message server.
pub const MESSAGE_SERVER: &str = "message_server";
/// The registered (and exported) name of each client node's message handler.
pub const MESSAGE_HANDLER: &str = "message_handler";

/// Requests a client has sent and not had answered yet, at most: the server's mailboxes
/// hold at most this much of one user's traffic, and a user typing faster than the server
/// answers waits in the client's outbox instead. Small, because it also bounds what a
/// room's readers can fall behind once the room holds its answers back (every sender's
/// window, once): a person never has more than a few lines on their way.
pub const WINDOW: usize = 8;

/// A session's proof of identity: the nick and node it was issued for, and the server's
/// MAC over both. Anyone may read it; nobody but the server can make one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The nick the holder speaks as.
    pub nick: Nick,
    /// The client node the nick joined from: the server delivers to that node only.
    pub node: String,
    /// The client process's session (see [`Join`]): a message server that restores a
    /// session from its token after a crash knows it, so the lines it then passes on still
    /// name their sender's session.
    pub session: u64,
    /// HMAC-SHA256 of `nick` and `node` under the server's key, hex.
    pub mac: String,
}

impl std::fmt::Debug for Token {
    // The MAC is a credential: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({} on {})", self.nick.as_str(), self.node)
    }
}

/// A request's number in its client session: increasing, answered once, sent again after
/// an outage until answered.
pub type Seq = u64;

/// Where a line stands in its room: the room's incarnation (a restarted room starts a new
/// one) and the line's number in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    /// Random per room incarnation.
    pub epoch: u64,
    /// 1 for the incarnation's first line, then one more per line.
    pub seq: u64,
}

/// What a line costs a member's backlog, in bytes: the same sum on both sides, so the
/// server's count of what it sent and the member's count of what it read agree.
pub fn line_cost(from: &Nick, text: &str) -> u64 {
    (from.as_str().len() + text.len() + 48) as u64
}

otp::protocol! {
    /// What the message server answers: all a client needs to reach it
    /// (`RemoteRef<ChatServer>`), without the server's code. Its casts are everything a
    /// joined user does.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub ChatServer;
    calls ServerCall {
        /// Join as `nick` from the client node `node`, into `room` (`None`: connected, in
        /// no room, as after `/leave`). `session` is random per client process: with
        /// [`Seq`], it names each line for receivers to drop what they have already shown.
        /// With a valid `resume` token (after a reconnect) the session continues; otherwise
        /// the server sends a [`Challenge`] to `node`'s message handler, which answers with
        /// [`Confirm`]. Accepted: a [`Joined`] (or first a challenge) follows.
        Join {
            nick: Nick,
            node: String,
            session: u64,
            room: Option<Room>,
            resume: Option<Token>,
        } -> Result<(), NotJoined>,
        /// Leave the chat for good (`/quit`); answered once the room has been told.
        Quit { token: Token } -> (),
    }
    casts ServerCast {
        /// The answer to a challenge: proves the joining node received the token.
        Confirm { token: Token },
        /// Request `seq` from the holder of `token`. `room` is where the client believes it
        /// is; the server uses it only to restore a session it lost in a restart. `since` is
        /// the client's oldest request not answered yet when this one was sent: everything
        /// before it was handled. The server handles a client's requests in order, without
        /// gaps: one that overtook requests lost in a crash is dropped and the client asked
        /// to send again from the first missing one ([`Resend`]).
        Submit {
            token: Token,
            room: Option<Room>,
            seq: Seq,
            since: Seq,
            request: Request,
        },
        /// The holder of `token` has read `bytes` (by [`line_cost`]) of what `room`'s
        /// incarnation `epoch` sent it since it entered.
        Delivered {
            token: Token,
            room: Room,
            epoch: u64,
            bytes: u64,
        },
    }
}

/// Why a [`Join`] was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotJoined {
    /// Refused, and why.
    Refused(Refusal),
    /// This server does not see the joining node as connected yet (the two ends of a new
    /// connection learn of it at slightly different times): try again shortly.
    NotConnectedYet,
}

impl From<Refusal> for NotJoined {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// What a user asks the server for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Say `text` to the room.
    Say { text: String },
    /// Say `text` to `to` only.
    Pm { to: Nick, text: String },
    /// Join the default room (`None`) or the named one, leaving the current one.
    Join(Option<Room>),
    /// Leave the room, staying connected.
    Leave,
    /// Who is in my room.
    Users,
    /// Which rooms exist.
    Rooms,
}

otp::protocol! {
    /// What a client's message handler answers: all the server and its rooms need to reach
    /// it (`RemoteRef<ChatClient>`), without the client's code.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub ChatClient;
    calls ClientCall {
        /// The server is shutting down. A call, so that the server knows the notice
        /// arrived before its connections close.
        ServerStopping -> (),
    }
    casts ToClient {
        /// Prove you are the node this join came from: send this token back.
        Challenge { token: Token },
        /// In `room` now, with these users; lines after `at` are yours to receive.
        Joined {
            room: Room,
            users: Vec<Nick>,
            at: Placed,
        },
        /// `from` said `text` in the room: the room's line `at`, the sender's request
        /// `sent` in its session `session`.
        Said {
            from: Nick,
            text: String,
            at: Placed,
            session: u64,
            sent: Seq,
        },
        /// `from` said `text` to you only (its request `sent` in session `session`).
        Private {
            from: Nick,
            text: String,
            session: u64,
            sent: Seq,
        },
        /// Request `seq` is done; a line said in a room is `placed` there.
        Ack { seq: Seq, placed: Option<Placed> },
        /// A room event (`**alice has joined**`) or an answer (`/users`, `/rooms`), to
        /// show.
        Notice(String),
        /// A request (`seq`, if it was one) was refused, and why.
        Refused { seq: Option<Seq>, reason: Refusal },
        /// The room restarted as incarnation `epoch`, with you in it: lines not
        /// acknowledged yet may have been lost with its predecessor; send them again.
        RoomRestarted { room: Room, epoch: u64 },
        /// Requests from `from` on were lost (a crash) before later ones arrived: send
        /// every unanswered request again, in order.
        Resend { from: Seq },
        /// The join was refused after the challenge (another node confirmed the nick
        /// first).
        JoinRefused(Refusal),
        /// Out of the room, still connected.
        Left,
        /// The cluster's servers, where clients reach them (this one first): where to go
        /// if this one is lost.
        Servers(Vec<String>),
    }
}

/// Why the server refused a join or a request. Programs (and tests) match the variant or
/// its stable [`code`](Refusal::code), which is also what the wire carries (`{"code":
/// "nick_in_use", ..}`); people read its one line, `code: what happened and what to do`.
/// A code this build does not know (from a newer server) arrives as [`Refusal::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    /// The nick is someone else's.
    NickInUse { nick: Nick },
    /// Too many joins are waiting for their confirmation.
    ServerBusy,
    /// A `/pm` to a nick nobody has.
    ReceiverNotFound { nick: Nick },
    /// A line or `/users` from a user in no room.
    NotInChatroom,
    /// Over the flood limit: refused for this long.
    SlowDown { wait_ms: u64 },
    /// Over the size limit (the client checks too; a hand-made client may not).
    MessageTooLong { bytes: usize, limit: usize },
    /// Nothing left to say once control characters are removed.
    EmptyMessage,
    /// The server has as many rooms open as it allows.
    RoomLimit { limit: usize },
    /// The room a line was said in closed before the line reached it.
    RoomClosed { room: Room },
    /// The room could not be opened, or is restarting: try again in a moment.
    RoomUnavailable { room: Room },
    /// While the servers were apart, the nick was also taken on another server, by a user
    /// who had it first; this session ends.
    NickLost { nick: Nick },
    /// A refusal this build does not know.
    #[serde(other)]
    Other,
}

impl Refusal {
    /// The stable code: `nick_in_use`, `receiver_not_found`, ...
    pub fn code(&self) -> &'static str {
        match self {
            Self::NickInUse { .. } => "nick_in_use",
            Self::ServerBusy => "server_busy",
            Self::ReceiverNotFound { .. } => "receiver_not_found",
            Self::NotInChatroom => "not_in_chatroom",
            Self::SlowDown { .. } => "slow_down",
            Self::MessageTooLong { .. } => "message_too_long",
            Self::EmptyMessage => "empty_message",
            Self::RoomLimit { .. } => "room_limit",
            Self::RoomClosed { .. } => "room_closed",
            Self::RoomUnavailable { .. } => "room_unavailable",
            Self::NickLost { .. } => "nick_lost",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.code())?;
        match self {
            Self::NickInUse { nick } => write!(f, "{nick} is taken; pick another nickname"),
            Self::ServerBusy => {
                f.write_str("too many joins in progress; try again in a few seconds")
            }
            Self::ReceiverNotFound { nick } => write!(f, "nobody is called {nick}"),
            Self::NotInChatroom => f.write_str("you are not in a room; /join one"),
            Self::SlowDown { wait_ms } => write!(
                f,
                "you are sending too fast; requests are refused for {:.1} s",
                *wait_ms as f64 / 1000.0
            ),
            Self::MessageTooLong { bytes, limit } => {
                write!(
                    f,
                    "the message is {bytes} bytes; the limit is {limit} bytes"
                )
            }
            Self::EmptyMessage => f.write_str("nothing to say: the line is empty once cleaned"),
            Self::RoomLimit { limit } => write!(
                f,
                "the server has {limit} rooms open, its limit; join one of them (/rooms)"
            ),
            Self::RoomClosed { room } => {
                write!(
                    f,
                    "room {room} closed before your line reached it; not sent"
                )
            }
            Self::RoomUnavailable { room } => {
                write!(
                    f,
                    "room {room} cannot be entered right now; try again in a moment"
                )
            }
            Self::NickLost { nick } => write!(
                f,
                "while the servers were apart, {nick} was also taken on another server by a user who had it first; rejoin with another nickname"
            ),
            Self::Other => {
                f.write_str("the server refused, for a reason this client does not know; update it")
            }
        }
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_travels_as_its_code_and_an_unknown_code_is_other() {
        let nick = Nick::parse("bob").unwrap();
        let room = Room::lobby();
        let every = [
            Refusal::NickInUse { nick: nick.clone() },
            Refusal::ServerBusy,
            Refusal::ReceiverNotFound { nick },
            Refusal::NotInChatroom,
            Refusal::SlowDown { wait_ms: 900 },
            Refusal::MessageTooLong {
                bytes: 5000,
                limit: 4096,
            },
            Refusal::EmptyMessage,
            Refusal::RoomLimit { limit: 2 },
            Refusal::RoomClosed { room: room.clone() },
            Refusal::RoomUnavailable { room },
            Refusal::NickLost {
                nick: Nick::parse("carol").unwrap(),
            },
            Refusal::Other,
        ];
        for refusal in every {
            let wire = serde_json::to_value(&refusal).unwrap();
            assert_eq!(wire["code"], refusal.code(), "{wire}");
            assert!(refusal
                .to_string()
                .starts_with(&format!("{}: ", refusal.code())));
            assert_eq!(serde_json::from_value::<Refusal>(wire).unwrap(), refusal);
        }
        let newer = serde_json::json!({ "code": "moon_phase", "phase": "full" });
        assert_eq!(
            serde_json::from_value::<Refusal>(newer).unwrap(),
            Refusal::Other
        );
    }
}
