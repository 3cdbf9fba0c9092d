//! C guests (`guests/c`, built by rill-build with clang, wasi-libc and bindings from
//! `wit-bindgen-c`, declared in `guests/c/rill.toml`): the same answers as their Rust
//! twins, the channel contract kept when C code fails or misbehaves, and the SDK's ref
//! parser and error kinds checked against `protocol/conformance` from inside a guest.
//!
//! Without clang or wasi-libc every test here fails, naming what is missing.

use std::path::Path;
use std::time::{Duration, Instant};

use rill::{CallError, CallOptions, ChannelError, ChannelOptions, Host, HostConfig, Item};
use rill_tests::{
    pattern, process_with_a_message, sha256_hex, test_cache_dir, transform_text, transform_with_a_message,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

fn manifest() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/c/rill.toml")
}

/// The C guests' needs, for the error when they cannot be built.
const NEEDS: &str = "the C guests need clang 15+ with wasi-libc and clang's wasm32 runtime (Debian: \
                     apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32) and rustup's \
                     wasm32-wasip2 target";

/// A host serving `guests/c/rill.toml` (see `rill_tests::language_host`).
async fn host() -> Host {
    rill_tests::language_host_from("guests/c/rill.toml", NEEDS).await
}

/// Read `reader` to its end or its error: the bytes, then how it ended.
async fn drain(reader: &mut rill::Reader) -> (Vec<u8>, Result<(), ChannelError>) {
    let mut bytes = Vec::new();
    loop {
        match reader.next().await {
            Ok(Some(Item::Bytes(chunk))) => bytes.extend_from_slice(&chunk),
            Ok(Some(Item::Text(_))) => {}
            Ok(None) => return (bytes, Ok(())),
            Err(err) => return (bytes, Err(err)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_files_process_answers_as_rusts_does_on_64_mib() {
    let host = host().await;
    let data = pattern(64 << 20, 5);
    let c = process_with_a_message(&host, "c::files::process", &data, None).await;
    let rust = process_with_a_message(&host, "files::process", &data, None).await;
    assert_eq!(c, rust);
    assert_eq!(c, json!({ "bytes": data.len(), "sha256": sha256_hex(&data), "messages": 1 }));
    // The digest's edge cases: nothing at all, and lengths around a block's padding.
    for len in [0, 55, 56, 63, 64, 65, 1000] {
        let data = pattern(len, 7);
        let c = process_with_a_message(&host, "c::files::process", &data, None).await;
        assert_eq!(c["sha256"], sha256_hex(&data), "{len} bytes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_transform_uppercases_a_stream_and_keeps_messages_in_order() {
    let host = host().await;
    let text = transform_text();
    let (result, (bytes, messages, failure)) =
        transform_with_a_message(&host, "c::transform::uppercase", &text).await;
    assert_eq!(result.unwrap(), json!({ "bytes": text.len(), "messages": 1 }));
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(bytes, text.to_ascii_uppercase());
    assert_eq!(messages, [(1000, "halfway".to_owned())], "the message where it was sent");
}

/// A failed input reaches the output as aborted with the same reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_transform_passes_an_aborted_input_downstream() {
    let host = host().await;
    let input = host.create_channel(&ChannelOptions::default()).unwrap();
    let output = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "input": input.reader_ref, "output": output.writer_ref });
    let (mut writer, mut reader) = (input.writer, output.reader);
    let feed = async {
        writer.write_all(b"abc").await.unwrap();
        writer.abort("the source broke");
    };
    let (result, (), (bytes, end)) =
        tokio::join!(host.trigger("c::transform::uppercase", &payload), feed, drain(&mut reader));
    let err = result.unwrap_err();
    let CallError::Failed { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("reading input: aborted: the source broke"), "{message}");
    assert_eq!(bytes, b"ABC");
    assert_eq!(end, Err(ChannelError::Aborted("the source broke".into())));
}

/// An early error return with a writer open reaches the reader as `aborted` with the
/// error's message, after every byte written before it, never as a clean end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_error_return_aborts_the_stream_with_its_message() {
    let host = host().await;
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "bytes": 300_000 });
    drop(channel.writer);
    let mut reader = channel.reader;
    let (result, (bytes, end)) =
        tokio::join!(host.trigger("c::test::write_then_fail", &payload), drain(&mut reader));
    let err = result.unwrap_err();
    let CallError::Failed { message, .. } = &err else { panic!("{err:?}") };
    assert_eq!(message, "told to fail midway");
    assert_eq!(bytes.len(), 300_000);
    assert!(bytes.iter().all(|&b| b == b'x'));
    assert_eq!(end, Err(ChannelError::Aborted("told to fail midway".into())));
}

