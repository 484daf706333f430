//! The node's own processes live in the supervision tree: a node killed under a supervisor
//! is restarted, and connects and calls again.

use std::time::Duration;

use otp::node::{Cookie, Node, NodeConfig};
use otp::supervisor::SupervisorSpec;
use otp_tests::{Echo, EchoCall, FixtureNode, ECHO, PATIENCE};

const COOKIE: &str = "supervised-node-cookie";

/// The node in this process once it answers, waiting for a restart to complete.
async fn running_node(not: Option<&str>) -> Node {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(node) = Node::local().await {
            if Some(node.address().to_string().as_str()) != not {
                return node;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node did not come back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_restarted_by_its_supervisor() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let config = NodeConfig::new(
        "supervised",
        "127.0.0.1:0".parse().unwrap(),
        Cookie::new(COOKIE).unwrap(),
    );
    let tree = SupervisorSpec {
        flags: Default::default(),
        children: vec![Node::child_spec("node", config)],
    };
    let supervisor = tree.start().await.unwrap();
    let fixture = FixtureNode::start(env!("CARGO_BIN_EXE_node_fixture"), &["peer", COOKIE]).await;

    let node = running_node(None).await;
    node.connect(&fixture.address).await.unwrap();
    let echo = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    assert_eq!(
        echo.call(EchoCall::Echo("one".into())).await.as_deref(),
        Ok("one")
    );

    let old = node.address().to_string();
    supervisor
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .find(|child| child.id == "node")
        .and_then(|child| child.process.cell().cloned())
        .expect("the node runs")
        .kill();
    let node = running_node(Some(&old)).await;
    node.connect(&fixture.address).await.unwrap();
    let echo = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    assert_eq!(
        echo.call(EchoCall::Echo("two".into())).await.as_deref(),
        Ok("two")
    );
    supervisor.stop().await.unwrap();
}
