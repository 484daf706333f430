//! The observer's HTTP port, spoken to as raw TCP, as a browser, a script or a hostile
//! client would: what it serves, what it refuses and how, and that the node it observes
//! goes on unharmed. Each scenario runs in a process of its own (one observer per
//! program: it is registered under `otp.observer`).

use std::net::SocketAddr;

use otp::observer::{self, Observer, ObserverConfig, Page, RunState};
use otp::supervisor::report::ReportEvent;
use otp::supervisor::{ChildProcess, ChildSpec, Shutdown, SupervisorRef, SupervisorSpec};
use otp::{sys, ServerRef};
use otp_tests::observer_page::{action, exchange, next_event, open_page, request, status_line};
use otp_tests::wait::{self, run};
use otp_tests::{Echo, EchoServer, Say};
use rusty_fork::rusty_fork_test;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Connections the observer under test takes at once.
const CONNECTIONS: usize = 4;

/// A tree with one echo server, and an observer beside it.
async fn observed() -> Observer {
    observed_on("127.0.0.1:0").await
}

/// [`observed`], the observer listening on `listen`.
async fn observed_on(listen: &str) -> Observer {
    observed_with(
        listen,
        Shutdown::Timeout(otp::supervisor::DEFAULT_WORKER_SHUTDOWN),
    )
    .await
}

/// [`observed_on`], the observer stopped by `shutdown`.
async fn observed_with(listen: &str, shutdown: Shutdown) -> Observer {
    let mut config = ObserverConfig::new(listen.parse().unwrap());
    config.max_connections = CONNECTIONS;
    let tree = SupervisorSpec {
        flags: Default::default(),
        children: vec![
            ChildSpec::worker("echo", |parent| {
                parent.start_named("echo", EchoServer::default())
            }),
            observer::child_spec("observer", config).shutdown(shutdown),
        ],
    };
    tree.start_named("top").await.expect("the tree starts");
    Observer::running().expect("the observer runs")
}

/// Sends an action with the token; it must succeed.
async fn act(observer: &Observer, body: String) {
    let answer = exchange(observer.address(), &action(Some(observer.token()), &body)).await;
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 200 OK",
        "{body}: {answer:?}"
    );
}

/// Waits until the echo server runs as another process than `before`.
async fn restarted(before: &str) {
    wait::eventually("echo to run again as another process", || async {
        match ServerRef::<Echo>::whereis("echo") {
            Some(again) if again.id().to_string() != before => Ok(()),
            other => Err(other.map(|echo| echo.id())),
        }
    })
    .await;
}

