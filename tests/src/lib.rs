//! Shared helpers for rill's integration tests.
//!
//! Guests are built by the harness, never by hand: [`guest`] builds a guest crate from
//! `guests/rust/` with the project's builder ([`rill_build`]) once per test
//! process and returns its component. [`host_with`] registers the example, scenario,
//! contract and hostile functions from those prebuilt components.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers: a panic is a test failure")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rill::{ComponentSource, FunctionConfig, Host, HostConfig};
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
            rill_build::build_crate(&dir).unwrap_or_else(|e| panic!("building guest {crate_dir}: {e}"))
        })
        .clone()
}

/// Where test hosts cache compiled components.
pub fn test_cache_dir() -> PathBuf {
    repo_root().join("target").join("rill-test-cache")
}

/// The function ids served by the scenario guest.
pub const SCENARIO_FUNCTIONS: &[&str] = &[
    "test::echo",
    "test::raw",
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
    "test::residue",
];

/// The function ids served by the hostile guest.
pub const HOSTILE_FUNCTIONS: &[&str] = &[
    "hostile::loop",
    "hostile::memory_bomb",
    "hostile::huge_write",
    "hostile::channel_flood",
    "hostile::handle_flood",
    "hostile::guess_refs",
    "hostile::replay",
    "hostile::recurse",
    "hostile::deep_result",
    "hostile::big_result",
    "hostile::stdout_flood",
    "hostile::never_read",
    "hostile::fan_out",
    "hostile::write_then_fail",
    "hostile::read_file",
    "hostile::write_file",
    "hostile::env",
    "hostile::connect",
    "hostile::block",
];

/// The function ids served by the contract guest (written against `wit/` alone).
pub const CONTRACT_FUNCTIONS: &[&str] = &["contract::local", "contract::remote"];

/// The example functions and the guest crate serving each.
pub const EXAMPLE_FUNCTIONS: &[(&str, &str)] = &[
    ("files::process", "examples/files"),
    ("files::produce", "examples/producer"),
    ("transform::uppercase", "examples/transform"),
    ("words::count", "examples/progress"),
];

/// A host serving the example, scenario, contract and hostile functions, with `config`.
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
    let hostile = guest("test-guests/hostile");
    for id in HOSTILE_FUNCTIONS.iter().filter(|id| !taken(id)) {
        builder = builder.function(*id, ComponentSource::File(hostile.clone()));
    }
    let scenario = guest("test-guests/scenario");
    for id in SCENARIO_FUNCTIONS.iter().filter(|id| !taken(id)) {
        builder = builder.function(*id, ComponentSource::File(scenario.clone()));
    }
    let contract = guest("test-guests/contract");
    for id in CONTRACT_FUNCTIONS.iter().filter(|id| !taken(id)) {
        builder = builder.function(*id, ComponentSource::File(contract.clone()));
    }
    for (id, dir) in EXAMPLE_FUNCTIONS.iter().filter(|(id, _)| !taken(id)) {
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

/// The scenario guest's component, for registering its functions specially.
pub fn scenario_component() -> ComponentSource {
    ComponentSource::File(guest("test-guests/scenario"))
}

/// The contract guest's component, for registering its functions specially.
pub fn contract_component() -> ComponentSource {
    ComponentSource::File(guest("test-guests/contract"))
}

/// The hostile guest's component, for registering its functions specially.
pub fn hostile_component() -> ComponentSource {
    ComponentSource::File(guest("test-guests/hostile"))
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
