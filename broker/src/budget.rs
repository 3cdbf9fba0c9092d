//! Budgets: what a group of channels (for example everything one call tree creates) may
//! hold at once.
//!
//! A budget counts live channels and **reserves** buffer bytes: creating a channel counts
//! it, attaching its writer reserves its whole buffer size (only a writer can fill the
//! buffer), and freeing the channel gives both back. A channel never buffers more than
//! its buffer size, so the bytes a group can make the host hold are bounded by its
//! reservation, without waiting or bookkeeping on the write path; and a channel created
//! and abandoned unused costs one channel of the count, no bytes. The broker keeps one
//! host-wide reservation the same way
//! ([`BrokerConfig::max_reserved_bytes`](crate::BrokerConfig::max_reserved_bytes)).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ChannelError;

/// Limits for a group of channels, shared by everyone creating channels in the group.
/// Cheap to clone; clones share the counts.
#[derive(Debug, Clone)]
pub struct Budget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    max_channels: usize,
    max_bytes: usize,
    channels: AtomicUsize,
    bytes: AtomicUsize,
}

impl Budget {
    /// A budget of at most `max_channels` live channels whose buffers add up to at most
    /// `max_bytes`.
    pub fn new(max_channels: usize, max_bytes: usize) -> Budget {
        Budget {
            inner: Arc::new(BudgetInner {
                max_channels,
                max_bytes,
                channels: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
            }),
        }
    }

    /// Live channels charged to this budget.
    pub fn channels(&self) -> usize {
        self.inner.channels.load(Ordering::Relaxed)
    }

    /// Buffer bytes reserved by this budget's live channels.
    pub fn reserved_bytes(&self) -> usize {
        self.inner.bytes.load(Ordering::Relaxed)
    }

    /// Count one more channel, or fail counting nothing.
    pub(crate) fn charge_channel(&self) -> Result<(), ChannelError> {
        if !try_add(&self.inner.channels, 1, self.inner.max_channels) {
            return Err(ChannelError::LimitExceeded {
                limit: "live channels per call tree",
                max: self.inner.max_channels as u64,
            });
        }
        Ok(())
    }

    /// Reserve `bytes` of buffer for a counted channel, or fail reserving nothing.
    pub(crate) fn reserve_bytes(&self, bytes: usize) -> Result<(), ChannelError> {
        if !try_add(&self.inner.bytes, bytes, self.inner.max_bytes) {
            return Err(ChannelError::LimitExceeded {
                limit: "channel buffer bytes per call tree",
                max: self.inner.max_bytes as u64,
            });
        }
        Ok(())
    }

    /// Give back one channel and the `bytes` it reserved.
    pub(crate) fn release(&self, bytes: usize) {
        self.inner.channels.fetch_sub(1, Ordering::Relaxed);
        self.inner.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Add `amount` to `counter` unless that would exceed `max`.
pub(crate) fn try_add(counter: &AtomicUsize, amount: usize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
            current.checked_add(amount).filter(|&next| next <= max)
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_within_limits_and_releases() {
        let budget = Budget::new(2, 100);
        budget.charge_channel().unwrap();
        budget.reserve_bytes(60).unwrap();
        budget.charge_channel().unwrap();
        budget.reserve_bytes(40).unwrap();
        assert_eq!((budget.channels(), budget.reserved_bytes()), (2, 100));
        budget.release(60);
        assert_eq!((budget.channels(), budget.reserved_bytes()), (1, 40));
    }

    #[test]
    fn refuses_past_either_limit_without_charging() {
        let budget = Budget::new(2, 100);
        budget.charge_channel().unwrap();
        budget.reserve_bytes(90).unwrap();
        budget.charge_channel().unwrap();
        let err = budget.reserve_bytes(11).unwrap_err();
        assert_eq!(
            err,
            ChannelError::LimitExceeded { limit: "channel buffer bytes per call tree", max: 100 }
        );
        assert_eq!((budget.channels(), budget.reserved_bytes()), (2, 90), "a refusal reserves nothing");
        budget.reserve_bytes(10).unwrap();
        let err = budget.charge_channel().unwrap_err();
        assert_eq!(err, ChannelError::LimitExceeded { limit: "live channels per call tree", max: 2 });
        assert_eq!((budget.channels(), budget.reserved_bytes()), (2, 100));
    }
}
