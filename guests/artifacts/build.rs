//! Builds every guest in `guests/rust` and generates `$OUT_DIR/guests.rs`: one `Guest`
//! constant per component (the type is in `src/lib.rs`), the list of all of them, and the
//! `foreach_test_guest!` macro. See the crate docs for the design.
//!
//! The steps:
//!
//! 1. Make sure the `wasm32-wasip2` standard library is installed (`rustup target add`
//!    when `rustc --print target-libdir` shows it missing), so a fresh machine needs no
//!    manual step. This and step 4 are `rill-build`'s, the builder the `rill` CLI uses.
//! 2. Read the guest workspace's packages (`cargo metadata`): every `cdylib` is a guest,
//!    and must declare the ids it serves in `[package.metadata.rill] functions`.
//! 3. Check that list against the guest's `rill_guest::export!` block, when it has one.
//! 4. Build every guest crate in one `cargo build --release --target wasm32-wasip2`,
//!    into the guest workspace's own target directory, and take each component's path
//!    from cargo's own report.
//!
//! Any failure panics with what went wrong and what to do: a build script that produced
//! an empty or stale list would let the tests pass while testing nothing.

#![allow(clippy::print_stdout, reason = "a build script talks to cargo on stdout")]

use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

fn main() {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env_var("OUT_DIR"));
    // `guests/artifacts` → `guests` → the repository.
    let guests_dir = manifest_dir.parent().unwrap_or_else(|| fail("guests/artifacts has no parent"));
    let repo = guests_dir.parent().unwrap_or_else(|| fail("guests/ has no parent"));
    let workspace = guests_dir.join("rust");

    // What the guests are built from: their workspace, and what its crates depend on by
    // path (the SDK's bindings come from `wit/`, the wire vocabulary from `protocol/`,
    // the plugin example's world from `examples/wit/`).
    // Directories are scanned whole; `guests/rust/target` is deliberately not among them.
    for path in [
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        workspace.join("sdk"),
        workspace.join("examples"),
        workspace.join("test-guests"),
        repo.join("wit"),
        // The world of the plugin_host example's guest (`examples/line-numbers`).
        repo.join("examples/wit"),
        repo.join("protocol/Cargo.toml"),
        repo.join("protocol/src"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    rill_build::ensure_target().unwrap_or_else(|err| fail(&describe(&err)));
    let guests = read_guests(&workspace);
    let components = build(&workspace, &guests);
    std::fs::write(out_dir.join("guests.rs"), generate(&guests, &components))
        .unwrap_or_else(|e| fail(&format!("cannot write {}/guests.rs: {e}", out_dir.display())));
}

/// One guest crate of the workspace, as `cargo metadata` describes it.
struct GuestCrate {
    /// Cargo's id of the package, to find its artifact in the build's report.
    package_id: String,
    /// The package name.
    package: String,
    /// The crate's directory relative to `guests/rust`, e.g. `test-guests/calls`.
    dir: String,
    /// The function ids it declares in `[package.metadata.rill] functions`.
    functions: Vec<String>,
}

impl GuestCrate {
    /// The Rust name of the guest: its directory's last part, `-` as `_`.
    fn name(&self) -> String {
        self.dir.rsplit('/').next().unwrap_or(&self.dir).replace('-', "_")
    }

    /// `Kind::Test` for `test-guests/*`, `Kind::Example` for `examples/*`.
    fn kind(&self) -> &'static str {
        match self.dir.split('/').next() {
            Some("test-guests") => "Test",
            Some("examples") => "Example",
            _ => fail(&format!(
                "guest crate {} is in guests/rust/{}: put guests under examples/ or test-guests/",
                self.package, self.dir
            )),
        }
    }
}

fn env_var(name: &str) -> String {
    env::var(name).unwrap_or_else(|_| fail(&format!("cargo did not set {name}")))
}

/// Stop the build with `message`, framed so it stands out in cargo's output.
fn fail(message: &str) -> ! {
    panic!("\n\nrill-test-artifacts: {message}\n\n")
}

