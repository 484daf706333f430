//! `cargo bench -p otp --bench remote`: our nodes against raw ractor_cluster, two OS
//! processes on 127.0.0.1, measured in the same run and printed as a Markdown table.
//!
//! The binary runs itself twice more as servers (`--serve raw`, `--serve otp`), each with
//! `FANOUT` counters; this process is the client of both. Payloads are 100 bytes: a
//! `Vec<u8>` for raw ractor_cluster (its own binary encoding), a 100-character string for
//! ours (JSON). Environment: `BENCH_REPS` (default 3), `BENCH_SCALE` (default 1.0),
//! `BENCH_ONLY=calls` (only the call round trips, to profile them), `BENCH_WORKERS`
//! (tokio workers per process, default 2).

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use otp::node::pg::Scope;
use otp::node::{Cookie, Node, NodeConfig, RemoteRef};
use otp::{Context, Flow, GenServer, Timeout};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::{NodeServer, RactorClusterMessage};
use serde::{Deserialize, Serialize};

const COOKIE: &str = "remote-bench-cookie";
/// The process-group scope and group of the counters, for the broadcast.
const SCOPE: &str = "bench";
const GROUP: &str = "counters";
/// Counters on the server node, for the fan-out.
const FANOUT: usize = 100;

// ---------- raw ractor_cluster ----------

#[derive(RactorClusterMessage)]
enum RawRemote {
    Cast(Vec<u8>),
    #[rpc]
    Call(Vec<u8>, RpcReplyPort<Vec<u8>>),
    #[rpc]
    Count(RpcReplyPort<u64>),
}

struct RawCounter;

impl Actor for RawCounter {
    type Msg = RawRemote;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<RawRemote>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ActorRef<RawRemote>,
        message: RawRemote,
        count: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RawRemote::Cast(_) => *count += 1,
            RawRemote::Call(payload, reply) => {
                let _ = reply.send(payload);
            }
            RawRemote::Count(reply) => {
                let _ = reply.send(*count);
            }
        }
        Ok(())
    }
}

fn raw_group(n: usize) -> String {
    format!("bench-raw-{n}")
}

// ---------- ours ----------

otp::protocol! {
    /// The counter's messages: every answer is text, as the cast's payload is. A scope's
    /// members' casts are `Clone`.
    #[derive(Clone, Serialize, Deserialize)]
    pub Counter;
    calls CounterCall {
        /// Answers its payload.
        Echo(String) -> String,
        /// Answers the casts counted so far.
        Count -> String,
    }
    casts CounterCast {
        /// Counted; its payload is dropped.
        Note(String),
    }
}

#[derive(Default)]
struct CounterServer {
    count: u64,
}

impl GenServer for CounterServer {
    type Protocol = Counter;

    async fn handle_call(&mut self, call: CounterCall<'_>, _me: &Context<Self>) -> otp::Result {
        Ok(match call {
            CounterCall::Echo(Echo(text), caller) => caller.reply(text),
            CounterCall::Count(Count, caller) => caller.reply(self.count.to_string()),
        })
    }

    async fn handle_cast(&mut self, _: CounterCast, _me: &Context<Self>) -> otp::Result {
        self.count += 1;
        Ok(Flow::Continue)
    }
}

fn our_name(n: usize) -> String {
    format!("bench-otp-{n}")
}

// ---------- processes ----------

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .enable_all()
        .build()
        .expect("tokio runtime");
    let args: Vec<String> = std::env::args().collect();
    let job = match args.iter().find_map(|a| a.strip_prefix("--serve=")) {
        Some("raw") => runtime.spawn(serve_raw()),
        Some(_) => runtime.spawn(serve_ours()),
        None => runtime.spawn(measure()),
    };
    runtime.block_on(job).expect("bench task");
}

