//! `GET /`: one iii worker connection.
//!
//! The read loop handles registrations in place and starts a task per call, so a call
//! that waits (for a wasm function, or for another worker) never holds up the messages
//! behind it, including the answers it may itself be waiting for. Everything sent to the
//! worker goes through one bounded outbox drained by a writer task.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{FutureExt, SinkExt, StreamExt};
use rill_protocol::CallErrorKind;
use rill_protocol::worker::{
    Action, InvocationError, InvocationResult, InvokeFunction, Message, WorkerRegistered, codes,
};
use tokio::sync::mpsc;

use crate::Shared;
use crate::keepalive::{self, Keepalive, SendFailure};
use crate::lifecycle::Phase;
use crate::metrics::ConnectionKind;
use crate::registry::{Connection, Outcome};

/// Close code a worker gets when the server shuts down (RFC 6455 "going away").
const CLOSE_GOING_AWAY: u16 = 1001;

pub(crate) async fn upgrade(State(shared): State<Arc<Shared>>, upgrade: WebSocketUpgrade) -> Response {
    let gauge = shared.metrics.connection(ConnectionKind::Worker);
    let upgraded = shared.config.limit(upgrade, crate::config::Incoming::Messages).on_upgrade(
        move |socket| async move {
            let _gauge = gauge;
            serve(shared, socket).await;
        },
    );
    crate::with_capabilities(upgraded)
}

async fn serve(shared: Arc<Shared>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut queued) = mpsc::channel::<String>(shared.config.worker_outbox_messages.max(1));
    let conn = Connection::new(outbox);
    tracing::debug!(worker_id = %conn.worker_id, "worker connected");
    let writing = Arc::clone(&shared);
    let mut keepalive = Keepalive::new(&shared.config);
    // The read loop's last word, when it ends the connection itself.
    let (last_word, closing) = tokio::sync::oneshot::channel::<CloseFrame>();
    let mut last_word = Some(last_word);
    // Fused: once it has resolved (or its sender is gone) it stays pending.
    let mut closing = closing.fuse();
    // Resolves (with an error) once the writer has ended, so reading ends too: a
    // connection that cannot be written to can answer nothing.
    let (writer_alive, mut writer_gone) = tokio::sync::oneshot::channel::<std::convert::Infallible>();
    let worker_id = conn.worker_id.clone();
    let writer = tokio::spawn(async move {
        let _alive = writer_alive;
        let config = &writing.config;
        let sent = loop {
            let frame = tokio::select! {
                biased;
                Ok(frame) = &mut closing => {
                    let _ = keepalive::send(&mut sink, Frame::Close(Some(frame)), config).await;
                    return;
                }
                () = writing.lifecycle.reached(Phase::Stopped) => break Ok(()),
                () = keepalive.ping_due() => Frame::Ping(Default::default()),
                text = queued.recv() => match text {
                    Some(text) => Frame::Text(text.into()),
                    None => break Ok(()),
                },
            };
            if let Err(failure) = keepalive::send(&mut sink, frame, config).await {
                break Err(failure);
            }
        };
        match sent {
            Err(SendFailure::TimedOut) => {
                writing.metrics.limit_hit("send_timeout");
                tracing::warn!(%worker_id, "disconnected a worker that took no message for {:?}", config.send_timeout);
            }
            Err(SendFailure::Broken) => {}
            Ok(()) if writing.lifecycle.phase() == Phase::Stopped => {
                let going_away =
                    CloseFrame { code: CLOSE_GOING_AWAY, reason: "rill serve is shutting down".into() };
                let _ = keepalive::send(&mut sink, Frame::Close(Some(going_away)), config).await;
            }
            Ok(()) => {
                let _ = tokio::time::timeout(config.send_timeout, sink.close()).await;
            }
        }
    });
    let registered = Message::WorkerRegistered(WorkerRegistered { worker_id: conn.worker_id.clone() });
    if conn.outbox.send(registered.to_json()).await.is_ok() {
        let idle = shared.config.idle_timeout;
        loop {
            let frame = tokio::select! {
                frame = tokio::time::timeout(idle, stream.next()) => match frame {
                    Ok(frame) => frame,
                    Err(_) => {
                        shared.metrics.limit_hit("idle");
                        let reason = keepalive::idle_reason(&shared.config);
                        if let Some(last_word) = last_word.take() {
                            let _ = last_word.send(CloseFrame { code: CLOSE_GOING_AWAY, reason: reason.into() });
                        }
                        break;
                    }
                },
                () = shared.lifecycle.reached(Phase::Stopped) => break,
                _ = &mut writer_gone => break,
            };
            let frame = match frame {
                Some(Ok(frame)) => frame,
                Some(Err(err)) => {
                    let close = read_failure(&err, &shared.config);
                    if close.code == CLOSE_TOO_BIG {
                        shared.metrics.limit_hit("message_bytes");
                    }
                    if let Some(last_word) = last_word.take() {
                        let _ = last_word.send(close);
                    }
                    break;
                }
                None => break,
            };
            match frame {
                Frame::Text(text) => handle(&shared, &conn, text.as_str()).await,
                // The Rust SDK also reads JSON from binary frames; accept them the same way.
                Frame::Binary(bytes) => match std::str::from_utf8(&bytes) {
                    Ok(text) => handle(&shared, &conn, text).await,
                    Err(_) => {
                        tracing::warn!(worker_id = %conn.worker_id, "ignored a binary frame that is not UTF-8")
                    }
                },
                Frame::Close(_) => break,
                // tungstenite answers pings itself.
                Frame::Ping(_) | Frame::Pong(_) => {}
            }
        }
    }
    shared.registry.workers().disconnect(&conn);
    tracing::debug!(worker_id = %conn.worker_id, "worker disconnected");
    drop(conn);
    // The writer finishes the closing handshake (its own Close, or the answer to the
    // client's) once the queue is drained; give it a moment, then end it: calls still
    // running hold outbox senders, their answers have nowhere to go now, and the socket
    // (with its connection slot) goes with the writer.
    let mut writer = writer;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, &mut writer).await;
    writer.abort();
}

