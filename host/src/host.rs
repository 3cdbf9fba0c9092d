//! [`Host`]: the embedding API. Everything the `rill` CLI does goes through it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use rill_broker::{Broker, BrokerConfig, Budget, ChannelError, ChannelOptions, NewChannel};
use rill_protocol::{CallOptions, FunctionId};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::admission::{Admission, DEFAULT_MAX_WAITING_CALLS};
use crate::bindings::Function as FunctionWorld;
use crate::cache::ComponentCache;
use crate::call::Invocation;
use crate::component::{ComponentSlot, ComponentSource};
use crate::error::boxed;
use crate::manifest::Manifest;
use crate::{CallError, Capabilities, HostError, Limits, engine};

/// Host-wide settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostConfig {
    /// The limits of functions registered without limits of their own.
    pub limits: Limits,
    /// The channel broker's settings.
    pub broker: BrokerConfig,
    /// Where compiled components are kept between runs, so a component compiles once
    /// (Python and JavaScript components take seconds) and later starts in milliseconds.
    /// `None` (the default for embedders) compiles in memory only; the `rill` CLI uses
    /// `$RILL_CACHE_DIR` or a directory in the user's cache. Entries are checked before use
    /// (a corrupt or foreign file is recompiled) and at most [`MAX_CACHE_ENTRIES`] are
    /// kept. The directory must be private to the user running the host: compiled code
    /// in it runs as the host.
    ///
    /// [`MAX_CACHE_ENTRIES`]: crate::MAX_CACHE_ENTRIES
    pub cache_dir: Option<PathBuf>,
    /// Component instances the instance pool keeps ready (default
    /// [`DEFAULT_POOL_SLOTS`]): at most this many calls hold an instance at once. A call
    /// that finds every slot in use waits for one, first come first served, until its
    /// deadline ([`CallError::TimedOut`]); see [`HostConfig::max_waiting_calls`] and
    /// [`Limits::max_concurrent_calls`], which keeps one function from taking every
    /// slot. `None` allocates every instance on demand, with no bound and no waiting
    /// (slower: each call maps and unmaps its memory, with page faults and cross-core TLB
    /// shootdowns).
    pub pool_slots: Option<u32>,
    /// Most calls that may wait for an instance slot at once (default
    /// [`DEFAULT_MAX_WAITING_CALLS`]). A call that finds every slot in use and this many
    /// calls already waiting fails at once with [`CallError::Unavailable`] (the host is at
    /// capacity; retrying later may succeed): this bounds the tasks and payloads that
    /// waiting calls hold. Unused with `pool_slots: None`.
    pub max_waiting_calls: usize,
    /// Bytes of each pooled linear memory kept mapped when a call ends (default
    /// [`DEFAULT_KEEP_RESIDENT_BYTES`]). Within this many bytes, memory is reset in place
    /// instead of being handed back to the kernel, which would cost the next call a page
    /// fault per page and every call a TLB shootdown across cores. Where Linux has
    /// `PAGEMAP_SCAN` (6.7+) and the machine has no swap, only the pages the call wrote
    /// are reset; otherwise the kept bytes are cleared whole after every call, which is
    /// slower for small calls. The price is memory: up to this many bytes stay resident
    /// for each linear memory that has been used — a pool slot holds up to 16 (one per
    /// core instance), and slots stay warm for reuse — so the bound is roughly the
    /// calls that ran at once × their memories × this. 0 hands everything back. Tables
    /// keep [`TABLE_KEEP_RESIDENT_BYTES`] the same way.
    pub keep_resident_bytes: usize,
}

/// Default of [`HostConfig::keep_resident_bytes`] (2 MiB): enough for the memory a small
/// Rust or C guest touches in a call (a 1 MiB shadow stack plus data and heap).
pub const DEFAULT_KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// Bytes of each pooled table kept mapped and reset in place when a call ends (64 KiB,
/// 8,192 function references); see [`HostConfig::keep_resident_bytes`].
pub const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;

/// Default size of the instance pool: calls that can run at once.
pub const DEFAULT_POOL_SLOTS: u32 = 256;

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            limits: Limits::default(),
            broker: BrokerConfig::default(),
            cache_dir: None,
            pool_slots: Some(DEFAULT_POOL_SLOTS),
            max_waiting_calls: DEFAULT_MAX_WAITING_CALLS,
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT_BYTES,
        }
    }
}

/// How one function is served: its component, its limits and what it may reach.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FunctionConfig {
    /// Where the component comes from.
    pub source: ComponentSource,
    /// Its limits; `None` uses the host's default [`HostConfig::limits`].
    pub limits: Option<Limits>,
    /// What it may reach outside its sandbox (nothing by default).
    pub capabilities: Capabilities,
}

impl FunctionConfig {
    /// A function served by `source`, with the host's default limits and no capabilities.
    pub fn new(source: ComponentSource) -> FunctionConfig {
        FunctionConfig { source, limits: None, capabilities: Capabilities::default() }
    }

    /// Use `limits` for this function.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Grant `capabilities` to this function.
    pub fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }
}

