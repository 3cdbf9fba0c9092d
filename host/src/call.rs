//! Running one call: a fresh store with the function's limits and capabilities, the
//! deadline, and what failure means for the function's channels.
//!
//! Every call — from the embedding API, the CLI, or a guest's `trigger`/`spawn` — is
//! checked first ([`PreparedCall::new`]: the payload, the call depth, the tree's and the
//! function's share of running calls; the host checks the id before) and then runs in
//! its own [`Store`], in the task that awaits [`PreparedCall::call`] (`spawn` and
//! `trigger-void` spawn that future on a task of its own). A trap poisons a store, so
//! stores are never reused.
//!
//! # Deadlines
//!
//! A call's deadline is the earlier of its own timeout and its caller's deadline, so a
//! chain of calls can never outlive the budget of the call that started it. Guest code
//! spinning in wasm is stopped by epoch interruption; a guest blocked in a host call (for
//! example waiting on a full channel) is stopped by a timeout around the whole call.
//! Loading the component and waiting for an instance slot (`admission.rs`) count against
//! the deadline too.
//!
//! # Call trees
//!
//! A call from outside starts a tree; the calls it makes join it. The tree shares one
//! channel [`Budget`](rill_broker::Budget) and one depth limit, both taken from the root
//! function's limits, so a tree cannot escape its limits by delegating to other
//! functions.
//!
//! # Failure and channels
//!
//! When a call fails (an error, a trap, a timeout, a limit), the reason is recorded with
//! [`RillCtx::fail`](crate::RillCtx::fail) before its store is dropped. Every writer the
//! function held and had not closed is then aborted with that reason, so its readers see
//! why, after the data that was already buffered — never a clean end.
//!
//! # Panics in the host
//!
//! A bug in the host must fail one call, not the process or the caller's task. There are
//! three places a panic can surface, and each is turned into that call's
//! [`CallError::Trapped`]: [`PreparedCall::call`] catches a panic while the call runs in
//! the caller's task; waiting on a spawned call (`pending-call.wait`) turns a task that
//! panicked into the same error; and the call's [`CancelGuard`], dropped while unwinding,
//! records [`HOST_PANICKED`] as the failure so the call's writers abort saying so.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rill_broker::{Broker, FailureCause};
use wasmtime::component::{Linker, ResourceTable, ResourceTableError};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use crate::admission::{Admission, FunctionCalls};
use crate::cache::ComponentCache;
use crate::error::{CallError, error_chain};
use crate::function::FunctionEntry;
use crate::limits::{FUEL_YIELD_INTERVAL, Limits};
use crate::sandbox::{MemoryLimiter, wasi_ctx};
use crate::state::{CallScope, CallState, Dispatch, RillCtx, RunningCall};

/// What running a call needs from its host: made once per host, shared by every call.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    /// WASI preview 2 and rill's imports ([`call_linker`](crate::imports::call_linker)).
    pub(crate) linker: Linker<CallState>,
    pub(crate) broker: Broker,
    /// Whether the engine meters fuel (some function has a fuel limit).
    pub(crate) fuel_metering: bool,
    /// Compiled components on disk, if [`HostConfig::cache_dir`](crate::HostConfig::cache_dir)
    /// is set.
    pub(crate) cache: Option<Arc<ComponentCache>>,
    /// The gate in front of the instance pool; `None` without a pool.
    pub(crate) admission: Option<Admission>,
}

/// A call that passed every check that needs no guest.
pub(crate) struct PreparedCall {
    runtime: Arc<Runtime>,
    /// How the guest's own calls reach other functions.
    dispatch: Arc<dyn Dispatch>,
    function: Arc<FunctionEntry>,
    payload: String,
    scope: CallScope,
    timeout: Duration,
    _running: RunningCall,
    _function_calls: FunctionCalls,
}

