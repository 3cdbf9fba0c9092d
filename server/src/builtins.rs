//! The `engine::*` functions iii's SDKs call, answered by the server itself.

use rill_broker::{ChannelOptions, MAX_BUFFER_BYTES, MIN_BUFFER_BYTES};
use rill_protocol::worker::{InvocationError, codes};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use crate::registry::{Outcome, Registry};

/// Creates a channel: `{"buffer_size": frames | null}` → `{"writer": ref, "reader": ref}`.
pub(crate) const CHANNELS_CREATE: &str = "engine::channels::create";
/// A worker announcing itself (runtime, version, name); acknowledged and not stored.
pub(crate) const WORKERS_REGISTER: &str = "engine::workers::register";
/// `{}` → `{"functions": [{"function_id", "description"?}, …]}`.
pub(crate) const FUNCTIONS_LIST: &str = "engine::functions::list";

/// The bytes one of iii's buffer frames counts for (64 KiB, the largest frame rill
/// sends). iii sizes a channel's buffer in frames (1..=1024); rill in bytes, so a
/// requested frame count becomes this many bytes per frame, clamped into rill's range
/// ([`MIN_BUFFER_BYTES`]..=[`MAX_BUFFER_BYTES`]). A request without a size gets the
/// broker's default.
pub const BYTES_PER_III_FRAME: usize = 64 << 10;

pub(crate) fn is_builtin(function_id: &str) -> bool {
    matches!(function_id, CHANNELS_CREATE | WORKERS_REGISTER | FUNCTIONS_LIST)
}

/// The outcome of a built-in, or `None` if `function_id` is not one.
pub(crate) fn call(registry: &Registry, function_id: &str, data: &RawValue) -> Option<Outcome> {
    let value = match function_id {
        CHANNELS_CREATE => create_channel(registry, data),
        WORKERS_REGISTER => Ok(json!({ "success": true })),
        FUNCTIONS_LIST => {
            let functions: Vec<_> = registry
                .functions()
                .into_iter()
                .map(|(id, description)| match description {
                    Some(description) => json!({ "function_id": id, "description": description }),
                    None => json!({ "function_id": id }),
                })
                .collect();
            Ok(json!({ "functions": functions }))
        }
        _ => return None,
    };
    Some(value.and_then(|value| {
        serde_json::value::to_raw_value(&value)
            .map_err(|err| InvocationError::new(codes::INVOCATION_ERROR, err.to_string()))
    }))
}

fn create_channel(registry: &Registry, data: &RawValue) -> Result<serde_json::Value, InvocationError> {
    #[derive(Deserialize, Default)]
    struct Input {
        #[serde(default)]
        buffer_size: Option<u64>,
    }
    let input: Option<Input> = serde_json::from_str(data.get()).map_err(|err| {
        InvocationError::new(
            codes::INVOCATION_ERROR,
            format!("{CHANNELS_CREATE} takes {{\"buffer_size\": frames}}: {err}"),
        )
    })?;
    let options = match input.unwrap_or_default().buffer_size {
        None => ChannelOptions::default(),
        Some(frames) => {
            let bytes = usize::try_from(frames).unwrap_or(usize::MAX).saturating_mul(BYTES_PER_III_FRAME);
            ChannelOptions::buffer_bytes(bytes.clamp(MIN_BUFFER_BYTES, MAX_BUFFER_BYTES))
        }
    };
    let channel = registry.host().create_channel(&options).map_err(|err| {
        InvocationError::new(codes::INVOCATION_ERROR, format!("cannot create a channel: {err}"))
    })?;
    // The local ends are never attached: dropping them leaves both ends to whoever opens
    // the refs (within the broker's attach deadline).
    Ok(json!({ "writer": channel.writer_ref, "reader": channel.reader_ref }))
}
