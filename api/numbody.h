/* numbody.h — the fast path of request decoding: a JSON object whose members are plain
 * strings, integers and lists of lists of numbers (the body of a /predict request), read
 * straight into doubles without building a jansson document.
 *
 * It is a fast path, not a second JSON parser: it accepts only a strict subset of JSON
 * and answers "not mine" (0) for anything else — escapes or non-ASCII bytes in strings,
 * nested objects, null, true/false, numbers out of range, duplicate or unlisted keys,
 * trailing bytes — so that the caller decodes the body with jansson, which then gives
 * the answer or the error. What it accepts, it reads exactly as jansson does: an integer
 * literal is strtoll'd and converted to double (so "-0" is +0.0, as jansson's integer 0),
 * a real is strtod'd, a literal beyond int64 or a real that overflows is left to jansson
 * (which refuses it). tests/test_numbody.c checks both readings on the same inputs;
 * tests/fuzz/fuzz_numbody.c fuzzes the agreement.
 * Thread-safe; allocates with xd_malloc.
 */
#ifndef XD_API_NUMBODY_H
#define XD_API_NUMBODY_H

#include <stddef.h>
#include <stdint.h>

#define XD_NUMBODY_MAX_KEYS 4

typedef enum xd_numbody_kind { XD_NB_ABSENT = 0, XD_NB_STRING, XD_NB_INTEGER, XD_NB_ROWS } xd_numbody_kind_t;

typedef struct xd_numbody_value {
  xd_numbody_kind_t kind;
  const char *str; /* XD_NB_STRING: points into the body (no escapes), str_len bytes */
  size_t str_len;
  int64_t integer; /* XD_NB_INTEGER */
  /* XD_NB_ROWS: n_rows rows of row_len numbers each (every row the same length, >= 1),
   * row-major in x; is_int[i] is 1 when x[i] was written as an integer literal. */
  size_t n_rows, row_len;
  double *x;
  unsigned char *is_int;
} xd_numbody_value_t;

typedef struct xd_numbody {
  xd_numbody_value_t v[XD_NUMBODY_MAX_KEYS]; /* one per key of the caller's list */
} xd_numbody_t;

/* Reads buf[0..len) when it is an object whose keys are all in keys (NULL-terminated, at
 * most XD_NUMBODY_MAX_KEYS) and whose values are strings, integers or lists of lists of
 * numbers. max_values bounds the numbers read (beyond: 0). Returns 1 with out filled (out->v[k]
 * for keys[k]; deinit it), or 0 with out empty: decode with jansson instead. */
/* m * 10^k as strtod would round it, when that is one exact IEEE operation: m < 2^53 and
 * |k| <= 22 (m and 10^|k| are then exact doubles, and one multiplication or division
 * rounds correctly). Returns 1 with *out set, or 0: use strtod. */
int xd_decimal_exact(uint64_t m, int k, double *out);

int xd_numbody_parse(const char *buf, size_t len, const char *const *keys, size_t max_values, xd_numbody_t *out);
void xd_numbody_deinit(xd_numbody_t *nb);

#endif
