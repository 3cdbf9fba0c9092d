/**
 * `js::files::process`: JavaScript's twin of the Rust `files::process`.
 *
 * Payload: `{"filename"?: string, "reader": <read ref>}` (the ref may sit deeper, at
 * any path ending in `reader`). Result: `{"bytes": N, "sha256": "<hex>", "messages": K}`,
 * K counting the text messages met on the way.
 */

import { extractChannelRefs, fn, openReader } from "rill-guest";

import { Sha256 } from "./sha256.js";

fn("js::files::process", (payload) => {
  const found = extractChannelRefs(payload).find(
    ({ path, ref }) => (path === "reader" || path.endsWith(".reader")) && ref.direction === "read",
  );
  if (found === undefined) throw new TypeError("missing reader channel ref");
  const digest = new Sha256();
  let bytes = 0;
  let messages = 0;
  const reader = openReader(found.ref);
  for (const item of reader.items()) {
    if (typeof item === "string") {
      messages += 1;
    } else {
      digest.update(item);
      bytes += item.length;
    }
  }
  reader.close();
  return { bytes, sha256: digest.hexDigest(), messages };
});
