//! Running one call: validation, a fresh store with the function's limits and
//! capabilities, the deadline, and what failure means for the function's channels.
//!
//! Every call — from the embedding API, the CLI, or a guest's `trigger`/`spawn` — goes
//! through [`HostInner::prepare`] (checks that need no guest: the id, the payload, the
//! call depth) and then runs in its own [`Store`]: in the awaiting task
//! ([`PreparedCall::call`], for `trigger`) or on a task of its own
//! ([`PreparedCall::start`], for `spawn` and `trigger-void`). A trap poisons a store, so
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
//! channel [`Budget`] and one depth limit, both taken from the root function's limits, so
//! a tree cannot escape its limits by delegating to other functions.
//!
//! # Failure and channels
//!
//! When a call fails (an error, a trap, a timeout, a limit), the reason is recorded in
//! the call's [`FailureCause`] before its store is dropped. Every writer the function held
//! and had not closed is then aborted with that reason, so its readers see why, after the
//! data that was already buffered — never a clean end.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::FutureExt;
use rill_broker::{Budget, ChannelOwner, FailureCause};
use rill_protocol::FunctionId;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::admission::FunctionCalls;
use crate::host::{Function, HostInner};
use crate::limits::{FUEL_YIELD_INTERVAL, Limits, MAX_TABLE_ELEMENTS};
use crate::{CallError, Capabilities, stdio};

/// The state of one running call: the store's data.
pub(crate) struct Invocation {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) host: Arc<HostInner>,
    pub(crate) scope: CallScope,
    limiter: MemoryLimiter,
    /// The channels this call created. If the call fails, the ends of these that nobody
    /// attached are finished with the failure (see [`ChannelOwner::fail_unattached`]),
    /// so a failed call's unused channels cost nothing after it and whoever holds the
    /// other end learns at once. Bounded by the tree's channel budget.
    pub(crate) created: Vec<ChannelOwner>,
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
    pub(crate) tree: Arc<Tree>,
}

/// What every call of one tree shares.
pub(crate) struct Tree {
    /// The channels the tree may hold: the root function's budget, shared by every tree
    /// that function starts, so flooding channels exhausts only its own share.
    pub(crate) budget: Budget,
    max_depth: u32,
    /// Calls of this tree running (or about to run) right now.
    running: AtomicUsize,
    max_running: usize,
}

/// One running call counted against its tree; dropping it gives the place back.
struct RunningCall(Arc<Tree>);

impl RunningCall {
    fn enter(tree: &Arc<Tree>) -> Result<RunningCall, CallError> {
        let entered = tree
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < tree.max_running).then_some(n + 1))
            .is_ok();
        if entered {
            Ok(RunningCall(Arc::clone(tree)))
        } else {
            Err(CallError::LimitExceeded(format!(
                "calls running at once in one call tree: at most {}",
                tree.max_running
            )))
        }
    }
}

impl Drop for RunningCall {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Grows memories and tables up to the call's limits, and remembers a refusal so that the
/// trap that usually follows is reported as the memory limit it is.
struct MemoryLimiter {
    max_memory_bytes: usize,
    refused: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_memory_bytes;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// A call that passed every check that needs no guest.
pub(crate) struct PreparedCall {
    host: Arc<HostInner>,
    function: Arc<Function>,
    payload: String,
    scope: CallScope,
    timeout: Duration,
    _running: RunningCall,
    _function_calls: FunctionCalls,
}

impl HostInner {
    /// Check a call and work out its deadline and tree.
    pub(crate) fn prepare(
        self: &Arc<Self>,
        function_id: &str,
        payload: String,
        caller: Option<&CallScope>,
        timeout: Option<Duration>,
    ) -> Result<PreparedCall, CallError> {
        FunctionId::parse(function_id).map_err(|err| CallError::InvalidInput(err.to_string()))?;
        let function =
            self.function(function_id).ok_or_else(|| CallError::NotFound(function_id.to_owned()))?;
        let limits = &function.limits;
        limits.check_json("payload", &payload)?;
        let (depth, tree) = match caller {
            None => (
                0,
                Arc::new(Tree {
                    budget: function.budget.clone(),
                    max_depth: limits.max_call_depth,
                    running: AtomicUsize::new(0),
                    max_running: limits.max_tree_calls,
                }),
            ),
            Some(caller) => (caller.depth + 1, Arc::clone(&caller.tree)),
        };
        if depth > tree.max_depth {
            return Err(CallError::LimitExceeded(format!(
                "call depth: calls may nest at most {} deep",
                tree.max_depth
            )));
        }
        let running = RunningCall::enter(&tree)?;
        let function_calls = FunctionCalls::enter(&function, function_id)?;
        let timeout = timeout.unwrap_or(limits.timeout);
        let own_deadline = Instant::now().checked_add(timeout).unwrap_or_else(far_future);
        let deadline = caller.map_or(own_deadline, |c| c.deadline.min(own_deadline));
        Ok(PreparedCall {
            host: Arc::clone(self),
            payload,
            scope: CallScope {
                function_id: function_id.into(),
                depth,
                deadline,
                failure: FailureCause::new(),
                tree,
            },
            timeout: deadline.saturating_duration_since(Instant::now()),
            function,
            _running: running,
            _function_calls: function_calls,
        })
    }
}

/// Wait for the task running a call of `function_id`. A panic inside the host while
/// running it is reported as a trap of this call, not spread to whoever waits.
pub(crate) async fn finish(
    function_id: String,
    task: JoinHandle<Result<String, CallError>>,
) -> Result<String, CallError> {
    task.await.unwrap_or_else(|join| match join.try_into_panic() {
        Ok(panic) => Err(host_panicked(function_id, panic.as_ref())),
        Err(join) => Err(CallError::Trapped {
            function_id,
            message: format!("the host task running the call failed: {join}"),
        }),
    })
}

/// A panic in the host while it ran a call, as that call's failure.
fn host_panicked(function_id: String, panic: &(dyn Any + Send)) -> CallError {
    let what = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    CallError::Trapped { function_id, message: format!("the host panicked while running the call: {what}") }
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

    /// Run the call in the caller's task and wait for its result. No task is spawned:
    /// handing the call to another task wakes an idle worker thread for every call,
    /// which costs more than a small call itself. Dropping the future cancels the call;
    /// its unclosed writers then abort with [`CANCELLED`].
    pub(crate) async fn call(self) -> Result<String, CallError> {
        let function_id = Arc::clone(&self.scope.function_id);
        AssertUnwindSafe(self.run())
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(host_panicked(function_id.to_string(), panic.as_ref())))
    }

