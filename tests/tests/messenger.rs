//! ex_messenger end to end: real server and client processes on ephemeral ports, driven
//! through stdin and stdout as a user would.

use std::path::PathBuf;

use otp_tests::chat::Chat;

const COOKIE: &str = "messenger-test-cookie";

/// The barrier used to prove something did *not* arrive: `/join` on the room you are in
/// goes through that room after everything sent to it before, and answers with the user
/// list.
async fn barrier(client: &mut Chat, forbidden: &[&str]) {
    client.send("/join").await;
    client.expect_before("**Users in room:", forbidden).await;
}

#[tokio::test]
async fn a_chat_session_broadcast_pm_leave_rejoin_rooms_and_quit() {
    let (_server, address) = Chat::server(COOKIE, &[]).await;
    let mut alice = Chat::joined(&address, "alice", COOKIE).await;
    assert_eq!(
        &alice.transcript()[1..],
        [
            "Connected",
            "**Joined the chatroom**",
            "**Users in room: alice**",
            "**Type /help for options**"
        ]
    );
    assert!(alice.transcript()[0].starts_with(&format!("Connecting to {address} from client-")));
    let mut bob = Chat::client(&address, "bob", COOKIE);
    bob.expect("**Users in room: alice, bob**").await;
    alice.expect("**bob has joined**").await;
    let mut carol = Chat::joined(&address, "carol", COOKIE).await;
    alice.expect("**carol has joined**").await;
    bob.expect("**carol has joined**").await;

    // Broadcast: everyone else, not the sender.
    alice.send("hello everyone").await;
    bob.expect("alice: hello everyone").await;
    carol.expect("alice: hello everyone").await;
    barrier(&mut alice, &["alice: hello everyone"]).await;

    // Private: the target only.
    alice.send("/pm bob just for you").await;
    bob.expect("alice (private): just for you").await;
    barrier(&mut carol, &["just for you"]).await;
    alice.send("/pm dave anyone there").await;
    alice.expect("receiver_not_found").await;

    // Leave, then speak: not in the chatroom; the room is told; rejoin.
    bob.send("/leave").await;
    bob.expect("You have exited the chatroom").await;
    alice.expect("**bob has left**").await;
    bob.send("am I here").await;
    bob.expect("not_in_chatroom").await;
    barrier(&mut carol, &["am I here"]).await;
    bob.send("/join").await;
    bob.expect("**Joined the chatroom**").await;
    bob.expect("**Users in room: alice, bob, carol**").await;
    alice.expect("**bob has joined**").await;

    // Rooms: a new room, listed, and speech stays inside it.
    carol.send("/join dev").await;
    carol.expect("**Joined the chatroom dev**").await;
    carol.expect("**Users in room: carol**").await;
    alice.expect("**carol has left**").await;
    carol.send("/rooms").await;
    carol.expect("**Rooms: dev (1), lobby (2)**").await;
    carol.send("only dev hears this").await;
    bob.send("/join dev").await;
    bob.expect("**Users in room: bob, carol**").await;
    bob.send("hi dev").await;
    carol
        .expect_before("bob: hi dev", &["only dev hears this"])
        .await;
    barrier(&mut alice, &["only dev hears this", "hi dev"]).await;
    carol.send("/users").await;
    carol.expect("**Users in room: bob, carol**").await;

    // Help and unknown commands.
    alice.send("/help").await;
    alice.expect("/pm <nick> <text>").await;
    alice.send("/frobnicate").await;
    alice
        .expect("unknown command /frobnicate: type /help")
        .await;

    // Quit: clean exit, the room is told.
    carol.send("/quit").await;
    bob.expect("**carol has left**").await;
    assert!(carol.exit_status().await.success());
    // End of input leaves as cleanly.
    bob.close_input();
    assert!(bob.exit_status().await.success());
    alice.send("/rooms").await;
    alice.expect("**Rooms: lobby (1)**").await;
}

