//! Sessions: who has joined, from which node, with which token; the joins waiting for
//! their node to confirm; why users were disconnected, to tell them when they come back;
//! and where each user's requests stand ([`Order`]).
//!
//! Identity: a join names a nick and a node; the server sends the session token to that
//! node's message handler, and the user exists once the handler sends it back. Every later
//! request carries the token, whose MAC is checked here: a client cannot act as another
//! nick, whatever it sends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use otp::node::RemoteRef;

use super::keys::SessionKeys;
use crate::names::{Nick, Room};
use crate::protocol::{ChatClient, Seq, Token};
use crate::throttle::Throttle;

/// A nick as claimed from a node.
pub type Claim = (Nick, String);

/// Joins in progress at once, at most (each expires after its challenge timeout).
const MAX_PENDING: usize = 1024;

/// How long the reason a user was disconnected is kept for their return, and how many
/// such reasons at most.
const REMEMBER_REMOVALS: Duration = Duration::from_secs(600);
const MAX_REMOVALS: usize = 10_000;

/// A joined user.
pub struct User {
    pub node: String,
    /// The client process's session id (names its lines for receivers).
    pub session: u64,
    pub handler: RemoteRef<ChatClient>,
    pub throttle: Throttle,
    pub order: Order,
}

/// A join waiting for its node to confirm the token.
pub struct Pending {
    pub session: u64,
    pub room: Option<Room>,
    pub handler: RemoteRef<ChatClient>,
    /// Tells this claim from a later one of the same nick and node when it expires.
    pub since: Instant,
}

/// Every session of the message server.
pub struct Sessions {
    keys: SessionKeys,
    users: HashMap<Nick, User>,
    /// Joins waiting for their token to come back, by nick *and* node: a pending join
    /// holds no nick, so a client that cannot confirm (one claiming another's node)
    /// cannot keep anyone out. The first confirmed join of a nick wins.
    pending: HashMap<Claim, Pending>,
    /// Why users were disconnected by the server, to tell them when they come back.
    removed: HashMap<Claim, (String, Instant)>,
}

impl Sessions {
    pub fn new(keys: SessionKeys) -> Self {
        Self {
            keys,
            users: HashMap::new(),
            pending: HashMap::new(),
            removed: HashMap::new(),
        }
    }

    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    pub fn get(&self, nick: &Nick) -> Option<&User> {
        self.users.get(nick)
    }

    pub fn get_mut(&mut self, nick: &Nick) -> Option<&mut User> {
        self.users.get_mut(nick)
    }

    pub fn users(&self) -> impl Iterator<Item = (&Nick, &User)> {
        self.users.iter()
    }

    pub fn users_mut(&mut self) -> impl Iterator<Item = (&Nick, &mut User)> {
        self.users.iter_mut()
    }

    pub fn insert(&mut self, nick: Nick, user: User) -> Option<User> {
        self.users.insert(nick, user)
    }

    pub fn remove(&mut self, nick: &Nick) -> Option<User> {
        self.users.remove(nick)
    }

    /// The nick a token speaks for, if the token is genuine and its session is known
    /// (from the node it names).
    pub fn verified(&self, token: &Token) -> Option<Nick> {
        let user = self.users.get(&token.nick)?;
        (user.node == token.node && self.keys.verify(token)).then(|| token.nick.clone())
    }

    /// Whether a genuine token's session was lost (in a restart of the message server)
    /// and may be restored: nobody else holds its nick.
    pub fn restorable(&self, token: &Token) -> bool {
        self.keys.verify(token)
            && self
                .users
                .get(&token.nick)
                .is_none_or(|user| user.node == token.node)
    }

    /// Whether `nick` may join from `node`: not held from another node, nor (unless the
    /// session resumes) from this one.
    pub fn nick_free(&self, nick: &Nick, node: &str, resuming: bool) -> bool {
        match self.users.get(nick) {
            Some(user) => resuming && user.node == node,
            None => true,
        }
    }

    pub fn pending_full(&self) -> bool {
        self.pending.len() >= MAX_PENDING
    }

