/* `c::files::process`: the twin of Rust's `files::process` (guests/rust/examples/files).
 *
 * Payload: {"reader": <read ref>} (or the ref at "job.reader"). Reads the stream to its
 * end. Result: {"bytes": N, "sha256": "<lowercase hex of the bytes>", "messages": K},
 * K counting the text messages met on the way. */
#include <inttypes.h>
#include <stdlib.h>

#include "rill.h"
#include "sha256.h"

static bool process(const char *payload, size_t len, rill_result *out) {
    rill_error err = RILL_ERROR_INIT;
    rill_reader *reader = rill_open_reader_at(payload, len, "reader", &err);
    if (!reader) {
        rill_error_free(&err);
        reader = rill_open_reader_at(payload, len, "job.reader", &err);
    }
    if (!reader) {
        rill_fail_error(out, "missing reader channel ref", &err);
        rill_error_free(&err);
        return false;
    }
    sha256 digest;
    sha256_init(&digest);
    uint64_t bytes = 0, messages = 0;
    for (;;) {
        rill_item item;
        if (!rill_read(reader, 0, &item, &err)) {
            rill_fail_error(out, "reading the stream", &err);
            rill_error_free(&err);
            return false;
        }
        if (item.kind == RILL_ITEM_END) break;
        if (item.kind == RILL_ITEM_BYTES) {
            sha256_update(&digest, item.data, item.len);
            bytes += item.len;
        } else {
            messages++;
        }
        rill_item_free(&item);
    }
    rill_reader_free(reader);
    char hex[65];
    sha256_final_hex(&digest, hex);
    return rill_okf(out, "{\"bytes\":%" PRIu64 ",\"sha256\":\"%s\",\"messages\":%" PRIu64 "}", bytes, hex, messages);
}

const rill_function rill_functions[] = {
    {"c::files::process", process},
    {NULL, NULL},
};
