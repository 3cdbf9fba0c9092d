//! Channel refs: the small, serializable capabilities that name one end of a channel, and
//! [`extract_channel_refs`] to find them inside a JSON payload.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings::rill::host::channels as wit;

/// Which end of a channel a [`ChannelRef`] opens. Serialized in lowercase: `"read"` or
/// `"write"`.
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
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit::Direction> for Direction {
    fn from(direction: wit::Direction) -> Self {
        match direction {
            wit::Direction::Read => Self::Read,
            wit::Direction::Write => Self::Write,
        }
    }
}

impl From<Direction> for wit::Direction {
    fn from(direction: Direction) -> Self {
        match direction {
            Direction::Read => Self::Read,
            Direction::Write => Self::Write,
        }
    }
}

/// A serializable capability for one end of a channel.
///
/// Put it in a call payload to hand that end to another function; the receiver opens it
/// with [`ChannelReader::open`](crate::ChannelReader::open) or
/// [`ChannelWriter::open`](crate::ChannelWriter::open). Its JSON shape is iii's, exactly:
///
/// ```json
/// {"channel_id": "…", "access_key": "…", "direction": "read"}
/// ```
///
/// Treat `access_key` as a secret: whoever holds the ref can open that end (once; each end
/// attaches once). For that reason the `Debug` output hides the key; `Serialize` does not.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelRef {
    /// The channel's id.
    pub channel_id: String,
    /// The secret that opens this end.
    pub access_key: String,
    /// Which end this ref opens.
    pub direction: Direction,
}

impl ChannelRef {
    /// Reads a ref from a JSON value, strictly: the value must be an object whose
    /// `channel_id` and `access_key` are strings and whose `direction` is `"read"` or
    /// `"write"`. Other keys are ignored. Returns `None` for anything else.
    pub fn from_json(value: &Value) -> Option<ChannelRef> {
        let object = value.as_object()?;
        let channel_id = object.get("channel_id")?.as_str()?;
        let access_key = object.get("access_key")?.as_str()?;
        let direction = match object.get("direction")?.as_str()? {
            "read" => Direction::Read,
            "write" => Direction::Write,
            _ => return None,
        };
        Some(ChannelRef { channel_id: channel_id.to_owned(), access_key: access_key.to_owned(), direction })
    }

    /// This ref as a JSON value (`{"channel_id", "access_key", "direction"}`).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "channel_id": self.channel_id,
            "access_key": self.access_key,
            "direction": self.direction,
        })
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

impl From<wit::ChannelRef> for ChannelRef {
    fn from(r: wit::ChannelRef) -> Self {
        ChannelRef { channel_id: r.channel_id, access_key: r.access_key, direction: r.direction.into() }
    }
}

impl From<ChannelRef> for wit::ChannelRef {
    fn from(r: ChannelRef) -> Self {
        wit::ChannelRef { channel_id: r.channel_id, access_key: r.access_key, direction: r.direction.into() }
    }
}

impl From<&ChannelRef> for wit::ChannelRef {
    fn from(r: &ChannelRef) -> Self {
        r.clone().into()
    }
}

/// Whether `value` is a channel ref, by the rule of [`ChannelRef::from_json`].
pub fn is_channel_ref(value: &Value) -> bool {
    ChannelRef::from_json(value).is_some()
}

/// Every channel ref inside `value`, each with its path, in document order.
///
/// Walks objects and arrays recursively. A path joins object keys with `.` and writes array
/// indices as `[i]`, for example `a.b[0].reader`; a ref at the root has the empty path `""`,
/// and a top-level key `reader` has the path `"reader"`. An object counts as a ref by the
/// rule of [`ChannelRef::from_json`] (so a `direction` other than `"read"`/`"write"` is not
/// a ref); the walk does not look inside a ref.
///
/// ```
/// # use rill_guest::{extract_channel_refs, Direction};
/// let payload = serde_json::json!({
///     "filename": "report.csv",
///     "reader": {"channel_id": "c1", "access_key": "k1", "direction": "read"},
/// });
/// let refs = extract_channel_refs(&payload);
/// assert_eq!(refs.len(), 1);
/// assert_eq!(refs[0].0, "reader");
/// assert_eq!(refs[0].1.direction, Direction::Read);
/// ```
pub fn extract_channel_refs(value: &Value) -> Vec<(String, ChannelRef)> {
    let mut found = Vec::new();
    walk(value, String::new(), &mut found);
    found
}

