/* base64.c — RFC 4648 base64 decoding (standard or URL-safe alphabet, padding optional,
 * whitespace skipped) and encoding (standard alphabet, padded). */
#include "core/base64.h"

#include "core/alloc.h"

/* Value of a base64 character in either alphabet, -1 for others. */
static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

int xd_base64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len, xd_error_t *err) {
  *out = NULL;
  *out_len = 0;
  uint8_t *o = xd_malloc(XD_BASE64_DECODED_MAX(n));
  if (!o) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory decoding base64");
  uint32_t acc = 0;
  size_t bits = 0, k = 0, pad = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      pad++;
      continue;
    }
    int v = b64_value(c);
    if (v < 0 || pad) {
      xd_free(o);
      return xd_error_set(err, XD_EINVAL, NULL, "is not base64: character %zu%s", i,
                          pad ? " follows the '=' padding" : " is outside the base64 alphabet");
    }
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o[k++] = (uint8_t)(acc >> bits);
    }
  }
  /* six leftover bits are a lone character: no byte can end there */
  if (bits >= 6 || pad > 2) {
    xd_free(o);
    return xd_error_set(err, XD_EINVAL, NULL, "is not base64: truncated (a lone final character or too much padding)");
  }
  *out = o;
  *out_len = k;
  return XD_OK;
}

char *xd_base64_encode(const uint8_t *data, size_t n, size_t *out_len) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t groups = n / 3 + (n % 3 != 0);
  size_t m = xd_mul_size(groups, 4);
  if (groups && !m) return NULL;
  char *o = xd_malloc(m + 1);
  if (!o) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)data[i] << 16;
    if (i + 1 < n) v |= (uint32_t)data[i + 1] << 8;
    if (i + 2 < n) v |= data[i + 2];
    o[k++] = abc[(v >> 18) & 63];
    o[k++] = abc[(v >> 12) & 63];
    o[k++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
    o[k++] = i + 2 < n ? abc[v & 63] : '=';
  }
  o[k] = 0;
  if (out_len) *out_len = k;
  return o;
}
