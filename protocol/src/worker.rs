//! The iii worker protocol: the messages an iii SDK worker and an engine exchange over the
//! worker WebSocket (`GET /`), as far as rill speaks it.
//!
//! Each WebSocket text message is one JSON object tagged by `"type"` (the lowercased
//! variant name), e.g. `{"type":"invokefunction","invocation_id":"…","function_id":"a::b",
//! "data":{…}}`. Source: iii engine `engine/src/protocol.rs` (0.23) and the Rust SDK's
//! `src/protocol.rs` (0.25, 0.26); summarised in rill's `iii-worker-protocol.md` notes.
//!
//! # Tolerance
//!
//! iii adds optional fields and message types from release to release, and its SDKs
//! expect an engine to ignore what it does not know. [`Message::from_json`] therefore
//! ignores unknown fields and turns an unknown `type` into [`Message::Other`] with its
//! name; only a message that is not a JSON object with a string `type`, or a known type
//! whose required fields are missing or mistyped, is an error.
//!
//! # Payloads are kept as written
//!
//! `data` and `result` are [`RawValue`]s: relayed byte for byte, never parsed into numbers
//! and strings and printed again (which could change a large integer or re-escape text).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Error codes an engine puts in [`InvocationError::code`] (iii's names).
pub mod codes {
    /// No function is registered under the id.
    pub const FUNCTION_NOT_FOUND: &str = "function_not_found";
    /// The connection serving the call went away before answering.
    pub const INVOCATION_STOPPED: &str = "invocation_stopped";
    /// The function ran and failed.
    pub const INVOCATION_FAILED: &str = "invocation_failed";
    /// The call was not accepted (bad payload, a limit, no room to run it).
    pub const INVOCATION_ERROR: &str = "invocation_error";
    /// An `enqueue` action could not be carried out: this engine has no queues.
    pub const ENQUEUE_ERROR: &str = "enqueue_error";
    /// The call did not finish within its timeout.
    pub const TIMEOUT: &str = "timeout";
    /// A registration was refused because another owner holds the id.
    pub const FUNCTION_NAMESPACE_CONFLICT: &str = "FUNCTION_NAMESPACE_CONFLICT";
    /// A registration was refused because the connection registered as many functions
    /// as it may (rill's; iii's SDKs treat an unknown code as fatal).
    pub const FUNCTION_LIMIT_EXCEEDED: &str = "FUNCTION_LIMIT_EXCEEDED";
}

/// One message of the worker protocol.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Message {
    /// Engine → worker, first on every connection.
    WorkerRegistered(WorkerRegistered),
    /// Worker → engine: route calls of `id` to this connection.
    RegisterFunction(RegisterFunction),
    /// Worker → engine: stop routing calls of `id` here.
    UnregisterFunction(UnregisterFunction),
    /// Either way: call a function.
    InvokeFunction(InvokeFunction),
    /// Either way: the answer to an [`InvokeFunction`] that had an `invocation_id`.
    InvocationResult(InvocationResult),
    /// Engine → worker: a registration was refused.
    RegistrationRejected(RegistrationRejected),
    /// JSON-level ping (vestigial; answered with [`Message::Pong`]).
    Ping,
    /// The answer to [`Message::Ping`].
    Pong,
    /// A message of a type rill does not act on (triggers, observe, `reattach`, …),
    /// with its `type`. Never sent.
    #[serde(skip)]
    Other(String),
}

/// Why a worker-protocol message could not be read.
#[derive(Debug)]
pub struct MessageError(serde_json::Error);

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a worker-protocol message: {}", self.0)
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<serde_json::Error> for MessageError {
    fn from(err: serde_json::Error) -> Self {
        MessageError(err)
    }
}

impl Message {
    /// Read one message from the JSON text of a WebSocket message (see the module docs
    /// for what is tolerated).
    ///
    /// # Errors
    ///
    /// [`MessageError`] when the text is not a JSON object with a string `type`, or a
    /// known type lacks a required field.
    pub fn from_json(text: &str) -> Result<Message, MessageError> {
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        let tag: Tag<'_> = serde_json::from_str(text)?;
        Ok(match tag.kind.as_ref() {
            "workerregistered" => Message::WorkerRegistered(serde_json::from_str(text)?),
            "registerfunction" => Message::RegisterFunction(serde_json::from_str(text)?),
            "unregisterfunction" => Message::UnregisterFunction(serde_json::from_str(text)?),
            "invokefunction" => Message::InvokeFunction(serde_json::from_str(text)?),
            "invocationresult" => Message::InvocationResult(serde_json::from_str(text)?),
            "registrationrejected" => Message::RegistrationRejected(serde_json::from_str(text)?),
            "ping" => Message::Ping,
            "pong" => Message::Pong,
            other => Message::Other(other.to_owned()),
        })
    }

    /// The message as the JSON text of one WebSocket message.
    pub fn to_json(&self) -> String {
        // Every field is a string, a bool, a raw JSON value or a struct of those: nothing
        // here can fail to serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `workerregistered`: the id the engine gave this connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerRegistered {
    /// A UUID string.
    pub worker_id: String,
}

/// `registerfunction`. Other fields iii defines (formats, metadata, HTTP invocation) are
/// accepted and ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterFunction {
    /// The function id, e.g. `images::resize`.
    pub id: String,
    /// What the function does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `unregisterfunction`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnregisterFunction {
    /// The function id.
    pub id: String,
}

