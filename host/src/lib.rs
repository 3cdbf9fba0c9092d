//! # rill: a WebAssembly component host for channel-using functions
//!
//! rill runs untrusted functions compiled to WebAssembly components (wasmtime, WASI
//! preview 2, the `rill:host/function` world in `wit/`). Functions call each other with
//! small JSON payloads; large, binary or stream-shaped data moves through **channels**
//! owned by the host's broker ([`rill_broker`]). A function gets local channel ends plus
//! two serializable refs, passes a ref inside a payload, and the receiving function opens
//! the ref to stream the bytes. The bytes never travel inside the JSON.
//!
//! ## Layout
//!
//! - [`Host`] (in `host.rs`) is the embedding API: build it from a `rill.toml`
//!   ([`manifest`]) or in code ([`HostBuilder`]), [`trigger`](Host::trigger) functions,
//!   and [`create_channel`](Host::create_channel)s whose ends are tokio
//!   `AsyncWrite`/`AsyncRead`. The `rill` CLI uses nothing else.
//! - `call.rs` runs one call: checks, a fresh wasmtime store per call (run in the
//!   caller's task; `spawn` gets its own), deadlines (epoch interruption plus a timeout around the call), and the rule
//!   that a failed function aborts the writers it left open.
//! - `admission.rs` decides which calls may take an instance slot and which wait: a
//!   gate in front of the instance pool, and each function's share of it.
//! - `component.rs` turns a [`ComponentSource`] into a linked, cached pre-instance;
//!   `cache.rs` keeps compiled components on disk; [`rust_guest`] builds guest crates
//!   on demand.
//! - `imports/` implements the WIT imports over the broker and the host; the generated
//!   bindings stay private (`bindings.rs`).
//! - `stdio.rs` turns guest stdout/stderr into log lines tagged with the function id.
//!
//! ## Lifecycle
//!
//! The engine and linker are made once per host. A component is compiled on first use
//! and linked once into a pre-instance. Each call gets a new store: a trap poisons a
//! store, so nothing is ever reused after a failure, and resources left in a store are
//! released when it is dropped.

// The only `unsafe` is loading compiled code, in `cache.rs` (see its docs).
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod admission;
mod bindings;
mod cache;
mod call;
pub mod capabilities;
mod component;
mod engine;
mod error;
mod host;
mod imports;
pub mod limits;
pub mod manifest;
pub mod pipe;
pub mod rust_guest;
mod stdio;

pub use admission::DEFAULT_MAX_WAITING_CALLS;
pub use cache::{MAX_CACHE_BYTES, MAX_CACHE_ENTRIES};
pub use capabilities::{Capabilities, DirGrant, NetworkGrant};
pub use component::ComponentSource;
pub use engine::{EPOCH_TICK, MAX_BACKTRACE_FRAMES};
pub use error::{CallError, HostError, LoadError};
pub use host::{
    DEFAULT_KEEP_RESIDENT_BYTES, DEFAULT_POOL_SLOTS, FunctionConfig, Host, HostBuilder, HostConfig,
    TABLE_KEEP_RESIDENT_BYTES,
};
pub use limits::Limits;
pub use rill_broker::{
    self as broker, BrokerConfig, BrokerStats, ChannelError, ChannelOptions, ChannelRef, Direction, Item,
    NewChannel, Reader, ReaderStatus, Writer, WriterStatus,
};
pub use rill_protocol::{CallOptions, FunctionId, FunctionIdError, MAX_FUNCTION_ID_BYTES};
pub use stdio::{MAX_LOG_LINE_BYTES, inert};