impl PreparedCall {
    /// Check a call of `function` (registered as `function_id`, already validated) made
    /// from outside (`caller: None`) or by the call in `caller`, and work out its
    /// deadline and tree.
    ///
    /// # Errors
    ///
    /// [`CallError::InvalidInput`] for a payload over the function's size or depth
    /// limits, [`CallError::LimitExceeded`] for the call depth, the tree's running calls
    /// or the function's running calls.
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        dispatch: Arc<dyn Dispatch>,
        function: Arc<FunctionEntry>,
        function_id: &str,
        payload: String,
        caller: Option<&CallScope>,
        timeout: Option<Duration>,
    ) -> Result<PreparedCall, CallError> {
        let limits = &function.limits;
        limits.check_json("payload", &payload)?;
        let entered = CallScope::enter(
            function_id,
            caller,
            limits,
            &function.budget,
            timeout.unwrap_or(limits.timeout),
        )?;
        let function_calls = FunctionCalls::enter(&function, function_id)?;
        Ok(PreparedCall {
            runtime,
            dispatch,
            payload,
            scope: entered.scope,
            timeout: entered.timeout,
            function,
            _running: entered.running,
            _function_calls: function_calls,
        })
    }

    /// Run the call in the caller's task and wait for its result. No task is spawned:
    /// handing the call to another task wakes an idle worker thread for every call,
    /// which costs more than a small call itself. Dropping the future cancels the call;
    /// its unclosed writers then abort with [`CANCELLED`].
    pub(crate) async fn call(self) -> Result<String, CallError> {
        let function_id = Arc::clone(&self.scope.function_id);
        AssertUnwindSafe(self.run())
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(CallError::host_panicked(function_id.to_string(), panic.as_ref())))
    }

    async fn run(self) -> Result<String, CallError> {
        let PreparedCall { runtime, dispatch, function, payload, scope, timeout, _running, _function_calls } =
            self;
        let function_id = scope.function_id.to_string();
        let deadline = scope.deadline;
        let limits = &function.limits;
        let unavailable =
            |message: String| CallError::Unavailable { function_id: function_id.clone(), message };
        // Loading counts against the deadline too: a call never outlives its budget.
        let pre = match tokio::time::timeout_at(
            deadline,
            function.slot.ready(&runtime.engine, &runtime.linker, runtime.cache.as_ref()),
        )
        .await
        {
            Err(_elapsed) => return Err(CallError::TimedOut { function_id, timeout }),
            Ok(ready) => ready.map_err(|e| unavailable(error_chain(&e)))?,
        };
        // An instance slot, held until the store (declared after it) is dropped. Waiting
        // for one counts against the deadline, and comes before the granted directories
        // are opened, so a waiting call holds none.
        let _slot = match &runtime.admission {
            Some(gate) => Some(gate.admit(&function_id, deadline, timeout).await?),
            None => None,
        };
        let wasi = wasi_ctx(&scope.function_id, limits, &function.capabilities).map_err(unavailable)?;

        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_handles);
        let failure = scope.failure.clone();
        let limiter = MemoryLimiter::new(limits.max_memory_bytes);
        let rill = RillCtx::new(runtime.broker.clone(), dispatch, scope);
        let mut store = Store::new(&runtime.engine, CallState { wasi, table, rill, limiter });
        store.limiter(|state| &mut state.limiter);
        store.set_hostcall_fuel(limits.max_hostcall_bytes);
        // Every epoch tick, a guest running wasm code yields its thread (so one spinning
        // guest cannot stall the calls sharing it) and is interrupted once its deadline
        // has passed. Waiting in a host call is covered by the timeout below. The yield is
        // tokio's own, which lets the worker poll its timers and I/O before resuming the
        // guest: a plain wake-and-return-pending does not, and spinning guests on every
        // worker then delayed a 100 ms timer by half a second.
        let wall_deadline = deadline.into_std();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if std::time::Instant::now() >= wall_deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });
        if runtime.fuel_metering {
            let configured = store
                .set_fuel(limits.fuel.unwrap_or(u64::MAX))
                .and_then(|()| store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL)));
            configured.map_err(|e| unavailable(format!("cannot meter fuel: {e}")))?;
        }

        // Dropped before the store: if this future is dropped mid-call (or the host
        // panics), the call's writers abort saying so.
        let cancelled = CancelGuard(Some(failure.clone()));
        let outcome = tokio::time::timeout_at(deadline, async {
            let instance = pre.instantiate_async(&mut store).await.map_err(|e| (Stage::Instantiate, e))?;
            instance.call_handle(&mut store, &function_id, &payload).await.map_err(|e| (Stage::Call, e))
        })
        .await;

        let result = match outcome {
            Err(_elapsed) => Err(CallError::TimedOut { function_id, timeout }),
            Ok(Err((stage, err))) => {
                let refused = store.data().limiter.refused();
                match (stage, classify(err, function_id, timeout, limits, refused)) {
                    (Stage::Instantiate, CallError::Trapped { function_id, message }) => {
                        Err(CallError::Unavailable {
                            function_id,
                            message: format!("cannot instantiate: {message}"),
                        })
                    }
                    (_, err) => Err(err),
                }
            }
            Ok(Ok(Err(message))) => Err(CallError::Failed { function_id, message }),
            Ok(Ok(Ok(json))) => limits.check_json("result", &json).map(|()| json).map_err(|err| match err {
                CallError::InvalidInput(message) => CallError::Failed { function_id, message },
                other => other,
            }),
        };
        if let Err(err) = &result {
            // Record why before the store (and every writer in it) is dropped.
            store.data_mut().rill.fail(&err.to_string());
        }
        cancelled.disarm();
        drop(store);
        result
    }
}

