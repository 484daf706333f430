//! An observer page kept open during a bench run, as a browser keeps one: it reads the
//! live feed (a snapshot each second, and every supervisor report) and asks the status of
//! the selected process, `message_server`, after each snapshot. What the server does
//! for it is what it does for a browser; only the drawing is left out.

use anyhow::Context as _;
use otp::observer::Page;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Watches the observer printed as `url` (`http://HOST:PORT/#token=...`) until dropped;
/// `shown` is told once the first snapshot and status have come (from then on the
/// observer counts the processes' mailboxes, as with a page open).
pub async fn watch(url: &str, shown: oneshot::Sender<()>) -> anyhow::Result<()> {
    let mut shown = Some(shown);
    let address = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .with_context(|| format!("not an observer address: {url}"))?
        .to_owned();
    let mut feed = TcpStream::connect(&address).await?;
    // HTTP/1.0: the feed comes as plain lines, not in chunks.
    feed.write_all(b"GET /events HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut feed = BufReader::new(feed).lines();
    let mut status = TcpStream::connect(&address).await?;
    let mut in_snapshot = false;
    while let Some(line) = feed.next_line().await? {
        if let Some(kind) = line.strip_prefix("event: ") {
            in_snapshot = kind == "snapshot";
        } else if let (true, Some(data)) = (in_snapshot, line.strip_prefix("data: ")) {
            let page: Page = serde_json::from_str(data)?;
            let selected = page.local.find("message_server");
            if let Some(pid) = selected.and_then(|process| process.pid.as_deref()) {
                ask_status(&mut status, pid).await?;
                if let Some(shown) = shown.take() {
                    let _ = shown.send(());
                }
            }
        }
    }
    anyhow::bail!("the observer closed the page's feed")
}

/// `GET /api/process/<pid>` on a kept-alive connection; the answer is read and dropped.
async fn ask_status(connection: &mut TcpStream, pid: &str) -> anyhow::Result<()> {
    let request = format!("GET /api/process/{pid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    connection.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(connection.read_u8().await?);
    }
    let head = String::from_utf8_lossy(&head);
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .and_then(|length| length.trim().parse().ok())
        .context("a status answer without a length")?;
    let mut body = vec![0; length];
    connection.read_exact(&mut body).await?;
    Ok(())
}
