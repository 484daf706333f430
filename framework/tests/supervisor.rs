//! Supervisor semantics, case by case after OTP's `supervisor_SUITE`.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{
    child_of, next, probe_into, probe_spec, probe_spec_behaving, running_ids, watch, Add,
    Behaviour, Event, Get, Stop,
};
use otp::gen_server::Init;
use otp::supervisor::{
    start_dynamic, ChildProcess, ChildSpec, DynamicFlags, Flags, Restart, Shutdown, Strategy,
    SupervisorError, SupervisorRef, SupervisorSpec,
};
use otp::{CallError, ExitReason, Named, StartError};
use tokio::sync::mpsc;

type Events = mpsc::UnboundedReceiver<Event>;

fn channel() -> (mpsc::UnboundedSender<Event>, Events) {
    mpsc::unbounded_channel()
}

fn tree(strategy: Strategy, intensity: u32, children: Vec<ChildSpec>) -> SupervisorSpec {
    SupervisorSpec {
        flags: Flags {
            strategy,
            intensity,
            period: Duration::from_secs(60),
            ..Flags::default()
        },
        children,
    }
}

/// Starts a supervisor and consumes the children's `Started` events, in order.
async fn start(spec: SupervisorSpec, events: &mut Events) -> SupervisorRef {
    let ids: Vec<String> = spec.children.iter().map(|c| c.id.clone()).collect();
    let supervisor = spec.start().await.expect("supervisor starts");
    for id in ids {
        assert_eq!(next(events).await, Event::Started(id));
    }
    supervisor
}

/// Makes a child exit with `reason` and waits until it has fully exited, so that the
/// supervisor has its exit event queued before any later request (supervision events are
/// handled before messages).
async fn exit_child(supervisor: &SupervisorRef, id: &str, reason: ExitReason, events: &mut Events) {
    let child = child_of(supervisor, id).await;
    child.cast(Stop(reason.clone()));
    assert_eq!(next(events).await, Event::Terminated(id.into(), reason));
    child.wait_exit().await;
}

