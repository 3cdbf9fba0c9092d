//! [`Host`]: the embedding API, and the function registry behind it.
//!
//! A host is built once ([`HostBuilder`] or a manifest): the engine, the linker, the
//! broker and the registry of functions. It implements the call-another-function seam
//! ([`Dispatch`]) that the store state owns, so a guest's `trigger` reaches the registry
//! without any module below this one naming it. Everything the `rill` CLI does goes
//! through it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rill_broker::{Broker, BrokerConfig, ChannelError, ChannelOptions, NewChannel};
use rill_protocol::{CallOptions, FunctionId};

use crate::admission::Admission;
use crate::cache::ComponentCache;
use crate::call::{PreparedCall, Runtime};
use crate::capabilities::Capabilities;
use crate::component::ComponentSlot;
use crate::engine;
use crate::error::{CallError, HostError, ManifestError, boxed, error_chain};
use crate::function::FunctionEntry;
use crate::imports::call_linker;
use crate::limits::{DEFAULT_KEEP_RESIDENT_BYTES, DEFAULT_MAX_WAITING_CALLS, DEFAULT_POOL_SLOTS, Limits};
use crate::manifest::Manifest;
use crate::remote::{RemoteCall, RemoteFunctions};
use crate::source::ComponentSource;
use crate::state::{CallFuture, CallScope, Dispatch, RillCtx, Tree, far_future};

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
    /// keep [`TABLE_KEEP_RESIDENT_BYTES`](crate::TABLE_KEEP_RESIDENT_BYTES) the same way.
    pub keep_resident_bytes: usize,
}

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

impl HostConfig {
    /// This config with default function [`limits`](HostConfig::limits).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// This config with the [`broker`](HostConfig::broker)'s settings.
    pub fn with_broker(mut self, broker: BrokerConfig) -> Self {
        self.broker = broker;
        self
    }

    /// This config with a [`cache_dir`](HostConfig::cache_dir) for compiled components.
    pub fn with_cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// This config with [`pool_slots`](HostConfig::pool_slots) instances in the pool.
    pub fn with_pool_slots(mut self, slots: Option<u32>) -> Self {
        self.pool_slots = slots;
        self
    }

    /// This config with at most [`max_waiting_calls`](HostConfig::max_waiting_calls)
    /// calls waiting for an instance slot.
    pub fn with_max_waiting_calls(mut self, calls: usize) -> Self {
        self.max_waiting_calls = calls;
        self
    }

