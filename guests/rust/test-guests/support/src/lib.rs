//! `rill-test-support`: what rill's test guests share (a library, not a guest).
//!
//! Byte patterns: byte `i` (counted from 0 within one stream) of seed `k` is
//! `(i * 31 + 7 + k) % 251`; seed 0 is the producer example's pattern. The host's tests
//! compute the same bytes (`rill_tests::pattern`) to check streams byte for byte.

use sha2::{Digest, Sha256};

/// The pattern repeats every `PERIOD` bytes.
const PERIOD: usize = 251;

/// `len` bytes of the pattern for `seed`, starting at index `start` of the stream.
pub fn pattern(seed: u64, start: u64, len: usize) -> Vec<u8> {
    let seed = (seed % PERIOD as u64) as usize;
    let period: Vec<u8> = (0..PERIOD).map(|j| ((j * 31 + 7 + seed) % PERIOD) as u8).collect();
    let mut out = Vec::with_capacity(len);
    let mut offset = (start % PERIOD as u64) as usize;
    while out.len() < len {
        let take = (PERIOD - offset).min(len - out.len());
        out.extend_from_slice(&period[offset..offset + take]);
        offset = 0;
    }
    out
}

/// Lowercase hex of a finished SHA-256.
pub fn hex(digest: Sha256) -> String {
    format!("{:x}", digest.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matches_the_documented_formula() {
        for (seed, start, len) in [(0, 0, 600), (3, 10, 600), (500, 249, 3), (7, 0, 0)] {
            let naive: Vec<u8> =
                (start..start + len as u64).map(|i| ((i * 31 + 7 + seed) % 251) as u8).collect();
            assert_eq!(pattern(seed, start, len), naive, "seed {seed} start {start}");
        }
    }
}
