//! Nodes in separate OS processes on 127.0.0.1: remote calls and casts, authentication,
//! node down, and hostile or broken TCP clients.
//!
//! ractor's name registry and process groups are per OS process, so a process hosts one
//! node: this file runs its scenarios in order on one local node, against fixture nodes
//! (`node_fixture`) in child processes.

use std::time::{Duration, Instant};

use otp::node::{ConnectError, Cookie, Node, NodeConfig, NodeEvent};
use otp::{BoxError, CallError, Context, Flow, GenServer, Info, Protocol};
use otp_tests::{next_event, Echo, EchoCall, EchoCast, FixtureNode, NodeWatcher, ECHO, PATIENCE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const FIXTURE: &str = env!("CARGO_BIN_EXE_node_fixture");
const COOKIE: &str = "distribution-test-cookie";
/// The test node's liveness timeout: short, so that the frozen-peer case runs quickly.
const LIVENESS: Duration = Duration::from_secs(2);
/// The test node's cap on connections still authenticating.
const UNAUTHENTICATED: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_across_processes() {
    let mut config = NodeConfig::new(
        "tester",
        "127.0.0.1:0".parse().unwrap(),
        Cookie::new(COOKIE).unwrap(),
    );
    config.auth_timeout = Duration::from_millis(1500);
    config.liveness_timeout = LIVENESS;
    config.max_peer_processes = 100;
    config.max_unauthenticated = UNAUTHENTICATED;
    let node = Node::start(config).await.expect("local node starts");
    let (sender, mut events) = mpsc::unbounded_channel();
    let _watcher = NodeWatcher(sender).start(node.clone()).await.unwrap();

    let fixture = FixtureNode::start(FIXTURE, &["alpha", COOKIE]).await;
    remote_calls_and_casts(&node, &fixture, &mut events).await;
    disconnecting_closes_the_link_until_connected_again(&node, &fixture, &mut events).await;
    hostile_peers_cannot_hijack_or_flood(&node, &fixture, &mut events).await;
    wrong_cookie_and_unreachable_are_told_apart(&node).await;
    silent_and_garbage_clients_are_closed(&node).await;
    oversized_frames_close_the_connection(&node).await;
    unauthenticated_connections_are_capped(&node).await;
    mismatched_message_types_get_a_typed_error(&node, &fixture).await;
    // The node still serves after the hostile clients.
    let echo = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    assert_eq!(
        echo.call(EchoCall::Echo("still here".into()))
            .await
            .as_deref(),
        Ok("still here")
    );
    remote_monitors_report_exits_and_lost_nodes(&node, &mut events).await;
    killed_peer_fails_calls_promptly(&node, &mut events).await;
    frozen_peer_is_declared_down(&node, &mut events).await;
    node.stop().await;
}

async fn disconnecting_closes_the_link_until_connected_again(
    node: &Node,
    fixture: &FixtureNode,
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
) {
    assert_eq!(node.disconnect(&fixture.name).await, Ok(true));
    assert_eq!(
        next_event(events).await,
        NodeEvent::Down(fixture.name.clone())
    );
    assert_eq!(node.peers().await.unwrap(), Vec::<String>::new());
    assert_eq!(node.disconnect(&fixture.name).await, Ok(false));
    let echo = node.remote::<Echo>(&fixture.name, ECHO).await;
    assert!(echo.is_err(), "no remote server on a disconnected node");
    node.connect(&fixture.address)
        .await
        .expect("connects again");
    assert_eq!(
        next_event(events).await,
        NodeEvent::Up(fixture.name.clone())
    );
    let echo = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    assert_eq!(
        echo.call(EchoCall::Echo("back".into())).await.as_deref(),
        Ok("back")
    );
}

async fn remote_calls_and_casts(
    node: &Node,
    fixture: &FixtureNode,
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
) {
    let peer = node.connect(&fixture.address).await.expect("connects");
    assert_eq!(peer, fixture.name);
    // Connecting again is a no-op (no second link, no down-and-up flap: the events below
    // would show it).
    assert_eq!(
        node.connect(&fixture.address).await.as_deref(),
        Ok(peer.as_str())
    );
    assert_eq!(
        next_event(events).await,
        NodeEvent::Up(fixture.name.clone())
    );
    assert_eq!(node.peers().await.unwrap(), vec![fixture.name.clone()]);

    let echo = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    assert_eq!(
        echo.call(EchoCall::Echo("hello".into())).await.as_deref(),
        Ok("hello")
    );
    for _ in 0..3 {
        echo.cast(EchoCast::Count);
    }
    // Casts and calls from one node to another arrive in order.
    assert_eq!(echo.call(EchoCall::Casts).await.as_deref(), Ok("3"));

    // Deferred reply across nodes: the first poll sends the call, then a cast releases it.
    let deferred = in_flight(echo.call(EchoCall::Defer)).await;
    echo.cast(EchoCast::Release("later".into()));
    assert_eq!(deferred.await.as_deref(), Ok("later"));

    let timeout = Duration::from_millis(100);
    assert_eq!(
        echo.call_timeout(EchoCall::Slow(1000), timeout).await,
        Err(CallError::Timeout(timeout))
    );
    // The late reply is dropped: the next call gets its own answer.
    assert_eq!(
        echo.call(EchoCall::Echo("next".into())).await.as_deref(),
        Ok("next")
    );

    let missing = node
        .remote::<Echo>(&fixture.name, "no-such-server")
        .await
        .unwrap();
    assert_eq!(missing.call(EchoCall::Casts).await, Err(CallError::NoProc));
    assert!(matches!(
        node.remote::<Echo>("nobody@127.0.0.1", ECHO).await,
        Err(otp::node::LookupError::UnknownNode(_))
    ));
}

async fn wrong_cookie_and_unreachable_are_told_apart(node: &Node) {
    let stranger = FixtureNode::start(FIXTURE, &["stranger", "another-cookie"]).await;
    let started = Instant::now();
    assert_eq!(
        node.connect(&stranger.address).await,
        Err(ConnectError::AuthenticationFailed)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fails within seconds"
    );

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = closed.local_addr().unwrap().to_string();
    drop(closed);
    assert!(matches!(
        node.connect(&address).await,
        Err(ConnectError::Unreachable { .. })
    ));
}

/// Reads until the peer closes the connection; returns how long that took.
async fn closed_within(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the node kept the connection open"),
        }
    }
}

