//! [`ComponentSource`]: where a function's code comes from. Plain data, so the manifest,
//! the builder and the registry can name a component without the compile machinery.

use std::path::{Path, PathBuf};

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

    pub(crate) fn path(&self) -> &Path {
        match self {
            ComponentSource::File(path) | ComponentSource::Crate(path) => path,
        }
    }
}
