//! How a writer ends its stream, as its reader sees it: a clean close is the only clean
//! end; an abort, a trap, a writer dropped unclosed, a deadline or a cancelled call all
//! reach the reader as `aborted` after the buffered data; and a reader that goes away
//! makes the writer's next write fail with `closed`.
//!
//! The writers are `guests/rust/test-guests/writers`, one function per way to end; the
//! readers are `test::read` (`test-guests/channels`) or the embedding API.

use std::time::Duration;

use rill::{CallOptions, ChannelOptions, Item};
use rill_tests::{as_str, assert_no_leaks, host, pattern, sha256_hex};
use serde_json::{Value, json};

/// Run `writer` (one of `test::write_*`) with `payload` plus a new channel's writer ref,
/// and `test::read` with `read` plus its reader ref, concurrently; return both results.
async fn write_and_read(
    host: &rill::Host,
    writer: &str,
    mut payload: Value,
    mut read: Value,
) -> (Result<Value, rill::CallError>, Value) {
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    payload["writer"] = channel.writer_ref.to_value();
    read["reader"] = channel.reader_ref.to_value();
    let (written, read) = tokio::join!(host.trigger(writer, &payload), host.trigger("test::read", &read));
    (written, read.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_close_is_a_clean_end() {
    let host = host();
    // Write 300,000 bytes of seed 4, then close; read it all in another instance.
    let payload = json!({ "bytes": 300_000, "seed": 4 });
    let (written, read) = write_and_read(&host, "test::write_then_close", payload, json!({})).await;
    // The write and the close both succeeded.
    let written = written.unwrap();
    assert_eq!((&written["write"], &written["close"]), (&json!("ok"), &json!("ok")), "{written}");
    // The reader saw a clean end after exactly those bytes.
    assert_eq!(read["outcome"], "end");
    assert_eq!(read["bytes"], 300_000);
    assert_eq!(read["sha256"], sha256_hex(&pattern(300_000, 4)));
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_abort_reaches_the_reader_after_the_data() {
    let host = host();
    // Write 100,000 bytes of seed 1, then abort with a reason.
    let payload = json!({ "bytes": 100_000, "seed": 1, "reason": "disk on fire" });
    let (written, read) = write_and_read(&host, "test::write_then_abort", payload, json!({})).await;
    // The write and the abort both succeeded.
    let written = written.unwrap();
    assert_eq!((&written["write"], &written["abort"]), (&json!("ok"), &json!("ok")), "{written}");
    // The reader gets everything buffered before the abort, then the reason.
    assert_eq!(read["bytes"], 100_000, "everything buffered before the abort is delivered");
    assert_eq!(read["sha256"], sha256_hex(&pattern(100_000, 1)));
    assert_eq!(read["outcome"], "aborted: disk on fire");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_trap_mid_stream_is_an_error_at_the_reader() {
    let host = host();
    // Write 70,000 bytes of seed 2, then trap with the writer still open.
    let payload = json!({ "bytes": 70_000, "seed": 2, "message": "kaboom" });
    let (written, read) = write_and_read(&host, "test::write_then_trap", payload, json!({})).await;
    // The writer's call trapped.
    let err = written.unwrap_err();
    assert!(matches!(err, rill::CallError::Trapped { .. }), "{err}");
    assert_eq!(err.kind(), "failed", "what a guest calling it would see");
    // The reader gets the buffered bytes, then an abort naming the trap.
    assert_eq!(read["bytes"], 70_000);
    assert_eq!(read["sha256"], sha256_hex(&pattern(70_000, 2)));
    let outcome = as_str(&read["outcome"]);
    assert!(outcome.starts_with("aborted: function \"test::write_then_trap\" trapped"), "{outcome}");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_dropped_without_close_is_an_abort() {
    let host = host();
    // Write 10 bytes, then return without closing.
    let payload = json!({ "bytes": 10 });
    let (written, read) = write_and_read(&host, "test::write_then_return", payload, json!({})).await;
    // The writer's call succeeded.
    written.unwrap();
    // The reader gets the 10 bytes, then an abort, never a clean end.
    assert_eq!(read["bytes"], 10);
    assert_eq!(read["outcome"], "aborted: writer dropped without close");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_times_out_aborts_its_stream() {
    let host = host();
    let channel = host.create_channel(&ChannelOptions::buffer_bytes(rill::broker::MIN_BUFFER_BYTES)).unwrap();
    // Nobody reads yet, so the writer fills the buffer and waits inside a host call until
    // its deadline passes.
    let payload = json!({ "writer": channel.writer_ref, "chunk": 4096 });
    let err = host
        .trigger_with(
            "test::write_until_error",
            payload.to_string(),
            &CallOptions::new().timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "timed-out", "{err}");
    // The reader still gets every byte that was buffered, then the reason.
    let reason = buffered_bytes_then_abort(channel.reader).await;
    assert!(reason.contains("test::write_until_error") && reason.contains("did not finish"), "{reason}");
    assert_no_leaks(&host).await;
}

/// Read a stream whose writer was stopped while the buffer (the smallest there is) was
/// full: some bytes, no more than the buffer, then an abort — never a clean end. Returns
/// the abort's reason.
async fn buffered_bytes_then_abort(mut reader: rill::Reader) -> String {
    let mut bytes = 0;
    let outcome = loop {
        match reader.next().await {
            Ok(Some(Item::Bytes(b))) => bytes += b.len(),
            Ok(Some(Item::Text(t))) => panic!("unexpected text {t}"),
            Ok(None) => panic!("a stopped writer must not look like a clean end"),
            Err(err) => break err,
        }
    };
    assert!(bytes > 0 && bytes <= rill::broker::MIN_BUFFER_BYTES, "{bytes}");
    let rill::ChannelError::Aborted(reason) = outcome else { panic!("{outcome:?}") };
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_aborts_its_stream() {
    let host = host();
    let channel = host.create_channel(&ChannelOptions::buffer_bytes(rill::broker::MIN_BUFFER_BYTES)).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "chunk": 4096 });
    // The writer fills the buffer and waits; once it has written, the caller gives up
    // and drops the call.
    let full = async {
        while host.broker().stats().buffered_bytes == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        result = host.trigger("test::write_until_error", &payload) => {
            panic!("the writer cannot finish while nobody reads: {result:?}")
        }
        () = full => {}
    }
    // The reader gets what was buffered, then an abort saying the call was cancelled.
    let reason = buffered_bytes_then_abort(channel.reader).await;
    assert!(reason.contains("cancelled"), "{reason}");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_drop_makes_the_writer_see_closed() {
    let host = host();
    // Write until refused, while the reader stops (dropping its end) after 10,000 bytes.
    let payload = json!({ "chunk": 4096 });
    let (written, read) =
        write_and_read(&host, "test::write_until_error", payload, json!({ "limit": 10_000 })).await;
    assert_eq!(read["outcome"], "limit");
    // The write that ended the writer failed with `closed`.
    let written = written.unwrap();
    let error = as_str(&written["error"]);
    assert!(error.starts_with("closed"), "{written}");
    assert_no_leaks(&host).await;
}
