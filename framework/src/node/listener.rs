//! Our own accept loop: ractor_cluster's listener sets no keepalive and, in TLS mode, runs
//! each handshake inline so one stalled client blocks every later accept. Public connections
//! come in here instead, and are handed to its `NodeServer` as external streams.
//!
//! Every link we make or accept also gets a [`Link`]: when its peer last sent us anything
//! (a link that is delivering data is alive, however late heartbeats queued behind that
//! data are), and a way to close it for certain, which ractor_cluster lacks.
//!
//! Before a connection reaches ractor_cluster, [`Admission`] decides whether it may take a
//! slot: caps per source address and overall on connections still authenticating and on
//! all connections, and a handshake deadline that shrinks as the slots fill. A connection
//! refused for load is told so with ractor_cluster's own `NOT_ALLOWED` status
//! ([`BUSY_FRAME`]), which a dialing node of ours reports as [`ConnectError::Busy`]
//! rather than as a cookie mismatch.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ractor::ActorRef;
use ractor_cluster::{BoxRead, BoxWrite, ClusterBidiStream, NodeServerMessage};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::{ConnectError, Tls, Traffic};

/// What a node sends a connection it refuses for load, before closing it: one
/// ractor_cluster frame (the length as a big-endian u64, then the protobuf
/// `NetworkMessage { auth: AuthenticationMessage { server_status: ServerStatus { status:
/// NOT_ALLOWED } } }`: field 1 of 4 bytes, holding field 2 of 2 bytes, holding field 1 =
/// 3). A ractor_cluster client ends its handshake on it. ractor_cluster's own server never
/// answers `NOT_ALLOWED` (only `OK`, `OK_SIMULTANEOUS`, `NOT_OK` or `ALIVE`), so a dialing
/// node whose peer sends this first knows it was turned away for load, not for its cookie.
pub(crate) const BUSY_FRAME: [u8; 14] = [0, 0, 0, 0, 0, 0, 0, 6, 0x0A, 4, 0x12, 2, 0x08, 3];

/// A connection must send its first bytes within this, or its handshake deadline if
/// shorter: a dialing node speaks at once, so a silent connection only holds a slot.
const FIRST_BYTES: Duration = Duration::from_secs(2);

/// The shortest handshake deadline that pressure brings (`auth_timeout` if that is
/// shorter): a node on the same continent authenticates in a few round trips.
pub(crate) const HANDSHAKE_FLOOR: Duration = Duration::from_millis(500);

/// A refused connection is closed after its peer has had this long to read the refusal
/// (what it sends meanwhile is read and dropped, so that closing sends no reset that could
/// destroy the refusal in flight); at most [`LINGERING`] at once, the rest at once.
const LINGER: Duration = Duration::from_secs(1);
const LINGERING: usize = 64;

/// At most one warning this often about refused and timed-out connections.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

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
    Tls(Box<tokio_rustls::TlsStream<Watched<TcpStream>>>),
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
    /// For a connection our listener let in: its place in the admission counts, given
    /// back when the link goes or the kernel is done with it.
    ticket: Mutex<Option<Ticket>>,
    /// For a link we dialed, while it is not yet known whether the peer's first bytes are
    /// [`BUSY_FRAME`]: those bytes so far.
    first_bytes: Mutex<Vec<u8>>,
    sniffing: AtomicBool,
    /// The peer refused us for load ([`BUSY_FRAME`]).
    busy: AtomicBool,
    /// What went each way, counted above TLS (what ractor_cluster sent and received), for
    /// the observer.
    traffic: Meter,
}

/// Bytes and ractor_cluster frames (messages, heartbeats and control alike) on one link.
#[derive(Default)]
struct Meter {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
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
    fn new(
        label: String,
        socket: Option<std::net::TcpStream>,
        direction: Direction,
        ticket: Option<Ticket>,
    ) -> Arc<Self> {
        let link = Arc::new(Self {
            label: label.clone(),
            last_read: AtomicU64::new(millis_since_epoch()),
            socket: Mutex::new(socket),
            ticket: Mutex::new(ticket),
            first_bytes: Mutex::new(Vec::new()),
            sniffing: AtomicBool::new(matches!(direction, Direction::Out)),
            busy: AtomicBool::new(false),
            traffic: Meter::default(),
        });
        lock(links()).insert(label, Arc::downgrade(&link));
        link
    }

