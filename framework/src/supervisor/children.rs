//! A supervisor's bookkeeping, the same for static and dynamic supervisors: its children in
//! start order, each with its spec and status, found by place, by process (an index) or by
//! id (a scan: ids matter to static supervisors, which have few children).

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeBounds;
use std::sync::{Arc, Weak};

use ractor::ActorId;

use super::{ChildCounts, ChildInfo, ChildProcess, ChildRef, ChildSpec, ChildType};

/// A child's place in the start order. It stays the child's while the supervisor keeps
/// its spec (a restart keeps its place, as in OTP), so a queued retry can name it.
pub(super) type Place = u64;

/// One child: how to start it and what it is doing.
pub(super) struct Child {
    /// Shared by the children started from copies of one spec (a dynamic supervisor's
    /// thousands of children, typically): a child's record is then a few words.
    pub spec: Arc<ChildSpec>,
    status: Status,
    /// Times it was started again since it was added (by a restart, its own or a
    /// sibling's, or by `restart_child`): what an observer shows of a child's trouble.
    restarts: u32,
}

/// What a child is doing (OTP: a pid, `restarting` or `undefined`).
///
/// A child not running keeps the process it last ran as, if any: while its restart is
/// pending, that process id still names it (OTP's `{restarting, OldPid}`), so
/// `terminate_child` can stop the retrying.
enum Status {
    Running(ChildRef),
    /// A restart failed and is queued for another try.
    Restarting(Option<ActorId>),
    /// Not running: exited without restart, terminated by request, or stopped for a
    /// sibling's restart and not yet started again.
    Stopped(Option<ActorId>),
}

impl Status {
    /// The process it runs as, or last ran as.
    fn last(&self) -> Option<ActorId> {
        match self {
            Status::Running(running) => Some(running.cell().get_id()),
            Status::Restarting(last) | Status::Stopped(last) => *last,
        }
    }
}

#[derive(Default)]
pub(super) struct Children {
    /// In start order: starting goes forwards, stopping backwards.
    ordered: BTreeMap<Place, Child>,
    /// The running children by process: an exit names only the process, and a dynamic
    /// supervisor may hold many thousands of children.
    running: HashMap<ActorId, Place>,
    /// The children whose restart is pending, by the process they last ran as.
    restarting: HashMap<ActorId, Place>,
    /// The place the next added child takes: after every other.
    next: Place,
    /// The spec of the child added last, shared with the next if it is a copy. Weak: a
    /// spec (and what its start function holds) goes with the last child started from it.
    last_spec: Weak<ChildSpec>,
}

impl Children {
    /// Adds a child after all the others: running, or not (it ignored its start).
    pub fn push(&mut self, spec: ChildSpec, running: Option<ChildRef>) -> Place {
        let place = self.next;
        self.next += 1;
        if let Some(running) = &running {
            self.running.insert(running.cell().get_id(), place);
        }
        let status = running.map_or(Status::Stopped(None), Status::Running);
        let spec = match self.last_spec.upgrade() {
            Some(last) if last.is_copy_of(&spec) => last,
            _ => Arc::new(spec),
        };
        self.last_spec = Arc::downgrade(&spec);
        let child = Child {
            spec,
            status,
            restarts: 0,
        };
        self.ordered.insert(place, child);
        place
    }

    /// Whether a significant child is running or about to run again.
    pub fn any_significant_alive(&self) -> bool {
        self.ordered
            .values()
            .any(|child| child.spec.significant && !matches!(child.status, Status::Stopped(_)))
    }

    pub fn len(&self) -> usize {
        self.ordered.len()
    }

    pub fn get(&self, place: Place) -> Option<&Child> {
        self.ordered.get(&place)
    }

    /// The first child with this id (ids are unique in static supervisors).
    pub fn place_of_id(&self, id: &str) -> Option<Place> {
        self.ordered
            .iter()
            .find_map(|(place, child)| (child.spec.id == id).then_some(*place))
    }

    /// The child running as this process, or whose restart is pending after it ran as it.
    pub fn place_of_process(&self, pid: ActorId) -> Option<Place> {
        self.running
            .get(&pid)
            .or_else(|| self.restarting.get(&pid))
            .copied()
    }

    /// The child running as this process (an exit from any other process is stale).
    pub fn place_of_running(&self, pid: ActorId) -> Option<Place> {
        self.running.get(&pid).copied()
    }

    /// The places in `range`, in start order.
    pub fn places(&self, range: impl RangeBounds<Place>) -> Vec<Place> {
        self.ordered.range(range).map(|(place, _)| *place).collect()
    }

    pub fn remove(&mut self, place: Place) {
        self.mark_stopped(place);
        self.ordered.remove(&place);
    }

    /// Marks the child stopped, cancelling a pending restart, and hands over its process if
    /// it ran: the caller stops it, or it has already exited.
    pub fn mark_stopped(&mut self, place: Place) -> Option<ChildRef> {
        let child = self.ordered.get_mut(&place)?;
        let last = child.status.last();
        match std::mem::replace(&mut child.status, Status::Stopped(last)) {
            Status::Running(running) => {
                self.running.remove(&running.cell().get_id());
                Some(running)
            }
            Status::Restarting(last) => {
                if let Some(last) = last {
                    self.restarting.remove(&last);
                }
                None
            }
            Status::Stopped(_) => None,
        }
    }

    pub fn set_running(&mut self, place: Place, running: ChildRef) {
        if let Some(child) = self.ordered.get_mut(&place) {
            if let Status::Restarting(Some(last)) = child.status {
                self.restarting.remove(&last);
            }
            self.running.insert(running.cell().get_id(), place);
            child.status = Status::Running(running);
            child.restarts += 1;
        }
    }

    pub fn set_restarting(&mut self, place: Place) {
        if let Some(child) = self.ordered.get_mut(&place) {
            let last = child.status.last();
            child.status = Status::Restarting(last);
            if let Some(last) = last {
                self.restarting.insert(last, place);
            }
        }
    }

    pub fn is_restarting(&self, place: Place) -> bool {
        self.get(place)
            .is_some_and(|child| matches!(child.status, Status::Restarting(_)))
    }

    /// What `which_children` reports, in start order.
    pub fn infos(&self) -> Vec<ChildInfo> {
        self.ordered.values().map(Child::info).collect()
    }

    /// What `count_children` reports.
    pub fn counts(&self) -> ChildCounts {
        let mut counts = ChildCounts {
            specs: self.ordered.len(),
            active: self.running.len(),
            ..ChildCounts::default()
        };
        for child in self.ordered.values() {
            match child.spec.kind {
                ChildType::Worker => counts.workers += 1,
                ChildType::Supervisor => counts.supervisors += 1,
            }
        }
        counts
    }
}

impl Child {
    pub fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.spec.id.clone(),
            process: self.process(),
            kind: self.spec.kind,
            restarts: self.restarts,
        }
    }

    pub fn process(&self) -> ChildProcess {
        match &self.status {
            Status::Running(running) => ChildProcess::Running(running.server().clone()),
            Status::Restarting(_) => ChildProcess::Restarting,
            Status::Stopped(_) => ChildProcess::Undefined,
        }
    }
}
