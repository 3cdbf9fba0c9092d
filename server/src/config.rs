//! The server's configuration. Every number a client can push against is a field here,
//! with its default as a named constant.

use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;

/// Where `rill serve` listens by default: iii's port, on loopback only, since the
/// functions it runs are untrusted (`--listen` opens it wider on purpose).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:49134";

/// Largest WebSocket message accepted (64 MiB), as iii's SDKs send and accept. Bounds
/// what one worker-protocol message (a call's payload or result) can make the server
/// hold; larger data belongs in a channel.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Largest WebSocket frame accepted (16 MiB); a larger message must come fragmented, as
/// iii's SDKs send it.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// Messages queued for sending to one worker connection before whoever sends more waits
/// (256). Bounds the memory a worker that reads slowly can make the server hold, beyond
/// the messages themselves.
pub const WORKER_OUTBOX_MESSAGES: usize = 256;

/// How long a shutting-down server lets running calls and channel streams finish (10 s)
/// before it ends them as failures.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Configuration of a [`Server`](crate::Server).
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// When set, every request must carry `Authorization: Bearer <token>` (what iii's
    /// SDKs send from `III_TOKEN`); others get 401. Compared in constant time.
    pub token: Option<String>,
    /// Largest WebSocket message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Largest WebSocket frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Messages queued for one worker connection before senders wait.
    pub worker_outbox_messages: usize,
    /// How long shutdown waits for running calls and streams.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            token: None,
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_frame_bytes: MAX_FRAME_BYTES,
            worker_outbox_messages: WORKER_OUTBOX_MESSAGES,
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("worker_outbox_messages", &self.worker_outbox_messages)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

impl ServerConfig {
    /// Wait at most `grace` for running calls and streams at shutdown.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Require `Authorization: Bearer <token>` on every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Apply the WebSocket limits to an upgrade.
    pub(crate) fn limit(&self, upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
        upgrade.max_message_size(self.max_message_bytes).max_frame_size(self.max_frame_bytes)
    }
}
