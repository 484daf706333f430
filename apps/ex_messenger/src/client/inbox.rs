//! What the client has received: lines already shown (a line sent again after an outage
//! is shown once), and how much of its room's traffic it has read, which it reports so the
//! server knows how far behind it is.

use std::collections::HashMap;

use crate::names::{Nick, Room};
use crate::protocol::{line_cost, Placed, Seq};

/// Report what has been read after this many bytes: often enough that the server's count
/// of a reader's backlog is never more than this stale.
pub const REPORT_EVERY: u64 = 64 * 1024;

/// Senders remembered for dropping repeats, at most; the least recently heard go first.
const SENDERS: usize = 10_000;

/// How a line came: said in a room (whichever: a user is in one room at a time), or
/// privately. A sender's lines arrive in order on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Room,
    Private,
}

/// The receiving side of a session.
#[derive(Debug, Default)]
pub struct Inbox {
    /// The last request number shown per sender session and channel, and when it was
    /// last heard (a counter), to forget the quietest first.
    shown: HashMap<(Channel, Nick, u64), (Seq, u64)>,
    heard: u64,
    /// The room being read: its incarnation, bytes read, bytes reported.
    reading: Option<Reading>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Reading {
    room: Room,
    epoch: u64,
    read: u64,
    reported: u64,
}

/// A report to send: `bytes` of `room`'s incarnation `epoch` have been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub room: Room,
    pub epoch: u64,
    pub bytes: u64,
}

impl Inbox {
    /// Whether the line numbered `sent` in `from`'s session `session` is new on `channel`
    /// (and so to be shown); remembers it.
    pub fn is_new(&mut self, channel: Channel, from: &Nick, session: u64, sent: Seq) -> bool {
        self.heard += 1;
        let heard = self.heard;
        let key = (channel, from.clone(), session);
        if let Some((last, when)) = self.shown.get_mut(&key) {
            *when = heard;
            if sent <= *last {
                return false;
            }
            *last = sent;
            return true;
        }
        if self.shown.len() >= SENDERS {
            if let Some(quietest) = self
                .shown
                .iter()
                .min_by_key(|(_, (_, when))| *when)
                .map(|(key, _)| key.clone())
            {
                self.shown.remove(&quietest);
            }
        }
        self.shown.insert(key, (sent, heard));
        true
    }

    /// Entered `room` (or it restarted) as incarnation `epoch`: counting starts again.
    pub fn entered(&mut self, room: &Room, epoch: u64) {
        self.reading = Some(Reading {
            room: room.clone(),
            epoch,
            read: 0,
            reported: 0,
        });
    }

    /// Counts a line read from the room at `at`; returns a report when one is due. Lines
    /// of another room or incarnation (still arriving after a move) do not count.
    pub fn read(&mut self, at: Placed, from: &Nick, text: &str) -> Option<Report> {
        let reading = self.reading.as_mut().filter(|r| r.epoch == at.epoch)?;
        reading.read += line_cost(from, text);
        if reading.read - reading.reported < REPORT_EVERY {
            return None;
        }
        reading.reported = reading.read;
        Some(Report {
            room: reading.room.clone(),
            epoch: reading.epoch,
            bytes: reading.read,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(name: &str) -> Nick {
        Nick::parse(name).unwrap()
    }

    #[test]
    fn a_line_sent_twice_is_new_once_per_channel() {
        let mut inbox = Inbox::default();
        let lobby = Channel::Room;
        assert!(inbox.is_new(lobby, &nick("alice"), 7, 1));
        assert!(inbox.is_new(lobby, &nick("alice"), 7, 2));
        assert!(!inbox.is_new(lobby, &nick("alice"), 7, 2), "resent");
        assert!(!inbox.is_new(lobby, &nick("alice"), 7, 1), "resent");
        // Another session of the same nick, or another channel, counts apart.
        assert!(inbox.is_new(lobby, &nick("alice"), 8, 1));
        assert!(inbox.is_new(Channel::Private, &nick("alice"), 7, 2));
        assert!(inbox.is_new(lobby, &nick("bob"), 7, 1));
    }

    #[test]
    fn reading_is_reported_every_so_often_and_counts_again_in_a_new_incarnation() {
        let mut inbox = Inbox::default();
        let room = Room::lobby();
        inbox.entered(&room, 1);
        let text = "x".repeat(1000);
        let from = nick("bob");
        let cost = line_cost(&from, &text);
        let mut reports = Vec::new();
        for seq in 1..=200 {
            if let Some(report) = inbox.read(Placed { epoch: 1, seq }, &from, &text) {
                reports.push(report.bytes);
            }
        }
        assert_eq!(reports.len() as u64, 200 * cost / REPORT_EVERY);
        assert!(reports.iter().all(|bytes| bytes % cost == 0));
        // Lines of another incarnation do not count.
        assert!((1..=100).all(|seq| inbox.read(Placed { epoch: 9, seq }, &from, &text).is_none()));
        // The room restarted: a new count, from zero.
        inbox.entered(&room, 2);
        let report = (1..=100)
            .find_map(|seq| inbox.read(Placed { epoch: 2, seq }, &from, &text))
            .unwrap();
        assert_eq!(report.epoch, 2);
        assert!(report.bytes >= REPORT_EVERY && report.bytes < REPORT_EVERY + cost);
    }

    #[test]
    fn the_quietest_senders_are_forgotten_first() {
        let mut inbox = Inbox::default();
        let alice = nick("alice");
        for session in 0..SENDERS as u64 {
            inbox.is_new(Channel::Private, &alice, session, 1);
        }
        // Session 0 is heard again, so session 1 is the quietest.
        assert!(!inbox.is_new(Channel::Private, &alice, 0, 1));
        assert!(inbox.is_new(Channel::Private, &alice, SENDERS as u64, 1));
        assert_eq!(inbox.shown.len(), SENDERS);
        assert!(!inbox.is_new(Channel::Private, &alice, 0, 1), "still known");
        assert!(inbox.is_new(Channel::Private, &alice, 1, 1), "forgotten");
    }
}
