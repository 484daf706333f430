//! Process groups and global names across nodes in separate OS processes: this process's
//! node (the tester) and `--scripted` fixture nodes it drives line by line.
//!
//! As in `distribution.rs`, each scenario runs in a process of its own, and every wait is
//! for an event (a group monitor's notice, a fixture's answer) or, for a state that
//! announces nothing, a bounded look-again.

use otp::node::global::{Conflict, GlobalError};
use otp::node::pg::{GroupEvent, Peers, Scope};
use otp::node::{Cookie, Member, Node, NodeConfig};
use otp::{Context, ExitReason, Flow, GenServer, Info, Init, ServerRef};
use otp_tests::wait::{self, run};
use otp_tests::{Casts, Count, Echo, EchoCast, EchoServer, FixtureNode, Say};
use rusty_fork::rusty_fork_test;
use tokio::sync::mpsc;

const FIXTURE: &str = env!("CARGO_BIN_EXE_node_fixture");
const COOKIE: &str = "cluster-test-cookie";
/// The fixtures' scope (`script.rs`).
const SCOPE: &str = "test";
const GROUP: &str = "g";

otp::protocol! {
    /// What a [`GroupWatcherServer`] is sent: a group's notices.
    pub GroupWatcher;
    infos GroupEvent;
}

/// Forwards a group's join and leave notices to a test.
struct GroupWatcherServer(mpsc::UnboundedSender<GroupEvent>);

impl Init<(mpsc::UnboundedSender<GroupEvent>, Scope)> for GroupWatcherServer {
    async fn init(
        (events, scope): (mpsc::UnboundedSender<GroupEvent>, Scope),
        me: &Context<Self>,
    ) -> otp::Result<Self> {
        scope.monitor(me, GROUP, |event| event).await?;
        Ok(Self(events))
    }
}

impl GenServer for GroupWatcherServer {
    type Protocol = GroupWatcher;

    async fn handle_info(&mut self, info: Info<GroupEvent>, _: &Context<Self>) -> otp::Result {
        if let Info::Message(event) = info {
            let _ = self.0.send(event);
        }
        Ok(Flow::Continue)
    }
}

/// This process's node, its scope, and the notices of group [`GROUP`].
struct Tester {
    node: Node,
    scope: Scope,
    events: mpsc::UnboundedReceiver<GroupEvent>,
    /// Members of the group by the notices taken so far (it is empty when watching starts).
    counted: usize,
    _watcher: ServerRef<GroupWatcher>,
}

impl Tester {
    async fn start() -> Tester {
        Self::start_with(Peers::All).await
    }

    /// A tester whose scope takes members from `peers`.
    async fn start_with(peers: Peers) -> Tester {
        let config = NodeConfig::new(
            "tester",
            "127.0.0.1:0".parse().unwrap(),
            Cookie::new(COOKIE).unwrap(),
        );
        let node = Node::start(config).await.expect("local node starts");
        let scope = Scope::start_with(SCOPE, peers)
            .await
            .expect("the scope starts");
        let (sender, events) = mpsc::unbounded_channel();
        let watcher = GroupWatcherServer::with_args((sender, scope.clone()))
            .start()
            .await
            .unwrap();
        Tester {
            node,
            scope,
            events,
            counted: 0,
            _watcher: watcher,
        }
    }

    /// A scripted fixture named `name`, not connected.
    async fn fixture(&self, name: &str) -> FixtureNode {
        FixtureNode::start(FIXTURE, &[name, COOKIE, "--scripted"]).await
    }

    /// A scripted fixture named `name`, connected.
    async fn connected(&self, name: &str) -> FixtureNode {
        let fixture = self.fixture(name).await;
        self.node.connect(&fixture.address).await.expect("connects");
        fixture
    }

    /// The next notice for the group, as (joined, how many, from which node).
    async fn next_event(&mut self) -> (bool, usize, String) {
        let event = wait::next("a group notice", &mut self.events).await;
        assert_eq!(event.group, GROUP);
        let node = event.members[0].node.clone();
        assert!(event.members.iter().all(|m| m.node == node));
        let n = event.members.len();
        self.counted = if event.joined {
            self.counted + n
        } else {
            self.counted - n
        };
        (event.joined, n, node)
    }

    /// Takes notices until they add up to `count` members.
    async fn members_reach(&mut self, count: usize) {
        while self.counted != count {
            self.next_event().await;
        }
    }
}