/// A WebAssembly component host: functions, the channel broker, and the engine.
///
/// Cheap to clone; clones share everything. Build it inside a tokio runtime.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use rill::{ChannelOptions, Host};
/// use tokio::io::AsyncWriteExt;
///
/// let host = Host::from_manifest("rill.toml".as_ref())?;
/// let channel = host.create_channel(&ChannelOptions::default())?;
/// let mut writer = channel.writer;
/// let payload = serde_json::json!({ "reader": channel.reader_ref });
/// let call = host.trigger("files::process", &payload);
/// let feed = async {
///     writer.write_all(b"file contents").await?;
///     writer.shutdown().await // a clean end
/// };
/// let (result, fed) = tokio::join!(call, feed);
/// fed?;
/// println!("{}", result?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<Invocation>,
    pub(crate) broker: Broker,
    /// Whether the engine meters fuel (some function has a fuel limit).
    pub(crate) fuel_metering: bool,
    /// Compiled components on disk, if [`HostConfig::cache_dir`] is set.
    pub(crate) cache: Option<Arc<ComponentCache>>,
    /// The gate in front of the instance pool; `None` without a pool.
    pub(crate) admission: Option<Admission>,
    functions: HashMap<String, Arc<Function>>,
}

/// A registered function.
pub(crate) struct Function {
    pub(crate) slot: Arc<ComponentSlot>,
    pub(crate) limits: Limits,
    pub(crate) capabilities: Capabilities,
    /// The channels the call trees this function starts may hold, together.
    pub(crate) budget: Budget,
    /// Calls of this function running (or waiting for an instance) right now.
    pub(crate) running: AtomicUsize,
}

impl HostInner {
    pub(crate) fn function(&self, id: &str) -> Option<Arc<Function>> {
        self.functions.get(id).cloned()
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self.inner.functions.keys().collect();
        ids.sort();
        f.debug_struct("Host").field("functions", &ids).field("broker", &self.inner.broker).finish()
    }
}

impl Host {
    /// A builder for a host configured in code.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// A host serving the functions of the manifest at `path`.
    ///
    /// # Errors
    ///
    /// [`HostError`] when the manifest is unreadable or invalid, or the host cannot start.
    pub fn from_manifest(path: &Path) -> Result<Host, HostError> {
        Host::from_manifest_with(path, HostConfig::default())
    }

    /// A host serving the functions of the manifest at `path`, starting from `config`
    /// (the manifest's `[host.limits]` then override `config.limits`).
    ///
    /// # Errors
    ///
    /// As [`Host::from_manifest`].
    pub fn from_manifest_with(path: &Path, mut config: HostConfig) -> Result<Host, HostError> {
        let manifest = Manifest::from_file(path)?;
        manifest.host.limits.apply(&mut config.limits);
        let mut builder = Host::builder().config(config.clone());
        for (id, function) in &manifest.functions {
            let mut limits = config.limits.clone();
            function.limits.apply(&mut limits);
            let function_config = FunctionConfig::new(manifest.source(function))
                .limits(limits)
                .capabilities(manifest.capabilities(function));
            builder = builder.function_with(id, function_config);
        }
        builder.build()
    }

    /// Call `function_id` with a JSON payload and wait for its JSON result.
    ///
    /// The returned future owns what it needs (the payload is serialized up front), so it
    /// can be spawned or joined freely. The call runs inside it, in the awaiting task:
    /// dropping the future cancels the call, and the writers it left open abort with a
    /// reason that says so. Spawn the future to let a call run on its own.
    ///
    /// # Errors
    ///
    /// [`CallError`]: unknown function, malformed payload, the function's own error, a
    /// trap, a timeout, a limit, or a component that cannot be loaded.
    pub fn trigger(
        &self,
        function_id: &str,
        payload: &serde_json::Value,
    ) -> impl Future<Output = Result<serde_json::Value, CallError>> + Send + 'static {
        let call = self.trigger_json(function_id, payload.to_string());
        let function_id = function_id.to_owned();
        async move {
            let result = call.await?;
            serde_json::from_str(&result).map_err(|err| CallError::Failed {
                function_id,
                message: format!("the function returned a result that is not valid JSON: {err}"),
            })
        }
    }

    /// Like [`Host::trigger`], with the payload and result as JSON text.
    ///
    /// # Errors
    ///
    /// As [`Host::trigger`]; text that is not JSON is [`CallError::InvalidInput`].
    pub fn trigger_json(
        &self,
        function_id: &str,
        payload: String,
    ) -> impl Future<Output = Result<String, CallError>> + Send + 'static {
        self.trigger_with(function_id, payload, &CallOptions::default())
    }

    /// Like [`Host::trigger_json`], with [`CallOptions`] (the WIT's `call-options`, as a
    /// guest's `trigger` takes them).
    ///
    /// # Errors
    ///
    /// As [`Host::trigger_json`].
    pub fn trigger_with(
        &self,
        function_id: &str,
        payload: String,
        options: &CallOptions,
    ) -> impl Future<Output = Result<String, CallError>> + Send + 'static + use<> {
        let prepared = self.inner.prepare(function_id, payload, None, options.timeout);
        async move { prepared?.call().await }
    }

    /// Create a channel from the host side. The ends implement tokio's `AsyncWrite` and
    /// `AsyncRead`; put a ref into a payload to hand an end to a function.
    ///
    /// # Errors
    ///
    /// [`ChannelError::InvalidArgument`] for a buffer size out of range,
    /// [`ChannelError::LimitExceeded`] when the host holds too many channels.
    pub fn create_channel(&self, options: &ChannelOptions) -> Result<NewChannel, ChannelError> {
        self.inner.broker.create(options)
    }

    /// The channel broker, for opening refs from the host side and for its statistics.
    pub fn broker(&self) -> &Broker {
        &self.inner.broker
    }

    /// The ids of the functions this host serves, sorted.
    pub fn function_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.inner.functions.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Compile and link a function's component now instead of on its first call.
    ///
    /// # Errors
    ///
    /// [`CallError::NotFound`] for an unknown id, [`CallError::Unavailable`] when the
    /// component cannot be built, compiled or linked.
    pub async fn prepare(&self, function_id: &str) -> Result<(), CallError> {
        let function =
            self.inner.function(function_id).ok_or_else(|| CallError::NotFound(function_id.to_owned()))?;
        function
            .slot
            .ready(&self.inner.engine, &self.inner.linker, self.inner.cache.as_ref())
            .await
            .map(drop)
            .map_err(|err| CallError::Unavailable {
                function_id: function_id.to_owned(),
                message: crate::call::error_chain(&err),
            })
    }
}