/// Every process's tokio workers: `BENCH_WORKERS`, default 2 (one saves the cross-thread
/// wake-ups of a call's hops).
fn workers() -> usize {
    std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

async fn serve_raw() {
    let port = free_port();
    let server = NodeServer::new(
        port,
        COOKIE.into(),
        "rawserver".into(),
        "127.0.0.1".into(),
        None,
        None,
    )
    .with_listen_addr(std::net::Ipv4Addr::LOCALHOST.into());
    let _node = Actor::spawn(None, server, ()).await.expect("raw node").0;
    for n in 0..FANOUT {
        let counter = Actor::spawn(None, RawCounter, ())
            .await
            .expect("raw counter")
            .0;
        ractor::pg::join(raw_group(n), vec![counter.get_cell()]);
    }
    println!("READY 127.0.0.1:{port}");
    std::future::pending::<()>().await;
}

async fn serve_ours() {
    let config = NodeConfig::new(
        "otpserver",
        "127.0.0.1:0".parse().unwrap(),
        Cookie::new(COOKIE).unwrap(),
    );
    let node = Node::start(config).await.expect("otp node");
    let scope = Scope::start(SCOPE).await.expect("scope");
    for n in 0..FANOUT {
        let counter = CounterServer::default()
            .start_named(our_name(n))
            .await
            .expect("counter");
        node.export::<Counter>(&our_name(n)).await.expect("export");
        scope.join(GROUP, &counter).await.expect("join");
    }
    println!("READY {} {}", node.address(), node.name());
    std::future::pending::<()>().await;
}

/// Starts a server process and returns it with its `READY` words.
fn server(kind: &str) -> (Child, Vec<String>) {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .arg(format!("--serve={kind}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("server process");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("READY line");
    let words: Vec<String> = line.split_whitespace().skip(1).map(str::to_owned).collect();
    (child, words)
}

fn count(base: usize) -> usize {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    ((base as f64 * scale) as usize).max(FANOUT)
}

/// The casts a counter has counted.
async fn counted(member: &otp::node::Member<Counter>) -> u64 {
    let count = member.call(Count).await.expect("count");
    count.parse().expect("a number")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn measure() {
    let (mut raw_process, raw_words) = server("raw");
    let (mut our_process, our_words) = server("otp");

    // Raw client: a plain NodeServer, connected, waiting for the counters' group members.
    let raw_client = NodeServer::new(
        free_port(),
        COOKIE.into(),
        "rawclient".into(),
        "127.0.0.1".into(),
        None,
        None,
    )
    .with_listen_addr(std::net::Ipv4Addr::LOCALHOST.into());
    let raw_client = Actor::spawn(None, raw_client, ())
        .await
        .expect("raw client")
        .0;
    ractor_cluster::client_connect(&raw_client, raw_words[0].as_str())
        .await
        .expect("raw connect");
    let mut raw: Vec<ActorRef<RawRemote>> = Vec::new();
    while raw.len() < FANOUT {
        raw = (0..FANOUT)
            .filter_map(|n| {
                ractor::pg::get_members(&raw_group(n))
                    .into_iter()
                    .next()
                    .map(ActorRef::from)
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Our client node.
    let config = NodeConfig::new(
        "otpclient",
        "127.0.0.1:0".parse().unwrap(),
        Cookie::new(COOKIE).unwrap(),
    );
    let node = Node::start(config).await.expect("otp client");
    let peer = node
        .connect(our_words[0].as_str())
        .await
        .expect("otp connect");
    let scope = Scope::start(SCOPE).await.expect("scope");
    while scope.members::<Counter>(GROUP).len() < FANOUT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut ours: Vec<RemoteRef<Counter>> = Vec::new();
    for n in 0..FANOUT {
        ours.push(
            node.remote::<Counter>(&peer, &our_name(n))
                .await
                .expect("remote ref"),
        );
    }

    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let text = "x".repeat(100);
    let bytes = vec![7u8; 100];
    let calls = count(20_000);
    // `BENCH_ONLY=calls` leaves out the casts, to profile one remote call end to end.
    let only_calls = std::env::var("BENCH_ONLY").is_ok_and(|only| only == "calls");
    let casts = if only_calls { 0 } else { count(200_000) };
    let (mut raw_rtt, mut our_rtt, mut raw_cast, mut our_cast, mut raw_fan, mut our_fan) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut raw_sent, mut our_sent) = (vec![0u64; FANOUT], vec![0u64; FANOUT]);
    let mut broadcast = vec![];
    let members = scope.members::<Counter>(GROUP);
    for _ in 0..reps {
        let started = Instant::now();
        for _ in 0..calls {
            ractor::call!(raw[0], RawRemote::Call, bytes.clone()).expect("raw call");
        }
        raw_rtt.push(started.elapsed().as_nanos() as f64 / calls as f64);
        let started = Instant::now();
        for _ in 0..calls {
            ours[0]
                .call_timeout(Echo(text.clone()), Timeout::Infinity)
                .await
                .expect("call");
        }
        our_rtt.push(started.elapsed().as_nanos() as f64 / calls as f64);

        for (targets, into) in [(1, &mut raw_cast), (FANOUT, &mut raw_fan)] {
            let started = Instant::now();
            for i in 0..casts {
                let _ = raw[i % targets].cast(RawRemote::Cast(bytes.clone()));
                raw_sent[i % targets] += 1;
            }
            for (n, actor) in raw.iter().enumerate().take(targets) {
                while ractor::call!(actor, RawRemote::Count).expect("count") < raw_sent[n] {}
            }
            into.push(casts as f64 / started.elapsed().as_secs_f64());
        }
        for (targets, into) in [(1, &mut our_cast), (FANOUT, &mut our_fan)] {
            let started = Instant::now();
            for i in 0..casts {
                ours[i % targets].cast(Note(text.clone()));
                our_sent[i % targets] += 1;
            }
            for (n, remote) in ours.iter().enumerate().take(targets) {
                loop {
                    let count: u64 = remote
                        .call(Count)
                        .await
                        .expect("count")
                        .parse()
                        .expect("a number");
                    if count >= our_sent[n] {
                        break;
                    }
                }
            }
            into.push(casts as f64 / started.elapsed().as_secs_f64());
        }
        // One broadcast per hundred deliveries: each crosses the link once and is handed
        // to the hundred members there. Each member's count is asked through the same
        // scope process, so it answers after the broadcasts.
        if casts > 0 {
            // Ten times the fan-out's deliveries: at this rate fewer would take a few ms.
            let rounds = casts / FANOUT * 10;
            let mut expected = Vec::new();
            for member in &members {
                expected.push(counted(member).await + rounds as u64);
            }
            // Built once, as the text was: the loop measures only the broadcasts.
            let note = CounterCast::Note(Note(text.clone()));
            let started = Instant::now();
            for _ in 0..rounds {
                scope.broadcast::<Counter>(GROUP, &note);
            }
            for (member, expected) in members.iter().zip(expected) {
                while counted(member).await < expected {}
            }
            broadcast.push((rounds * FANOUT) as f64 / started.elapsed().as_secs_f64());
        }
    }
    let broadcast_row = (!only_calls).then(|| {
        (
            median(raw_fan.clone()),
            median(our_fan.clone()),
            median(broadcast),
        )
    });
    let rows = [
        (
            "remote call round-trip, 1 caller",
            median(raw_rtt),
            median(our_rtt),
            "µs",
            true,
        ),
        (
            "remote cast throughput, 1 server",
            median(raw_cast),
            median(our_cast),
            "msgs/s",
            false,
        ),
        (
            "fan-out: 100-byte casts to 100 servers",
            median(raw_fan),
            median(our_fan),
            "msgs/s",
            false,
        ),
    ];
    println!(
        "\nmedian of {reps} interleaved runs; two processes on 127.0.0.1; {} tokio workers each\n",
        workers()
    );
    println!("| metric | raw ractor_cluster | otp | cost ratio (otp / raw) | target |");
    println!("|---|---:|---:|---:|---|");
    // With `BENCH_ONLY=calls` the cast rows were not measured.
    let measured = rows.into_iter().filter(|row| !only_calls || row.4);
    for (metric, baseline, mine, unit, lower_is_better) in measured {
        let (shown_raw, shown_ours, ratio) = if lower_is_better {
            (
                format!("{:.1} µs", baseline / 1000.0),
                format!("{:.1} µs", mine / 1000.0),
                mine / baseline,
            )
        } else {
            (
                format!("{:.0}k {unit}", baseline / 1000.0),
                format!("{:.0}k {unit}", mine / 1000.0),
                baseline / mine,
            )
        };
        println!("| {metric} | {shown_raw} | {shown_ours} | {ratio:.2}x | ≤ 1.2x |");
    }
    if let Some((raw_each, our_each, grouped)) = broadcast_row {
        println!("\n| 100-byte casts to 100 members on one node | deliveries/s | vs raw per-member casts |");
        println!("|---|---:|---:|");
        println!(
            "| raw ractor_cluster, one cast per member | {:.0}k | 1.00x |",
            raw_each / 1000.0
        );
        println!(
            "| otp, one remote cast per member | {:.0}k | {:.2}x |",
            our_each / 1000.0,
            our_each / raw_each
        );
        println!(
            "| otp, `pg` broadcast (one per node) | {:.0}k | {:.2}x |",
            grouped / 1000.0,
            grouped / raw_each
        );
    }
    let _ = raw_process.kill();
    let _ = our_process.kill();
}
