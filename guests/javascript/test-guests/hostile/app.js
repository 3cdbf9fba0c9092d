/**
 * Hostile JavaScript: each attack must hurt only its own call (tests/all/javascript.rs).
 *
 * - `js::hostile::loop`: spins forever; its deadline stops it.
 * - `js::hostile::memory_bomb`: allocates 1 MiB at a time, keeping (and touching) it
 *   all; the memory limit stops it.
 * - `js::hostile::huge_write`: hands `bytes` bytes to the host in one write to the
 *   writer ref at `writer`, through the raw WIT binding (the SDK would split it); past
 *   the per-call copy limit the call fails and the stream is aborted.
 */

import { fn } from "rill-guest";
import { openWriter } from "rill:host/channels@0.1.0";

fn("js::hostile::loop", () => {
  for (;;) {
    // spin
  }
});

fn("js::hostile::memory_bomb", () => {
  const hoard = [];
  for (;;) hoard.push(new Uint8Array(1 << 20).fill(1));
});

fn("js::hostile::huge_write", ({ writer: ref, bytes }) => {
  const writer = openWriter({ channelId: ref.channel_id, accessKey: ref.access_key, direction: ref.direction });
  writer.write(new Uint8Array(bytes));
  writer.close();
  return { written: bytes };
});