async fn restart_type_case(restart: Restart, reason: ExitReason, restarted: bool) {
    let (sender, mut events) = channel();
    let spec = tree(
        Strategy::OneForOne,
        10,
        vec![probe_spec("child", &sender).restart(restart)],
    );
    let supervisor = start(spec, &mut events).await;
    let before = child_of(&supervisor, "child").await.id();
    exit_child(&supervisor, "child", reason.clone(), &mut events).await;
    if restarted {
        assert_eq!(next(&mut events).await, Event::Started("child".into()));
        assert_ne!(child_of(&supervisor, "child").await.id(), before);
    } else {
        assert!(
            running_ids(&supervisor).await.is_empty(),
            "{restart:?} {reason}"
        );
        let specs = supervisor.count_children().await.unwrap().specs;
        // Temporary children are forgotten; transient ones keep their spec.
        assert_eq!(specs, usize::from(restart != Restart::Temporary));
    }
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn permanent_is_restarted_after_every_kind_of_exit() {
    for reason in [
        ExitReason::Normal,
        ExitReason::Shutdown,
        ExitReason::ShutdownWith("x".into()),
        ExitReason::error("crash"),
    ] {
        restart_type_case(Restart::Permanent, reason, true).await;
    }
}

#[tokio::test]
async fn transient_is_restarted_only_after_an_abnormal_exit() {
    restart_type_case(Restart::Transient, ExitReason::Normal, false).await;
    restart_type_case(Restart::Transient, ExitReason::Shutdown, false).await;
    restart_type_case(
        Restart::Transient,
        ExitReason::ShutdownWith("x".into()),
        false,
    )
    .await;
    restart_type_case(Restart::Transient, ExitReason::error("crash"), true).await;
}

#[tokio::test]
async fn temporary_is_never_restarted() {
    restart_type_case(Restart::Temporary, ExitReason::Normal, false).await;
    restart_type_case(Restart::Temporary, ExitReason::Shutdown, false).await;
    restart_type_case(Restart::Temporary, ExitReason::error("crash"), false).await;
}

#[tokio::test]
async fn killed_child_is_restarted() {
    let (sender, mut events) = channel();
    let spec = tree(Strategy::OneForOne, 10, vec![probe_spec("k", &sender)]);
    let supervisor = start(spec, &mut events).await;
    child_of(&supervisor, "k").await.kill();
    assert_eq!(next(&mut events).await, Event::Started("k".into()));
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn which_children_counts_each_childs_restarts() {
    let (sender, mut events) = channel();
    let spec = tree(
        Strategy::OneForOne,
        10,
        vec![probe_spec("a", &sender), probe_spec("b", &sender)],
    );
    let supervisor = start(spec, &mut events).await;
    for _ in 0..2 {
        child_of(&supervisor, "b").await.kill();
        assert_eq!(next(&mut events).await, Event::Started("b".into()));
    }
    let restarts: Vec<(String, u32)> = supervisor
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|child| (child.id, child.restarts))
        .collect();
    assert_eq!(restarts, [("a".to_owned(), 0), ("b".to_owned(), 2)]);
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn one_for_all_restarts_everyone_stopping_the_others_in_reverse_order() {
    let (sender, mut events) = channel();
    let spec = tree(
        Strategy::OneForAll,
        10,
        vec![
            probe_spec("a", &sender),
            probe_spec("b", &sender),
            probe_spec("c", &sender),
            probe_spec("t", &sender).restart(Restart::Temporary),
        ],
    );
    let supervisor = start(spec, &mut events).await;
    let crash = ExitReason::error("b crashed");
    exit_child(&supervisor, "b", crash, &mut events).await;
    for id in ["t", "c", "a"] {
        assert_eq!(
            next(&mut events).await,
            Event::Terminated(id.into(), ExitReason::Shutdown)
        );
    }
    for id in ["a", "b", "c"] {
        assert_eq!(next(&mut events).await, Event::Started(id.into()));
    }
    // The temporary sibling was stopped for the restart and is gone.
    assert_eq!(running_ids(&supervisor).await, ["a", "b", "c"]);
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn rest_for_one_restarts_the_child_and_those_after_it() {
    let (sender, mut events) = channel();
    let spec = tree(
        Strategy::RestForOne,
        10,
        vec![
            probe_spec("a", &sender),
            probe_spec("b", &sender),
            probe_spec("c", &sender),
            probe_spec("d", &sender),
        ],
    );
    let supervisor = start(spec, &mut events).await;
    let a = child_of(&supervisor, "a").await.id();
    exit_child(&supervisor, "b", ExitReason::error("b"), &mut events).await;
    for id in ["d", "c"] {
        assert_eq!(
            next(&mut events).await,
            Event::Terminated(id.into(), ExitReason::Shutdown)
        );
    }
    for id in ["b", "c", "d"] {
        assert_eq!(next(&mut events).await, Event::Started(id.into()));
    }
    assert_eq!(child_of(&supervisor, "a").await.id(), a);
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn intensity_exceeded_stops_children_in_reverse_and_exits_with_shutdown() {
    let (sender, mut events) = channel();
    let spec = tree(
        Strategy::OneForOne,
        1,
        vec![
            probe_spec("x", &sender),
            probe_spec("y", &sender),
            probe_spec("z", &sender),
        ],
    );
    let supervisor = start(spec, &mut events).await;
    let mut down = watch(supervisor.cell()).await;
    exit_child(&supervisor, "y", ExitReason::error("1"), &mut events).await;
    assert_eq!(next(&mut events).await, Event::Started("y".into()));
    exit_child(&supervisor, "y", ExitReason::error("2"), &mut events).await;
    for id in ["z", "x"] {
        assert_eq!(
            next(&mut events).await,
            Event::Terminated(id.into(), ExitReason::Shutdown)
        );
    }
    assert_eq!(next(&mut down).await, Event::Down(ExitReason::Shutdown));
}

#[tokio::test]
async fn restarts_older_than_the_period_are_forgotten() {
    let (sender, mut events) = channel();
    let mut spec = tree(Strategy::OneForOne, 1, vec![probe_spec("p", &sender)]);
    spec.flags.period = Duration::from_millis(50);
    let supervisor = start(spec, &mut events).await;
    for round in 0..3 {
        let started = tokio::time::Instant::now();
        exit_child(&supervisor, "p", ExitReason::error(round), &mut events).await;
        assert_eq!(next(&mut events).await, Event::Started("p".into()));
        // Let the period pass before the next crash: the budget is per window.
        tokio::time::sleep_until(started + Duration::from_millis(60)).await;
    }
    assert!(supervisor.is_alive());
    supervisor.stop().await.unwrap();
}

/// A tree of a top supervisor (intensity `top`) over a sub supervisor (intensity 0) over
/// one worker: the sub gives up at the worker's first crash, the top restarts it.
fn nested(sender: &mpsc::UnboundedSender<Event>, top: u32) -> SupervisorSpec {
    let sub = tree(Strategy::OneForOne, 0, vec![probe_spec("leaf", sender)]);
    let sub_spec = ChildSpec::supervisor("sub", move |parent| {
        parent.start_supervisor(Some("escalation-sub".into()), sub.clone())
    });
    tree(Strategy::OneForOne, top, vec![sub_spec])
}

#[tokio::test]
async fn escalation_climbs_the_tree() {
    let (sender, mut events) = channel();
    let top = nested(&sender, 1).start().await.unwrap();
    assert_eq!(next(&mut events).await, Event::Started("leaf".into()));
    let mut top_down = watch(top.cell()).await;

    let sub = SupervisorRef::whereis("escalation-sub").unwrap();
    exit_child(&sub, "leaf", ExitReason::error("leaf 1"), &mut events).await;
    // The sub supervisor gave up; the top restarted it, which started a new leaf.
    assert_eq!(next(&mut events).await, Event::Started("leaf".into()));
    assert!(!sub.is_alive());
    let sub = SupervisorRef::whereis("escalation-sub").unwrap();
    assert!(sub.is_alive());

    exit_child(&sub, "leaf", ExitReason::error("leaf 2"), &mut events).await;
    // Second escalation within the period: the top gives up too.
    assert_eq!(next(&mut top_down).await, Event::Down(ExitReason::Shutdown));
}

#[tokio::test]
async fn shutdown_stops_children_in_reverse_start_order() {
    let (sender, mut events) = channel();
    let spec = tree(
        Strategy::OneForOne,
        3,
        vec![
            probe_spec("1", &sender),
            probe_spec("2", &sender),
            probe_spec("3", &sender),
        ],
    );
    let supervisor = start(spec, &mut events).await;
    supervisor.stop().await.unwrap();
    for id in ["3", "2", "1"] {
        assert_eq!(
            next(&mut events).await,
            Event::Terminated(id.into(), ExitReason::Shutdown)
        );
    }
}

#[tokio::test]
async fn shutdown_timeout_then_kill_and_brutal_kill() {
    let (sender, mut events) = channel();
    let hang = "hangs";
    let spec = tree(
        Strategy::OneForOne,
        3,
        vec![
            probe_spec("brutal", &sender).shutdown(Shutdown::BrutalKill),
            probe_spec_behaving(hang, &sender, Behaviour::HangInTerminate)
                .shutdown(Shutdown::Timeout(Duration::from_millis(50))),
        ],
    );
    let supervisor = start(spec, &mut events).await;
    let brutal = child_of(&supervisor, "brutal").await;
    let hanging = child_of(&supervisor, hang).await;
    let stopped = tokio::time::timeout(common::PATIENCE, supervisor.stop()).await;
    assert!(
        stopped.is_ok(),
        "a hanging terminate must not hang the supervisor"
    );
    // The hanging child got its orderly request (terminate ran) and was then killed.
    assert_eq!(
        next(&mut events).await,
        Event::Terminated(hang.into(), ExitReason::Shutdown)
    );
    assert!(!hanging.is_alive());
    // The brutally killed child never ran terminate: no further event arrives.
    assert!(!brutal.is_alive());
    drop(sender);
    common::no_more_events(events).await;
}

#[tokio::test]
async fn a_failing_child_rolls_back_the_start_in_reverse_order() {
    let (sender, mut events) = channel();
    let spec = tree(
        Strategy::OneForOne,
        3,
        vec![
            probe_spec("first", &sender),
            probe_spec("second", &sender),
            probe_spec_behaving("broken", &sender, Behaviour::FailInit),
            probe_spec("never", &sender),
        ],
    );
    let error = spec.start_named("rollback-sup").await.unwrap_err();
    match &error {
        StartError::Child { id, reason } => {
            assert_eq!(id, "broken");
            assert!(reason.to_string().contains("refusing to start"), "{reason}");
        }
        other => panic!("expected a child start error, got {other}"),
    }
    assert_eq!(next(&mut events).await, Event::Started("first".into()));
    assert_eq!(next(&mut events).await, Event::Started("second".into()));
    for id in ["second", "first"] {
        assert_eq!(
            next(&mut events).await,
            Event::Terminated(id.into(), ExitReason::Shutdown)
        );
    }
    // The supervisor's name was freed with its failed start.
    assert!(SupervisorRef::whereis("rollback-sup").is_none());
}

#[tokio::test]
async fn a_restarted_named_child_answers_under_its_name_at_once() {
    let (sender, mut events) = channel();
    let probe = probe_into("named", &sender);
    let spec = tree(
        Strategy::OneForOne,
        100,
        vec![ChildSpec::worker("named", move |parent| {
            parent.start_named("restart-by-name", probe.clone().with_value(0))
        })],
    );
    let supervisor = start(spec, &mut events).await;
    let by_name = Named::<common::Probe>::new("restart-by-name");
    for round in 0..20u64 {
        let old = by_name.resolve().unwrap();
        old.cast(Add(round + 1));
        old.kill();
        assert_eq!(next(&mut events).await, Event::Started("named".into()));
        // Fresh state: the kill's instance had a non-zero value.
        assert_eq!(by_name.call(Get).await, Ok(0));
        assert_ne!(by_name.resolve().unwrap().id(), old.id());
    }
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn control_functions_follow_otp() {
    let (sender, mut events) = channel();
    let spec = tree(Strategy::OneForOne, 3, vec![probe_spec("a", &sender)]);
    let supervisor = start(spec, &mut events).await;

    supervisor
        .start_child(probe_spec("b", &sender))
        .await
        .unwrap();
    assert_eq!(next(&mut events).await, Event::Started("b".into()));
    assert!(matches!(
        supervisor.start_child(probe_spec("b", &sender)).await,
        Err(SupervisorError::AlreadyStarted(_))
    ));
    let counts = supervisor.count_children().await.unwrap();
    assert_eq!(
        (
            counts.specs,
            counts.active,
            counts.workers,
            counts.supervisors
        ),
        (2, 2, 2, 0)
    );

    assert!(matches!(
        supervisor.delete_child("b").await,
        Err(SupervisorError::Running(_))
    ));
    supervisor.terminate_child("b").await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("b".into(), ExitReason::Shutdown)
    );
    let children = supervisor.which_children().await.unwrap();
    assert!(matches!(children[1].process, ChildProcess::Undefined));
    assert!(matches!(
        supervisor.start_child(probe_spec("b", &sender)).await,
        Err(SupervisorError::AlreadyPresent(_))
    ));
    supervisor.restart_child("b").await.unwrap();
    assert_eq!(next(&mut events).await, Event::Started("b".into()));
    assert!(matches!(
        supervisor.restart_child("b").await,
        Err(SupervisorError::Running(_))
    ));
    supervisor.terminate_child("b").await.unwrap();
    next(&mut events).await;
    supervisor.delete_child("b").await.unwrap();
    assert!(matches!(
        supervisor.restart_child("b").await,
        Err(SupervisorError::NotFound(_))
    ));
    assert_eq!(running_ids(&supervisor).await, ["a"]);

    // A temporary child is gone once terminated: nothing to restart.
    supervisor
        .start_child(probe_spec("t", &sender).restart(Restart::Temporary))
        .await
        .unwrap();
    next(&mut events).await;
    supervisor.terminate_child("t").await.unwrap();
    next(&mut events).await;
    assert!(matches!(
        supervisor.restart_child("t").await,
        Err(SupervisorError::NotFound(_))
    ));
    // A child that cannot start is reported and not added.
    assert!(matches!(
        supervisor
            .start_child(probe_spec_behaving("broken", &sender, Behaviour::FailInit))
            .await,
        Err(SupervisorError::Start(StartError::Init(_)))
    ));
    assert_eq!(supervisor.count_children().await.unwrap().specs, 1);
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn duplicate_ids_are_refused() {
    let (sender, _events) = channel();
    let spec = tree(
        Strategy::OneForOne,
        3,
        vec![probe_spec("same", &sender), probe_spec("same", &sender)],
    );
    let error = spec.start().await.unwrap_err();
    assert!(
        matches!(&error, StartError::DuplicateChildId(id) if id == "same"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("duplicate child id \"same\""),
        "{error}"
    );
}

#[tokio::test]
async fn dynamic_supervisor_starts_restarts_and_limits_children() {
    let (sender, mut events) = channel();
    let flags = DynamicFlags {
        max_children: Some(3),
        ..DynamicFlags::default()
    };
    let supervisor = start_dynamic(flags, None).await.unwrap();
    let permanent = supervisor
        .start_child(probe_spec("p", &sender))
        .await
        .unwrap()
        .unwrap();
    let transient = supervisor
        .start_child(probe_spec("t", &sender).restart(Restart::Transient))
        .await
        .unwrap()
        .unwrap();
    let temporary = supervisor
        .start_child(probe_spec("x", &sender).restart(Restart::Temporary))
        .await
        .unwrap()
        .unwrap();
    for id in ["p", "t", "x"] {
        assert_eq!(next(&mut events).await, Event::Started(id.into()));
    }
    assert!(matches!(
        supervisor.start_child(probe_spec("over", &sender)).await,
        Err(SupervisorError::MaxChildren(3))
    ));

    let permanent = otp::ServerRef::<common::Probe>::from_cell(permanent).unwrap();
    permanent.cast(Stop(ExitReason::Normal));
    next(&mut events).await;
    assert_eq!(next(&mut events).await, Event::Started("p".into()));

    let transient = otp::ServerRef::<common::Probe>::from_cell(transient).unwrap();
    transient.cast(Stop(ExitReason::Normal));
    next(&mut events).await;
    transient.wait_exit().await;
    let counts = supervisor.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active), (2, 2));

    supervisor
        .terminate_child(temporary.get_id())
        .await
        .unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("x".into(), ExitReason::Shutdown)
    );
    assert!(matches!(
        supervisor.terminate_child(temporary.get_id()).await,
        Err(SupervisorError::NotFound(_))
    ));
    supervisor.stop().await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("p".into(), ExitReason::Shutdown)
    );
    assert!(matches!(
        supervisor.count_children().await,
        Err(SupervisorError::Call(CallError::NoProc))
    ));
}

#[tokio::test]
async fn dynamic_children_may_share_an_id_and_are_listed_in_start_order() {
    let (sender, mut events) = channel();
    let supervisor = start_dynamic(DynamicFlags::default(), Some("rooms".into()))
        .await
        .unwrap();
    let mut started = Vec::new();
    for _ in 0..3 {
        started.push(
            supervisor
                .start_child(probe_spec("room", &sender))
                .await
                .unwrap()
                .unwrap(),
        );
        assert_eq!(next(&mut events).await, Event::Started("room".into()));
    }
    let listed = |children: Vec<otp::supervisor::ChildInfo>| {
        children
            .iter()
            .map(|child| child.process.cell().map(|cell| cell.get_id()))
            .collect::<Vec<_>>()
    };
    let ids: Vec<_> = started.iter().map(|cell| Some(cell.get_id())).collect();
    assert_eq!(listed(supervisor.which_children().await.unwrap()), ids);

    supervisor
        .terminate_child(started[1].get_id())
        .await
        .unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("room".into(), ExitReason::Shutdown)
    );
    assert_eq!(
        listed(supervisor.which_children().await.unwrap()),
        [ids[0], ids[2]],
        "only the child with that process goes"
    );
    // A dynamic supervisor is a supervisor: the general handle reaches it by name, and
    // refuses what concerns children by id, as OTP does for simple_one_for_one.
    let general = SupervisorRef::whereis("rooms").expect("registered");
    assert_eq!(general.count_children().await.unwrap().active, 2);
    for refused in [
        general.terminate_child("room").await,
        general.delete_child("room").await,
        general.restart_child("room").await.map(drop),
    ] {
        assert!(
            matches!(refused, Err(SupervisorError::Dynamic)),
            "{refused:?}"
        );
    }
    supervisor.stop().await.unwrap();
}

/// A worker spec `id` that starts once and fails every later start; and how many starts
/// were tried.
fn starts_once(
    id: &str,
    events: &mpsc::UnboundedSender<Event>,
) -> (ChildSpec, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    let starts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = starts.clone();
    let ok = probe_into(id, events);
    let broken = probe_into(id, events).behaving(Behaviour::FailInit);
    let spec = ChildSpec::worker(id, move |parent| {
        let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
        let probe = if first { ok.clone() } else { broken.clone() };
        parent.start(probe.with_value(0))
    });
    (spec, starts)
}

#[tokio::test]
async fn a_restart_that_fails_is_retried_until_intensity_gives_up() {
    let (sender, mut events) = channel();
    let (flaky, starts) = starts_once("flaky", &sender);
    let supervisor = start(tree(Strategy::OneForOne, 3, vec![flaky]), &mut events).await;
    let mut down = watch(supervisor.cell()).await;
    child_of(&supervisor, "flaky").await.kill();
    assert_eq!(next(&mut down).await, Event::Down(ExitReason::Shutdown));
    // One first start, then `intensity` = 3 restart attempts; the 4th restart would be more
    // than the intensity, so it is not attempted: the supervisor gives up instead.
    assert_eq!(starts.load(Ordering::SeqCst), 4);
}

/// For one_for_all and rest_for_one, every restart type with every kind of exit: the middle
/// child `b` exits; whether anyone restarts follows the restart type, and who restarts
/// follows the strategy.
#[tokio::test]
async fn every_strategy_restart_type_and_exit_kind() {
    let exits = [
        ExitReason::Normal,
        ExitReason::Shutdown,
        ExitReason::ShutdownWith("done".into()),
        ExitReason::error("crash"),
    ];
    for strategy in [
        Strategy::OneForOne,
        Strategy::OneForAll,
        Strategy::RestForOne,
    ] {
        for restart in [Restart::Permanent, Restart::Transient, Restart::Temporary] {
            for reason in &exits {
                let case = format!("{strategy:?} {restart:?} {reason}");
                let (sender, mut events) = channel();
                let spec = tree(
                    strategy,
                    10,
                    vec![
                        probe_spec("a", &sender),
                        probe_spec("b", &sender).restart(restart),
                        probe_spec("c", &sender),
                    ],
                );
                let supervisor = start(spec, &mut events).await;
                let mut before = Vec::new();
                for id in ["a", "c"] {
                    before.push(child_of(&supervisor, id).await.id());
                }
                exit_child(&supervisor, "b", reason.clone(), &mut events).await;
                let restarts = match restart {
                    Restart::Permanent => true,
                    Restart::Transient => !reason.is_orderly(),
                    Restart::Temporary => false,
                };
                let children = supervisor.which_children().await.unwrap();
                let ids: Vec<&str> = children.iter().map(|c| c.id.as_str()).collect();
                let b_running = children
                    .iter()
                    .any(|c| c.id == "b" && c.process.cell().is_some());
                assert_eq!(b_running, restarts, "{case}: b restarted?");
                assert_eq!(
                    ids.contains(&"b"),
                    restart != Restart::Temporary,
                    "{case}: b kept?"
                );
                let a_same = child_of(&supervisor, "a").await.id() == before[0];
                let c_same = child_of(&supervisor, "c").await.id() == before[1];
                let (a_expected, c_expected) = match (restarts, strategy) {
                    (false, _) | (true, Strategy::OneForOne) => (true, true),
                    (true, Strategy::OneForAll) => (false, false),
                    (true, Strategy::RestForOne) => (true, false),
                };
                assert_eq!(
                    (a_same, c_same),
                    (a_expected, c_expected),
                    "{case}: a and c untouched?"
                );
                supervisor.stop().await.unwrap();
            }
        }
    }
}

otp::protocol! {
    /// Nothing to ask of a port holder: it only holds.
    pub Holding;
}

/// Which port a [`PortHolder`] binds, and whom it tells once bound.
struct HoldArgs {
    port: u16,
    started: mpsc::UnboundedSender<()>,
}

/// Holds a listening socket on a fixed port in its state.
struct PortHolder {
    _listener: std::net::TcpListener,
}

impl Init<HoldArgs> for PortHolder {
    async fn init(args: HoldArgs, _me: &otp::Context<Self>) -> otp::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", args.port))?;
        let _ = args.started.send(());
        Ok(PortHolder {
            _listener: listener,
        })
    }
}

