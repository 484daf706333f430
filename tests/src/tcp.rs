//! Raw TCP clients of a node, as hostile or broken peers are: whether the node closed
//! them, and in which order.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Waits until the node closes `stream` (reading whatever it sends first).
pub async fn closed(mut stream: TcpStream) {
    let mut buffer = [0u8; 1024];
    crate::wait::within("the node to close the connection", async {
        while let Ok(1..) = stream.read(&mut buffer).await {}
    })
    .await
}

/// Whether the node still holds `stream` open: nothing to read, and not closed.
pub fn still_open(stream: &TcpStream) -> bool {
    let mut buffer = [0u8; 1];
    matches!(stream.try_read(&mut buffer), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
