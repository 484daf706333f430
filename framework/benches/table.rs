//! `cargo bench -p otp --bench table`: our GenServer and Supervisor against raw ractor and
//! against kameo, measured in the same run and printed as a Markdown table of ratios.
//!
//! ractor's local figures are bimodal on 2 cores (caller and server on one worker or two),
//! so every metric runs `REPS` times, raw ractor, kameo and ours interleaved, and the
//! medians are compared. Memory per child is measured in a fresh process per variant, so that one
//! variant's freed pages cannot flatter the other.
//!
//! Environment: `BENCH_REPS` (default 5), `BENCH_SCALE` (default 1.0: multiplies counts).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use otp::supervisor::{
    start_dynamic, start_partitioned, ChildSpec, DynamicFlags, Flags, PartitionFlags, Restart,
    Strategy, SupervisorSpec,
};
use otp::{GenServer, Named, ServerRef, Timeout};
use ractor::{Actor, ActorCell, ActorRef};
use support::kameo::{self, AskAdd, KameoCounter, TellAdd, WhichInstance};
use support::{rss_bytes, Add, AddGet, Counter, CounterServer, RawCounter, RawMsg, RawRespawner};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Measure from inside the runtime, as a task on its workers: `block_on`'s own thread is
    // outside the pool, and waking it costs an OS thread switch per reply.
    if let Some(variant) = args.iter().find_map(|a| a.strip_prefix("--spawn=")) {
        let variant = variant.to_owned();
        let (per_child, bytes) = runtime
            .block_on(runtime.spawn(async move { spawn_children(&variant, count(100_000)).await }))
            .expect("spawn bench task");
        println!("{} {}", per_child.as_nanos(), bytes);
        return;
    }
    let rows = runtime.block_on(runtime.spawn(run())).expect("bench task");
    if check() {
        guard(&runtime, &rows);
    }
}

/// `--check`: fail the run when a guarded row drifts past its [`Guard`].
fn check() -> bool {
    std::env::args().any(|arg| arg == "--check")
}

// The guards (see [`Guard`]): the highest of five runs at the guard's scale, plus a
// margin; memory, which does not drift run to run, is held to its target.
const CALL_GUARD: f64 = 1.45;
const CAST_GUARD: f64 = 1.4;
const RESTART_GUARD: f64 = 3.5;
const SPAWN_GUARD: f64 = 1.5;
const CONCURRENT_SPAWN_GUARD: f64 = 2.2;
const MEMORY_GUARD: f64 = 512.0;

