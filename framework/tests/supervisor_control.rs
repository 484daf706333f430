//! Supervisor features beyond restarts, case by case after OTP's `supervisor_SUITE`:
//! `ignore` from `init`, `get_childspec`, `terminate_child` by process, and significant
//! children with `auto_shutdown`.

mod common;

use std::time::Duration;

use common::{
    child_of, next, probe, probe_spec, probe_spec_behaving, running_ids, watch, Behaviour, Event,
    Stop,
};
use otp::supervisor::{
    start_dynamic, AutoShutdown, ChildProcess, ChildSpec, DynamicFlags, Flags, Restart, Shutdown,
    Strategy, SupervisorError, SupervisorRef, SupervisorSpec,
};
use otp::{ExitReason, StartError};
use tokio::sync::mpsc;

type Events = mpsc::UnboundedReceiver<Event>;

fn tree(auto_shutdown: AutoShutdown, children: Vec<ChildSpec>) -> SupervisorSpec {
    SupervisorSpec {
        flags: Flags {
            strategy: Strategy::OneForOne,
            intensity: 5,
            period: Duration::from_secs(60),
            auto_shutdown,
        },
        children,
    }
}

/// `(specs, active, supervisors, workers)`, in OTP's order.
async fn counts(supervisor: &SupervisorRef) -> (usize, usize, usize, usize) {
    let counts = supervisor.count_children().await.unwrap();
    (
        counts.specs,
        counts.active,
        counts.supervisors,
        counts.workers,
    )
}

/// Makes the running child `id` exit with `reason` (not through the supervisor).
async fn exit_on_its_own(supervisor: &SupervisorRef, id: &str, reason: ExitReason) {
    child_of(supervisor, id).await.cast(Stop(reason));
}

#[tokio::test]
async fn a_server_whose_init_ignores_starts_nothing_and_frees_its_name() {
    let (ignoring, _events) = probe("ignoring");
    let ignoring = ignoring.behaving(Behaviour::IgnoreInit);
    let started = ignoring.with_value(0).start_named("ignoring").await;
    assert!(matches!(started, Err(StartError::Ignored)), "{started:?}");
    let (probe, mut events) = probe("ignoring");
    probe.with_value(0).start_named("ignoring").await.unwrap();
    assert_eq!(next(&mut events).await, Event::Started("ignoring".into()));
}

/// A supervisor whose `init` ignores.
struct Ignoring;

impl otp::supervisor::Supervisor for Ignoring {
    fn init(&self) -> Result<SupervisorSpec, otp::BoxError> {
        Err(otp::Ignore.into())
    }
}

/// OTP's `sup_start_ignore_init`.
#[tokio::test]
async fn a_supervisor_whose_init_ignores_starts_nothing() {
    use otp::supervisor::Supervisor;
    let started = Ignoring.start_named("ignoring-supervisor").await;
    assert!(matches!(started, Err(StartError::Ignored)), "{started:?}");
    assert!(SupervisorRef::whereis("ignoring-supervisor").is_none());
}

/// OTP's `sup_start_ignore_child`: the spec is kept, not running.
#[tokio::test]
async fn a_static_supervisor_keeps_an_ignoring_child_as_not_running() {
    let (sender, mut events) = mpsc::unbounded_channel();
    let supervisor = tree(AutoShutdown::Never, vec![]).start().await.unwrap();
    let ignoring = probe_spec_behaving("child1", &sender, Behaviour::IgnoreInit);
    assert!(supervisor.start_child(ignoring).await.unwrap().is_none());
    let started = supervisor.start_child(probe_spec("child2", &sender));
    assert!(started.await.unwrap().is_some());
    assert_eq!(next(&mut events).await, Event::Started("child2".into()));

    let children = supervisor.which_children().await.unwrap();
    assert_eq!(children[0].id, "child1");
    assert!(matches!(children[0].process, ChildProcess::Undefined));
    assert!(matches!(children[1].process, ChildProcess::Running(_)));
    assert_eq!(counts(&supervisor).await, (2, 1, 0, 2));
    // It ignores its restart too, and stays as it is.
    assert!(supervisor.restart_child("child1").await.unwrap().is_none());
    assert_eq!(counts(&supervisor).await, (2, 1, 0, 2));
    supervisor.stop().await.unwrap();
}

