/* unicode.h — the character properties the text tokenizer needs, and UTF-8.
 *
 * Properties come from the Unicode Character Database (core/unicode_tables.c, generated
 * by tools/make_unicode_tables.py; xd_uni_version() names the version):
 *   XD_UNI_WHITE_SPACE   White_Space (Rust's char::is_whitespace, regex \s)
 *   XD_UNI_ALPHABETIC    Alphabetic
 *   XD_UNI_JOIN_CONTROL  Join_Control
 *   XD_UNI_MARK_NONSPACING  general category Mn
 *   XD_UNI_MARK          Mn, Mc or Me
 *   XD_UNI_PUNCT         P* (Pc, Pd, Ps, Pe, Pi, Pf, Po)
 *   XD_UNI_OTHER         Cc, Cf or Co
 *   XD_UNI_DIGIT         Nd
 *   XD_UNI_CONNECTOR     Pc
 * A regex word character (\w, Unicode-aware as in Rust's regex crate) is Alphabetic, a
 * mark, Nd, Pc or Join_Control: xd_uni_is_word.
 *
 * All functions are pure and thread-safe.
 */
#ifndef XD_UNICODE_H
#define XD_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum {
  XD_UNI_WHITE_SPACE = 1 << 0,
  XD_UNI_ALPHABETIC = 1 << 1,
  XD_UNI_JOIN_CONTROL = 1 << 2,
  XD_UNI_MARK_NONSPACING = 1 << 3,
  XD_UNI_MARK = 1 << 4,
  XD_UNI_PUNCT = 1 << 5,
  XD_UNI_OTHER = 1 << 6,
  XD_UNI_DIGIT = 1 << 7,
  XD_UNI_CONNECTOR = 1 << 8,
};

/* Longest canonical decomposition of one code point (U+FDFA has none canonical; the
 * longest canonical ones are 4). */
#define XD_UNI_MAX_DECOMP 4
/* Longest full lowercase mapping. */
#define XD_UNI_MAX_LOWER 3

const char *xd_uni_version(void);

/* The XD_UNI_* flags of code point c (0 for most letters outside the flag set). */
unsigned xd_uni_flags(uint32_t c);
int xd_uni_is_word(uint32_t c);
/* Canonical combining class (0 for starters). */
unsigned xd_uni_ccc(uint32_t c);
/* Full canonical decomposition of c into out (XD_UNI_MAX_DECOMP); returns the count
 * (1 and out[0] = c when c does not decompose). Hangul syllables decompose
 * algorithmically into their jamo. */
size_t xd_uni_decompose(uint32_t c, uint32_t *out);
/* Full lowercase of c into out (XD_UNI_MAX_LOWER), Rust's char::to_lowercase: returns the
 * count (1 and out[0] = c when unchanged). */
size_t xd_uni_lower(uint32_t c, uint32_t *out);

/* Decodes UTF-8 s[0..n) into code points cp (room for n) and each one's byte offset
 * (may be NULL). Strict: no overlong forms, no surrogates, nothing above U+10FFFF.
 * Returns the number of code points, or -1 with *bad_at the byte offset of the first
 * invalid sequence. */
long xd_utf8_decode(const char *s, size_t n, uint32_t *cp, size_t *byte_off, size_t *bad_at);
/* Bytes of the UTF-8 encoding of c (1..4) written to out (4 bytes of room). */
size_t xd_utf8_encode(uint32_t c, char *out);

#endif
