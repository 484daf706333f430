//! Test-only faults (cargo feature `fault-hook`, never in a release build): with
//! `server --fault-hook`, these lines on stdin act on the server:
//! - `crash message_server`, `crash room <name>`: that GenServer fails (after what is
//!   already in its mailbox);
//! - `kill room <name>`: the room is killed at once (what is in its mailbox is lost);
//! - `stall room <name> <ms>`: the room stops handling messages for that long, so what
//!   is sent to it meanwhile waits in its mailbox.
//!
//! Crashes and kills are answered `FAULT restarted` once the supervisor has replaced the
//! server, a stall `FAULT stalled` once it has begun, so a test knows when to go on.

use tokio::io::AsyncBufReadExt;

use otp::ServerRef;

use super::message_server::{LocalChatServer, ServerInfo};
use super::room::{registered_name, ChatRoom, RoomInfo};
use crate::names::Room;
use crate::protocol::MESSAGE_SERVER;

/// Reads crash commands from stdin until it closes.
pub async fn run() {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let outcome = match words.as_slice() {
            ["crash", "message_server"] => {
                crash(MESSAGE_SERVER.to_owned(), |s: &ServerRef<LocalChatServer>| {
                    s.send_info(ServerInfo::Fault)
                })
                .await
            }
            ["crash", "room", name] => match Room::parse(name) {
                Ok(room) => {
                    crash(registered_name(&room), |s: &ServerRef<ChatRoom>| {
                        s.send_info(RoomInfo::Fault)
                    })
                    .await
                }
                Err(error) => error.to_string(),
            },
            ["kill", "room", name] => match Room::parse(name) {
                Ok(room) => crash(registered_name(&room), ServerRef::<ChatRoom>::kill).await,
                Err(error) => error.to_string(),
            },
            ["stall", "room", name, ms] => match (Room::parse(name), ms.parse()) {
                (Ok(room), Ok(ms)) => stall(&room, std::time::Duration::from_millis(ms)).await,
                _ => "usage: stall room <name> <milliseconds>".to_owned(),
            },
            _ => "unknown command: crash message_server | crash room <name> | kill room <name> | stall room <name> <ms>".to_owned(),
        };
        crate::stdout::line(format_args!("FAULT {outcome}"));
    }
    std::future::pending::<()>().await
}

/// Makes `room` sleep in a handler for `pause`; answers once it has begun.
async fn stall(room: &Room, pause: std::time::Duration) -> String {
    let Some(server) = ServerRef::<ChatRoom>::whereis(&registered_name(room)) else {
        return format!("no room {}", room.as_str());
    };
    let (began, stalled) = tokio::sync::oneshot::channel();
    server.send_info(RoomInfo::Stall(pause, began));
    match stalled.await {
        Ok(()) => "stalled".to_owned(),
        Err(_) => "the room went before stalling".to_owned(),
    }
}

/// Crashes the server registered as `name` and waits for its replacement.
async fn crash<P: otp::Protocol>(name: String, fault: impl Fn(&ServerRef<P>)) -> String {
    let Some(server) = ServerRef::<P>::whereis(&name) else {
        return format!("nothing runs as {name}");
    };
    fault(&server);
    server.wait_exit().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if ServerRef::<P>::whereis(&name).is_some_and(|s| s.id() != server.id()) {
            return "restarted".to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    format!("{name} was not restarted within 5 s")
}
