//! The server side: its supervision tree (`supervisor-specs/ex_messenger_server.json`)
//! and the `ex_messenger server` command.
//!
//! ```text
//! ex_messenger_server (rest_for_one)
//! ├── node            the distribution node clients (and other servers) connect to
//! ├── scope           the cluster's process groups (servers, rooms)
//! ├── nicks           the cluster's nick table
//! ├── cluster         this server's relay: links to the other servers, hands lines on
//! ├── rooms           dynamic supervisor, one RoomServer per room
//! └── message_server  users, sessions, routing (exported)
//! ```
//!
//! | file | what |
//! |---|---|
//! | `message_server.rs` | the exported GenServer: routes each request between users and rooms |
//! | `cluster.rs` | one chat across servers: the relay, nicks and rooms that span servers |
//! | `sessions.rs` | who has joined, tokens, joins in progress, the order of each user's requests |
//! | `membership.rs` | who is in which room: one record, kept by the message server, read by rooms |
//! | `roster.rs` | who is in which room on the cluster's other servers, kept by the relay |
//! | `directory.rs` | the rooms' processes, started through the `rooms` supervisor |
//! | `policy.rs` | what is accepted: flood limit, size, cleaning |
//! | `room.rs` | one GenServer per room: numbering, fan-out, slow readers |
//! | `keys.rs` | the key that signs session tokens, outliving the message server |
//! | `fault_hook.rs` | test-only faults (cargo feature `fault-hook`) |

pub mod cluster;
mod directory;
#[cfg(feature = "fault-hook")]
mod fault_hook;
mod keys;
mod membership;
pub mod message_server;
mod policy;
pub mod room;
mod roster;
mod sessions;

use otp::gen_server::Init;
use otp::node::global::Global;
use otp::node::pg::{Peers, Scope};
use otp::node::{Cookie, Node, NodeConfig};
use otp::spec::Registry;
use otp::supervisor::{ChildSpec, ChildType, Flags, SupervisorRef, SupervisorSpec};

pub use keys::SessionKeys;
pub use membership::Membership;
use message_server::{MessageServer, MessageServerArgs};

use crate::cli::ServerArgs;
use crate::protocol::MESSAGE_SERVER;
use crate::trees::BuiltIn;

/// The server's tree, compiled in so the binary runs from anywhere; `--tree` loads another.
const TREE: BuiltIn = BuiltIn {
    text: include_str!("../../../../supervisor-specs/ex_messenger_server.json"),
    path: "supervisor-specs/ex_messenger_server.json",
};

/// The start names the server's spec file may use: `node`, `message_server`, and the
/// cluster's `scope`, `nicks` and `cluster` (the relay, dialing `join`).
pub fn registry(config: NodeConfig, args: MessageServerArgs, join: Vec<String>) -> Registry {
    let relay = cluster::RelayArgs {
        key: args.cluster_key.clone(),
        join,
        roster: args.roster.clone(),
    };
    let mut registry = crate::trees::registry(
        config,
        "message_server",
        MESSAGE_SERVER,
        MessageServer::with_args,
        args,
    );
    registry.child("scope", ChildType::Worker, |id, (): (), _name| {
        Scope::child_spec(id, cluster::SCOPE, Peers::Admitted)
    });
    registry.child("nicks", ChildType::Worker, |id, (): (), _name| {
        Global::child_spec(id, cluster::NICKS, Peers::Admitted)
    });
    registry.child("cluster", ChildType::Worker, move |id, (): (), _name| {
        let relay = relay.clone();
        ChildSpec::worker(id, move |parent| {
            parent.start_named(
                cluster::CLUSTER,
                cluster::ClusterRelay::with_args(relay.clone()),
            )
        })
    });
    registry
}

/// The node's name: `server-<port>`, unique among the servers of one host, so that
/// servers can link to each other (a node name names one node in a cluster).
fn node_name(listen: std::net::SocketAddr) -> String {
    match listen.port() {
        0 => format!("server-{:08x}", crate::random::number() as u32),
        port => format!("server-{port}"),
    }
}

/// The default cluster key file, in the home directory.
pub const CLUSTER_KEY_FILE: &str = ".ex_messenger.cluster";

