//! Loading components and running them: the on-disk cache of compiled components, and
//! the instance pool (slots, reuse without residue, on-demand fallback).

use std::path::PathBuf;

use rill::{
    CallOptions, FunctionConfig, Host, HostConfig, Limits, MAX_CACHE_BYTES, MAX_CACHE_ENTRIES,
    MAX_CACHE_SOURCES,
};
use rill_test_artifacts::CALLS;
use rill_tests::component;
use serde_json::json;

fn cached_host(dir: &std::path::Path) -> Host {
    cached_host_with(dir, None)
}

/// A host serving `test::echo` from the cache in `dir`, metering fuel if `fuel` is set
/// (a different engine configuration, so differently compiled code).
fn cached_host_with(dir: &std::path::Path, fuel: Option<u64>) -> Host {
    let mut config = HostConfig::default();
    config.cache_dir = Some(dir.to_path_buf());
    let mut limits = Limits::default();
    limits.fuel = fuel;
    let function = FunctionConfig::new(component(&CALLS)).limits(limits);
    Host::builder().config(config).function_with("test::echo", function).build().unwrap()
}

async fn echo(host: &Host, n: u32) {
    assert_eq!(host.trigger("test::echo", &json!({ "n": n })).await.unwrap(), json!({ "n": n }));
}

/// The cache's entries: (compiled file, check file) pairs.
fn entries(dir: &std::path::Path) -> Vec<(PathBuf, PathBuf)> {
    let mut entries: Vec<_> = files_under(dir)
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "check"))
        .map(|check| (check.with_extension("cwasm"), check))
        .collect();
    entries.sort();
    entries
}

fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { todo.push(path) } else { files.push(path) }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_components_are_cached_and_a_corrupt_cache_recompiles() {
    let dir = tempfile::tempdir().unwrap();
    echo(&cached_host(dir.path()), 1).await;
    let cached = entries(dir.path());
    assert_eq!(cached.len(), 1, "compiling wrote one entry: {cached:?}");
    let (compiled, _) = &cached[0];
    let sound = std::fs::read(compiled).unwrap();

    // A truncated compiled file: its check fails, the next host recompiles and repairs it.
    std::fs::write(compiled, &sound[..sound.len() / 2]).unwrap();
    echo(&cached_host(dir.path()), 2).await;
    assert_eq!(std::fs::read(compiled).unwrap().len(), sound.len(), "the entry was rewritten");

    // One flipped bit in the middle of the code: refused by its check, and rewritten.
    let mut flipped = sound.clone();
    flipped[sound.len() / 2] ^= 0x10;
    std::fs::write(compiled, &flipped).unwrap();
    echo(&cached_host(dir.path()), 3).await;
    assert_ne!(std::fs::read(compiled).unwrap(), flipped, "the corrupt entry was replaced");

    // Every file replaced by garbage.
    for file in files_under(dir.path()) {
        std::fs::write(file, b"\x00garbage, not a compiled component").unwrap();
    }
    echo(&cached_host(dir.path()), 4).await;
    assert_eq!(entries(dir.path()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_compiled_file_is_refused_and_recompiled() {
    // Code compiled for a fuel-metering engine, with a matching check, placed under the
    // key of an engine without fuel: wasmtime's header check must refuse it.
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    echo(&cached_host(ours.path()), 1).await;
    echo(&cached_host_with(theirs.path(), Some(u64::MAX / 2)), 1).await;
    let (our_entry, their_entry) = (entries(ours.path()), entries(theirs.path()));
    assert_ne!(our_entry[0].0.file_name(), their_entry[0].0.file_name(), "keys include the engine");
    std::fs::copy(&their_entry[0].0, &our_entry[0].0).unwrap();
    std::fs::copy(&their_entry[0].1, &our_entry[0].1).unwrap();
    echo(&cached_host(ours.path()), 2).await;
    let (now, foreign) = (std::fs::read(&our_entry[0].0).unwrap(), std::fs::read(&their_entry[0].0).unwrap());
    assert_ne!(now, foreign, "the refused entry was replaced by a recompiled one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_cache_directory_only_costs_a_compile() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_directory = dir.path().join("file");
    std::fs::write(&not_a_directory, b"in the way").unwrap();
    echo(&cached_host(&not_a_directory), 1).await;
    echo(&cached_host(&not_a_directory), 2).await;
}

/// Fill `dir` with `count` made-up entries, each older than anything compiled now.
fn fake_entries(dir: &std::path::Path, count: usize) {
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for n in 0..count {
        for extension in ["cwasm", "check"] {
            let path = dir.join(format!("{n:064x}.{extension}"));
            std::fs::write(&path, b"old").unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(old + std::time::Duration::from_secs(n as u64)).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_entries_obeyed() {
    let dir = tempfile::tempdir().unwrap();
    fake_entries(dir.path(), MAX_CACHE_ENTRIES - 1);
    echo(&cached_host(dir.path()), 1).await;
    assert_eq!(entries(dir.path()).len(), MAX_CACHE_ENTRIES, "room for one more: nothing removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_entries_violated() {
    let dir = tempfile::tempdir().unwrap();
    fake_entries(dir.path(), MAX_CACHE_ENTRIES);
    echo(&cached_host(dir.path()), 1).await;
    let left = entries(dir.path());
    assert_eq!(left.len(), MAX_CACHE_ENTRIES, "the oldest entry made room");
    let oldest = dir.path().join(format!("{:064x}.cwasm", 0));
    assert!(!oldest.exists() && !oldest.with_extension("check").exists(), "the oldest went");
    assert!(dir.path().join(format!("{:064x}.check", 1)).exists(), "only the oldest went");
}

fn pooled_host(slots: Option<u32>) -> Host {
    let mut config = HostConfig::default();
    config.pool_slots = slots;
    rill_tests::host_with(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_slots_obeyed() {
    let host = pooled_host(Some(1));
    // One slot serves any number of calls, one after another: slots are reused.
    for n in 0..5 {
        assert_eq!(host.trigger("test::echo", &json!(n)).await.unwrap(), json!(n));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_slots_violated() {
    let host = pooled_host(Some(1));
    let spinner =
        tokio::spawn(host.trigger_with("test::spin", json!({ "ms": 500 }).to_string(), &CallOptions::new()));
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    // The one slot is taken: a call waits for it, failing only if its deadline comes first
    // (more in `admission.rs`).
    let short = std::time::Duration::from_millis(100);
    let err =
        host.trigger_with("test::echo", "1".into(), &CallOptions::new().timeout(short)).await.unwrap_err();
    assert!(
        matches!(&err, rill::CallError::TimedOut { function_id, .. } if function_id == "test::echo"),
        "{err:?}"
    );
    assert_eq!(
        host.trigger("test::echo", &json!(2)).await.unwrap(),
        json!(2),
        "a call that can wait gets the slot"
    );
    assert!(spinner.await.unwrap().is_ok(), "the call holding the slot finishes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_can_be_allocated_on_demand() {
    let host = pooled_host(None);
    assert_eq!(host.trigger("test::echo", &json!("on demand")).await.unwrap(), json!("on demand"));
}

/// Run `test::residue` `times` times, one after another, and check each saw a fresh
/// instance: nothing an earlier call wrote (a `.bss` counter, a `.data` static, pages it
/// grew and dirtied) survives into the next, whether its slot's memory was reset in
/// place or handed back to the kernel.
async fn assert_fresh_every_time(host: &Host, grow_pages: u32, times: usize) {
    for round in 0..times {
        let seen = host.trigger("test::residue", &json!({ "grow_pages": grow_pages })).await.unwrap();
        assert_eq!(seen, json!({ "counter": 1, "mark": 0x5eed, "dirty_bytes": 0 }), "call {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_slot_keeps_nothing_from_the_previous_call() {
    // One slot, so every call reuses the memory of the one before. 40 pages (2.5 MiB)
    // cross the default keep-resident size: part is reset in place, part handed back.
    let host = pooled_host(Some(1));
    assert_fresh_every_time(&host, 40, 4).await;
    let mut config = HostConfig::default();
    config.pool_slots = Some(1);
    config.keep_resident_bytes = 0;
    assert_fresh_every_time(&rill_tests::host_with(config), 40, 4).await;
    assert_fresh_every_time(&pooled_host(None), 40, 2).await;
}

fn set_age(path: &std::path::Path, age: std::time::Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - age).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_private_and_cleans_up_unfinished_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let hour = std::time::Duration::from_secs(3600);
    // Leftovers of writes that never finished: old ones go, recent ones (perhaps still
    // being written by another host) stay.
    for (name, age) in [
        (".rill-tmp-old", 2 * hour),
        (".rill-tmp-new", std::time::Duration::ZERO),
        ("orphan-old.cwasm", 2 * hour),
        ("orphan-new.cwasm", std::time::Duration::ZERO),
    ] {
        std::fs::write(cache.join(name), b"partial").unwrap();
        set_age(&cache.join(name), age);
    }
    echo(&cached_host(&cache), 1).await;
    assert!(!cache.join(".rill-tmp-old").exists() && !cache.join("orphan-old.cwasm").exists());
    assert!(cache.join(".rill-tmp-new").exists() && cache.join("orphan-new.cwasm").exists());

    let fresh = dir.path().join("made/by/rill");
    echo(&cached_host(&fresh), 1).await;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_removes_the_least_recently_used_entry() {
    let dir = tempfile::tempdir().unwrap();
    echo(&cached_host(dir.path()), 1).await;
    let ours = entries(dir.path()).remove(0);
    // Our entry looks older than every other, then is used: it must outlive them.
    fake_entries(dir.path(), MAX_CACHE_ENTRIES - 1);
    set_age(&ours.1, std::time::Duration::from_secs(10 * 3600));
    echo(&cached_host(dir.path()), 2).await;
    // A new entry (another engine configuration) needs room.
    echo(&cached_host_with(dir.path(), Some(u64::MAX / 2)), 3).await;
    assert_eq!(entries(dir.path()).len(), MAX_CACHE_ENTRIES);
    assert!(ours.0.exists() && ours.1.exists(), "the entry just used stays");
    assert!(!dir.path().join(format!("{:064x}.check", 0)).exists(), "the least recently used went");
}

/// A made-up entry whose compiled file claims `bytes` (a sparse file: no disk used).
fn big_fake_entry(dir: &std::path::Path, n: usize, bytes: u64) {
    let compiled = dir.join(format!("{n:064x}.cwasm"));
    std::fs::File::create(&compiled).unwrap().set_len(bytes).unwrap();
    std::fs::write(compiled.with_extension("check"), b"0 00000000").unwrap();
    for path in [compiled.clone(), compiled.with_extension("check")] {
        set_age(&path, std::time::Duration::from_secs(3600 - n as u64));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_bytes_obeyed() {
    let dir = tempfile::tempdir().unwrap();
    big_fake_entry(dir.path(), 0, MAX_CACHE_BYTES / 2);
    echo(&cached_host(dir.path()), 1).await;
    assert_eq!(entries(dir.path()).len(), 2, "under the byte budget: nothing removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_bytes_violated() {
    let dir = tempfile::tempdir().unwrap();
    big_fake_entry(dir.path(), 0, MAX_CACHE_BYTES / 2);
    big_fake_entry(dir.path(), 1, MAX_CACHE_BYTES / 2);
    echo(&cached_host(dir.path()), 1).await;
    let left = entries(dir.path());
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!dir.path().join(format!("{:064x}.cwasm", 0)).exists(), "the oldest big entry made room");
    assert!(dir.path().join(format!("{:064x}.cwasm", 1)).exists(), "one was enough");
}

/// A host serving `test::echo` from the component file at `wasm`, with the cache in `dir`.
fn host_of_file(dir: &std::path::Path, wasm: &std::path::Path) -> Host {
    let mut config = HostConfig::default();
    config.cache_dir = Some(dir.to_path_buf());
    let source = rill::ComponentSource::File(wasm.to_path_buf());
    Host::builder().config(config).function("test::echo", source).build().unwrap()
}

/// Overwrite the first byte of `wasm` in place (the `\0` of the magic number: it is no
/// longer a component), keeping its length and inode; `keep_time` also puts its
/// modification time back.
fn spoil_in_place(wasm: &std::path::Path, keep_time: bool) {
    use std::io::{Seek, Write};
    let modified = std::fs::metadata(wasm).unwrap().modified().unwrap();
    let mut file = std::fs::File::options().write(true).open(wasm).unwrap();
    file.seek(std::io::SeekFrom::Start(0)).unwrap();
    file.write_all(b"X").unwrap();
    if keep_time {
        file.set_modified(modified).unwrap();
    }
}

/// The source index: a component file unchanged since the cache saw it (length,
/// nanosecond modification time, device, inode) loads without being read or hashed.
/// Shown by spoiling the file in place behind the index's back: the entry still loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_component_file_loads_without_being_read() {
    let (cache, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let wasm = files.path().join("calls.wasm");
    std::fs::copy(CALLS.component, &wasm).unwrap();
    echo(&host_of_file(cache.path(), &wasm), 1).await;
    spoil_in_place(&wasm, true);
    echo(&host_of_file(cache.path(), &wasm), 2).await;
    assert_eq!(entries(cache.path()).len(), 1, "no second entry: the file was not read");
}

/// ... and a file that changed (here only its first byte, so its length and inode stay)
/// is read again: it is no longer a component, and loading it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_component_file_is_read_again() {
    let (cache, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let wasm = files.path().join("calls.wasm");
    std::fs::copy(CALLS.component, &wasm).unwrap();
    echo(&host_of_file(cache.path(), &wasm), 1).await;
    // Make sure the new modification time differs on coarse-grained filesystems too.
    std::thread::sleep(std::time::Duration::from_millis(20));
    spoil_in_place(&wasm, false);
    let err = host_of_file(cache.path(), &wasm).prepare("test::echo").await.unwrap_err();
    assert!(matches!(err, rill::CallError::Unavailable { .. }), "{err:?}");
    // A file put back as it was (a new modification time, the same bytes) is hashed again
    // and finds its entry: still one.
    std::fs::copy(CALLS.component, &wasm).unwrap();
    echo(&host_of_file(cache.path(), &wasm), 2).await;
    assert_eq!(entries(cache.path()).len(), 1);
}

/// Fill the source index of the cache in `dir` with `count` made-up lines, each older
/// than anything written now (number 0 the oldest).
fn fake_sources(dir: &std::path::Path, count: usize) {
    let sources = dir.join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    for n in 0..count {
        let path = sources.join(format!("{n:064x}"));
        std::fs::write(&path, b"0 0 0 0 0").unwrap();
        set_age(&path, std::time::Duration::from_secs(3600 - n as u64));
    }
}

fn sources(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("sources")).unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_sources_obeyed() {
    let (cache, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let wasm = files.path().join("calls.wasm");
    std::fs::copy(CALLS.component, &wasm).unwrap();
    fake_sources(cache.path(), MAX_CACHE_SOURCES - 1);
    echo(&host_of_file(cache.path(), &wasm), 1).await;
    assert_eq!(sources(cache.path()), MAX_CACHE_SOURCES, "at the bound: nothing removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_sources_violated() {
    let (cache, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let wasm = files.path().join("calls.wasm");
    std::fs::copy(CALLS.component, &wasm).unwrap();
    fake_sources(cache.path(), MAX_CACHE_SOURCES);
    echo(&host_of_file(cache.path(), &wasm), 1).await;
    assert_eq!(sources(cache.path()), MAX_CACHE_SOURCES, "one past the bound: one removed");
    assert!(!cache.path().join("sources").join(format!("{:064x}", 0)).exists(), "the oldest went");
    // Ours, the newest, stayed: the next host loads without reading the file.
    spoil_in_place(&wasm, true);
    echo(&host_of_file(cache.path(), &wasm), 2).await;
}
