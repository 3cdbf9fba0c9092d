//! C guests: a directory with an `app.c` (and any other `.c` files) into a component,
//! with clang, wasi-libc and the `wasm-component-ld` linker that ships with Rust.
//!
//! The app includes `rill.h` (the C SDK, `guests/c/sdk`) and defines its table
//! `rill_functions`; the SDK implements the component's export over bindings for rill's
//! WIT world `function`. Those bindings are generated here, in process, by the same
//! generator as `wit-bindgen c` (the `wit-bindgen-c` crate, [`WIT_BINDGEN_C_VERSION`]):
//! `function.h`, `function.c` and `function_component_type.o`, the object whose custom
//! section carries the component type. The SDK and the WIT are built into this crate, so
//! an app directory anywhere builds the same way.
//! The generator is behind the default `c` feature (the test artifacts' build script,
//! which builds only Rust guests, goes without it).
//!
//! A build, in a work directory of its own (see the `app` module), is one clang run:
//!
//! ```text
//! clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wall -Wextra -I sdk -I gen
//!   -fuse-ld=<rustc sysroot>/lib/rustlib/<host>/bin/wasm-component-ld
//!   -Wl,--wasi-adapter=reactor -Wl,--strip-all -Wl,-z,stack-size=1048576
//!   -o app.wasm app/*.c sdk/rill.c gen/function.c gen/function_component_type.o
//! ```
//!
//! `wasm-component-ld` links the core module and turns it into a component with its
//! built-in WASI preview-1 reactor adapter. Tools are found as follows:
//!
//! - clang: `$RILL_CLANG` if set, else `clang-19`, `clang-20`, `clang-18` or `clang` on
//!   `PATH`, the first whose `--version` is at least 15;
//! - wasi-libc: clang's default sysroot (Debian's `wasi-libc` package), or
//!   `$RILL_WASI_SYSROOT` (a wasi-sdk `share/wasi-sysroot`), passed as `--sysroot`;
//! - the compiler runtime: clang's own (`libclang-rt-19-dev-wasm32` on Debian);
//! - the linker: from the Rust toolchain that runs rill (`rustc --print sysroot`, `rustc
//!   -vV`'s host), the `wasm32-wasip2` target added with rustup if it is missing.
//!
//! What is missing is reported as [`BuildError::Toolchain`], naming it and the command
//! that installs it. A build takes a fraction of a second; its component is cached under
//! a digest of the app, the SDK, the WIT, the flags and the tools' versions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

#[cfg(feature = "c")]
use wit_bindgen_core::wit_parser::{Resolve, SourceMap};

use crate::BuildError;
use crate::app::{self, App, WIT};

/// The `wit-bindgen-c` release the bindings are generated with (the generator of
/// `wit-bindgen c`, as a library).
pub const WIT_BINDGEN_C_VERSION: &str = "0.61.1";

/// The C SDK: `rill.h`, `rill.c`.
const SDK: &[(&str, &str)] = &[
    ("rill.h", include_str!("../../guests/c/sdk/rill.h")),
    ("rill.c", include_str!("../../guests/c/sdk/rill.c")),
];

/// The oldest clang that builds the SDK for `wasm32-wasi`.
const MIN_CLANG: u32 = 15;

/// What Debian needs for C guests, for error messages.
const APT_INSTALL: &str = "apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32";

/// clang's flags, besides the files (part of the digest).
const FLAGS: &[&str] = &[
    "--target=wasm32-wasi",
    "-O2",
    "-mexec-model=reactor",
    "-Wall",
    "-Wextra",
    "-Wl,--wasi-adapter=reactor",
    "-Wl,--strip-all",
    "-Wl,-z,stack-size=1048576",
];

