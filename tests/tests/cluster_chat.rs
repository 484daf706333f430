//! The chat across three server processes, with clients spread over them: lines, `/pm`,
//! `/users` and nicks span the servers; a server killed takes only its own connections;
//! a frozen server is cut off, then the cluster heals and a nick taken twice meanwhile
//! goes to the user who had it first.

use otp_tests::chat::Chat;

const COOKIE: &str = "cluster-chat-cookie";

/// Three servers: the first alone, the others joining it; returns once each has linked
/// to both others. `extra` goes to every server.
async fn cluster(key: &std::path::Path, extra: &[&str]) -> Vec<(Chat, String)> {
    let key = key.to_str().expect("a UTF-8 path");
    let base = ["--cookie", COOKIE, "--cluster-key-file", key];
    let mut servers = Vec::new();
    let (first, first_address) = Chat::server(COOKIE, &[&base[2..], extra].concat()).await;
    servers.push((first, first_address.clone()));
    for _ in 0..2 {
        let args = [&base[2..], &["--join", &first_address], extra].concat();
        servers.push(Chat::server(COOKIE, &args).await);
    }
    for (server, _) in &mut servers {
        linked(server, 2).await;
    }
    servers
}

/// Waits until `server` has said "Linked to server" `count` times in all.
async fn linked(server: &mut Chat, count: usize) {
    let said = |s: &Chat| {
        let lines = s.transcript().iter();
        lines.filter(|l| l.contains("Linked to server")).count()
    };
    while said(server) < count {
        server.expect("Linked to server").await;
    }
}

/// Reads the user list `chat` was shown on entering a room, which holds `users` once news
/// from the other servers has come. A user who entered on another server a moment before
/// may not be in it yet: their server tells their seat before their room's notice, on
/// one link, so such a user is then announced right after, as anyone who enters later.
async fn expect_entered_among(chat: &mut Chat, users: &[&str]) {
    const LIST: &str = "**Users in room: ";
    let line = chat.expect(LIST).await;
    let listed = line.trim_start_matches(LIST).trim_end_matches("**");
    let listed: Vec<&str> = listed.split(", ").collect();
    assert!(
        listed.iter().all(|user| users.contains(user)),
        "{line:?} lists someone not in {users:?}"
    );
    for user in users.iter().filter(|user| !listed.contains(user)) {
        chat.expect(&format!("**{user} has joined**")).await;
    }
}

/// A cluster key file of this test's own.
fn key_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cluster-chat-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir.join("cluster.key")
}

#[tokio::test]
async fn a_line_said_on_one_server_reaches_the_room_on_every_server() {
    let servers = cluster(&key_file("lines"), &[]).await;
    let mut alice = Chat::joined(&servers[0].1, "alice", COOKIE).await;
    let mut bob = Chat::joined(&servers[1].1, "bob", COOKIE).await;
    let mut carol = Chat::joined(&servers[2].1, "carol", COOKIE).await;
    alice.expect("**carol has joined**").await;
    bob.expect("**carol has joined**").await;
    alice.send("hello from a").await;
    bob.expect("alice: hello from a").await;
    carol.expect("alice: hello from a").await;
    carol.send("hello from c").await;
    alice.expect("carol: hello from c").await;
    bob.expect("carol: hello from c").await;
    // A room of its own spans servers too; who enters sees everyone in it.
    bob.send("/join dev").await;
    bob.expect("**Joined the chatroom dev**").await;
    carol.send("/join dev").await;
    expect_entered_among(&mut carol, &["bob", "carol"]).await;
    bob.expect("**carol has joined**").await;
    carol.send("in dev").await;
    bob.expect("carol: in dev").await;
    alice.expect_before("**carol has left**", &["in dev"]).await;
}

#[tokio::test]
async fn private_messages_users_and_rooms_span_servers() {
    let servers = cluster(&key_file("pm"), &[]).await;
    let mut alice = Chat::joined(&servers[0].1, "alice", COOKIE).await;
    let mut bob = Chat::joined(&servers[1].1, "bob", COOKIE).await;
    let mut carol = Chat::joined(&servers[2].1, "carol", COOKIE).await;
    alice.expect("**carol has joined**").await;
    bob.expect("**carol has joined**").await;
    alice.send("/pm carol just for you").await;
    carol.expect("alice (private): just for you").await;
    bob.send("/users").await;
    bob.expect("**Users in room: alice, bob, carol**").await;
    carol.send("/join dev").await;
    carol.expect("**Joined the chatroom dev**").await;
    // Carol's server tells her new seat before the lobby's notice that she left, on the
    // one link to alice's server: once alice has the notice, her server has the seat.
    alice.expect("**carol has left**").await;
    alice.send("/rooms").await;
    alice.expect("**Rooms: dev (1), lobby (2)**").await;
    alice.send("/pm nobody hello").await;
    alice.expect("receiver_not_found").await;
}