    /// The connection goes to ractor_cluster: from now on it is a session for the
    /// admission counts, and a handshake the admission can close.
    fn hand_over(self: &Arc<Self>) {
        if let Some(ticket) = lock(&self.ticket).as_mut() {
            let admission = ticket.admission.clone();
            admission.hand_over(ticket, Arc::downgrade(self));
        }
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

    /// Whether our listener admitted this connection (so its caps already apply to it).
    pub(crate) fn admitted(&self) -> bool {
        lock(&self.ticket).is_some()
    }

    /// When an admitted connection's handshake must be done.
    pub(crate) fn handshake_deadline(&self) -> Option<Instant> {
        lock(&self.ticket).as_ref().map(|ticket| ticket.deadline)
    }

    /// The peer authenticated: the connection no longer counts as unauthenticated.
    pub(crate) fn authenticated(&self) {
        if let Some(ticket) = lock(&self.ticket).as_mut() {
            ticket.authenticated();
        }
    }

    /// The node is done with the connection: it no longer counts against any cap.
    pub(crate) fn release(&self) {
        let ticket = lock(&self.ticket).take();
        drop(ticket);
    }

    /// What went over the link so far.
    pub(crate) fn traffic(&self) -> Traffic {
        let t = &self.traffic;
        Traffic {
            bytes_in: t.bytes_in.load(Ordering::Relaxed),
            bytes_out: t.bytes_out.load(Ordering::Relaxed),
            messages_in: t.frames_in.load(Ordering::Relaxed),
            messages_out: t.frames_out.load(Ordering::Relaxed),
        }
    }

    /// Whether the peer of a link we dialed turned us away for load ([`BUSY_FRAME`]).
    pub(crate) fn refused_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    /// Looks at bytes the peer sent, for as long as they may still be [`BUSY_FRAME`].
    fn observe(&self, bytes: &[u8]) {
        if bytes.is_empty() || !self.sniffing.load(Ordering::Relaxed) {
            return;
        }
        let mut seen = lock(&self.first_bytes);
        let wanted = (BUSY_FRAME.len() - seen.len()).min(bytes.len());
        seen.extend_from_slice(&bytes[..wanted]);
        if !BUSY_FRAME.starts_with(&seen) {
            self.sniffing.store(false, Ordering::Relaxed);
            *seen = Vec::new();
        } else if seen.len() == BUSY_FRAME.len() {
            self.busy.store(true, Ordering::Relaxed);
            self.sniffing.store(false, Ordering::Relaxed);
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

/// A link's stream as it arrives (a plain read half, or the TCP stream under TLS): every
/// byte stamps the link as alive and is shown to it (a refusal for load comes before any
/// TLS, in the clear).
pub(crate) struct Watched<S> {
    inner: S,
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
            self.link.observe(&buf.filled()[before..]);
        }
        poll
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Watched<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// One half of a link, above TLS: counts its bytes and ractor_cluster frames (each is a
/// big-endian u64 length, then that many bytes) into its link's [`Meter`].
struct Counted<S> {
    inner: S,
    link: Arc<Link>,
    frames: FrameCounter,
}

impl<S> Counted<S> {
    fn new(inner: S, link: Arc<Link>) -> Self {
        Self {
            inner,
            link,
            frames: FrameCounter::default(),
        }
    }
}

/// Where a byte stream of frames is: inside a length prefix, or inside a frame's body.
#[derive(Default)]
struct FrameCounter {
    prefix: [u8; 8],
    prefix_len: usize,
    body_left: u64,
}

impl FrameCounter {
    /// Reads past `bytes`; answers how many frames began in them.
    fn feed(&mut self, mut bytes: &[u8]) -> u64 {
        let mut frames = 0;
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let skip = usize::try_from(self.body_left)
                    .map_or(bytes.len(), |left| left.min(bytes.len()));
                self.body_left -= skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            let take = (8 - self.prefix_len).min(bytes.len());
            self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&bytes[..take]);
            self.prefix_len += take;
            bytes = &bytes[take..];
            if self.prefix_len == 8 {
                self.prefix_len = 0;
                self.body_left = u64::from_be_bytes(self.prefix);
                frames += 1;
            }
        }
        frames
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            let frames = self.frames.feed(read);
            let traffic = &self.link.traffic;
            traffic
                .bytes_in
                .fetch_add(read.len() as u64, Ordering::Relaxed);
            traffic.frames_in.fetch_add(frames, Ordering::Relaxed);
        }
        poll
    }
}

impl<W: AsyncWrite + Unpin> Counted<W> {
    /// Counts what a write of `bufs` took: its first `written` bytes.
    fn wrote<'a>(&mut self, bufs: impl Iterator<Item = &'a [u8]>, mut written: usize) {
        let traffic = &self.link.traffic;
        traffic
            .bytes_out
            .fetch_add(written as u64, Ordering::Relaxed);
        for buf in bufs {
            if written == 0 {
                break;
            }
            let taken = written.min(buf.len());
            let frames = self.frames.feed(&buf[..taken]);
            traffic.frames_out.fetch_add(frames, Ordering::Relaxed);
            written -= taken;
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Counted<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = poll {
            self.wrote(std::iter::once(buf), written);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = poll {
            self.wrote(bufs.iter().map(|buf| &**buf), written);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl LabeledStream {
    /// Prepares a connected TCP stream (no Nagle delay, keepalive on, a fresh label) and,
    /// with TLS settings, runs the handshake within `deadline`. An accepted connection
    /// carries its admission `ticket`. A dialed one whose peer refuses it for load fails
    /// with [`ConnectError::Busy`] (under TLS; without, the refusal reaches the kernel
    /// through ractor_cluster's session, see [`Link::refused_busy`]).
    pub(crate) async fn establish(
        stream: TcpStream,
        direction: Direction,
        tls: Option<&Tls>,
        deadline: Duration,
        ticket: Option<Ticket>,
    ) -> Result<Self, ConnectError> {
        let failed = |e: std::io::Error| ConnectError::Tls(e.to_string());
        stream.set_nodelay(true).map_err(failed)?;
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_RETRIES);
        socket2::SockRef::from(&stream)
            .set_tcp_keepalive(&keepalive)
            .map_err(failed)?;
        socket2::SockRef::from(&stream)
            .set_tcp_user_timeout(Some(USER_TIMEOUT))
            .map_err(failed)?;
        let peer = stream.peer_addr().map_err(failed)?;
        let number = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let label = format!("{}#{number} {peer}", direction.as_str());
        let link = Link::new(label.clone(), duplicate(&stream), direction, ticket);
        let transport = match tls {
            None => Transport::Plain(stream),
            Some(tls) => {
                let stream = Watched {
                    inner: stream,
                    link: link.clone(),
                };
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
                    .map_err(|_| ConnectError::Tls("TLS handshake timed out".to_owned()))?
                    .map_err(|e| match link.refused_busy() {
                        true => ConnectError::Busy,
                        false => ConnectError::Tls(format!("TLS handshake failed: {e}")),
                    })?;
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
        let (read, write): (BoxRead, BoxWrite) = match self.transport {
            Transport::Plain(stream) => {
                let (read, write) = stream.into_split();
                let read = Watched {
                    inner: read,
                    link: link.clone(),
                };
                (Box::new(read), Box::new(write))
            }
            // The TCP stream under TLS is watched already (and holds the link).
            Transport::Tls(stream) => {
                let (read, write) = tokio::io::split(*stream);
                (Box::new(read), Box::new(write))
            }
        };
        (
            Box::new(Counted::new(read, link.clone())),
            Box::new(Counted::new(write, link)),
        )
    }

    fn peer_label(&self) -> Option<String> {
        Some(self.label.clone())
    }
}

/// What the accept loop needs from the node's configuration.
pub(crate) struct AcceptPolicy {
    pub(crate) tls: Option<Tls>,
    /// Who may take a slot, and for how long.
    pub(crate) admission: Arc<Admission>,
}

/// Accepts until aborted (the node stopping). Each connection is admitted or refused at
/// once, in this loop, and set up in its own task: a client that stalls holds only its own
/// task and slot, within its deadline.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    node_server: ActorRef<NodeServerMessage>,
    policy: AcceptPolicy,
) {
    let admission = policy.admission;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                admission.note(Noted::AcceptFailed(error.to_string()));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ticket = match admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                admission.note(Noted::Refused(refusal));
                admission.refuse(stream);
                continue;
            }
        };
        let (node_server, tls) = (node_server.clone(), policy.tls.clone());
        let admission = admission.clone();
        tokio::spawn(async move {
            // A dialing node speaks first; one that says nothing is not worth a handshake.
            let first_bytes = ticket.remaining().min(FIRST_BYTES);
            if !matches!(
                tokio::time::timeout(first_bytes, stream.readable()).await,
                Ok(Ok(()))
            ) {
                admission.note(Noted::TimedOut);
                return;
            }
            let deadline = ticket.remaining();
            let established = LabeledStream::establish(
                stream,
                Direction::In,
                tls.as_ref(),
                deadline,
                Some(ticket),
            )
            .await;
            match established {
                Ok(stream) => {
                    tracing::debug!(connection = stream.label(), "accepted");
                    stream.link.hand_over();
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

/// The caps our listener applies before a connection reaches ractor_cluster (see
/// [`NodeConfig`](super::NodeConfig) for each).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) max_unauthenticated: usize,
    pub(crate) max_connections_per_source: usize,
    pub(crate) max_unauthenticated_per_source: usize,
    pub(crate) auth_timeout: Duration,
}

/// Which of a node's limits turned a connection away ([`ConnectError::Refused`]); shown
/// as the [`NodeConfig`](super::NodeConfig) field that sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Its source has as many connections authenticating as it may.
    SourceUnauthenticated,
    /// Its source has as many connections as it may.
    SourceConnections,
    /// The node has as many connections authenticating as it may.
    Unauthenticated,
    /// The node has as many sessions as it may.
    Connections,
    /// The peer announced more processes than the node mirrors.
    PeerProcesses,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SourceUnauthenticated => "max_unauthenticated_per_source",
            Self::SourceConnections => "max_connections_per_source",
            Self::Unauthenticated => "max_unauthenticated",
            Self::Connections => "max_connections",
            Self::PeerProcesses => "max_peer_processes",
        })
    }
}

/// What the refusal log counts.
#[derive(Debug)]
pub(crate) enum Noted {
    Refused(Limit),
    /// Closed for not authenticating (or not speaking) in time.
    TimedOut,
    AcceptFailed(String),
}

/// The connections our listener let in, by source, and the caps on them. Shared by the
/// accept loop (admits), the links (hold the tickets) and the kernel (marks authenticated,
/// reads deadlines, flushes the log).
pub(crate) struct Admission {
    limits: Limits,
    counts: Mutex<Counts>,
    log: Mutex<Tally>,
    tickets: AtomicU64,
    /// Sessions the node holds that did not come through our listener (its own dials, and
    /// ractor_cluster's loopback listener): they count against `max_connections` too.
    others: std::sync::atomic::AtomicUsize,
    /// Refused connections being closed gracefully.
    lingering: Arc<Semaphore>,
}

#[derive(Default)]
struct Counts {
    /// Admitted connections handed to ractor_cluster (sessions): with the node's other
    /// sessions, they count against `max_connections`. One still waiting for its first
    /// bytes or its TLS handshake does not count yet (the handshake caps bound those).
    sessions: usize,
    /// Connections not authenticated yet, by ticket.
    handshakes: HashMap<u64, Handshake>,
    sources: HashMap<IpAddr, PerSource>,
}

struct Handshake {
    since: Instant,
    /// Once the connection reached ractor_cluster: a way to close it.
    link: Option<Weak<Link>>,
}

#[derive(Default, Clone, Copy)]
struct PerSource {
    connections: usize,
    unauthenticated: usize,
}

/// A connection's place in the admission counts; given back when dropped.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    source: IpAddr,
    deadline: Instant,
    authenticated: bool,
    handed_over: bool,
}

impl Ticket {
    /// What is left of the handshake deadline.
    pub(crate) fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn authenticated(&mut self) {
        if !self.authenticated {
            self.authenticated = true;
            self.admission.authenticated(self);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(self);
    }
}

/// The source a connection counts against: its IPv4 address, or the /64 network of an
/// IPv6 one (a single host commonly holds a whole /64).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(ip) => {
            let s = ip.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        ip => ip,
    }
}

/// How long a handshake admitted now may take, with `in_flight` others authenticating
/// out of `cap`: the full `auth_timeout` while at most half the slots are taken; beyond
/// that, shorter by the square of how far the fill is from half to full (gently at first,
/// steeply near full), down to [`HANDSHAKE_FLOOR`] with every slot taken. Under a flood of
/// connections that never authenticate, slots then turn over within about a second
/// instead of `auth_timeout`.
pub(crate) fn handshake_deadline(auth_timeout: Duration, in_flight: usize, cap: usize) -> Duration {
    let floor = HANDSHAKE_FLOOR.min(auth_timeout);
    if in_flight * 2 <= cap {
        return auth_timeout;
    }
    let pressure = ((in_flight * 2 - cap) as f64 / cap.max(1) as f64).min(1.0);
    auth_timeout - (auth_timeout - floor).mul_f64(pressure * pressure)
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::default(),
            log: Mutex::default(),
            tickets: AtomicU64::new(1),
            others: std::sync::atomic::AtomicUsize::new(0),
            lingering: Arc::new(Semaphore::new(LINGERING)),
        })
    }

    /// A slot for a connection from `peer`, or the cap that stands in the way. Admitting
    /// under pressure also closes handshakes older than the deadline that pressure allows.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Limit> {
        let source = source_of(peer);
        let limits = &self.limits;
        let now = Instant::now();
        let mut overdue = Vec::new();
        let deadline = {
            let mut counts = lock(&self.counts);
            let from_source = counts.sources.get(&source).copied().unwrap_or_default();
            if from_source.unauthenticated >= limits.max_unauthenticated_per_source {
                return Err(Limit::SourceUnauthenticated);
            }
            if from_source.connections >= limits.max_connections_per_source {
                return Err(Limit::SourceConnections);
            }
            if counts.handshakes.len() >= limits.max_unauthenticated {
                return Err(Limit::Unauthenticated);
            }
            if counts.sessions + self.others.load(Ordering::Relaxed) >= limits.max_connections {
                return Err(Limit::Connections);
            }
            let deadline = handshake_deadline(
                limits.auth_timeout,
                counts.handshakes.len(),
                limits.max_unauthenticated,
            );
            if deadline < limits.auth_timeout {
                overdue.extend(
                    counts
                        .handshakes
                        .values()
                        .filter(|h| now.duration_since(h.since) > deadline)
                        .filter_map(|h| h.link.as_ref()?.upgrade()),
                );
            }
            let id = self.tickets.fetch_add(1, Ordering::Relaxed);
            counts.handshakes.insert(
                id,
                Handshake {
                    since: now,
                    link: None,
                },
            );
            let entry = counts.sources.entry(source).or_default();
            entry.connections += 1;
            entry.unauthenticated += 1;
            (id, now + deadline)
        };
        // Outside the lock: dropping the last handle on a link gives its ticket back.
        for link in overdue {
            link.close();
            self.note(Noted::TimedOut);
        }
        Ok(Ticket {
            admission: self.clone(),
            id: deadline.0,
            source,
            deadline: deadline.1,
            authenticated: false,
            handed_over: false,
        })
    }

    /// How many sessions the node holds besides those admitted here.
    pub(crate) fn set_others(&self, sessions: usize) {
        self.others.store(sessions, Ordering::Relaxed);
    }

    /// The connection of `ticket` goes to ractor_cluster, over `link`.
    fn hand_over(&self, ticket: &mut Ticket, link: Weak<Link>) {
        if ticket.handed_over {
            return;
        }
        ticket.handed_over = true;
        let mut counts = lock(&self.counts);
        counts.sessions += 1;
        if let Some(handshake) = counts.handshakes.get_mut(&ticket.id) {
            handshake.link = Some(link);
        }
    }

    fn authenticated(&self, ticket: &Ticket) {
        let mut counts = lock(&self.counts);
        counts.handshakes.remove(&ticket.id);
        if let Some(source) = counts.sources.get_mut(&ticket.source) {
            source.unauthenticated = source.unauthenticated.saturating_sub(1);
        }
    }

    fn release(&self, ticket: &Ticket) {
        let mut counts = lock(&self.counts);
        if ticket.handed_over {
            counts.sessions = counts.sessions.saturating_sub(1);
        }
        if !ticket.authenticated {
            counts.handshakes.remove(&ticket.id);
        }
        if let Some(source) = counts.sources.get_mut(&ticket.source) {
            source.connections = source.connections.saturating_sub(1);
            if !ticket.authenticated {
                source.unauthenticated = source.unauthenticated.saturating_sub(1);
            }
            if source.connections == 0 {
                counts.sources.remove(&ticket.source);
            }
        }
    }

    /// Tells a connection it is refused for load ([`BUSY_FRAME`]) and closes it, after
    /// giving its peer a moment to read that.
    pub(crate) fn refuse(&self, stream: TcpStream) {
        let socket = socket2::SockRef::from(&stream);
        // A fresh socket's send buffer is empty: the frame goes out whole or not at all.
        let _ = socket.send(&BUSY_FRAME);
        let _ = socket.shutdown(std::net::Shutdown::Write);
        let Ok(permit) = self.lingering.clone().try_acquire_owned() else {
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let mut stream = stream;
            let mut sink = [0u8; 1024];
            let mut budget = 64 * 1024usize;
            let _ = tokio::time::timeout(LINGER, async {
                while let Ok(read @ 1..) = stream.read(&mut sink).await {
                    budget = budget.saturating_sub(read);
                    if budget == 0 {
                        break;
                    }
                }
            })
            .await;
        });
    }

    /// Counts a refusal, a timeout or an accept error; warns at most once per
    /// [`LOG_EVERY`], with what was counted since the last warning.
    pub(crate) fn note(&self, what: Noted) {
        let mut tally = lock(&self.log);
        tally.first.get_or_insert_with(Instant::now);
        match what {
            Noted::Refused(Limit::SourceUnauthenticated | Limit::SourceConnections) => {
                tally.per_source += 1
            }
            Noted::Refused(Limit::Unauthenticated) => tally.unauthenticated += 1,
            Noted::Refused(Limit::Connections) => tally.connections += 1,
            // Not a connection refused at the door: the kernel closes such a peer once its
            // session is up, and logs it there.
            Noted::Refused(Limit::PeerProcesses) => {}
            Noted::TimedOut => tally.timed_out += 1,
            Noted::AcceptFailed(error) => {
                tally.accept_errors += 1;
                tally.last_error = error;
            }
        }
        tally.warn_if_due();
    }

    /// Warns about what was counted, if a warning is due (called every second or so, so
    /// that the last of a burst is reported too).
    pub(crate) fn flush_log(&self) {
        lock(&self.log).warn_if_due();
    }

    /// Warns about what was counted since the last warning, due or not (the node stops).
    pub(crate) fn flush_log_now(&self) {
        let mut tally = lock(&self.log);
        tally.warned = None;
        tally.warn_if_due();
    }
}

