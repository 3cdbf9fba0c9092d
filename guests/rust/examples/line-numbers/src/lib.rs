//! `line-numbers`: a plugin of the example application in `examples/src/bin/plugin_host.rs`.
//!
//! It is not a rill function (it does not export `handle`): it targets the application's
//! own world, `example:plugin/plugin` in `examples/wit/plugin.wit`, which imports rill's
//! `channels` interface next to the application's `app` interface and exports
//! `number-lines`. The application runs it in a store of its own, with rill's imports
//! added by `rill::add_to_linker`. It traps on a NUL byte (input that is not text), so the
//! example can show what a plugin dying mid-stream looks like to its readers.

#[allow(unsafe_code, reason = "the ABI glue wit-bindgen generates")]
#[allow(
    clippy::too_many_arguments,
    reason = "the export's two ref records flatten into ten core-wasm parameters"
)]
mod bindings {
    wit_bindgen::generate!({
        path: ["../../../../wit", "../../../../examples/wit"],
        world: "example:plugin/plugin",
        with: { "rill:host/channels@0.1.0": generate },
    });
    use super::LineNumbers;
    export!(LineNumbers with_types_in self);
}

use bindings::example::plugin::app;
use bindings::rill::host::channels::{self, ChannelError, ChannelRef, Item, Writer};

/// Lines between two progress lines in the application's log.
const LOG_EVERY: u64 = 1_000;

struct LineNumbers;

impl bindings::Guest for LineNumbers {
    fn number_lines(input: ChannelRef, output: ChannelRef) -> Result<u64, String> {
        let reader = channels::open_reader(&input).map_err(|e| describe("opening the input", &e))?;
        let writer = channels::open_writer(&output).map_err(|e| describe("opening the output", &e))?;
        let mut lines = 0;
        let mut at_line_start = true;
        loop {
            let bytes = match reader.read(64 * 1024) {
                Ok(Item::Bytes(bytes)) => bytes,
                Ok(Item::Text(_)) => continue, // messages are not part of the text
                Ok(Item::End) => break,
                Err(err) => return Err(fail(writer, &describe("reading the input", &err))),
            };
            let mut numbered = Vec::with_capacity(bytes.len() + bytes.len() / 8);
            for &byte in &bytes {
                // Text has no NUL bytes. Trapping (rather than returning an error) shows
                // how the application reports a plugin that dies mid-stream.
                assert!(byte != 0, "the input is not text: it has a NUL byte");
                if at_line_start {
                    lines += 1;
                    numbered.extend_from_slice(format!("{lines:>6}\t").as_bytes());
                    if lines % LOG_EVERY == 0 {
                        app::log(&format!("{lines} lines numbered"));
                    }
                }
                numbered.push(byte);
                at_line_start = byte == b'\n';
            }
            if let Err(err) = writer.write(&numbered) {
                return Err(fail(writer, &describe("writing the output", &err)));
            }
        }
        writer.close().map_err(|e| describe("closing the output", &e))?;
        app::log(&format!("done: {lines} lines"));
        Ok(lines)
    }
}

/// Abort `writer` with `reason`, so its reader sees why instead of a clean end.
fn fail(writer: Writer, reason: &str) -> String {
    writer.abort(reason);
    reason.to_owned()
}

fn describe(what: &str, err: &ChannelError) -> String {
    format!("{what}: {err:?}")
}
