//! Names unique across connected nodes (OTP's `global`): register a server under a name,
//! and every node finds and calls it by that name.
//!
//! ```no_run
//! # use otp::GenServer;
//! # use serde::{Deserialize, Serialize};
//! otp::protocol! {
//!     #[derive(Serialize, Deserialize)]
//!     pub Lobby;
//!     calls LobbyCall { Who -> Vec<String> }
//! }
//! # struct LobbyServer;
//! # impl GenServer for LobbyServer { type Protocol = Lobby; }
//! # async fn demo(node: otp::node::Node) -> Result<(), Box<dyn std::error::Error>> {
//! let lobby = LobbyServer.start().await?;
//! node.global().register_name("lobby", &lobby).await?;
//! // On any connected node:
//! if let Some(lobby) = node.global().whereis_name::<Lobby>("lobby") {
//!     let present = lobby.call(Who).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! - A name goes when its server exits, or when its node's link drops.
//! - A node registers names for its own servers only. Each node learns the others' names
//!   by asking them, and an answer comes back over the link to the node asked, so no node
//!   can register a name for a process of another.
//! - **Conflicts**: when two nodes hold the same name (the two halves of a split cluster
//!   met again, or two registered it within the time a change takes to reach the other),
//!   the **older registration keeps it**, by the registering nodes' clocks (a tie goes to
//!   the smaller node name). Every node ranks the holders the same way without asking
//!   anyone, and the node of each loser takes its name away and tells it: by default the
//!   loser stops with `{shutdown, "global name conflict: <name>"}` (OTP's
//!   `random_exit_name` kills it); [`Global::register_name_notify`] keeps it running and
//!   hands it a [`Conflict`] instead (OTP's `random_notify_name`).
//!
//! Where we differ from OTP: registration takes no cluster-wide lock. OTP's `global`
//! locks the name on every node first, which makes two registrations in the same moment
//! impossible but costs a round trip to every node and stalls when one is slow. Here a
//! registration checks this node's copy of the table, and the conflict rule settles the
//! rare race, as it settles a healed split. The rule is deterministic instead of random
//! so that every node agrees on the winner without a message.

use std::sync::Arc;

use super::member::{find, Member};
use super::scope::{self, Handle, Loser, Options, Refusal};
pub use super::scope::{Conflict, MemberId, Peers};
use super::RemoteProtocol;
use crate::supervisor::ChildSpec;
use crate::{Protocol, ServerRef, StartError};

fn options(peers: Peers) -> Options {
    Options {
        unique: true,
        peers,
    }
}

/// The scope that holds global names, started with every node.
pub(crate) const GLOBAL: &str = "otp.global";

/// Why a name could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobalError {
    /// Someone holds the name already.
    #[error("the name {name:?} is taken, by {holder}: pick another, or unregister it first")]
    Taken {
        /// The name.
        name: String,
        /// Who holds it.
        holder: MemberId,
    },
    /// The node's name table is not running (the node is stopping).
    #[error("the global name table is not running: is the node stopping?")]
    Unavailable,
}

/// This node's view of the cluster's global names ([`Node::global`](super::Node::global)).
#[derive(Clone)]
pub struct Global {
    handle: Handle,
}

impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Global")
    }
}

impl Global {
    pub(crate) fn new(handle: Handle) -> Self {
        Self { handle }
    }

    /// Starts a name table of its own, `name`, unsupervised, beside the node's: names
    /// unique among the nodes that run a table of that name, taking names from `peers`
    /// only. For an application whose cookie reaches nodes that must not register names
    /// (see [`Peers::Admitted`]).
    pub async fn start(name: &str, peers: Peers) -> Result<Self, StartError> {
        Ok(Self::new(scope::start(name, options(peers)).await?))
    }

    /// A child spec that runs the name table `name` under a supervisor (see
    /// [`start`](Self::start)).
    pub fn child_spec(id: impl Into<String>, name: &str, peers: Peers) -> ChildSpec {
        scope::child_spec(id.into(), name, options(peers))
    }

    /// The name table `name` running on this node, if any.
    pub async fn whereis(name: &str) -> Option<Self> {
        Some(Self::new(scope::whereis(name).await?))
    }

    /// With [`Peers::Admitted`]: takes names from `node` from now on (`true`), or no
    /// more (`false`: its names go here).
    pub async fn admit(&self, node: &str, admitted: bool) -> Result<(), GlobalError> {
        self.handle
            .admit(node, admitted)
            .await
            .map_err(|_| GlobalError::Unavailable)
    }

    /// Registers `server` under `name` across the cluster (`global:register_name/2`);
    /// should it lose the name in a conflict, it stops (see the module's docs).
    pub async fn register_name<P>(
        &self,
        name: &str,
        server: &ServerRef<P>,
    ) -> Result<(), GlobalError>
    where
        P: RemoteProtocol,
        P::Cast: Clone,
    {
        self.register(name, server, Loser::Exit).await
    }

    /// As [`register_name`](Self::register_name), but a server that loses the name in a
    /// conflict keeps running, and `on_conflict` is called with who won
    /// (`global:register_name/3` with `random_notify_name`'s outcome).
    pub async fn register_name_notify<P>(
        &self,
        name: &str,
        server: &ServerRef<P>,
        on_conflict: impl Fn(Conflict) + Send + Sync + 'static,
    ) -> Result<(), GlobalError>
    where
        P: RemoteProtocol,
        P::Cast: Clone,
    {
        self.register(name, server, Loser::Notify(Arc::new(on_conflict)))
            .await
    }

    async fn register<P>(
        &self,
        name: &str,
        server: &ServerRef<P>,
        loser: Loser,
    ) -> Result<(), GlobalError>
    where
        P: RemoteProtocol,
        P::Cast: Clone,
    {
        match self
            .handle
            .add(name, Arc::new(server.clone()), Some(loser))
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Refusal::Taken(holder))) => Err(GlobalError::Taken {
                name: name.to_owned(),
                holder,
            }),
            Ok(Err(Refusal::OtherProtocol)) | Err(_) => Err(GlobalError::Unavailable),
        }
    }

    /// Takes `name` away from the server of this node that holds it
    /// (`global:unregister_name/1`); false if none here does. A node cannot unregister a
    /// name another node's server holds: that node speaks for its own.
    pub async fn unregister_name(&self, name: &str) -> Result<bool, GlobalError> {
        let holder = {
            let table = self.handle.read();
            table
                .local
                .get(name)
                .and_then(|held| held.first())
                .map(|held| held.sink.id())
        };
        let Some(id) = holder else {
            return Ok(false);
        };
        let removed = self.handle.remove(name, id).await;
        removed.map_err(|_| GlobalError::Unavailable)
    }

    /// The server registered as `name`, if any and if it is a server of protocol `P`
    /// (`global:whereis_name/1`). Read from this node's copy of the table.
    pub fn whereis_name<P: Protocol>(&self, name: &str) -> Option<Member<P>> {
        let winner = self.holder(name)?;
        find::<P>(&self.handle, name, &winner)
    }

    /// Who holds `name` (the oldest registration, should two nodes hold it for a moment).
    pub fn holder(&self, name: &str) -> Option<MemberId> {
        let table = self.handle.read();
        let first = table.ranked(name).into_iter().next();
        first.map(|(_, id, _)| id)
    }

    /// Every registered name (`global:registered_names/0`), sorted.
    pub fn registered_names(&self) -> Vec<String> {
        self.handle.read().keys()
    }
}
