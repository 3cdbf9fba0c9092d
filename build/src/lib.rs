//! # rill-build: Rust guest crates into rill components, outside the runtime
//!
//! A `rill.toml` may name a Rust guest crate directory instead of a built `.wasm`. The
//! runtime ([`rill::Host`]) never builds anything: it loads components. This crate is what
//! turns crates into components before a host starts — for the `rill` CLI, the examples
//! and the tests — by running `cargo build --release --target wasm32-wasip2` (wit-bindgen
//! guests need nothing else: rustc links straight to a component) and reading from
//! cargo's JSON messages what it built. The `wasm32-wasip2` standard library is added
//! with `rustup` first if it is missing, so a fresh machine needs no manual step.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // Build the manifest's crates, then serve its functions.
//! let host = rill_build::host_from_manifest("rill.toml".as_ref(), rill::HostConfig::default())?;
//! # Ok(()) }
//! ```
//!
//! Crates of one cargo workspace are built by one cargo invocation (a no-op build costs
//! one cargo start, not one per crate), and each crate at most once per process.
//!
//! Without its default `manifest` feature the crate does not depend on `rill` (nor so on
//! wasmtime): the build script of the test artifacts (`guests/artifacts`) uses it that
//! way, so the tests' guests and the CLI's are built by the same code.

use std::path::{Path, PathBuf};

#[cfg(feature = "manifest")]
use rill::manifest::Manifest;
#[cfg(feature = "manifest")]
use rill::{Host, HostConfig, HostError};

mod cargo;

pub use cargo::{build_crates, cargo, ensure_target};

/// The compilation target of guest components.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// Why a guest crate did not build.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The directory has no `Cargo.toml`, or it names no package.
    #[error("{} is not a Rust crate: it has no Cargo.toml with a [package] name", .0.display())]
    NotACrate(PathBuf),
    /// A `Cargo.toml` could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `Cargo.toml` is not valid TOML.
    #[error("{} is not valid TOML", path.display())]
    InvalidManifest {
        /// The file.
        path: PathBuf,
        /// Where and why parsing failed.
        #[source]
        source: toml::de::Error,
    },
    /// `cargo` or `rustup` could not be started.
    #[error("cannot run `{program}`; is the Rust toolchain installed and on PATH?")]
    Spawn {
        /// The program.
        program: String,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },
    /// `rustup target add wasm32-wasip2` failed.
    #[error("`rustup target add {GUEST_TARGET}` failed; install the target and try again")]
    TargetInstall,
    /// cargo reported a failed build (its diagnostics went to stderr).
    #[error("cargo could not build the guest crates of {} (its errors are printed above)", .0.display())]
    Failed(PathBuf),
    /// cargo succeeded but reported no `.wasm` for the crate.
    #[error("cargo built no .wasm for the crate at {}; is it a `cdylib`?", .0.display())]
    NoArtifact(PathBuf),
}

/// Why a host could not be made from a manifest.
#[cfg(feature = "manifest")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The manifest could not be read, or the host could not start.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A function's guest crate did not build.
    #[error("cannot build the guest crate of function {function:?}")]
    Build {
        /// The function whose component is that crate.
        function: String,
        /// Why.
        #[source]
        source: Box<BuildError>,
    },
}

/// Build the guest crate in `crate_dir`; the path of its component.
///
/// # Errors
///
/// [`BuildError`] when the target cannot be installed or cargo fails.
pub fn build_crate(crate_dir: &Path) -> Result<PathBuf, BuildError> {
    let mut built = build_crates(&[crate_dir])?;
    built.pop().ok_or_else(|| BuildError::NoArtifact(crate_dir.to_path_buf()))
}

/// Build every function of `manifest` whose component is a crate directory, and point
/// it at the built component instead.
///
/// # Errors
///
/// [`Error::Build`] naming the first function whose crate did not build.
#[cfg(feature = "manifest")]
pub fn build_manifest(manifest: &mut Manifest) -> Result<(), Error> {
    let crates: Vec<(String, PathBuf)> = manifest
        .functions
        .iter()
        .map(|(id, function)| (id.clone(), manifest.base_dir.join(&function.component)))
        .filter(|(_, path)| path.is_dir())
        .collect();
    let dirs: Vec<&Path> = crates.iter().map(|(_, dir)| dir.as_path()).collect();
    let built = build_crates(&dirs).map_err(|source| {
        // Name the function whose crate failed, where the error says which.
        let function = crates
            .iter()
            .find(|(_, dir)| error_names(&source, dir))
            .or(crates.first())
            .map_or_else(String::new, |(id, _)| id.clone());
        Error::Build { function, source: Box::new(source) }
    })?;
    for ((id, _), wasm) in crates.iter().zip(built) {
        if let Some(function) = manifest.functions.get_mut(id) {
            function.component = wasm;
        }
    }
    Ok(())
}

#[cfg(feature = "manifest")]
fn error_names(err: &BuildError, dir: &Path) -> bool {
    match err {
        BuildError::NotACrate(path) | BuildError::NoArtifact(path) => path == dir,
        _ => false,
    }
}

/// A host serving the functions of the manifest at `path`, its guest crates built first;
/// `config` as [`Host::from_manifest_with`] takes it.
///
/// # Errors
///
/// [`Error`]: the manifest, a crate's build, or the host.
#[cfg(feature = "manifest")]
pub fn host_from_manifest(path: &Path, config: HostConfig) -> Result<Host, Error> {
    let mut manifest = Manifest::from_file(path).map_err(HostError::from)?;
    build_manifest(&mut manifest)?;
    Ok(Host::with_manifest(&manifest, config)?)
}
