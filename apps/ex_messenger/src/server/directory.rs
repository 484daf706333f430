//! The rooms as the message server reaches them: the rooms' dynamic supervisor, and a typed
//! handle to each running room, so a line said costs one map lookup (no name to build and
//! look up in the registry).
//!
//! A room's handle is taken when the message server handles the room's start report
//! ([`Directory::started`]): only then has it rewound its users' requests to what the
//! new room must place. So lines go only to incarnations whose start it has seen; a line
//! for a room whose new incarnation it has not seen yet waits for the members' resend.
//! Who comes and goes may reach any running incarnation ([`Directory::running`]): the
//! membership record keeps them right (see [`super::membership`]).

use std::collections::HashMap;

use otp::supervisor::{ChildSpec, DynamicSupervisorRef, SupervisorError};
use otp::ServerRef;

use super::room::{registered_name, RoomArgs, RoomServer};
use crate::names::Room;
use crate::protocol::Refusal;

/// The rooms, started through their supervisor and reached through their handles.
pub struct Directory {
    supervisor: DynamicSupervisorRef,
    /// The running incarnations whose start the message server has handled.
    started: HashMap<Room, ServerRef<RoomServer>>,
    /// What every room is started with (its name set per room).
    template: RoomArgs,
}

impl Directory {
    /// The rooms running now: this message server (just started) has no requests to
    /// rewind, so every one of them may take lines.
    pub async fn load(
        supervisor: DynamicSupervisorRef,
        template: RoomArgs,
    ) -> Result<Self, SupervisorError> {
        let mut started = HashMap::new();
        for child in supervisor.which_children().await? {
            let room = Room::parse(&child.id).ok();
            let server = child.process.cell().cloned().and_then(ServerRef::from_cell);
            if let (Some(room), Some(server)) = (room, server) {
                started.insert(room, server);
            }
        }
        Ok(Self {
            supervisor,
            started,
            template,
        })
    }

    /// The room that takes lines: the incarnation whose start was handled, while it runs.
    pub fn for_lines(&self, room: &Room) -> Option<&ServerRef<RoomServer>> {
        self.started.get(room).filter(|server| server.is_alive())
    }

    /// The running incarnation of `room`, its start handled or not.
    pub fn running(&self, room: &Room) -> Option<ServerRef<RoomServer>> {
        match self.for_lines(room) {
            Some(server) => Some(server.clone()),
            None => ServerRef::whereis(&registered_name(room)),
        }
    }

    /// `room` (re)started as `server`, and the message server has rewound for it; false
    /// if this is the incarnation it opened itself (nothing to rewind for).
    pub fn started(&mut self, room: Room, server: ServerRef<RoomServer>) -> bool {
        let id = server.id();
        self.started
            .insert(room, server)
            .is_none_or(|known| known.id() != id)
    }

    /// The running `room`, started if it is not running.
    pub async fn open(&mut self, room: &Room) -> Result<ServerRef<RoomServer>, Refusal> {
        if let Some(server) = self.running(room) {
            return Ok(server);
        }
        let name = registered_name(room);
        let args = RoomArgs {
            room: room.clone(),
            ..self.template.clone()
        };
        let spec = ChildSpec::worker(room.as_str(), move |parent| {
            parent.start_named(name.clone(), RoomServer, args.clone())
        });
        let unavailable = |why: String| Refusal::RoomUnavailable {
            room: room.clone(),
            why,
        };
        let cell = self
            .supervisor
            .start_child(spec)
            .await
            .map_err(|error| match error {
                SupervisorError::MaxChildren(limit) => Refusal::RoomLimit { limit },
                error => unavailable(error.to_string()),
            })?;
        let server =
            ServerRef::from_cell(cell).ok_or_else(|| unavailable("it did not start".into()))?;
        // New, so no request waits for it: it may take lines at once.
        self.started.insert(room.clone(), server.clone());
        Ok(server)
    }

    /// Stops `room` (empty, not the lobby). In order: a GenServer is asked to stop after
    /// what it was sent before, so a line said just before its last member left is still
    /// placed and answered.
    pub async fn close(&mut self, room: &Room) {
        let Some(server) = self.running(room) else {
            return;
        };
        self.started.remove(room);
        if let Err(error) = self.supervisor.terminate_child(server.id()).await {
            tracing::warn!(room = room.as_str(), %error, "could not close an empty room");
        }
    }
}
