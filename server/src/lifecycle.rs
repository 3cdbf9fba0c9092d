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
    /// Open connections, against
    /// [`ServerConfig::max_connections`](crate::ServerConfig::max_connections).
    connections: Bounded,
}

/// A count with a ceiling, taken one unit at a time by [`Held`] guards (open
/// connections, a connection's running calls).
#[derive(Debug, Default, Clone)]
pub(crate) struct Bounded(Arc<AtomicUsize>);

/// One unit of a [`Bounded`] count, given back when dropped.
#[derive(Debug)]
pub(crate) struct Held(Arc<AtomicUsize>);

impl Bounded {
    /// One more unit, or `None` if `max` are taken.
    pub(crate) fn take(&self, max: usize) -> Option<Held> {
        let taken = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
        taken.ok().map(|_| Held(Arc::clone(&self.0)))
    }
}

impl Drop for Held {
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
            connections: Bounded::default(),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    pub(crate) fn set(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }

    /// A slot for one more connection, or `None` if `max` are open.
    pub(crate) fn connection(&self, max: usize) -> Option<Held> {
        self.connections.take(max)
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

/// A TCP stream that holds its connection slot for as long as the socket lives, through
/// an upgrade to a WebSocket too (hyper hands the stream itself to the upgraded task).
#[derive(Debug)]
pub(crate) struct Counted {
    stream: tokio::net::TcpStream,
    _slot: Held,
}

impl Counted {
    pub(crate) fn new(stream: tokio::net::TcpStream, slot: Held) -> Counted {
        Counted { stream, _slot: slot }
    }
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