/// Tokio worker threads: 2 by default, as in `../shared/ANCHORS.md`.
fn workers() -> usize {
    std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

fn reps() -> usize {
    std::env::var("BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn count(base: usize) -> usize {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    ((base as f64 * scale) as usize).max(1)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// One row: time per operation, baseline, kameo and ours (lower is better).
struct Row {
    metric: String,
    baseline: f64,
    kameo: Option<f64>,
    ours: f64,
    unit: &'static str,
    target: &'static str,
    /// What `--check` allows (see [`Guard`]).
    guard: Guard,
}

/// The drift `--check` allows a row before it fails the run, as `.ci/run` runs it: the
/// current figure plus the run-to-run spread measured at that scale (BENCHMARKS.md,
/// "The guard"), so that a change costing a tenth or more shows.
#[derive(Clone, Copy)]
enum Guard {
    /// At most this ratio to raw ractor.
    Ratio(f64),
    /// At most this many bytes more than raw ractor.
    OverBytes(f64),
    /// Not guarded (too noisy at the guard's scale to tell drift from noise).
    None,
}

impl Row {
    /// Why this row fails `--check`, if it does.
    fn violation(&self) -> Option<String> {
        let (value, limit, shown) = match self.guard {
            Guard::Ratio(limit) => {
                let ratio = self.ours / self.baseline;
                (
                    ratio,
                    limit,
                    format!("{ratio:.2}x raw ractor (allowed {limit:.2}x)"),
                )
            }
            Guard::OverBytes(limit) => {
                let over = self.ours - self.baseline;
                (
                    over,
                    limit,
                    format!("{over:.0} B over raw ractor (allowed {limit:.0} B)"),
                )
            }
            Guard::None => return None,
        };
        // NaN (a variant that failed to run) fails too.
        (value.is_nan() || value > limit).then(|| format!("{}: {shown}", self.metric))
    }
}

/// Fails the process if a guarded row drifted past its guard in this run and again in a
/// second one: a time row's noise on a loaded machine can pass a guard once (memory rows
/// do not drift, so they fail both).
fn guard(runtime: &tokio::runtime::Runtime, rows: &[Row]) {
    let first: Vec<&Row> = rows
        .iter()
        .filter(|row| row.violation().is_some())
        .collect();
    if first.is_empty() {
        println!("\nthe guard holds: every guarded row is within what it allows");
        return;
    }
    println!("\n{} row(s) past their guard: measuring again", first.len());
    let again = runtime.block_on(runtime.spawn(run())).expect("bench task");
    let violations: Vec<String> = again
        .iter()
        .filter(|row| first.iter().any(|failed| failed.metric == row.metric))
        .filter_map(Row::violation)
        .collect();
    if violations.is_empty() {
        println!("\nthe guard holds: the second run is within what it allows");
        return;
    }
    eprintln!("\nthe guard failed: these rows drifted past what it allows, twice:");
    for violation in &violations {
        eprintln!("  {violation}");
    }
    std::process::exit(1);
}

async fn run() -> Vec<Row> {
    let reps = reps();
    let mut rows = Vec::new();

    let raw = Actor::spawn(None, RawCounter, ()).await.expect("raw").0;
    let peer = kameo::spawn_counter();
    let ours = CounterServer::default().start().await.expect("otp");

    for callers in [1, 8, 64] {
        let total = count(if callers == 1 { 200_000 } else { 400_000 });
        for timeout in [Timeout::Infinity, Timeout::After(Duration::from_secs(5))] {
            let (mut base, mut theirs, mut mine) = (vec![], vec![], vec![]);
            for _ in 0..reps {
                base.push(per_op(
                    total,
                    callers_run(callers, total, raw_caller(&raw, timeout)).await,
                ));
                theirs.push(per_op(
                    total,
                    callers_run(callers, total, kameo_caller(&peer, timeout)).await,
                ));
                mine.push(per_op(
                    total,
                    callers_run(callers, total, our_caller(&ours, timeout)).await,
                ));
            }
            let waits = match timeout {
                Timeout::Infinity => "no timeout",
                Timeout::After(_) => "5 s timeout",
            };
            let metric = format!("call round-trip, {callers} caller(s), {waits}");
            let guard = Guard::Ratio(CALL_GUARD);
            rows.push(row(
                &metric,
                [&base, &theirs, &mine],
                "ns/call",
                "≤ 1.05x",
                guard,
            ));
        }
    }

    let casts = count(1_000_000);
    let (mut base, mut theirs, mut mine) = (vec![], vec![], vec![]);
    for _ in 0..reps {
        let started = Instant::now();
        for _ in 0..casts {
            let _ = raw.send_message(RawMsg::Cast(1));
        }
        let _ = raw.call(|port| RawMsg::Call(0, port), None).await;
        base.push(per_op(casts, started.elapsed()));
        let started = Instant::now();
        for _ in 0..casts {
            let _ = peer.tell(TellAdd(1)).try_send();
        }
        let _ = peer.ask(AskAdd(0)).await;
        theirs.push(per_op(casts, started.elapsed()));
        let started = Instant::now();
        for _ in 0..casts {
            ours.cast(Add(1));
        }
        let _ = ours.call(AddGet(0)).await;
        mine.push(per_op(casts, started.elapsed()));
    }
    rows.push(row(
        "cast throughput (casts, then one call)",
        [&base, &theirs, &mine],
        "ns/cast",
        "≤ 1.05x",
        Guard::Ratio(CAST_GUARD),
    ));

    let restarts = count(2_000);
    let latencies = restart_latencies(restarts).await;
    for (label, p) in [("median", 0.5), ("p99", 0.99)] {
        let at = |sorted: &[Duration]| percentile(sorted, p).as_nanos() as f64;
        rows.push(Row {
            metric: format!("restart latency {label} (kill named child → call by name answers)"),
            baseline: at(&latencies.raw),
            kameo: Some(at(&latencies.kameo)),
            ours: at(&latencies.ours),
            unit: "ns",
            target: if p == 0.5 {
                "≤ 1.5x raw, ≤ kameo"
            } else {
                "≤ 2x raw"
            },
            guard: if p == 0.5 {
                Guard::Ratio(RESTART_GUARD)
            } else {
                Guard::None
            },
        });
    }

    let n = count(100_000);
    let spawned = spawn_medians(reps);
    let [raw, peer, ours, raw_direct, peer_direct, direct, raw8, peer8, ours8, part8] =
        SPAWN_VARIANTS.map(|variant| &spawned[variant]);
    rows.push(Row {
        metric: format!("spawn {n} dynamic children until each answers a call, per child"),
        baseline: raw.per_child,
        kameo: Some(peer.per_child),
        ours: ours.per_child,
        unit: "ns",
        target: "≤ 1.2x raw, ≤ kameo",
        guard: Guard::Ratio(SPAWN_GUARD),
    });
    rows.push(Row {
        metric: format!("start {n} servers directly (no supervisor), per child"),
        baseline: raw_direct.per_child,
        kameo: Some(peer_direct.per_child),
        ours: direct.per_child,
        unit: "ns",
        target: "(where the supervisor's cost begins)",
        guard: Guard::Ratio(SPAWN_GUARD),
    });
    rows.push(Row {
        metric: format!(
            "spawn {n} dynamic children until each answers, 8 concurrent starters, per child"
        ),
        baseline: raw8.per_child,
        kameo: Some(peer8.per_child),
        ours: ours8.per_child,
        unit: "ns",
        target: "≤ 1.2x raw, ≤ kameo",
        guard: Guard::Ratio(CONCURRENT_SPAWN_GUARD),
    });
    rows.push(Row {
        metric: format!(
            "spawn {n} children through a partition supervisor ({} partitions), 8 concurrent starters, per child",
            workers()
        ),
        baseline: raw8.per_child,
        kameo: Some(peer8.per_child),
        ours: part8.per_child,
        unit: "ns",
        target: "≤ 1.2x raw, ≤ kameo",
        guard: Guard::Ratio(CONCURRENT_SPAWN_GUARD),
    });
    rows.push(Row {
        metric: "memory per dynamic child (RSS growth)".into(),
        baseline: raw.bytes,
        kameo: Some(peer.bytes),
        ours: ours.bytes,
        unit: "bytes",
        target: "≤ raw + 0.5 KiB",
        guard: Guard::OverBytes(MEMORY_GUARD),
    });
    rows.push(Row {
        metric: "memory per process started directly (RSS growth)".into(),
        baseline: raw_direct.bytes,
        kameo: Some(peer_direct.bytes),
        ours: direct.bytes,
        unit: "bytes",
        target: "≤ raw + 0.5 KiB",
        guard: Guard::OverBytes(MEMORY_GUARD),
    });

    print_table(&rows, reps);
    rows
}

/// Runs `raw ractor, kameo, ours` medians into a row.
fn row(
    metric: &str,
    [base, theirs, mine]: [&[f64]; 3],
    unit: &'static str,
    target: &'static str,
    guard: Guard,
) -> Row {
    Row {
        metric: metric.into(),
        baseline: median(base.to_vec()),
        kameo: Some(median(theirs.to_vec())),
        ours: median(mine.to_vec()),
        unit,
        target,
        guard,
    }
}

fn per_op(ops: usize, elapsed: Duration) -> f64 {
    elapsed.as_nanos() as f64 / ops as f64
}

/// A caller task body: `calls` sequential raw ractor calls.
fn raw_caller(
    raw: &ActorRef<RawMsg>,
    timeout: Timeout,
) -> impl Fn(usize) -> futures::future::BoxFuture<'static, ()> + Clone {
    let raw = raw.clone();
    let timeout = match timeout {
        Timeout::Infinity => None,
        Timeout::After(after) => Some(after),
    };
    move |calls| {
        let raw = raw.clone();
        Box::pin(async move {
            for _ in 0..calls {
                let _ = raw.call(|port| RawMsg::Call(1, port), timeout).await;
            }
        })
    }
}

/// A caller task body: `calls` sequential kameo asks.
fn kameo_caller(
    peer: &::kameo::actor::ActorRef<KameoCounter>,
    timeout: Timeout,
) -> impl Fn(usize) -> futures::future::BoxFuture<'static, ()> + Clone {
    let peer = peer.clone();
    move |calls| {
        let peer = peer.clone();
        Box::pin(async move {
            for _ in 0..calls {
                match timeout {
                    Timeout::Infinity => _ = peer.ask(AskAdd(1)).await,
                    Timeout::After(after) => _ = peer.ask(AskAdd(1)).reply_timeout(after).await,
                }
            }
        })
    }
}

/// A caller task body: `calls` sequential GenServer calls.
fn our_caller(
    ours: &ServerRef<Counter>,
    timeout: Timeout,
) -> impl Fn(usize) -> futures::future::BoxFuture<'static, ()> + Clone {
    let ours = ours.clone();
    move |calls| {
        let ours = ours.clone();
        Box::pin(async move {
            for _ in 0..calls {
                let _ = ours.call_timeout(AddGet(1), timeout).await;
            }
        })
    }
}

