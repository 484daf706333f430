//! The load tool: `ex_messenger bench` starts a server (or uses `--server`), then N client
//! processes, each one real client node (node, message handler, join with challenge, lines
//! typed through the handler as the terminal types them) in one room. Each sends M
//! messages stamped with the send time; each counts what it receives from the others and
//! the delay. The parent prints delivered messages per second and latency percentiles.
//!
//! One client per OS process because ractor's registry and process groups are per process:
//! clients sharing a process would share names, which the real path cannot.

mod page;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use otp::node::{Cookie, COOKIE_ENV};
use otp::ServerRef;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::cli::{BenchArgs, BenchClientArgs};
use crate::client::{HandlerArgs, HandlerInfo, LocalChatClient, Output, Session, Trace};
use crate::names::Nick;
use crate::protocol::{Request, MESSAGE_HANDLER};

/// Clients started at once: below the server's cap on connections still authenticating.
const WAVE: usize = 32;
/// A client that receives nothing for this long stops counting.
const IDLE: Duration = Duration::from_secs(30);

/// Latencies in microseconds, rounded down to two significant digits (at most 10% low),
/// so that clients can report and the parent merge them.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Histogram(BTreeMap<u64, u64>);

impl Histogram {
    /// Counts one latency.
    pub fn record(&mut self, micros: u64) {
        let mut scale = 1;
        while micros / scale >= 100 {
            scale *= 10;
        }
        *self.0.entry(micros / scale * scale).or_default() += 1;
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, count) in &other.0 {
            *self.0.entry(*bucket).or_default() += count;
        }
    }

    /// How many latencies.
    pub fn count(&self) -> u64 {
        self.0.values().sum()
    }

    /// The bucket holding the `q` quantile (0..=1), in microseconds.
    pub fn quantile(&self, q: f64) -> u64 {
        let rank = ((self.count() as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in &self.0 {
            seen += count;
            if seen >= rank {
                return *bucket;
            }
        }
        0
    }

    /// `bucket:count,...`
    pub fn encode(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(b, c)| format!("{b}:{c}")).collect();
        pairs.join(",")
    }

    /// The inverse of [`encode`](Self::encode).
    pub fn decode(text: &str) -> Option<Self> {
        let mut histogram = Self::default();
        for pair in text.split(',').filter(|p| !p.is_empty()) {
            let (bucket, count) = pair.split_once(':')?;
            histogram
                .0
                .insert(bucket.parse().ok()?, count.parse().ok()?);
        }
        Some(histogram)
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// What one client reports when done.
struct Report {
    received: u64,
    first_sent: u64,
    last_received: u64,
    latencies: Histogram,
    /// Times the client lost the server (a slow reader is disconnected) and refusals it
    /// was shown: why a client may have received less than everything.
    outages: u64,
    refusals: u64,
}

impl Report {
    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.strip_prefix("DONE ")?.split(' ');
        let mut next = || fields.next()?.split_once('=').map(|(_, v)| v.to_owned());
        Some(Self {
            received: next()?.parse().ok()?,
            first_sent: next()?.parse().ok()?,
            last_received: next()?.parse().ok()?,
            latencies: Histogram::decode(&next()?)?,
            outages: next()?.parse().ok()?,
            refusals: next()?.parse().ok()?,
        })
    }
}

/// A client process and its pipes.
struct LoadClient {
    _child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl LoadClient {
    async fn expect(&mut self, prefix: &str, within: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .with_context(|| format!("a load client did not say {prefix} in time"))??
                .with_context(|| format!("a load client exited before {prefix}"))?;
            if line.starts_with(prefix) {
                return Ok(line);
            }
            if line.starts_with("FAILED") {
                bail!("a load client failed: {line}");
            }
        }
    }
}

/// A server process of the bench's own, read as a terminal would read it.
struct ServerProcess {
    child: Child,
    address: String,
    lines: mpsc::UnboundedReceiver<String>,
    /// The observer page watching it (`bench --observer`), closed with it.
    page: Option<AbortOnDrop>,
}

/// A task that ends when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ServerProcess {
    /// Starts `ex_messenger server` (joining `join`, if any) and waits until it listens.
    async fn start(bench: &Bench, join: Option<&str>, observed: bool) -> anyhow::Result<Self> {
        let mut command = Command::new(&bench.binary);
        command
            .args(["server", "--listen", "127.0.0.1:0"])
            .args(["--rate-limit", &bench.args.rate_limit.to_string()])
            .arg("--cluster-key-file")
            .arg(&bench.key_file)
            .env(COOKIE_ENV, &bench.cookie)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(join) = join {
            command.args(["--join", join]);
        }
        if observed {
            command.args(["--observer", "127.0.0.1:0"]);
        }
        let mut child = command.spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().context("server stdout")?).lines();
        let (sender, mut lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                let _ = sender.send(line);
            }
        });
        let ready = Self::next_matching(&mut lines, "listening on").await?;
        let address = ready
            .rsplit(' ')
            .next()
            .context("server address")?
            .to_owned();
        let page = match observed {
            true => {
                let printed = Self::next_matching(&mut lines, "Observer: ").await?;
                let url = printed.trim_start_matches("Observer: ").to_owned();
                let (shown, first) = tokio::sync::oneshot::channel();
                let page = AbortOnDrop(tokio::spawn(async move {
                    if let Err(error) = page::watch(&url, shown).await {
                        eprintln!("the observer page closed: {error}");
                    }
                }));
                tokio::time::timeout(Duration::from_secs(60), first)
                    .await
                    .context("the observer page showed nothing in time")?
                    .context("the observer page closed before it showed anything")?;
                Some(page)
            }
            false => None,
        };
        Ok(Self {
            child,
            address,
            lines,
            page,
        })
    }

    async fn next_matching(
        lines: &mut mpsc::UnboundedReceiver<String>,
        wanted: &str,
    ) -> anyhow::Result<String> {
        let wait = Duration::from_secs(60);
        loop {
            let line = tokio::time::timeout(wait, lines.recv())
                .await
                .with_context(|| format!("a server did not say {wanted:?} in time"))?
                .with_context(|| format!("a server exited before saying {wanted:?}"))?;
            if line.contains(wanted) {
                return Ok(line);
            }
        }
    }

    /// Stops it in order (SIGTERM) and returns the room lines it sent other servers and
    /// the CPU seconds it used.
    async fn stop(mut self) -> anyhow::Result<(u64, f64)> {
        // The page first: the feed ends with the server, which is no news.
        drop(self.page.take());
        crate::signals::send(&self.child, 15); // SIGTERM
        let line = Self::next_matching(&mut self.lines, "Shutting down").await?;
        let _ = self.child.wait().await;
        // "Shutting down; relayed N lines to other servers; used S s of CPU"
        let words: Vec<&str> = line.split(' ').collect();
        let relayed = words.get(3).and_then(|n| n.parse().ok());
        let cpu = words.get(9).and_then(|s| s.parse().ok());
        relayed
            .zip(cpu)
            .with_context(|| format!("unexpected shutdown line: {line}"))
    }
}

