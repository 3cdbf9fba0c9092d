/* The SDK checked against protocol/conformance from inside a guest (tests/all/c.rs).
 *
 * - `c::test::parse_ref`: payload {"json": <any JSON>}. Runs rill_ref_parse on the text
 *   of the value at "json". Result: {"ok": true, "channel_id", "access_key",
 *   "direction"} (round-tripped through rill_ref_to_json's escaping) or {"ok": false,
 *   "kind", "error"}.
 * - `c::test::error_kinds`: {"channel-error": [...], "call-error": [...]}, the names
 *   rill_error_kind_name gives the SDK's kinds, in the enum's order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"

static bool parse_ref(const char *payload, size_t len, rill_result *out) {
    const char *start;
    size_t n;
    if (!rill_json_find(payload, len, "json", &start, &n)) return rill_fail(out, "the payload needs \"json\"");
    rill_ref ref;
    rill_error err = RILL_ERROR_INIT;
    if (!rill_ref_parse(start, n, &ref, &err)) {
        char *why = rill_json_string(err.detail, strlen(err.detail));
        rill_okf(out, "{\"ok\":false,\"kind\":\"%s\",\"error\":%s}", rill_error_kind_name(err.kind), why);
        free(why);
        rill_error_free(&err);
        return true;
    }
    char *text = rill_ref_to_json(&ref);
    /* The ref's own JSON, re-parsed: to_json and parse agree. */
    rill_ref again;
    bool same = rill_ref_parse(text, strlen(text), &again, &err) && again.channel_id_len == ref.channel_id_len &&
                memcmp(again.channel_id, ref.channel_id, ref.channel_id_len) == 0 &&
                again.access_key_len == ref.access_key_len &&
                memcmp(again.access_key, ref.access_key, ref.access_key_len) == 0 && again.direction == ref.direction;
    if (same) rill_ref_free(&again);
    rill_error_free(&err);
    rill_ref_free(&ref);
    if (!same) {
        free(text);
        return rill_fail(out, "rill_ref_to_json does not round-trip");
    }
    /* {"channel_id":...,"access_key":...,"direction":...} with "ok" spliced in front. */
    rill_okf(out, "{\"ok\":true,%s", text + 1);
    free(text);
    return true;
}

static bool error_kinds(const char *payload, size_t len, rill_result *out) {
    (void)payload;
    (void)len;
    char text[1024];
    size_t n = (size_t)snprintf(text, sizeof text, "{\"channel-error\":[");
    for (int kind = RILL_CHANNEL_NOT_FOUND; kind <= RILL_CHANNEL_INVALID_ARGUMENT; kind++) {
        if (!rill_error_is_channel((rill_error_kind)kind)) return rill_fail(out, "kind %d is not a channel kind", kind);
        n += (size_t)snprintf(text + n, sizeof text - n, "%s\"%s\"", kind == RILL_CHANNEL_NOT_FOUND ? "" : ",",
                              rill_error_kind_name((rill_error_kind)kind));
    }
    n += (size_t)snprintf(text + n, sizeof text - n, "],\"call-error\":[");
    for (int kind = RILL_CALL_NOT_FOUND; kind <= RILL_CALL_UNAVAILABLE; kind++) {
        if (rill_error_is_channel((rill_error_kind)kind)) return rill_fail(out, "kind %d is a channel kind", kind);
        n += (size_t)snprintf(text + n, sizeof text - n, "%s\"%s\"", kind == RILL_CALL_NOT_FOUND ? "" : ",",
                              rill_error_kind_name((rill_error_kind)kind));
    }
    snprintf(text + n, sizeof text - n, "]}");
    return rill_ok(out, text);
}

const rill_function rill_functions[] = {
    {"c::test::parse_ref", parse_ref},
    {"c::test::error_kinds", error_kinds},
    {NULL, NULL},
};
