/* The C twins of guests/rust/examples/bench, for `rill bench`'s C rows.
 *
 * | id | payload | result |
 * | --- | --- | --- |
 * | `c::bench::noop` | anything | `{}` |
 * | `c::bench::write` | `{"writer", "total" (or "bytes"), "chunk"}` | `{"written"}` |
 * | `c::bench::read` | `{"reader", "chunk"?}` | `{"read", "bytes"}` (the same count) |
 *
 * The writer sends one pre-filled buffer per write (one host call each, for chunks up to
 * RILL_WRITE_PIECE_BYTES) and closes; the reader asks for `chunk` bytes per read
 * (default 64 KiB), touching nothing else, so what is measured is C's way across the
 * host boundary. */
#include <inttypes.h>
#include <stdlib.h>

#include "rill.h"

static bool noop(const char *payload, size_t len, rill_result *out) {
    (void)payload;
    (void)len;
    return rill_ok(out, "{}");
}

static bool fail(rill_result *out, const char *context, rill_error *err) {
    rill_fail_error(out, context, err);
    rill_error_free(err);
    return false;
}

static bool write_stream(const char *payload, size_t len, rill_result *out) {
    uint64_t total, chunk = 64 << 10;
    if (!rill_json_u64(payload, len, "total", &total) && !rill_json_u64(payload, len, "bytes", &total)) {
        return rill_fail(out, "the payload needs \"total\" (or \"bytes\"): a byte count");
    }
    rill_json_u64(payload, len, "chunk", &chunk);
    if (chunk == 0) chunk = 1;
    if (chunk > 64u << 20) return rill_fail(out, "chunk is at most 64 MiB");
    rill_error err = RILL_ERROR_INIT;
    rill_writer *writer = rill_open_writer_at(payload, len, "writer", &err);
    if (!writer) return fail(out, "opening writer", &err);
    uint8_t *buffer = malloc(chunk);
    if (!buffer) abort();
    for (uint64_t i = 0; i < chunk; i++) buffer[i] = (uint8_t)i;
    for (uint64_t left = total; left > 0;) {
        size_t n = left < chunk ? (size_t)left : (size_t)chunk;
        if (!rill_write(writer, buffer, n, &err)) {
            free(buffer);
            return fail(out, "writing", &err);
        }
        left -= n;
    }
    free(buffer);
    if (!rill_close(writer, &err)) return fail(out, "closing", &err);
    return rill_okf(out, "{\"written\":%" PRIu64 "}", total);
}

static bool read_stream(const char *payload, size_t len, rill_result *out) {
    uint64_t chunk = 64 << 10, total = 0;
    rill_json_u64(payload, len, "chunk", &chunk);
    rill_error err = RILL_ERROR_INIT;
    rill_reader *reader = rill_open_reader_at(payload, len, "reader", &err);
    if (!reader) return fail(out, "opening reader", &err);
    for (;;) {
        rill_item item;
        if (!rill_read(reader, chunk ? (size_t)chunk : 1, &item, &err)) return fail(out, "reading", &err);
        if (item.kind == RILL_ITEM_END) break;
        if (item.kind == RILL_ITEM_BYTES) total += item.len;
        rill_item_free(&item);
    }
    rill_reader_free(reader);
    return rill_okf(out, "{\"read\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", total, total);
}

const rill_function rill_functions[] = {
    {"c::bench::noop", noop},
    {"c::bench::write", write_stream},
    {"c::bench::read", read_stream},
    {NULL, NULL},
};
