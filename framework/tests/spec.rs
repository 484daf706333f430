//! Supervision trees from JSON: the example file loads into the same tree as code builds,
//! and every kind of bad spec is refused with the file, the field path and the fix.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{next, probe_into, probe_spec, Event, Get};
use otp::spec::{self, Registry, SpecError};
use otp::supervisor::{
    AutoShutdown, ChildSpec, ChildType, Flags, Restart, Shutdown, Strategy, SupervisorRef,
    SupervisorSpec, DEFAULT_WORKER_SHUTDOWN,
};
use otp::{Named, ServerRef};
use tokio::sync::mpsc;

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../supervisor-specs")
}

fn registry(events: &mpsc::UnboundedSender<Event>) -> Registry {
    let mut registry = Registry::new();
    let probe = probe_into("from-file", events);
    registry.gen_server("probe", move |value: u64| probe.clone().with_value(value));
    registry
}

/// What a spec says, without its start functions (which cannot be compared).
fn shape(spec: &SupervisorSpec) -> (Flags, Vec<(String, Restart, Shutdown, ChildType)>) {
    let children = spec
        .children
        .iter()
        .map(|c| (c.id.clone(), c.restart, c.shutdown, c.kind))
        .collect();
    (spec.flags, children)
}

#[tokio::test]
async fn the_example_file_builds_the_same_tree_as_code_and_runs() {
    let (sender, mut events) = mpsc::unbounded_channel();
    let tree = spec::load(
        specs_dir().join("framework_example.json"),
        &registry(&sender),
    )
    .unwrap();
    assert_eq!(tree.name.as_deref(), Some("example_sup"));

    let by_code = SupervisorSpec {
        flags: Flags {
            strategy: Strategy::RestForOne,
            intensity: 5,
            period: Duration::from_secs(10),
            ..Flags::default()
        },
        children: vec![
            probe_spec("first", &sender),
            ChildSpec::supervisor("group", |_| async { unreachable!() }),
            ChildSpec::supervisor("workers", |_| async { unreachable!() })
                .restart(Restart::Transient),
            ChildSpec::supervisor("sessions", |_| async { unreachable!() }),
        ],
    };
    assert_eq!(shape(&tree.spec), shape(&by_code));

    let supervisor = tree.start().await.unwrap();
    // Four probes start, in order: first, left, right, temp.
    for _ in 0..4 {
        assert_eq!(next(&mut events).await, Event::Started("from-file".into()));
    }
    assert_eq!(
        Named::<common::Probe>::new("example_first").call(Get).await,
        Ok(1)
    );
    let children = supervisor.which_children().await.unwrap();
    let kinds: Vec<_> = children.iter().map(|c| (c.id.as_str(), c.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("first", ChildType::Worker),
            ("group", ChildType::Supervisor),
            ("workers", ChildType::Supervisor),
            ("sessions", ChildType::Supervisor),
        ]
    );
    let group = SupervisorRef::whereis("example_sup").unwrap();
    assert_eq!(group.count_children().await.unwrap().active, 4);
    let sessions = otp::supervisor::DynamicSupervisorRef::whereis("example_sessions").unwrap();
    sessions
        .start_child(probe_spec("session", &sender))
        .await
        .unwrap();
    assert_eq!(next(&mut events).await, Event::Started("session".into()));
    supervisor.stop().await.unwrap();
    assert!(ServerRef::<common::Probe>::whereis("example_first").is_none());
}

/// Parses `text` as if it were `bad.json` and returns the error.
fn refuse(text: &str) -> SpecError {
    let (sender, _events) = mpsc::unbounded_channel();
    match spec::parse(text, "bad.json", &registry(&sender)) {
        Ok(_) => panic!("accepted a bad spec: {text}"),
        Err(error) => error,
    }
}

fn assert_refused(text: &str, field: &str, hint: &str) {
    let error = refuse(text);
    assert_eq!(error.file, Path::new("bad.json"), "{error}");
    assert_eq!(error.field, field, "{error}");
    assert!(error.problem.contains(hint), "{error}");
    let line = error.to_string();
    assert!(!line.contains('\n'), "one line: {line}");
    assert!(line.starts_with("bad.json: "), "{line}");
}

#[test]
fn unknown_fields_are_refused_with_their_path() {
    assert_refused(
        r#"{"children": [{"id": "a", "start": "probe", "args": 1}, {"id": "b", "start": "probe", "restat": "permanent"}]}"#,
        "children[1].restat",
        "unknown field `restat`, expected one of",
    );
    assert_refused(
        r#"{"strategie": "one_for_one"}"#,
        "strategie",
        "unknown field",
    );
}

