//! Shared helpers for rill's integration tests.
//!
//! Guests are built by the harness, never by hand: [`guest`] builds a guest crate from
//! `guests/rust/` with the host's own builder ([`rill::rust_guest`]) once per test
//! process and returns its component. [`TestHost`] registers the example and scenario
//! functions from those prebuilt components.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers: a panic is a test failure")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rill::{ComponentSource, Host, HostConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The component built from the guest crate at `guests/rust/<crate_dir>`, built once per
/// process.
pub fn guest(crate_dir: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    built
        .entry(crate_dir.to_owned())
        .or_insert_with(|| {
            let dir = repo_root().join("guests/rust").join(crate_dir);
            rill::rust_guest::build(&dir).unwrap_or_else(|e| panic!("building guest {crate_dir}: {e}"))
        })
        .clone()
}

/// The function ids served by the scenario guest.
pub const SCENARIO_FUNCTIONS: &[&str] = &[
    "test::echo",
    "test::fail",
    "test::trap",
    "test::write",
    "test::read",
    "test::open",
    "test::create",
    "test::pipeline",
    "test::call",
    "test::interleave",
    "test::spin",
    "test::alloc",
];

/// The example functions and the guest crate serving each.
pub const EXAMPLE_FUNCTIONS: &[(&str, &str)] = &[
    ("files::process", "examples/files"),
    ("files::produce", "examples/producer"),
    ("transform::uppercase", "examples/transform"),
    ("words::count", "examples/progress"),
];

/// A host serving the example and scenario functions, with `config`.
pub fn host_with(config: HostConfig) -> Host {
    let mut builder = Host::builder().config(config);
    let scenario = guest("test-guests/scenario");
    for id in SCENARIO_FUNCTIONS {
        builder = builder.function(*id, ComponentSource::File(scenario.clone()));
    }
    for (id, dir) in EXAMPLE_FUNCTIONS {
        builder = builder.function(*id, ComponentSource::File(guest(dir)));
    }
    builder.build().expect("the test host builds")
}

/// A host with the default configuration.
pub fn host() -> Host {
    host_with(HostConfig::default())
}

/// Wait (briefly) until the host's broker holds no channels and no bytes, and fail the
/// test if it does not get there. Ends are released by tasks that may finish a moment
/// after the call that used them returned.
pub async fn assert_no_leaks(host: &Host) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = host.broker().stats();
        if stats.live_channels == 0 && stats.buffered_bytes == 0 {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("the broker still holds {stats:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Call `function` and return the JSON result, panicking with the error otherwise.
pub async fn call(host: &Host, function: &str, payload: Value) -> Value {
    host.trigger(function, &payload).await.unwrap_or_else(|e| panic!("{function} failed: {e}"))
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The scenario guest's byte pattern: byte `i` of seed `k`.
pub fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7 + seed) % 251) as u8).collect()
}
