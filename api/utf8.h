/* utf8.h — UTF-8 checks for text that ends up in JSON (bundles, answers, error texts):
 * jansson refuses invalid UTF-8, so text from binary input is checked or mended first.
 * Pure functions; any thread. */
#ifndef XD_API_UTF8_H
#define XD_API_UTF8_H

#include <stddef.h>

/* Length of the longest prefix of s[0..len) that is valid UTF-8 (len when all of it is).
 * Rejects overlong forms, surrogates and code points above U+10FFFF, as jansson does. */
size_t xd_utf8_valid_prefix(const char *s, size_t len);

/* Replaces every byte of s (NUL-terminated) that is not part of valid UTF-8 by '?', in
 * place: for error texts that quote names from binary input (ONNX node names). */
void xd_utf8_sanitize(char *s);

#endif