#[test]
fn bad_enum_values_list_what_is_allowed() {
    assert_refused(
        r#"{"children": [{"id": "a", "start": "probe", "args": 1, "restart": "forever"}]}"#,
        "children[0].restart",
        "expected one of `permanent`, `transient`, `temporary`",
    );
    assert_refused(r#"{"strategy": "one_for_some"}"#, "strategy", "one_for_one");
    assert_refused(
        r#"{"children": [{"id": "a", "start": "probe", "args": 1, "shutdown": "soon"}]}"#,
        "children[0].shutdown",
        r#""brutal_kill" or "infinity""#,
    );
}

#[test]
fn duplicate_ids_name_both_places() {
    assert_refused(
        r#"{"children": [{"id": "a", "start": "probe", "args": 1}, {"id": "a", "start": "probe", "args": 2}]}"#,
        "children[1].id",
        "duplicate id \"a\" (also children[0])",
    );
}

#[test]
fn unknown_start_names_list_the_registered_ones() {
    assert_refused(
        r#"{"children": [{"id": "a", "start": "prob"}]}"#,
        "children[0].start",
        "unknown start name \"prob\"; registered: probe",
    );
}

#[test]
fn args_that_do_not_fit_are_refused_before_anything_starts() {
    assert_refused(
        r#"{"children": [{"id": "a", "start": "probe", "args": "three"}]}"#,
        "children[0].args",
        "invalid type: string \"three\", expected u64",
    );
    assert_refused(
        r#"{"children": [{"id": "a", "start": "probe"}]}"#,
        "children[0].args",
        "invalid type: null",
    );
}

#[test]
fn impossible_combinations_are_refused() {
    assert_refused(
        r#"{"children": [{"id": "a", "start": "probe", "args": 1, "supervisor": {}}]}"#,
        "children[0]",
        "exactly one of `start`, `supervisor`, `file`, `dynamic_supervisor` or `partition_supervisor`",
    );
    assert_refused(
        r#"{"children": [{"id": "a"}]}"#,
        "children[0]",
        "exactly one of",
    );
    assert_refused(
        r#"{"children": [{"id": "a", "start": "probe", "args": 1, "type": "supervisor"}]}"#,
        "children[0].type",
        "registered as a Worker",
    );
    assert_refused(
        r#"{"children": [{"id": "a", "type": "worker", "supervisor": {}}]}"#,
        "children[0].type",
        "must have type \"supervisor\"",
    );
    assert_refused(
        r#"{"children": [{"id": "s", "supervisor": {"children": []}, "args": 1}]}"#,
        "children[0].args",
        "only go with `start`",
    );
    assert_refused(
        r#"{"children": [{"id": "d", "dynamic_supervisor": {"max_children": 0}}]}"#,
        "children[0].dynamic_supervisor.max_children",
        "at least 1",
    );
    assert_refused(r#"{"period": 0}"#, "period", "number of seconds from 0.001");
    assert_refused(
        r#"{"period": 1e-10}"#,
        "period",
        "number of seconds from 0.001",
    );
    assert_refused(
        r#"{"period": 2e19}"#,
        "period",
        "number of seconds from 0.001",
    );
    assert_refused(
        r#"{"children": [{"id": "", "start": "probe", "args": 1}]}"#,
        "children[0].id",
        "empty id",
    );
}

#[tokio::test]
async fn a_partition_supervisor_comes_from_a_file() {
    assert_refused(
        r#"{"children": [{"id": "p", "partition_supervisor": {}}]}"#,
        "children[0].name",
        "needs a `name`",
    );
    assert_refused(
        r#"{"children": [{"id": "p", "name": "p", "partition_supervisor": {"partitions": 0}}]}"#,
        "children[0].partition_supervisor.partitions",
        "at least 1",
    );
    let (sender, _events) = mpsc::unbounded_channel();
    let tree = spec::parse(
        r#"{"children": [{"id": "sessions", "name": "file-sessions",
            "partition_supervisor": {"partitions": 3, "max_children": 10}}]}"#,
        "partitioned.json",
        &registry(&sender),
    )
    .unwrap();
    let top = tree.start().await.unwrap();
    let partitioned = otp::supervisor::PartitionSupervisorRef::whereis("file-sessions")
        .await
        .expect("the partition supervisor runs under its name");
    assert_eq!(partitioned.partitions(), 3);
    assert_eq!(
        partitioned
            .supervisor()
            .count_children()
            .await
            .unwrap()
            .active,
        3
    );
    assert!(partitioned.partition(&"any key").is_some());
    top.stop().await.unwrap();
}

