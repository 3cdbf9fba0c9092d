//! `transform::uppercase`: a streaming filter between two channels.
//!
//! Payload: `{"input": <read ChannelRef>, "output": <write ChannelRef>}`.
//!
//! ASCII-uppercases each byte chunk of `input` and writes it to `output`, passes text
//! messages through unchanged and in order, and closes `output` at the end of `input`.
//! Result: `{"bytes": N, "messages": K}`. If reading `input` fails (for example because its
//! writer aborted), `output` is aborted with the same reason and the call fails.

use rill_guest::{BoxError, ChannelError, ChannelReader, ChannelRef, ChannelWriter, Item};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Uppercase {
    input: ChannelRef,
    output: ChannelRef,
}

#[derive(Serialize)]
struct Summary {
    bytes: u64,
    messages: u64,
}

fn uppercase(payload: Uppercase) -> Result<Summary, BoxError> {
    let mut input = ChannelReader::open(&payload.input)?;
    let mut output = ChannelWriter::open(&payload.output)?;
    let mut summary = Summary { bytes: 0, messages: 0 };
    loop {
        let item = match input.next_item() {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(error) => {
                // Pass the failure downstream instead of a clean end.
                let reason = match &error {
                    ChannelError::Aborted(reason) => reason.clone(),
                    other => other.to_string(),
                };
                output.abort(&reason);
                return Err(error.into());
            }
        };
        match item {
            Item::Bytes(mut chunk) => {
                chunk.make_ascii_uppercase();
                output.send_bytes(&chunk)?;
                summary.bytes += chunk.len() as u64;
            }
            Item::Text(message) => {
                output.send_text(&message)?;
                summary.messages += 1;
            }
        }
    }
    output.close()?;
    Ok(summary)
}

rill_guest::export! { "transform::uppercase" => uppercase }
