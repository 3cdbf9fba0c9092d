/* SHA-256 (FIPS 180-4), streaming: init, update any number of times, final. */
#ifndef SHA256_H
#define SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct sha256 {
    uint32_t state[8];
    uint64_t length;     /* bytes hashed so far */
    uint8_t block[64];   /* the partial block */
    size_t used;         /* bytes of it in use */
} sha256;

void sha256_init(sha256 *h);
void sha256_update(sha256 *h, const void *data, size_t len);
/* The digest as 64 lowercase hex digits and a NUL into `hex`. */
void sha256_final_hex(sha256 *h, char hex[65]);

#endif
