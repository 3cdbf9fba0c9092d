//! Where a function's code comes from, and getting it ready to run.
//!
//! A component is compiled once, on first use, on a blocking thread (compiling is CPU
//! work that must not stall the async runtime) — or loaded from the on-disk cache of
//! compiled components (`cache.rs`) — then linked against the host's imports
//! into a cached [`FunctionPre`]. Every call instantiates that in a fresh store, which is
//! cheap (tens of microseconds); a failed or trapped call never leaves state behind for
//! the next one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::OnceCell;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::bindings::FunctionPre;
use crate::cache::ComponentCache;
use crate::call::Invocation;
use crate::error::{LoadError, boxed};
use crate::rust_guest;

/// Where a function's component comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ComponentSource {
    /// A built component (`.wasm`).
    File(PathBuf),
    /// A Rust guest crate, built with `cargo build --release --target wasm32-wasip2` on
    /// first use (see [`rust_guest`](crate::rust_guest)).
    Crate(PathBuf),
}

impl ComponentSource {
    /// A crate if `path` is a directory, a component file otherwise.
    pub fn from_path(path: impl Into<PathBuf>) -> ComponentSource {
        let path = path.into();
        if path.is_dir() { ComponentSource::Crate(path) } else { ComponentSource::File(path) }
    }

    fn path(&self) -> &Path {
        match self {
            ComponentSource::File(path) | ComponentSource::Crate(path) => path,
        }
    }
}

/// One component, compiled and linked at most once.
pub(crate) struct ComponentSlot {
    source: ComponentSource,
    ready: OnceCell<FunctionPre<Invocation>>,
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
        linker: &Linker<Invocation>,
        cache: Option<&Arc<ComponentCache>>,
    ) -> Result<&FunctionPre<Invocation>, LoadError> {
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
    let path = match source {
        ComponentSource::File(path) => path.clone(),
        ComponentSource::Crate(dir) => {
            rust_guest::build(dir).map_err(|source| LoadError::Build { path: dir.clone(), source })?
        }
    };
    let bytes = std::fs::read(&path).map_err(|source| LoadError::Read { path: path.clone(), source })?;
    let compiled = match cache {
        Some(cache) => cache.load_or_compile(engine, &bytes),
        None => Component::new(engine, &bytes),
    };
    compiled.map_err(|e| LoadError::Compile { path, source: boxed(e) })
}
