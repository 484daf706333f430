//! The JSON shape of a supervisor spec file, as serde types. Unknown fields are refused
//! everywhere, so a typo is an error rather than a silently ignored setting.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::supervisor::{AutoShutdown, ChildType, Restart, Shutdown, Strategy};

/// A supervisor: the whole file, or an inline nested `supervisor`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SupervisorEntry {
    /// Optional documentation for readers of the file; ignored by the loader.
    #[serde(default, rename = "description")]
    pub _description: Option<String>,
    /// Registered name of this supervisor (top level only; children use their `name`).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub intensity: Option<u32>,
    /// Seconds, as in OTP (fractions allowed).
    #[serde(default)]
    pub period: Option<f64>,
    #[serde(default)]
    pub auto_shutdown: AutoShutdown,
    #[serde(default)]
    pub children: Vec<ChildEntry>,
}

/// One child. Exactly one of `start`, `supervisor`, `file`, `dynamic_supervisor` says
/// what it is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChildEntry {
    pub id: String,
    /// A start name from the registry.
    #[serde(default)]
    pub start: Option<String>,
    /// Arguments for the start name, deserialized into its argument type.
    #[serde(default)]
    pub args: Option<Value>,
    /// Register the child under this name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub restart: Option<Restart>,
    #[serde(default)]
    pub shutdown: Option<ShutdownEntry>,
    #[serde(default, rename = "type")]
    pub kind: Option<ChildType>,
    #[serde(default)]
    pub significant: bool,
    /// A nested supervisor, inline.
    #[serde(default)]
    pub supervisor: Option<Box<SupervisorEntry>>,
    /// A nested supervisor in another file, relative to this one.
    #[serde(default)]
    pub file: Option<String>,
    /// A nested dynamic supervisor.
    #[serde(default)]
    pub dynamic_supervisor: Option<DynamicEntry>,
    /// A nested partition supervisor (Elixir's `PartitionSupervisor`); needs `name`.
    #[serde(default)]
    pub partition_supervisor: Option<PartitionEntry>,
}

/// A partition supervisor: how many partitions, and each one's dynamic settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartitionEntry {
    /// Default: one per core.
    #[serde(default)]
    pub partitions: Option<usize>,
    #[serde(default)]
    pub intensity: Option<u32>,
    #[serde(default)]
    pub period: Option<f64>,
    #[serde(default)]
    pub max_children: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DynamicEntry {
    #[serde(default)]
    pub intensity: Option<u32>,
    #[serde(default)]
    pub period: Option<f64>,
    #[serde(default)]
    pub max_children: Option<usize>,
}

/// `shutdown`: milliseconds, `"brutal_kill"` or `"infinity"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShutdownEntry(pub Shutdown);

impl<'de> Deserialize<'de> for ShutdownEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShutdownVisitor;

        impl Visitor<'_> for ShutdownVisitor {
            type Value = ShutdownEntry;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a timeout in milliseconds, "brutal_kill" or "infinity""#)
            }

            fn visit_u64<E: de::Error>(self, ms: u64) -> Result<ShutdownEntry, E> {
                Ok(ShutdownEntry(Shutdown::Timeout(Duration::from_millis(ms))))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ShutdownEntry, E> {
                match text {
                    "brutal_kill" => Ok(ShutdownEntry(Shutdown::BrutalKill)),
                    "infinity" => Ok(ShutdownEntry(Shutdown::Infinity)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(text), &self)),
                }
            }
        }

        deserializer.deserialize_any(ShutdownVisitor)
    }
}
