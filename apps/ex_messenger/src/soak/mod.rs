//! `ex_messenger soak`: proves the chat's promise (see [`crate::protocol`]) under load and
//! faults. It runs a server and N client processes ([`client`]) that say numbered lines at
//! a mixed pace in one room; with `--chaos` it also, at random moments, kills clients and
//! starts new ones, freezes one for longer than the liveness timeout, crashes the message
//! server and the room (through the server's fault hook), and once restarts the whole
//! server. At the end every client reports what it received by position in the room
//! ([`ledger`]) and the soak prints: accepted, delivered, lost, duplicated, out of order,
//! refused and removed by reason, and the server's memory and open files over time.

pub mod client;
pub mod ledger;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use otp::node::COOKIE_ENV;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;

use crate::cli::SoakArgs;
use ledger::{Span, Verdict};

/// Clients started at once (below the server's cap on connections being set up).
const WAVE: usize = 25;
/// The server's liveness timeout in the soak: a frozen client is removed within it.
const LIVENESS: Duration = Duration::from_secs(5);

/// A line from client `slot`.
struct Said {
    slot: usize,
    generation: usize,
    line: String,
}

/// One client process and what it last reported.
struct Slot {
    generation: usize,
    child: Child,
    stdin: ChildStdin,
    /// The last `STAT` of each generation (a killed client's last report stands).
    stats: BTreeMap<usize, String>,
    joined: bool,
    done: bool,
}

/// The server process.
struct Server {
    child: Child,
    stdin: ChildStdin,
    pid: u32,
    /// Lines it prints (fault hook answers).
    lines: mpsc::UnboundedReceiver<String>,
}

impl Server {
    async fn start(
        binary: &std::path::Path,
        cookie: &str,
        listen: &str,
    ) -> anyhow::Result<(Server, String)> {
        let liveness = LIVENESS.as_secs().to_string();
        let (child, stdin, mut lines) = spawn_piped(
            binary,
            &[
                "server",
                "--listen",
                listen,
                "--fault-hook",
                "--liveness-timeout",
                &liveness,
            ],
            cookie,
            &format!("server-{}", crate::random::number() % 1000),
        )?;
        let pid = child.id().context("server pid")?;
        let ready = lines
            .next_line()
            .await?
            .context("the server exited at start")?;
        let address = ready
            .rsplit(' ')
            .next()
            .context("server address")?
            .to_owned();
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = sender.send(line);
            }
        });
        Ok((
            Server {
                child,
                stdin,
                pid,
                lines: receiver,
            },
            address,
        ))
    }

    /// Crashes `what` through the fault hook and waits for its restart.
    async fn crash(&mut self, what: &str) -> anyhow::Result<()> {
        self.stdin
            .write_all(format!("crash {what}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .context("no answer from the fault hook")?
                .context("the server exited")?;
            match line.strip_prefix("FAULT ") {
                Some("restarted") => return Ok(()),
                Some(answer) => bail!("fault hook: {answer}"),
                None => {}
            }
        }
    }

    /// Resident memory (KiB) and open file descriptors.
    fn usage(&self) -> (u64, usize) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count())
            .unwrap_or(0);
        (rss, fds)
    }
}

/// Where processes' logs go (`soak --logs`); unset: dropped.
static LOGS: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Our own binary with `args` and the cookie in its environment: its stdin, and its stdout
/// line by line. Its stderr (its logs) goes to `<name>.log` under `--logs`, or nowhere.
fn spawn_piped(
    binary: &std::path::Path,
    args: &[&str],
    cookie: &str,
    name: &str,
) -> anyhow::Result<(Child, ChildStdin, Lines<BufReader<ChildStdout>>)> {
    let stderr = match LOGS.get() {
        Some(dir) => Stdio::from(std::fs::File::create(dir.join(format!("{name}.log")))?),
        None => Stdio::null(),
    };
    let mut child = Command::new(binary)
        .args(args)
        .env(COOKIE_ENV, cookie)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()?;
    let stdin = child.stdin.take().context("stdin")?;
    let lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    Ok((child, stdin, lines))
}