fn signal(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// A member's answer to an echo call.
async fn echo(member: &Member<Echo>, text: &str) -> String {
    member
        .call(Say(text.into()))
        .await
        .expect("the member answers")
}

rusty_fork_test! {
    #[test]
    fn groups_span_nodes_and_a_broadcast_reaches_every_member() {
        run(groups_span_nodes_case());
    }

    #[test]
    fn members_leave_when_they_leave_exit_or_their_node_goes() {
        run(members_leave_case());
    }

    #[test]
    fn a_group_holds_one_protocol_per_node() {
        run(one_protocol_case());
    }

    #[test]
    fn a_scope_of_admitted_peers_takes_members_from_admitted_nodes_only() {
        run(admitted_case());
    }

    #[test]
    fn a_second_node_under_a_connected_nodes_name_places_nothing() {
        run(same_name_case());
    }

    #[test]
    fn global_names_are_unique_and_reach_their_server_from_any_node() {
        run(global_names_case());
    }

    #[test]
    fn after_a_split_the_older_registration_keeps_the_name_and_the_loser_is_told() {
        run(split_notify_case());
    }

    #[test]
    fn a_loser_registered_to_exit_stops_with_the_conflict_as_its_reason() {
        run(split_exit_case());
    }
}

async fn groups_span_nodes_case() {
    let mut tester = Tester::start().await;
    let mut alpha = tester.connected("alpha").await;
    let mut beta = tester.connected("beta").await;
    for fixture in [&mut alpha, &mut beta] {
        assert!(fixture
            .command(&format!("join {GROUP}"))
            .await
            .starts_with("JOINED "));
    }
    assert!(alpha
        .command(&format!("join {GROUP}"))
        .await
        .starts_with("JOINED "));
    let local = EchoServer::new("local:").start().await.unwrap();
    tester.scope.join(GROUP, &local).await.unwrap();
    tester.members_reach(4).await;
    assert_eq!(tester.scope.local_members::<Echo>(GROUP).len(), 1);
    assert_eq!(tester.scope.which_groups(), vec![GROUP.to_owned()]);

    // Each member answers a call from here, wherever it runs.
    let mut answers = Vec::new();
    for member in tester.scope.members::<Echo>(GROUP) {
        answers.push(echo(&member, "hi").await);
    }
    answers.sort();
    assert_eq!(answers, ["alpha:hi", "alpha:hi", "beta:hi", "local:hi"]);

    // One broadcast: this node and two others, every member once. A call from here to a
    // member travels behind it, through the same scope process.
    assert_eq!(
        tester
            .scope
            .broadcast::<Echo>(GROUP, &EchoCast::Count(Count)),
        3
    );
    for member in tester.scope.members::<Echo>(GROUP) {
        let casts = member.call(Casts).await;
        assert_eq!(casts.as_deref(), Ok("1"), "{member:?}");
    }

    // A broadcast from a fixture reaches the members here too.
    assert_eq!(beta.command(&format!("broadcast {GROUP}")).await, "SENT 2");
    assert_eq!(alpha.command(&format!("casts {GROUP}")).await, "CASTS 2");
    wait::eventually(
        "the local member to count the fixture's broadcast",
        || async {
            match local.call(Casts).await.as_deref() {
                Ok("2") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
}

async fn members_leave_case() {
    let mut tester = Tester::start().await;
    let mut alpha = tester.connected("alpha").await;
    for _ in 0..3 {
        alpha.command(&format!("join {GROUP}")).await;
    }
    tester.members_reach(3).await;

    assert_eq!(alpha.command(&format!("leave {GROUP}")).await, "LEFT true");
    assert_eq!(tester.next_event().await, (false, 1, alpha.name.clone()));
    assert_eq!(alpha.command(&format!("stop {GROUP}")).await, "STOPPED");
    assert_eq!(tester.next_event().await, (false, 1, alpha.name.clone()));
    assert_eq!(tester.scope.members::<Echo>(GROUP).len(), 1);

    // The node goes: its last member leaves at once, in one notice.
    alpha.command(&format!("join {GROUP}")).await;
    assert_eq!(tester.next_event().await, (true, 1, alpha.name.clone()));
    signal(alpha.pid(), "-KILL");
    assert_eq!(tester.next_event().await, (false, 2, alpha.name.clone()));
    assert!(tester.scope.members::<Echo>(GROUP).is_empty());

    // A local member leaves on its exit, and can leave only as often as it joined.
    let local = EchoServer::default().start().await.unwrap();
    tester.scope.join(GROUP, &local).await.unwrap();
    assert!(tester.scope.leave(GROUP, &local).await.unwrap());
    assert!(!tester.scope.leave(GROUP, &local).await.unwrap());
    tester.scope.join(GROUP, &local).await.unwrap();
    local.stop(ExitReason::Normal).await.unwrap();
    let mut joins_and_leaves = Vec::new();
    for _ in 0..4 {
        let (joined, n, _) = tester.next_event().await;
        joins_and_leaves.push((joined, n));
    }
    assert_eq!(
        joins_and_leaves,
        [(true, 1), (false, 1), (true, 1), (false, 1)]
    );
    assert!(tester.scope.which_groups().is_empty());
}

otp::protocol! {
    /// Another protocol than `Echo`.
    pub Other;
}

/// A server of another protocol than `Echo`.
struct OtherServer;

impl GenServer for OtherServer {
    type Protocol = Other;
}

async fn one_protocol_case() {
    let tester = Tester::start().await;
    let echo = EchoServer::default().start().await.unwrap();
    tester.scope.join(GROUP, &echo).await.unwrap();
    let other = OtherServer.start().await.unwrap();
    let refused = tester.scope.join(GROUP, &other).await;
    assert_eq!(
        refused,
        Err(otp::node::pg::PgError::OtherProtocol(GROUP.into()))
    );
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("one group, one protocol"));
    // Members of another protocol are not handed out under this one.
    assert!(tester.scope.members::<Other>(GROUP).is_empty());
    assert_eq!(tester.scope.members::<Echo>(GROUP).len(), 1);
}

async fn admitted_case() {
    let mut tester = Tester::start_with(Peers::Admitted).await;
    let mut alpha = tester.connected("alpha").await;
    let mut beta = tester.connected("beta").await;
    tester.scope.admit(&beta.name, true).await.unwrap();
    alpha.command(&format!("join {GROUP}")).await;
    beta.command(&format!("join {GROUP}")).await;
    // beta's member shows; alpha's, which joined first, does not.
    assert_eq!(tester.next_event().await, (true, 1, beta.name.clone()));
    assert_eq!(tester.scope.members::<Echo>(GROUP).len(), 1);
    // Admitted, alpha's members come in; expelled, they leave.
    tester.scope.admit(&alpha.name, true).await.unwrap();
    assert_eq!(tester.next_event().await, (true, 1, alpha.name.clone()));
    tester.scope.admit(&alpha.name, false).await.unwrap();
    assert_eq!(tester.next_event().await, (false, 1, alpha.name.clone()));
    let nodes: Vec<String> = tester
        .scope
        .members::<Echo>(GROUP)
        .iter()
        .map(|m| m.id().node)
        .collect();
    assert_eq!(nodes, [beta.name.clone()]);
}

async fn same_name_case() {
    let mut tester = Tester::start().await;
    let mut alpha = tester.connected("alpha").await;
    // Another cookie holder takes the connected node's name and dials in: its link is
    // refused, so its members are never taken for alpha's.
    let mut impostor = tester.fixture("alpha").await;
    let address = tester.node.address().to_string();
    let refused = impostor.command(&format!("connect {address}")).await;
    assert!(refused.starts_with("ERROR"), "{refused}");
    impostor.command(&format!("join {GROUP}")).await;
    impostor.command(&format!("join {GROUP}")).await;
    alpha.command(&format!("join {GROUP}")).await;
    assert_eq!(tester.next_event().await, (true, 1, alpha.name.clone()));
    assert_eq!(tester.scope.members::<Echo>(GROUP).len(), 1);
    assert_eq!(tester.node.peers().await.unwrap(), [alpha.name.clone()]);
}

async fn global_names_case() {
    let tester = Tester::start().await;
    let mut alpha = tester.connected("alpha").await;
    let mut beta = tester.connected("beta").await;
    // beta reaches alpha's names only once it is connected to alpha too.
    assert!(beta
        .command(&format!("connect {}", alpha.address))
        .await
        .starts_with("CONNECTED"));
    assert_eq!(alpha.command("register leader").await, "REGISTERED");
    let global = tester.node.global().clone();
    let holder = wait::eventually("the name to reach this node", || async {
        global.whereis_name::<Echo>("leader").ok_or("not yet")
    })
    .await;
    assert_eq!(holder.id().node, alpha.name);
    assert_eq!(echo(&holder, "hi").await, "alpha:hi");
    assert_eq!(global.registered_names(), vec!["leader".to_owned()]);

    // Taken, from here and from another fixture.
    let mine = EchoServer::default().start().await.unwrap();
    assert_eq!(
        global.register_name("leader", &mine).await,
        Err(GlobalError::Taken {
            name: "leader".into(),
            holder: holder.id()
        })
    );
    // beta learns it from alpha, with no event to wait on: ask until it knows the name.
    // Any other answer than not knowing it is final (one that names the name but cannot
    // reach its holder fails below).
    let beta_sees = wait::within("beta to see the name", async {
        loop {
            match beta.command("call leader hello").await {
                line if line == "ERROR no such name" => continue,
                line => break line,
            }
        }
    })
    .await;
    assert_eq!(beta_sees, "REPLY alpha:hello");
    assert!(beta.command("register leader").await.starts_with("TAKEN "));

    // The holder's node goes: the name is free, and taken here.
    signal(alpha.pid(), "-KILL");
    wait::eventually("the name to go with its node", || async {
        match global.holder("leader") {
            None => Ok(()),
            Some(holder) => Err(holder),
        }
    })
    .await;
    global.register_name("leader", &mine).await.unwrap();
    assert_eq!(
        global.whereis_name::<Echo>("leader").map(|m| m.is_local()),
        Some(true)
    );
    // And goes with its server.
    mine.stop(ExitReason::Normal).await.unwrap();
    wait::eventually("the name to go with its server", || async {
        global.holder("leader").map_or(Ok(()), Err)
    })
    .await;
}

async fn split_notify_case() {
    let tester = Tester::start().await;
    // Two nodes apart register the same name; this one first.
    let (sender, mut conflicts) = mpsc::unbounded_channel();
    let mine = EchoServer::default().start().await.unwrap();
    let global = tester.node.global().clone();
    let tell = move |conflict: Conflict| _ = sender.send(conflict);
    global
        .register_name_notify("leader", &mine, tell)
        .await
        .unwrap();
    let mut alpha = tester.fixture("alpha").await;
    assert_eq!(alpha.command("register leader").await, "REGISTERED");
    // They meet: the older registration (this node's) keeps the name, on both sides, and
    // alpha's holder is told, in one line.
    // The conflict is told as it happens, before or after the connect's own answer.
    let first = alpha
        .command(&format!("connect {}", tester.node.address()))
        .await;
    let mut lines = [first, alpha.next_line().await];
    lines.sort();
    let [told, connected] = lines;
    assert!(connected.starts_with("CONNECTED"), "{connected}");
    let winner = global.holder("leader").expect("the name is held");
    assert_eq!(winner.node, tester.node.name());
    assert_eq!(told, format!("CONFLICT leader {winner}"));
    assert_eq!(
        alpha.command("whereis leader").await,
        format!("AT {winner}")
    );
    assert!(conflicts.try_recv().is_err(), "the winner was told it lost");
    assert!(mine.is_alive());
}

async fn split_exit_case() {
    let tester = Tester::start().await;
    let mut alpha = tester.fixture("alpha").await;
    assert_eq!(alpha.command("register-exit leader").await, "REGISTERED");
    // Registered later, apart: this one loses when they meet, and stops.
    let mine = EchoServer::default().start().await.unwrap();
    let global = tester.node.global().clone();
    global.register_name("leader", &mine).await.unwrap();
    let (sender, mut downs) = mpsc::unbounded_channel();
    otp_tests::Down::watch(sender, mine.cell()).await.unwrap();
    tester.node.connect(&alpha.address).await.unwrap();
    let reason = wait::next("the loser's exit", &mut downs).await;
    assert_eq!(
        reason,
        ExitReason::ShutdownWith("global name conflict: leader".into())
    );
    let winner = wait::eventually("the winner's name to reach this node", || async {
        global
            .holder("leader")
            .filter(|h| h.node == alpha.name)
            .ok_or("not yet")
    })
    .await;
    assert_eq!(
        alpha.command("whereis leader").await,
        format!("AT {winner}")
    );
}
