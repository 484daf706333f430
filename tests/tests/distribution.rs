//! Nodes in separate OS processes on 127.0.0.1: remote calls and casts, authentication,
//! node down, and hostile or broken TCP clients.
//!
//! ractor's name registry and process groups are per OS process, so a process hosts one
//! node: each scenario runs in a process of its own (`rusty_fork_test!`), with its own
//! local node, against fixture nodes (`node_fixture`) in child processes. One failing
//! scenario never hides another.
//!
//! Nothing here asserts how long something took (a loaded machine can stretch anything):
//! promptness is shown by *which* error or event comes (a node-down error, not the call's
//! own 60 s timeout) or by order (the connection over the cap closes while the others,
//! still within their authentication time, stay open).

use std::time::Duration;

use otp::node::{ConnectError, Cookie, ExportError, ExportOptions, Node, NodeConfig, NodeEvent};
use otp::{CallError, Context, Flow, GenServer, Info};
use otp_tests::tcp::{closed, still_open};
use otp_tests::wait::{self, run};
use otp_tests::{
    next_event, CastCount, Casts, Count, Defer, Echo, EchoServer, Exit, FixtureNode, NodeWatcher,
    Release, Say, Slow, ECHO, ECHO_SYS,
};
use rusty_fork::rusty_fork_test;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const FIXTURE: &str = env!("CARGO_BIN_EXE_node_fixture");
const COOKIE: &str = "distribution-test-cookie";
/// The test node's liveness timeout: short, so that the frozen-peer case runs quickly.
const LIVENESS: Duration = Duration::from_secs(2);
/// The test node's cap on connections still authenticating.
const UNAUTHENTICATED: usize = 4;
/// How long the test node gives a connection to authenticate: long enough that a
/// connection closed for another reason is closed well before it, on any machine.
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// This process's node, and the node events it sees.
struct Tester {
    node: Node,
    events: mpsc::UnboundedReceiver<NodeEvent>,
    _watcher: otp::ServerRef<NodeWatcher>,
}

impl Tester {
    async fn start() -> Tester {
        let mut config = NodeConfig::new(
            "tester",
            "127.0.0.1:0".parse().unwrap(),
            Cookie::new(COOKIE).unwrap(),
        );
        config.auth_timeout = AUTH_TIMEOUT;
        config.liveness_timeout = LIVENESS;
        config.max_peer_processes = 100;
        config.max_unauthenticated = UNAUTHENTICATED;
        let node = Node::start(config).await.expect("local node starts");
        let (sender, events) = mpsc::unbounded_channel();
        let watcher = NodeWatcher::watch(sender, node.clone()).await.unwrap();
        Tester {
            node,
            events,
            _watcher: watcher,
        }
    }

    /// A fixture node named `name`, connected.
    async fn connected(&mut self, name: &str) -> FixtureNode {
        let fixture = FixtureNode::start(FIXTURE, &[name, COOKIE]).await;
        let peer = self.node.connect(&fixture.address).await.expect("connects");
        assert_eq!(peer, fixture.name);
        assert_eq!(self.next_event().await, NodeEvent::Up(fixture.name.clone()));
        fixture
    }

    async fn next_event(&mut self) -> NodeEvent {
        next_event(&mut self.events).await
    }

    /// After whatever the scenario did, the node still connects and serves.
    async fn still_serves(&mut self) {
        let peer = self.connected("witness").await;
        let echo = self.node.remote::<Echo>(&peer.name, ECHO).await.unwrap();
        let answer = echo.call(Say("still here".into())).await;
        assert_eq!(answer.as_deref(), Ok("still here"));
    }
}

