//! Running cargo (and rustup) to build guest crates, and reading what it built.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::{BuildError, GUEST_TARGET};

/// Build the guest crates in `dirs` and return their components, in order. Crates of
/// one workspace are built by one cargo invocation; each crate is built at most once per
/// process, one build at a time (cargo would serialize them on its lock anyway).
///
/// # Errors
///
/// [`BuildError`]: a directory that is not a crate, the target, or cargo.
pub fn build_crates(dirs: &[&Path]) -> Result<Vec<PathBuf>, BuildError> {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let crates = dirs.iter().map(|dir| Crate::at(dir)).collect::<Result<Vec<_>, _>>()?;
    // Held across the build: concurrent requests wait for it, then find their results.
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    let mut groups: BTreeMap<&Path, Vec<&Crate>> = BTreeMap::new();
    for krate in crates.iter().filter(|krate| !built.contains_key(&krate.manifest)) {
        groups.entry(&krate.workspace).or_default().push(krate);
    }
    if !groups.is_empty() {
        ensure_target()?;
    }
    for (workspace, members) in groups {
        let wasms = cargo_build(workspace, &members)?;
        for krate in members {
            let wasm = wasms.get(&krate.manifest).ok_or_else(|| BuildError::NoArtifact(krate.dir.clone()))?;
            built.insert(krate.manifest.clone(), wasm.clone());
        }
    }
    crates
        .iter()
        .map(|krate| {
            built.get(&krate.manifest).cloned().ok_or_else(|| BuildError::NoArtifact(krate.dir.clone()))
        })
        .collect()
}

/// A guest crate: its manifest, its package name and the workspace it builds in.
struct Crate {
    dir: PathBuf,
    /// Its `Cargo.toml`, canonical (cargo reports artifacts by this path).
    manifest: PathBuf,
    package: String,
    /// The `Cargo.toml` of the nearest enclosing directory with a `[workspace]` table
    /// (the crate's own if it is a workspace by itself), as cargo finds it.
    workspace: PathBuf,
}

impl Crate {
    fn at(dir: &Path) -> Result<Crate, BuildError> {
        let not_a_crate = || BuildError::NotACrate(dir.to_path_buf());
        let manifest = dir.join("Cargo.toml").canonicalize().map_err(|_| not_a_crate())?;
        let table = read_toml(&manifest)?;
        let package = table
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .ok_or_else(not_a_crate)?
            .to_owned();
        let mut workspace = manifest.clone();
        for ancestor in manifest.ancestors().skip(1) {
            let candidate = ancestor.join("Cargo.toml");
            if candidate.is_file() && read_toml(&candidate)?.contains_key("workspace") {
                workspace = candidate;
                break;
            }
        }
        Ok(Crate { dir: dir.to_path_buf(), manifest, package, workspace })
    }
}

fn read_toml(path: &Path) -> Result<toml::Table, BuildError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| BuildError::Read { path: path.to_path_buf(), source })?;
    text.parse().map_err(|source| BuildError::InvalidManifest { path: path.to_path_buf(), source })
}

/// Environment a nested `cargo build` of guests must not inherit from the build or run
/// that started it: flags for the host build (`-D warnings` from CI, `-C
/// target-cpu=native`), clippy as the compiler wrapper under `cargo clippy`, and the
/// host's target directory or target triple, which would replace the guests'. The
/// jobserver (`CARGO_MAKEFLAGS`) is kept: a nested build then shares the outer build's job
/// tokens instead of starting as many jobs again.
const HOST_BUILD_ENV: [&str; 8] = [
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
];

/// A `cargo` command that inherits nothing meant for the build or run that started it
/// (host-build flags, target directory or triple, clippy wrapper), with no standard
/// input. Under `cargo run`, `cargo test` or a build script, `CARGO` names the cargo that
/// is running us.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for var in HOST_BUILD_ENV {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Make sure this toolchain has the [`GUEST_TARGET`] standard library, adding it with
/// `rustup target add` if `rustc --print target-libdir` shows it missing.
///
/// # Errors
///
/// [`BuildError::Spawn`] if it is missing and rustup cannot be run,
/// [`BuildError::TargetInstall`] if rustup fails or the library is still missing after.
pub fn ensure_target() -> Result<(), BuildError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let installed = || {
        let output = Command::new(&rustc)
            .args(["--print", "target-libdir", "--target", GUEST_TARGET])
            .stderr(Stdio::null())
            .output();
        let libdir = output
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        libdir.and_then(|dir| std::fs::read_dir(dir).ok()).is_some_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
        })
    };
    if installed() {
        return Ok(());
    }
    tracing::info!("installing the {GUEST_TARGET} target with rustup (once)");
    let status = Command::new("rustup")
        .args(["target", "add", GUEST_TARGET])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|source| BuildError::Spawn { program: "rustup".into(), source })?;
    if status.success() && installed() { Ok(()) } else { Err(BuildError::TargetInstall) }
}

/// Build `members` of the workspace whose manifest is `workspace`; their components by
/// crate manifest.
fn cargo_build(workspace: &Path, members: &[&Crate]) -> Result<HashMap<PathBuf, PathBuf>, BuildError> {
    let mut command = cargo();
    command
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            GUEST_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(workspace);
    for krate in members {
        command.args(["--package", &krate.package]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| BuildError::Spawn { program: "cargo".into(), source })?;
    let mut wasms = HashMap::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((manifest, wasm)) = artifact_wasm(&line) {
                wasms.insert(manifest, wasm);
            }
        }
    }
    let status = child.wait().map_err(|source| BuildError::Spawn { program: "cargo".into(), source })?;
    if !status.success() {
        return Err(BuildError::Failed(workspace.to_path_buf()));
    }
    Ok(wasms)
}

/// The crate manifest and `.wasm` named by one of cargo's JSON messages, if it reports
/// a component.
fn artifact_wasm(line: &str) -> Option<(PathBuf, PathBuf)> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let manifest = PathBuf::from(message.get("manifest_path")?.as_str()?);
    let wasm = message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)?;
    Some((manifest, wasm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_crates_own_wasm() {
        let ours = r#"{"reason":"compiler-artifact","manifest_path":"/g/files/Cargo.toml","filenames":["/t/files.wasm"]}"#;
        let dep = r#"{"reason":"compiler-artifact","manifest_path":"/g/sdk/Cargo.toml","filenames":["/t/libsdk.rlib"]}"#;
        assert_eq!(
            artifact_wasm(ours),
            Some((PathBuf::from("/g/files/Cargo.toml"), PathBuf::from("/t/files.wasm")))
        );
        assert_eq!(artifact_wasm(dep), None);
        assert_eq!(artifact_wasm(r#"{"reason":"build-finished","success":true}"#), None);
        assert_eq!(artifact_wasm("garbage"), None);
    }

    #[test]
    fn a_directory_without_a_crate_is_reported() {
        let dir = std::env::temp_dir();
        assert!(matches!(build_crates(&[&dir.join("no-such-crate")]), Err(BuildError::NotACrate(_))));
    }
}
