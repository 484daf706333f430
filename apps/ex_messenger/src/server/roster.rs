//! Who is in which room on the cluster's other servers: a copy each server keeps, so that
//! a room's user list, `/users` and `/rooms` span the cluster without asking anyone.
//!
//! Written only by this server's relay, from what the other servers tell it: each sends
//! every change of its own users' seats, and its whole list when a server links to it (a
//! list replaces what was known of that server). A server lost takes its part with it.
//! Read by the message server and the rooms. Like [`Membership`](super::membership), it
//! outlives the processes that use it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use crate::names::{Nick, Room};

/// The shared record; clones share it.
#[derive(Clone, Default)]
pub struct Roster {
    /// Each other server's users, by its node name, with their rooms.
    servers: Arc<RwLock<HashMap<String, BTreeMap<Nick, Room>>>>,
}

impl Roster {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, BTreeMap<Nick, Room>>> {
        self.servers.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, BTreeMap<Nick, Room>>> {
        self.servers.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// `nick`, a user of `server`, is in `room` now (`None`: in none).
    pub(super) fn seat(&self, server: &str, nick: Nick, room: Option<Room>) {
        let mut servers = self.write();
        let seats = servers.entry(server.to_owned()).or_default();
        match room {
            Some(room) => seats.insert(nick, room),
            None => seats.remove(&nick),
        };
    }

    /// `server`'s users are these, and only these.
    pub(super) fn replace(&self, server: &str, seats: Vec<(Nick, Room)>) {
        self.write()
            .insert(server.to_owned(), seats.into_iter().collect());
    }

    /// `server` is gone, and its users with it.
    pub(super) fn forget(&self, server: &str) {
        self.write().remove(server);
    }

    /// Nothing known (a relay starting over: the others tell it again).
    pub(super) fn clear(&self) {
        self.write().clear();
    }

    /// The users in `room` on other servers.
    pub fn nicks(&self, room: &Room) -> Vec<Nick> {
        let servers = self.read();
        let seats = servers.values().flat_map(|seats| seats.iter());
        seats
            .filter(|(_, their)| *their == room)
            .map(|(nick, _)| nick.clone())
            .collect()
    }

    /// The server `nick` is a user of, if they sit in a room there.
    pub fn server_of(&self, nick: &Nick) -> Option<String> {
        let servers = self.read();
        let mut all = servers.iter();
        all.find(|(_, seats)| seats.contains_key(nick))
            .map(|(server, _)| server.clone())
    }

    /// Every room with users on other servers, with how many.
    pub fn rooms(&self) -> Vec<(Room, usize)> {
        let mut rooms: BTreeMap<Room, usize> = BTreeMap::new();
        for room in self.read().values().flat_map(|seats| seats.values()) {
            *rooms.entry(room.clone()).or_default() += 1;
        }
        rooms.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(name: &str) -> Nick {
        Nick::parse(name).unwrap()
    }

    #[test]
    fn seats_follow_changes_lists_and_lost_servers() {
        let roster = Roster::default();
        let dev = Room::parse("dev").unwrap();
        roster.seat("a", nick("alice"), Some(Room::lobby()));
        roster.seat("b", nick("bob"), Some(Room::lobby()));
        roster.seat("b", nick("bob"), Some(dev.clone()));
        assert_eq!(roster.nicks(&Room::lobby()), [nick("alice")]);
        assert_eq!(roster.server_of(&nick("bob")).as_deref(), Some("b"));
        assert_eq!(roster.rooms(), [(dev.clone(), 1), (Room::lobby(), 1)]);
        roster.replace("a", vec![(nick("carol"), dev.clone())]);
        let mut in_dev = roster.nicks(&dev);
        in_dev.sort();
        assert_eq!(in_dev, [nick("bob"), nick("carol")]);
        roster.seat("b", nick("bob"), None);
        roster.forget("a");
        assert!(roster.rooms().is_empty());
    }
}
