//! Store state: what a wasmtime [`Store`](wasmtime::Store) running a rill guest holds, and
//! the seam through which a guest's `trigger` reaches other functions.
//!
//! Two layers, the way wasmtime-wasi splits `WasiCtx` from the embedder's store data:
//!
//! - [`RillCtx`] is rill's part of a store: the broker, the call's [`CallScope`] (its
//!   deadline, depth, failure record and call tree) and the channels it created. It is
//!   reached through the [`RillView`] trait, so rill's imports work in **any** store whose
//!   data implements it — rill's own [`CallState`], or an application's own type next to
//!   its own imports (see [`add_to_linker`](crate::add_to_linker) and
//!   [`Host::context`](crate::Host::context)).
//! - [`CallState`] is the store data of a call rill runs itself: WASI, the resource
//!   table, the [`RillCtx`] and the memory limiter.
//!
//! A guest calling another function is the one dependency that points up: the imports
//! need the registry, the engine and the linker that [`Host`](crate::Host) owns. It goes
//! through the [`Dispatch`] trait, owned here and implemented by the host (as spin breaks
//! the same recursion with its outbound-HTTP interceptor), so no module below the host
//! names it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rill_broker::{Broker, Budget, ChannelOwner, FailureCause};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::error::CallError;
use crate::limits::Limits;
use crate::sandbox::MemoryLimiter;

/// rill's part of a store's data: the channels and calls of one guest instance.
///
/// Made by [`Host::context`](crate::Host::context) for a store of the application's own,
/// or by rill for each call it runs. Dropping the store drops every channel end the guest
/// still holds (an unclosed writer then aborts its stream; see `wit/channels.wit`).
pub struct RillCtx {
    pub(crate) broker: Broker,
    pub(crate) dispatch: Arc<dyn Dispatch>,
    pub(crate) scope: CallScope,
    /// The channels this guest created. If it fails, the ends of these that nobody
    /// attached are finished with the failure (see [`ChannelOwner::fail_unattached`]), so
    /// a failed call's unused channels cost nothing after it and whoever holds the other
    /// end learns at once. Bounded by the tree's channel budget; pruned as it grows.
    pub(crate) created: Vec<ChannelOwner>,
}

impl RillCtx {
    pub(crate) fn new(broker: Broker, dispatch: Arc<dyn Dispatch>, scope: CallScope) -> RillCtx {
        RillCtx { broker, dispatch, scope, created: Vec::new() }
    }

    /// Record that this guest failed, for `reason`, before its store is dropped: every
    /// writer it still holds then aborts with `reason` instead of "writer dropped without
    /// close", and the ends of its channels that nobody attached are finished now (an
    /// unattached writer end aborts, an unattached reader end counts as dropped, a channel
    /// nobody attached is freed).
    ///
    /// rill does this itself for the calls it runs; an application running a guest in
    /// its own store calls it when the guest's export returns an error or traps.
    pub fn fail(&mut self, reason: &str) {
        for channel in &self.created {
            channel.fail_unattached(reason);
        }
        self.scope.failure.set(reason);
    }

    /// Keep `owner` among the channels this guest created. Holds on channels that are
    /// gone are dropped whenever the list would grow, so a guest that creates and
    /// finishes channels in a loop keeps a list as long as its live channels, not as long
    /// as its history.
    pub(crate) fn remember(&mut self, owner: ChannelOwner) {
        remember(&mut self.created, owner);
    }
}

fn remember(created: &mut Vec<ChannelOwner>, owner: ChannelOwner) {
    if created.len() == created.capacity() {
        created.retain(ChannelOwner::is_live);
    }
    created.push(owner);
}

impl std::fmt::Debug for RillCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RillCtx")
            .field("function_id", &self.scope.function_id)
            .field("depth", &self.scope.depth)
            .field("created", &self.created.len())
            .finish_non_exhaustive()
    }
}

/// A [`RillCtx`] together with the store's [`ResourceTable`], where the guest's channel
/// ends and pending calls live (shared with WASI, as in wasmtime-wasi's `WasiCtxView`).
#[derive(Debug)]
pub struct RillCtxView<'a> {
    /// rill's state of this store.
    pub ctx: &'a mut RillCtx,
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
}

