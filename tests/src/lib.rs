//! Shared pieces of the end-to-end tests: the GenServer the node fixture exports, and helpers
//! to run the fixture as a real OS process.

pub mod chat;
pub mod observer_page;
pub mod tcp;
pub mod wait;

use std::process::Stdio;
use std::time::Duration;

use otp::node::NodeEvent;
use otp::{Context, Flow, GenServer, Info, Init, ReplyTo};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Upper bound for waiting on any event.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The name the fixture registers and exports its server under.
pub const ECHO: &str = "echo";
/// The fixture's second echo server, exported with `sys` allowed to peers.
pub const ECHO_SYS: &str = "echo-sys";

/// The DNS name in the test cluster's node certificates.
pub const TLS_SERVER_NAME: &str = "otp-node";

otp::protocol! {
    /// The fixture's server, as every node knows it.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub Echo;
    calls EchoCall {
        /// Answers with the text (after the server's prefix).
        Say(String) -> String,
        /// Answered only when a `Release` cast arrives.
        Defer -> String,
        /// Answered after this many milliseconds.
        Slow(u64) -> String,
        /// How many casts arrived so far, as text.
        Casts -> String,
        /// How many casts arrived so far, as a number: an answer of another type from the
        /// same server.
        CastCount -> u64,
    }
    casts EchoCast {
        /// Count one cast.
        Count,
        /// Answer every deferred call with this text.
        Release(String),
        /// Stop with an error carrying this text.
        Exit(String),
    }
}

/// The fixture's server; its replies start with `prefix`, which tells nodes apart.
#[derive(Default)]
pub struct EchoServer {
    /// Put before every echoed text.
    pub prefix: String,
    casts: u64,
    deferred: Vec<ReplyTo<Defer>>,
}

impl EchoServer {
    /// An echo whose answers start with `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }
}

impl GenServer for EchoServer {
    type Protocol = Echo;

    fn format_status(&self) -> String {
        format!("{} casts counted", self.casts)
    }

    async fn handle_call(&mut self, call: EchoCall<'_>, _: &Context<Self>) -> otp::Result {
        Ok(match call {
            EchoCall::Say(Say(text), caller) => caller.reply(format!("{}{text}", self.prefix)),
            EchoCall::Defer(Defer, caller) => {
                self.deferred.push(caller.take());
                Flow::Continue
            }
            EchoCall::Slow(Slow(ms), caller) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                caller.reply(format!("slept {ms}"))
            }
            EchoCall::Casts(Casts, caller) => caller.reply(self.casts.to_string()),
            EchoCall::CastCount(CastCount, caller) => caller.reply(self.casts),
        })
    }

    async fn handle_cast(&mut self, cast: EchoCast, _: &Context<Self>) -> otp::Result {
        match cast {
            EchoCast::Count(Count) => self.casts += 1,
            EchoCast::Release(Release(text)) => {
                for later in self.deferred.drain(..) {
                    later.reply(text.clone());
                }
            }
            EchoCast::Exit(Exit(text)) => return Ok(Flow::Stop(otp::ExitReason::Error(text))),
        }
        Ok(Flow::Continue)
    }
}

/// Another implementation of the [`Echo`] protocol: it answers `Say` in capitals and
/// nothing else. Callers holding a `ServerRef<Echo>`, `Named<Echo>` or `RemoteRef<Echo>`
/// reach it as they reach an [`EchoServer`].
pub struct Shouter;

impl GenServer for Shouter {
    type Protocol = Echo;

    async fn handle_call(&mut self, call: EchoCall<'_>, _: &Context<Self>) -> otp::Result {
        Ok(match call {
            EchoCall::Say(Say(text), caller) => caller.reply(text.to_uppercase()),
            EchoCall::CastCount(_, caller) => caller.reply(0),
            EchoCall::Defer(_, caller) => caller.reply(unsupported("Defer")),
            EchoCall::Slow(_, caller) => caller.reply(unsupported("Slow")),
            EchoCall::Casts(_, caller) => caller.reply(unsupported("Casts")),
        })
    }
}

fn unsupported(request: &str) -> String {
    format!("NOT SUPPORTED: {request}")
}

/// A fixture node running as a child process; killed when dropped.
pub struct FixtureNode {
    /// The OS process.
    pub child: Child,
    /// Its full node name.
    pub name: String,
    /// Where it listens.
    pub address: String,
    /// The lines it prints after `READY`.
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// Its standard input, for the commands of a `--scripted` fixture.
    stdin: tokio::process::ChildStdin,
}

