/* ubjson.h — a bounded reader of Universal Binary JSON (the form of XGBoost's
 * Booster.save_model("m.ubj")) into jansson values, and a JSON text cleaner for the
 * non-standard NaN / Infinity literals XGBoost's JSON writer emits.
 *
 * The reader accepts the UBJSON draft 12 markers XGBoost writes: null Z, no-op N, true T,
 * false F, integers i U I l L (big-endian), float32 d, float64 D, high-precision number
 * H, char C, string S, arrays [ ] and objects { } with the optimized $type and #count
 * headers. Bounds: nesting at most XD_UBJ_MAX_DEPTH, every length checked against the
 * bytes left before anything is allocated, at most XD_UBJ_MAX_EMPTY zero-byte elements in
 * one typed container. Any thread.
 */
#ifndef XD_API_UBJSON_H
#define XD_API_UBJSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/status.h"

#define XD_UBJ_MAX_DEPTH 64
#define XD_UBJ_MAX_EMPTY 65536

/* 1 when data looks like UBJSON (an object whose first key length is typed), not JSON. */
int xd_ubjson_sniff(const void *data, size_t len);

/* Decodes one UBJSON value from data[0..len). Returns XD_OK with *out a new reference,
 * XD_EFORMAT (err names the byte offset) or XD_ENOMEM. NaN and infinite floats become
 * JSON null (jansson has no such reals). */
int xd_ubjson_decode(const void *data, size_t len, json_t **out, xd_error_t *err);

/* Copies JSON text src[0..len) into a new xd_malloc'd NUL-terminated buffer (*out, *out_len)
 * with the bare literals NaN, Infinity and -Infinity outside strings replaced by null.
 * Returns XD_OK or XD_ENOMEM. */
int xd_json_clean_nonfinite(const char *src, size_t len, char **out, size_t *out_len);

#endif
