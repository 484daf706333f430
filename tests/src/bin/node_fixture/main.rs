//! A node for the distribution tests, in its own OS process:
//!
//! `node_fixture <name> <cookie> [--tls DIR] [--connect ADDR] [--prefix TEXT] [--flood N]
//!  [--monitor] [--cycle N] [--from IP] [--patience MS] [--max-unauthenticated N]
//!  [--auth-timeout MS] [--shout]`
//!
//! listens on an ephemeral loopback port (with mutual TLS from `DIR/{node.pem,node.key,ca.pem}`
//! if given), exports the `echo` server (whose replies start with `--prefix`; with `--shout`
//! another implementation of its protocol, [`Shouter`], runs under that name), prints
//! `READY <node name> <address>`, then optionally connects to another node (printing
//! `CONNECTED <peer>` or `CONNECT_ERROR <error>`), monitors its `echo` server (`--monitor`,
//! then prints `MONITORING`) and announces `--flood` processes to it, and runs until killed.
//!
//! `--from` dials from that local address; `--patience` retries a busy peer for up to that
//! long (`Node::connect_retrying`) and prints `CONNECTED <peer> after <ms> ms`.
//! `--max-unauthenticated` and `--auth-timeout` set those limits of the node.
//!
//! With `--scripted` it instead takes commands on standard input, one per line, each
//! answered with one line (process groups and global names; see `script.rs`).
//!
//! With `--cycle N` it instead comes and goes N times: a fresh node connects to `--connect`,
//! monitors its `echo`, calls it, and stops; then it prints `CYCLED N` and exits.

use std::time::{Duration, Instant};

use otp::node::{Cookie, ExportOptions, Node, NodeConfig, RemoteRef, Tls};
use otp::{Context, GenServer, Init};
use otp_tests::{Echo, EchoServer, Say, Shouter, ECHO, ECHO_SYS};

mod script;

otp::protocol! {
    /// A [`RemoteWatcherServer`] takes no messages.
    pub RemoteWatcher;
}

/// Holds a remote monitor on the `echo` of the node it is given.
struct RemoteWatcherServer;

impl Init<RemoteRef<Echo>> for RemoteWatcherServer {
    async fn init(echo: RemoteRef<Echo>, me: &Context<Self>) -> otp::Result<Self> {
        echo.monitor(me)?;
        Ok(RemoteWatcherServer)
    }
}

impl GenServer for RemoteWatcherServer {
    type Protocol = RemoteWatcher;
}

/// Connects `node` to `address`, monitors its `echo`, and waits until the monitor is in
/// place (the call after it is answered after the monitor request was handled).
async fn monitor_echo(node: &Node, address: &str) -> anyhow::Result<()> {
    let peer = node.connect(address).await?;
    let echo = node.remote::<Echo>(&peer, ECHO).await?;
    RemoteWatcherServer::with_args(echo.clone()).start().await?;
    echo.call(Say("monitoring".into())).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "fixture".into());
    let cookie = Cookie::new(args.next().unwrap_or_default())?;
    let (mut connect, mut prefix, mut flood, mut tls) = (None, String::new(), 0usize, None);
    let (mut monitor, mut cycles, mut shout, mut scripted) = (false, 0usize, false, false);
    let (mut from, mut patience, mut max_unauthenticated, mut auth_timeout) =
        (None, None, None, None);
    while let Some(flag) = args.next() {
        if flag == "--monitor" || flag == "--shout" || flag == "--scripted" {
            monitor |= flag == "--monitor";
            shout |= flag == "--shout";
            scripted |= flag == "--scripted";
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--connect" => connect = Some(value),
            "--prefix" => prefix = value,
            "--flood" => flood = value.parse()?,
            "--cycle" => cycles = value.parse()?,
            "--tls" => tls = Some(std::path::PathBuf::from(value)),
            "--from" => from = Some(value.parse()?),
            "--patience" => patience = Some(Duration::from_millis(value.parse()?)),
            "--max-unauthenticated" => max_unauthenticated = Some(value.parse()?),
            "--auth-timeout" => auth_timeout = Some(Duration::from_millis(value.parse()?)),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    let mut config = NodeConfig::new(name.clone(), "127.0.0.1:0".parse()?, cookie.clone());
    config.connect_from = from;
    if let Some(max) = max_unauthenticated {
        config.max_unauthenticated = max;
    }
    if let Some(timeout) = auth_timeout {
        config.auth_timeout = timeout;
    }
    if let Some(dir) = tls {
        config.tls = Some(Tls::from_pem_files(
            &dir.join("node.pem"),
            &dir.join("node.key"),
            &dir.join("ca.pem"),
            otp_tests::TLS_SERVER_NAME,
        )?);
    }
    let node = Node::start(config).await?;
    match shout {
        true => Shouter.start_named(ECHO).await?,
        false => EchoServer::new(prefix).start_named(ECHO).await?,
    };
    node.export::<Echo>(ECHO).await?;
    EchoServer::default().start_named(ECHO_SYS).await?;
    node.export_with::<Echo>(ECHO_SYS, ExportOptions { sys: true })
        .await?;
    println!("READY {} {}", node.name(), node.address());
    if let (Some(address), true) = (&connect, cycles > 0) {
        node.stop().await;
        for cycle in 0..cycles {
            let config = NodeConfig::new(
                format!("{name}{cycle}"),
                "127.0.0.1:0".parse()?,
                cookie.clone(),
            );
            let node = Node::start(config).await?;
            monitor_echo(&node, address).await?;
            node.stop().await;
        }
        println!("CYCLED {cycles}");
        return Ok(());
    }
    if let (Some(address), Some(patience)) = (&connect, patience) {
        let started = Instant::now();
        match node.connect_retrying(address.as_str(), patience).await {
            Ok(peer) => println!(
                "CONNECTED {peer} after {} ms",
                started.elapsed().as_millis()
            ),
            Err(error) => println!("CONNECT_ERROR {error}"),
        }
    } else if let Some(address) = &connect {
        match node.connect(address.as_str()).await {
            Ok(peer) => println!("CONNECTED {peer}"),
            Err(error) => println!("CONNECT_ERROR {error}"),
        }
    }
    if scripted {
        return script::run(node).await;
    }
    if let Some(address) = connect {
        if monitor {
            monitor_echo(&node, &address).await?;
            println!("MONITORING");
        }
    }
    // Announce many processes: every export is a remotely reachable endpoint that joins a
    // process group, which the peer mirrors with a proxy actor.
    for n in 0..flood {
        node.export::<Echo>(&format!("flood-{n}")).await?;
    }
    std::future::pending::<()>().await;
    Ok(())
}