/// A stage that fails midway aborts its output with its message after what it copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_c_stage_aborts_its_output() {
    let host = host().await;
    let input = host.create_channel(&ChannelOptions::default()).unwrap();
    let output = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "input": input.reader_ref, "output": output.writer_ref, "after": 100_000 });
    let (mut writer, mut reader) = (input.writer, output.reader);
    let data = pattern(4 << 20, 9);
    let feed = async {
        // The stage stops reading midway: a write then fails with `closed`.
        let _ = writer.write_all(&data).await;
    };
    let (result, (), (bytes, end)) =
        tokio::join!(host.trigger("c::test::transform_then_fail", &payload), feed, drain(&mut reader));
    let err = result.unwrap_err();
    let CallError::Failed { message, .. } = &err else { panic!("{err:?}") };
    assert_eq!(message, "c stage failed on purpose");
    assert!(bytes.len() >= 100_000 && bytes.len() < data.len(), "{} bytes", bytes.len());
    assert_eq!(bytes, data[..bytes.len()], "a prefix of the input, unchanged");
    assert_eq!(end, Err(ChannelError::Aborted("c stage failed on purpose".into())));
}

/// The sandbox holds for C as for Rust: a loop stops at its deadline, a memory bomb at
/// the memory limit, a huge write at the per-call copy limit (its stream aborted), each
/// failing only its own call; the host serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_c_hurts_only_itself() {
    let host = host().await;
    let options = CallOptions::new().timeout(Duration::from_millis(500));
    let started = Instant::now();
    let err = host.trigger_with("c::hostile::loop", "{}".into(), &options).await.unwrap_err();
    assert!(matches!(err, CallError::TimedOut { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    // malloc returns NULL when the limit refuses memory.grow; the app then calls abort(),
    // a trap after a refused grow, which the host reports as the memory limit.
    let err = host.trigger("c::hostile::memory_bomb", &json!({})).await.unwrap_err();
    let CallError::MemoryLimitExceeded { max_bytes, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*max_bytes, rill::limits::DEFAULT_MAX_MEMORY_BYTES);

    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "bytes": 8 << 20 });
    drop(channel.writer);
    let mut reader = channel.reader;
    let (written, (bytes, end)) =
        tokio::join!(host.trigger("c::hostile::huge_write", &payload), drain(&mut reader));
    let err = written.unwrap_err();
    let CallError::LimitExceeded(message) = &err else { panic!("{err:?}") };
    assert!(message.starts_with("bytes passed to the host in one call"), "{message}");
    assert!(bytes.is_empty(), "{} bytes", bytes.len());
    assert!(matches!(end, Err(ChannelError::Aborted(_))), "{end:?}");

    // Obeyed: the same write under the limit arrives whole, and the host still serves.
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let bytes = rill::limits::DEFAULT_MAX_HOSTCALL_BYTES - 4096;
    let payload = json!({ "writer": channel.writer_ref, "bytes": bytes });
    drop(channel.writer);
    let mut reader = channel.reader;
    let (written, (got, end)) =
        tokio::join!(host.trigger("c::hostile::huge_write", &payload), drain(&mut reader));
    assert_eq!(written.unwrap(), json!({ "written": bytes }));
    assert_eq!((got.len(), end), (bytes, Ok(())));
}

