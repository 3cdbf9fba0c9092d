//! `GET /`: one iii worker connection.
//!
//! The read loop handles registrations in place and starts a task per call, so a call
//! that waits (for a wasm function, or for another worker) never holds up the messages
//! behind it, including the answers it may itself be waiting for. Everything sent to the
//! worker goes through one bounded outbox drained by a writer task.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket, WebSocketUpgrade};
use axum::response::IntoResponse;
use futures::{SinkExt, StreamExt};
use rill_protocol::worker::{
    Action, InvocationError, InvocationResult, InvokeFunction, Message, WorkerRegistered, codes,
};
use tokio::sync::mpsc;

use crate::Shared;
use crate::lifecycle::Phase;
use crate::registry::{Connection, Outcome};

/// Close code a worker gets when the server shuts down (RFC 6455 "going away").
const CLOSE_GOING_AWAY: u16 = 1001;

pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    upgrade: WebSocketUpgrade,
) -> impl IntoResponse {
    shared.config.limit(upgrade).on_upgrade(move |socket| serve(shared, socket))
}

async fn serve(shared: Arc<Shared>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut queued) = mpsc::channel::<String>(shared.config.worker_outbox_messages.max(1));
    let conn = Connection::new(outbox);
    tracing::debug!(worker_id = %conn.worker_id, "worker connected");
    let stopping = Arc::clone(&shared);
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                text = queued.recv() => match text {
                    Some(text) => {
                        if sink.send(Frame::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    None => break,
                },
                () = stopping.lifecycle.reached(Phase::Stopped) => {
                    let going_away = CloseFrame { code: CLOSE_GOING_AWAY, reason: "rill serve is shutting down".into() };
                    let _ = sink.send(Frame::Close(Some(going_away))).await;
                    return;
                }
            }
        }
        let _ = sink.close().await;
    });
    let registered = Message::WorkerRegistered(WorkerRegistered { worker_id: conn.worker_id.clone() });
    if conn.outbox.send(registered.to_json()).await.is_ok() {
        loop {
            let frame = tokio::select! {
                frame = stream.next() => frame,
                () = shared.lifecycle.reached(Phase::Stopped) => break,
            };
            let Some(Ok(frame)) = frame else { break };
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
    if shared.lifecycle.phase() == Phase::Stopped {
        // The writer task sends Close 1001 and ends.
        let _ = writer.await;
    } else {
        // Calls still running hold outbox senders; their answers have nowhere to go now.
        writer.abort();
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
            if let Err(rejected) = shared.registry.register(conn, function) {
                tracing::warn!(worker_id = %conn.worker_id, function_id = ?rejected.function_id, "refused a registration: the id is served elsewhere");
                let _ = conn.outbox.send(Message::RegistrationRejected(rejected).to_json()).await;
            }
        }
        Message::UnregisterFunction(function) => shared.registry.workers().unregister(conn, &function.id),
        Message::InvokeFunction(call) => {
            let shared = Arc::clone(shared);
            let outbox = conn.outbox.clone();
            let busy = shared.lifecycle.busy();
            tokio::spawn(async move {
                invoke(&shared, outbox, call).await;
                drop(busy);
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
            outcome = shared.registry.invoke(call) => outcome,
            () = shared.lifecycle.reached(Phase::Stopped) => Err(InvocationError::new(
                codes::INVOCATION_STOPPED,
                "rill serve shut down before the call finished",
            )),
        },
        Some(_) => Err(InvocationError::new(codes::INVOCATION_ERROR, "unknown action type")),
    };
    let Some(invocation_id) = reply_to else { return };
    let (result, error) = match outcome {
        Ok(result) => (Some(result), None),
        Err(error) => (None, Some(error)),
    };
    let answer = InvocationResult { invocation_id, function_id, result, error, traceparent, baggage };
    let _ = outbox.send(Message::InvocationResult(answer).to_json()).await;
}
