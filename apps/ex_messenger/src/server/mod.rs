//! The server side: its supervision tree (`supervisor-specs/ex_messenger_server.json`)
//! and the `ex_messenger server` command.
//!
//! ```text
//! ex_messenger_server (rest_for_one)
//! ├── node            the distribution node clients connect to
//! ├── rooms           dynamic supervisor, one RoomServer per room
//! └── message_server  users, sessions, routing (exported)
//! ```
//!
//! | file | what |
//! |---|---|
//! | `message_server.rs` | the exported GenServer: routes each request between users and rooms |
//! | `sessions.rs` | who has joined, tokens, joins in progress, the order of each user's requests |
//! | `membership.rs` | who is in which room: one record, kept by the message server, read by rooms |
//! | `directory.rs` | the rooms' processes, started through the `rooms` supervisor |
//! | `policy.rs` | what is accepted: flood limit, size, cleaning |
//! | `room.rs` | one GenServer per room: numbering, fan-out, slow readers |
//! | `keys.rs` | the key that signs session tokens, outliving the message server |
//! | `fault_hook.rs` | test-only faults (cargo feature `fault-hook`) |

mod directory;
#[cfg(feature = "fault-hook")]
mod fault_hook;
mod keys;
mod membership;
pub mod message_server;
mod policy;
pub mod room;
mod sessions;

use otp::node::{Cookie, Node, NodeConfig};
use otp::spec::Registry;

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

/// The start names the server's spec file may use.
pub fn registry(config: NodeConfig, args: MessageServerArgs) -> Registry {
    crate::trees::registry(
        config,
        "message_server",
        MESSAGE_SERVER,
        MessageServer,
        args,
    )
}

/// `ex_messenger server`: runs the tree until SIGINT/SIGTERM, then stops it in order.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let cookie = Cookie::resolve(
        args.cookie.cookie.as_deref(),
        args.cookie.cookie_file.as_deref(),
    )?;
    let keys =
        SessionKeys::generate().map_err(|_| anyhow::anyhow!("no randomness for session keys"))?;
    let mut config = NodeConfig::new("server", args.listen, cookie);
    config.liveness_timeout = std::time::Duration::from_secs(args.liveness_timeout);
    let server_args = MessageServerArgs {
        keys,
        membership: Membership::default(),
        rate: args.rate_limit,
        burst: args.rate_limit * 2.0,
        max_backlog: args.max_backlog,
    };
    let registry = registry(config, server_args);
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
        anyhow::bail!("the server's supervision tree gave up (too many restarts); see the log");
    }
    crate::stdout::line("Shutting down");
    let _ = tree.stop().await;
    Ok(())
}
