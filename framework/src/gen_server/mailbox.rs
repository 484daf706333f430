//! How many messages wait in a server's mailbox, for `sys` statistics.
//!
//! ractor does not expose its queues' length, so senders count: each message sent through
//! a [`ServerRef`](super::ServerRef) to a server whose statistics are on adds one, each it
//! handles takes one. Counting is off by default (OTP's `sys:statistics/2` is opt-in too):
//! then a send costs one relaxed load of [`COUNTING`]. While any server counts, every send
//! also looks its target up here. Messages already queued when counting began are not
//! counted (the count never goes below zero).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use ractor::ActorId;

/// How many servers count their mailbox now.
static COUNTING: AtomicUsize = AtomicUsize::new(0);

/// The counters of the servers that count, by process.
fn counters() -> &'static RwLock<HashMap<ActorId, Arc<AtomicUsize>>> {
    static COUNTERS: OnceLock<RwLock<HashMap<ActorId, Arc<AtomicUsize>>>> = OnceLock::new();
    COUNTERS.get_or_init(Default::default)
}

/// A message is on its way to `target`.
#[inline]
pub(crate) fn sent(target: ActorId) {
    if COUNTING.load(Ordering::Relaxed) == 0 {
        return;
    }
    let counters = counters()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(queued) = counters.get(&target) {
        queued.fetch_add(1, Ordering::Relaxed);
    }
}

/// The messages waiting for `id`, if it counts.
pub(crate) fn queued(id: ActorId) -> Option<usize> {
    let counters = counters()
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    counters
        .get(&id)
        .map(|queued| queued.load(Ordering::Relaxed))
}

/// A server's own counter, held while it counts.
#[derive(Debug)]
pub(crate) struct Counter {
    id: ActorId,
    queued: Arc<AtomicUsize>,
}

impl Counter {
    /// Starts counting the messages sent to `id` from now on.
    pub fn start(id: ActorId) -> Self {
        let queued = Arc::new(AtomicUsize::new(0));
        let mut counters = counters()
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if counters.insert(id, queued.clone()).is_none() {
            COUNTING.fetch_add(1, Ordering::Relaxed);
        }
        Self { id, queued }
    }

    /// The server took a message from its mailbox.
    pub fn handled(&self) {
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Messages waiting now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let mut counters = counters()
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if counters.remove(&self.id).is_some() {
            COUNTING.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
