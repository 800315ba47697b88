/* json_guard.h — refuses JSON bodies whose decoded form would be far larger than they are.
 *
 * jansson turns every value into a heap object: `{}` (3 bytes with its comma) becomes
 * about 230 bytes, `[]` about 140, a one-digit number about 40 (measured with glibc's
 * allocator). So 8 MiB of `[{},{},...]` would take over 600 MB to decode. Before the
 * body reaches jansson, one pass over its bytes counts the values it would create and
 * estimates their memory with those per-value costs; a body whose estimate is over
 * XD_JSON_GUARD_RATIO times its size (and over XD_JSON_GUARD_FLOOR, so small bodies
 * always pass) is refused with 413 without any allocation. Ordinary requests (arrays of
 * numbers with a few digits) estimate at 4-20 times their size.
 *
 * The scan does not validate: malformed JSON is left to the decoder's own error.
 */
#ifndef XD_API_JSON_GUARD_H
#define XD_API_JSON_GUARD_H

#include <stddef.h>

#include "core/status.h"

#define XD_JSON_GUARD_RATIO 32
#define XD_JSON_GUARD_FLOOR ((size_t)4 << 20)

/* Estimated bytes of heap jansson would use for buf[0..len), counting no further than
 * stop_at (the scan ends as soon as the estimate passes it). */
size_t xd_json_guard_estimate(const char *buf, size_t len, size_t stop_at);

/* XD_OK, or XD_ETOOBIG with err filled (no field; the estimate and the ratio in the
 * sentence). */
int xd_json_guard(const char *buf, size_t len, xd_error_t *err);

#endif
