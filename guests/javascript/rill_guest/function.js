/**
 * Serving calls: handlers register under their ids with {@link fn}, and the component's
 * export, {@link handle}, hands each call to its handler.
 *
 * A handler takes the payload (parsed JSON) and returns the result (anything
 * `JSON.stringify` takes; `undefined` is `null`), or a promise of it: the export awaits
 * it. Throwing (or rejecting) fails the call with the error's `name: message`.
 *
 * **Writers and failure.** The SDK tracks every writer the call makes (`openWriter`,
 * `createChannel`). When the handler throws, each one still open is aborted with the
 * failure's message *before* the call returns its error, so its reader sees
 * `aborted(reason)` after the bytes written before, never a clean end. When the handler
 * returns, writers it left open are released: the host aborts a used one ("writer dropped
 * without close") and leaves an unused local end of `createChannel` to whoever opens its
 * ref. Readers it left open are closed.
 *
 * The export never lets an exception escape to the bindings: componentize-js turns a
 * thrown `Error` into a trap, which would lose the message.
 *
 * @module rill-guest/function
 */

import { describe, trackWriters } from "./channels.js";

/** @type {Map<string, (payload: unknown) => unknown>} */
const handlers = new Map();

/**
 * Serve calls of `functionId` with `handler`.
 *
 * @param {string} functionId the id callers use (e.g. `"js::files::process"`)
 * @param {(payload: unknown) => unknown} handler takes the payload, returns the result
 *   (or a promise of it); a throw fails the call
 * @returns {(payload: unknown) => unknown} `handler`, so a module can export it too
 * @throws {TypeError} when `functionId` is already registered or `handler` is not a function
 */
export function fn(functionId, handler) {
  if (typeof functionId !== "string" || functionId === "") throw new TypeError("a function id is a non-empty string");
  if (typeof handler !== "function") throw new TypeError(`the handler of ${functionId} is not a function`);
  if (handlers.has(functionId)) throw new TypeError(`${functionId} is registered twice`);
  handlers.set(functionId, handler);
  return handler;
}

/**
 * The ids served, sorted.
 *
 * @returns {string[]}
 */
export function functionIds() {
  return [...handlers.keys()].sort();
}

/**
 * The world's export, `handle(function-id, payload-json) -> result<string, string>`:
 * the ok value is returned, the error as `{tag: "err", val}` (see the module docs).
 *
 * @param {string} functionId
 * @param {string} payloadJson
 * @returns {Promise<string | {tag: "err", val: string}>}
 */
export async function handle(functionId, payloadJson) {
  const handler = handlers.get(functionId);
  if (handler === undefined) {
    const served = functionIds().join(", ") || "nothing";
    return { tag: "err", val: `this component does not serve ${JSON.stringify(functionId)} (it serves ${served})` };
  }
  let payload;
  try {
    payload = JSON.parse(payloadJson);
  } catch (err) {
    return { tag: "err", val: `the payload is not JSON: ${describe(err)}` };
  }
  const writers = trackWriters();
  let result;
  try {
    result = await handler(payload);
  } catch (err) {
    const reason = describe(err);
    for (const writer of [...writers]) writer.abort(reason);
    return { tag: "err", val: reason };
  }
  for (const writer of [...writers]) writer.release();
  let json;
  try {
    json = JSON.stringify(result === undefined ? null : result);
  } catch (err) {
    return { tag: "err", val: `the result is not JSON: ${describe(err)}` };
  }
  if (json === undefined) return { tag: "err", val: "the result is not JSON" };
  return json;
}
