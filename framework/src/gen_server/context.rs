//! What a server knows about itself inside its callbacks (OTP's `self()` and its monitors).

use std::collections::HashSet;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ractor::{ActorCell, ActorId, ActorStatus};

use super::{GenServer, InfoOf, Lineage, RequestOf, ServerRef, Timeout};
use crate::{CallError, ExitReason};

/// The `me` every callback receives: the server's own [`ServerRef`] (it derefs to it, so
/// `me.cast(..)` works), its own info messages typed, and what only the process itself may
/// do, such as monitoring others.
pub struct Context<G: GenServer> {
    me: ServerRef<G::Protocol>,
    /// Processes this server monitors. An exit event from one of them is a DOWN, from anyone
    /// else an EXIT of a linked child; removing on delivery makes each DOWN arrive once.
    /// A mutex (never contended: only this process touches it) because callbacks get `&self`.
    /// Made on the first monitor: most servers monitor nothing.
    monitors: Mutex<Monitored>,
    /// This process's lineage under its supervisor, for the children it starts to hold.
    /// Weak: the context lives in the state, which outlives the process in its exit event.
    lineage: Weak<Lineage>,
    /// What the running callback asked for after it: work to continue with, an idle
    /// timeout. `asked` says whether there is any, so that the common case (nothing) costs
    /// one load per message instead of a lock.
    after: Mutex<After<InfoOf<G>>>,
    asked: AtomicBool,
}

/// The monitored processes, boxed on purpose: an empty set is 48 bytes in every process's
/// state, a box 8 until the first monitor.
#[allow(clippy::box_collection)]
type Monitored = Option<Box<HashSet<ActorId>>>;

/// What a callback asked for to happen once it returns.
pub(crate) struct After<M> {
    /// `handle_continue` runs with it before the next message (`{continue, C}`).
    pub continuation: Option<M>,
    /// A `timeout` info if no message comes within it (`{noreply, S, Timeout}`).
    pub idle: Option<Duration>,
}

impl<G: GenServer> Context<G> {
    pub(crate) fn new(me: ServerRef<G::Protocol>, lineage: Option<&Arc<Lineage>>) -> Self {
        Self {
            me,
            monitors: Mutex::new(None),
            lineage: lineage.map_or_else(Weak::new, Arc::downgrade),
            after: Mutex::new(After {
                continuation: None,
                idle: None,
            }),
            asked: AtomicBool::new(false),
        }
    }

    /// Runs `handle_continue(work)` right after the current callback returns, before any
    /// queued message (OTP's `{continue, C}`, from `init` or any callback). One per
    /// callback: a second call replaces the first.
    pub fn continue_with(&self, work: InfoOf<G>) {
        self.lock_after().continuation = Some(work);
        self.asked.store(true, Ordering::Release);
    }

    /// If no message arrives within `after` once the current callback returns, the server
    /// gets [`Info::Timeout`](crate::Info::Timeout) (OTP's `{noreply, S, Timeout}`). Any
    /// message ends the wait; each callback sets its own. A `sys` request does not: the
    /// timer stops while it is handled (for a suspension, until the resume) and the full
    /// timeout starts again after, as OTP's `system_continue` does.
    pub fn idle_timeout(&self, after: Duration) {
        self.lock_after().idle = Some(after);
        self.asked.store(true, Ordering::Release);
    }

    /// Whether the callback that just returned asked for anything after it.
    #[inline]
    pub(crate) fn asked_after(&self) -> bool {
        self.asked.load(Ordering::Acquire)
    }

    /// What the callback that just returned asked for, if anything.
    pub(crate) fn take_after(&self) -> Option<After<InfoOf<G>>> {
        if !self.asked.swap(false, Ordering::Acquire) {
            return None;
        }
        let mut after = self.lock_after();
        Some(After {
            continuation: after.continuation.take(),
            idle: after.idle.take(),
        })
    }

    fn lock_after(&self) -> std::sync::MutexGuard<'_, After<InfoOf<G>>> {
        // Poisoned only if a callback panicked mid-assignment; the value is still whole.
        self.after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The lineage the children this process starts hold (`None` for a root process).
    pub(crate) fn lineage(&self) -> Option<Arc<Lineage>> {
        self.lineage.upgrade()
    }

