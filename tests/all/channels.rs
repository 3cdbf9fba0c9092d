//! Channel semantics across guest instances.
//!
//! iii's acceptance cases as they apply (text and binary in order, close ends the stream,
//! an unknown channel is not found, a taken end cannot be taken again) plus what iii
//! lacked: per-direction keys, double attach as an error, writer abort and writer trap as
//! errors at the reader after the buffered data, reader drop reaching the writer, expiry,
//! and the live-channel count back to zero after every test.

use std::time::Duration;

use rill::{BrokerConfig, CallOptions, ChannelOptions, HostConfig, Item};
use rill_tests::{assert_no_leaks, call, host, host_with, pattern, sha256_hex};
use serde_json::{Value, json};

/// A host whose channels expire 300 ms after creation if an end is not attached.
fn quick_expiry_host() -> rill::Host {
    let mut config = HostConfig::default();
    config.broker = BrokerConfig::default().attach_timeout(Duration::from_millis(300));
    host_with(config)
}

fn as_str(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_opens_only_its_own_direction() {
    let host = quick_expiry_host();
    let refs = call(&host, "test::create", json!({})).await;
    let wrong_way = [(refs["reader_ref"].clone(), "writer"), (refs["writer_ref"].clone(), "reader")];
    for (r, end) in wrong_way {
        let result = call(&host, "test::open", json!({ "ref": r, "as": end })).await;
        assert_eq!(result["results"], json!(["not-found"]), "a {end} opened with the other end's ref");
    }
    // The reader's key presented as a writer ref: iii's shared key would accept this.
    let mut forged = refs["reader_ref"].clone();
    forged["direction"] = json!("write");
    let result = call(&host, "test::open", json!({ "ref": forged, "as": "writer" })).await;
    assert_eq!(result["results"], json!(["not-found"]));
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_end_attaches_once() {
    let host = quick_expiry_host();
    let refs = call(&host, "test::create", json!({})).await;
    let result =
        call(&host, "test::open", json!({ "ref": refs["reader_ref"], "as": "reader", "times": 2 })).await;
    assert_eq!(result["results"], json!(["ok", "already-attached"]));
    // The end stays taken after its holder is gone: never a second, empty stream.
    let result = call(&host, "test::open", json!({ "ref": refs["reader_ref"], "as": "reader" })).await;
    assert_ne!(result["results"], json!(["ok"]));
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_unknown_refs_are_not_found() {
    let host = quick_expiry_host();
    let refs = call(&host, "test::create", json!({})).await;
    let mut wrong_key = refs["reader_ref"].clone();
    wrong_key["access_key"] = json!("0".repeat(64));
    let mut unknown = refs["reader_ref"].clone();
    unknown["channel_id"] = json!("00000000-0000-4000-8000-000000000000");
    let mut garbage = refs["reader_ref"].clone();
    garbage["channel_id"] = json!("not a uuid");
    for r in [wrong_key, unknown, garbage] {
        let result = call(&host, "test::open", json!({ "ref": r, "as": "reader" })).await;
        assert_eq!(result["results"], json!(["not-found"]), "{r}");
    }
    // The genuine ref still works after the failed guesses.
    let result = call(&host, "test::open", json!({ "ref": refs["reader_ref"], "as": "reader" })).await;
    assert_eq!(result["results"], json!(["ok"]));
    assert_no_leaks(&host).await;
}

/// Run `test::write` on a new channel's writer and `test::read` on its reader,
/// concurrently, and return both results.
async fn write_and_read(
    host: &rill::Host,
    ops: Value,
    read: Value,
) -> (Result<Value, rill::CallError>, Value) {
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let mut read_payload = read;
    read_payload["reader"] = channel.reader_ref.to_value();
    let write_payload = json!({ "writer": channel.writer_ref, "ops": ops });
    let (written, read) =
        tokio::join!(host.trigger("test::write", &write_payload), host.trigger("test::read", &read_payload));
    (written, read.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_bytes_arrive_in_order() {
    let host = host();
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "count": 40 });
    let mut reader = channel.reader;
    let collect = async {
        let mut items = Vec::new();
        while let Some(item) = reader.next().await.unwrap() {
            items.push(item);
        }
        items
    };
    let (result, items) = tokio::join!(host.trigger("test::interleave", &payload), collect);
    assert_eq!(result.unwrap()["items"], 40);
    let expected: Vec<Item> = (0..40u8)
        .flat_map(|i| [Item::Bytes(vec![i; usize::from(i) + 1].into()), Item::Text(format!("t{i}"))])
        .collect();
    assert_eq!(items, expected);
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_close_is_a_clean_end() {
    let host = host();
    let ops = json!([{ "op": "bytes", "len": 300_000, "seed": 4 }, { "op": "close" }]);
    let (written, read) = write_and_read(&host, ops, json!({})).await;
    let written = written.unwrap();
    assert_eq!(written["results"], json!(["ok", "ok"]));
    assert_eq!(read["outcome"], "end");
    assert_eq!(read["bytes"], 300_000);
    assert_eq!(read["sha256"], sha256_hex(&pattern(300_000, 4)));
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_abort_reaches_the_reader_after_the_data() {
    let host = host();
    let ops =
        json!([{ "op": "bytes", "len": 100_000, "seed": 1 }, { "op": "abort", "reason": "disk on fire" }]);
    let (written, read) = write_and_read(&host, ops, json!({})).await;
    assert_eq!(written.unwrap()["results"], json!(["ok", "ok"]));
    assert_eq!(read["bytes"], 100_000, "everything buffered before the abort is delivered");
    assert_eq!(read["sha256"], sha256_hex(&pattern(100_000, 1)));
    assert_eq!(read["outcome"], "aborted: disk on fire");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_trap_mid_stream_is_an_error_at_the_reader() {
    let host = host();
    let ops = json!([{ "op": "bytes", "len": 70_000, "seed": 2 }, { "op": "trap", "message": "kaboom" }]);
    let (written, read) = write_and_read(&host, ops, json!({})).await;
    let err = written.unwrap_err();
    assert_eq!(err.kind(), "trapped", "{err}");
    assert_eq!(read["bytes"], 70_000);
    assert_eq!(read["sha256"], sha256_hex(&pattern(70_000, 2)));
    let outcome = as_str(&read["outcome"]);
    assert!(outcome.starts_with("aborted: function \"test::write\" trapped"), "{outcome}");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_dropped_without_close_is_an_abort() {
    let host = host();
    let ops = json!([{ "op": "bytes", "len": 10 }, { "op": "return" }]);
    let (written, read) = write_and_read(&host, ops, json!({})).await;
    written.unwrap();
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
    let ops = json!([{ "op": "write_until_error", "chunk": 4096 }]);
    let payload = json!({ "writer": channel.writer_ref, "ops": ops });
    let err = host
        .trigger_with(
            "test::write",
            payload.to_string(),
            &CallOptions::new().timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "timed-out", "{err}");
    // The reader still gets every byte that was buffered, then the reason.
    let reason = buffered_bytes_then_abort(channel.reader).await;
    assert!(reason.contains("test::write") && reason.contains("did not finish"), "{reason}");
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
    let ops = json!([{ "op": "write_until_error", "chunk": 4096 }]);
    let payload = json!({ "writer": channel.writer_ref, "ops": ops });
    // The writer fills the buffer and waits; once it has written, the caller gives up
    // and drops the call.
    let full = async {
        while host.broker().stats().buffered_bytes == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        result = host.trigger("test::write", &payload) => {
            panic!("the writer cannot finish while nobody reads: {result:?}")
        }
        () = full => {}
    }
    let reason = buffered_bytes_then_abort(channel.reader).await;
    assert!(reason.contains("cancelled"), "{reason}");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_drop_makes_the_writer_see_closed() {
    let host = host();
    let ops = json!([{ "op": "write_until_error", "chunk": 4096 }]);
    let (written, read) = write_and_read(&host, ops, json!({ "limit": 10_000 })).await;
    assert_eq!(read["outcome"], "limit");
    let written = written.unwrap();
    let last = as_str(&written["results"][0]);
    assert!(last.starts_with("closed"), "{written}");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_writes_of_any_size_arrive_whole() {
    // Straight through the bindings: empty writes, and one write three times the buffer
    // (the host copies it out of guest memory in pieces as room appears).
    let host = host();
    let len = 3 << 20;
    let ops = json!([
        { "op": "bytes", "len": 0 },
        { "op": "bytes", "len": len, "seed": 5 },
        { "op": "bytes", "len": 0 },
        { "op": "close" },
        { "op": "bytes", "len": 0 },
    ]);
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "ops": ops, "raw": true });
    let mut reader = channel.reader;
    let read_all = async {
        let mut got = Vec::new();
        while let Some(item) = reader.next().await.unwrap() {
            let Item::Bytes(bytes) = item else { panic!("unexpected {item:?}") };
            assert!(!bytes.is_empty() && bytes.len() <= rill::broker::MAX_CHUNK_BYTES, "{}", bytes.len());
            got.extend_from_slice(&bytes);
        }
        got
    };
    let (result, got) = tokio::join!(call(&host, "test::write", payload), read_all);
    assert_eq!(result["results"], json!(["ok", "ok", "ok", "ok", result["results"][4].clone()]));
    assert!(as_str(&result["results"][4]).starts_with("finished"), "{result}");
    assert_eq!(got.len(), len);
    assert_eq!(sha256_hex(&got), as_str(&result["sha256"]), "every byte, in order");
    assert_eq!(got, pattern(len, 5));
    drop(reader);
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_after_close_is_finished() {
    let host = host();
    let ops = json!([{ "op": "bytes", "len": 10 }, { "op": "close" }, { "op": "bytes", "len": 10 }]);
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "ops": ops, "raw": true });
    let result = call(&host, "test::write", payload).await;
    assert_eq!(result["results"][0], "ok");
    assert_eq!(result["results"][1], "ok");
    assert!(as_str(&result["results"][2]).starts_with("finished"), "{result}");
    let mut reader = channel.reader;
    let mut got = Vec::new();
    while let Some(item) = reader.next().await.unwrap() {
        got.push(item);
    }
    assert_eq!(got, vec![Item::Bytes(pattern(10, 0).into())], "the late write added nothing");
    drop(reader);
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_consumer_larger_than_the_buffer_via_spawn() {
    let host = host();
    let n = 4 * 1024 * 1024;
    let result = call(
        &host,
        "test::pipeline",
        json!({ "bytes": n, "chunk": 65_536, "buffer_bytes": rill::broker::MIN_BUFFER_BYTES, "seed": 3 }),
    )
    .await;
    let expected = sha256_hex(&pattern(n, 3));
    assert_eq!(result["sha256"], expected);
    assert_eq!(result["reader"]["sha256"], expected, "{result}");
    assert_eq!(result["reader"]["outcome"], "end");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_can_cap_the_chunk_size() {
    let host = host();
    let result =
        call(&host, "test::pipeline", json!({ "bytes": 200_000, "chunk": 65_536, "read": { "max": 1000 } }))
            .await;
    assert_eq!(result["reader"]["bytes"], 200_000);
    assert_eq!(result["reader"]["max_chunk"], 1000, "{result}");
    assert_no_leaks(&host).await;
}

/// Small writes already buffered reach a guest that asks for more in one piece, up to
/// what it asked for; a text message between them is not crossed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_reading_more_gets_small_writes_joined() {
    let host = host();
    for max in [None, Some(65_536), Some(10_000)] {
        let channel = host.create_channel(&ChannelOptions::default()).unwrap();
        let mut writer = channel.writer;
        for i in 0..20u8 {
            writer.write(vec![i; 4096]).await.unwrap();
        }
        writer.send_text("mark").await.unwrap();
        writer.write(vec![20u8; 100]).await.unwrap();
        writer.write(vec![21u8; 100]).await.unwrap();
        writer.close().unwrap();
        let mut read = json!({ "reader": channel.reader_ref });
        if let Some(max) = max {
            read["max"] = json!(max);
        }
        let result = call(&host, "test::read", read).await;
        let (chunks, max_chunk) = match max {
            // 80 KiB in reads of 64 KiB (the chunk size) and 16 KiB; then the 200 bytes.
            None | Some(65_536) => (3, 65_536),
            // 80 KiB in reads of 10,000 bytes: 8 full and 1,920 left; then the 200 bytes.
            Some(_) => (10, 10_000),
        };
        assert_eq!(result["items"], json!([{ "bytes": 81_920 }, { "text": "mark" }, { "bytes": 200 }]));
        assert_eq!(
            (&result["chunks"], &result["max_chunk"]),
            (&json!(chunks), &json!(max_chunk)),
            "{result}"
        );
        let expected: Vec<u8> =
            (0..20u8).flat_map(|i| vec![i; 4096]).chain([20u8; 100]).chain([21u8; 100]).collect();
        assert_eq!(result["sha256"], sha256_hex(&expected));
        assert_eq!(result["outcome"], "end");
    }
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_never_attached_expires_the_channel() {
    let host = quick_expiry_host();
    let refs = call(&host, "test::create", json!({})).await;
    // More than the buffer holds, and nobody ever reads.
    let ops = json!([{ "op": "bytes", "len": 2 * 1024 * 1024 }]);
    let started = std::time::Instant::now();
    let written = call(&host, "test::write", json!({ "writer": refs["writer_ref"], "ops": ops })).await;
    assert!(as_str(&written["results"][0]).starts_with("timed-out"), "{written}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let result = call(&host, "test::open", json!({ "ref": refs["reader_ref"], "as": "reader" })).await;
    assert_eq!(result["results"], json!(["not-found"]), "an expired channel's refs are not found");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_local_ends_do_not_claim_the_refs() {
    let host = host();
    // test::create drops both local ends unused; the refs still open.
    let refs = call(&host, "test::create", json!({})).await;
    let write =
        json!({ "writer": refs["writer_ref"], "ops": [{ "op": "bytes", "len": 1234 }, { "op": "close" }] });
    let read = json!({ "reader": refs["reader_ref"] });
    let (written, read) =
        tokio::join!(host.trigger("test::write", &write), host.trigger("test::read", &read));
    assert_eq!(written.unwrap()["results"], json!(["ok", "ok"]));
    assert_eq!(read.unwrap()["bytes"], 1234);
    assert_no_leaks(&host).await;
}
