//! # rill-server: `rill serve`, an iii-compatible engine
//!
//! A [`Server`] puts a [`rill::Host`] on the network so that iii SDK clients (Rust,
//! Python, Node) can use it as their engine: they connect as **workers**, register
//! functions, call each other's functions and rill's wasm functions, and stream bytes
//! through rill's channels. One listener serves:
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | the iii worker protocol over a WebSocket ([`rill_protocol::worker`]) |
//! | `GET /ws/channels/{id}?key=…&dir=read\|write` | one channel end as a WebSocket: binary frames are bytes, text frames are messages |
//! | `GET /otel` | accepts iii SDK telemetry and discards it, so default-configured clients stay quiet |
//! | `GET /healthz` | `ok` while the server runs (liveness) |
//! | `GET /readyz` | 200 `ready` while it takes calls, 503 once it shuts down (readiness) |
//! | `GET /metrics` | Prometheus metrics (OpenMetrics text) |
//! | `POST /functions/{id}`, `POST /channels`, `PUT`/`GET /channels/{id}?key=…` | plain HTTP for curl: trigger a function, create a channel, upload into a writer, download a reader |
//!
//! ## Routing
//!
//! A call names a function id. The built-ins (`engine::channels::create`,
//! `engine::workers::register`, `engine::functions::list`) are answered by the server;
//! an id registered by a connected worker goes to that worker; any other id is tried as
//! one of the host's wasm functions, and is `function_not_found` if the host has none.
//! Each id has one owner: a second registration of a live id is refused with
//! `registrationrejected` (as iii does since 0.23), and so is a worker's registration of
//! an id the host serves itself.
//!
//! A wasm guest's `trigger`, `spawn` or `trigger-void` of an id the host does not serve
//! reaches the worker that registered it, within the guest's deadline, so wasm
//! functions and iii workers call each other freely and channel refs cross between them.
//!
//! Calls forwarded to a worker get an invocation id made by the server, and only the
//! connection a call was sent to can answer it: a worker cannot answer, or learn of,
//! another's calls. When a worker disconnects, every call it was serving fails at once
//! with `invocation_stopped`; nothing waits for an answer that cannot come.
//!
//! ## Channels
//!
//! The channel endpoint maps rill's honest ends onto WebSocket close codes: a writing
//! client's Close with code 1000, or with no code (what iii's Rust SDK sends), is the
//! clean end; any other code, an error or a connection lost without a Close aborts the
//! stream. A reader sees a clean end as Close 1000 and an abort (by a wasm writer, a
//! writing client, a trap or a timeout) as Close 1011 with the reason. A wrong id, key or
//! direction is a 404 before the upgrade, and a second attach of an end a 409.
//!
//! ## A client
//!
//! [`client::WorkerClient`] is a minimal worker-protocol client (connect, call, wait for
//! the answer), what `rill call --server` and `rill bench` use.
//!
//! ## Authentication
//!
//! With [`ServerConfig::token`] set, every route needs `Authorization: Bearer <token>`,
//! which iii's SDKs (0.25+) send when `III_TOKEN` is set; anything else gets 401 before
//! any upgrade.

mod auth;
mod builtins;
mod channels;
pub mod client;
mod config;
mod http;
mod keepalive;
mod lifecycle;
mod metrics;
mod registry;
mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::IntoResponse;
use axum::routing::get;
use rill::Host;

pub use config::{
    DEFAULT_LISTEN, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, MAX_CALLS_PER_FUNCTION, MAX_CALLS_PER_WORKER,
    MAX_CONNECTIONS, MAX_FRAME_BYTES, MAX_FUNCTIONS_PER_WORKER, MAX_MESSAGE_BYTES, READ_BUFFER_BYTES,
    SEND_TIMEOUT, SHUTDOWN_GRACE, SMALL_READ_BUFFER_BYTES, ServerConfig, WORKER_OUTBOX_MESSAGES,
};
pub use metrics::MAX_FUNCTION_LABELS;

use crate::lifecycle::{Lifecycle, Phase};
use crate::metrics::{ConnectionKind, Metrics};
use crate::registry::Registry;

