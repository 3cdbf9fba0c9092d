//! `GET /ws/channels/{id}?key=…&dir=read|write`: one channel end as a WebSocket.
//!
//! The end is opened before the upgrade, so a wrong id, key or direction is answered
//! with 404 and a second attach with 409, as plain HTTP that every client can read.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use rill_broker::{ChannelError, ChannelRef, Direction, Item, MAX_CHUNK_BYTES, Reader, Writer};
use serde::Deserialize;

use crate::Shared;
use crate::config::Incoming;
use crate::keepalive::{self, Keepalive, SendFailure};
use crate::lifecycle::Phase;
use crate::metrics::ConnectionKind;

/// A Close frame's reason is at most 123 bytes (RFC 6455 §5.5: 125 for the payload,
/// 2 of them the code).
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// Close code of a clean end (RFC 6455 "normal closure").
const CLOSE_NORMAL: u16 = 1000;
/// Close code of an aborted stream (RFC 6455 "internal error"), which iii's SDKs report
/// as an error.
const CLOSE_ABORTED: u16 = 1011;
/// Close code a writing client gets when the server shuts down (RFC 6455 "going away").
const CLOSE_GOING_AWAY: u16 = 1001;

#[derive(Debug, Deserialize)]
pub(crate) struct EndQuery {
    #[serde(default)]
    key: String,
    #[serde(default)]
    dir: String,
}

pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Path(channel_id): Path<String>,
    Query(query): Query<EndQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let direction = match query.dir.as_str() {
        "read" => Direction::Read,
        "write" => Direction::Write,
        _ => return refused(&ChannelError::NotFound),
    };
    let channel_ref = ChannelRef { channel_id, access_key: query.key, direction };
    let gauge = shared.metrics.connection(ConnectionKind::Channel);
    let broker = shared.host.broker();
    match direction {
        Direction::Write => match broker.open_writer(&channel_ref) {
            Ok(writer) => {
                let upgraded = shared.config.limit(upgrade, Incoming::StreamBytes).on_upgrade(
                    move |socket| async move {
                        let _held = (gauge, shared.lifecycle.busy());
                        write_from(socket, writer, &shared).await;
                    },
                );
                crate::with_capabilities(upgraded)
            }
            Err(err) => refused(&err),
        },
        Direction::Read => match broker.open_reader(&channel_ref) {
            Ok(reader) => {
                let upgraded =
                    shared.config.limit(upgrade, Incoming::Messages).on_upgrade(move |socket| async move {
                        let _held = (gauge, shared.lifecycle.busy());
                        read_into(socket, reader, &shared).await;
                    });
                crate::with_capabilities(upgraded)
            }
            Err(err) => refused(&err),
        },
    }
}

/// The answer to a channel end that cannot be opened, before any upgrade or body: 409
/// for a second attach, 429 when the host holds as many channel buffers as it may, and
/// 404 for everything else (a wrong id, key or direction all look the same).
pub(crate) fn refused(err: &ChannelError) -> Response {
    let status = match err {
        ChannelError::AlreadyAttached => StatusCode::CONFLICT,
        ChannelError::LimitExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::NOT_FOUND,
    };
    (status, format!("{err}\n")).into_response()
}

/// Why a stream the server ended at shutdown failed.
const STOPPED: &str = "rill serve shut down before the stream ended";

/// A writing client: its frames go into the channel until it closes.
async fn write_from(socket: WebSocket, mut writer: Writer, shared: &Shared) {
    let config = &shared.config;
    let (mut sink, mut stream) = socket.split();
    let mut keepalive = Keepalive::new(config);
    let stopped = shared.lifecycle.reached(Phase::Stopped);
    tokio::pin!(stopped);
    loop {
        let idle = keepalive.deadline();
        let frame = tokio::select! {
            frame = stream.next() => frame,
            () = keepalive.ping_due() => {
                if keepalive::send(&mut sink, Frame::Ping(Default::default()), config).await.is_err() {
                    writer.abort("the writing client stopped taking messages before it closed the channel");
                    return;
                }
                continue;
            }
            () = tokio::time::sleep_until(idle) => {
                shared.metrics.limit_hit("idle");
                let reason = format!("the writing client went silent: {}", keepalive::idle_reason(config));
                writer.abort(reason.clone());
                let _ = keepalive::send(&mut sink, Frame::Close(Some(close_frame(CLOSE_GOING_AWAY, &reason))), config).await;
                return;
            }
            () = &mut stopped => break,
        };
        let write = async {
            match frame {
                Some(Ok(Frame::Binary(bytes))) => {
                    shared.metrics.channel_bytes(true, bytes.len());
                    Some(writer.write(bytes).await)
                }
                Some(Ok(Frame::Text(text))) => {
                    shared.metrics.channel_bytes(true, text.len());
                    Some(writer.send_text(text.as_str()).await)
                }
                Some(Ok(Frame::Close(frame))) => {
                    match frame {
                        None => close_writer(&mut writer),
                        Some(frame) if frame.code == CLOSE_NORMAL => close_writer(&mut writer),
                        Some(frame) => writer.abort(format!(
                            "the writing client closed the channel with code {}: {}",
                            frame.code, frame.reason
                        )),
                    }
                    None
                }
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => Some(Ok(())),
                Some(Err(err)) => {
                    writer.abort(format!("the writing client's connection failed: {err}"));
                    None
                }
                None => {
                    writer.abort("the writing client's connection was lost before it closed the channel");
                    None
                }
            }
        };
        // A full buffer holds the write (and so the client: backpressure), but not
        // past shutdown.
        let written = tokio::select! {
            written = write => written,
            () = &mut stopped => break,
        };
        // Time held back by the buffer is not the client's silence.
        keepalive.renew();
        match written {
            Some(Ok(())) => {}
            None => {
                // Finish the closing handshake (the Python SDK waits for it).
                let _ = tokio::time::timeout(config.send_timeout, sink.close()).await;
                return;
            }
            Some(Err(err)) => {
                // The reader left, or the stream cannot take this frame (a text message
                // over the limit): the stream is over; tell the client why.
                writer.abort(err.to_string());
                let close = Frame::Close(Some(close_frame(CLOSE_ABORTED, &err.to_string())));
                let _ = keepalive::send(&mut sink, close, config).await;
                return;
            }
        }
    }
    // The server stopped mid-stream: the reader must not take what it got for the whole.
    writer.abort(STOPPED);
    let _ =
        keepalive::send(&mut sink, Frame::Close(Some(close_frame(CLOSE_GOING_AWAY, STOPPED))), config).await;
}

