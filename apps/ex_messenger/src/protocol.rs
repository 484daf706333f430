//! What travels between client nodes and the server, as JSON through `otp::node`.
//!
//! ractor_cluster messages carry no sender identity: any node that knows the cookie can
//! send anything to an exported server. So every request after joining carries a
//! [`Token`] that the server issued to the *node* the nick joined from (delivered to that
//! node's message handler only, see [`ToClient::Challenge`]), and that only the server can
//! mint.

use serde::{Deserialize, Serialize};

use crate::names::{Nick, Room};

/// The registered (and exported) name of the server's message server.
pub const MESSAGE_SERVER: &str = "message_server";
/// The registered (and exported) name of each client node's message handler.
pub const MESSAGE_HANDLER: &str = "message_handler";

/// A session's proof of identity: the nick and node it was issued for, and the server's
/// MAC over both. Anyone may read it; nobody but the server can make one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The nick the holder speaks as.
    pub nick: Nick,
    /// The client node the nick joined from: the server delivers to that node only.
    pub node: String,
    /// HMAC-SHA256 of `nick` and `node` under the server's key, hex.
    pub mac: String,
}

impl std::fmt::Debug for Token {
    // The MAC is a credential: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({} on {})", self.nick.as_str(), self.node)
    }
}

/// Calls to the message server.
#[derive(Debug, Serialize, Deserialize)]
pub enum ServerCall {
    /// Join as `nick` from the client node `node`, into `room` (`None`: connected, in no
    /// room, as after `/leave`). With a valid `resume` token (after a reconnect) the session continues;
    /// otherwise the server sends a [`ToClient::Challenge`] to `node`'s message handler,
    /// which answers with [`ServerCast::Confirm`].
    Join {
        nick: Nick,
        node: String,
        room: Option<Room>,
        resume: Option<Token>,
    },
    /// Leave the chat for good (`/quit`); answered once the room has been told.
    Quit { token: Token },
}

/// The message server's answers.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum ServerReply {
    /// Join accepted; a [`ToClient::Joined`] (or first a challenge) follows.
    Accepted,
    /// Refused: the one-line reason to show (`nick_in_use: ...`).
    Refused(String),
    /// This server does not see the joining node as connected yet (the two ends of a new
    /// connection learn of it at slightly different times): try again shortly.
    NotConnectedYet,
    /// `Quit` done.
    Bye,
}

/// Casts to the message server: everything a joined user does.
#[derive(Debug, Serialize, Deserialize)]
pub enum ServerCast {
    /// The answer to a challenge: proves the joining node received the token.
    Confirm { token: Token },
    /// A request from the holder of `token`. `room` is where the client believes it is;
    /// the server uses it only to restore a session it lost in a restart.
    Request {
        token: Token,
        room: Option<Room>,
        request: Request,
    },
}

/// What a user asks the server for.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// What the server sends a client's message handler.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToClient {
    /// Prove you are the node this join came from: send this token back.
    Challenge { token: Token },
    /// In `room` now, with these users.
    Joined { room: Room, users: Vec<Nick> },
    /// `from` said `text` in the room.
    Said { from: Nick, text: String },
    /// `from` said `text` to you only.
    Private { from: Nick, text: String },
    /// A room event (`**alice has joined**`) or an answer (`/users`, `/rooms`), to show.
    Notice(String),
    /// A request was refused: the one-line reason to show.
    Refused(String),
    /// The join was refused after the challenge (another node confirmed the nick first).
    JoinRefused(String),
    /// Out of the room, still connected.
    Left,
    /// The server is shutting down.
    ServerStopping,
}
