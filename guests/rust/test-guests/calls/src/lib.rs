//! `rill-test-calls`: what a function answers, and what a guest sees when it calls one.
//!
//! Tested by `tests/all/calls.rs` (and the CLI's tests). Call errors come back inside the
//! JSON result as `"<kind>: <message>"`; only `test::trap` panics.
//!
//! | id | payload | result |
//! | --- | --- | --- |
//! | `test::echo` | anything | the payload |
//! | `test::raw` | anything | `{"raw"}`: the payload text exactly as received |
//! | `test::fail` | `{"message"}` | `Err(message)` |
//! | `test::trap` | `{"message"}` | panics (a trap) |
//! | `test::call` | `{"function", "payload"?, "mode"?, "timeout_ms"?}` | `{"ok"}` or `{"error"}` |

use std::time::Duration;

use rill_guest::{CallError, CallOptions};
use serde::Deserialize;
use serde_json::{Value, json};

rill_guest::export! {
    "test::echo" => echo,
    "test::raw" => raw_payload,
    "test::fail" => fail,
    "test::trap" => trap,
    "test::call" => call,
}

/// `"<kind>: <message>"` for a call error.
fn describe_call(error: &CallError) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => format!("{}: {error}", error.kind()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_errors_are_described_by_kind_and_message() {
        assert_eq!(describe_call(&CallError::Failed("m".into())), "failed: m");
        assert_eq!(describe_call(&CallError::TimedOut), "timed-out: call timed out");
    }
}
