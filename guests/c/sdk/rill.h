/* rill.h: the C SDK for rill functions (guests/c/README.md).
 *
 * A C app is a directory of `.c` files, one of them `app.c`, that defines the table
 * `rill_functions` (below). rill-build compiles it with this SDK and bindings generated
 * from rill's WIT (world `function`) into a component.
 *
 * Ownership, in one place (each declaration repeats what applies to it):
 *
 * - Every `char *` or `rill_item` the SDK hands out is yours: free it with `free` (or
 *   `rill_item_free`, `rill_ref_free`, `rill_error_free`, `rill_channel_free_refs`).
 *   Every `const char *` you pass in is only read during the call: the SDK copies what it
 *   keeps.
 * - `rill_writer`, `rill_reader` and `rill_pending` belong to the call that made them.
 *   `rill_close` and `rill_abort` consume a writer, `rill_reader_free` a reader,
 *   `rill_wait` and `rill_pending_free` a pending call: the pointer is invalid after.
 *   Whatever is still open when the handler returns is finished by the SDK: writers are
 *   aborted with the handler's error message if it failed (a reader never takes a cut
 *   stream for a whole one), and dropped otherwise (the host then aborts them with
 *   "writer dropped without close": close what you write); readers and pending calls
 *   are dropped. Never keep one across calls.
 * - A `rill_error` holds its detail until `rill_error_free` or the next operation that
 *   takes it, which frees the old detail first. A zeroed `rill_error` (`RILL_ERROR_INIT`)
 *   is empty.
 * - Out of memory the SDK calls `abort()` (the guest traps; the host reports the memory
 *   limit), as the generated bindings and Rust guests do: no function returns NULL for
 *   lack of memory.
 */
#ifndef RILL_H
#define RILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------- */
/* Errors                                                                              */

/* What failed, keeping the WIT kind: the `channel-error` cases, then the `call-error`
 * cases, in the WIT's order (protocol/conformance/errors.json), then the SDK's own. */
typedef enum rill_error_kind {
    RILL_OK = 0,
    /* channel-error */
    RILL_CHANNEL_NOT_FOUND,
    RILL_CHANNEL_ALREADY_ATTACHED,
    RILL_CHANNEL_CLOSED,
    RILL_CHANNEL_ABORTED,          /* detail: the writer's reason */
    RILL_CHANNEL_TIMED_OUT,
    RILL_CHANNEL_LIMIT_EXCEEDED,   /* detail: which limit */
    RILL_CHANNEL_FINISHED,
    RILL_CHANNEL_INVALID_ARGUMENT, /* detail: why */
    /* call-error */
    RILL_CALL_NOT_FOUND,           /* detail: the id */
    RILL_CALL_INVALID_INPUT,       /* detail: what */
    RILL_CALL_FAILED,              /* detail: the callee's error or trap */
    RILL_CALL_TIMED_OUT,
    RILL_CALL_LIMIT_EXCEEDED,      /* detail: which limit */
    RILL_CALL_UNAVAILABLE,         /* detail: why */
    /* the SDK's own */
    RILL_INVALID_REF,              /* detail: why the JSON is not a channel ref */
} rill_error_kind;

/* An error: its kind and a detail (NUL-terminated UTF-8, or NULL for kinds without
 * one). The detail is owned by the error. */
typedef struct rill_error {
    rill_error_kind kind;
    char *detail;
} rill_error;

#define RILL_ERROR_INIT {RILL_OK, NULL}

/* Free the detail and reset `err` to RILL_OK. NULL is allowed. */
void rill_error_free(rill_error *err);

/* The WIT name of a kind ("not-found", "aborted", "timed-out", ...; "invalid-ref" for
 * RILL_INVALID_REF, "ok" for RILL_OK). Static storage: never free it. */
const char *rill_error_kind_name(rill_error_kind kind);

/* Whether the kind is a `channel-error` case (else a `call-error` case or the SDK's). */
bool rill_error_is_channel(rill_error_kind kind);

/* "<kind>" or "<kind>: <detail>", newly allocated (free it). */
char *rill_error_message(const rill_error *err);

/* ---------------------------------------------------------------------------------- */
/* Channel refs                                                                        */

typedef enum rill_direction { RILL_READ = 0, RILL_WRITE = 1 } rill_direction;

/* A channel ref, decoded: both strings NUL-terminated UTF-8 owned by the ref (their
 * lengths are given too: a JSON string may hold "\u0000"). Treat `access_key` as a
 * secret. */
typedef struct rill_ref {
    char *channel_id;
    size_t channel_id_len;
    char *access_key;
    size_t access_key_len;
    rill_direction direction;
} rill_ref;

