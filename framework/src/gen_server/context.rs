//! What a server knows about itself inside its callbacks (OTP's `self()` and its monitors).

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::Mutex;

use ractor::{ActorCell, ActorId, ActorStatus};

use super::{Envelope, GenServer, ServerRef};

/// The `me` every callback receives: the server's own [`ServerRef`] (it derefs to it, so
/// `me.cast(..)`, `me.send_after(..)` work) plus what only the process itself may do, such as
/// monitoring others.
pub struct Context<G: GenServer> {
    me: ServerRef<G>,
    /// Processes this server monitors. An exit event from one of them is a DOWN, from anyone
    /// else an EXIT of a linked child; removing on delivery makes each DOWN arrive once.
    /// A mutex (never contended: only this process touches it) because callbacks get `&self`.
    monitors: Mutex<HashSet<ActorId>>,
}

impl<G: GenServer> Context<G> {
    pub(crate) fn new(me: ServerRef<G>) -> Self {
        Self {
            me,
            monitors: Mutex::new(HashSet::new()),
        }
    }

    /// This server's own handle, to keep or hand out.
    pub fn server(&self) -> &ServerRef<G> {
        &self.me
    }

    /// Monitors `target` (`erlang:monitor(process, Target)`): when it exits, this server gets
    /// [`Info::Down`](crate::Info::Down) with the reason, once. Monitoring a process that is
    /// already gone delivers a DOWN with [`ExitReason::NoProc`](crate::ExitReason::NoProc).
    pub fn monitor(&self, target: impl Into<ActorCell>) {
        let target: ActorCell = target.into();
        let id = target.get_id();
        self.lock().insert(id);
        self.me.actor().monitor(target.clone());
        // ractor snapshots an exiting actor's monitors once it is `Stopping`: if that
        // happened before our registration, no event will come. Wait for the end of its exit
        // and then check, through the mailbox, whether the event arrived after all.
        if target.get_status() >= ActorStatus::Stopping {
            let me = self.me.actor().clone();
            tokio::spawn(async move {
                let _ = target.wait(None).await;
                let _ = me.send_message(Envelope::MonitorGone(id));
            });
        }
    }

    /// Monitors a server on another node (`erlang:monitor(process, {Name, Node})`): this
    /// server gets one [`Info::Down`](crate::Info::Down) when that server exits (with its
    /// reason), or with [`ExitReason::NoConnection`](crate::ExitReason::NoConnection) if the
    /// link to its node drops first. Returns the id the DOWN will carry; fails with
    /// [`CallError::NoProc`](crate::CallError::NoProc) if the node exports no such server.
    pub fn monitor_remote<H>(
        &self,
        target: &crate::node::RemoteRef<H>,
    ) -> Result<ActorId, crate::CallError>
    where
        H: GenServer,
        H::Call: serde::Serialize,
        H::Cast: serde::Serialize,
        H::Reply: serde::de::DeserializeOwned,
    {
        let endpoint = target.endpoint().ok_or(crate::CallError::NoProc)?;
        let id = endpoint.get_id();
        self.lock().insert(id);
        let me = self.me.actor().clone();
        let watching = crate::node::watch(endpoint);
        tokio::spawn(async move {
            let reason = watching.await;
            let _ = me.send_message(Envelope::RemoteDown(id, reason));
        });
        Ok(id)
    }

    /// Stops monitoring `target`; a DOWN not yet handled is not delivered.
    pub fn demonitor(&self, target: impl Into<ActorCell>) {
        let target: ActorCell = target.into();
        self.lock().remove(&target.get_id());
        self.me.actor().unmonitor(target);
    }

    /// Removes `id` from the monitor set; true if it was monitored.
    pub(crate) fn forget_monitor(&self, id: ActorId) -> bool {
        self.lock().remove(&id)
    }

    /// Called as the server exits: its monitors die with it.
    pub(crate) fn drop_monitors(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<ActorId>> {
        // A poisoned set only means a callback panicked mid-insert; the set is still valid.
        self.monitors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<G: GenServer> Deref for Context<G> {
    type Target = ServerRef<G>;

    fn deref(&self) -> &ServerRef<G> {
        &self.me
    }
}
