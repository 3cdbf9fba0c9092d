//! Loading components: the on-disk cache of compiled components.

use rill::{ComponentSource, Host, HostConfig};
use rill_tests::guest;
use serde_json::json;

fn cached_host(dir: &std::path::Path) -> Host {
    let mut config = HostConfig::default();
    config.cache_dir = Some(dir.to_path_buf());
    Host::builder()
        .config(config)
        .function("test::echo", ComponentSource::File(guest("test-guests/scenario")))
        .build()
        .unwrap()
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
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
    let host = cached_host(dir.path());
    assert_eq!(host.trigger("test::echo", &json!({ "n": 1 })).await.unwrap(), json!({ "n": 1 }));
    drop(host);
    let cached = files_under(dir.path());
    assert!(!cached.is_empty(), "compiling wrote the component to the cache");

    // Corrupt every cached file: the next host must recompile, never crash.
    for file in &cached {
        std::fs::write(file, b"\x00garbage, not a compiled component").unwrap();
    }
    let host = cached_host(dir.path());
    assert_eq!(host.trigger("test::echo", &json!({ "n": 2 })).await.unwrap(), json!({ "n": 2 }));
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
        tokio::spawn(host.trigger_with_timeout("test::spin", json!({ "ms": 500 }).to_string(), None));
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let err = host.trigger("test::echo", &json!(1)).await.unwrap_err();
    let rill::CallError::Unavailable { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("concurrent limit of 1"), "{message}");
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
