//! The server side: its supervision tree (`supervisor-specs/ex_messenger_server.json`)
//! and the `ex_messenger server` command.
//!
//! ```text
//! ex_messenger_server (rest_for_one)
//! ├── node            the distribution node clients connect to
//! ├── rooms           dynamic supervisor, one RoomServer per room
//! └── message_server  users, sessions, routing (exported)
//! ```

mod keys;
pub mod message_server;
pub mod room;

use otp::node::{Cookie, Node, NodeConfig};
use otp::spec::Registry;
use otp::ServerRef;
use tokio::io::AsyncBufReadExt;

pub use keys::SessionKeys;
use message_server::{MessageServer, MessageServerArgs, ServerInfo};
use room::{registered_name, RoomInfo, RoomServer};

use crate::cli::ServerArgs;
use crate::names::Room;
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

    let faults = args.fault_hook.then(fault_hook);
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

/// Test-only crashes, read from stdin when the server runs with `--fault-hook`:
/// `crash message_server` or `crash room <name>`. Answers `FAULT restarted` once the
/// supervisor has replaced the crashed server, so a test knows when to go on.
async fn fault_hook() {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let outcome = match words.as_slice() {
            ["crash", "message_server"] => {
                crash(MESSAGE_SERVER.to_owned(), |s: &ServerRef<MessageServer>| {
                    s.send_info(ServerInfo::Fault)
                })
                .await
            }
            ["crash", "room", name] => match Room::parse(name) {
                Ok(room) => {
                    crash(registered_name(&room), |s: &ServerRef<RoomServer>| {
                        s.send_info(RoomInfo::Fault)
                    })
                    .await
                }
                Err(error) => error.to_string(),
            },
            _ => "unknown command: crash message_server | crash room <name>".to_owned(),
        };
        crate::stdout::line(format_args!("FAULT {outcome}"));
    }
    std::future::pending::<()>().await
}

/// Crashes the server registered as `name` and waits for its replacement.
async fn crash<G: otp::GenServer>(name: String, fault: impl Fn(&ServerRef<G>)) -> String {
    let Some(server) = ServerRef::<G>::whereis(&name) else {
        return format!("nothing runs as {name}");
    };
    fault(&server);
    server.wait_exit().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if ServerRef::<G>::whereis(&name).is_some_and(|s| s.id() != server.id()) {
            return "restarted".to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    format!("{name} was not restarted within 5 s")
}
