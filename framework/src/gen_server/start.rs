//! How a server comes to life: from a value that is already its state, or built from
//! arguments in its own process ([`Init`], OTP's `init(Args)`).

use std::future::Future;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{process, Context, GenServer, ServerRef};
use crate::StartError;

/// Builds a server from `A` in its own process, before it takes any message (OTP's
/// `init/1`): for a server whose state needs what only its process can do (monitor,
/// subscribe, export itself, set timers) or asynchronous work. A server whose state is a
/// plain value needs none: it starts from that value.
///
/// `start` returns only once `init` has finished; an error makes the start fail with
/// [`StartError::Init`] and frees the name. Returning `Err(`[`Ignore`](crate::Ignore)`.into())`
/// starts nothing without failing (OTP's `ignore`): the start answers
/// [`StartError::Ignored`]. Slow work that need not hold up the start goes to
/// [`Context::continue_with`].
///
/// ```
/// use std::time::Duration;
/// use otp::gen_server::Init;
/// use otp::{Context, GenServer, Info};
///
/// pub enum Tick { Now }
/// otp::protocol! { pub Clock; infos Tick; }
///
/// struct ClockServer { ticks: u64 }
///
/// impl Init<Duration> for ClockServer {
///     async fn init(period: Duration, me: &Context<Self>) -> otp::Result<Self> {
///         me.send_interval(period, || Tick::Now);
///         Ok(ClockServer { ticks: 0 })
///     }
/// }
///
/// impl GenServer for ClockServer {
///     type Protocol = Clock;
///     async fn handle_info(&mut self, info: Info<Tick>, _: &Context<Self>) -> otp::Result {
///         if let Info::Message(Tick::Now) = info {
///             self.ticks += 1;
///         }
///         Ok(otp::Flow::Continue)
///     }
/// }
///
/// # #[tokio::main] async fn main() {
/// let clock = ClockServer::with_args(Duration::from_millis(10)).start().await.unwrap();
/// # }
/// ```
pub trait Init<A: Send + 'static>: GenServer {
    /// Builds the server.
    fn init(args: A, me: &Context<Self>) -> impl Future<Output = crate::Result<Self>> + Send;

    /// The server as it will start: built by `init` from `args`, once in its process.
    /// Start it ([`Start::start`]), or hand it to a supervisor's
    /// [`Parent`](crate::supervisor::Parent).
    fn with_args(args: A) -> Start<Self> {
        Start(Starting::Built(Box::new(move |me| {
            Self::init(args, me).boxed()
        })))
    }
}

/// A server ready to start: its value, or its [`Init`] arguments. Every way to start a
/// server takes one; a server value is one (`impl From<G>`).
pub struct Start<G: GenServer>(pub(crate) Starting<G>);

/// Builds a server in its process from arguments it captured.
pub(crate) type Build<G> =
    Box<dyn for<'a> FnOnce(&'a Context<G>) -> BoxFuture<'a, crate::Result<G>> + Send>;

pub(crate) enum Starting<G: GenServer> {
    Ready(G),
    Built(Build<G>),
}

impl<G: GenServer> From<G> for Start<G> {
    fn from(server: G) -> Self {
        Self(Starting::Ready(server))
    }
}

impl<G: GenServer> Start<G> {
    /// Starts the server unlinked and unnamed (`gen_server:start/3`).
    pub async fn start(self) -> Result<ServerRef<G::Protocol>, StartError> {
        process::spawn(self, None, None).await
    }

    /// Starts the server registered under `name` (`gen_server:start({local, Name}, ...)`).
    /// A running server under that name makes it fail with [`StartError::AlreadyStarted`].
    pub fn start_named(
        self,
        name: impl Into<String>,
    ) -> impl Future<Output = Result<ServerRef<G::Protocol>, StartError>> + Send {
        process::spawn(self, Some(name.into()), None)
    }

    /// Starts the server with [`StartOptions`]: a name, a start timeout.
    pub async fn start_with(
        self,
        options: StartOptions,
    ) -> Result<ServerRef<G::Protocol>, StartError> {
        process::spawn_with(self, options, None).await
    }
}

impl<G: GenServer> std::fmt::Debug for Start<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.0 {
            Starting::Ready(_) => "value",
            Starting::Built(_) => "init",
        };
        f.debug_tuple("Start")
            .field(&std::any::type_name::<G>())
            .field(&how)
            .finish()
    }
}

/// How to start a server, beyond what it starts from (OTP's start options).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Register it under this name (`{local, Name}`).
    pub name: Option<String>,
    /// Give `init` at most this long (`{timeout, T}`): past it the start is abandoned, the
    /// half-started process is killed (its `terminate` does not run), and the start fails
    /// with [`StartError::Timeout`]. `None`: wait as long as `init` takes.
    pub timeout: Option<std::time::Duration>,
}

impl StartOptions {
    /// Registered under `name`, no start timeout.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            timeout: None,
        }
    }
}
