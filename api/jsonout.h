/* jsonout.h — the response encoder: compact JSON text for a json_t, with every real
 * printed as the shortest text that reads back as the same double (48.906, not
 * 48.905999999999999).
 *
 * jansson's json_dumps prints reals with a fixed precision (17 significant digits by
 * default), which always round-trips but shows the binary expansion's noise. Apart from
 * the numbers, the text is what json_dumps(v, JSON_COMPACT) gives: keys in insertion
 * order, the same string escapes, integers as is. Stored bundles keep jansson's dumps
 * (api/store.c: their digest is of those bytes). Thread-safe; allocates with xd_malloc,
 * and a failed allocation counts as a JSON one (api/alloc.h).
 */
#ifndef XD_API_JSONOUT_H
#define XD_API_JSONOUT_H

#include <jansson.h>
#include <stddef.h>

#include "core/status.h"

/* Shortest "%.15g"/"%.16g"/"%.17g" text of finite x that strtod reads back as x, written
 * as jansson writes reals: with ".0" when it would read as an integer, and the exponent
 * without '+' or leading zeros ("1e20", "1e-5"). Writes at most 32 bytes (NUL included)
 * and returns the length. */
size_t xd_json_format_real(double x, char buf[32]);

/* New NUL-terminated text of v (the caller frees it with xd_free), or NULL when an
 * allocation failed or v nests deeper than 2048 levels. */
char *xd_json_print(const json_t *v);
/* As xd_json_print, checking cancel (NULL: never) every 4096 numbers: the largest answers
 * (PDP's ICE curves, ~90 MB of text) take seconds to print. Returns NULL with *rc set to
 * cancel's status (XD_ETIMEDOUT past the deadline) when it fired, else to XD_ENOMEM. */
char *xd_json_print_cancel(const json_t *v, const xd_cancel_t *cancel, int *rc);

#endif
