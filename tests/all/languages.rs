//! The four-language pipeline: a Rust producer → a Python transformer → a JavaScript
//! transformer → a C counter, every byte through channels whose refs the functions pass
//! in their payloads; and a failure in each language reaching the next reader as
//! `aborted` with its reason, never as a clean end.
//!
//! The example functions come from the root `rill.toml` (their language-specific ids),
//! the failing stages from each language's test guests; all are built by rill-build,
//! which needs python3, node + npm and clang-19 with wasi-libc (`.ci/run` installs them).

use rill::manifest::Manifest;
use rill::{ChannelOptions, Host};
use rill_tests::{pattern, sha256_hex};
use serde_json::{Value, json};

/// The stages, from the root `rill.toml` and the languages' test guests.
const MANIFEST: &str = r#"
[functions."files::produce"]
component = "guests/rust/examples/producer"
[functions."files::process"]
component = "guests/rust/examples/files"
[functions."py::transform::uppercase"]
component = "guests/python/examples/transform"
language = "python"
[functions."py::test::transform_then_raise"]
component = "guests/python/test-guests/fail"
language = "python"
[functions."js::transform::rot13"]
component = "guests/javascript/examples/transform"
language = "javascript"
[functions."js::test::transform_then_throw"]
component = "guests/javascript/test-guests/fail"
language = "javascript"
[functions."c::files::process"]
component = "guests/c/examples/files"
language = "c"
[functions."c::transform::uppercase"]
component = "guests/c/examples/transform"
language = "c"
[functions."c::test::transform_then_fail"]
component = "guests/c/test-guests/fail"
language = "c"
"#;

/// How much the producer writes: many times a channel's buffer, so every stage streams.
const BYTES: usize = 16 << 20;

async fn host() -> Host {
    let manifest = Manifest::parse(MANIFEST, rill_tests::repo_root()).unwrap();
    let needs = "the pipeline needs python3 with venv, node with npm, and clang-19 with wasi-libc \
                 (apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32)";
    rill_tests::language_host(manifest, needs).await
}

/// Run `stages` (transformers, each `{"input", "output"}`) between the Rust producer and
/// `sink` (a counter, `{"reader"}`), all at once; each call's result, the producer's
/// first, the sink's last.
async fn pipeline(host: &Host, stages: &[&str], sink: &str) -> Vec<Result<Value, String>> {
    let channels: Vec<_> =
        (0..=stages.len()).map(|_| host.create_channel(&ChannelOptions::default()).unwrap()).collect();
    let mut calls = vec![host.trigger(
        "files::produce",
        &json!({ "bytes": BYTES, "chunk": 65536, "output": channels[0].writer_ref }),
    )];
    for (n, stage) in stages.iter().enumerate() {
        let payload = json!({ "input": channels[n].reader_ref, "output": channels[n + 1].writer_ref });
        calls.push(host.trigger(stage, &payload));
    }
    calls.push(host.trigger(sink, &json!({ "reader": channels[stages.len()].reader_ref })));
    // The local ends are not used: every end is attached by a function through its ref.
    drop(channels);
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|result| result.map_err(|e| e.to_string()))
        .collect()
}

fn rot13(byte: u8) -> u8 {
    match byte {
        b'a'..=b'z' => (byte - b'a' + 13) % 26 + b'a',
        b'A'..=b'Z' => (byte - b'A' + 13) % 26 + b'A',
        other => other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_python_javascript_c_pipeline_is_byte_exact() {
    let host = host().await;
    let results =
        pipeline(&host, &["py::transform::uppercase", "js::transform::rot13"], "c::files::process").await;
    let produced = pattern(BYTES, 0);
    let expected: Vec<u8> = produced.iter().map(|b| rot13(b.to_ascii_uppercase())).collect();
    assert_ne!(expected, produced, "the stages change the bytes, so a skipped stage would show");
    let [producer, python, javascript, counter] = &results[..] else { panic!("{results:?}") };
    assert_eq!(producer.as_ref().unwrap(), &json!({ "written": BYTES, "sha256": sha256_hex(&produced) }));
    assert_eq!(python.as_ref().unwrap()["bytes"], BYTES);
    assert_eq!(javascript.as_ref().unwrap()["bytes"], BYTES);
    assert_eq!(
        counter.as_ref().unwrap(),
        &json!({ "bytes": BYTES, "sha256": sha256_hex(&expected), "messages": 0 })
    );
}

/// The error a stage's call ended with, which must name `reason`, and prove it met an
/// aborted stream (not a clean end, which would have been a success with fewer bytes).
fn assert_saw_abort(result: &Result<Value, String>, reason: &str, who: &str) {
    match result {
        Ok(value) => panic!("{who} took the aborted stream for a whole one: {value}"),
        Err(err) => assert!(err.contains("abort") && err.contains(reason), "{who}: {err}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_exception_reaches_the_javascript_reader_as_aborted() {
    let host = host().await;
    let results =
        pipeline(&host, &["py::test::transform_then_raise", "js::transform::rot13"], "c::files::process")
            .await;
    let reason = "python stage failed on purpose";
    assert!(results[1].as_ref().is_err_and(|err| err.contains(reason)), "{:?}", results[1]);
    assert_saw_abort(&results[2], reason, "the JavaScript stage");
    assert_saw_abort(&results[3], reason, "the C counter, downstream of it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_throw_reaches_the_c_reader_as_aborted() {
    let host = host().await;
    let results =
        pipeline(&host, &["py::transform::uppercase", "js::test::transform_then_throw"], "c::files::process")
            .await;
    let reason = "js stage failed on purpose";
    assert!(results[2].as_ref().is_err_and(|err| err.contains(reason)), "{:?}", results[2]);
    assert_saw_abort(&results[3], reason, "the C counter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_return_in_c_reaches_the_next_reader_as_aborted() {
    let host = host().await;
    let stages = ["py::transform::uppercase", "js::transform::rot13", "c::test::transform_then_fail"];
    let results = pipeline(&host, &stages, "files::process").await;
    let reason = "c stage failed on purpose";
    assert!(results[3].as_ref().is_err_and(|err| err.contains(reason)), "{:?}", results[3]);
    assert_saw_abort(&results[4], reason, "the Rust reader after it");
}

/// A C transformer in the middle works too: Rust → C → JavaScript → C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_transforms_in_the_middle_of_a_pipeline() {
    let host = host().await;
    let results =
        pipeline(&host, &["c::transform::uppercase", "js::transform::rot13"], "c::files::process").await;
    let expected: Vec<u8> = pattern(BYTES, 0).iter().map(|b| rot13(b.to_ascii_uppercase())).collect();
    assert_eq!(results[3].as_ref().unwrap()["sha256"], sha256_hex(&expected), "{results:?}");
}
