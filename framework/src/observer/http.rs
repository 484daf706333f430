//! The observer's HTTP side: its own accept loop (a cap on connections, each refused one
//! told so), hyper with tight limits on what a request may hold, and axum's routes.
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `/app.js`, `/style.css` | the page, embedded in the binary |
//! | `GET /events` | server-sent events: `history` (the node's last 5 minutes, once), `report` (backlog, then live), `snapshot` each second |
//! | `GET /api/process/{pid}` | one process's `sys` status (its `format_status`) |
//! | `POST /api/action` | an [`Action`], with `Authorization: Bearer <token>` |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::{self, Stream, StreamExt};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, Semaphore};
use tokio::task::JoinSet;

use super::actions::{Action, ActionError};
use super::feed::Feed;
use crate::supervisor::report;
use crate::sys;

/// A request's head (request line and headers) must fit in this: the page sends small
/// ones, so anything bigger is refused with 431.
const MAX_HEAD: usize = 16 * 1024;
/// At most this many headers (431 beyond).
const MAX_HEADERS: usize = 64;
/// A request's head must arrive within this, or the connection is closed (a slow sender
/// holds no slot for long).
const HEAD_WITHIN: Duration = Duration::from_secs(10);
/// An action's body is a small JSON object (413 beyond).
const MAX_BODY: usize = 4 * 1024;
/// An action's body must arrive within this once its head has (408 beyond).
const BODY_WITHIN: Duration = Duration::from_secs(10);
/// An action must be done within this (504 beyond): a supervisor's answer never times
/// out by itself (as OTP's), and a suspended one answers only system messages.
const ACTION_WITHIN: Duration = Duration::from_secs(10);

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// What every route shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) feed: Arc<Feed>,
    /// The access token actions need (and, off loopback, everything).
    pub(crate) token: Arc<str>,
    /// The address the observer listens on: off loopback, reading needs the token too, and
    /// on loopback the `Host` header must name it (a page from elsewhere cannot rebind a
    /// name of its own to 127.0.0.1 and read the node).
    pub(crate) address: SocketAddr,
}

impl Shared {
    fn token_ok(&self, given: Option<&str>) -> bool {
        given.is_some_and(|given| same(given.as_bytes(), self.token.as_bytes()))
    }

    /// Whether reading needs the token: when anyone on the network can reach the port.
    fn reads_need_token(&self) -> bool {
        !self.address.ip().is_loopback()
    }
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { page(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/events", get(events))
        .route("/api/process/{pid}", get(process_status))
        .route("/api/action", post(action))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "no such page: the observer serves /") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(shared.clone(), check_host))
        .layer(middleware::map_response(harden))
        .with_state(shared)
}