impl otp::GenServer for PortHolder {
    type Protocol = Holding;
}

#[tokio::test]
async fn a_killed_childs_resources_are_freed_before_its_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (started, mut starts) = mpsc::unbounded_channel();
    let spec = ChildSpec::worker("holder", move |parent| {
        parent.start(PortHolder::with_args(HoldArgs {
            port,
            started: started.clone(),
        }))
    });
    // Intensity 1: a restart that failed to bind would be retried once, then end the
    // supervisor.
    let supervisor = tree(Strategy::OneForOne, 1, vec![spec])
        .start()
        .await
        .unwrap();
    tokio::time::timeout(common::PATIENCE, starts.recv())
        .await
        .unwrap();
    let children = supervisor.which_children().await.unwrap();
    children[0].process.cell().unwrap().kill();
    // The restart binds the same port at once: the dead instance's socket is gone.
    tokio::time::timeout(common::PATIENCE, starts.recv())
        .await
        .unwrap();
    assert!(supervisor.is_alive());
    assert_eq!(running_ids(&supervisor).await, ["holder"]);
    supervisor.stop().await.unwrap();
}

/// A supervisor whose `init` panics.
struct Panicking;

impl otp::supervisor::Supervisor for Panicking {
    fn init(&self) -> Result<SupervisorSpec, otp::BoxError> {
        panic!("no tree today")
    }
}

