//! Broker limits and configuration.
//!
//! Everything a guest or client can make the broker hold is bounded by one of these
//! numbers. Each constant's doc says what it protects.

use std::time::Duration;

use crate::ChannelError;

/// Default bytes a channel may buffer between its writer and its reader (1 MiB).
///
/// Protects host memory from a writer that runs ahead of a slow reader: a full buffer
/// makes `write` wait.
pub const DEFAULT_BUFFER_BYTES: usize = 1 << 20;

/// Smallest buffer a channel may ask for (64 KiB). Large enough to hold the largest text
/// message plus its bookkeeping, so a text message can always be delivered.
pub const MIN_BUFFER_BYTES: usize = 64 << 10;

/// Largest buffer a channel may ask for (64 MiB). Bounds what one channel can pin in host
/// memory.
pub const MAX_BUFFER_BYTES: usize = 64 << 20;

/// Largest byte chunk stored as one item (64 KiB). Larger writes are split (without
/// copying) so a reader's single `next` never returns more than this.
pub const MAX_CHUNK_BYTES: usize = 64 << 10;

/// Byte chunks shorter than this (16 KiB) are *small*: a read that asks for more than a
/// small chunk at the front of the queue gets it joined with the small chunks right
/// behind it, up to what it asked for. Each read costs its reader a fixed amount (a lock,
/// perhaps a wakeup, a host call for a guest), which a writer sending small pieces would
/// otherwise pay once per piece. Larger chunks are handed out as they are, without
/// copying: joining them would cost a copy worth more than the read it saves.
pub const SMALL_CHUNK_BYTES: usize = 16 << 10;

/// Largest text message (32 KiB). Text messages are delivered whole, so they must fit in
/// the smallest buffer.
pub const MAX_TEXT_BYTES: usize = 32 << 10;

/// Bookkeeping bytes charged against the buffer for every buffered item, on top of its
/// payload. Without it a writer could queue millions of empty text messages or one-byte
/// chunks, each costing real memory, while staying under the byte bound.
pub const ITEM_OVERHEAD_BYTES: usize = 64;

/// Longest abort reason kept (1 KiB); longer reasons are cut at a character boundary.
/// Bounds what a writer can make the broker store and every reader log.
pub const MAX_REASON_BYTES: usize = 1 << 10;

/// Default deadline for both ends of a new channel to attach (60 s). An end never attached
/// within it expires the channel, so a ref handed to a function that never opens it
/// cannot pin a channel (and its buffered bytes) forever.
pub const DEFAULT_ATTACH_TIMEOUT: Duration = Duration::from_secs(60);

/// Default cap on channels alive in one broker at once. Bounds the bookkeeping a flood of
/// `create` calls can pin, even when every channel is empty.
pub const DEFAULT_MAX_CHANNELS: usize = 100_000;

// A text message must always fit an empty buffer of the smallest size, and so must a
// whole chunk; otherwise a writer could wait forever for room that never comes.
const _: () = assert!(MAX_TEXT_BYTES + ITEM_OVERHEAD_BYTES <= MIN_BUFFER_BYTES);
const _: () = assert!(MAX_CHUNK_BYTES <= MIN_BUFFER_BYTES);
const _: () = assert!(SMALL_CHUNK_BYTES <= MAX_CHUNK_BYTES);
const _: () = assert!(MIN_BUFFER_BYTES <= DEFAULT_BUFFER_BYTES && DEFAULT_BUFFER_BYTES <= MAX_BUFFER_BYTES);

/// Default cap on the buffer bytes reserved by all live channels of one broker (4 GiB).
/// Every channel reserves its whole buffer size when its writer attaches (before it can
/// buffer anything), so this bounds the memory all channels together can ever make the
/// host hold.
pub const DEFAULT_MAX_RESERVED_BYTES: usize = 4 << 30;

