//! How a supervisor knows that a child's whole subtree is gone, not just the child.
//!
//! ractor ends a killed actor at once and only *signals* its linked children to die, after
//! unlinking them: they go a moment later, on their own. A parent that restarted the child
//! then could find a grandchild still holding a name or a socket the new instance needs,
//! fail the restart, retry through the mailbox at once and spend its whole restart
//! intensity in a millisecond (OTP-9212's killed middle supervisor). In OTP a supervisor's
//! exit completes only when its children are gone; this is how we get the same.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

/// Held by a started child's process, outside the state its exit hands over, so it goes
/// only when the process is gone. Each process the child starts holds a lineage of its
/// own that holds this one: the last process of the subtree to go drops it, and that
/// completes the parent's [`Gone`].
pub(crate) struct Lineage {
    /// Dropping it completes the parent's [`Gone`].
    _gone: oneshot::Sender<()>,
    /// The lineage of the process that started this one, kept alive by this subtree.
    _up: Option<Arc<Lineage>>,
}

/// The parent's half: completes once the child and everything it started are gone.
#[derive(Debug)]
pub(crate) struct Gone(oneshot::Receiver<()>);

impl Lineage {
    /// A lineage for a child started by the holder of `up` (`None` under a root).
    pub fn new(up: Option<Arc<Lineage>>) -> (Arc<Self>, Gone) {
        let (gone, receiver) = oneshot::channel();
        let lineage = Self {
            _gone: gone,
            _up: up,
        };
        (Arc::new(lineage), Gone(receiver))
    }
}

impl Gone {
    /// Waits until the subtree is gone, at most `budget`; false if it was not by then.
    pub async fn wait(mut self, budget: Duration) -> bool {
        if let Err(oneshot::error::TryRecvError::Closed) = self.0.try_recv() {
            return true;
        }
        tokio::time::timeout(budget, self.0).await.is_ok()
    }
}