rusty_fork_test! {
    #[test]
    fn links_tell_each_peer_since_when_and_the_traffic_each_way() {
        run(links_case());
    }

    #[test]
    fn remote_calls_and_casts() {
        run(remote_calls_and_casts_case());
    }

    #[test]
    fn each_remote_call_answers_its_own_type() {
        run(typed_answers_case());
    }

    #[test]
    fn disconnecting_closes_the_link_until_connected_again() {
        run(disconnecting_case());
    }

    #[test]
    fn hostile_peers_cannot_hijack_or_flood() {
        run(hostile_peers_case());
    }

    #[test]
    fn wrong_cookie_and_unreachable_are_told_apart() {
        run(wrong_cookie_case());
    }

    #[test]
    fn silent_and_garbage_clients_are_closed() {
        run(silent_and_garbage_case());
    }

    #[test]
    fn oversized_frames_close_the_connection() {
        run(oversized_frames_case());
    }

    #[test]
    fn unauthenticated_connections_are_capped() {
        run(unauthenticated_cap_case());
    }

    #[test]
    fn mismatched_message_types_get_a_typed_error() {
        run(mismatched_types_case());
    }

    #[test]
    fn remote_monitors_report_exits_and_lost_nodes() {
        run(remote_monitors_case());
    }

    #[test]
    fn a_killed_peer_fails_calls_at_once() {
        run(killed_peer_case());
    }

    #[test]
    fn a_frozen_peer_is_declared_down_after_the_liveness_timeout() {
        run(frozen_peer_case());
    }

    #[test]
    fn sys_reaches_a_remote_server_only_if_its_owner_allowed_it() {
        run(remote_sys_case());
    }
}

async fn remote_sys_case() {
    let mut tester = Tester::start().await;
    let fixture = tester.connected("inspected").await;
    let node = tester.node.clone();
    let open = node.remote::<Echo>(&fixture.name, ECHO_SYS).await.unwrap();
    open.cast(Count);
    let status = open.sys_get_status().await.unwrap();
    assert_eq!(status.state, "1 casts counted");
    assert_eq!(status.name.as_deref(), Some(ECHO_SYS));
    // Suspended, it answers no call until resumed.
    open.sys_suspend().await.unwrap();
    let call = open.call_timeout(Say("held".into()), Duration::from_millis(50));
    assert_eq!(
        call.await,
        Err(CallError::Timeout(Duration::from_millis(50)))
    );
    assert!(open.sys_get_status().await.unwrap().suspended);
    open.sys_resume().await.unwrap();
    let answered = open.call(Say("free".into())).await;
    assert_eq!(answered.as_deref(), Ok("free"));
    open.sys_statistics(true).await.unwrap();
    let statistics = open.sys_get_statistics().await.unwrap();
    assert_eq!(statistics.queued, Some(0));

    // The plain export refuses, and says how to allow it.
    let closed = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    let refused = closed.sys_get_status().await.unwrap_err();
    assert_eq!(refused, otp::sys::SysError::NotAllowed);
    assert!(refused.to_string().contains("ExportOptions"), "{refused}");
    assert!(closed.sys_suspend().await.is_err());
    let still = closed.call(Say("served".into())).await;
    assert_eq!(still.as_deref(), Ok("served"));

    // Options are given once: exporting again with others is refused, not ignored.
    EchoServer::default()
        .start_named("local-echo")
        .await
        .unwrap();
    node.export::<Echo>("local-echo").await.unwrap();
    node.export::<Echo>("local-echo").await.unwrap();
    let reopened = node
        .export_with::<Echo>("local-echo", ExportOptions { sys: true })
        .await;
    assert!(
        matches!(&reopened, Err(ExportError::OptionsDiffer(name)) if name == "local-echo"),
        "{reopened:?}"
    );
}

async fn links_case() {
    let mut tester = Tester::start().await;
    let fixture = tester.connected("alpha").await;
    let links = tester.node.links().await.unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    let link = &links[0];
    assert_eq!(link.peer, fixture.name);
    assert!(link.dialed, "this node dialed it");
    assert!(link.up_since_ms > 0);
    let before = link
        .traffic
        .expect("a link through our own listener is counted");
    assert!(before.messages_in > 0 && before.bytes_in > before.messages_in);

    let echo = tester
        .node
        .remote::<Echo>(&fixture.name, ECHO)
        .await
        .unwrap();
    let text = "x".repeat(1000);
    for _ in 0..10 {
        let answer = echo.call(Say(text.clone())).await;
        assert_eq!(answer.as_deref(), Ok(text.as_str()));
    }
    let after = tester.node.links().await.unwrap()[0].traffic.unwrap();
    // Each call is a message out and its reply one in, each carrying the text (and
    // heartbeats may have gone by meanwhile).
    let grown = [
        ("messages out", before.messages_out, after.messages_out, 10),
        ("messages in", before.messages_in, after.messages_in, 10),
        ("bytes out", before.bytes_out, after.bytes_out, 10_000),
        ("bytes in", before.bytes_in, after.bytes_in, 10_000),
    ];
    for (what, was, now, at_least) in grown {
        assert!(now >= was + at_least, "{what}: {before:?} {after:?}");
    }
}

