/* utf8.c — UTF-8 validation (utf8.h). */
#include "api/utf8.h"

#include <string.h>

/* Bytes of the valid UTF-8 sequence at p (at most n bytes available), or 0. Rejects
 * overlong forms, surrogates and code points above U+10FFFF, as jansson does. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  size_t k = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (!k || k > n) return 0;
  for (size_t i = 1; i < k; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  if (c == 0xe0 && p[1] < 0xa0) return 0; /* overlong */
  if (c == 0xed && p[1] > 0x9f) return 0; /* surrogates */
  if (c == 0xf0 && p[1] < 0x90) return 0; /* overlong */
  if (c == 0xf4 && p[1] > 0x8f) return 0; /* above U+10FFFF */
  return k;
}

size_t xd_utf8_valid_prefix(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    size_t k = utf8_seq(p + i, len - i);
    if (!k) return i;
    i += k;
  }
  return len;
}

void xd_utf8_sanitize(char *s) {
  unsigned char *p = (unsigned char *)s;
  size_t n = strlen(s), i = 0;
  while (i < n) {
    size_t k = utf8_seq(p + i, n - i);
    if (!k) {
      p[i] = '?';
      k = 1;
    }
    i += k;
  }
}

