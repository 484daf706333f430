//! Supervisor reports reach `tracing` with OTP's names, as an operator reading logs sees
//! them: progress, child_terminated, shutdown_error, reached_max_restart_intensity.

mod common;

use std::time::Duration;

use common::{child_of, next, probe_spec, probe_spec_behaving, Behaviour, Captured, Event, Stop};
use otp::supervisor::{Flags, Shutdown, Strategy, SupervisorSpec};
use otp::ExitReason;

// A current-thread runtime (tokio::test's default): every actor runs on this thread, so the
// thread's default subscriber sees all their events.
#[tokio::test]
async fn supervisor_reports_use_otp_names() {
    let (captured, _guard) = Captured::install();

    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    let hang = "hangs";
    let spec = SupervisorSpec {
        flags: Flags {
            strategy: Strategy::OneForOne,
            intensity: 1,
            period: Duration::from_secs(60),
            ..Flags::default()
        },
        children: vec![
            probe_spec_behaving(hang, &sender, Behaviour::HangInTerminate)
                .shutdown(Shutdown::Timeout(Duration::from_millis(20))),
            probe_spec("worker", &sender),
        ],
    };
    let supervisor = spec.start_named("reporting-sup").await.unwrap();
    next(&mut events).await;
    next(&mut events).await;
    for round in 1..=2 {
        let child = child_of(&supervisor, "worker").await;
        let reason = ExitReason::error(format!("crash {round}"));
        child.cast(Stop(reason.clone()));
        assert_eq!(
            next(&mut events).await,
            Event::Terminated("worker".into(), reason)
        );
        if round == 1 {
            assert_eq!(next(&mut events).await, Event::Started("worker".into()));
        }
    }
    // The second crash exceeds the intensity: the hanging child is asked to stop, then killed.
    assert_eq!(
        next(&mut events).await,
        Event::Terminated(hang.into(), ExitReason::Shutdown)
    );
    supervisor.wait_exit().await;

    let logs = captured.text();
    for expected in [
        "child started",
        "child_terminated",
        "crash 1",
        "reached_max_restart_intensity",
        "shutdown_error",
        "reporting-sup",
    ] {
        assert!(logs.contains(expected), "missing {expected:?} in:\n{logs}");
    }
    assert!(logs
        .lines()
        .any(|l| l.contains("ERROR") && l.contains("child_terminated")));
}
