//! `rill-test-contract`: a guest written against `wit/` alone — the generated bindings,
//! no SDK — so that rill's contract tests check what the WIT promises to any guest, in
//! any language. (Refs in payloads are parsed with `rill-protocol`, the wire vocabulary
//! that every SDK's tests share, which is not an SDK.)
//!
//! Each call plays a list of steps on channel ends and reports one outcome per step, as
//! it happens, so a test can check that a rule holds at the moment the guest acts (not
//! when its call ends).
//!
//! | id | payload | what it does |
//! | --- | --- | --- |
//! | `contract::local` | `{"steps", "buffer_bytes"?}` | creates a channel (its two local ends fill the `writer` and `reader` slots) and plays `steps` |
//! | `contract::remote` | `{"ref", "steps"}` | plays `steps` with no end open; `["open", …]` attaches the end `ref` names |
//!
//! The result is `{"outcomes": [...]}`, one entry per step played. Steps are JSON arrays:
//!
//! | step | outcome |
//! | --- | --- |
//! | `["write", n]` | writes `n` bytes (byte `i` is `i % 251`) on the writer slot: `"ok"` or the error |
//! | `["text", s]` | sends text `s`: `"ok"` or the error |
//! | `["close"]` | closes the writer slot: `"ok"` or the error |
//! | `["abort", reason]` | aborts the writer slot: `"ok"` |
//! | `["drop", "writer" \| "reader"]` | drops that slot's end: `"ok"` |
//! | `["next"]` | one item from the reader slot: `"bytes N"`, `"text S"`, `"end"` or the error |
//! | `["read", max]` | as `next` with `read(max)` |
//! | `["drain"]` | reads until the end or an error: `"N bytes, end"` or `"N bytes, <error>"` |
//! | `["open", "writer" \| "reader", dir?]` | opens the ref of direction `dir` (default: the slot's own) as that kind of end into the slot: `"ok"` or the error |
//! | `["trigger", fn, dir, steps]` | calls `fn` with `{"ref": <the ref of direction dir>, "steps"}` and waits: its outcomes, or `"call failed: <error>"` |
//! | `["spawn", fn, dir, steps]` | starts that call: `"ok"` |
//! | `["wait"]` | waits for the oldest spawned call: as `trigger` |
//! | `["sleep", ms]` | sleeps: `"ok"` |
//! | `["fail", message]` | returns the error `message` at once (the call fails) |
//! | `["trap", message]` | traps at once |
//!
//! Errors read `"<case>"` or `"<case>: <payload>"` with the WIT case name (`not-found`,
//! `already-attached`, `closed`, `aborted`, `timed-out`, `limit-exceeded`, `finished`,
//! `invalid-argument`). A missing slot reads `"no writer"` / `"no reader"`.

#[allow(unsafe_code, reason = "the ABI glue wit-bindgen generates")]
mod bindings {
    wit_bindgen::generate!({ path: "../../../../wit", world: "function" });
    use super::Contract;
    export!(Contract with_types_in self);
}

use std::collections::VecDeque;
use std::time::Duration;

use bindings::rill::host::channels::{
    self, Channel, ChannelError, ChannelOptions, ChannelRef, Direction, Item, Reader, Writer,
};
use bindings::rill::host::functions::{self, CallOptions, PendingCall};
use serde_json::{Value, json};

struct Contract;

