//! The same counter as a kameo actor, and a kameo supervisor: the Rust peer the `table`
//! benchmark measures beside raw ractor, with the same definitions for every row.
//!
//! kameo's own choices, kept where they do not change what a row measures:
//! - mailboxes are unbounded, as ractor's and ours (kameo's default is bounded to 64);
//! - a supervised child is started by the caller, linked to the supervisor
//!   (`supervise(..).spawn()`), and restarted by the supervisor with its mailbox kept;
//! - a restarted child keeps its id and mailbox, and kameo's registry unregisters a dead
//!   child by id after its successor may have registered, so "by name" would race with the
//!   restart: each instance publishes itself in [`CURRENT`] instead, which is what a lookup
//!   by name gives the other two.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kameo::actor::{Actor, ActorRef, Spawn};
use kameo::error::Infallible;
use kameo::mailbox;
use kameo::message::{Context, Message};
use kameo::supervision::RestartPolicy;

/// A counter as a kameo actor. `publish` makes each started instance announce itself in
/// [`CURRENT`] (the restart row's stand-in for a name).
#[derive(Clone, Default)]
pub struct KameoCounter {
    count: u64,
    publish: bool,
    /// This instance's number, when it publishes itself.
    instance: u64,
}

/// Adds `n` and answers the count (an ask).
pub struct AskAdd(pub u64);
/// Adds `n` (a tell).
pub struct TellAdd(pub u64);
/// Answers which instance this is (numbered as they start).
pub struct WhichInstance;

/// The instance that announced itself last, with its number.
pub static CURRENT: Mutex<Option<(u64, ActorRef<KameoCounter>)>> = Mutex::new(None);
static INSTANCES: AtomicU64 = AtomicU64::new(0);

impl Actor for KameoCounter {
    type Args = Self;
    type Error = Infallible;

    async fn on_start(mut counter: Self, me: ActorRef<Self>) -> Result<Self, Infallible> {
        if counter.publish {
            counter.instance = INSTANCES.fetch_add(1, Ordering::Relaxed) + 1;
            *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some((counter.instance, me));
        }
        Ok(counter)
    }
}

impl Message<AskAdd> for KameoCounter {
    type Reply = u64;

    async fn handle(&mut self, AskAdd(n): AskAdd, _: &mut Context<Self, u64>) -> u64 {
        self.count += n;
        self.count
    }
}

impl Message<TellAdd> for KameoCounter {
    type Reply = ();

    async fn handle(&mut self, TellAdd(n): TellAdd, _: &mut Context<Self, ()>) {
        self.count += n;
    }
}

impl Message<WhichInstance> for KameoCounter {
    type Reply = u64;

    async fn handle(&mut self, _: WhichInstance, _: &mut Context<Self, u64>) -> u64 {
        self.instance
    }
}

/// A kameo supervisor with no children of its own: children are added by whoever starts
/// them, with [`supervised`].
pub struct KameoSupervisor;

impl Actor for KameoSupervisor {
    type Args = ();
    type Error = Infallible;

    async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Self)
    }
}

/// A counter started directly, unsupervised, with an unbounded mailbox.
pub fn spawn_counter() -> ActorRef<KameoCounter> {
    KameoCounter::spawn_with_mailbox(KameoCounter::default(), mailbox::unbounded())
}

/// A supervisor.
pub fn spawn_supervisor() -> ActorRef<KameoSupervisor> {
    KameoSupervisor::spawn_with_mailbox((), mailbox::unbounded())
}

/// A counter started under `supervisor`: never restarted (a temporary child), or always
/// and without limit, announcing each instance (`restarted`).
pub async fn supervised(
    supervisor: &ActorRef<KameoSupervisor>,
    restarted: bool,
) -> ActorRef<KameoCounter> {
    let counter = KameoCounter {
        publish: restarted,
        ..KameoCounter::default()
    };
    let policy = if restarted {
        RestartPolicy::Permanent
    } else {
        RestartPolicy::Never
    };
    KameoCounter::supervise(supervisor, counter)
        .restart_policy(policy)
        .restart_limit(u32::MAX, Duration::from_secs(1))
        .spawn_with_mailbox(mailbox::unbounded())
        .await
}
