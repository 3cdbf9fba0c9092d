//! Python guests: a directory with an `app.py` into a component, with componentize-py.
//!
//! The app imports `rill_guest` (the Python SDK, `guests/python/rill_guest`) and defines
//! its functions with `@rill_guest.function(id)`; componentize-py compiles CPython, the
//! app, the SDK and bindings for rill's WIT into one component. The SDK and the WIT are
//! built into this crate, so an app directory anywhere builds the same way.
//!
//! componentize-py itself is installed once, at the pinned
//! [`COMPONENTIZE_PY_VERSION`], into a virtual environment in the cache
//! (`<cache>/toolchains/componentize-py-<version>`, made with `python3 -m venv` and
//! `pip` from PyPI; concurrent first uses are safe). A build takes seconds, so its component is kept in the cache under a
//! digest of everything that went into it (the tool version, the WIT, the SDK and the
//! app's files): an unchanged app is not built again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::BuildError;

/// The componentize-py release Python guests are built with (PyPI; verified with rill's
/// WIT and wasmtime 48).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The WIT world Python guests implement.
const WORLD: &str = "function";

/// rill's WIT, as the host implements it.
const WIT: &[(&str, &str)] = &[
    ("world.wit", include_str!("../../wit/world.wit")),
    ("channels.wit", include_str!("../../wit/channels.wit")),
    ("functions.wit", include_str!("../../wit/functions.wit")),
];

/// The Python SDK, package `rill_guest`.
const SDK: &[(&str, &str)] = &[
    ("__init__.py", include_str!("../../guests/python/rill_guest/__init__.py")),
    ("calls.py", include_str!("../../guests/python/rill_guest/calls.py")),
    ("channels.py", include_str!("../../guests/python/rill_guest/channels.py")),
    ("errors.py", include_str!("../../guests/python/rill_guest/errors.py")),
    ("function.py", include_str!("../../guests/python/rill_guest/function.py")),
    ("refs.py", include_str!("../../guests/python/rill_guest/refs.py")),
];

/// Build the Python app in `app_dir` (its module `app.py`) into a component under
/// `cache` (see the module docs); the component's path.
///
/// # Errors
///
/// [`BuildError::NotAnApp`] without an `app.py`, [`BuildError::Toolchain`] when
/// componentize-py cannot be installed or run, [`BuildError::Componentize`] when it
/// rejects the app (its errors are printed to stderr).
pub fn build_python(app_dir: &Path, cache: &Path) -> Result<PathBuf, BuildError> {
    if !app_dir.join("app.py").is_file() {
        return Err(BuildError::NotAnApp {
            dir: app_dir.to_path_buf(),
            language: "Python",
            module: "app.py",
        });
    }
    let app = read_app(app_dir)?;
    let digest = sources_digest(&app);
    let built = cache.join("python").join(format!("{digest}.wasm"));
    // One build at a time in this process: others asking for the same app then find it
    // built. Another process building it too writes its own work directory, and the
    // rename into place is atomic.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _building = BUILDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if built.is_file() {
        return Ok(built);
    }
    let python = componentize_py(cache)?;
    let work = cache.join("python").join(format!("{digest}.build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    write_files(&work.join("wit"), WIT)?;
    write_files(&work.join("sdk").join("rill_guest"), SDK)?;
    // Built from a copy: componentize-py imports the app to snapshot it, and CPython
    // would leave __pycache__ directories in the user's sources.
    for (relative, bytes) in &app {
        let path = work.join("app").join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| BuildError::Write { path: parent.to_path_buf(), source })?;
        }
        std::fs::write(&path, bytes).map_err(|source| BuildError::Write { path, source })?;
    }
    let partial = work.join("app.wasm");
    tracing::info!(app = %app_dir.display(), "building a Python guest with componentize-py {COMPONENTIZE_PY_VERSION}");
    let status = Command::new(&python)
        .args(["-c", COMPONENTIZE, "-d"])
        .arg(work.join("wit"))
        .args(["-w", WORLD, "componentize", "app", "-p"])
        .arg(work.join("app"))
        .arg("-p")
        .arg(work.join("sdk"))
        .arg("-o")
        .arg(&partial)
        .stdout(Stdio::null())
        .status()
        .map_err(|source| BuildError::Spawn { program: python.display().to_string(), source })?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&work);
        return Err(BuildError::Componentize(app_dir.to_path_buf()));
    }
    std::fs::rename(&partial, &built).map_err(|source| BuildError::Write { path: built.clone(), source })?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(built)
}

