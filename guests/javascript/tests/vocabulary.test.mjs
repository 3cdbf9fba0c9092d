// The JavaScript SDK against rill's shared vocabulary (protocol/conformance/*.json):
// every valid ref parses to its fields, every invalid one is refused, and every WIT
// error kind has its class. Runs on the host's Node (`node --test guests/javascript/tests/`);
// the modules tested (refs.js, errors.js) need no component bindings.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as errors from "../rill_guest/errors.js";
import { extractChannelRefs, isChannelRef, parseChannelRef } from "../rill_guest/refs.js";

const conformance = (name) =>
  JSON.parse(readFileSync(new URL(`../../../protocol/conformance/${name}`, import.meta.url), "utf8"));
const refs = conformance("refs.json");
const kinds = conformance("errors.json");

test("valid refs parse to their fields", () => {
  assert.ok(refs.valid.length > 0);
  for (const { json, channel_id, access_key, direction } of refs.valid) {
    assert.ok(isChannelRef(json), JSON.stringify(json));
    const parsed = parseChannelRef(json);
    assert.deepEqual(parsed, { channel_id, access_key, direction });
    assert.notEqual(parsed, json, "a new object");
  }
});

test("invalid refs are refused", () => {
  assert.ok(refs.invalid.length > 0);
  for (const { why, json } of refs.invalid) {
    assert.equal(isChannelRef(json), false, why);
    assert.throws(() => parseChannelRef(json), TypeError, why);
  }
});

test("objects that only look like refs are refused", () => {
  class Ref {
    constructor() {
      Object.assign(this, { channel_id: "c", access_key: "k", direction: "read" });
    }
  }
  assert.equal(isChannelRef(new Ref()), false, "a class instance is not JSON");
  const inherited = Object.create({ channel_id: "c" });
  Object.assign(inherited, { access_key: "k", direction: "read", extra: 1 });
  assert.equal(isChannelRef(inherited), false);
});

test("refs are found anywhere in a payload, with their paths", () => {
  const ref = { channel_id: "c", access_key: "k", direction: "read" };
  const payload = { job: { reader: ref, note: "x" }, list: [1, ref], bad: { ...ref, extra: true } };
  assert.deepEqual(extractChannelRefs(payload), [
    { path: "job.reader", ref },
    { path: "list[1]", ref },
  ]);
  assert.deepEqual(extractChannelRefs(ref), [{ path: "", ref }]);
  assert.deepEqual(extractChannelRefs(null), []);
});

test("every channel-error kind has its class, in the WIT's order", () => {
  assert.deepEqual(Object.keys(errors.CHANNEL_ERRORS), kinds["channel-error"]);
  for (const [kind, cls] of Object.entries(errors.CHANNEL_ERRORS)) {
    const err = new cls("why");
    assert.ok(err instanceof errors.ChannelError && err instanceof Error, kind);
    assert.equal(err.kind, kind);
    assert.equal(err.detail, "why");
    assert.equal(err.name, cls.name);
  }
});

test("every call-error kind has its class, in the WIT's order", () => {
  assert.deepEqual(Object.keys(errors.CALL_ERRORS), kinds["call-error"]);
  for (const [kind, cls] of Object.entries(errors.CALL_ERRORS)) {
    const err = new cls();
    assert.ok(err instanceof errors.CallError && err instanceof Error, kind);
    assert.equal(err.kind, kind);
    assert.equal(err.detail, undefined);
  }
});

test("WIT error values become the SDK's errors, keeping kind and payload", () => {
  const thrown = (payload) => Object.assign(new Error("from the bindings"), { payload });
  const aborted = errors.fromWit(thrown({ tag: "aborted", val: "the writer trapped" }), errors.CHANNEL_ERRORS, errors.ChannelError);
  assert.ok(aborted instanceof errors.ChannelAborted);
  assert.equal(aborted.detail, "the writer trapped");
  assert.match(aborted.message, /the writer trapped/);
  const closed = errors.fromWit(thrown({ tag: "closed" }), errors.CHANNEL_ERRORS, errors.ChannelError);
  assert.ok(closed instanceof errors.ChannelClosed);
  assert.equal(closed.detail, undefined);
  const failed = errors.fromWit(thrown({ tag: "failed", val: "Error: no" }), errors.CALL_ERRORS, errors.CallError);
  assert.ok(failed instanceof errors.CallFailed);
  assert.equal(failed.detail, "Error: no");
  const bug = new RangeError("not a WIT error");
  assert.equal(errors.fromWit(bug, errors.CALL_ERRORS, errors.CallError), bug, "other errors pass through");
});
