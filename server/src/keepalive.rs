//! What every WebSocket connection the server holds shares: pings that keep a healthy
//! but quiet client's connection alive, the idle deadline that drops a dead one, and the
//! send timeout that drops a client that stops taking messages.
//!
//! A connection is idle when no frame at all (a pong included) arrived for
//! [`ServerConfig::idle_timeout`]; the server pings every third of that, so a live client
//! always answers in time. Time the server itself spends not reading (a writing channel
//! client held back by a full buffer) never counts: the deadline is renewed when reading
//! resumes.

use std::time::Duration;

use axum::extract::ws::Message as Frame;
use futures::{Sink, SinkExt};
use tokio::time::{Instant, Interval};

use crate::ServerConfig;

/// The pings to send and the idle deadline of one connection.
#[derive(Debug)]
pub(crate) struct Keepalive {
    idle: Duration,
    deadline: Instant,
    pings: Interval,
}

impl Keepalive {
    pub(crate) fn new(config: &ServerConfig) -> Keepalive {
        let idle = config.idle_timeout;
        let every = (idle / 3).max(Duration::from_millis(10));
        let mut pings = tokio::time::interval_at(Instant::now() + every, every);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Keepalive { idle, deadline: Instant::now() + idle, pings }
    }

    /// A frame arrived, or reading resumes: the client has a full idle period again.
    pub(crate) fn renew(&mut self) {
        self.deadline = Instant::now() + self.idle;
    }

    /// When the connection will have been idle for the whole period, unless a frame
    /// arrives first.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Completes when the next ping is due.
    pub(crate) async fn ping_due(&mut self) {
        self.pings.tick().await;
    }
}

/// The Close reason for an idle connection.
pub(crate) fn idle_reason(config: &ServerConfig) -> String {
    format!("no frame, not even a pong, for {} s", config.idle_timeout.as_secs_f64())
}

/// Why a frame could not be sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SendFailure {
    /// The connection failed or is closed.
    Broken,
    /// The client did not take the frame within [`ServerConfig::send_timeout`].
    TimedOut,
}

/// Send `frame` unless the client takes longer than the send timeout to take it.
pub(crate) async fn send<S>(sink: &mut S, frame: Frame, config: &ServerConfig) -> Result<(), SendFailure>
where
    S: Sink<Frame> + Unpin,
{
    match tokio::time::timeout(config.send_timeout, sink.send(frame)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendFailure::Broken),
        Err(_) => Err(SendFailure::TimedOut),
    }
}