/// Runs `callers` tasks sharing `total` calls; returns the wall time until all finished.
async fn callers_run(
    callers: usize,
    total: usize,
    caller: impl Fn(usize) -> futures::future::BoxFuture<'static, ()>,
) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| tokio::spawn(caller(total / callers)))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    started.elapsed()
}

/// Restart latencies, each sorted.
struct Restarts {
    raw: Vec<Duration>,
    kameo: Vec<Duration>,
    ours: Vec<Duration>,
}

/// Kill the registered child `n` times each way; each latency runs from the kill to the
/// first successful call through the name on the new instance (for kameo, through the
/// instance that announced itself: see `support/kameo.rs`).
async fn restart_latencies(n: usize) -> Restarts {
    let raw_name = "bench-raw-child";
    let parent = Actor::spawn(
        None,
        RawRespawner {
            child_name: raw_name.into(),
        },
        (),
    )
    .await
    .expect("raw respawner")
    .0;
    let mut raw = Vec::with_capacity(n);
    for _ in 0..n {
        let old = ractor::registry::where_is(raw_name).expect("raw child");
        let started = Instant::now();
        old.kill();
        loop {
            if let Some(cell) = ractor::registry::where_is(raw_name) {
                if cell.get_id() != old.get_id() {
                    let actor: ActorRef<RawMsg> = cell.into();
                    if actor.call(|port| RawMsg::Call(0, port), None).await.is_ok() {
                        break;
                    }
                }
            }
            tokio::task::yield_now().await;
        }
        raw.push(started.elapsed());
    }
    // Gone with its child (and the name) before anything may measure again.
    let _ = parent.stop_and_wait(None, None).await;

    let supervisor = kameo::spawn_supervisor();
    kameo::supervised(&supervisor, true).await;
    let current = || {
        kameo::CURRENT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    };
    let mut peer = Vec::with_capacity(n);
    for _ in 0..n {
        let (old, instance) = loop {
            // The first instance announces itself in its `on_start`, after `spawn` returned.
            match current() {
                Some((number, instance)) => break (number, instance),
                None => tokio::task::yield_now().await,
            }
        };
        let started = Instant::now();
        instance.kill();
        loop {
            if let Some((number, current)) = current() {
                if number != old && current.ask(WhichInstance).await.ok() == Some(number) {
                    break;
                }
            }
            tokio::task::yield_now().await;
        }
        peer.push(started.elapsed());
    }
    supervisor.kill();

    let name = "bench-otp-child";
    let tree = SupervisorSpec {
        flags: Flags {
            strategy: Strategy::OneForOne,
            intensity: u32::MAX,
            period: Duration::from_secs(1),
            ..Flags::default()
        },
        children: vec![ChildSpec::worker("child", move |parent| {
            parent.start_named(name, CounterServer::default())
        })],
    };
    let supervisor = tree.start().await.expect("otp supervisor");
    let by_name = Named::<Counter>::new(name);
    let mut ours = Vec::with_capacity(n);
    for _ in 0..n {
        let old = by_name.resolve().expect("otp child");
        let started = Instant::now();
        old.kill();
        loop {
            if let Ok(current) = by_name.resolve() {
                if current.id() != old.id() && current.call(AddGet(0)).await.is_ok() {
                    break;
                }
            }
            tokio::task::yield_now().await;
        }
        ours.push(started.elapsed());
    }
    let _ = supervisor.stop().await;
    raw.sort();
    peer.sort();
    ours.sort();
    Restarts {
        raw,
        kameo: peer,
        ours,
    }
}

