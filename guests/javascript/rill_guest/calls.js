/**
 * Calling other functions: `trigger` (wait for the result), `spawn` (start now, `wait()`
 * later) and `triggerVoid` (nobody waits), as iii's SDKs offer them. Payloads and
 * results are JSON values; channel refs go inside them as plain objects.
 *
 * @module rill-guest/calls
 */

import * as wit from "rill:host/functions@0.1.0";

import { CALL_ERRORS, CallError, fromWit } from "./errors.js";

function callError(thrown) {
  return fromWit(thrown, CALL_ERRORS, CallError);
}

/**
 * The WIT call options for `{timeoutMs}`.
 *
 * @param {{timeoutMs?: number}} [options]
 */
function witOptions(options) {
  const timeoutMs = options?.timeoutMs;
  if (timeoutMs === undefined || timeoutMs === null) return { timeoutMs: undefined };
  if (!(Number.isSafeInteger(timeoutMs) && timeoutMs >= 0)) {
    throw new TypeError(`timeoutMs must be a non-negative integer of milliseconds, got ${timeoutMs}`);
  }
  return { timeoutMs: BigInt(timeoutMs) };
}

function toJson(payload) {
  const json = JSON.stringify(payload === undefined ? null : payload);
  if (json === undefined) throw new TypeError("the payload is not JSON");
  return json;
}

/**
 * Call `functionId` with `payload` and wait for its result.
 *
 * @param {string} functionId
 * @param {unknown} [payload] any JSON value (`null` if omitted)
 * @param {{timeoutMs?: number}} [options] `timeoutMs`: the call's wall-clock budget in
 *   milliseconds (the host's default if omitted; never past the caller's own deadline)
 * @returns {unknown} the result, parsed
 * @throws {CallError} `FunctionNotFound`, `CallFailed` (its message in `detail`),
 *   `CallTimedOut`, `CallLimitExceeded`, `CallInvalidInput`, `CallUnavailable`
 */
export function trigger(functionId, payload, options) {
  const json = toJson(payload);
  const witOpts = witOptions(options);
  let result;
  try {
    result = wit.trigger(functionId, json, witOpts);
  } catch (thrown) {
    throw callError(thrown);
  }
  return JSON.parse(result);
}

/** A call started by {@link spawn}. */
export class PendingCall {
  #handle;

  /** @param {wit.PendingCall} handle the bindings' resource (made by the SDK) */
  constructor(handle) {
    this.#handle = handle;
  }

  /**
   * Wait for the call's result (once; a second `wait` fails with `CallInvalidInput`).
   *
   * @returns {unknown} the result, parsed
   * @throws {CallError} as {@link trigger}
   */
  wait() {
    let result;
    try {
      result = this.#handle.wait();
    } catch (thrown) {
      throw callError(thrown);
    }
    return JSON.parse(result);
  }
}

/**
 * Start a call and return at once: start a consumer, write more than a channel buffers,
 * then `wait()` for its result. A pending call never waited for runs to its end (or its
 * deadline) unobserved.
 *
 * @param {string} functionId
 * @param {unknown} [payload]
 * @param {{timeoutMs?: number}} [options]
 * @returns {PendingCall}
 * @throws {CallError} for errors found before the call starts (an unknown id, ...)
 */
export function spawn(functionId, payload, options) {
  const json = toJson(payload);
  const witOpts = witOptions(options);
  try {
    return new PendingCall(wit.spawn(functionId, json, witOpts));
  } catch (thrown) {
    throw callError(thrown);
  }
}

/**
 * Start a call nobody waits for (iii's `void`). Errors found before it starts (an
 * unknown id, a malformed payload) are still thrown.
 *
 * @param {string} functionId
 * @param {unknown} [payload]
 * @param {{timeoutMs?: number}} [options]
 * @throws {CallError}
 */
export function triggerVoid(functionId, payload, options) {
  const json = toJson(payload);
  const witOpts = witOptions(options);
  try {
    wit.triggerVoid(functionId, json, witOpts);
  } catch (thrown) {
    throw callError(thrown);
  }
}
