//! The framework used from another crate, through its public API only: a tree loaded from a
//! file on disk, a bad file refused in one line, and a by-name call after a restart.

use otp::spec::{self, Registry};
use otp::{Context, Flow, GenServer, Init, Named};
use tokio::sync::mpsc;

otp::protocol! {
    /// A counter: `Get` reads it, `Add` adds to it.
    pub Counter;
    calls CounterCall { Get -> u64 }
    casts CounterCast { Add(u64) }
}

/// A counter that reports each start, so the test can wait for restarts.
struct CounterServer(u64);

impl Init<(mpsc::UnboundedSender<()>, u64)> for CounterServer {
    async fn init(
        (started, start): (mpsc::UnboundedSender<()>, u64),
        _: &Context<Self>,
    ) -> otp::Result<Self> {
        let _ = started.send(());
        Ok(CounterServer(start))
    }
}

impl GenServer for CounterServer {
    type Protocol = Counter;

    async fn handle_call(&mut self, call: CounterCall<'_>, _: &Context<Self>) -> otp::Result {
        let CounterCall::Get(Get, caller) = call;
        Ok(caller.reply(self.0))
    }

    async fn handle_cast(&mut self, cast: CounterCast, _: &Context<Self>) -> otp::Result {
        let CounterCast::Add(Add(n)) = cast;
        self.0 += n;
        Ok(Flow::Continue)
    }
}

/// The registry that maps the files' `"start": "counter"` to the counter, started from
/// the file's `"args"`.
fn registry(started: mpsc::UnboundedSender<()>) -> Registry {
    let mut registry = Registry::new();
    registry.gen_server("counter", move |start: u64| {
        CounterServer::with_args((started.clone(), start))
    });
    registry
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("otp-public-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_tree_from_a_file_restarts_a_named_counter() {
    let (started, mut starts) = mpsc::unbounded_channel();
    let registry = registry(started);
    let path = write(
        "counter.json",
        r#"{ "strategy": "one_for_one", "intensity": 3, "period": 5,
             "children": [ { "id": "counter", "start": "counter", "args": 5, "name": "api_counter" } ] }"#,
    );
    let supervisor = spec::load(&path, &registry).unwrap().start().await.unwrap();
    otp_tests::wait::next("the counter to start", &mut starts).await;

    let counter = Named::<Counter>::new("api_counter");
    counter.cast(Add(2));
    assert_eq!(counter.call(Get).await, Ok(7));
    counter.resolve().unwrap().kill();
    otp_tests::wait::next("the counter to start", &mut starts).await;
    assert_eq!(
        counter.call(Get).await,
        Ok(5),
        "the restarted counter starts from its args"
    );
    supervisor.stop().await.unwrap();
}

#[test]
fn a_bad_file_is_refused_in_one_line() {
    let (started, _starts) = mpsc::unbounded_channel();
    let registry = registry(started);
    let path = write(
        "bad.json",
        r#"{ "children": [ { "id": "counter", "start": "counter", "args": 0, "restart": "always" } ] }"#,
    );
    let error = spec::load(&path, &registry).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "{}: children[0].restart: unknown variant `always`, expected one of `permanent`, `transient`, `temporary` at line 1 column 85",
            path.display()
        )
    );
}
