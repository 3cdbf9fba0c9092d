//! `rill-test-writers`: one function per way a writer can end its stream, through the
//! SDK's `ChannelWriter`.
//!
//! Tested by `tests/all/writers.rs`. Each function opens `{"writer"}` (a failed open
//! fails the call with `"<kind>: <message>"`), writes `{"bytes"}` bytes of the pattern
//! `{"seed"}` (default 0; see [`rill_test_support::pattern`]) in one write, and then ends
//! the stream its own way. Each step's outcome is in the result: `"ok"` or `"<kind>:
//! <message>"`; after a failed write the function returns at once, dropping the writer.
//!
//! | id | then | result |
//! | --- | --- | --- |
//! | `test::write_then_close` | closes: the clean end | `{"write", "close"}` |
//! | `test::write_then_abort` | aborts with `{"reason"}` | `{"write", "abort"}` |
//! | `test::write_then_trap` | panics with `{"message"}` (a trap) | — |
//! | `test::write_then_return` | returns, dropping the writer unclosed | `{"write"}` |
//! | `test::write_until_error` | (no `bytes`:) writes `{"chunk"}`-byte pieces until one fails | `{"written", "error"}` |

use rill_guest::{ChannelError, ChannelRef, ChannelWriter};
use rill_test_support::pattern;
use serde::Deserialize;
use serde_json::{Value, json};

rill_guest::export! {
    "test::write_then_close" => write_then_close,
    "test::write_then_abort" => write_then_abort,
    "test::write_then_trap" => write_then_trap,
    "test::write_then_return" => write_then_return,
    "test::write_until_error" => write_until_error,
}

/// `"<kind>: <message>"` for a channel error.
fn describe(error: &ChannelError) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => format!("{}: {error}", error.kind()),
    }
}

/// `"ok"` or the error.
fn outcome(result: Result<(), ChannelError>) -> String {
    result.map_or_else(|error| describe(&error), |()| "ok".to_owned())
}

#[derive(Deserialize)]
struct Write {
    writer: ChannelRef,
    bytes: usize,
    #[serde(default)]
    seed: u64,
    /// `test::write_then_abort`'s reason.
    reason: Option<String>,
    /// `test::write_then_trap`'s panic message.
    message: Option<String>,
}

/// Open the writer and write the pattern in one write; the writer and the write's
/// outcome.
fn open_and_write(payload: &Write) -> Result<(ChannelWriter, String), String> {
    let mut writer = ChannelWriter::open(&payload.writer).map_err(|e| describe(&e))?;
    let written = writer.send_bytes(&pattern(payload.seed, 0, payload.bytes));
    Ok((writer, outcome(written)))
}

/// `test::write_then_close`: writes, then closes.
fn write_then_close(payload: Write) -> Result<Value, String> {
    let (writer, write) = open_and_write(&payload)?;
    if write != "ok" {
        return Ok(json!({ "write": write }));
    }
    Ok(json!({ "write": write, "close": outcome(writer.close()) }))
}

/// `test::write_then_abort`: writes, then aborts with `reason`.
fn write_then_abort(payload: Write) -> Result<Value, String> {
    let (writer, write) = open_and_write(&payload)?;
    if write != "ok" {
        return Ok(json!({ "write": write }));
    }
    writer.abort(payload.reason.as_deref().unwrap_or("test::write_then_abort"));
    Ok(json!({ "write": write, "abort": "ok" }))
}

/// `test::write_then_trap`: writes, then panics with `message` (with `panic = "abort"`, a
/// trap) while the writer is still open.
fn write_then_trap(payload: Write) -> Result<Value, String> {
    let (_writer, write) = open_and_write(&payload)?;
    if write != "ok" {
        return Ok(json!({ "write": write }));
    }
    panic!("{}", payload.message.as_deref().unwrap_or("test::write_then_trap"));
}

/// `test::write_then_return`: writes, then returns without closing: the writer is
/// dropped.
fn write_then_return(payload: Write) -> Result<Value, String> {
    let (_writer, write) = open_and_write(&payload)?;
    Ok(json!({ "write": write }))
}

#[derive(Deserialize)]
struct Fill {
    writer: ChannelRef,
    chunk: usize,
    #[serde(default)]
    seed: u64,
}

/// `test::write_until_error`: writes `chunk`-byte pieces of the pattern until a write
/// fails (a full buffer nobody drains, a dropped reader, a deadline). Returns the bytes
/// written and the error that ended it.
fn write_until_error(payload: Fill) -> Result<Value, String> {
    let mut writer = ChannelWriter::open(&payload.writer).map_err(|e| describe(&e))?;
    let chunk = payload.chunk.max(1);
    let mut written = 0u64;
    let error = loop {
        let data = pattern(payload.seed, written, chunk);
        if let Err(error) = writer.send_bytes(&data) {
            break describe(&error);
        }
        written += chunk as u64;
    };
    Ok(json!({ "written": written, "error": error }))
}
