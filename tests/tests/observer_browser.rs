//! The observer's page in a real browser: `ex_messenger server --observer` with clients
//! chatting, the page opened in headless Chromium through chromedriver (WebDriver), and
//! checked as a person would look at it and click.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them when missing);
//! `CHROMEDRIVER` names another driver binary. Without a driver each scenario says so and
//! passes, unless `OBSERVER_BROWSER=required` (as `.ci/run` sets): then it fails.

use std::process::Stdio;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use otp_tests::chat::Chat;
use otp_tests::observer_page::{action, exchange, status_line};
use otp_tests::{wait, PATIENCE};
use tokio::process::{Child, Command};

const COOKIE: &str = "observer-browser-cookie";

/// A headless Chromium driven through its own chromedriver; both end with it.
struct Browser {
    client: Client,
    _driver: Child,
}

impl Browser {
    /// A browser, or `None` (said on stderr) when no driver is installed and none is
    /// required.
    async fn start() -> Option<Browser> {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let required = std::env::var("OBSERVER_BROWSER").is_ok_and(|v| v == "required");
        let found = std::process::Command::new(&binary)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found && !required {
            eprintln!("SKIPPED: {binary} not found; install Debian's chromium and chromium-driver to run the observer's browser tests");
            return None;
        }
        let port = free_port();
        let driver = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("{binary} did not start ({error}): install Debian's chromium and chromium-driver (.ci/run does)")
            });
        let options = serde_json::json!({
            "goog:chromeOptions": {
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1000"]
            }
        });
        let capabilities = options.as_object().expect("an object").clone();
        let url = format!("http://127.0.0.1:{port}");
        let client = wait::eventually("chromedriver to open a browser", || async {
            let mut builder = ClientBuilder::new(HttpConnector::new());
            builder.capabilities(capabilities.clone());
            match tokio::time::timeout(PATIENCE, builder.connect(&url)).await {
                Ok(connected) => connected.map_err(|error| error.to_string()),
                Err(_) => Err("no session within PATIENCE".to_owned()),
            }
        })
        .await;
        Some(Browser {
            client,
            _driver: driver,
        })
    }

    /// The element matching `css`, once there is one.
    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} on the page: {error}"))
    }

    /// The text of `css`, once it contains `wanted`.
    async fn text_once(&self, css: &str, wanted: &str) -> String {
        wait::eventually(&format!("{css} to say {wanted:?}"), || async {
            let text = self.find(css).await.text().await.unwrap_or_default();
            match text.contains(wanted) {
                true => Ok(text),
                false => Err(text),
            }
        })
        .await
    }

    /// When the snapshot on the page was taken.
    async fn taken(&self) -> Option<String> {
        let body = self.find("body").await;
        body.attr("data-taken").await.ok().flatten()
    }

    /// The `data-id`s of every tree row under the supervisor `parent`.
    async fn children_of(&self, parent: &str) -> Vec<String> {
        let rows = self
            .client
            .find_all(Locator::Css(&format!("#trees tr[data-key*='/{parent}/']")))
            .await
            .expect("rows");
        let mut ids = Vec::new();
        for row in rows {
            ids.push(row.attr("data-id").await.expect("attr").unwrap_or_default());
        }
        ids.sort();
        ids
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// A chat server with its observer on, and four clients: alice and dave in the lobby,
/// bob and carol in room `games`.
struct Scene {
    server: Chat,
    /// The observer's address with its token, as the server printed it.
    url: String,
    alice: Chat,
    bob: Chat,
    carol: Chat,
    dave: Chat,
}

impl Scene {
    async fn start() -> Scene {
        let (mut server, address) = Chat::server(COOKIE, &["--observer", "127.0.0.1:0"]).await;
        let printed = server.expect("Observer: ").await;
        let url = printed.trim_start_matches("Observer: ").to_owned();
        let (alice, dave) = Chat::pair(&address, "alice", "dave", COOKIE).await;
        let mut bob = Chat::joined(&address, "bob", COOKIE).await;
        let mut carol = Chat::joined(&address, "carol", COOKIE).await;
        bob.send("/join games").await;
        bob.expect("**Joined the chatroom games**").await;
        carol.send("/join games").await;
        carol.expect("**Users in room: bob, carol**").await;
        Scene {
            server,
            url,
            alice,
            bob,
            carol,
            dave,
        }
    }

    /// The scene, and a browser on its observer's page once the page shows the message
    /// server running; `None` when no driver is installed and none is required.
    async fn watched() -> Option<(Scene, Browser)> {
        let scene = Scene::start().await;
        let browser = Browser::start().await?;
        browser
            .client
            .goto(&scene.url)
            .await
            .expect("open the page");
        browser
            .find("#trees tr[data-id='message_server'][data-state='running']")
            .await;
        Some((scene, browser))
    }

    /// Lines still go around both rooms.
    async fn chat_goes_on(&mut self, tag: &str) {
        self.alice.send(&format!("lobby {tag}")).await;
        self.dave.expect(&format!("alice: lobby {tag}")).await;
        self.bob.send(&format!("games {tag}")).await;
        self.carol.expect(&format!("bob: games {tag}")).await;
    }
}

#[tokio::test]
async fn the_page_shows_the_tree_and_a_killed_room_comes_back_while_clients_chat() {
    let Some((mut scene, browser)) = Scene::watched().await else {
        return;
    };
    browser
        .find("#trees tr[data-id='games'][data-state='running']")
        .await;
    assert_eq!(browser.children_of("rooms").await, ["games", "lobby"]);
    browser.text_once("#node", "server-").await;
    let games = browser.find("#trees tr[data-id='games']").await;
    let first_pid = games.attr("data-pid").await.expect("attr").expect("a pid");

    games.click().await.expect("select the room");
    browser.text_once("#process-fields", &first_pid).await;
    let kill = browser.find("#actions button[data-action='kill']").await;
    wait::eventually("kill to be enabled", || async {
        match kill.is_enabled().await {
            Ok(true) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    kill.click().await.expect("click kill");
    browser.text_once("#action-result", "killed").await;

    // The timeline shows the exit and the restart; the room runs again, as a new process.
    browser
        .find("#timeline li[data-kind='exited'][data-child='games'][data-restart='true']")
        .await;
    let started = browser.text_once("#timeline", "games: started as").await;
    assert!(started.contains("exited (killed), restarting"), "{started}");
    let restarted = wait::eventually("the room to run again as another process", || async {
        let row = browser.find("#trees tr[data-id='games']").await;
        let state = row.attr("data-state").await.ok().flatten();
        let pid = row.attr("data-pid").await.ok().flatten();
        match (state, pid) {
            (Some(state), Some(pid)) if state == "running" && pid != first_pid => Ok(row),
            other => Err(other),
        }
    })
    .await;
    let restarts = restarted
        .find(Locator::Css("td:nth-child(4)"))
        .await
        .expect("cell");
    assert_eq!(restarts.text().await.expect("text"), "1");
    scene.chat_goes_on("after the kill").await;

    // The picture in the README is this page.
    let png = browser.client.screenshot().await.expect("a screenshot");
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("observer.png");
    std::fs::write(&target, png).expect("save the screenshot");
    browser.client.close().await.expect("close the browser");
    scene.server.close_input();
}

impl Browser {
    /// A number attribute of the element matching `css` (0 when absent or empty).
    async fn number(&self, css: &str, attribute: &str) -> f64 {
        let element = self.find(css).await;
        let value = element.attr(attribute).await.ok().flatten();
        value.and_then(|v| v.parse().ok()).unwrap_or(0.0)
    }

    /// Waits for the page's next snapshot (once a second).
    async fn next_snapshot(&self) {
        let before = self.taken().await;
        wait::eventually("the page's next snapshot", || async {
            let now = self.taken().await;
            if now != before {
                Ok(())
            } else {
                Err(now)
            }
        })
        .await;
    }
}

impl Scene {
    /// Lines go around, and the page gets a snapshot after them, until `charted` holds of
    /// what the page then shows (it fails past [`PATIENCE`] with what it saw last).
    async fn chat_until<T: std::fmt::Debug>(
        &mut self,
        browser: &Browser,
        what: &str,
        charted: impl AsyncFn(&Browser) -> Result<(), T>,
    ) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        for round in 1.. {
            self.chat_goes_on(&format!("{what} {round}")).await;
            browser.next_snapshot().await;
            match charted(browser).await {
                Ok(()) => return,
                Err(seen) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "timed out waiting for {what}; last seen: {seen:?}"
                ),
            }
        }
    }
}

#[tokio::test]
async fn the_charts_move_while_the_chat_runs_and_the_busiest_sort() {
    let Some((mut scene, browser)) = Scene::watched().await else {
        return;
    };

    // The node's chart of messages handled grows, and shows traffic, as lines go around.
    let points = browser.number("#chart-messages", "data-points").await;
    let end = browser.number("#chart-messages", "data-end").await;
    let moved = async |browser: &Browser| {
        let now = (
            browser.number("#chart-messages", "data-points").await,
            browser.number("#chart-messages", "data-end").await,
            browser.number("#chart-messages", "data-last").await,
        );
        match now {
            (p, e, last) if p > points && e > end && last > 0.0 => Ok(()),
            other => Err(other),
        }
    };
    scene
        .chat_until(&browser, "the messages chart", moved)
        .await;
    assert!(browser.number("#chart-memory", "data-last").await > 0.0);

    // The selected process's chart shows its own rate.
    browser
        .find("#trees tr[data-id='message_server']")
        .await
        .click()
        .await
        .expect("select the message server");
    let charted = async |browser: &Browser| {
        let now = (
            browser.number("#chart-process-rate", "data-points").await,
            browser.number("#chart-process-rate", "data-last").await,
        );
        match now {
            (points, last) if points >= 2.0 && last > 0.0 => Ok(()),
            other => Err(other),
        }
    };
    scene
        .chat_until(&browser, "the server's rate chart", charted)
        .await;

    // The busiest processes: at most 15, in the order of the column clicked, descending.
    browser
        .find("#busiest th[data-sort='mailbox']")
        .await
        .click()
        .await
        .expect("sort by mailbox");
    browser.find("#busiest[data-sort='mailbox']").await;
    // Read in one go: the table is drawn anew each second.
    let read = "return [...document.querySelectorAll('#busiest tbody tr')]\
                .map(row => Number(row.dataset.mailbox))";
    let mailboxes = browser
        .client
        .execute(read, Vec::new())
        .await
        .expect("rows");
    let mailboxes: Vec<f64> = serde_json::from_value(mailboxes).expect("numbers");
    assert!((1..=15).contains(&mailboxes.len()), "{mailboxes:?}");
    assert!(
        mailboxes.windows(2).all(|pair| pair[0] >= pair[1]),
        "{mailboxes:?}"
    );
    browser.client.close().await.expect("close the browser");
    scene.server.close_input();
}

#[tokio::test]
async fn an_action_without_the_token_is_refused_on_the_page() {
    let mut scene = Scene::start().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    let without_token = scene.url.split('#').next().expect("the address").to_owned();
    browser
        .client
        .goto(&without_token)
        .await
        .expect("open the page");

    let games = browser
        .find("#trees tr[data-id='games'][data-state='running']")
        .await;
    let pid = games.attr("data-pid").await.expect("attr").expect("a pid");
    games.click().await.expect("select the room");
    browser.text_once("#process-fields", &pid).await;
    browser
        .find("#actions button[data-action='kill']")
        .await
        .click()
        .await
        .expect("click kill");
    let refused = browser.text_once("#action-result", "refused (401)").await;
    assert!(refused.contains("access token"), "{refused}");

    // Two snapshots later the room is still the same process, and nothing exited.
    for _ in 0..2 {
        let before = browser.taken().await;
        wait::eventually("a newer snapshot", || async {
            let now = browser.taken().await;
            match now != before {
                true => Ok(()),
                false => Err(now),
            }
        })
        .await;
    }
    let row = browser.find("#trees tr[data-id='games']").await;
    assert_eq!(row.attr("data-pid").await.expect("attr"), Some(pid));
    let exits = browser
        .client
        .find_all(Locator::Css("#timeline li[data-kind='exited']"))
        .await
        .expect("timeline");
    assert!(exits.is_empty(), "something exited");
    scene.chat_goes_on("after the refusal").await;
    browser.client.close().await.expect("close the browser");
}

/// Two servers of one cluster, each with its observer: one page shows both trees, and
/// acts only on its own node.
#[tokio::test]
async fn the_page_shows_every_linked_servers_tree_and_acts_only_on_its_own() {
    let dir = std::env::temp_dir().join(format!("observer-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let key = dir.join("cluster.key");
    let key = key.to_str().expect("a UTF-8 path");
    let observed = ["--cluster-key-file", key, "--observer", "127.0.0.1:0"];
    let (mut first, first_address) = Chat::server(COOKIE, &observed).await;
    let printed = first.expect("Observer: ").await;
    let url = printed.trim_start_matches("Observer: ").to_owned();
    let joining = [&observed[..], &["--join", &first_address]].concat();
    let mut second = Chat::spawn(
        "second server",
        &[
            &["server", "--listen", "127.0.0.1:0", "--cookie", COOKIE][..],
            &joining,
        ]
        .concat(),
    );
    let ready = second.expect("listening on").await;
    // "ex_messenger server NAME listening on ADDRESS"
    let second_node = ready.split(' ').nth(2).expect("a node name").to_owned();
    let second_observer = second.expect("Observer: ").await;
    first.expect("Linked to server").await;

    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.client.goto(&url).await.expect("open the page");
    browser
        .find(&format!("#trees tr.node[data-node='{second_node}']"))
        .await;
    let theirs = browser
        .find(&format!(
            "#trees tr[data-id='message_server'][data-key^='{second_node}|']"
        ))
        .await;
    assert_eq!(
        theirs.attr("data-state").await.expect("attr").as_deref(),
        Some("running")
    );
    theirs
        .click()
        .await
        .expect("select the other server's message_server");
    browser
        .text_once("#process-state", "that node's own observer")
        .await;
    let kill = browser.find("#actions button[data-action='kill']").await;
    assert!(
        !kill.is_enabled().await.expect("enabled?"),
        "no action across nodes"
    );

    // The second server's node restarts (killed from its own observer): a new
    // incarnation, with none of the old one's exports. Once the servers link again, its
    // tree is on this page again, its message server a new process.
    let their_pid = theirs.attr("data-pid").await.expect("attr").expect("a pid");
    let (address, token) = observer_of(&second_observer);
    let node_pid = browser
        .find(&format!(
            "#trees tr[data-id='node'][data-key^='{second_node}|']"
        ))
        .await
        .attr("data-pid")
        .await
        .expect("attr")
        .expect("a pid");
    let kill = format!(r#"{{"action":"kill","pid":"{node_pid}"}}"#);
    let answer = exchange(address, &action(Some(&token), &kill)).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    wait::eventually("the second server's tree back on the page", || async {
        let css = format!("#trees tr[data-id='message_server'][data-key^='{second_node}|']");
        let pid = match browser.client.find(Locator::Css(&css)).await {
            Ok(row) => row.attr("data-pid").await.ok().flatten(),
            Err(_) => None,
        };
        match pid {
            Some(pid) if pid != their_pid => Ok(()),
            other => Err(other),
        }
    })
    .await;
    browser.client.close().await.expect("close the browser");
}

/// The address and token in an `Observer: http://ADDRESS/#token=TOKEN` line.
fn observer_of(printed: &str) -> (std::net::SocketAddr, String) {
    let url = printed.trim_start_matches("Observer: http://");
    let (address, token) = url.split_once("/#token=").expect("an observer address");
    (address.parse().expect("an address"), token.to_owned())
}

/// An observer on every address: the printed page (at 127.0.0.1) reads with the token
/// once it is refused without it.
#[tokio::test]
async fn a_page_of_an_observer_beyond_loopback_reads_with_its_token() {
    let (mut server, _) = Chat::server(COOKIE, &["--observer", "0.0.0.0:0"]).await;
    let printed = server.expect("Observer: ").await;
    let url = printed.trim_start_matches("Observer: ").to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.client.goto(&url).await.expect("open the page");
    browser
        .find("#trees tr[data-id='message_server'][data-state='running']")
        .await;
    browser.text_once("#connection", "live").await;
    browser.client.close().await.expect("close the browser");
}
