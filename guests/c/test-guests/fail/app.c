/* C functions that fail midway: the stream they write must reach its reader as aborted
 * with the function's error, never as a clean end (tests/all/c.rs).
 *
 * - `c::test::write_then_fail`: payload {"writer": <write ref>, "bytes": N}. Writes N
 *   bytes, then returns the error "told to fail midway" without closing the writer; the
 *   SDK aborts it with that message.
 * - `c::test::transform_then_fail`: payload {"input", "output", "after"?}. Copies input
 *   to output until at least `after` bytes (default 65536) went through, then returns
 *   the error "c stage failed on purpose", its output still open. */
#include <inttypes.h>
#include <string.h>

#include "rill.h"

static bool fail(rill_result *out, const char *context, rill_error *err) {
    rill_fail_error(out, context, err);
    rill_error_free(err);
    return false;
}

static bool write_then_fail(const char *payload, size_t len, rill_result *out) {
    uint64_t bytes;
    if (!rill_json_u64(payload, len, "bytes", &bytes)) return rill_fail(out, "the payload needs \"bytes\"");
    rill_error err = RILL_ERROR_INIT;
    rill_writer *writer = rill_open_writer_at(payload, len, "writer", &err);
    if (!writer) return fail(out, "opening writer", &err);
    static uint8_t block[64 << 10];
    memset(block, 'x', sizeof block);
    for (uint64_t left = bytes; left > 0;) {
        size_t n = left < sizeof block ? (size_t)left : sizeof block;
        if (!rill_write(writer, block, n, &err)) return fail(out, "writing", &err);
        left -= n;
    }
    return rill_fail(out, "told to fail midway");
}

static bool transform_then_fail(const char *payload, size_t len, rill_result *out) {
    uint64_t after = 65536, copied = 0;
    rill_json_u64(payload, len, "after", &after);
    rill_error err = RILL_ERROR_INIT;
    rill_reader *input = rill_open_reader_at(payload, len, "input", &err);
    if (!input) return fail(out, "opening input", &err);
    rill_writer *output = rill_open_writer_at(payload, len, "output", &err);
    if (!output) return fail(out, "opening output", &err);
    while (copied < after) {
        rill_item item;
        if (!rill_read(input, 0, &item, &err)) return fail(out, "reading input", &err);
        if (item.kind == RILL_ITEM_END) break;
        bool written = item.kind == RILL_ITEM_BYTES
            ? rill_write(output, item.data, item.len, &err)
            : rill_send_text(output, (const char *)item.data, item.len, &err);
        if (item.kind == RILL_ITEM_BYTES) copied += item.len;
        rill_item_free(&item);
        if (!written) return fail(out, "writing output", &err);
    }
    return rill_fail(out, "c stage failed on purpose");
}

const rill_function rill_functions[] = {
    {"c::test::write_then_fail", write_then_fail},
    {"c::test::transform_then_fail", transform_then_fail},
    {NULL, NULL},
};
