//! Who is in which room: one record, written by the message server only and read by a room
//! when it starts, so a restarted room finds its members without asking anyone.
//!
//! Like an ETS table kept by a process that outlives the ones using it, it outlives both the
//! rooms and the message server: the server program creates it once and hands it to the
//! message server's arguments (the same on every restart), and the message server hands
//! rooms a reader. So neither a room's restart nor the message server's loses who was
//! where. Only the message server changes it (its writers are private to `server`).
//!
//! The message server changes a seat *before* it tells the room: a room that starts after
//! the change reads it here, one that started before gets the message. Either way the
//! room agrees with this record.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use otp::node::RemoteRef;

use super::room::Entrant;
use crate::names::{Nick, Room};
use crate::protocol::ChatClient;

/// The shared record; clones share it.
#[derive(Clone, Default)]
pub struct Membership {
    seats: Arc<RwLock<Seats>>,
}

#[derive(Default)]
struct Seats {
    /// Each room's members, and where their lines go.
    rooms: HashMap<Room, BTreeMap<Nick, RemoteRef<ChatClient>>>,
    /// Each seated nick's room.
    room_of: HashMap<Nick, Room>,
}

impl Membership {
    // Nothing panics while holding the lock, so a poisoned lock still holds a whole record.
    fn read(&self) -> RwLockReadGuard<'_, Seats> {
        self.seats.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Seats> {
        self.seats.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The room `nick` is in.
    pub fn room_of(&self, nick: &Nick) -> Option<Room> {
        self.read().room_of.get(nick).cloned()
    }

    /// `room`'s members, in nick order.
    pub fn members(&self, room: &Room) -> Vec<Entrant> {
        self.read()
            .rooms
            .get(room)
            .map_or_else(Vec::new, |members| {
                members
                    .iter()
                    .map(|(nick, handler)| (nick.clone(), handler.clone()))
                    .collect()
            })
    }

    /// `room`'s members' nicks, in order.
    pub fn nicks(&self, room: &Room) -> Vec<Nick> {
        self.read()
            .rooms
            .get(room)
            .map_or_else(Vec::new, |members| members.keys().cloned().collect())
    }

    pub fn is_empty(&self, room: &Room) -> bool {
        !self.read().rooms.contains_key(room)
    }

    /// Every room someone is in, with how many.
    pub fn rooms(&self) -> Vec<(Room, usize)> {
        self.read()
            .rooms
            .iter()
            .map(|(room, members)| (room.clone(), members.len()))
            .collect()
    }

    /// Every seated nick with their room.
    pub fn seats(&self) -> Vec<(Nick, Room)> {
        let seats = self.read();
        let all = seats.room_of.iter();
        all.map(|(nick, room)| (nick.clone(), room.clone()))
            .collect()
    }

    /// The seated nicks whose client runs on `node`.
    pub fn on_node(&self, node: &str) -> Vec<Nick> {
        self.seated(|handler| handler.node() == node)
    }

    /// The seated nicks whose client's node passes `keep`.
    pub fn seated(&self, keep: impl Fn(&RemoteRef<ChatClient>) -> bool) -> Vec<Nick> {
        let seats = self.read();
        seats
            .rooms
            .values()
            .flat_map(|members| members.iter())
            .filter(|(_, handler)| keep(handler))
            .map(|(nick, _)| nick.clone())
            .collect()
    }

    /// Seats `nick` in `room` (or seats them again, with this handler). The caller has
    /// taken them out of any other room first, telling that room.
    pub(super) fn seat(&self, nick: &Nick, room: &Room, handler: RemoteRef<ChatClient>) {
        let mut seats = self.write();
        let previous = seats.take(nick);
        debug_assert!(
            previous.is_none_or(|previous| &previous == room),
            "seated in two rooms"
        );
        seats
            .rooms
            .entry(room.clone())
            .or_default()
            .insert(nick.clone(), handler);
        seats.room_of.insert(nick.clone(), room.clone());
    }

    /// Takes `nick` out of their room; returns which.
    pub(super) fn unseat(&self, nick: &Nick) -> Option<Room> {
        self.write().take(nick)
    }
}

impl Seats {
    fn take(&mut self, nick: &Nick) -> Option<Room> {
        let room = self.room_of.remove(nick)?;
        if let Some(members) = self.rooms.get_mut(&room) {
            members.remove(nick);
            if members.is_empty() {
                self.rooms.remove(&room);
            }
        }
        Some(room)
    }
}
