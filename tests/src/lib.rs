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

/// A host serving `manifest`'s functions, its guests in every language built first by
/// rill-build (which keeps each build in its cache), compiled into the suite's cache
/// ([`test_cache_dir`]), and every function compiled
/// before a test calls it: compiling a component that carries an interpreter takes
/// seconds, which must not come out of a call's deadline or a channel's attach window.
/// When the guests cannot be built this panics with the error and `needs` (what the
/// languages need), never letting a test pass without them.
pub async fn language_host(mut manifest: rill::manifest::Manifest, needs: &str) -> Host {
    if let Err(err) = rill_build::build_manifest(&mut manifest) {
        panic!("cannot build the guests ({}); {needs}", error_chain(&err));
    }
    let config = HostConfig::default().with_cache_dir(Some(test_cache_dir()));
    let host = Host::with_manifest(&manifest, config).unwrap();
    for id in host.function_ids() {
        host.prepare(&id).await.unwrap();
    }
    host
}

/// [`language_host`] for the manifest at `path` (relative to the repository root).
pub async fn language_host_from(path: &str, needs: &str) -> Host {
    let manifest = rill::manifest::Manifest::from_file(&repo_root().join(path)).unwrap();
    language_host(manifest, needs).await
}

/// An error and its sources, as one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Stream `data`, then one text message, into `function_id`'s `reader` (payload
/// `{"reader": <read ref>}`) and return its result; the call gets `timeout` if given.
/// Panics if the call or the feeding fails.
pub async fn process_with_a_message(
    host: &Host,
    function_id: &str,
    data: &[u8],
    timeout: Option<Duration>,
) -> Value {
    use tokio::io::AsyncWriteExt;
    let channel = host.create_channel(&rill::ChannelOptions::default()).unwrap();
    let payload = serde_json::json!({ "reader": channel.reader_ref });
    drop(channel.reader);
    let mut writer = channel.writer;
    let feed = async {
        writer.write_all(data).await?;
        writer.send_text("a note between the bytes").await?;
        writer.shutdown().await
    };
    let options = timeout.map_or_else(rill::CallOptions::new, |t| rill::CallOptions::new().timeout(t));
    let (result, fed) = tokio::join!(host.trigger_with(function_id, payload.to_string(), &options), feed);
    let result = result.unwrap_or_else(|err| panic!("{function_id}: {err:?}"));
    fed.unwrap_or_else(|err| panic!("feeding {function_id}: {err:?}"));
    serde_json::from_str(&result).unwrap_or_else(|err| panic!("{function_id} returned {result:?}: {err}"))
}

/// What a reader yielded until it ended or failed: the bytes, the text messages with the
/// byte offset each arrived at, and the error if it failed.
pub type Drained = (Vec<u8>, Vec<(usize, String)>, Option<rill::ChannelError>);

/// Read `reader` to its end or its error (see [`Drained`]).
pub async fn drain(reader: &mut rill::Reader) -> Drained {
    let (mut bytes, mut messages) = (Vec::new(), Vec::new());
    loop {
        match reader.next().await {
            Ok(Some(rill::Item::Bytes(chunk))) => bytes.extend_from_slice(&chunk),
            Ok(Some(rill::Item::Text(message))) => messages.push((bytes.len(), message)),
            Ok(None) => return (bytes, messages, None),
            Err(err) => return (bytes, messages, Some(err)),
        }
    }
}

/// Call `function_id`, a guest's `bench::write` (payload `{"writer", "total", "chunk"}`),
/// to write `total` bytes in 64 KiB writes into a new channel of the default buffer,
/// draining it meanwhile; the call's result and what its reader got.
pub async fn write_64k_pieces(
    host: &Host,
    function_id: &str,
    total: u64,
) -> (Result<Value, rill::CallError>, Drained) {
    let channel = host.create_channel(&rill::ChannelOptions::default()).unwrap();
    let payload = serde_json::json!({ "writer": channel.writer_ref, "total": total, "chunk": 64 << 10 });
    drop(channel.writer);
    let mut reader = channel.reader;
    tokio::join!(host.trigger(function_id, &payload), drain(&mut reader))
}

/// Check that `function_id`, a guest's `bench::write`, asked to write `total` bytes (more
/// than the default memory limit) in 64 KiB writes fails with exactly
/// `MemoryLimitExceeded` at the default limit, and that its reader got less than `total`
/// and then `Aborted`: never a stream cut short cleanly.
pub async fn assert_writes_stop_at_the_memory_limit(host: &Host, function_id: &str, total: u64) {
    let (written, (bytes, _, failure)) = write_64k_pieces(host, function_id, total).await;
    let err = written.unwrap_err();
    let rill::CallError::MemoryLimitExceeded { max_bytes, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*max_bytes, rill::limits::DEFAULT_MAX_MEMORY_BYTES);
    assert!((bytes.len() as u64) < total, "{} bytes", bytes.len());
    assert!(matches!(failure, Some(rill::ChannelError::Aborted(_))), "{failure:?}");
}

/// Run `function_id` (a transform taking `{"input": <read ref>, "output": <write ref>}`)
/// over `text` (at least 1000 bytes) with the text message "halfway" after its first
/// 1000 bytes; the call's result and what its output carried.
pub async fn transform_with_a_message(
    host: &Host,
    function_id: &str,
    text: &[u8],
) -> (Result<Value, rill::CallError>, Drained) {
    use tokio::io::AsyncWriteExt;
    let input = host.create_channel(&rill::ChannelOptions::default()).unwrap();
    let output = host.create_channel(&rill::ChannelOptions::default()).unwrap();
    let payload = serde_json::json!({ "input": input.reader_ref, "output": output.writer_ref });
    let (mut writer, mut reader) = (input.writer, output.reader);
    let feed = async {
        writer.write_all(&text[..1000]).await.unwrap();
        writer.send_text("halfway").await.unwrap();
        writer.write_all(&text[1000..]).await.unwrap();
        writer.shutdown().await.unwrap();
    };
    let (result, (), drained) = tokio::join!(host.trigger(function_id, &payload), feed, drain(&mut reader));
    (result, drained)
}

/// The text the transform tests stream: 2 MB of mixed case, digits and punctuation.
pub fn transform_text() -> Vec<u8> {
    b"Streams of text, 123 and more: the quick brown fox.\n".repeat(40_000)
}
