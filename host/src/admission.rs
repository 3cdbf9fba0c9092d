//! Admission: which calls may hold an instance slot, and which wait for one.
//!
//! Every call instantiates one component instance, which takes one slot of the pooling
//! allocator ([`HostConfig::pool_slots`](crate::HostConfig::pool_slots)) from just before
//! instantiation until the call's store is dropped. Two rules keep one caller from
//! taking every slot:
//!
//! - **The gate** ([`Admission`]): a semaphore with one permit per pool slot. A call
//!   takes a permit before it instantiates and gives it back when its store is dropped.
//!   When none is free the call waits, first come first served, until one is or its
//!   deadline passes ([`CallError::TimedOut`]); at most
//!   [`HostConfig::max_waiting_calls`](crate::HostConfig::max_waiting_calls) calls wait
//!   at once, and a call beyond them fails at once ([`CallError::Unavailable`], the host
//!   is at capacity). Waiting never outlives a deadline, so even a full pool of parents
//!   each waiting for a child that waits for a slot ends, at the latest, at their
//!   deadlines. Without a pool (`pool_slots: None`) there is no gate.
//! - **Per function** ([`FunctionCalls`]): at most
//!   [`Limits::max_concurrent_calls`](crate::Limits::max_concurrent_calls) calls of one
//!   function hold or wait for a slot at once, across every tree and caller. A call past
//!   it fails at once ([`CallError::LimitExceeded`]) rather than waiting: a function
//!   that calls itself, or a parent waiting on children of its own function, would
//!   otherwise wait for itself. This bounds the share of the pool (and of the waiting
//!   queue) that one function's calls can hold, so other functions still find slots as
//!   long as the functions flooding it together stay below the pool size (with the
//!   defaults, 64 of 256 slots, it takes four functions at their limit to fill it).
//!
//! The fast path — a free slot, a function under its limit — is one atomic update each.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::Instant;

use crate::error::CallError;
use crate::function::FunctionEntry;

/// The gate in front of the instance pool: one permit per slot.
pub(crate) struct Admission {
    slots: Arc<Semaphore>,
    pool_slots: usize,
    /// Calls waiting for a permit right now.
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// An instance slot held by a call; dropping it (after the call's store) frees the slot.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Admission {
    /// A gate for a pool of `pool_slots` instances, with at most `max_waiting` calls
    /// waiting for one.
    pub(crate) fn new(pool_slots: u32, max_waiting: usize) -> Admission {
        let pool_slots = usize::try_from(pool_slots).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        Admission {
            slots: Arc::new(Semaphore::new(pool_slots)),
            pool_slots,
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// Take an instance slot for a call of `function_id`, waiting until `deadline` if
    /// every slot is in use. `timeout` is the call's budget, for the error.
    ///
    /// # Errors
    ///
    /// [`CallError::TimedOut`] if the deadline passes while waiting,
    /// [`CallError::Unavailable`] if the most calls that may wait already do.
    pub(crate) async fn admit(
        &self,
        function_id: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Slot, CallError> {
        // Permits freed while calls wait go to the waiters first, so this never jumps
        // the queue.
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => return Ok(Slot { _permit: permit }),
            Err(TryAcquireError::NoPermits) => {}
            Err(TryAcquireError::Closed) => return Err(self.at_capacity(function_id)),
        }
        let _waiting = self.enter_queue().ok_or_else(|| self.at_capacity(function_id))?;
        match tokio::time::timeout_at(deadline, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot { _permit: permit }),
            Ok(Err(_closed)) => Err(self.at_capacity(function_id)),
            Err(_elapsed) => Err(CallError::TimedOut { function_id: function_id.to_owned(), timeout }),
        }
    }

    /// A place in the waiting queue, if there is one.
    fn enter_queue(&self) -> Option<Waiting<'_>> {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max_waiting).then_some(n + 1))
            .ok()
            .map(|_| Waiting(&self.waiting))
    }

    fn at_capacity(&self, function_id: &str) -> CallError {
        CallError::Unavailable {
            function_id: function_id.to_owned(),
            message: format!(
                "the host is at capacity: all {} instance slots are in use and {} calls already wait for one; try again later",
                self.pool_slots, self.max_waiting
            ),
        }
    }
}

/// A call's place in the waiting queue; dropping it (admitted, timed out or cancelled)
/// gives the place back.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One call counted against its function's
/// [`max_concurrent_calls`](crate::Limits::max_concurrent_calls), from the moment it is
/// accepted until it ends; dropping it gives the place back.
pub(crate) struct FunctionCalls(Arc<FunctionEntry>);

impl FunctionCalls {
    /// Count a call of `function` (registered as `function_id`).
    ///
    /// # Errors
    ///
    /// [`CallError::LimitExceeded`] if the function already has as many calls as it may.
    pub(crate) fn enter(
        function: &Arc<FunctionEntry>,
        function_id: &str,
    ) -> Result<FunctionCalls, CallError> {
        let max = function.limits.max_concurrent_calls;
        let entered = function
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .is_ok();
        if entered {
            Ok(FunctionCalls(Arc::clone(function)))
        } else {
            Err(CallError::LimitExceeded(format!(
                "calls of function {function_id:?} running at once: at most {max}"
            )))
        }
    }
}

impl Drop for FunctionCalls {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}
