//! `rill-test-channels`: channel ends handed between guest instances — created in one,
//! opened and read in another.
//!
//! Tested by `tests/all/channels.rs` (and the CLI's tests). Channel and call errors come
//! back inside the JSON result as `"<kind>: <message>"` (the WIT case name, then the
//! host's text for the cases that carry one, else a description), never by panicking.
//! Byte patterns are [`rill_test_support::pattern`]'s.
//!
//! | id | payload | result |
//! | --- | --- | --- |
//! | `test::create` | `{"buffer_bytes"?}` | `{"writer_ref", "reader_ref"}` or `{"error"}` |
//! | `test::open` | `{"ref", "as", "times"?}` | `{"results"}` |
//! | `test::read` | `{"reader", "max"?, "limit"?}` | `{"bytes", "sha256", "items", "items_truncated", "chunks", "max_chunk", "outcome"}` |
//! | `test::pipeline` | `{"bytes", "chunk"?, "buffer_bytes"?, "seed"?, "read"?, "reader_function"?}` | `{"written", "sha256", "outcome", "reader"}` or `{"error"}` |
//! | `test::interleave` | `{"writer", "count"}` | `{"items"}` (+ `"error"`) |

use rill_guest::{CallError, Channel, ChannelError, ChannelReader, ChannelRef, ChannelWriter, Item};
use rill_test_support::{hex, pattern};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

rill_guest::export! {
    "test::create" => create,
    "test::open" => open,
    "test::read" => read,
    "test::pipeline" => pipeline,
    "test::interleave" => interleave,
}

/// The most entries `test::read` lists in `items`.
const MAX_ITEMS: usize = 1000;

/// `"<kind>: <message>"` for a channel error.
fn describe(error: &ChannelError) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => format!("{}: {error}", error.kind()),
    }
}

/// `"<kind>: <message>"` for a call error.
fn describe_call(error: &CallError) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => format!("{}: {error}", error.kind()),
    }
}

fn new_channel(buffer_bytes: Option<u32>) -> Result<Channel, ChannelError> {
    match buffer_bytes {
        Some(n) => Channel::with_buffer_bytes(n),
        None => Channel::create(),
    }
}

// ---------------------------------------------------------------------------------------
// test::create

#[derive(Deserialize)]
struct CreatePayload {
    buffer_bytes: Option<u32>,
}

/// `test::create`: creates a channel, drops both local ends unused, and returns
/// `{"writer_ref", "reader_ref"}` for others to open; `{"error": "<kind>: <message>"}` if
/// creating failed.
fn create(payload: CreatePayload) -> Result<Value, String> {
    match new_channel(payload.buffer_bytes) {
        Ok(channel) => {
            let Channel { writer, reader, writer_ref, reader_ref } = channel;
            drop(writer);
            drop(reader);
            Ok(json!({ "writer_ref": writer_ref, "reader_ref": reader_ref }))
        }
        Err(error) => Ok(json!({ "error": describe(&error) })),
    }
}

// ---------------------------------------------------------------------------------------
// test::open

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum End {
    Reader,
    Writer,
}

#[derive(Deserialize)]
struct OpenPayload {
    #[serde(rename = "ref")]
    channel_ref: ChannelRef,
    #[serde(rename = "as")]
    end: End,
    times: Option<u32>,
}

/// `test::open`: opens `ref` as a reader or writer `times` times (default 1), keeping every
/// end it got until it returns, and reports `"ok"` or the error kind for each attempt.
fn open(payload: OpenPayload) -> Result<Value, String> {
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    let mut results = Vec::new();
    for _ in 0..payload.times.unwrap_or(1) {
        let outcome = match payload.end {
            End::Reader => ChannelReader::open(&payload.channel_ref).map(|r| readers.push(r)),
            End::Writer => ChannelWriter::open(&payload.channel_ref).map(|w| writers.push(w)),
        };
        results.push(match outcome {
            Ok(()) => "ok",
            Err(error) => error.kind(),
        });
    }
    Ok(json!({ "results": results }))
}

// ---------------------------------------------------------------------------------------
// test::read

#[derive(Deserialize)]
struct ReadPayload {
    reader: ChannelRef,
    /// Read with the host's capped `read(max)` instead of `next`.
    max: Option<u32>,
    /// Stop, and drop the reader, once at least this many bytes were read.
    limit: Option<u64>,
}

/// What `test::read` has seen so far.
struct ReadLog {
    bytes: u64,
    digest: Sha256,
    items: Vec<Value>,
    items_truncated: bool,
    chunks: u64,
    max_chunk: usize,
}

impl ReadLog {
    fn new() -> Self {
        ReadLog {
            bytes: 0,
            digest: Sha256::new(),
            items: Vec::new(),
            items_truncated: false,
            chunks: 0,
            max_chunk: 0,
        }
    }

    fn record(&mut self, item: Item) {
        match item {
            Item::Bytes(chunk) => {
                self.bytes += chunk.len() as u64;
                self.digest.update(&chunk);
                self.chunks += 1;
                self.max_chunk = self.max_chunk.max(chunk.len());
                // Consecutive byte items merge into one entry.
                if let Some(Value::Object(last)) = self.items.last_mut()
                    && let Some(n) = last.get("bytes").and_then(Value::as_u64)
                {
                    last.insert("bytes".to_owned(), json!(n + chunk.len() as u64));
                    return;
                }
                self.push(json!({ "bytes": chunk.len() }));
            }
            Item::Text(text) => self.push(json!({ "text": text })),
        }
    }