/// What one run measured.
struct Outcome {
    delivered: u64,
    expected: u64,
    seconds: f64,
    latencies: Histogram,
    /// Room lines servers sent each other.
    relayed: u64,
    /// CPU seconds the servers used, all of them (none for `--server`).
    cpu: f64,
}

/// What every run of one `bench` shares.
struct Bench {
    args: BenchArgs,
    binary: std::path::PathBuf,
    cookie: String,
    /// The cluster key of the bench's own servers.
    key_file: std::path::PathBuf,
}

/// `ex_messenger bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    // Children get the cookie through the environment, not the process list: the one
    // given, a fresh one for our own servers, or (neither) the usual $OTP_COOKIE or file.
    let cookie = match (&args.cookie, &args.server) {
        (Some(cookie), _) => cookie.clone(),
        (None, None) => crate::random::hex(16)?,
        (None, Some(_)) => std::env::var(COOKIE_ENV).unwrap_or_default(),
    };
    let key_file = std::env::temp_dir().join(format!(
        "ex_messenger-bench-{}-{}.key",
        std::process::id(),
        crate::random::hex(4)?
    ));
    let bench = Bench {
        binary: std::env::current_exe()?,
        cookie,
        key_file,
        args,
    };
    let mut rows = Vec::new();
    match &bench.args.server {
        Some(server) => rows.push((1, false, bench.clients(std::slice::from_ref(server)).await?)),
        None => {
            let baseline = (!bench.args.servers.contains(&1)).then_some(1);
            let observer = match bench.args.observer {
                true => &[false, true][..],
                false => &[false][..],
            };
            for servers in baseline
                .into_iter()
                .chain(bench.args.servers.iter().copied())
            {
                for &observed in observer {
                    rows.push((servers, observed, bench.cluster(servers, observed).await?));
                }
            }
        }
    }
    let _ = std::fs::remove_file(&bench.key_file);
    bench.print(&rows);
    Ok(())
}

