//! `rill.toml`: which functions a host serves, and from which components.
//!
//! ```toml
//! # Settings for every call (all optional).
//! [host]
//! default_timeout_ms = 30000
//!
//! # One table per function id. `component` is a built `.wasm` or a Rust guest crate
//! # directory, relative to this file.
//! [functions."files::process"]
//! component = "guests/rust/examples/files"
//! timeout_ms = 60000   # optional; overrides the default for this function
//! ```
//!
//! Several ids may name the same component; it is compiled once and serves them all (the
//! guest's `handle` receives the id it was called by).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::ComponentSource;

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read the manifest {}", path.display())]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid manifest.
    #[error("invalid manifest {}", path.display())]
    Parse {
        /// The manifest's path.
        path: PathBuf,
        /// Where and why parsing failed.
        #[source]
        source: toml::de::Error,
    },
}

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
    /// Wall-clock budget of a call that names none, in milliseconds.
    pub default_timeout_ms: Option<u64>,
}

/// One `[functions."id"]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FunctionSection {
    /// A built component (`.wasm`) or a Rust guest crate directory, relative to the
    /// manifest.
    pub component: PathBuf,
    /// This function's default wall-clock budget, in milliseconds.
    pub timeout_ms: Option<u64>,
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
        ComponentSource::from_path(self.base_dir.join(&function.component))
    }

    /// The default call timeout, if the manifest sets one.
    pub fn default_timeout(&self) -> Option<Duration> {
        self.host.default_timeout_ms.map(Duration::from_millis)
    }
}

impl FunctionSection {
    /// This function's own timeout, if set.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_ms.map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_functions_and_resolves_paths() {
        let text = r#"
            [host]
            default_timeout_ms = 5000

            [functions."files::process"]
            component = "guests/files.wasm"
            timeout_ms = 100

            [functions."files::other"]
            component = "guests/files.wasm"
        "#;
        let manifest = Manifest::parse(text, "/srv").unwrap();
        assert_eq!(manifest.default_timeout(), Some(Duration::from_secs(5)));
        let process = &manifest.functions["files::process"];
        assert_eq!(process.timeout(), Some(Duration::from_millis(100)));
        assert_eq!(manifest.source(process), ComponentSource::File("/srv/guests/files.wasm".into()));
        assert_eq!(manifest.functions["files::other"].timeout(), None);
    }

    #[test]
    fn typos_are_errors_not_silently_ignored() {
        let err = Manifest::parse("[functions.\"a\"]\ncomponnet = \"x.wasm\"\n", "/").unwrap_err();
        assert!(err.to_string().contains("componnet"), "{err}");
        assert!(Manifest::parse("[hots]\n", "/").is_err());
        assert!(Manifest::parse("[functions.\"a\"]\n", "/").is_err(), "component is required");
    }
}
