//! The node's last five minutes, for the page's charts: once a second while a page of
//! this observer watches, one [`NodeSample`] (messages handled per second across the
//! trees' processes, the program's resident memory, how busy tokio's workers were, and
//! its tasks), kept in a bounded ring so that a page opened now draws the past at once.
//!
//! Nothing is sampled while no page watches (as for the snapshots it rides on): the ring
//! then has a gap, and the first sample after it says so ([`NodeSample::after_gap`]), so
//! that the page leaves the time between blank rather than drawing a line across it.
//!
//! What a sample costs: a sum over the snapshot just taken, a read of
//! `/proc/self/status`, and a few of tokio's counters (atomics); nothing is added to any
//! message's path.
//!
//! Each process's own history (for the selected one's charts) is kept by the page, not
//! here: see `assets/app.js`, "history".

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::snapshot::{NodeView, ProcessView};
use crate::sys::unix_ms;

/// How much of the past a page is shown.
pub(crate) const SPAN: Duration = Duration::from_secs(5 * 60);

/// Samples kept: one a second over [`SPAN`]. There is at most one sample per tick of the
/// feed, and ticks come once a second (one that comes late after a slow walk sends that
/// walk again, and is not sampled again), so this many cover the span; older ones are
/// dropped, and [`Ring::within`] leaves out any older than the span.
pub(crate) const KEPT_SAMPLES: usize = 300;

/// The node at one moment, as the charts plot it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSample {
    /// When, in milliseconds since the Unix epoch (the clock of [`NodeView::taken_ms`]).
    pub at_ms: u64,
    /// Nothing was sampled for a while before this one (no page watched, or the observer
    /// had just started): the time since the previous sample is a gap, not a line.
    pub after_gap: bool,
    /// Messages handled per second, summed over the processes of the supervision trees
    /// that answered (each one's rate since the observer last looked at it, as the
    /// trees show it); `None` while no process has a rate yet (the observer's first look
    /// at each). Processes outside any tree are not counted.
    pub messages_per_second: Option<f64>,
    /// The processes counted in [`messages_per_second`](Self::messages_per_second).
    pub processes: usize,
    /// The resident memory of the program (the OS process), in bytes; `None` where it is
    /// not measured (outside Linux).
    pub memory_bytes: Option<u64>,
    /// How busy the worker threads of the runtime the observer runs on were since the
    /// previous sample: the share of their time spent running tasks, from 0 to 1
    /// (Erlang's scheduler utilisation). `None` for an observer's first sample, or
    /// without 64-bit atomics.
    pub busy: Option<f64>,
    /// The runtime's worker threads.
    pub workers: usize,
    /// Tasks waiting in the runtime's global queue at this moment (tokio's only stable
    /// view of its run queues: the workers' own queues are not counted).
    pub run_queue: usize,
    /// Tasks alive in the runtime (each process is one, beside connections and timers).
    pub tasks: usize,
}

/// What a page is sent as it connects (the data of a `history` event): the samples of
/// the last five minutes, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeHistory {
    /// The observer's clock as it was sent, in milliseconds since the Unix epoch: the
    /// time after the last sample up to this was not sampled.
    pub now_ms: u64,
    /// How often samples are taken while a page watches, in milliseconds.
    pub every_ms: u64,
    /// How far back the page is shown, in milliseconds.
    pub span_ms: u64,
    /// The samples, oldest first.
    pub samples: Vec<NodeSample>,
}

/// The last [`KEPT_SAMPLES`] samples, oldest first: a ring that drops its oldest as it
/// takes a new one.
#[derive(Debug)]
pub(crate) struct Ring {
    samples: VecDeque<NodeSample>,
    capacity: usize,
}

