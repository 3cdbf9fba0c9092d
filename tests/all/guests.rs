//! The guests of `guests/rust`, as `rill-test-artifacts` lists them: every declared
//! function id is one the component really serves, every id of a test guest is used by
//! at least one test, and `rill.toml` maps each id to the crate that declares it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rill::{CallError, CallOptions};
use rill_test_artifacts::{GUESTS, Kind};
use rill_tests::{host, repo_root, warm_up};

/// Call every declared id (with a payload no function accepts as meant, and a short
/// deadline: some run until stopped) and check that no component answers that it does
/// not serve it. Any other outcome (a result, a failure, a trap, a timeout) means the id
/// reached a handler. The components are compiled first, so a deadline only ever stops a
/// handler; the calls run one at a time, so the few that spin load one core briefly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_declared_function_is_served() {
    let host = host();
    warm_up(&host).await;
    let mut checked = 0;
    for guest in GUESTS {
        for id in guest.functions {
            let options = CallOptions::new().timeout(Duration::from_millis(250));
            let result = host.trigger_with(id, "null".into(), &options).await;
            if let Err(CallError::Failed { message, .. }) = &result {
                let package = guest.package;
                assert!(
                    !message.contains("does not serve"),
                    "{package} declares {id} but does not serve it: {message}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "rill-test-artifacts lists no functions");
}

/// Every function id a test guest declares appears, quoted, in some test: the integration
/// tests (`tests/all`) or a package's own `tests/` (the CLI's).
#[test]
fn every_test_guest_function_has_a_test() {
    let root = repo_root();
    let mut sources = rust_files(&root.join("tests/all"));
    for entry in std::fs::read_dir(&root).unwrap().map(Result::unwrap) {
        let tests = entry.path().join("tests");
        if entry.file_name() != "target" && tests.is_dir() {
            sources.extend(rust_files(&tests));
        }
    }
    let sources: Vec<String> = sources
        .iter()
        .filter(|path| path.file_name().is_some_and(|name| name != "guests.rs"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    let untested: Vec<&str> = GUESTS
        .iter()
        .filter(|guest| guest.kind == Kind::Test)
        .flat_map(|guest| guest.functions.iter().copied())
        .filter(|id| !sources.iter().any(|source| source.contains(&format!("\"{id}\""))))
        .collect();
    assert!(untested.is_empty(), "test guest functions no test calls: {untested:?}");
}

/// `rill.toml`, the example manifest users run, names each function's crate by path: that
/// crate must be the guest declaring the id. A function in another language names an app
/// directory, whose entry module must register the id.
#[test]
fn the_example_manifest_agrees_with_the_guests() {
    let manifest: toml::Table =
        std::fs::read_to_string(repo_root().join("rill.toml")).unwrap().parse().unwrap();
    let functions = manifest["functions"].as_table().unwrap();
    assert!(!functions.is_empty());
    for (id, function) in functions {
        let component = function["component"].as_str().unwrap();
        if let Some(language) = function.get("language").and_then(|l| l.as_str()) {
            let entry = match language {
                "python" => "app.py",
                "javascript" => "app.js",
                "c" => "app.c",
                other => panic!("{id}: unknown language {other}"),
            };
            let path = repo_root().join(component).join(entry);
            let source = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("{id}: {}: {err}", path.display()));
            assert!(source.contains(&format!("\"{id}\"")), "{id}: {} does not register it", path.display());
            continue;
        }
        let dir = component.strip_prefix("guests/rust/").unwrap_or_else(|| panic!("{id}: {component}"));
        let guest = rill_test_artifacts::serving(id).unwrap_or_else(|| panic!("no guest declares {id}"));
        assert_eq!(
            guest.dir, dir,
            "rill.toml serves {id} from {component}, but {} declares it",
            guest.package
        );
    }
}

/// The `.rs` files directly in `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect()
}
