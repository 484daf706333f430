//! Shared pieces of the end-to-end tests: the GenServer the node fixture exports, and helpers
//! to run the fixture as a real OS process.

pub mod chat;
pub mod observer_page;
pub mod tcp;
pub mod wait;

use std::process::Stdio;
use std::time::Duration;

use otp::node::NodeEvent;
use otp::{BoxError, CallResponse, Context, Flow, GenServer, Info, Protocol, ReplyTo};
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

/// Requests to the fixture's server.
#[derive(Debug, Serialize, Deserialize)]
pub enum EchoCall {
    /// Answer with the text.
    Echo(String),
    /// Answer only when a `Release` cast arrives.
    Defer,
    /// Answer after this many milliseconds.
    Slow(u64),
    /// How many casts arrived so far.
    Casts,
}

/// Casts to the fixture's server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum EchoCast {
    /// Count one cast.
    Count,
    /// Answer every deferred call with this text.
    Release(String),
    /// Stop with an error carrying this text.
    Exit(String),
}

/// The fixture's server; its replies start with `prefix`, which tells nodes apart.
#[derive(Clone, Default)]
pub struct Echo {
    /// Put before every echoed text.
    pub prefix: String,
}

/// Its state.
#[derive(Default)]
pub struct EchoState {
    casts: u64,
    deferred: Vec<ReplyTo<String>>,
}

impl Protocol for Echo {
    type Call = EchoCall;
    type Reply = String;
    type Cast = EchoCast;
}

impl GenServer for Echo {
    type Protocol = Self;
    type Args = ();
    type State = EchoState;
    type Info = ();

    async fn init(&self, _me: &Context<Self>, _: ()) -> Result<EchoState, BoxError> {
        Ok(EchoState::default())
    }

    fn format_status(&self, state: &EchoState) -> String {
        format!("{} casts counted", state.casts)
    }

    async fn handle_call(
        &self,
        _me: &Context<Self>,
        request: EchoCall,
        from: &mut ReplyTo<String>,
        state: &mut EchoState,
    ) -> Result<CallResponse<String>, BoxError> {
        Ok(match request {
            EchoCall::Echo(text) => CallResponse::Reply(format!("{}{text}", self.prefix)),
            EchoCall::Defer => {
                state.deferred.push(from.take());
                CallResponse::NoReply
            }
            EchoCall::Slow(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                CallResponse::Reply(format!("slept {ms}"))
            }
            EchoCall::Casts => CallResponse::Reply(state.casts.to_string()),
        })
    }

    async fn handle_cast(
        &self,
        _me: &Context<Self>,
        message: EchoCast,
        state: &mut EchoState,
    ) -> Result<Flow, BoxError> {
        match message {
            EchoCast::Count => state.casts += 1,
            EchoCast::Release(text) => {
                for from in state.deferred.drain(..) {
                    from.reply(text.clone());
                }
            }
            EchoCast::Exit(text) => return Ok(Flow::Stop(otp::ExitReason::Error(text))),
        }
        Ok(Flow::Continue)
    }
}

/// Another implementation of the [`Echo`] protocol: it answers `Echo` in capitals and
/// nothing else. Callers holding a `ServerRef<Echo>`, `Named<Echo>` or `RemoteRef<Echo>`
/// reach it as they reach an `Echo`.
pub struct Shouter;

impl GenServer for Shouter {
    type Protocol = Echo;
    type Args = ();
    type State = ();
    type Info = ();

    async fn init(&self, _me: &Context<Self>, _: ()) -> Result<(), BoxError> {
        Ok(())
    }

    async fn handle_call(
        &self,
        _me: &Context<Self>,
        request: EchoCall,
        _from: &mut ReplyTo<String>,
        _: &mut (),
    ) -> Result<CallResponse<String>, BoxError> {
        Ok(CallResponse::Reply(match request {
            EchoCall::Echo(text) => text.to_uppercase(),
            other => format!("NOT SUPPORTED: {other:?}"),
        }))
    }
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

/// A server that subscribes to the node events of the node it is started with
/// (`Node::monitor_nodes`) and forwards them to a test.
pub struct NodeWatcher(pub tokio::sync::mpsc::UnboundedSender<NodeEvent>);

impl Protocol for NodeWatcher {
    type Call = ();
    type Reply = ();
    type Cast = ();
}

impl GenServer for NodeWatcher {
    type Protocol = Self;
    type Args = otp::node::Node;
    type State = ();
    type Info = NodeEvent;

    async fn init(&self, me: &Context<Self>, node: otp::node::Node) -> Result<(), BoxError> {
        node.monitor_nodes(me, |event| event).await?;
        Ok(())
    }

    async fn handle_info(
        &self,
        _me: &Context<Self>,
        info: Info<NodeEvent>,
        _: &mut (),
    ) -> Result<Flow, BoxError> {
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

/// Monitors the process it is started with and forwards its exit reason to a test.
pub struct Down(pub tokio::sync::mpsc::UnboundedSender<otp::ExitReason>);

impl Protocol for Down {
    type Call = ();
    type Reply = ();
    type Cast = ();
}

impl GenServer for Down {
    type Protocol = Self;
    type Args = otp::ActorCell;
    type State = ();
    type Info = ();

    async fn init(&self, me: &Context<Self>, target: otp::ActorCell) -> Result<(), BoxError> {
        me.monitor(target);
        Ok(())
    }

    async fn handle_info(
        &self,
        _me: &Context<Self>,
        info: Info<()>,
        _: &mut (),
    ) -> Result<Flow, BoxError> {
        if let Info::Down(exit) = info {
            let _ = self.0.send(exit.reason);
        }
        Ok(Flow::Continue)
    }
}