impl Ring {
    pub(crate) const fn new(capacity: usize) -> Self {
        Self {
            samples: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn push(&mut self, sample: NodeSample) {
        if self.capacity == 0 {
            return;
        }
        while self.samples.len() >= self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The samples taken within `span` before `now_ms`, oldest first (the ring may hold
    /// older ones, from before a long gap).
    pub(crate) fn within(&self, span: Duration, now_ms: u64) -> Vec<NodeSample> {
        let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
        let since = now_ms.saturating_sub(span_ms);
        self.samples
            .iter()
            .filter(|sample| sample.at_ms >= since)
            .cloned()
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.samples.len()
    }
}

/// The samples kept, beside the observer rather than in it (as the supervisor reports
/// are): a page reconnecting to an observer restarted by its supervisor still sees what
/// came before. At most [`KEPT_SAMPLES`] of a few dozen bytes each.
static KEPT: Mutex<Ring> = Mutex::new(Ring::new(KEPT_SAMPLES));

/// Keeps a sample.
pub(crate) fn keep(sample: NodeSample) {
    lock(&KEPT).push(sample);
}

/// The samples of the last [`SPAN`], for a page that connects now.
pub(crate) fn recent(every: Duration) -> NodeHistory {
    let now_ms = unix_ms(SystemTime::now());
    NodeHistory {
        now_ms,
        every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
        span_ms: u64::try_from(SPAN.as_millis()).unwrap_or(u64::MAX),
        samples: lock(&KEPT).within(SPAN, now_ms),
    }
}

/// Takes samples, remembering what a rate needs between two of them and whether the
/// previous tick sampled at all.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    /// When the last sample was taken, unless a tick went by without one since.
    sampled: Option<Instant>,
    /// The workers' busy time, summed, at the last sample.
    busy_before: Option<(Duration, Instant)>,
    /// The last sample, and when the snapshot it was taken from was.
    last: Option<(u64, NodeSample)>,
}

impl Meter {
    /// A tick went by without a sample (no page watched): the next one follows a gap.
    pub(crate) fn pause(&mut self) {
        self.sampled = None;
    }

    /// The last sample taken.
    pub(crate) fn last(&self) -> Option<&NodeSample> {
        self.last.as_ref().map(|(_, sample)| sample)
    }

    /// The node now, from the snapshot just taken and the runtime it runs on (called
    /// from within a tokio runtime; outside one, the runtime's numbers are zero).
    /// `None` if the snapshot is the one the last sample was taken from: a tick that
    /// found the last walk fresh enough to send again (as after a walk that took more
    /// than a second) would only repeat its rates.
    pub(crate) fn sample(&mut self, view: &NodeView) -> Option<NodeSample> {
        let same_walk = |(taken_ms, _): &(u64, NodeSample)| *taken_ms == view.taken_ms;
        if self.last.as_ref().is_some_and(same_walk) {
            return None;
        }
        let now = Instant::now();
        let after_gap = self.sampled.replace(now).is_none();
        let (messages_per_second, processes) = messages_per_second(view);
        let metrics = tokio::runtime::Handle::try_current()
            .ok()
            .map(|runtime| runtime.metrics());
        let metrics = metrics.as_ref();
        let sample = NodeSample {
            at_ms: unix_ms(SystemTime::now()),
            after_gap,
            messages_per_second,
            processes,
            memory_bytes: resident_bytes(),
            busy: metrics.and_then(|metrics| self.busy_since_last(metrics, now)),
            workers: metrics.map_or(0, |metrics| metrics.num_workers()),
            run_queue: metrics.map_or(0, |metrics| metrics.global_queue_depth()),
            tasks: metrics.map_or(0, |metrics| metrics.num_alive_tasks()),
        };
        self.last = Some((view.taken_ms, sample.clone()));
        Some(sample)
    }

    /// The share of the workers' time spent busy since the last sample. Tokio adds a
    /// worker's busy time up as it parks or every few dozen tasks, so this is exact over
    /// seconds, not over milliseconds.
    fn busy_since_last(
        &mut self,
        metrics: &tokio::runtime::RuntimeMetrics,
        now: Instant,
    ) -> Option<f64> {
        let total = busy_total(metrics)?;
        let (total_before, then) = self.busy_before.replace((total, now))?;
        let available = now.duration_since(then).as_secs_f64() * metrics.num_workers() as f64;
        let busy = total.saturating_sub(total_before).as_secs_f64();
        (available > 0.0).then(|| (busy / available).clamp(0.0, 1.0))
    }
}

/// The messages handled per second across the node's trees, and how many processes
/// that sums: the rates the snapshot measured (a process that did not answer, or was
/// seen for the first time, has none yet; none at all, no sum).
fn messages_per_second(view: &NodeView) -> (Option<f64>, usize) {
    fn add(process: &ProcessView, total: &mut (f64, usize)) {
        if let Some(rate) = process.per_second {
            total.0 += rate;
            total.1 += 1;
        }
        for child in process.supervisor.iter().flat_map(|sup| &sup.children) {
            add(child, total);
        }
    }
    let mut total = (0.0, 0);
    for tree in &view.trees {
        add(tree, &mut total);
    }
    let (sum, processes) = total;
    ((processes > 0).then_some(sum), processes)
}

/// The time every worker has spent busy since the runtime started, summed.
#[cfg(target_has_atomic = "64")]
fn busy_total(metrics: &tokio::runtime::RuntimeMetrics) -> Option<Duration> {
    let workers = 0..metrics.num_workers();
    Some(
        workers
            .map(|worker| metrics.worker_total_busy_duration(worker))
            .sum(),
    )
}

#[cfg(not(target_has_atomic = "64"))]
fn busy_total(_: &tokio::runtime::RuntimeMetrics) -> Option<Duration> {
    None
}

/// The program's resident set, in bytes. Read from `VmRSS` in `/proc/self/status`
/// (in kB) rather than from `/proc/self/statm` (in pages), which would need the page
/// size, and so `libc`, which the crate does not depend on.
#[cfg(target_os = "linux")]
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    resident_from_status(&status)
}

/// Outside Linux the resident set is not measured: the chart says so.
#[cfg(not(target_os = "linux"))]
fn resident_bytes() -> Option<u64> {
    None
}

/// `VmRSS:   12345 kB` → 12345 × 1024.
#[cfg_attr(not(any(target_os = "linux", test)), allow(dead_code))]
fn resident_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let amount: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => amount.checked_mul(1024),
        _ => None,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observer::snapshot::{RunState, SupervisorView};
    use crate::supervisor::{ChildType, Strategy};

    fn sample_at(at_ms: u64) -> NodeSample {
        NodeSample {
            at_ms,
            ..NodeSample::default()
        }
    }

    #[test]
    fn the_ring_keeps_the_last_five_minutes_of_samples_and_drops_the_oldest() {
        let mut ring = Ring::new(KEPT_SAMPLES);
        for second in 0..1000 {
            ring.push(sample_at(second * 1000));
        }
        assert_eq!(ring.len(), KEPT_SAMPLES);
        let kept = ring.within(SPAN, 999_000);
        assert_eq!(kept.len(), KEPT_SAMPLES);
        assert_eq!(kept.first().map(|s| s.at_ms), Some(700_000));
        assert_eq!(kept.last().map(|s| s.at_ms), Some(999_000));
        assert_eq!(
            KEPT_SAMPLES as u64,
            SPAN.as_secs(),
            "one a second over the span"
        );
    }

    #[test]
    fn samples_older_than_the_span_are_not_shown_though_the_ring_holds_them() {
        let mut ring = Ring::new(KEPT_SAMPLES);
        // Ten seconds watched, then an hour without a page, then two more seconds.
        for second in 0..10 {
            ring.push(sample_at(second * 1000));
        }
        ring.push(sample_at(3_600_000));
        ring.push(sample_at(3_601_000));
        let shown = ring.within(SPAN, 3_601_500);
        let times: Vec<u64> = shown.iter().map(|s| s.at_ms).collect();
        assert_eq!(times, [3_600_000, 3_601_000]);
        assert_eq!(ring.len(), 12);
    }

    #[test]
    fn a_ring_of_nothing_keeps_nothing() {
        let mut ring = Ring::new(0);
        ring.push(sample_at(1));
        assert_eq!(ring.len(), 0);
    }

    fn process(id: &str, per_second: Option<f64>, children: Vec<ProcessView>) -> ProcessView {
        ProcessView {
            id: id.to_owned(),
            kind: if children.is_empty() {
                ChildType::Worker
            } else {
                ChildType::Supervisor
            },
            state: RunState::Running,
            restarts: 0,
            pid: Some(format!("0.{id}")),
            name: None,
            protocol: None,
            behaviour: None,
            mailbox: Some(0),
            per_second,
            handled: None,
            suspended: false,
            tracing: false,
            busy: per_second.is_none(),
            supervisor: if children.is_empty() {
                None
            } else {
                Some(SupervisorView {
                    strategy: Strategy::OneForOne,
                    dynamic: false,
                    intensity: 3,
                    period_ms: 5000,
                    restarts_used: 0,
                    children,
                })
            },
        }
    }

    #[test]
    fn messages_per_second_sums_every_process_of_every_tree_that_answered() {
        let view = NodeView {
            node: "local".to_owned(),
            taken_ms: 0,
            trees: vec![
                process(
                    "top",
                    Some(1.0),
                    vec![
                        process("a", Some(100.0), Vec::new()),
                        process("busy", None, Vec::new()),
                        process("sub", Some(0.5), vec![process("b", Some(20.5), Vec::new())]),
                    ],
                ),
                process("other", Some(3.0), Vec::new()),
            ],
            links: Vec::new(),
        };
        assert_eq!(messages_per_second(&view), (Some(125.0), 5));
        let unknown = NodeView {
            trees: vec![process("new", None, Vec::new())],
            ..NodeView::default()
        };
        assert_eq!(
            messages_per_second(&unknown),
            (None, 0),
            "no rate yet is no zero"
        );
        assert_eq!(messages_per_second(&NodeView::default()), (None, 0));
    }

    #[test]
    fn the_resident_set_is_read_in_kilobytes() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t4\n";
        assert_eq!(resident_from_status(status), Some(2048 * 1024));
        assert_eq!(resident_from_status("Name:\tx\n"), None);
        assert_eq!(resident_from_status("VmRSS:\t12 pages\n"), None);
    }

