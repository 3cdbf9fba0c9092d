//! The one error type of channel operations.

use rill_protocol::ChannelErrorKind;

/// Why a channel operation failed.
///
/// The variants mirror the WIT `channel-error` variant one to one, so every transport
/// (the wasm host, the embedding API, a future WebSocket endpoint) reports the same
/// outcomes. A trap is never a `ChannelError`: traps belong to the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// No such channel end: an unknown or expired channel id, a wrong key, or a ref whose
    /// direction does not match the operation. One answer for all of these, so a failed
    /// attempt tells a guesser nothing.
    #[error("no such channel end (unknown or expired channel, wrong key, or wrong direction)")]
    NotFound,
    /// The end was already attached. Each end attaches exactly once; a second attach is an
    /// error, never an empty stream.
    #[error("this channel end is already attached; each end can be opened once")]
    AlreadyAttached,
    /// The reader is gone, so nothing written now can be delivered.
    #[error("the reader is gone; nothing more can be delivered on this channel")]
    Closed,
    /// The writer failed instead of closing. Carries the reason: the writer's own abort
    /// reason, "writer dropped without close", or why its function failed.
    #[error("the writer failed: {0}")]
    Aborted(String),
    /// The other end was never attached within the attach deadline, so the channel expired.
    #[error("the other end was never attached before the deadline; the channel expired")]
    TimedOut,
    /// A limit was reached.
    #[error("limit exceeded: {limit} is at most {max}")]
    LimitExceeded {
        /// What is limited, in words (for example "text message bytes").
        limit: &'static str,
        /// The limit's value.
        max: u64,
    },
    /// This end already finished: it was closed or aborted, or (for a reader) the stream
    /// already ended.
    #[error("this channel end already finished (it was closed or aborted)")]
    Finished,
    /// An argument was not acceptable; the message says which and why.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ChannelError {
    /// This error's case of the WIT `channel-error` variant.
    pub fn error_kind(&self) -> ChannelErrorKind {
        match self {
            ChannelError::NotFound => ChannelErrorKind::NotFound,
            ChannelError::AlreadyAttached => ChannelErrorKind::AlreadyAttached,
            ChannelError::Closed => ChannelErrorKind::Closed,
            ChannelError::Aborted(_) => ChannelErrorKind::Aborted,
            ChannelError::TimedOut => ChannelErrorKind::TimedOut,
            ChannelError::LimitExceeded { .. } => ChannelErrorKind::LimitExceeded,
            ChannelError::Finished => ChannelErrorKind::Finished,
            ChannelError::InvalidArgument(_) => ChannelErrorKind::InvalidArgument,
        }
    }

    /// The stable name of this error's kind, as spelled in the WIT contract
    /// (`"not-found"`, `"already-attached"`, …). Useful in logs and test assertions.
    pub fn kind(&self) -> &'static str {
        self.error_kind().wit_name()
    }
}

/// Each case becomes the [`std::io::ErrorKind`] that
/// [`ChannelErrorKind::io_kind`] names (the same in every SDK), with the `ChannelError`
/// kept as the inner error.
impl From<ChannelError> for std::io::Error {
    fn from(err: ChannelError) -> Self {
        std::io::Error::new(err.error_kind().io_kind(), err)
    }
}