#[tokio::test]
async fn a_supervisor_whose_init_panics_fails_its_start_and_spares_its_parent() {
    use otp::supervisor::Supervisor;
    let error = Panicking.start().await.unwrap_err();
    assert!(
        matches!(&error, StartError::Init(reason) if reason.to_string().contains("no tree today")),
        "{error}"
    );
    // Under a parent it is a failed start of that child: the parent lives on.
    let (sender, mut events) = channel();
    let parent = start(
        tree(Strategy::OneForOne, 3, vec![probe_spec("worker", &sender)]),
        &mut events,
    )
    .await;
    let nested = ChildSpec::supervisor("nested", |parent| parent.start_supervisor(None, Panicking));
    assert!(matches!(
        parent.start_child(nested).await,
        Err(SupervisorError::Start(StartError::Init(_)))
    ));
    assert_eq!(running_ids(&parent).await, ["worker"]);
    parent.stop().await.unwrap();
}

#[tokio::test]
async fn terminate_child_stops_a_dynamic_child_whose_restart_keeps_failing() {
    // OTP's hanging_restart_loop_simple: the child starts once, then never again.
    let (sender, mut events) = channel();
    let (flaky, starts) = starts_once("flaky", &sender);
    let flags = DynamicFlags {
        intensity: u32::MAX,
        period: Duration::from_secs(3600),
        ..DynamicFlags::default()
    };
    let supervisor = start_dynamic(flags, None).await.unwrap();
    let first = supervisor.start_child(flaky).await.unwrap().unwrap();
    assert_eq!(next(&mut events).await, Event::Started("flaky".into()));
    first.kill();
    common::eventually(|| starts.load(Ordering::SeqCst) > 3).await;
    let children = supervisor.which_children().await.unwrap();
    assert!(
        matches!(children.as_slice(), [child] if matches!(child.process, ChildProcess::Restarting)),
        "{children:?}"
    );
    // Its last process still names it: terminating it ends the retrying.
    supervisor.terminate_child(first.get_id()).await.unwrap();
    assert!(supervisor.which_children().await.unwrap().is_empty());
    let tries = starts.load(Ordering::SeqCst);
    // Restarts go through the mailbox: once a later request is answered, no retry is left.
    assert_eq!(supervisor.count_children().await.unwrap().specs, 0);
    assert_eq!(starts.load(Ordering::SeqCst), tries, "still retrying");
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn a_transient_child_that_stops_normal_but_crashes_in_terminate_is_restarted() {
    let (sender, mut events) = channel();
    let crashy =
        probe_spec_behaving("t", &sender, Behaviour::PanicInTerminate).restart(Restart::Transient);
    let supervisor = start(tree(Strategy::OneForOne, 3, vec![crashy]), &mut events).await;
    child_of(&supervisor, "t")
        .await
        .cast(Stop(ExitReason::Normal));
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("t".into(), ExitReason::Normal)
    );
    assert_eq!(next(&mut events).await, Event::Started("t".into()));
    supervisor.stop().await.unwrap();
}

