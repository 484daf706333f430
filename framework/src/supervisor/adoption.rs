//! A dynamic supervisor's children started by the caller of `start_child`, then adopted.
//!
//! OTP's `supervisor:start_child/2` is a call: the supervisor runs the child's `init` and
//! records the child before it answers. That costs two wake-ups across threads per child,
//! and runs every child's `init` in the supervisor, one after another, however many
//! callers start children at once. A [`DynamicSupervisorRef`](super::DynamicSupervisorRef)
//! instead starts the child itself, linked to the supervisor (which gets its exit as for any
//! child), and leaves it here. The supervisor adopts what waits here before it does
//! anything else: answers a request, handles an exit, shuts down. So every request sees
//! each child whose start has returned, as with OTP's call.
//!
//! Two races, and how they end:
//! - *an exit before the adoption.* A child may die before its caller leaves it here, and
//!   ractor then delivers its exit first. An exit of a process the supervisor does not
//!   know, while starts are in flight, is kept; that child's adoption hands it back.
//! - *a start during the shutdown.* The supervisor closes this first: a start that has not
//!   begun fails, and the supervisor waits for those in flight, adopts them and stops them
//!   with the others.
//!
//! And one limit: at most [`BACKLOG`] children wait here. ractor hands a supervisor its
//! children's start and exit events before any request, so callers starting children
//! without pause could otherwise keep a request (a stop, say) waiting without end; a
//! start beyond the backlog asks the supervisor to adopt, and waits until it has.
//!
//! A dynamic supervisor with `max_children` starts through the call instead, where the
//! count is exact.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};

use ractor::ActorId;
use tokio::sync::Notify;

use super::{ChildRef, ChildSpec};
use crate::gen_server::Lineage;
use crate::ExitReason;

/// How many started children may wait for adoption (see the module docs).
const BACKLOG: usize = 256;

/// What a dynamic supervisor shares with the handles that start its children.
#[derive(Debug)]
pub(crate) struct Adoptions {
    /// The supervisor's name or id, for reports.
    pub label: String,
    /// The supervisor's lineage, for its children to hold (weak: a handle must not keep a
    /// dead supervisor's subtree from being gone).
    pub up: Weak<Lineage>,
    state: Mutex<State>,
    /// Wakes a closed supervisor when the last start in flight ends.
    settled: Notify,
    /// Wakes the starts waiting for room in the backlog.
    adopted: Notify,
}

#[derive(Default, Debug)]
struct State {
    /// The supervisor is shutting down: no new start.
    closed: bool,
    /// Starts begun and not yet left here or given up.
    in_flight: usize,
    /// Started children, in the order their starts returned.
    started: Vec<(ChildSpec, ChildRef)>,
    /// Exits of processes the supervisor did not know, kept while starts are in flight.
    early_exits: HashMap<ActorId, ExitReason>,
}

/// The supervisor is shutting down.
#[derive(Debug)]
pub(crate) struct Closed;

/// One start in flight; dropped without [`Start::started`], it is given up.
pub(crate) struct Start<'a> {
    adoptions: &'a Adoptions,
    done: bool,
}

/// What the supervisor adopts: the children, and the exits that came before them.
pub(crate) struct Adopted {
    pub children: Vec<(ChildSpec, ChildRef)>,
    pub exits: Vec<(ActorId, ExitReason)>,
}

impl Adoptions {
    pub fn new(label: String, up: Weak<Lineage>) -> Self {
        Self {
            label,
            up,
            state: Mutex::new(State::default()),
            settled: Notify::new(),
            adopted: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Begins a start, unless the supervisor is shutting down. With the backlog full,
    /// calls `wake_supervisor` and waits until it has adopted.
    pub async fn begin(&self, wake_supervisor: impl Fn()) -> Result<Start<'_>, Closed> {
        loop {
            let adopted = self.adopted.notified();
            {
                let mut state = self.lock();
                if state.closed {
                    return Err(Closed);
                }
                if state.started.len() + state.in_flight < BACKLOG {
                    state.in_flight += 1;
                    return Ok(Start {
                        adoptions: self,
                        done: false,
                    });
                }
            }
            wake_supervisor();
            adopted.await;
        }
    }

    /// Everything to adopt now, each child with its exit if it came first.
    pub fn take(&self) -> Adopted {
        let mut state = self.lock();
        let children = std::mem::take(&mut state.started);
        let exits = children
            .iter()
            .filter_map(|(_, child)| {
                let pid = child.cell().get_id();
                Some((pid, state.early_exits.remove(&pid)?))
            })
            .collect();
        if state.in_flight == 0 {
            // Every start has ended: what is left was an exit of a process already gone
            // from the supervisor's records (a stale one), as without adoption.
            state.early_exits.clear();
        }
        self.adopted.notify_waiters();
        Adopted { children, exits }
    }

    /// An exit of a process the supervisor does not know: kept if a start in flight may
    /// turn out to be that process. Given back if that child was left here since the
    /// supervisor last took: the supervisor handles it once it has adopted the child.
    pub fn unknown_exit(&self, pid: ActorId, reason: ExitReason) -> Option<ExitReason> {
        let mut state = self.lock();
        if state
            .started
            .iter()
            .any(|(_, child)| child.cell().get_id() == pid)
        {
            return Some(reason);
        }
        if state.in_flight > 0 {
            state.early_exits.insert(pid, reason);
        }
        None
    }

    /// No new start from now on; returns once the starts in flight have ended.
    pub async fn close(&self) {
        loop {
            let settled = self.settled.notified();
            {
                let mut state = self.lock();
                state.closed = true;
                if state.in_flight == 0 {
                    // Starts waiting for room learn that there is none.
                    self.adopted.notify_waiters();
                    return;
                }
            }
            settled.await;
        }
    }

    /// A start ended; true if its child has exited already (its supervisor must be told
    /// to adopt it: nothing else may wake it).
    fn end(&self, started: Option<(ChildSpec, ChildRef)>) -> bool {
        let mut state = self.lock();
        state.in_flight -= 1;
        let exited = started
            .as_ref()
            .is_some_and(|(_, child)| state.early_exits.contains_key(&child.cell().get_id()));
        state.started.extend(started);
        if state.in_flight == 0 && state.closed {
            self.settled.notify_waiters();
        }
        exited
    }
}

impl Start<'_> {
    /// The child started: it waits here for its supervisor. True if it has exited already:
    /// then the supervisor must be told to adopt it now.
    #[must_use]
    pub fn started(mut self, spec: ChildSpec, child: ChildRef) -> bool {
        self.done = true;
        self.adoptions.end(Some((spec, child)))
    }
}

impl Drop for Start<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.adoptions.end(None);
        }
    }
}

/// The dynamic supervisors that adopt, by process: how a handle found by name reaches one.
fn registry() -> &'static RwLock<HashMap<ActorId, Weak<Adoptions>>> {
    static REGISTRY: OnceLock<RwLock<HashMap<ActorId, Weak<Adoptions>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Makes `adoptions` reachable from the supervisor `pid`'s handles; forgotten with it.
pub(crate) fn register(pid: ActorId, adoptions: &Arc<Adoptions>) {
    let mut registry = registry()
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.retain(|_, adoptions| adoptions.strong_count() > 0);
    registry.insert(pid, Arc::downgrade(adoptions));
}

/// The adoptions of the supervisor `pid`, if it is a dynamic supervisor that adopts.
pub(crate) fn find(pid: ActorId) -> Option<Arc<Adoptions>> {
    let registry = registry()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.get(&pid)?.upgrade()
}
