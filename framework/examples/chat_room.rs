//! A chat room: users join under a nick, every member sees what anyone says, and a user
//! whose process dies leaves by itself, because the room monitors its members.
//!
//! `cargo run --example chat_room`

use std::collections::BTreeMap;

use otp::{Context, Flow, GenServer, Info, ServerRef};

otp::protocol! {
    /// The room.
    pub Room;
    calls RoomCall {
        /// Joins as `nick`: answers who was there, or refuses a nick in use.
        Join { nick: String, user: ServerRef<User> } -> Result<Vec<String>, NickTaken>,
    }
    casts RoomCast {
        Say { nick: String, text: String },
        Leave(String),
    }
}

otp::protocol! {
    /// A member, as the room sees it.
    pub User;
    calls UserCall { Transcript -> Vec<String> }
    casts UserCast { Line(String) }
}

/// The nick asked for is someone else's.
#[derive(Debug, thiserror::Error)]
#[error("the nick {0} is taken")]
pub struct NickTaken(pub String);

#[derive(Default)]
struct RoomServer {
    members: BTreeMap<String, ServerRef<User>>,
}

impl RoomServer {
    fn tell_all(&self, line: String) {
        for member in self.members.values() {
            member.cast(Line(line.clone()));
        }
    }

    fn remove(&mut self, nick: &str, why: &str, me: &Context<Self>) {
        if let Some(user) = self.members.remove(nick) {
            me.demonitor(&user);
            self.tell_all(format!("* {nick} left{why}"));
        }
    }
}

impl GenServer for RoomServer {
    type Protocol = Room;

    async fn handle_call(&mut self, call: RoomCall<'_>, me: &Context<Self>) -> otp::Result {
        let RoomCall::Join(Join { nick, user }, caller) = call;
        if self.members.contains_key(&nick) {
            return Ok(caller.reply(Err(NickTaken(nick))));
        }
        let present = self.members.keys().cloned().collect();
        self.tell_all(format!("* {nick} joined"));
        me.monitor(&user);
        self.members.insert(nick, user);
        Ok(caller.reply(Ok(present)))
    }

    async fn handle_cast(&mut self, cast: RoomCast, me: &Context<Self>) -> otp::Result {
        match cast {
            RoomCast::Say(Say { nick, text }) => self.tell_all(format!("<{nick}> {text}")),
            RoomCast::Leave(Leave(nick)) => self.remove(&nick, "", me),
        }
        Ok(Flow::Continue)
    }

    async fn handle_info(&mut self, info: Info<otp::gen_server::Never>, me: &Context<Self>) -> otp::Result {
        if let Info::Down(down) = info {
            let gone = self.members.iter().find(|(_, user)| user.id() == down.id);
            if let Some(nick) = gone.map(|(nick, _)| nick.clone()) {
                self.remove(&nick, &format!(" ({})", down.reason), me);
            }
        }
        Ok(Flow::Continue)
    }
}

/// A user keeps what it was told.
#[derive(Default)]
struct UserServer(Vec<String>);

impl GenServer for UserServer {
    type Protocol = User;

    async fn handle_call(&mut self, call: UserCall<'_>, _: &Context<Self>) -> otp::Result {
        let UserCall::Transcript(Transcript, caller) = call;
        Ok(caller.reply(self.0.clone()))
    }

    async fn handle_cast(&mut self, cast: UserCast, _: &Context<Self>) -> otp::Result {
        let UserCast::Line(Line(line)) = cast;
        self.0.push(line);
        Ok(Flow::Continue)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let room = RoomServer::default().start().await?;
    let mut users = BTreeMap::new();
    for nick in ["alice", "bob", "carol"] {
        let user = UserServer::default().start().await?;
        let join = Join { nick: nick.into(), user: user.clone() };
        println!("{nick} joins; already there: {:?}", room.call(join).await??);
        users.insert(nick, user);
    }
    let impostor = UserServer::default().start().await?;
    let refused = room.call(Join { nick: "bob".into(), user: impostor }).await?;
    println!("a second bob: {refused:?}");

    room.cast(Say { nick: "alice".into(), text: "hello, all".into() });
    room.cast(Leave("carol".into()));
    users["bob"].kill(); // bob's process dies: the room's monitor tells it
    users["bob"].wait_exit().await;

    // The room has handled bob's exit before any later message (monitors come first),
    // and it told alice before it answers this call.
    room.call(Join { nick: "dave".into(), user: UserServer::default().start().await? }).await??;
    println!("alice saw:");
    for line in users["alice"].call(Transcript).await? {
        println!("  {line}");
    }
    Ok(())
}
