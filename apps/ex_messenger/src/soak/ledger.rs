//! The soak's bookkeeping, free of I/O: what one client saw (as a receiver and as a
//! sender), and the verdict over all clients.
//!
//! A room numbers its lines and sends each to every member in that order, so a receiver
//! can check its own deliveries by position: from the line it joined at, every later line
//! that is not its own must arrive, once, in order. A receiver's stay in a room is a
//! [`Span`]: it ends when the receiver is removed (then lines placed after the last one it
//! got are not owed: it was not there), when the room restarts, or when the soak ends
//! (then every line up to the room's last one is owed).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::protocol::{Placed, Seq};

/// How a span ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The receiver was removed (lost the server, dropped for slowness).
    Removed,
    /// The room restarted: everything its predecessor placed was sent before it died.
    Restarted,
    /// The soak ended with the receiver still there.
    Stayed,
}

impl End {
    fn code(self) -> &'static str {
        match self {
            End::Removed => "removed",
            End::Restarted => "restarted",
            End::Stayed => "stayed",
        }
    }

    fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "removed" => End::Removed,
            "restarted" => End::Restarted,
            "stayed" => End::Stayed,
            _ => return None,
        })
    }
}

/// A receiver's stay in one room incarnation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub epoch: u64,
    /// Lines after this one are owed.
    pub from: u64,
    /// The last line received (or own).
    pub last: u64,
    /// Positions skipped between `from` and `last` that are not the receiver's own.
    pub gaps: Vec<u64>,
    /// The receiver's own lines after `last` (not owed to it).
    pub own_after: Vec<u64>,
    pub end: End,
}

impl Span {
    /// One line of text: `SPAN <epoch> <from> <last> <end> <gaps> <own_after>`.
    pub fn encode(&self) -> String {
        format!(
            "SPAN {} {} {} {} {} {}",
            self.epoch,
            self.from,
            self.last,
            self.end.code(),
            list(&self.gaps),
            list(&self.own_after)
        )
    }

    /// The inverse of [`encode`](Self::encode).
    pub fn decode(line: &str) -> Option<Self> {
        let mut words = line.strip_prefix("SPAN ")?.split(' ');
        Some(Self {
            epoch: words.next()?.parse().ok()?,
            from: words.next()?.parse().ok()?,
            last: words.next()?.parse().ok()?,
            end: End::parse(words.next()?)?,
            gaps: unlist(words.next()?)?,
            own_after: unlist(words.next()?)?,
        })
    }
}