/* Free the strings of `ref` (not `ref` itself). NULL is allowed. */
void rill_ref_free(rill_ref *ref);

/* Parse `json` (`len` bytes, need not be NUL-terminated) as exactly one ref, iii's shape:
 * an object with exactly the keys "channel_id" (string), "access_key" (string) and
 * "direction" ("read" or "write"), whitespace around allowed, nothing else
 * (protocol/conformance/refs.json; duplicate keys are refused too). True and `*out`
 * filled (free it with rill_ref_free), or false with RILL_INVALID_REF in `err`. */
bool rill_ref_parse(const char *json, size_t len, rill_ref *out, rill_error *err);

/* The ref at `path` of the JSON object `payload` (`len` bytes): a key of the top-level
 * object ("reader"), or a dotted path into nested objects ("job.reader"). False with
 * RILL_INVALID_REF (detail naming the path) if it is missing or not a ref. */
bool rill_ref_at(const char *payload, size_t len, const char *path, rill_ref *out, rill_error *err);

/* The ref as iii's JSON text, newly allocated (free it). */
char *rill_ref_to_json(const rill_ref *ref);

/* ---------------------------------------------------------------------------------- */
/* A little JSON, for payloads                                                         */

/* Where the value at `path` (as rill_ref_at) lies in `json`: `*start` and `*value_len`
 * give its text. False if `json` is not valid JSON, or the path is missing. */
bool rill_json_find(const char *json, size_t len, const char *path, const char **start, size_t *value_len);

/* The non-negative integer at `path` (no fraction, no exponent, at most 2^64-1). False if
 * missing or not such a number. */
bool rill_json_u64(const char *json, size_t len, const char *path, uint64_t *out);

/* `len` bytes of UTF-8 as a JSON string literal, quotes included, newly allocated. */
char *rill_json_string(const char *text, size_t len);

/* ---------------------------------------------------------------------------------- */
/* Channels                                                                            */

/* The writing end of a channel. Opaque; belongs to the current call. */
typedef struct rill_writer rill_writer;
/* The reading end of a channel. Opaque; belongs to the current call. */
typedef struct rill_reader rill_reader;

/* A new channel: both local ends (attached lazily, on first use) and both refs as JSON
 * text in iii's shape, to put into payloads. The refs are yours (rill_channel_free_refs
 * or free each); the ends follow the rules of rill_writer and rill_reader. */
typedef struct rill_channel {
    rill_writer *writer;
    rill_reader *reader;
    char *writer_ref;
    char *reader_ref;
} rill_channel;

/* Create a channel buffering `buffer_bytes` between its ends (0: the host's default).
 * False with the channel-error (for example RILL_CHANNEL_LIMIT_EXCEEDED). */
bool rill_channel_create(uint32_t buffer_bytes, rill_channel *out, rill_error *err);

/* Free the two ref texts of `channel` (not its ends). */
void rill_channel_free_refs(rill_channel *channel);

/* Attach the end `ref` names. NULL with the channel-error (RILL_CHANNEL_NOT_FOUND for a
 * ref of the other direction). */
rill_writer *rill_open_writer(const rill_ref *ref, rill_error *err);
rill_reader *rill_open_reader(const rill_ref *ref, rill_error *err);

/* rill_ref_at + rill_open_*: the end named by the ref at `path` of `payload`. */
rill_writer *rill_open_writer_at(const char *payload, size_t len, const char *path, rill_error *err);
rill_reader *rill_open_reader_at(const char *payload, size_t len, const char *path, rill_error *err);

/* The largest piece rill_write hands the host in one call (1 MiB), under the host's
 * per-call limit (4 MiB by default). */
#define RILL_WRITE_PIECE_BYTES (1u << 20)

/* Append `len` bytes, in pieces of at most RILL_WRITE_PIECE_BYTES; waits while the
 * channel's buffer is full. False with the channel-error (RILL_CHANNEL_CLOSED when the
 * reader is gone). */
bool rill_write(rill_writer *writer, const void *data, size_t len, rill_error *err);

/* Append `len` bytes in one host call, unsplit: past the host's per-call limit the guest
 * traps. For measuring the boundary and testing that limit; use rill_write. */
bool rill_write_once(rill_writer *writer, const void *data, size_t len, rill_error *err);

/* Append a text message (`len` bytes of UTF-8), delivered whole and in order with the
 * bytes. Invalid UTF-8 fails with RILL_CHANNEL_INVALID_ARGUMENT, sending nothing. */
bool rill_send_text(rill_writer *writer, const char *text, size_t len, rill_error *err);

