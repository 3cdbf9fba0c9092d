/**
 * Channels over rill's WIT `channels` interface, in JavaScript's idioms.
 *
 * A {@link Writer} takes bytes (`write(Uint8Array)`) and text messages (`sendText`);
 * its end is explicit: `close()` is the clean end, `abort(reason)` a failure its reader
 * sees as `ChannelAborted`. A writer the function leaves open is never taken for a whole
 * stream: if the function throws, the SDK aborts it with the error's message (see
 * `function.js`), and if it returns, the SDK drops it and the host aborts it ("writer
 * dropped without close").
 *
 * A {@link Reader} gives the stream back: `for await (const chunk of reader)` (or plain
 * `for ... of`) over `Uint8Array` chunks, `items()` for chunks and text messages in order,
 * `read(maxBytes)` one chunk at a time, `readAll()` to the end. Text messages that chunk
 * iteration and `read` pass over are kept, in order, in `reader.messages`.
 *
 * Copies: a `write` copies the bytes once into linear memory for the host (which copies
 * them once more, into its buffer); a read gets a fresh `Uint8Array` the host's bytes
 * were copied into. The SDK adds no copy of its own: it hands the caller's view straight
 * to the bindings (splitting writes larger than {@link MAX_WRITE_BYTES} into views of it).
 *
 * @module rill-guest/channels
 */

import * as wit from "rill:host/channels@0.1.0";

import { CHANNEL_ERRORS, ChannelError, ChannelFinished, fromWit } from "./errors.js";
import { parseChannelRef } from "./refs.js";

/** The most bytes one read asks the host for by default (64 KiB, rill's largest chunk). */
export const MAX_READ_BYTES = 64 << 10;

/**
 * The most bytes the SDK passes to the host in one `write` (1 MiB): larger writes are
 * split, as the WIT asks of SDKs (the host traps a guest that passes more than its
 * per-call limit, 4 MiB by default, in one call).
 */
export const MAX_WRITE_BYTES = 1 << 20;

const dispose = Symbol.dispose || Symbol.for("dispose");

/** @type {Set<Writer> | null} the writers of the call being served, if any */
let tracked = null;

/**
 * Start tracking the writers made from now on (by the call `function.js` serves), and
 * return the set they go into. Finished writers leave it.
 *
 * @returns {Set<Writer>}
 */
export function trackWriters() {
  tracked = new Set();
  return tracked;
}

function channelError(thrown) {
  return fromWit(thrown, CHANNEL_ERRORS, ChannelError);
}

function toWit(ref) {
  const parsed = parseChannelRef(ref);
  return { channelId: parsed.channel_id, accessKey: parsed.access_key, direction: parsed.direction };
}

function fromWitRef(ref) {
  return { channel_id: ref.channelId, access_key: ref.accessKey, direction: ref.direction };
}

function bytesOf(data) {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError(
    `write takes a Uint8Array (or another ArrayBuffer view, or an ArrayBuffer), got ${data === null ? "null" : typeof data}; ` +
      "send text messages with sendText",
  );
}

/**
 * The writing end of a channel. `write` returns once the host's buffer took the bytes
 * (it waits while the buffer is full: backpressure).
 */
export class Writer {
  #handle;

  /** @param {wit.Writer} handle the bindings' resource (made by the SDK, not by apps) */
  constructor(handle) {
    this.#handle = handle;
    tracked?.add(this);
  }

  /** Whether the writer is finished (closed, aborted or released). */
  get finished() {
    return this.#handle === undefined;
  }

  /**
   * Append bytes to the stream.
   *
   * @param {Uint8Array | ArrayBufferView | ArrayBuffer} data
   * @returns {number} the number of bytes written (all of them)
   * @throws {ChannelError} `ChannelClosed` when the reader is gone, `ChannelFinished`
   *   after `close`/`abort`, `ChannelLimitExceeded` when the buffer budget is spent, ...
   */
  write(data) {
    const bytes = bytesOf(data);
    const handle = this.#open();
    try {
      if (bytes.byteLength <= MAX_WRITE_BYTES) {
        handle.write(bytes);
      } else {
        for (let at = 0; at < bytes.byteLength; at += MAX_WRITE_BYTES) {
          handle.write(bytes.subarray(at, at + MAX_WRITE_BYTES));
        }
      }
    } catch (thrown) {
      throw channelError(thrown);
    }
    return bytes.byteLength;
  }