#[tokio::test]
async fn duplicate_and_invalid_nicknames_are_refused_with_a_non_zero_exit() {
    let (_server, address) = Chat::server(COOKIE, &[]).await;
    let _alice = Chat::joined(&address, "alice", COOKIE).await;

    let mut twin = Chat::client(&address, "alice", COOKIE);
    twin.expect("Could not join chatroom, reason: nick_in_use")
        .await;
    assert!(!twin.exit_status().await.success());

    let long = "x".repeat(33);
    for nick in ["server", "two words", long.as_str()] {
        let mut bad = Chat::client(&address, nick, COOKIE);
        bad.expect("Could not join chatroom, reason: nick_not_allowed")
            .await;
        assert!(!bad.exit_status().await.success(), "{nick:?}");
    }

    // Missing flags are prompted for, as the original client does.
    let mut prompted = Chat::spawn("prompted", &["client", "--cookie", COOKIE]);
    prompted.send(&address).await;
    prompted.send("bob").await;
    let first = prompted.expect("Connecting to").await;
    assert!(
        first.starts_with("Server Name: Nickname: Connecting to"),
        "{first}"
    );
    prompted.expect("**Users in room: alice, bob**").await;
}

#[tokio::test]
async fn a_wrong_cookie_is_refused_with_a_non_zero_exit() {
    let (_server, address) = Chat::server(COOKIE, &[]).await;
    let mut intruder = Chat::client(&address, "mallory", "not-the-cookie");
    intruder
        .expect("Could not connect to server, reason: authentication failed")
        .await;
    assert!(!intruder.exit_status().await.success());
}

#[tokio::test]
async fn a_killed_client_leaves_the_room_and_frees_its_nick() {
    let (_server, address) = Chat::server(COOKIE, &[]).await;
    let (mut alice, mut bob) = Chat::pair(&address, "alice", "bob", COOKIE).await;

    bob.kill().await;
    alice.expect("**bob has left**").await;
    let mut bob_again = Chat::joined(&address, "bob", COOKIE).await;
    alice.expect("**bob has joined**").await;
    bob_again.send("back").await;
    alice.expect("bob: back").await;
}

#[tokio::test]
async fn clients_rejoin_with_their_nick_and_room_when_a_killed_server_comes_back() {
    let (mut server, address) = Chat::server(COOKIE, &[]).await;
    let mut alice = Chat::joined(&address, "alice", COOKIE).await;
    let mut bob = Chat::joined(&address, "bob", COOKIE).await;
    bob.send("/join dev").await;
    bob.expect("**Joined the chatroom dev**").await;
    alice.send("/join dev").await;
    alice.expect("**Users in room: alice, bob**").await;

    server.kill().await;
    alice.expect("Server down: noconnection").await;
    bob.expect("Server down: noconnection").await;
    alice.send("anyone?").await;
    alice.expect("Not connected to the server right now").await;

    let (_server, _) =
        Chat::server_with(&["server", "--listen", &address, "--cookie", COOKIE]).await;
    alice.expect("Reconnected").await;
    alice.expect("**Joined the chatroom dev**").await;
    bob.expect("Reconnected").await;
    bob.expect("**Joined the chatroom dev**").await;
    // Both are back in dev, whoever rejoined first.
    alice.send("/users").await;
    alice.expect("**Users in room: alice, bob**").await;
    alice.send("we are back").await;
    bob.expect("alice: we are back").await;
}

#[tokio::test]
async fn a_client_gives_up_after_the_configured_time() {
    let (mut server, address) = Chat::server(COOKIE, &[]).await;
    let mut alice = Chat::spawn(
        "alice",
        &[
            "client",
            "-s",
            &address,
            "-n",
            "alice",
            "--cookie",
            COOKIE,
            "--give-up-after",
            "1",
        ],
    );
    alice.expect("**Type /help for options**").await;
    server.kill().await;
    alice.expect("Server down").await;
    alice.expect("Giving up: the server at").await;
    assert!(!alice.exit_status().await.success());
}

#[tokio::test]
async fn users_keep_chatting_through_crashes_of_the_message_server_and_a_room() {
    let (mut server, address) = Chat::server(COOKIE, &["--fault-hook"]).await;
    let (mut alice, mut bob) = Chat::pair(&address, "alice", "bob", COOKIE).await;

    server.send("crash message_server").await;
    server.expect("FAULT restarted").await;
    alice
        .send("still here after the message server crash")
        .await;
    bob.expect("alice: still here after the message server crash")
        .await;
    bob.send("/pm alice and private too").await;
    alice.expect("bob (private): and private too").await;

    server.send("crash room lobby").await;
    server.expect("FAULT restarted").await;
    bob.send("the room came back").await;
    alice.expect("bob: the room came back").await;
    alice.send("/users").await;
    alice.expect("**Users in room: alice, bob**").await;

    // Nobody was told anything went wrong.
    for line in alice.transcript().iter().chain(bob.transcript()) {
        assert!(!line.contains("Server down"), "{line}");
    }
}

