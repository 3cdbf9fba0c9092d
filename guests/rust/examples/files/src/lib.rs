//! `files::process`: the consumer from iii's channel guide, in a rill guest.
//!
//! Payload: `{"filename"?: string, "reader": <read ChannelRef>}` (the ref may also sit deeper,
//! at any path ending in `reader`).
//! Result: `{"bytes": N, "sha256": "<lowercase hex of the bytes>", "messages": K}`, where K
//! counts the text messages met on the way (they are otherwise ignored).

use rill_guest::{BoxError, ChannelReader, Direction, Item, extract_channel_refs};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn process(input: Value) -> Result<Value, BoxError> {
    // Find the reader ref in the payload, as iii's Rust SDK does: the read ref at key
    // `reader`, at the top level or nested (`job.reader`).
    let reader_ref = extract_channel_refs(&input)
        .into_iter()
        .find(|(path, r)| (path == "reader" || path.ends_with(".reader")) && r.direction == Direction::Read)
        .map(|(_, r)| r)
        .ok_or("missing reader channel ref")?;

    // Attach the reading end and consume the stream item by item.
    let mut reader = ChannelReader::open(&reader_ref)?;
    let mut bytes = 0u64;
    let mut messages = 0u64;
    let mut digest = Sha256::new();
    for item in reader.items() {
        match item? {
            Item::Bytes(chunk) => {
                bytes += chunk.len() as u64;
                digest.update(&chunk);
            }
            Item::Text(_) => messages += 1,
        }
    }

    Ok(json!({
        "bytes": bytes,
        "sha256": format!("{:x}", digest.finalize()),
        "messages": messages,
    }))
}

rill_guest::export! { "files::process" => process }
