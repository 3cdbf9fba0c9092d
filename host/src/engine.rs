//! The one wasmtime [`Engine`] of a host, and its epoch ticker.
//!
//! Wall-clock deadlines on guest code use epoch interruption: a background thread bumps
//! the engine's epoch every [`EPOCH_TICK`](crate::EPOCH_TICK); at each tick a running guest yields its
//! thread to other tasks and is interrupted once its call's deadline has passed. This
//! stops a guest spinning in wasm code without starving anyone; a guest waiting inside a
//! host call is stopped by a timeout around the whole call instead (see `call.rs`).

use std::num::NonZeroUsize;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::limits::{EPOCH_TICK, MAX_BACKTRACE_FRAMES, MAX_TABLE_ELEMENTS, TABLE_KEEP_RESIDENT_BYTES};

use crate::error::{HostError, boxed};

/// How an engine allocates instances.
pub(crate) struct EngineOptions {
    /// Meter fuel (it costs a few percent of guest speed, so it is on only when some
    /// function has a fuel limit).
    pub(crate) fuel: bool,
    /// Instances the pooling allocator keeps ready; `None` allocates on demand.
    pub(crate) pool_slots: Option<u32>,
    /// Bytes of each pooled memory reset in place rather than handed back to the kernel.
    pub(crate) keep_resident_bytes: usize,
    /// The largest linear memory any function may have.
    pub(crate) max_memory_bytes: usize,
}

/// Build the engine and start its epoch ticker.
///
/// With `pool_slots`, instances come from wasmtime's pooling allocator: memories, tables
/// and fiber stacks are reserved once and reset between calls, instead of being mapped
/// and unmapped for every call (which costs page faults and cross-core TLB shootdowns).
/// The pages a call wrote are then reset in place, up to `keep_resident_bytes` (using
/// `PAGEMAP_SCAN` to find them where the kernel supports it and nothing can be swapped,
/// see [`swap_configured`]), so the common case makes no system call that changes the
/// address space.
/// If the pool cannot be reserved (for example where the address space is limited), the
/// engine falls back to allocating on demand, with a warning.
pub(crate) fn new(options: &EngineOptions) -> Result<Engine, HostError> {
    let mut config = base_config(options);
    if let Some(slots) = options.pool_slots {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_SLOT))
            .total_memories(slots.saturating_mul(CORE_INSTANCES_PER_SLOT))
            .total_tables(slots.saturating_mul(CORE_INSTANCES_PER_SLOT))
            .total_stacks(slots)
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_memory_size(options.max_memory_bytes)
            .linear_memory_keep_resident(options.keep_resident_bytes)
            .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES)
            .pagemap_scan(if swap_configured() { Enabled::No } else { Enabled::Auto });
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&config) {
            Ok(engine) => {
                start_ticker(&engine)?;
                return Ok(engine);
            }
            Err(err) => {
                tracing::warn!("cannot reserve the instance pool ({err:#}); allocating instances on demand");
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            }
        }
    }
    let engine = Engine::new(&config).map_err(|e| HostError::Engine(boxed(e)))?;
    start_ticker(&engine)?;
    Ok(engine)
}

/// Whether this machine may swap anonymous memory out: any swap device or file (zram
/// included) is listed in `/proc/swaps`; if that cannot be read, assume it may.
///
/// wasmtime's `PAGEMAP_SCAN` reset resets the pages a call wrote that are *present*; a
/// written page that was swapped out is neither reset nor released, and the next call in
/// that slot would fault the old contents back in. So the scan is used only where nothing
/// can be swapped; elsewhere the kept memory is reset by clearing it whole, which is
/// slower (about 42,000 instead of 85,000 trivial calls a second here) but never leaks.
/// Swap enabled after the host started is not noticed: restart the host.
fn swap_configured() -> bool {
    std::fs::read_to_string("/proc/swaps").map_or(true, |swaps| lists_swap(&swaps))
}

/// Whether the text of `/proc/swaps` lists anything below its header.
fn lists_swap(swaps: &str) -> bool {
    swaps.lines().skip(1).any(|line| !line.trim().is_empty())
}

/// Core instances (and so memories and tables) one pool slot allows for: a component
/// built from Rust or C has a handful; interpreted guests more.
const CORE_INSTANCES_PER_SLOT: u32 = 16;

fn base_config(options: &EngineOptions) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.consume_fuel(options.fuel);
    config.wasm_backtrace_max_frames(NonZeroUsize::new(MAX_BACKTRACE_FRAMES));
    config
}

/// One thread per engine; it holds only a weak reference and stops once the engine is
/// dropped.
fn start_ticker(engine: &Engine) -> Result<(), HostError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("rill-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .map(drop)
        .map_err(|e| HostError::Engine(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::lists_swap;

    #[test]
    fn swap_is_read_from_proc_swaps() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert!(!lists_swap(header), "a header alone: no swap");
        assert!(!lists_swap(""));
        assert!(lists_swap(&format!("{header}/dev/zram0  partition\t4194300\t0\t100\n")));
        assert!(lists_swap(&format!("{header}/swapfile file 1048572 0 -2\n")));
    }
}