/// `invokefunction`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvokeFunction {
    /// The caller's id for this call (a UUID string); absent for a call that wants no
    /// answer. An engine always sets it when it forwards a call to a worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// The function to call.
    pub function_id: String,
    /// The JSON payload, as written (`null` when absent).
    #[serde(default = "null")]
    pub data: Box<RawValue>,
    /// How to run the call; absent means "wait for the result".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// W3C trace context, passed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C baggage, passed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baggage: Option<String>,
}

/// How a call runs (iii's `action`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Action {
    /// Fire and forget: the caller gets no answer.
    Void,
    /// Put the call on a queue.
    Enqueue {
        /// The queue's name.
        queue: String,
    },
    /// An action this engine does not know.
    #[serde(other)]
    Other,
}

/// `invocationresult`: exactly one of `result` and `error` is meaningful.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvocationResult {
    /// The id of the call being answered.
    pub invocation_id: String,
    /// The function that was called (required by iii's Rust SDK).
    pub function_id: String,
    /// The function's JSON result, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
    /// Why the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<InvocationError>,
    /// W3C trace context, passed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C baggage, passed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baggage: Option<String>,
}

/// The error of a failed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationError {
    /// A code from [`codes`], or the worker's own.
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// Where it happened, if the worker says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<String>,
}

impl InvocationError {
    /// An error with `code` and `message` and no stack trace.
    pub fn new(code: &str, message: impl Into<String>) -> InvocationError {
        InvocationError { code: code.to_owned(), message: message.into(), stacktrace: None }
    }
}

/// `registrationrejected`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistrationRejected {
    /// Why, e.g. [`codes::FUNCTION_NAMESPACE_CONFLICT`].
    pub code: String,
    /// The namespace the id was claimed in (rill has one: `default`).
    pub namespace: String,
    /// The refused function id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_id: Option<String>,
    /// Who holds the id.
    pub owner_worker_id: String,
}

fn null() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

    use super::*;

    #[test]
    fn reads_what_iii_sdks_send() {
        let register = r#"{"type":"registerfunction","id":"a::b","description":"d","request_format":{},"private":false}"#;
        assert!(
            matches!(Message::from_json(register).unwrap(), Message::RegisterFunction(r) if r.id == "a::b")
        );

        let void = r#"{"type":"invokefunction","function_id":"engine::workers::register","data":{"pid":1},"action":{"type":"void"},"namespace":"default"}"#;
        let Message::InvokeFunction(call) = Message::from_json(void).unwrap() else { panic!("not a call") };
        assert_eq!((call.invocation_id, call.action), (None, Some(Action::Void)));
        assert_eq!(call.data.get(), r#"{"pid":1}"#);

        let no_data = r#"{"type":"invokefunction","invocation_id":"x","function_id":"f"}"#;
        let Message::InvokeFunction(call) = Message::from_json(no_data).unwrap() else {
            panic!("not a call")
        };
        assert_eq!(call.data.get(), "null");

        let unknown =
            r#"{"type":"registertrigger","id":"t","trigger_type":"cron","function_id":"f","config":{}}"#;
        assert!(matches!(Message::from_json(unknown).unwrap(), Message::Other(t) if t == "registertrigger"));
        assert!(matches!(Message::from_json(r#"{"type":"ping"}"#).unwrap(), Message::Ping));
    }

    #[test]
    fn refuses_what_is_not_a_message() {
        for bad in [
            "",
            "[]",
            r#"{"id":"a"}"#,
            r#"{"type":7}"#,
            r#"{"type":"registerfunction"}"#,
            r#"{"type":"invocationresult","invocation_id":"x"}"#,
        ] {
            assert!(Message::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn payloads_are_relayed_byte_for_byte() {
        let text = r#"{"type":"invocationresult","invocation_id":"x","function_id":"f","result":{"n":123456789012345678901234567890,"s":"😀\u00e9"}}"#;
        let Message::InvocationResult(result) = Message::from_json(text).unwrap() else {
            panic!("not a result")
        };
        let written = Message::InvocationResult(result).to_json();
        assert_eq!(written, text);
    }

    #[test]
    fn writes_the_tag_and_omits_absent_fields() {
        let registered = Message::WorkerRegistered(WorkerRegistered { worker_id: "w".into() });
        assert_eq!(registered.to_json(), r#"{"type":"workerregistered","worker_id":"w"}"#);
        let failed = Message::InvocationResult(InvocationResult {
            invocation_id: "i".into(),
            function_id: "f".into(),
            result: None,
            error: Some(InvocationError::new(codes::FUNCTION_NOT_FOUND, "no such function")),
            traceparent: None,
            baggage: None,
        });
        assert_eq!(
            failed.to_json(),
            r#"{"type":"invocationresult","invocation_id":"i","function_id":"f","error":{"code":"function_not_found","message":"no such function"}}"#
        );
    }
}
