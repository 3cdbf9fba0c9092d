//! Channel refs: the serializable capabilities that name one end of a channel.
//!
//! A ref's JSON is exactly iii's, so iii SDK clients can hold rill refs:
//!
//! ```json
//! {"channel_id": "6f1c…", "access_key": "9a4e…", "direction": "read"}
//! ```
//!
//! Parsing is strict and happens in one place, serde's derived `Deserialize`: an object
//! with exactly the keys `channel_id` and `access_key` (strings) and `direction` (`"read"`
//! or `"write"`, lowercase), each once. An unknown key, a missing one or a wrong type is
//! not a ref. [`ChannelRef::from_value`], [`ChannelRef::from_json`],
//! [`is_channel_ref`] and [`extract_channel_refs`] all apply that rule.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Which end of a channel a ref names. Serialized in lowercase: `"read"` or `"write"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The reading end.
    Read,
    /// The writing end.
    Write,
}

impl Direction {
    /// `"read"` or `"write"`, as in the JSON shape.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Read => "read",
            Direction::Write => "write",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A serializable capability for one end of a channel.
///
/// Whoever holds a ref can open that end (once: each end attaches once), so treat
/// `access_key` as a secret. `Debug` hides it; `Serialize` does not.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ChannelRef {
    /// The channel's id (a UUID string from rill's hosts). Not secret.
    pub channel_id: String,
    /// The key of this end. Secret.
    pub access_key: String,
    /// Which end this ref opens.
    pub direction: Direction,
}

/// The one parser: a JSON object (never an array, which serde would otherwise accept for
/// a struct) with exactly the three keys.
impl<'de> Deserialize<'de> for ChannelRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ChannelRef, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            channel_id: String,
            access_key: String,
            direction: Direction,
        }

        struct ObjectOnly;

        impl<'de> Visitor<'de> for ObjectOnly {
            type Value = Wire;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a channel ref object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Wire, A::Error> {
                Wire::deserialize(MapAccessDeserializer::new(map))
            }
        }

        let Wire { channel_id, access_key, direction } = deserializer.deserialize_map(ObjectOnly)?;
        Ok(ChannelRef { channel_id, access_key, direction })
    }
}

impl fmt::Debug for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelRef")
            .field("channel_id", &self.channel_id)
            .field("access_key", &"<redacted>")
            .field("direction", &self.direction)
            .finish()
    }
}

/// Why a JSON value is not a channel ref.
#[derive(Debug)]
pub struct RefParseError(serde_json::Error);

impl fmt::Display for RefParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a channel ref: {} (expected exactly {{\"channel_id\": string, \"access_key\": string, \
             \"direction\": \"read\"|\"write\"}})",
            self.0
        )
    }
}

impl std::error::Error for RefParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl ChannelRef {
    /// Parse a ref from JSON text.
    ///
    /// # Errors
    ///
    /// [`RefParseError`] when the text is not exactly a ref object.
    pub fn from_json(text: &str) -> Result<ChannelRef, RefParseError> {
        serde_json::from_str(text).map_err(RefParseError)
    }

    /// Parse a ref from a JSON value.
    ///
    /// # Errors
    ///
    /// [`RefParseError`] when the value is not exactly a ref object.
    pub fn from_value(value: &Value) -> Result<ChannelRef, RefParseError> {
        ChannelRef::deserialize(value).map_err(RefParseError)
    }

    /// Where this end is opened on an engine whose worker socket is at `engine_url`
    /// (e.g. `ws://127.0.0.1:49134`): `{engine_url}/ws/channels/{id}?key=…&dir=…`, the
    /// URL iii's SDKs build and `rill serve` answers. Ids are UUIDs and keys hex, so
    /// nothing needs escaping.
    ///
    /// ```
    /// # use rill_protocol::{ChannelRef, Direction};
    /// let end = ChannelRef { channel_id: "c".into(), access_key: "k".into(), direction: Direction::Read };
    /// assert_eq!(end.endpoint_url("ws://h:1/"), "ws://h:1/ws/channels/c?key=k&dir=read");
    /// ```
    pub fn endpoint_url(&self, engine_url: &str) -> String {
        format!(
            "{}/ws/channels/{}?key={}&dir={}",
            engine_url.trim_end_matches('/'),
            self.channel_id,
            self.access_key,
            self.direction.as_str()
        )
    }

    /// The ref as a JSON value, ready to put into a payload.
    pub fn to_value(&self) -> Value {
        serde_json::json!({
            "channel_id": self.channel_id,
            "access_key": self.access_key,
            "direction": self.direction,
        })
    }
}

/// Whether `value` is a channel ref, by the rule of [`ChannelRef::from_value`].
pub fn is_channel_ref(value: &Value) -> bool {
    // Only objects can be refs; skip serde's error path for everything else.
    value.is_object() && ChannelRef::from_value(value).is_ok()
}