async fn silent_and_garbage_clients_are_closed(node: &Node) {
    let silent = TcpStream::connect(node.address()).await.unwrap();
    let waited = closed_within(silent).await;
    assert!(
        waited < Duration::from_secs(5),
        "silent client closed after {waited:?}"
    );

    let mut garbage = TcpStream::connect(node.address()).await.unwrap();
    garbage
        .write_all(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 4, 1, 2, 3, 4])
        .await
        .unwrap();
    let waited = closed_within(garbage).await;
    assert!(
        waited < Duration::from_secs(5),
        "garbage client closed after {waited:?}"
    );
}

async fn oversized_frames_close_the_connection(node: &Node) {
    let mut stream = TcpStream::connect(node.address()).await.unwrap();
    // A frame header announcing 16 MiB (the default limit is 1 MiB), then a stall.
    stream
        .write_all(&(16u64 * 1024 * 1024).to_be_bytes())
        .await
        .unwrap();
    let waited = closed_within(stream).await;
    assert!(
        waited < Duration::from_secs(1),
        "oversized frame closed after {waited:?}"
    );
}

async fn killed_peer_fails_calls_promptly(
    node: &Node,
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
) {
    let doomed = FixtureNode::start(FIXTURE, &["doomed", COOKIE]).await;
    node.connect(&doomed.address).await.unwrap();
    assert_eq!(next_event(events).await, NodeEvent::Up(doomed.name.clone()));
    let echo = node.remote::<Echo>(&doomed.name, ECHO).await.unwrap();
    let pending =
        in_flight(echo.call_timeout(EchoCall::Slow(60_000), Duration::from_secs(60))).await;
    let started = Instant::now();
    // SAFETY-free: kill(2) through the tokio child handle.
    let mut doomed = doomed;
    doomed.child.start_kill().unwrap();
    let result = tokio::time::timeout(PATIENCE, pending)
        .await
        .expect("the call ended");
    assert_eq!(result, Err(CallError::NodeDown(doomed.name.clone())));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed after {:?}",
        started.elapsed()
    );
    assert_eq!(
        next_event(events).await,
        NodeEvent::Down(doomed.name.clone())
    );
}

fn signal(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}

