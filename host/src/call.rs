//! Running one call: validation, a fresh store, the deadline, and what failure means for
//! the function's channels.
//!
//! Every call — from the embedding API, the CLI, or a guest's `trigger`/`spawn` — goes
//! through [`HostInner::prepare`] (checks that need no guest: the id, the payload, the
//! call depth) and then [`PreparedCall::start`], which runs the call on its own tokio
//! task in its own [`Store`]. A trap poisons a store, so stores are never reused.
//!
//! # Deadlines
//!
//! A call's deadline is the earlier of its own timeout and its caller's deadline, so a
//! chain of calls can never outlive the budget of the call that started it. Guest code
//! spinning in wasm is stopped by epoch interruption; a guest blocked in a host call (for
//! example waiting on a full channel) is stopped by a timeout around the whole call.
//!
//! # Failure and channels
//!
//! When a call fails (an error, a trap, a timeout), the reason is recorded in the call's
//! [`FailureCause`] before its store is dropped. Every writer the function held and had
//! not closed is then aborted with that reason, so its readers see why, after the data
//! that was already buffered — never a clean end.

use std::sync::Arc;
use std::time::Duration;

use rill_broker::FailureCause;
use serde::de::IgnoredAny;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::component::ComponentSlot;
use crate::host::HostInner;
use crate::{CallError, engine, stdio};

/// Longest function id accepted (128 bytes). Ids are checked before lookup and before
/// they reach a log line.
pub const MAX_FUNCTION_ID_BYTES: usize = 128;

/// The state of one running call: the store's data.
pub(crate) struct Invocation {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) host: Arc<HostInner>,
    pub(crate) scope: CallScope,
}

impl WasiView for Invocation {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// What a call inherits from its caller and hands to the calls it makes.
#[derive(Clone)]
pub(crate) struct CallScope {
    pub(crate) function_id: Arc<str>,
    /// 0 for a call from outside; a guest's trigger is one deeper than its caller.
    pub(crate) depth: u32,
    pub(crate) deadline: Instant,
    /// Why this call failed, once it has; shared with every writer it opens.
    pub(crate) failure: FailureCause,
}

/// A call that passed every check that needs no guest.
pub(crate) struct PreparedCall {
    host: Arc<HostInner>,
    slot: Arc<ComponentSlot>,
    payload: String,
    scope: CallScope,
    timeout: Duration,
}

impl HostInner {
    /// Check a call and work out its deadline.
    pub(crate) fn prepare(
        self: &Arc<Self>,
        function_id: &str,
        payload: String,
        caller: Option<&CallScope>,
        timeout: Option<Duration>,
    ) -> Result<PreparedCall, CallError> {
        if function_id.is_empty() || function_id.len() > MAX_FUNCTION_ID_BYTES {
            return Err(CallError::InvalidInput(format!(
                "a function id must be 1 to {MAX_FUNCTION_ID_BYTES} bytes long, not {}",
                function_id.len()
            )));
        }
        let (slot, own_timeout) =
            self.function(function_id).ok_or_else(|| CallError::NotFound(function_id.to_owned()))?;
        let max_payload = self.config.max_payload_bytes;
        if payload.len() > max_payload {
            return Err(CallError::LimitExceeded(format!(
                "the payload is {} bytes; payloads are at most {max_payload} bytes (stream large data through a channel)",
                payload.len()
            )));
        }
        if let Err(err) = serde_json::from_str::<IgnoredAny>(&payload) {
            return Err(CallError::InvalidInput(format!("the payload is not valid JSON: {err}")));
        }
        let depth = caller.map_or(0, |c| c.depth + 1);
        if depth > self.config.max_call_depth {
            return Err(CallError::LimitExceeded(format!(
                "call depth: calls may nest at most {} deep",
                self.config.max_call_depth
            )));
        }
        let timeout = timeout.or(own_timeout).unwrap_or(self.config.default_timeout);
        let own_deadline = Instant::now().checked_add(timeout).unwrap_or_else(far_future);
        let deadline = caller.map_or(own_deadline, |c| c.deadline.min(own_deadline));
        Ok(PreparedCall {
            host: Arc::clone(self),
            slot,
            payload,
            scope: CallScope {
                function_id: function_id.into(),
                depth,
                deadline,
                failure: FailureCause::new(),
            },
            timeout: deadline.saturating_duration_since(Instant::now()),
        })
    }
}

/// A deadline nobody will live to see (`Instant` has no MAX).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

impl PreparedCall {
    /// Run the call on its own task.
    pub(crate) fn start(self) -> JoinHandle<Result<String, CallError>> {
        tokio::spawn(self.run())
    }

    /// Run the call and wait for its result. A panic inside the host while running it is
    /// reported as a trap of this call, not spread to the caller.
    pub(crate) async fn call(self) -> Result<String, CallError> {
        let function_id = self.scope.function_id.to_string();
        self.start().await.unwrap_or_else(|join| {
            Err(CallError::Trapped {
                function_id,
                message: format!("the host task running the call failed: {join}"),
            })
        })
    }

    async fn run(self) -> Result<String, CallError> {
        let PreparedCall { host, slot, payload, scope, timeout } = self;
        let function_id = scope.function_id.to_string();
        let pre = slot.ready(&host.engine, &host.linker).await.map_err(|err| CallError::Unavailable {
            function_id: function_id.clone(),
            message: error_chain(&err),
        })?;
        let (stdout, stderr) = stdio::pair(Arc::clone(&scope.function_id));
        let wasi = WasiCtx::builder()
            .stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let failure = scope.failure.clone();
        let deadline = scope.deadline;
        let mut store = Store::new(
            &host.engine,
            Invocation { wasi, table: ResourceTable::new(), host: Arc::clone(&host), scope },
        );
        store.set_epoch_deadline(engine::ticks_for(timeout));
        store.epoch_deadline_trap();

        let outcome = tokio::time::timeout_at(deadline, async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_handle(&mut store, &function_id, &payload).await
        })
        .await;

        let result = match outcome {
            Err(_elapsed) => Err(CallError::TimedOut { function_id, timeout }),
            Ok(Err(err)) if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) => {
                Err(CallError::TimedOut { function_id, timeout })
            }
            Ok(Err(err)) => Err(CallError::Trapped { function_id, message: format!("{err:?}") }),
            Ok(Ok(Err(message))) => Err(CallError::Failed { function_id, message }),
            Ok(Ok(Ok(json))) => match serde_json::from_str::<IgnoredAny>(&json) {
                Ok(_) => Ok(json),
                Err(err) => Err(CallError::Failed {
                    function_id,
                    message: format!("the function returned a result that is not valid JSON: {err}"),
                }),
            },
        };
        if let Err(err) = &result {
            failure.set(err.to_string());
        }
        // Dropping the store drops every resource the guest still held; unclosed writers
        // abort with `failure`'s reason.
        drop(store);
        result
    }
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
