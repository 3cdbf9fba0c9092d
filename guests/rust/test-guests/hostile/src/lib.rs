//! `rill-test-hostile`: a guest that attacks the host, one limit per function.
//!
//! Each function does one thing a malicious or broken guest might do. It uses the raw
//! bindings where the SDK would protect it (the SDK splits large writes, for example).
//! The host's sandbox suite (`tests/all/hostile.rs`) asserts that each attack ends in the
//! exact error kind for this guest alone, within a bound, while other functions keep
//! working.
//!
//! | id | attack |
//! | --- | --- |
//! | `hostile::loop` | spins forever |
//! | `hostile::memory_bomb` | allocates without end |
//! | `hostile::huge_write` | passes `{"bytes"}` bytes to the host in one `write` of `{"writer"}` |
//! | `hostile::channel_flood` | creates up to `{"count"}` channels, dropping their ends; with `{"write": true}` writes a byte to each and keeps them |
//! | `hostile::handle_flood` | creates up to `{"count"}` channels and keeps every end open |
//! | `hostile::guess_refs` | opens `{"count"}` made-up refs; returns the outcomes by kind |
//! | `hostile::replay` | opens a finished channel's refs again; returns the outcomes |
//! | `hostile::recurse` | triggers itself until refused; returns the depth reached |
//! | `hostile::deep_result` | returns JSON nested `{"depth"}` levels deep (at most 1000) |
//! | `hostile::big_result` | returns a JSON string of `{"bytes"}` bytes |
//! | `hostile::stdout_flood` | prints `{"bytes"}` bytes to stdout |
//! | `hostile::never_read` | opens `{"reader"}` and spins without reading |
//! | `hostile::fan_out` | starts `{"count"}` void calls of `{"function"}` (default `test::spin`) with `{"ms"}` |
//! | `hostile::block` | reads a channel whose writer it holds and never writes: blocks until its deadline |
//! | `hostile::write_then_fail` | writes `{"bytes"}` to `{"writer"}`, then returns an error without closing |
//! | `hostile::read_file` | reads the file at `{"path"}` |
//! | `hostile::write_file` | writes `{"text"}` to the file at `{"path"}` |
//! | `hostile::env` | reads the environment variable `{"name"}`, and counts all it can see |
//! | `hostile::connect` | opens a TCP connection to `{"addr"}` |
//!
//! The last four probe the capabilities: each returns `{"ok": …}` or `{"error": "…"}`.

use std::collections::BTreeMap;
use std::io::Write;

/// This guest's own bindings of `wit/`, for the attacks that need the raw resources
/// (the SDK would split a huge write, for example). Only imports are used: the export is
/// `rill_guest::export!`'s, so this world's type information gets a section name of its
/// own (`type_section_suffix`) beside the SDK's.
#[allow(unsafe_code, reason = "the ABI glue wit-bindgen generates")]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../../wit",
        world: "function",
        type_section_suffix: "rill-test-hostile",
    });
}

use bindings::rill::host::channels as raw;
use rill_guest::{CallError, Channel, ChannelRef, Direction};
use serde::Deserialize;
use serde_json::{Value, json};

rill_guest::export! {
    "hostile::loop" => spin_forever,
    "hostile::memory_bomb" => memory_bomb,
    "hostile::huge_write" => huge_write,
    "hostile::channel_flood" => channel_flood,
    "hostile::handle_flood" => handle_flood,
    "hostile::guess_refs" => guess_refs,
    "hostile::replay" => replay,
    "hostile::recurse" => recurse,
    "hostile::deep_result" => deep_result,
    "hostile::big_result" => big_result,
    "hostile::stdout_flood" => stdout_flood,
    "hostile::never_read" => never_read,
    "hostile::fan_out" => fan_out,
    "hostile::write_then_fail" => write_then_fail,
    "hostile::read_file" => read_file,
    "hostile::write_file" => write_file,
    "hostile::env" => env,
    "hostile::connect" => connect,
    "hostile::block" => block,
}

fn spin_forever(_: Value) -> Result<Value, String> {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn memory_bomb(_: Value) -> Result<Value, String> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every block so the memory is really used, not just reserved.
        let block = vec![1u8; 1 << 20];
        hoard.push(std::hint::black_box(block));
    }
}

#[derive(Deserialize)]
struct HugeWrite {
    writer: ChannelRef,
    bytes: usize,
}

