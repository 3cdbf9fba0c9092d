//! The error cases of the WIT contract, by name.
//!
//! Hosts and SDKs each have their own error types (with their own payloads), but they
//! name and map the cases the same way: through these kinds.

use std::io;

/// A case of the WIT `channel-error` variant (`wit/channels.wit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelErrorKind {
    /// `not-found`: an unknown or expired channel, a wrong key, or a wrong direction.
    NotFound,
    /// `already-attached`: the end was attached before; each end attaches once.
    AlreadyAttached,
    /// `closed`: the reader is gone.
    Closed,
    /// `aborted`: the writer failed instead of closing.
    Aborted,
    /// `timed-out`: the other end was never attached in time.
    TimedOut,
    /// `limit-exceeded`: a limit was reached.
    LimitExceeded,
    /// `finished`: this end already closed or aborted.
    Finished,
    /// `invalid-argument`: an argument was not acceptable.
    InvalidArgument,
}

impl ChannelErrorKind {
    /// Every kind, in the WIT's order.
    pub const ALL: [ChannelErrorKind; 8] = [
        ChannelErrorKind::NotFound,
        ChannelErrorKind::AlreadyAttached,
        ChannelErrorKind::Closed,
        ChannelErrorKind::Aborted,
        ChannelErrorKind::TimedOut,
        ChannelErrorKind::LimitExceeded,
        ChannelErrorKind::Finished,
        ChannelErrorKind::InvalidArgument,
    ];

    /// The case's name as spelled in the WIT (`"not-found"`, `"already-attached"`, …):
    /// stable, for programs, logs and test assertions.
    pub fn wit_name(self) -> &'static str {
        match self {
            ChannelErrorKind::NotFound => "not-found",
            ChannelErrorKind::AlreadyAttached => "already-attached",
            ChannelErrorKind::Closed => "closed",
            ChannelErrorKind::Aborted => "aborted",
            ChannelErrorKind::TimedOut => "timed-out",
            ChannelErrorKind::LimitExceeded => "limit-exceeded",
            ChannelErrorKind::Finished => "finished",
            ChannelErrorKind::InvalidArgument => "invalid-argument",
        }
    }

    /// The [`io::ErrorKind`] the case becomes when a channel is used as a `std::io` or
    /// tokio stream.
    pub fn io_kind(self) -> io::ErrorKind {
        match self {
            ChannelErrorKind::NotFound => io::ErrorKind::NotFound,
            ChannelErrorKind::AlreadyAttached => io::ErrorKind::ResourceBusy,
            ChannelErrorKind::Closed => io::ErrorKind::BrokenPipe,
            ChannelErrorKind::Aborted => io::ErrorKind::ConnectionAborted,
            ChannelErrorKind::TimedOut => io::ErrorKind::TimedOut,
            ChannelErrorKind::LimitExceeded => io::ErrorKind::QuotaExceeded,
            ChannelErrorKind::Finished => io::ErrorKind::NotConnected,
            ChannelErrorKind::InvalidArgument => io::ErrorKind::InvalidInput,
        }
    }
}

/// A case of the WIT `call-error` variant (`wit/functions.wit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallErrorKind {
    /// `not-found`: no function is registered under the id.
    NotFound,
    /// `invalid-input`: the payload or another argument is unacceptable.
    InvalidInput,
    /// `failed`: the function returned an error or trapped.
    Failed,
    /// `timed-out`: the call did not finish before its deadline.
    TimedOut,
    /// `limit-exceeded`: a limit was reached.
    LimitExceeded,
    /// `unavailable`: the component could not be loaded, or the host is at capacity.
    Unavailable,
}

impl CallErrorKind {
    /// Every kind, in the WIT's order.
    pub const ALL: [CallErrorKind; 6] = [
        CallErrorKind::NotFound,
        CallErrorKind::InvalidInput,
        CallErrorKind::Failed,
        CallErrorKind::TimedOut,
        CallErrorKind::LimitExceeded,
        CallErrorKind::Unavailable,
    ];

    /// The case's name as spelled in the WIT (`"not-found"`, `"invalid-input"`, …).
    pub fn wit_name(self) -> &'static str {
        match self {
            CallErrorKind::NotFound => "not-found",
            CallErrorKind::InvalidInput => "invalid-input",
            CallErrorKind::Failed => "failed",
            CallErrorKind::TimedOut => "timed-out",
            CallErrorKind::LimitExceeded => "limit-exceeded",
            CallErrorKind::Unavailable => "unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

    use super::*;

    /// The names are the WIT's own: every case of each variant, and no other.
    #[test]
    fn names_are_the_wits() {
        fn cases(wit: &str, variant: &str) -> Vec<String> {
            let start = wit.find(&format!("variant {variant} {{")).unwrap();
            let body = &wit[start..start + wit[start..].find("\n    }").unwrap()];
            body.lines()
                .map(str::trim)
                .filter(|line| !line.starts_with("///") && !line.starts_with("variant"))
                .filter_map(|line| line.split(['(', ',']).next())
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect()
        }
        let channels = cases(include_str!("../../wit/channels.wit"), "channel-error");
        let names: Vec<_> = ChannelErrorKind::ALL.iter().map(|k| k.wit_name().to_owned()).collect();
        assert_eq!(names, channels);
        let calls = cases(include_str!("../../wit/functions.wit"), "call-error");
        let names: Vec<_> = CallErrorKind::ALL.iter().map(|k| k.wit_name().to_owned()).collect();
        assert_eq!(names, calls);
    }

    /// The table other SDKs' tests read lists the same kinds.
    #[test]
    fn the_conformance_table_lists_every_kind() {
        let table: serde_json::Value = serde_json::from_str(crate::ERRORS_CONFORMANCE_JSON).unwrap();
        let listed = |variant: &str| -> Vec<String> {
            table[variant].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
        };
        let channels: Vec<_> = ChannelErrorKind::ALL.iter().map(|k| k.wit_name().to_owned()).collect();
        assert_eq!(listed("channel-error"), channels);
        let calls: Vec<_> = CallErrorKind::ALL.iter().map(|k| k.wit_name().to_owned()).collect();
        assert_eq!(listed("call-error"), calls);
    }
}