fn list(numbers: &[u64]) -> String {
    if numbers.is_empty() {
        return "-".into();
    }
    numbers
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn unlist(text: &str) -> Option<Vec<u64>> {
    if text == "-" {
        return Some(Vec::new());
    }
    text.split(',').map(|n| n.parse().ok()).collect()
}

/// What one client saw as a receiver.
#[derive(Debug, Default)]
pub struct Receipts {
    open: Option<Span>,
    /// Own lines' places, per incarnation.
    own: HashMap<u64, BTreeSet<u64>>,
    /// Spans ended, not yet reported.
    ended: Vec<Span>,
    /// The last shown request number per sender session: order.
    last_shown: HashMap<u64, Seq>,
    /// Every line shown, by sender session and number: repeats, and lines the client
    /// dropped as repeats that it had never shown.
    seen: HashSet<(u64, Seq)>,
    /// Lines shown, shown twice, shown out of their sender's order, and never shown
    /// because the client took them for repeats (lost to the user all the same).
    pub shown: u64,
    pub repeated: u64,
    pub disordered: u64,
    pub hidden: u64,
    /// The highest place seen per incarnation (own or received).
    pub highest: HashMap<u64, u64>,
}

impl Receipts {
    /// In the room from line `at` on (a join, or a rejoin).
    pub fn joined(&mut self, at: Placed) {
        match &mut self.open {
            // Still there (a quiet rejoin): the lines up to `at` came before this.
            Some(span) if span.epoch == at.epoch => self.advance(at.seq, false),
            _ => {
                self.end(End::Removed);
                self.open = Some(Span {
                    epoch: at.epoch,
                    from: at.seq,
                    last: at.seq,
                    gaps: Vec::new(),
                    own_after: Vec::new(),
                    end: End::Stayed,
                });
            }
        }
        self.note(at);
    }

    /// The room restarted as `epoch`, with this client in it from its first line.
    pub fn restarted(&mut self, epoch: u64) {
        self.end(End::Restarted);
        self.open = Some(Span {
            epoch,
            from: 0,
            last: 0,
            gaps: Vec::new(),
            own_after: Vec::new(),
            end: End::Stayed,
        });
    }

    /// Removed from the chat.
    pub fn removed(&mut self) {
        self.end(End::Removed);
    }

    /// A room line arrived (`shown`: new, not a repeat the client dropped).
    pub fn received(&mut self, at: Placed, session: u64, sent: Seq, shown: bool) {
        self.note(at);
        let new = self.seen.insert((session, sent));
        if shown {
            self.shown += 1;
            if !new {
                self.repeated += 1;
            } else if self
                .last_shown
                .get(&session)
                .is_some_and(|&last| last > sent)
            {
                self.disordered += 1;
            }
            let last = self.last_shown.entry(session).or_default();
            *last = (*last).max(sent);
        } else if new {
            self.hidden += 1;
        }
        if self.open.as_ref().is_some_and(|s| s.epoch == at.epoch) {
            self.advance(at.seq, true);
        }
    }

    /// One of this client's lines was placed at `at`.
    pub fn own(&mut self, at: Placed) {
        self.note(at);
        self.own.entry(at.epoch).or_default().insert(at.seq);
    }

    /// Ends the open span, if any, as `end`.
    pub fn end(&mut self, end: End) {
        let Some(mut span) = self.open.take() else {
            return;
        };
        span.end = end;
        if let Some(own) = self.own.get(&span.epoch) {
            span.gaps.retain(|gap| !own.contains(gap));
            span.own_after = own.range(span.last + 1..).copied().collect();
        }
        self.ended.push(span);
    }

    /// Spans ended since the last call.
    pub fn take_ended(&mut self) -> Vec<Span> {
        std::mem::take(&mut self.ended)
    }

    fn note(&mut self, at: Placed) {
        let highest = self.highest.entry(at.epoch).or_default();
        *highest = (*highest).max(at.seq);
    }

    /// The open span reached `seq`; what it skipped are gaps (unless they turn out to be
    /// own lines, whose acknowledgements may come later).
    fn advance(&mut self, seq: u64, exact: bool) {
        let Some(span) = &mut self.open else { return };
        if seq <= span.last {
            return;
        }
        let skipped = span.last + 1..if exact { seq } else { seq + 1 };
        span.gaps.extend(skipped);
        span.last = seq;
    }
}

/// The verdict over every client's report.
#[derive(Debug, Default)]
pub struct Verdict {
    /// The last place of each incarnation, over all clients.
    highest: HashMap<u64, u64>,
    /// Each ended span, with the client that reported it (for the failure report).
    spans: Vec<(String, Span)>,
}

impl Verdict {
    /// Takes one client's ended span.
    pub fn span(&mut self, client: String, span: Span) {
        self.spans.push((client, span));
    }

    /// Takes one client's highest place in an incarnation.
    pub fn highest(&mut self, epoch: u64, seq: u64) {
        let highest = self.highest.entry(epoch).or_default();
        *highest = (*highest).max(seq);
    }

    /// Lines owed to a receiver that never came: the gaps inside each span, and for spans
    /// that did not end with a removal, the room's lines after the last one received.
    pub fn lost(&self) -> u64 {
        self.lossy().map(|(_, _, lost)| lost).sum()
    }

    /// The spans that lost lines: who reported each, the span, and how many it lost.
    pub fn lossy(&self) -> impl Iterator<Item = (&str, &Span, u64)> {
        self.spans.iter().filter_map(|(client, span)| {
            let mut lost = span.gaps.len() as u64;
            if span.end != End::Removed {
                let last = self.highest.get(&span.epoch).copied().unwrap_or(0);
                let own: BTreeSet<u64> = span.own_after.iter().copied().collect();
                lost += (span.last + 1..=last).filter(|p| !own.contains(p)).count() as u64;
            }
            (lost > 0).then_some((client.as_str(), span, lost))
        })
    }

    /// Spans checked, by how they ended.
    pub fn spans_by_end(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for (_, span) in &self.spans {
            *counts.entry(span.end.code()).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(epoch: u64, seq: u64) -> Placed {
        Placed { epoch, seq }
    }

    #[test]
    fn every_line_after_joining_arrives_nothing_is_lost() {
        let mut receipts = Receipts::default();
        receipts.joined(at(1, 10));
        receipts.received(at(1, 11), 7, 1, true);
        receipts.own(at(1, 12));
        receipts.received(at(1, 13), 7, 2, true);
        receipts.end(End::Stayed);
        let mut verdict = Verdict::default();
        for span in receipts.take_ended() {
            verdict.span("a".into(), span);
        }
        verdict.highest(1, 13);
        assert_eq!(verdict.lost(), 0);
        assert_eq!(
            (receipts.shown, receipts.repeated, receipts.disordered),
            (2, 0, 0)
        );
    }

    #[test]
    fn a_skipped_line_and_a_missing_tail_are_lost_unless_removed() {
        let mut receipts = Receipts::default();
        receipts.joined(at(1, 0));
        receipts.received(at(1, 1), 7, 1, true);
        receipts.received(at(1, 3), 7, 3, true); // 2 skipped
        receipts.own(at(1, 5)); // own, after the last received
        receipts.end(End::Stayed);
        let stayed = receipts.take_ended().remove(0);
        assert_eq!(stayed.gaps, [2]);
        assert_eq!(stayed.own_after, [5]);
        let mut verdict = Verdict::default();
        verdict.span("a".into(), stayed.clone());
        verdict.highest(1, 6);
        // 2 skipped, 4 and 6 never came (5 is its own).
        assert_eq!(verdict.lost(), 3);
        let mut removed = Verdict::default();
        removed.span(
            "a".into(),
            Span {
                end: End::Removed,
                ..stayed
            },
        );
        removed.highest(1, 6);
        assert_eq!(removed.lost(), 1, "a removed receiver is owed no tail");
    }

    #[test]
    fn an_own_line_acknowledged_late_is_not_a_gap() {
        let mut receipts = Receipts::default();
        receipts.joined(at(1, 0));
        receipts.received(at(1, 2), 7, 1, true);
        receipts.own(at(1, 1));
        receipts.end(End::Removed);
        assert!(receipts.take_ended()[0].gaps.is_empty());
    }

    #[test]
    fn repeats_and_disorder_are_counted() {
        let mut receipts = Receipts::default();
        receipts.joined(at(1, 0));
        receipts.received(at(1, 1), 7, 2, true);
        receipts.received(at(1, 2), 7, 2, true);
        receipts.received(at(1, 3), 7, 1, true);
        receipts.received(at(1, 4), 7, 2, false); // a repeat the client dropped
        receipts.received(at(1, 5), 7, 3, false); // never shown: taken for a repeat
        assert_eq!(
            (receipts.shown, receipts.repeated, receipts.disordered),
            (3, 1, 1)
        );
        assert_eq!(receipts.hidden, 1);
    }

    #[test]
    fn a_restart_ends_one_span_and_opens_the_next_from_the_first_line() {
        let mut receipts = Receipts::default();
        receipts.joined(at(1, 4));
        receipts.received(at(1, 5), 7, 1, true);
        receipts.restarted(2);
        receipts.received(at(2, 1), 7, 2, true);
        receipts.end(End::Stayed);
        let spans = receipts.take_ended();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].end, End::Restarted);
        assert_eq!((spans[1].epoch, spans[1].from, spans[1].last), (2, 0, 1));
        assert_eq!(Span::decode(&spans[0].encode()), Some(spans[0].clone()));
        let mut verdict = Verdict::default();
        for span in spans {
            verdict.span("a".into(), span);
        }
        verdict.highest(1, 6);
        verdict.highest(2, 1);
        assert_eq!(verdict.lost(), 1, "line 6 of the old room never came");
    }
}