/// OTP's `sup_start_ignore_temporary_child`: a temporary child's spec is not kept.
#[tokio::test]
async fn an_ignoring_temporary_child_leaves_no_spec() {
    let (sender, mut events) = mpsc::unbounded_channel();
    let supervisor = tree(
        AutoShutdown::Never,
        vec![
            probe_spec_behaving("child1", &sender, Behaviour::IgnoreInit)
                .restart(Restart::Temporary),
            probe_spec("child2", &sender).restart(Restart::Temporary),
        ],
    )
    .start()
    .await
    .unwrap();
    assert_eq!(next(&mut events).await, Event::Started("child2".into()));
    assert_eq!(running_ids(&supervisor).await, ["child2"]);
    assert_eq!(counts(&supervisor).await, (1, 1, 0, 1));
    supervisor.stop().await.unwrap();
}

/// OTP's `sup_start_ignore_permanent_child_start_child_simple`.
#[tokio::test]
async fn a_dynamic_supervisor_keeps_nothing_of_an_ignoring_child() {
    let (sender, mut events) = mpsc::unbounded_channel();
    let supervisor = start_dynamic(DynamicFlags::default(), None).await.unwrap();
    let ignoring = probe_spec_behaving("child", &sender, Behaviour::IgnoreInit);
    assert!(supervisor.start_child(ignoring).await.unwrap().is_none());
    let started = supervisor.start_child(probe_spec("child", &sender));
    let started = started.await.unwrap().unwrap();
    assert_eq!(next(&mut events).await, Event::Started("child".into()));
    let children = supervisor.which_children().await.unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(
        children[0].process.cell().map(|cell| cell.get_id()),
        Some(started.get_id())
    );
    supervisor.stop().await.unwrap();
}

#[tokio::test]
async fn get_childspec_answers_the_spec_a_child_runs_from() {
    let (sender, mut events) = mpsc::unbounded_channel();
    let spec = probe_spec("child", &sender)
        .restart(Restart::Transient)
        .shutdown(Shutdown::BrutalKill);
    let supervisor = tree(AutoShutdown::Never, vec![spec]).start().await.unwrap();
    next(&mut events).await;
    let got = supervisor.get_childspec("child").await.unwrap();
    assert_eq!(
        (got.id.as_str(), got.restart, got.shutdown),
        ("child", Restart::Transient, Shutdown::BrutalKill)
    );
    assert!(matches!(
        supervisor.get_childspec("nobody").await,
        Err(SupervisorError::NotFound(id)) if id == "nobody"
    ));
    supervisor.stop().await.unwrap();

    let dynamic = start_dynamic(DynamicFlags::default(), Some("specs".into()))
        .await
        .unwrap();
    let spec = probe_spec("room", &sender).restart(Restart::Temporary);
    let room = dynamic.start_child(spec).await.unwrap().unwrap();
    next(&mut events).await;
    let got = dynamic.get_childspec(room.get_id()).await.unwrap();
    assert_eq!((got.id.as_str(), got.restart), ("room", Restart::Temporary));
    // By id it is refused, as OTP answers `{error, simple_one_for_one}`.
    let by_id = SupervisorRef::whereis("specs").unwrap();
    assert!(matches!(
        by_id.get_childspec("room").await,
        Err(SupervisorError::Dynamic)
    ));
    dynamic.stop().await.unwrap();
}

#[tokio::test]
async fn a_static_child_terminated_by_process_keeps_its_spec() {
    let (sender, mut events) = mpsc::unbounded_channel();
    let supervisor = tree(AutoShutdown::Never, vec![probe_spec("child", &sender)])
        .start()
        .await
        .unwrap();
    next(&mut events).await;
    let pid = child_of(&supervisor, "child").await.id();
    supervisor.terminate_child_process(pid).await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("child".into(), ExitReason::Shutdown)
    );
    let children = supervisor.which_children().await.unwrap();
    assert!(matches!(children[0].process, ChildProcess::Undefined));
    assert!(matches!(
        supervisor.terminate_child_process(pid).await,
        Err(SupervisorError::NotFound(_))
    ));
    assert!(supervisor.restart_child("child").await.unwrap().is_some());
    assert_eq!(next(&mut events).await, Event::Started("child".into()));
    supervisor.stop().await.unwrap();
}

/// Three children under `auto_shutdown`: two significant ones of type `restart`, and a
/// plain one started last.
async fn significant_tree(
    auto_shutdown: AutoShutdown,
    restart: Restart,
) -> (SupervisorRef, Events, Events) {
    let (sender, mut events) = mpsc::unbounded_channel();
    let children = vec![
        probe_spec("child1", &sender)
            .restart(restart)
            .significant(true),
        probe_spec("child2", &sender)
            .restart(restart)
            .significant(true),
        probe_spec("child3", &sender).restart(restart),
    ];
    let supervisor = tree(auto_shutdown, children).start().await.unwrap();
    for _ in 0..3 {
        next(&mut events).await;
    }
    let down = watch(supervisor.cell()).await;
    (supervisor, events, down)
}

