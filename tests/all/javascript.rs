//! JavaScript guests (`guests/javascript`, built by rill-build with componentize-js from
//! `guests/javascript/rill.toml`): the same answers as their Rust twins, the channel
//! contract kept when JavaScript code throws, the sandbox holding for SpiderMonkey, and
//! the SDK's own conformance tests on the host's Node.

use std::path::Path;
use std::time::Duration;

use rill::{CallError, CallOptions, ChannelError, ChannelOptions, Host};
use rill_tests::{
    assert_writes_stop_at_the_memory_limit, drain, pattern, process_with_a_message, sha256_hex,
    transform_text, transform_with_a_message,
};
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// A host serving `guests/javascript/rill.toml` (see `rill_tests::language_host`).
async fn host() -> Host {
    let needs = format!(
        "the JavaScript guests need node 18+ and npm, and the npm registry on first use \
         (componentize-js {} is installed into rill's cache)",
        rill_build::COMPONENTIZE_JS_VERSION
    );
    rill_tests::language_host_from("guests/javascript/rill.toml", &needs).await
}

/// The deadline of a 64 MiB `files::process`: SHA-256 in JavaScript runs in
/// SpiderMonkey's interpreter (no JIT in wasm), about 1 MB/s.
const SHA_DEADLINE: Option<Duration> = Some(Duration::from_secs(240));

fn rot13(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| match b {
            b'a'..=b'z' => (b - b'a' + 13) % 26 + b'a',
            b'A'..=b'Z' => (b - b'A' + 13) % 26 + b'A',
            other => other,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_files_process_answers_as_rusts_does_on_64_mib() {
    let host = host().await;
    let data = pattern(64 << 20, 3);
    let javascript = process_with_a_message(&host, "js::files::process", &data, SHA_DEADLINE).await;
    let rust = process_with_a_message(&host, "files::process", &data, SHA_DEADLINE).await;
    assert_eq!(javascript, rust);
    assert_eq!(javascript, json!({ "bytes": data.len(), "sha256": sha256_hex(&data), "messages": 1 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_transform_uppercases_a_stream_and_keeps_messages_in_order() {
    let host = host().await;
    let text = transform_text();
    let (result, (bytes, messages, failure)) =
        transform_with_a_message(&host, "js::transform::uppercase", &text).await;
    assert_eq!(result.unwrap(), json!({ "bytes": text.len(), "messages": 1 }));
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(bytes, text.to_ascii_uppercase());
    assert_eq!(messages, [(1000, "halfway".to_owned())], "the message where it was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_rot13_is_byte_exact_and_its_own_inverse() {
    let host = host().await;
    let text: Vec<u8> = (0..=255u8).cycle().take(3 << 20).collect();
    let (result, (bytes, messages, failure)) =
        transform_with_a_message(&host, "js::transform::rot13", &text).await;
    assert_eq!(result.unwrap(), json!({ "bytes": text.len(), "messages": 1 }));
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(bytes, rot13(&text));
    assert_ne!(bytes, text, "letters changed");
    assert_eq!(rot13(&bytes), text);
    assert_eq!(messages, [(1000, "halfway".to_owned())]);
}

/// A throw with a writer open reaches the reader as `aborted` with the error's message,
/// after every byte written before it, never as a clean end; the call fails with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_throw_aborts_the_stream_with_its_message() {
    let host = host().await;
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "bytes": 100_000 });
    drop(channel.writer);
    let mut reader = channel.reader;
    let (result, (bytes, messages, failure)) =
        tokio::join!(host.trigger("js::test::write_then_throw", &payload), drain(&mut reader));
    let err = result.unwrap_err();
    let CallError::Failed { message, .. } = &err else { panic!("expected Failed, got {err:?}") };
    assert_eq!(message, "Error: told to fail midway");
    assert_eq!((bytes.len(), messages.len()), (100_000, 0));
    assert!(bytes.iter().all(|&b| b == b'x'));
    match failure {
        Some(ChannelError::Aborted(reason)) => assert!(reason.contains("told to fail midway"), "{reason}"),
        other => panic!("expected aborted, got {other:?}"),
    }
}

/// A stage that throws mid-stream aborts its output with its error after what it
/// copied; the call fails with the same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_transform_that_throws_aborts_its_output() {
    let host = host().await;
    let input = host.create_channel(&ChannelOptions::default()).unwrap();
    let output = host.create_channel(&ChannelOptions::default()).unwrap();
    let after = 100_000;
    let payload = json!({ "input": input.reader_ref, "output": output.writer_ref, "after": after });
    let (mut writer, mut reader) = (input.writer, output.reader);
    let data = pattern(4 << 20, 11);
    // The stage drops its input when it fails, so the feed ends early with `closed`
    // (reported as an io error by the host's writer); what matters is the output.
    let feed = async {
        let fed = writer.write_all(&data).await;
        let _ = writer.shutdown().await;
        fed
    };
    let (result, fed, (bytes, _, failure)) =
        tokio::join!(host.trigger("js::test::transform_then_throw", &payload), feed, drain(&mut reader));
    let err = result.unwrap_err();
    let CallError::Failed { message, .. } = &err else { panic!("expected Failed, got {err:?}") };
    assert_eq!(message, "Error: js stage failed on purpose");
    assert!(fed.is_err(), "the feed cannot finish: the stage stopped reading");
    assert!(bytes.len() >= after && bytes.len() < data.len(), "{} bytes copied", bytes.len());
    assert_eq!(bytes, data[..bytes.len()], "a prefix of the input, unchanged");
    match failure {
        Some(ChannelError::Aborted(reason)) => {
            assert!(reason.contains("js stage failed on purpose"), "{reason}")
        }
        other => panic!("expected aborted, got {other:?}"),
    }
}

/// The SDK's own tests (refs and error kinds against `protocol/conformance`), on the
/// host's Node. Fails, saying so, without `node`.
#[test]
fn the_javascript_sdk_passes_its_conformance_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::process::Command::new("node")
        .args(["--test", "guests/javascript/tests/"])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run node ({err}): install Node.js 18+ to test the JavaScript SDK")
        });
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}\n{}", String::from_utf8_lossy(&output.stderr));
    let count = |name: &str| {
        report
            .lines()
            .find_map(|line| line.strip_prefix(&format!("# {name} "))?.trim().parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no `# {name}` line in node's report:\n{report}"))
    };
    assert!(count("tests") > 0, "{report}");
    assert_eq!((count("pass"), count("fail")), (count("tests"), 0), "{report}");
}

