//! Waiting in tests, in one place: every wait is for an event and bounded by [`PATIENCE`];
//! one that runs out fails the test, saying what it waited for. No test sleeps to let
//! something happen.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::PATIENCE;

/// How often [`eventually`] looks again.
const POLL: Duration = Duration::from_millis(10);

/// `future`'s output, or a test failure naming `what` after [`PATIENCE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The next message on `receiver`; a failure if none comes in time or its senders are gone.
pub async fn next<T>(what: &str, receiver: &mut UnboundedReceiver<T>) -> T {
    within(what, receiver.recv())
        .await
        .unwrap_or_else(|| panic!("{what}: the sender is gone"))
}

/// Looks at `check` until it gives a value, for states that change through another
/// process's work and announce it with no event (a census, a registry entry); a failure
/// naming `what` after [`PATIENCE`], with the last thing seen.
pub async fn eventually<T, S, F, Fut>(what: &str, mut check: F) -> T
where
    S: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) => assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last seen: {seen:?}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs an async test on two worker threads; for tests that run in a process of their own
/// (`rusty_fork_test!`: one node per OS process, see `distribution.rs`).
pub fn run(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(test)
}