/// Refusals and timeouts since the last warning.
#[derive(Default)]
struct Tally {
    /// When the last warning went out.
    warned: Option<Instant>,
    /// When the first event since then was counted.
    first: Option<Instant>,
    per_source: u64,
    unauthenticated: u64,
    connections: u64,
    timed_out: u64,
    accept_errors: u64,
    last_error: String,
}

impl Tally {
    fn warn_if_due(&mut self) {
        let Some(first) = self.first else {
            return;
        };
        if self
            .warned
            .is_some_and(|warned| warned.elapsed() < LOG_EVERY)
        {
            return;
        }
        let now = Instant::now();
        tracing::warn!("{}", self.summary(now.duration_since(first)));
        *self = Tally {
            warned: Some(now),
            ..Tally::default()
        };
    }

    fn summary(&self, over: Duration) -> String {
        let refused = self.per_source + self.unauthenticated + self.connections;
        let mut parts = Vec::new();
        if refused > 0 {
            let mut limits = Vec::new();
            for (count, limit) in [
                (self.per_source, "per source"),
                (self.unauthenticated, "unauthenticated"),
                (self.connections, "connections"),
            ] {
                if count > 0 {
                    limits.push(format!("{limit}: {}", thousands(count)));
                }
            }
            parts.push(format!(
                "refused {} connection{}: limits reached ({})",
                thousands(refused),
                plural(refused),
                limits.join(", ")
            ));
        }
        if self.timed_out > 0 {
            parts.push(format!(
                "closed {} that did not authenticate in time",
                thousands(self.timed_out)
            ));
        }
        if self.accept_errors > 0 {
            parts.push(format!(
                "{} accept error{} (last: {})",
                thousands(self.accept_errors),
                plural(self.accept_errors),
                self.last_error
            ));
        }
        let seconds = over.as_secs_f64().ceil().max(1.0);
        format!("{} in the last {seconds:.0} s", parts.join("; "))
    }
}