/// The supervisor stopped its children in reverse order and exited with `shutdown`.
async fn shut_down_by_itself(events: &mut Events, down: &mut Events, remaining: &[&str]) {
    for id in remaining {
        assert_eq!(
            next(events).await,
            Event::Terminated((*id).into(), ExitReason::Shutdown)
        );
    }
    assert_eq!(next(down).await, Event::Down(ExitReason::Shutdown));
}

/// OTP's `significant_temporary`, any exit of a temporary significant child.
#[tokio::test]
async fn any_significant_shuts_down_when_a_temporary_significant_child_exits() {
    for reason in [ExitReason::Normal, ExitReason::error("boom")] {
        let (supervisor, mut events, mut down) =
            significant_tree(AutoShutdown::AnySignificant, Restart::Temporary).await;
        exit_on_its_own(&supervisor, "child1", reason.clone()).await;
        assert_eq!(
            next(&mut events).await,
            Event::Terminated("child1".into(), reason)
        );
        shut_down_by_itself(&mut events, &mut down, &["child3", "child2"]).await;
    }
}

/// OTP's `significant_temporary` and `significant_transient`: a significant child stopped
/// by the supervisor is not done by itself.
#[tokio::test]
async fn a_significant_child_terminated_by_the_supervisor_does_not_end_it() {
    let (supervisor, mut events, _down) =
        significant_tree(AutoShutdown::AnySignificant, Restart::Transient).await;
    supervisor.terminate_child("child1").await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("child1".into(), ExitReason::Shutdown)
    );
    assert!(supervisor.is_alive());
    assert_eq!(running_ids(&supervisor).await, ["child2", "child3"]);
    supervisor.stop().await.unwrap();
}

/// OTP's `significant_transient`: a crashed transient significant child is restarted (not
/// done); an orderly exit is its end, and the supervisor's.
#[tokio::test]
async fn a_transient_significant_child_ends_the_supervisor_only_by_an_orderly_exit() {
    let (supervisor, mut events, mut down) =
        significant_tree(AutoShutdown::AnySignificant, Restart::Transient).await;
    let crash = ExitReason::error("crash");
    exit_on_its_own(&supervisor, "child1", crash.clone()).await;
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("child1".into(), crash)
    );
    assert_eq!(next(&mut events).await, Event::Started("child1".into()));
    assert!(supervisor.is_alive());

    exit_on_its_own(&supervisor, "child1", ExitReason::Normal).await;
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("child1".into(), ExitReason::Normal)
    );
    shut_down_by_itself(&mut events, &mut down, &["child3", "child2"]).await;
}

/// OTP's `significant_temporary`, `all_significant` part.
#[tokio::test]
async fn all_significant_shuts_down_when_the_last_significant_child_is_done() {
    let (supervisor, mut events, mut down) =
        significant_tree(AutoShutdown::AllSignificant, Restart::Temporary).await;
    exit_on_its_own(&supervisor, "child1", ExitReason::Normal).await;
    next(&mut events).await;
    // One significant child is left: the supervisor goes on.
    assert_eq!(running_ids(&supervisor).await, ["child2", "child3"]);

    exit_on_its_own(&supervisor, "child2", ExitReason::Normal).await;
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("child2".into(), ExitReason::Normal)
    );
    shut_down_by_itself(&mut events, &mut down, &["child3"]).await;
}

/// OTP's `significant_bystander`: significant children stopped for a sibling's restart
/// are not done.
#[tokio::test]
async fn significant_children_stopped_for_a_siblings_restart_do_not_end_it() {
    let (sender, mut events) = mpsc::unbounded_channel();
    let spec = SupervisorSpec {
        flags: Flags {
            strategy: Strategy::OneForAll,
            intensity: 5,
            period: Duration::from_secs(60),
            auto_shutdown: AutoShutdown::AnySignificant,
        },
        children: vec![
            probe_spec("child1", &sender)
                .restart(Restart::Transient)
                .significant(true),
            probe_spec("child2", &sender).restart(Restart::Transient),
        ],
    };
    let supervisor = spec.start().await.unwrap();
    next(&mut events).await;
    next(&mut events).await;
    child_of(&supervisor, "child2").await.kill();
    // child1 is stopped for the restart, then both start again.
    assert_eq!(
        next(&mut events).await,
        Event::Terminated("child1".into(), ExitReason::Shutdown)
    );
    assert_eq!(next(&mut events).await, Event::Started("child1".into()));
    assert_eq!(next(&mut events).await, Event::Started("child2".into()));
    assert!(supervisor.is_alive());
    supervisor.stop().await.unwrap();
}