async fn frozen_peer_is_declared_down(
    node: &Node,
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
) {
    let frozen = FixtureNode::start(FIXTURE, &["frozen", COOKIE]).await;
    node.connect(&frozen.address).await.unwrap();
    assert_eq!(next_event(events).await, NodeEvent::Up(frozen.name.clone()));
    let echo = node.remote::<Echo>(&frozen.name, ECHO).await.unwrap();
    let pending =
        in_flight(echo.call_timeout(EchoCall::Slow(60_000), Duration::from_secs(60))).await;
    // Frozen, its kernel still answers TCP keepalives: only heartbeats can tell.
    signal(frozen.pid(), "-STOP");
    let started = Instant::now();
    let result = tokio::time::timeout(PATIENCE, pending)
        .await
        .expect("the call ended");
    let waited = started.elapsed();
    signal(frozen.pid(), "-CONT");
    assert_eq!(result, Err(CallError::NodeDown(frozen.name.clone())));
    assert!(waited >= LIVENESS, "declared down after only {waited:?}");
    assert!(waited < LIVENESS * 3, "declared down after {waited:?}");
    assert_eq!(
        next_event(events).await,
        NodeEvent::Down(frozen.name.clone())
    );
}

async fn hostile_peers_cannot_hijack_or_flood(
    node: &Node,
    alpha: &FixtureNode,
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
) {
    let here = node.address().to_string();
    // Mallory exports an `echo` of its own: it joins the very process group alpha's is in.
    let mallory = FixtureNode::start(
        FIXTURE,
        &[
            "mallory",
            COOKIE,
            "--connect",
            &here,
            "--prefix",
            "HIJACKED:",
        ],
    )
    .await;
    assert_eq!(
        next_event(events).await,
        NodeEvent::Up(mallory.name.clone())
    );
    let hijacker = node.remote::<Echo>(&mallory.name, ECHO).await.unwrap();
    assert_eq!(
        hijacker.call(EchoCall::Echo("x".into())).await.as_deref(),
        Ok("HIJACKED:x")
    );
    let echo = node.remote::<Echo>(&alpha.name, ECHO).await.unwrap();
    for _ in 0..20 {
        assert_eq!(
            echo.call(EchoCall::Echo("x".into())).await.as_deref(),
            Ok("x")
        );
    }

    // A peer announcing more processes than allowed (each a local proxy) is cut off.
    let flooder = FixtureNode::start(
        FIXTURE,
        &["flooder", COOKIE, "--connect", &here, "--flood", "300"],
    )
    .await;
    assert_eq!(
        next_event(events).await,
        NodeEvent::Up(flooder.name.clone())
    );
    assert_eq!(
        next_event(events).await,
        NodeEvent::Down(flooder.name.clone())
    );
    assert!(!node.peers().await.unwrap().contains(&flooder.name));

    // Mallory leaves; the next scenario starts with no events pending.
    let name = mallory.name.clone();
    drop(mallory);
    assert_eq!(next_event(events).await, NodeEvent::Down(name));
}

async fn unauthenticated_connections_are_capped(node: &Node) {
    // One more silent connection than the cap. Connections are set up concurrently, so any
    // one of them may be the one over the cap: it is closed at once, long before the
    // authentication deadline that closes the others.
    let mut closings = Vec::new();
    for _ in 0..=UNAUTHENTICATED {
        let stream = TcpStream::connect(node.address()).await.unwrap();
        closings.push(tokio::spawn(closed_within(stream)));
    }
    let mut waited = Vec::new();
    for closing in closings {
        waited.push(closing.await.unwrap());
    }
    waited.sort();
    assert!(
        waited[0] < Duration::from_millis(1000),
        "over the cap, closed after {:?}",
        waited[0]
    );
    assert!(
        waited[1] >= Duration::from_millis(1000),
        "only one over the cap: {waited:?}"
    );
}

/// The same server as another build might see it: a call variant `Echo` does not know.
struct SkewedEcho;

#[derive(serde::Serialize, serde::Deserialize)]
enum SkewedCall {
    Shout(String),
}

impl Protocol for SkewedEcho {
    type Call = SkewedCall;
    type Reply = String;
    type Cast = SkewedCall;
}

impl GenServer for SkewedEcho {
    type Protocol = Self;
    type Args = ();
    type State = ();
    type Info = ();

    async fn init(&self, _me: &Context<Self>, _: ()) -> Result<(), BoxError> {
        Ok(())
    }
}

async fn mismatched_message_types_get_a_typed_error(node: &Node, alpha: &FixtureNode) {
    let skewed = node.remote::<SkewedEcho>(&alpha.name, ECHO).await.unwrap();
    match skewed.call(SkewedCall::Shout("hey".into())).await {
        Err(CallError::BadRequest(why)) => assert!(why.contains("unknown variant"), "{why}"),
        other => panic!("expected a bad request, got {other:?}"),
    }
    // A cast that does not decode is dropped; the server and the link live on.
    skewed.cast(SkewedCall::Shout("hey".into()));
    let echo = node.remote::<Echo>(&alpha.name, ECHO).await.unwrap();
    assert_eq!(
        echo.call(EchoCall::Echo("fine".into())).await.as_deref(),
        Ok("fine")
    );
}

