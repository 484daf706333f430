//! A client of the observer's HTTP port, as raw TCP (so that tests can also send what no
//! HTTP client would): requests, actions, and the live feed's events.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::wait;

/// Sends `request` as it is and reads the answer until the observer closes.
pub async fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut answer = Vec::new();
    wait::within("the observer's answer", stream.read_to_end(&mut answer))
        .await
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// A request with the observer's host and `Connection: close`, plus `headers`.
pub fn request(method: &str, path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An action's request, with the token if given.
pub fn action(token: Option<&str>, body: &str) -> Vec<u8> {
    let authorization = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n")
    });
    request("POST", "/api/action", &authorization, body)
}

/// The answer's first line (`HTTP/1.1 200 OK`).
pub fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

/// Opens the live feed and waits for its first snapshot; returns the stream (the page
/// stays open while it is held) and the snapshot's JSON.
pub async fn open_page(address: SocketAddr) -> (BufReader<TcpStream>, serde_json::Value) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send");
    let mut page = BufReader::new(stream);
    let snapshot = next_event(&mut page, "snapshot").await;
    (page, snapshot)
}

/// The data of the next server-sent event of this kind.
pub async fn next_event(page: &mut BufReader<TcpStream>, kind: &str) -> serde_json::Value {
    let wanted = format!("event: {kind}");
    wait::within(&format!("a {kind} event"), async {
        let mut line = String::new();
        let mut in_event = false;
        loop {
            line.clear();
            if page.read_line(&mut line).await.expect("read the feed") == 0 {
                panic!("the feed ended");
            }
            let line = line.trim_end();
            if line.starts_with("event: ") {
                in_event = line == wanted;
            } else if let (true, Some(data)) = (in_event, line.strip_prefix("data: ")) {
                return serde_json::from_str(data).expect("an event's data is JSON");
            }
        }
    })
    .await
}
