//! The host side of the WIT imports, and the one place a linker is assembled.
//!
//! The adapters are implemented for [`RillCtxView`], so they work in any store whose
//! data implements [`RillView`]: rill's own [`CallState`], or an application's type
//! ([`add_to_linker`]). Each interface converts at the seam in one place: broker and call
//! errors become the WIT error variants the guest sees, while a stale or foreign resource
//! handle, or a full resource table, becomes a trap of the calling guest (`?` on the
//! table) — never a host panic.

use wasmtime::Engine;
use wasmtime::component::{HasData, Linker};

use crate::bindings;
use crate::state::{CallState, RillCtxView, RillView};

pub(crate) mod channels;
pub(crate) mod functions;

/// The [`HasData`] of rill's imports: they see a [`RillCtxView`] of the store.
struct HasRill;

impl HasData for HasRill {
    type Data<'a> = RillCtxView<'a>;
}

/// Add rill's imports — `rill:host/channels` and `rill:host/functions` — to `linker`, for
/// a store whose data implements [`RillView`].
///
/// This is wasmtime-wasi's `add_to_linker` pattern: put rill's channels and calls into
/// a `Linker<T>` of your own, next to your own imports and WASI
/// (`wasmtime_wasi::p2::add_to_linker_async`), for components of your own world that
/// import rill's interfaces. The engine must have async support enabled (rill's imports
/// wait on channels). Make each store's [`RillCtx`](crate::RillCtx) with
/// [`Host::context`](crate::Host::context).
///
/// # Errors
///
/// If `linker` already defines one of these imports.
pub fn add_to_linker<T: RillView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::channels::add_to_linker::<T, HasRill>(linker, T::rill)?;
    bindings::functions::add_to_linker::<T, HasRill>(linker, T::rill)?;
    channels::add_direct_write(linker)
}

/// The linker of the calls rill runs: WASI preview 2 and rill's imports.
pub(crate) fn call_linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    add_to_linker(&mut linker)?;
    Ok(linker)
}
