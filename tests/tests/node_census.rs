//! What a node holds comes back to its baseline after thousands of peers came and went,
//! whether they left in order or were killed, while holding remote monitors on it.

use otp::node::{Cookie, Node, NodeConfig, NodeEvent};
use otp::GenServer;
use otp_tests::{wait, Echo, EchoServer, FixtureNode, NodeWatcher, ECHO, PATIENCE};
use tokio::sync::mpsc;

const FIXTURE: &str = env!("CARGO_BIN_EXE_node_fixture");
const COOKIE: &str = "census-test-cookie";
/// Peers that connect, monitor and leave in order.
const CYCLES: usize = 1000;
/// Peers killed while holding a monitor.
const KILLED: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_holds_nothing_for_peers_that_came_and_went() {
    let config = NodeConfig::new(
        "census",
        "127.0.0.1:0".parse().unwrap(),
        Cookie::new(COOKIE).unwrap(),
    );
    let node = Node::start(config).await.expect("local node starts");
    EchoServer::default().start_named(ECHO).await.unwrap();
    node.export::<Echo>(ECHO).await.unwrap();
    let (sender, mut events) = mpsc::unbounded_channel();
    let _watcher = NodeWatcher::watch(sender, node.clone()).await.unwrap();
    let address = node.address().to_string();
    let baseline = node.census().await.unwrap();
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();

    let mut cycler = FixtureNode::start(
        FIXTURE,
        &[
            "cycler",
            COOKIE,
            "--connect",
            &address,
            "--cycle",
            &CYCLES.to_string(),
        ],
    )
    .await;
    let done = tokio::time::timeout(PATIENCE * 10, cycler.next_line())
        .await
        .expect("the cycles finish");
    assert_eq!(done, format!("CYCLED {CYCLES}"));
    otp_tests::census_settles_to(&node, baseline).await;

    for n in 0..KILLED {
        let mut peer = FixtureNode::start(
            FIXTURE,
            &[
                &format!("doomed{n}"),
                COOKIE,
                "--connect",
                &address,
                "--monitor",
            ],
        )
        .await;
        assert!(peer.next_line().await.starts_with("CONNECTED"));
        assert_eq!(peer.next_line().await, "MONITORING");
        assert_eq!(
            node.census().await.unwrap().remote_monitors,
            baseline.remote_monitors + 1
        );
        peer.child.kill().await.unwrap();
        // The last events on the way, and what the node holds, should its going never be told.
        let mut seen = Vec::new();
        loop {
            let Ok(Some(event)) = tokio::time::timeout(PATIENCE, events.recv()).await else {
                panic!(
                    "{} went down untold; the last events since it was killed: {seen:?}; census: {:?}; peers: {:?}",
                    peer.name,
                    node.census().await,
                    node.peers().await
                );
            };
            match event {
                NodeEvent::Down(gone) if gone == peer.name => break,
                other => {
                    if seen.len() == 10 {
                        seen.remove(0);
                    }
                    seen.push(other);
                }
            }
        }
    }

    otp_tests::census_settles_to(&node, baseline).await;
    // Tasks of the last links (a heartbeat in flight to a killed peer, a connection's
    // reader) end in their own time, later on a busy machine; a leak would stay.
    wait::eventually("the links' tasks to end", || async {
        let now = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        if now <= tasks + 2 {
            Ok(())
        } else {
            Err(format!(
                "{now} tasks alive after the peers left, {tasks} before"
            ))
        }
    })
    .await;
    node.stop().await;
}
