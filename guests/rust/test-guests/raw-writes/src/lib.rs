//! `rill-test-raw-writes`: the WIT `writer` used straight through its own bindings of
//! `wit/`, with no SDK in between (the SDK splits large writes and consumes a writer on
//! `close`, so it can send neither one huge write nor a write after close).
//!
//! Tested by `tests/all/raw_writes.rs`. Each function opens `{"writer"}` and reports
//! every step's outcome as `"ok"` or `"<case>"` / `"<case>: <payload>"` (the WIT case
//! name); a failed open fails the call.
//!
//! | id | payload | steps, one result field each |
//! | --- | --- | --- |
//! | `test::raw_write_sizes` | `{"writer", "bytes", "seed"?}` | `empty` (a write of 0 bytes), `whole` (`bytes` pattern bytes in one write), `empty_again`, `close`, `after_close` (0 bytes); plus `sha256` of what was written |
//! | `test::raw_write_after_close` | `{"writer"}` | `write` (10 pattern bytes), `close`, `write_after_close` (10 more) |

#[allow(unsafe_code, reason = "the ABI glue wit-bindgen generates")]
mod bindings {
    wit_bindgen::generate!({ path: "../../../../wit", world: "function" });
    use super::RawWrites;
    export!(RawWrites with_types_in self);
}

use bindings::rill::host::channels::{self, ChannelError, ChannelRef, Direction, Writer};
use rill_test_support::{hex, pattern};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct RawWrites;

impl bindings::Guest for RawWrites {
    fn handle(function_id: String, payload_json: String) -> Result<String, String> {
        let payload: Value = serde_json::from_str(&payload_json).map_err(|e| format!("bad payload: {e}"))?;
        let result = match function_id.as_str() {
            "test::raw_write_sizes" => raw_write_sizes(&payload)?,
            "test::raw_write_after_close" => raw_write_after_close(&payload)?,
            other => return Err(format!("this component does not serve function id {other:?}")),
        };
        Ok(result.to_string())
    }
}

/// `test::raw_write_sizes`: empty writes around one write of `bytes` (which may be many
/// times the channel's buffer: the host copies it out of guest memory as room appears),
/// then `close`, then one more empty write.
fn raw_write_sizes(payload: &Value) -> Result<Value, String> {
    let writer = open_writer(payload)?;
    let data = pattern(payload["seed"].as_u64().unwrap_or(0), 0, bytes_field(payload, "bytes")?);
    let mut digest = Sha256::new();
    let empty = outcome(writer.write(&[]));
    let whole = outcome(writer.write(&data));
    if whole == "ok" {
        digest.update(&data);
    }
    let empty_again = outcome(writer.write(&[]));
    let close = outcome(writer.close());
    let after_close = outcome(writer.write(&[]));
    Ok(json!({
        "empty": empty,
        "whole": whole,
        "empty_again": empty_again,
        "close": close,
        "after_close": after_close,
        "sha256": hex(digest),
    }))
}

/// `test::raw_write_after_close`: writes 10 bytes, closes, and writes 10 more with the
/// same (borrowed, still open as a handle) writer.
fn raw_write_after_close(payload: &Value) -> Result<Value, String> {
    let writer = open_writer(payload)?;
    let write = outcome(writer.write(&pattern(0, 0, 10)));
    let close = outcome(writer.close());
    let write_after_close = outcome(writer.write(&pattern(0, 10, 10)));
    Ok(json!({ "write": write, "close": close, "write_after_close": write_after_close }))
}

fn open_writer(payload: &Value) -> Result<Writer, String> {
    let writer_ref = parse_ref(&payload["writer"]).ok_or("the payload needs a writer ref at \"writer\"")?;
    channels::open_writer(&writer_ref).map_err(|e| describe(&e))
}

fn bytes_field(payload: &Value, field: &str) -> Result<usize, String> {
    payload[field]
        .as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| format!("the payload needs a number at {field:?}"))
}

/// `"ok"` or the error.
fn outcome(result: Result<(), ChannelError>) -> String {
    result.map_or_else(|error| describe(&error), |()| "ok".to_owned())
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
