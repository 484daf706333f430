//! [`Member`]: a server found in a scope's table (a group member, a global name's holder),
//! on this node or another, called and cast alike.

use std::marker::PhantomData;

use ractor::ActorRef;
use serde::de::DeserializeOwned;

use super::remote::{self, RemoteProtocol};
use super::scope::{Handle, MemberId, ScopeMsg, Table};
use crate::{CallError, Protocol, RequestOf, ServerRef, Timeout};

/// A server of protocol `P` found in a scope: a local one is a plain [`ServerRef`], a
/// remote one is reached through its node's scope process (its messages travel as JSON).
pub enum Member<P: Protocol> {
    /// On this node.
    Local(ServerRef<P>),
    /// On another node.
    Remote(RemoteMember<P>),
}

/// A member on another node.
pub struct RemoteMember<P> {
    id: MemberId,
    /// Its node's scope process, which hands it what we send.
    scope: ActorRef<ScopeMsg>,
    protocol: PhantomData<fn() -> P>,
}

impl<P: Protocol> Clone for Member<P> {
    fn clone(&self) -> Self {
        match self {
            Self::Local(server) => Self::Local(server.clone()),
            Self::Remote(remote) => Self::Remote(RemoteMember {
                id: remote.id.clone(),
                scope: remote.scope.clone(),
                protocol: PhantomData,
            }),
        }
    }
}

impl<P: Protocol> std::fmt::Debug for Member<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Member({})", self.id())
    }
}

impl<P: Protocol> Member<P> {
    /// Who it is, as every node names it.
    pub fn id(&self) -> MemberId {
        match self {
            Self::Local(server) => MemberId {
                node: super::kernel::local_name(),
                pid: server.id().pid(),
            },
            Self::Remote(remote) => remote.id.clone(),
        }
    }

    /// Whether it runs on this node.
    pub fn is_local(&self) -> bool {
        matches!(self, Self::Local(_))
    }
}

impl<P: RemoteProtocol> Member<P> {
    /// Casts; dropped if it is gone, as any cast.
    pub fn cast(&self, message: impl Into<P::Cast>) {
        let message = message.into();
        match self {
            Self::Local(server) => server.cast(message),
            Self::Remote(remote) => match P::encode_cast(&message) {
                Ok(payload) => {
                    let pid = remote.id.pid;
                    let _ = remote.scope.send_message(ScopeMsg::Send { pid, payload });
                }
                Err(error) => tracing::warn!(%error, "a cast does not encode; dropped"),
            },
        }
    }

    /// Calls with the default 5 s timeout.
    pub async fn call<R>(&self, request: R) -> Result<R::Reply, CallError>
    where
        R: RequestOf<P>,
        R::Reply: DeserializeOwned,
    {
        self.call_timeout(request, crate::gen_server::DEFAULT_CALL_TIMEOUT)
            .await
    }

    /// Calls, waiting at most `timeout`; a remote member's node going down fails the call
    /// at once with [`CallError::NodeDown`].
    pub async fn call_timeout<R>(
        &self,
        request: R,
        timeout: impl Into<Timeout>,
    ) -> Result<R::Reply, CallError>
    where
        R: RequestOf<P>,
        R::Reply: DeserializeOwned,
    {
        match self {
            Self::Local(server) => server.call_timeout(request, timeout).await,
            Self::Remote(remote) => {
                let payload = super::remote::encode_request::<P, R>(request)?;
                let pid = remote.id.pid;
                let send = |reply| {
                    let call = ScopeMsg::Call {
                        pid,
                        payload,
                        reply,
                    };
                    remote.scope.send_message(call).is_ok()
                };
                let bytes = remote::round_trip(send, timeout.into(), &remote.id.node).await?;
                remote::answer(&bytes)
            }
        }
    }
}

/// The members of `key` in `table` that are servers of protocol `P`: local ones of another
/// protocol are left out; remote ones are taken at their word.
pub(crate) fn members_of<P: Protocol>(table: &Table, key: &str) -> Vec<Member<P>> {
    let mut members: Vec<Member<P>> = local_members_of(table, key)
        .into_iter()
        .map(Member::Local)
        .collect();
    for peer in table.peers.values() {
        for entry in peer.entries.get(key).into_iter().flatten() {
            members.push(Member::Remote(RemoteMember {
                id: MemberId {
                    node: peer.node.clone(),
                    pid: entry.pid,
                },
                scope: peer.scope.clone(),
                protocol: PhantomData,
            }));
        }
    }
    members
}

/// The local members of `key` that are servers of protocol `P`.
pub(crate) fn local_members_of<P: Protocol>(table: &Table, key: &str) -> Vec<ServerRef<P>> {
    table
        .local
        .get(key)
        .into_iter()
        .flatten()
        .filter_map(|held| held.sink.as_any().downcast_ref::<ServerRef<P>>().cloned())
        .collect()
}

/// The member `id` of `key`, if it holds it and is a server of protocol `P`.
pub(crate) fn find<P: Protocol>(handle: &Handle, key: &str, id: &MemberId) -> Option<Member<P>> {
    let table = handle.read();
    members_of::<P>(&table, key)
        .into_iter()
        .find(|member| match member {
            Member::Local(server) => {
                server.id().pid() == id.pid && super::kernel::local_name() == id.node
            }
            Member::Remote(remote) => &remote.id == id,
        })
}