    /// This config with [`keep_resident_bytes`](HostConfig::keep_resident_bytes).
    pub fn with_keep_resident_bytes(mut self, bytes: usize) -> Self {
        self.keep_resident_bytes = bytes;
        self
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
/// // A manifest whose components are built `.wasm` files (the rill-build crate builds
/// // guest crates and points a manifest at the results).
/// let host = Host::from_manifest("functions.toml".as_ref())?;
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

/// The registry, and what every call of this host shares.
struct HostInner {
    runtime: Arc<Runtime>,
    functions: HashMap<String, Arc<FunctionEntry>>,
    /// Where guests' calls of ids this host does not serve go (see [`Host::set_remote`]).
    remote: OnceLock<Arc<dyn RemoteFunctions>>,
}

impl HostInner {
    fn function(&self, id: &str) -> Result<Arc<FunctionEntry>, CallError> {
        self.functions.get(id).cloned().ok_or_else(|| CallError::NotFound(id.to_owned()))
    }

    /// Check a call of `function_id` from outside (`caller: None`) or from a guest.
    fn prepare(
        self: Arc<Self>,
        function_id: &str,
        payload: String,
        caller: Option<&CallScope>,
        timeout: Option<Duration>,
    ) -> Result<PreparedCall, CallError> {
        FunctionId::parse(function_id).map_err(|err| CallError::InvalidInput(err.to_string()))?;
        let function = self.function(function_id)?;
        let runtime = Arc::clone(&self.runtime);
        PreparedCall::new(runtime, self, function, function_id, payload, caller, timeout)
    }
}

impl Dispatch for HostInner {
    fn dispatch(
        self: Arc<Self>,
        function_id: &str,
        payload: String,
        caller: &CallScope,
        timeout: Option<Duration>,
    ) -> Result<CallFuture, CallError> {
        if !self.functions.contains_key(function_id)
            && let Some(remote) = self.remote.get()
            && let Some(call) = remote.call(function_id, payload.clone())
        {
            return Ok(remote_within_deadline(call, function_id, caller, timeout));
        }
        let prepared = self.prepare(function_id, payload, Some(caller), timeout)?;
        Ok(Box::pin(prepared.call()))
    }
}

/// A remote call cut off at the caller's deadline (or sooner, at its own `timeout`).
fn remote_within_deadline(
    call: RemoteCall,
    function_id: &str,
    caller: &CallScope,
    timeout: Option<Duration>,
) -> CallFuture {
    let now = tokio::time::Instant::now();
    let deadline = timeout.map_or(caller.deadline, |t| caller.deadline.min(now + t));
    let function_id = function_id.to_owned();
    Box::pin(async move {
        match tokio::time::timeout_at(deadline, call).await {
            Ok(outcome) => outcome,
            Err(_) => {
                Err(CallError::TimedOut { function_id, timeout: deadline.saturating_duration_since(now) })
            }
        }
    })
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self.inner.functions.keys().collect();
        ids.sort();
        f.debug_struct("Host").field("functions", &ids).field("broker", &self.inner.runtime.broker).finish()
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
    pub fn from_manifest_with(path: &Path, config: HostConfig) -> Result<Host, HostError> {
        Host::with_manifest(&Manifest::from_file(path)?, config)
    }

    /// A host serving the functions of a parsed `manifest`, starting from `config` (the
    /// manifest's `[host.limits]` then override `config.limits`). Every component must be
    /// a built `.wasm`: the runtime never builds guest crates (`rill_build::build_manifest`
    /// builds them and points the manifest at the results).
    ///
    /// # Errors
    ///
    /// [`HostError::Manifest`] with [`ManifestError::NotAComponent`] for a component that
    /// is a directory; otherwise as [`Host::from_manifest`].
    pub fn with_manifest(manifest: &Manifest, mut config: HostConfig) -> Result<Host, HostError> {
        for (id, function) in &manifest.functions {
            let ComponentSource::File(path) = manifest.source(function);
            if path.is_dir() {
                let err = ManifestError::NotAComponent { function: id.clone(), path };
                return Err(HostError::Manifest(err));
            }
        }
        let defaults = config.limits.clone();
        config.limits = manifest.host_limits(&defaults)?;
        let mut builder = Host::builder().config(config.clone());
        for (id, function) in &manifest.functions {
            let limits = manifest.function_limits(id, &defaults)?;
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
        let prepared = Arc::clone(&self.inner).prepare(function_id, payload, None, options.timeout);
        async move { prepared?.call().await }
    }

    /// Send guests' calls of function ids this host does not serve to `remote` (the
    /// workers of `rill serve`, for example). A host has at most one; setting it again
    /// fails and hands `remote` back.
    ///
    /// # Errors
    ///
    /// `Err(remote)` when this host already has one.
    pub fn set_remote(&self, remote: Arc<dyn RemoteFunctions>) -> Result<(), Arc<dyn RemoteFunctions>> {
        self.inner.remote.set(remote)
    }

    /// Whether this host serves `function_id`.
    pub fn has_function(&self, function_id: &str) -> bool {
        self.inner.functions.contains_key(function_id)
    }

    /// Create a channel from the host side. The ends implement tokio's `AsyncWrite` and
    /// `AsyncRead`; put a ref into a payload to hand an end to a function.
    ///
    /// # Errors
    ///
    /// [`ChannelError::InvalidArgument`] for a buffer size out of range,
    /// [`ChannelError::LimitExceeded`] when the host holds too many channels.
    pub fn create_channel(&self, options: &ChannelOptions) -> Result<NewChannel, ChannelError> {
        self.inner.runtime.broker.create(options)
    }

    /// The channel broker, for opening refs from the host side and for its statistics.
    pub fn broker(&self) -> &Broker {
        &self.inner.runtime.broker
    }

    /// rill's part of the data of a [`Store`](wasmtime::Store) the application owns, for
    /// a guest of its own world that imports rill's channels and calls (see
    /// [`add_to_linker`](crate::add_to_linker)).
    ///
    /// The guest's channels are this host's, so refs pass freely between it, the host's
    /// functions and the application. The guest is the root of a call tree named
    /// `caller` (in logs and errors): its calls reach this host's functions as calls one
    /// level below it, and the tree's `limits` bound how deep they nest
    /// ([`Limits::max_call_depth`]), how many run at once ([`Limits::max_tree_calls`]) and
    /// the channels the guest and its calls hold together ([`Limits::max_tree_channels`],
    /// [`Limits::max_tree_buffer_bytes`]). The guest itself has no deadline; each call it
    /// makes has its own timeout. The store's own limits (memory, fuel, resource table)
    /// are the application's to set. When the guest fails, call [`RillCtx::fail`] before
    /// dropping the store so that its readers learn why.
    pub fn context(&self, caller: &str, limits: &Limits) -> RillCtx {
        let budget = rill_broker::Budget::new(limits.max_tree_channels, limits.max_tree_buffer_bytes);
        let scope = CallScope {
            function_id: caller.into(),
            depth: 0,
            deadline: far_future(),
            failure: rill_broker::FailureCause::new(),
            tree: Tree::new(budget, limits),
        };
        let dispatch: Arc<dyn Dispatch> = Arc::clone(&self.inner) as Arc<dyn Dispatch>;
        RillCtx::new(self.inner.runtime.broker.clone(), dispatch, scope)
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
        let function = self.inner.function(function_id)?;
        let runtime = &self.inner.runtime;
        function.slot.ready(&runtime.engine, &runtime.linker, runtime.cache.as_ref()).await.map(drop).map_err(
            |err| CallError::Unavailable { function_id: function_id.to_owned(), message: error_chain(&err) },
        )
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
        let linker = call_linker(&engine).map_err(|e| HostError::Engine(boxed(e)))?;

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
            functions.insert(id, Arc::new(FunctionEntry::new(slot, limits, config.capabilities)));
        }
        let broker = Broker::new(self.config.broker.clone());
        let cache = self.config.cache_dir.as_deref().map(|dir| Arc::new(ComponentCache::new(dir, &engine)));
        let admission =
            self.config.pool_slots.map(|slots| Admission::new(slots, self.config.max_waiting_calls));
        let runtime = Arc::new(Runtime { engine, linker, broker, fuel_metering, cache, admission });
        let inner = HostInner { runtime, functions, remote: OnceLock::new() };
        Ok(Host { inner: Arc::new(inner) })
    }
}
