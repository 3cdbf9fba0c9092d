//! The WIT writer straight through its bindings (`guests/rust/test-guests/raw-writes`,
//! no SDK): writes of any size arrive whole, in chunks the broker bounds, and a write
//! after `close` is `finished`.

use rill::{ChannelOptions, Item};
use rill_tests::{as_str, assert_no_leaks, call, host, pattern, sha256_hex};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_writes_of_any_size_arrive_whole() {
    // Empty writes, and one write three times the buffer (the host copies it out of
    // guest memory in pieces as room appears).
    let host = host();
    let len = 3 << 20;
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "writer": channel.writer_ref, "bytes": len, "seed": 5 });
    // Read everything, checking that every chunk is non-empty and at most a broker chunk.
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
    let (result, got) = tokio::join!(call(&host, "test::raw_write_sizes", payload), read_all);
    // Empty write, whole write, empty write and close succeed; the write after close is
    // `finished`.
    for step in ["empty", "whole", "empty_again", "close"] {
        assert_eq!(result[step], "ok", "{step}: {result}");
    }
    assert!(as_str(&result["after_close"]).starts_with("finished"), "{result}");
    // Every byte arrived, in order.
    assert_eq!(got.len(), len);
    assert_eq!(sha256_hex(&got), as_str(&result["sha256"]), "every byte, in order");
    assert_eq!(got, pattern(len, 5));
    drop(reader);
    assert_no_leaks(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_after_close_is_finished() {
    let host = host();
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    // Write 10 bytes, close, and write 10 more on the same handle.
    let result = call(&host, "test::raw_write_after_close", json!({ "writer": channel.writer_ref })).await;
    assert_eq!(result["write"], "ok");
    assert_eq!(result["close"], "ok");
    assert!(as_str(&result["write_after_close"]).starts_with("finished"), "{result}");
    // The reader gets the first 10 bytes and a clean end: the late write added nothing.
    let mut reader = channel.reader;
    let mut got = Vec::new();
    while let Some(item) = reader.next().await.unwrap() {
        got.push(item);
    }
    assert_eq!(got, vec![Item::Bytes(pattern(10, 0).into())], "the late write added nothing");
    drop(reader);
    assert_no_leaks(&host).await;
}
