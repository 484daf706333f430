//! What the user asked for that the server has not answered yet: numbered, sent a window at
//! a time, kept until answered, sent again after an outage. A line typed while the server
//! is away waits here and goes once the client is back.

use std::collections::VecDeque;

use crate::protocol::{Request, Seq};

use crate::protocol::WINDOW;

/// Requests waiting to be sent, at most (beyond the window); more are refused at once.
pub const WAITING: usize = 512;

/// The unanswered requests, in the order they were made.
#[derive(Debug, Default)]
pub struct Outbox {
    /// The number the next request gets (1 for the first).
    next: Seq,
    entries: VecDeque<(Seq, Request)>,
    /// How many entries, from the front, have been sent since the last resend.
    in_flight: usize,
}

/// The outbox is full: the request was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Outbox {
    /// Keeps `request` and gives it its number.
    pub fn push(&mut self, request: Request) -> Result<Seq, Full> {
        if self.entries.len() >= WINDOW + WAITING {
            return Err(Full);
        }
        self.next = self.next.max(1);
        let seq = self.next;
        self.next += 1;
        self.entries.push_back((seq, request));
        Ok(seq)
    }

    /// The requests to send now (within the window), marked as sent.
    pub fn take_sendable(&mut self) -> Vec<(Seq, Request)> {
        let upto = self.entries.len().min(WINDOW);
        let ready = self
            .entries
            .range(self.in_flight..upto)
            .cloned()
            .collect::<Vec<_>>();
        self.in_flight = upto;
        ready
    }

    /// Request `seq` was answered (done or refused): forget it. False if it was not here
    /// (an answer to a request sent twice).
    pub fn answered(&mut self, seq: Seq) -> bool {
        let Some(at) = self.entries.iter().position(|(s, _)| *s == seq) else {
            return false;
        };
        self.entries.remove(at);
        if at < self.in_flight {
            self.in_flight -= 1;
        }
        true
    }

    /// After an outage: everything unanswered goes again, in order.
    pub fn resend(&mut self) {
        self.in_flight = 0;
    }

    /// The oldest request not answered yet: everything before it was.
    pub fn oldest(&self) -> Option<Seq> {
        self.entries.front().map(|(seq, _)| *seq)
    }

    /// The numbers of the requests not answered yet, oldest first.
    pub fn seqs(&self) -> Vec<Seq> {
        self.entries.iter().map(|(seq, _)| *seq).collect()
    }

    /// Requests not answered yet (sent or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing waits for an answer.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn say(n: usize) -> Request {
        Request::Say {
            text: n.to_string(),
        }
    }

    fn seqs(sent: &[(Seq, Request)]) -> Vec<Seq> {
        sent.iter().map(|(seq, _)| *seq).collect()
    }

    #[test]
    fn a_window_at_a_time_and_more_as_answers_come() {
        let mut outbox = Outbox::default();
        for n in 0..WINDOW + 3 {
            assert_eq!(outbox.push(say(n)), Ok(n as Seq + 1));
        }
        assert_eq!(
            seqs(&outbox.take_sendable()),
            (1..=WINDOW as Seq).collect::<Vec<_>>()
        );
        assert!(outbox.take_sendable().is_empty(), "the window is full");
        assert!(outbox.answered(2));
        assert!(!outbox.answered(2), "answered once");
        assert_eq!(seqs(&outbox.take_sendable()), [WINDOW as Seq + 1]);
        assert_eq!(outbox.len(), WINDOW + 2);
    }

    #[test]
    fn after_an_outage_everything_unanswered_goes_again_in_order() {
        let mut outbox = Outbox::default();
        for n in 0..5 {
            outbox.push(say(n)).unwrap();
        }
        outbox.take_sendable();
        outbox.answered(1);
        outbox.answered(3);
        outbox.resend();
        assert_eq!(seqs(&outbox.take_sendable()), [2, 4, 5]);
        // A late answer to the first sending still counts.
        assert!(outbox.answered(4));
        outbox.push(say(6)).unwrap();
        assert_eq!(seqs(&outbox.take_sendable()), [6]);
    }

    #[test]
    fn a_full_outbox_refuses_instead_of_growing() {
        let mut outbox = Outbox::default();
        for n in 0..WINDOW + WAITING {
            outbox.push(say(n)).unwrap();
        }
        assert_eq!(outbox.push(say(0)), Err(Full));
        outbox.take_sendable();
        outbox.answered(1);
        assert!(outbox.push(say(0)).is_ok());
    }
}
