//! Supervisor reports (OTP's `supervisor_report` and `progress` reports): each is logged
//! through `tracing` and, while anyone listens ([`subscribe`]) or keeps them ([`keep`]),
//! also published as a value, so a tool such as the observer can show a timeline without
//! parsing logs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use ractor::ActorId;
use tokio::sync::broadcast;

use crate::{CallError, ExitReason, Named, Protocol, ServerRef};

/// How many reports a slow listener may fall behind before it misses some (it is told
/// how many it missed: `RecvError::Lagged`).
const LAG: usize = 1024;

/// One supervisor report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Its number among the reports published in this program, counting from 1: a
    /// listener that also reads reports kept from earlier knows which it has seen.
    pub seq: u64,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The supervisor's name, or its process id if it has none.
    pub supervisor: String,
    /// The child's spec id.
    pub child: String,
    /// What happened.
    pub event: ReportEvent,
}

/// What a [`Report`] tells.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReportEvent {
    /// The child started (OTP's progress report), as this process.
    Started {
        /// Its process id.
        pid: String,
    },
    /// Its `init` asked to be ignored.
    Ignored,
    /// Its start failed (`start_error`).
    StartFailed {
        /// Why.
        reason: String,
    },
    /// It exited (`child_terminated`), and whether it is restarted.
    Exited {
        /// Its exit reason.
        reason: String,
        /// Whether the supervisor restarts it.
        restart: bool,
    },
    /// Too many restarts: the supervisor stops all its children and exits (`shutdown`).
    GaveUp,
    /// Asked to stop, it did not within its shutdown budget, and was killed
    /// (`shutdown_error`).
    ShutdownError {
        /// Its budget, in milliseconds.
        budget_ms: u64,
    },
}

/// Where reports go: the live channel, and the latest ones kept once [`keep`] was
/// called. One lock orders them: numbers, the kept list and the channel agree.
struct Reports {
    live: broadcast::Sender<Report>,
    /// The latest reports, oldest first, at most `keep` of them.
    kept: VecDeque<Report>,
    keep: usize,
    /// The last number given.
    seq: u64,
}

fn reports() -> &'static Mutex<Reports> {
    static REPORTS: OnceLock<Mutex<Reports>> = OnceLock::new();
    REPORTS.get_or_init(|| {
        Mutex::new(Reports {
            live: broadcast::channel(LAG).0,
            kept: VecDeque::new(),
            keep: 0,
            seq: 0,
        })
    })
}

fn lock() -> std::sync::MutexGuard<'static, Reports> {
    reports()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether anyone ever listened or kept: until then a report costs one load, not a lock
/// (a program without an observer starts and stops children without either).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Every supervisor report of this program from now on, from every supervisor.
pub fn subscribe() -> broadcast::Receiver<Report> {
    ACTIVE.store(true, Ordering::Relaxed);
    lock().live.subscribe()
}

/// From now on, keep the latest `count` reports for [`kept_and_subscribe`] (for the rest of the
/// program: a tool shows what happened before it looked, its own restart included).
pub fn keep(count: usize) {
    ACTIVE.store(true, Ordering::Relaxed);
    let mut reports = lock();
    reports.keep = reports.keep.max(count);
}

/// The reports kept so far (oldest first), and every report after them: none missed,
/// none twice.
pub fn kept_and_subscribe() -> (Vec<Report>, broadcast::Receiver<Report>) {
    ACTIVE.store(true, Ordering::Relaxed);
    let reports = lock();
    (
        reports.kept.iter().cloned().collect(),
        reports.live.subscribe(),
    )
}