/// How long a connection's writer gets to send its Close frame.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Close code for a message over the size limit (RFC 6455 "message too big").
const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a protocol violation (RFC 6455).
const CLOSE_PROTOCOL_ERROR: u16 = 1002;

/// The Close a worker gets when reading from it failed: 1009 for a message or frame over
/// the limit, 1002 for anything else it sent wrong.
fn read_failure(err: &axum::Error, config: &crate::ServerConfig) -> CloseFrame {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let inner = std::error::Error::source(err).and_then(|e| e.downcast_ref::<WsError>());
    match inner {
        Some(WsError::Capacity(_)) => CloseFrame {
            code: CLOSE_TOO_BIG,
            reason: format!(
                "a message is over {} bytes, the most rill serve accepts; send large data through a channel",
                config.max_message_bytes
            )
            .into(),
        },
        _ => CloseFrame {
            code: CLOSE_PROTOCOL_ERROR,
            reason: "the connection broke the WebSocket protocol".into(),
        },
    }
}

async fn handle(shared: &Arc<Shared>, conn: &Connection, text: &str) {
    let message = match Message::from_json(text) {
        Ok(message) => message,
        Err(err) => {
            tracing::warn!(worker_id = %conn.worker_id, "ignored a message: {err}");
            return;
        }
    };
    match message {
        Message::RegisterFunction(function) => {
            if let Err(rejected) =
                shared.registry.register(conn, function, shared.config.max_functions_per_worker)
            {
                tracing::warn!(worker_id = %conn.worker_id, function_id = ?rejected.function_id, "refused a registration: the id is served elsewhere");
                let _ = conn.outbox.send(Message::RegistrationRejected(rejected).to_json()).await;
            }
        }
        Message::UnregisterFunction(function) => shared.registry.workers().unregister(conn, &function.id),
        Message::InvokeFunction(call) => {
            let Some(running) = conn.start_call(shared.config.max_calls_per_worker) else {
                shared.metrics.limit_hit("calls_per_worker");
                let max = shared.config.max_calls_per_worker;
                let refused = InvocationError::new(
                    CallErrorKind::LimitExceeded.wit_name(),
                    format!(
                        "this connection already has {max} calls running, the most it may; wait for some to finish"
                    ),
                );
                answer(&conn.outbox, call, Err(refused)).await;
                return;
            };
            let shared = Arc::clone(shared);
            let outbox = conn.outbox.clone();
            let busy = shared.lifecycle.busy();
            tokio::spawn(async move {
                invoke(&shared, outbox, call).await;
                drop((busy, running));
            });
        }
        Message::InvocationResult(answer) => {
            let outcome: Outcome = match (answer.error, answer.result) {
                (Some(error), _) => Err(error),
                (None, Some(result)) => Ok(result),
                (None, None) => Ok(serde_json::value::RawValue::NULL.to_owned()),
            };
            shared.registry.workers().answer(conn, &answer.invocation_id, outcome);
        }
        Message::Ping => {
            let _ = conn.outbox.send(Message::Pong.to_json()).await;
        }
        other => tracing::debug!(worker_id = %conn.worker_id, "ignored {other:?}"),
    }
}

