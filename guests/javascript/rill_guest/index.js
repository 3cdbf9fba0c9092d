/**
 * rill's guest SDK for JavaScript (componentize-js): `import ... from "rill-guest"`.
 *
 * A function is a handler registered under an id with `fn`; channels are a `Writer`
 * and a `Reader` (an async iterable of `Uint8Array` chunks); refs are plain objects in
 * iii's JSON shape; calls are `trigger`, `spawn` and `triggerVoid`. The shortest
 * complete app (rill-build bundles it with this SDK and exports `handle`):
 *
 * ```js
 * import { fn, openReader } from "rill-guest";
 *
 * fn("js::bytes::count", async ({ reader }) => {
 *   let bytes = 0;
 *   for await (const chunk of openReader(reader)) bytes += chunk.length;
 *   return { bytes };
 * });
 * ```
 *
 * @module rill-guest
 */

export { PendingCall, spawn, trigger, triggerVoid } from "./calls.js";
export {
  MAX_READ_BYTES,
  MAX_WRITE_BYTES,
  Reader,
  Writer,
  createChannel,
  openReader,
  openWriter,
} from "./channels.js";
export {
  CALL_ERRORS,
  CHANNEL_ERRORS,
  CallError,
  CallFailed,
  CallInvalidInput,
  CallLimitExceeded,
  CallTimedOut,
  CallUnavailable,
  ChannelAborted,
  ChannelAlreadyAttached,
  ChannelClosed,
  ChannelError,
  ChannelFinished,
  ChannelInvalidArgument,
  ChannelLimitExceeded,
  ChannelNotFound,
  ChannelTimedOut,
  FunctionNotFound,
} from "./errors.js";
export { fn, functionIds, handle } from "./function.js";
export { extractChannelRefs, isChannelRef, parseChannelRef } from "./refs.js";