/// An iii-compatible engine serving a [`Host`]'s functions and channels. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Server {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    host: Host,
    registry: Registry,
    config: ServerConfig,
    lifecycle: Lifecycle,
    metrics: Arc<Metrics>,
}

/// Why a [`Server`] could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The host already sends its guests' calls of unknown ids elsewhere
    /// ([`Host::set_remote`]), so this server's workers could not be reached from it.
    #[error(
        "this host already routes its guests' calls to another server's workers; give each server its own host"
    )]
    HostInUse,
}

impl Server {
    /// A server for `host`'s functions and channels. From now on the host's guests can
    /// call the functions the server's workers register.
    ///
    /// # Errors
    ///
    /// [`ServerError::HostInUse`] when `host` already serves another server.
    pub fn new(host: Host, config: ServerConfig) -> Result<Server, ServerError> {
        let metrics = Arc::new(Metrics::new());
        let registry = Registry::new(host.clone(), Arc::clone(&metrics), config.max_calls_per_function)
            .ok_or(ServerError::HostInUse)?;
        let lifecycle = Lifecycle::new();
        Ok(Server { shared: Arc::new(Shared { host, registry, config, lifecycle, metrics }) })
    }

    /// The routes (see the crate docs), for serving with axum or nesting in an
    /// application's own router. Served that way, what [`Server::serve`] adds does not
    /// apply: the connection limit, the handshake timeout and the graceful shutdown.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(worker::upgrade))
            .route("/ws/channels/{channel_id}", get(channels::upgrade))
            .route("/otel", get(otel))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .route("/functions/{function_id}", axum::routing::post(http::trigger))
            .route("/channels", axum::routing::post(http::create_channel))
            .route("/channels/{channel_id}", axum::routing::put(http::upload).get(http::download))
            .route_layer(axum::middleware::from_fn_with_state(Arc::clone(&self.shared), auth::require_token))
            .with_state(Arc::clone(&self.shared))
    }

    /// Serve on `listener` until `shutdown` completes, then shut down gracefully: stop
    /// accepting connections and calls, let running calls and channel streams finish
    /// within [`ServerConfig::shutdown_grace`], then end the rest. A stream cut off then
    /// reaches its reader as an abort (Close 1011), a call as an error, and worker
    /// connections get Close 1001 ("going away"). A failed accept (no file descriptor to
    /// spare, a connection reset before it was taken) is logged and serving goes on.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let mut connections = self.accept(listener, shutdown).await;
        let lifecycle = &self.shared.lifecycle;
        // Plain HTTP requests in flight, calls and streams all get the same grace period.
        let http_drained = async { while connections.join_next().await.is_some() {} };
        let drained = async { tokio::join!(http_drained, lifecycle.idle()) };
        if tokio::time::timeout(self.shared.config.shutdown_grace, drained).await.is_err() {
            tracing::warn!("requests, calls and streams still running after the grace period are ended now");
        }
        connections.abort_all();
        lifecycle.set(Phase::Stopped);
        // Let streams and worker connections send their Close frames.
        let _ = tokio::time::timeout(CLOSING_TIME, lifecycle.idle()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Server {
    /// Accept connections until `shutdown`, each served by hyper's HTTP/1 with the
    /// handshake timeout and counted against the connection limit from the accept on
    /// (axum's own `serve` sets no timer, so hyper would apply no header timeout). Then
    /// enter [`Phase::Draining`], ask every connection to finish its request and close,
    /// and return their tasks.
    async fn accept(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinSet<()> {
        let router = self.router();
        // Tells each connection to finish the request it serves and close.
        let (closing, closed) = tokio::sync::watch::channel(false);
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    // A connection that failed between the kernel's accept and ours, or
                    // no file descriptor to spare: keep serving the others.
                    Err(err) => {
                        tracing::warn!("accepting a connection failed: {err}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
                Some(_) = connections.join_next() => continue,
                () = &mut shutdown => break,
            };
            let Some(slot) = self.shared.lifecycle.connection(self.shared.config.max_connections) else {
                // Closed at once: the cheapest answer, and the one that holds nothing.
                self.shared.metrics.limit_hit("connections");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            // The slot lives with the socket, through an upgrade to a WebSocket too.
            let io = hyper_util::rt::TokioIo::new(lifecycle::Counted::new(stream, slot));
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(self.shared.config.handshake_timeout);
            let mut closed = closed.clone();
            connections.spawn(async move {
                let connection = http.serve_connection(io, service).with_upgrades();
                tokio::pin!(connection);
                let mut asked = false;
                loop {
                    tokio::select! {
                        result = connection.as_mut() => {
                            if let Err(err) = result {
                                tracing::debug!("a connection ended with an error: {err}");
                            }
                            return;
                        }
                        changed = closed.wait_for(|closing| *closing), if !asked => {
                            asked = true;
                            if changed.is_ok() {
                                connection.as_mut().graceful_shutdown();
                            }
                        }
                    }
                }
            });
        }
        // No new calls from here on; plain HTTP requests in flight finish (upgraded
        // connections run in their own tasks and end with the lifecycle).
        self.shared.lifecycle.set(Phase::Draining);
        let _ = closing.send(true);
        connections
    }
}

/// How long, after the grace period, ended streams and calls get to say so.
const CLOSING_TIME: Duration = Duration::from_secs(1);

/// The response header in which an iii engine lists its transport capabilities (iii
/// SDKs 0.25+ read it from every upgrade; comma-separated tokens, unknown ones ignored).
const CAPABILITIES_HEADER: &str = "x-iii-capabilities";

/// Tell iii's SDKs to set `TCP_NODELAY` on their end too: rill sets it on its own end of
/// every connection, and channel frames and calls are often small, where Nagle's
/// algorithm would hold them back.
fn with_capabilities(mut upgraded: axum::response::Response) -> axum::response::Response {
    upgraded.headers_mut().insert(CAPABILITIES_HEADER, axum::http::HeaderValue::from_static("tcp-nodelay"));
    upgraded
}

/// `GET /otel`: iii SDKs send OpenTelemetry spans, metrics and logs here unless told not
/// to; they are read and dropped.
async fn otel(State(shared): State<Arc<Shared>>, upgrade: WebSocketUpgrade) -> axum::response::Response {
    let gauge = shared.metrics.connection(ConnectionKind::Telemetry);
    shared.config.limit(upgrade, config::Incoming::Messages).on_upgrade(|mut socket| async move {
        let _gauge = gauge;
        while let Some(Ok(_)) = socket.recv().await {}
    })
}

/// `GET /readyz`: whether the server takes new calls and connections; a load balancer
/// stops sending work once it says no.
async fn readyz(State(shared): State<Arc<Shared>>) -> axum::response::Response {
    match shared.lifecycle.phase() {
        Phase::Running => "ready\n".into_response(),
        Phase::Draining | Phase::Stopped => {
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "not ready: rill serve is shutting down\n")
                .into_response()
        }
    }
}

/// `GET /metrics`: see the `metrics` module.
async fn metrics_text(State(shared): State<Arc<Shared>>) -> axum::response::Response {
    let text = shared.metrics.render(&shared.host.broker().stats());
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(axum::http::header::CONTENT_TYPE, content_type)], text).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    async fn readyz(server: &Server) -> StatusCode {
        let request = Request::get("/readyz").body(Body::empty()).unwrap();
        server.router().oneshot(request).await.unwrap().status()
    }

    /// Over the network a draining server has stopped accepting, so only the router
    /// shows the answer a load balancer's probe gets while connections drain.
    #[tokio::test]
    async fn readyz_is_ready_until_shutdown_begins() {
        let server = Server::new(Host::builder().build().unwrap(), ServerConfig::default()).unwrap();
        assert_eq!(readyz(&server).await, StatusCode::OK);
        server.shared.lifecycle.set(Phase::Draining);
        assert_eq!(readyz(&server).await, StatusCode::SERVICE_UNAVAILABLE);
        server.shared.lifecycle.set(Phase::Stopped);
        assert_eq!(readyz(&server).await, StatusCode::SERVICE_UNAVAILABLE);
    }
}
