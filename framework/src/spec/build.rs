//! From parsed file to [`SupervisorSpec`]: every check that needs more than the JSON shape,
//! each error naming the file and the field path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::format::{ChildEntry, DynamicEntry, PartitionEntry, SupervisorEntry};
use super::{Registry, SpecError, Tree};
use crate::supervisor::{
    partition_spec, ChildSpec, ChildType, DynamicFlags, Flags, PartitionFlags, SupervisorSpec,
    DEFAULT_INTENSITY, DEFAULT_PERIOD,
};
use crate::StartError;

/// Loads files recursively, remembering which are open to refuse reference cycles.
pub(crate) struct Loader<'r> {
    registry: &'r Registry,
    open_files: Vec<PathBuf>,
}

impl<'r> Loader<'r> {
    pub(crate) fn new(registry: &'r Registry) -> Self {
        Self {
            registry,
            open_files: Vec::new(),
        }
    }

    pub(crate) fn file(&mut self, path: &Path) -> Result<Tree, SpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| SpecError::new(path, "", format!("cannot read the file: {error}")))?;
        self.text(&text, path)
    }

    pub(crate) fn text(&mut self, text: &str, file: &Path) -> Result<Tree, SpecError> {
        let mut json = serde_json::Deserializer::from_str(text);
        let entry: SupervisorEntry =
            serde_path_to_error::deserialize(&mut json).map_err(|error| {
                let field = error.path().to_string();
                let field = if field == "." { String::new() } else { field };
                SpecError::new(file, field, error.into_inner().to_string())
            })?;
        self.open_files.push(file.to_owned());
        let name = entry.name.clone();
        let spec = self.supervisor(entry, file, "");
        self.open_files.pop();
        Ok(Tree { name, spec: spec? })
    }

    fn supervisor(
        &mut self,
        entry: SupervisorEntry,
        file: &Path,
        at: &str,
    ) -> Result<SupervisorSpec, SpecError> {
        let flags = Flags {
            strategy: entry.strategy,
            intensity: entry.intensity.unwrap_or(DEFAULT_INTENSITY),
            period: period(entry.period, file, &join(at, "period"))?,
            auto_shutdown: entry.auto_shutdown,
        };
        let mut first_seen: HashMap<String, usize> = HashMap::new();
        let mut children = Vec::with_capacity(entry.children.len());
        for (index, child) in entry.children.into_iter().enumerate() {
            let here = join(at, &format!("children[{index}]"));
            if child.id.is_empty() {
                return Err(SpecError::new(
                    file,
                    join(&here, "id"),
                    "empty id: give the child a unique, non-empty id",
                ));
            }
            if let Some(first) = first_seen.insert(child.id.clone(), index) {
                return Err(SpecError::new(
                    file,
                    join(&here, "id"),
                    format!("duplicate id {:?} (also children[{first}]): ids must be unique within a supervisor", child.id),
                ));
            }
            let child = self.child(child, file, &here)?;
            if let Err(refused) = child.check(flags.auto_shutdown) {
                let problem = match refused {
                    StartError::BadChildSpec { problem, .. } => problem.to_owned(),
                    other => other.to_string(),
                };
                return Err(SpecError::new(file, join(&here, "significant"), problem));
            }
            children.push(child);
        }
        Ok(SupervisorSpec { flags, children })
    }

    fn child(&mut self, entry: ChildEntry, file: &Path, at: &str) -> Result<ChildSpec, SpecError> {
        let ChildEntry {
            id,
            start,
            args,
            name,
            restart,
            shutdown,
            kind,
            significant,
            supervisor,
            file: nested_file,
            dynamic_supervisor,
            partition_supervisor,
        } = entry;
        if args.is_some() && start.is_none() {
            return Err(SpecError::new(
                file,
                join(at, "args"),
                "`args` only go with `start`; nested supervisors take their settings inline",
            ));
        }
        if start.is_none() && kind.is_some_and(|kind| kind != ChildType::Supervisor) {
            return Err(SpecError::new(
                file,
                join(at, "type"),
                "a nested supervisor must have type \"supervisor\" (or leave `type` out)",
            ));
        }
        let mut spec = match (
            start,
            supervisor,
            nested_file,
            dynamic_supervisor,
            partition_supervisor,
        ) {
            (Some(start), None, None, None, None) => {
                self.registered(&id, &start, args, name, kind, file, at)?
            }
            (None, Some(inline), None, None, None) => {
                let nested = self.supervisor(*inline, file, &join(at, "supervisor"))?;
                nested_spec(&id, name, nested)
            }
            (None, None, Some(relative), None, None) => {
                let nested = self.nested_file(&relative, file, &join(at, "file"))?;
                nested_spec(&id, name.or(nested.name), nested.spec)
            }
            (None, None, None, Some(dynamic), None) => {
                let flags = dynamic_flags(dynamic, file, &join(at, "dynamic_supervisor"))?;
                ChildSpec::supervisor(&id, move |parent| parent.start_dynamic(name.clone(), flags))
            }
            (None, None, None, None, Some(partitioned)) => {
                let here = join(at, "partition_supervisor");
                let Some(name) = name else {
                    return Err(SpecError::new(
                        file,
                        join(at, "name"),
                        "a partition supervisor needs a `name`: its partitions are found by it",
                    ));
                };
                let flags = partition_flags(partitioned, file, &here)?;
                let nested = partition_spec(&name, flags);
                nested_spec(&id, Some(name), nested)
            }
            _ => {
                return Err(SpecError::new(
                    file,
                    at,
                    "give exactly one of `start`, `supervisor`, `file`, `dynamic_supervisor` or `partition_supervisor`",
                ))
            }
        };
        if let Some(restart) = restart {
            spec = spec.restart(restart);
        }
        if let Some(shutdown) = shutdown {
            spec = spec.shutdown(shutdown.0);
        }
        Ok(spec.significant(significant))
    }

    #[allow(clippy::too_many_arguments)]
    fn registered(
        &self,
        id: &str,
        start: &str,
        args: Option<Value>,
        name: Option<String>,
        declared: Option<ChildType>,
        file: &Path,
        at: &str,
    ) -> Result<ChildSpec, SpecError> {
        let Some((registered, build)) = self.registry.get(start) else {
            let known: Vec<&str> = self.registry.names().collect();
            return Err(SpecError::new(
                file,
                join(at, "start"),
                format!(
                    "unknown start name {start:?}; registered: {}",
                    known.join(", ")
                ),
            ));
        };
        if let Some(declared) = declared.filter(|declared| *declared != registered) {
            return Err(SpecError::new(
                file,
                join(at, "type"),
                format!("{start:?} is registered as a {registered:?}, not a {declared:?}: fix `type` or leave it out"),
            ));
        }
        build(id, args.unwrap_or(Value::Null), name).map_err(|(inner, problem)| {
            SpecError::new(file, join(&join(at, "args"), &inner), problem)
        })
    }

    fn nested_file(&mut self, relative: &str, file: &Path, at: &str) -> Result<Tree, SpecError> {
        let path = file.parent().unwrap_or(Path::new(".")).join(relative);
        if self.open_files.iter().any(|open| same_file(open, &path)) {
            return Err(SpecError::new(
                file,
                at,
                format!("{} is already being loaded: supervisor files cannot include each other in a cycle", path.display()),
            ));
        }
        if !path.is_file() {
            return Err(SpecError::new(
                file,
                at,
                format!(
                    "no such file {}: paths are relative to this file",
                    path.display()
                ),
            ));
        }
        self.file(&path)
    }
}

