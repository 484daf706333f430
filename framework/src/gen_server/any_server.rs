//! [`AnyServer`]: a running server whatever its protocol, for tools that look at every
//! process of a tree (a supervisor's bookkeeping, the observer) rather than call one.

use std::fmt;

use ractor::{ActorCell, ActorId};

use super::sys::{sealed, SysMessage, SysTarget};
use super::{request_stop, Envelope, Protocol, ServerRef};
use crate::ExitReason;

/// A running GenServer (a supervisor is one too), its protocol erased: it can be told to
/// stop, killed, and asked through [`sys`](super::sys), but not called.
#[derive(Clone)]
pub struct AnyServer {
    cell: ActorCell,
    /// What depends on the protocol, one static table per protocol: a supervisor holds
    /// one of these per child, so it stays two words.
    erased: &'static Erased,
}

/// What an [`AnyServer`] needs of its protocol.
struct Erased {
    /// The protocol's type name: what a caller would name to reach it.
    protocol: fn() -> &'static str,
    /// Posts a system message as an envelope of the right protocol.
    post_sys: fn(&ActorCell, SysMessage) -> bool,
    /// Asks it to stop in order (its `terminate` runs).
    stop: fn(&ActorCell, ExitReason) -> bool,
}

/// The table of protocol `P`, promoted to a static.
struct ErasedOf<P>(std::marker::PhantomData<P>);

impl<P: Protocol> ErasedOf<P> {
    const ERASED: Erased = Erased {
        protocol: std::any::type_name::<P>,
        post_sys: post_sys::<P>,
        stop: request_stop::<P>,
    };
}

impl AnyServer {
    /// Erases a server's protocol.
    pub fn new<P: Protocol>(server: &ServerRef<P>) -> Self {
        Self {
            cell: server.cell(),
            erased: &ErasedOf::<P>::ERASED,
        }
    }

    /// Its process.
    pub fn cell(&self) -> &ActorCell {
        &self.cell
    }

    /// Its process id.
    pub fn id(&self) -> ActorId {
        self.cell.get_id()
    }

    /// Its registered name, if any.
    pub fn name(&self) -> Option<String> {
        self.cell.get_name()
    }

    /// The type name of the protocol it serves (e.g. `my_app::Room`).
    pub fn protocol(&self) -> &'static str {
        (self.erased.protocol)()
    }

    /// True until it has begun to exit.
    pub fn is_alive(&self) -> bool {
        self.cell.get_status() < ractor::ActorStatus::Stopping
    }

    /// Kills it: no `terminate`, exit reason `killed` (OTP's `exit(Pid, kill)`).
    pub fn kill(&self) {
        self.cell.kill();
    }

    /// Asks it to stop in order with `reason`; false if it is already gone.
    pub(crate) fn request_stop(&self, reason: ExitReason) -> bool {
        (self.erased.stop)(&self.cell, reason)
    }
}

fn post_sys<P: Protocol>(cell: &ActorCell, SysMessage(request): SysMessage) -> bool {
    super::mailbox::sent(cell.get_id());
    cell.send_message(Envelope::<P>::Sys(request)).is_ok()
}

impl sealed::Target for AnyServer {
    fn post_sys(&self, request: SysMessage) -> bool {
        (self.erased.post_sys)(&self.cell, request)
    }

    fn process(&self) -> ActorId {
        self.cell.get_id()
    }
}

impl SysTarget for AnyServer {}

impl fmt::Debug for AnyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyServer")
            .field("id", &self.cell.get_id())
            .field("protocol", &(self.erased.protocol)())
            .finish()
    }
}
