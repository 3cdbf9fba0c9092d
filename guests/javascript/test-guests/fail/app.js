/**
 * Failing JavaScript, for the contract when a handler throws (tests/all/javascript.rs):
 * the writers it opened must reach their readers as aborted with the error, never as
 * a clean end.
 *
 * - `js::test::write_then_throw`: writes `bytes` bytes to the writer ref at `writer`,
 *   then throws `Error("told to fail midway")` with the writer still open.
 * - `js::test::transform_then_throw`: copies `input` to `output` until it has copied at
 *   least `after` bytes (default 65536), then throws `Error("js stage failed on
 *   purpose")` with `output` still open.
 */

import { fn, openReader, openWriter } from "rill-guest";

fn("js::test::write_then_throw", (payload) => {
  const writer = openWriter(payload.writer);
  writer.write(new Uint8Array(payload.bytes).fill(0x78));
  throw new Error("told to fail midway");
});

fn("js::test::transform_then_throw", (payload) => {
  const after = payload.after ?? 65536;
  const input = openReader(payload.input);
  const output = openWriter(payload.output);
  let copied = 0;
  for (const item of input.items()) {
    if (typeof item === "string") {
      output.sendText(item);
    } else {
      output.write(item);
      copied += item.length;
    }
    if (copied >= after) break;
  }
  throw new Error("js stage failed on purpose");
});