/// Runs componentize-py's command line with the arguments after `-c`'s script.
const COMPONENTIZE: &str =
    "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())";

/// The Python of a virtual environment holding componentize-py at the pinned version,
/// installed into the cache on first use. The environment is made in a directory of this
/// process's own and renamed into place when complete, so processes installing at once
/// never use a half-made one (its scripts would name the old path, so the tool is run
/// as `python -c`, which does not care).
fn componentize_py(cache: &Path) -> Result<PathBuf, BuildError> {
    let toolchains = cache.join("toolchains");
    let venv = toolchains.join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"));
    let python = venv.join("bin").join("python");
    let complete = |venv: &Path| venv.join(".rill-complete").is_file();
    if complete(&venv) {
        return Ok(python);
    }
    let toolchain = |message: String| BuildError::Toolchain { tool: "componentize-py", message };
    let partial =
        toolchains.join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    tracing::info!("installing componentize-py {COMPONENTIZE_PY_VERSION} into {}", venv.display());
    run(Command::new("python3").args(["-m", "venv"]).arg(&partial)).map_err(|why| {
        toolchain(format!(
            "`python3 -m venv` failed ({why}); install Python 3.10+ with venv (apt-get install python3-venv)"
        ))
    })?;
    let requirement = format!("componentize-py=={COMPONENTIZE_PY_VERSION}");
    run(Command::new(partial.join("bin").join("python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &requirement,
    ]))
    .map_err(|why| toolchain(format!("`pip install {requirement}` failed ({why}); it needs PyPI")))?;
    std::fs::write(partial.join(".rill-complete"), "")
        .map_err(|source| BuildError::Write { path: partial.clone(), source })?;
    if venv.is_dir() && !complete(&venv) {
        // Left by a version of rill that installed in place.
        let _ = std::fs::remove_dir_all(&venv);
    }
    if std::fs::rename(&partial, &venv).is_err() {
        // Another process finished first; use its environment.
        let _ = std::fs::remove_dir_all(&partial);
        if !complete(&venv) {
            return Err(toolchain(format!("cannot move the new environment into {}", venv.display())));
        }
    }
    Ok(python)
}

fn run(command: &mut Command) -> Result<(), String> {
    match command.stdout(Stdio::null()).status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(status.to_string()),
        Err(err) => Err(err.to_string()),
    }
}

fn write_files(dir: &Path, files: &[(&str, &str)]) -> Result<(), BuildError> {
    std::fs::create_dir_all(dir).map_err(|source| BuildError::Write { path: dir.to_path_buf(), source })?;
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| BuildError::Write { path, source })?;
    }
    Ok(())
}

/// The app's files (paths relative to `app_dir`, sorted) and their contents; caches and
/// hidden files are left out.
fn read_app(app_dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, BuildError> {
    let mut files = Vec::new();
    app_files(app_dir, app_dir, &mut files)?;
    files.sort();
    files
        .into_iter()
        .map(|relative| {
            let path = app_dir.join(&relative);
            let bytes = std::fs::read(&path).map_err(|source| BuildError::Read { path, source })?;
            Ok((relative, bytes))
        })
        .collect()
}

/// A digest of everything a build reads: the tool's version, the WIT, the SDK and the
/// app's files (names and contents, in a fixed order).
fn sources_digest(app: &[(PathBuf, Vec<u8>)]) -> String {
    let mut digest = Sha256::new();
    let mut feed = |name: &str, bytes: &[u8]| {
        digest.update((name.len() as u64).to_le_bytes());
        digest.update(name.as_bytes());
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(bytes);
    };
    feed("componentize-py", COMPONENTIZE_PY_VERSION.as_bytes());
    for (name, text) in WIT.iter().chain(SDK) {
        feed(name, text.as_bytes());
    }
    for (relative, bytes) in app {
        feed(&relative.to_string_lossy(), bytes);
    }
    format!("{:x}", digest.finalize())
}

fn app_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), BuildError> {
    let read_dir = |source| BuildError::Read { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(read_dir)? {
        let path = entry.map_err(read_dir)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') || name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            app_files(root, &path, files)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            files.push(relative.to_path_buf());
        }
    }
    Ok(())
}