/// OTP's `simple_global_supervisor`, its `kill_supervisor` case (OTP-9212): top
/// (one_for_all) → middle supervisor → worker registered by name. Killing the middle one
/// is survivable: the top restarts it, and the worker's name is registered again.
#[tokio::test]
async fn killing_a_middle_supervisor_restarts_it_and_registers_its_worker_again() {
    let (sender, mut events) = channel();
    let worker = probe_into("server", &sender);
    let middle = tree(
        Strategy::OneForAll,
        3,
        vec![ChildSpec::worker("child", move |parent| {
            parent.start_named("server-9212", worker.clone().with_value(0))
        })],
    );
    let top = tree(
        Strategy::OneForAll,
        3,
        vec![ChildSpec::supervisor("middle", move |parent| {
            parent.start_supervisor(Some("sup2-9212".into()), middle.clone())
        })],
    )
    .start()
    .await
    .unwrap();
    assert_eq!(next(&mut events).await, Event::Started("server".into()));
    let server_1 = otp::ServerRef::<common::Probe>::whereis("server-9212").unwrap();
    let sup2_1 = SupervisorRef::whereis("sup2-9212").unwrap();

    sup2_1.cell().kill();
    // A killed worker runs no `terminate`: the next event is the new worker's start.
    assert_eq!(next(&mut events).await, Event::Started("server".into()));
    let server_2 = otp::ServerRef::<common::Probe>::whereis("server-9212").unwrap();
    let sup2_2 = SupervisorRef::whereis("sup2-9212").unwrap();
    assert_ne!(server_2.id(), server_1.id());
    assert_ne!(sup2_2.cell().get_id(), sup2_1.cell().get_id());
    assert!(top.is_alive());
    assert_eq!(running_ids(&top).await, ["middle"]);
    top.stop().await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("server".into(), ExitReason::Shutdown)
    );
}