fn plural(count: u64) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// 1234567 as "1,234,567".
fn thousands(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_counted_however_the_stream_is_cut() {
        let mut stream = Vec::new();
        for body in [&b"hello"[..], b"", &[7u8; 300]] {
            stream.extend_from_slice(&(body.len() as u64).to_be_bytes());
            stream.extend_from_slice(body);
        }
        for cut in [1, 3, 8, 13, 64, stream.len()] {
            let mut counter = FrameCounter::default();
            let frames: u64 = stream.chunks(cut).map(|piece| counter.feed(piece)).sum();
            assert_eq!(frames, 3, "in pieces of {cut}");
            assert_eq!((counter.prefix_len, counter.body_left), (0, 0));
        }
    }

    #[tokio::test]
    async fn node_links_get_keepalive_and_no_nagle_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let stream =
            LabeledStream::establish(server, Direction::In, None, Duration::from_secs(1), None)
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
        let stream =
            LabeledStream::establish(server, Direction::In, None, Duration::from_secs(1), None)
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

    fn limits() -> Limits {
        Limits {
            max_connections: 6,
            max_unauthenticated: 4,
            max_connections_per_source: 3,
            max_unauthenticated_per_source: 2,
            auth_timeout: Duration::from_secs(5),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_handshake_deadline_shrinks_as_the_slots_fill() {
        let full = Duration::from_secs(5);
        assert_eq!(handshake_deadline(full, 0, 64), full);
        assert_eq!(
            handshake_deadline(full, 32, 64),
            full,
            "half full: no pressure"
        );
        assert_eq!(
            handshake_deadline(full, 48, 64),
            Duration::from_millis(3875)
        );
        assert_eq!(
            handshake_deadline(Duration::from_millis(1500), 3, 4),
            Duration::from_millis(1250)
        );
        assert_eq!(handshake_deadline(full, 64, 64), HANDSHAKE_FLOOR, "full");
        let mut last = full;
        for in_flight in 0..=64 {
            let deadline = handshake_deadline(full, in_flight, 64);
            assert!(deadline <= last && deadline >= HANDSHAKE_FLOOR);
            last = deadline;
        }
        // A deadline already under the floor is never lengthened.
        let short = Duration::from_millis(200);
        assert_eq!(handshake_deadline(short, 64, 64), short);
        assert_eq!(handshake_deadline(full, 1, 0), HANDSHAKE_FLOOR);
    }

    #[test]
    fn each_source_gets_its_own_caps_within_the_nodes() {
        let admission = Admission::new(limits());
        let first = admission.admit(ip("127.0.0.1")).unwrap();
        let second = admission.admit(ip("127.0.0.1")).unwrap();
        assert_eq!(
            admission.admit(ip("127.0.0.1")).err(),
            Some(Limit::SourceUnauthenticated)
        );
        // Another loopback address is another source.
        let other = admission.admit(ip("127.0.0.2")).unwrap();
        // An IPv4 address mapped into IPv6 is the same source.
        assert_eq!(
            admission.admit(ip("::ffff:127.0.0.1")).err(),
            Some(Limit::SourceUnauthenticated)
        );
        // Authenticating frees an unauthenticated slot, not the connection.
        let mut first = first;
        first.authenticated();
        let mut third = admission.admit(ip("127.0.0.1")).unwrap();
        third.authenticated();
        assert_eq!(
            admission.admit(ip("127.0.0.1")).err(),
            Some(Limit::SourceConnections),
            "one handshake slot free, but three connections"
        );
        // The node's own cap on handshakes: two are in flight (second, other).
        let _v6a = admission.admit(ip("2001:db8::1")).unwrap();
        let v6 = admission.admit(ip("2001:db9::1")).unwrap();
        assert_eq!(
            admission.admit(ip("2001:db8::2")).err(),
            Some(Limit::Unauthenticated),
            "the node's four handshake slots are taken"
        );
        // Dropping a ticket gives everything back.
        drop(second);
        // One IPv6 /64 is one source.
        let v6b = admission.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(
            admission.admit(ip("2001:db8::3")).err(),
            Some(Limit::SourceUnauthenticated)
        );
        assert_eq!(
            admission.admit(ip("10.0.0.1")).err(),
            Some(Limit::Unauthenticated)
        );
        drop((first, third, other, v6, v6b, _v6a));
        let counts = lock(&admission.counts);
        assert_eq!(counts.sessions, 0);
        assert!(counts.handshakes.is_empty() && counts.sources.is_empty());
    }

    #[test]
    fn the_node_wide_cap_on_connections_counts_sessions() {
        let admission = Admission::new(limits());
        // A session (authenticated or not) counts once it is handed to ractor_cluster.
        let session = |n: usize| {
            let mut ticket = admission.admit(ip(&format!("10.0.0.{n}"))).unwrap();
            ticket.authenticated();
            let link = Link::new(
                format!("test session {n}"),
                None,
                Direction::In,
                Some(ticket),
            );
            link.hand_over();
            link
        };
        let mut held: Vec<_> = (1..=6).map(session).collect();
        assert_eq!(
            admission.admit(ip("10.0.0.9")).err(),
            Some(Limit::Connections)
        );
        held.pop();
        held.push(session(9));
        // The node's other sessions (its own dials) take slots too.
        held.pop();
        admission.set_others(1);
        assert_eq!(
            admission.admit(ip("10.0.0.9")).err(),
            Some(Limit::Connections)
        );
        // A connection not handed over yet (waiting for its first bytes) does not.
        admission.set_others(0);
        let waiting = admission.admit(ip("10.0.0.9")).unwrap();
        assert!(admission.admit(ip("10.0.0.10")).is_ok());
        drop((waiting, held));
        assert_eq!(lock(&admission.counts).sessions, 0);
    }

    #[test]
    fn refusals_are_summed_up_in_one_line() {
        let mut tally = Tally {
            per_source: 1200,
            unauthenticated: 34,
            timed_out: 5,
            ..Tally::default()
        };
        assert_eq!(
            tally.summary(Duration::from_millis(9_500)),
            "refused 1,234 connections: limits reached (per source: 1,200, unauthenticated: 34); \
             closed 5 that did not authenticate in time in the last 10 s"
        );
        tally = Tally {
            connections: 1,
            ..Tally::default()
        };
        assert_eq!(
            tally.summary(Duration::ZERO),
            "refused 1 connection: limits reached (connections: 1) in the last 1 s"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn a_dialed_link_knows_the_busy_frame_however_it_arrives() {
        for split in 0..BUSY_FRAME.len() {
            let link = Link::new(format!("test busy {split}"), None, Direction::Out, None);
            link.observe(&BUSY_FRAME[..split]);
            assert!(!link.refused_busy());
            link.observe(&BUSY_FRAME[split..]);
            assert!(link.refused_busy(), "split at {split}");
        }
        // Anything else first: not busy, and no longer watched.
        let link = Link::new("test other".into(), None, Direction::Out, None);
        link.observe(&[0, 0, 0, 0, 0, 0, 0, 9]);
        link.observe(&BUSY_FRAME);
        assert!(!link.refused_busy());
        // Links we accepted never look.
        let link = Link::new("test in".into(), None, Direction::In, None);
        link.observe(&BUSY_FRAME);
        assert!(!link.refused_busy());
    }

    /// Reports how the actors it monitors end.
    struct Monitor(tokio::sync::mpsc::UnboundedSender<Option<String>>);

    impl ractor::Actor for Monitor {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(
            &self,
            _me: ActorRef<()>,
            _: (),
        ) -> Result<(), ractor::ActorProcessingErr> {
            Ok(())
        }

        async fn handle_supervisor_evt(
            &self,
            _me: ActorRef<()>,
            event: ractor::SupervisionEvent,
            _: &mut (),
        ) -> Result<(), ractor::ActorProcessingErr> {
            if let ractor::SupervisionEvent::ActorTerminated(_, _, reason) = event {
                let _ = self.0.send(reason);
            }
            Ok(())
        }
    }

    /// Sends ractor_cluster's new sessions to a test.
    struct Sessions(tokio::sync::mpsc::UnboundedSender<ractor::ActorCell>);

    impl ractor_cluster::NodeEventSubscription for Sessions {
        fn node_session_opened(&self, session: ractor_cluster::node::NodeServerSessionInformation) {
            let _ = self.0.send(session.actor.get_cell());
        }
        fn node_session_disconnected(&self, _: ractor_cluster::node::NodeServerSessionInformation) {
        }
        fn node_session_authenticated(
            &self,
            _: ractor_cluster::node::NodeServerSessionInformation,
        ) {
        }
    }

    /// The refusal is ractor_cluster's own `NOT_ALLOWED` status: a ractor_cluster session
    /// dialing through our stream ends its handshake on it ("auth_fail", not a closed
    /// connection: the refusing side holds the socket open here), and our link knows.
    #[tokio::test]
    async fn ractor_cluster_reads_the_busy_frame_as_not_allowed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (go, refuse) = tokio::sync::oneshot::channel::<()>();
        let refuser = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            refuse.await.unwrap();
            socket2::SockRef::from(&stream).send(&BUSY_FRAME).unwrap();
            // Held open, so only the frame can end the handshake.
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        });

        let server = ractor_cluster::NodeServer::new(
            0,
            "cookie".into(),
            "dialer".into(),
            "127.0.0.1".into(),
            None,
            Some(ractor_cluster::node::NodeConnectionMode::Isolated),
        )
        .with_listen_addr(std::net::Ipv4Addr::LOCALHOST.into());
        let (node, _) = ractor::Actor::spawn(None, server, ()).await.unwrap();
        let (sender, mut sessions) = tokio::sync::mpsc::unbounded_channel();
        node.cast(NodeServerMessage::SubscribeToEvents {
            id: "test".into(),
            subscription: Box::new(Sessions(sender)),
        })
        .unwrap();
        let (sender, mut ends) = tokio::sync::mpsc::unbounded_channel();
        let (monitor, _) = ractor::Actor::spawn(None, Monitor(sender), ())
            .await
            .unwrap();

        let stream = LabeledStream::establish(
            TcpStream::connect(address).await.unwrap(),
            Direction::Out,
            None,
            Duration::from_secs(5),
            None,
        )
        .await
        .unwrap();
        let link = Link::find(stream.label()).unwrap();
        node.cast(NodeServerMessage::ConnectionOpenedExternal {
            stream: Box::new(stream),
            is_server: false,
        })
        .unwrap();
        let patience = Duration::from_secs(10);
        let session = tokio::time::timeout(patience, sessions.recv())
            .await
            .unwrap()
            .unwrap();
        monitor.get_cell().monitor(session);
        go.send(()).unwrap();
        let reason = tokio::time::timeout(patience, ends.recv())
            .await
            .expect("the session ends")
            .unwrap();
        assert_eq!(reason.as_deref(), Some("auth_fail"));
        assert!(link.refused_busy());
        refuser.abort();
        node.stop(None);
        monitor.stop(None);
    }
}
