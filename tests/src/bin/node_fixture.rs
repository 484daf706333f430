//! A node for the distribution tests, in its own OS process:
//!
//! `node_fixture <name> <cookie> [--connect ADDR] [--prefix TEXT] [--flood N]`
//!
//! listens on an ephemeral loopback port, exports the `echo` server (whose replies start
//! with `--prefix`), optionally connects to another node and announces `--flood` processes
//! to it, prints `READY <node name> <address>` and runs until killed.

use otp::node::{Cookie, Node, NodeConfig};
use otp::GenServer;
use otp_tests::{Echo, ECHO};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "fixture".into());
    let cookie = Cookie::new(args.next().unwrap_or_default())?;
    let (mut connect, mut prefix, mut flood) = (None, String::new(), 0usize);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--connect" => connect = Some(value),
            "--prefix" => prefix = value,
            "--flood" => flood = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    let node = Node::start(NodeConfig::new(name, "127.0.0.1:0".parse()?, cookie)).await?;
    Echo { prefix }.start_named(ECHO, ()).await?;
    node.export::<Echo>(ECHO).await?;
    if let Some(address) = connect {
        node.connect(address.as_str()).await?;
    }
    // Announce many processes: every export is a remotely reachable endpoint that joins a
    // process group, which the peer mirrors with a proxy actor.
    for n in 0..flood {
        node.export::<Echo>(&format!("flood-{n}")).await?;
    }
    println!("READY {} {}", node.name(), node.address());
    std::future::pending::<()>().await;
    Ok(())
}
