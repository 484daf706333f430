//! A dynamic supervisor's `start_child` runs the child's start in the caller's task and
//! leaves the child for the supervisor to adopt (see `supervisor/adoption.rs`): whatever
//! the interleaving, every started child is the supervisor's, exits are handled by its
//! restart type, and a shutdown stops every child in order.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{probe_into, Event, Get, PATIENCE};
use otp::gen_server::Init;
use otp::supervisor::{
    start_dynamic, ChildSpec, DynamicFlags, DynamicSupervisorRef, Restart, SupervisorError,
};
use otp::{CallError, Context, ExitReason, Flow, GenServer};
use ractor::{ActorCell, ActorId};
use tokio::sync::mpsc;

/// Restarts without limit: these tests restart many children on purpose.
fn unlimited() -> DynamicFlags {
    DynamicFlags {
        intensity: u32::MAX,
        period: Duration::from_secs(1),
        ..DynamicFlags::default()
    }
}

otp::protocol! {
    /// A child that may exit as soon as it runs.
    pub Brief;
    calls BriefCall { Alive -> bool }
    casts BriefCast { ExitNow(ExitReason) }
}

/// Exits with `reason` as its first message if `exit_first` is still set (then clears
/// it): the exit races with the start's return to its caller.
struct BriefServer;

impl Init<(Arc<AtomicBool>, ExitReason)> for BriefServer {
    async fn init(
        (exit_first, reason): (Arc<AtomicBool>, ExitReason),
        me: &Context<Self>,
    ) -> otp::Result<Self> {
        if exit_first.swap(false, Ordering::SeqCst) {
            me.cast(ExitNow(reason));
        }
        Ok(BriefServer)
    }
}

impl GenServer for BriefServer {
    type Protocol = Brief;

    async fn handle_call(&mut self, call: BriefCall<'_>, _me: &Context<Self>) -> otp::Result {
        let BriefCall::Alive(Alive, caller) = call;
        Ok(caller.reply(true))
    }

    async fn handle_cast(&mut self, cast: BriefCast, _me: &Context<Self>) -> otp::Result {
        let BriefCast::ExitNow(ExitNow(reason)) = cast;
        Ok(Flow::Stop(reason))
    }
}

/// A child that exits at once the first time it starts.
fn brief(restart: Restart, reason: ExitReason) -> ChildSpec {
    let exit_first = Arc::new(AtomicBool::new(true));
    ChildSpec::worker("brief", move |parent| {
        parent.start(BriefServer::with_args((exit_first.clone(), reason.clone())))
    })
    .restart(restart)
}

async fn running(supervisor: &DynamicSupervisorRef) -> HashSet<ActorId> {
    let children = supervisor.which_children().await.expect("which_children");
    children
        .iter()
        .filter_map(|child| child.process.cell().map(ActorCell::get_id))
        .collect()
}

