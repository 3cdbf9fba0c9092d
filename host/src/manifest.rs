//! `rill.toml`: which functions a host serves, and from which components.
//!
//! ```toml
//! # Default limits of every function (all optional; see `rill::Limits`).
//! [host.limits]
//! timeout_ms = 30000
//!
//! # One table per function id. `component` is a built `.wasm` or a guest's source
//! # directory (built before the host starts, by the rill-build crate or the `rill`
//! # CLI), relative to this file: a Rust crate, or with `language` ("python",
//! # "javascript" or "c") an app in that language.
//! [functions."files::process"]
//! component = "guests/rust/examples/files"
//!
//! [functions."py::files::process"]
//! component = "guests/python/examples/files"
//! language = "python"
//!
//! [functions."files::process".limits]      # optional overrides for this function
//! max_memory_bytes = 134217728
//!
//! [functions."files::process".capabilities] # optional grants (nothing by default)
//! dirs = [{ host = "data", guest = "/data" }]
//! ```
//!
//! Several ids may name the same component; it is compiled once and serves them all (the
//! guest's `handle` receives the id it was called by).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::error::ManifestError;
pub use crate::limits::LimitOverrides;
use crate::{Capabilities, ComponentSource, Limits};

/// A parsed `rill.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Manifest {
    /// Host-wide settings.
    #[serde(default)]
    pub host: HostSection,
    /// Functions by id.
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionSection>,
    /// The directory relative paths are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// The `[host]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HostSection {
    /// Default limits of every function.
    #[serde(default)]
    pub limits: LimitOverrides,
}

/// The language of a guest's source directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum GuestLanguage {
    /// A Rust crate (`Cargo.toml`), built with cargo for `wasm32-wasip2`.
    #[default]
    Rust,
    /// A Python app (`app.py` using the `rill_guest` SDK), built with componentize-py.
    Python,
    /// A JavaScript app (`app.js`, an ES module using the `rill-guest` SDK), built with
    /// componentize-js.
    #[serde(rename = "javascript")]
    JavaScript,
    /// A C app (`app.c` using the `rill.h` SDK), built with clang for WASI and linked
    /// into a component with wasm-component-ld.
    C,
}

/// One `[functions."id"]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FunctionSection {
    /// A built component (`.wasm`) or a guest's source directory (see `language`),
    /// relative to the manifest.
    pub component: PathBuf,
    /// The language of a source directory in `component`, which `rill-build` builds
    /// before a host starts (a host itself only loads built components).
    #[serde(default)]
    pub language: GuestLanguage,
    /// This function's limits, over the host's defaults.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// What this function may reach (nothing by default).
    #[serde(default)]
    pub capabilities: Capabilities,
}

fn invalid_limits(err: serde_json::Error) -> ManifestError {
    ManifestError::InvalidLimits(err.to_string())
}