/// Starts client `slot`, generation `generation`, forwarding its lines to `said`.
fn spawn_client(
    binary: &std::path::Path,
    cookie: &str,
    server: &str,
    rate: f64,
    slot: usize,
    generation: usize,
    said: &mpsc::UnboundedSender<Said>,
) -> anyhow::Result<(Child, ChildStdin)> {
    let nick = format!("s{slot:03}g{generation}");
    let rate = rate.to_string();
    let (child, stdin, mut lines) = spawn_piped(
        binary,
        &[
            "soak-client",
            "--server",
            server,
            "--nick",
            &nick,
            "--rate",
            &rate,
        ],
        cookie,
        &nick,
    )?;
    let said = said.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if said
                .send(Said {
                    slot,
                    generation,
                    line,
                })
                .is_err()
            {
                break;
            }
        }
    });
    Ok((child, stdin))
}

fn random_below(n: usize) -> usize {
    ((crate::random::fraction() * n as f64) as usize).min(n.saturating_sub(1))
}

/// `ex_messenger soak`.
pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    if !cfg!(feature = "fault-hook") {
        bail!("the soak crashes servers through the test-only fault hook: run a build with it, e.g. `cargo run --release -p ex_messenger --features fault-hook -- soak ...`");
    }
    if let Some(dir) = &args.logs {
        std::fs::create_dir_all(dir)?;
        let _ = LOGS.set(dir.clone());
    }
    let binary = std::env::current_exe()?;
    let cookie = crate::random::hex(16)?;
    let (mut server, address) = Server::start(&binary, &cookie, "127.0.0.1:0").await?;
    let (said_tx, mut said) = mpsc::unbounded_channel();
    let mut verdict = Verdict::default();
    let mut slots: Vec<Slot> = Vec::new();
    let mut usage = vec![("start".to_owned(), server.usage())];

    eprintln!(
        "soak: starting {} clients against {address}...",
        args.clients
    );
    for wave in (0..args.clients).collect::<Vec<_>>().chunks(WAVE) {
        for &slot in wave {
            let (child, stdin) =
                spawn_client(&binary, &cookie, &address, args.rate, slot, 0, &said_tx)?;
            slots.push(Slot {
                generation: 0,
                child,
                stdin,
                stats: BTreeMap::new(),
                joined: false,
                done: false,
            });
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while wave.iter().any(|&slot| !slots[slot].joined) {
            let line = tokio::time::timeout_at(deadline, said.recv())
                .await
                .context("soak clients did not join in time")?
                .context("client output closed")?;
            take(&mut slots, &mut verdict, line);
        }
    }
    usage.push(("joined".to_owned(), server.usage()));
    for slot in &mut slots {
        slot.stdin.write_all(b"GO\n").await?;
    }
    eprintln!(
        "soak: {} clients in; running {} min{}",
        slots.len(),
        args.minutes,
        if args.chaos { " with chaos" } else { "" }
    );

    let started = Instant::now();
    let length = Duration::from_secs_f64(args.minutes * 60.0);
    let mut minute = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(60),
        Duration::from_secs(60),
    );
    let mut chaos_at = tokio::time::Instant::now() + Duration::from_secs(5);
    // The one server restart comes at a random moment of the middle third, every run.
    let restart_server_at = length.mul_f64((1.0 + crate::random::fraction()) / 3.0);
    let mut restarted_server = false;
    // Memory is compared with a server process that has warmed up: the first minute of
    // the process serving now (after a restart, the new one's).
    let mut server_started = Instant::now();
    let mut baseline: Option<usize> = None;
    let mut actions: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut frozen: Option<(usize, tokio::time::Instant)> = None;
    while started.elapsed() < length {
        tokio::select! {
            line = said.recv() => {
                let line = line.context("client output closed")?;
                take(&mut slots, &mut verdict, line);
            }
            _ = minute.tick() => {
                let mut label = format!("{:.0} min", started.elapsed().as_secs_f64() / 60.0);
                if baseline.is_none() && server_started.elapsed() >= Duration::from_secs(59) {
                    baseline = Some(usage.len());
                    label.push_str(" (baseline)");
                }
                usage.push((label, server.usage()));
            }
            _ = tokio::time::sleep_until(frozen.map_or(chaos_at, |(_, until)| until)), if frozen.is_some() => {
                if let Some((slot, _)) = frozen.take() {
                    crate::signals::send(&slots[slot].child, 18); // SIGCONT
                }
            }
            _ = tokio::time::sleep_until(chaos_at), if args.chaos => {
                chaos_at = tokio::time::Instant::now() + Duration::from_secs_f64(3.0 + 7.0 * crate::random::fraction());
                let roll = crate::random::fraction();
                let action = if !restarted_server && started.elapsed() >= restart_server_at {
                    restarted_server = true;
                    server.child.kill().await?;
                    let (restarted, _) = Server::start(&binary, &cookie, &address).await?;
                    server = restarted;
                    server_started = Instant::now();
                    baseline = None;
                    let label = format!("{:.1} min: server restarted", started.elapsed().as_secs_f64() / 60.0);
                    usage.push((label, server.usage()));
                    "server restarted"
                } else if roll < 0.5 {
                    let slot = random_below(slots.len());
                    let entry = &mut slots[slot];
                    entry.child.kill().await?;
                    entry.generation += 1;
                    let (child, mut stdin) = spawn_client(&binary, &cookie, &address, args.rate, slot, entry.generation, &said_tx)?;
                    stdin.write_all(b"GO\n").await?;
                    entry.child = child;
                    entry.stdin = stdin;
                    "client killed and replaced"
                } else if roll < 0.65 && frozen.is_none() {
                    let slot = random_below(slots.len());
                    crate::signals::send(&slots[slot].child, 19); // SIGSTOP
                    frozen = Some((slot, tokio::time::Instant::now() + LIVENESS + Duration::from_secs(3)));
                    "client frozen past the liveness timeout"
                } else if roll < 0.82 {
                    server.crash("message_server").await?;
                    "message server crashed"
                } else {
                    server.crash("room lobby").await?;
                    "room crashed"
                };
                *actions.entry(action).or_default() += 1;
            }
        }
    }
    if let Some((slot, _)) = frozen.take() {
        crate::signals::send(&slots[slot].child, 18);
    }

    eprintln!("soak: stopping; waiting for every client's last answers...");
    for slot in &mut slots {
        let _ = slot.stdin.write_all(b"STOP\n").await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while slots.iter().any(|s| !s.done) {
        match tokio::time::timeout_at(deadline, said.recv()).await {
            Ok(Some(line)) => take(&mut slots, &mut verdict, line),
            _ => break,
        }
    }
    let unfinished = slots.iter().filter(|s| !s.done).count();
    usage.push(("end".to_owned(), server.usage()));
    print_tables(
        &args,
        &slots,
        &verdict,
        (&usage, baseline),
        &actions,
        unfinished,
        started.elapsed(),
    );
    let (sums, _, _) = totals(&slots);
    let broken = verdict.lost()
        + ["hidden", "repeated", "disordered", "unanswered"]
            .iter()
            .map(|key| sums.get(*key).copied().unwrap_or(0))
            .sum::<u64>();
    // Where the promise broke, so a failed run (in CI, say) can be followed up in the
    // clients' logs (`--logs`).
    for (client, span, lost) in verdict.lossy().take(20) {
        eprintln!("soak: {client} lost {lost}: {}", span.encode());
    }
    for (slot, stat) in slots.iter().enumerate() {
        for (generation, stat) in &stat.stats {
            let broke = fields(stat).any(|(key, value)| {
                ["hidden", "repeated", "disordered"].contains(&key) && value != "0"
            });
            if broke {
                eprintln!("soak: s{slot:03}g{generation}: {stat}");
            }
        }
    }
    if broken > 0 || unfinished > 0 {
        bail!("the chat broke its promise: see the table (lost, duplicated, out of order, unanswered, clients that did not report)");
    }
    Ok(())
}

