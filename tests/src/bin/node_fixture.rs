//! A node for the distribution tests, in its own OS process:
//!
//! `node_fixture <name> <cookie> [--tls DIR] [--connect ADDR] [--prefix TEXT] [--flood N]`
//!
//! listens on an ephemeral loopback port (with mutual TLS from `DIR/{node.pem,node.key,ca.pem}`
//! if given), exports the `echo` server (whose replies start with `--prefix`), prints
//! `READY <node name> <address>`, then optionally connects to another node (printing
//! `CONNECTED <peer>` or `CONNECT_ERROR <error>`) and announces `--flood` processes to it,
//! and runs until killed.

use otp::node::{Cookie, Node, NodeConfig, Tls};
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
    let (mut connect, mut prefix, mut flood, mut tls) = (None, String::new(), 0usize, None);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--connect" => connect = Some(value),
            "--prefix" => prefix = value,
            "--flood" => flood = value.parse()?,
            "--tls" => tls = Some(std::path::PathBuf::from(value)),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    let mut config = NodeConfig::new(name, "127.0.0.1:0".parse()?, cookie);
    if let Some(dir) = tls {
        config.tls = Some(Tls::from_pem_files(
            &dir.join("node.pem"),
            &dir.join("node.key"),
            &dir.join("ca.pem"),
            otp_tests::TLS_SERVER_NAME,
        )?);
    }
    let node = Node::start(config).await?;
    Echo { prefix }.start_named(ECHO, ()).await?;
    node.export::<Echo>(ECHO).await?;
    println!("READY {} {}", node.name(), node.address());
    if let Some(address) = connect {
        match node.connect(address.as_str()).await {
            Ok(peer) => println!("CONNECTED {peer}"),
            Err(error) => println!("CONNECT_ERROR {error}"),
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