#[tokio::test]
async fn text_is_cleaned_limited_and_throttled_per_user() {
    let (_server, address) = Chat::server(COOKIE, &[]).await;
    let (mut alice, mut bob) = Chat::pair(&address, "alice", "bob", COOKIE).await;

    // Escape sequences and control characters never reach bob's terminal.
    alice
        .send("\u{1b}[2J\u{1b}]0;pwned\u{7}red \u{1b}[31malert\u{1b}[0m\u{7} done")
        .await;
    let line = bob.expect("alice: ").await;
    assert_eq!(line, "alice: red alert done");

    // Too long: refused to its sender with one line.
    alice.send(&"x".repeat(5000)).await;
    alice
        .expect("message too long (5000 bytes): the limit is 4096 bytes")
        .await;

    // A flood from alice is cut; bob is not affected.
    for i in 0..200 {
        alice.send(&format!("flood {i}")).await;
    }
    alice.expect("slow_down:").await;
    bob.send("I can still talk").await;
    alice.expect("bob: I can still talk").await;
    barrier(&mut bob, &[]).await;
    let flood = bob
        .transcript()
        .iter()
        .filter(|l| l.contains("alice: flood"))
        .count();
    assert!(
        (20..200).contains(&flood),
        "bob saw {flood} of 200 flood lines"
    );
}

#[tokio::test]
async fn fifty_clients_at_once() {
    let (_server, address) = Chat::server(COOKIE, &[]).await;
    let nicks: Vec<String> = (0..50).map(|i| format!("user{i:02}")).collect();
    let mut clients: Vec<Chat> = nicks
        .iter()
        .map(|nick| Chat::client(&address, nick, COOKIE))
        .collect();
    for client in &mut clients {
        client.expect("**Type /help for options**").await;
    }
    clients[0].send("/users").await;
    let users = clients[0].expect("**Users in room: user00").await;
    assert_eq!(users, format!("**Users in room: {}**", nicks.join(", ")));
    clients[49].send("hello fifty").await;
    for client in &mut clients[..49] {
        client.expect("user49: hello fifty").await;
    }
}

#[tokio::test]
async fn sigterm_stops_a_client_and_the_server_cleanly() {
    let (mut server, address) = Chat::server(COOKIE, &[]).await;
    let (mut alice, mut bob) = Chat::pair(&address, "alice", "bob", COOKIE).await;

    // A client leaves the room on SIGTERM and exits 0.
    bob.signal(15);
    alice.expect("**bob has left**").await;
    assert!(bob.exit_status().await.success());

    // The server tells its users before stopping its tree, and exits 0.
    server.signal(15);
    alice
        .expect("Server down: the server is shutting down")
        .await;
    server.expect("Shutting down").await;
    assert!(server.exit_status().await.success());
}

#[tokio::test]
async fn a_frozen_client_is_removed_after_the_liveness_timeout() {
    let (_server, address) = Chat::server(COOKIE, &["--liveness-timeout", "2"]).await;
    let mut alice = Chat::joined(&address, "alice", COOKIE).await;
    let bob = Chat::joined(&address, "bob", COOKIE).await;
    alice.expect("**bob has joined**").await;

    bob.signal(19); // SIGSTOP: the process is there, its node answers nothing
    alice.expect("**bob has left**").await;
    let mut bob_again = Chat::joined(&address, "bob", COOKIE).await;
    bob_again.send("the nick is free again").await;
    alice.expect("bob: the nick is free again").await;
    bob.signal(18);
}

/// The server's tree file with `from` replaced by `to`, written to a fresh directory
/// named after `purpose`; returns the directory (to remove) and the file.
fn server_tree_with(purpose: &str, from: &str, to: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("ex_messenger_{purpose}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("server.json");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../supervisor-specs/ex_messenger_server.json"),
    )
    .unwrap();
    assert!(text.contains(from), "the tree file no longer says {from}");
    std::fs::write(&file, text.replace(from, to)).unwrap();
    (dir, file)
}

