//! `ex_messenger soak-client`: one soak client (started by `soak`). It runs the real
//! client tree with the handler's trace on, says numbered lines at a mixed pace once told
//! `GO`, and reports on stdout:
//!
//! - `JOINED` once in the room;
//! - `SPAN ...` for each stay in a room that ended ([`Span`](super::ledger::Span)),
//!   `HIGH <epoch> <seq>` for
//!   the highest line it knows of each room incarnation;
//! - `STAT key=value ...` every two seconds and at the end (what it sent, what was
//!   answered, refused, received);
//! - `DONE` after `STOP`, once everything it sent has been answered (or a deadline passed).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context as _};
use otp::node::Cookie;
use otp::ServerRef;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use super::ledger::{End, Receipts};
use crate::cli::SoakClientArgs;
use crate::client::{HandlerArgs, HandlerInfo, LocalChatClient, Output, Session, Trace};
use crate::names::Nick;
use crate::protocol::{Request, MESSAGE_HANDLER};

/// How long a stopped client waits for its last answers.
const DRAIN: Duration = Duration::from_secs(60);
/// Quiet this long after its outbox emptied, a stopped client reports.
const SETTLE: Duration = Duration::from_secs(3);

/// Counts a client reports.
#[derive(Debug, Default)]
struct Counts {
    queued: u64,
    acked: u64,
    dropped: u64,
    refused: BTreeMap<String, u64>,
    lost: BTreeMap<String, u64>,
    kicked: u64,
}

fn tally(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "-".into();
    }
    counts
        .iter()
        .map(|(why, n)| format!("{}:{n}", why.replace([' ', ';', ':'], "_")))
        .collect::<Vec<_>>()
        .join(";")
}

fn report(counts: &Counts, receipts: &mut Receipts, unanswered: usize) {
    for span in receipts.take_ended() {
        crate::stdout::line(span.encode());
    }
    crate::stdout::line(format_args!(
        "STAT queued={} acked={} dropped={} unanswered={unanswered} shown={} repeated={} disordered={} hidden={} kicked={} refused={} lost={}",
        counts.queued,
        counts.acked,
        counts.dropped,
        receipts.shown,
        receipts.repeated,
        receipts.disordered,
        receipts.hidden,
        counts.kicked,
        tally(&counts.refused),
        tally(&counts.lost),
    ));
}

/// The time until the next line: mostly around `1/rate`, sometimes a burst.
fn next_gap(rate: f64) -> (Duration, usize) {
    let r = crate::random::fraction();
    if r < 0.05 {
        return (Duration::from_secs_f64(1.0 / rate), 5);
    }
    // Exponential gaps: a Poisson stream, as independent people typing.
    let gap = -(1.0 - crate::random::fraction()).max(1e-9).ln() / rate;
    (Duration::from_secs_f64(gap.min(10.0 / rate)), 1)
}

/// `ex_messenger soak-client`.
pub async fn run(args: SoakClientArgs) -> anyhow::Result<()> {
    let nick = Nick::parse(&args.nick)?;
    let cookie = Cookie::resolve(None, None)?;
    let (output, mut incoming) = mpsc::unbounded_channel();
    let (trace, mut traces) = mpsc::unbounded_channel();
    let session = Session::shared();
    let handler_args = HandlerArgs {
        server: args.server.clone(),
        nick: nick.clone(),
        output,
        session: session.clone(),
        give_up_after: Duration::from_secs(300),
        trace: Some(trace),
    };
    let config = crate::client::node_config(cookie)?;
    let tree = crate::client::start(None, config, handler_args).await?;
    let unanswered = || session.lock().map(|s| s.outbox.len()).unwrap_or_default();

    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    let mut counts = Counts::default();
    let mut receipts = Receipts::default();
    let mut joined = false;
    let mut sending = false;
    let mut stopped_at = None::<tokio::time::Instant>;
    let mut quiet_since = tokio::time::Instant::now();
    let mut said = 0u64;
    let mut next_line = tokio::time::Instant::now();
    let mut stats = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            event = traces.recv() => {
                let Some(event) = event else { bail!("the handler is gone") };
                quiet_since = tokio::time::Instant::now();
                match event {
                    Trace::Queued { .. } => counts.queued += 1,
                    Trace::Dropped { .. } => counts.dropped += 1,
                    Trace::Acked { placed, .. } => {
                        counts.acked += 1;
                        if let Some(at) = placed {
                            receipts.own(at);
                        }
                    }
                    Trace::Refused { reason, .. } => {
                        *counts.refused.entry(reason.code().to_owned()).or_default() += 1;
                    }
                    Trace::Received { session, sent, at, shown, .. } => {
                        receipts.received(at, session, sent, shown)
                    }
                    Trace::Joined { at, .. } => {
                        receipts.joined(at);
                        if !std::mem::replace(&mut joined, true) {
                            crate::stdout::line("JOINED");
                        }
                    }
                    Trace::Restarted { epoch, .. } => receipts.restarted(epoch),
                    Trace::Lost { reason } => {
                        receipts.removed();
                        *counts.lost.entry(reason).or_default() += 1;
                    }
                }
            }
            output = incoming.recv() => match output {
                Some(Output::Line(line)) if line.starts_with("You were disconnected") => {
                    counts.kicked += 1
                }
                Some(Output::Line(_)) => {}
                Some(Output::Fatal(line)) => {
                    crate::stdout::line(format_args!("FAILED {line}"));
                    bail!(line)
                }
                None => bail!("the client stopped"),
            },
            command = commands.next_line() => match command?.as_deref() {
                Some("GO") => {
                    sending = true;
                    next_line = tokio::time::Instant::now();
                }
                Some("STOP") | None => {
                    sending = false;
                    stopped_at.get_or_insert_with(tokio::time::Instant::now);
                }
                Some(_) => {}
            },
            _ = tokio::time::sleep_until(next_line), if sending => {
                let handler = ServerRef::<LocalChatClient>::whereis(MESSAGE_HANDLER)
                    .context("no message handler")?;
                let (gap, burst) = next_gap(args.rate);
                for _ in 0..burst {
                    said += 1;
                    let text = format!("soak {} {said}", nick.as_str());
                    handler.send_info(HandlerInfo::Input(Request::Say { text }));
                }
                next_line += gap;
            }
            _ = stats.tick() => {
                report(&counts, &mut receipts, unanswered());
                if let Some(stopped) = stopped_at {
                    let settled = unanswered() == 0 && quiet_since.elapsed() >= SETTLE;
                    if settled || stopped.elapsed() >= DRAIN {
                        break;
                    }
                }
            }
        }
    }
    receipts.end(End::Stayed);
    for (epoch, seq) in &receipts.highest {
        crate::stdout::line(format_args!("HIGH {epoch} {seq}"));
    }
    report(&counts, &mut receipts, unanswered());
    let pending = session.lock().map(|s| s.outbox.seqs()).unwrap_or_default();
    if !pending.is_empty() {
        crate::stdout::line(format_args!("UNANSWERED {pending:?}"));
    }
    crate::stdout::line("DONE");
    let _ = tree.stop().await;
    Ok(())
}