  /**
   * Append a text message, delivered whole and in order with the bytes.
   *
   * @param {string} text
   * @throws {ChannelError} as `write`
   */
  sendText(text) {
    if (typeof text !== "string") throw new TypeError(`sendText takes a string, got ${typeof text}`);
    const handle = this.#open();
    try {
      handle.sendText(text);
    } catch (thrown) {
      throw channelError(thrown);
    }
  }

  /**
   * The clean end: the reader sees the end of the stream after the last byte. Closing a
   * finished writer does nothing.
   *
   * @throws {ChannelError} `ChannelClosed` when the reader is gone, ...
   */
  close() {
    const handle = this.#release();
    if (handle === undefined) return;
    try {
      handle.close();
    } catch (thrown) {
      throw channelError(thrown);
    } finally {
      handle[dispose]();
    }
  }

  /**
   * End the stream as failed: the reader gets `ChannelAborted` with `reason` after what
   * is buffered. Aborting a finished writer does nothing.
   *
   * @param {unknown} reason a string, or an `Error` (its `name: message`)
   */
  abort(reason) {
    const handle = this.#release();
    if (handle === undefined) return;
    try {
      handle.abort(describe(reason));
    } finally {
      handle[dispose]();
    }
  }

  /**
   * Let go of the writer without finishing it: a used writer is then aborted by the
   * host ("writer dropped without close"); an unused local end from `createChannel`
   * stays free for whoever opens its ref.
   */
  release() {
    this.#release()?.[dispose]();
  }

  /** `using writer = openWriter(ref)` releases it at the end of the block. */
  [dispose]() {
    this.release();
  }

  #open() {
    if (this.#handle === undefined) throw new ChannelFinished("this writer is already closed or aborted");
    return this.#handle;
  }

  #release() {
    const handle = this.#handle;
    this.#handle = undefined;
    tracked?.delete(this);
    return handle;
  }
}

/**
 * The reading end of a channel: an async (and a plain) iterable of `Uint8Array` chunks.
 * Text messages met by chunk iteration and `read` are kept, in order, in
 * {@link Reader#messages}; {@link Reader#items} yields them in place instead.
 */
export class Reader {
  #handle;
  #ended = false;

  /** @param {wit.Reader} handle the bindings' resource (made by the SDK, not by apps) */
  constructor(handle) {
    this.#handle = handle;
    /** @type {string[]} text messages that `read` and chunk iteration passed over */
    this.messages = [];
  }