fn walk(value: &Value, path: String, found: &mut Vec<(String, ChannelRef)>) {
    if let Some(channel_ref) = ChannelRef::from_json(value) {
        found.push((path, channel_ref));
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                walk(child, child_path, found);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                walk(child, format!("{path}[{index}]"), found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn r(id: &str, direction: Direction) -> ChannelRef {
        ChannelRef { channel_id: id.to_owned(), access_key: format!("key-{id}"), direction }
    }

    #[test]
    fn serializes_in_iiis_exact_shape() {
        let text = serde_json::to_string(&r("c1", Direction::Read)).ok();
        assert_eq!(text.as_deref(), Some(r#"{"channel_id":"c1","access_key":"key-c1","direction":"read"}"#));
        let text = serde_json::to_string(&r("c2", Direction::Write)).ok();
        assert_eq!(text.as_deref(), Some(r#"{"channel_id":"c2","access_key":"key-c2","direction":"write"}"#));
    }

    #[test]
    fn deserializes_iiis_shape_and_rejects_other_directions() {
        let parsed: Result<ChannelRef, _> =
            serde_json::from_str(r#"{"direction":"write","access_key":"key-c1","channel_id":"c1"}"#);
        assert_eq!(parsed.ok(), Some(r("c1", Direction::Write)));

        let upper: Result<ChannelRef, _> =
            serde_json::from_str(r#"{"channel_id":"c1","access_key":"k","direction":"Read"}"#);
        assert!(upper.is_err());
        let missing: Result<ChannelRef, _> =
            serde_json::from_str(r#"{"channel_id":"c1","direction":"read"}"#);
        assert!(missing.is_err());
    }

    #[test]
    fn to_json_matches_serialize() {
        let value = r("c1", Direction::Read).to_json();
        assert_eq!(value, json!({"channel_id": "c1", "access_key": "key-c1", "direction": "read"}));
        assert_eq!(ChannelRef::from_json(&value), Some(r("c1", Direction::Read)));
    }

    #[test]
    fn debug_hides_the_access_key() {
        let text = format!("{:?}", r("c1", Direction::Read));
        assert!(text.contains("c1"));
        assert!(!text.contains("key-c1"));
    }

    #[test]
    fn converts_to_and_from_the_wit_record() {
        let original = r("c9", Direction::Write);
        let wit_ref: wit::ChannelRef = original.clone().into();
        assert_eq!(wit_ref.channel_id, "c9");
        assert_eq!(wit_ref.direction, wit::Direction::Write);
        assert_eq!(ChannelRef::from(wit_ref), original);
    }

    #[test]
    fn finds_a_top_level_key() {
        let payload = json!({"filename": "report.csv", "reader": r("c1", Direction::Read)});
        assert_eq!(extract_channel_refs(&payload), vec![("reader".to_owned(), r("c1", Direction::Read))]);
    }

    #[test]
    fn a_ref_at_the_root_has_the_empty_path() {
        let payload = serde_json::to_value(r("c1", Direction::Write)).unwrap_or_default();
        assert_eq!(extract_channel_refs(&payload), vec![(String::new(), r("c1", Direction::Write))]);
    }

    #[test]
    fn nested_objects_and_arrays_get_dotted_and_indexed_paths() {
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
    }

    #[test]
    fn an_array_at_the_root_uses_bare_indices() {
        let payload = json!([1, {"x": r("c1", Direction::Read)}]);
        assert_eq!(extract_channel_refs(&payload), vec![("[1].x".to_owned(), r("c1", Direction::Read))]);
    }

    #[test]
    fn non_refs_and_wrong_directions_are_ignored() {
        let payload = json!({
            "wrong_direction": {"channel_id": "c", "access_key": "k", "direction": "both"},
            "upper_case": {"channel_id": "c", "access_key": "k", "direction": "READ"},
            "missing_key": {"channel_id": "c", "direction": "read"},
            "number_id": {"channel_id": 1, "access_key": "k", "direction": "read"},
            "null_key": {"channel_id": "c", "access_key": null, "direction": "read"},
            "string": "channel_id",
            "number": 3,
            "empty": {},
            "nothing": null,
        });
        assert_eq!(extract_channel_refs(&payload), vec![]);
        assert!(!is_channel_ref(&payload["wrong_direction"]));
        assert_eq!(extract_channel_refs(&json!(null)), vec![]);
    }

    #[test]
    fn extra_keys_are_allowed_and_refs_are_not_walked_into() {
        let payload = json!({
            "r": {
                "channel_id": "c1", "access_key": "key-c1", "direction": "read",
                "note": "extra keys are fine",
                "inner": r("c2", Direction::Write),
            },
        });
        assert_eq!(extract_channel_refs(&payload), vec![("r".to_owned(), r("c1", Direction::Read))]);
    }
}
