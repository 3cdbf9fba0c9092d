//! Calling other functions: [`trigger`], [`spawn`], [`trigger_void`] and their typed and
//! optioned variants.
//!
//! Payloads and results are small JSON. Anything that serializes with serde is a payload;
//! results come back as [`serde_json::Value`] or, with the `_as` variants, as any type that
//! deserializes. Large or stream-shaped data goes through a [`Channel`](crate::Channel): put
//! a [`ChannelRef`](crate::ChannelRef) in the payload instead.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::CallError;
use crate::bindings::rill::host::functions as wit;

/// Options for a call, shared with the host ([`rill_protocol::CallOptions`]). The default
/// uses the function's own timeout.
///
/// ```ignore
/// let options = CallOptions::new().timeout(Duration::from_secs(5));
/// let result = rill_guest::trigger_with("files::process", &payload, &options)?;
/// ```
pub use rill_protocol::CallOptions;

/// The WIT record for `options`.
fn to_wit(options: &CallOptions) -> wit::CallOptions {
    wit::CallOptions { timeout_ms: options.timeout_ms() }
}

/// A call started with [`spawn`]; collect its result with [`wait`](Self::wait).
///
/// Dropping it without waiting lets the call run to completion (or its deadline)
/// unobserved.
#[derive(Debug)]
pub struct PendingCall {
    inner: wit::PendingCall,
}

impl PendingCall {
    /// Waits for the call to finish and returns its result JSON.
    pub fn wait(self) -> Result<Value, CallError> {
        parse_result(self.inner.wait()?)
    }

    /// Waits for the call to finish and decodes its result JSON into `T`.
    pub fn wait_as<T: DeserializeOwned>(self) -> Result<T, CallError> {
        decode_result(self.inner.wait()?)
    }
}

/// Calls `function_id` with `payload` and waits for its result JSON.
///
/// ```ignore
/// let result = rill_guest::trigger(
///     "files::process",
///     &json!({ "filename": "report.csv", "reader": channel.reader_ref }),
/// )?;
/// ```
pub fn trigger(function_id: &str, payload: &impl Serialize) -> Result<Value, CallError> {
    trigger_with(function_id, payload, &CallOptions::default())
}

/// [`trigger`] with [`CallOptions`] (for example a timeout).
pub fn trigger_with(
    function_id: &str,
    payload: &impl Serialize,
    options: &CallOptions,
) -> Result<Value, CallError> {
    let json = encode_payload(payload)?;
    parse_result(wit::trigger(function_id, &json, to_wit(options))?)
}

/// [`trigger`], decoding the result JSON into `T`.
///
/// ```ignore
/// #[derive(Deserialize)]
/// struct Processed { bytes: u64 }
/// let processed: Processed = rill_guest::trigger_as("files::process", &payload)?;
/// ```
pub fn trigger_as<T: DeserializeOwned>(function_id: &str, payload: &impl Serialize) -> Result<T, CallError> {
    trigger_as_with(function_id, payload, &CallOptions::default())
}

/// [`trigger_as`] with [`CallOptions`].
pub fn trigger_as_with<T: DeserializeOwned>(
    function_id: &str,
    payload: &impl Serialize,
    options: &CallOptions,
) -> Result<T, CallError> {
    let json = encode_payload(payload)?;
    decode_result(wit::trigger(function_id, &json, to_wit(options))?)
}

/// Starts a call and returns at once; collect the result with [`PendingCall::wait`].
///
/// Use it to start the consumer of a channel before writing more than the channel buffers:
/// writing first and triggering afterwards would wait forever on a full buffer.
pub fn spawn(function_id: &str, payload: &impl Serialize) -> Result<PendingCall, CallError> {
    spawn_with(function_id, payload, &CallOptions::default())
}

/// [`spawn`] with [`CallOptions`].
pub fn spawn_with(
    function_id: &str,
    payload: &impl Serialize,
    options: &CallOptions,
) -> Result<PendingCall, CallError> {
    let json = encode_payload(payload)?;
    let inner = wit::spawn(function_id, &json, to_wit(options))?;
    Ok(PendingCall { inner })
}

/// Starts a call whose result nobody waits for (iii's `void` action). Errors found before
/// the call starts (unknown function, malformed payload) are still reported.
pub fn trigger_void(function_id: &str, payload: &impl Serialize) -> Result<(), CallError> {
    trigger_void_with(function_id, payload, &CallOptions::default())
}

/// [`trigger_void`] with [`CallOptions`].
pub fn trigger_void_with(
    function_id: &str,
    payload: &impl Serialize,
    options: &CallOptions,
) -> Result<(), CallError> {
    let json = encode_payload(payload)?;
    Ok(wit::trigger_void(function_id, &json, to_wit(options))?)
}

fn encode_payload(payload: &impl Serialize) -> Result<String, CallError> {
    serde_json::to_string(payload)
        .map_err(|e| CallError::InvalidInput(format!("the payload could not be serialized: {e}")))
}

fn parse_result(json: String) -> Result<Value, CallError> {
    serde_json::from_str(&json)
        .map_err(|e| CallError::InvalidOutput(format!("the result is not valid JSON: {e}")))
}

fn decode_result<T: DeserializeOwned>(json: String) -> Result<T, CallError> {
    serde_json::from_str(&json).map_err(|e| {
        CallError::InvalidOutput(format!("the result does not fit {}: {e}", std::any::type_name::<T>()))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timeout_is_sent_in_milliseconds() {
        assert_eq!(to_wit(&CallOptions::new()).timeout_ms, None);
        let options = CallOptions::new().timeout(Duration::from_millis(1500));
        assert_eq!(to_wit(&options).timeout_ms, Some(1500));
        let huge = CallOptions::new().timeout(Duration::MAX);
        assert_eq!(to_wit(&huge).timeout_ms, Some(u64::MAX));
    }

    #[test]
    fn results_are_parsed_or_reported_as_invalid_output() {
        assert_eq!(parse_result(r#"{"bytes":3}"#.to_owned()), Ok(serde_json::json!({"bytes": 3})));
        let bad = parse_result("not json".to_owned());
        assert!(matches!(bad, Err(CallError::InvalidOutput(_))));
        let wrong: Result<u32, _> = decode_result(r#""text""#.to_owned());
        assert!(matches!(wrong, Err(CallError::InvalidOutput(_))));
    }
}
