//! The generated bindings for the `function` world, kept private to this crate, and the
//! error types of the seam.
//!
//! [`wasmtime::component::bindgen!`] runs once here, inside a private module. WIT
//! resources are mapped onto the host types that back them (`with:`). Imports are
//! trappable: a host function can return `Err` to trap the calling guest, which is how a
//! stale handle or a full resource table ends a misbehaving guest instead of the host.
//! Only the imports that wait are `async` (writing into a full channel, reading an empty
//! one, waiting for a call); the rest return at once.
//!
//! A WIT `result<_, channel-error>` or `result<_, call-error>` is a Rust `Result<_,
//! ChannelFailure>` or `Result<_, CallFailure>` (`trappable_error_type`): the `Guest`
//! case becomes the WIT error the guest sees, the `Trap` case traps it. So `?` works on
//! broker errors, call errors and resource-table errors alike, and the one conversion
//! per interface lives in `imports/`.
//!
//! Of the generated code, only the two interface modules are public, [`channels`] and
//! [`functions`], for one use: an application that runs guests of its own world (which
//! imports rill's interfaces) maps them in its own `bindgen!` with
//! `with: { "rill:host/channels": rill::bindings::channels, "rill:host/functions":
//! rill::bindings::functions }`, so that its generated types are rill's (as
//! wasmtime-wasi's `p2::bindings` is used), and links them with
//! [`add_to_linker`](crate::add_to_linker). The rest of the embedding surface is
//! [`Host`](crate::Host) and the broker types it re-exports.

use wasmtime::component::ResourceTableError;

use crate::error::CallError;

#[allow(missing_docs, reason = "generated from wit/, whose docs it carries where the WIT has them")]
mod generated {
    wasmtime::component::bindgen!({
        world: "function",
        path: "../wit",
        imports: {
            "rill:host/channels.[method]writer.write": async | trappable,
            "rill:host/channels.[method]writer.send-text": async | trappable,
            "rill:host/channels.[method]reader.next": async | trappable,
            "rill:host/channels.[method]reader.read": async | trappable,
            "rill:host/functions.trigger": async | trappable,
            "rill:host/functions.[method]pending-call.wait": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        with: {
            "rill:host/channels.writer": rill_broker::Writer,
            "rill:host/channels.reader": rill_broker::Reader,
            "rill:host/functions.pending-call": crate::state::PendingCall,
        },
        trappable_error_type: {
            "rill:host/channels.channel-error" => crate::bindings::ChannelFailure,
            "rill:host/functions.call-error" => crate::bindings::CallFailure,
        },
    });
}

pub(crate) use generated::FunctionPre;
pub use generated::rill::host::{channels, functions};

/// Why a channel import did not succeed: an error the guest sees, or a trap.
#[derive(Debug)]
pub enum ChannelFailure {
    /// Reported to the guest as its WIT `channel-error`.
    Guest(rill_broker::ChannelError),
    /// Ends the guest: a stale or foreign handle, a full resource table.
    Trap(wasmtime::Error),
}

impl From<rill_broker::ChannelError> for ChannelFailure {
    fn from(err: rill_broker::ChannelError) -> Self {
        ChannelFailure::Guest(err)
    }
}

impl From<ResourceTableError> for ChannelFailure {
    fn from(err: ResourceTableError) -> Self {
        ChannelFailure::Trap(err.into())
    }
}

/// Why a call import did not succeed: an error the guest sees, or a trap.
#[derive(Debug)]
pub enum CallFailure {
    /// Reported to the guest as its WIT `call-error`.
    Guest(CallError),
    /// Ends the guest: a stale or foreign handle, a full resource table.
    Trap(wasmtime::Error),
}

impl From<CallError> for CallFailure {
    fn from(err: CallError) -> Self {
        CallFailure::Guest(err)
    }
}

impl From<ResourceTableError> for CallFailure {
    fn from(err: ResourceTableError) -> Self {
        CallFailure::Trap(err.into())
    }
}