  /**
   * The next item: a `Uint8Array` of at most `maxBytes` bytes, a text message (a
   * string), or `null` at the clean end (and ever after).
   *
   * @param {number} [maxBytes] at most this many bytes (1 to 4 GiB; default 64 KiB)
   * @returns {Uint8Array | string | null}
   * @throws {ChannelError} `ChannelAborted` (with the writer's reason) when the writer
   *   failed, `ChannelTimedOut` when it never attached, ...
   */
  readItem(maxBytes = MAX_READ_BYTES) {
    if (this.#ended) return null;
    if (this.#handle === undefined) throw new ChannelFinished("this reader is closed");
    let item;
    try {
      item = this.#handle.read(maxBytes);
    } catch (thrown) {
      throw channelError(thrown);
    }
    if (item.tag === "bytes" || item.tag === "text") return item.val;
    this.#ended = true;
    return null;
  }

  /**
   * The next chunk of bytes (at most `maxBytes`), or `null` at the end; text messages
   * on the way go to {@link Reader#messages}.
   *
   * @param {number} [maxBytes]
   * @returns {Uint8Array | null}
   * @throws {ChannelError} as `readItem`
   */
  read(maxBytes = MAX_READ_BYTES) {
    for (;;) {
      const item = this.readItem(maxBytes);
      if (typeof item !== "string") return item;
      this.messages.push(item);
    }
  }

  /**
   * Everything left, as one `Uint8Array` (text messages go to `messages`). Mind the
   * function's memory limit: stream large data instead.
   *
   * @returns {Uint8Array}
   */
  readAll() {
    const chunks = [];
    let size = 0;
    for (let chunk; (chunk = this.read()) !== null; ) {
      chunks.push(chunk);
      size += chunk.byteLength;
    }
    if (chunks.length === 1) return chunks[0];
    const all = new Uint8Array(size);
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.byteLength;
    }
    return all;
  }

  /**
   * Byte chunks and text messages (strings), in order, until the clean end: iterate
   * with `for await` or plain `for ... of`.
   *
   * @param {number} [maxBytes] the most bytes per chunk
   * @returns {Iterable<Uint8Array | string> & AsyncIterable<Uint8Array | string>}
   */
  items(maxBytes = MAX_READ_BYTES) {
    return iterate(() => this.readItem(maxBytes));
  }

  /**
   * Byte chunks (64 KiB at most) until the clean end. Plain `for ... of` is the
   * fastest: each `await` of `for await` costs a turn of the job queue.
   *
   * @returns {Iterator<Uint8Array>}
   */
  [Symbol.iterator]() {
    return iterate(() => this.read())[Symbol.iterator]();
  }

  /** @returns {AsyncIterator<Uint8Array>} byte chunks, for `for await` */
  [Symbol.asyncIterator]() {
    return iterate(() => this.read())[Symbol.asyncIterator]();
  }

  /** Stop reading: the writer's next operation fails with `closed`. */
  close() {
    const handle = this.#handle;
    this.#handle = undefined;
    handle?.[dispose]();
  }

  /** `using reader = openReader(ref)` closes it at the end of the block. */
  [dispose]() {
    this.close();
  }
}

/** An iterable and async iterable over `next()` until it returns `null`. */
function iterate(next) {
  return {
    [Symbol.iterator]() {
      return {
        next() {
          const value = next();
          return value === null ? { done: true, value: undefined } : { done: false, value };
        },
        [Symbol.iterator]() {
          return this;
        },
      };
    },
    [Symbol.asyncIterator]() {
      return {
        next() {
          try {
            const value = next();
            return Promise.resolve(value === null ? { done: true, value: undefined } : { done: false, value });
          } catch (err) {
            return Promise.reject(err);
          }
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
    },
  };
}

/**
 * A new channel: both local ends (attached on first use) and both refs, as iii's
 * `createChannel` gives them. Put a ref in a payload to hand an end to another function.
 *
 * @param {number} [bufferBytes] bytes the channel buffers (the host's default, 1 MiB,
 *   if omitted; 64 KiB to 64 MiB)
 * @returns {{writer: Writer, reader: Reader, writerRef: object, readerRef: object}}
 * @throws {ChannelError} `ChannelInvalidArgument` for a size out of range,
 *   `ChannelLimitExceeded` past the channel limit
 */
export function createChannel(bufferBytes) {
  if (bufferBytes !== undefined && bufferBytes !== null && !(Number.isInteger(bufferBytes) && bufferBytes >= 0)) {
    throw new TypeError(`bufferBytes must be a non-negative integer, got ${bufferBytes}`);
  }
  let made;
  try {
    made = wit.create({ bufferBytes: bufferBytes ?? undefined });
  } catch (thrown) {
    throw channelError(thrown);
  }
  return {
    writer: new Writer(made.writer),
    reader: new Reader(made.reader),
    writerRef: fromWitRef(made.writerRef),
    readerRef: fromWitRef(made.readerRef),
  };
}

/**
 * Attach the reading end a read ref (a plain object from a payload) names.
 *
 * @param {unknown} ref
 * @returns {Reader}
 * @throws {TypeError} when `ref` is not a ref; {@link ChannelError} (`ChannelNotFound`,
 *   `ChannelAlreadyAttached`, ...) when the host refuses it
 */
export function openReader(ref) {
  const witRef = toWit(ref);
  try {
    return new Reader(wit.openReader(witRef));
  } catch (thrown) {
    throw channelError(thrown);
  }
}

/**
 * Attach the writing end a write ref (a plain object from a payload) names.
 *
 * @param {unknown} ref
 * @returns {Writer}
 * @throws {TypeError} when `ref` is not a ref; {@link ChannelError} when the host refuses it
 */
export function openWriter(ref) {
  const witRef = toWit(ref);
  try {
    return new Writer(wit.openWriter(witRef));
  } catch (thrown) {
    throw channelError(thrown);
  }
}

/**
 * A failure's description: an `Error` as `name: message`, anything else as a string.
 *
 * @param {unknown} reason
 * @returns {string}
 */
export function describe(reason) {
  if (reason instanceof Error) return `${reason.name}: ${reason.message}`;
  return String(reason);
}
