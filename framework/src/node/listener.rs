//! Our own accept loop: ractor_cluster's listener sets no keepalive and no limits, so public
//! connections come in here and are handed to its `NodeServer` as external streams.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeServerMessage};
use tokio::net::{TcpListener, TcpStream};

/// How often keepalive probes go out on an idle node link, and after how many unanswered
/// ones the kernel drops it: a vanished host (not a frozen process, which the kernel still
/// answers for; see the liveness pings) is noticed within about 15 s.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 5;

/// Numbers connections so that session events can be matched to them.
static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

/// A TCP stream with the label the node kernel knows it by.
pub(crate) struct LabeledStream {
    stream: TcpStream,
    label: String,
}

impl LabeledStream {
    /// Prepares a connected stream: no Nagle delay, keepalive on, a fresh label.
    pub(crate) fn new(stream: TcpStream, direction: &str) -> std::io::Result<Self> {
        stream.set_nodelay(true)?;
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_RETRIES);
        socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
        let peer = stream.peer_addr()?;
        let number = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            stream,
            label: format!("{direction}#{number} {peer}"),
        })
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }
}

impl ClusterBidiStream for LabeledStream {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        let (read, write) = self.stream.into_split();
        (Box::new(read), Box::new(write))
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.label.clone())
    }
}

/// Accepts until the listener fails or the task is aborted (the node stopping).
pub(crate) async fn accept_loop(listener: TcpListener, node_server: ActorRef<NodeServerMessage>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let stream = match LabeledStream::new(stream, "in") {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "dropped a connection that closed while being set up");
                continue;
            }
        };
        tracing::debug!(connection = stream.label(), "accepted");
        let opened = NodeServerMessage::ConnectionOpenedExternal {
            stream: Box::new(stream),
            is_server: true,
        };
        if node_server.cast(opened).is_err() {
            return;
        }
    }
}
