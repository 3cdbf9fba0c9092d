//! `rill:host/functions`: guests calling other functions, through the store's
//! [`Dispatch`](crate::state::Dispatch).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use wasmtime::component::Resource;

use crate::bindings::CallFailure;
use crate::bindings::functions as wit;
use crate::error::CallError;
use crate::state::{CallFuture, PendingCall, RillCtxView};
use crate::stdio::inert;
use rill_protocol::{CallErrorKind, CallOptions};

type WitResult<T> = Result<T, CallFailure>;

/// The guest's view of `err`: the case its [`CallError::error_kind`] names, with the
/// message (a bare reason where the host error is just that).
fn to_wit_error(err: CallError) -> wit::CallError {
    match (err.error_kind(), err) {
        (_, CallError::NotFound(id)) => wit::CallError::NotFound(id),
        (_, CallError::InvalidInput(why)) => wit::CallError::InvalidInput(why),
        (_, CallError::LimitExceeded(why)) => wit::CallError::LimitExceeded(why),
        (CallErrorKind::TimedOut, _) => wit::CallError::TimedOut,
        (CallErrorKind::LimitExceeded, other) => wit::CallError::LimitExceeded(other.to_string()),
        (CallErrorKind::Unavailable, other) => wit::CallError::Unavailable(other.to_string()),
        (_, other) => wit::CallError::Failed(other.to_string()),
    }
}

/// The guest's `call-options` as the host's [`CallOptions`] (one type for both sides).
fn timeout(options: &wit::CallOptions) -> Option<Duration> {
    CallOptions::from_timeout_ms(options.timeout_ms).timeout
}

impl RillCtxView<'_> {
    /// Check a call the guest makes and get the future that runs it.
    fn dispatch(
        &self,
        function_id: &str,
        payload: String,
        options: &wit::CallOptions,
    ) -> Result<CallFuture, CallError> {
        Arc::clone(&self.ctx.dispatch).dispatch(function_id, payload, &self.ctx.scope, timeout(options))
    }
}

impl wit::Host for RillCtxView<'_> {
    fn convert_call_error(&mut self, err: CallFailure) -> wasmtime::Result<wit::CallError> {
        match err {
            CallFailure::Guest(err) => Ok(to_wit_error(err)),
            CallFailure::Trap(trap) => Err(trap),
        }
    }

    async fn trigger(
        &mut self,
        function_id: String,
        payload: String,
        options: wit::CallOptions,
    ) -> WitResult<String> {
        Ok(self.dispatch(&function_id, payload, &options)?.await?)
    }

    fn spawn(
        &mut self,
        function_id: String,
        payload: String,
        options: wit::CallOptions,
    ) -> WitResult<Resource<PendingCall>> {
        let call = self.dispatch(&function_id, payload, &options)?;
        let pending = PendingCall { function_id, task: Some(tokio::spawn(call)) };
        Ok(self.table.push(pending)?)
    }

    fn trigger_void(
        &mut self,
        function_id: String,
        payload: String,
        options: wit::CallOptions,
    ) -> WitResult<()> {
        let call = self.dispatch(&function_id, payload, &options)?;
        tokio::spawn(async move {
            if let Err(err) = call.await {
                tracing::debug!(function = %inert(&function_id), error = %err, "void call failed");
            }
        });
        Ok(())
    }
}

impl wit::HostPendingCall for RillCtxView<'_> {
    async fn wait(&mut self, call: Resource<PendingCall>) -> WitResult<String> {
        let pending = self.table.get_mut(&call)?;
        let Some(task) = pending.task.take() else {
            return Err(CallError::InvalidInput(
                "this call's result was already taken by an earlier wait".into(),
            )
            .into());
        };
        Ok(finish(pending.function_id.clone(), task).await?)
    }

    fn drop(&mut self, call: Resource<PendingCall>) -> wasmtime::Result<()> {
        self.table.delete(call)?;
        Ok(())
    }
}

/// Wait for the task running a call of `function_id`. A panic inside the host while
/// running it is reported as a trap of this call, not spread to whoever waits.
async fn finish(
    function_id: String,
    task: JoinHandle<Result<String, CallError>>,
) -> Result<String, CallError> {
    task.await.unwrap_or_else(|join| match join.try_into_panic() {
        Ok(panic) => Err(CallError::host_panicked(function_id, panic.as_ref())),
        Err(join) => Err(CallError::Trapped {
            function_id,
            message: format!("the host task running the call failed: {join}"),
        }),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The case a guest sees is the one `CallError::error_kind` names, for every variant.
    #[test]
    fn the_guest_sees_the_kind_the_host_names() {
        let id = || "f".to_owned();
        let errors = [
            CallError::NotFound(id()),
            CallError::InvalidInput("x".into()),
            CallError::Failed { function_id: id(), message: "x".into() },
            CallError::Trapped { function_id: id(), message: "x".into() },
            CallError::TimedOut { function_id: id(), timeout: Duration::from_secs(1) },
            CallError::MemoryLimitExceeded { function_id: id(), max_bytes: 1, message: "x".into() },
            CallError::OutOfFuel { function_id: id(), fuel: 1 },
            CallError::LimitExceeded("x".into()),
            CallError::Unavailable { function_id: id(), message: "x".into() },
        ];
        for err in errors {
            let kind = err.kind();
            let case = match to_wit_error(err) {
                wit::CallError::NotFound(_) => "not-found",
                wit::CallError::InvalidInput(_) => "invalid-input",
                wit::CallError::Failed(_) => "failed",
                wit::CallError::TimedOut => "timed-out",
                wit::CallError::LimitExceeded(_) => "limit-exceeded",
                wit::CallError::Unavailable(_) => "unavailable",
            };
            assert_eq!(case, kind);
        }
    }
}
