//! Where a function's code comes from, and getting it ready to run.
//!
//! A component is compiled once, on first use, on a blocking thread (compiling is CPU
//! work that must not stall the async runtime) — or loaded from the on-disk cache of
//! compiled components (`cache.rs`) — then linked against the host's imports
//! into a cached [`FunctionPre`]. Every call instantiates that in a fresh store, which is
//! cheap (tens of microseconds); a failed or trapped call never leaves state behind for
//! the next one.

use std::sync::Arc;

use tokio::sync::OnceCell;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::bindings::FunctionPre;
use crate::cache::ComponentCache;
use crate::error::{LoadError, boxed};
use crate::source::ComponentSource;
use crate::state::CallState;

/// One component, compiled and linked at most once.
pub(crate) struct ComponentSlot {
    source: ComponentSource,
    ready: OnceCell<FunctionPre<CallState>>,
}

impl ComponentSlot {
    pub(crate) fn new(source: ComponentSource) -> Arc<ComponentSlot> {
        Arc::new(ComponentSlot { source, ready: OnceCell::new() })
    }

    /// The linked component, compiling it first if this is its first use. A failure is
    /// not cached: the next call tries again (for example after the crate was fixed).
    pub(crate) async fn ready(
        &self,
        engine: &Engine,
        linker: &Linker<CallState>,
        cache: Option<&Arc<ComponentCache>>,
    ) -> Result<&FunctionPre<CallState>, LoadError> {
        self.ready
            .get_or_try_init(|| async {
                let source = self.source.clone();
                let engine = engine.clone();
                let cache = cache.cloned();
                let component =
                    tokio::task::spawn_blocking(move || compile(&engine, &source, cache.as_deref()))
                        .await
                        .map_err(|join| LoadError::Compile {
                        path: self.source.path().to_path_buf(),
                        source: Box::new(join),
                    })??;
                let link = |e| LoadError::Link { path: self.source.path().to_path_buf(), source: boxed(e) };
                FunctionPre::new(linker.instantiate_pre(&component).map_err(link)?).map_err(link)
            })
            .await
    }
}

fn compile(
    engine: &Engine,
    source: &ComponentSource,
    cache: Option<&ComponentCache>,
) -> Result<Component, LoadError> {
    let ComponentSource::File(path) = source;
    let path = path.clone();
    // A component the cache has seen at this path, unchanged since, loads without
    // reading or hashing it (see `cache.rs`).
    if let Some(component) = cache.and_then(|cache| cache.load_known_file(engine, &path)) {
        return Ok(component);
    }
    let seen = crate::cache::FileStamp::of(&path);
    let bytes = std::fs::read(&path).map_err(|source| LoadError::Read { path: path.clone(), source })?;
    let compiled = match cache {
        Some(cache) => cache.load_or_compile(engine, &bytes, seen.map(|stamp| (path.as_path(), stamp))),
        None => Component::new(engine, &bytes),
    };
    compiled.map_err(|e| LoadError::Compile { path, source: boxed(e) })
}