/// Every answer: the page runs only its own script, is never framed by another site
/// (which could trick a click), and its address is not passed on.
async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let policy = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn page(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A refusal: a status and one line saying what was wrong and what to do.
fn refuse(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// A refusal for want of the token.
fn unauthorized(why: &str) -> Response {
    let mut response = refuse(StatusCode::UNAUTHORIZED, why);
    let challenge = HeaderValue::from_static("Bearer realm=\"otp observer\"");
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}

/// On loopback, only requests for the observer's own host names are served.
async fn check_host(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    if shared.address.ip().is_loopback() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .and_then(|host| host.parse::<axum::http::uri::Authority>().ok());
        let local = host.is_some_and(|host| {
            let name = host.host();
            let port_ok = host.port().is_none() || host.port_u16().is_some();
            let plain = !host.as_str().contains('@');
            port_ok
                && plain
                && ["127.0.0.1", "localhost", "[::1]"]
                    .iter()
                    .any(|local| name.eq_ignore_ascii_case(local))
        });
        if !local {
            return refuse(
                StatusCode::MISDIRECTED_REQUEST,
                "the observer answers only requests for localhost or 127.0.0.1",
            );
        }
    }
    next.run(request).await
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The live feed: the node's samples of the last five minutes, the reports kept so far,
/// then each new report and each snapshot (with its sample).
async fn events(
    State(shared): State<Shared>,
    Query(query): Query<TokenQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Response> {
    if shared.reads_need_token() && !shared.token_ok(query.token.as_deref()) {
        return Err(unauthorized(
            "this observer is not on loopback: open the address it printed, with its token",
        ));
    }
    let (backlog, live) = report::kept_and_subscribe();
    let mut snapshots = shared.feed.watch();
    snapshots.mark_changed();
    // After subscribing: a sample taken meanwhile comes with the next snapshot (the page
    // drops one it has already).
    let history = serde_json::to_string(&shared.feed.history()).unwrap_or_default();
    let history = stream::once(async move {
        Ok::<_, Infallible>(Event::default().event("history").data(history))
    });
    let backlog = stream::iter(backlog).map(|report| report_event(&report));
    let reports = stream::unfold(live, |mut live| async move {
        loop {
            match live.recv().await {
                Ok(report) => return Some((report_event(&report), live)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let snapshots = stream::unfold(snapshots, |mut snapshots| async move {
        loop {
            snapshots.changed().await.ok()?;
            let json = snapshots.borrow_and_update().clone();
            if !json.is_empty() {
                return Some((
                    Ok(Event::default().event("snapshot").data(&*json)),
                    snapshots,
                ));
            }
        }
    });
    let live = stream::select(reports, snapshots);
    Ok(Sse::new(history.chain(backlog).chain(live)).keep_alive(KeepAlive::default()))
}

fn report_event(report: &report::Report) -> Result<Event, Infallible> {
    let json = serde_json::to_string(report).unwrap_or_default();
    Ok(Event::default().event("report").data(json))
}

/// One process's status, its state as its `format_status` shows it.
async fn process_status(
    State(shared): State<Shared>,
    Path(pid): Path<String>,
    Query(query): Query<TokenQuery>,
) -> Response {
    if shared.reads_need_token() && !shared.token_ok(query.token.as_deref()) {
        return unauthorized("this observer is not on loopback: give its token");
    }
    let index = shared.feed.index().await;
    let Some(known) = index.get(&pid).filter(|known| known.server.is_alive()) else {
        return refuse(
            StatusCode::NOT_FOUND,
            &format!("no process {pid} in the supervision trees now: it may have exited"),
        );
    };
    match sys::get_status(&known.server).await {
        Ok(status) => Json(status).into_response(),
        Err(error) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{pid} did not answer: {error}"),
        ),
    }
}

/// An action, only with the token: checked before the body is read, and the body must
/// come within [`BODY_WITHIN`] (a slow sender holds no slot without the token, nor for
/// long with it).
async fn action(State(shared): State<Shared>, request: Request) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if !shared.token_ok(given) {
        return unauthorized("actions need the observer's access token (printed when it started): send Authorization: Bearer <token>");
    }
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY);
    let body = match tokio::time::timeout(BODY_WITHIN, body).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            let why = format!("an action is a JSON object of at most {MAX_BODY} bytes");
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, &why);
        }
        Err(_) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the action's body did not come in time",
            )
        }
    };
    let action: Action = match serde_json::from_slice(&body) {
        Ok(action) => action,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, &format!("not an action ({error}): send JSON such as {{\"action\":\"kill\",\"pid\":\"0.12\"}}")),
    };
    tracing::info!(?action, "observer: action");
    let perform = async { action.perform(&*shared.feed.index().await).await };
    let Ok(outcome) = tokio::time::timeout(ACTION_WITHIN, perform).await else {
        let why = format!("no answer within {ACTION_WITHIN:?}: is the supervisor suspended? the request still waits there, and is done once it resumes");
        return refuse(StatusCode::GATEWAY_TIMEOUT, &why);
    };
    match outcome {
        Ok(done) => (StatusCode::OK, done).into_response(),
        Err(error @ ActionError::UnknownProcess(_)) => {
            refuse(StatusCode::NOT_FOUND, &error.to_string())
        }
        Err(error @ ActionError::Sys(_)) => {
            refuse(StatusCode::SERVICE_UNAVAILABLE, &error.to_string())
        }
        Err(error) => refuse(StatusCode::CONFLICT, &error.to_string()),
    }
}