#[tokio::test]
async fn a_bad_tree_file_is_refused_with_one_line_naming_file_field_and_fix() {
    let (dir, file) = server_tree_with("spec", "\"rest_for_one\"", "\"rest_for_all\"");

    let output = std::process::Command::new(otp_tests::chat::binary())
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--cookie",
            COOKIE,
            "--tree",
        ])
        .arg(&file)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("server.json") && stderr.contains("strategy"),
        "{stderr}"
    );
    assert!(
        stderr.contains("one_for_one"),
        "the fix lists what is allowed: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_server_keeps_serving_when_nobody_reads_its_output() {
    use tokio::io::AsyncBufReadExt;
    let mut server = tokio::process::Command::new(otp_tests::chat::binary())
        .args(["server", "--listen", "127.0.0.1:0", "--cookie", COOKIE])
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let ready = stdout.next_line().await.unwrap().unwrap();
    let address = otp_tests::chat::listening_address(&ready);
    drop(stdout); // whoever started the server stops reading

    let (mut alice, mut bob) = Chat::pair(&address, "alice", "bob", COOKIE).await;
    bob.send("still serving").await;
    alice.expect("bob: still serving").await;

    // Its "Shutting down" line goes nowhere; the shutdown is still clean.
    let pid = server.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-15", &pid])
        .status()
        .unwrap()
        .success());
    alice
        .expect("Server down: the server is shutting down")
        .await;
    let status = tokio::time::timeout(otp_tests::PATIENCE, server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn private_messages_and_other_requests_count_against_the_flood_limit() {
    // One request a second, bursts of two: a storm of a thousand cannot pass in time.
    let (_server, address) = Chat::server(COOKIE, &["--rate-limit", "1"]).await;
    let (mut alice, mut bob) = Chat::pair(&address, "alice", "bob", COOKIE).await;

    for i in 0..1000 {
        alice.send(&format!("/pm bob storm {i}")).await;
    }
    alice.expect("slow_down:").await;
    for _ in 0..200 {
        alice.send("/users").await;
        alice.send("/rooms").await;
        alice.send("/join lobby").await;
    }
    // Alice's quit is handled after all her requests; then the room tells bob.
    alice.close_input();
    bob.expect("**alice has left**").await;
    while alice.next().await.is_some() {}
    let storm = bob
        .transcript()
        .iter()
        .filter(|l| l.contains("alice (private): storm"))
        .count();
    assert!(
        (1..100).contains(&storm),
        "bob got {storm} of 1000 private messages"
    );
    let answers = alice
        .transcript()
        .iter()
        .filter(|l| l.contains("**Users in room") || l.contains("**Rooms:"))
        .count();
    assert!(answers < 100, "alice got {answers} of 600 answers");
}

#[tokio::test]
async fn a_line_of_invalid_utf8_is_refused_and_the_client_goes_on() {
    let (_server, address) = Chat::server(COOKIE, &[]).await;
    let (mut alice, mut bob) = Chat::pair(&address, "alice", "bob", COOKIE).await;

    bob.send_raw(b"caf\xe9 latin-1\n").await;
    bob.expect("line refused: it is not valid UTF-8 text").await;
    bob.send("still here").await;
    alice
        .expect_before("bob: still here", &["bob has left", "caf"])
        .await;
    // A line over the limit is refused by the client without reading it all into memory,
    // and the next line goes.
    let mut long = vec![b'y'; 100_000];
    long.extend_from_slice(b"\nand after it\n");
    bob.send_raw(&long).await;
    bob.expect("message too long (100000 bytes)").await;
    alice.expect_before("bob: and after it", &["yyyy"]).await;
}

#[tokio::test]
async fn lines_typed_while_the_link_is_down_are_sent_once_it_is_back() {
    let (_server, address) = Chat::server(COOKIE, &["--liveness-timeout", "2"]).await;
    let (mut alice, mut bob) = Chat::pair(&address, "alice", "bob", COOKIE).await;

    // Alice's link dies while she is frozen; what she typed meanwhile waits in her input
    // and goes once she is back in the room. Bob stays in the room all along.
    alice.signal(19); // SIGSTOP
    bob.expect("**alice has left**").await;
    alice.send("typed while away 1").await;
    alice.send("typed while away 2").await;
    alice.signal(18); // SIGCONT
    alice.expect("Reconnected").await;
    bob.expect("**alice has joined**").await;
    bob.expect_before("alice: typed while away 1", &["away 2"])
        .await;
    bob.expect("alice: typed while away 2").await;
    barrier(&mut bob, &["typed while away"]).await;
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_disconnected_and_told_why_when_it_returns() {
    // A small bound, a flood limit out of the way, and a liveness timeout longer than the
    // test: the frozen reader is dropped for its backlog, not for its silence.
    let (_server, address) = Chat::server(
        COOKIE,
        &[
            "--max-backlog",
            "131072",
            "--rate-limit",
            "10000",
            "--liveness-timeout",
            "120",
        ],
    )
    .await;
    let (mut alice, mut bob) = Chat::pair(&address, "alice", "bob", COOKIE).await;

    bob.signal(19); // SIGSTOP: bob reads nothing more
    let mut sent = 0;
    while !alice
        .transcript()
        .iter()
        .any(|l| l.contains("**bob has left**"))
    {
        for _ in 0..50 {
            alice.send(&format!("line {sent} {}", "z".repeat(80))).await;
            sent += 1;
        }
        // Alice's own lines are not echoed to her: the answer to /users comes after the
        // room has placed all of them.
        alice.send("/users").await;
        alice.expect("**Users in room:").await;
        assert!(sent < 5000, "bob was never dropped");
    }
    bob.signal(18); // SIGCONT: bob reads again, finds his link gone, and comes back
    bob.expect("Server down").await;
    bob.expect("Reconnected").await;
    bob.expect("You were disconnected: you were").await;
    alice.send("welcome back").await;
    bob.expect("alice: welcome back").await;
}

#[tokio::test]
async fn rooms_are_bounded_with_a_clear_refusal_and_joins_count_against_the_flood_limit() {
    // The server's tree with room for two rooms only (the lobby and one more).
    let (dir, file) = server_tree_with("rooms", "\"max_children\": 10000", "\"max_children\": 2");
    let file = file.to_string_lossy().into_owned();
    let (_server, address) = Chat::server(COOKIE, &["--tree", &file]).await;
    let (mut alice, mut bob) = Chat::pair(&address, "alice", "bob", COOKIE).await;

    alice.send("/join one").await;
    alice.expect("**Joined the chatroom one**").await;
    bob.send("/join two").await;
    bob.expect("room_limit: the server has 2 rooms open").await;
    // A refused join leaves bob where he was, and he can join an open room.
    bob.send("/users").await;
    bob.expect("**Users in room: bob**").await;
    bob.send("/join one").await;
    bob.expect("**Joined the chatroom one**").await;
    bob.expect("**Users in room: alice, bob**").await;
    alice.expect("**bob has joined**").await;

    // A storm of joins to distinct rooms is cut by the flood limit like any request.
    for n in 0..300 {
        alice.send(&format!("/join storm{n}")).await;
    }
    alice.expect("slow_down:").await;
    // Others are served meanwhile; alice, refused, is still in her room.
    bob.send("/users").await;
    bob.expect("**Users in room: alice, bob**").await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A line said just before its sender leaves a room they are the last in is answered
/// before the room closes (a room is stopped after what it was sent before). Unanswered,
/// it would hold one of the sender's eight places in flight for good: here each room is
/// made to lag, so the line still waits in its mailbox as the room closes, ten times,
/// more than the window.
#[tokio::test]
async fn a_line_said_just_before_leaving_an_empty_room_is_answered() {
    let (mut server, address) = Chat::server(COOKIE, &["--fault-hook"]).await;
    let (mut alice, mut bob) = Chat::pair(&address, "alice", "bob", COOKIE).await;
    for n in 0..10 {
        alice.send(&format!("/join side{n}")).await;
        alice
            .expect(&format!("**Joined the chatroom side{n}**"))
            .await;
        server.send(&format!("stall room side{n} 300")).await;
        server.expect("FAULT stalled").await;
        alice.send(&format!("alone in side{n}\n/join")).await;
        alice.expect("**Joined the chatroom**").await;
    }
    alice.send("back in the lobby").await;
    bob.expect("alice: back in the lobby").await;
}

/// A line said in a room just before leaving it, lost when that room is killed before
/// placing it, is placed there once the room is back: its sender, now elsewhere, is asked
/// for it again.
#[tokio::test]
async fn a_line_lost_with_a_room_its_sender_just_left_still_reaches_that_room() {
    let (mut server, address) = Chat::server(COOKIE, &["--fault-hook"]).await;
    let (mut alice, mut carol) = Chat::pair(&address, "alice", "carol", COOKIE).await;
    alice.send("/join side").await;
    alice.expect("**Joined the chatroom side**").await;
    carol.send("/join side").await;
    carol.expect("**Joined the chatroom side**").await;
    alice.expect("**carol has joined**").await;

    server.send("stall room side 60000").await;
    server.expect("FAULT stalled").await;
    alice.send("said before leaving\n/join").await;
    alice.expect("**Joined the chatroom**").await;
    server.send("kill room side").await;
    server.expect("FAULT restarted").await;
    carol
        .expect_before("alice: said before leaving", &["Server down"])
        .await;
    alice.send("/pm carol and the rest goes on").await;
    carol.expect("alice (private): and the rest goes on").await;
}
