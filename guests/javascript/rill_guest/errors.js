/**
 * Errors as JavaScript `Error` subclasses, each keeping its WIT error kind in `kind`
 * (`"aborted"`, ...) and the WIT payload in `detail` (an abort's reason, a failed call's
 * message), or `undefined` for kinds without one. The kinds, in the WIT's order, are
 * `protocol/conformance/errors.json`. Pure JavaScript (no component imports), so the
 * SDK's tests run it on Node.
 *
 * ```js
 * try {
 *   for await (const chunk of reader) total += chunk.length;
 * } catch (err) {
 *   if (err instanceof ChannelAborted) console.log("the writer failed:", err.detail);
 *   else throw err;
 * }
 * ```
 *
 * @module rill-guest/errors
 */

/** A channel operation failed. Subclasses name the kind. */
export class ChannelError extends Error {
  /** @param {string} [detail] the WIT payload, for kinds that carry one */
  constructor(detail) {
    const kind = new.target.kind ?? "channel-error";
    super(detail ? `${kind}: ${detail}` : kind);
    this.name = new.target.name;
    /** The WIT case, e.g. `"aborted"`. */
    this.kind = kind;
    /** Its payload (a reason or a message), if the case has one. */
    this.detail = detail;
  }
}

/** No channel end has this id and key (or it expired, or the direction is wrong). */
export class ChannelNotFound extends ChannelError {
  static kind = "not-found";
}
/** This end was already attached by someone else. */
export class ChannelAlreadyAttached extends ChannelError {
  static kind = "already-attached";
}
/** The reader is gone: nothing written now can be delivered. */
export class ChannelClosed extends ChannelError {
  static kind = "closed";
}
/** The writer failed instead of closing; `detail` says why. */
export class ChannelAborted extends ChannelError {
  static kind = "aborted";
}
/** The other end was never attached within the attach deadline. */
export class ChannelTimedOut extends ChannelError {
  static kind = "timed-out";
}
/** A limit was reached; `detail` names it and its value. */
export class ChannelLimitExceeded extends ChannelError {
  static kind = "limit-exceeded";
}
/** This end already finished (closed or aborted). */
export class ChannelFinished extends ChannelError {
  static kind = "finished";
}
/** An argument was unacceptable; `detail` says why. */
export class ChannelInvalidArgument extends ChannelError {
  static kind = "invalid-argument";
}

/** A call to another function failed. Subclasses name the kind. */
export class CallError extends Error {
  /** @param {string} [detail] the WIT payload, for kinds that carry one */
  constructor(detail) {
    const kind = new.target.kind ?? "call-error";
    super(detail ? `${kind}: ${detail}` : kind);
    this.name = new.target.name;
    /** The WIT case, e.g. `"failed"`. */
    this.kind = kind;
    /** Its payload (the failure's message, ...), if the case has one. */
    this.detail = detail;
  }
}

/** No function is registered under the id. */
export class FunctionNotFound extends CallError {
  static kind = "not-found";
}
/** The payload, the id or another argument was unacceptable. */
export class CallInvalidInput extends CallError {
  static kind = "invalid-input";
}
/** The function ran and failed (its message), or trapped. */
export class CallFailed extends CallError {
  static kind = "failed";
}
/** The call did not finish before its deadline. */
export class CallTimedOut extends CallError {
  static kind = "timed-out";
}
/** A limit was reached (call depth, payload size, ...). */
export class CallLimitExceeded extends CallError {
  static kind = "limit-exceeded";
}
/** The function could not be started, or the host is at capacity (retrying may work). */
export class CallUnavailable extends CallError {
  static kind = "unavailable";
}

/** Each `channel-error` kind's class, in the WIT's order. */
export const CHANNEL_ERRORS = Object.freeze(
  Object.fromEntries(
    [
      ChannelNotFound,
      ChannelAlreadyAttached,
      ChannelClosed,
      ChannelAborted,
      ChannelTimedOut,
      ChannelLimitExceeded,
      ChannelFinished,
      ChannelInvalidArgument,
    ].map((cls) => [cls.kind, cls]),
  ),
);

/** Each `call-error` kind's class, in the WIT's order. */
export const CALL_ERRORS = Object.freeze(
  Object.fromEntries(
    [FunctionNotFound, CallInvalidInput, CallFailed, CallTimedOut, CallLimitExceeded, CallUnavailable].map((cls) => [
      cls.kind,
      cls,
    ]),
  ),
);

/**
 * The SDK error for a WIT error value as the bindings give it (`{tag, val}`), or the
 * thrown value itself when it is not one (a bug, never hidden).
 *
 * @param {unknown} thrown what a bindings call threw (its `payload` is the WIT value)
 * @param {Record<string, typeof Error>} table `CHANNEL_ERRORS` or `CALL_ERRORS`
 * @param {typeof Error} base the fallback class for an unknown tag
 * @returns {Error}
 */
export function fromWit(thrown, table, base) {
  const value = thrown !== null && typeof thrown === "object" && "payload" in thrown ? thrown.payload : undefined;
  if (value === null || typeof value !== "object" || typeof value.tag !== "string") {
    return thrown instanceof Error ? thrown : new base(String(thrown));
  }
  const cls = table[value.tag];
  const detail = typeof value.val === "string" ? value.val : undefined;
  return cls ? new cls(detail) : new base(`${value.tag}${detail ? `: ${detail}` : ""}`);
}
