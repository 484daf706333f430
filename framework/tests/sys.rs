//! OTP's `sys` on our servers and supervisors, after `sys_SUITE` and the `sys` docs:
//! state, status through `format_status`, suspend and resume, statistics, trace.

mod common;

use std::time::Duration;

use common::{next, probe, probe_spec, Add, Captured, Event, Get, Slow};
use otp::supervisor::{Flags, Strategy, SupervisorSpec};
use otp::sys::{self, SysError};
use otp::{CallError, Context, ExitReason, Flow, GenServer, ServerRef};

otp::protocol! {
    /// What a vault serves: deposits, counted.
    pub Vault;
    casts VaultCast {
        Deposit(u64),
    }
}

/// A server with a plain, cloneable state and a secret it never shows.
#[derive(Clone, Debug, PartialEq)]
struct VaultServer {
    count: u64,
    secret: String,
}

impl VaultServer {
    fn new() -> Self {
        VaultServer {
            count: 0,
            secret: "hunter2".into(),
        }
    }
}

impl GenServer for VaultServer {
    type Protocol = Vault;

    async fn handle_cast(&mut self, cast: VaultCast, _: &Context<Self>) -> otp::Result {
        let VaultCast::Deposit(Deposit(add)) = cast;
        self.count += add;
        Ok(Flow::Continue)
    }

    fn format_status(&self) -> String {
        format!("count {}, secret hidden", self.count)
    }
}

#[tokio::test]
async fn get_state_and_replace_state_reach_the_state_between_messages() {
    let vault = VaultServer::new().start().await.unwrap();
    vault.cast(Deposit(2));
    let state = sys::get_state::<VaultServer>(&vault).await.unwrap();
    assert_eq!(state.count, 2);
    sys::replace_state::<VaultServer>(&vault, |state| state.count = 40)
        .await
        .unwrap();
    vault.cast(Deposit(2));
    assert_eq!(
        sys::get_state::<VaultServer>(&vault).await.unwrap().count,
        42
    );
}

/// As OTP's `replace_state` leaves a crash of its function to the caller: the server goes on.
#[tokio::test]
async fn a_state_function_that_panics_leaves_the_server_running() {
    let vault = VaultServer::new().start().await.unwrap();
    vault.cast(Deposit(1));
    let outcome = sys::replace_state::<VaultServer>(&vault, |_| panic!("bad change")).await;
    assert_eq!(outcome, Err(SysError::Call(CallError::NoReply)));
    vault.cast(Deposit(1));
    assert_eq!(
        sys::get_state::<VaultServer>(&vault).await.unwrap().count,
        2
    );
}

#[tokio::test]
async fn asking_for_the_state_of_another_type_is_refused() {
    let (probe, mut events) = probe("probe");
    let probe = probe.with_value(0).start().await.unwrap();
    next(&mut events).await;
    // A handle of the vault's protocol, on a process that is not a vault: only by cell.
    let cell = probe.cell();
    assert!(ServerRef::<Vault>::from_cell(cell).is_none());
    // Through the right protocol but the wrong server type, the state is refused.
    let vault = VaultServer::new().start().await.unwrap();
    let outcome = sys::get_state::<OtherVault>(&vault).await;
    assert!(
        matches!(outcome, Err(SysError::WrongType { .. })),
        "{outcome:?}"
    );
}

/// Serves the vault's protocol as another server type (its state).
#[derive(Clone, Debug)]
struct OtherVault;

impl GenServer for OtherVault {
    type Protocol = Vault;
}

#[tokio::test]
async fn get_status_shows_the_state_through_format_status_only() {
    let vault = VaultServer::new().start_named("sys-vault").await.unwrap();
    vault.cast(Deposit(3));
    let status = sys::get_status(&vault).await.unwrap();
    assert_eq!(status.state, "count 3, secret hidden");
    assert!(!format!("{status:?}").contains("hunter2"));
    assert_eq!(status.name.as_deref(), Some("sys-vault"));
    assert_eq!(status.pid, vault.id().to_string());
    assert!(
        status.behaviour.ends_with("VaultServer"),
        "{}",
        status.behaviour
    );
    assert!(!status.suspended);
    // The cast; system messages such as this request do not count.
    assert_eq!(status.statistics.handled, 1);
}