fn huge_write(payload: HugeWrite) -> Result<Value, String> {
    let writer = raw::open_writer(&wit_ref(payload.writer)).map_err(|e| format!("{e:?}"))?;
    let data = vec![7u8; payload.bytes];
    // One host call with everything, as the SDK never would.
    writer.write(&data).map_err(|e| format!("{e:?}"))?;
    writer.close().map_err(|e| format!("{e:?}"))?;
    Ok(json!({ "written": payload.bytes }))
}

#[derive(Deserialize)]
struct Count {
    count: usize,
}

#[derive(Deserialize)]
struct Flood {
    count: usize,
    /// Write a byte to each channel (which reserves its buffer) and keep it open.
    #[serde(default)]
    write: bool,
}

fn channel_flood(payload: Flood) -> Result<Value, String> {
    let mut kept = Vec::new();
    for created in 0..payload.count {
        let used = Channel::create().and_then(|mut channel| {
            if payload.write {
                channel.writer.send_bytes(b"x")?;
                kept.push(channel);
            }
            // Otherwise dropping both unused ends leaves the channel waiting for its refs.
            Ok(())
        });
        if let Err(err) = used {
            return Ok(json!({ "created": created, "error": format!("{}: {err}", err.kind()) }));
        }
    }
    Ok(json!({ "created": payload.count }))
}

fn handle_flood(payload: Count) -> Result<Value, String> {
    let mut kept = Vec::new();
    for created in 0..payload.count {
        match raw::create(raw::ChannelOptions { buffer_bytes: Some(64 << 10) }) {
            Ok(channel) => kept.push(channel),
            Err(err) => return Ok(json!({ "created": created, "error": format!("{err:?}") })),
        }
    }
    Ok(json!({ "created": kept.len() }))
}

#[derive(Deserialize)]
struct Guess {
    count: usize,
    seed: u64,
}

fn guess_refs(payload: Guess) -> Result<Value, String> {
    let mut state = payload.seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..payload.count {
        let (a, b) = (next(), next());
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        );
        let key = format!("{:016x}{:016x}{:016x}{:016x}", next(), next(), next(), next());
        let direction = if i % 2 == 0 { raw::Direction::Read } else { raw::Direction::Write };
        let guess = raw::ChannelRef { channel_id: id, access_key: key, direction };
        let outcome = match direction {
            raw::Direction::Read => raw::open_reader(&guess).map(drop),
            raw::Direction::Write => raw::open_writer(&guess).map(drop),
        };
        let kind = match outcome {
            Ok(()) => "opened".to_owned(),
            Err(err) => format!("{err:?}"),
        };
        *outcomes.entry(kind).or_default() += 1;
    }
    Ok(json!({ "outcomes": outcomes }))
}

fn replay(_: Value) -> Result<Value, String> {
    let channel = Channel::create().map_err(|e| e.to_string())?;
    let (writer_ref, reader_ref) = (channel.writer_ref.clone(), channel.reader_ref.clone());
    let (mut writer, mut reader) = (channel.writer, channel.reader);
    writer.write_all(b"once").map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    let read = reader.read_all().map_err(|e| e.to_string())?;
    drop(reader);
    let again = |r: &ChannelRef, as_writer: bool| {
        let wit = wit_ref(r.clone());
        let outcome =
            if as_writer { raw::open_writer(&wit).map(drop) } else { raw::open_reader(&wit).map(drop) };
        match outcome {
            Ok(()) => "opened".to_owned(),
            Err(err) => format!("{err:?}"),
        }
    };
    Ok(json!({
        "read": String::from_utf8_lossy(&read),
        "reader_again": again(&reader_ref, false),
        "writer_again": again(&writer_ref, true),
    }))
}

fn recurse(_: Value) -> Result<Value, String> {
    match rill_guest::trigger("hostile::recurse", &json!({})) {
        Ok(inner) => {
            let depth = inner["depth"].as_u64().unwrap_or(0) + 1;
            Ok(json!({ "depth": depth, "error": inner["error"] }))
        }
        Err(err @ CallError::LimitExceeded(_)) => {
            Ok(json!({ "depth": 1, "error": format!("{}: {err}", err.kind()) }))
        }
        Err(err) => Err(format!("unexpected: {}: {err}", err.kind())),
    }
}

#[derive(Deserialize)]
struct Depth {
    depth: usize,
}

fn deep_result(payload: Depth) -> Result<Nested, String> {
    Ok(Nested(payload.depth.min(MAX_NESTING)))
}

/// Deepest nesting `hostile::deep_result` builds: far past the host's limit, yet shallow
/// enough for this guest's own (recursive) serializer.
const MAX_NESTING: usize = 1000;

/// `[[[…]]]`, `0` levels deep.
struct Nested(usize);

