//! Channel semantics across guest instances.
//!
//! iii's acceptance cases as they apply (text and binary in order, an unknown channel is
//! not found, a taken end cannot be taken again) plus what iii lacked: per-direction keys,
//! double attach as an error, expiry, a producer and consumer moving more than the buffer,
//! and the live-channel count back to zero after every test. How a writer's end reaches
//! its reader is in `writers.rs` and `raw_writes.rs`.
//!
//! The guest is `guests/rust/test-guests/channels` (`test::create`, `test::open`,
//! `test::read`, `test::pipeline`, `test::interleave`).

use std::time::Duration;

use rill::{BrokerConfig, ChannelOptions, HostConfig, Item};
use rill_tests::{as_str, assert_no_leaks, call, host, host_with, pattern, sha256_hex};
use serde_json::json;

/// A host whose channels expire 300 ms after creation if an end is not attached.
fn quick_expiry_host() -> rill::Host {
    let mut config = HostConfig::default();
    config.broker = BrokerConfig::default().attach_timeout(Duration::from_millis(300));
    host_with(config)
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
    // A channel whose reader nobody will ever open.
    let refs = call(&host, "test::create", json!({})).await;
    // Write more than the buffer holds: the write waits, until the channel expires.
    let payload = json!({ "writer": refs["writer_ref"], "bytes": 2 * 1024 * 1024 });
    let started = std::time::Instant::now();
    let written = call(&host, "test::write_then_return", payload).await;
    assert!(as_str(&written["write"]).starts_with("timed-out"), "{written}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The expired channel's reader ref opens nothing.
    let result = call(&host, "test::open", json!({ "ref": refs["reader_ref"], "as": "reader" })).await;
    assert_eq!(result["results"], json!(["not-found"]), "an expired channel's refs are not found");
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_local_ends_do_not_claim_the_refs() {
    let host = host();
    // test::create drops both local ends unused; the refs still open.
    let refs = call(&host, "test::create", json!({})).await;
    // Another instance writes 1234 bytes and closes, a third reads them.
    let write = json!({ "writer": refs["writer_ref"], "bytes": 1234 });
    let read = json!({ "reader": refs["reader_ref"] });
    let (written, read) =
        tokio::join!(host.trigger("test::write_then_close", &write), host.trigger("test::read", &read));
    let written = written.unwrap();
    assert_eq!((&written["write"], &written["close"]), (&json!("ok"), &json!("ok")), "{written}");
    assert_eq!(read.unwrap()["bytes"], 1234);
    assert_no_leaks(&host).await;
}
