//! The observer's HTTP port, spoken to as raw TCP, as a browser, a script or a hostile
//! client would: what it serves, what it refuses and how, and that the node it observes
//! goes on unharmed. Each scenario runs in a process of its own (one observer per
//! program: it is registered under `otp.observer`).

use std::net::SocketAddr;

use otp::observer::{self, Observer, ObserverConfig, Page};
use otp::supervisor::{ChildSpec, SupervisorSpec};
use otp::ServerRef;
use otp_tests::wait::{self, run};
use otp_tests::{Echo, EchoCall};
use rusty_fork::rusty_fork_test;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Connections the observer under test takes at once.
const CONNECTIONS: usize = 4;

/// A tree with one echo server, and an observer beside it.
async fn observed() -> Observer {
    let mut config = ObserverConfig::new("127.0.0.1:0".parse().unwrap());
    config.max_connections = CONNECTIONS;
    let tree = SupervisorSpec {
        flags: Default::default(),
        children: vec![
            ChildSpec::worker("echo", |parent| {
                parent.start_named("echo", Echo::default(), ())
            }),
            observer::child_spec("observer", config),
        ],
    };
    tree.start_named("top").await.expect("the tree starts");
    Observer::running().await.expect("the observer runs")
}

/// Sends `request` as it is and reads the answer until the observer closes.
async fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut answer = Vec::new();
    wait::within("the observer's answer", stream.read_to_end(&mut answer))
        .await
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// A request with the observer's host and `Connection: close`, plus `headers`.
fn request(method: &str, path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn action(token: Option<&str>, body: &str) -> Vec<u8> {
    let authorization = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n")
    });
    request("POST", "/api/action", &authorization, body)
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

/// The echo server still answers: the node was not disturbed.
async fn echo_answers() {
    let echo = ServerRef::<Echo>::whereis("echo").expect("echo is registered");
    let answer = echo.call(EchoCall::Echo("still here".into())).await;
    assert_eq!(answer.expect("echo answers"), "still here");
}

/// Opens the live feed and waits for its first snapshot; returns the stream (the page
/// stays open while it is held) and the snapshot's JSON.
async fn open_page(address: SocketAddr) -> (BufReader<TcpStream>, serde_json::Value) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send");
    let mut page = BufReader::new(stream);
    let snapshot = next_event(&mut page, "snapshot").await;
    (page, snapshot)
}

/// The data of the next server-sent event of this kind.
async fn next_event(page: &mut BufReader<TcpStream>, kind: &str) -> serde_json::Value {
    let wanted = format!("event: {kind}");
    wait::within(&format!("a {kind} event"), async {
        let mut line = String::new();
        let mut in_event = false;
        loop {
            line.clear();
            if page.read_line(&mut line).await.expect("read the feed") == 0 {
                panic!("the feed ended");
            }
            let line = line.trim_end();
            if line.starts_with("event: ") {
                in_event = line == wanted;
            } else if let (true, Some(data)) = (in_event, line.strip_prefix("data: ")) {
                return serde_json::from_str(data).expect("an event's data is JSON");
            }
        }
    })
    .await
}

/// The pid of the child `id` in a snapshot's trees.
fn pid_of(snapshot: &serde_json::Value, id: &str) -> String {
    let page: Page = serde_json::from_value(snapshot.clone()).expect("a page");
    let process = page.local.find(id);
    let pid = process.and_then(|process| process.pid.clone());
    pid.unwrap_or_else(|| panic!("no running {id} in {snapshot}"))
}