impl bindings::Guest for Contract {
    fn handle(function_id: String, payload_json: String) -> Result<String, String> {
        let payload: Value = serde_json::from_str(&payload_json).map_err(|e| format!("bad payload: {e}"))?;
        let steps = payload["steps"].as_array().cloned().unwrap_or_default();
        let mut ends = Ends::default();
        match function_id.as_str() {
            "contract::local" => {
                let buffer_bytes = payload["buffer_bytes"].as_u64().map(|n| n as u32);
                let Channel { writer, reader, writer_ref, reader_ref } =
                    channels::create(ChannelOptions { buffer_bytes }).map_err(|e| describe(&e))?;
                ends.writer = Some(writer);
                ends.reader = Some(reader);
                ends.writer_ref = Some(writer_ref);
                ends.reader_ref = Some(reader_ref);
            }
            "contract::remote" => {
                let r = parse_ref(&payload["ref"]).ok_or("contract::remote needs a \"ref\"")?;
                match r.direction {
                    Direction::Write => ends.writer_ref = Some(r),
                    Direction::Read => ends.reader_ref = Some(r),
                }
            }
            other => return Err(format!("this component does not serve {other}")),
        }
        let mut outcomes = Vec::new();
        for step in &steps {
            outcomes.push(ends.play(step)?);
        }
        Ok(json!({ "outcomes": outcomes }).to_string())
    }
}

/// The ends and refs a call works with.
#[derive(Default)]
struct Ends {
    writer: Option<Writer>,
    reader: Option<Reader>,
    /// Ends replaced by a later `open`, kept (not dropped) until the call returns.
    kept_writers: Vec<Writer>,
    kept_readers: Vec<Reader>,
    writer_ref: Option<ChannelRef>,
    reader_ref: Option<ChannelRef>,
    pending: VecDeque<PendingCall>,
}

impl Ends {
    fn play(&mut self, step: &Value) -> Result<Value, String> {
        let name = step[0].as_str().unwrap_or_default();
        let text = |i: usize| step[i].as_str().unwrap_or_default().to_owned();
        let number = |i: usize| step[i].as_u64().unwrap_or_default();
        Ok(match name {
            "write" => {
                let data: Vec<u8> = (0..number(1)).map(|i| (i % 251) as u8).collect();
                self.with_writer(|w| w.write(&data))
            }
            "text" => self.with_writer(|w| w.send_text(&text(1))),
            "close" => self.with_writer(|w| w.close()),
            "abort" => self.with_writer(|w| {
                w.abort(&text(1));
                Ok(())
            }),
            "drop" => {
                match text(1).as_str() {
                    "writer" => drop(self.writer.take()),
                    _ => drop(self.reader.take()),
                }
                json!("ok")
            }
            "next" => self.with_reader(|r| r.next()),
            "read" => self.with_reader(|r| r.read(number(1) as u32)),
            "drain" => match self.reader.as_ref() {
                None => json!("no reader"),
                Some(reader) => {
                    let mut bytes = 0;
                    loop {
                        match reader.next() {
                            Ok(Item::Bytes(chunk)) => bytes += chunk.len(),
                            Ok(Item::Text(_)) => {}
                            Ok(Item::End) => break json!(format!("{bytes} bytes, end")),
                            Err(e) => break json!(format!("{bytes} bytes, {}", describe(&e))),
                        }
                    }
                }
            },
            "open" => {
                let as_writer = text(1) == "writer";
                let direction = match step.get(2).and_then(Value::as_str) {
                    Some("write") => Direction::Write,
                    Some("read") => Direction::Read,
                    _ if as_writer => Direction::Write,
                    _ => Direction::Read,
                };
                let Some(r) = self.channel_ref(direction) else { return Ok(json!("no ref")) };
                let opened = if as_writer {
                    channels::open_writer(&r).map(|w| {
                        if let Some(old) = self.writer.replace(w) {
                            self.kept_writers.push(old);
                        }
                    })
                } else {
                    channels::open_reader(&r).map(|rd| {
                        if let Some(old) = self.reader.replace(rd) {
                            self.kept_readers.push(old);
                        }
                    })
                };
                unit(opened)
            }
            "trigger" | "spawn" => {
                let direction = if text(2) == "write" { Direction::Write } else { Direction::Read };
                let Some(r) = self.channel_ref(direction) else { return Ok(json!("no ref")) };
                let payload = json!({ "ref": ref_json(&r), "steps": step[3] }).to_string();
                let options = CallOptions { timeout_ms: None };
                if name == "trigger" {
                    call_outcome(functions::trigger(&text(1), &payload, options))
                } else {
                    match functions::spawn(&text(1), &payload, options) {
                        Ok(call) => {
                            self.pending.push_back(call);
                            json!("ok")
                        }
                        Err(e) => json!(format!("call failed: {e:?}")),
                    }
                }
            }
            "wait" => match self.pending.pop_front() {
                Some(call) => call_outcome(call.wait()),
                None => json!("nothing to wait for"),
            },
            "sleep" => {
                std::thread::sleep(Duration::from_millis(number(1)));
                json!("ok")
            }
            "fail" => return Err(text(1)),
            "trap" => panic!("{}", text(1)),
            other => return Err(format!("unknown step {other:?}")),
        })
    }

