//! Functions served outside this host, which its guests can call.
//!
//! A guest's `trigger`, `spawn` or `trigger-void` names a function id. When this host
//! does not serve that id, it asks the [`RemoteFunctions`] it was given (if any): the
//! workers connected to `rill serve`, or later other hosts. The call then keeps the
//! caller's deadline, exactly as a local call does.

use std::future::Future;
use std::pin::Pin;

use crate::error::CallError;

/// A call running elsewhere: its JSON result, or why it failed.
pub type RemoteCall = Pin<Box<dyn Future<Output = Result<String, CallError>> + Send>>;

/// Functions served outside this host, which its guests can call. When a guest calls an
/// id this host does not serve, the host asks here; the call then keeps the caller's
/// deadline, exactly as a local call does. Set once per host with
/// [`Host::set_remote`](crate::Host::set_remote).
pub trait RemoteFunctions: Send + Sync + 'static {
    /// Start a call of `function_id` with the JSON text `payload`, or `None` when no one
    /// here serves that id. The host cuts the returned call off at its caller's deadline
    /// (dropping it), so it need not keep a timeout of its own.
    fn call(&self, function_id: &str, payload: String) -> Option<RemoteCall>;
}
