//! The seed document's flow: create a channel, pass the reader ref in a trigger payload,
//! write, close, and read it in another function.

use rill::{ChannelOptions, Item};
use rill_tests::{assert_no_leaks, call, host, pattern, sha256_hex};
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// Producer and consumer are two guest instances: `files::produce` creates the channel,
/// spawns `files::process` with the reader ref, streams more than the buffer holds, closes
/// and collects the consumer's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_flow_across_two_guest_instances() {
    let host = host();
    let n = 5 * 1024 * 1024 + 17;
    let result = call(&host, "files::produce", json!({ "bytes": n })).await;
    let expected = sha256_hex(&pattern(n, 0));
    assert_eq!(result["written"], n);
    assert_eq!(result["sha256"], expected);
    assert_eq!(result["consumer"]["bytes"], n);
    assert_eq!(result["consumer"]["sha256"], expected, "the consumer read exactly what was written");
    assert_no_leaks(&host).await;
}

/// The same with a small buffer and small writes: many more waits on a full buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_flow_with_the_smallest_buffer_and_small_writes() {
    let host = host();
    let n = 1024 * 1024 + 3;
    let result = call(
        &host,
        "files::produce",
        json!({ "bytes": n, "chunk": 4096, "buffer_bytes": rill::broker::MIN_BUFFER_BYTES }),
    )
    .await;
    assert_eq!(result["consumer"]["sha256"], sha256_hex(&pattern(n, 0)));
    assert_no_leaks(&host).await;
}

/// The host writes (the seed's step 2 through the embedding API), the guest reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_writes_and_a_guest_reads() {
    let host = host();
    let channel = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "filename": "report.csv", "reader": channel.reader_ref });
    drop(channel.reader);
    let mut writer = channel.writer;
    let data = pattern(3 * 1024 * 1024, 9);
    let feed = async {
        writer.write_all(&data).await.unwrap();
        writer.send_text("a progress note").await.unwrap();
        writer.shutdown().await.unwrap();
    };
    let (result, ()) = tokio::join!(host.trigger("files::process", &payload), feed);
    let result = result.unwrap();
    assert_eq!(result["bytes"], data.len());
    assert_eq!(result["sha256"], sha256_hex(&data));
    assert_eq!(result["messages"], 1);
    assert_no_leaks(&host).await;
}

/// A guest writes, the host reads: iii's bidirectional test (progress text messages, a
/// completion message, then a binary result).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidirectional_streaming_with_progress_messages() {
    let host = host();
    let input = host.create_channel(&ChannelOptions::default()).unwrap();
    let output = host.create_channel(&ChannelOptions::default()).unwrap();
    let payload = json!({ "input": input.reader_ref, "output": output.writer_ref });
    let text = b"the quick brown fox jumps over the lazy dog";
    let (mut writer, mut reader) = (input.writer, output.reader);
    let feed = async {
        writer.write(&text[..]).await.unwrap();
        writer.close().unwrap();
    };
    let collect = async {
        let mut items = Vec::new();
        while let Some(item) = reader.next().await.unwrap() {
            items.push(item);
        }
        items
    };
    let (result, (), items) = tokio::join!(host.trigger("words::count", &payload), feed, collect);
    assert_eq!(result.unwrap(), json!({ "word_count": 9, "bytes": text.len() }));
    let (texts, bytes): (Vec<_>, Vec<_>) = items.into_iter().partition(|i| matches!(i, Item::Text(_)));
    let texts: Vec<serde_json::Value> = texts
        .into_iter()
        .map(|i| match i {
            Item::Text(t) => serde_json::from_str(&t).unwrap(),
            Item::Bytes(_) => unreachable!(),
        })
        .collect();
    let progress: Vec<_> =
        texts.iter().filter(|t| t["type"] == "progress").map(|t| t["bytes"].clone()).collect();
    assert_eq!(
        progress,
        vec![json!(10), json!(20), json!(30), json!(40), json!(43)],
        "one message per 10 bytes"
    );
    assert_eq!(texts.last().unwrap(), &json!({ "type": "complete", "word_count": 9 }));
    let binary: Vec<u8> = bytes
        .into_iter()
        .flat_map(|i| match i {
            Item::Bytes(b) => b.to_vec(),
            Item::Text(_) => unreachable!(),
        })
        .collect();
    let binary: serde_json::Value = serde_json::from_slice(&binary).unwrap();
    assert_eq!(binary, json!({ "word_count": 9, "bytes": text.len() }));
    assert_no_leaks(&host).await;
}
