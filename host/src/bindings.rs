//! The generated bindings for the `function` world, kept private to this crate.
//!
//! [`wasmtime::component::bindgen!`] runs once here, inside a private module. WIT
//! resources are mapped onto the host types that back them (`with:`), imports are async
//! (a guest blocks while its channel waits; other guests keep running) and trappable (a
//! host function can return `Err` to trap the calling guest, which is how a stale handle
//! or a full resource table ends a misbehaving guest instead of the host).
//!
//! Nothing generated is part of rill's public API; the embedding surface is
//! [`Host`](crate::Host) and the broker types it re-exports.

mod generated {
    wasmtime::component::bindgen!({
        world: "function",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "rill:host/channels.writer": crate::imports::channels::WriterResource,
            "rill:host/channels.reader": crate::imports::channels::ReaderResource,
            "rill:host/functions.pending-call": crate::imports::functions::PendingCall,
        },
    });
}

pub(crate) use generated::rill::host::{channels, functions};
pub(crate) use generated::{Function, FunctionPre};