/// Every channel ref inside `value`, each with its path, in document order.
///
/// Walks objects and arrays. A path joins object keys with `.` and writes array indices
/// as `[i]` (for example `a.b[0].reader`); a ref at the root has the empty path `""` (as
/// in iii's Node and Python SDKs). A ref is not walked into. The walk uses an explicit
/// stack, so no nesting depth can exhaust the caller's stack.
pub fn extract_channel_refs(value: &Value) -> Vec<(String, ChannelRef)> {
    let mut found = Vec::new();
    // Children are pushed in reverse so that they come off the stack in document order.
    let mut stack = vec![(String::new(), value)];
    while let Some((path, value)) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Ok(channel_ref) = ChannelRef::from_value(value) {
                    found.push((path, channel_ref));
                    continue;
                }
                for (key, child) in map.iter().rev() {
                    let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    stack.push((child_path, child));
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate().rev() {
                    stack.push((format!("{path}[{index}]"), child));
                }
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

    use serde_json::json;

    use super::*;

    fn r(id: &str, direction: Direction) -> ChannelRef {
        ChannelRef { channel_id: id.to_owned(), access_key: format!("key-{id}"), direction }
    }

    #[test]
    fn the_conformance_table_holds() {
        let table: Value = serde_json::from_str(crate::REFS_CONFORMANCE_JSON).unwrap();
        let valid = table["valid"].as_array().unwrap();
        let invalid = table["invalid"].as_array().unwrap();
        assert!(valid.len() >= 4 && invalid.len() >= 10, "the table is read whole");
        for case in valid {
            let parsed = ChannelRef::from_value(&case["json"]).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(parsed.channel_id, case["channel_id"].as_str().unwrap());
            assert_eq!(parsed.access_key, case["access_key"].as_str().unwrap());
            assert_eq!(parsed.direction.as_str(), case["direction"].as_str().unwrap());
            assert!(is_channel_ref(&case["json"]));
            assert_eq!(ChannelRef::from_json(&case["json"].to_string()).unwrap(), parsed);
            assert_eq!(ChannelRef::from_value(&parsed.to_value()).unwrap(), parsed, "round trip");
        }
        for case in invalid {
            assert!(ChannelRef::from_value(&case["json"]).is_err(), "accepted {}", case["why"]);
            assert!(ChannelRef::from_json(&case["json"].to_string()).is_err(), "accepted {}", case["why"]);
            assert!(!is_channel_ref(&case["json"]), "accepted {}", case["why"]);
        }
    }

    #[test]
    fn ref_json_is_iiis_exact_shape() {
        let text = serde_json::to_string(&r("c1", Direction::Read)).unwrap();
        assert_eq!(text, r#"{"channel_id":"c1","access_key":"key-c1","direction":"read"}"#);
        assert_eq!(
            r("c2", Direction::Write).to_value(),
            json!({"channel_id": "c2", "access_key": "key-c2", "direction": "write"})
        );
    }

    #[test]
    fn duplicate_keys_and_non_json_are_rejected() {
        for bad in
            [r#"{"channel_id":"a","channel_id":"b","access_key":"k","direction":"read"}"#, "not json", ""]
        {
            assert!(ChannelRef::from_json(bad).is_err(), "accepted {bad}");
        }
        let err = ChannelRef::from_json("{}").unwrap_err().to_string();
        assert!(err.starts_with("not a channel ref: "), "{err}");
    }

    #[test]
    fn debug_hides_the_key() {
        let text =
            format!("{:?}", ChannelRef { access_key: "supersecret".into(), ..r("c1", Direction::Write) });
        assert!(text.contains("c1") && !text.contains("supersecret"), "{text}");
    }

    #[test]
    fn refs_are_found_with_their_paths_in_document_order() {
        let payload = json!({
            "a": {"b": [{"reader": r("c1", Direction::Read)}, 7, r("c2", Direction::Write)]},
            "list": [[r("c3", Direction::Read)]],
            "z": {"deep": {"writer": r("c4", Direction::Write)}},
        });
        assert_eq!(
            extract_channel_refs(&payload),
            vec![
                ("a.b[0].reader".to_owned(), r("c1", Direction::Read)),
                ("a.b[2]".to_owned(), r("c2", Direction::Write)),
                ("list[0][0]".to_owned(), r("c3", Direction::Read)),
                ("z.deep.writer".to_owned(), r("c4", Direction::Write)),
            ]
        );
        let root = r("c1", Direction::Write).to_value();
        assert_eq!(extract_channel_refs(&root), vec![(String::new(), r("c1", Direction::Write))]);
        assert_eq!(extract_channel_refs(&json!([1, {"x": r("c1", Direction::Read)}]))[0].0, "[1].x");
    }

    #[test]
    fn an_object_with_extra_keys_is_not_a_ref_but_is_walked_into() {
        let payload = json!({
            "r": {"channel_id": "c1", "access_key": "key-c1", "direction": "read", "inner": r("c2", Direction::Write)},
        });
        assert_eq!(extract_channel_refs(&payload), vec![("r.inner".to_owned(), r("c2", Direction::Write))]);
    }

    #[test]
    fn deep_nesting_does_not_exhaust_the_stack() {
        // Deeper than any thread's stack would take with one frame per level.
        const DEPTH: usize = 20_000;
        let mut value = r("deep", Direction::Read).to_value();
        for _ in 0..DEPTH {
            value = Value::Array(vec![value]);
        }
        let found = extract_channel_refs(&value);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.len(), "[0]".len() * DEPTH);
        // serde_json's own recursive drop would overflow on this value; unwind it by hand.
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
    }
}
