//! Plain HTTP, for curl and browsers:
//!
//! | request | answer |
//! | --- | --- |
//! | `POST /functions/{id}` with a JSON body | the function's JSON result; errors by kind: 404 not found, 400 invalid input, 504 timed out, 413 limit exceeded, 429 no room to run it now, 500 failed (the body says why) |
//! | `POST /channels` (body `{"buffer_bytes": n}` or empty) | `{"writer": ref, "reader": ref}` |
//! | `PUT /channels/{id}?key=<writer key>` with any body | streams the body into the channel and closes it; a client that disconnects mid-body aborts it |
//! | `GET /channels/{id}?key=<reader key>` | streams the channel's bytes; an aborted stream ends the response without its final chunk, so the client sees an error, never a short file |
//!
//! Text messages are not bytes: a download skips them (they are for WebSocket readers).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use rill::{ChannelOptions, Item};
use rill_broker::{ChannelError, ChannelRef, Direction, MAX_CHUNK_BYTES};
use rill_protocol::CallErrorKind;
use rill_protocol::worker::{InvokeFunction, codes};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Shared;
use crate::channels::refused;

/// `POST /functions/{id}`.
pub(crate) async fn trigger(
    State(shared): State<Arc<Shared>>,
    Path(function_id): Path<String>,
    body: Bytes,
) -> Response {
    let text = if body.is_empty() {
        "null".to_owned()
    } else {
        match String::from_utf8(body.to_vec()) {
            Ok(text) => text,
            Err(_) => return error(StatusCode::BAD_REQUEST, "the body is not UTF-8 JSON"),
        }
    };
    let data = match RawValue::from_string(text) {
        Ok(data) => data,
        Err(err) => return error(StatusCode::BAD_REQUEST, &format!("the body is not JSON: {err}")),
    };
    let call = InvokeFunction {
        invocation_id: None,
        function_id,
        data,
        action: None,
        traceparent: None,
        baggage: None,
    };
    match shared.registry.invoke_counted(call).await {
        Ok(result) => ([(header::CONTENT_TYPE, "application/json")], result.get().to_owned()).into_response(),
        Err(failure) => {
            let status = match failure.code.as_str() {
                codes::FUNCTION_NOT_FOUND => StatusCode::NOT_FOUND,
                codes::INVOCATION_STOPPED => StatusCode::BAD_GATEWAY,
                code if code == CallErrorKind::InvalidInput.wit_name() => StatusCode::BAD_REQUEST,
                code if code == CallErrorKind::TimedOut.wit_name() => StatusCode::GATEWAY_TIMEOUT,
                code if code == CallErrorKind::LimitExceeded.wit_name() => StatusCode::PAYLOAD_TOO_LARGE,
                code if code == CallErrorKind::Unavailable.wit_name() => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let body = serde_json::json!({ "error": { "code": failure.code, "message": failure.message } });
            (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": "invalid-input", "message": message } });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CreateChannel {
    #[serde(default)]
    buffer_bytes: Option<usize>,
}

/// `POST /channels`.
pub(crate) async fn create_channel(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: CreateChannel = if body.is_empty() {
        CreateChannel::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(err) => {
                return error(StatusCode::BAD_REQUEST, &format!("expected {{\"buffer_bytes\": n}}: {err}"));
            }
        }
    };
    let options = request.buffer_bytes.map(ChannelOptions::buffer_bytes).unwrap_or_default();
    match shared.host.create_channel(&options) {
        Ok(channel) => {
            let body = serde_json::json!({ "writer": channel.writer_ref, "reader": channel.reader_ref });
            ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
        Err(err @ ChannelError::InvalidArgument(_)) => error(StatusCode::BAD_REQUEST, &err.to_string()),
        Err(err) => error(StatusCode::TOO_MANY_REQUESTS, &err.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyQuery {
    #[serde(default)]
    key: String,
}

fn end_ref(channel_id: String, key: String, direction: Direction) -> ChannelRef {
    ChannelRef { channel_id, access_key: key, direction }
}

/// `PUT /channels/{id}?key=`: the body into the channel.
pub(crate) async fn upload(
    State(shared): State<Arc<Shared>>,
    Path(channel_id): Path<String>,
    Query(query): Query<KeyQuery>,
    body: Body,
) -> Response {
    let mut writer = match shared.host.broker().open_writer(&end_ref(channel_id, query.key, Direction::Write))
    {
        Ok(writer) => writer,
        Err(err) => return refused(&err),
    };
    let _busy = shared.lifecycle.busy();
    let mut stream = body.into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                written += bytes.len() as u64;
                shared.metrics.channel_bytes(true, bytes.len());
                if let Err(err) = writer.write(bytes).await {
                    writer.abort(err.to_string());
                    return (StatusCode::CONFLICT, format!("the channel took no more: {err}\n"))
                        .into_response();
                }
            }
            Err(err) => {
                // The client went away (or sent a broken body) before the end.
                writer.abort(format!("the uploading client's body ended early: {err}"));
                return (StatusCode::BAD_REQUEST, "the body ended early; the channel is aborted\n")
                    .into_response();
            }
        }
    }
    match writer.close() {
        Ok(()) => {
            ([(header::CONTENT_TYPE, "application/json")], format!("{{\"bytes\":{written}}}")).into_response()
        }
        Err(err) => (StatusCode::CONFLICT, format!("{err}\n")).into_response(),
    }
}

/// `GET /channels/{id}?key=`: the channel's bytes as the response body.
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    Path(channel_id): Path<String>,
    Query(query): Query<KeyQuery>,
) -> Response {
    let reader = match shared.host.broker().open_reader(&end_ref(channel_id, query.key, Direction::Read)) {
        Ok(reader) => reader,
        Err(err) => return refused(&err),
    };
    let busy = shared.lifecycle.busy();
    let metrics = Arc::clone(&shared.metrics);
    let chunks = futures::stream::unfold((reader, busy), move |(mut reader, busy)| {
        let metrics = Arc::clone(&metrics);
        async move {
            loop {
                match reader.read(MAX_CHUNK_BYTES).await {
                    Ok(Some(Item::Bytes(bytes))) => {
                        metrics.channel_bytes(false, bytes.len());
                        return Some((Ok::<Bytes, std::io::Error>(bytes), (reader, busy)));
                    }
                    Ok(Some(Item::Text(_))) => continue,
                    Ok(None) => return None,
                    // Ending the body with an error makes the server cut the response
                    // without its last chunk: the client sees a failed transfer.
                    Err(err) => return Some((Err(std::io::Error::other(err.to_string())), (reader, busy))),
                }
            }
        }
    });
    ([(header::CONTENT_TYPE, "application/octet-stream")], Body::from_stream(chunks)).into_response()
}
