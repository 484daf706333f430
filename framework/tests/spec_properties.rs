//! Property tests of the spec loader: no text, however broken, panics `spec::parse`; every
//! refusal is one line; whatever is accepted is a well-formed tree. Inputs are arbitrary
//! text and mutants of the real files in `supervisor-specs/`.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use otp::spec::{self, Registry, SpecError, Tree};
use otp::supervisor::{ChildSpec, ChildType, SupervisorSpec};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use serde_json::Value;

/// `cases` per property: a parse takes tens of microseconds, so even a debug build runs
/// thousands in about a second. No regression files are written into the source tree.
fn config(cases: u32) -> Config {
    Config {
        failure_persistence: None,
        ..Config::with_cases(cases)
    }
}

const SPEC_FILES: &[&str] = &[
    "framework_example.json",
    "framework_example_workers.json",
    "ex_messenger_client.json",
    "ex_messenger_server.json",
];

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../supervisor-specs")
}

/// The start names the files use, with the argument types their programs give them. Never
/// started: only loading is tested.
fn registry() -> Registry {
    fn unstarted(id: &str) -> ChildSpec {
        ChildSpec::worker(id, |_| async { unreachable!("specs are only loaded here") })
    }
    let mut registry = Registry::new();
    registry.child("probe", ChildType::Worker, |id, _: u64, _| unstarted(id));
    let chat = [
        "message_handler",
        "message_server",
        "scope",
        "nicks",
        "cluster",
    ];
    for start in ["node"].into_iter().chain(chat) {
        registry.child(start, ChildType::Worker, |id, (): (), _| unstarted(id));
    }
    registry
}

/// Parses `text` as if it were the spec file `origin` (so its `file` references resolve).
fn parse(text: &str, origin: &str) -> Result<Tree, SpecError> {
    spec::parse(text, specs_dir().join(origin), &registry())
}

/// `parse`, or `None` if it panicked: for properties other than "never panics", which has
/// its own test.
fn parse_unless_panic(text: &str, origin: &str) -> Option<Result<Tree, SpecError>> {
    panic::catch_unwind(AssertUnwindSafe(|| parse(text, origin))).ok()
}

/// Words a spec uses, so that generated values often get past the first check.
const WORDS: &[&str] = &[
    "id",
    "start",
    "args",
    "name",
    "restart",
    "shutdown",
    "type",
    "supervisor",
    "file",
    "dynamic_supervisor",
    "children",
    "strategy",
    "intensity",
    "period",
    "max_children",
    "description",
    "one_for_one",
    "one_for_all",
    "rest_for_one",
    "permanent",
    "transient",
    "temporary",
    "brutal_kill",
    "infinity",
    "worker",
    "probe",
    "node",
    "message_handler",
    "message_server",
    "framework_example.json",
    "framework_example_workers.json",
    "ex_messenger_client.json",
    "",
];

/// Number literals at and past the edges of every numeric type a spec holds (u32, u64,
/// usize, f64), by kind: each kind is drawn as often as the others.
const HUGE: &[&str] = &[
    "4294967296",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "2e19",
    "1e20",
    "1e300",
    "1.7976931348623157e308",
    "1e400",
];
const TINY: &[&str] = &[
    "0", "-0", "0.0", "1e-7", "1e-10", "1e-300", "5e-324", "1e-400",
];
const NEGATIVE: &[&str] = &[
    "-1",
    "-0.5",
    "-9223372036854775808",
    "-9223372036854775809",
    "-1e20",
    "-1.7976931348623157e308",
    "-1e400",
];
const ORDINARY: &[&str] = &["1", "3", "0.5", "10", "100", "5000", "4294967295"];

fn number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(HUGE).prop_map(String::from),
        prop::sample::select(TINY).prop_map(String::from),
        prop::sample::select(NEGATIVE).prop_map(String::from),
        prop::sample::select(ORDINARY).prop_map(String::from),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
    ]
}

