//! The rooms as the message server reaches them: the rooms' dynamic supervisor, and a typed
//! handle to each running room, so a line said costs one map lookup (no name to build and
//! look up in the registry).
//!
//! A room's handle is taken when the message server handles the room's start report
//! ([`Directory::started`]), after it has rewound its users' requests to what the new
//! room must place. So lines go only to incarnations whose start it has seen; a line for
//! a room whose new incarnation it has not seen yet waits, and the start asks for it
//! again. Who comes and goes may reach any running incarnation ([`Directory::running`]):
//! the membership record keeps them right (see [`super::membership`]).

use std::collections::HashMap;

use otp::gen_server::Init;
use otp::supervisor::{ChildSpec, DynamicSupervisorRef, SupervisorError};
use otp::ServerRef;

use super::room::{registered_name, ChatRoom, RoomArgs, RoomServer};
use crate::names::Room;
use crate::protocol::Refusal;

/// The rooms, started through their supervisor and reached through their handles.
pub struct Directory {
    supervisor: DynamicSupervisorRef,
    /// Each room's incarnation as last reported started (or found running when this
    /// message server started). One that is no longer alive is being restarted by the
    /// supervisor: a line for it waits, and no other is started meanwhile.
    known: HashMap<Room, ServerRef<ChatRoom>>,
    /// What every room is started with (its name set per room).
    template: RoomArgs,
}

/// Where a line for a room can go.
pub enum Lines<'a> {
    /// To this incarnation.
    To(&'a ServerRef<ChatRoom>),
    /// Nowhere yet: the room is between incarnations, or so new that its start report has
    /// not been handled. Its start asks the senders to send again.
    Wait,
    /// The room is not running (closed, or never opened).
    Closed,
}

/// A room asked for by someone entering it.
pub enum Opened {
    Running(ServerRef<ChatRoom>),
    /// Being restarted by its supervisor; it will read its members when it starts.
    Restarting,
}

impl Directory {
    /// The rooms running now: this message server (just started) has no requests to
    /// rewind, so every one of them may take lines.
    pub async fn load(
        supervisor: DynamicSupervisorRef,
        template: RoomArgs,
    ) -> Result<Self, SupervisorError> {
        let mut known = HashMap::new();
        for child in supervisor.which_children().await? {
            let room = Room::parse(&child.id).ok();
            let server = child.process.cell().cloned().and_then(ServerRef::from_cell);
            if let (Some(room), Some(server)) = (room, server) {
                known.insert(room, server);
            }
        }
        Ok(Self {
            supervisor,
            known,
            template,
        })
    }

    /// Where a line for `room` goes now.
    pub fn lines(&self, room: &Room) -> Lines<'_> {
        match self.known.get(room) {
            Some(server) if server.is_alive() => Lines::To(server),
            Some(_) => Lines::Wait,
            None if self.running(room).is_some() => Lines::Wait,
            None => Lines::Closed,
        }
    }

    /// The incarnation of `room` running now, its start report handled or not: for who
    /// comes and goes, which the membership record keeps right either way.
    pub fn running(&self, room: &Room) -> Option<ServerRef<ChatRoom>> {
        match self.known.get(room) {
            Some(server) if server.is_alive() => Some(server.clone()),
            _ => ServerRef::whereis(&registered_name(room)),
        }
    }

    /// `room` reports it (re)started as `server`: lines may go to it from now on (the
    /// caller rewinds its members' requests first). False for a report that comes after
    /// the incarnation already stopped again.
    pub fn started(&mut self, room: Room, server: ServerRef<ChatRoom>) -> bool {
        if !server.is_alive() {
            return false;
        }
        self.known.insert(room, server);
        true
    }

    /// The running `room`, started if it is not running. Lines wait for its start report.
    pub async fn open(&mut self, room: &Room) -> Result<Opened, Refusal> {
        if let Some(server) = self.running(room) {
            return Ok(Opened::Running(server));
        }
        if self.known.contains_key(room) {
            // Its supervisor is bringing it back: a second one would race it for the name.
            return Ok(Opened::Restarting);
        }
        let name = registered_name(room);
        let args = RoomArgs {
            room: room.clone(),
            ..self.template.clone()
        };
        let spec = ChildSpec::worker(room.as_str(), move |parent| {
            parent.start_named(name.clone(), RoomServer::with_args(args.clone()))
        });
        let unavailable = || Refusal::RoomUnavailable { room: room.clone() };
        let cell = self
            .supervisor
            .start_child(spec)
            .await
            .map_err(|error| match error {
                SupervisorError::MaxChildren(limit) => Refusal::RoomLimit { limit },
                error => {
                    tracing::warn!(room = room.as_str(), %error, "could not open a room");
                    unavailable()
                }
            })?;
        // A room never ignores its start: no process means no room.
        let server = cell
            .and_then(ServerRef::from_cell)
            .ok_or_else(unavailable)?;
        Ok(Opened::Running(server))
    }

    /// Stops `room` (empty, not the lobby). In order: a GenServer is asked to stop after
    /// what it was sent before, so a line said just before its last member left is still
    /// placed and answered. A room between incarnations is left to come back: its start
    /// finds it empty and closes it then.
    pub async fn close(&mut self, room: &Room) {
        let Some(server) = self.running(room) else {
            return;
        };
        self.known.remove(room);
        if let Err(error) = self.supervisor.terminate_child(server.id()).await {
            tracing::warn!(room = room.as_str(), %error, "could not close an empty room");
        }
    }
}