/* The clean end: the reader drains what is buffered, then sees the end. Consumes
 * `writer` whatever the outcome. False with the channel-error (the stream then ends
 * aborted, not cleanly). */
bool rill_close(rill_writer *writer, rill_error *err);

/* The failed end: the reader drains what is buffered, then sees RILL_CHANNEL_ABORTED
 * with `reason` (NUL-terminated; invalid UTF-8 is replaced). Consumes `writer`. */
void rill_abort(rill_writer *writer, const char *reason);

/* What a read returns. */
typedef enum rill_item_kind {
    RILL_ITEM_BYTES = 0, /* `data`, `len` bytes */
    RILL_ITEM_TEXT = 1,  /* `data`, `len` bytes of UTF-8, NUL-terminated as well */
    RILL_ITEM_END = 2,   /* the writer closed and everything was read; `data` NULL */
} rill_item_kind;

/* One item. `data` is owned by the item (NULL when `len` is 0 for bytes): valid until
 * rill_item_free, which you must call (or `free(data)` yourself). */
typedef struct rill_item {
    rill_item_kind kind;
    uint8_t *data;
    size_t len;
} rill_item;

/* Free the item's data and zero it. */
void rill_item_free(rill_item *item);

/* The next item, waiting for one: a byte chunk of at most `max_bytes` (0: the host's
 * chunk size), or a text message, or the end (repeated by later reads). False with the
 * channel-error: RILL_CHANNEL_ABORTED with the writer's reason when it failed (after
 * everything it wrote was read), RILL_CHANNEL_TIMED_OUT when it never came. */
bool rill_read(rill_reader *reader, size_t max_bytes, rill_item *out, rill_error *err);

/* Stop reading; the writer's next operation fails with `closed`. Consumes `reader`. */
void rill_reader_free(rill_reader *reader);

/* ---------------------------------------------------------------------------------- */
/* Calling other functions                                                             */

/* A call started by rill_spawn. Opaque; belongs to the current call. */
typedef struct rill_pending rill_pending;

/* Call `function_id` with `payload_json` (NUL-terminated) within `timeout_ms` (0: the
 * host's default) and wait: its result JSON, newly allocated (free it), or NULL with the
 * call-error (RILL_CALL_FAILED with the callee's message, ...). */
char *rill_trigger(const char *function_id, const char *payload_json, uint64_t timeout_ms, rill_error *err);

/* Start a call and return at once; NULL with the call-error. */
rill_pending *rill_spawn(const char *function_id, const char *payload_json, uint64_t timeout_ms, rill_error *err);

/* Wait for a spawned call: as rill_trigger. Consumes `pending`. */
char *rill_wait(rill_pending *pending, rill_error *err);

/* Let a spawned call run on unobserved. Consumes `pending`. */
void rill_pending_free(rill_pending *pending);

/* Start a call nobody waits for (iii's void). False with an error found before it
 * started (unknown function, malformed payload). */
bool rill_trigger_void(const char *function_id, const char *payload_json, uint64_t timeout_ms, rill_error *err);

/* ---------------------------------------------------------------------------------- */
/* Serving calls: what the app defines                                                 */

/* How a handler answers. Opaque; set it with rill_ok / rill_okf / rill_fail /
 * rill_fail_error, each of which replaces an earlier answer. */
typedef struct rill_result rill_result;

/* A function: gets the caller's payload JSON exactly as sent (`len` bytes, also
 * NUL-terminated; valid during the call only) and answers through `out`. Returns true
 * for a result, false for an error: the usual shape is `return rill_okf(out, ...)` or
 * `return rill_fail(out, ...)`. Returning true without an answer fails the call. */
typedef bool (*rill_handler)(const char *payload, size_t len, rill_result *out);

/* One entry of the app's table. */
typedef struct rill_function {
    const char *id;
    rill_handler handler;
} rill_function;

/* THE APP DEFINES THIS: the functions its component serves, ended by {NULL, NULL}.
 *
 *     const rill_function rill_functions[] = {
 *         {"c::files::process", process},
 *         {NULL, NULL},
 *     };
 */
extern const rill_function rill_functions[];

/* Answer with `json` (copied; must be JSON text). Returns true. */
bool rill_ok(rill_result *out, const char *json);
/* Answer with printf-formatted JSON. Returns true. */
bool rill_okf(rill_result *out, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Fail with a printf-formatted message. Returns false. */
bool rill_fail(rill_result *out, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Fail with "<context>: <kind>[: <detail>]" for `err`. Returns false. */
bool rill_fail_error(rill_result *out, const char *context, const rill_error *err);

#ifdef __cplusplus
}
#endif

#endif /* RILL_H */
