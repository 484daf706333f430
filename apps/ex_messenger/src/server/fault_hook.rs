//! Test-only crashes (cargo feature `fault-hook`, never in a release build): with
//! `server --fault-hook`, lines `crash message_server` or `crash room <name>` on stdin
//! crash that GenServer. Each is answered `FAULT restarted` once the supervisor has
//! replaced it, so a test knows when to go on.

use tokio::io::AsyncBufReadExt;

use otp::ServerRef;

use super::message_server::{MessageServer, ServerInfo};
use super::room::{registered_name, RoomInfo, RoomServer};
use crate::names::Room;
use crate::protocol::MESSAGE_SERVER;

/// Reads crash commands from stdin until it closes.
pub async fn run() {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let outcome = match words.as_slice() {
            ["crash", "message_server"] => {
                crash(MESSAGE_SERVER.to_owned(), |s: &ServerRef<MessageServer>| {
                    s.send_info(ServerInfo::Fault)
                })
                .await
            }
            ["crash", "room", name] => match Room::parse(name) {
                Ok(room) => {
                    crash(registered_name(&room), |s: &ServerRef<RoomServer>| {
                        s.send_info(RoomInfo::Fault)
                    })
                    .await
                }
                Err(error) => error.to_string(),
            },
            _ => "unknown command: crash message_server | crash room <name>".to_owned(),
        };
        crate::stdout::line(format_args!("FAULT {outcome}"));
    }
    std::future::pending::<()>().await
}

/// Crashes the server registered as `name` and waits for its replacement.
async fn crash<G: otp::GenServer>(name: String, fault: impl Fn(&ServerRef<G>)) -> String {
    let Some(server) = ServerRef::<G>::whereis(&name) else {
        return format!("nothing runs as {name}");
    };
    fault(&server);
    server.wait_exit().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if ServerRef::<G>::whereis(&name).is_some_and(|s| s.id() != server.id()) {
            return "restarted".to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    format!("{name} was not restarted within 5 s")
}