/// Why the writers of a call whose future was dropped before it finished abort.
const CANCELLED: &str = "the call was cancelled: its caller stopped waiting for it";

/// Records [`CANCELLED`] as a call's failure unless disarmed when the call finishes.
struct CancelGuard(Option<FailureCause>);

impl CancelGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(failure) = self.0.take() {
            failure.set(if std::thread::panicking() { HOST_PANICKED } else { CANCELLED });
        }
    }
}

/// Why the writers of a call abort when the host panicked while running it.
const HOST_PANICKED: &str = "the host failed while running the call (a bug in the host)";

/// Where a call failed.
#[derive(Clone, Copy)]
enum Stage {
    Instantiate,
    Call,
}

/// Name what stopped a guest.
fn classify(
    err: wasmtime::Error,
    function_id: String,
    timeout: Duration,
    limits: &Limits,
    refused: bool,
) -> CallError {
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => return CallError::TimedOut { function_id, timeout },
        Some(Trap::OutOfFuel) => {
            return CallError::OutOfFuel { function_id, fuel: limits.fuel.unwrap_or(u64::MAX) };
        }
        _ => {}
    }
    if let Some(ResourceTableError::Full) = err.downcast_ref::<ResourceTableError>() {
        return CallError::LimitExceeded(format!(
            "resource handles: a call may hold at most {} channel ends and pending calls",
            limits.max_handles
        ));
    }
    if is_hostcall_fuel_exhausted(&err) {
        return CallError::LimitExceeded(format!(
            "bytes passed to the host in one call: at most {} (split large writes)",
            limits.max_hostcall_bytes
        ));
    }
    // The error and its causes, which include the guest's wasm backtrace for a trap;
    // never `{:?}`, which adds the host's own stack when RUST_BACKTRACE is set.
    let message = format!("{err:#}");
    if refused {
        return CallError::MemoryLimitExceeded { function_id, max_bytes: limits.max_memory_bytes, message };
    }
    CallError::Trapped { function_id, message }
}

/// Whether `err` is wasmtime refusing to copy more than the store's hostcall fuel
/// ([`Limits::max_hostcall_bytes`]) from a guest in one host call.
///
/// wasmtime reports this with a private unit struct, `HostcallFuelExhausted`, so it
/// cannot be downcast to. Its derived `Debug` is its type name: checking that names the
/// type rather than its prose, which wasmtime is free to reword. The limit's
/// obeyed/violated tests (`tests/all/hostile.rs`) fail if wasmtime renames it.
fn is_hostcall_fuel_exhausted(err: &wasmtime::Error) -> bool {
    format!("{:?}", err.root_cause()) == "HostcallFuelExhausted"
}
