//! [`ComponentSource`]: where a function's code comes from. Plain data, so the manifest,
//! the builder and the registry can name a component without the compile machinery.

use std::path::{Path, PathBuf};

/// Where a function's component comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ComponentSource {
    /// A built component (`.wasm`), read and compiled on first use. (The runtime never
    /// builds guests: the `rill-build` crate turns a Rust guest crate into a component
    /// before a host starts.)
    File(PathBuf),
}

impl ComponentSource {
    pub(crate) fn path(&self) -> &Path {
        match self {
            ComponentSource::File(path) => path,
        }
    }
}
