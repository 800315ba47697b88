/* sha256.h — SHA-256 (FIPS 180-4) of a byte buffer, for model bundle digests. */
#ifndef XD_SHA256_H
#define XD_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Writes the 64-character lowercase hex digest of data[0..len) and a NUL to hex[65]. */
void xd_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