#[test]
fn significant_children_follow_otps_rules() {
    assert_refused(
        r#"{"auto_shutdown": "any_significant", "children": [{"id": "a", "start": "probe", "args": 1, "significant": true}]}"#,
        "children[0].significant",
        "make it transient or temporary",
    );
    assert_refused(
        r#"{"children": [{"id": "a", "start": "probe", "args": 1, "restart": "temporary", "significant": true}]}"#,
        "children[0].significant",
        "auto_shutdown to be any_significant or all_significant",
    );
    assert_refused(
        r#"{"auto_shutdown": "sometimes"}"#,
        "auto_shutdown",
        "all_significant",
    );
    let (sender, _events) = mpsc::unbounded_channel();
    let tree = spec::parse(
        r#"{"auto_shutdown": "all_significant", "children": [{"id": "a", "start": "probe", "args": 1, "restart": "transient", "significant": true}]}"#,
        "significant.json",
        &registry(&sender),
    )
    .unwrap();
    assert_eq!(tree.spec.flags.auto_shutdown, AutoShutdown::AllSignificant);
    assert!(tree.spec.children[0].significant);
}

#[test]
fn errors_inside_nested_supervisors_have_the_full_path() {
    assert_refused(
        r#"{"children": [{"id": "s", "supervisor": {"children": [{"id": "x", "start": "probe", "args": 1, "restart": "often"}]}}]}"#,
        "children[0].supervisor.children[0].restart",
        "expected one of",
    );
}

#[test]
fn syntax_errors_and_missing_files_name_the_file() {
    let error = refuse(r#"{"children": [}"#);
    assert!(error.to_string().starts_with("bad.json: "), "{error}");
    assert!(error.problem.contains("line 1"), "{error}");

    let (sender, _events) = mpsc::unbounded_channel();
    let error = spec::load("/nonexistent/tree.json", &registry(&sender)).unwrap_err();
    assert_eq!(error.file, Path::new("/nonexistent/tree.json"));
    assert!(error.problem.contains("cannot read the file"), "{error}");

    assert_refused(
        r#"{"children": [{"id": "w", "file": "missing.json"}]}"#,
        "children[0].file",
        "no such file",
    );
}

#[test]
fn file_reference_cycles_are_refused() {
    let dir = std::env::temp_dir().join(format!("otp-spec-cycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.json"),
        r#"{"children": [{"id": "b", "file": "b.json"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("b.json"),
        r#"{"children": [{"id": "a", "file": "a.json"}]}"#,
    )
    .unwrap();
    let (sender, _events) = mpsc::unbounded_channel();
    let error = spec::load(dir.join("a.json"), &registry(&sender)).unwrap_err();
    assert_eq!(error.file, dir.join("b.json"));
    assert_eq!(error.field, "children[0].file");
    assert!(error.problem.contains("cycle"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn defaults_follow_otp() {
    let (sender, _events) = mpsc::unbounded_channel();
    let tree = spec::parse(
        r#"{"children": [{"id": "w", "start": "probe", "args": 0}, {"id": "s", "supervisor": {}}]}"#,
        "defaults.json",
        &registry(&sender),
    )
    .unwrap();
    assert_eq!(tree.spec.flags, Flags::default());
    let w = &tree.spec.children[0];
    assert_eq!(
        (w.restart, w.shutdown, w.kind),
        (
            Restart::Permanent,
            Shutdown::Timeout(DEFAULT_WORKER_SHUTDOWN),
            ChildType::Worker
        )
    );
    let s = &tree.spec.children[1];
    assert_eq!(
        (s.shutdown, s.kind),
        (Shutdown::Infinity, ChildType::Supervisor)
    );
}

#[tokio::test]
async fn custom_children_get_their_args_and_the_programs_context() {
    let (sender, mut events) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    // Context only the program knows (here, the event channel), captured by the builder.
    let context = sender.clone();
    registry.child(
        "labelled",
        ChildType::Worker,
        move |id, label: String, _name| {
            let probe = probe_into(&label, &context);
            ChildSpec::worker(id, move |parent| parent.start(probe.clone().with_value(7)))
        },
    );
    let tree = spec::parse(
        r#"{"children": [{"id": "c", "start": "labelled", "args": "from-the-file", "restart": "transient"}]}"#,
        "custom.json",
        &registry,
    )
    .unwrap();
    assert_eq!(tree.spec.children[0].restart, Restart::Transient);
    let supervisor = tree.start().await.unwrap();
    assert_eq!(
        next(&mut events).await,
        Event::Started("from-the-file".into())
    );
    supervisor.stop().await.unwrap();

    let error = spec::parse(
        r#"{"children": [{"id": "c", "start": "labelled", "args": 5}]}"#,
        "custom.json",
        &registry,
    )
    .unwrap_err();
    assert_eq!(error.field, "children[0].args");
    assert!(error.problem.contains("expected a string"), "{error}");
}