/// Strings with anything in them: newlines, quotes, controls, any Unicode.
fn weird_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        2 => any::<char>().prop_map(String::from),
        1 => prop::sample::select(vec!["\n", "\r", "\r\n", "\u{85}", "\u{2028}"]).prop_map(String::from),
        1 => prop::sample::select(vec!["\"", "\\", "\t", "\u{0}", "\u{1b}[31m", "/", ".."])
            .prop_map(String::from),
        2 => prop::sample::select(WORDS).prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        weird_string().prop_map(Value::String),
        prop::sample::select(WORDS).prop_map(|word| Value::String(word.into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((weird_string(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// One change to a spec's text.
#[derive(Debug, Clone)]
enum Mutation {
    /// Removes up to `len` bytes from a position.
    DeleteBytes { at: Index, len: usize },
    /// Inserts raw bytes (invalid UTF-8 becomes U+FFFD, as `parse` takes text).
    InsertBytes { at: Index, bytes: Vec<u8> },
    /// Inserts JSON-like text: punctuation, words, numbers.
    InsertText { at: Index, text: String },
    /// Replaces one JSON value (any, at any depth) by another, of any type.
    ReplaceValue { which: Index, with: Value },
    /// Replaces one number by a literal at or past the edge of what it may be.
    SwapNumber { which: Index, with: String },
    /// Renames one object key.
    RenameKey { which: Index, to: String },
    /// Duplicates one array element (a second child with the same id, say).
    DuplicateElement { which: Index },
}

/// A change to the bytes, which mostly leaves the text no longer JSON.
fn byte_mutation() -> impl Strategy<Value = Mutation> {
    let json_text = prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                "{", "}", "[", "]", ":", ",", "\"", " ", "null", "true"
            ])
            .prop_map(String::from),
            number_literal(),
            weird_string().prop_map(|s| Value::String(s).to_string()),
        ],
        1..6,
    )
    .prop_map(|pieces| pieces.concat());
    prop_oneof![
        1 => (any::<Index>(), 1usize..40).prop_map(|(at, len)| Mutation::DeleteBytes { at, len }),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::InsertBytes { at, bytes }),
        1 => (any::<Index>(), json_text).prop_map(|(at, text)| Mutation::InsertText { at, text }),
    ]
}

/// A change that keeps the text JSON.
fn structural_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (any::<Index>(), json_value())
            .prop_map(|(which, with)| Mutation::ReplaceValue { which, with }),
        2 => (any::<Index>(), number_literal())
            .prop_map(|(which, with)| Mutation::SwapNumber { which, with }),
        1 => (any::<Index>(), weird_string()).prop_map(|(which, to)| Mutation::RenameKey { which, to }),
        1 => any::<Index>().prop_map(|which| Mutation::DuplicateElement { which }),
    ]
}

/// JSON pointers to every value in `value`, itself included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(item, format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn all_pointers(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    pointers(value, String::new(), &mut out);
    out
}

/// Applies `mutation` to `text`. Structural mutations need the text to be JSON; on text
/// that no longer is (after a byte mutation), they leave it as it is.
fn mutate(text: &str, mutation: &Mutation) -> String {
    match mutation {
        Mutation::DeleteBytes { at, len } => {
            let mut bytes = text.as_bytes().to_vec();
            let start = at.index(bytes.len() + 1);
            let end = (start + len).min(bytes.len());
            bytes.drain(start..end);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::InsertBytes {
            at,
            bytes: inserted,
        } => {
            let mut bytes = text.as_bytes().to_vec();
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, inserted.iter().copied());
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::InsertText { at, text: inserted } => {
            let mut bytes = text.as_bytes().to_vec();
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, inserted.bytes());
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::ReplaceValue { which, with } => edit_json(text, |json| {
            let pointers = all_pointers(json);
            let pointer = &pointers[which.index(pointers.len())];
            *json.pointer_mut(pointer).unwrap() = with.clone();
        }),
        Mutation::SwapNumber { which, with } => {
            const MARK: &str = "__spec_properties_number__";
            let marked = edit_json(text, |json| {
                let pointers = all_pointers(json);
                let numbers: Vec<&String> = pointers
                    .iter()
                    .filter(|p| json.pointer(p).unwrap().is_number())
                    .collect();
                if !numbers.is_empty() {
                    let pointer = numbers[which.index(numbers.len())].clone();
                    *json.pointer_mut(&pointer).unwrap() = Value::String(MARK.into());
                }
            });
            marked.replacen(&format!("\"{MARK}\""), with, 1)
        }
        Mutation::RenameKey { which, to } => edit_json(text, |json| {
            let objects: Vec<String> = all_pointers(json)
                .into_iter()
                .filter(|p| {
                    json.pointer(p)
                        .unwrap()
                        .as_object()
                        .is_some_and(|o| !o.is_empty())
                })
                .collect();
            if objects.is_empty() {
                return;
            }
            let pointer = &objects[which.index(objects.len())];
            let object = json.pointer_mut(pointer).unwrap().as_object_mut().unwrap();
            let key = object
                .keys()
                .nth(which.index(object.len()))
                .unwrap()
                .clone();
            let value = object.remove(&key).unwrap();
            object.insert(to.clone(), value);
        }),
        Mutation::DuplicateElement { which } => edit_json(text, |json| {
            let arrays: Vec<String> = all_pointers(json)
                .into_iter()
                .filter(|p| {
                    json.pointer(p)
                        .unwrap()
                        .as_array()
                        .is_some_and(|a| !a.is_empty())
                })
                .collect();
            if arrays.is_empty() {
                return;
            }
            let pointer = &arrays[which.index(arrays.len())];
            let array = json.pointer_mut(pointer).unwrap().as_array_mut().unwrap();
            let at = which.index(array.len());
            array.insert(at, array[at].clone());
        }),
    }
}

fn edit_json(text: &str, edit: impl FnOnce(&mut Value)) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(mut json) => {
            edit(&mut json);
            serde_json::to_string_pretty(&json).unwrap()
        }
        Err(_) => text.to_owned(),
    }
}

