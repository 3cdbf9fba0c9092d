//! What the builders of non-Rust guests share: an app directory read once, a digest of
//! everything a build reads, a component cache keyed by it, and toolchains installed once
//! into the cache.
//!
//! A guest in Python, JavaScript or C is a directory of sources plus rill's SDK for the
//! language and rill's WIT (both built into this crate). Its build is a pure function of
//! those files and the pinned tool, so the component is kept at
//! `<cache>/<language>/<digest>.wasm`: an unchanged app is not built again, and a changed
//! one never meets a stale component. Builds write into a work directory of their own
//! process and rename the result into place, so processes building at once never see a
//! half-written file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::BuildError;

/// rill's WIT, as the host implements it: what every guest language's bindings come from.
pub(crate) const WIT: &[(&str, &str)] = &[
    ("world.wit", include_str!("../../wit/world.wit")),
    ("channels.wit", include_str!("../../wit/channels.wit")),
    ("functions.wit", include_str!("../../wit/functions.wit")),
];

/// The WIT world guests of every language implement.
pub(crate) const WORLD: &str = "function";

/// Directories an app's sources never include: tools' caches and installed packages.
const NOT_SOURCES: &[&str] = &["__pycache__", "node_modules"];

/// A guest app's sources, read once: paths relative to its directory, sorted, with their
/// contents. Hidden files and [`NOT_SOURCES`] are left out.
pub(crate) struct App {
    /// Its files.
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

impl App {
    /// Read the app in `dir`, which must hold `entry` (the module its language starts
    /// from).
    pub fn read(dir: &Path, language: &'static str, entry: &'static str) -> Result<App, BuildError> {
        if !dir.join(entry).is_file() {
            return Err(BuildError::NotAnApp { dir: dir.to_path_buf(), language, module: entry });
        }
        let mut relatives = Vec::new();
        list_files(dir, dir, &mut relatives)?;
        relatives.sort();
        let files = relatives
            .into_iter()
            .map(|relative| {
                let path = dir.join(&relative);
                let bytes = std::fs::read(&path).map_err(|source| BuildError::Read { path, source })?;
                Ok((relative, bytes))
            })
            .collect::<Result<_, BuildError>>()?;
        Ok(App { files })
    }

    /// A digest of everything a build reads: the tool and its version, the embedded files
    /// (the WIT, the SDK, build scripts) and the app's files, names and contents in a
    /// fixed order.
    pub fn digest(&self, tool: &str, version: &str, embedded: &[&[(&str, &str)]]) -> String {
        let mut digest = Sha256::new();
        let mut feed = |name: &str, bytes: &[u8]| {
            digest.update((name.len() as u64).to_le_bytes());
            digest.update(name.as_bytes());
            digest.update((bytes.len() as u64).to_le_bytes());
            digest.update(bytes);
        };
        feed(tool, version.as_bytes());
        for (name, text) in embedded.iter().copied().flatten() {
            feed(name, text.as_bytes());
        }
        for (relative, bytes) in &self.files {
            feed(&relative.to_string_lossy(), bytes);
        }
        format!("{:x}", digest.finalize())
    }

    /// Write a copy of the app's files under `dir` (tools that import or compile an app
    /// would otherwise leave their caches in the user's sources).
    pub fn copy_to(&self, dir: &Path) -> Result<(), BuildError> {
        for (relative, bytes) in &self.files {
            let path = dir.join(relative);
            if let Some(parent) = path.parent() {
                create_dir(parent)?;
            }
            std::fs::write(&path, bytes).map_err(|source| BuildError::Write { path, source })?;
        }
        Ok(())
    }
}

/// The component built from sources with `digest`, at `<cache>/<language>/<digest>.wasm`:
/// returned at once if it exists, else made by `build`, which gets an empty work
/// directory of this process's own and returns the path of the component it wrote there.
/// One build per language at a time in this process (`lock`), so concurrent requests for
/// the same app find it built.
pub(crate) fn cached_build(
    cache: &Path,
    language: &str,
    digest: &str,
    lock: &Mutex<()>,
    build: impl FnOnce(&Path) -> Result<PathBuf, BuildError>,
) -> Result<PathBuf, BuildError> {
    let built = cache.join(language).join(format!("{digest}.wasm"));
    let _building = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if built.is_file() {
        return Ok(built);
    }
    let work = cache.join(language).join(format!("{digest}.build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    create_dir(&work)?;
    let result = build(&work).and_then(|partial| {
        std::fs::rename(&partial, &built).map_err(|source| BuildError::Write { path: built.clone(), source })
    });
    let _ = std::fs::remove_dir_all(&work);
    result.map(|()| built)
}

/// A toolchain installed once into `<cache>/toolchains/<name>`: `install` fills a
/// directory of this process's own, which is renamed into place when complete, so
/// processes installing at once never use a half-made one. Returns the directory.
pub(crate) fn toolchain(
    cache: &Path,
    name: &str,
    tool: &'static str,
    install: impl FnOnce(&Path) -> Result<(), BuildError>,
) -> Result<PathBuf, BuildError> {
    let toolchains = cache.join("toolchains");
    let dir = toolchains.join(name);
    let complete = |dir: &Path| dir.join(".rill-complete").is_file();
    if complete(&dir) {
        return Ok(dir);
    }
    let partial = toolchains.join(format!("{name}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    create_dir(&partial)?;
    tracing::info!("installing {tool} into {}", dir.display());
    if let Err(err) = install(&partial) {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(err);
    }
    std::fs::write(partial.join(".rill-complete"), "")
        .map_err(|source| BuildError::Write { path: partial.clone(), source })?;
    if dir.is_dir() && !complete(&dir) {
        // Left by an install that did not finish in place.
        let _ = std::fs::remove_dir_all(&dir);
    }
    if std::fs::rename(&partial, &dir).is_err() {
        // Another process finished first; use its install.
        let _ = std::fs::remove_dir_all(&partial);
        if !complete(&dir) {
            return Err(BuildError::Toolchain {
                tool,
                message: format!("cannot move the new install into {}", dir.display()),
            });
        }
    }
    Ok(dir)
}

/// Run `command` with stdout discarded (stderr, where tools explain failures, stays the
/// user's); `Err` says how it ended.
pub(crate) fn run(command: &mut Command) -> Result<(), String> {
    match command.stdout(Stdio::null()).status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(status.to_string()),
        Err(err) => Err(err.to_string()),
    }
}

/// Write `files` (name, text) into `dir`, creating it.
pub(crate) fn write_files(dir: &Path, files: &[(&str, &str)]) -> Result<(), BuildError> {
    create_dir(dir)?;
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| BuildError::Write { path, source })?;
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(dir).map_err(|source| BuildError::Write { path: dir.to_path_buf(), source })
}

fn list_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), BuildError> {
    let read_dir = |source| BuildError::Read { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') || NOT_SOURCES.contains(&name.as_str()) {
            continue;
        }
        if path.is_dir() {
            list_files(root, &path, files)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            files.push(relative.to_path_buf());
        }
    }
    Ok(())
}
