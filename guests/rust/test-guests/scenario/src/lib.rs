//! `rill-test-scenario`: a guest whose behaviour is scripted by its JSON payload, so that
//! the host's integration tests can play channel and call scenarios across guest
//! instances.
//!
//! Every channel or call error is reported in the result as `"<kind>: <message>"` (the WIT
//! case name, then the host's text for the cases that carry one, else a description), never
//! by panicking, unless an op asks to trap. Payloads that do not fit the documented shape
//! fail the call with `invalid input for <id>: …`.
//!
//! Byte patterns: byte `i` (counted from 0 within one op) of seed `k` is
//! `(i * 31 + 7 + k) % 251`; seed 0 is the producer example's pattern.
//!
//! | id | payload | result |
//! | --- | --- | --- |
//! | `test::echo` | anything | the payload |
//! | `test::raw` | anything | `{"raw"}`: the payload text exactly as received |
//! | `test::fail` | `{"message"}` | `Err(message)` |
//! | `test::trap` | `{"message"}` | panics (a trap) |
//! | `test::write` | `{"writer", "ops", "raw"?}` | `{"written", "results", "sha256"}` |
//! | `test::read` | `{"reader", "max"?, "limit"?}` | `{"bytes", "sha256", "items", "chunks", "max_chunk", "outcome"}` |
//! | `test::open` | `{"ref", "as", "times"?}` | `{"results"}` |
//! | `test::create` | `{"buffer_bytes"?}` | `{"writer_ref", "reader_ref"}` or `{"error"}` |
//! | `test::pipeline` | `{"bytes", "chunk"?, "buffer_bytes"?, "seed"?, "read"?, "reader_function"?}` | `{"written", "sha256", "outcome", "reader"}` or `{"error"}` |
//! | `test::call` | `{"function", "payload"?, "mode"?, "timeout_ms"?}` | `{"ok"}` or `{"error"}` |
//! | `test::interleave` | `{"writer", "count"}` | `{"items"}` (+ `"error"`) |
//! | `test::spin` | `{"ms"?}` | busy-loops (forever without `ms`), then `{"spun_ms"}` |
//! | `test::alloc` | `{"bytes"}` | allocates and touches that many bytes, `{"allocated"}` |
//! | `test::residue` | `{"grow_pages"}` | what a previous call left behind: `{"counter", "mark", "dirty_bytes"}` |
//!
//! See each handler for the details.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rill_guest::bindings::rill::host::channels as raw;
use rill_guest::{
    CallError, CallOptions, Channel, ChannelError, ChannelReader, ChannelRef, ChannelWriter, Item,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

rill_guest::export! {
    "test::echo" => echo,
    "test::raw" => raw_payload,
    "test::fail" => fail,
    "test::trap" => trap,
    "test::write" => write,
    "test::read" => read,
    "test::open" => open,
    "test::create" => create,
    "test::pipeline" => pipeline,
    "test::call" => call,
    "test::interleave" => interleave,
    "test::spin" => spin,
    "test::alloc" => alloc,
    "test::residue" => residue,
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

/// The pattern repeats every `PERIOD` bytes.
const PERIOD: usize = 251;

/// `len` bytes of the pattern for `seed`, starting at index `start` of the op.
fn pattern(seed: u64, start: u64, len: usize) -> Vec<u8> {
    let seed = (seed % PERIOD as u64) as usize;
    let period: Vec<u8> = (0..PERIOD).map(|j| ((j * 31 + 7 + seed) % PERIOD) as u8).collect();
    let mut out = Vec::with_capacity(len);
    let mut offset = (start % PERIOD as u64) as usize;
    while out.len() < len {
        let take = (PERIOD - offset).min(len - out.len());
        out.extend_from_slice(&period[offset..offset + take]);
        offset = 0;
    }
    out
}

fn hex(digest: Sha256) -> String {
    format!("{:x}", digest.finalize())
}

/// `test::echo`: returns the payload unchanged.
fn echo(payload: Value) -> Result<Value, String> {
    Ok(payload)
}

/// `test::raw`: returns the payload's JSON text exactly as it arrived (serde_json's
/// `RawValue` keeps the bytes of the value, without the whitespace around it), so callers
/// can check that nothing on the way re-serialized it.
#[expect(clippy::boxed_local, reason = "a RawValue is deserialized only into a Box")]
fn raw_payload(payload: Box<serde_json::value::RawValue>) -> Result<Value, String> {
    Ok(json!({ "raw": payload.get() }))
}

#[derive(Deserialize)]
struct Message {
    message: Option<String>,
}

/// `test::fail`: fails with `payload.message`.
fn fail(payload: Message) -> Result<Value, String> {
    Err(payload.message.unwrap_or_else(|| "test::fail called".to_owned()))
}

/// `test::trap`: panics with `payload.message`; with `panic = "abort"` that is a trap.
fn trap(payload: Message) -> Result<Value, String> {
    let message = payload.message.unwrap_or_else(|| "test::trap called".to_owned());
    panic!("{message}");
}

// ---------------------------------------------------------------------------------------
// test::write

#[derive(Deserialize)]
struct WritePayload {
    writer: ChannelRef,
    ops: Vec<Value>,
    /// Drive the raw WIT resource instead of the SDK's `ChannelWriter`, so that ops after
    /// `close`/`abort` reach the host (which answers `finished`).
    #[serde(default)]
    raw: bool,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    /// `len` pattern bytes of `seed`, in one write or in writes of `chunk` bytes.
    Bytes {
        len: u64,
        #[serde(default)]
        seed: u64,
        chunk: Option<u64>,
    },
    /// One text message.
    Text { text: String },
    /// A clean close.
    Close,
    /// An abort with `reason`.
    Abort { reason: String },
    /// A panic right here.
    Trap { message: String },
    /// Pattern writes of `chunk` bytes until one fails (or `max` bytes went through).
    WriteUntilError {
        chunk: u64,
        #[serde(default)]
        seed: u64,
        max: Option<u64>,
    },
    /// Return at once, dropping the writer without closing it.
    Return,
}

/// The writer under test: the SDK's or the raw resource.
trait Sink {
    fn bytes(&mut self, data: &[u8]) -> Result<(), String>;
    fn text(&mut self, text: &str) -> Result<(), String>;
    fn close(&mut self) -> Result<(), String>;
    fn abort(&mut self, reason: &str) -> Result<(), String>;
}

/// The SDK writer; `close` and `abort` consume it, so later ops report `no-writer`.
struct SdkSink(Option<ChannelWriter>);

impl SdkSink {
    fn writer(&mut self) -> Result<&mut ChannelWriter, String> {
        self.0.as_mut().ok_or_else(|| {
            "no-writer: an earlier op closed or aborted the SDK writer (use \"raw\": true to \
             reach the host)"
                .to_owned()
        })
    }
}

impl Sink for SdkSink {
    fn bytes(&mut self, data: &[u8]) -> Result<(), String> {
        self.writer()?.send_bytes(data).map_err(|e| describe(&e))
    }
    fn text(&mut self, text: &str) -> Result<(), String> {
        self.writer()?.send_text(text).map_err(|e| describe(&e))
    }
    fn close(&mut self) -> Result<(), String> {
        self.writer()?;
        match self.0.take() {
            Some(writer) => writer.close().map_err(|e| describe(&e)),
            None => Ok(()),
        }
    }
    fn abort(&mut self, reason: &str) -> Result<(), String> {
        self.writer()?;
        if let Some(writer) = self.0.take() {
            writer.abort(reason);
        }
        Ok(())
    }
}

/// The raw WIT writer, whose `close` and `abort` borrow.
struct RawSink(raw::Writer);

impl Sink for RawSink {
    fn bytes(&mut self, data: &[u8]) -> Result<(), String> {
        self.0.write(data).map_err(|e| describe(&ChannelError::from(e)))
    }
    fn text(&mut self, text: &str) -> Result<(), String> {
        self.0.send_text(text).map_err(|e| describe(&ChannelError::from(e)))
    }
    fn close(&mut self) -> Result<(), String> {
        self.0.close().map_err(|e| describe(&ChannelError::from(e)))
    }
    fn abort(&mut self, reason: &str) -> Result<(), String> {
        self.0.abort(reason);
        Ok(())
    }
}

/// What `test::write` has done so far.
struct WriteLog {
    written: u64,
    results: Vec<String>,
    digest: Sha256,
}

impl WriteLog {
    fn bytes(&mut self, sink: &mut dyn Sink, data: &[u8]) -> Result<(), String> {
        sink.bytes(data)?;
        self.written += data.len() as u64;
        self.digest.update(data);
        Ok(())
    }

    fn finish(self) -> Value {
        json!({ "written": self.written, "results": self.results, "sha256": hex(self.digest) })
    }
}

/// `test::write`: opens `writer` and runs `ops` in order, stopping at the first error.
///
/// `results` has one entry per op run: `"ok"` or `"<kind>: <message>"` (for
/// `write_until_error`, the error that ended it; `no-writer: …` is this guest's own error
/// for an op after the SDK writer was consumed). `written` and `sha256` cover the bytes of
/// successful writes. Ending the ops without `close` drops the writer.
fn write(payload: WritePayload) -> Result<Value, String> {
    let mut log = WriteLog { written: 0, results: Vec::new(), digest: Sha256::new() };
    let opened = if payload.raw {
        let wit_ref: raw::ChannelRef = payload.writer.into();
        raw::open_writer(&wit_ref).map(|w| Box::new(RawSink(w)) as Box<dyn Sink>).map_err(ChannelError::from)
    } else {
        ChannelWriter::open(&payload.writer).map(|w| Box::new(SdkSink(Some(w))) as Box<dyn Sink>)
    };
    let mut sink = match opened {
        Ok(sink) => sink,
        Err(error) => {
            log.results.push(describe(&error));
            return Ok(log.finish());
        }
    };

    for op in payload.ops {
        let op: Op = match serde_json::from_value(op.clone()) {
            Ok(op) => op,
            Err(error) => return Err(format!("invalid op {op}: {error}")),
        };
        let outcome = match op {
            Op::Bytes { len, seed, chunk } => {
                let chunk = chunk.unwrap_or(len).max(1);
                let mut done = 0;
                let mut outcome = Ok(());
                while done < len && outcome.is_ok() {
                    let n = chunk.min(len - done);
                    let data = pattern(seed, done, n as usize);
                    outcome = log.bytes(sink.as_mut(), &data);
                    done += n;
                }
                if len == 0 {
                    outcome = log.bytes(sink.as_mut(), &[]);
                }
                outcome
            }
            Op::Text { text } => sink.text(&text),
            Op::Close => sink.close(),
            Op::Abort { reason } => sink.abort(&reason),
            Op::Trap { message } => panic!("{message}"),
            Op::WriteUntilError { chunk, seed, max } => {
                let chunk = chunk.max(1);
                let mut done = 0u64;
                let error = loop {
                    if max.is_some_and(|max| done >= max) {
                        break None;
                    }
                    let data = pattern(seed, done, chunk as usize);
                    if let Err(error) = log.bytes(sink.as_mut(), &data) {
                        break Some(error);
                    }
                    done += chunk;
                };
                error.map_or(Ok(()), Err)
            }
            Op::Return => {
                log.results.push("ok".to_owned());
                return Ok(log.finish());
            }
        };
        match outcome {
            Ok(()) => log.results.push("ok".to_owned()),
            Err(error) => {
                log.results.push(error);
                break;
            }
        }
    }
    drop(sink);
    Ok(log.finish())
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
// test::create

#[derive(Deserialize)]
struct CreatePayload {
    buffer_bytes: Option<u32>,
}

fn new_channel(buffer_bytes: Option<u32>) -> Result<Channel, ChannelError> {
    match buffer_bytes {
        Some(n) => Channel::with_buffer_bytes(n),
        None => Channel::create(),
    }
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
// test::call

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Trigger,
    Spawn,
    Void,
}

#[derive(Deserialize)]
struct CallPayload {
    function: String,
    #[serde(default)]
    payload: Value,
    mode: Option<Mode>,
    timeout_ms: Option<u64>,
}

/// `test::call`: calls `function` with `payload` by `mode` (`trigger`, the default;
/// `spawn` then `wait`; or `void`) with an optional timeout. Returns `{"ok": <result>}`
/// (`null` for `void`) or `{"error": "<kind>: <message>"}`.
fn call(payload: CallPayload) -> Result<Value, String> {
    let mut options = CallOptions::new();
    if let Some(ms) = payload.timeout_ms {
        options = options.timeout(Duration::from_millis(ms));
    }
    let id = payload.function.as_str();
    let result = match payload.mode.unwrap_or(Mode::Trigger) {
        Mode::Trigger => rill_guest::trigger_with(id, &payload.payload, &options),
        Mode::Spawn => rill_guest::spawn_with(id, &payload.payload, &options).and_then(|call| call.wait()),
        Mode::Void => rill_guest::trigger_void_with(id, &payload.payload, &options).map(|()| Value::Null),
    };
    Ok(match result {
        Ok(value) => json!({ "ok": value }),
        Err(error) => json!({ "error": describe_call(&error) }),
    })
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

// ---------------------------------------------------------------------------------------
// test::spin and test::alloc

#[derive(Deserialize)]
struct SpinPayload {
    ms: Option<u64>,
}

/// `test::spin`: burns CPU for `ms` milliseconds, or forever without `ms` (for deadline and
/// interruption tests). Returns `{"spun_ms": <elapsed>}`.
fn spin(payload: SpinPayload) -> Result<Value, String> {
    let start = Instant::now();
    let limit = payload.ms.map(Duration::from_millis);
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
        if counter.is_multiple_of(4096) && limit.is_some_and(|limit| start.elapsed() >= limit) {
            break;
        }
    }
    Ok(json!({ "spun_ms": start.elapsed().as_millis() as u64 }))
}

#[derive(Deserialize)]
struct AllocPayload {
    bytes: usize,
}

/// `test::alloc`: allocates `bytes` bytes and touches every page (for memory-limit tests; an
/// allocation the host refuses is a trap). Returns `{"allocated": bytes}`.
fn alloc(payload: AllocPayload) -> Result<Value, String> {
    let mut block = vec![0u8; payload.bytes];
    for page in block.chunks_mut(65536) {
        page[0] = 1;
    }
    let touched = std::hint::black_box(&block).iter().step_by(65536).count();
    Ok(json!({ "allocated": payload.bytes, "pages": touched }))
}

/// Zero in a fresh instance (a `.bss` static).
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// [`MARK_INITIAL`] in a fresh instance (a `.data` static, from the memory image).
static MARK: AtomicU32 = AtomicU32::new(MARK_INITIAL);
const MARK_INITIAL: u32 = 0x5eed;
const DIRTY_BYTE: u8 = 0xab;

#[derive(Deserialize)]
struct ResiduePayload {
    grow_pages: u32,
}

/// Looks for anything an earlier call could have left in this instance's memory, then
/// leaves some behind: bumps `COUNTER` (1 in a fresh instance), overwrites `MARK` (the
/// result reports its old value, [`MARK_INITIAL`] when fresh), and grows memory by
/// `grow_pages`, counting the non-zero bytes found there (`dirty_bytes`, 0 when fresh)
/// before filling the pages with `0xab`.
fn residue(payload: ResiduePayload) -> Result<Value, String> {
    let counter = COUNTER.fetch_add(1, Ordering::SeqCst) + 1;
    let mark = MARK.swap(0xdead, Ordering::SeqCst);
    let dirty_bytes = grow_and_dirty(payload.grow_pages)?;
    Ok(json!({ "counter": counter, "mark": mark, "dirty_bytes": dirty_bytes }))
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, reason = "inspects raw pages no allocation owns, to prove the host reset them")]
fn grow_and_dirty(pages: u32) -> Result<usize, String> {
    const PAGE: usize = 65536;
    let old = core::arch::wasm32::memory_grow(0, pages as usize);
    if old == usize::MAX {
        return Err(format!("memory.grow by {pages} pages failed"));
    }
    // SAFETY: the pages just grown belong to no allocation; nothing else refers to them.
    let grown = unsafe { std::slice::from_raw_parts_mut((old * PAGE) as *mut u8, pages as usize * PAGE) };
    let dirty = grown.iter().filter(|&&b| b != 0).count();
    grown.fill(DIRTY_BYTE);
    Ok(dirty)
}

#[cfg(not(target_arch = "wasm32"))]
fn grow_and_dirty(_pages: u32) -> Result<usize, String> {
    Err("test::residue grows wasm memory; it runs only as a component".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matches_the_documented_formula() {
        for (seed, start, len) in [(0, 0, 600), (3, 10, 600), (500, 249, 3), (7, 0, 0)] {
            let naive: Vec<u8> =
                (start..start + len as u64).map(|i| ((i * 31 + 7 + seed) % 251) as u8).collect();
            assert_eq!(pattern(seed, start, len), naive, "seed {seed} start {start}");
        }
    }

    #[test]
    fn errors_are_described_by_kind_and_message() {
        assert_eq!(describe(&ChannelError::Aborted("boom".into())), "aborted: boom");
        assert_eq!(describe(&ChannelError::Closed), "closed: channel closed: the reader is gone");
        assert_eq!(describe_call(&CallError::Failed("m".into())), "failed: m");
        assert_eq!(describe_call(&CallError::TimedOut), "timed-out: call timed out");
    }
}