/// A spec file and a few mutations of it: (origin, mutated text). Two kinds: structural
/// mutations (byte mutations mostly end the JSON, after which they would do nothing, so they
/// come last), then, half the time, one byte mutation; or number swaps alone, which leave
/// most of the file valid so that the loader gets past deserializing it.
fn mutant() -> impl Strategy<Value = (&'static str, String)> {
    let general = (
        prop::collection::vec(structural_mutation(), 0..4),
        prop::option::of(byte_mutation()),
    )
        .prop_filter("at least one mutation", |(structural, bytes)| {
            !structural.is_empty() || bytes.is_some()
        })
        .prop_map(|(mut mutations, bytes)| {
            mutations.extend(bytes);
            mutations
        });
    let numbers = prop::collection::vec(
        (any::<Index>(), number_literal())
            .prop_map(|(which, with)| Mutation::SwapNumber { which, with }),
        1..3,
    );
    (
        prop::sample::select(SPEC_FILES),
        prop_oneof![general, numbers],
    )
        .prop_map(|(origin, mutations)| {
            let original = std::fs::read_to_string(specs_dir().join(origin)).unwrap();
            let text = mutations
                .iter()
                .fold(original, |text, mutation| mutate(&text, mutation));
            (origin, text)
        })
}

/// Text that is not a spec at all: arbitrary bytes, arbitrary characters, JSON-ish soup.
fn arbitrary_text() -> impl Strategy<Value = String> {
    let soup_piece = prop_oneof![
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            " ",
            "\n",
            "null",
            "\"children\":",
            "\"id\":"
        ])
        .prop_map(String::from),
        number_literal(),
        weird_string().prop_map(|s| Value::String(s).to_string()),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        prop::collection::vec(any::<char>(), 0..512).prop_map(String::from_iter),
        prop::collection::vec(soup_piece, 0..40).prop_map(|pieces| pieces.concat()),
        json_value().prop_map(|json| json.to_string()),
    ]
}

/// Ids unique and non-empty, periods positive, at every level given inline.
fn check_well_formed(spec: &SupervisorSpec) -> Result<(), TestCaseError> {
    prop_assert!(
        !spec.flags.period.is_zero(),
        "period {:?}",
        spec.flags.period
    );
    let mut ids = HashSet::new();
    for child in &spec.children {
        prop_assert!(!child.id.is_empty(), "an empty id was accepted");
        prop_assert!(ids.insert(child.id.as_str()), "id {:?} twice", child.id);
    }
    Ok(())
}

#[test]
fn every_spec_file_loads_before_mutation() {
    for origin in SPEC_FILES {
        let text = std::fs::read_to_string(specs_dir().join(origin)).unwrap();
        if let Err(error) = parse(&text, origin) {
            panic!("{origin}: {error}");
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// Text that is no spec at all never panics the loader.
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in arbitrary_text()) {
        let _ = parse(&text, "framework_example.json");
    }

    /// Broken versions of the real files never panic the loader.
    #[test]
    fn parse_never_panics_on_mutated_spec_files((origin, text) in mutant()) {
        let _ = parse(&text, origin);
    }

    /// Every refusal is one line: the file, the field path and the problem, no newline.
    #[test]
    fn spec_errors_are_one_line(
        (origin, text) in prop_oneof![
            mutant(),
            arbitrary_text().prop_map(|text| ("framework_example.json", text)),
        ]
    ) {
        let result = parse_unless_panic(&text, origin);
        prop_assume!(result.is_some(), "panicked: parse_never_panics_* covers that");
        if let Some(Err(error)) = result {
            let shown = error.to_string();
            prop_assert!(!shown.contains('\n'), "not one line: {shown:?}");
        }
    }
}

proptest! {
    // More cases: only about one mutant in six is accepted.
    #![proptest_config(config(4096))]

    /// What is accepted despite the mutation is still a well-formed tree.
    #[test]
    fn accepted_mutants_are_well_formed((origin, text) in mutant()) {
        let result = parse_unless_panic(&text, origin);
        prop_assume!(result.is_some(), "panicked: parse_never_panics_* covers that");
        if let Some(Ok(tree)) = result {
            check_well_formed(&tree.spec)?;
        }
    }
}