/// Run one call from a worker and, unless it was `void`, answer it.
async fn invoke(shared: &Shared, outbox: mpsc::Sender<String>, call: InvokeFunction) {
    let reply_to = match call.action {
        Some(Action::Void) => None,
        _ => call.invocation_id.clone(),
    };
    let function_id = call.function_id.clone();
    let (traceparent, baggage) = (call.traceparent.clone(), call.baggage.clone());
    let outcome = match &call.action {
        _ if shared.lifecycle.phase() != Phase::Running => Err(InvocationError::new(
            codes::INVOCATION_ERROR,
            "rill serve is shutting down and takes no new calls; call again once it is back",
        )),
        Some(Action::Enqueue { queue }) => Err(InvocationError::new(
            codes::ENQUEUE_ERROR,
            format!("cannot enqueue on {queue:?}: rill serve has no queues; call the function directly"),
        )),
        Some(Action::Void) | None => tokio::select! {
            outcome = shared.registry.invoke_counted(call) => outcome,
            () = shared.lifecycle.reached(Phase::Stopped) => Err(InvocationError::new(
                codes::INVOCATION_STOPPED,
                "rill serve shut down before the call finished",
            )),
        },
        Some(_) => Err(InvocationError::new(codes::INVOCATION_ERROR, "unknown action type")),
    };
    let Some(invocation_id) = reply_to else { return };
    send_answer(&outbox, invocation_id, function_id, outcome, traceparent, baggage).await;
}

/// Answer `call` with `outcome` at once, unless it was `void`.
async fn answer(outbox: &mpsc::Sender<String>, call: InvokeFunction, outcome: Outcome) {
    if matches!(call.action, Some(Action::Void)) {
        return;
    }
    if let Some(invocation_id) = call.invocation_id {
        send_answer(outbox, invocation_id, call.function_id, outcome, call.traceparent, call.baggage).await;
    }
}

async fn send_answer(
    outbox: &mpsc::Sender<String>,
    invocation_id: String,
    function_id: String,
    outcome: Outcome,
    traceparent: Option<String>,
    baggage: Option<String>,
) {
    let (result, error) = match outcome {
        Ok(result) => (Some(result), None),
        Err(error) => (None, Some(error)),
    };
    let answer = InvocationResult { invocation_id, function_id, result, error, traceparent, baggage };
    let _ = outbox.send(Message::InvocationResult(answer).to_json()).await;
}