/// The echo server still answers: the node was not disturbed.
async fn echo_answers() {
    let echo = ServerRef::<Echo>::whereis("echo").expect("echo is registered");
    let answer = echo.call(Say("still here".into())).await;
    assert_eq!(answer.expect("echo answers"), "still here");
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
            assert!(status_line(&answer).starts_with("HTTP/1.1 404"), "{answer:?}");
            assert!(answer.contains("no process 0.999999"), "{answer:?}");
            let huge = format!(r#"{{"action":"kill","pid":"{}"}}"#, "9".repeat(64 * 1024));
            let answer = exchange(observer.address(), &action(token, &huge)).await;
            assert!(status_line(&answer).starts_with("HTTP/1.1 413"), "{answer:?}");
            echo_answers().await;
        });
    }

    #[test]
    fn an_action_needs_no_page_open_first() {
        run(async {
            let observer = observed().await;
            let echo = ServerRef::<Echo>::whereis("echo").expect("echo runs");
            let kill = format!(r#"{{"action":"kill","pid":"{}"}}"#, echo.id());
            let answer = exchange(observer.address(), &action(Some(observer.token()), &kill)).await;
            assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer:?}");
            echo.wait_exit().await;
            restarted(&echo.id().to_string()).await;
        });
    }

    #[test]
    fn suspend_resume_trace_terminate_and_restart_do_what_they_say() {
        run(async {
            let observer = observed().await;
            let echo = ServerRef::<Echo>::whereis("echo").expect("echo runs");
            let top = SupervisorRef::whereis("top").expect("the tree runs");
            let act = |body: String| act(&observer, body);
            let pid = echo.id();
            act(format!(r#"{{"action":"suspend","pid":"{pid}"}}"#)).await;
            assert!(sys::get_status(&echo).await.unwrap().suspended);
            act(format!(r#"{{"action":"resume","pid":"{pid}"}}"#)).await;
            assert!(!sys::get_status(&echo).await.unwrap().suspended);
            act(format!(r#"{{"action":"trace","pid":"{pid}","on":true}}"#)).await;
            assert!(sys::get_status(&echo).await.unwrap().tracing);
            act(format!(r#"{{"action":"trace","pid":"{pid}","on":false}}"#)).await;
            assert!(!sys::get_status(&echo).await.unwrap().tracing);

            act(format!(r#"{{"action":"terminate_child","pid":"{pid}"}}"#)).await;
            let children = top.which_children().await.unwrap();
            assert!(matches!(children[0].process, ChildProcess::Undefined), "{children:?}");
            let restart = format!(
                r#"{{"action":"restart_child","supervisor":"{}","child":"echo"}}"#,
                top.cell().get_id()
            );
            act(restart).await;
            echo_answers().await;
        });
    }

    #[test]
    fn off_loopback_reading_needs_the_token_too() {
        run(async {
            let observer = observed_on("0.0.0.0:0").await;
            let address = SocketAddr::from(([127, 0, 0, 1], observer.address().port()));
            let answer = exchange(address, &request("GET", "/events", "", "")).await;
            assert!(status_line(&answer).starts_with("HTTP/1.1 401"), "{answer:?}");
            assert!(answer.contains("www-authenticate: Bearer"), "{answer:?}");
            let mut feed = TcpStream::connect(address).await.expect("connect");
            let with_token = format!(
                "GET /events?token={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                observer.token()
            );
            feed.write_all(with_token.as_bytes()).await.expect("send");
            let mut feed = BufReader::new(feed);
            let snapshot = next_event(&mut feed, "snapshot").await;
            pid_of(&snapshot, "echo");
        });
    }

    #[test]
    fn an_action_without_the_token_is_refused_before_its_body_comes() {
        run(async {
            let observer = observed().await;
            let head = "POST /api/action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n";
            let mut stream = TcpStream::connect(observer.address()).await.expect("connect");
            stream.write_all(head.as_bytes()).await.expect("send");
            let mut answer = BufReader::new(stream);
            let mut line = String::new();
            wait::within("the refusal", answer.read_line(&mut line)).await.expect("read");
            assert!(line.starts_with("HTTP/1.1 401"), "{line:?}");
        });
    }

    #[test]
    fn a_supervised_observer_stops_in_order_after_a_page_was_open() {
        run(async {
            // A budget shorter than any wait on a process that cannot answer (0.8 s).
            let budget = Shutdown::Timeout(std::time::Duration::from_millis(300));
            let observer = observed_with("127.0.0.1:0", budget).await;
            let mut reports = otp::supervisor::report::subscribe();
            let (page, _) = open_page(observer.address()).await;
            drop(page);
            let top = SupervisorRef::whereis("top").expect("the tree runs");
            top.stop().await.expect("the tree stops");
            // Had its terminate waited on its own supervisor, the observer would have
            // outlived its shutdown budget and been killed, with a report saying so.
            while let Ok(report) = reports.try_recv() {
                let killed = matches!(report.event, ReportEvent::ShutdownError { .. });
                assert!(!killed || report.child != "observer", "{report:?}");
            }
        });
    }

    #[test]
    fn a_killed_child_of_a_suspended_supervisor_shows_as_exited() {
        run(async {
            let observer = observed().await;
            let (mut page, snapshot) = open_page(observer.address()).await;
            let top = SupervisorRef::whereis("top").expect("the tree runs").cell().get_id();
            let echo = pid_of(&snapshot, "echo");
            act(&observer, format!(r#"{{"action":"suspend","pid":"{top}"}}"#)).await;
            act(&observer, format!(r#"{{"action":"kill","pid":"{echo}"}}"#)).await;
            wait::within("echo shown as exited", async {
                loop {
                    let snapshot = next_event(&mut page, "snapshot").await;
                    let page: Page = serde_json::from_value(snapshot).expect("a page");
                    if page.local.find("echo").expect("echo's row").state == RunState::Exited {
                        break;
                    }
                }
            })
            .await;
            act(&observer, format!(r#"{{"action":"resume","pid":"{top}"}}"#)).await;
            restarted(&echo).await;
        });
    }

    #[test]
    fn the_timeline_outlives_a_restart_of_the_observer() {
        run(async {
            let first = observed().await;
            let (_page, snapshot) = open_page(first.address()).await;
            let pid = pid_of(&snapshot, "observer");
            // Its answer may die with it: only the restart counts.
            let kill = format!(r#"{{"action":"kill","pid":"{pid}"}}"#);
            exchange(first.address(), &action(Some(first.token()), &kill)).await;
            let second = wait::eventually("the observer to be restarted", || async {
                match Observer::running() {
                    Some(second) if second.address() != first.address() => Ok(second),
                    other => Err(other.map(|o| o.address())),
                }
            })
            .await;
            assert_eq!(second.token(), first.token(), "the same token after a restart");
            let mut feed = TcpStream::connect(second.address()).await.expect("connect");
            feed.write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await
                .expect("send");
            // The feed begins with the reports kept so far.
            let mut page = BufReader::new(feed);
            loop {
                let report = next_event(&mut page, "report").await;
                if report["child"] == "observer" && report["event"]["kind"] == "exited" {
                    assert_eq!(report["event"]["reason"], "killed");
                    break;
                }
            }
        });
    }
}
