//! Supervisors: processes that start children, watch them, and restart them by OTP's rules.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the [`Supervisor`] behaviour, flags, the tree spec, introspection types |
//! | `child.rs` | [`ChildSpec`] (restart, shutdown, type), [`Parent`], [`ChildRef`] |
//! | `process.rs` | the supervisor process, static and dynamic alike: one state machine |
//! | `children.rs` | its bookkeeping: children in start order, by process and by id |
//! | `adoption.rs` | a dynamic supervisor's children started by their callers, then adopted |
//! | `handle.rs` | [`SupervisorRef`], [`DynamicSupervisorRef`]: which_children, start_child, ... |
//! | `intensity.rs` | restart intensity within a period |
//! | `shutdown.rs` | stopping children within their budgets |
//! | `report.rs` | [`report`]s: child started, exited, restarted, gave up; logged and published |
//! | `partition.rs` | [`PartitionSupervisorRef`]: Elixir's `PartitionSupervisor`, dynamic children spread over partitions |
//!
//! A supervisor is itself a [`GenServer`](crate::GenServer) that links its children: their
//! exits reach it as [`Info::Exit`](crate::Info::Exit), as `'EXIT'` messages reach an OTP
//! supervisor that traps exits. Static and dynamic supervisors are one process type, as
//! in OTP's `supervisor.erl`; a dynamic one (OTP's `simple_one_for_one`) only restarts one
//! for one, forgets children that are not restarted, and stops its children all at once.
//!
//! # Example
//! ```
//! use otp::supervisor::{ChildSpec, Flags, Strategy, SupervisorSpec};
//! use otp::{Context, GenServer, Named};
//!
//! otp::protocol! { pub Greeter; calls GreeterCall { Greet(String) -> String } }
//!
//! struct GreeterServer;
//!
//! impl GenServer for GreeterServer {
//!     type Protocol = Greeter;
//!     async fn handle_call(&mut self, call: GreeterCall<'_>, _: &Context<Self>) -> otp::Result {
//!         let GreeterCall::Greet(Greet(who), caller) = call;
//!         Ok(caller.reply(format!("hello, {who}")))
//!     }
//! }
//!
//! # #[tokio::main] async fn main() {
//! let tree = SupervisorSpec {
//!     flags: Flags { strategy: Strategy::OneForOne, ..Flags::default() },
//!     children: vec![ChildSpec::worker("greeter", |parent| {
//!         parent.start_named("greeter", GreeterServer)
//!     })],
//! };
//! let supervisor = tree.start_named("top").await.unwrap();
//! let greeter = Named::<Greeter>::new("greeter");
//! assert_eq!(greeter.call(Greet("joe".into())).await.unwrap(), "hello, joe");
//! supervisor.stop().await.unwrap();
//! # }
//! ```

mod adoption;
mod child;
mod children;
mod handle;
mod intensity;
mod partition;
mod process;
pub mod report;
mod shutdown;

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use ractor::ActorCell;

pub use child::{
    ChildRef, ChildSpec, ChildType, Parent, Restart, Shutdown, DEFAULT_WORKER_SHUTDOWN,
};
pub use handle::{DynamicSupervisorRef, SupervisorRef};
pub(crate) use intensity::RestartBudget;
pub use partition::{partition_spec, start_partitioned, PartitionFlags, PartitionSupervisorRef};
pub use report::restarted;

use crate::{AnyServer, BoxError, CallError, StartError};

/// Elixir's default restart intensity (Erlang's is 1).
pub const DEFAULT_INTENSITY: u32 = 3;
/// The default intensity window.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(5);

/// Which children a restart concerns.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the child that exited.
    #[default]
    OneForOne,
    /// All children: the others are stopped (reverse start order), then all start again.
    OneForAll,
    /// The child that exited and those started after it.
    RestForOne,
}

/// A supervisor's flags (OTP's `sup_flags()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    /// The restart strategy.
    pub strategy: Strategy,
    /// Restarts allowed within `period`; one more and the supervisor gives up with `shutdown`.
    pub intensity: u32,
    /// The window for `intensity`.
    pub period: Duration,
    /// Whether significant children ending their work end the supervisor.
    pub auto_shutdown: AutoShutdown,
}

