//! # rill-test-artifacts: the guest components rill's tests run
//!
//! This crate's build script builds the guest workspace (`guests/rust`) once, with
//! `cargo build --release --target wasm32-wasip2`, and generates one [`Guest`] constant
//! per component (for example [`CALLS`], [`HOSTILE`], [`FILES`]), the list [`GUESTS`],
//! and the [`foreach_test_guest!`] macro. Tests and the CLI's tests take every
//! component path and function id from here; nothing builds a guest at test run time,
//! and no list of guests or ids is written by hand anywhere else. This is wasmtime's
//! `crates/test-programs/artifacts` pattern.
//!
//! # Building
//!
//! - A fresh machine needs no manual step: when `rustc --print target-libdir --target
//!   wasm32-wasip2` has no standard library in it, the build script runs `rustup target
//!   add wasm32-wasip2` first.
//! - The nested cargo gets none of the host build's flags (`RUSTFLAGS`,
//!   `CARGO_ENCODED_RUSTFLAGS`, clippy's `RUSTC_WORKSPACE_WRAPPER`, a `CARGO_TARGET_DIR`,
//!   a `CARGO_BUILD_TARGET`) but keeps its jobserver, so it shares the outer build's
//!   jobs. It builds into `guests/rust/target`, the guest workspace's own target
//!   directory, which the guest workspace's lint step and `rill call`'s building of
//!   `rill.toml` crates use too: each guest is compiled once for all of them.
//! - It reruns when anything under `guests/rust` (but its `target/`), `wit/` or the
//!   `protocol/` crate changes, or when a built component is changed or removed; the
//!   nested cargo then rebuilds only what changed.
//! - Any failure stops the build with a message saying what failed: a missing target
//!   that rustup cannot add, a guest that does not compile, a `cdylib` with no `.wasm`
//!   or no declared ids. It never produces an empty or partial list.
//!
//! # Function ids: declared once, in the guest's `Cargo.toml`
//!
//! Each guest crate lists the ids it serves in its own manifest:
//!
//! ```toml
//! [package.metadata.rill]
//! functions = ["test::echo", "test::raw"]
//! ```
//!
//! A component that is not a rill function (a plugin of an application's own world)
//! declares `functions = []`; a `cdylib` without the key fails the build, so no guest is
//! forgotten. That list is the only one: [`Guest::functions`] is generated from it, and the tests'
//! hosts, the CLI tests' manifest and the test-exists checks all read it. It lives in
//! `Cargo.toml` rather than being scraped from source because every guest has one,
//! whatever it is written with: SDK guests dispatch in `rill_guest::export!`, but guests
//! written against `wit/` alone match on the id themselves, and `cargo metadata` reads
//! the manifest reliably where parsing arbitrary Rust would not. Two checks keep the list
//! true to what the component serves:
//!
//! - at build time, for a guest with a `rill_guest::export! { "id" => handler, … }`
//!   block, the block's ids must be exactly the declared ones (in both directions);
//! - at test time, `tests/all/guests.rs` calls every declared id of every guest and
//!   fails if the component answers that it does not serve it. It also checks that
//!   `rill.toml`, the example manifest, maps each id to the crate that declares it.
//!
//! # Every test guest has a test
//!
//! [`foreach_test_guest!`]`(mac)` expands to `mac!(name);` for each crate under
//! `guests/rust/test-guests/`. rill's integration tests (`tests/all/main.rs`) pass it a
//! macro that names a test module of the same name, so adding a test guest without a
//! `tests/all/<name>.rs` does not compile; and `tests/all/guests.rs` fails if a declared
//! function id of a test guest appears in no test.

use std::path::Path;

/// Where a guest crate lives, and so what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `guests/rust/examples/<name>`: an example function, also used by tests.
    Example,
    /// `guests/rust/test-guests/<name>`: a guest that exists for rill's tests.
    Test,
}

/// One guest component built from `guests/rust`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guest {
    /// The crate's directory name, `-` as `_` (`calls` for `test-guests/calls`).
    pub name: &'static str,
    /// The crate's directory relative to `guests/rust` (`test-guests/calls`).
    pub dir: &'static str,
    /// The cargo package name.
    pub package: &'static str,
    /// Example or test guest.
    pub kind: Kind,
    /// The absolute path of the built component.
    pub component: &'static str,
    /// The function ids it serves, from its `[package.metadata.rill] functions`.
    pub functions: &'static [&'static str],
}

impl Guest {
    /// The built component's path.
    pub fn path(&self) -> &'static Path {
        Path::new(self.component)
    }
}

/// The guest that serves `function_id`, if any.
pub fn serving(function_id: &str) -> Option<&'static Guest> {
    GUESTS.iter().find(|guest| guest.functions.contains(&function_id))
}

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
