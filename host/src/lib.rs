//! # rill: a WebAssembly component host for channel-using functions
//!
//! rill runs untrusted functions compiled to WebAssembly components (wasmtime, WASI
//! preview 2, the `rill:host/function` world in `wit/`). Functions call each other with
//! small JSON payloads; large, binary or stream-shaped data moves through **channels**
//! owned by the host's broker ([`rill_broker`]). A function gets local channel ends plus
//! two serializable refs, passes a ref inside a payload, and the receiving function opens
//! the ref to stream the bytes. The bytes never travel inside the JSON.
//!
//! ## Using it
//!
//! - [`Host`] is the embedding API: build it from a `rill.toml` ([`manifest`]) or in code
//!   ([`HostBuilder`]), [`trigger`](Host::trigger) functions, and
//!   [`create_channel`](Host::create_channel)s whose ends are tokio
//!   `AsyncWrite`/`AsyncRead`. The `rill` CLI uses nothing else.
//! - [`add_to_linker`] puts rill's imports into a `Linker<T>` of an application's own,
//!   for guests of its own world: the store data implements [`RillView`], and
//!   [`Host::context`] makes its [`RillCtx`]. The application's guests then share
//!   channels and calls with the host's functions (wasmtime-wasi's `WasiView` pattern).
//! - [`pipe`] moves bytes between files, pipes or sockets and channels, tied to a call
//!   (what `rill call --reader-from/--writer-to` does), for embedders and endpoints.
//! - [`Limits`] bound everything a guest can make the host spend, [`Capabilities`] grant
//!   what a function may reach; both are set per function.
//!
//! ## Layers
//!
//! Inside, every module names only modules below it (the README draws the graph from the
//! code, and a test keeps the drawing true): configuration and errors at the bottom; the
//! engine, the compiled-component cache, guest output and the sandbox; the store state
//! ([`RillCtx`] and the store data of the calls rill runs), which owns the trait through
//! which a guest's `trigger` reaches the registry; the generated bindings and the import
//! adapters, the one place a linker is assembled; the component slot (compile and link
//! once), admission to the instance pool and the call runner; and [`Host`] on top, which
//! implements that trait.
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
pub mod bindings;
mod cache;
mod call;
pub mod capabilities;
mod component;
mod engine;
mod error;
mod function;
mod host;
mod imports;
pub mod limits;
pub mod manifest;
pub mod pipe;
mod remote;
mod sandbox;
mod source;
mod state;
mod stdio;

pub use capabilities::{Capabilities, DirGrant, NetworkGrant};
pub use error::{CallError, HostError, LoadError, ManifestError};
pub use host::{FunctionConfig, Host, HostBuilder, HostConfig};
pub use imports::add_to_linker;
pub use limits::{
    DEFAULT_KEEP_RESIDENT_BYTES, DEFAULT_MAX_WAITING_CALLS, DEFAULT_POOL_SLOTS, EPOCH_TICK, Limits,
    MAX_BACKTRACE_FRAMES, MAX_CACHE_BYTES, MAX_CACHE_ENTRIES, MAX_CACHE_SOURCES, MAX_LOG_LINE_BYTES,
    TABLE_KEEP_RESIDENT_BYTES,
};
pub use remote::{RemoteCall, RemoteFunctions};
pub use rill_broker::{
    self as broker, BrokerConfig, BrokerStats, ChannelError, ChannelOptions, ChannelRef, Direction, Item,
    NewChannel, Reader, ReaderStatus, Writer, WriterStatus,
};
pub use rill_protocol::{CallOptions, FunctionId, FunctionIdError, MAX_FUNCTION_ID_BYTES};
pub use source::ComponentSource;
pub use state::{PendingCall, RillCtx, RillCtxView, RillView};
pub use stdio::inert;
