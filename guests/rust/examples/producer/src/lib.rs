//! `files::produce`: the whole flow of iii's channel guide inside one rill guest.
//!
//! Payload: `{"bytes": N, "chunk"?: size (default 65536), "buffer_bytes"?: n}`.
//!
//! Creates a channel, spawns `files::process` with `{"filename": "generated.bin",
//! "reader": <reader ref>}`, writes N bytes of a deterministic pattern (byte `i` is
//! `(i * 31 + 7) % 251`) in `chunk`-sized writes, closes, and waits for the consumer.
//! Because the consumer is spawned before writing, N may be far larger than the channel's
//! buffer. Result: `{"written": N, "sha256": "<hex of what was written>", "consumer":
//! <files::process result>}`.
//!
//! With `"output": <write ChannelRef>` in the payload it is the first stage of a
//! pipeline instead: it writes the same pattern into that channel, closes it and returns
//! `{"written": N, "sha256": "<hex>"}` without spawning anything (the four-language
//! pipeline of `tests/all/languages.rs` starts with it).

use std::io::Write;

use rill_guest::{BoxError, Channel, ChannelRef, ChannelWriter};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The pattern repeats every 251 bytes.
const PERIOD: usize = 251;

#[derive(Deserialize)]
struct Produce {
    bytes: u64,
    chunk: Option<usize>,
    buffer_bytes: Option<u32>,
    output: Option<ChannelRef>,
}

/// The pattern's bytes from stream offset `offset`, `len` of them, out of a buffer of
/// `chunk + PERIOD` pattern bytes.
fn pattern_at(pattern: &[u8], offset: u64, len: usize) -> &[u8] {
    let start = usize::try_from(offset % PERIOD as u64).unwrap_or(0);
    &pattern[start..start + len]
}

/// The pipeline stage: the pattern into `output`.
fn produce_into(output: &ChannelRef, bytes: u64, chunk: usize) -> Result<Value, BoxError> {
    let mut writer = ChannelWriter::open(output)?;
    let pattern: Vec<u8> = (0..chunk + PERIOD).map(|i| ((i * 31 + 7) % PERIOD) as u8).collect();
    let mut digest = Sha256::new();
    let mut written = 0u64;
    while written < bytes {
        let len = chunk.min(usize::try_from(bytes - written).unwrap_or(usize::MAX));
        let slice = pattern_at(&pattern, written, len);
        writer.write_all(slice)?;
        digest.update(slice);
        written += len as u64;
    }
    writer.close()?;
    Ok(json!({ "written": written, "sha256": format!("{:x}", digest.finalize()) }))
}

fn produce(input: Produce) -> Result<Value, BoxError> {
    let chunk = input.chunk.unwrap_or(65536);
    if chunk == 0 {
        return Err("chunk must be at least 1".into());
    }
    if let Some(output) = &input.output {
        return produce_into(output, input.bytes, chunk);
    }

    // 1. Create a channel; the reader end is for the consumer, so drop the local one.
    let channel = match input.buffer_bytes {
        Some(n) => Channel::with_buffer_bytes(n)?,
        None => Channel::create()?,
    };
    drop(channel.reader);

    // 2. Start the consumer first, so that writing more than the buffer holds cannot block
    //    forever.
    let consumer = rill_guest::spawn(
        "files::process",
        &json!({ "filename": "generated.bin", "reader": channel.reader_ref }),
    )?;

    // 3. Stream the pattern in chunk-sized writes, hashing what goes out.
    let mut writer = channel.writer;
    let pattern: Vec<u8> = (0..chunk + PERIOD).map(|i| ((i * 31 + 7) % PERIOD) as u8).collect();
    let mut digest = Sha256::new();
    let mut written = 0u64;
    while written < input.bytes {
        let len = chunk.min(usize::try_from(input.bytes - written).unwrap_or(usize::MAX));
        let slice = pattern_at(&pattern, written, len);
        if let Err(error) = writer.write_all(slice) {
            // Fail the stream first (so a consumer still reading is not left waiting), then
            // collect the consumer's own account of what happened.
            writer.abort(&format!("producer failed: {error}"));
            let consumer = match consumer.wait() {
                Ok(result) => result.to_string(),
                Err(call_error) => call_error.to_string(),
            };
            return Err(format!("writing failed after {written} bytes: {error}; consumer: {consumer}").into());
        }
        digest.update(slice);
        written += len as u64;
    }

    // 4. Close cleanly (the only clean end of a stream), then collect the consumer's result.
    writer.close()?;
    let consumer = consumer.wait()?;

    Ok(json!({
        "written": written,
        "sha256": format!("{:x}", digest.finalize()),
        "consumer": consumer,
    }))
}

rill_guest::export! { "files::produce" => produce }
