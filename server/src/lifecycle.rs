//! Shutdown: stop accepting, let running calls and streams finish within a grace period,
//! then end what is left so that every reader sees an error, never a clean end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Running,
    /// No new connections or calls; running calls and streams may finish.
    Draining,
    /// The grace period is over: whatever still runs ends now, as a failure.
    Stopped,
}

/// The phase, and the count of calls and streams still running (each holds a
/// [`Busy`] guard), which shutdown waits on.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    phase: watch::Sender<Phase>,
    busy: Arc<BusyCount>,
    connections: Arc<AtomicUsize>,
}

/// One of the WebSocket connections counted against
/// [`ServerConfig::max_connections`](crate::ServerConfig::max_connections).
#[derive(Debug)]
pub(crate) struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, Default)]
struct BusyCount {
    running: AtomicUsize,
    idle: Notify,
}

/// Held while a call or a stream runs.
#[derive(Debug)]
pub(crate) struct Busy(Arc<BusyCount>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Lifecycle {
    pub(crate) fn new() -> Lifecycle {
        Lifecycle {
            phase: watch::Sender::new(Phase::Running),
            busy: Arc::default(),
            connections: Arc::default(),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    pub(crate) fn set(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }

    /// A slot for one more WebSocket connection, or `None` if `max` are open.
    pub(crate) fn connection(&self, max: usize) -> Option<ConnectionSlot> {
        let taken = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| (open < max).then_some(open + 1));
        taken.ok().map(|_| ConnectionSlot(Arc::clone(&self.connections)))
    }

    /// Count a call or stream as running until the guard drops.
    pub(crate) fn busy(&self) -> Busy {
        self.busy.running.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(&self.busy))
    }

    /// Completes once nothing holds a [`Busy`] guard.
    pub(crate) async fn idle(&self) {
        loop {
            let idle = self.busy.idle.notified();
            if self.busy.running.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Completes once the phase reaches `phase` (at once if it has).
    pub(crate) async fn reached(&self, phase: Phase) {
        let mut watching = self.phase.subscribe();
        // The sender lives as long as `self`, which outlives this future.
        let _ = watching.wait_for(|now| *now >= phase).await;
    }
}