/// Takes one line a client printed.
fn take(slots: &mut [Slot], verdict: &mut Verdict, said: Said) {
    let Some(slot) = slots.get_mut(said.slot) else {
        return;
    };
    let current = said.generation == slot.generation;
    let line = said.line;
    if line == "JOINED" && current {
        slot.joined = true;
    } else if line == "DONE" && current {
        slot.done = true;
    } else if line.starts_with("UNANSWERED ") {
        eprintln!(
            "soak: client {} generation {}: {line}",
            said.slot, said.generation
        );
    } else if line.starts_with("STAT ") {
        slot.stats.insert(said.generation, line);
    } else if let Some(span) = Span::decode(&line) {
        verdict.span(format!("s{:03}g{}", said.slot, said.generation), span);
    } else if let Some(high) = line.strip_prefix("HIGH ") {
        if let Some((epoch, seq)) = high.split_once(' ') {
            if let (Ok(epoch), Ok(seq)) = (epoch.parse(), seq.parse()) {
                verdict.highest(epoch, seq);
            }
        }
    }
}

/// Sums a field of every generation's last report; `refused` and `lost` by reason.
fn totals(
    slots: &[Slot],
) -> (
    BTreeMap<String, u64>,
    BTreeMap<String, u64>,
    BTreeMap<String, u64>,
) {
    let (mut sums, mut refused, mut removed) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let stats = slots.iter().flat_map(|s| {
        s.stats
            .iter()
            .map(move |(g, stat)| (*g == s.generation, stat))
    });
    for (last, stat) in stats {
        for (key, value) in fields(stat) {
            match key {
                // What a killed client had in flight died with it: only the clients that
                // ran to the end can be owed answers.
                "unanswered" if !last => {}
                "refused" | "lost" => {
                    let into = if key == "refused" {
                        &mut refused
                    } else {
                        &mut removed
                    };
                    for pair in value.split(';').filter(|p| *p != "-") {
                        if let Some((why, n)) = pair.rsplit_once(':') {
                            *into.entry(why.to_owned()).or_default() +=
                                n.parse::<u64>().unwrap_or(0);
                        }
                    }
                }
                _ => *sums.entry(key.to_owned()).or_default() += value.parse::<u64>().unwrap_or(0),
            }
        }
    }
    (sums, refused, removed)
}

