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
//! `pip` from PyPI; concurrent first uses are safe). A build takes seconds, so its
//! component is kept in the cache under a digest of everything that went into it (see
//! the `app` module): an unchanged app is not built again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::BuildError;
use crate::app::{self, App, WIT, WORLD};

/// The componentize-py release Python guests are built with (PyPI; verified with rill's
/// WIT and wasmtime 48).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

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
/// componentize-py cannot be installed or run, [`BuildError::Tool`] when it rejects the
/// app (its errors are printed to stderr).
pub fn build_python(app_dir: &Path, cache: &Path) -> Result<PathBuf, BuildError> {
    let app = App::read(app_dir, "Python", "app.py")?;
    let digest = app.digest("componentize-py", COMPONENTIZE_PY_VERSION, &[WIT, SDK]);
    static BUILDING: Mutex<()> = Mutex::new(());
    app::cached_build(cache, "python", &digest, &BUILDING, |work| {
        let python = componentize_py(cache)?;
        app::write_files(&work.join("wit"), WIT)?;
        app::write_files(&work.join("sdk").join("rill_guest"), SDK)?;
        // Built from a copy: componentize-py imports the app to snapshot it, and CPython
        // would leave __pycache__ directories in the user's sources.
        app.copy_to(&work.join("app"))?;
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
            return Err(BuildError::Tool { tool: "componentize-py", dir: app_dir.to_path_buf() });
        }
        Ok(partial)
    })
}

/// Runs componentize-py's command line with the arguments after `-c`'s script.
const COMPONENTIZE: &str =
    "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())";

/// The Python of a virtual environment holding componentize-py at the pinned version,
/// installed into the cache on first use (see `app::toolchain`). The environment is
/// made in a temporary directory and renamed, so its scripts would name the old path:
/// the tool is run as `python -c`, which does not care.
fn componentize_py(cache: &Path) -> Result<PathBuf, BuildError> {
    let name = format!("componentize-py-{COMPONENTIZE_PY_VERSION}");
    let toolchain = |message: String| BuildError::Toolchain { tool: "componentize-py", message };
    let venv = app::toolchain(cache, &name, "componentize-py", |partial| {
        app::run(Command::new("python3").args(["-m", "venv"]).arg(partial)).map_err(|why| {
            toolchain(format!(
                "`python3 -m venv` failed ({why}); install Python 3.10+ with venv (apt-get install python3-venv)"
            ))
        })?;
        let requirement = format!("componentize-py=={COMPONENTIZE_PY_VERSION}");
        app::run(Command::new(partial.join("bin").join("python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &requirement,
        ]))
        .map_err(|why| toolchain(format!("`pip install {requirement}` failed ({why}); it needs PyPI")))
    })?;
    Ok(venv.join("bin").join("python"))
}
