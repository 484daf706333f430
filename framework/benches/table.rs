//! `cargo bench -p otp --bench table`: our GenServer and Supervisor against raw ractor,
//! measured in the same run and printed as a Markdown table of ratios.
//!
//! ractor's local figures are bimodal on 2 cores (caller and server on one worker or two),
//! so every metric runs `REPS` times, baseline and ours interleaved, and the medians are
//! compared. Memory per child is measured in a fresh process per variant, so that one
//! variant's freed pages cannot flatter the other.
//!
//! Environment: `BENCH_REPS` (default 5), `BENCH_SCALE` (default 1.0: multiplies counts).

mod support;

use std::time::{Duration, Instant};

use otp::supervisor::{
    start_dynamic, start_partitioned, ChildSpec, DynamicFlags, Flags, PartitionFlags, Restart,
    Strategy, SupervisorSpec,
};
use otp::{GenServer, Named, ServerRef, Timeout};
use ractor::{Actor, ActorCell, ActorRef};
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
    runtime.block_on(runtime.spawn(run())).expect("bench task");
}

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

/// One row: time per operation, baseline and ours (lower is better).
struct Row {
    metric: String,
    baseline: f64,
    ours: f64,
    unit: &'static str,
    target: &'static str,
}

async fn run() {
    let reps = reps();
    let mut rows = Vec::new();

    let raw = Actor::spawn(None, RawCounter, ()).await.expect("raw").0;
    let ours = CounterServer::default().start().await.expect("otp");

    for callers in [1, 8, 64] {
        let total = count(if callers == 1 { 200_000 } else { 400_000 });
        for timeout in [Timeout::Infinity, Timeout::After(Duration::from_secs(5))] {
            let (mut base, mut mine) = (vec![], vec![]);
            for _ in 0..reps {
                base.push(per_op(
                    total,
                    callers_run(callers, total, raw_caller(&raw, timeout)).await,
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
            rows.push(row(&metric, &base, &mine, "ns/call", "≤ 1.1x"));
        }
    }

    let casts = count(1_000_000);
    let (mut base, mut mine) = (vec![], vec![]);
    for _ in 0..reps {
        let started = Instant::now();
        for _ in 0..casts {
            let _ = raw.send_message(RawMsg::Cast(1));
        }
        let _ = raw.call(|port| RawMsg::Call(0, port), None).await;
        base.push(per_op(casts, started.elapsed()));
        let started = Instant::now();
        for _ in 0..casts {
            ours.cast(Add(1));
        }
        let _ = ours.call(AddGet(0)).await;
        mine.push(per_op(casts, started.elapsed()));
    }
    rows.push(row(
        "cast throughput (casts, then one call)",
        &base,
        &mine,
        "ns/cast",
        "≤ 1.1x",
    ));

    let restarts = count(2_000);
    let (raw_latencies, our_latencies) = restart_latencies(restarts).await;
    for (label, p) in [("median", 0.5), ("p99", 0.99)] {
        rows.push(Row {
            metric: format!("restart latency {label} (kill named child → call by name answers)"),
            baseline: percentile(&raw_latencies, p).as_nanos() as f64,
            ours: percentile(&our_latencies, p).as_nanos() as f64,
            unit: "ns",
            target: if p == 0.5 { "≤ 15 µs" } else { "≤ 50 µs" },
        });
    }

    let (raw_spawn, raw_bytes) = spawn_in_fresh_process("raw");
    let (our_spawn, our_bytes) = spawn_in_fresh_process("otp");
    rows.push(Row {
        metric: format!(
            "spawn {} dynamic children until each answers a call, per child",
            count(100_000)
        ),
        baseline: raw_spawn,
        ours: our_spawn,
        unit: "ns",
        target: "≤ 1.2x raw",
    });
    let (direct_spawn, _) = spawn_in_fresh_process("gs");
    rows.push(Row {
        metric: format!(
            "start {} GenServers directly (no supervisor), per child",
            count(100_000)
        ),
        baseline: raw_spawn,
        ours: direct_spawn,
        unit: "ns",
        target: "(where the supervisor's cost begins)",
    });
    let (raw_spawn8, _) = spawn_in_fresh_process("raw8");
    let (our_spawn8, _) = spawn_in_fresh_process("otp8");
    rows.push(Row {
        metric: format!(
            "spawn {} dynamic children until each answers, 8 concurrent starters, per child",
            count(100_000)
        ),
        baseline: raw_spawn8,
        ours: our_spawn8,
        unit: "ns",
        target: "≤ 7 µs",
    });
    let (part_spawn8, _) = spawn_in_fresh_process("part8");
    rows.push(Row {
        metric: format!(
            "spawn {} children through a partition supervisor ({} partitions), 8 concurrent starters, per child (vs raw, 8 starters)",
            count(100_000),
            workers()
        ),
        baseline: raw_spawn8,
        ours: part_spawn8,
        unit: "ns",
        target: "≤ 1.2x raw",
    });
    rows.push(Row {
        metric: "memory per dynamic child (RSS growth)".into(),
        baseline: raw_bytes,
        ours: our_bytes,
        unit: "bytes",
        target: "≤ 12 KiB",
    });

    print_table(&rows, reps);
}

fn row(metric: &str, base: &[f64], mine: &[f64], unit: &'static str, target: &'static str) -> Row {
    Row {
        metric: metric.into(),
        baseline: median(base.to_vec()),
        ours: median(mine.to_vec()),
        unit,
        target,
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

/// Kill the registered child `n` times each way; each latency runs from the kill to the
/// first successful call through the name on the new instance.
async fn restart_latencies(n: usize) -> (Vec<Duration>, Vec<Duration>) {
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
    parent.stop(None);

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
    ours.sort();
    (raw, ours)
}

/// Runs this binary again with `--spawn=<variant>` and reads its two numbers.
fn spawn_in_fresh_process(variant: &str) -> (f64, f64) {
    let output = std::process::Command::new(std::env::current_exe().expect("own path"))
        .arg(format!("--spawn={variant}"))
        .output()
        .expect("spawn bench process");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text
        .split_whitespace()
        .map(|n| n.parse::<f64>().unwrap_or(f64::NAN));
    (
        numbers.next().unwrap_or(f64::NAN),
        numbers.next().unwrap_or(f64::NAN),
    )
}

/// Starts `n` children under a supervisor from `starters` concurrent tasks, then calls each
/// once; returns time and RSS growth per child. The first call makes the measure end when
/// every child is running: ractor defers an actor's loop set-up (and about 1.5 KiB of its
/// memory) to the actor's first turn, which a spawning loop that never yields would leave
/// out of the measurement. Variants: `raw`, `otp` (one starter), `raw8`, `otp8` (eight),
/// `part8` (eight, through a partition supervisor), `gs` (one starter, no supervisor).
async fn spawn_children(variant: &str, n: usize) -> (Duration, f64) {
    let starters = if variant.ends_with('8') { 8 } else { 1 };
    let each = n / starters;
    let before = rss_bytes();
    let started = Instant::now();
    let raw = variant.starts_with("raw");
    let tasks: Vec<tokio::task::JoinHandle<Vec<ActorCell>>> = if raw {
        let name = format!("bench-spawn-{variant}");
        let parent = Actor::spawn(None, RawRespawner { child_name: name }, ())
            .await
            .expect("raw parent")
            .0;
        (0..starters)
            .map(|_| {
                let parent = parent.get_cell();
                tokio::spawn(async move {
                    let mut cells = Vec::with_capacity(each);
                    for _ in 0..each {
                        let (child, _) = Actor::spawn_linked(None, RawCounter, (), parent.clone())
                            .await
                            .expect("raw child");
                        cells.push(child.get_cell());
                    }
                    cells
                })
            })
            .collect()
    } else if variant == "gs" {
        // GenServers started directly, no supervisor: what the supervisor itself adds is
        // `otp` minus this.
        vec![tokio::spawn(async move {
            let mut cells = Vec::with_capacity(each);
            for _ in 0..each {
                cells.push(
                    CounterServer::default()
                        .start()
                        .await
                        .expect("server")
                        .cell(),
                );
            }
            cells
        })]
    } else if variant.starts_with("part") {
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
        (0..starters)
            .map(|starter| {
                let (partitioned, spec) = (partitioned.clone(), spec.clone());
                tokio::spawn(async move {
                    let mut cells = Vec::with_capacity(each);
                    for _ in 0..each {
                        cells.push(
                            partitioned
                                .start_child(&starter, spec.clone())
                                .await
                                .expect("child")
                                .expect("started"),
                        );
                    }
                    cells
                })
            })
            .collect()
    } else {
        let supervisor = start_dynamic(DynamicFlags::default(), None)
            .await
            .expect("dynamic");
        let spec = ChildSpec::worker("child", |parent| parent.start(CounterServer::default()))
            .restart(Restart::Temporary);
        (0..starters)
            .map(|_| {
                let (supervisor, spec) = (supervisor.clone(), spec.clone());
                tokio::spawn(async move {
                    let mut cells = Vec::with_capacity(each);
                    for _ in 0..each {
                        cells.push(
                            supervisor
                                .start_child(spec.clone())
                                .await
                                .expect("child")
                                .expect("started"),
                        );
                    }
                    cells
                })
            })
            .collect()
    };
    for task in tasks {
        for cell in task.await.expect("starter task") {
            if raw {
                let child: ActorRef<RawMsg> = cell.into();
                child
                    .call(|port| RawMsg::Call(0, port), None)
                    .await
                    .expect("raw child answers");
            } else {
                let child = ServerRef::<Counter>::from_cell(cell).expect("a counter");
                child
                    .call_timeout(AddGet(0), Timeout::Infinity)
                    .await
                    .expect("child answers");
            }
        }
    }
    let elapsed = started.elapsed();
    let grown = rss_bytes().saturating_sub(before) as f64 / n as f64;
    (elapsed / n as u32, grown)
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
    println!("| metric | raw ractor | otp | otp / raw | target |");
    println!("|---|---:|---:|---:|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {:.2}x | {} |",
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