/// The `key=value` fields of a client's `STAT` line.
fn fields(stat: &str) -> impl Iterator<Item = (&str, &str)> {
    stat.trim_start_matches("STAT ")
        .split(' ')
        .filter_map(|field| field.split_once('='))
}

/// A row of the memory table: when, and the server's RSS (KiB) and open files then.
type Usage = (String, (u64, usize));

fn print_tables(
    args: &SoakArgs,
    slots: &[Slot],
    verdict: &Verdict,
    (usage, baseline): (&[Usage], Option<usize>),
    actions: &BTreeMap<&'static str, u64>,
    unfinished: usize,
    ran: Duration,
) {
    let (sums, refused, mut removed) = totals(slots);
    let get = |key: &str| sums.get(key).copied().unwrap_or(0);
    if get("kicked") > 0 {
        removed.insert("too slow (told on return)".into(), get("kicked"));
    }
    let by_reason = |counts: &BTreeMap<String, u64>| {
        if counts.is_empty() {
            return "0".to_owned();
        }
        counts
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "soak: {} clients, {:.1} min{}, {} client processes in all",
        args.clients,
        ran.as_secs_f64() / 60.0,
        if args.chaos { ", chaos" } else { "" },
        slots.iter().map(|s| s.generation + 1).sum::<usize>()
    );
    println!();
    println!("| accepted | delivered | lost | duplicated | out of order | unanswered at the end | refused (by reason) | removed (by reason) |");
    println!("|---:|---:|---:|---:|---:|---:|---|---|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        get("acked"),
        get("shown"),
        verdict.lost() + get("hidden"),
        get("repeated"),
        get("disordered"),
        get("unanswered"),
        by_reason(&refused),
        by_reason(&removed),
    );
    println!();
    let spans = verdict.spans_by_end();
    println!(
        "room stays checked: {} ({}); clients that did not report at the end: {unfinished}",
        spans.values().sum::<u64>(),
        spans
            .iter()
            .map(|(end, n)| format!("{n} {end}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if args.chaos {
        println!(
            "chaos: {}",
            actions
                .iter()
                .map(|(what, n)| format!("{n} {what}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!();
    println!("| when | server RSS | open fds |");
    println!("|---|---:|---:|");
    for (when, (rss, fds)) in usage {
        println!("| {when} | {:.1} MiB | {fds} |", *rss as f64 / 1024.0);
    }
    let (Some(&(_, (first, _))), Some((_, (end, _)))) =
        (baseline.and_then(|at| usage.get(at)), usage.last())
    else {
        return;
    };
    println!();
    println!(
        "server RSS at the end: {:.0}% of the baseline (the serving process's first minute)",
        *end as f64 * 100.0 / first.max(1) as f64
    );
}