/// Every guest crate (`cdylib`) of the workspace, with the ids it declares.
fn read_guests(workspace: &Path) -> Vec<GuestCrate> {
    let output = rill_build::cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo: {e}")));
    if !output.status.success() {
        fail("`cargo metadata` failed on guests/rust (its errors are printed above)");
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| fail(&format!("`cargo metadata` printed no JSON: {e}")));
    let workspace_root = PathBuf::from(str_at(&metadata, "workspace_root"));
    let mut guests = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let is_guest = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|target| target["kind"].as_array().into_iter().flatten().any(|kind| kind == "cdylib"));
        if !is_guest {
            continue; // the SDK and shared test code
        }
        let name = str_at(package, "name");
        let manifest = PathBuf::from(str_at(package, "manifest_path"));
        let dir = manifest
            .parent()
            .and_then(|dir| dir.strip_prefix(&workspace_root).ok())
            .unwrap_or_else(|| fail(&format!("{name} is outside guests/rust")))
            .to_string_lossy()
            .replace('\\', "/");
        // An empty list is allowed, for a component of some other world (a plugin of an
        // application's own WIT, say); a missing one is not, so none is forgotten.
        let functions: Vec<String> = match package["metadata"]["rill"]["functions"].as_array() {
            Some(ids) => ids
                .iter()
                .map(|id| id.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .unwrap_or_else(|| fail(&format!("{name}: every function id must be a string"))),
            _ => fail(&format!(
                "guest crate {name} (guests/rust/{dir}) does not declare its function ids: add \
                 `[package.metadata.rill] functions = [\"ns::id\", …]` to its Cargo.toml (`[]` \
                 for a component that serves no rill function)"
            )),
        };
        check_export_list(name, &manifest, &functions);
        guests.push(GuestCrate {
            package_id: str_at(package, "id").to_owned(),
            package: name.to_owned(),
            dir,
            functions,
        });
    }
    if guests.is_empty() {
        fail("cargo metadata lists no guest crate in guests/rust");
    }
    guests.sort_by(|a, b| a.dir.cmp(&b.dir));
    guests
}

fn str_at<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| fail(&format!("`cargo metadata` gave no {key:?}")))
}

/// A guest using `rill_guest::export! { "id" => handler, … }` names its ids there too:
/// they must be exactly the declared ones. (Guests without that block are checked at
/// test time, by calling every declared id.)
fn check_export_list(package: &str, manifest: &Path, declared: &[String]) {
    let lib = manifest.with_file_name("src").join("lib.rs");
    let Ok(source) = std::fs::read_to_string(&lib) else { return };
    let Some(exported) = export_list(&source) else { return };
    let declared: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
    let exported: BTreeSet<&str> = exported.iter().map(String::as_str).collect();
    if declared != exported {
        fail(&format!(
            "{package}: `[package.metadata.rill] functions` and the `export!` block in {} \
             disagree\n  declared only: {:?}\n  exported only: {:?}",
            lib.display(),
            declared.difference(&exported).collect::<Vec<_>>(),
            exported.difference(&declared).collect::<Vec<_>>(),
        ));
    }
}

/// The ids of a `rill_guest::export! { "a::b" => f, … }` block in `source`, if any.
fn export_list(source: &str) -> Option<Vec<String>> {
    let start = source.find("rill_guest::export!")? + "rill_guest::export!".len();
    let rest = source[start..].trim_start();
    let close = match rest.chars().next()? {
        '{' => '}',
        '(' => ')',
        _ => return None,
    };
    let body = &rest[1..rest.find(close)?];
    let mut ids = Vec::new();
    let mut parts = body.split('"');
    parts.next(); // before the first quote
    while let (Some(id), Some(after)) = (parts.next(), parts.next()) {
        if after.trim_start().starts_with("=>") {
            ids.push(id.to_owned());
        }
    }
    // `export!(handler)` serves every id: there is no list to check.
    (!ids.is_empty()).then_some(ids)
}

