/**
 * `js::transform::uppercase` and `js::transform::rot13`: streaming filters between two
 * channels, JavaScript's twins of the Rust `transform::uppercase`.
 *
 * Payload: `{"input": <read ref>, "output": <write ref>}`. Maps each byte chunk of
 * `input` into `output` (ASCII uppercase, or ROT13 on ASCII letters), passes text
 * messages through in order, and closes `output` at the end of `input`. If reading
 * `input` fails (its writer aborted), `output` is aborted with the same reason and the
 * call fails; if anything else throws, the SDK aborts `output` with the error. Result:
 * `{"bytes": N, "messages": K}`.
 */

import { ChannelError, fn, openReader, openWriter } from "rill-guest";

/** A byte → byte table applied in place. */
function table(map) {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = map(b);
  return t;
}

const UPPER = table((b) => (b >= 0x61 && b <= 0x7a ? b - 0x20 : b));
const ROT13 = table((b) => {
  if (b >= 0x41 && b <= 0x5a) return ((b - 0x41 + 13) % 26) + 0x41;
  if (b >= 0x61 && b <= 0x7a) return ((b - 0x61 + 13) % 26) + 0x61;
  return b;
});

function transform(payload, map) {
  const input = openReader(payload.input);
  const output = openWriter(payload.output);
  let bytes = 0;
  let messages = 0;
  let item;
  for (;;) {
    try {
      item = input.readItem();
    } catch (err) {
      // Pass the failure downstream as it came, instead of a clean end.
      output.abort(err instanceof ChannelError && err.detail !== undefined ? err.detail : err);
      throw err;
    }
    if (item === null) break;
    if (typeof item === "string") {
      output.sendText(item);
      messages += 1;
    } else {
      for (let i = 0; i < item.length; i++) item[i] = map[item[i]];
      output.write(item);
      bytes += item.length;
    }
  }
  output.close();
  input.close();
  return { bytes, messages };
}

fn("js::transform::uppercase", (payload) => transform(payload, UPPER));
fn("js::transform::rot13", (payload) => transform(payload, ROT13));