fn conformance(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/conformance").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// `rill_ref_parse` against every case of `protocol/conformance/refs.json`, and a few
/// spellings the table's serialisation cannot show (escapes, whitespace, duplicates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_sdk_parses_refs_as_the_conformance_table_says() {
    let host = host().await;
    let table = conformance("refs.json");
    let valid = table["valid"].as_array().unwrap();
    let invalid = table["invalid"].as_array().unwrap();
    assert!(valid.len() >= 4 && invalid.len() >= 13, "the table shrank");
    for case in valid {
        let result = host.trigger("c::test::parse_ref", &json!({ "json": case["json"] })).await.unwrap();
        let expected = json!({
            "ok": true,
            "channel_id": case["channel_id"],
            "access_key": case["access_key"],
            "direction": case["direction"],
        });
        assert_eq!(result, expected, "{}", case["json"]);
    }
    for case in invalid {
        let result = host.trigger("c::test::parse_ref", &json!({ "json": case["json"] })).await.unwrap();
        assert_eq!(result["ok"], false, "{}: {result}", case["why"]);
        assert_eq!(result["kind"], "invalid-ref", "{}: {result}", case["why"]);
    }
    let raw = |text: &str| host.trigger_json("c::test::parse_ref", format!(r#"{{"json": {text}}}"#));
    let escaped = raw(
        r#" { "channel_id" : "caf\u00e9 \ud83d\ude00\/" , "access_key":"\"\\\n", "direction":"r\u0065ad" } "#,
    );
    let parsed: Value = serde_json::from_str(&escaped.await.unwrap()).unwrap();
    assert_eq!(
        parsed,
        json!({ "ok": true, "channel_id": "caf\u{e9} \u{1f600}/", "access_key": "\"\\\n", "direction": "read" })
    );
    for text in [
        r#"{"channel_id": "c", "channel_id": "d", "access_key": "k", "direction": "read"}"#,
        r#"{"channel_id": "c", "access_key": "k", "direction": "read "}"#,
        r#"{"channel_id": "c", "access_key": "k", "direction": "READ"}"#,
        r#"{"channel_id": ["c"], "access_key": "k", "direction": "write"}"#,
        r#"{"channel_id": "c", "access_key": {"k": 1}, "direction": "write"}"#,
        r#"{"Channel_id": "c", "access_key": "k", "direction": "write"}"#,
    ] {
        let result: Value = serde_json::from_str(&raw(text).await.unwrap()).unwrap();
        assert_eq!(
            (&result["ok"], &result["kind"]),
            (&json!(false), &json!("invalid-ref")),
            "{text}: {result}"
        );
    }
}

/// The SDK's error kinds carry the WIT's names, in the WIT's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_c_sdk_keeps_the_wit_error_kinds() {
    let host = host().await;
    let kinds = host.trigger("c::test::error_kinds", &json!({})).await.unwrap();
    let table = conformance("errors.json");
    assert_eq!(kinds["channel-error"], table["channel-error"]);
    assert_eq!(kinds["call-error"], table["call-error"]);
}

/// An id the component does not serve fails with the ids it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_component_names_what_it_serves() {
    let manifest = rill::manifest::Manifest::from_file(&manifest()).unwrap();
    let dir = manifest.base_dir.join(&manifest.functions["c::bench::noop"].component);
    let wasm = rill_build::build_c(&dir, &test_cache_dir().join("builds")).unwrap();
    let host = Host::builder()
        .function("c::bench::other", rill::ComponentSource::File(wasm))
        .config(HostConfig::default().with_cache_dir(Some(test_cache_dir())))
        .build()
        .unwrap();
    let err = host.trigger("c::bench::other", &json!({})).await.unwrap_err();
    let CallError::Failed { message, .. } = &err else { panic!("{err:?}") };
    assert_eq!(
        message,
        r#"this component does not serve "c::bench::other" (it serves c::bench::noop, c::bench::write, c::bench::read)"#
    );
}

/// A C app that does not compile is clang's error, naming the app.
#[test]
fn a_c_app_that_does_not_compile_is_reported_as_such() {
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("app.c"), "this is not C;\n").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let err = rill_build::build_c(app.path(), cache.path()).unwrap_err();
    match err {
        rill_build::BuildError::Tool { tool, dir } => {
            assert_eq!((tool, dir.as_path()), ("clang", app.path()))
        }
        other => panic!("expected clang's error, got {other:?}"),
    }
    let err = rill_build::build_c(cache.path(), cache.path()).unwrap_err();
    assert!(matches!(err, rill_build::BuildError::NotAnApp { module: "app.c", .. }), "{err:?}");
}