rusty_fork_test! {
    #[test]
    fn the_page_and_its_live_feed_are_served() {
        run(async {
            let observer = observed().await;
            let page = exchange(observer.address(), &request("GET", "/", "", "")).await;
            assert_eq!(status_line(&page), "HTTP/1.1 200 OK");
            assert!(page.contains("<script src=\"/app.js\">"), "{page}");
            let (_page, snapshot) = open_page(observer.address()).await;
            assert_eq!(snapshot["local"]["trees"][0]["id"], "top");
            assert_eq!(snapshot["local"]["trees"][0]["supervisor"]["strategy"], "one_for_one");
            pid_of(&snapshot, "echo");
        });
    }

    #[test]
    fn garbage_is_refused_with_400_and_the_node_goes_on() {
        run(async {
            let observer = observed().await;
            let answer = exchange(observer.address(), b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n").await;
            assert!(status_line(&answer).starts_with("HTTP/1.1 400"), "{answer:?}");
            echo_answers().await;
            let page = exchange(observer.address(), &request("GET", "/", "", "")).await;
            assert_eq!(status_line(&page), "HTTP/1.1 200 OK");
        });
    }

    #[test]
    fn huge_headers_are_refused_with_431() {
        run(async {
            let observer = observed().await;
            let huge = format!("X-Filler: {}\r\n", "a".repeat(20 * 1024));
            let answer = exchange(observer.address(), &request("GET", "/", &huge, "")).await;
            assert!(status_line(&answer).starts_with("HTTP/1.1 431"), "{answer:?}");
            echo_answers().await;
        });
    }

    #[test]
    fn connections_beyond_the_cap_are_told_so_and_the_rest_are_served() {
        run(async {
            let observer = observed().await;
            let mut held = Vec::new();
            for _ in 0..CONNECTIONS {
                held.push(TcpStream::connect(observer.address()).await.expect("connect"));
            }
            let answer = exchange(observer.address(), &request("GET", "/", "", "")).await;
            assert!(status_line(&answer).starts_with("HTTP/1.1 503"), "{answer:?}");
            assert!(answer.contains("too many connections to the observer"), "{answer:?}");
            echo_answers().await;
            drop(held);
            wait::eventually("a slot to come free", || async {
                let page = exchange(observer.address(), &request("GET", "/", "", "")).await;
                match status_line(&page) == "HTTP/1.1 200 OK" {
                    true => Ok(()),
                    false => Err(page),
                }
            })
            .await;
        });
    }

    #[test]
    fn a_request_for_another_host_is_refused() {
        run(async {
            let observer = observed().await;
            let rebound = b"GET /events HTTP/1.1\r\nHost: attacker.example:4380\r\nConnection: close\r\n\r\n";
            let answer = exchange(observer.address(), rebound).await;
            assert!(status_line(&answer).starts_with("HTTP/1.1 421"), "{answer:?}");
            assert!(answer.contains("only requests for localhost"), "{answer:?}");
        });
    }

    #[test]
    fn actions_without_the_token_are_refused_and_change_nothing() {
        run(async {
            let observer = observed().await;
            let (mut page, snapshot) = open_page(observer.address()).await;
            let echo = pid_of(&snapshot, "echo");
            let kill = format!(r#"{{"action":"kill","pid":"{echo}"}}"#);
            for token in [None, Some("0123456789abcdef0123456789abcdef")] {
                let answer = exchange(observer.address(), &action(token, &kill)).await;
                assert!(status_line(&answer).starts_with("HTTP/1.1 401"), "{answer:?}");
                assert!(answer.contains("actions need the observer's access token"), "{answer:?}");
            }
            echo_answers().await;
            let later = next_event(&mut page, "snapshot").await;
            assert_eq!(pid_of(&later, "echo"), echo, "the echo server was not touched");
        });
    }

    #[test]
    fn a_kill_with_the_token_is_reported_and_the_child_restarted() {
        run(async {
            let observer = observed().await;
            let (mut page, snapshot) = open_page(observer.address()).await;
            let echo = pid_of(&snapshot, "echo");
            let kill = format!(r#"{{"action":"kill","pid":"{echo}"}}"#);
            let answer = exchange(observer.address(), &action(Some(observer.token()), &kill)).await;
            assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer:?}");
            let exited = loop {
                let report = next_event(&mut page, "report").await;
                if report["event"]["kind"] == "exited" {
                    break report;
                }
            };
            assert_eq!(exited["child"], "echo");
            assert_eq!(exited["event"]["reason"], "killed");
            assert_eq!(exited["event"]["restart"], true);
            let started = next_event(&mut page, "report").await;
            assert_eq!(started["event"]["kind"], "started");
            assert_ne!(started["event"]["pid"], echo.as_str());
            echo_answers().await;
        });
    }

    #[test]
    fn a_malformed_action_or_an_unknown_process_is_refused_clearly() {
        run(async {
            let observer = observed().await;
            let (_page, _) = open_page(observer.address()).await;
            let token = Some(observer.token());
            let answer = exchange(observer.address(), &action(token, "{nope")).await;
            assert!(status_line(&answer).starts_with("HTTP/1.1 400"), "{answer:?}");
            assert!(answer.contains("not an action"), "{answer:?}");
            let unknown = r#"{"action":"suspend","pid":"0.999999"}"#;
            let answer = exchange(observer.address(), &action(token, unknown)).await;
            assert!(status_line(&answer).starts_with("HTTP/1.1 409"), "{answer:?}");
            assert!(answer.contains("no process 0.999999"), "{answer:?}");
            let huge = format!(r#"{{"action":"kill","pid":"{}"}}"#, "9".repeat(64 * 1024));
            let answer = exchange(observer.address(), &action(token, &huge)).await;
            assert!(status_line(&answer).starts_with("HTTP/1.1 413"), "{answer:?}");
            echo_answers().await;
        });
    }
}
