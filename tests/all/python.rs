//! Python guests (`guests/python`, built by rill-build with componentize-py from
//! `guests/python/rill.toml`): the same answers as their Rust twins, and the channel
//! contract kept when Python code fails.

use std::path::Path;
use std::time::Duration;

use rill::{CallError, CallOptions, ChannelError, ChannelOptions, Host, Item};
use rill_tests::{
    assert_writes_stop_at_the_memory_limit, pattern, process_with_a_message, sha256_hex, transform_text,
    transform_with_a_message, write_64k_pieces,
};
use serde_json::json;

/// A host serving `guests/python/rill.toml` (see `rill_tests::language_host`).
async fn host() -> Host {
    let needs = format!(
        "the Python guests need python3 with venv and PyPI (componentize-py {} is installed into rill's cache)",
        rill_build::COMPONENTIZE_PY_VERSION
    );
    rill_tests::language_host_from("guests/python/rill.toml", &needs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_files_process_answers_as_rusts_does_on_64_mib() {
    let host = host().await;
    let data = pattern(64 << 20, 3);
    let python = process_with_a_message(&host, "py::files::process", &data, None).await;
    let rust = process_with_a_message(&host, "files::process", &data, None).await;
    assert_eq!(python, rust);
    assert_eq!(python, json!({ "bytes": data.len(), "sha256": sha256_hex(&data), "messages": 1 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_transform_uppercases_a_stream_and_keeps_messages_in_order() {
    let host = host().await;
    let text = transform_text();
    let (result, (bytes, messages, failure)) =
        transform_with_a_message(&host, "py::transform::uppercase", &text).await;
    assert_eq!(result.unwrap(), json!({ "bytes": text.len(), "messages": 1 }));
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(bytes, text.to_ascii_uppercase());
    assert_eq!(messages, [(1000, "halfway".to_owned())], "the message where it was sent");
}

/// An exception inside `with writer:` reaches the reader as `aborted` with the
/// exception, after the bytes written before it, never as a clean end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_exception_aborts_the_stream_with_its_message() {
    let host = host().await;
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "bytes": 100_000 });
    drop(channel.writer);
    let mut reader = channel.reader;
    let call = host.trigger("py::test::write_then_raise", &payload);
    let read = async {
        let mut got = 0;
        loop {
            match reader.next().await {
                Ok(Some(Item::Bytes(chunk))) => got += chunk.len(),
                Ok(Some(Item::Text(_))) => {}
                Ok(None) => panic!("a clean end after {got} bytes"),
                Err(err) => return (got, err),
            }
        }
    };
    let (result, (got, err)) = tokio::join!(call, read);
    let failure = result.unwrap_err().to_string();
    assert!(failure.contains("RuntimeError: told to fail midway"), "{failure}");
    assert_eq!(got, 100_000);
    match err {
        ChannelError::Aborted(reason) => assert!(reason.contains("told to fail midway"), "{reason}"),
        other => panic!("expected aborted, got {other:?}"),
    }
}

/// The SDK's own tests (refs and error kinds against `protocol/conformance`), on the
/// host's CPython.
#[test]
fn the_python_sdk_passes_its_conformance_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = std::process::Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "guests/python/tests"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&root)
        .output()
        .expect("python3 runs (install Python 3.10+ to test the Python SDK)");
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("\nOK") && !report.contains("Ran 0 tests"), "{report}");
}

/// The sandbox holds for Python as for Rust: a loop stops at its deadline, a memory
/// bomb at the memory limit, a huge write at the per-call copy limit (its stream
/// aborted), each failing only its own call; the host serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_python_hurts_only_itself() {
    let host = host().await;
    let options = CallOptions::new().timeout(Duration::from_millis(500));
    let err = host.trigger_with("py::hostile::loop", "{}".into(), &options).await.unwrap_err();
    assert!(matches!(err, CallError::TimedOut { .. }), "{err:?}");

    // CPython survives a refused memory.grow: the limit reaches Python as MemoryError,
    // which fails the call (a Rust guest aborts instead, and the host reports
    // MemoryLimitExceeded).
    let err = host.trigger("py::hostile::memory_bomb", &json!({})).await.unwrap_err();
    let CallError::Failed { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.starts_with("MemoryError"), "{message}");

    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "bytes": 8 << 20 });
    drop(channel.writer);
    let mut reader = channel.reader;
    let (written, read) = tokio::join!(host.trigger("py::hostile::huge_write", &payload), reader.next());
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
    let read = async {
        let mut total = 0;
        while let Some(item) = reader.next().await.unwrap() {
            if let Item::Bytes(chunk) = item {
                total += chunk.len();
            }
        }
        total
    };
    let (written, total) = tokio::join!(host.trigger("py::hostile::huge_write", &payload), read);
    assert_eq!((written.unwrap()["written"].as_u64(), total), (Some(bytes as u64), bytes));
}

/// componentize-py 0.25.1's bindings, like componentize-js's, keep linear memory for the
/// bytes of every write, so one Python call writes at most about its memory limit (64
/// MiB by default): 48 MiB in 64 KiB writes passes, 64 MiB does not. Pinned so that a
/// componentize-py that frees them shows here (then lift the cap in rill-bench and the
/// README). The failure is the call's own, and its reader learns of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_call_writes_at_most_about_its_memory_limit() {
    let host = host().await;

    // Obeyed: well under the limit, every byte arrives and the stream ends cleanly.
    let total: u64 = 32 << 20;
    let (written, (bytes, _, failure)) = write_64k_pieces(&host, "py::bench::write", total).await;
    assert_eq!(written.unwrap(), json!({ "written": total }));
    assert_eq!((bytes.len() as u64, failure), (total, None));

    // Violated: twice the limit stops the call at the limit, and aborts its stream.
    let total: u64 = 128 << 20;
    assert_writes_stop_at_the_memory_limit(&host, "py::bench::write", total).await;
}