/// The cluster's secret, from `file` (or `~/.ex_messenger.cluster`), created on first use
/// like a cookie file (128 random bits, mode 0600).
fn cluster_secret(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let path = match file {
        Some(path) => path.to_owned(),
        None => std::env::var_os("HOME")
            .map(|home| std::path::PathBuf::from(home).join(CLUSTER_KEY_FILE))
            .ok_or_else(|| anyhow::anyhow!("$HOME is not set: pass --cluster-key-file"))?,
    };
    let secret =
        Cookie::from_file(&path).map_err(|error| anyhow::anyhow!("cluster key: {error}"))?;
    Ok(secret.secret().to_owned())
}

/// `ex_messenger server`: runs the tree until SIGINT/SIGTERM, then stops it in order.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let cookie = Cookie::resolve(
        args.cookie.cookie.as_deref(),
        args.cookie.cookie_file.as_deref(),
    )?;
    let secret = cluster_secret(args.cluster_key_file.as_deref())?;
    let mut config = NodeConfig::new(node_name(args.listen), args.listen, cookie);
    config.liveness_timeout = std::time::Duration::from_secs(args.liveness_timeout);
    let server_args = MessageServerArgs {
        keys: SessionKeys::from_secret(secret.as_bytes()),
        cluster_key: cluster::ClusterKey::from_secret(secret.as_bytes()),
        membership: Membership::default(),
        roster: Default::default(),
        rate: args.rate_limit,
        burst: args.rate_limit * 2.0,
        max_backlog: args.max_backlog,
    };
    let registry = registry(config, server_args, args.join.clone());
    let tree = crate::trees::start(args.tree.as_ref(), TREE, &registry, "server").await?;
    let node = Node::local().await?;
    let address = node.address();
    crate::stdout::line(format_args!(
        "ex_messenger server {} listening on {address}",
        node.name()
    ));
    crate::stdout::line(format_args!(
        "Clients join with: ex_messenger client --server {address}"
    ));
    let observer_tree = match args.observer {
        Some(listen) => Some(observe(listen).await?),
        None => None,
    };

    #[cfg(feature = "fault-hook")]
    let faults = args.fault_hook.then(fault_hook::run);
    #[cfg(not(feature = "fault-hook"))]
    let faults: Option<std::future::Pending<()>> = None;
    let stopped = tokio::select! {
        _ = crate::signals::shutdown() => false,
        _ = tree.wait_exit() => true,
        _ = async { match faults { Some(f) => f.await, None => std::future::pending().await } } => false,
    };
    if stopped {
        anyhow::bail!("the server's supervision tree stopped (it gave up after too many restarts, or was killed); see the log");
    }
    let relayed = cluster::RELAYED_LINES.load(std::sync::atomic::Ordering::Relaxed);
    crate::stdout::line(format_args!(
        "Shutting down; relayed {relayed} lines to other servers; used {:.2} s of CPU",
        cpu_seconds()
    ));
    if let Some(observer_tree) = observer_tree {
        let _ = observer_tree.stop().await;
    }
    let _ = tree.stop().await;
    Ok(())
}

/// Starts the observer under a supervisor of its own (a tree beside the server's, so it
/// is shown too) and prints where to open it, with its token.
async fn observe(listen: std::net::SocketAddr) -> anyhow::Result<SupervisorRef> {
    let config = otp::observer::ObserverConfig::new(listen);
    let tree = SupervisorSpec {
        flags: Flags::default(),
        children: vec![otp::observer::child_spec("observer", config)],
    };
    let supervisor = tree
        .start_named("observer_sup")
        .await
        .map_err(|error| anyhow::anyhow!("the observer could not start on {listen}: {error}"))?;
    let observer = otp::observer::Observer::running()
        .ok_or_else(|| anyhow::anyhow!("the observer stopped as it started"))?;
    crate::stdout::line(format_args!("Observer: {}", observer.url()));
    Ok(supervisor)
}

/// CPU time this process used so far, user and system, all threads (Linux; 0 elsewhere):
/// what `bench --servers` divides among deliveries and relayed lines.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): utime and stime are the
    // 12th and 13th, in clock ticks of 1/100 s (Linux's USER_HZ).
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let mut fields = after_name.split_whitespace().skip(11);
    let mut ticks = || {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks() + ticks()) as f64 / 100.0
}