/// Serves connections until dropped (then every connection ends with it). At most
/// `connections` at once; the ones beyond are told so and closed.
pub(crate) async fn serve(listener: TcpListener, router: Router, connections: usize) {
    let slots = Arc::new(Semaphore::new(connections));
    let lingering = Arc::new(Semaphore::new(LINGERING));
    let mut served = JoinSet::new();
    loop {
        while served.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors, say: wait instead of spinning on the error.
                tracing::warn!(%error, "observer: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let _ = stream.try_write(BUSY);
            // Closing at once, with the request unread, would send a reset that can
            // destroy the refusal before it is read.
            if let Ok(linger) = lingering.clone().try_acquire_owned() {
                served.spawn(async move {
                    let _linger = linger;
                    linger_then_close(stream).await;
                });
            }
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        served.spawn(async move {
            let _slot = slot;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_WITHIN)
                .max_header_size(MAX_HEAD)
                .max_headers(MAX_HEADERS)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "observer: connection ended");
            }
        });
    }
}

/// What a connection beyond the cap is told. Written without waiting: it fits a fresh
/// socket's send buffer.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 69\r\n\r\ntoo many connections to the observer: close some of its pages, retry\n";

/// Refused connections whose peer is given [`LINGER`] to read the refusal, at most this
/// many at once (the rest are closed at once).
const LINGERING: usize = 64;
const LINGER: Duration = Duration::from_secs(1);

/// Ends the sending side, then reads and drops what the peer still sends, for at most
/// [`LINGER`], so that closing sends no reset while the refusal is in flight.
async fn linger_then_close(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(1..) = stream.read(&mut sink).await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    use crate::observer::{serve, NodeHistory, Page};

    /// Opens the live feed, as a page does.
    async fn open_feed(address: std::net::SocketAddr) -> BufReader<TcpStream> {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("send");
        BufReader::new(stream)
    }

    /// The next event's kind and data (the feed comes chunked: the chunks' sizes are
    /// lines of their own, neither `event:` nor `data:`).
    async fn next_event(feed: &mut BufReader<TcpStream>) -> (String, String) {
        let read = async {
            let mut kind = None;
            let mut line = String::new();
            loop {
                line.clear();
                assert!(
                    feed.read_line(&mut line).await.expect("read") > 0,
                    "the feed ended"
                );
                let line = line.trim_end();
                if let Some(name) = line.strip_prefix("event: ") {
                    kind = Some(name.to_owned());
                } else if let (Some(kind), Some(data)) = (&kind, line.strip_prefix("data: ")) {
                    return (kind.clone(), data.to_owned());
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("an event within 10 s")
    }

    async fn next_snapshot(feed: &mut BufReader<TcpStream>) -> Page {
        loop {
            let (kind, data) = next_event(feed).await;
            if kind == "snapshot" {
                return serde_json::from_str(&data).expect("a page");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_page_is_sent_the_nodes_history_first_then_a_sample_with_each_snapshot() {
        let observer = serve("127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("an observer");
        let mut first_page = open_feed(observer.address()).await;
        let (kind, data) = next_event(&mut first_page).await;
        assert_eq!(kind, "history", "the history comes before anything else");
        let history: NodeHistory = serde_json::from_str(&data).expect("a history");
        assert_eq!((history.every_ms, history.span_ms), (1000, 300_000));
        assert!(history
            .samples
            .iter()
            .all(|sample| sample.at_ms <= history.now_ms));

        let one = next_snapshot(&mut first_page).await;
        let two = next_snapshot(&mut first_page).await;
        assert!(one.sample.at_ms > 0, "{:?}", one.sample);
        assert!(
            two.sample.at_ms > one.sample.at_ms,
            "a new sample each second"
        );
        assert!(!two.sample.after_gap, "sampled without a break");
        assert!(
            two.sample.tasks > 0 && two.sample.workers == 2,
            "{:?}",
            two.sample
        );
        drop(first_page);

        // A page opened later is sent what the first one saw.
        let mut later_page = open_feed(observer.address()).await;
        let (kind, data) = next_event(&mut later_page).await;
        assert_eq!(kind, "history");
        let history: NodeHistory = serde_json::from_str(&data).expect("a history");
        let kept: Vec<u64> = history.samples.iter().map(|sample| sample.at_ms).collect();
        assert!(
            kept.contains(&one.sample.at_ms) && kept.contains(&two.sample.at_ms),
            "{kept:?}"
        );
        assert!(
            kept.windows(2).all(|pair| pair[0] < pair[1]),
            "oldest first"
        );
        observer.stop().await.expect("the observer stops");
    }
}