/// The sandbox holds for JavaScript as for Rust: a loop stops at its deadline, a memory
/// bomb at the memory limit, a huge write at the per-call copy limit (its stream
/// aborted), each failing only its own call; the host serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_javascript_hurts_only_itself() {
    let host = host().await;
    let options = CallOptions::new().timeout(Duration::from_millis(500));
    let err = host.trigger_with("js::hostile::loop", "{}".into(), &options).await.unwrap_err();
    assert!(matches!(err, CallError::TimedOut { .. }), "{err:?}");

    // SpiderMonkey survives a refused memory.grow: it throws its out-of-memory
    // exception (the string "out of memory", not an Error), which fails the call (a
    // Rust guest aborts instead, and the host reports MemoryLimitExceeded).
    let err = host.trigger("js::hostile::memory_bomb", &json!({})).await.unwrap_err();
    let CallError::Failed { message, .. } = &err else { panic!("{err:?}") };
    assert_eq!(message, "out of memory");

    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "bytes": 8 << 20 });
    drop(channel.writer);
    let mut reader = channel.reader;
    let (written, read) = tokio::join!(host.trigger("js::hostile::huge_write", &payload), reader.next());
    let err = written.unwrap_err();
    let CallError::LimitExceeded(message) = &err else { panic!("{err:?}") };
    assert!(message.starts_with("bytes passed to the host in one call"), "{message}");
    assert!(matches!(read, Err(ChannelError::Aborted(_))), "{read:?}");

    // Obeyed: the same write under the limit arrives whole, and the host still serves.
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let bytes = rill::limits::DEFAULT_MAX_HOSTCALL_BYTES - 4096;
    let payload = json!({ "writer": channel.writer_ref, "bytes": bytes });
    drop(channel.writer);
    let mut reader = channel.reader;
    let (written, (got, _, failure)) =
        tokio::join!(host.trigger("js::hostile::huge_write", &payload), drain(&mut reader));
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!((written.unwrap()["written"].as_u64(), got.len()), (Some(bytes as u64), bytes));
}

/// A known limit of componentize-js 0.23, pinned so that its fix is noticed: the
/// bindings it generates copy a `write`'s bytes into linear memory and never free that
/// copy, so one call of a JavaScript function can write only about its memory limit
/// (64 MiB by default) in all. Past it the call fails with the memory limit, and the
/// stream is aborted, never cut short cleanly. (Reading has no such limit: 64 MiB pass
/// through `js::files::process` above.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_call_writes_at_most_about_its_memory_limit() {
    let host = host().await;
    let total: u64 = 128 << 20;
    assert_writes_stop_at_the_memory_limit(&host, "js::bench::write", total).await;
}