fn close_writer(writer: &mut Writer) {
    if let Err(err) = writer.close() {
        tracing::debug!("a channel closed by its writing client: {err}");
    }
}

/// A reading client: the channel's items go out as frames, then its end as a Close.
async fn read_into(socket: WebSocket, mut reader: Reader, shared: &Shared) {
    let config = &shared.config;
    let (mut sink, mut stream) = socket.split();
    let mut keepalive = Keepalive::new(config);
    let stopped = shared.lifecycle.reached(Phase::Stopped);
    tokio::pin!(stopped);
    loop {
        let idle = keepalive.deadline();
        let frame = tokio::select! {
            () = &mut stopped => {
                // Cut off: an abort, never a clean end.
                Frame::Close(Some(close_frame(CLOSE_ABORTED, STOPPED)))
            }
            item = reader.read(MAX_CHUNK_BYTES) => match item {
                Ok(Some(Item::Bytes(bytes))) => {
                    shared.metrics.channel_bytes(false, bytes.len());
                    Frame::Binary(bytes)
                }
                Ok(Some(Item::Text(text))) => {
                    shared.metrics.channel_bytes(false, text.len());
                    Frame::Text(text.into())
                }
                Ok(None) => Frame::Close(Some(close_frame(CLOSE_NORMAL, ""))),
                Err(ChannelError::Aborted(reason)) => Frame::Close(Some(close_frame(CLOSE_ABORTED, &reason))),
                Err(err) => Frame::Close(Some(close_frame(CLOSE_ABORTED, &err.to_string()))),
            },
            incoming = stream.next() => match incoming {
                // The client left: dropping the reader tells the writer.
                Some(Ok(Frame::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {
                    keepalive.renew();
                    continue;
                }
            },
            () = keepalive.ping_due() => Frame::Ping(Default::default()),
            () = tokio::time::sleep_until(idle) => {
                shared.metrics.limit_hit("idle");
                let reason = format!("the reading client went silent: {}", keepalive::idle_reason(config));
                Frame::Close(Some(close_frame(CLOSE_GOING_AWAY, &reason)))
            }
        };
        let last = matches!(frame, Frame::Close(_));
        let data = matches!(frame, Frame::Binary(_) | Frame::Text(_));
        match keepalive::send(&mut sink, frame, config).await {
            // A client that takes the stream is not idle (its pongs may wait unread
            // while a send is held back); one that is gone stops taking it, and the send
            // timeout ends it.
            Ok(()) if data => keepalive.renew(),
            Ok(()) if !last => {}
            Ok(()) | Err(SendFailure::Broken) => break,
            Err(SendFailure::TimedOut) => {
                // Dropping the reader tells the writer that nobody reads any more.
                shared.metrics.limit_hit("send_timeout");
                tracing::warn!(
                    "dropped a channel's reading client that took no frame for {:?}",
                    config.send_timeout
                );
                return;
            }
        }
    }
    let _ = tokio::time::timeout(config.send_timeout, sink.close()).await;
}

fn close_frame(code: u16, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame { code, reason: reason[..end].into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_are_cut_on_a_character_boundary() {
        assert_eq!(close_frame(CLOSE_ABORTED, "short").reason.as_str(), "short");
        let long = "é".repeat(100); // 200 bytes
        let cut = close_frame(CLOSE_ABORTED, &long).reason;
        assert_eq!(cut.len(), 122, "61 two-byte characters fit in 123 bytes");
        assert!(long.starts_with(cut.as_str()));
    }
}
