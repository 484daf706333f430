//! Our own accept loop: ractor_cluster's listener sets no keepalive and, in TLS mode, runs
//! each handshake inline so one stalled client blocks every later accept. Public connections
//! come in here instead, and are handed to its `NodeServer` as external streams.
//!
//! Every link we make or accept also gets a [`Link`]: when its peer last sent us anything
//! (a link that is delivering data is alive, however late heartbeats queued behind that
//! data are), and a way to close it for certain, which ractor_cluster lacks.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ractor::ActorRef;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeServerMessage};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::Tls;

/// How often keepalive probes go out on an idle node link, and after how many unanswered
/// ones the kernel drops it: a vanished host (not a frozen process, which the kernel still
/// answers for; see the liveness pings) is noticed within about 15 s.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_RETRIES: u32 = 5;

/// Data unacknowledged by the peer's kernel for this long fails the connection (Linux
/// `TCP_USER_TIMEOUT`): a writer stuck on a vanished host gives up.
const USER_TIMEOUT: Duration = Duration::from_secs(30);

/// A second descriptor of `stream`'s socket, to shut it down later.
fn duplicate(stream: &TcpStream) -> Option<std::net::TcpStream> {
    let socket = socket2::SockRef::from(stream).try_clone().ok()?;
    Some(socket.into())
}

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
    link: Arc<Link>,
}

/// What the node kernel can learn about, and do to, one link, whatever ractor_cluster does
/// with the stream. Found by the connection's label ([`Link::find`]); gone once both the
/// stream's reader and the kernel have let go of it.
pub(crate) struct Link {
    label: String,
    /// When the peer last sent bytes, in milliseconds since [`epoch`].
    last_read: AtomicU64,
    /// A second handle on the socket, to shut it down: that ends ractor_cluster's reader
    /// and writer tasks even when they wait on a peer that reads nothing (killing the
    /// session actor does not stop them; a writer stuck on a full socket would hold the
    /// connection and its whole backlog forever).
    socket: Mutex<Option<std::net::TcpStream>>,
}

/// Links by label, for the kernel to find when ractor_cluster reports a session.
fn links() -> &'static Mutex<HashMap<String, Weak<Link>>> {
    static LINKS: OnceLock<Mutex<HashMap<String, Weak<Link>>>> = OnceLock::new();
    LINKS.get_or_init(Mutex::default)
}

/// The zero of [`Link::last_read`].
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Link {
    fn new(label: String, socket: Option<std::net::TcpStream>) -> Arc<Self> {
        let link = Arc::new(Self {
            label: label.clone(),
            last_read: AtomicU64::new(millis_since_epoch()),
            socket: Mutex::new(socket),
        });
        lock(links()).insert(label, Arc::downgrade(&link));
        link
    }

    /// The link of the connection labeled so, while it is open.
    pub(crate) fn find(label: &str) -> Option<Arc<Link>> {
        lock(links()).get(label).and_then(Weak::upgrade)
    }

    /// Links whose connection is still held by someone.
    pub(crate) fn count() -> usize {
        lock(links())
            .values()
            .filter(|link| link.strong_count() > 0)
            .count()
    }

    /// How long since the peer last sent anything.
    pub(crate) fn silent_for(&self) -> Duration {
        let last = self.last_read.load(Ordering::Relaxed);
        Duration::from_millis(millis_since_epoch().saturating_sub(last))
    }

    /// Shuts the connection down both ways: pending reads end, pending writes fail, so
    /// whoever holds the stream lets go of it.
    pub(crate) fn close(&self) {
        if let Some(socket) = lock(&self.socket).take() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let mut links = lock(links());
        if links
            .get(&self.label)
            .is_some_and(|l| l.strong_count() == 0)
        {
            links.remove(&self.label);
        }
    }
}

fn millis_since_epoch() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The read half of a link: notes when bytes arrive.
struct Watched<R> {
    inner: R,
    link: Arc<Link>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Watched<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.link
                .last_read
                .store(millis_since_epoch(), Ordering::Relaxed);
        }
        poll
    }
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
        socket2::SockRef::from(&stream)
            .set_tcp_user_timeout(Some(USER_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let peer = stream.peer_addr().map_err(|e| e.to_string())?;
        let number = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let label = format!("{}#{number} {peer}", direction.as_str());
        let link = Link::new(label.clone(), duplicate(&stream));
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
        Ok(Self {
            transport,
            label,
            link,
        })
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
        let link = self.link;
        match self.transport {
            Transport::Plain(stream) => {
                let (read, write) = stream.into_split();
                (Box::new(Watched { inner: read, link }), Box::new(write))
            }
            Transport::Tls(stream) => {
                let (read, write) = tokio::io::split(*stream);
                (Box::new(Watched { inner: read, link }), Box::new(write))
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

    #[tokio::test]
    async fn a_link_knows_when_its_peer_last_spoke_and_closes_for_certain() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let stream = LabeledStream::establish(server, Direction::In, None, Duration::from_secs(1))
            .await
            .unwrap();
        let link = Link::find(stream.label()).expect("registered under its label");
        let (mut read, _write) = Box::new(stream).split();

        // Reading the peer's bytes stamps the link.
        let unstamped = u64::MAX;
        link.last_read.store(unstamped, Ordering::Relaxed);
        client.write_all(b"hello").await.unwrap();
        let mut buffer = [0u8; 5];
        read.read_exact(&mut buffer).await.unwrap();
        assert_ne!(link.last_read.load(Ordering::Relaxed), unstamped);

        // A reader waiting on a silent peer ends once the link is closed.
        let pending = tokio::spawn(async move { read.read(&mut buffer).await });
        link.close();
        let ended = tokio::time::timeout(Duration::from_secs(5), pending)
            .await
            .expect("the reader ends")
            .unwrap();
        assert!(matches!(ended, Ok(0) | Err(_)), "{ended:?}");
        let mut rest = Vec::new();
        assert_eq!(
            client.read_to_end(&mut rest).await.unwrap(),
            0,
            "the peer sees the close"
        );
    }
}
