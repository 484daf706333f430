//! A hand-made node with the cookie (which every chat client has) tries to pass for a
//! server of the cluster: to take a nick, and to hand the servers a line. One test: a
//! process runs one node.

use ex_messenger::server::cluster::{ClusterPeer, PeerCall, Proof, Prove, Sealed, Tell};
use ex_messenger::server::cluster::{CLUSTER, NICKS};
use ex_messenger::server::cluster::{SCOPE, SERVERS};
use otp::node::global::Global;
use otp::node::pg::{Peers, Scope};
use otp::node::{Cookie, Node, NodeConfig};
use otp::{Context, GenServer};
use otp_tests::chat::Chat;

const COOKIE: &str = "cluster-hostile-cookie";

/// A relay without the cluster key: it answers a proof with a made-up MAC.
struct Impostor;

impl GenServer for Impostor {
    type Protocol = ClusterPeer;

    async fn handle_call(&mut self, call: PeerCall<'_>, _: &Context<Self>) -> otp::Result {
        let PeerCall::Prove(_, caller) = call;
        Ok(caller.reply(Proof {
            mac: "00".repeat(32),
            address: "127.0.0.1:1".into(),
            servers: Vec::new(),
        }))
    }
}

#[tokio::test]
async fn a_node_without_the_cluster_key_cannot_take_a_nick_or_speak_for_a_server() {
    let dir = std::env::temp_dir().join(format!("cluster-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("cluster.key");
    let key = key.to_str().unwrap();
    let (mut server, address) = Chat::server(COOKIE, &["--cluster-key-file", key]).await;
    let mut bob = Chat::joined(&address, "bob", COOKIE).await;

    // The impostor runs the chat's scope and nick table (taking from every peer), puts a
    // relay of its own in the servers' group and registers "mallory" for it first.
    let config = NodeConfig::new(
        "server-1",
        "127.0.0.1:0".parse().unwrap(),
        Cookie::new(COOKIE).unwrap(),
    );
    let node = Node::start(config).await.unwrap();
    let scope = Scope::start_with(SCOPE, Peers::All).await.unwrap();
    let nicks = Global::start(NICKS, Peers::All).await.unwrap();
    let impostor = Impostor.start_named(CLUSTER).await.unwrap();
    node.export::<ClusterPeer>(CLUSTER).await.unwrap();
    scope.join(SERVERS, &impostor).await.unwrap();
    nicks.register_name("mallory", &impostor).await.unwrap();
    node.connect(address.as_str()).await.unwrap();

    // The server asked it for a proof and got none: a real mallory gets the nick.
    server
        .expect("Refused server-1@127.0.0.1 as a server: its proof does not hold the cluster key")
        .await;
    let mut mallory = Chat::joined(&address, "mallory", COOKIE).await;
    bob.expect("**mallory has joined**").await;

    // A line sealed with a made-up MAC, cast to the server's relay, reaches nobody. A call
    // to the relay behind it comes back once the relay has handled it.
    let relay = otp_tests::wait::eventually("the server's relay to show", || async {
        let members = scope.members::<ClusterPeer>(SERVERS);
        members.into_iter().find(|m| !m.is_local()).ok_or("not yet")
    })
    .await;
    let forged: Sealed = serde_json::from_value(serde_json::json!({
        "body": r#"{"Line":{"room":"lobby","from":"bob","text":"forged","session":1,"sent":1}}"#,
        "mac": "00".repeat(32),
    }))
    .unwrap();
    relay.cast(Tell(forged));
    assert!(relay.call(Prove { nonce: 1 }).await.is_ok());
    mallory.send("after the forgery").await;
    bob.expect_before("mallory: after the forgery", &["forged"])
        .await;
}
