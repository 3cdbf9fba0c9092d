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