/// When a supervisor shuts itself down because its significant children are done (OTP's
/// `auto_shutdown`): it stops its other children and exits with `shutdown`, which its own
/// parent handles like any child exit. A significant child is done when it exits on its
/// own and is not restarted: a temporary one after any exit, a transient one after an
/// orderly exit. One the supervisor stops (`terminate_child`, a sibling's restart) is not.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AutoShutdown {
    /// Never (the default); children may not be significant.
    #[default]
    Never,
    /// When any significant child is done.
    AnySignificant,
    /// When every significant child is done (the last running one exits).
    AllSignificant,
}

/// Settings of a dynamic supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicFlags {
    /// Restarts allowed within `period` before the supervisor gives up.
    pub intensity: u32,
    /// The window for `intensity`.
    pub period: Duration,
    /// Refuse `start_child` beyond this many children (`max_children`); `None`: no limit.
    pub max_children: Option<usize>,
}

impl Default for DynamicFlags {
    fn default() -> Self {
        Self {
            intensity: DEFAULT_INTENSITY,
            period: DEFAULT_PERIOD,
            max_children: None,
        }
    }
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            strategy: Strategy::OneForOne,
            intensity: DEFAULT_INTENSITY,
            period: DEFAULT_PERIOD,
            auto_shutdown: AutoShutdown::Never,
        }
    }
}

/// A whole supervisor: flags and children in start order. Built by code
/// ([`Supervisor::init`]) or loaded from a file ([`crate::spec`]); both give this value.
#[derive(Debug, Clone, Default)]
pub struct SupervisorSpec {
    /// Strategy and intensity.
    pub flags: Flags,
    /// Children, started in this order and stopped in the reverse.
    pub children: Vec<ChildSpec>,
}

impl SupervisorSpec {
    /// Starts this tree: every child in order (see [`Supervisor::start`]).
    pub async fn start(self) -> Result<SupervisorRef, StartError> {
        server_start(process::Args::fixed(self), None).await
    }

    /// Starts this tree registered under `name`.
    pub async fn start_named(self, name: impl Into<String>) -> Result<SupervisorRef, StartError> {
        server_start(process::Args::fixed(self), Some(name.into())).await
    }

    /// The first child id that appears twice, if any.
    pub fn duplicate_id(&self) -> Option<&str> {
        let mut seen = HashSet::new();
        self.children
            .iter()
            .map(|child| child.id.as_str())
            .find(|id| !seen.insert(*id))
    }
}

/// OTP's supervisor behaviour: `init` returns the flags and child specs. It runs on every
/// start of the supervisor, restarts by its own parent included, inside the supervisor's
/// own process (as OTP's `Mod:init/1`): an `init` that panics fails that start with
/// [`StartError::Init`], as one that returns an error does. What `init` needs (OTP's
/// `Args`) is the value's own fields.
pub trait Supervisor: Send + 'static {
    /// The tree to build.
    fn init(&self) -> Result<SupervisorSpec, BoxError>;

    /// Starts the supervisor and all its children, in order (`supervisor:start_link/2`).
    /// If a child fails to start, those already started are stopped in reverse order and
    /// this fails with [`StartError::Child`] naming it.
    fn start(self) -> impl Future<Output = Result<SupervisorRef, StartError>> + Send
    where
        Self: Sized,
    {
        async move { server_start(process::Args::from_init(self), None).await }
    }

    /// Like [`Supervisor::start`], registered under `name`.
    fn start_named(
        self,
        name: impl Into<String>,
    ) -> impl Future<Output = Result<SupervisorRef, StartError>> + Send
    where
        Self: Sized,
    {
        let name = name.into();
        async move { server_start(process::Args::from_init(self), Some(name)).await }
    }
}

/// A spec is a supervisor that always builds itself.
impl Supervisor for SupervisorSpec {
    fn init(&self) -> Result<SupervisorSpec, BoxError> {
        Ok(self.clone())
    }
}

/// Starts a supervisor of its own (no parent): a root of a supervision tree.
async fn server_start(
    args: process::Args,
    name: Option<String>,
) -> Result<SupervisorRef, StartError> {
    let supervisor = <process::SupervisorProcess as crate::gen_server::Init<_>>::with_args(args);
    let server = crate::gen_server::spawn(supervisor, name, None).await?;
    let supervisor = SupervisorRef::new(server);
    let mut roots = lock_roots();
    roots.retain(SupervisorRef::is_alive);
    roots.push(supervisor.clone());
    Ok(supervisor)
}