    fn channel_ref(&self, direction: Direction) -> Option<ChannelRef> {
        match direction {
            Direction::Write => self.writer_ref.clone(),
            Direction::Read => self.reader_ref.clone(),
        }
    }

    fn with_writer(&self, op: impl FnOnce(&Writer) -> Result<(), ChannelError>) -> Value {
        match self.writer.as_ref() {
            Some(writer) => unit(op(writer)),
            None => json!("no writer"),
        }
    }

    fn with_reader(&self, op: impl FnOnce(&Reader) -> Result<Item, ChannelError>) -> Value {
        match self.reader.as_ref() {
            None => json!("no reader"),
            Some(reader) => json!(match op(reader) {
                Ok(Item::Bytes(chunk)) => format!("bytes {}", chunk.len()),
                Ok(Item::Text(text)) => format!("text {text}"),
                Ok(Item::End) => "end".to_owned(),
                Err(e) => describe(&e),
            }),
        }
    }
}

fn unit(result: Result<(), ChannelError>) -> Value {
    json!(match result {
        Ok(()) => "ok".to_owned(),
        Err(e) => describe(&e),
    })
}

fn call_outcome(result: Result<String, functions::CallError>) -> Value {
    match result {
        Ok(text) => serde_json::from_str::<Value>(&text)
            .map(|v| v["outcomes"].clone())
            .unwrap_or_else(|e| json!(format!("bad result: {e}"))),
        Err(e) => json!(format!("call failed: {e:?}")),
    }
}

/// `"<case>"` or `"<case>: <payload>"`, with the WIT case name.
fn describe(error: &ChannelError) -> String {
    match error {
        ChannelError::NotFound => "not-found".into(),
        ChannelError::AlreadyAttached => "already-attached".into(),
        ChannelError::Closed => "closed".into(),
        ChannelError::Aborted(reason) => format!("aborted: {reason}"),
        ChannelError::TimedOut => "timed-out".into(),
        ChannelError::LimitExceeded(what) => format!("limit-exceeded: {what}"),
        ChannelError::Finished => "finished".into(),
        ChannelError::InvalidArgument(why) => format!("invalid-argument: {why}"),
    }
}

/// A ref in iii's JSON, parsed by the one shared rule (`rill-protocol`, the wire
/// vocabulary every SDK uses; not an SDK), as the WIT's record.
fn parse_ref(value: &Value) -> Option<ChannelRef> {
    let parsed = rill_protocol::ChannelRef::from_value(value).ok()?;
    Some(ChannelRef {
        channel_id: parsed.channel_id,
        access_key: parsed.access_key,
        direction: match parsed.direction {
            rill_protocol::Direction::Read => Direction::Read,
            rill_protocol::Direction::Write => Direction::Write,
        },
    })
}

fn ref_json(r: &ChannelRef) -> Value {
    let direction = match r.direction {
        Direction::Read => "read",
        Direction::Write => "write",
    };
    json!({ "channel_id": r.channel_id, "access_key": r.access_key, "direction": direction })
}
