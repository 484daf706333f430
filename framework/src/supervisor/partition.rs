//! Elixir's `PartitionSupervisor`: one dynamic supervisor per partition (by default one per
//! core), under a one-for-one supervisor, with children routed by a key. One dynamic
//! supervisor starts its children one at a time, as OTP's does; partitions start theirs in
//! parallel, so starting many children scales with the cores.
//!
//! The partitions are registered as `{name}.{index}`: a partition restarted by the top
//! supervisor is found again by its name.
//!
//! Unlike Elixir's, the partitions are always dynamic supervisors (Elixir's may be any
//! child), `which_children` and `count_children` report the partitions' children (Elixir's
//! report the partitions), and every key is hashed (Elixir takes an integer key modulo the
//! partition count).

use std::hash::{Hash, Hasher};

use ractor::{ActorCell, ActorId};

use super::{
    ChildCounts, ChildInfo, ChildSpec, DynamicFlags, DynamicSupervisorRef, Strategy,
    SupervisorError, SupervisorRef, SupervisorSpec,
};
use crate::StartError;

/// Settings of a partition supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionFlags {
    /// How many partitions (Elixir's `partitions`, default `System.schedulers_online()`).
    pub partitions: usize,
    /// Each partition's own flags (its `max_children` is per partition).
    pub partition: DynamicFlags,
}

impl Default for PartitionFlags {
    /// One partition per core.
    fn default() -> Self {
        Self {
            partitions: std::thread::available_parallelism().map_or(1, usize::from),
            partition: DynamicFlags::default(),
        }
    }
}

/// A running partition supervisor.
#[derive(Clone, Debug)]
pub struct PartitionSupervisorRef {
    top: SupervisorRef,
    /// The partitions' registered names, by index.
    partitions: std::sync::Arc<[String]>,
}

/// The spec of a partition supervisor registered as `name` (for a tree, or
/// [`start_partitioned`]): a one-for-one supervisor of `flags.partitions` dynamic
/// supervisors, registered as `{name}.0`, `{name}.1`, ...
pub fn partition_spec(name: &str, flags: PartitionFlags) -> SupervisorSpec {
    let children = (0..flags.partitions.max(1))
        .map(|index| {
            let partition = partition_name(name, index);
            ChildSpec::supervisor(index.to_string(), move |parent| {
                parent.start_dynamic(Some(partition.clone()), flags.partition)
            })
        })
        .collect();
    SupervisorSpec {
        flags: super::Flags {
            strategy: Strategy::OneForOne,
            ..super::Flags::default()
        },
        children,
    }
}

/// Starts a partition supervisor registered as `name`.
pub async fn start_partitioned(
    flags: PartitionFlags,
    name: impl Into<String>,
) -> Result<PartitionSupervisorRef, StartError> {
    let name = name.into();
    let top = partition_spec(&name, flags).start_named(&name).await?;
    Ok(PartitionSupervisorRef::new(top, &name, flags.partitions))
}

fn partition_name(name: &str, index: usize) -> String {
    format!("{name}.{index}")
}

impl PartitionSupervisorRef {
    fn new(top: SupervisorRef, name: &str, partitions: usize) -> Self {
        let partitions = (0..partitions.max(1))
            .map(|index| partition_name(name, index))
            .collect();
        Self { top, partitions }
    }

    /// The partition supervisor registered as `name`, if it runs; its partition count is
    /// read from it, so keys route as they do for the handle [`start_partitioned`] gave.
    pub async fn whereis(name: &str) -> Option<Self> {
        let top = SupervisorRef::whereis(name)?;
        let partitions = top.count_children().await.ok()?.specs;
        Some(Self::new(top, name, partitions))
    }

    /// How many partitions.
    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// The partition `key` routes to (Elixir's `{:via, PartitionSupervisor, {name,
    /// key}}`): the same key always goes to the same partition. `None` while that
    /// partition is being restarted.
    pub fn partition(&self, key: &impl Hash) -> Option<DynamicSupervisorRef> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let index = (hasher.finish() % self.partitions.len() as u64) as usize;
        DynamicSupervisorRef::whereis(&self.partitions[index])
    }

    /// Starts a child in the partition `key` routes to.
    pub async fn start_child(
        &self,
        key: &impl Hash,
        spec: ChildSpec,
    ) -> Result<Option<ActorCell>, SupervisorError> {
        let partition = self
            .partition(key)
            .ok_or_else(|| SupervisorError::Call(crate::CallError::NoProc))?;
        partition.start_child(spec).await
    }

    /// Stops a child, whichever partition it is in.
    pub async fn terminate_child(&self, pid: ActorId) -> Result<(), SupervisorError> {
        for partition in self.running() {
            match partition.terminate_child(pid).await {
                Err(SupervisorError::NotFound(_)) => continue,
                outcome => return outcome,
            }
        }
        Err(SupervisorError::NotFound(pid.to_string()))
    }

    /// Every partition's children, partition by partition.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        let mut children = Vec::new();
        for partition in self.running() {
            children.extend(partition.which_children().await?);
        }
        Ok(children)
    }

    /// The counts over all partitions (the partitions themselves not counted).
    pub async fn count_children(&self) -> Result<ChildCounts, SupervisorError> {
        let mut total = ChildCounts::default();
        for partition in self.running() {
            let counts = partition.count_children().await?;
            total.specs += counts.specs;
            total.active += counts.active;
            total.supervisors += counts.supervisors;
            total.workers += counts.workers;
        }
        Ok(total)
    }

    /// The supervisor of the partitions.
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.top
    }

    /// Stops every partition and its children.
    pub async fn stop(&self) -> Result<(), SupervisorError> {
        self.top.stop().await
    }

    fn running(&self) -> impl Iterator<Item = DynamicSupervisorRef> + '_ {
        self.partitions
            .iter()
            .filter_map(|name| DynamicSupervisorRef::whereis(name))
    }
}