    pub fn await_confirmation(&mut self, claim: Claim, pending: Pending) {
        self.pending.insert(claim, pending);
    }

    /// The join waiting for this claim, taken.
    pub fn confirmed(&mut self, claim: &Claim) -> Option<Pending> {
        self.pending.remove(claim)
    }

    /// Forgets a claim whose challenge expired (unless a later one replaced it).
    pub fn expire(&mut self, claim: &Claim, since: Instant) -> bool {
        let expired = self.pending.get(claim).is_some_and(|p| p.since == since);
        if expired {
            self.pending.remove(claim);
        }
        expired
    }

    /// The users on `node`; its pending joins are forgotten.
    pub fn node_down(&mut self, node: &str) -> Vec<Nick> {
        self.pending.retain(|(_, from), _| from != node);
        self.users
            .iter()
            .filter(|(_, user)| user.node == node)
            .map(|(nick, _)| nick.clone())
            .collect()
    }

    /// Keeps why `claim` was disconnected, for when they come back.
    pub fn remember_removal(&mut self, claim: Claim, reason: String) {
        let now = Instant::now();
        self.removed
            .retain(|_, (_, when)| now.duration_since(*when) < REMEMBER_REMOVALS);
        if self.removed.len() < MAX_REMOVALS {
            self.removed.insert(claim, (reason, now));
        }
    }

    /// Why `claim` was last disconnected, if they were (told once).
    pub fn take_removal(&mut self, claim: &Claim) -> Option<String> {
        self.removed.remove(claim).map(|(reason, _)| reason)
    }
}

/// Where a user's requests stand. The server handles a client's requests in order,
/// without gaps: a request that overtook others lost in a crash waits for them (the client
/// sends them all again), a repeat is dropped.
#[derive(Default)]
pub struct Order {
    /// The request number expected next (`None`: not known yet, as for a session just
    /// joined or restored: its first request must be its oldest unanswered one).
    next: Option<Seq>,
    /// A resend has been asked for since the last request handled: ask once per gap.
    asked: bool,
    /// The first request after the one that moved the user into their room (`None`: they
    /// entered it on joining). When the room restarts, resends are taken from here on:
    /// older requests belonged to the room before, and must not be placed in this one.
    entered: Option<Seq>,
    /// The room the user left last, while lines they said there may still be unanswered.
    departed: Option<Departed>,
    /// A line that waits for the user's room to be back (it was between incarnations): the
    /// room's start asks the client to send it again.
    stalled: Option<Seq>,
}

/// A room a user left, and which of their requests went to it. If it restarts, lines it
/// had not placed went with it: those are taken again and placed there, not in the room
/// the user is in now (a line placed twice is shown once: receivers drop repeats).
struct Departed {
    room: Room,
    /// Requests `from..upto` were for that room.
    from: Seq,
    upto: Seq,
    /// The room restarted since the user left: resent lines of that span are placed again.
    restarted: bool,
}

/// What to do with a request, by its number.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// Its turn: handle it.
    Now,
    /// Handled before. `Some(room)`: a line said in a room the user has left since, which
    /// restarted before placing it: place it there again.
    Repeat(Option<Room>),
    /// It overtook requests that were lost; `Some(from)`: ask the client to send again
    /// from there (asked once per gap).
    Early(Option<Seq>),
}

impl Order {
    /// Request `seq`, sent when everything before `since` had been answered.
    pub fn take(&mut self, seq: Seq, since: Seq) -> Turn {
        if self.departed.as_ref().is_some_and(|d| since >= d.upto) {
            // Everything said in the room left before is answered.
            self.departed = None;
        }
        let expected = self.next.unwrap_or(0).max(since);
        if seq < expected {
            let again = self.departed.as_ref().and_then(|d| d.replaces(seq));
            return Turn::Repeat(again.cloned());
        }
        if seq > expected {
            self.next = Some(expected);
            let first = !std::mem::replace(&mut self.asked, true);
            return Turn::Early(first.then_some(expected));
        }
        self.next = Some(seq.saturating_add(1));
        self.asked = false;
        self.stalled = None;
        Turn::Now
    }

