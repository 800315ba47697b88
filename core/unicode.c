/* unicode.c — lookups in the generated Unicode tables (binary search over sorted ranges
 * and maps), Hangul decomposition, and strict UTF-8. */
#include "core/unicode.h"

#include "core/unicode_int.h"

const char *xd_uni_version(void) { return xd_uni_data_version; }

/* Value of the range holding c, or 0. */
static uint32_t range_value(const xd_uni_range_t *r, size_t n, uint32_t c) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c < r[mid].lo) hi = mid;
    else if (c > r[mid].hi) lo = mid + 1;
    else return r[mid].value;
  }
  return 0;
}

static const xd_uni_map_t *map_find(const xd_uni_map_t *m, size_t n, uint32_t c) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c < m[mid].cp) hi = mid;
    else if (c > m[mid].cp) lo = mid + 1;
    else return &m[mid];
  }
  return NULL;
}

unsigned xd_uni_flags(uint32_t c) {
  if (c < 0x80) { /* ASCII fast path, same answers as the table */
    if (c == ' ' || (c >= 0x09 && c <= 0x0d)) return XD_UNI_WHITE_SPACE | (c == ' ' ? 0 : XD_UNI_OTHER);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return XD_UNI_ALPHABETIC;
  }
  return range_value(xd_uni_flag_ranges, xd_uni_n_flag_ranges, c);
}

int xd_uni_is_word(uint32_t c) {
  return (xd_uni_flags(c) &
          (XD_UNI_ALPHABETIC | XD_UNI_MARK | XD_UNI_DIGIT | XD_UNI_CONNECTOR | XD_UNI_JOIN_CONTROL)) != 0;
}

unsigned xd_uni_ccc(uint32_t c) { return c < 0x300 ? 0 : range_value(xd_uni_ccc_ranges, xd_uni_n_ccc_ranges, c); }

/* Hangul syllables (Unicode 3.12): S = SBase + (L * VCount + V) * TCount + T. */
enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, VCOUNT = 21, TCOUNT = 28, SCOUNT = 11172 };

size_t xd_uni_decompose(uint32_t c, uint32_t *out) {
  if (c >= SBASE && c < SBASE + SCOUNT) {
    uint32_t s = c - SBASE;
    out[0] = LBASE + s / (VCOUNT * TCOUNT);
    out[1] = VBASE + (s % (VCOUNT * TCOUNT)) / TCOUNT;
    if (s % TCOUNT == 0) return 2;
    out[2] = TBASE + s % TCOUNT;
    return 3;
  }
  const xd_uni_map_t *m = c < 0xc0 ? NULL : map_find(xd_uni_decomp, xd_uni_n_decomp, c);
  if (!m || m->len > XD_UNI_MAX_DECOMP) {
    out[0] = c;
    return 1;
  }
  for (uint32_t k = 0; k < m->len; k++) out[k] = xd_uni_decomp_pool[m->off + k];
  return m->len;
}

size_t xd_uni_lower(uint32_t c, uint32_t *out) {
  if (c < 0x80) {
    out[0] = c >= 'A' && c <= 'Z' ? c + 32 : c;
    return 1;
  }
  const xd_uni_map_t *m = map_find(xd_uni_lower_map, xd_uni_n_lower, c);
  if (!m || m->len > XD_UNI_MAX_LOWER) {
    out[0] = c;
    return 1;
  }
  for (uint32_t k = 0; k < m->len; k++) out[k] = xd_uni_lower_pool[m->off + k];
  return m->len;
}

long xd_utf8_decode(const char *str, size_t n, uint32_t *cp, size_t *byte_off, size_t *bad_at) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, k = 0;
  while (i < n) {
    unsigned char b = s[i];
    uint32_t c;
    size_t len;
    if (b < 0x80) c = b, len = 1;
    else if (b >= 0xc2 && b <= 0xdf) c = b & 0x1f, len = 2;
    else if (b >= 0xe0 && b <= 0xef) c = b & 0x0f, len = 3;
    else if (b >= 0xf0 && b <= 0xf4) c = b & 0x07, len = 4;
    else goto bad;
    if (i + len > n) goto bad;
    for (size_t j = 1; j < len; j++) {
      if ((s[i + j] & 0xc0) != 0x80) goto bad;
      c = (c << 6) | (s[i + j] & 0x3f);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff))
      goto bad;
    if (byte_off) byte_off[k] = i;
    cp[k++] = c;
    i += len;
  }
  return (long)k;
bad:
  if (bad_at) *bad_at = i;
  return -1;
}

size_t xd_utf8_encode(uint32_t c, char *out) {
  unsigned char *o = (unsigned char *)out;
  if (c < 0x80) {
    o[0] = (unsigned char)c;
    return 1;
  }
  if (c < 0x800) {
    o[0] = (unsigned char)(0xc0 | (c >> 6));
    o[1] = (unsigned char)(0x80 | (c & 0x3f));
    return 2;
  }
  if (c < 0x10000) {
    o[0] = (unsigned char)(0xe0 | (c >> 12));
    o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
    o[2] = (unsigned char)(0x80 | (c & 0x3f));
    return 3;
  }
  o[0] = (unsigned char)(0xf0 | (c >> 18));
  o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
  o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
  o[3] = (unsigned char)(0x80 | (c & 0x3f));
  return 4;
}
