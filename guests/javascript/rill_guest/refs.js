/**
 * Channel refs in iii's JSON shape, as plain objects:
 * `{channel_id: string, access_key: string, direction: "read" | "write"}`, exactly those
 * three keys. The rule, and the cases every rill SDK is tested against, are
 * `protocol/conformance/refs.json`. Pure JavaScript (no component imports), so the
 * SDK's tests run it on Node.
 *
 * @module rill-guest/refs
 */

/** The keys of a ref, and nothing else. */
export const REF_KEYS = Object.freeze(["channel_id", "access_key", "direction"]);

/** The directions a ref may name. */
export const DIRECTIONS = Object.freeze(["read", "write"]);

function isPlainObject(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Whether `value` is a channel ref: a plain object with exactly the keys `channel_id`
 * (string), `access_key` (string) and `direction` (`"read"` or `"write"`, lowercase).
 *
 * @param {unknown} value
 * @returns {boolean}
 */
export function isChannelRef(value) {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  return (
    keys.length === REF_KEYS.length &&
    REF_KEYS.every((key) => Object.prototype.hasOwnProperty.call(value, key)) &&
    typeof value.channel_id === "string" &&
    typeof value.access_key === "string" &&
    DIRECTIONS.includes(value.direction)
  );
}

/**
 * `value` as a ref (a new object with the three keys), or a `TypeError` saying why it
 * is not one.
 *
 * @param {unknown} value
 * @returns {{channel_id: string, access_key: string, direction: "read" | "write"}}
 * @throws {TypeError} when `value` is not exactly a ref.
 */
export function parseChannelRef(value) {
  if (!isChannelRef(value)) {
    throw new TypeError(
      "not a channel ref: expected exactly channel_id (string), access_key (string) " +
        `and direction ("read" or "write"), got ${shape(value)}`,
    );
  }
  return { channel_id: value.channel_id, access_key: value.access_key, direction: value.direction };
}

/**
 * Every ref inside a JSON value, with its dotted path (`"job.reader"`; array items as
 * `"items[0]"`), in document order, as iii's SDKs find them. A ref's own keys are not
 * searched further.
 *
 * @param {unknown} value a parsed JSON value (a payload)
 * @param {string} [path] the path of `value` itself
 * @returns {Array<{path: string, ref: {channel_id: string, access_key: string, direction: string}}>}
 */
export function extractChannelRefs(value, path = "") {
  const found = [];
  const walk = (item, at) => {
    if (isChannelRef(item)) {
      found.push({ path: at, ref: parseChannelRef(item) });
    } else if (Array.isArray(item)) {
      item.forEach((element, index) => walk(element, `${at}[${index}]`));
    } else if (isPlainObject(item)) {
      for (const [key, element] of Object.entries(item)) walk(element, at ? `${at}.${key}` : key);
    }
  };
  walk(value, path);
  return found;
}

function shape(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return keys.length ? `an object with keys ${keys.join(", ")}` : "an empty object";
  }
  return `a ${typeof value}`;
}
