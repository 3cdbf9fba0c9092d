//! JavaScript guests: a directory with an `app.js` into a component, with componentize-js.
//!
//! The app imports `rill-guest` (the JavaScript SDK, `guests/javascript/rill_guest`) and
//! registers its handlers with `fn(id, handler)`; it may import its own modules by
//! relative path. A build runs two pinned tools under Node: esbuild bundles an entry
//! that imports the app and re-exports the SDK's `handle` into one ES module (the bare
//! specifier `rill-guest` resolved to the SDK, the WIT imports `rill:host/…` left
//! alone), and componentize-js turns that module into a component of rill's world,
//! StarlingMonkey (SpiderMonkey) included, with its HTTP features off (they would import
//! `wasi:http`, which rill does not link). The SDK, the WIT, the build script
//! (`guests/javascript/toolchain/build.mjs`) and the toolchain's `package.json` and
//! `package-lock.json` are built into this crate, so an app directory anywhere builds
//! the same way, and all of them are part of the build's digest.
//!
//! The toolchain is installed once, at the pinned [`COMPONENTIZE_JS_VERSION`], into
//! `<cache>/toolchains/componentize-js-<version>` with `npm ci --ignore-scripts` from the
//! committed lockfile (every package at the version and integrity it records; concurrent
//! first uses are safe, see the `app` module). The machine needs `node` (18+) and `npm`,
//! and the npm registry (or npm's cache) on first use only. A build takes seconds, so its
//! component is kept in the cache under the digest: an unchanged app is not built again.
//! Builds run from a copy of the app in a work directory, never in the user's sources.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::BuildError;
use crate::app::{self, App, WIT, WORLD};

/// The componentize-js release JavaScript guests are built with (npm,
/// `@bytecodealliance/componentize-js`; verified with rill's WIT and wasmtime 48). The
/// versions of everything it pulls in are pinned by
/// `guests/javascript/toolchain/package-lock.json`.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// The oldest Node.js the toolchain runs on.
const NODE_MAJOR_MIN: u32 = 18;

/// The JavaScript SDK, `rill-guest` (ES modules).
const SDK: &[(&str, &str)] = &[
    ("index.js", include_str!("../../guests/javascript/rill_guest/index.js")),
    ("calls.js", include_str!("../../guests/javascript/rill_guest/calls.js")),
    ("channels.js", include_str!("../../guests/javascript/rill_guest/channels.js")),
    ("errors.js", include_str!("../../guests/javascript/rill_guest/errors.js")),
    ("function.js", include_str!("../../guests/javascript/rill_guest/function.js")),
    ("refs.js", include_str!("../../guests/javascript/rill_guest/refs.js")),
];

/// The toolchain's npm project: what `npm ci` installs, exactly.
const TOOLCHAIN: &[(&str, &str)] = &[
    ("package.json", include_str!("../../guests/javascript/toolchain/package.json")),
    ("package-lock.json", include_str!("../../guests/javascript/toolchain/package-lock.json")),
];

/// The build script Node runs (see its header for its arguments).
const BUILD_SCRIPT: &[(&str, &str)] =
    &[("build.mjs", include_str!("../../guests/javascript/toolchain/build.mjs"))];

/// Build the JavaScript app in `app_dir` (its module `app.js`) into a component under
/// `cache` (see the module docs); the component's path.
///
/// # Errors
///
/// [`BuildError::NotAnApp`] without an `app.js`, [`BuildError::Toolchain`] when `node`
/// or `npm` is missing or too old or the toolchain cannot be installed,
/// [`BuildError::Tool`] when esbuild or componentize-js rejects the app (their errors
/// are printed to stderr).
pub fn build_javascript(app_dir: &Path, cache: &Path) -> Result<PathBuf, BuildError> {
    let app = App::read(app_dir, "JavaScript", "app.js")?;
    let digest = app.digest("componentize-js", COMPONENTIZE_JS_VERSION, &[WIT, SDK, TOOLCHAIN, BUILD_SCRIPT]);
    static BUILDING: Mutex<()> = Mutex::new(());
    app::cached_build(cache, "javascript", &digest, &BUILDING, |work| {
        let toolchain = componentize_js(cache)?;
        app::write_files(&work.join("wit"), WIT)?;
        app::write_files(&work.join("sdk"), SDK)?;
        app::write_files(work, BUILD_SCRIPT)?;
        app.copy_to(&work.join("app"))?;
        let partial = work.join("app.wasm");
        tracing::info!(app = %app_dir.display(), "building a JavaScript guest with componentize-js {COMPONENTIZE_JS_VERSION}");
        let status = Command::new("node")
            .arg(work.join("build.mjs"))
            .arg(&toolchain)
            .arg(work.join("app"))
            .arg(work.join("sdk"))
            .arg(work.join("wit"))
            .arg(WORLD)
            .arg(&partial)
            .current_dir(work)
            .stdout(Stdio::null())
            .status()
            .map_err(|source| BuildError::Spawn { program: "node".into(), source })?;
        if !status.success() || !partial.is_file() {
            return Err(BuildError::Tool { tool: "componentize-js", dir: app_dir.to_path_buf() });
        }
        Ok(partial)
    })
}

/// The toolchain directory (its `node_modules` holds componentize-js and esbuild at the
/// lockfile's versions), installed into the cache on first use (see `app::toolchain`).
fn componentize_js(cache: &Path) -> Result<PathBuf, BuildError> {
    let toolchain = |message: String| BuildError::Toolchain { tool: "componentize-js", message };
    check_node().map_err(toolchain)?;
    let name = format!("componentize-js-{COMPONENTIZE_JS_VERSION}");
    app::toolchain(cache, &name, "componentize-js", |partial| {
        app::write_files(partial, TOOLCHAIN)?;
        // No install scripts: nothing pinned needs one (esbuild finds its binary in its
        // platform package without its postinstall check).
        app::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"])
                .current_dir(partial),
        )
        .map_err(|why| {
            toolchain(format!(
                "`npm ci` of componentize-js {COMPONENTIZE_JS_VERSION} failed ({why}); it needs the npm registry \
                 (or npm's cache) on first use"
            ))
        })
    })
}

/// `Ok` when `node` (at least [`NODE_MAJOR_MIN`]) and `npm` run; else what is missing
/// and what to do.
fn check_node() -> Result<(), String> {
    let version = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let install = format!("install Node.js {NODE_MAJOR_MIN}+ (with npm) to build JavaScript guests");
    let (node, npm) = (version("node"), version("npm"));
    let node = match (node, npm.is_some()) {
        (None, false) => return Err(format!("node and npm not found: {install}")),
        (None, true) => return Err(format!("node not found: {install}")),
        (Some(_), false) => return Err(format!("npm not found: {install}")),
        (Some(node), true) => node,
    };
    let major = node.trim_start_matches('v').split('.').next().and_then(|major| major.parse::<u32>().ok());
    match major {
        Some(major) if major >= NODE_MAJOR_MIN => Ok(()),
        _ => Err(format!("node {node} is too old: {install}")),
    }
}
