//! Callers name a protocol, not a server: two implementations of one protocol, on two
//! nodes, answer one `RemoteRef` type behind one name. One test: a process runs one node.

use otp::node::{Cookie, Node, NodeConfig};
use otp_tests::{Echo, FixtureNode, Say, ECHO};

const FIXTURE: &str = env!("CARGO_BIN_EXE_node_fixture");
const COOKIE: &str = "remote-protocol-cookie";

#[tokio::test]
async fn two_implementations_of_one_protocol_answer_behind_one_name_across_nodes() {
    let config = NodeConfig::new(
        "caller",
        "127.0.0.1:0".parse().unwrap(),
        Cookie::new(COOKIE).unwrap(),
    );
    let node = Node::start(config).await.expect("local node starts");
    let plain = FixtureNode::start(FIXTURE, &["plain", COOKIE, "--prefix", "echo: "]).await;
    let shouting = FixtureNode::start(FIXTURE, &["shouting", COOKIE, "--shout"]).await;

    let mut answers = Vec::new();
    for fixture in [&plain, &shouting] {
        let peer = node.connect(fixture.address.as_str()).await.unwrap();
        // The same type for both: the caller knows the protocol, not which server runs.
        let echo = node.remote::<Echo>(&peer, ECHO).await.unwrap();
        answers.push(echo.call(Say("hello".into())).await.unwrap());
    }
    assert_eq!(answers, ["echo: hello", "HELLO"]);
}