/// Build the C app in `app_dir` (every `.c` file in it, `app.c` among them) into a
/// component under `cache` (see the module docs); the component's path.
///
/// # Errors
///
/// [`BuildError::NotAnApp`] without an `app.c`, [`BuildError::Toolchain`] when clang,
/// wasi-libc, clang's wasm32 runtime or the linker is missing (naming it and how to
/// install it) or the bindings cannot be generated, [`BuildError::Tool`] when clang
/// rejects the app (its errors are printed to stderr).
pub fn build_c(app_dir: &Path, cache: &Path) -> Result<PathBuf, BuildError> {
    let app = App::read(app_dir, "C", "app.c")?;
    let sources: Vec<PathBuf> = app
        .files
        .iter()
        .map(|(relative, _)| relative.clone())
        .filter(|relative| relative.extension().is_some_and(|ext| ext == "c"))
        .collect();
    let clang = find_clang()?;
    let sysroot = std::env::var_os("RILL_WASI_SYSROOT").filter(|s| !s.is_empty()).map(PathBuf::from);
    check_wasi_libc(&clang.path, sysroot.as_deref())?;
    let linker = component_linker()?;
    let linker_version = version_line(&linker).unwrap_or_default();
    let tools = format!(
        "{}\n{linker_version}\nwit-bindgen-c {WIT_BINDGEN_C_VERSION}\n{}\n{}",
        clang.version,
        FLAGS.join(" "),
        sysroot.as_deref().map(|s| s.display().to_string()).unwrap_or_default(),
    );
    let digest = app.digest("clang", &tools, &[WIT, SDK]);
    static BUILDING: Mutex<()> = Mutex::new(());
    app::cached_build(cache, "c", &digest, &BUILDING, |work| {
        generate_bindings(&work.join("gen"))?;
        app::write_files(&work.join("sdk"), SDK)?;
        // Built from a copy, so the sources compiled are exactly those digested.
        app.copy_to(&work.join("app"))?;
        let partial = work.join("app.wasm");
        tracing::info!(app = %app_dir.display(), "building a C guest with {}", clang.version);
        let mut command = Command::new(&clang.path);
        command.args(FLAGS).arg("-I").arg(work.join("sdk")).arg("-I").arg(work.join("gen"));
        if let Some(sysroot) = &sysroot {
            command.arg("--sysroot").arg(sysroot);
        }
        command.arg(format!("-fuse-ld={}", linker.display())).arg("-o").arg(&partial);
        command.args(sources.iter().map(|relative| work.join("app").join(relative)));
        command.arg(work.join("sdk").join("rill.c"));
        command.arg(work.join("gen").join("function.c"));
        command.arg(work.join("gen").join("function_component_type.o"));
        let status = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|source| BuildError::Spawn { program: clang.path.display().to_string(), source })?;
        if !status.success() {
            return Err(BuildError::Tool { tool: "clang", dir: app_dir.to_path_buf() });
        }
        Ok(partial)
    })
}

/// A clang found for the build: how to run it and its `--version` line.
struct Clang {
    path: PathBuf,
    version: String,
}

/// The clang to build with (see the module docs).
fn find_clang() -> Result<Clang, BuildError> {
    let toolchain = |message: String| BuildError::Toolchain { tool: "clang", message };
    if let Some(chosen) = std::env::var_os("RILL_CLANG").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(chosen);
        let version = version_line(&path)
            .ok_or_else(|| toolchain(format!("RILL_CLANG={} cannot be run", path.display())))?;
        return match clang_major(&version) {
            Some(major) if major >= MIN_CLANG => Ok(Clang { path, version }),
            _ => Err(toolchain(format!(
                "RILL_CLANG={} is not clang {MIN_CLANG} or newer (it says {version:?})",
                path.display()
            ))),
        };
    }
    let mut too_old = Vec::new();
    for name in ["clang-19", "clang-20", "clang-18", "clang"] {
        let path = PathBuf::from(name);
        let Some(version) = version_line(&path) else { continue };
        match clang_major(&version) {
            Some(major) if major >= MIN_CLANG => return Ok(Clang { path, version }),
            _ => too_old.push(format!("{name} ({version})")),
        }
    }
    let found =
        if too_old.is_empty() { String::new() } else { format!(" (found only {})", too_old.join(", ")) };
    Err(toolchain(format!(
        "clang-19 not found{found}: {APT_INSTALL} (or set RILL_CLANG to a clang {MIN_CLANG}+ with a wasm32 target)"
    )))
}

/// The first line of `program --version`, if it runs and succeeds.
fn version_line(program: &Path) -> Option<String> {
    let output =
        Command::new(program).arg("--version").stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().next().map(|line| line.trim().to_owned())
}

/// The major version in a `clang --version` line ("Debian clang version 19.1.7 (…)").
fn clang_major(version: &str) -> Option<u32> {
    let after = version.split("version ").nth(1)?;
    after.split('.').next()?.trim().parse().ok()
}

