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

/// Read buffer of a writing client's channel end, the one WebSocket whose incoming
/// frames are a stream's bytes (16 KiB). Every open WebSocket keeps its read buffer
/// resident, so this is also what an idle writing end costs. Measured with `rill bench
/// --quick`, three alternating runs each: 64 KiB frames from a client into wasm moved
/// 3.60–3.64 GB/s through 16 KiB and 3.44–3.76 GB/s through 64 KiB, the same within
/// noise.
pub const READ_BUFFER_BYTES: usize = 16 << 10;

/// Read buffer of every other WebSocket: workers (small JSON messages), reading channel
/// ends (only control frames come in) and telemetry (8 KiB). tungstenite's default is
/// 128 KiB, kept resident by every connection, so 10,000 idle channel ends would hold
/// 1.25 GiB; larger messages still arrive whole, in more reads.
pub const SMALL_READ_BUFFER_BYTES: usize = 8 << 10;

/// Messages queued for sending to one worker connection before whoever sends more waits
/// (256). Bounds the memory a worker that reads slowly can make the server hold, beyond
/// the messages themselves.
pub const WORKER_OUTBOX_MESSAGES: usize = 256;

/// Most WebSocket connections open at once (16,384: workers, channel ends and telemetry
/// together). Each holds a socket, buffers and a task; past this, upgrades get 503.
pub const MAX_CONNECTIONS: usize = 16 << 10;

/// Longest a client may take to send a request's headers, from the moment its TCP
/// connection is accepted (10 s). A client that trickles its request (slowloris) is
/// disconnected instead of holding a connection and a task forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a WebSocket connection (a worker, or either end of a channel) may stay silent
/// (60 s). The server pings every third of it; a healthy client's pong counts as a frame,
/// so only a dead or stuck peer is dropped (iii's SDKs also ping every 20 s). A writing
/// channel client dropped this way aborts its stream; iii has no such timeout, so there
/// a silent writer keeps its reader waiting forever.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Most function ids one worker connection may register (1,024). Bounds the registry a
/// single client can grow; past it a registration is refused with
/// `registrationrejected` code `FUNCTION_LIMIT_EXCEEDED`.
pub const MAX_FUNCTIONS_PER_WORKER: usize = 1 << 10;

/// Most calls one worker connection may have running at once (1,024). Bounds the tasks
/// and payloads a single client can make the server hold, and keeps one client from
/// taking the host's capacity from the others; past it a call is answered at once with
/// the error `limit-exceeded`.
pub const MAX_CALLS_PER_WORKER: usize = 1 << 10;

/// Most calls of one worker-served function running at once, from every caller together
/// (1,024). Keeps a flood of calls to one function (or to a stuck worker) from taking the
/// server's capacity from the others; past it a call fails at once with the error
/// `unavailable` (the function is at capacity; HTTP 429). The host's wasm functions have
/// their own bound,
/// [`Limits::max_concurrent_calls`](rill::Limits::max_concurrent_calls).
pub const MAX_CALLS_PER_FUNCTION: usize = 1 << 10;

/// Longest one message the server sends may wait for the client to take it (60 s): a
/// worker's call or answer, a channel reader's frame, a ping. A client that stops
/// reading (or whose network went away without a word) is then disconnected instead of
/// holding its calls, its channel's writer and a task forever: a worker's pending calls
/// fail with `invocation_stopped`, a channel's writer learns that its reader left.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// Most connections open at once: plain HTTP and WebSocket, counted from the TCP
    /// accept to the socket's close (past it, a new connection is closed at once).
    pub max_connections: usize,
    /// Longest a client may take to send its request headers.
    pub handshake_timeout: Duration,
    /// How long a WebSocket connection may stay silent before it is dropped.
    pub idle_timeout: Duration,
    /// Most function ids one worker connection may register.
    pub max_functions_per_worker: usize,
    /// Most calls one worker connection may have running at once.
    pub max_calls_per_worker: usize,
    /// Most calls of one worker-served function running at once, from all callers.
    pub max_calls_per_function: usize,
    /// Longest one message sent to a client may wait for it to be taken.
    pub send_timeout: Duration,
    /// Read buffer of a writing client's channel end, in bytes (other WebSockets use
    /// [`SMALL_READ_BUFFER_BYTES`](crate::SMALL_READ_BUFFER_BYTES)).
    pub read_buffer_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            token: None,
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_frame_bytes: MAX_FRAME_BYTES,
            worker_outbox_messages: WORKER_OUTBOX_MESSAGES,
            shutdown_grace: SHUTDOWN_GRACE,
            max_connections: MAX_CONNECTIONS,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_functions_per_worker: MAX_FUNCTIONS_PER_WORKER,
            max_calls_per_worker: MAX_CALLS_PER_WORKER,
            max_calls_per_function: MAX_CALLS_PER_FUNCTION,
            send_timeout: SEND_TIMEOUT,
            read_buffer_bytes: READ_BUFFER_BYTES,
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
            .field("max_connections", &self.max_connections)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_functions_per_worker", &self.max_functions_per_worker)
            .field("max_calls_per_worker", &self.max_calls_per_worker)
            .field("max_calls_per_function", &self.max_calls_per_function)
            .field("send_timeout", &self.send_timeout)
            .field("read_buffer_bytes", &self.read_buffer_bytes)
            .finish()
    }
}

impl ServerConfig {
    /// Accept at most `n` WebSocket connections at once.
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Give clients at most `timeout` to send their request headers.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Drop a WebSocket connection silent for `timeout` (pinging it every third of it).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Let one worker connection register at most `n` function ids.
    pub fn with_max_functions_per_worker(mut self, n: usize) -> Self {
        self.max_functions_per_worker = n;
        self
    }

    /// Let one worker connection have at most `n` calls running at once.
    pub fn with_max_calls_per_worker(mut self, n: usize) -> Self {
        self.max_calls_per_worker = n;
        self
    }

    /// Let at most `n` calls of one worker-served function run at once.
    pub fn with_max_calls_per_function(mut self, n: usize) -> Self {
        self.max_calls_per_function = n;
        self
    }

    /// Disconnect a client that takes longer than `timeout` to take one message.
    pub fn with_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// Accept WebSocket messages of at most `bytes` bytes (frames too).
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self.max_frame_bytes = self.max_frame_bytes.min(bytes);
        self
    }

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

    /// Give a writing client's channel end a read buffer of `bytes`.
    pub fn with_read_buffer_bytes(mut self, bytes: usize) -> Self {
        self.read_buffer_bytes = bytes;
        self
    }

    /// Apply the WebSocket limits to an upgrade, with the read buffer for `incoming`: the
    /// data a connection's client sends.
    pub(crate) fn limit(&self, upgrade: WebSocketUpgrade, incoming: Incoming) -> WebSocketUpgrade {
        let read_buffer = match incoming {
            Incoming::StreamBytes => self.read_buffer_bytes,
            Incoming::Messages => SMALL_READ_BUFFER_BYTES,
        };
        upgrade
            .max_message_size(self.max_message_bytes)
            .max_frame_size(self.max_frame_bytes)
            .read_buffer_size(read_buffer.max(1))
    }
}

/// What a WebSocket's client sends, which sizes its read buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Incoming {
    /// A stream's bytes, in frames of up to 64 KiB: a writing client's channel end.
    StreamBytes,
    /// Messages and control frames: workers, reading channel ends, telemetry.
    Messages,
}
