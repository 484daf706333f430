//! Process groups across nodes (OTP's `pg`): servers join named groups in a [`Scope`], and
//! every node running a scope of the same name sees its members, wherever they run.
//!
//! ```no_run
//! # use otp::GenServer;
//! # use serde::{Deserialize, Serialize};
//! otp::protocol! {
//!     #[derive(Clone, Serialize, Deserialize)]
//!     pub Room;
//!     casts RoomCast { Line(String) }
//! }
//! # struct RoomServer;
//! # impl GenServer for RoomServer { type Protocol = Room; }
//! use otp::node::pg::Scope;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let chat = Scope::start("chat").await?; // on every node that takes part
//! let room = RoomServer.start().await?;
//! chat.join("lobby", &room).await?;
//! // Every member on every node gets the line; each remote node gets it once.
//! chat.broadcast::<Room>("lobby", &Line("hello".into()).into());
//! for member in chat.members::<Room>("lobby") {
//!     println!("{} is in the lobby", member.id());
//! }
//! # Ok(()) }
//! ```
//!
//! As in OTP:
//! - a server may join a group several times, and must leave as many times; it leaves
//!   every group when it exits;
//! - the members of a node leave at once when its link drops;
//! - [`Scope::monitor`] delivers joins and leaves as info messages.
//!
//! Unlike OTP, one group holds servers of one protocol on each node (a server of another
//! is refused with [`PgError::OtherProtocol`]): a broadcast is encoded once and decoded
//! once per node. A local member is found by the protocol it joined under: a server whose
//! protocol extends a shared one (`protocol! { pub Local: Shared { infos T; } }`) is one
//! of `Scope::members::<Local>` here and of `members::<Shared>` on other nodes (JSON does
//! not name the Rust type), since a handle of `Shared` cannot carry `Local`'s infos.

use std::sync::Arc;

use super::member::{local_members_of, members_of, Member};
use super::scope::{self, Handle, Local, Options, Refusal, ScopeMsg};
pub use super::scope::{GroupEvent, MemberId, Peers};
use super::RemoteProtocol;
use crate::gen_server::InfoOf;
use crate::supervisor::ChildSpec;
use crate::{Context, GenServer, Protocol, ServerRef, StartError};

fn options(peers: Peers) -> Options {
    Options {
        unique: false,
        peers,
    }
}

/// Why a group operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgError {
    /// The scope's process is not running.
    #[error("the process-group scope {0:?} is not running on this node: start it (Scope::start or Scope::child_spec)")]
    NoScope(String),
    /// The group holds servers of another protocol on this node.
    #[error("group {0:?} holds servers of another protocol on this node: one group, one protocol")]
    OtherProtocol(String),
}

/// A process-group scope on this node (`pg:start_link(Scope)`): the groups, their
/// members on every connected node that runs a scope of the same name, and the process
/// that keeps them in step. Cheap to clone.
#[derive(Clone)]
pub struct Scope {
    handle: Handle,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scope({})", self.handle.name)
    }
}

impl Scope {
    /// Starts the scope `name`, unsupervised, taking members from every peer that runs
    /// it. Fails if it already runs here.
    pub async fn start(name: &str) -> Result<Self, StartError> {
        Self::start_with(name, Peers::All).await
    }

    /// As [`start`](Self::start), taking members from `peers` only.
    pub async fn start_with(name: &str, peers: Peers) -> Result<Self, StartError> {
        let handle = scope::start(name, options(peers)).await?;
        Ok(Self { handle })
    }

    /// A child spec that runs the scope `name` under a supervisor, taking members from
    /// `peers`.
    pub fn child_spec(id: impl Into<String>, name: &str, peers: Peers) -> ChildSpec {
        scope::child_spec(id.into(), name, options(peers))
    }

    /// The scope `name` running on this node, if any.
    pub async fn whereis(name: &str) -> Option<Self> {
        let handle = scope::whereis(name).await?;
        Some(Self { handle })
    }

    /// With [`Peers::Admitted`]: takes members from `node` from now on (`true`), or no
    /// more (`false`: its members leave here).
    pub async fn admit(&self, node: &str, admitted: bool) -> Result<(), PgError> {
        self.handle
            .admit(node, admitted)
            .await
            .map_err(|_| self.gone())
    }

    /// The scope's name.
    pub fn name(&self) -> &str {
        &self.handle.name
    }