/// Check that clang finds wasi-libc's headers and its own wasm32 runtime, so that their
/// absence is named instead of surfacing as a compile error.
fn check_wasi_libc(clang: &Path, sysroot: Option<&Path>) -> Result<(), BuildError> {
    let mut command = Command::new(clang);
    command.args(["--target=wasm32-wasi", "-print-libgcc-file-name"]);
    if let Some(sysroot) = sysroot {
        command.arg("--sysroot").arg(sysroot);
    }
    let runtime = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    match runtime {
        Some(path) if path.is_file() => {}
        other => {
            let path = other.map(|p| format!(" ({} is missing)", p.display())).unwrap_or_default();
            return Err(BuildError::Toolchain {
                tool: "clang",
                message: format!(
                    "clang's wasm32 runtime libclang_rt.builtins-wasm32.a not found{path}: {APT_INSTALL}"
                ),
            });
        }
    }
    // The header every C guest includes, where clang looks for it.
    let header = match sysroot {
        Some(sysroot) => sysroot.join("include").join("wasm32-wasi").join("stdlib.h"),
        None => PathBuf::from("/usr/include/wasm32-wasi/stdlib.h"),
    };
    let flat = sysroot.map(|s| s.join("include").join("stdlib.h"));
    if header.is_file() || flat.is_some_and(|f| f.is_file()) {
        return Ok(());
    }
    Err(BuildError::Toolchain {
        tool: "wasi-libc",
        message: format!(
            "wasi-libc not found ({} is missing): {APT_INSTALL}, or set RILL_WASI_SYSROOT to a wasi-sysroot",
            header.display()
        ),
    })
}

/// `wasm-component-ld` of the Rust toolchain that runs rill, adding the `wasm32-wasip2`
/// target first if it is not there.
fn component_linker() -> Result<PathBuf, BuildError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let ask = |args: &[&str]| -> Result<String, BuildError> {
        let output =
            Command::new(&rustc).args(args).stdin(Stdio::null()).output().map_err(|source| {
                BuildError::Spawn { program: rustc.to_string_lossy().into_owned(), source }
            })?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let sysroot = PathBuf::from(ask(&["--print", "sysroot"])?.trim());
    let verbose = ask(&["-vV"])?;
    let host =
        verbose.lines().find_map(|line| line.strip_prefix("host: ")).map(str::trim).unwrap_or_default();
    let linker = sysroot.join("lib").join("rustlib").join(host).join("bin").join("wasm-component-ld");
    if !linker.is_file() {
        crate::ensure_target()?;
    }
    if linker.is_file() {
        return Ok(linker);
    }
    Err(BuildError::Toolchain {
        tool: "wasm-component-ld",
        message: format!(
            "{} not found: it ships with Rust 1.82+ and its wasm32-wasip2 target (rustup update; rustup target add {})",
            linker.display(),
            crate::GUEST_TARGET
        ),
    })
}

/// Without the `c` feature there is no generator: say so.
#[cfg(not(feature = "c"))]
fn generate_bindings(_dir: &Path) -> Result<(), BuildError> {
    Err(BuildError::Toolchain {
        tool: "wit-bindgen-c",
        message: "this rill-build was built without its `c` feature (default), which C guests need".into(),
    })
}

/// Generate the C bindings of rill's world into `dir`: `function.h`, `function.c` and
/// `function_component_type.o`.
#[cfg(feature = "c")]
fn generate_bindings(dir: &Path) -> Result<(), BuildError> {
    let failed = |what: &str, why: String| BuildError::Toolchain {
        tool: "wit-bindgen-c",
        message: format!("cannot {what} rill's WIT: {why}"),
    };
    let mut map = SourceMap::default();
    for (name, text) in WIT {
        map.push_str(name, *text);
    }
    let group = map.parse().map_err(|(_, err)| failed("parse", err.to_string()))?;
    let mut resolve = Resolve::default();
    let package = resolve.push_group(group).map_err(|err| failed("resolve", err.to_string()))?;
    let world = resolve
        .select_world(&[package], Some(app::WORLD))
        .map_err(|err| failed("find the world of", err.to_string()))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .map_err(|err| failed("generate C bindings for", format!("{err:#}")))?;
    std::fs::create_dir_all(dir).map_err(|source| BuildError::Write { path: dir.to_path_buf(), source })?;
    for (name, bytes) in files.iter() {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| BuildError::Write { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::clang_major;

    #[test]
    fn clang_versions_are_read() {
        assert_eq!(clang_major("Debian clang version 19.1.7 (3~deb12u1)"), Some(19));
        assert_eq!(clang_major("clang version 15.0.0"), Some(15));
        assert_eq!(clang_major("Apple clang version 16.0.0 (clang-1600.0.26.6)"), Some(16));
        assert_eq!(clang_major("gcc (Debian 12.2.0-14) 12.2.0"), None);
    }
}