impl Manifest {
    /// Read and parse the manifest at `path`.
    ///
    /// # Errors
    ///
    /// [`ManifestError`] when the file cannot be read or is not a valid manifest.
    pub fn from_file(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ManifestError::Read { path: path.to_path_buf(), source })?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Manifest::parse(&text, base_dir)
            .map_err(|source| ManifestError::Parse { path: path.to_path_buf(), source })
    }

    /// Parse manifest text, resolving relative paths against `base_dir`.
    ///
    /// # Errors
    ///
    /// The TOML error, with the line and column at fault.
    pub fn parse(text: &str, base_dir: impl Into<PathBuf>) -> Result<Manifest, toml::de::Error> {
        let mut manifest: Manifest = toml::from_str(text)?;
        manifest.base_dir = base_dir.into();
        Ok(manifest)
    }

    /// Where a function's component comes from, with its path resolved.
    pub fn source(&self, function: &FunctionSection) -> ComponentSource {
        ComponentSource::File(self.base_dir.join(&function.component))
    }

    /// The limits a host built from this manifest on `defaults` applies to function `id`:
    /// `[host.limits]` over `defaults`, then the function's own `limits` (if it is one of
    /// the manifest's) over those.
    ///
    /// # Errors
    ///
    /// [`ManifestError::InvalidLimits`] if a table does not fit [`Limits`] (cannot happen
    /// for a manifest that was parsed: its tables were checked then).
    pub fn function_limits(&self, id: &str, defaults: &Limits) -> Result<Limits, ManifestError> {
        let host = self.host_limits(defaults)?;
        match self.functions.get(id) {
            Some(function) => host.overlay(&function.limits).map_err(invalid_limits),
            None => Ok(host),
        }
    }

    /// `[host.limits]` over `defaults`: the limits of functions with none of their own.
    ///
    /// # Errors
    ///
    /// As [`Manifest::function_limits`].
    pub fn host_limits(&self, defaults: &Limits) -> Result<Limits, ManifestError> {
        defaults.overlay(&self.host.limits).map_err(invalid_limits)
    }

    /// A function's capabilities, with granted directories resolved against the manifest.
    pub fn capabilities(&self, function: &FunctionSection) -> Capabilities {
        let mut capabilities = function.capabilities.clone();
        for dir in &mut capabilities.dirs {
            dir.host = self.base_dir.join(&dir.host);
        }
        capabilities
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn parses_functions_limits_and_capabilities() {
        let text = r#"
            [host.limits]
            timeout_ms = 5000

            [functions."files::process"]
            component = "guests/files.wasm"

            [functions."files::process".limits]
            max_memory_bytes = 1000000
            fuel = 42
            max_concurrent_calls = 8

            [functions."files::process".capabilities]
            dirs = [{ host = "data", guest = "/data" }, { host = "/abs", guest = "/out", writable = true }]
            env = { REGION = "eu" }
            network = ["127.0.0.1:8080"]

            [functions."files::other"]
            component = "guests/files.wasm"
        "#;
        let manifest = Manifest::parse(text, "/srv").unwrap();
        let defaults = Limits::default().overlay(&manifest.host.limits).unwrap();
        assert_eq!(defaults.timeout, Duration::from_secs(5));

        let process = &manifest.functions["files::process"];
        let limits = defaults.overlay(&process.limits).unwrap();
        assert_eq!(
            (limits.max_memory_bytes, limits.fuel, limits.timeout),
            (1_000_000, Some(42), Duration::from_secs(5))
        );
        assert_eq!(limits.max_concurrent_calls, 8);
        assert_eq!(manifest.source(process), ComponentSource::File("/srv/guests/files.wasm".into()));
        let caps = manifest.capabilities(process);
        assert_eq!(caps.dirs[0], crate::DirGrant::read_only("/srv/data", "/data"));
        assert_eq!(caps.dirs[1], crate::DirGrant::writable("/abs", "/out"));
        assert_eq!(caps.env["REGION"], "eu");
        assert_eq!(caps.network[0].to_string(), "127.0.0.1:8080");

        let other = &manifest.functions["files::other"];
        assert_eq!(other.limits, LimitOverrides::default());
        assert_eq!(manifest.capabilities(other), Capabilities::default(), "nothing is granted by default");
    }

    #[test]
    fn typos_are_errors_not_silently_ignored() {
        let err = Manifest::parse("[functions.\"a\"]\ncomponnet = \"x.wasm\"\n", "/").unwrap_err();
        assert!(err.to_string().contains("componnet"), "{err}");
        assert!(Manifest::parse("[hots]\n", "/").is_err());
        assert!(Manifest::parse("[functions.\"a\"]\n", "/").is_err(), "component is required");
        let bad_limit =
            "[functions.\"a\"]\ncomponent = \"x\"\n[functions.\"a\".limits]\nmax_memroy_bytes = 1\n";
        let err = Manifest::parse(bad_limit, "/").unwrap_err();
        assert!(err.to_string().contains("unknown field `max_memroy_bytes`"), "{err}");
        let bad_type =
            "[functions.\"a\"]\ncomponent = \"x\"\n[functions.\"a\".limits]\ntimeout_ms = \"soon\"\n";
        let err = Manifest::parse(bad_type, "/").unwrap_err();
        assert!(err.to_string().contains("invalid type: string \"soon\""), "{err}");
        let negative = "[host.limits]\nmax_handles = -1\n";
        assert!(Manifest::parse(negative, "/").is_err(), "a limit is never negative");
        let bad_grant = "[functions.\"a\"]\ncomponent = \"x\"\n[functions.\"a\".capabilities]\nnetwork = [\"example.com:80\"]\n";
        assert!(Manifest::parse(bad_grant, "/").unwrap_err().to_string().contains("invalid network grant"));
    }
}
