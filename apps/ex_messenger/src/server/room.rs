//! A chat room: one GenServer per room, under the `rooms` dynamic supervisor (the seed's
//! "each channel is a GenServer, restarted by a supervisor").
//!
//! The room owns the fan-out: it holds a handle to each member's message handler and
//! casts every line to all but its sender. Who is in which room is decided by the message
//! server; after a crash a room asks it for its members again ([`Reset`](RoomCast::Reset)).

use std::collections::BTreeMap;

use otp::node::RemoteRef;
use otp::{BoxError, CallResponse, Context, Flow, GenServer, Info, ReplyTo, ServerRef};

use crate::client::MessageHandler;
use crate::names::{Nick, Room};
use crate::protocol::{ToClient, MESSAGE_SERVER};
use crate::server::message_server::{MessageServer, ServerInfo};

/// The registered name of a room's GenServer.
pub fn registered_name(room: &Room) -> String {
    format!("ex_messenger.room/{}", room.as_str())
}

/// The room behaviour; `Args` is the room's name.
pub struct RoomServer;

/// A member: where their lines go.
pub type Member = (Nick, RemoteRef<MessageHandler>);

/// Casts from the message server.
pub enum RoomCast {
    /// `nick` is in the room now. `greet`: tell them `Joined` with the user list and tell
    /// the others; a silent enter restores a member after a restart.
    Enter {
        nick: Nick,
        handler: RemoteRef<MessageHandler>,
        greet: bool,
    },
    /// `nick` is out; `announce` tells the others.
    Exit { nick: Nick, announce: bool },
    /// `from` says `text` (already checked and cleaned).
    Say { from: Nick, text: String },
    /// The whole membership, after this room restarted.
    Reset(Vec<Member>),
}

/// Only for the test fault hook.
pub enum RoomInfo {
    /// Crash now.
    Fault,
}

/// A room's state.
pub struct RoomState {
    room: Room,
    members: BTreeMap<Nick, RemoteRef<MessageHandler>>,
}

impl RoomState {
    fn nicks(&self) -> Vec<Nick> {
        self.members.keys().cloned().collect()
    }

    fn tell_others(&self, except: &Nick, message: ToClient) {
        let others = self
            .members
            .iter()
            .filter(|(nick, _)| *nick != except)
            .map(|(_, handler)| handler);
        RemoteRef::cast_all(others, &message);
    }
}

impl GenServer for RoomServer {
    type Args = Room;
    type State = RoomState;
    type Call = ();
    /// The members' nicks.
    type Reply = Vec<Nick>;
    type Cast = RoomCast;
    type Info = RoomInfo;

    async fn init(&self, _me: &Context<Self>, room: Room) -> Result<RoomState, BoxError> {
        // A room (re)starting asks for its members. By info, not call: the message server
        // may be waiting for this very start, and the answer comes as a `Reset` cast.
        if let Some(server) = ServerRef::<MessageServer>::whereis(MESSAGE_SERVER) {
            server.send_info(ServerInfo::RoomStarted(room.clone()));
        }
        Ok(RoomState {
            room,
            members: BTreeMap::new(),
        })
    }

    async fn handle_call(
        &self,
        _me: &Context<Self>,
        _request: (),
        _from: &mut ReplyTo<Vec<Nick>>,
        state: &mut RoomState,
    ) -> Result<CallResponse<Vec<Nick>>, BoxError> {
        Ok(CallResponse::Reply(state.nicks()))
    }

    async fn handle_cast(
        &self,
        _me: &Context<Self>,
        message: RoomCast,
        state: &mut RoomState,
    ) -> Result<Flow, BoxError> {
        match message {
            RoomCast::Enter {
                nick,
                handler,
                greet,
            } => {
                let new = state
                    .members
                    .insert(nick.clone(), handler.clone())
                    .is_none();
                if greet {
                    handler.cast(ToClient::Joined {
                        room: state.room.clone(),
                        users: state.nicks(),
                    });
                    if new {
                        let notice = format!("**{} has joined**", nick.as_str());
                        state.tell_others(&nick, ToClient::Notice(notice));
                    }
                }
            }
            RoomCast::Exit { nick, announce } => {
                if state.members.remove(&nick).is_some() && announce {
                    let notice = format!("**{} has left**", nick.as_str());
                    state.tell_others(&nick, ToClient::Notice(notice));
                }
            }
            RoomCast::Say { from, text } => {
                let line = ToClient::Said {
                    from: from.clone(),
                    text,
                };
                state.tell_others(&from, line);
            }
            RoomCast::Reset(members) => state.members = members.into_iter().collect(),
        }
        Ok(Flow::Continue)
    }

    async fn handle_info(
        &self,
        _me: &Context<Self>,
        info: Info<RoomInfo>,
        _state: &mut RoomState,
    ) -> Result<Flow, BoxError> {
        match info {
            Info::Message(RoomInfo::Fault) => Err("fault injected (room)".into()),
            _ => Ok(Flow::Continue),
        }
    }
}
