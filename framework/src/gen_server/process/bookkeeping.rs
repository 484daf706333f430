//! What a running server keeps besides its own value, and the bookkeeping around each
//! message: `sys` counting, tracing and suspension, the idle timer, an exit under way.
//! Most servers use none of it: it lives in [`Extras`], made on first use, so that they pay
//! a pointer and one load per message.

use std::collections::VecDeque;
use std::time::Duration;

use ractor::ActorRef;

use super::{Deferred, Envelope, Running};
use crate::gen_server::mailbox::Counter;
use crate::gen_server::sys::Statistics;
use crate::gen_server::{GenServer, Protocol};
use crate::ExitReason;

/// An idle timeout, `sys`'s counting, tracing and suspension, and an exit under way.
pub(super) struct Extras<P: Protocol> {
    /// Set once the server has decided to stop: it then only answers callers with this
    /// reason until its exit marker arrives.
    pub(super) exiting: Option<ExitReason>,
    /// The armed idle timer, cancelled by the next message; `idle_generation` tells its
    /// expiry from a stale one that was already queued when it was cancelled.
    pub(super) idle: Option<tokio::task::JoinHandle<()>>,
    pub(super) idle_generation: u64,
    /// The idle timeout being waited for: a system message pauses the timer (suspension
    /// for as long as it lasts) and the full timeout starts again after it, as OTP's
    /// `system_continue` does; a message ends the wait.
    pub(super) idle_for: Option<Duration>,
    /// Counts its queued messages, while `sys::statistics(.., true)` says so.
    pub(super) counter: Option<Counter>,
    /// `sys::trace` is on: each event is logged.
    pub(super) tracing: bool,
    /// `sys::suspend`ed: what arrived meanwhile, to handle in order on resume.
    pub(super) suspended: Option<VecDeque<Deferred<P>>>,
}

impl<P: Protocol> Default for Extras<P> {
    fn default() -> Self {
        Self {
            exiting: None,
            idle: None,
            idle_generation: 0,
            idle_for: None,
            counter: None,
            tracing: false,
            suspended: None,
        }
    }
}

impl<P: Protocol> Extras<P> {
    /// Stops the idle timer, keeping its duration to start again after a system message.
    pub(super) fn pause_idle(&mut self) {
        if let Some(timer) = self.idle.take() {
            timer.abort();
        }
    }
}

impl<G: GenServer> Running<G> {
    /// A message that came after the server decided to stop: callers learn the reason, the
    /// exit marker ends the process.
    pub(super) fn after_exit(
        &self,
        message: Envelope<G::Protocol>,
        myself: &ActorRef<Envelope<G::Protocol>>,
    ) {
        self.took(&message);
        let Some(reason) = self.exiting() else {
            return;
        };
        match message {
            Envelope::Call(_, from) => from.exited(reason.clone()),
            Envelope::Stop(_, Some(waiter)) => _ = waiter.send(reason.clone()),
            Envelope::Exit => myself.stop(Some(reason.encode())),
            _ => {}
        }
    }

    /// Bookkeeping before serving a message: `sys` statistics and trace, and the end of
    /// an idle wait (except by the idle timeout itself).
    #[inline]
    pub(super) fn serving(&mut self, message: &Envelope<G::Protocol>) {
        self.handled += 1;
        if self.extras.is_none() {
            return;
        }
        self.took(message);
        if self.tracing() {
            trace_event(self, message.kind());
        }
        if !matches!(message, Envelope::Idle(_)) {
            self.cancel_idle();
        }
    }

    /// The extras, made now if this is their first use.
    pub(super) fn extras(&mut self) -> &mut Extras<G::Protocol> {
        self.extras.get_or_insert_with(Default::default)
    }

    pub(super) fn counter(&self) -> Option<&Counter> {
        self.extras.as_ref()?.counter.as_ref()
    }

    /// The reason it exits with, once it has decided to.
    pub(super) fn exiting(&self) -> Option<&ExitReason> {
        self.extras.as_ref()?.exiting.as_ref()
    }

    pub(super) fn tracing(&self) -> bool {
        self.extras.as_ref().is_some_and(|extras| extras.tracing)
    }

    pub(super) fn is_suspended(&self) -> bool {
        self.extras
            .as_ref()
            .is_some_and(|extras| extras.suspended.is_some())
    }

    /// Ends a suspension: what waited meanwhile, in order.
    pub(super) fn take_suspended(&mut self) -> VecDeque<Deferred<G::Protocol>> {
        let waited = self
            .extras
            .as_mut()
            .and_then(|extras| extras.suspended.take());
        waited.unwrap_or_default()
    }

    /// A message left the mailbox, or the queue of a suspended server, to be handled (for
    /// the queued count of `sys` statistics). The exit marker and idle timeouts come from
    /// the process itself and were never counted.
    #[inline]
    pub(super) fn took(&self, message: &Envelope<G::Protocol>) {
        if let Some(counter) = self.counter() {
            if !matches!(message, Envelope::Exit | Envelope::Idle(_)) {
                counter.handled();
            }
        }
    }

    pub(super) fn defer(&mut self, deferred: Deferred<G::Protocol>) {
        let suspended = self
            .extras
            .as_mut()
            .and_then(|extras| extras.suspended.as_mut());
        if let Some(waiting) = suspended {
            waiting.push_back(deferred);
        }
    }

    pub(super) fn statistics(&self) -> Statistics {
        Statistics {
            started_at_ms: crate::gen_server::sys::unix_ms(self.started),
            handled: self.handled,
            queued: self.counter().map(Counter::queued),
        }
    }

    /// Any message ends the wait for the idle timeout.
    #[inline]
    pub(super) fn cancel_idle(&mut self) {
        if let Some(extras) = &mut self.extras {
            extras.pause_idle();
            extras.idle_for = None;
        }
    }

    pub(super) fn arm_idle(&mut self, after: Duration) {
        let me = self.me.actor().clone();
        let extras = self.extras();
        extras.idle_generation += 1;
        let generation = extras.idle_generation;
        extras.idle = Some(tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = me.send_message(Envelope::Idle(generation));
        }));
        extras.idle_for = Some(after);
    }
}

/// One line per event while `sys::trace` is on (OTP prints them; we log them).
pub(super) fn trace_event<G: GenServer>(run: &Running<G>, event: &str) {
    tracing::info!(target: "otp::sys", server = %run.me.id(), name = ?run.me.name(), event, "handling");
}
