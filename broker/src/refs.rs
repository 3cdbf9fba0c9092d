//! Channel refs: the serializable capabilities that name one end of a channel.
//!
//! A ref's JSON is exactly iii's, so iii SDK clients can hold rill refs:
//!
//! ```json
//! {"channel_id": "6f1c…", "access_key": "9a4e…", "direction": "read"}
//! ```
//!
//! Unlike iii, the two refs of a channel carry **different** keys, and a ref opens only
//! the end its `direction` names. Keys are 256 bits from the operating system's CSPRNG,
//! hex-encoded, and are compared in constant time. Channel ids are random UUIDs and are
//! never reused, so a stale ref can never reach a newer channel.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Which end of a channel a ref names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The reading end.
    Read,
    /// The writing end.
    Write,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Read => "read",
            Direction::Write => "write",
        })
    }
}

/// A serializable capability for one end of a channel.
///
/// Whoever holds a ref can open that end (once): treat `access_key` as a secret. The
/// `Debug` output hides the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRef {
    /// The channel's id (a UUID string). Not secret.
    pub channel_id: String,
    /// The key of this end. Secret.
    pub access_key: String,
    /// Which end this ref opens.
    pub direction: Direction,
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
#[derive(Debug, thiserror::Error)]
#[error(
    "not a channel ref: {0} (expected {{\"channel_id\": string, \"access_key\": string, \"direction\": \"read\"|\"write\"}})"
)]
pub struct RefParseError(#[source] serde_json::Error);

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
    pub fn from_value(value: &serde_json::Value) -> Result<ChannelRef, RefParseError> {
        ChannelRef::deserialize(value).map_err(RefParseError)
    }

    /// The ref as a JSON value, ready to put into a payload.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::json!({
            "channel_id": self.channel_id,
            "access_key": self.access_key,
            "direction": self.direction,
        })
    }
}

/// Number of random bytes in an access key (256 bits; the bar is at least 128).
pub(crate) const ACCESS_KEY_BYTES: usize = 32;

/// The secret key of one channel end, kept as raw bytes (no heap allocation per key);
/// refs carry it hex-encoded.
pub(crate) struct AccessKey([u8; ACCESS_KEY_BYTES]);

impl AccessKey {
    /// A fresh key from the operating system's CSPRNG.
    pub(crate) fn generate() -> AccessKey {
        let mut raw = [0u8; ACCESS_KEY_BYTES];
        // The OS random source failing is not something any caller can handle; it is a
        // broken machine. Falling back to a weaker source would silently weaken every
        // capability, so this aborts the operation loudly instead.
        #[expect(clippy::expect_used, reason = "no safe fallback exists for a broken OS CSPRNG")]
        getrandom::fill(&mut raw).expect("the operating system's random source failed");
        AccessKey(raw)
    }

    fn hex(&self) -> [u8; ACCESS_KEY_BYTES * 2] {
        let mut hex = [0u8; ACCESS_KEY_BYTES * 2];
        for (i, byte) in self.0.iter().enumerate() {
            hex[2 * i] = HEX[usize::from(byte >> 4)];
            hex[2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        hex
    }

    /// Constant-time comparison with a presented (hex) key. Only the length can leak.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        self.hex().as_slice().ct_eq(presented.as_bytes()).into()
    }

    /// The key as it appears in a ref.
    pub(crate) fn to_hex_string(&self) -> String {
        self.hex().iter().map(|&b| char::from(b)).collect()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_json_is_iii_shape() {
        let r = ChannelRef { channel_id: "id".into(), access_key: "key".into(), direction: Direction::Read };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"channel_id":"id","access_key":"key","direction":"read"}"#);
        assert_eq!(ChannelRef::from_json(&text).unwrap(), r);
        assert_eq!(r.to_value(), serde_json::from_str::<serde_json::Value>(&text).unwrap());
    }

    #[test]
    fn malformed_refs_are_rejected() {
        for bad in [
            r#"{"channel_id":"id","access_key":"k"}"#,
            r#"{"channel_id":"id","access_key":"k","direction":"sideways"}"#,
            r#"{"channel_id":1,"access_key":"k","direction":"read"}"#,
            r#"{"channel_id":"id","access_key":"k","direction":"read","extra":1}"#,
            r#"[]"#,
            "not json",
        ] {
            assert!(ChannelRef::from_json(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let r = ChannelRef {
            channel_id: "id".into(),
            access_key: "supersecret".into(),
            direction: Direction::Write,
        };
        assert!(!format!("{r:?}").contains("supersecret"));
    }

    #[test]
    fn keys_are_long_distinct_and_compared_exactly() {
        let a = AccessKey::generate();
        let b = AccessKey::generate();
        let (a_hex, b_hex) = (a.to_hex_string(), b.to_hex_string());
        assert_eq!(a_hex.len(), ACCESS_KEY_BYTES * 2);
        assert!(a_hex.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a_hex, b_hex);
        assert!(a.matches(&a_hex));
        assert!(!a.matches(&b_hex));
        assert!(!a.matches(&a_hex[..10]));
        assert!(!a.matches(&a_hex.to_uppercase()), "keys compare exactly, not case-insensitively");
        assert!(!a.matches(""));
    }
}