    async fn run(self) -> Result<String, CallError> {
        let PreparedCall { host, function, payload, scope, timeout, _running, _function_calls } = self;
        let function_id = scope.function_id.to_string();
        let deadline = scope.deadline;
        let limits = &function.limits;
        let unavailable =
            |message: String| CallError::Unavailable { function_id: function_id.clone(), message };
        // Loading counts against the deadline too: a call never outlives its budget.
        let pre = match tokio::time::timeout_at(
            deadline,
            function.slot.ready(&host.engine, &host.linker, host.cache.as_ref()),
        )
        .await
        {
            Err(_elapsed) => return Err(CallError::TimedOut { function_id, timeout }),
            Ok(ready) => ready.map_err(|e| unavailable(error_chain(&e)))?,
        };
        // An instance slot, held until the store (declared after it) is dropped. Waiting
        // for one counts against the deadline, and comes before the granted directories
        // are opened, so a waiting call holds none.
        let _slot = match &host.admission {
            Some(gate) => Some(gate.admit(&function_id, deadline, timeout).await?),
            None => None,
        };
        let wasi = wasi_ctx(&scope.function_id, limits, &function.capabilities).map_err(unavailable)?;

        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_handles);
        let failure = scope.failure.clone();
        let limiter = MemoryLimiter { max_memory_bytes: limits.max_memory_bytes, refused: false };
        let state = Invocation { wasi, table, host: Arc::clone(&host), scope, limiter, created: Vec::new() };
        let mut store = Store::new(&host.engine, state);
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
        if host.fuel_metering {
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
                let refused = store.data().limiter.refused;
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
            let reason = err.to_string();
            for channel in &store.data().created {
                channel.fail_unattached(&reason);
            }
            failure.set(reason);
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
    // The error and its causes, which include the guest's wasm backtrace for a trap;
    // never `{:?}`, which adds the host's own stack when RUST_BACKTRACE is set.
    let message = format!("{err:#}");
    if message.contains("fuel allocated for hostcalls has been exhausted") {
        return CallError::LimitExceeded(format!(
            "bytes passed to the host in one call: at most {} (split large writes)",
            limits.max_hostcall_bytes
        ));
    }
    if refused {
        return CallError::MemoryLimitExceeded { function_id, max_bytes: limits.max_memory_bytes, message };
    }
    CallError::Trapped { function_id, message }
}

/// The WASI context of one call: nothing but what the function was granted, and its
/// output turned into log lines.
fn wasi_ctx(function_id: &Arc<str>, limits: &Limits, caps: &Capabilities) -> Result<WasiCtx, String> {
    let (stdout, stderr) = stdio::pair(Arc::clone(function_id), limits.max_output_bytes);
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(stdout).stderr(stderr).allow_ip_name_lookup(false);
    for (key, value) in &caps.env {
        builder.env(key, value);
    }
    for dir in &caps.dirs {
        let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| format!("cannot open the granted directory {}: {e}", dir.host.display()))?;
    }
    if caps.network.is_empty() {
        builder.allow_tcp(false).allow_udp(false);
    } else {
        let grants = caps.network.clone();
        builder.allow_tcp(true).allow_udp(true).socket_addr_check(move |addr, addr_use| {
            let allowed = match addr_use {
                // The implicit bind to an ephemeral local port that precedes a connect or
                // a send; it reaches nothing by itself.
                SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                    addr.ip().is_unspecified() && addr.port() == 0
                }
                SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                    grants.iter().any(|grant| grant.allows(&addr))
                }
                // The allow-list is outbound only: no listening, no accepting.
                SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
            };
            Box::pin(async move { allowed })
        });
    }
    Ok(builder.build())
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
