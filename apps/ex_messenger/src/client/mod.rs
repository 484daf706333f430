//! The client side: its supervision tree (`supervisor-specs/ex_messenger_client.json`),
//! the terminal, and the `ex_messenger client` command.
//!
//! ```text
//! ex_messenger_client (rest_for_one)
//! ├── node             this client's distribution node
//! └── message_handler  joins, shows incoming lines, rejoins after outages (exported)
//! ```
//! The chat loop in [`run`] reads what the user types and hands it to the handler.

pub mod handler;
pub mod inbox;
pub mod outbox;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use otp::gen_server::Init;
use otp::node::{Cookie, NodeConfig};
use otp::spec::Registry;
use otp::ServerRef;
use tokio::sync::{mpsc, oneshot};

pub use handler::{
    HandlerArgs, HandlerInfo, LocalChatClient, MessageHandler, Output, Session, Trace,
};
pub use terminal::{Terminal, Typed};

use crate::cli::{ClientArgs, DEFAULT_PORT};
use crate::command::{Command, HELP};
use crate::names::Nick;
use crate::protocol::MESSAGE_HANDLER;
use crate::trees::BuiltIn;

/// Incoming lines shown at once, at most.
const OUTPUT_BATCH: usize = 256;

/// The client's tree, compiled in; `--tree` loads another.
const TREE: BuiltIn = BuiltIn {
    text: include_str!("../../../../supervisor-specs/ex_messenger_client.json"),
    path: "supervisor-specs/ex_messenger_client.json",
};

/// The start names the client's spec file may use.
pub fn registry(config: NodeConfig, args: HandlerArgs) -> Registry {
    crate::trees::registry(
        config,
        "message_handler",
        MESSAGE_HANDLER,
        MessageHandler::with_args,
        args,
    )
}

/// A client node's configuration: a fresh random name (other users never see it, so nobody
/// can aim at it), listening on loopback (the client only dials out).
pub fn node_config(cookie: Cookie) -> anyhow::Result<NodeConfig> {
    let suffix = crate::random::hex(4)?;
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    Ok(NodeConfig::new(format!("client-{suffix}"), listen, cookie))
}

/// Starts the client's tree from its spec.
pub async fn start(
    tree: Option<&PathBuf>,
    config: NodeConfig,
    args: HandlerArgs,
) -> anyhow::Result<otp::supervisor::SupervisorRef> {
    crate::trees::start(tree, TREE, &registry(config, args), "client").await
}

/// `ex_messenger client`: prompts for what is missing, joins, chats until `/quit`, end of
/// input or a signal. Exits non-zero if the server refuses or cannot be reached.
pub async fn run(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let mut terminal = Terminal::open();
    let server = match args.server {
        Some(server) => server,
        None => match terminal.read_line("Server Name: ").await {
            Some(line) if !line.trim().is_empty() => line.trim().to_owned(),
            _ => format!("127.0.0.1:{DEFAULT_PORT}"),
        },
    };
    let nick = match args.nick {
        Some(nick) => nick,
        None => terminal.read_line("Nickname: ").await.unwrap_or_default(),
    };
    let nick = match Nick::parse(nick.trim()) {
        Ok(nick) => nick,
        Err(reason) => {
            terminal.print(&format!("Could not join chatroom, reason: {reason}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    let cookie = Cookie::resolve(
        args.cookie.cookie.as_deref(),
        args.cookie.cookie_file.as_deref(),
    )?;
    let (output, mut incoming) = mpsc::unbounded_channel();
    let handler_args = HandlerArgs {
        server,
        nick: nick.clone(),
        output,
        session: Session::shared(),
        give_up_after: Duration::from_secs(args.give_up_after),
        trace: None,
    };
    let mut config = node_config(cookie)?;
    config.liveness_timeout = Duration::from_secs(args.liveness_timeout);
    let tree = start(args.tree.as_ref(), config, handler_args).await?;

    let prompt = terminal.chat_prompt(nick.as_str());
    let shutdown = crate::signals::shutdown();
    tokio::pin!(shutdown);
    let mut shown = Vec::new();
    let code = loop {
        tokio::select! {
            // Lines that arrived together are shown together (one redraw of the prompt).
            count = incoming.recv_many(&mut shown, OUTPUT_BATCH) => {
                if count == 0 {
                    break ExitCode::FAILURE;
                }
                let fatal = shown.iter().any(|o| matches!(o, Output::Fatal(_)));
                terminal.print_all(shown.iter().map(|o| match o {
                    Output::Line(line) | Output::Fatal(line) => line.as_str(),
                }));
                shown.clear();
                if fatal {
                    break ExitCode::FAILURE;
                }
            },
            typed = terminal.read(&prompt) => {
                let line = match typed {
                    Typed::Line(line) => line,
                    Typed::Refused(why) => {
                        terminal.print(&why);
                        continue;
                    }
                    Typed::End => {
                        quit().await;
                        break ExitCode::SUCCESS;
                    }
                };
                match Command::parse(&line) {
                    Ok(Command::Quit) => {
                        quit().await;
                        break ExitCode::SUCCESS;
                    }
                    Ok(Command::Nothing) => {}
                    Ok(Command::Help) => terminal.print(HELP),
                    Ok(Command::Send(request)) => match ServerRef::<LocalChatClient>::whereis(MESSAGE_HANDLER) {
                        Some(handler) => handler.send_info(HandlerInfo::Input(request)),
                        None => terminal.print("Not connected right now; try again in a moment"),
                    },
                    Err(error) => terminal.print(&error.to_string()),
                }
            }
            _ = &mut shutdown => {
                quit().await;
                break ExitCode::SUCCESS;
            }
        }
    };
    let _ = tree.stop().await;
    Ok(code)
}

/// Leaves the chat through the handler, waiting a little for the server to acknowledge.
async fn quit() {
    let Some(handler) = ServerRef::<LocalChatClient>::whereis(MESSAGE_HANDLER) else {
        return;
    };
    let (done, acknowledged) = oneshot::channel();
    handler.send_info(HandlerInfo::Quit(done));
    let _ = tokio::time::timeout(Duration::from_secs(3), acknowledged).await;
}
