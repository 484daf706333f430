//! Stopping children: one at a time in reverse start order, or all at once for dynamic
//! supervisors, each within its shutdown budget.

use futures::future::join_all;

use super::{ChildRef, Shutdown, DEFAULT_WORKER_SHUTDOWN};
use crate::ExitReason;

/// Stops one child by its policy and returns once it and the processes it started are
/// gone. A child that outlives its budget is killed and reported (OTP's `shutdown_error`).
pub(crate) async fn stop_child(supervisor: &str, id: &str, child: ChildRef, policy: Shutdown) {
    let cell = child.cell();
    match policy {
        Shutdown::BrutalKill => cell.kill(),
        Shutdown::Timeout(budget) => {
            if child.request_stop(ExitReason::Shutdown) && cell.wait(Some(budget)).await.is_err() {
                super::report::shutdown_error(supervisor, id, budget);
                cell.kill();
            }
        }
        Shutdown::Infinity => {
            child.request_stop(ExitReason::Shutdown);
        }
    }
    let _ = cell.wait(None).await;
    subtree_gone(supervisor, id, child, policy).await;
}

/// Waits until an exited child's whole subtree is gone (see `gen_server/lineage.rs`): a
/// killed supervisor's children go a moment after it. Within the child's shutdown budget,
/// or the worker default if it has none; a subtree that outlives it is reported, and the
/// supervisor goes on.
pub(crate) async fn subtree_gone(supervisor: &str, id: &str, child: ChildRef, policy: Shutdown) {
    let budget = match policy {
        Shutdown::Timeout(budget) => budget,
        Shutdown::BrutalKill | Shutdown::Infinity => DEFAULT_WORKER_SHUTDOWN,
    };
    if !child.into_gone().wait(budget).await {
        tracing::error!(
            supervisor,
            child = id,
            budget_ms = budget.as_millis() as u64,
            "processes the child started outlived it past its budget; going on"
        );
    }
}

/// Stops many children concurrently (dynamic supervisors: "no particular order").
pub(crate) async fn stop_all<'a>(
    supervisor: &str,
    children: impl IntoIterator<Item = (&'a str, ChildRef, Shutdown)>,
) {
    join_all(
        children
            .into_iter()
            .map(|(id, child, policy)| stop_child(supervisor, id, child, policy)),
    )
    .await;
}
