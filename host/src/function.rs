//! A registered function: its component, its limits, what it may reach, and what its
//! calls hold right now.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use rill_broker::Budget;

use crate::capabilities::Capabilities;
use crate::component::ComponentSlot;
use crate::limits::Limits;

/// One entry of a host's registry.
pub(crate) struct FunctionEntry {
    pub(crate) slot: Arc<ComponentSlot>,
    pub(crate) limits: Limits,
    pub(crate) capabilities: Capabilities,
    /// The channels the call trees this function starts may hold, together.
    pub(crate) budget: Budget,
    /// Calls of this function running (or waiting for an instance) right now; see
    /// [`FunctionCalls`](crate::admission::FunctionCalls).
    pub(crate) running: AtomicUsize,
}

impl FunctionEntry {
    pub(crate) fn new(slot: Arc<ComponentSlot>, limits: Limits, capabilities: Capabilities) -> FunctionEntry {
        let budget = Budget::new(limits.max_tree_channels, limits.max_tree_buffer_bytes);
        FunctionEntry { slot, limits, capabilities, budget, running: AtomicUsize::new(0) }
    }
}
