//! The sandbox's limits: everything a guest can make the host spend is bounded here.
//!
//! [`Limits`] holds one value per limit. A host has default limits
//! ([`HostConfig::limits`](crate::HostConfig::limits)); each function may override any of
//! them (in `rill.toml` under `[functions."id".limits]`, or in code with
//! [`FunctionConfig`](crate::FunctionConfig)). Limits that bound a whole call tree (the
//! channels it may hold, how deep it may nest) come from the function that started the
//! tree; the others apply to each call.
//!
//! Each field's doc says what it protects. Exceeding a limit is a typed error for the
//! guest that exceeded it ([`CallError`]), never harm to the host.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::CallError;

/// Default linear memory per instance (64 MiB).
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 64 << 20;
/// Default wall-clock budget of a call (30 s, as iii's SDKs).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bytes a guest may pass to the host in one host call (4 MiB). Guest SDKs split
/// larger writes; the host splits them further into channel chunks.
pub const DEFAULT_MAX_HOSTCALL_BYTES: usize = 4 << 20;
/// Default resource handles (channel ends, pending calls) one call may hold at once.
pub const DEFAULT_MAX_HANDLES: usize = 1_000;
/// Default live channels the call trees a function starts may hold together.
pub const DEFAULT_MAX_TREE_CHANNELS: usize = 1_000;
/// Default buffer bytes the channels of the call trees a function starts may reserve
/// together (256 MiB).
pub const DEFAULT_MAX_TREE_BUFFER_BYTES: usize = 256 << 20;
/// Default calls of one call tree running at once (64): the root, and every `trigger`,
/// `spawn` and `trigger-void` it fans out to.
pub const DEFAULT_MAX_TREE_CALLS: usize = 64;
/// Default calls of one function running at once, host-wide (64, a quarter of the
/// default instance pool).
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 64;
/// Default largest payload or result of a call (1 MiB). Payloads are small JSON by
/// design; large data goes through channels.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Default deepest JSON nesting in a payload or result (64).
pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;
/// Default limit on nested calls (A triggers B triggers …): 16.
pub const DEFAULT_MAX_CALL_DEPTH: u32 = 16;
/// Default bytes one call may print to stdout and stderr together (1 MiB).
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;
/// Most elements in one wasm table. Bounds host memory a table-growing guest can claim;
/// generous enough for interpreted guests (CPython, SpiderMonkey) whose tables are large.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Fuel a metered guest burns between yields to the async runtime, so one guest cannot
/// monopolise a runtime thread (about a millisecond of compute).
pub const FUEL_YIELD_INTERVAL: u64 = 1_000_000;

// Host-wide bounds: the engine, the instance pool, admission, guest output and the
// compiled-component cache.

/// How often the epoch advances (10 ms, as Spin does). A runaway guest is stopped at most
/// about one tick after its deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Most wasm frames kept in a trap's backtrace. Bounds the size of the messages a
/// deeply recursing guest can make the host build.
pub const MAX_BACKTRACE_FRAMES: usize = 32;

/// Default of [`HostConfig::keep_resident_bytes`](crate::HostConfig::keep_resident_bytes) (2 MiB): enough for the memory a small
/// Rust or C guest touches in a call (a 1 MiB shadow stack plus data and heap).
pub const DEFAULT_KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// Bytes of each pooled table kept mapped and reset in place when a call ends (64 KiB,
/// 8,192 function references); see [`HostConfig::keep_resident_bytes`](crate::HostConfig::keep_resident_bytes).
pub const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;

/// Default size of the instance pool: calls that can run at once.
pub const DEFAULT_POOL_SLOTS: u32 = 256;

/// Default of [`HostConfig::max_waiting_calls`](crate::HostConfig::max_waiting_calls):
/// calls that may wait for an instance slot at once (1,024, four times the default pool).
pub const DEFAULT_MAX_WAITING_CALLS: usize = 1024;

/// Longest log line kept from a guest (4 KiB); longer lines are split. Bounds the host
/// memory a guest that never prints a newline can make the host hold.
pub const MAX_LOG_LINE_BYTES: usize = 4 << 10;

/// Most compiled components kept in a cache directory. Bounds its disk use as
/// components change (a small Rust component compiles to a few hundred KiB, a Python
/// one to tens of MiB).
pub const MAX_CACHE_ENTRIES: usize = 256;

/// Most bytes of compiled components kept in a cache directory (1 GiB), whatever their
/// number.
pub const MAX_CACHE_BYTES: u64 = 1 << 30;

