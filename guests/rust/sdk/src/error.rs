//! The two error types a guest sees: [`ChannelError`] for channel operations and
//! [`CallError`] for calls to other functions.
//!
//! Both mirror a WIT `variant` case for case. `kind()` returns the WIT case name, which is
//! stable and meant for programs (logs, test assertions, JSON results); `Display` is for
//! people.

use std::fmt;
use std::io;

use rill_protocol::{CallErrorKind, ChannelErrorKind};

use crate::bindings::rill::host::{channels as wit_channels, functions as wit_functions};

/// Why a channel operation failed. Mirrors the WIT `channel-error` variant.
///
/// A trap is never reported through this type: if the host traps, the whole function stops.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelError {
    /// No such channel end: an unknown or expired channel id, a wrong key, or a ref whose
    /// direction does not match the operation. The host makes these cases deliberately
    /// indistinguishable.
    NotFound,
    /// This end was already attached by someone else. Each end attaches once.
    AlreadyAttached,
    /// The reader is gone; nothing written now can be delivered.
    Closed,
    /// The writer failed instead of closing: it aborted, was dropped without `close`, or its
    /// function trapped or timed out. The payload is the reason.
    Aborted(String),
    /// The other end was never attached within the host's attach deadline, so the channel
    /// expired.
    TimedOut,
    /// A host limit was reached. The payload names the limit and its value.
    LimitExceeded(String),
    /// This end already finished (it was closed or aborted); it accepts no more operations.
    Finished,
    /// An argument was not acceptable (for example a buffer size outside the host's range);
    /// the payload says why.
    InvalidArgument(String),
}

impl ChannelError {
    /// The stable WIT case name: `"not-found"`, `"already-attached"`, `"closed"`,
    /// `"aborted"`, `"timed-out"`, `"limit-exceeded"`, `"finished"` or
    /// `"invalid-argument"`.
    pub fn kind(&self) -> &'static str {
        self.error_kind().wit_name()
    }

    /// This error's case of the WIT `channel-error` variant, from the vocabulary shared
    /// with the host.
    pub fn error_kind(&self) -> ChannelErrorKind {
        match self {
            Self::NotFound => ChannelErrorKind::NotFound,
            Self::AlreadyAttached => ChannelErrorKind::AlreadyAttached,
            Self::Closed => ChannelErrorKind::Closed,
            Self::Aborted(_) => ChannelErrorKind::Aborted,
            Self::TimedOut => ChannelErrorKind::TimedOut,
            Self::LimitExceeded(_) => ChannelErrorKind::LimitExceeded,
            Self::Finished => ChannelErrorKind::Finished,
            Self::InvalidArgument(_) => ChannelErrorKind::InvalidArgument,
        }
    }

    /// The host's text for the cases that carry one (`aborted`, `limit-exceeded`,
    /// `invalid-argument`), `None` for the others.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Aborted(s) | Self::LimitExceeded(s) | Self::InvalidArgument(s) => Some(s),
            _ => None,
        }
    }

    /// The `ChannelError` inside an [`io::Error`] made by this crate's `Read`/`Write`
    /// implementations, if there is one.
    ///
    /// ```
    /// # use rill_guest::ChannelError;
    /// let io_err: std::io::Error = ChannelError::Closed.into();
    /// assert_eq!(ChannelError::from_io_error(&io_err), Some(&ChannelError::Closed));
    /// ```
    pub fn from_io_error(error: &io::Error) -> Option<&ChannelError> {
        error.get_ref()?.downcast_ref::<ChannelError>()
    }

    /// The [`io::ErrorKind`] this error maps to when it crosses into `std::io`: the same
    /// as on the host ([`ChannelErrorKind::io_kind`]).
    pub fn io_error_kind(&self) -> io::ErrorKind {
        self.error_kind().io_kind()
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str(
                "channel end not found (unknown or expired channel, wrong key, or wrong direction)",
            ),
            Self::AlreadyAttached => f.write_str("channel end already attached by someone else"),
            Self::Closed => f.write_str("channel closed: the reader is gone"),
            Self::Aborted(reason) => write!(f, "channel aborted by the writer: {reason}"),
            Self::TimedOut => f.write_str("channel expired: the other end was never attached in time"),
            Self::LimitExceeded(limit) => write!(f, "channel limit exceeded: {limit}"),
            Self::Finished => f.write_str("channel end already finished (closed or aborted)"),
            Self::InvalidArgument(why) => write!(f, "invalid channel argument: {why}"),
        }
    }
}

