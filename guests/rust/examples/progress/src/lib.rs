//! `words::count`: iii's bidirectional streaming test as a rill guest.
//!
//! Payload: `{"input": <read ChannelRef>, "output": <write ChannelRef>}`.
//!
//! Reads `input` in chunks of at most 10 bytes. After each chunk it sends the text message
//! `{"type":"progress","bytes":<bytes so far>}` on `output`; at the end it sends
//! `{"type":"complete","word_count":W}` as text, then `{"word_count":W,"bytes":N}` as
//! bytes, then closes `output`. Result: `{"word_count": W, "bytes": N}`. Words are runs of
//! non-whitespace separated by ASCII whitespace, counted as the bytes stream past (so a
//! word split across two chunks counts once). Text messages on `input` are ignored.

use rill_guest::{BoxError, ChannelReader, ChannelRef, ChannelWriter, Item};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The largest chunk read from `input` at a time.
const CHUNK: u32 = 10;

#[derive(Deserialize)]
struct Count {
    input: ChannelRef,
    output: ChannelRef,
}

#[derive(Serialize)]
struct WordCount {
    word_count: u64,
    bytes: u64,
}

fn count(payload: Count) -> Result<WordCount, BoxError> {
    let mut input = ChannelReader::open(&payload.input)?;
    let mut output = ChannelWriter::open(&payload.output)?;

    let mut result = WordCount { word_count: 0, bytes: 0 };
    let mut in_word = false;
    while let Some(item) = input.read_item(CHUNK)? {
        let Item::Bytes(chunk) = item else { continue };
        for &byte in &chunk {
            let space = byte.is_ascii_whitespace();
            if !space && !in_word {
                result.word_count += 1;
            }
            in_word = !space;
        }
        result.bytes += chunk.len() as u64;
        let progress = json!({ "type": "progress", "bytes": result.bytes });
        output.send_text(&progress.to_string())?;
    }

    let complete = json!({ "type": "complete", "word_count": result.word_count });
    output.send_text(&complete.to_string())?;
    output.send_bytes(&serde_json::to_vec(&result)?)?;
    output.close()?;
    Ok(result)
}

rill_guest::export! { "words::count" => count }