/// Most component paths the cache's source index remembers (the key each file's bytes
/// had, so an unchanged file loads without being read). Bounds the index as hosts are
/// started on ever new paths (a temporary directory per test run, say); the least
/// recently written lines go first.
pub const MAX_CACHE_SOURCES: usize = 4 * MAX_CACHE_ENTRIES;

/// The limits of a function's calls.
///
/// This is the one schema of limits: `rill.toml`'s `limits` tables are partial
/// [`Limits`] (the same field names; `timeout_ms` in milliseconds for [`timeout`]), read
/// by serde from this struct, and [`Limits::overlay`] applies one over another. Setters
/// ([`Limits::with_timeout`] and friends) build them in code.
///
/// [`timeout`]: Limits::timeout
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// Linear memory per instance. Protects host memory from a guest that allocates
    /// without end; growth past it fails inside the guest (Rust guests then abort).
    pub max_memory_bytes: usize,
    /// Wall-clock budget of a call that names none. A call never outlives its caller's
    /// deadline either.
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Duration,
    /// Fuel (roughly, wasm instructions) per call, for deterministic CPU budgets. `None`
    /// means unmetered; the deadline still applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Bytes a guest may pass to the host in one host call (a write, a payload, a text
    /// message). Protects host memory from one huge copy.
    pub max_hostcall_bytes: usize,
    /// Resource handles a call may hold at once. Protects the host's handle table from a
    /// guest that opens ends without dropping them.
    pub max_handles: usize,
    /// Live channels the call trees this function starts may hold together (a tree is
    /// charged to its root function). Keeps one function's channel flood from locking
    /// other functions out of the host-wide reservation.
    pub max_tree_channels: usize,
    /// Buffer bytes the channels of the call trees this function starts may reserve
    /// together; a channel reserves its buffer when its writer attaches, and attaching
    /// beyond this fails with `limit-exceeded`. Bounds the host memory one function's
    /// streams can pin.
    pub max_tree_buffer_bytes: usize,
    /// Calls of one call tree running at once (from the root function's limits). Each
    /// call has its own memory and task, so this bounds what one fan-out of `spawn` or
    /// `trigger-void` can make the host hold.
    pub max_tree_calls: usize,
    /// Calls of this function running at once, host-wide: across every tree and caller,
    /// counted from when a call is accepted (including while it waits for an instance
    /// slot) until its instance is dropped. Keeps one function's calls — say a flood of
    /// spawned children blocked on reads — from holding more than their share of the
    /// instance pool ([`HostConfig::pool_slots`](crate::HostConfig::pool_slots)), so
    /// other functions still find slots. A call past it fails at once with
    /// [`CallError::LimitExceeded`] instead of waiting: a function that calls itself, or
    /// a parent waiting on children of its own function, would otherwise wait for
    /// itself.
    pub max_concurrent_calls: usize,
    /// Largest payload accepted by, and result returned from, a call.
    pub max_payload_bytes: usize,
    /// Deepest JSON nesting in a payload or result. Protects every JSON consumer (host
    /// and guests) from stack exhaustion.
    pub max_json_depth: usize,
    /// How deep calls may nest (from the root function's limits). Stops a function that
    /// triggers itself.
    pub max_call_depth: u32,
    /// Bytes a call may print to stdout and stderr together; the rest is dropped with a
    /// notice. Protects the logs.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            timeout: DEFAULT_CALL_TIMEOUT,
            fuel: None,
            max_hostcall_bytes: DEFAULT_MAX_HOSTCALL_BYTES,
            max_handles: DEFAULT_MAX_HANDLES,
            max_tree_channels: DEFAULT_MAX_TREE_CHANNELS,
            max_tree_buffer_bytes: DEFAULT_MAX_TREE_BUFFER_BYTES,
            max_tree_calls: DEFAULT_MAX_TREE_CALLS,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
            max_call_depth: DEFAULT_MAX_CALL_DEPTH,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// A [`Duration`] as whole milliseconds, as `rill.toml` writes `timeout_ms`.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

/// Some of the fields of [`Limits`], by their serde names: a `limits` table of
/// `rill.toml`. Parsing checks every key and value against [`Limits`] itself, so an
/// unknown key or a value of the wrong type is an error naming it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitOverrides(Map<String, Value>);

impl<'de> Deserialize<'de> for LimitOverrides {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = Map::<String, Value>::deserialize(deserializer)?;
        let overrides = LimitOverrides(table);
        Limits::default().overlay(&overrides).map_err(serde::de::Error::custom)?;
        Ok(overrides)
    }
}