/// OTP's `child_specs` (`bad_combination`) and the `significant` rules of its docs.
#[tokio::test]
async fn significant_is_refused_for_permanent_children_and_without_auto_shutdown() {
    let (sender, _events) = mpsc::unbounded_channel();
    let permanent = probe_spec("always", &sender).significant(true);
    let started = tree(AutoShutdown::AnySignificant, vec![permanent])
        .start()
        .await;
    assert!(
        matches!(&started, Err(StartError::BadChildSpec { id, .. }) if id == "always"),
        "{started:?}"
    );

    let supervisor = tree(AutoShutdown::Never, vec![]).start().await.unwrap();
    let transient = probe_spec("maybe", &sender)
        .restart(Restart::Transient)
        .significant(true);
    let error = supervisor.start_child(transient).await.unwrap_err();
    assert!(
        error.to_string().contains("auto_shutdown"),
        "the error says what to change: {error}"
    );
    assert_eq!(counts(&supervisor).await, (0, 0, 0, 0));
    supervisor.stop().await.unwrap();
}

/// OTP's `significant_escalation`: a supervisor that shut itself down is a significant
/// child's orderly exit for its own parent.
#[tokio::test]
async fn auto_shutdown_climbs_through_significant_supervisors() {
    let (sender, mut events) = mpsc::unbounded_channel();
    let inner = tree(
        AutoShutdown::AnySignificant,
        vec![probe_spec("worker", &sender)
            .restart(Restart::Transient)
            .significant(true)],
    );
    let inner = ChildSpec::supervisor("inner", move |parent| {
        parent.start_supervisor(Some("significant-inner".into()), inner.clone())
    })
    .restart(Restart::Transient)
    .significant(true);
    let top = tree(AutoShutdown::AnySignificant, vec![inner])
        .start()
        .await
        .unwrap();
    next(&mut events).await;
    let mut down = watch(top.cell()).await;
    let inner = SupervisorRef::whereis("significant-inner").unwrap();
    exit_on_its_own(&inner, "worker", ExitReason::Normal).await;
    assert_eq!(next(&mut down).await, Event::Down(ExitReason::Shutdown));
}

/// Elixir's `PartitionSupervisor`: children routed by key, counted and listed over all
/// partitions; a key always goes to the same partition.
#[tokio::test]
async fn a_partition_supervisor_routes_children_by_key_and_reports_over_all() {
    use otp::supervisor::{start_partitioned, PartitionFlags};
    let (sender, mut events) = mpsc::unbounded_channel();
    let flags = PartitionFlags {
        partitions: 4,
        partition: DynamicFlags::default(),
    };
    let partitioned = start_partitioned(flags, "partitioned").await.unwrap();
    assert_eq!(partitioned.partitions(), 4);
    let mut used = std::collections::HashSet::new();
    for key in 0..16u32 {
        let spec = probe_spec("worker", &sender).restart(Restart::Temporary);
        partitioned.start_child(&key, spec).await.unwrap().unwrap();
        next(&mut events).await;
        let partition = partitioned.partition(&key).unwrap();
        assert_eq!(
            partition.cell().get_id(),
            partitioned.partition(&key).unwrap().cell().get_id()
        );
        used.insert(partition.cell().get_id());
    }
    assert!(used.len() > 1, "keys spread over the partitions");
    let counts = partitioned.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active, counts.workers), (16, 16, 16));
    let children = partitioned.which_children().await.unwrap();
    assert_eq!(children.len(), 16);
    let one = children[5].process.cell().unwrap().get_id();
    partitioned.terminate_child(one).await.unwrap();
    assert_eq!(partitioned.count_children().await.unwrap().active, 15);
    // A partition that dies is restarted by the top supervisor and found again by name.
    let partition = partitioned.partition(&3u32).unwrap();
    partition.cell().kill();
    wait_until_partition_replaced(&partitioned, partition.cell().get_id()).await;
    partitioned.stop().await.unwrap();
}

/// Waits until the partition key 3 routes to is a new process.
async fn wait_until_partition_replaced(
    partitioned: &otp::supervisor::PartitionSupervisorRef,
    old: otp::ActorId,
) {
    common::eventually(|| {
        partitioned
            .partition(&3u32)
            .is_some_and(|partition| partition.cell().get_id() != old)
    })
    .await;
}
