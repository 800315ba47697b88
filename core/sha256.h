/* sha256.h — SHA-256 (FIPS 180-4) of a byte buffer, for model bundle digests. */
#ifndef XD_SHA256_H
#define XD_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Writes the 64-character lowercase hex digest of data[0..len) and a NUL to hex[65]. */
void xd_sha256_hex(const void *data, size_t len, char hex[65]);

/* Incremental form, for a digest over several buffers (a bundle and the files it names):
 * init, update any number of times, then final writes the hex digest. */
typedef struct xd_sha256 {
  uint32_t h[8];
  uint8_t buf[64];
  size_t n_buf;
  uint64_t len;
} xd_sha256_t;

void xd_sha256_init(xd_sha256_t *c);
void xd_sha256_update(xd_sha256_t *c, const void *data, size_t len);
void xd_sha256_final_hex(xd_sha256_t *c, char hex[65]);

#endif
