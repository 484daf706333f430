//! Supervision trees as data: JSON files (under `supervisor-specs/`) that load into the same
//! [`SupervisorSpec`] a [`Supervisor::init`](crate::supervisor::Supervisor::init) returns.
//!
//! Everything is checked before anything starts: unknown fields, duplicate ids, unknown start
//! names, `args` that do not deserialize into the start's argument type, impossible
//! combinations, missing or cyclic file references. A [`SpecError`] names the file, the path
//! to the field (`children[2].restart`) and what is allowed.
//!
//! # Format
//! ```json
//! {
//!   "description": "free text for readers",
//!   "name": "my_app_sup",
//!   "strategy": "one_for_one",
//!   "intensity": 3,
//!   "period": 5,
//!   "children": [
//!     { "id": "db", "start": "db_pool", "args": { "size": 4 },
//!       "name": "db", "restart": "permanent", "shutdown": 5000, "type": "worker" },
//!     { "id": "workers", "supervisor": { "strategy": "one_for_all", "children": [] } },
//!     { "id": "web", "file": "web_sup.json", "restart": "transient" },
//!     { "id": "sessions", "name": "sessions", "dynamic_supervisor": { "max_children": 1000 } },
//!     { "id": "jobs", "name": "jobs", "partition_supervisor": { "partitions": 4 } }
//!   ]
//! }
//! ```
//! | field | values | default |
//! |---|---|---|
//! | `strategy` | `one_for_one`, `one_for_all`, `rest_for_one` | `one_for_one` |
//! | `intensity`, `period` | restarts, seconds | 3, 5 |
//! | `restart` | `permanent`, `transient`, `temporary` | `permanent` |
//! | `shutdown` | milliseconds, `"brutal_kill"`, `"infinity"` | 5000 for workers, `infinity` for supervisors |
//! | `type` | `worker`, `supervisor` | from the start name, or `supervisor` for nested ones |
//! | `auto_shutdown` | `never`, `any_significant`, `all_significant` | `never` |
//! | `significant` (child) | `true` for transient or temporary children, under `auto_shutdown` | `false` |
//!
//! A `partition_supervisor` (Elixir's `PartitionSupervisor`) takes `partitions` (default:
//! one per core) and each partition's `intensity`, `period`, `max_children`; it needs a
//! `name`, under which [`PartitionSupervisorRef::whereis`](crate::supervisor::PartitionSupervisorRef::whereis)
//! finds it.
//!
//! `file` paths are relative to the file that names them.

mod build;
mod format;
mod registry;

use std::path::{Path, PathBuf};

pub use registry::Registry;

use crate::supervisor::{SupervisorRef, SupervisorSpec};
use crate::StartError;

/// A loaded tree: the top supervisor's spec and its registered name, if the file gives one.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The file's top-level `name`.
    pub name: Option<String>,
    /// Flags and children.
    pub spec: SupervisorSpec,
}

impl Tree {
    /// Starts the tree, registered under its name if it has one.
    pub async fn start(self) -> Result<SupervisorRef, StartError> {
        match self.name {
            Some(name) => self.spec.start_named(name).await,
            None => self.spec.start().await,
        }
    }
}

/// Loads and validates a spec file and every file it references.
pub fn load(path: impl AsRef<Path>, registry: &Registry) -> Result<Tree, SpecError> {
    build::Loader::new(registry).file(path.as_ref())
}

/// Validates spec text; `origin` names it in errors and anchors relative `file` references.
pub fn parse(text: &str, origin: impl AsRef<Path>, registry: &Registry) -> Result<Tree, SpecError> {
    build::Loader::new(registry).text(text, origin.as_ref())
}

/// A spec that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{}", one_line(&file.display().to_string()), if field.is_empty() { String::new() } else { format!("{}: ", one_line(field)) }, one_line(problem))]
pub struct SpecError {
    /// The file at fault.
    pub file: PathBuf,
    /// The path to the field inside it (`children[2].restart`); empty for the file as a whole.
    pub field: String,
    /// What is wrong and what is allowed.
    pub problem: String,
}

/// `text` with control characters escaped (`\n` as the two characters `\` `n`): names from
/// the file are quoted in errors, and an error stays one line whatever the file holds.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

impl SpecError {
    fn new(file: &Path, field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            field: field.into(),
            problem: problem.into(),
        }
    }
}