fn nested_spec(id: &str, name: Option<String>, nested: SupervisorSpec) -> ChildSpec {
    ChildSpec::supervisor(id, move |parent| {
        parent.start_supervisor(name.clone(), nested.clone())
    })
}

fn dynamic_flags(entry: DynamicEntry, file: &Path, at: &str) -> Result<DynamicFlags, SpecError> {
    if entry.max_children == Some(0) {
        return Err(SpecError::new(
            file,
            join(at, "max_children"),
            "0 would refuse every child: give at least 1, or leave it out for no limit",
        ));
    }
    Ok(DynamicFlags {
        intensity: entry.intensity.unwrap_or(DEFAULT_INTENSITY),
        period: period(entry.period, file, &join(at, "period"))?,
        max_children: entry.max_children,
    })
}

fn partition_flags(
    entry: PartitionEntry,
    file: &Path,
    at: &str,
) -> Result<PartitionFlags, SpecError> {
    if entry.partitions == Some(0) {
        return Err(SpecError::new(
            file,
            join(at, "partitions"),
            "0 partitions could hold no child: give at least 1, or leave it out for one per core",
        ));
    }
    let partition = DynamicEntry {
        intensity: entry.intensity,
        period: entry.period,
        max_children: entry.max_children,
    };
    Ok(PartitionFlags {
        partitions: entry
            .partitions
            .unwrap_or_else(|| PartitionFlags::default().partitions),
        partition: dynamic_flags(partition, file, at)?,
    })
}

/// The shortest and longest restart periods a file may give: shorter would round to no
/// period at all (no restart limit), longer does not fit a `Duration` or a human's patience.
const PERIODS: std::ops::RangeInclusive<f64> = 0.001..=1e9;

fn period(seconds: Option<f64>, file: &Path, at: &str) -> Result<Duration, SpecError> {
    match seconds {
        None => Ok(DEFAULT_PERIOD),
        Some(seconds) if PERIODS.contains(&seconds) => Ok(Duration::from_secs_f64(seconds)),
        Some(seconds) => Err(SpecError::new(
            file,
            at,
            format!(
                "{seconds} is not a period: give a number of seconds from {} to {}",
                PERIODS.start(),
                PERIODS.end()
            ),
        )),
    }
}

fn join(at: &str, field: &str) -> String {
    match (at.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (_, true) => at.to_owned(),
        _ if field.starts_with('[') => format!("{at}{field}"),
        _ => format!("{at}.{field}"),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
