//! Building Rust guest crates into components.
//!
//! A manifest may name a guest crate instead of a built `.wasm`; the host then runs
//! `cargo build --release --target wasm32-wasip2` on it (wit-bindgen guests need nothing
//! else: rustc links straight to a component) and loads what cargo reports it built. The
//! `wasm32-wasip2` standard library is added with `rustup` first if it is missing, so a
//! fresh machine needs no manual step.
//!
//! Builds run at most once per crate per process, one at a time (cargo would serialize
//! them on its lock anyway); later requests reuse the result.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The compilation target of guest components.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// Why a guest crate did not build.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The directory has no `Cargo.toml`.
    #[error("no Cargo.toml in {}", .0.display())]
    NotACrate(PathBuf),
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
    #[error("cargo could not build the crate (its errors are printed above)")]
    Failed,
    /// cargo succeeded but reported no `.wasm` for the crate.
    #[error("cargo built no .wasm for this crate; is it a `cdylib`?")]
    NoArtifact,
}

/// Build the guest crate in `crate_dir` and return the path of its component.
///
/// # Errors
///
/// [`BuildError`] when the target cannot be installed or cargo fails.
pub fn build(crate_dir: &Path) -> Result<PathBuf, BuildError> {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let manifest = crate_dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(BuildError::NotACrate(crate_dir.to_path_buf()));
    }
    let manifest = manifest.canonicalize().map_err(|_| BuildError::NotACrate(crate_dir.to_path_buf()))?;
    // Held across the build: concurrent requests for any crate wait for it, then find
    // their result in the map or build next.
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(wasm) = built.get(&manifest) {
        return Ok(wasm.clone());
    }
    ensure_target()?;
    let wasm = cargo_build(&manifest)?;
    built.insert(manifest, wasm.clone());
    Ok(wasm)
}

fn cargo() -> Command {
    // Under `cargo run`/`cargo test`, CARGO names the cargo that is running us.
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // Flags meant for the host build (for example `-C target-cpu=native` or `-D
    // warnings` from CI) must not leak into the guest build, nor a host target dir.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Make sure the standard library for [`GUEST_TARGET`] is installed.
fn ensure_target() -> Result<(), BuildError> {
    let listed =
        Command::new("rustup").args(["target", "list", "--installed"]).stderr(Stdio::null()).output();
    let Ok(listed) = listed else {
        // No rustup: the toolchain is managed some other way; let cargo report it.
        return Ok(());
    };
    if String::from_utf8_lossy(&listed.stdout).lines().any(|line| line.trim() == GUEST_TARGET) {
        return Ok(());
    }
    tracing::info!("installing the {GUEST_TARGET} target with rustup (once)");
    let status = Command::new("rustup")
        .args(["target", "add", GUEST_TARGET])
        .stdout(Stdio::null())
        .status()
        .map_err(|source| BuildError::Spawn { program: "rustup".into(), source })?;
    if status.success() { Ok(()) } else { Err(BuildError::TargetInstall) }
}

fn cargo_build(manifest: &Path) -> Result<PathBuf, BuildError> {
    let mut child = cargo()
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            GUEST_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| BuildError::Spawn { program: "cargo".into(), source })?;
    let mut wasm = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(path) = artifact_wasm(&line, manifest) {
                wasm = Some(path);
            }
        }
    }
    let status = child.wait().map_err(|source| BuildError::Spawn { program: "cargo".into(), source })?;
    if !status.success() {
        return Err(BuildError::Failed);
    }
    wasm.ok_or(BuildError::NoArtifact)
}

/// The `.wasm` named by one of cargo's JSON messages, if it is this crate's artifact.
fn artifact_wasm(line: &str, manifest: &Path) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    if Path::new(message.get("manifest_path")?.as_str()?) != manifest {
        return None;
    }
    message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_crates_own_wasm() {
        let manifest = Path::new("/g/files/Cargo.toml");
        let ours = r#"{"reason":"compiler-artifact","manifest_path":"/g/files/Cargo.toml","filenames":["/t/files.wasm"]}"#;
        let dep = r#"{"reason":"compiler-artifact","manifest_path":"/g/sdk/Cargo.toml","filenames":["/t/libsdk.rlib"]}"#;
        assert_eq!(artifact_wasm(ours, manifest), Some(PathBuf::from("/t/files.wasm")));
        assert_eq!(artifact_wasm(dep, manifest), None);
        assert_eq!(artifact_wasm(r#"{"reason":"build-finished","success":true}"#, manifest), None);
        assert_eq!(artifact_wasm("garbage", manifest), None);
    }

    #[test]
    fn a_directory_without_a_crate_is_reported() {
        let dir = std::env::temp_dir();
        assert!(matches!(build(&dir.join("no-such-crate")), Err(BuildError::NotACrate(_))));
    }
}