    /// Puts `server` in `group` (`pg:join/3`); it leaves on its exit.
    pub async fn join<P>(&self, group: &str, server: &ServerRef<P>) -> Result<(), PgError>
    where
        P: RemoteProtocol,
        P::Cast: Clone,
    {
        match self.handle.add(group, Arc::new(server.clone()), None).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Refusal::OtherProtocol)) => Err(PgError::OtherProtocol(group.to_owned())),
            Ok(Err(Refusal::Taken(_))) | Err(_) => Err(self.gone()),
        }
    }

    /// Takes one of `server`'s joins of `group` back (`pg:leave/3`); false if it was not in
    /// it.
    pub async fn leave<P: Protocol>(
        &self,
        group: &str,
        server: &ServerRef<P>,
    ) -> Result<bool, PgError> {
        let removed = self.handle.remove(group, server.id()).await;
        removed.map_err(|_| self.gone())
    }

    /// Every member of `group` that is a server of protocol `P`, on every node
    /// (`pg:get_members/2`). Read from this node's copy, without asking anyone.
    pub fn members<P: Protocol>(&self, group: &str) -> Vec<Member<P>> {
        members_of(&self.handle.read(), group)
    }

    /// The members of `group` on this node (`pg:get_local_members/2`).
    pub fn local_members<P: Protocol>(&self, group: &str) -> Vec<ServerRef<P>> {
        local_members_of(&self.handle.read(), group)
    }

    /// The groups with members anywhere (`pg:which_groups/1`), sorted.
    pub fn which_groups(&self) -> Vec<String> {
        self.handle.read().keys()
    }

    /// Casts `message` to every member of `group`: once to each local member, and once
    /// over each link to a node with members there, which hands it to its own. Returns
    /// the number of nodes it was sent to (this one included if it has members).
    pub fn broadcast<P>(&self, group: &str, message: &P::Cast) -> usize
    where
        P: RemoteProtocol,
    {
        self.fan_out::<P>(group, message, true)
    }

    /// As [`broadcast`](Self::broadcast), to the members on other nodes only: for a
    /// member that relays what happened here to its peers elsewhere.
    pub fn broadcast_remote<P>(&self, group: &str, message: &P::Cast) -> usize
    where
        P: RemoteProtocol,
    {
        self.fan_out::<P>(group, message, false)
    }

    /// Whether a node other than this one has members in `group` (read from this node's
    /// copy, without building the members).
    pub fn has_remote_members(&self, group: &str) -> bool {
        let table = self.handle.read();
        let mut peers = table.peers.values();
        peers.any(|peer| peer.entries.get(group).is_some_and(|e| !e.is_empty()))
    }

    fn fan_out<P>(&self, group: &str, message: &P::Cast, here: bool) -> usize
    where
        P: RemoteProtocol,
    {
        let table = self.handle.read();
        let mut nodes = 0;
        let local = table.local.get(group).filter(|m| here && !m.is_empty());
        if let Some(local) = local {
            for held in local {
                held.sink.cast_decoded(message);
            }
            nodes += 1;
        }
        let mut payload = None;
        for peer in table.peers.values() {
            if peer.entries.get(group).is_none_or(|e| e.is_empty()) {
                continue;
            }
            let payload = match &payload {
                Some(payload) => payload,
                None => match P::encode_cast(message) {
                    Ok(bytes) => payload.insert(bytes),
                    Err(error) => {
                        tracing::warn!(%error, group, "a broadcast does not encode; dropped");
                        break;
                    }
                },
            };
            let broadcast = ScopeMsg::Broadcast {
                key: group.to_owned(),
                payload: payload.clone(),
            };
            if peer.scope.send_message(broadcast).is_ok() {
                nodes += 1;
            }
        }
        nodes
    }

    /// Subscribes the server `me` to the joins and leaves of `group` (`pg:monitor/2`): it
    /// gets `wrap(event)` as an info message for each. Returns the members at the moment
    /// of subscribing, so that no change falls between.
    pub async fn monitor<G: GenServer>(
        &self,
        me: &Context<G>,
        group: &str,
        wrap: impl Fn(GroupEvent) -> InfoOf<G> + Send + Sync + 'static,
    ) -> Result<Vec<MemberId>, PgError> {
        let mut now = self.watch(me, Some(group.to_owned()), wrap).await?;
        Ok(now.pop().map(|(_, members)| members).unwrap_or_default())
    }

    /// As [`monitor`](Self::monitor), for every group of the scope (`pg:monitor_scope/1`).
    /// Returns each group with its members at the moment of subscribing.
    pub async fn monitor_scope<G: GenServer>(
        &self,
        me: &Context<G>,
        wrap: impl Fn(GroupEvent) -> InfoOf<G> + Send + Sync + 'static,
    ) -> Result<Vec<(String, Vec<MemberId>)>, PgError> {
        self.watch(me, None, wrap).await
    }

    async fn watch<G: GenServer>(
        &self,
        me: &Context<G>,
        key: Option<String>,
        wrap: impl Fn(GroupEvent) -> InfoOf<G> + Send + Sync + 'static,
    ) -> Result<Vec<(String, Vec<MemberId>)>, PgError> {
        let server = me.server().clone();
        let watcher = Box::new(move |event| {
            server.send_info(wrap(event));
            server.is_alive()
        });
        let watch = |reply| Local::Watch {
            key,
            watcher,
            reply,
        };
        self.handle.ask(watch).await.map_err(|_| self.gone())
    }

    fn gone(&self) -> PgError {
        PgError::NoScope(self.handle.name.to_string())
    }
}