/// The spawn variants, in the order `run` reads them.
const SPAWN_VARIANTS: [&str; 10] = [
    "raw",
    "kameo",
    "otp",
    "rawdirect",
    "kameodirect",
    "gs",
    "raw8",
    "kameo8",
    "otp8",
    "part8",
];

/// Each spawn variant `reps` times, each run in a fresh process, the variants interleaved;
/// the medians.
fn spawn_medians(reps: usize) -> std::collections::HashMap<&'static str, Spawned> {
    let mut runs: Vec<Vec<Spawned>> = SPAWN_VARIANTS.iter().map(|_| Vec::new()).collect();
    for _ in 0..reps {
        for (variant, runs) in SPAWN_VARIANTS.iter().zip(&mut runs) {
            runs.push(spawn_in_fresh_process(variant));
        }
    }
    SPAWN_VARIANTS
        .iter()
        .zip(runs)
        .map(|(variant, runs)| {
            let per_child = median(runs.iter().map(|run| run.per_child).collect());
            let bytes = median(runs.iter().map(|run| run.bytes).collect());
            (*variant, Spawned { per_child, bytes })
        })
        .collect()
}

/// What one spawn variant measured, in its own process.
struct Spawned {
    per_child: f64,
    bytes: f64,
}

/// Runs this binary again with `--spawn=<variant>` and reads its two numbers.
fn spawn_in_fresh_process(variant: &str) -> Spawned {
    let output = std::process::Command::new(std::env::current_exe().expect("own path"))
        .arg(format!("--spawn={variant}"))
        .output()
        .expect("spawn bench process");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text
        .split_whitespace()
        .map(|n| n.parse::<f64>().unwrap_or(f64::NAN));
    Spawned {
        per_child: numbers.next().unwrap_or(f64::NAN),
        bytes: numbers.next().unwrap_or(f64::NAN),
    }
}

