//! Budgets: what a group of channels (for example everything one call tree creates) may
//! hold at once.
//!
//! A budget counts live channels and **reserves** buffer bytes: creating a channel
//! reserves its whole buffer size, and freeing the channel gives it back. A channel never
//! buffers more than its buffer size, so the bytes a group can make the host hold are
//! bounded by its reservation, without waiting or bookkeeping on the write path. The
//! broker keeps one host-wide reservation the same way
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

    /// Charge one channel of `bytes` buffer, or fail without charging anything.
    pub(crate) fn charge(&self, bytes: usize) -> Result<(), ChannelError> {
        if !try_add(&self.inner.channels, 1, self.inner.max_channels) {
            return Err(ChannelError::LimitExceeded {
                limit: "live channels per call tree",
                max: self.inner.max_channels as u64,
            });
        }
        if !try_add(&self.inner.bytes, bytes, self.inner.max_bytes) {
            self.inner.channels.fetch_sub(1, Ordering::Relaxed);
            return Err(ChannelError::LimitExceeded {
                limit: "channel buffer bytes per call tree",
                max: self.inner.max_bytes as u64,
            });
        }
        Ok(())
    }

    /// Give back what [`Budget::charge`] took.
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
        budget.charge(60).unwrap();
        budget.charge(40).unwrap();
        assert_eq!((budget.channels(), budget.reserved_bytes()), (2, 100));
        budget.release(60);
        assert_eq!((budget.channels(), budget.reserved_bytes()), (1, 40));
    }

    #[test]
    fn refuses_past_either_limit_without_charging() {
        let budget = Budget::new(2, 100);
        budget.charge(90).unwrap();
        let err = budget.charge(11).unwrap_err();
        assert_eq!(
            err,
            ChannelError::LimitExceeded { limit: "channel buffer bytes per call tree", max: 100 }
        );
        assert_eq!((budget.channels(), budget.reserved_bytes()), (1, 90), "a refusal charges nothing");
        budget.charge(10).unwrap();
        let err = budget.charge(0).unwrap_err();
        assert_eq!(err, ChannelError::LimitExceeded { limit: "live channels per call tree", max: 2 });
        assert_eq!((budget.channels(), budget.reserved_bytes()), (2, 100));
    }
}