/// Polls the supervisor (through its own requests) until `done` holds, at most PATIENCE.
async fn until(supervisor: &DynamicSupervisorRef, done: impl Fn(&HashSet<ActorId>) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if done(&running(supervisor).await) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the supervisor's children never reached the expected state"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_from_many_tasks_are_all_the_supervisors_and_running() {
    let supervisor = start_dynamic(unlimited(), None).await.unwrap();
    let (events, _log) = mpsc::unbounded_channel();
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let (supervisor, events) = (supervisor.clone(), events.clone());
            tokio::spawn(async move {
                let mut started = Vec::new();
                for n in 0..25 {
                    let probe = probe_into(&format!("{task}.{n}"), &events);
                    let spec = ChildSpec::worker("probe", move |parent| {
                        parent.start(probe.clone().with_value(n))
                    });
                    started.push(supervisor.start_child(spec).await.unwrap().unwrap());
                }
                started
            })
        })
        .collect();
    let mut started = HashSet::new();
    for task in tasks {
        for cell in task.await.unwrap() {
            let probe = otp::ServerRef::<common::Probe>::from_cell(cell.clone()).unwrap();
            probe.call(Get).await.expect("a started child answers");
            started.insert(cell.get_id());
        }
    }
    assert_eq!(started.len(), 200);
    assert_eq!(running(&supervisor).await, started);
    let counts = supervisor.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active), (200, 200));
    supervisor.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_children_that_crash_at_once_are_all_restarted() {
    let supervisor = start_dynamic(unlimited(), None).await.unwrap();
    let crash = ExitReason::Error("crashed at once".into());
    let mut first = HashSet::new();
    for _ in 0..100 {
        let spec = brief(Restart::Permanent, crash.clone());
        first.insert(
            supervisor
                .start_child(spec)
                .await
                .unwrap()
                .unwrap()
                .get_id(),
        );
    }
    until(&supervisor, |running| {
        running.len() == 100 && running.is_disjoint(&first)
    })
    .await;
    for child in supervisor.which_children().await.unwrap() {
        let cell = child.process.cell().cloned().expect("running");
        let child = otp::ServerRef::<Brief>::from_cell(cell).unwrap();
        assert!(child.call(Alive).await.unwrap());
    }
    supervisor.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_children_that_stop_at_once_are_forgotten() {
    let supervisor = start_dynamic(unlimited(), None).await.unwrap();
    for _ in 0..100 {
        let spec = brief(Restart::Temporary, ExitReason::Normal);
        supervisor.start_child(spec).await.unwrap().unwrap();
    }
    until(&supervisor, HashSet::is_empty).await;
    let counts = supervisor.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active), (0, 0));
    supervisor.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_during_the_shutdown_fails_or_its_child_is_stopped_in_order() {
    let supervisor = start_dynamic(unlimited(), None).await.unwrap();
    let (events, mut log) = mpsc::unbounded_channel();
    let (first_started, mut some_started) = mpsc::unbounded_channel();
    let starters: Vec<_> = (0..4)
        .map(|task| {
            let (supervisor, events) = (supervisor.clone(), events.clone());
            let first_started = first_started.clone();
            tokio::spawn(async move {
                let mut started = Vec::new();
                for n in 0.. {
                    let label = format!("{task}.{n}");
                    let probe = probe_into(&label, &events);
                    let spec = ChildSpec::worker("probe", move |parent| {
                        parent.start(probe.clone().with_value(0))
                    });
                    match supervisor.start_child(spec).await {
                        Ok(Some(_)) => {
                            started.push(label);
                            let _ = first_started.send(());
                        }
                        Err(SupervisorError::Call(CallError::NoProc)) => return started,
                        other => panic!("unexpected start outcome: {other:?}"),
                    }
                }
                started
            })
        })
        .collect();
    tokio::time::timeout(PATIENCE, some_started.recv())
        .await
        .unwrap();
    supervisor.stop().await.unwrap();
    let mut started = HashSet::new();
    for starter in starters {
        started.extend(starter.await.unwrap());
    }
    drop(events);
    let mut stopped = HashSet::new();
    // Every sender goes with the children and specs that hold one; bounded all the same.
    while let Ok(Some(event)) = tokio::time::timeout(PATIENCE, log.recv()).await {
        if let Event::Terminated(label, reason) = event {
            assert_eq!(reason, ExitReason::Shutdown, "{label} stopped in order");
            stopped.insert(label);
        }
    }
    assert!(!started.is_empty());
    let orphans: Vec<_> = started.difference(&stopped).collect();
    assert!(
        orphans.is_empty(),
        "started but never stopped in order: {orphans:?}"
    );
}

/// Unlike OTP (where it would deadlock), a child's `init` may ask its own supervisor: it
/// runs in the task that starts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_childs_init_may_ask_its_own_supervisor() {
    struct Curious;

    impl Init<DynamicSupervisorRef> for Curious {
        async fn init(supervisor: DynamicSupervisorRef, _me: &Context<Self>) -> otp::Result<Self> {
            supervisor.count_children().await?;
            Ok(Curious)
        }
    }

    impl GenServer for Curious {
        type Protocol = Brief;
    }

    let supervisor = start_dynamic(DynamicFlags::default(), None).await.unwrap();
    let handle = supervisor.clone();
    let spec = ChildSpec::worker("curious", move |parent| {
        parent.start(Curious::with_args(handle.clone()))
    });
    let started = tokio::time::timeout(PATIENCE, supervisor.start_child(spec)).await;
    assert!(started.expect("no deadlock").unwrap().is_some());
    supervisor.stop().await.unwrap();
}