/// Starts `n` children from `starters` concurrent tasks, then calls each once; returns
/// time and RSS growth per child. The first call makes the measure end when every child is
/// running: ractor defers an actor's loop set-up (and about 1.5 KiB of its memory) to the
/// actor's first turn, and kameo's `spawn` returns before `on_start`, which a spawning loop
/// that never yields would leave out of the measurement.
///
/// Variants: `raw`, `kameo`, `otp` (under a supervisor, one starter), the same with `8`
/// (eight starters), `part8` (eight, through a partition supervisor), and `rawdirect`,
/// `kameodirect`, `gs` (one starter, no supervisor).
async fn spawn_children(variant: &str, n: usize) -> (Duration, f64) {
    let starters = if variant.ends_with('8') { 8 } else { 1 };
    let each = n / starters;
    let before = rss_bytes();
    let started = Instant::now();
    let start = starter(variant.trim_end_matches('8')).await;
    let tasks: Vec<_> = (0..starters)
        .map(|key| {
            let start = start.clone();
            tokio::spawn(async move {
                let mut children = Vec::with_capacity(each);
                for _ in 0..each {
                    children.push(start(key).await);
                }
                children
            })
        })
        .collect();
    for task in tasks {
        for child in task.await.expect("starter task") {
            child.answers().await;
        }
    }
    let elapsed = started.elapsed();
    let grown = rss_bytes().saturating_sub(before) as f64 / n as f64;
    (elapsed / n as u32, grown)
}

/// A started child, to call once.
enum Child {
    Raw(ActorRef<RawMsg>),
    Kameo(::kameo::actor::ActorRef<KameoCounter>),
    Ours(ServerRef<Counter>),
}

impl Child {
    async fn answers(&self) {
        let answered = match self {
            Child::Raw(child) => child.call(|port| RawMsg::Call(0, port), None).await.is_ok(),
            Child::Kameo(child) => child.ask(AskAdd(0)).await.is_ok(),
            Child::Ours(child) => child
                .call_timeout(AddGet(0), Timeout::Infinity)
                .await
                .is_ok(),
        };
        assert!(answered, "a started child answers");
    }
}

