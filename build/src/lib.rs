//! # rill-build: guest sources into rill components, outside the runtime
//!
//! A `rill.toml` may name a guest's source directory instead of a built `.wasm`: a Rust
//! crate, or a Python app (`language = "python"`, see the `python` module:
//! componentize-py). What follows is about Rust crates. The
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

mod app;
mod c;
mod cargo;
mod javascript;
mod python;

pub use c::build_c;
pub use cargo::{build_crates, cargo, ensure_target};
pub use javascript::{COMPONENTIZE_JS_VERSION, build_javascript};
pub use python::{COMPONENTIZE_PY_VERSION, build_python};

/// Where rill caches what it builds and compiles: `$RILL_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/rill`, else `$HOME/.cache/rill`; `None` if none of them is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let from = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    from("RILL_CACHE_DIR")
        .or_else(|| from("XDG_CACHE_HOME").map(|d| d.join("rill")))
        .or_else(|| from("HOME").map(|d| d.join(".cache").join("rill")))
}

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
    /// A source directory lacks the module its language starts from.
    #[error("{} is not a {language} guest: it has no {module}", dir.display())]
    NotAnApp {
        /// The directory.
        dir: PathBuf,
        /// Its language.
        language: &'static str,
        /// The file it must have.
        module: &'static str,
    },
    /// A guest language's build tool could not be installed or started.
    #[error("cannot set up {tool}: {message}")]
    Toolchain {
        /// The tool.
        tool: &'static str,
        /// What failed and what to do.
        message: String,
    },
    /// The language's build tool rejected the app (its errors went to stderr).
    #[error("{tool} could not build the guest in {} (its errors are printed above)", dir.display())]
    Tool {
        /// The tool.
        tool: &'static str,
        /// The app's directory.
        dir: PathBuf,
    },
    /// A file of a build could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
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
    /// A function's guest sources did not build.
    #[error("cannot build the guest of function {function:?}")]
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

/// Build every function of `manifest` whose component is a source directory, and point
/// it at the built component instead: what [`build_manifest_for`] does for every function.
///
/// # Errors
///
/// [`Error::Build`] naming the first function whose sources did not build.
#[cfg(feature = "manifest")]
pub fn build_manifest(manifest: &mut Manifest) -> Result<(), Error> {
    build_manifest_for(manifest, |_| true)
}

/// Build the functions of `manifest` whose component is a source directory and point
/// them at the built components: every Rust crate (one cargo invocation builds them all,
/// with the toolchain that builds rill itself), and each guest in another language whose
/// id `wanted` accepts. The functions of other languages that are not wanted are removed
/// from the manifest, so that a host made from it neither needs their toolchains nor
/// tries to load a directory: `rill call files::process` builds no Python. Built apps of
/// other languages are kept in [`default_cache_dir`] (or the system's temporary
/// directory).
///
/// # Errors
///
/// [`Error::Build`] naming the first function whose sources did not build.
#[cfg(feature = "manifest")]
pub fn build_manifest_for(manifest: &mut Manifest, wanted: impl Fn(&str) -> bool) -> Result<(), Error> {
    use rill::manifest::GuestLanguage;
    let sources: Vec<(String, PathBuf, GuestLanguage)> = manifest
        .functions
        .iter()
        .map(|(id, function)| (id.clone(), manifest.base_dir.join(&function.component), function.language))
        .filter(|(_, path, _)| path.is_dir())
        .collect();
    let crates: Vec<&(String, PathBuf, GuestLanguage)> =
        sources.iter().filter(|(_, _, language)| *language == GuestLanguage::Rust).collect();
    let dirs: Vec<&Path> = crates.iter().map(|(_, dir, _)| dir.as_path()).collect();
    let built = build_crates(&dirs).map_err(|source| {
        // Name the function whose crate failed, where the error says which.
        let function = crates
            .iter()
            .find(|(_, dir, _)| error_names(&source, dir))
            .or(crates.first())
            .map_or_else(String::new, |(id, _, _)| id.clone());
        Error::Build { function, source: Box::new(source) }
    })?;
    let mut components: Vec<(String, PathBuf)> =
        crates.iter().map(|(id, _, _)| id.clone()).zip(built).collect();
    let cache = default_cache_dir().unwrap_or_else(|| std::env::temp_dir().join("rill"));
    for (id, dir, language) in &sources {
        if *language == GuestLanguage::Rust {
            continue;
        }
        if !wanted(id) {
            tracing::debug!(function = %id, "not built: not asked for");
            manifest.functions.remove(id);
            continue;
        }
        let wasm = build_guest(*language, dir, &cache)
            .map_err(|source| Error::Build { function: id.clone(), source: Box::new(source) })?;
        components.push((id.clone(), wasm));
    }
    for (id, wasm) in components {
        if let Some(function) = manifest.functions.get_mut(&id) {
            function.component = wasm;
        }
    }
    Ok(())
}

/// Build the guest of `language` in `dir` (apps of languages other than Rust are kept
/// under `cache`); the component's path.
///
/// # Errors
///
/// [`BuildError`]: the sources, the language's toolchain, or its build tool.
#[cfg(feature = "manifest")]
pub fn build_guest(
    language: rill::manifest::GuestLanguage,
    dir: &Path,
    cache: &Path,
) -> Result<PathBuf, BuildError> {
    use rill::manifest::GuestLanguage;
    match language {
        GuestLanguage::Rust => build_crate(dir),
        GuestLanguage::Python => build_python(dir, cache),
        GuestLanguage::JavaScript => build_javascript(dir, cache),
        GuestLanguage::C => build_c(dir, cache),
        other => Err(BuildError::Toolchain {
            tool: "rill-build",
            message: format!("this rill-build has no builder for {other:?} guests; update rill"),
        }),
    }
}

#[cfg(feature = "manifest")]
fn error_names(err: &BuildError, dir: &Path) -> bool {
    match err {
        BuildError::NotACrate(path) | BuildError::NoArtifact(path) => path == dir,
        _ => false,
    }
}

/// A host serving the functions of the manifest at `path`, its guests built first;
/// `config` as [`Host::from_manifest_with`] takes it.
///
/// # Errors
///
/// [`Error`]: the manifest, a guest's build, or the host.
#[cfg(feature = "manifest")]
pub fn host_from_manifest(path: &Path, config: HostConfig) -> Result<Host, Error> {
    host_from_manifest_for(path, config, |_| true)
}

/// A host serving the manifest's Rust functions and those of other languages that
/// `wanted` accepts (see [`build_manifest_for`]).
///
/// # Errors
///
/// [`Error`]: the manifest, a guest's build, or the host.
#[cfg(feature = "manifest")]
pub fn host_from_manifest_for(
    path: &Path,
    config: HostConfig,
    wanted: impl Fn(&str) -> bool,
) -> Result<Host, Error> {
    let mut manifest = Manifest::from_file(path).map_err(HostError::from)?;
    build_manifest_for(&mut manifest, wanted)?;
    Ok(Host::with_manifest(&manifest, config)?)
}
