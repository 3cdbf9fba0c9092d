//! The host's error types.
//!
//! - [`CallError`]: why a call failed. What a caller (the embedding API, a guest's
//!   `trigger`, the CLI) can act on.
//! - [`LoadError`]: why a function's component could not be made ready to run.
//! - [`HostError`]: why a host could not be built.
//! - [`ManifestError`]: why a `rill.toml` could not be used.
//!
//! Channel operations report [`ChannelError`](crate::ChannelError) from the broker.

use std::path::PathBuf;
use std::time::Duration;

use rill_protocol::CallErrorKind;

use crate::rust_guest::BuildError;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No function is registered under this id.
    #[error("no function {0:?} is registered in this host")]
    NotFound(String),
    /// The function id, the payload or another argument is malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The function ran and returned an error.
    #[error("function {function_id:?} returned an error: {message}")]
    Failed {
        /// The function that failed.
        function_id: String,
        /// The function's own error message.
        message: String,
    },
    /// The function trapped: a panic, an `unreachable`, an out-of-bounds access, a failed
    /// allocation, or a host call that had to end it.
    #[error("function {function_id:?} trapped: {message}")]
    Trapped {
        /// The function that trapped.
        function_id: String,
        /// The trap, with the guest backtrace where available.
        message: String,
    },
    /// The call did not finish before its deadline.
    #[error("function {function_id:?} did not finish within {timeout:?}")]
    TimedOut {
        /// The function that ran out of time.
        function_id: String,
        /// The budget it had.
        timeout: Duration,
    },
    /// The function tried to grow its memory past its limit (and then trapped).
    #[error("function {function_id:?} exceeded its memory limit of {max_bytes} bytes: {message}")]
    MemoryLimitExceeded {
        /// The function.
        function_id: String,
        /// Its memory limit.
        max_bytes: usize,
        /// The trap that followed the refused growth.
        message: String,
    },
    /// The function burned all its fuel.
    #[error("function {function_id:?} ran out of fuel ({fuel} units)")]
    OutOfFuel {
        /// The function.
        function_id: String,
        /// The fuel it had.
        fuel: u64,
    },
    /// A limit was reached; the message names it.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The function's component could not be loaded or instantiated, or the host is at
    /// capacity: every instance slot is in use and
    /// [`HostConfig::max_waiting_calls`](crate::HostConfig::max_waiting_calls) calls
    /// already wait for one (retrying later may succeed).
    #[error("function {function_id:?} is unavailable: {message}")]
    Unavailable {
        /// The function that could not be started.
        function_id: String,
        /// Why, with the cause chain.
        message: String,
    },
}

impl CallError {
    /// The kind of this error as a guest's `call-error` names it (one table for the host
    /// and every SDK, [`CallErrorKind`]): a trap is `failed`, the memory and fuel limits
    /// are `limit-exceeded`.
    pub fn error_kind(&self) -> CallErrorKind {
        match self {
            CallError::NotFound(_) => CallErrorKind::NotFound,
            CallError::InvalidInput(_) => CallErrorKind::InvalidInput,
            CallError::Failed { .. } | CallError::Trapped { .. } => CallErrorKind::Failed,
            CallError::TimedOut { .. } => CallErrorKind::TimedOut,
            CallError::MemoryLimitExceeded { .. }
            | CallError::OutOfFuel { .. }
            | CallError::LimitExceeded(_) => CallErrorKind::LimitExceeded,
            CallError::Unavailable { .. } => CallErrorKind::Unavailable,
        }
    }

    /// The stable name of this error's kind, as spelled in the WIT contract
    /// (`"not-found"`, `"failed"`, `"limit-exceeded"`, …). Useful in logs and test
    /// assertions.
    pub fn kind(&self) -> &'static str {
        self.error_kind().wit_name()
    }

    /// A panic in the host while it ran a call, as that call's failure.
    pub(crate) fn host_panicked(function_id: String, panic: &(dyn std::any::Any + Send)) -> CallError {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("no message");
        CallError::Trapped {
            function_id,
            message: format!("the host panicked while running the call: {what}"),
        }
    }
}

/// Why a function's component could not be made ready to run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The Rust guest crate did not build.
    #[error("cannot build the guest crate at {}", path.display())]
    Build {
        /// The crate's directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: BuildError,
    },
    /// The component file could not be read.
    #[error("cannot read the component {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a component this engine can compile.
    #[error("{} is not a WebAssembly component this host can compile", path.display())]
    Compile {
        /// Where the bytes came from.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The component does not fit the `rill:host/function` world: it imports something
    /// the host does not provide, or does not export `handle`.
    #[error("{} does not fit the rill:host/function world", path.display())]
    Link {
        /// Where the component came from.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Why a host could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The manifest could not be read or parsed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A function id was registered twice or is malformed.
    #[error("invalid function id {id:?}: {reason}")]
    FunctionId {
        /// The id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The wasmtime engine could not be configured.
    #[error("cannot configure the WebAssembly engine")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No tokio runtime is running; the host needs one for its tasks and timers.
    #[error("a host must be built inside a tokio runtime (use #[tokio::main] or Runtime::enter)")]
    NoRuntime,
}

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read the manifest {}", path.display())]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid manifest.
    #[error("invalid manifest {}", path.display())]
    Parse {
        /// The manifest's path.
        path: PathBuf,
        /// Where and why parsing failed.
        #[source]
        source: toml::de::Error,
    },
    /// A `limits` table does not fit [`Limits`](crate::Limits).
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
}

/// An error and its causes on one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Box an engine error as a standard error, for `#[source]` fields.
pub(crate) fn boxed(err: wasmtime::Error) -> Box<dyn std::error::Error + Send + Sync> {
    err.into_boxed_dyn_error()
}
