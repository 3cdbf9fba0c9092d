//! Channel refs, from the wire vocabulary shared with the host ([`rill_protocol`]), and
//! their conversions to and from the WIT records.
//!
//! A [`ChannelRef`]'s JSON is iii's, exactly:
//! `{"channel_id": "…", "access_key": "…", "direction": "read"}`. It is parsed by one
//! strict rule, the host's own: an object with exactly those three keys, with those
//! types. Put one in a call payload to hand that end to another function; the receiver
//! opens it with [`ChannelReader::open`](crate::ChannelReader::open) or
//! [`ChannelWriter::open`](crate::ChannelWriter::open). Treat `access_key` as a secret:
//! `Debug` hides it, `Serialize` does not. [`extract_channel_refs`] finds every ref in a
//! payload with its path (`a.b[0].reader`; `""` for a ref at the root).

pub use rill_protocol::{ChannelRef, Direction, RefParseError, extract_channel_refs, is_channel_ref};

use crate::bindings::rill::host::channels as wit;

impl From<wit::Direction> for Direction {
    fn from(direction: wit::Direction) -> Self {
        match direction {
            wit::Direction::Read => Direction::Read,
            wit::Direction::Write => Direction::Write,
        }
    }
}

impl From<Direction> for wit::Direction {
    fn from(direction: Direction) -> Self {
        match direction {
            Direction::Read => wit::Direction::Read,
            Direction::Write => wit::Direction::Write,
        }
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The SDK parses refs exactly as the shared conformance table says.
    #[test]
    fn the_conformance_table_holds_for_the_sdk() {
        let table: Value = serde_json::from_str(rill_protocol::REFS_CONFORMANCE_JSON).unwrap_or_default();
        let (Some(valid), Some(invalid)) = (table["valid"].as_array(), table["invalid"].as_array()) else {
            panic!("the conformance table has valid and invalid cases");
        };
        for case in valid {
            let parsed: Result<ChannelRef, _> = serde_json::from_value(case["json"].clone());
            let parsed = parsed.unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(parsed.channel_id, case["channel_id"].as_str().unwrap_or_default());
            assert_eq!(parsed.direction.as_str(), case["direction"].as_str().unwrap_or_default());
            assert_eq!(extract_channel_refs(&case["json"]).len(), 1, "{case}");
        }
        for case in invalid {
            let parsed: Result<ChannelRef, _> = serde_json::from_value(case["json"].clone());
            assert!(parsed.is_err(), "accepted {}", case["why"]);
            assert!(extract_channel_refs(&case["json"]).is_empty(), "extracted {}", case["why"]);
        }
    }

    #[test]
    fn converts_to_and_from_the_wit_record() {
        let original =
            ChannelRef { channel_id: "c9".into(), access_key: "k".into(), direction: Direction::Write };
        let wit_ref: wit::ChannelRef = original.clone().into();
        assert_eq!(wit_ref.channel_id, "c9");
        assert_eq!(wit_ref.direction, wit::Direction::Write);
        assert_eq!(ChannelRef::from(wit_ref), original);
    }
}