async fn remote_calls_and_casts_case() {
    let mut tester = Tester::start().await;
    let node = tester.node.clone();
    let fixture = FixtureNode::start(FIXTURE, &["alpha", COOKIE]).await;
    let peer = node.connect(&fixture.address).await.expect("connects");
    assert_eq!(peer, fixture.name);
    // Connecting again is a no-op (no second link, no down-and-up flap: the events below
    // would show it).
    assert_eq!(
        node.connect(&fixture.address).await.as_deref(),
        Ok(peer.as_str())
    );
    assert_eq!(
        tester.next_event().await,
        NodeEvent::Up(fixture.name.clone())
    );
    assert_eq!(node.peers().await.unwrap(), vec![fixture.name.clone()]);

    let echo = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    assert_eq!(echo.call(Say("hello".into())).await.as_deref(), Ok("hello"));
    for _ in 0..3 {
        echo.cast(Count);
    }
    // Casts and calls from one node to another arrive in order.
    assert_eq!(echo.call(Casts).await.as_deref(), Ok("3"));

    // Deferred reply across nodes: the first poll sends the call, then a cast releases it.
    let deferred = in_flight(echo.call(Defer)).await;
    echo.cast(Release("later".into()));
    assert_eq!(deferred.await.as_deref(), Ok("later"));

    let timeout = Duration::from_millis(100);
    assert_eq!(
        echo.call_timeout(Slow(1000), timeout).await,
        Err(CallError::Timeout(timeout))
    );
    // The late reply is dropped: the next call gets its own answer.
    assert_eq!(echo.call(Say("next".into())).await.as_deref(), Ok("next"));

    let missing = node
        .remote::<Echo>(&fixture.name, "no-such-server")
        .await
        .unwrap();
    assert_eq!(missing.call(Casts).await, Err(CallError::NoProc));
    assert!(matches!(
        node.remote::<Echo>("nobody@127.0.0.1", ECHO).await,
        Err(otp::node::LookupError::UnknownNode(_))
    ));
}

/// One remote server, calls of three answer types, each decoded as its own: a `String`
/// and a `u64` from the same handle, and a deferred answer that keeps its type.
async fn typed_answers_case() {
    let mut tester = Tester::start().await;
    let node = tester.node.clone();
    let fixture = tester.connected("alpha").await;
    let echo = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    echo.cast(Count);
    echo.cast(Count);
    let as_text: String = echo.call(Casts).await.unwrap();
    let as_number: u64 = echo.call(CastCount).await.unwrap();
    assert_eq!((as_text.as_str(), as_number), ("2", 2));
    let deferred = in_flight(echo.call(Defer)).await;
    assert_eq!(
        echo.call(CastCount).await,
        Ok(2),
        "answered while the other waits"
    );
    echo.cast(Release("released".into()));
    let released: String = deferred.await.unwrap();
    assert_eq!(released, "released");
}

async fn disconnecting_case() {
    let mut tester = Tester::start().await;
    let node = tester.node.clone();
    let fixture = tester.connected("alpha").await;
    assert_eq!(node.disconnect(&fixture.name).await, Ok(true));
    assert_eq!(
        tester.next_event().await,
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
        tester.next_event().await,
        NodeEvent::Up(fixture.name.clone())
    );
    let echo = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    assert_eq!(echo.call(Say("back".into())).await.as_deref(), Ok("back"));
}

async fn hostile_peers_case() {
    let mut tester = Tester::start().await;
    let node = tester.node.clone();
    let alpha = tester.connected("alpha").await;
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
        tester.next_event().await,
        NodeEvent::Up(mallory.name.clone())
    );
    let hijacker = node.remote::<Echo>(&mallory.name, ECHO).await.unwrap();
    assert_eq!(
        hijacker.call(Say("x".into())).await.as_deref(),
        Ok("HIJACKED:x")
    );
    let echo = node.remote::<Echo>(&alpha.name, ECHO).await.unwrap();
    for _ in 0..20 {
        assert_eq!(echo.call(Say("x".into())).await.as_deref(), Ok("x"));
    }

    // A peer announcing more processes than allowed (each a local proxy) is cut off.
    let flooder = FixtureNode::start(
        FIXTURE,
        &["flooder", COOKIE, "--connect", &here, "--flood", "300"],
    )
    .await;
    assert_eq!(
        tester.next_event().await,
        NodeEvent::Up(flooder.name.clone())
    );
    assert_eq!(
        tester.next_event().await,
        NodeEvent::Down(flooder.name.clone())
    );
    assert!(!node.peers().await.unwrap().contains(&flooder.name));
    tester.still_serves().await;
}

