//! The framework used from another crate, through its public API only: a tree loaded from a
//! file on disk, a bad file refused in one line, and a by-name call after a restart.

use otp::spec::{self, Registry};
use otp::{BoxError, CallResponse, Context, Flow, GenServer, Info, Named, Protocol, ReplyTo};
use tokio::sync::mpsc;

/// A counter that reports each start, so the test can wait for restarts.
#[derive(Clone)]
struct Counter {
    started: mpsc::UnboundedSender<()>,
}

impl Protocol for Counter {
    type Call = ();
    type Reply = u64;
    type Cast = u64;
}

impl GenServer for Counter {
    type Protocol = Self;
    type Args = u64;
    type State = u64;
    type Info = ();

    async fn init(&self, _me: &Context<Self>, start: u64) -> Result<u64, BoxError> {
        let _ = self.started.send(());
        Ok(start)
    }

    async fn handle_call(
        &self,
        _me: &Context<Self>,
        _request: (),
        _from: &mut ReplyTo<u64>,
        count: &mut u64,
    ) -> Result<CallResponse<u64>, BoxError> {
        Ok(CallResponse::Reply(*count))
    }

    async fn handle_cast(
        &self,
        _me: &Context<Self>,
        add: u64,
        count: &mut u64,
    ) -> Result<Flow, BoxError> {
        *count += add;
        Ok(Flow::Continue)
    }

    async fn handle_info(
        &self,
        _me: &Context<Self>,
        _info: Info<()>,
        _count: &mut u64,
    ) -> Result<Flow, BoxError> {
        Ok(Flow::Continue)
    }
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
    let mut registry = Registry::new();
    registry.gen_server("counter", Counter { started });
    let path = write(
        "counter.json",
        r#"{ "strategy": "one_for_one", "intensity": 3, "period": 5,
             "children": [ { "id": "counter", "start": "counter", "args": 5, "name": "api_counter" } ] }"#,
    );
    let supervisor = spec::load(&path, &registry).unwrap().start().await.unwrap();
    otp_tests::wait::next("the counter to start", &mut starts).await;

    let counter = Named::<Counter>::new("api_counter");
    counter.cast(2);
    assert_eq!(counter.call(()).await, Ok(7));
    counter.resolve().unwrap().kill();
    otp_tests::wait::next("the counter to start", &mut starts).await;
    assert_eq!(
        counter.call(()).await,
        Ok(5),
        "the restarted counter starts from its args"
    );
    supervisor.stop().await.unwrap();
}

#[test]
fn a_bad_file_is_refused_in_one_line() {
    let (started, _starts) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    registry.gen_server("counter", Counter { started });
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
