//! `rill:host/functions`: guests calling other functions.

use std::time::Duration;

use tokio::task::JoinHandle;
use wasmtime::component::Resource;

use crate::bindings::functions as wit;
use crate::call::{Invocation, finish};
use crate::{CallError, CallOptions};

/// The resource behind a guest's `pending-call`: the task running the call, until
/// someone waits for it. Dropping it detaches the task, which still ends by its deadline.
pub struct PendingCall {
    function_id: String,
    task: Option<JoinHandle<Result<String, CallError>>>,
}

type WitResult<T> = wasmtime::Result<Result<T, wit::CallError>>;

pub(crate) fn to_wit_error(err: CallError) -> wit::CallError {
    match err {
        CallError::NotFound(id) => wit::CallError::NotFound(id),
        CallError::InvalidInput(why) => wit::CallError::InvalidInput(why),
        CallError::TimedOut { .. } => wit::CallError::TimedOut,
        CallError::LimitExceeded(why) => wit::CallError::LimitExceeded(why),
        other @ CallError::Unavailable { .. } => wit::CallError::Unavailable(other.to_string()),
        other @ (CallError::MemoryLimitExceeded { .. } | CallError::OutOfFuel { .. }) => {
            wit::CallError::LimitExceeded(other.to_string())
        }
        other => wit::CallError::Failed(other.to_string()),
    }
}

/// The guest's `call-options` as the host's [`CallOptions`] (one type for both sides).
fn timeout(options: &wit::CallOptions) -> Option<Duration> {
    CallOptions::from_timeout_ms(options.timeout_ms).timeout
}

impl wit::Host for Invocation {
    async fn trigger(
        &mut self,
        function_id: String,
        payload: String,
        options: wit::CallOptions,
    ) -> WitResult<String> {
        let prepared = match self.host.prepare(&function_id, payload, Some(&self.scope), timeout(&options)) {
            Ok(prepared) => prepared,
            Err(err) => return Ok(Err(to_wit_error(err))),
        };
        Ok(prepared.call().await.map_err(to_wit_error))
    }

    async fn spawn(
        &mut self,
        function_id: String,
        payload: String,
        options: wit::CallOptions,
    ) -> WitResult<Resource<PendingCall>> {
        match self.host.prepare(&function_id, payload, Some(&self.scope), timeout(&options)) {
            Ok(prepared) => {
                let pending = PendingCall { function_id, task: Some(prepared.start()) };
                Ok(Ok(self.table.push(pending)?))
            }
            Err(err) => Ok(Err(to_wit_error(err))),
        }
    }

    async fn trigger_void(
        &mut self,
        function_id: String,
        payload: String,
        options: wit::CallOptions,
    ) -> WitResult<()> {
        match self.host.prepare(&function_id, payload, Some(&self.scope), timeout(&options)) {
            Ok(prepared) => {
                tokio::spawn(async move {
                    if let Err(err) = prepared.call().await {
                        tracing::debug!(function = %crate::inert(&function_id), error = %err, "void call failed");
                    }
                });
                Ok(Ok(()))
            }
            Err(err) => Ok(Err(to_wit_error(err))),
        }
    }
}

impl wit::HostPendingCall for Invocation {
    async fn wait(&mut self, call: Resource<PendingCall>) -> WitResult<String> {
        let pending = self.table.get_mut(&call)?;
        let Some(task) = pending.task.take() else {
            return Ok(Err(wit::CallError::InvalidInput(
                "this call's result was already taken by an earlier wait".into(),
            )));
        };
        let result = finish(pending.function_id.clone(), task).await;
        Ok(result.map_err(to_wit_error))
    }

    async fn drop(&mut self, call: Resource<PendingCall>) -> wasmtime::Result<()> {
        self.table.delete(call)?;
        Ok(())
    }
}
