// Shared by `rill-build` (`include!`d from cargo.rs) and by the test artifacts' build
// script (`include!`d from guests/artifacts/build.rs, which cannot depend on this crate
// without building wasmtime for a build script): one list, two nested guest builds.

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