impl std::error::Error for ChannelError {}

/// Maps each case to a fitting [`io::ErrorKind`] (see [`ChannelError::io_error_kind`]) and
/// keeps the `ChannelError` as the inner error, so callers can get it back with
/// [`ChannelError::from_io_error`] or `io::Error::into_inner` + `downcast`.
impl From<ChannelError> for io::Error {
    fn from(error: ChannelError) -> Self {
        io::Error::new(error.io_error_kind(), error)
    }
}

impl From<wit_channels::ChannelError> for ChannelError {
    fn from(error: wit_channels::ChannelError) -> Self {
        use wit_channels::ChannelError as W;
        match error {
            W::NotFound => Self::NotFound,
            W::AlreadyAttached => Self::AlreadyAttached,
            W::Closed => Self::Closed,
            W::Aborted(reason) => Self::Aborted(reason),
            W::TimedOut => Self::TimedOut,
            W::LimitExceeded(limit) => Self::LimitExceeded(limit),
            W::Finished => Self::Finished,
            W::InvalidArgument(why) => Self::InvalidArgument(why),
        }
    }
}

/// Why a call to another function failed. Mirrors the WIT `call-error` variant, plus one
/// case ([`CallError::InvalidOutput`]) for a result this SDK could not decode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallError {
    /// No function is registered under this id. The payload is the host's message.
    NotFound(String),
    /// The payload is not valid JSON, the function id is malformed, or another argument is
    /// unacceptable; the payload says which. Also used when this SDK cannot serialize the
    /// payload you passed.
    InvalidInput(String),
    /// The function ran and returned an error (its message), or it trapped (the trap
    /// message, with the guest backtrace where available).
    Failed(String),
    /// The call did not finish before its deadline.
    TimedOut,
    /// A host limit was reached (for example the call depth); the payload says which.
    LimitExceeded(String),
    /// The function's component could not be loaded or instantiated, or the host is at
    /// capacity (retrying later may succeed).
    Unavailable(String),
    /// Not a WIT case: the call succeeded, but its result JSON could not be parsed or
    /// decoded into the type you asked for (for example by [`trigger_as`](crate::trigger_as)).
    InvalidOutput(String),
}