    fn taken_at(taken_ms: u64) -> NodeView {
        NodeView {
            taken_ms,
            ..NodeView::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sample_measures_this_program_and_says_when_it_follows_a_gap() {
        let mut meter = Meter::default();
        let waiting = tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)));
        let first = meter.sample(&taken_at(1)).expect("a first sample");
        assert!(first.after_gap, "an observer's first sample follows a gap");
        assert_eq!(first.busy, None, "no busy time to compare with yet");
        assert_eq!(first.workers, 2);
        assert!(first.tasks >= 1, "a task waits: {first:?}");
        waiting.abort();
        if cfg!(target_os = "linux") {
            let memory = first.memory_bytes.expect("the resident set, on Linux");
            assert!(memory > 1024 * 1024, "{memory} bytes");
        }

        // Keep one worker busy for a while: the next sample sees it.
        let spin = tokio::spawn(async {
            let until = Instant::now() + Duration::from_millis(200);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        });
        spin.await.expect("the spin");
        // A worker adds up its busy time as it parks.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = meter.sample(&taken_at(2)).expect("a second sample");
        assert!(!second.after_gap, "{second:?}");
        assert!(second.at_ms >= first.at_ms);
        let busy = second.busy.expect("a busy share, with 64-bit atomics");
        assert!(
            (0.2..=1.0).contains(&busy),
            "one of two workers spun for most of the time: {busy}"
        );

        meter.pause();
        let third = meter.sample(&taken_at(3)).expect("a third sample");
        assert!(third.after_gap, "a tick without a page makes a gap");
    }

    #[test]
    fn a_snapshot_sent_again_is_not_sampled_again() {
        let mut meter = Meter::default();
        let first = meter.sample(&taken_at(1000)).expect("a sample");
        assert_eq!(meter.sample(&taken_at(1000)), None, "the same walk");
        assert_eq!(meter.last(), Some(&first));
        let next = meter
            .sample(&taken_at(2000))
            .expect("a new walk, a new sample");
        assert!(!next.after_gap);
        assert_eq!(meter.last(), Some(&next));
    }
}