/// As above, one level deeper: top → middle → inner supervisor → named worker. Killing
/// the middle one kills the inner one and the worker a moment after it; the top restarts
/// the middle only once all of them are gone.
#[tokio::test]
async fn killing_a_supervisor_restarts_its_whole_subtree_with_the_names() {
    let (sender, mut events) = channel();
    let worker = probe_into("deep", &sender);
    let inner = tree(
        Strategy::OneForOne,
        3,
        vec![ChildSpec::worker("worker", move |parent| {
            parent.start_named("deep-worker", worker.clone().with_value(0))
        })],
    );
    let middle = tree(
        Strategy::OneForOne,
        3,
        vec![ChildSpec::supervisor("inner", move |parent| {
            parent.start_supervisor(Some("deep-inner".into()), inner.clone())
        })],
    );
    let rounds = 5;
    let top = tree(
        Strategy::OneForOne,
        rounds,
        vec![ChildSpec::supervisor("middle", move |parent| {
            parent.start_supervisor(Some("deep-middle".into()), middle.clone())
        })],
    )
    .start()
    .await
    .unwrap();
    assert_eq!(next(&mut events).await, Event::Started("deep".into()));
    for round in 0..rounds {
        let worker = otp::ServerRef::<common::Probe>::whereis("deep-worker").unwrap();
        SupervisorRef::whereis("deep-middle").unwrap().cell().kill();
        assert_eq!(
            next(&mut events).await,
            Event::Started("deep".into()),
            "round {round}"
        );
        let again = otp::ServerRef::<common::Probe>::whereis("deep-worker").unwrap();
        assert_ne!(again.id(), worker.id());
        assert!(SupervisorRef::whereis("deep-inner").is_some());
    }
    assert!(top.is_alive());
    top.stop().await.unwrap();
}
