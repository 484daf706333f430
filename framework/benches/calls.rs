//! `cargo bench -p otp --bench calls`: criterion's view of call and cast, our GenServer beside
//! a raw ractor actor in the same group. `table.rs` prints the ratios; this one gives
//! criterion's confidence intervals.
//!
//! Each sample runs its loop as a task on the runtime's workers (`iter_custom`): driving it
//! from `block_on`'s thread would measure OS thread wake-ups instead (about 20x slower).

mod support;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otp::{GenServer, ServerRef, Timeout};
use ractor::{Actor, ActorRef};
use support::{Add, AddGet, Counter, CounterServer, RawCounter, RawMsg};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Times `iters` runs of `body` inside a runtime task.
fn timed<F, Fut>(runtime: &Runtime, iters: u64, body: F) -> Duration
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let work = body(iters);
    runtime
        .block_on(runtime.spawn(async move {
            let started = Instant::now();
            work.await;
            started.elapsed()
        }))
        .expect("bench task")
}

fn calls(c: &mut Criterion) {
    let runtime = runtime();
    let (raw, ours): (ActorRef<RawMsg>, ServerRef<Counter>) = runtime.block_on(async {
        let raw = Actor::spawn(None, RawCounter, ()).await.expect("raw").0;
        (raw, CounterServer::default().start().await.expect("otp"))
    });
    for (label, timeout) in [
        ("no timeout", Timeout::Infinity),
        ("5 s timeout", Timeout::After(Duration::from_secs(5))),
    ] {
        let mut group = c.benchmark_group(format!("call round-trip, {label}"));
        group.throughput(Throughput::Elements(1));
        let raw_timeout = match timeout {
            Timeout::Infinity => None,
            Timeout::After(after) => Some(after),
        };
        group.bench_function("raw ractor", |b| {
            b.iter_custom(|iters| {
                let raw = raw.clone();
                timed(&runtime, iters, move |iters| async move {
                    for _ in 0..iters {
                        let _ = raw.call(|port| RawMsg::Call(1, port), raw_timeout).await;
                    }
                })
            })
        });
        group.bench_function("otp GenServer", |b| {
            b.iter_custom(|iters| {
                let ours = ours.clone();
                timed(&runtime, iters, move |iters| async move {
                    for _ in 0..iters {
                        let _ = ours.call_timeout(AddGet(1), timeout).await;
                    }
                })
            })
        });
        group.finish();
    }

    let mut group = c.benchmark_group("cast, then one call to drain");
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw ractor", |b| {
        b.iter_custom(|iters| {
            let raw = raw.clone();
            timed(&runtime, iters, move |iters| async move {
                for _ in 0..iters {
                    let _ = raw.send_message(RawMsg::Cast(1));
                }
                let _ = raw.call(|port| RawMsg::Call(0, port), None).await;
            })
        })
    });
    group.bench_function("otp GenServer", |b| {
        b.iter_custom(|iters| {
            let ours = ours.clone();
            timed(&runtime, iters, move |iters| async move {
                for _ in 0..iters {
                    ours.cast(Add(1));
                }
                let _ = ours.call_timeout(AddGet(0), Timeout::Infinity).await;
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = calls
}
criterion_main!(benches);
