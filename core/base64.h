/* base64.h — RFC 4648 base64, for pictures sent inside JSON ({"b64": "..."}) and the
 * PNGs the server renders.
 *
 * The decoder accepts the standard and the URL-safe alphabets, optional '=' padding and
 * whitespace (line breaks of MIME-wrapped text); anything else is an error that gives
 * the offset of the offending character. The encoder writes the standard alphabet with
 * padding. Reentrant; buffers are xd_malloc'd.
 */
#ifndef XD_BASE64_H
#define XD_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Bytes the decoding of n characters can produce at most (the allocation bound). */
#define XD_BASE64_DECODED_MAX(n) ((n) / 4 * 3 + 3)

/* Decodes s[0..n). On XD_OK *out is xd_malloc'd (xd_free) with *out_len bytes. Errors:
 * XD_EINVAL with err naming the offset ("character 17 is not base64", "truncated"),
 * XD_ENOMEM. err->field is left empty for the caller to fill. */
int xd_base64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len, xd_error_t *err);

/* Encodes data[0..n) with padding. Returns an xd_malloc'd NUL-terminated string of
 * 4 * ceil(n / 3) characters (*out_len), or NULL on no memory or overflow. */
char *xd_base64_encode(const uint8_t *data, size_t n, size_t *out_len);

#endif