/// Starts one child; its argument is the starter's number (the partition key).
type StartOne = Arc<dyn Fn(usize) -> BoxFuture<'static, Child> + Send + Sync>;

/// How a variant starts each child, with its supervisor set up.
async fn starter(variant: &str) -> StartOne {
    match variant {
        "raw" => {
            let name = format!("bench-spawn-{variant}");
            let parent = Actor::spawn(None, RawRespawner { child_name: name }, ())
                .await
                .expect("raw parent")
                .0
                .get_cell();
            Arc::new(move |_| {
                let parent = parent.clone();
                Box::pin(async move {
                    let spawned = Actor::spawn_linked(None, RawCounter, (), parent).await;
                    Child::Raw(spawned.expect("raw child").0)
                })
            })
        }
        "rawdirect" => Arc::new(|_| {
            Box::pin(async {
                let spawned = Actor::spawn(None, RawCounter, ()).await;
                Child::Raw(spawned.expect("raw child").0)
            })
        }),
        "kameo" => {
            let supervisor = kameo::spawn_supervisor();
            Arc::new(move |_| {
                let supervisor = supervisor.clone();
                Box::pin(async move { Child::Kameo(kameo::supervised(&supervisor, false).await) })
            })
        }
        "kameodirect" => Arc::new(|_| Box::pin(async { Child::Kameo(kameo::spawn_counter()) })),
        "gs" => Arc::new(|_| {
            Box::pin(async {
                let started = CounterServer::default().start().await;
                Child::Ours(started.expect("server"))
            })
        }),
        "part" => {
            // One partition per tokio worker; starter `t` routes its children by key `t`.
            let flags = PartitionFlags {
                partitions: workers(),
                ..PartitionFlags::default()
            };
            let partitioned = start_partitioned(flags, "bench-partitioned")
                .await
                .expect("partition supervisor");
            let spec = ChildSpec::worker("child", |parent| parent.start(CounterServer::default()))
                .restart(Restart::Temporary);
            Arc::new(move |key| {
                let (partitioned, spec) = (partitioned.clone(), spec.clone());
                Box::pin(async move {
                    let started = partitioned.start_child(&key, spec).await;
                    Child::Ours(our_child(started))
                })
            })
        }
        "otp" => {
            let supervisor = start_dynamic(DynamicFlags::default(), None)
                .await
                .expect("dynamic");
            let spec = ChildSpec::worker("child", |parent| parent.start(CounterServer::default()))
                .restart(Restart::Temporary);
            Arc::new(move |_| {
                let (supervisor, spec) = (supervisor.clone(), spec.clone());
                Box::pin(async move { Child::Ours(our_child(supervisor.start_child(spec).await)) })
            })
        }
        other => panic!("unknown spawn variant {other}"),
    }
}

/// The counter a supervisor started.
fn our_child<E: std::fmt::Debug>(started: Result<Option<ActorCell>, E>) -> ServerRef<Counter> {
    let cell = started.expect("child").expect("started");
    ServerRef::from_cell(cell).expect("a counter")
}

fn print_table(rows: &[Row], reps: usize) {
    let spans = if cfg!(feature = "message-spans") {
        "on"
    } else {
        "off"
    };
    println!(
        "\nmedian of {reps} interleaved runs; {} tokio workers; per-message tracing spans: {spans}; allocator: {}\n",
        workers(),
        support::ALLOCATOR_NAME
    );
    println!("| metric | raw ractor | kameo | otp | otp / raw | otp / kameo | target |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let (kameo, versus_kameo) = match row.kameo {
            Some(kameo) => (show(kameo, row.unit), format!("{:.2}x", row.ours / kameo)),
            None => ("–".to_owned(), "–".to_owned()),
        };
        println!(
            "| {} | {} | {kameo} | {} | {:.2}x | {versus_kameo} | {} |",
            row.metric,
            show(row.baseline, row.unit),
            show(row.ours, row.unit),
            row.ours / row.baseline,
            row.target
        );
    }
}

fn show(value: f64, unit: &str) -> String {
    match unit {
        "ns" if value >= 1_000.0 => format!("{:.1} µs", value / 1_000.0),
        "ns" => format!("{value:.0} ns"),
        "bytes" => format!("{:.1} KiB", value / 1024.0),
        other => format!("{value:.0} {other}"),
    }
}