impl Bench {
    /// Starts `count` servers of its own (the others joining the first), runs the clients
    /// spread over them, stops the servers.
    async fn cluster(&self, count: u64, observed: bool) -> anyhow::Result<Outcome> {
        let with = if observed { ", observed" } else { "" };
        eprintln!("starting {count} server(s){with}...");
        let first = ServerProcess::start(self, None, observed).await?;
        let mut servers = vec![first];
        for _ in 1..count {
            let join = servers[0].address.clone();
            servers.push(ServerProcess::start(self, Some(&join), observed).await?);
        }
        for server in &mut servers {
            for _ in 1..count {
                ServerProcess::next_matching(&mut server.lines, "Linked to server").await?;
            }
        }
        let addresses: Vec<String> = servers.iter().map(|s| s.address.clone()).collect();
        let mut outcome = self.clients(&addresses).await?;
        if servers
            .iter()
            .any(|s| s.page.as_ref().is_some_and(AbortOnDrop::is_finished))
        {
            bail!(
                "an observer page closed during the run: its figures would not be with a page open"
            );
        }
        for server in servers {
            let (relayed, cpu) = server.stop().await?;
            outcome.relayed += relayed;
            outcome.cpu += cpu;
        }
        Ok(outcome)
    }

    /// Runs the clients, client `i` on server `i % servers.len()`.
    async fn clients(&self, servers: &[String]) -> anyhow::Result<Outcome> {
        let args = &self.args;
        eprintln!("starting {} clients...", args.clients);
        let started = Instant::now();
        let mut clients = Vec::with_capacity(args.clients);
        for wave in (0..args.clients).collect::<Vec<_>>().chunks(WAVE) {
            let mut batch = Vec::new();
            for &i in wave {
                let mut child = Command::new(&self.binary);
                child
                    .args(["bench-client", "--server", &servers[i % servers.len()]])
                    .args(["--nick", &format!("load{i:04}")])
                    .args(["--messages", &args.messages.to_string()])
                    .args(["--rate", &args.rate.to_string()])
                    .args(["--size", &args.size.to_string()])
                    .args(["--peers", &args.clients.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .kill_on_drop(true);
                if !self.cookie.is_empty() {
                    child.env(COOKIE_ENV, &self.cookie);
                }
                let mut child = child.spawn()?;
                let stdin = child.stdin.take().context("stdin")?;
                let lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
                batch.push(LoadClient {
                    _child: child,
                    stdin,
                    lines,
                });
            }
            for client in &mut batch {
                client.expect("JOINED", Duration::from_secs(60)).await?;
            }
            clients.extend(batch);
        }
        eprintln!(
            "{} clients joined in {:.1} s; sending {} messages each{}",
            clients.len(),
            started.elapsed().as_secs_f64(),
            args.messages,
            if args.rate > 0.0 {
                format!(" at {} per second", args.rate)
            } else {
                " as fast as possible".into()
            }
        );
        for client in &mut clients {
            client.stdin.write_all(b"GO\n").await?;
            client.stdin.flush().await?;
        }
        let mut latencies = Histogram::default();
        let (mut delivered, mut first, mut last) = (0u64, u64::MAX, 0u64);
        let (mut outages, mut refusals) = (0u64, 0u64);
        let mut short = Vec::new();
        for client in &mut clients {
            let line = client.expect("DONE", Duration::from_secs(600)).await?;
            let report = Report::parse(&line).with_context(|| format!("bad report: {line}"))?;
            delivered += report.received;
            if report.received < (args.clients as u64 - 1) * args.messages {
                short.push(report.received);
            }
            first = first.min(report.first_sent);
            outages += report.outages;
            refusals += report.refusals;
            last = last.max(report.last_received);
            latencies.merge(&report.latencies);
        }
        if !short.is_empty() {
            short.sort_unstable();
            eprintln!(
                "{} clients received less than everything: from {} to {} lines",
                short.len(),
                short[0],
                short[short.len() - 1]
            );
        }
        if outages + refusals > 0 {
            eprintln!("clients lost the server {outages} times and were shown {refusals} refusals");
        }
        Ok(Outcome {
            delivered,
            expected: (args.clients as u64 - 1) * args.clients as u64 * args.messages,
            seconds: last.saturating_sub(first) as f64 / 1e9,
            latencies,
            relayed: 0,
            cpu: 0.0,
        })
    }

    /// One row per run; with several, each run's rate against the first's, and the
    /// servers' messages to each other per line said.
    fn print(&self, rows: &[(u64, bool, Outcome)]) {
        let args = &self.args;
        let rate = match args.rate > 0.0 {
            true => format!("{}/s", args.rate),
            false => "max".into(),
        };
        let lines_said = args.clients as u64 * args.messages;
        let base = rows.first().map_or(1.0, |(_, _, o)| per_second(o));
        println!("| servers | observer | clients | messages/client | rate/client | delivered | expected | seconds | delivered/s | vs first | p50 | p99 | server-to-server lines | per line said | servers' CPU | µs CPU per delivery |");
        println!(
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (servers, observed, outcome) in rows {
            let observer = if *observed { "page open" } else { "off" };
            println!(
                "| {servers} | {observer} | {} | {} | {rate} | {} | {} | {:.2} | {:.0} | {:.2}x | {:.1} ms | {:.1} ms | {} | {:.2} | {:.2} s | {:.2} |",
                args.clients,
                args.messages,
                outcome.delivered,
                outcome.expected,
                outcome.seconds,
                per_second(outcome),
                per_second(outcome) / base,
                outcome.latencies.quantile(0.50) as f64 / 1000.0,
                outcome.latencies.quantile(0.99) as f64 / 1000.0,
                outcome.relayed,
                outcome.relayed as f64 / lines_said.max(1) as f64,
                outcome.cpu,
                outcome.cpu * 1e6 / outcome.delivered.max(1) as f64,
            );
        }
    }
}

fn per_second(outcome: &Outcome) -> f64 {
    outcome.delivered as f64 / outcome.seconds.max(1e-9)
}

/// `ex_messenger bench-client`: one load client (internal to `bench`).
pub async fn client(args: BenchClientArgs) -> anyhow::Result<()> {
    let nick = Nick::parse(&args.nick)?;
    let cookie = Cookie::resolve(None, None)?;
    let (output, mut incoming) = mpsc::unbounded_channel();
    let (trace, mut answers) = mpsc::unbounded_channel();
    let handler_args = HandlerArgs {
        server: args.server.clone(),
        nick: nick.clone(),
        output,
        session: Session::shared(),
        give_up_after: Duration::from_secs(10),
        trace: Some(trace),
    };
    let tree =
        crate::client::start(None, crate::client::node_config(cookie)?, handler_args).await?;
    loop {
        match incoming.recv().await {
            Some(Output::Line(line)) if line.starts_with("**Type /help") => break,
            Some(Output::Line(_)) => {}
            Some(Output::Fatal(line)) => {
                println!("FAILED {line}");
                bail!(line)
            }
            None => bail!("the client stopped"),
        }
    }
    println!("JOINED");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while stdin.next_line().await?.as_deref() != Some("GO") {}

    let handler = ServerRef::<LocalChatClient>::whereis(MESSAGE_HANDLER).context("no handler")?;
    let first_sent = now_nanos();
    let sender = {
        let (messages, rate, size) = (args.messages, args.rate, args.size);
        // Paced clients start at a random point of their first gap, so that the room sees
        // a steady stream rather than all clients at the same instants.
        let offset = crate::random::fraction();
        tokio::spawn(async move {
            let gap = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
            let mut next = tokio::time::Instant::now() + gap.unwrap_or_default().mul_f64(offset);
            tokio::time::sleep_until(next).await;
            for seq in 0..messages {
                let mut text = format!("{seq} {}", now_nanos());
                while text.len() < size {
                    text.push('.');
                }
                handler.send_info(HandlerInfo::Input(Request::Say { text }));
                if let Some(gap) = gap {
                    next += gap;
                    tokio::time::sleep_until(next).await;
                }
            }
        })
    };
    let expected = (args.peers as u64 - 1) * args.messages;
    let mut latencies = Histogram::default();
    let (mut received, mut last_received) = (0u64, first_sent);
    let (mut outages, mut refusals) = (0u64, 0u64);
    while received < expected {
        let Ok(Some(output)) = tokio::time::timeout(IDLE, incoming.recv()).await else {
            break;
        };
        let Output::Line(line) = output else { break };
        if line.starts_with("Server down") {
            outages += 1;
        } else if line.starts_with("slow_down") || line.starts_with("not sent") {
            refusals += 1;
        }
        // "<nick>: <seq> <sent-nanos>...."
        let Some(stamp) = line
            .split_once(": ")
            .and_then(|(_, text)| text.split(' ').nth(1))
            .and_then(|s| s.trim_end_matches('.').parse::<u64>().ok())
        else {
            continue;
        };
        last_received = now_nanos();
        latencies.record(last_received.saturating_sub(stamp) / 1000);
        received += 1;
    }
    let _ = sender.await;
    // Done only once every line of ours was answered: a client that stopped as soon as it
    // had everyone else's lines would take its own last ones, still in flight, with it.
    let mut answered = 0;
    while answered < args.messages {
        match tokio::time::timeout(IDLE, answers.recv()).await {
            Ok(Some(Trace::Acked { .. } | Trace::Refused { .. })) => answered += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    println!(
        "DONE received={received} first={first_sent} last={last_received} hist={} outages={outages} refusals={refusals}",
        latencies.encode()
    );
    let _ = tree.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_and_round_trip() {
        let mut histogram = Histogram::default();
        for micros in 1..=1000 {
            histogram.record(micros);
        }
        assert_eq!(histogram.count(), 1000);
        assert_eq!(histogram.quantile(0.5), 500);
        assert_eq!(histogram.quantile(0.99), 990);
        assert_eq!(
            Histogram::decode(&histogram.encode()),
            Some(histogram.clone())
        );
        let mut merged = histogram.clone();
        merged.merge(&histogram);
        assert_eq!(merged.count(), 2000);
        assert_eq!(merged.quantile(0.99), 990);
    }
}
