//! A hand-made client that knows the protocol and the cookie tries to speak and act as
//! others. One test: a process runs one node.

use ex_messenger::names::{Nick, Room};
use ex_messenger::protocol::{
    Challenge, ChatClient, ChatServer, ClientCall, Confirm, Join, NotJoined, Quit, Refused,
    Request, Submit, ToClient, Token, MESSAGE_HANDLER, MESSAGE_SERVER,
};
use otp::node::{Cookie, Node, NodeConfig};
use otp::{Context, Flow, GenServer};
use otp_tests::chat::Chat;
use tokio::sync::mpsc;

const COOKIE: &str = "hostile-test-cookie";

/// A fake message handler: whatever the server casts it lands in a channel.
struct Spy(mpsc::UnboundedSender<ToClient>);

impl GenServer for Spy {
    type Protocol = ChatClient;

    async fn handle_call(&mut self, call: ClientCall<'_>, _: &Context<Self>) -> otp::Result {
        let ClientCall::ServerStopping(_, caller) = call;
        Ok(caller.reply(()))
    }

    async fn handle_cast(&mut self, message: ToClient, _: &Context<Self>) -> otp::Result {
        let _ = self.0.send(message);
        Ok(Flow::Continue)
    }
}

fn nick(name: &str) -> Nick {
    Nick::parse(name).unwrap()
}

/// The next message for the spy, past the list of the cluster's servers (which every
/// joined user gets, and which says nothing of interest here).
async fn next(inbox: &mut mpsc::UnboundedReceiver<ToClient>) -> ToClient {
    loop {
        match otp_tests::wait::next("the server's answer to the spy", inbox).await {
            ToClient::Servers(_) => continue,
            other => return other,
        }
    }
}

#[tokio::test]
async fn a_hand_made_client_cannot_speak_or_act_as_another_nick() {
    let (_server, address) = Chat::server(COOKIE, &[]).await;
    let mut alice = Chat::joined(&address, "alice", COOKIE).await;
    // The hostile client even knows alice's node name (as if it had read her screen).
    let alice_node = alice.transcript()[0]
        .split(" from ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("..."))
        .expect("alice's node name")
        .to_owned();
    let mut bob = Chat::joined(&address, "bob", COOKIE).await;
    alice.expect("**bob has joined**").await;

    let cookie = Cookie::new(COOKIE).unwrap();
    let node = Node::start(NodeConfig::new(
        "mallory",
        "127.0.0.1:0".parse().unwrap(),
        cookie,
    ))
    .await
    .unwrap();
    let (spy_out, mut inbox) = mpsc::unbounded_channel();
    Spy(spy_out).start_named(MESSAGE_HANDLER).await.unwrap();
    node.export::<ChatClient>(MESSAGE_HANDLER).await.unwrap();
    let server_node = node.connect(address.as_str()).await.unwrap();
    let server = node
        .remote::<ChatServer>(&server_node, MESSAGE_SERVER)
        .await
        .unwrap();
    let lobby = Some(Room::lobby());
    let forged = Token {
        nick: nick("alice"),
        node: alice_node.clone(),
        session: 1,
        mac: "00".repeat(32),
    };

    // Speaking as alice with a forged token: nobody hears it.
    server.cast(Submit {
        token: forged.clone(),
        room: lobby.clone(),
        seq: 1,
        since: 1,
        request: Request::Say {
            text: "forged as alice".into(),
        },
    });
    // Making alice quit, or leave: nothing happens to her.
    server
        .call(Quit {
            token: forged.clone(),
        })
        .await
        .unwrap();
    server.cast(Submit {
        token: forged.clone(),
        room: lobby.clone(),
        seq: 1,
        since: 1,
        request: Request::Leave,
    });
    // Joining as alice, from her node or ours: her nick is in use.
    for from in [alice_node.clone(), node.name().to_owned()] {
        let join = Join {
            nick: nick("alice"),
            node: from,
            session: 1,
            room: lobby.clone(),
            resume: None,
        };
        match server.call(join).await.unwrap() {
            Err(NotJoined::Refused(reason)) => {
                assert_eq!(reason.code(), "nick_in_use", "{reason}")
            }
            other => panic!("joined as alice: {other:?}"),
        }
    }
    // Joining as mallory but claiming alice's node: the token goes to alice's node, whose
    // handler ignores it; a guessed confirmation is refused.
    let join = Join {
        nick: nick("mallory"),
        node: alice_node.clone(),
        session: 1,
        room: lobby.clone(),
        resume: None,
    };
    assert_eq!(server.call(join).await.unwrap(), Ok(()));
    server.cast(Confirm {
        token: Token {
            nick: nick("mallory"),
            node: alice_node.clone(),
            session: 1,
            mac: "11".repeat(32),
        },
    });

    // A join that cannot be confirmed holds no nick: claiming "carol" from alice's node
    // does not keep the real carol out.
    let squat = Join {
        nick: nick("carol"),
        node: alice_node.clone(),
        session: 1,
        room: lobby.clone(),
        resume: None,
    };
    assert_eq!(server.call(squat).await.unwrap(), Ok(()));
    let _carol = Chat::joined(&address, "carol", COOKIE).await;
    bob.expect("**carol has joined**").await;

    // An honest join from our own node gets a real token: it speaks as eve only.
    let join = Join {
        nick: nick("eve"),
        node: node.name().to_owned(),
        session: 1,
        room: lobby.clone(),
        resume: None,
    };
    assert_eq!(server.call(join).await.unwrap(), Ok(()));
    let ToClient::Challenge(Challenge { token }) = next(&mut inbox).await else {
        panic!("a challenge first")
    };
    assert_eq!(token.nick, nick("eve"));
    server.cast(Confirm {
        token: token.clone(),
    });
    assert!(matches!(next(&mut inbox).await, ToClient::Joined(_)));
    bob.expect("**eve has joined**").await;
    // A valid MAC does not transfer to another nick.
    let mut stolen = token.clone();
    stolen.nick = nick("alice");
    server.cast(Submit {
        token: stolen,
        room: lobby.clone(),
        seq: 1,
        since: 1,
        request: Request::Say {
            text: "eve's mac as alice".into(),
        },
    });
    // Raw oversized and escape-laden text, past any client-side check.
    // Numbered in order, as the server handles a client's requests.
    let say = |seq, text: String| Submit {
        token: token.clone(),
        room: lobby.clone(),
        seq,
        since: seq,
        request: Request::Say { text },
    };
    server.cast(say(1, "y".repeat(5000)));
    match next(&mut inbox).await {
        ToClient::Refused(Refused {
            seq: Some(1),
            reason,
        }) => {
            assert_eq!(reason.code(), "message_too_long", "{reason}")
        }
        other => panic!("oversized text accepted: {other:?}"),
    }
    server.cast(say(
        2,
        "\u{1b}[31mred\u{1b}[0m\u{9b}2J \u{202e}txt.exe".into(),
    ));
    let seen = bob.expect("eve: ").await;
    assert_eq!(seen, "eve: red txt.exe");

    // Nothing forged reached anyone; alice is still here and heard.
    bob.send("/users").await;
    bob.expect_before(
        "**Users in room: alice, bob, carol, eve**",
        &["forged", "as alice", "alice has left", "mallory"],
    )
    .await;
    alice.send("still me").await;
    bob.expect("alice: still me").await;
    for line in alice.transcript() {
        assert!(
            !line.contains("forged") && !line.contains("mallory"),
            "{line}"
        );
    }
}