    /// This server's own handle, to keep or hand out.
    pub fn server(&self) -> &ServerRef<G::Protocol> {
        &self.me
    }

    /// A call to itself would wait for its own answer: through `me` it fails at once
    /// instead, with [`CallError::CallingSelf`], as OTP's `gen_server:call` exits with
    /// `calling_self`. (Through another handle to itself, a `Named` or a kept `ServerRef`,
    /// it is not caught and waits for its timeout: catching that would cost every message;
    /// see the README, "Where we differ".)
    pub async fn call<R: RequestOf<G::Protocol>>(
        &self,
        _request: R,
    ) -> Result<R::Reply, CallError> {
        Err(CallError::CallingSelf)
    }

    /// As [`call`](Self::call): fails at once with [`CallError::CallingSelf`].
    pub async fn call_timeout<R: RequestOf<G::Protocol>>(
        &self,
        _request: R,
        _timeout: impl Into<Timeout>,
    ) -> Result<R::Reply, CallError> {
        Err(CallError::CallingSelf)
    }

    /// Monitors `target` (`erlang:monitor(process, Target)`): when it exits, this server gets
    /// [`Info::Down`](crate::Info::Down) with the reason, once. Monitoring a process that is
    /// already gone delivers a DOWN with [`ExitReason::NoProc`](crate::ExitReason::NoProc).
    pub fn monitor(&self, target: impl Into<ActorCell>) {
        let target: ActorCell = target.into();
        let id = target.get_id();
        self.watch(id);
        self.me.actor().monitor(target.clone());
        // ractor snapshots an exiting actor's monitors once it is `Stopping`: if that
        // happened before our registration, no event will come. Wait for the end of its exit
        // and then check, through the mailbox, whether the event arrived after all.
        if target.get_status() >= ActorStatus::Stopping {
            let me = self.me.clone();
            tokio::spawn(async move {
                let _ = target.wait(None).await;
                let _ = me.send_down(id, ExitReason::NoProc);
            });
        }
    }

    /// Monitors something that is not a local process, such as a server on another node
    /// (the distribution layer builds its remote monitors on this): when `exited`
    /// completes, this server gets one [`Info::Down`](crate::Info::Down) with `id` and the
    /// reason, unless it demonitored `id` first ([`demonitor_id`](Self::demonitor_id)).
    /// `id` names the monitored thing in that DOWN; it must not be a local process this
    /// server also monitors or links.
    pub fn monitor_with(
        &self,
        id: ActorId,
        exited: impl Future<Output = ExitReason> + Send + 'static,
    ) {
        self.watch(id);
        let me = self.me.clone();
        tokio::spawn(async move {
            let reason = exited.await;
            me.send_down(id, reason);
        });
    }

    /// Stops monitoring `target`; a DOWN not yet handled is not delivered.
    pub fn demonitor(&self, target: impl Into<ActorCell>) {
        let target: ActorCell = target.into();
        self.forget_monitor(target.get_id());
        self.me.actor().unmonitor(target);
    }

    /// Stops a monitor set up with [`monitor_with`](Self::monitor_with); its DOWN, if not
    /// handled yet, is not delivered.
    pub fn demonitor_id(&self, id: ActorId) {
        self.forget_monitor(id);
    }

    /// Removes `id` from the monitor set; true if it was monitored.
    pub(crate) fn forget_monitor(&self, id: ActorId) -> bool {
        self.lock()
            .as_mut()
            .is_some_and(|monitored| monitored.remove(&id))
    }

    /// Called as the server exits: its monitors die with it.
    pub(crate) fn drop_monitors(&self) {
        *self.lock() = None;
    }

    fn watch(&self, id: ActorId) {
        self.lock().get_or_insert_default().insert(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Monitored> {
        // A poisoned set only means a callback panicked mid-insert; the set is still valid.
        self.monitors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<G: GenServer> Deref for Context<G> {
    type Target = ServerRef<G::Protocol>;

    fn deref(&self) -> &ServerRef<G::Protocol> {
        &self.me
    }
}