impl serde::Serialize for Nested {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(usize::from(self.0 > 0)))?;
        if self.0 > 0 {
            seq.serialize_element(&Nested(self.0 - 1))?;
        }
        seq.end()
    }
}

#[derive(Deserialize)]
struct Bytes {
    bytes: usize,
}

fn big_result(payload: Bytes) -> Result<Value, String> {
    Ok(Value::String("x".repeat(payload.bytes)))
}

fn stdout_flood(payload: Bytes) -> Result<Value, String> {
    let line = "flood ".repeat(1000) + "\n";
    let mut printed = 0;
    let mut stdout = std::io::stdout();
    while printed < payload.bytes {
        stdout.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
        printed += line.len();
    }
    Ok(json!({ "printed": printed }))
}

#[derive(Deserialize)]
struct NeverRead {
    reader: ChannelRef,
}

fn never_read(payload: NeverRead) -> Result<Value, String> {
    let _reader = rill_guest::ChannelReader::open(&payload.reader).map_err(|e| e.to_string())?;
    spin_forever(Value::Null)
}

fn outcome<T: serde::Serialize, E: std::fmt::Display>(result: Result<T, E>) -> Value {
    match result {
        Ok(value) => json!({ "ok": value }),
        Err(err) => json!({ "error": err.to_string() }),
    }
}

#[derive(Deserialize)]
struct FileProbe {
    path: String,
    #[serde(default)]
    text: String,
}

fn read_file(payload: FileProbe) -> Result<Value, String> {
    Ok(outcome(std::fs::read_to_string(&payload.path)))
}

fn write_file(payload: FileProbe) -> Result<Value, String> {
    Ok(outcome(std::fs::write(&payload.path, payload.text.as_bytes()).map(|()| "written")))
}

#[derive(Deserialize)]
struct EnvProbe {
    name: String,
}

fn env(payload: EnvProbe) -> Result<Value, String> {
    Ok(json!({ "value": outcome(std::env::var(&payload.name)), "visible": std::env::vars().count() }))
}

#[derive(Deserialize)]
struct ConnectProbe {
    addr: String,
}

fn connect(payload: ConnectProbe) -> Result<Value, String> {
    let addr: std::net::SocketAddr = payload.addr.parse().map_err(|e| format!("bad address: {e}"))?;
    Ok(outcome(std::net::TcpStream::connect(addr).map(|_| "connected")))
}

#[derive(Deserialize)]
struct FanOut {
    count: usize,
    ms: u64,
    function: Option<String>,
}

fn fan_out(payload: FanOut) -> Result<Value, String> {
    let function = payload.function.as_deref().unwrap_or("test::spin");
    for started in 0..payload.count {
        if let Err(err) = rill_guest::trigger_void(function, &json!({ "ms": payload.ms })) {
            return Ok(json!({ "started": started, "error": format!("{}: {err}", err.kind()) }));
        }
    }
    Ok(json!({ "started": payload.count }))
}

#[derive(Deserialize)]
struct WriteThenFail {
    writer: ChannelRef,
    bytes: usize,
}

fn write_then_fail(payload: WriteThenFail) -> Result<Value, String> {
    let mut writer = rill_guest::ChannelWriter::open(&payload.writer).map_err(|e| e.to_string())?;
    writer.write_all(&vec![1u8; payload.bytes]).map_err(|e| e.to_string())?;
    // Returning drops the writer unclosed: its reader must see this error as the reason.
    Err("gave up half way".to_owned())
}

/// Holds an instance without using the CPU: waits for data that never comes, as a child
/// blocked on a read would, until the host stops it at its deadline.
fn block(_: Value) -> Result<Value, String> {
    let channel = raw::create(raw::ChannelOptions { buffer_bytes: None }).map_err(|e| format!("{e:?}"))?;
    // An empty write attaches the writer without sending anything: the channel then ends
    // with this call (an unused end would keep it waiting for its ref to attach).
    channel.writer.write(&[]).map_err(|e| format!("{e:?}"))?;
    let item = channel.reader.next().map_err(|e| format!("{e:?}"))?;
    Err(format!("hostile::block read {item:?} from a channel nobody writes"))
}

/// The SDK's ref as this guest's WIT record.
fn wit_ref(r: ChannelRef) -> raw::ChannelRef {
    let direction = match r.direction {
        Direction::Read => raw::Direction::Read,
        Direction::Write => raw::Direction::Write,
    };
    raw::ChannelRef { channel_id: r.channel_id, access_key: r.access_key, direction }
}
