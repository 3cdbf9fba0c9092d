/**
 * The JavaScript twins of `guests/rust/examples/bench`, for `rill bench`'s JavaScript
 * rows.
 *
 * | id | payload | result |
 * | --- | --- | --- |
 * | `js::bench::noop` | anything | `{}` |
 * | `js::bench::write` | `{"writer", "total" (or "bytes"), "chunk"}` | `{"written"}` |
 * | `js::bench::read` | `{"reader", "chunk"?}` | `{"read", "bytes"}` (the same count) |
 *
 * The writer sends one pre-filled buffer per write and the reader asks for `chunk`
 * bytes (64 KiB if omitted) per read, touching nothing else, so what is measured is
 * JavaScript's way across the host boundary. The payloads are the Rust and Python
 * bench guests' (`total`), with `bytes` accepted for `total`.
 */

import { fn, openReader, openWriter } from "rill-guest";

fn("js::bench::noop", () => ({}));

fn("js::bench::write", (payload) => {
  const total = payload.total ?? payload.bytes;
  if (!Number.isSafeInteger(total) || total < 0) throw new TypeError("total (or bytes) is a byte count");
  const chunk = Math.max(payload.chunk ?? 64 << 10, 1);
  const buffer = new Uint8Array(chunk).map((_, i) => i & 0xff);
  const writer = openWriter(payload.writer);
  let left = total;
  while (left >= chunk) {
    writer.write(buffer);
    left -= chunk;
  }
  if (left > 0) writer.write(buffer.subarray(0, left));
  writer.close();
  return { written: total };
});

fn("js::bench::read", (payload) => {
  const chunk = Math.max(payload.chunk ?? 64 << 10, 1);
  const reader = openReader(payload.reader);
  let size = 0;
  for (let data; (data = reader.read(chunk)) !== null; ) size += data.length;
  reader.close();
  return { read: size, bytes: size };
});