/// Store data that can host rill's imports (`rill:host/channels`, `rill:host/functions`).
///
/// Implement it for the `T` of a `Store<T>` of your own, then
/// [`add_to_linker`](crate::add_to_linker) puts rill's imports into your `Linker<T>`.
pub trait RillView: Send {
    /// rill's state and the resource table of this store.
    fn rill(&mut self) -> RillCtxView<'_>;
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

/// A call that entered its tree: its scope, its budget, and its place in the tree.
pub(crate) struct Entered {
    pub(crate) scope: CallScope,
    /// What is left of the budget when the call starts: its own timeout, or less if its
    /// caller's deadline comes first.
    pub(crate) timeout: Duration,
    pub(crate) running: RunningCall,
}

impl CallScope {
    /// The scope of a call of `function_id`: the root of a new tree (with the function's
    /// `limits` and channel `budget`) for a call from outside, else one level below
    /// `caller`, in its tree. The deadline is the earlier of `timeout` from now and the
    /// caller's.
    ///
    /// # Errors
    ///
    /// [`CallError::LimitExceeded`] if the call would nest deeper, or run beside more
    /// calls of its tree, than the tree's limits allow.
    pub(crate) fn enter(
        function_id: &str,
        caller: Option<&CallScope>,
        limits: &Limits,
        budget: &Budget,
        timeout: Duration,
    ) -> Result<Entered, CallError> {
        let (depth, tree) = match caller {
            None => (0, Tree::new(budget.clone(), limits)),
            Some(caller) => (caller.depth + 1, Arc::clone(&caller.tree)),
        };
        if depth > tree.max_depth {
            return Err(CallError::LimitExceeded(format!(
                "call depth: calls may nest at most {} deep",
                tree.max_depth
            )));
        }
        let running = RunningCall::enter(&tree)?;
        let own_deadline = Instant::now().checked_add(timeout).unwrap_or_else(far_future);
        let deadline = caller.map_or(own_deadline, |c| c.deadline.min(own_deadline));
        let scope = CallScope {
            function_id: function_id.into(),
            depth,
            deadline,
            failure: FailureCause::new(),
            tree,
        };
        Ok(Entered { scope, timeout: deadline.saturating_duration_since(Instant::now()), running })
    }
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

impl Tree {
    pub(crate) fn new(budget: Budget, limits: &Limits) -> Arc<Tree> {
        Arc::new(Tree {
            budget,
            max_depth: limits.max_call_depth,
            running: AtomicUsize::new(0),
            max_running: limits.max_tree_calls,
        })
    }
}

/// One running call counted against its tree; dropping it gives the place back.
pub(crate) struct RunningCall(Arc<Tree>);

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

/// A deadline nobody will live to see (`Instant` has no MAX).
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// A call that passed every check that needs no guest, ready to run to its result.
pub(crate) type CallFuture = Pin<Box<dyn Future<Output = Result<String, CallError>> + Send>>;

/// How a guest's `trigger`, `spawn` and `trigger-void` reach another function.
///
/// Owned by this layer, implemented by the host's registry. The checks that need no
/// guest (the id, the payload, the depth and tree limits) run in `dispatch` and fail
/// before anything starts; the returned future runs the call: `trigger` awaits it,
/// `spawn` runs it on a task of its own, `trigger-void` too, logging its outcome.
pub(crate) trait Dispatch: Send + Sync {
    /// Check a call of `function_id` made by the call in `caller`.
    fn dispatch(
        self: Arc<Self>,
        function_id: &str,
        payload: String,
        caller: &CallScope,
        timeout: Option<Duration>,
    ) -> Result<CallFuture, CallError>;
}

/// The resource behind a guest's `pending-call`: the task running the call, until
/// someone waits for it. Dropping it detaches the task, which still ends by its deadline.
pub struct PendingCall {
    pub(crate) function_id: String,
    pub(crate) task: Option<JoinHandle<Result<String, CallError>>>,
}

impl std::fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCall")
            .field("function_id", &self.function_id)
            .field("waited", &self.task.is_none())
            .finish()
    }
}

/// The store data of a call rill runs: WASI (nothing but what the function was granted),
/// the resource table, rill's state, and the memory limiter.
pub(crate) struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) rill: RillCtx,
    pub(crate) limiter: MemoryLimiter,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl RillView for CallState {
    fn rill(&mut self) -> RillCtxView<'_> {
        RillCtxView { ctx: &mut self.rill, table: &mut self.table }
    }
}

#[cfg(test)]
mod tests {
    use rill_broker::{Broker, ChannelOptions};

    /// A guest that creates and finishes channels in a loop must not grow its list of
    /// created channels with its history.
    #[tokio::test]
    async fn the_list_of_created_channels_stays_as_long_as_the_live_ones() {
        let broker = Broker::default();
        let mut created = Vec::new();
        let kept = broker.create(&ChannelOptions::default()).unwrap();
        super::remember(&mut created, kept.owner.clone());
        for _ in 0..10_000 {
            let channel = broker.create(&ChannelOptions::default()).unwrap();
            super::remember(&mut created, channel.owner);
            let mut writer = channel.writer;
            let mut reader = channel.reader;
            writer.close().unwrap();
            assert_eq!(reader.next().await, Ok(None));
        }
        assert!(created.capacity() <= 8, "{} holds kept for 2 live channels", created.capacity());
        assert!(created.iter().filter(|c| c.is_live()).count() == 1, "the live channel is still held");
    }
}
