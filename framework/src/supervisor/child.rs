//! Child specs (OTP's `child_spec()`) and the started-child handle a supervisor keeps.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use ractor::ActorCell;

use super::process::{Args, SupervisorProcess};
use super::{AutoShutdown, DynamicFlags, Supervisor};
use crate::gen_server::{spawn_with, Gone, Init, Lineage, Linked, Start, StartOptions};
use crate::{AnyServer, ExitReason, GenServer, StartError};

/// When a child is restarted (OTP's `restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always restarted.
    Permanent,
    /// Restarted only after an abnormal exit (not `normal`, `shutdown` or `{shutdown, _}`).
    Transient,
    /// Never restarted, not even when a sibling's restart stops it; removed once it exits.
    Temporary,
}

impl Restart {
    /// Whether a child with this restart type is restarted after exiting with `reason`.
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match self {
            Self::Permanent => true,
            Self::Transient => !reason.is_orderly(),
            Self::Temporary => false,
        }
    }
}

/// How a child is stopped (OTP's `shutdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// Killed at once; `terminate` does not run.
    BrutalKill,
    /// Asked to stop with reason `shutdown`, killed if still alive after this long.
    Timeout(Duration),
    /// Asked to stop, waited for without limit (the default for supervisors, whose own
    /// children's budgets bound the wait).
    Infinity,
}

/// Whether a child is a worker or a supervisor (OTP's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildType {
    /// Any process that is not a supervisor.
    Worker,
    /// A supervisor: defaults to [`Shutdown::Infinity`].
    Supervisor,
}

/// The default shutdown budget of workers, as in OTP.
pub const DEFAULT_WORKER_SHUTDOWN: Duration = Duration::from_secs(5);

type StartFn = dyn Fn(Parent) -> BoxFuture<'static, Result<ChildRef, StartError>> + Send + Sync;

/// How to start, restart and stop one child.
///
/// ```
/// # use otp::supervisor::{ChildSpec, Restart};
/// # use otp::GenServer;
/// # otp::protocol! { pub Idle; }
/// # struct Worker(u32);
/// # impl GenServer for Worker { type Protocol = Idle; }
/// let spec = ChildSpec::worker("worker", |parent| parent.start_named("worker", Worker(7)))
///     .restart(Restart::Transient);
/// assert_eq!(spec.id, "worker");
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    /// Unique among the supervisor's children; names it in reports and control calls.
    pub id: String,
    /// Called for the first start and again for every restart, so each instance starts
    /// from a fresh server value.
    start: Arc<StartFn>,
    /// When to restart it.
    pub restart: Restart,
    /// How to stop it.
    pub shutdown: Shutdown,
    /// Worker or supervisor.
    pub kind: ChildType,
    /// Whether its end is the supervisor's end (see [`AutoShutdown`]); only for transient
    /// and temporary children, under a supervisor whose `auto_shutdown` is not `never`.
    pub significant: bool,
}

impl ChildSpec {
    /// A permanent worker with a 5 s shutdown budget. `start` gets the [`Parent`] to start
    /// the child under.
    pub fn worker<F, Fut>(id: impl Into<String>, start: F) -> Self
    where
        F: Fn(Parent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ChildRef, StartError>> + Send + 'static,
    {
        Self {
            id: id.into(),
            start: Arc::new(move |parent| start(parent).boxed()),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(DEFAULT_WORKER_SHUTDOWN),
            kind: ChildType::Worker,
            significant: false,
        }
    }

    /// A permanent supervisor child, waited for without limit on shutdown.
    pub fn supervisor<F, Fut>(id: impl Into<String>, start: F) -> Self
    where
        F: Fn(Parent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ChildRef, StartError>> + Send + 'static,
    {
        Self {
            kind: ChildType::Supervisor,
            shutdown: Shutdown::Infinity,
            ..Self::worker(id, start)
        }
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets the shutdown policy.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Marks the child significant (see [`AutoShutdown`]).
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }

    /// Whether a supervisor with this `auto_shutdown` accepts the spec (OTP refuses the
    /// same combinations when the spec is given).
    pub fn check(&self, auto_shutdown: AutoShutdown) -> Result<(), StartError> {
        let problem = match (self.significant, self.restart, auto_shutdown) {
            (false, _, _) => return Ok(()),
            (true, Restart::Permanent, _) => {
                "a permanent child cannot be significant (it is always restarted): make it transient or temporary"
            }
            (true, _, AutoShutdown::Never) => {
                "significant needs the supervisor's auto_shutdown to be any_significant or all_significant"
            }
            (true, _, _) => return Ok(()),
        };
        Err(StartError::BadChildSpec {
            id: self.id.clone(),
            problem,
        })
    }

    /// Whether `other` is a copy of this spec (the same start function, the same fields):
    /// children started from copies of one spec can share it.
    pub(crate) fn is_copy_of(&self, other: &ChildSpec) -> bool {
        Arc::ptr_eq(&self.start, &other.start)
            && self.id == other.id
            && self.restart == other.restart
            && self.shutdown == other.shutdown
            && self.kind == other.kind
            && self.significant == other.significant
    }

    pub(crate) fn start(&self, parent: Parent) -> BoxFuture<'static, Result<ChildRef, StartError>> {
        (self.start)(parent)
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .field("significant", &self.significant)
            .finish_non_exhaustive()
    }
}

/// The supervisor a child is being started under; a child spec's start function uses it to
/// start the child linked to that supervisor (OTP's `start_link`).
pub struct Parent {
    pub(crate) cell: ActorCell,
    /// The supervisor's own lineage, which the child's holds (see `gen_server/lineage.rs`).
    pub(crate) up: Option<Arc<Lineage>>,
}

impl Parent {
    /// Starts a GenServer linked to the supervisor.
    pub fn start<G: GenServer>(
        self,
        server: impl Into<Start<G>>,
    ) -> impl Future<Output = Result<ChildRef, StartError>> + Send + 'static {
        self.spawn(server.into(), StartOptions::default())
    }

