//! Our own accept loop: ractor_cluster's listener sets no keepalive and, in TLS mode, runs
//! each handshake inline so one stalled client blocks every later accept. Public connections
//! come in here instead, and are handed to its `NodeServer` as external streams.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeServerMessage};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::Tls;

/// How often keepalive probes go out on an idle node link, and after how many unanswered
/// ones the kernel drops it: a vanished host (not a frozen process, which the kernel still
/// answers for; see the liveness pings) is noticed within about 15 s.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 5;

/// Numbers connections so that session events can be matched to them.
static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

/// A connection with the label the node kernel knows it by.
pub(crate) struct LabeledStream {
    transport: Transport,
    label: String,
}

impl LabeledStream {
    /// Prepares a connected TCP stream (no Nagle delay, keepalive on, a fresh label) and,
    /// with TLS settings, runs the handshake within `deadline`.
    pub(crate) async fn establish(
        stream: TcpStream,
        direction: Direction,
        tls: Option<&Tls>,
        deadline: Duration,
    ) -> Result<Self, String> {
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_RETRIES);
        socket2::SockRef::from(&stream)
            .set_tcp_keepalive(&keepalive)
            .map_err(|e| e.to_string())?;
        let peer = stream.peer_addr().map_err(|e| e.to_string())?;
        let number = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let label = format!("{}#{number} {peer}", direction.as_str());
        let transport = match tls {
            None => Transport::Plain(stream),
            Some(tls) => {
                let handshake = async {
                    match direction {
                        Direction::In => tls.acceptor.accept(stream).await.map(Into::into),
                        Direction::Out => tls
                            .connector
                            .connect(tls.server_name.clone(), stream)
                            .await
                            .map(Into::into),
                    }
                };
                let stream = tokio::time::timeout(deadline, handshake)
                    .await
                    .map_err(|_| "TLS handshake timed out".to_owned())?
                    .map_err(|e| format!("TLS handshake failed: {e}"))?;
                Transport::Tls(Box::new(stream))
            }
        };
        Ok(Self { transport, label })
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }
}

/// Which side opened the connection.
#[derive(Clone, Copy)]
pub(crate) enum Direction {
    In,
    Out,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

impl ClusterBidiStream for LabeledStream {
    fn split(self: Box<Self>) -> (BoxRead, BoxWrite) {
        match self.transport {
            Transport::Plain(stream) => {
                let (read, write) = stream.into_split();
                (Box::new(read), Box::new(write))
            }
            Transport::Tls(stream) => {
                let (read, write) = tokio::io::split(*stream);
                (Box::new(read), Box::new(write))
            }
        }
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.label.clone())
    }
}

/// What the accept loop needs from the node's configuration.
pub(crate) struct AcceptPolicy {
    pub(crate) tls: Option<Tls>,
    /// Bound on a TLS handshake (the authentication deadline).
    pub(crate) handshake_deadline: Duration,
    /// Handshakes in flight at once; more are refused at accept.
    pub(crate) handshakes: Arc<Semaphore>,
}

/// Accepts until aborted (the node stopping). Each connection is set up in its own task,
/// so a client that stalls its TLS handshake holds only its own task, within the deadline.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    node_server: ActorRef<NodeServerMessage>,
    policy: AcceptPolicy,
) {
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
        let Ok(permit) = policy.handshakes.clone().try_acquire_owned() else {
            tracing::warn!(peer = ?stream.peer_addr().ok(), "connection refused: too many handshakes in flight");
            continue;
        };
        let (node_server, tls, deadline) = (
            node_server.clone(),
            policy.tls.clone(),
            policy.handshake_deadline,
        );
        tokio::spawn(async move {
            let established =
                LabeledStream::establish(stream, Direction::In, tls.as_ref(), deadline).await;
            drop(permit);
            match established {
                Ok(stream) => {
                    tracing::debug!(connection = stream.label(), "accepted");
                    let _ = node_server.cast(NodeServerMessage::ConnectionOpenedExternal {
                        stream: Box::new(stream),
                        is_server: true,
                    });
                }
                Err(error) => tracing::debug!(%error, "dropped a connection during set-up"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn node_links_get_keepalive_and_no_nagle_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let stream = LabeledStream::establish(server, Direction::In, None, Duration::from_secs(1))
            .await
            .unwrap();
        let Transport::Plain(socket) = &stream.transport else {
            panic!("plain transport expected");
        };
        let socket = socket2::SockRef::from(socket);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.keepalive_time().unwrap(), KEEPALIVE_IDLE);
        assert_eq!(socket.keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
        assert_eq!(socket.keepalive_retries().unwrap(), KEEPALIVE_RETRIES);
        assert!(socket.nodelay().unwrap());
        assert!(stream.label().starts_with("in#"));
        drop(client);
    }
}