    /// Request `seq` could not be handled yet (its room is restarting): take it again
    /// when it comes back.
    pub fn again(&mut self, seq: Seq) {
        self.next = Some(seq);
        self.stalled.get_or_insert(seq);
    }

    /// Request `seq` moved the user out of `left` (and into another room, or none).
    pub fn moved(&mut self, seq: Seq, left: Option<Room>) {
        let from = self.entered.replace(seq.saturating_add(1));
        if let Some(room) = left {
            self.departed = Some(Departed {
                room,
                from: from.unwrap_or(0),
                upto: seq,
                restarted: false,
            });
        }
    }

    /// The user's room restarted: lines its predecessor had not placed come again, older
    /// than some sent since; accept them again from the oldest, back to the request that
    /// brought the user into this room (not before: those were for another room). Returns
    /// the line that waited for the room, if one did: the client must send it again (the
    /// room told only those who were members when it started).
    pub fn room_restarted(&mut self) -> Option<Seq> {
        self.next = self.entered;
        self.asked = false;
        self.stalled.take()
    }

    /// `room` restarted: if the user left it with lines unanswered, where to resend from.
    pub fn departed_room_restarted(&mut self, room: &Room) -> Option<Seq> {
        let departed = self.departed.as_mut().filter(|d| &d.room == room)?;
        departed.restarted = true;
        Some(departed.from)
    }
}

impl Departed {
    /// The room a resent line `seq` goes to again, if it was said there before a restart.
    fn replaces(&self, seq: Seq) -> Option<&Room> {
        (self.restarted && (self.from..self.upto).contains(&seq)).then_some(&self.room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_taken_in_order_once_and_a_gap_is_asked_for_once() {
        let mut order = Order::default();
        assert_eq!(order.take(0, 0), Turn::Now);
        assert_eq!(order.take(0, 0), Turn::Repeat(None));
        assert_eq!(order.take(3, 1), Turn::Early(Some(1)));
        assert_eq!(order.take(4, 1), Turn::Early(None), "asked once per gap");
        assert_eq!(order.take(1, 1), Turn::Now);
        assert_eq!(order.take(2, 1), Turn::Now);
        assert_eq!(order.take(3, 1), Turn::Now);
    }

    #[test]
    fn a_restarted_room_takes_lines_again_back_to_the_request_that_entered_it() {
        let mut order = Order::default();
        for seq in 0..3 {
            assert_eq!(order.take(seq, 0), Turn::Now);
        }
        order.moved(2, Some(Room::lobby())); // request 2 moved the user to another room
        for seq in 3..6 {
            assert_eq!(order.take(seq, 3), Turn::Now);
        }
        assert_eq!(order.room_restarted(), None);
        assert_eq!(
            order.take(3, 3),
            Turn::Now,
            "lines for this room come again"
        );
        assert_eq!(order.take(2, 2), Turn::Repeat(None), "not the move itself");
    }

    #[test]
    fn a_line_lost_with_a_room_left_since_goes_back_to_that_room() {
        let mut order = Order::default();
        for seq in 0..3 {
            assert_eq!(order.take(seq, 0), Turn::Now);
        }
        order.moved(2, Some(Room::lobby()));
        assert_eq!(order.departed_room_restarted(&Room::lobby()), Some(0));
        assert_eq!(order.take(1, 0), Turn::Repeat(Some(Room::lobby())));
        assert_eq!(order.take(3, 3), Turn::Now);
        assert_eq!(
            order.take(1, 3),
            Turn::Repeat(None),
            "answered since: forgotten"
        );
    }

    #[test]
    fn a_line_that_waited_for_its_room_is_asked_for_again_when_the_room_is_back() {
        let mut order = Order::default();
        assert_eq!(order.take(0, 0), Turn::Now);
        order.again(0); // its room was between incarnations
        assert_eq!(order.room_restarted(), Some(0));
        assert_eq!(order.room_restarted(), None, "asked for once");
        assert_eq!(order.take(0, 0), Turn::Now, "and taken when it comes");
    }
}
