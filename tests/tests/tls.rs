//! Mutual TLS between nodes in separate processes: a member joins and calls; a plaintext peer
//! and a peer with a foreign CA cannot join; a stalled handshake blocks nobody else; the
//! sessions are capped. Each scenario runs in a process of its own (one node per process).

use std::path::{Path, PathBuf};
use std::time::Duration;

use otp::node::{ConnectError, Cookie, Node, NodeConfig, NodeEvent, Tls};
use otp_tests::tcp::still_open;
use otp_tests::wait::run;
use otp_tests::{next_event, Echo, FixtureNode, NodeWatcher, Say, ECHO, TLS_SERVER_NAME};
use rusty_fork::rusty_fork_test;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const FIXTURE: &str = env!("CARGO_BIN_EXE_node_fixture");
const COOKIE: &str = "tls-test-cookie";
/// Long, so that a blocked accept loop would show: joins must not wait for it.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// Sessions the test node accepts at once.
const MAX_CONNECTIONS: usize = 3;

/// Writes a CA and a node certificate signed by it into `dir`.
fn certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let node_key = rcgen::KeyPair::generate().unwrap();
    let node = rcgen::CertificateParams::new(vec![TLS_SERVER_NAME.to_owned()])
        .unwrap()
        .signed_by(&node_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("node.pem"), node.pem()).unwrap();
    std::fs::write(dir.join("node.key"), node_key.serialize_pem()).unwrap();
}

fn tls_from(dir: &Path) -> Tls {
    Tls::from_pem_files(
        &dir.join("node.pem"),
        &dir.join("node.key"),
        &dir.join("ca.pem"),
        TLS_SERVER_NAME,
    )
    .unwrap()
}

/// This process's node, over TLS with the test cluster's CA, and where the certificates are.
struct SecureTester {
    node: Node,
    events: mpsc::UnboundedReceiver<NodeEvent>,
    _watcher: otp::ServerRef<NodeWatcher>,
    /// Where the node listens, for fixtures to dial.
    here: String,
    /// The cluster's certificates, and another CA's.
    ours: String,
    foreign: String,
    root: PathBuf,
}

impl SecureTester {
    async fn start() -> SecureTester {
        let root: PathBuf = std::env::temp_dir().join(format!("otp-tls-{}", std::process::id()));
        let (ours, foreign) = (root.join("cluster"), root.join("foreign"));
        certificates(&ours);
        certificates(&foreign);
        let mut config = NodeConfig::new(
            "secure-tester",
            "127.0.0.1:0".parse().unwrap(),
            Cookie::new(COOKIE).unwrap(),
        );
        config.tls = Some(tls_from(&ours));
        config.auth_timeout = HANDSHAKE_DEADLINE;
        config.max_connections = MAX_CONNECTIONS;
        let node = Node::start(config).await.unwrap();
        let (sender, events) = mpsc::unbounded_channel();
        let watcher = NodeWatcher::watch(sender, node.clone()).await.unwrap();
        SecureTester {
            here: node.address().to_string(),
            node,
            events,
            _watcher: watcher,
            ours: ours.to_string_lossy().into_owned(),
            foreign: foreign.to_string_lossy().into_owned(),
            root,
        }
    }

    /// A member with our CA that dials this node; waits until it has joined.
    async fn member_dialing(&mut self, name: &str) -> FixtureNode {
        let args = [name, COOKIE, "--tls", &self.ours, "--connect", &self.here];
        let mut member = FixtureNode::start(FIXTURE, &args).await;
        assert_eq!(
            member.next_line().await,
            format!("CONNECTED {}", self.node.name())
        );
        assert_eq!(
            next_event(&mut self.events).await,
            NodeEvent::Up(member.name.clone())
        );
        member
    }
}

impl Drop for SecureTester {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

rusty_fork_test! {
    #[test]
    fn a_member_with_our_ca_joins_and_is_called_over_tls() {
        run(member_case());
    }

    #[test]
    fn a_plaintext_peer_cannot_join_either_way() {
        run(plaintext_case());
    }

    #[test]
    fn a_peer_with_another_ca_cannot_join_even_with_the_cookie() {
        run(foreign_ca_case());
    }

    #[test]
    fn a_stalled_handshake_blocks_no_one() {
        run(stalled_handshake_case());
    }

    #[test]
    fn sessions_beyond_max_connections_are_refused() {
        run(max_connections_case());
    }
}

async fn member_case() {
    let mut tester = SecureTester::start().await;
    let member = FixtureNode::start(FIXTURE, &["member", COOKIE, "--tls", &tester.ours]).await;
    assert_eq!(
        tester.node.connect(&member.address).await.as_deref(),
        Ok(member.name.as_str())
    );
    let echo = tester
        .node
        .remote::<Echo>(&member.name, ECHO)
        .await
        .unwrap();
    assert_eq!(
        echo.call(Say("sealed".into())).await.as_deref(),
        Ok("sealed")
    );
    assert_eq!(
        next_event(&mut tester.events).await,
        NodeEvent::Up(member.name.clone())
    );
}

/// A fixture started with `args` (which dial this node) fails to join, as `what`.
async fn refused_dialing(args: &[&str], what: &str) -> FixtureNode {
    let mut peer = FixtureNode::start(FIXTURE, args).await;
    let line = peer.next_line().await;
    assert!(line.starts_with("CONNECT_ERROR"), "{what} joined: {line}");
    peer
}

async fn plaintext_case() {
    let tester = SecureTester::start().await;
    let args = ["plain", COOKIE, "--connect", &tester.here];
    let plain = refused_dialing(&args, "a plaintext peer").await;
    assert!(matches!(
        tester.node.connect(&plain.address).await,
        Err(ConnectError::Tls(_))
    ));
}

async fn foreign_ca_case() {
    let tester = SecureTester::start().await;
    let (foreign, here) = (&tester.foreign, &tester.here);
    let args = ["intruder", COOKIE, "--tls", foreign, "--connect", here];
    let intruder = refused_dialing(&args, "a foreign-CA peer").await;
    assert!(matches!(
        tester.node.connect(&intruder.address).await,
        Err(ConnectError::Tls(_))
    ));
}

async fn stalled_handshake_case() {
    let mut tester = SecureTester::start().await;
    // A client that opens TCP and stalls its handshake: a member joins meanwhile.
    let stalled = TcpStream::connect(tester.node.address()).await.unwrap();
    let late = tester.member_dialing("late").await;
    assert!(
        still_open(&stalled),
        "the member joined only once the stalled handshake was closed at its deadline"
    );
    assert_eq!(tester.node.peers().await.unwrap(), vec![late.name.clone()]);
}

async fn max_connections_case() {
    let mut tester = SecureTester::start().await;
    let mut members = Vec::new();
    for n in 0..MAX_CONNECTIONS {
        members.push(tester.member_dialing(&format!("member{n}")).await);
    }
    let (ours, here) = (&tester.ours, &tester.here);
    let args = ["over", COOKIE, "--tls", ours, "--connect", here];
    refused_dialing(&args, "a member over max_connections").await;
    assert_eq!(tester.node.peers().await.unwrap().len(), MAX_CONNECTIONS);
}
