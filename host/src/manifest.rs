//! `rill.toml`: which functions a host serves, and from which components.
//!
//! ```toml
//! # Default limits of every function (all optional; see `rill::Limits`).
//! [host.limits]
//! timeout_ms = 30000
//!
//! # One table per function id. `component` is a built `.wasm` or a Rust guest crate
//! # directory (built before the host starts, by the rill-build crate or the `rill`
//! # CLI), relative to this file.
//! [functions."files::process"]
//! component = "guests/rust/examples/files"
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::error::ManifestError;
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

/// One `[functions."id"]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FunctionSection {
    /// A built component (`.wasm`) or a Rust guest crate directory, relative to the
    /// manifest.
    pub component: PathBuf,
    /// This function's limits, over the host's defaults.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// What this function may reach (nothing by default).
    #[serde(default)]
    pub capabilities: Capabilities,
}

/// A `limits` table: any subset of [`Limits`]; what is missing keeps its default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
#[expect(missing_docs, reason = "each field is the Limits field of the same name (timeout in milliseconds)")]
pub struct LimitOverrides {
    pub max_memory_bytes: Option<usize>,
    pub timeout_ms: Option<u64>,
    pub fuel: Option<u64>,
    pub max_hostcall_bytes: Option<usize>,
    pub max_handles: Option<usize>,
    pub max_tree_channels: Option<usize>,
    pub max_tree_buffer_bytes: Option<usize>,
    pub max_tree_calls: Option<usize>,
    pub max_concurrent_calls: Option<usize>,
    pub max_payload_bytes: Option<usize>,
    pub max_json_depth: Option<usize>,
    pub max_call_depth: Option<u32>,
    pub max_output_bytes: Option<usize>,
}

impl LimitOverrides {
    /// Overwrite the fields of `limits` that this table sets.
    pub fn apply(&self, limits: &mut Limits) {
        fn set<T: Copy>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        set(&mut limits.max_memory_bytes, self.max_memory_bytes);
        set(&mut limits.timeout, self.timeout_ms.map(Duration::from_millis));
        if self.fuel.is_some() {
            limits.fuel = self.fuel;
        }
        set(&mut limits.max_hostcall_bytes, self.max_hostcall_bytes);
        set(&mut limits.max_handles, self.max_handles);
        set(&mut limits.max_tree_channels, self.max_tree_channels);
        set(&mut limits.max_tree_buffer_bytes, self.max_tree_buffer_bytes);
        set(&mut limits.max_tree_calls, self.max_tree_calls);
        set(&mut limits.max_concurrent_calls, self.max_concurrent_calls);
        set(&mut limits.max_payload_bytes, self.max_payload_bytes);
        set(&mut limits.max_json_depth, self.max_json_depth);
        set(&mut limits.max_call_depth, self.max_call_depth);
        set(&mut limits.max_output_bytes, self.max_output_bytes);
    }
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
        let mut defaults = Limits::default();
        manifest.host.limits.apply(&mut defaults);
        assert_eq!(defaults.timeout, Duration::from_secs(5));

        let process = &manifest.functions["files::process"];
        let mut limits = defaults.clone();
        process.limits.apply(&mut limits);
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
        assert!(Manifest::parse(bad_limit, "/").is_err());
        let bad_grant = "[functions.\"a\"]\ncomponent = \"x\"\n[functions.\"a\".capabilities]\nnetwork = [\"example.com:80\"]\n";
        assert!(Manifest::parse(bad_grant, "/").unwrap_err().to_string().contains("invalid network grant"));
    }
}
