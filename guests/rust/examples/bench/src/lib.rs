//! The guest `rill bench` measures with. It uses the raw channel bindings so that only
//! the host boundary is measured: one pre-filled buffer per write, one host `read` per
//! chunk, no per-chunk work beyond touching the first and last byte.
//!
//! | id | payload | result |
//! | --- | --- | --- |
//! | `bench::noop` | anything | `{}` |
//! | `bench::write` | `{"writer", "total", "chunk"}` | `{"written"}` |
//! | `bench::read` | `{"reader", "chunk"}` | `{"read", "checksum"}` |
//! | `bench::call_loop` | `{"count"}` | calls `bench::noop` `count` times, one after another: `{"calls"}` |

use rill_guest::ChannelRef;
use rill_guest::bindings::rill::host::channels as raw;
use serde::Deserialize;
use serde_json::{Value, json};

rill_guest::export! {
    "bench::noop" => noop,
    "bench::write" => write,
    "bench::read" => read,
    "bench::call_loop" => call_loop,
}

fn noop(_: Value) -> Result<Value, String> {
    Ok(json!({}))
}

#[derive(Deserialize)]
struct Write {
    writer: ChannelRef,
    total: u64,
    chunk: usize,
}

fn write(payload: Write) -> Result<Value, String> {
    let writer = raw::open_writer(&payload.writer.into()).map_err(|e| format!("{e:?}"))?;
    let chunk = payload.chunk.max(1);
    let buffer: Vec<u8> = (0..chunk).map(|i| i as u8).collect();
    let mut left = payload.total;
    while left > 0 {
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(chunk);
        writer.write(&buffer[..n]).map_err(|e| format!("{e:?}"))?;
        left -= n as u64;
    }
    writer.close().map_err(|e| format!("{e:?}"))?;
    Ok(json!({ "written": payload.total }))
}

#[derive(Deserialize)]
struct Read {
    reader: ChannelRef,
    chunk: u32,
}

fn read(payload: Read) -> Result<Value, String> {
    let reader = raw::open_reader(&payload.reader.into()).map_err(|e| format!("{e:?}"))?;
    let (mut total, mut checksum) = (0u64, 0u64);
    loop {
        match reader.read(payload.chunk.max(1)).map_err(|e| format!("{e:?}"))? {
            raw::Item::Bytes(bytes) => {
                total += bytes.len() as u64;
                if let (Some(first), Some(last)) = (bytes.first(), bytes.last()) {
                    checksum = checksum.wrapping_add(u64::from(*first) + u64::from(*last));
                }
            }
            raw::Item::Text(_) => {}
            raw::Item::End => break,
        }
    }
    Ok(json!({ "read": total, "checksum": checksum }))
}

#[derive(Deserialize)]
struct CallLoop {
    count: u32,
}

/// Function-to-function calls: each one a fresh instance of `bench::noop`.
fn call_loop(payload: CallLoop) -> Result<Value, String> {
    for _ in 0..payload.count {
        rill_guest::trigger("bench::noop", &json!({})).map_err(|e| e.to_string())?;
    }
    Ok(json!({ "calls": payload.count }))
}
