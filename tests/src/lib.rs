//! Shared helpers for rill's integration tests.
//!
//! Guests are built by the harness, never by hand and never at test run time: the
//! [`rill_test_artifacts`] crate's build script builds `guests/rust/` and generates each
//! component's path and function ids. [`host_with`] registers every function of every
//! guest (examples and test guests) from those components.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers: a panic is a test failure")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use rill::{ComponentSource, FunctionConfig, Host, HostConfig};
use rill_test_artifacts::{GUESTS, Guest};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Where test hosts cache compiled components.
pub fn test_cache_dir() -> PathBuf {
    repo_root().join("target").join("rill-test-cache")
}

/// `guest`'s component, for registering its functions specially.
pub fn component(guest: &Guest) -> ComponentSource {
    ComponentSource::File(guest.path().to_path_buf())
}

/// A host serving every function of every guest in `guests/rust`, with `config`.
pub fn host_with(config: HostConfig) -> Host {
    host_with_functions(config, &[])
}

/// Like [`host_with`], with some functions configured specially (they replace the
/// default registration of the same id).
pub fn host_with_functions(mut config: HostConfig, special: &[(&str, FunctionConfig)]) -> Host {
    // Share compiled components across the suite's many hosts (and runs).
    config.cache_dir.get_or_insert_with(test_cache_dir);
    let mut builder = Host::builder().config(config);
    for (id, function) in special {
        builder = builder.function_with(*id, function.clone());
    }
    let taken = |id: &str| special.iter().any(|(s, _)| *s == id);
    for guest in GUESTS {
        for id in guest.functions.iter().filter(|id| !taken(id)) {
            builder = builder.function(*id, component(guest));
        }
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

/// `v` as a string, failing the test with `v` if it is not one.
pub fn as_str(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The test guests' byte pattern (`rill_test_support::pattern` in `guests/rust`): byte
/// `i` of seed `k`.
pub fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7 + seed) % 251) as u8).collect()
}

/// This process's resident set size, in bytes (Linux).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// Run `files::produce` (a normal function) alongside `attack` and check that it still
/// returns the right result: whatever the attack does, it hurts only its own guest.
pub async fn with_bystander<T>(host: &Host, attack: impl Future<Output = T>) -> T {
    let n = 2 * 1024 * 1024 + 5;
    let bystander = host.trigger("files::produce", &serde_json::json!({ "bytes": n }));
    let (result, bystander) = tokio::join!(attack, bystander);
    let bystander = bystander.expect("the bystander function still works");
    assert_eq!(bystander["consumer"]["sha256"], sha256_hex(&pattern(n, 0)), "the bystander's data is intact");
    result
}

/// Compile every function's component now, so that timing-sensitive tests do not count
/// compile time (slow on a loaded machine) against channel deadlines.
pub async fn warm_up(host: &Host) {
    for id in host.function_ids() {
        host.prepare(&id).await.unwrap_or_else(|e| panic!("preparing {id}: {e}"));
    }
}
