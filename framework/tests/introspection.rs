//! What tools (the observer) read of a running program: the roots of its supervision
//! trees, a supervisor's overview, its children as servers of any protocol, and the
//! supervisor reports published as values.

mod common;

use std::time::Duration;

use common::{child_of, next, probe_spec, Event};
use otp::supervisor::report::{self, Report, ReportEvent};
use otp::supervisor::{roots, ChildProcess, Flags, Strategy, SupervisorRef, SupervisorSpec};
use otp::sys;
use tokio::sync::{broadcast, mpsc};

fn tree(children: Vec<otp::supervisor::ChildSpec>) -> SupervisorSpec {
    SupervisorSpec {
        flags: Flags {
            strategy: Strategy::RestForOne,
            intensity: 4,
            period: Duration::from_secs(60),
            ..Flags::default()
        },
        children,
    }
}

/// The next report of the supervisor `name` (tests run side by side: others report too).
async fn next_report(reports: &mut broadcast::Receiver<Report>, name: &str) -> Report {
    tokio::time::timeout(common::PATIENCE, async {
        loop {
            match reports.recv().await {
                Ok(report) if report.supervisor == name => return report,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("reports closed"),
            }
        }
    })
    .await
    .expect("timed out waiting for a report")
}

#[tokio::test]
async fn roots_are_the_running_supervisors_without_a_parent() {
    let (sender, _events) = mpsc::unbounded_channel();
    let first = tree(vec![probe_spec("a", &sender)]).start().await.unwrap();
    let nested = SupervisorSpec {
        children: vec![otp::supervisor::ChildSpec::supervisor("inner", |parent| {
            parent.start_supervisor(None, tree(vec![]))
        })],
        ..tree(vec![])
    };
    let second = nested.start().await.unwrap();
    let inner = second.which_children().await.unwrap()[0]
        .process
        .cell()
        .cloned()
        .unwrap();
    let ids = || {
        roots()
            .iter()
            .map(|root| root.cell().get_id())
            .collect::<Vec<_>>()
    };
    assert!(ids().contains(&first.cell().get_id()));
    assert!(ids().contains(&second.cell().get_id()));
    assert!(
        !ids().contains(&inner.get_id()),
        "a nested supervisor is no root"
    );
    first.stop().await.unwrap();
    assert!(
        !ids().contains(&first.cell().get_id()),
        "a stopped root is gone"
    );
    second.stop().await.unwrap();
}

#[tokio::test]
async fn an_overview_tells_flags_restarts_used_and_children_without_counting_as_handled() {
    let (sender, mut events) = mpsc::unbounded_channel();
    let supervisor = tree(vec![probe_spec("a", &sender), probe_spec("b", &sender)])
        .start()
        .await
        .unwrap();
    for id in ["a", "b"] {
        assert_eq!(next(&mut events).await, Event::Started(id.into()));
    }
    child_of(&supervisor, "b").await.kill();
    assert_eq!(next(&mut events).await, Event::Started("b".into()));

    let handled = sys::get_statistics(&supervisor).await.unwrap().handled;
    let overview = supervisor.overview().await.unwrap();
    assert_eq!(overview.strategy, Strategy::RestForOne);
    assert!(!overview.dynamic);
    assert_eq!((overview.intensity, overview.restarts_used), (4, 1));
    assert_eq!(overview.period, Duration::from_secs(60));
    let children: Vec<_> = overview
        .children
        .iter()
        .map(|child| (child.id.as_str(), child.restarts))
        .collect();
    assert_eq!(children, [("a", 0), ("b", 1)]);
    assert_eq!(
        sys::get_statistics(&supervisor).await.unwrap().handled,
        handled,
        "looking is not a message handled"
    );
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn a_child_is_a_server_of_any_protocol_that_sys_reaches() {
    let (sender, mut events) = mpsc::unbounded_channel();
    let supervisor = tree(vec![probe_spec("a", &sender)]).start().await.unwrap();
    assert_eq!(next(&mut events).await, Event::Started("a".into()));
    let children = supervisor.which_children().await.unwrap();
    let ChildProcess::Running(server) = &children[0].process else {
        panic!("a is not running");
    };
    assert!(
        server.protocol().ends_with("common::Probe"),
        "{}",
        server.protocol()
    );
    let status = sys::get_status(server).await.unwrap();
    assert_eq!(status.pid, server.id().to_string());
    assert!(
        SupervisorRef::from_server(server).is_none(),
        "a worker is no supervisor"
    );
    assert!(SupervisorRef::from_server(&supervisor.server()).is_some());
    server.kill();
    assert_eq!(next(&mut events).await, Event::Started("a".into()));
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn reports_tell_starts_exits_with_the_decision_and_giving_up() {
    let mut reports = report::subscribe();
    let (sender, mut events) = mpsc::unbounded_channel();
    let flags = Flags {
        strategy: Strategy::OneForOne,
        intensity: 1,
        period: Duration::from_secs(60),
        ..Flags::default()
    };
    let spec = SupervisorSpec {
        flags,
        children: vec![probe_spec("w", &sender)],
    };
    let supervisor = spec.start_named("reporting").await.unwrap();
    assert_eq!(next(&mut events).await, Event::Started("w".into()));
    let started = next_report(&mut reports, "reporting").await;
    let ReportEvent::Started { pid } = &started.event else {
        panic!("{started:?}");
    };
    assert_eq!(*pid, child_of(&supervisor, "w").await.id().to_string());

    child_of(&supervisor, "w").await.kill();
    let exited = next_report(&mut reports, "reporting").await;
    assert_eq!(
        (exited.child.as_str(), exited.event),
        (
            "w",
            ReportEvent::Exited {
                reason: "killed".into(),
                restart: true
            }
        )
    );
    let again = next_report(&mut reports, "reporting").await;
    assert!(
        matches!(again.event, ReportEvent::Started { .. }),
        "{again:?}"
    );

    child_of(&supervisor, "w").await.kill();
    next_report(&mut reports, "reporting").await; // exited, restart counted
    let gave_up = next_report(&mut reports, "reporting").await;
    assert_eq!(gave_up.event, ReportEvent::GaveUp);
    supervisor.wait_exit().await;
}
