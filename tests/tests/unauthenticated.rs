//! Connections that never authenticate lock no one out: with slowloris and connect-and-hold
//! floods from one address running, nodes dialing from another address still join; a node
//! refusing for load answers `ConnectError::Busy`, which a dialing node tells from a cookie
//! mismatch (with or without TLS) and retries; the refusals are logged at a bounded rate.
//!
//! The node under attack and the joining nodes are fixture processes (`node_fixture`); the
//! attack runs in this process.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otp::node::{ConnectError, Cookie, Node, NodeConfig};
use otp_tests::{wait, FixtureNode, PATIENCE};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

const FIXTURE: &str = env!("CARGO_BIN_EXE_node_fixture");
const COOKIE: &str = "unauthenticated-test-cookie";
/// Connections sending one byte a second, each reopened when closed.
const SLOWLORIS: usize = 100;
/// Connections opened at once and held without a word.
const HOLDERS: usize = 2_000;
/// Nodes joining during the attack.
const JOINERS: usize = 20;
/// Where the joiners dial from: the attack comes from 127.0.0.1, another source.
const JOINER_SOURCE: &str = "127.0.0.2";
/// What a node sends a connection it refuses for load: ractor_cluster's `NOT_ALLOWED`
/// status, as one length-prefixed frame.
const BUSY: [u8; 14] = [0, 0, 0, 0, 0, 0, 0, 6, 0x0A, 4, 0x12, 2, 0x08, 3];