async fn wrong_cookie_case() {
    let tester = Tester::start().await;
    let stranger = FixtureNode::start(FIXTURE, &["stranger", "another-cookie"]).await;
    assert_eq!(
        tester.node.connect(&stranger.address).await,
        Err(ConnectError::AuthenticationFailed)
    );

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = closed.local_addr().unwrap().to_string();
    drop(closed);
    assert!(matches!(
        tester.node.connect(&address).await,
        Err(ConnectError::Unreachable { .. })
    ));
}

/// A connection that sends `bytes` is closed for them: while a silent one, opened before
/// it and still within its authentication time, stays open (the silent one is closed
/// too, when that time is up). The node serves on.
async fn closed_for_sending(bytes: &[u8]) {
    let mut tester = Tester::start().await;
    let address = tester.node.address();
    let silent = TcpStream::connect(address).await.unwrap();
    let mut offender = TcpStream::connect(address).await.unwrap();
    offender.write_all(bytes).await.unwrap();
    closed(offender).await;
    assert!(
        still_open(&silent),
        "the connection was closed only at the authentication deadline"
    );
    closed(silent).await;
    tester.still_serves().await;
}

async fn silent_and_garbage_case() {
    closed_for_sending(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 4, 1, 2, 3, 4]).await;
}

async fn oversized_frames_case() {
    // A frame header announcing 16 MiB (the default limit is 1 MiB), then a stall.
    closed_for_sending(&(16u64 * 1024 * 1024).to_be_bytes()).await;
}