/// Configuration of a [`Broker`](crate::Broker).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BrokerConfig {
    /// Buffer size of a channel created without an explicit size.
    pub default_buffer_bytes: usize,
    /// How long a new channel waits for both ends to attach before it expires.
    pub attach_timeout: Duration,
    /// Most channels alive at once; `create` beyond it fails with
    /// [`ChannelError::LimitExceeded`].
    pub max_channels: usize,
    /// Most buffer bytes reserved by all live channels at once; attaching a writer beyond
    /// it (its first operation, or [`Broker::open_writer`](crate::Broker::open_writer))
    /// fails with [`ChannelError::LimitExceeded`].
    pub max_reserved_bytes: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            default_buffer_bytes: DEFAULT_BUFFER_BYTES,
            attach_timeout: DEFAULT_ATTACH_TIMEOUT,
            max_channels: DEFAULT_MAX_CHANNELS,
            max_reserved_bytes: DEFAULT_MAX_RESERVED_BYTES,
        }
    }
}

impl BrokerConfig {
    /// Set the attach deadline of new channels.
    pub fn attach_timeout(mut self, timeout: Duration) -> Self {
        self.attach_timeout = timeout;
        self
    }

    /// Set the default buffer size (checked against the allowed range at `create`).
    pub fn default_buffer_bytes(mut self, bytes: usize) -> Self {
        self.default_buffer_bytes = bytes;
        self
    }

    /// Set the most channels alive at once.
    pub fn max_channels(mut self, max: usize) -> Self {
        self.max_channels = max;
        self
    }

    /// Set the most buffer bytes all live channels may reserve together.
    pub fn max_reserved_bytes(mut self, max: usize) -> Self {
        self.max_reserved_bytes = max;
        self
    }
}

/// Options for one new channel.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ChannelOptions {
    /// Buffer size in bytes; `None` uses the broker's default. Must lie within
    /// [`MIN_BUFFER_BYTES`]..=[`MAX_BUFFER_BYTES`].
    pub buffer_bytes: Option<usize>,
}

impl ChannelOptions {
    /// Options asking for a buffer of `bytes` bytes.
    pub fn buffer_bytes(bytes: usize) -> Self {
        ChannelOptions { buffer_bytes: Some(bytes) }
    }

    pub(crate) fn resolve_buffer(&self, config: &BrokerConfig) -> Result<usize, ChannelError> {
        let bytes = self.buffer_bytes.unwrap_or(config.default_buffer_bytes);
        if (MIN_BUFFER_BYTES..=MAX_BUFFER_BYTES).contains(&bytes) {
            Ok(bytes)
        } else {
            Err(ChannelError::InvalidArgument(format!(
                "buffer size {bytes} is outside the allowed range {MIN_BUFFER_BYTES}..={MAX_BUFFER_BYTES} bytes"
            )))
        }
    }
}

/// Cut `reason` to at most [`MAX_REASON_BYTES`], at a character boundary. A long reason
/// is copied into a new string: truncating in place would keep the whole original
/// allocation alive behind the short text.
pub(crate) fn bounded_reason(reason: String) -> String {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let mut cut = MAX_REASON_BYTES;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut bounded = String::with_capacity(cut + '…'.len_utf8());
    bounded.push_str(&reason[..cut]);
    bounded.push('…');
    bounded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_size_obeyed() {
        let config = BrokerConfig::default();
        for bytes in [MIN_BUFFER_BYTES, DEFAULT_BUFFER_BYTES, MAX_BUFFER_BYTES] {
            assert_eq!(ChannelOptions::buffer_bytes(bytes).resolve_buffer(&config), Ok(bytes));
        }
        assert_eq!(ChannelOptions::default().resolve_buffer(&config), Ok(DEFAULT_BUFFER_BYTES));
    }

    #[test]
    fn buffer_size_violated() {
        let config = BrokerConfig::default();
        for bytes in [0, MIN_BUFFER_BYTES - 1, MAX_BUFFER_BYTES + 1, usize::MAX] {
            let err = ChannelOptions::buffer_bytes(bytes).resolve_buffer(&config).unwrap_err();
            assert!(matches!(err, ChannelError::InvalidArgument(_)), "{bytes}: {err:?}");
        }
    }

    #[test]
    fn reasons_are_bounded_at_char_boundaries() {
        let long = "é".repeat(MAX_REASON_BYTES);
        let cut = bounded_reason(long);
        assert!(cut.len() <= MAX_REASON_BYTES + '…'.len_utf8());
        assert!(cut.capacity() <= MAX_REASON_BYTES + '…'.len_utf8(), "no hidden allocation is kept");
        assert!(cut.ends_with('…'));
        assert_eq!(bounded_reason("short".into()), "short");
    }
}