    /// Starts a GenServer linked to the supervisor and registered under `name`.
    pub fn start_named<G: GenServer>(
        self,
        name: impl Into<String>,
        server: impl Into<Start<G>>,
    ) -> impl Future<Output = Result<ChildRef, StartError>> + Send + 'static {
        self.spawn(server.into(), StartOptions::named(name))
    }

    /// Starts a GenServer linked to the supervisor, with a name and a start timeout.
    pub fn start_with<G: GenServer>(
        self,
        server: impl Into<Start<G>>,
        options: StartOptions,
    ) -> impl Future<Output = Result<ChildRef, StartError>> + Send + 'static {
        self.spawn(server.into(), options)
    }

    /// Starts a nested supervisor, optionally registered under `name`.
    pub async fn start_supervisor<S: Supervisor>(
        self,
        name: Option<String>,
        supervisor: S,
    ) -> Result<ChildRef, StartError> {
        let options = StartOptions {
            name,
            timeout: None,
        };
        let supervisor = SupervisorProcess::with_args(Args::from_init(supervisor));
        self.spawn(supervisor, options).await
    }

    /// Starts a nested dynamic supervisor, optionally registered under `name`.
    pub fn start_dynamic(
        self,
        name: Option<String>,
        flags: DynamicFlags,
    ) -> impl Future<Output = Result<ChildRef, StartError>> + Send + 'static {
        let options = StartOptions {
            name,
            timeout: None,
        };
        self.spawn(SupervisorProcess::with_args(Args::dynamic(flags)), options)
    }

    async fn spawn<G: GenServer>(
        self,
        server: Start<G>,
        options: StartOptions,
    ) -> Result<ChildRef, StartError> {
        let (parent, gone) = Linked::new(self.cell, self.up);
        let server = spawn_with(server, options, Some(parent)).await?;
        Ok(ChildRef {
            server: AnyServer::new(&server),
            gone,
        })
    }
}

impl fmt::Debug for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Parent").field(&self.cell.get_id()).finish()
    }
}

/// A started child, as its supervisor holds it.
pub struct ChildRef {
    /// Its protocol erased, so one supervisor holds children of every type.
    server: AnyServer,
    /// Completes once the child and every process it started are gone: only then may it
    /// be started again (a grandchild may still hold a name the new instance needs).
    gone: Gone,
}

impl ChildRef {
    /// The child's process.
    pub fn cell(&self) -> &ActorCell {
        self.server.cell()
    }

    /// The child's server, its protocol erased.
    pub fn server(&self) -> &AnyServer {
        &self.server
    }

    /// Asks the child to stop in order (its `terminate` runs); false if it is already gone.
    pub(crate) fn request_stop(&self, reason: ExitReason) -> bool {
        self.server.request_stop(reason)
    }

    /// What completes once the child's whole subtree is gone.
    pub(crate) fn into_gone(self) -> Gone {
        self.gone
    }
}

impl fmt::Debug for ChildRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ChildRef").field(&self.server.id()).finish()
    }
}
