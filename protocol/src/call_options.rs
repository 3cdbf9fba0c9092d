//! Options for one call: the WIT's `call-options`.

use std::time::Duration;

/// Options for one call, as the WIT's `call-options` carries them: the same type for a
/// guest's calls (through the Rust SDK) and for an application's (through the host's
/// embedding API).
///
/// ```
/// # use std::time::Duration;
/// let options = rill_protocol::CallOptions::new().timeout(Duration::from_millis(1500));
/// assert_eq!(options.timeout_ms(), Some(1500));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CallOptions {
    /// Wall-clock budget for the call; `None` uses the function's own timeout. A call
    /// never outlives its caller's deadline, whatever this says.
    pub timeout: Option<Duration>,
}

impl CallOptions {
    /// Options with every field at its default.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Set the call's wall-clock budget (carried in whole milliseconds).
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }

    /// The timeout as the WIT's `timeout-ms` (whole milliseconds, saturating).
    pub fn timeout_ms(&self) -> Option<u64> {
        self.timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
    }

    /// Options from the WIT's `timeout-ms`.
    pub fn from_timeout_ms(timeout_ms: Option<u64>) -> CallOptions {
        CallOptions { timeout: timeout_ms.map(Duration::from_millis) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_travel_in_whole_milliseconds() {
        assert_eq!(CallOptions::new().timeout_ms(), None);
        assert_eq!(CallOptions::new().timeout(Duration::from_micros(1_500_900)).timeout_ms(), Some(1500));
        assert_eq!(CallOptions::new().timeout(Duration::MAX).timeout_ms(), Some(u64::MAX));
        let back = CallOptions::from_timeout_ms(Some(1500));
        assert_eq!(back, CallOptions::new().timeout(Duration::from_millis(1500)));
        assert_eq!(CallOptions::from_timeout_ms(None), CallOptions::new());
    }
}