fn lock_roots() -> std::sync::MutexGuard<'static, Vec<SupervisorRef>> {
    static ROOTS: std::sync::Mutex<Vec<SupervisorRef>> = std::sync::Mutex::new(Vec::new());
    ROOTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running supervisors of this program that have no parent, oldest first: the roots
/// of its supervision trees (what an observer walks; OTP's are the applications' top
/// supervisors).
pub fn roots() -> Vec<SupervisorRef> {
    let mut roots = lock_roots();
    roots.retain(SupervisorRef::is_alive);
    roots.clone()
}

/// Starts a dynamic supervisor, optionally registered under `name`.
pub async fn start_dynamic(
    flags: DynamicFlags,
    name: Option<String>,
) -> Result<DynamicSupervisorRef, StartError> {
    let supervisor = server_start(process::Args::dynamic(flags), name).await?;
    Ok(DynamicSupervisorRef::new(supervisor))
}

/// One child as [`SupervisorRef::which_children`] reports it.
#[derive(Debug, Clone)]
pub struct ChildInfo {
    /// The spec id.
    pub id: String,
    /// Its process, or why there is none.
    pub process: ChildProcess,
    /// Worker or supervisor.
    pub kind: ChildType,
    /// Times it was started again since it was added (OTP keeps no such count; an
    /// observer shows it).
    pub restarts: u32,
}

/// [`SupervisorRef::overview`]'s answer: a supervisor at one moment.
#[derive(Debug, Clone)]
pub struct Overview {
    /// Its restart strategy (a dynamic supervisor's is always one for one).
    pub strategy: Strategy,
    /// A dynamic supervisor (children addressed by process, forgotten once stopped).
    pub dynamic: bool,
    /// Restarts allowed within `period`.
    pub intensity: u32,
    /// The intensity window.
    pub period: Duration,
    /// Restarts within the last `period`: one more than `intensity` and it gives up.
    pub restarts_used: usize,
    /// Every child, in start order.
    pub children: Vec<ChildInfo>,
}

/// The process part of [`ChildInfo`] (OTP: a pid, `restarting` or `undefined`).
#[derive(Debug, Clone)]
pub enum ChildProcess {
    /// Running as this server.
    Running(AnyServer),
    /// Its restart failed and will be tried again.
    Restarting,
    /// Not running (exited without restart, or terminated by request).
    Undefined,
}

impl ChildProcess {
    /// The running process, if any.
    pub fn cell(&self) -> Option<&ActorCell> {
        self.server().map(AnyServer::cell)
    }

    /// The running server, if any: `sys` reaches it whatever its protocol.
    pub fn server(&self) -> Option<&AnyServer> {
        match self {
            Self::Running(server) => Some(server),
            _ => None,
        }
    }
}

/// [`SupervisorRef::count_children`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildCounts {
    /// All child specs, running or not.
    pub specs: usize,
    /// Children running now.
    pub active: usize,
    /// Specs of type supervisor.
    pub supervisors: usize,
    /// Specs of type worker.
    pub workers: usize,
}

/// Why a supervisor control request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SupervisorError {
    /// No child with this id (or pid, for dynamic supervisors).
    #[error("no child {0:?} in this supervisor")]
    NotFound(String),
    /// The child is running: terminate it first.
    #[error("child {0:?} is running: terminate_child it first")]
    Running(String),
    /// The child's restart is pending.
    #[error("child {0:?} is being restarted: try again shortly")]
    Restarting(String),
    /// A stopped child with this id exists: restart_child or delete_child it.
    #[error("a child with id {0:?} exists: restart_child or delete_child it, or use another id")]
    AlreadyPresent(String),
    /// A running child with this id exists.
    #[error("a child with this id is already running")]
    AlreadyStarted(ActorCell),
    /// An operation on children by id, asked of a dynamic supervisor (OTP answers
    /// `{error, simple_one_for_one}`): its children are addressed by process, and are not
    /// kept once stopped.
    #[error("a dynamic supervisor's children are addressed by process and not kept once stopped: use DynamicSupervisorRef")]
    Dynamic,
    /// `max_children` reached.
    #[error("max_children ({0}) reached: stop a child or raise max_children")]
    MaxChildren(usize),
    /// The child failed to start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The supervisor itself could not be reached.
    #[error("supervisor unreachable: {0}")]
    Call(#[from] CallError),
}
