//! `rill-test-components`: what one instance of a component uses and leaves behind.
//!
//! Tested by `tests/all/components.rs` (instance reuse), and used by the deadline and
//! memory-limit tests of `calls.rs`, `hostile.rs` and the CLI's tests.
//!
//! | id | payload | result |
//! | --- | --- | --- |
//! | `test::spin` | `{"ms"?}` | busy-loops (forever without `ms`), then `{"spun_ms"}` |
//! | `test::alloc` | `{"bytes"}` | allocates and touches that many bytes, `{"allocated", "pages"}` |
//! | `test::residue` | `{"grow_pages"}` | what a previous call left behind: `{"counter", "mark", "dirty_bytes"}` |
//!
//! `test::spin` reads the clock through `std::time`, so this component imports
//! `wasi:clocks`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

rill_guest::export! {
    "test::spin" => spin,
    "test::alloc" => alloc,
    "test::residue" => residue,
}

#[derive(Deserialize)]
struct SpinPayload {
    ms: Option<u64>,
}

/// `test::spin`: burns CPU for `ms` milliseconds, or forever without `ms` (for deadline and
/// interruption tests). Returns `{"spun_ms": <elapsed>}`.
fn spin(payload: SpinPayload) -> Result<Value, String> {
    let start = Instant::now();
    let limit = payload.ms.map(Duration::from_millis);
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
        if counter.is_multiple_of(4096) && limit.is_some_and(|limit| start.elapsed() >= limit) {
            break;
        }
    }
    Ok(json!({ "spun_ms": start.elapsed().as_millis() as u64 }))
}

#[derive(Deserialize)]
struct AllocPayload {
    bytes: usize,
}

/// `test::alloc`: allocates `bytes` bytes and touches every page (for memory-limit tests; an
/// allocation the host refuses is a trap). Returns `{"allocated": bytes, "pages"}`.
fn alloc(payload: AllocPayload) -> Result<Value, String> {
    let mut block = vec![0u8; payload.bytes];
    for page in block.chunks_mut(65536) {
        page[0] = 1;
    }
    let touched = std::hint::black_box(&block).iter().step_by(65536).count();
    Ok(json!({ "allocated": payload.bytes, "pages": touched }))
}

/// Zero in a fresh instance (a `.bss` static).
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// [`MARK_INITIAL`] in a fresh instance (a `.data` static, from the memory image).
static MARK: AtomicU32 = AtomicU32::new(MARK_INITIAL);
const MARK_INITIAL: u32 = 0x5eed;
const DIRTY_BYTE: u8 = 0xab;

#[derive(Deserialize)]
struct ResiduePayload {
    grow_pages: u32,
}

/// `test::residue`: looks for anything an earlier call could have left in this instance's
/// memory, then leaves some behind: bumps `COUNTER` (1 in a fresh instance), overwrites
/// `MARK` (the result reports its old value, [`MARK_INITIAL`] when fresh), and grows
/// memory by `grow_pages`, counting the non-zero bytes found there (`dirty_bytes`, 0 when
/// fresh) before filling the pages with `0xab`.
fn residue(payload: ResiduePayload) -> Result<Value, String> {
    let counter = COUNTER.fetch_add(1, Ordering::SeqCst) + 1;
    let mark = MARK.swap(0xdead, Ordering::SeqCst);
    let dirty_bytes = grow_and_dirty(payload.grow_pages)?;
    Ok(json!({ "counter": counter, "mark": mark, "dirty_bytes": dirty_bytes }))
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, reason = "inspects raw pages no allocation owns, to prove the host reset them")]
fn grow_and_dirty(pages: u32) -> Result<usize, String> {
    const PAGE: usize = 65536;
    let old = core::arch::wasm32::memory_grow(0, pages as usize);
    if old == usize::MAX {
        return Err(format!("memory.grow by {pages} pages failed"));
    }
    // SAFETY: the pages just grown belong to no allocation; nothing else refers to them.
    let grown = unsafe { std::slice::from_raw_parts_mut((old * PAGE) as *mut u8, pages as usize * PAGE) };
    let dirty = grown.iter().filter(|&&b| b != 0).count();
    grown.fill(DIRTY_BYTE);
    Ok(dirty)
}

#[cfg(not(target_arch = "wasm32"))]
fn grow_and_dirty(_pages: u32) -> Result<usize, String> {
    Err("test::residue grows wasm memory; it runs only as a component".into())
}
