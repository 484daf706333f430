//! A chat room: users join under a nick, every member sees what anyone says, and a user
//! whose process dies leaves by itself, because the room monitors its members.
//!
//! `cargo run --example chat_room`

use std::collections::BTreeMap;

use otp::{Context, Flow, GenServer, Info, Never, ServerRef};

otp::protocol! {
    /// The room.
    pub Room;
    calls RoomCall {
        /// Joins under a nick: answers who was there, or refuses a nick in use.
        Join(String, ServerRef<User>) -> Result<Vec<String>, NickTaken>,
    }
    casts RoomCast {
        /// A nick says a line.
        Say(String, String),
        Leave(String),
    }
}

otp::protocol! {
    /// A member, as the room sees it: it keeps what it is told.
    pub User;
    calls UserCall { Transcript -> Vec<String> }
    casts UserCast { Line(String) }
}

/// The nick asked for is someone else's.
#[derive(Debug, thiserror::Error)]
#[error("the nick {0} is taken")]
pub struct NickTaken(pub String);

#[derive(Default)]
struct RoomServer(BTreeMap<String, ServerRef<User>>);

impl RoomServer {
    fn tell_all(&self, line: String) {
        self.0
            .values()
            .for_each(|user| user.cast(Line(line.clone())));
    }

    fn remove(&mut self, nick: &str, why: &str, me: &Context<Self>) {
        if let Some(user) = self.0.remove(nick) {
            me.demonitor(&user);
            self.tell_all(format!("* {nick} left{why}"));
        }
    }
}

impl GenServer for RoomServer {
    type Protocol = Room;

    async fn handle_call(&mut self, call: RoomCall<'_>, me: &Context<Self>) -> otp::Result {
        let RoomCall::Join(Join(nick, user), caller) = call;
        if self.0.contains_key(&nick) {
            return Ok(caller.reply(Err(NickTaken(nick))));
        }
        let present = self.0.keys().cloned().collect();
        self.tell_all(format!("* {nick} joined"));
        me.monitor(&user);
        self.0.insert(nick, user);
        Ok(caller.reply(Ok(present)))
    }

    async fn handle_cast(&mut self, cast: RoomCast, me: &Context<Self>) -> otp::Result {
        match cast {
            RoomCast::Say(Say(nick, text)) => self.tell_all(format!("<{nick}> {text}")),
            RoomCast::Leave(Leave(nick)) => self.remove(&nick, "", me),
        }
        Ok(Flow::Continue)
    }

    async fn handle_info(&mut self, info: Info<Never>, me: &Context<Self>) -> otp::Result {
        if let Info::Down(down) = info {
            let gone = self.0.iter().find(|(_, user)| user.id() == down.id);
            if let Some(nick) = gone.map(|(nick, _)| nick.clone()) {
                self.remove(&nick, &format!(" ({})", down.reason), me);
            }
        }
        Ok(Flow::Continue)
    }
}

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
    for nick in ["alice", "bob", "carol", "bob"] {
        let user = UserServer::default().start().await?;
        match room.call(Join(nick.into(), user.clone())).await? {
            Ok(present) => println!("{nick} joins; already there: {present:?}"),
            Err(taken) => println!("refused: {taken}"),
        }
        users.entry(nick).or_insert(user);
    }
    room.cast(Say("alice".into(), "hello, all".into()));
    room.cast(Leave("carol".into()));
    users["bob"].kill(); // bob's process dies: the room's monitor tells it
    users["bob"].wait_exit().await;

    // A monitor's news comes before any later message, so the room has told alice that
    // bob left before it answers this call; and alice then has it before our call.
    let dave = UserServer::default().start().await?;
    room.call(Join("dave".into(), dave)).await??;
    println!("alice saw:");
    for line in users["alice"].call(Transcript).await? {
        println!("  {line}");
    }
    Ok(())
}