#[tokio::test]
async fn a_supervisors_status_shows_its_strategy_intensity_and_children() {
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    let supervisor = SupervisorSpec {
        flags: Flags {
            strategy: Strategy::RestForOne,
            intensity: 4,
            ..Flags::default()
        },
        children: vec![probe_spec("a", &sender), probe_spec("b", &sender)],
    }
    .start()
    .await
    .unwrap();
    next(&mut events).await;
    next(&mut events).await;
    let status = sys::get_status(&supervisor).await.unwrap();
    assert!(
        status
            .state
            .starts_with("rest_for_one; 0 of 4 restarts used"),
        "{}",
        status.state
    );
    assert!(
        status.state.ends_with("2 of 2 children running"),
        "{}",
        status.state
    );
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn a_suspended_server_answers_only_system_messages_until_resumed() {
    let (probe, mut events) = probe("suspended");
    let server = probe.with_value(0).start().await.unwrap();
    next(&mut events).await;
    sys::suspend(&server).await.unwrap();
    server.cast(Add(1));
    let mut waiting = server.send_request(Get);
    server.cast(Add(10));
    // Still answers system messages, and says it is suspended.
    let status = sys::get_status(&server).await.unwrap();
    assert!(status.suspended);
    assert_eq!(status.state, "value 0");
    assert_eq!(waiting.check_response(), None);
    sys::resume(&server).await.unwrap();
    // Handled in the order they came: the call sees the first cast only.
    assert_eq!(waiting.receive_response(common::PATIENCE).await, Ok(1));
    assert_eq!(server.call(Get).await, Ok(11));
}

#[tokio::test]
async fn a_suspended_server_still_stops_when_told() {
    let (probe, mut events) = probe("stopped-suspended");
    let server = probe.with_value(0).start().await.unwrap();
    next(&mut events).await;
    sys::suspend(&server).await.unwrap();
    let waiting = server.send_request(Get);
    server.stop(ExitReason::Shutdown).await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("stopped-suspended".into(), ExitReason::Shutdown)
    );
    // The call that waited learns why it will never be answered.
    assert_eq!(
        waiting.receive_response(common::PATIENCE).await,
        Err(CallError::Exited(ExitReason::Shutdown))
    );
}

/// Counting is on: a busy server's queued messages are read without asking it.
#[tokio::test(start_paused = true)]
async fn statistics_count_handled_and_queued_messages() {
    let (probe, mut events) = probe("busy");
    let server = probe.with_value(0).start().await.unwrap();
    next(&mut events).await;
    assert_eq!(sys::queued(&server), None);
    sys::statistics(&server, true).await.unwrap();
    let busy = {
        let server = server.clone();
        tokio::spawn(async move { server.call(Slow(Duration::from_secs(3))).await })
    };
    assert_eq!(next(&mut events).await, Event::Busy);
    for n in 0..3 {
        server.cast(Add(n));
    }
    assert_eq!(sys::queued(&server), Some(3));
    busy.await.unwrap().unwrap();
    let statistics = sys::get_statistics(&server).await.unwrap();
    // The slow call and three casts; system messages do not count.
    assert_eq!(statistics.handled, 4);
    assert_eq!(statistics.queued, Some(0));
    sys::statistics(&server, false).await.unwrap();
    assert_eq!(sys::queued(&server), None);
}

// A current-thread runtime: the server runs on this thread, under this subscriber.
#[tokio::test]
async fn trace_logs_each_event_while_on() {
    let (captured, _guard) = Captured::install();
    let vault = VaultServer::new()
        .start_named("traced-vault")
        .await
        .unwrap();
    sys::trace(&vault, true).await.unwrap();
    vault.cast(Deposit(1));
    sys::trace(&vault, false).await.unwrap();
    vault.cast(Deposit(1));
    sys::get_state::<VaultServer>(&vault).await.unwrap();
    let text = captured.text();
    let traced: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("otp::sys"))
        .collect();
    // One cast while on; the second came after it was turned off.
    assert_eq!(traced.len(), 1, "{text}");
    assert!(traced[0].contains("event=\"cast\""), "{text}");
    assert!(traced[0].contains("traced-vault"), "{text}");
}
