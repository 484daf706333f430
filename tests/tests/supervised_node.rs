//! The node's own processes live in the supervision tree: a node killed under a supervisor
//! is restarted on the same port, and connects and calls again.

use otp::node::{Cookie, Node, NodeConfig};
use otp::supervisor::{SupervisorRef, SupervisorSpec};
use otp::ActorCell;
use otp_tests::{wait, Echo, FixtureNode, Say, ECHO};

const COOKIE: &str = "supervised-node-cookie";

/// The node child's process, if it runs.
async fn node_process(supervisor: &SupervisorRef) -> Option<ActorCell> {
    supervisor
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .find(|child| child.id == "node")
        .and_then(|child| child.process.cell().cloned())
}

/// The node once a process other than `not` runs it and answers (a restart completed).
async fn running_node(supervisor: &SupervisorRef, not: Option<&ActorCell>) -> (Node, ActorCell) {
    wait::eventually("the node to come back", || async {
        let process = node_process(supervisor).await.ok_or("no node process")?;
        if not.is_some_and(|old| old.get_id() == process.get_id()) {
            return Err("the old node process");
        }
        let node = Node::local().await.map_err(|_| "no node answers")?;
        Ok((node, process))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_restarted_by_its_supervisor() {
    // A fixed port: the restarted node must get it back from its killed predecessor.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}").parse().unwrap();
    let config = NodeConfig::new("supervised", listen, Cookie::new(COOKIE).unwrap());
    let tree = SupervisorSpec {
        flags: Default::default(),
        children: vec![Node::child_spec("node", config)],
    };
    let supervisor = tree.start().await.unwrap();
    let fixture = FixtureNode::start(env!("CARGO_BIN_EXE_node_fixture"), &["peer", COOKIE]).await;

    let (node, process) = running_node(&supervisor, None).await;
    node.connect(&fixture.address).await.unwrap();
    let echo = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    assert_eq!(echo.call(Say("one".into())).await.as_deref(), Ok("one"));

    process.kill();
    let (node, _) = running_node(&supervisor, Some(&process)).await;
    assert_eq!(node.address(), listen, "same port after the restart");
    node.connect(&fixture.address).await.unwrap();
    let echo = node.remote::<Echo>(&fixture.name, ECHO).await.unwrap();
    assert_eq!(echo.call(Say("two".into())).await.as_deref(), Ok("two"));
    supervisor.stop().await.unwrap();
}