async fn unauthenticated_cap_case() {
    let mut tester = Tester::start().await;
    // One more silent connection than the cap. Connections are set up concurrently, so any
    // one of them may be the one over the cap: it is closed at once, while the others wait
    // for their authentication deadline.
    let mut streams = Vec::new();
    for _ in 0..=UNAUTHENTICATED {
        streams.push(TcpStream::connect(tester.node.address()).await.unwrap());
    }
    let first_closed = wait::within("a connection over the cap to close", async {
        loop {
            if let Some(at) = streams.iter().position(|s| !still_open(s)) {
                break at;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let over = streams.remove(first_closed);
    drop(over);
    assert!(
        streams.iter().all(still_open),
        "only the connection over the cap is closed at once"
    );
    for stream in streams {
        closed(stream).await;
    }
    tester.still_serves().await;
}
otp::protocol! {
    /// The echo as another build might see it: a call and a cast `Echo` does not know.
    #[derive(serde::Serialize, serde::Deserialize)]
    pub SkewedEcho;
    calls SkewedCall { Shout(String) -> String }
    casts SkewedCast { Yell(String) }
}

async fn mismatched_types_case() {
    let mut tester = Tester::start().await;
    let node = tester.node.clone();
    let alpha = tester.connected("alpha").await;
    let skewed = node.remote::<SkewedEcho>(&alpha.name, ECHO).await.unwrap();
    match skewed.call(Shout("hey".into())).await {
        Err(CallError::BadRequest(why)) => assert!(why.contains("unknown variant"), "{why}"),
        other => panic!("expected a bad request, got {other:?}"),
    }
    // A cast that does not decode is dropped; the server and the link live on.
    skewed.cast(Yell("hey".into()));
    let echo = node.remote::<Echo>(&alpha.name, ECHO).await.unwrap();
    assert_eq!(echo.call(Say("fine".into())).await.as_deref(), Ok("fine"));
}

otp::protocol! {
    /// Asks a [`RemoteWatchServer`] to monitor a remote server.
    pub RemoteWatch;
    calls RemoteWatchCall {
        /// Monitors it; answers the id its DOWN will carry.
        Watch(otp::node::RemoteRef<Echo>) -> Result<otp::ActorId, CallError>,
    }
}

/// Monitors remote servers on request and reports their DOWN reasons.
struct RemoteWatchServer(mpsc::UnboundedSender<otp::ExitReason>);

impl GenServer for RemoteWatchServer {
    type Protocol = RemoteWatch;

    async fn handle_call(&mut self, call: RemoteWatchCall<'_>, me: &Context<Self>) -> otp::Result {
        let RemoteWatchCall::Watch(Watch(target), caller) = call;
        Ok(caller.reply(target.monitor(me)))
    }

    async fn handle_info(&mut self, info: Info<otp::Never>, _: &Context<Self>) -> otp::Result {
        if let Info::Down(down) = info {
            let _ = self.0.send(down.reason);
        }
        Ok(Flow::Continue)
    }
}

async fn remote_monitors_case() {
    let mut tester = Tester::start().await;
    let node = tester.node.clone();
    let (sender, mut downs) = mpsc::unbounded_channel();
    let watch = RemoteWatchServer(sender).start().await.unwrap();
    let mortal = tester.connected("mortal").await;
    let mut lost = tester.connected("lost").await;
    // The server exits: DOWN with its reason.
    let echo = node.remote::<Echo>(&mortal.name, ECHO).await.unwrap();
    watch.call(Watch(echo.clone())).await.unwrap().unwrap();
    // A deferred call is pending when the server exits: it fails at once, as locally
    // (no reply, not its own 60 s timeout).
    let deferred = in_flight(echo.call_timeout(Defer, Duration::from_secs(60))).await;
    echo.cast(Exit("bye".into()));
    assert_eq!(
        wait::next("a DOWN", &mut downs).await,
        otp::ExitReason::error("bye")
    );
    assert_eq!(deferred.await, Err(CallError::NoReply));
    // Now nothing runs under the name: monitoring it again reports noproc.
    watch.call(Watch(echo.clone())).await.unwrap().unwrap();
    assert_eq!(
        wait::next("a DOWN", &mut downs).await,
        otp::ExitReason::NoProc
    );

    // The node dies: DOWN with noconnection.
    let far = node.remote::<Echo>(&lost.name, ECHO).await.unwrap();
    watch.call(Watch(far)).await.unwrap().unwrap();
    lost.child.start_kill().unwrap();
    assert_eq!(
        wait::next("a DOWN", &mut downs).await,
        otp::ExitReason::NoConnection
    );
    assert_eq!(
        tester.next_event().await,
        NodeEvent::Down(lost.name.clone())
    );

    // A name the node does not export cannot be monitored.
    let missing = node
        .remote::<Echo>(&mortal.name, "nothing-here")
        .await
        .unwrap();
    assert_eq!(
        watch.call(Watch(missing)).await.unwrap(),
        Err(CallError::NoProc)
    );
}

async fn killed_peer_case() {
    let mut tester = Tester::start().await;
    let mut doomed = tester.connected("doomed").await;
    let echo = tester
        .node
        .remote::<Echo>(&doomed.name, ECHO)
        .await
        .unwrap();
    let pending = in_flight(echo.call_timeout(Slow(60_000), Duration::from_secs(60))).await;
    doomed.child.start_kill().unwrap();
    // The node's loss ends the call, not the call's own 60 s timeout.
    let result = wait::within("the call to end", pending).await;
    assert_eq!(result, Err(CallError::NodeDown(doomed.name.clone())));
    assert_eq!(
        tester.next_event().await,
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

async fn frozen_peer_case() {
    let mut tester = Tester::start().await;
    let frozen = tester.connected("frozen").await;
    let echo = tester
        .node
        .remote::<Echo>(&frozen.name, ECHO)
        .await
        .unwrap();
    // Busy is not dead: a call that takes longer than the liveness timeout is answered.
    let busy = (LIVENESS * 3 / 2).as_millis() as u64;
    assert_eq!(
        echo.call_timeout(Slow(busy), Duration::from_secs(60)).await,
        Ok(format!("slept {busy}"))
    );
    let pending = in_flight(echo.call_timeout(Slow(60_000), Duration::from_secs(60))).await;
    // Frozen, its kernel still answers TCP keepalives: only heartbeats can tell.
    signal(frozen.pid(), "-STOP");
    let result = wait::within("the call to end", pending).await;
    signal(frozen.pid(), "-CONT");
    assert_eq!(result, Err(CallError::NodeDown(frozen.name.clone())));
    assert_eq!(
        tester.next_event().await,
        NodeEvent::Down(frozen.name.clone())
    );
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