#[tokio::test]
async fn a_nick_is_unique_across_servers() {
    let servers = cluster(&key_file("nick"), &[]).await;
    let _alice = Chat::joined(&servers[0].1, "alice", COOKIE).await;
    // Once the third server knows alice (its user list shows her)...
    let mut carol = Chat::client(&servers[2].1, "carol", COOKIE);
    expect_entered_among(&mut carol, &["alice", "carol"]).await;
    let mut twin = Chat::client(&servers[2].1, "alice", COOKIE);
    twin.expect("Could not join chatroom, reason: nick_in_use")
        .await;
}

#[tokio::test]
async fn a_killed_server_takes_only_its_own_connections() {
    let mut servers = cluster(&key_file("killed"), &[]).await;
    let mut alice = Chat::joined(&servers[0].1, "alice", COOKIE).await;
    let mut bob = Chat::joined(&servers[1].1, "bob", COOKIE).await;
    let mut carol = Chat::joined(&servers[2].1, "carol", COOKIE).await;
    alice.expect("**carol has joined**").await;
    bob.send("/join dev").await;
    bob.expect("**Joined the chatroom dev**").await;
    // The lobby tells alice that bob left it; that notice and the dev room's answers come
    // from two rooms, in no set order: taken before she moves, it cannot come after.
    alice.expect("**bob has left**").await;
    alice.send("/join dev").await;
    bob.expect("**alice has joined**").await;
    servers[1].0.kill().await;
    // bob moves to another server with nick and room; alice and carol chat on.
    bob.expect("Server down").await;
    carol.send("/pm alice still here").await;
    alice.expect("carol (private): still here").await;
    bob.expect("Reconnected").await;
    alice.send("after the loss").await;
    bob.expect("alice: after the loss").await;
    bob.send("/users").await;
    bob.expect("**Users in room: alice, bob**").await;
    // Nobody in the room saw bob leave it.
    let in_dev = alice
        .transcript()
        .iter()
        .skip_while(|l| !l.contains("**Joined the chatroom dev**"));
    assert!(
        !in_dev.clone().any(|l| l.contains("**bob has left**")),
        "{:#?}",
        alice.transcript()
    );
}

#[tokio::test]
async fn a_frozen_server_is_cut_off_and_on_heal_the_older_nick_keeps_its_name() {
    let mut servers = cluster(&key_file("split"), &["--liveness-timeout", "2"]).await;
    let mut alice = Chat::joined(&servers[0].1, "alice", COOKIE).await;
    let mut bob = Chat::joined(&servers[1].1, "bob", COOKIE).await;
    // frank's client waits out a frozen server instead of moving.
    let args = [
        "client",
        "-s",
        &servers[2].1,
        "-n",
        "frank",
        "--cookie",
        COOKIE,
    ];
    let mut frank = Chat::spawn(
        "frank",
        &[&args[..], &["--liveness-timeout", "60"]].concat(),
    );
    frank.expect("**Type /help for options**").await;
    alice.expect("**frank has joined**").await;

    servers[2].0.signal(19); // SIGSTOP
    servers[0].0.expect("Lost server").await;
    servers[1].0.expect("Lost server").await;
    // The other side chats on, and the nick of the frozen side's user is free there.
    alice.send("during the split").await;
    bob.expect("alice: during the split").await;
    let mut usurper = Chat::joined(&servers[0].1, "frank", COOKIE).await;
    bob.expect("**frank has joined**").await;

    // Thawed (SIGCONT): one cluster again, each server linked to the one it had lost (the
    // thawed one to both), counting the links made at the start.
    servers[2].0.signal(18);
    for ((server, _), links) in servers.iter_mut().zip([3, 3, 4]) {
        linked(server, links).await;
    }
    // frank who had the nick first keeps it; the other is told why, in one line, and
    // leaves.
    usurper
        .expect(
            "Disconnected, reason: nick_lost: while the servers were apart, frank was also taken",
        )
        .await;
    frank.send("back again").await;
    alice.expect("frank: back again").await;
    bob.expect("frank: back again").await;
}

#[tokio::test]
async fn a_server_that_joins_later_learns_who_is_where() {
    let key = key_file("later");
    let mut servers = cluster(&key, &[]).await;
    let mut alice = Chat::joined(&servers[0].1, "alice", COOKIE).await;
    let mut bob = Chat::joined(&servers[1].1, "bob", COOKIE).await;
    bob.send("/join dev").await;
    bob.expect("**Joined the chatroom dev**").await;

    let args = [
        "--cluster-key-file",
        key.to_str().unwrap(),
        "--join",
        &servers[2].1,
    ];
    let (mut late, late_address) = Chat::server(COOKIE, &args).await;
    linked(&mut late, 3).await;
    for (server, _) in &mut servers {
        linked(server, 3).await;
    }
    let mut dave = Chat::client(&late_address, "alice", COOKIE);
    dave.expect("Could not join chatroom, reason: nick_in_use")
        .await;
    let mut dave = Chat::joined(&late_address, "dave", COOKIE).await;
    dave.send("/rooms").await;
    dave.expect("**Rooms: dev (1), lobby (2)**").await;
    dave.send("/join dev").await;
    dave.expect("**Users in room: bob, dave**").await;
    bob.expect("**dave has joined**").await;
    dave.send("hello from the new server").await;
    bob.expect("dave: hello from the new server").await;
    alice.send("/pm dave welcome").await;
    dave.expect("alice (private): welcome").await;
}