/// Builds a [`Host`] in code.
#[derive(Debug, Default)]
pub struct HostBuilder {
    config: HostConfig,
    functions: Vec<(String, FunctionConfig)>,
}

impl HostBuilder {
    /// Use `config` for host-wide settings.
    pub fn config(mut self, config: HostConfig) -> Self {
        self.config = config;
        self
    }

    /// Serve `id` with the component from `source`, the default limits and no
    /// capabilities.
    pub fn function(self, id: impl Into<String>, source: ComponentSource) -> Self {
        self.function_with(id, FunctionConfig::new(source))
    }

    /// Serve `id` as `config` says.
    pub fn function_with(mut self, id: impl Into<String>, config: FunctionConfig) -> Self {
        self.functions.push((id.into(), config));
        self
    }

    /// Build the host. Components are compiled lazily, on each function's first call
    /// (or by [`Host::prepare`]).
    ///
    /// # Errors
    ///
    /// [`HostError::FunctionId`] for a duplicate or malformed id, [`HostError::NoRuntime`]
    /// outside a tokio runtime, [`HostError::Engine`] if wasmtime cannot be set up.
    pub fn build(self) -> Result<Host, HostError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(HostError::NoRuntime);
        }
        // Each function's limits: its own, or the host's defaults.
        let registered: Vec<(String, FunctionConfig, Limits)> = self
            .functions
            .into_iter()
            .map(|(id, mut config)| {
                let limits = config.limits.take().unwrap_or_else(|| self.config.limits.clone());
                (id, config, limits)
            })
            .collect();
        let fuel_metering = registered.iter().any(|(_, _, limits)| limits.fuel.is_some());
        let max_memory_bytes = registered
            .iter()
            .map(|(_, _, limits)| limits.max_memory_bytes)
            .max()
            .unwrap_or(self.config.limits.max_memory_bytes);
        let engine = engine::new(&engine::EngineOptions {
            fuel: fuel_metering,
            pool_slots: self.config.pool_slots,
            keep_resident_bytes: self.config.keep_resident_bytes,
            max_memory_bytes,
        })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| HostError::Engine(boxed(e)))?;
        FunctionWorld::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .and_then(|()| crate::imports::channels::add_direct_write(&mut linker))
            .map_err(|e| HostError::Engine(boxed(e)))?;

        let mut slots: HashMap<ComponentSource, Arc<ComponentSlot>> = HashMap::new();
        let mut functions = HashMap::new();
        for (id, config, limits) in registered {
            if let Err(err) = FunctionId::parse(&id) {
                return Err(HostError::FunctionId { id, reason: err.to_string() });
            }
            if functions.contains_key(&id) {
                return Err(HostError::FunctionId { id, reason: "registered twice".into() });
            }
            let source = config.source;
            let slot = Arc::clone(slots.entry(source.clone()).or_insert_with(|| ComponentSlot::new(source)));
            let budget = Budget::new(limits.max_tree_channels, limits.max_tree_buffer_bytes);
            let function = Function {
                slot,
                limits,
                capabilities: config.capabilities,
                budget,
                running: AtomicUsize::new(0),
            };
            functions.insert(id, Arc::new(function));
        }
        let broker = Broker::new(self.config.broker.clone());
        let cache = self.config.cache_dir.as_deref().map(|dir| Arc::new(ComponentCache::new(dir, &engine)));
        let admission =
            self.config.pool_slots.map(|slots| Admission::new(slots, self.config.max_waiting_calls));
        let inner = HostInner { engine, linker, broker, fuel_metering, cache, admission, functions };
        Ok(Host { inner: Arc::new(inner) })
    }
}
