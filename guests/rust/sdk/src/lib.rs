//! # rill-guest: write rill functions in Rust
//!
//! A rill function is a WebAssembly component, built for `wasm32-wasip2`, that handles
//! calls with small JSON payloads, calls other functions, and streams large data through
//! host-owned **channels** (modelled on the iii engine's channels). This crate is the
//! hand-written surface over the WIT contract in `wit/` (`rill:host@0.1.0`, world
//! `function`); the generated bindings stay an implementation detail.
//!
//! ## Design
//!
//! - **Handlers are plain typed functions.** [`export!`] turns
//!   `fn(In) -> Result<Out, E>` (serde in, serde out) into the component's single export,
//!   either one handler for every function id or a table keyed by function id.
//! - **Calls are blocking functions.** A guest is single-threaded and the host suspends it
//!   while it waits, so [`trigger`], [`spawn`] + [`PendingCall::wait`] and
//!   [`trigger_void`] need no async runtime.
//! - **Channels are `std::io` streams.** [`ChannelWriter`] is `std::io::Write`,
//!   [`ChannelReader`] is `std::io::Read`, so `io::copy`, `BufReader` and friends work. For
//!   streams that mix bytes and text messages, read [`Item`]s instead.
//! - **Refs are iii's JSON.** A [`ChannelRef`] serializes as
//!   `{"channel_id", "access_key", "direction": "read"|"write"}`; put one in a payload to
//!   hand a channel end to another function, and find refs in a payload with
//!   [`extract_channel_refs`] or by deserializing straight into a `ChannelRef` field.
//! - **Failures are explicit.** `close` is the only clean end of a stream: a writer
//!   dropped after use without [`ChannelWriter::close`] reaches its reader as
//!   [`ChannelError::Aborted`]. Errors mirror the WIT variants ([`ChannelError`],
//!   [`CallError`]) and report the WIT case name through `kind()`.
//!
//! ## Example
//!
//! The consumer from iii's channel guide: count the bytes behind the `reader` ref.
//!
//! ```ignore
//! use rill_guest::{ChannelReader, Direction, extract_channel_refs};
//! use serde_json::{Value, json};
//!
//! fn process(input: Value) -> Result<Value, rill_guest::BoxError> {
//!     let reader_ref = extract_channel_refs(&input)
//!         .into_iter()
//!         .find(|(key, r)| key == "reader" && r.direction == Direction::Read)
//!         .map(|(_, r)| r)
//!         .ok_or("missing reader channel ref")?;
//!
//!     let mut reader = ChannelReader::open(&reader_ref)?;
//!     let mut bytes = 0;
//!     while let Some(item) = reader.next_item()? {
//!         if let rill_guest::Item::Bytes(chunk) = item {
//!             bytes += chunk.len();
//!         }
//!     }
//!     Ok(json!({ "bytes": bytes }))
//! }
//!
//! rill_guest::export! { "files::process" => process }
//! ```
//!
//! And the producer side, inside another function:
//!
//! ```ignore
//! use std::io::Write;
//!
//! let channel = rill_guest::Channel::create()?;
//! drop(channel.reader); // unused local end: the consumer opens `reader_ref` itself
//! let consumer = rill_guest::spawn(
//!     "files::process",
//!     &json!({ "filename": "report.csv", "reader": channel.reader_ref }),
//! )?;
//! let mut writer = channel.writer;
//! writer.write_all(b"file contents")?;
//! writer.close()?; // never forget: a dropped writer aborts the stream
//! let result = consumer.wait()?; // {"bytes": 13}
//! ```
//!
//! ## Building
//!
//! A guest is a `cdylib` crate that depends on `rill-guest`, `serde` and `serde_json`;
//! `cargo build --release --target wasm32-wasip2` links it straight into a component. See
//! `guests/rust/README.md`.

#![warn(missing_docs)]

/// The wit-bindgen bindings for the `function` world. Not public API: only the
/// [`export!`] macro uses them, and they may change in any release.
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, missing_debug_implementations, unused_qualifications, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "function",
        pub_export_macro: true,
        default_bindings_module: "rill_guest::bindings",
    });
}

mod call;
mod channel;
mod channel_ref;
mod error;
mod export;

pub use call::{
    CallOptions, PendingCall, spawn, spawn_with, trigger, trigger_as, trigger_as_with, trigger_void,
    trigger_void_with, trigger_with,
};
pub use channel::{Channel, ChannelReader, ChannelWriter, Item, Items, MAX_WRITE_BYTES};
pub use channel_ref::{ChannelRef, Direction, RefParseError, extract_channel_refs, is_channel_ref};
pub use error::{CallError, ChannelError};
#[doc(hidden)]
pub use export::__private;
pub use export::{BoxError, HandlerResult, function_id};