/// The scenarios share this process, which hosts at most one node: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_from_one_address_lock_no_one_out() {
    let _serial = SERIAL.lock().await;
    // Both ends of the attack's sockets that are still open live here: the held ones, the
    // slowloris ones, and a margin for the runtime and the children's pipes.
    raise_open_files((HOLDERS + SLOWLORIS + 1_000) as u64);

    let mut hub = Hub::start().await;
    let target: SocketAddr = hub.address.parse().unwrap();

    // The attack: slowloris connections, reopened as soon as they are closed...
    let opened = Arc::new(AtomicUsize::new(0));
    let turned_over = Arc::new(AtomicUsize::new(0));
    let slowloris: Vec<JoinHandle<()>> = (0..SLOWLORIS)
        .map(|_| tokio::spawn(slowloris(target, opened.clone(), turned_over.clone())))
        .collect();
    // ...and connections opened all at once and held.
    let holding = futures::future::join_all(
        (0..HOLDERS).map(|_| tokio::time::timeout(PATIENCE, TcpStream::connect(target))),
    )
    .await;
    let held: Vec<TcpStream> = holding
        .into_iter()
        .filter_map(|connect| connect.ok()?.ok())
        .collect();
    assert_eq!(held.len(), HOLDERS, "the held connections were all opened");
    // Once slots taken by the attack have been closed for not authenticating and taken
    // again, the attack is in its steady state.
    wait::eventually(
        "an admitted slowloris connection to be closed at its deadline",
        || async {
            match turned_over.load(Ordering::Relaxed) {
                0 => Err("none yet"),
                _ => Ok(()),
            }
        },
    )
    .await;

    // Nodes dialing from another address join while it runs (retrying while busy).
    let opened_before = opened.load(Ordering::Relaxed);
    let started = Instant::now();
    let patience = PATIENCE.as_millis().to_string();
    let joiners = futures::future::join_all((0..JOINERS).map(|n| {
        let (name, hub_address, patience) = (format!("joiner{n}"), hub.address.clone(), &patience);
        async move {
            let mut joiner = FixtureNode::start(
                FIXTURE,
                &[
                    &name,
                    COOKIE,
                    "--from",
                    JOINER_SOURCE,
                    "--connect",
                    &hub_address,
                    "--patience",
                    patience,
                ],
            )
            .await;
            let line = joiner.next_line().await;
            (joiner, line)
        }
    }))
    .await;
    let all_joined = started.elapsed();
    let opened_during = opened.load(Ordering::Relaxed) - opened_before;

    let mut took = Vec::new();
    for (joiner, line) in &joiners {
        let expected = format!("CONNECTED {} after ", hub.name);
        let ms = line
            .strip_prefix(&expected)
            .and_then(|rest| rest.strip_suffix(" ms"))
            .unwrap_or_else(|| panic!("{} did not join: {line}", joiner.name));
        took.push(ms.parse::<u64>().unwrap());
    }
    took.sort();
    eprintln!(
        "{JOINERS} nodes from {JOINER_SOURCE} joined under attack: all within {all_joined:?} \
         of starting their processes; connect (with retries) took {} to {} ms, median {} ms; \
         {opened_during} slowloris connections opened meanwhile; {} admitted and closed at \
         their deadline so far",
        took[0],
        took[took.len() - 1],
        took[took.len() / 2],
        turned_over.load(Ordering::Relaxed),
    );
    assert!(
        opened_during > 0,
        "the slowloris attack ran (was refused and reopened) while the nodes joined"
    );

    for task in &slowloris {
        task.abort();
    }
    drop(held);
    drop(joiners);

    // However many were refused, the node under attack warned only a few times.
    let attack = started.elapsed() + Duration::from_secs(2);
    hub.child.kill().await.unwrap();
    hub.stderr_done().await;
    let log = hub.log.lock().unwrap().clone();
    let summaries: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("otp::node::listener"))
        .collect();
    eprintln!(
        "the node under attack logged {} lines at warn level ({} from ractor_cluster), {} \
         from our listener: {summaries:?}",
        log.len(),
        log.iter().filter(|l| l.contains("ractor_cluster")).count(),
        summaries.len(),
    );
    assert!(
        summaries
            .iter()
            .any(|line| line.contains("limits reached (per source")),
        "the refusals are reported: {summaries:?}"
    );
    let allowed = 2 + (attack.as_secs() / 10) as usize;
    assert!(
        summaries.len() <= allowed,
        "at most one warning per 10 s: {} over about {attack:?}",
        summaries.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_node_is_told_from_a_wrong_cookie() {
    let _serial = SERIAL.lock().await;
    let node = Node::start(NodeConfig::new(
        "dialer",
        "127.0.0.1:0".parse().unwrap(),
        Cookie::new(COOKIE).unwrap(),
    ))
    .await
    .unwrap();

    // A wrong cookie is still a failed authentication.
    let stranger = FixtureNode::start(FIXTURE, &["stranger", "another-cookie"]).await;
    assert_eq!(
        node.connect(&stranger.address).await,
        Err(ConnectError::AuthenticationFailed)
    );

    // A node whose slots for connections still authenticating are taken (by two
    // connections that sent a byte and then stalled, long before its deadline) answers
    // "busy". Connections are admitted in the order they arrive, so ours comes after them.
    let tight = FixtureNode::start(
        FIXTURE,
        &[
            "tight",
            COOKIE,
            "--max-unauthenticated",
            "2",
            "--auth-timeout",
            "60000",
        ],
    )
    .await;
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&tight.address).await.unwrap();
        stream.write_all(&[0]).await.unwrap();
        stalled.push(stream);
    }
    assert_eq!(node.connect(&tight.address).await, Err(ConnectError::Busy));
    assert_eq!(
        ConnectError::Busy.to_string(),
        "the server is busy: too many connections being set up; try again shortly"
    );
    // Still busy, however often asked within the patience given.
    assert_eq!(
        node.connect_retrying(&tight.address, Duration::from_millis(300))
            .await,
        Err(ConnectError::Busy)
    );

    // Once the slots are free, a retrying dial gets in.
    drop(stalled);
    assert_eq!(
        node.connect_retrying(&tight.address, PATIENCE)
            .await
            .as_deref(),
        Ok(tight.name.as_str())
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_node_says_so_over_tls_too() {
    let _serial = SERIAL.lock().await;
    let dir = std::env::temp_dir().join(format!("otp-busy-tls-{}", std::process::id()));
    certificates(&dir);
    let dir_arg = dir.to_string_lossy().into_owned();
    let tight = FixtureNode::start(
        FIXTURE,
        &[
            "tight-tls",
            COOKIE,
            "--tls",
            &dir_arg,
            "--max-unauthenticated",
            "2",
            "--auth-timeout",
            "60000",
        ],
    )
    .await;
    // Two connections that start a handshake and stall hold both slots.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&tight.address).await.unwrap();
        stream.write_all(&[0x16]).await.unwrap();
        stalled.push(stream);
    }
    // The refusal comes before any TLS, in the clear; the dialer still reads it as busy.
    let mut member = FixtureNode::start(
        FIXTURE,
        &[
            "member",
            COOKIE,
            "--tls",
            &dir_arg,
            "--connect",
            &tight.address,
        ],
    )
    .await;
    assert_eq!(
        member.next_line().await,
        format!("CONNECT_ERROR {}", ConnectError::Busy)
    );
    drop(stalled);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes a CA and a node certificate signed by it into `dir`.
fn certificates(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let node_key = rcgen::KeyPair::generate().unwrap();
    let node = rcgen::CertificateParams::new(vec![otp_tests::TLS_SERVER_NAME.to_owned()])
        .unwrap()
        .signed_by(&node_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("node.pem"), node.pem()).unwrap();
    std::fs::write(dir.join("node.key"), node_key.serialize_pem()).unwrap();
}

/// Opens a connection to `target`, sends it a byte a second until the peer closes it, and
/// starts over, forever; counts the connections opened, and those closed without the
/// node's "busy" refusal (admitted, then closed for not authenticating).
async fn slowloris(target: SocketAddr, opened: Arc<AtomicUsize>, turned_over: Arc<AtomicUsize>) {
    loop {
        let Ok(mut stream) = TcpStream::connect(target).await else {
            // Out of ports or descriptors for a moment: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut buffer = [0u8; 64];
        let mut received = Vec::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if stream.write_all(&[0]).await.is_err() {
                        break;
                    }
                }
                read = stream.read(&mut buffer) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received.extend_from_slice(&buffer[..n]),
                },
            }
        }
        if !received.starts_with(&BUSY) {
            turned_over.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Raises this process's soft limit on open files to at least `needed`.
fn raise_open_files(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < needed {
            limit.rlim_cur = needed.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= needed,
        "this test needs {needed} open files; the hard limit is {}",
        limit.rlim_max
    );
}

/// The node under attack: a fixture with the default limits, whose warnings are kept.
struct Hub {
    child: Child,
    name: String,
    address: String,
    log: Arc<Mutex<Vec<String>>>,
    stderr: JoinHandle<()>,
}

impl Hub {
    async fn start() -> Hub {
        let mut child = Command::new(FIXTURE)
            .args(["hub", COOKIE])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start node_fixture");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let kept = log.clone();
        let stderr = tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(PATIENCE, stdout.next_line())
            .await
            .expect("the hub did not get ready in time")
            .unwrap()
            .expect("the hub exited before READY");
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        let mut words = ready.split_whitespace().skip(1);
        let name = words.next().expect("node name").to_owned();
        let address = words.next().expect("node address").to_owned();
        Hub {
            child,
            name,
            address,
            log,
            stderr,
        }
    }

    /// Waits until the (killed) hub's standard error is read to its end.
    async fn stderr_done(&mut self) {
        tokio::time::timeout(PATIENCE, &mut self.stderr)
            .await
            .expect("the hub's stderr closes")
            .unwrap();
    }
}
