//! The `--scripted` fixture: commands on standard input, one line each, each answered with
//! one line on standard output. Members are `Echo` servers whose replies start with this
//! node's short name and a colon, in the process-group scope [`SCOPE`].
//!
//! | command | answer |
//! |---|---|
//! | `connect ADDR` | `CONNECTED <peer>` or `ERROR <why>` |
//! | `join GROUP` | `JOINED <pid>`: a new member joined |
//! | `leave GROUP` | `LEFT <bool>`: the newest member left (still running) |
//! | `stop GROUP` | `STOPPED`: the newest member exited |
//! | `members GROUP` | `MEMBERS <all> <local>`, as this node sees them |
//! | `casts GROUP` | `CASTS <n>`: casts its local members received, summed |
//! | `broadcast GROUP` | `SENT <nodes>`: one `Count` cast to every member |
//! | `register NAME` | `REGISTERED` or `TAKEN <holder>`; a lost conflict later prints `CONFLICT <name> <winner>` |
//! | `register-exit NAME` | the same, but a lost conflict stops the holder |
//! | `whereis NAME` | `AT <member>` or `NONE` |
//! | `call NAME TEXT` | `REPLY <reply>` or `ERROR <why>`, calling the global name |

use std::collections::HashMap;

use otp::node::pg::Scope;
use otp::node::Node;
use otp::{GenServer, ServerRef};
use otp_tests::{Casts, Count, Echo, EchoCast, EchoServer, Say};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The process-group scope of the cluster tests.
pub const SCOPE: &str = "test";

pub async fn run(node: Node) -> anyhow::Result<()> {
    let scope = Scope::start(SCOPE).await?;
    let short = node.name().split('@').next().unwrap_or_default().to_owned();
    let mut groups: HashMap<String, Vec<ServerRef<Echo>>> = HashMap::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let mut words = line.splitn(3, ' ');
        let (command, arg) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        );
        let rest = words.next().unwrap_or_default();
        let echo = || EchoServer::new(format!("{short}:"));
        let answer = match command {
            "connect" => match node.connect(arg).await {
                Ok(peer) => format!("CONNECTED {peer}"),
                Err(error) => format!("ERROR {error}"),
            },
            "join" => {
                let member = echo().start().await?;
                scope.join(arg, &member).await?;
                let pid = member.id().pid();
                groups.entry(arg.to_owned()).or_default().push(member);
                format!("JOINED {pid}")
            }
            "leave" => {
                let member = groups.get_mut(arg).and_then(Vec::pop);
                let left = match member {
                    Some(member) => scope.leave(arg, &member).await?,
                    None => false,
                };
                format!("LEFT {left}")
            }
            "stop" => {
                if let Some(member) = groups.get_mut(arg).and_then(Vec::pop) {
                    member.stop(otp::ExitReason::Normal).await?;
                }
                "STOPPED".to_owned()
            }
            "members" => {
                let all = scope.members::<Echo>(arg).len();
                let local = scope.local_members::<Echo>(arg).len();
                format!("MEMBERS {all} {local}")
            }
            "casts" => {
                let mut sum = 0;
                for member in scope.local_members::<Echo>(arg) {
                    sum += member.call(Casts).await?.parse::<u64>()?;
                }
                format!("CASTS {sum}")
            }
            "broadcast" => format!(
                "SENT {}",
                scope.broadcast::<Echo>(arg, &EchoCast::Count(Count))
            ),
            "register" | "register-exit" => {
                let holder = echo().start().await?;
                let name = arg.to_owned();
                let registered = if command == "register" {
                    let tell = move |conflict: otp::node::global::Conflict| {
                        println!("CONFLICT {name} {}", conflict.winner);
                    };
                    node.global().register_name_notify(arg, &holder, tell).await
                } else {
                    node.global().register_name(arg, &holder).await
                };
                match registered {
                    Ok(()) => "REGISTERED".to_owned(),
                    Err(otp::node::global::GlobalError::Taken { holder, .. }) => {
                        format!("TAKEN {holder}")
                    }
                    Err(error) => format!("ERROR {error}"),
                }
            }
            "whereis" => match node.global().holder(arg) {
                Some(holder) => format!("AT {holder}"),
                None => "NONE".to_owned(),
            },
            "call" => match node.global().whereis_name::<Echo>(arg) {
                Some(holder) => match holder.call(Say(rest.to_owned())).await {
                    Ok(reply) => format!("REPLY {reply}"),
                    Err(error) => format!("ERROR {error}"),
                },
                None => "ERROR no such name".to_owned(),
            },
            other => format!("ERROR unknown command {other}"),
        };
        println!("{answer}");
    }
    Ok(())
}
