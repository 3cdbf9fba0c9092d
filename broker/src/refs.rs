//! The secrets behind channel refs.
//!
//! A ref's shape and parsing live in [`rill_protocol`] (re-exported here as
//! [`ChannelRef`](crate::ChannelRef) and [`Direction`](crate::Direction)). Unlike iii, the two refs of a channel carry **different** keys, and a ref opens only
//! the end its `direction` names. Keys are 256 bits from the operating system's CSPRNG,
//! hex-encoded, and are compared in constant time. Channel ids are random UUIDs and are
//! never reused, so a stale ref can never reach a newer channel.

use subtle::ConstantTimeEq;

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
