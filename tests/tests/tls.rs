//! Mutual TLS between nodes in separate processes: a member joins and calls; a plaintext peer
//! and a peer with a foreign CA cannot join; a stalled handshake blocks nobody else.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use otp::node::{ConnectError, Cookie, Node, NodeConfig, NodeEvent, Tls};
use otp::GenServer;
use otp_tests::{next_event, Echo, EchoCall, FixtureNode, NodeWatcher, ECHO, TLS_SERVER_NAME};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_over_mutual_tls() {
    let root: PathBuf = std::env::temp_dir().join(format!("otp-tls-{}", std::process::id()));
    let (ours, foreign) = (root.join("cluster"), root.join("foreign"));
    certificates(&ours);
    certificates(&foreign);
    let ours_arg = ours.to_string_lossy().into_owned();
    let foreign_arg = foreign.to_string_lossy().into_owned();

    let mut config = NodeConfig::new(
        "secure-tester",
        "127.0.0.1:0".parse().unwrap(),
        Cookie::new(COOKIE).unwrap(),
    );
    config.tls = Some(tls_from(&ours));
    config.auth_timeout = HANDSHAKE_DEADLINE;
    config.max_connections = MAX_CONNECTIONS;
    let node = Node::start(config).await.unwrap();
    let (sender, mut events) = mpsc::unbounded_channel();
    let _watcher = NodeWatcher(sender).start(node.clone()).await.unwrap();
    let here = node.address().to_string();

    // A member with our CA joins and is called, over TLS.
    let member = FixtureNode::start(FIXTURE, &["member", COOKIE, "--tls", &ours_arg]).await;
    assert_eq!(
        node.connect(&member.address).await.as_deref(),
        Ok(member.name.as_str())
    );
    let echo = node.remote::<Echo>(&member.name, ECHO).await.unwrap();
    assert_eq!(
        echo.call(EchoCall::Echo("sealed".into())).await.as_deref(),
        Ok("sealed")
    );
    assert_eq!(
        next_event(&mut events).await,
        NodeEvent::Up(member.name.clone())
    );

    // A plaintext peer cannot join: not by connecting to us, nor by us connecting to it.
    let mut plain = FixtureNode::start(FIXTURE, &["plain", COOKIE, "--connect", &here]).await;
    let line = plain.next_line().await;
    assert!(
        line.starts_with("CONNECT_ERROR"),
        "a plaintext peer joined: {line}"
    );
    assert!(matches!(
        node.connect(&plain.address).await,
        Err(ConnectError::Tls(_))
    ));

    // Nor can a peer whose certificate comes from another CA, even with the right cookie.
    let mut intruder = FixtureNode::start(
        FIXTURE,
        &[
            "intruder",
            COOKIE,
            "--tls",
            &foreign_arg,
            "--connect",
            &here,
        ],
    )
    .await;
    let line = intruder.next_line().await;
    assert!(
        line.starts_with("CONNECT_ERROR"),
        "a foreign-CA peer joined: {line}"
    );
    assert!(matches!(
        node.connect(&intruder.address).await,
        Err(ConnectError::Tls(_))
    ));

    // A client that opens TCP and stalls its handshake blocks no one: a member joins at once.
    let _stalled = TcpStream::connect(node.address()).await.unwrap();
    let started = Instant::now();
    let mut late = FixtureNode::start(
        FIXTURE,
        &["late", COOKIE, "--tls", &ours_arg, "--connect", &here],
    )
    .await;
    assert_eq!(late.next_line().await, format!("CONNECTED {}", node.name()));
    assert_eq!(
        next_event(&mut events).await,
        NodeEvent::Up(late.name.clone())
    );
    assert!(
        started.elapsed() < HANDSHAKE_DEADLINE / 2,
        "joined after {:?}",
        started.elapsed()
    );

    assert_eq!(
        node.peers().await.unwrap(),
        vec![late.name.clone(), member.name.clone()]
    );

    // Two sessions now: a third member fits, a fourth is over max_connections.
    let mut third = FixtureNode::start(
        FIXTURE,
        &["third", COOKIE, "--tls", &ours_arg, "--connect", &here],
    )
    .await;
    assert_eq!(
        third.next_line().await,
        format!("CONNECTED {}", node.name())
    );
    let mut fourth = FixtureNode::start(
        FIXTURE,
        &["fourth", COOKIE, "--tls", &ours_arg, "--connect", &here],
    )
    .await;
    let line = fourth.next_line().await;
    assert!(
        line.starts_with("CONNECT_ERROR"),
        "over max_connections: {line}"
    );
    assert_eq!(node.peers().await.unwrap().len(), MAX_CONNECTIONS);
    node.stop().await;
    let _ = std::fs::remove_dir_all(&root);
}