impl Limits {
    /// These limits with the fields `overrides` sets replaced.
    ///
    /// # Errors
    ///
    /// A field name or value that is not one of [`Limits`]'s (overrides read from a
    /// manifest were checked when it was parsed, so applying them cannot fail).
    pub fn overlay(&self, overrides: &LimitOverrides) -> Result<Limits, serde_json::Error> {
        let Value::Object(mut fields) = serde_json::to_value(self)? else {
            return Err(serde::ser::Error::custom("limits serialize to an object"));
        };
        fields.extend(overrides.0.clone());
        serde_json::from_value(Value::Object(fields))
    }

    /// These limits with [`timeout`](Limits::timeout) set.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// These limits with [`max_memory_bytes`](Limits::max_memory_bytes) set.
    pub fn with_max_memory_bytes(mut self, bytes: usize) -> Self {
        self.max_memory_bytes = bytes;
        self
    }

    /// These limits with [`fuel`](Limits::fuel) set.
    pub fn with_fuel(mut self, fuel: Option<u64>) -> Self {
        self.fuel = fuel;
        self
    }

    /// Check JSON text against these limits as a payload would be checked: its size
    /// first (before any parsing), then its nesting (before a recursive parser sees it),
    /// then its syntax. `what` names the text in the error ("payload", "result").
    ///
    /// # Errors
    ///
    /// [`CallError::LimitExceeded`] for a size or nesting past the limits,
    /// [`CallError::InvalidInput`] for text that is not JSON.
    pub fn check_json(&self, what: &str, text: &str) -> Result<(), CallError> {
        if text.len() > self.max_payload_bytes {
            return Err(CallError::LimitExceeded(format!(
                "the {what} is {} bytes; at most {} bytes are allowed (stream large data through a channel)",
                text.len(),
                self.max_payload_bytes
            )));
        }
        let depth = json_depth(text);
        if depth > self.max_json_depth {
            return Err(CallError::LimitExceeded(format!(
                "the {what} nests {depth} levels deep; at most {} are allowed",
                self.max_json_depth
            )));
        }
        match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => Ok(()),
            Err(err) => Err(CallError::InvalidInput(format!("the {what} is not valid JSON: {err}"))),
        }
    }
}

/// The deepest nesting of arrays and objects in JSON `text`, found without recursion
/// (so it is safe on any input). Strings and their escapes are skipped.
pub(crate) fn json_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in text.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{LimitOverrides, Limits};

    /// Every field of `Limits`, by the name a manifest uses: the serialized defaults, plus
    /// `fuel` (off by default, so not serialized).
    fn fields() -> Vec<String> {
        let Value::Object(defaults) = serde_json::to_value(Limits::default()).unwrap() else {
            unreachable!()
        };
        defaults.keys().cloned().chain(["fuel".to_owned()]).collect()
    }

    /// Each limit can be set from a manifest table, and setting one changes only it.
    #[test]
    fn every_limit_is_settable_by_its_manifest_name_and_only_it() {
        assert_eq!(fields().len(), 13, "{:?}", fields());
        for field in fields() {
            let overrides: LimitOverrides = serde_json::from_value(json!({ field.clone(): 7 })).unwrap();
            let set = serde_json::to_value(Limits::default().overlay(&overrides).unwrap()).unwrap();
            let mut expected = serde_json::to_value(Limits::default()).unwrap();
            expected[&field] = json!(7);
            assert_eq!(set, expected, "{field}");
        }
        let unknown = serde_json::from_value::<LimitOverrides>(json!({ "max_memroy_bytes": 1 })).unwrap_err();
        assert!(unknown.to_string().contains("unknown field `max_memroy_bytes`"), "{unknown}");
    }

    /// The README's limits table names every limit by its manifest name.
    #[test]
    fn the_readme_lists_every_limit() {
        let readme = include_str!("../../README.md");
        let table = readme.split("### Limits").nth(1).unwrap().split("###").next().unwrap();
        for field in fields() {
            assert!(table.contains(&format!("`{field}`")), "README's limits table lacks `{field}`");
        }
    }
    use super::*;

    #[test]
    fn json_depth_counts_nesting_outside_strings() {
        assert_eq!(json_depth("1"), 0);
        assert_eq!(json_depth("{}"), 1);
        assert_eq!(json_depth(r#"{"a": [1, {"b": []}]}"#), 4);
        assert_eq!(json_depth(r#"["[[[[", "\"[[", {}]"#), 2);
        assert_eq!(json_depth(&"[".repeat(100_000)), 100_000, "no recursion, no overflow");
    }
}