    fn push(&mut self, entry: Value) {
        if self.items.len() < MAX_ITEMS {
            self.items.push(entry);
        } else {
            self.items_truncated = true;
        }
    }

    fn finish(self, outcome: String) -> Value {
        json!({
            "bytes": self.bytes,
            "sha256": hex(self.digest),
            "items": self.items,
            "items_truncated": self.items_truncated,
            "chunks": self.chunks,
            "max_chunk": self.max_chunk,
            "outcome": outcome,
        })
    }
}

/// `test::read`: reads `reader` until the end (`"outcome": "end"`), an error
/// (`"<kind>: <message>"`, also for a failed open) or `limit` (`"limit"`; the reader is then
/// dropped). `items` lists `{"bytes": n}` (consecutive chunks merged) and `{"text": …}`
/// entries, at most 1000 (`items_truncated` says if more were seen); `chunks` and
/// `max_chunk` count the byte items as read.
fn read(payload: ReadPayload) -> Result<Value, String> {
    let mut log = ReadLog::new();
    let mut reader = match ChannelReader::open(&payload.reader) {
        Ok(reader) => reader,
        Err(error) => return Ok(log.finish(describe(&error))),
    };
    let outcome = loop {
        if payload.limit.is_some_and(|limit| log.bytes >= limit) {
            drop(reader);
            break "limit".to_owned();
        }
        let item = match payload.max {
            Some(max) => reader.read_item(max),
            None => reader.next_item(),
        };
        match item {
            Ok(Some(item)) => log.record(item),
            Ok(None) => break "end".to_owned(),
            Err(error) => break describe(&error),
        }
    };
    Ok(log.finish(outcome))
}

// ---------------------------------------------------------------------------------------
// test::pipeline

#[derive(Deserialize)]
struct PipelinePayload {
    bytes: u64,
    chunk: Option<u64>,
    buffer_bytes: Option<u32>,
    #[serde(default)]
    seed: u64,
    /// Extra fields for the reader's payload, e.g. `{"max": 10, "limit": 100}`.
    read: Option<serde_json::Map<String, Value>>,
    /// The function that reads; default `test::read`.
    reader_function: Option<String>,
}

/// `test::pipeline`: creates a channel, spawns `reader_function` (default `test::read`)
/// with `{"reader": <reader ref>, …read}`, writes `bytes` pattern bytes in `chunk` writes
/// (default 65536), closes, and waits. Returns `{"written", "sha256", "outcome": "ok" |
/// "<kind>: <message>" (the writer's side), "reader": <its result> | {"error": …}}`, or
/// `{"error"}` if the channel or the spawn failed.
fn pipeline(payload: PipelinePayload) -> Result<Value, String> {
    let channel = match new_channel(payload.buffer_bytes) {
        Ok(channel) => channel,
        Err(error) => return Ok(json!({ "error": describe(&error) })),
    };
    drop(channel.reader);

    let mut read_payload = payload.read.unwrap_or_default();
    read_payload.insert("reader".to_owned(), channel.reader_ref.to_value());
    let function = payload.reader_function.as_deref().unwrap_or("test::read");
    let consumer = match rill_guest::spawn(function, &read_payload) {
        Ok(consumer) => consumer,
        Err(error) => return Ok(json!({ "error": describe_call(&error) })),
    };

    let chunk = payload.chunk.unwrap_or(65536).max(1);
    let mut writer = channel.writer;
    let mut digest = Sha256::new();
    let mut written = 0u64;
    let mut outcome = "ok".to_owned();
    while written < payload.bytes {
        let n = chunk.min(payload.bytes - written);
        let data = pattern(payload.seed, written, n as usize);
        if let Err(error) = writer.send_bytes(&data) {
            outcome = describe(&error);
            break;
        }
        digest.update(&data);
        written += n;
    }
    if outcome == "ok" {
        if let Err(error) = writer.close() {
            outcome = describe(&error);
        }
    } else {
        drop(writer);
    }

    let reader = consumer.wait().unwrap_or_else(|error| json!({ "error": describe_call(&error) }));
    Ok(json!({
        "written": written,
        "sha256": hex(digest),
        "outcome": outcome,
        "reader": reader,
    }))
}

// ---------------------------------------------------------------------------------------
// test::interleave

#[derive(Deserialize)]
struct InterleavePayload {
    writer: ChannelRef,
    count: u32,
}

/// `test::interleave`: for `i` in `0..count` writes the bytes `[i as u8; i + 1]` then the
/// text `"t{i}"`, then closes. Returns `{"items": count}`, or on an error
/// `{"items": <pairs completed>, "error": "<kind>: <message>"}`.
fn interleave(payload: InterleavePayload) -> Result<Value, String> {
    let mut writer = match ChannelWriter::open(&payload.writer) {
        Ok(writer) => writer,
        Err(error) => return Ok(json!({ "items": 0, "error": describe(&error) })),
    };
    for i in 0..payload.count {
        let sent = writer
            .send_bytes(&vec![i as u8; i as usize + 1])
            .and_then(|()| writer.send_text(&format!("t{i}")));
        if let Err(error) = sent {
            return Ok(json!({ "items": i, "error": describe(&error) }));
        }
    }
    match writer.close() {
        Ok(()) => Ok(json!({ "items": payload.count })),
        Err(error) => Ok(json!({ "items": payload.count, "error": describe(&error) })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_described_by_kind_and_message() {
        assert_eq!(describe(&ChannelError::Aborted("boom".into())), "aborted: boom");
        assert_eq!(describe(&ChannelError::Closed), "closed: channel closed: the reader is gone");
        assert_eq!(describe_call(&CallError::Failed("m".into())), "failed: m");
    }
}
