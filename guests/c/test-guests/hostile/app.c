/* Hostile C: each attack must hurt only its own call (tests/all/c.rs).
 *
 * - `c::hostile::loop`: spins forever; its deadline stops it.
 * - `c::hostile::memory_bomb`: allocates 1 MiB at a time, touching and keeping it all.
 *   When the memory limit refuses to grow the heap, malloc returns NULL and the function
 *   calls abort(), as the SDK does and as Rust's allocator does: the guest traps after a
 *   refused memory.grow, which the host reports as the memory limit.
 * - `c::hostile::huge_write`: hands `bytes` bytes to the host in one write
 *   (rill_write_once, unsplit) to the writer ref at `writer`; past the per-call copy
 *   limit the call fails and the stream is aborted. Result: {"written": bytes}. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"

static bool spin(const char *payload, size_t len, rill_result *out) {
    (void)payload;
    (void)len;
    (void)out;
    volatile uint64_t turns = 0;
    for (;;) turns++;
}

static bool memory_bomb(const char *payload, size_t len, rill_result *out) {
    (void)payload;
    (void)len;
    (void)out;
    for (;;) {
        volatile uint8_t *block = malloc(1 << 20);
        if (!block) abort();
        for (size_t i = 0; i < (1 << 20); i += 4096) block[i] = 1;
    }
}

static bool huge_write(const char *payload, size_t len, rill_result *out) {
    uint64_t bytes;
    if (!rill_json_u64(payload, len, "bytes", &bytes) || bytes > SIZE_MAX) {
        return rill_fail(out, "the payload needs \"bytes\"");
    }
    rill_error err = RILL_ERROR_INIT;
    rill_writer *writer = rill_open_writer_at(payload, len, "writer", &err);
    if (!writer) {
        rill_fail_error(out, "opening writer", &err);
        rill_error_free(&err);
        return false;
    }
    uint8_t *data = calloc(1, (size_t)bytes ? (size_t)bytes : 1);
    if (!data) abort();
    bool ok = rill_write_once(writer, data, (size_t)bytes, &err) && rill_close(writer, &err);
    free(data);
    if (!ok) {
        rill_fail_error(out, "writing", &err);
        rill_error_free(&err);
        return false;
    }
    return rill_okf(out, "{\"written\":%" PRIu64 "}", bytes);
}

const rill_function rill_functions[] = {
    {"c::hostile::loop", spin},
    {"c::hostile::memory_bomb", memory_bomb},
    {"c::hostile::huge_write", huge_write},
    {NULL, NULL},
};