/// Build every guest crate once, with the same builder as the `rill` CLI (`rill-build`),
/// into the guest workspace's own target directory: shared with its own checks and with
/// `rill call` building `rill.toml` crates, so a guest is compiled once for all of them.
/// Each guest package's component, by package id.
fn build(workspace: &Path, guests: &[GuestCrate]) -> BTreeMap<String, PathBuf> {
    let dirs: Vec<PathBuf> = guests.iter().map(|guest| workspace.join(&guest.dir)).collect();
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let components = rill_build::build_crates(&dirs).unwrap_or_else(|err| {
        fail(&format!("building the guests in guests/rust failed: {}", describe(&err)))
    });
    guests.iter().map(|guest| guest.package_id.clone()).zip(components).collect()
}

/// A builder error with its cause (`BuildError`'s causes are I/O or TOML errors, which
/// have none of their own).
fn describe(err: &rill_build::BuildError) -> String {
    match std::error::Error::source(err) {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    }
}

/// The generated Rust: a constant per guest, `GUESTS`, and `foreach_test_guest!`.
fn generate(guests: &[GuestCrate], components: &BTreeMap<String, PathBuf>) -> String {
    let mut code = String::new();
    let mut consts = BTreeSet::new();
    let mut ids = BTreeMap::new();
    for guest in guests {
        let component = components.get(&guest.package_id).unwrap_or_else(|| {
            fail(&format!("cargo reported no .wasm for {} (is it a `cdylib`?)", guest.package))
        });
        let len = std::fs::metadata(component).map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            fail(&format!("{} is missing or empty after the build", component.display()));
        }
        // A component removed later (`cargo clean` in guests/rust) makes cargo run this
        // script again, instead of leaving the tests a path to nothing.
        println!("cargo:rerun-if-changed={}", component.display());
        let name = guest.name();
        let constant = name.to_uppercase();
        if !consts.insert(constant.clone()) {
            fail(&format!("two guest crates are named {name}: rename one directory"));
        }
        for id in &guest.functions {
            if let Some(other) = ids.insert(id.clone(), guest.package.clone()) {
                fail(&format!("function id {id} is declared by both {other} and {}", guest.package));
            }
        }
        let list: Vec<String> = guest.functions.iter().map(|id| format!("`{id}`")).collect();
        let _ = writeln!(
            code,
            "/// `guests/rust/{dir}` (package `{package}`): serves {list}.\n\
             pub const {constant}: Guest = Guest {{\n    \
                 name: {name:?},\n    \
                 dir: {dir:?},\n    \
                 package: {package:?},\n    \
                 kind: Kind::{kind},\n    \
                 component: {component:?},\n    \
                 functions: &{functions:?},\n\
             }};\n",
            dir = guest.dir,
            package = guest.package,
            list = list.join(", "),
            kind = guest.kind(),
            functions = guest.functions,
        );
    }
    let all: Vec<String> = guests.iter().map(|g| g.name().to_uppercase()).collect();
    let _ = writeln!(
        code,
        "/// Every guest of `guests/rust`, examples first.\npub const GUESTS: &[Guest] = &[{}];\n",
        all.join(", ")
    );

    let tests: Vec<String> = guests
        .iter()
        .filter(|g| g.kind() == "Test")
        .map(|g| format!("        $mac!({});", g.name()))
        .collect();
    let _ = writeln!(
        code,
        "/// Invokes `$mac!(name)` once per test guest (`guests/rust/test-guests/<name>`), the\n\
         /// way wasmtime's `foreach_*!` macros do, so that a test suite can insist at compile\n\
         /// time that every test guest has tests (see the crate docs).\n\
         #[macro_export]\n\
         macro_rules! foreach_test_guest {{\n    \
             ($mac:ident) => {{\n{}\n    }};\n\
         }}",
        tests.join("\n")
    );
    code
}
