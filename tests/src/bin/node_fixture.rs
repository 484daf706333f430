//! A node for the distribution tests: `node_fixture <name> <cookie> [auth_timeout_ms]`
//! listens on an ephemeral loopback port, exports the `echo` server, prints
//! `READY <node name> <address>` and runs until killed.

use std::time::Duration;

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
    let mut config = NodeConfig::new(name, "127.0.0.1:0".parse()?, cookie);
    if let Some(ms) = args.next() {
        config.auth_timeout = Duration::from_millis(ms.parse()?);
    }
    let node = Node::start(config).await?;
    Echo.start_named(ECHO, ()).await?;
    node.export::<Echo>(ECHO).await?;
    println!("READY {} {}", node.name(), node.address());
    std::future::pending::<()>().await;
    Ok(())
}