/// Monitors remote servers on request and reports their DOWN reasons.
struct RemoteWatch(mpsc::UnboundedSender<otp::ExitReason>);

impl Protocol for RemoteWatch {
    type Call = otp::node::RemoteRef<Echo>;
    type Reply = Result<otp::ActorId, CallError>;
    type Cast = ();
}

impl GenServer for RemoteWatch {
    type Protocol = Self;
    type Args = ();
    type State = ();
    type Info = ();

    async fn init(&self, _me: &Context<Self>, _: ()) -> Result<(), BoxError> {
        Ok(())
    }

    async fn handle_call(
        &self,
        me: &Context<Self>,
        target: otp::node::RemoteRef<Echo>,
        _from: &mut otp::ReplyTo<Result<otp::ActorId, CallError>>,
        _: &mut (),
    ) -> Result<otp::CallResponse<Result<otp::ActorId, CallError>>, BoxError> {
        Ok(otp::CallResponse::Reply(target.monitor(me)))
    }

    async fn handle_info(
        &self,
        _me: &Context<Self>,
        info: Info<()>,
        _: &mut (),
    ) -> Result<Flow, BoxError> {
        if let Info::Down(down) = info {
            let _ = self.0.send(down.reason);
        }
        Ok(Flow::Continue)
    }
}

async fn remote_monitors_report_exits_and_lost_nodes(
    node: &Node,
    events: &mut mpsc::UnboundedReceiver<NodeEvent>,
) {
    let (sender, mut downs) = mpsc::unbounded_channel();
    let watch = RemoteWatch(sender).start(()).await.unwrap();
    let mortal = FixtureNode::start(FIXTURE, &["mortal", COOKIE]).await;
    let mut lost = FixtureNode::start(FIXTURE, &["lost", COOKIE]).await;
    for fixture in [&mortal, &lost] {
        node.connect(&fixture.address).await.unwrap();
        assert_eq!(
            next_event(events).await,
            NodeEvent::Up(fixture.name.clone())
        );
    }
    // The server exits: DOWN with its reason.
    let echo = node.remote::<Echo>(&mortal.name, ECHO).await.unwrap();
    watch.call(echo.clone()).await.unwrap().unwrap();
    // A deferred call is pending when the server exits: it fails at once, as locally.
    let deferred = in_flight(echo.call_timeout(EchoCall::Defer, Duration::from_secs(60))).await;
    echo.cast(EchoCast::Exit("bye".into()));
    assert_eq!(next_down(&mut downs).await, otp::ExitReason::error("bye"));
    let started = Instant::now();
    assert_eq!(deferred.await, Err(CallError::NoReply));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Now nothing runs under the name: monitoring it again reports noproc.
    watch.call(echo.clone()).await.unwrap().unwrap();
    assert_eq!(next_down(&mut downs).await, otp::ExitReason::NoProc);

    // The node dies: DOWN with noconnection.
    let far = node.remote::<Echo>(&lost.name, ECHO).await.unwrap();
    watch.call(far).await.unwrap().unwrap();
    lost.child.start_kill().unwrap();
    assert_eq!(next_down(&mut downs).await, otp::ExitReason::NoConnection);
    assert_eq!(next_event(events).await, NodeEvent::Down(lost.name.clone()));

    // A name the node does not export cannot be monitored.
    let missing = node
        .remote::<Echo>(&mortal.name, "nothing-here")
        .await
        .unwrap();
    assert_eq!(watch.call(missing).await.unwrap(), Err(CallError::NoProc));
    let name = mortal.name.clone();
    drop(mortal);
    assert_eq!(next_event(events).await, NodeEvent::Down(name));
}

async fn next_down(downs: &mut mpsc::UnboundedReceiver<otp::ExitReason>) -> otp::ExitReason {
    tokio::time::timeout(PATIENCE, downs.recv())
        .await
        .expect("no DOWN in time")
        .expect("watcher gone")
}

/// Starts a call and proves it is in flight: the first poll sends it and finds no answer yet.
async fn in_flight<F: std::future::Future>(call: F) -> std::pin::Pin<Box<F>> {
    let mut call = Box::pin(call);
    assert!(
        futures::poll!(&mut call).is_pending(),
        "the call was answered at once"
    );
    call
}