impl CallError {
    /// The stable case name: the WIT names `"not-found"`, `"invalid-input"`, `"failed"`,
    /// `"timed-out"`, `"limit-exceeded"`, `"unavailable"`, plus `"invalid-output"` for
    /// [`CallError::InvalidOutput`].
    pub fn kind(&self) -> &'static str {
        match self.error_kind() {
            Some(kind) => kind.wit_name(),
            None => "invalid-output",
        }
    }

    /// This error's case of the WIT `call-error` variant, from the vocabulary shared with
    /// the host; `None` for [`CallError::InvalidOutput`], which is the SDK's own.
    pub fn error_kind(&self) -> Option<CallErrorKind> {
        Some(match self {
            Self::NotFound(_) => CallErrorKind::NotFound,
            Self::InvalidInput(_) => CallErrorKind::InvalidInput,
            Self::Failed(_) => CallErrorKind::Failed,
            Self::TimedOut => CallErrorKind::TimedOut,
            Self::LimitExceeded(_) => CallErrorKind::LimitExceeded,
            Self::Unavailable(_) => CallErrorKind::Unavailable,
            Self::InvalidOutput(_) => return None,
        })
    }

    /// The message carried by the case, `None` for [`CallError::TimedOut`].
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::NotFound(s)
            | Self::InvalidInput(s)
            | Self::Failed(s)
            | Self::LimitExceeded(s)
            | Self::Unavailable(s)
            | Self::InvalidOutput(s) => Some(s),
            Self::TimedOut => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(msg) => write!(f, "function not found: {msg}"),
            Self::InvalidInput(msg) => write!(f, "invalid call input: {msg}"),
            Self::Failed(msg) => write!(f, "function failed: {msg}"),
            Self::TimedOut => f.write_str("call timed out"),
            Self::LimitExceeded(msg) => write!(f, "call limit exceeded: {msg}"),
            Self::Unavailable(msg) => write!(f, "function unavailable: {msg}"),
            Self::InvalidOutput(msg) => write!(f, "could not decode the call result: {msg}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<wit_functions::CallError> for CallError {
    fn from(error: wit_functions::CallError) -> Self {
        use wit_functions::CallError as W;
        match error {
            W::NotFound(msg) => Self::NotFound(msg),
            W::InvalidInput(msg) => Self::InvalidInput(msg),
            W::Failed(msg) => Self::Failed(msg),
            W::TimedOut => Self::TimedOut,
            W::LimitExceeded(msg) => Self::LimitExceeded(msg),
            W::Unavailable(msg) => Self::Unavailable(msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_error_kinds_are_the_wit_case_names() {
        let cases = [
            (ChannelError::NotFound, "not-found"),
            (ChannelError::AlreadyAttached, "already-attached"),
            (ChannelError::Closed, "closed"),
            (ChannelError::Aborted("x".into()), "aborted"),
            (ChannelError::TimedOut, "timed-out"),
            (ChannelError::LimitExceeded("x".into()), "limit-exceeded"),
            (ChannelError::Finished, "finished"),
            (ChannelError::InvalidArgument("x".into()), "invalid-argument"),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind);
        }
    }

    #[test]
    fn io_error_keeps_the_channel_error_inside() {
        let io_err: io::Error = ChannelError::Aborted("disk on fire".into()).into();
        assert_eq!(io_err.kind(), io::ErrorKind::ConnectionAborted);
        assert_eq!(ChannelError::from_io_error(&io_err), Some(&ChannelError::Aborted("disk on fire".into())));
        let inner = io_err.into_inner().map(|e| e.downcast::<ChannelError>());
        assert!(matches!(inner, Some(Ok(e)) if *e == ChannelError::Aborted("disk on fire".into())));

        let closed: io::Error = ChannelError::Closed.into();
        assert_eq!(closed.kind(), io::ErrorKind::BrokenPipe);
        let timed_out: io::Error = ChannelError::TimedOut.into();
        assert_eq!(timed_out.kind(), io::ErrorKind::TimedOut);
        let not_found: io::Error = ChannelError::NotFound.into();
        assert_eq!(not_found.kind(), io::ErrorKind::NotFound);
        assert_eq!(ChannelError::from_io_error(&io::Error::other("plain")), None);
    }

    #[test]
    fn call_error_kinds_and_details() {
        assert_eq!(CallError::TimedOut.kind(), "timed-out");
        assert_eq!(CallError::TimedOut.detail(), None);
        assert_eq!(CallError::Failed("boom".into()).kind(), "failed");
        assert_eq!(CallError::Failed("boom".into()).detail(), Some("boom"));
        assert_eq!(CallError::NotFound("x".into()).kind(), "not-found");
        assert_eq!(CallError::InvalidInput("x".into()).kind(), "invalid-input");
        assert_eq!(CallError::LimitExceeded("x".into()).kind(), "limit-exceeded");
        assert_eq!(CallError::Unavailable("x".into()).kind(), "unavailable");
        assert_eq!(CallError::InvalidOutput("x".into()).kind(), "invalid-output");
    }
}