/// Waits until a supervisor has started a process other than `old` under `name` (it
/// restarted the server), at most `within`, and returns it: how a program (or a test)
/// waits for a restart without polling. Each supervisor report wakes it to look again;
/// fails with [`CallError::Timeout`] if no new process came in time.
///
/// ```
/// # use std::time::Duration;
/// # use otp::supervisor::{self, ChildSpec, SupervisorSpec};
/// # use otp::{GenServer, Named};
/// # otp::protocol! { pub Idle; }
/// # struct Worker;
/// # impl GenServer for Worker { type Protocol = Idle; }
/// # #[tokio::main] async fn main() {
/// let tree = SupervisorSpec {
///     flags: Default::default(),
///     children: vec![ChildSpec::worker("worker", |parent| parent.start_named("worker", Worker))],
/// };
/// let _top = tree.start().await.unwrap();
/// let worker = Named::<Idle>::new("worker");
/// let old = worker.resolve().unwrap();
/// old.kill();
/// let new = supervisor::restarted(&worker, old.id(), Duration::from_secs(5)).await.unwrap();
/// assert_ne!(new.id(), old.id());
/// # }
/// ```
pub async fn restarted<P: Protocol>(
    name: &Named<P>,
    old: ActorId,
    within: Duration,
) -> Result<ServerRef<P>, CallError> {
    // Listening before looking: a start between the look and the wait is still heard.
    let mut reports = subscribe();
    let wait = async {
        loop {
            if let Ok(server) = name.resolve() {
                if server.id() != old && server.is_alive() {
                    return server;
                }
            }
            // Any report may be the start (a name need not be its child's id); a lagged
            // listener looks again too. Closed never happens: the sender is static.
            let _ = reports.recv().await;
        }
    };
    tokio::time::timeout(within, wait)
        .await
        .map_err(|_| CallError::Timeout(within))
}

/// Builds, keeps and sends a report only while someone listens or keeps: supervisors
/// pay nothing else.
fn publish(supervisor: &str, child: &str, event: impl FnOnce() -> ReportEvent) {
    if !ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    let mut reports = lock();
    if reports.live.receiver_count() == 0 && reports.keep == 0 {
        return;
    }
    reports.seq += 1;
    let report = Report {
        seq: reports.seq,
        at_ms: crate::sys::unix_ms(SystemTime::now()),
        supervisor: supervisor.to_owned(),
        child: child.to_owned(),
        event: event(),
    };
    if reports.keep > 0 {
        if reports.kept.len() == reports.keep {
            reports.kept.pop_front();
        }
        reports.kept.push_back(report.clone());
    }
    let _ = reports.live.send(report);
}

/// OTP's progress report: a child started.
pub(super) fn started(supervisor: &str, child: &str, pid: ractor::ActorId) {
    tracing::info!(supervisor, child, %pid, "child started");
    publish(supervisor, child, || ReportEvent::Started {
        pid: pid.to_string(),
    });
}

/// A child's `init` returned [`Ignore`](crate::Ignore).
pub(super) fn ignored(supervisor: &str, child: &str) {
    tracing::info!(supervisor, child, "child ignored its start");
    publish(supervisor, child, || ReportEvent::Ignored);
}

/// OTP's `start_error` report.
pub(super) fn start_failed(supervisor: &str, child: &str, reason: &crate::StartError) {
    tracing::error!(supervisor, child, %reason, "start_error: child failed to start");
    publish(supervisor, child, || ReportEvent::StartFailed {
        reason: reason.to_string(),
    });
}

/// OTP's `child_terminated` report, with the decision taken.
pub(super) fn exited(supervisor: &str, child: &str, reason: &ExitReason, restart: bool) {
    if reason.is_orderly() {
        tracing::info!(supervisor, child, %reason, restart, "child terminated");
    } else {
        tracing::error!(supervisor, child, %reason, restart, "child_terminated");
    }
    publish(supervisor, child, || ReportEvent::Exited {
        reason: reason.to_string(),
        restart,
    });
}

/// OTP's `shutdown` supervisor report: too many restarts, the supervisor gives up.
pub(super) fn gave_up(supervisor: &str, offender: &str) {
    tracing::error!(
        supervisor,
        child = offender,
        "shutdown: reached_max_restart_intensity; stopping all children"
    );
    publish(supervisor, offender, || ReportEvent::GaveUp);
}

/// OTP's `shutdown_error` report: a child outlived its shutdown budget and is killed.
pub(super) fn shutdown_error(supervisor: &str, child: &str, budget: std::time::Duration) {
    let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
    tracing::error!(
        supervisor,
        child,
        budget_ms,
        "shutdown_error: child did not stop within its shutdown budget; killed"
    );
    publish(supervisor, child, || ReportEvent::ShutdownError {
        budget_ms,
    });
}
