/* `c::transform::uppercase`: the twin of Rust's `transform::uppercase`
 * (guests/rust/examples/transform), a streaming filter between two channels.
 *
 * Payload: {"input": <read ref>, "output": <write ref>}. ASCII-uppercases each byte
 * chunk of `input` and writes it to `output`, passes text messages through unchanged
 * and in order, and closes `output` at the end of `input`. Result:
 * {"bytes": N, "messages": K}. If reading `input` fails (for example because its writer
 * aborted), `output` is aborted with the same reason and the call fails. */
#include <inttypes.h>
#include <stdlib.h>

#include "rill.h"

static bool fail(rill_result *out, const char *context, rill_error *err) {
    rill_fail_error(out, context, err);
    rill_error_free(err);
    return false;
}

static bool uppercase(const char *payload, size_t len, rill_result *out) {
    rill_error err = RILL_ERROR_INIT;
    rill_reader *input = rill_open_reader_at(payload, len, "input", &err);
    if (!input) return fail(out, "opening input", &err);
    rill_writer *output = rill_open_writer_at(payload, len, "output", &err);
    if (!output) return fail(out, "opening output", &err);
    uint64_t bytes = 0, messages = 0;
    for (;;) {
        rill_item item;
        if (!rill_read(input, 0, &item, &err)) {
            /* Pass the failure downstream instead of a clean end. */
            char *message = rill_error_message(&err);
            rill_abort(output, err.kind == RILL_CHANNEL_ABORTED && err.detail ? err.detail : message);
            free(message);
            return fail(out, "reading input", &err);
        }
        if (item.kind == RILL_ITEM_END) break;
        bool written;
        if (item.kind == RILL_ITEM_BYTES) {
            for (size_t i = 0; i < item.len; i++) {
                if (item.data[i] >= 'a' && item.data[i] <= 'z') item.data[i] -= 'a' - 'A';
            }
            written = rill_write(output, item.data, item.len, &err);
            bytes += item.len;
        } else {
            written = rill_send_text(output, (const char *)item.data, item.len, &err);
            messages++;
        }
        rill_item_free(&item);
        if (!written) return fail(out, "writing output", &err);
    }
    if (!rill_close(output, &err)) return fail(out, "closing output", &err);
    return rill_okf(out, "{\"bytes\":%" PRIu64 ",\"messages\":%" PRIu64 "}", bytes, messages);
}

const rill_function rill_functions[] = {
    {"c::transform::uppercase", uppercase},
    {NULL, NULL},
};
