//! Small pieces processes that serve a port share (the node kernel, the observer): a task
//! tied to its owner's lifetime, and a listening socket that a killed predecessor may
//! still hold for a moment.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::BoxError;

/// A task that ends when this is dropped: a process keeps its accept loops here, so they
/// end with it however it ends (a kill skips `terminate`, but still drops the state).
pub(crate) struct AbortOnDrop(JoinHandle<()>);

impl AbortOnDrop {
    /// Runs `task` until this is dropped.
    pub(crate) fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(task))
    }

    /// Ends the task now.
    pub(crate) fn abort(&self) {
        self.0.abort();
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds a listener. A killed predecessor's socket closes moments after its state is
/// dropped, so "address in use" is retried for a short while before it counts.
pub(crate) async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => return Ok(listener),
            Err(error)
                if error.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => return Err(format!("cannot listen on {address}: {error}").into()),
        }
    }
}