impl FixtureNode {
    /// Starts the fixture binary (tests pass `env!("CARGO_BIN_EXE_node_fixture")`, which
    /// cargo defines only for them) and waits for its `READY` line.
    pub async fn start(binary: &str, args: &[&str]) -> FixtureNode {
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node_fixture");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("fixture did not get ready in time")
            .expect("fixture stdout")
            .expect("fixture exited before READY");
        let mut words = ready.split_whitespace();
        assert_eq!(
            words.next(),
            Some("READY"),
            "unexpected fixture line: {ready}"
        );
        let name = words.next().expect("node name").to_owned();
        let address = words.next().expect("node address").to_owned();
        // Keep draining stdout so the fixture never blocks on a full pipe.
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = sender.send(line);
            }
        });
        FixtureNode {
            child,
            name,
            address,
            lines: receiver,
            stdin,
        }
    }

    /// Sends a `--scripted` fixture one command and returns the line it answers with.
    pub async fn command(&mut self, command: &str) -> String {
        use tokio::io::AsyncWriteExt;
        let line = format!("{command}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("the fixture reads its commands");
        self.next_line().await
    }

    /// The next line the fixture prints (e.g. `CONNECTED ..` or `CONNECT_ERROR ..`).
    pub async fn next_line(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.lines.recv())
            .await
            .expect("no line from the fixture in time")
            .expect("the fixture exited")
    }

    /// The process id, for signals.
    pub fn pid(&self) -> i32 {
        self.child.id().expect("running fixture") as i32
    }
}

otp::protocol! {
    /// What a [`NodeWatcher`] is sent: node events.
    pub NodeWatcher;
    infos NodeEvent;
}

/// A server that subscribes to the node events of the node it is started with
/// (`Node::monitor_nodes`) and forwards them to a test.
pub struct NodeWatcherServer(tokio::sync::mpsc::UnboundedSender<NodeEvent>);

impl NodeWatcher {
    /// Starts a watcher of `node`'s events that forwards them to `events`.
    pub async fn watch(
        events: tokio::sync::mpsc::UnboundedSender<NodeEvent>,
        node: otp::node::Node,
    ) -> Result<otp::ServerRef<NodeWatcher>, otp::StartError> {
        NodeWatcherServer::with_args((events, node)).start().await
    }
}

impl
    Init<(
        tokio::sync::mpsc::UnboundedSender<NodeEvent>,
        otp::node::Node,
    )> for NodeWatcherServer
{
    async fn init(
        (events, node): (
            tokio::sync::mpsc::UnboundedSender<NodeEvent>,
            otp::node::Node,
        ),
        me: &Context<Self>,
    ) -> otp::Result<Self> {
        node.monitor_nodes(me, |event| event).await?;
        Ok(Self(events))
    }
}

impl GenServer for NodeWatcherServer {
    type Protocol = NodeWatcher;

    async fn handle_info(&mut self, info: Info<NodeEvent>, _: &Context<Self>) -> otp::Result {
        if let Info::Message(event) = info {
            let _ = self.0.send(event);
        }
        Ok(Flow::Continue)
    }
}

/// The next node event, or a test failure after [`PATIENCE`].
pub async fn next_event(events: &mut tokio::sync::mpsc::UnboundedReceiver<NodeEvent>) -> NodeEvent {
    wait::next("a node event", events).await
}

/// Waits until `node`'s census is `expected` (counts settle as sessions finish closing).
pub async fn census_settles_to(node: &otp::node::Node, expected: otp::node::Census) {
    wait::eventually("the census to settle", || async {
        let census = node.census().await.expect("the node answers");
        if census == expected {
            Ok(())
        } else {
            Err(census)
        }
    })
    .await
}

otp::protocol! {
    /// A [`DownServer`] takes no messages.
    pub Down;
}

impl Down {
    /// Starts a server that monitors `target` and forwards its exit reason to `exits`.
    pub async fn watch(
        exits: tokio::sync::mpsc::UnboundedSender<otp::ExitReason>,
        target: otp::ActorCell,
    ) -> Result<otp::ServerRef<Down>, otp::StartError> {
        DownServer::with_args((exits, target)).start().await
    }
}

/// Monitors the process it is started with and forwards its exit reason to a test.
pub struct DownServer(tokio::sync::mpsc::UnboundedSender<otp::ExitReason>);

impl
    Init<(
        tokio::sync::mpsc::UnboundedSender<otp::ExitReason>,
        otp::ActorCell,
    )> for DownServer
{
    async fn init(
        (exits, target): (
            tokio::sync::mpsc::UnboundedSender<otp::ExitReason>,
            otp::ActorCell,
        ),
        me: &Context<Self>,
    ) -> otp::Result<Self> {
        me.monitor(target);
        Ok(Self(exits))
    }
}

impl GenServer for DownServer {
    type Protocol = Down;

    async fn handle_info(&mut self, info: Info<otp::Never>, _: &Context<Self>) -> otp::Result {
        if let Info::Down(exit) = info {
            let _ = self.0.send(exit.reason);
        }
        Ok(Flow::Continue)
    }
}
