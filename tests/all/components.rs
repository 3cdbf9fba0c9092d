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
