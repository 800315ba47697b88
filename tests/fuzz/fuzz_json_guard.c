/* fuzz_json_guard.c — the JSON expansion guard (api/json_guard.c) on arbitrary bytes: it
 * must never read past the input, and on valid JSON its estimate must cover every value
 * jansson creates (it counts the same tokens; a string's raw length is at least its
 * decoded one), so the guard can never wave through a body it under-counted. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_guard.h"
#include "tests/fuzz/fuzz.h"

/* The per-value costs json_guard.c charges, for the check below. */
enum { OBJ = 240, ARR = 144, NUM = 48, STR = 96, LIT = 16 };

static size_t tree_cost(const json_t *v) {
  size_t c = 0;
  switch (json_typeof(v)) {
    case JSON_OBJECT: {
      const char *k;
      json_t *x;
      c += OBJ;
      json_object_foreach((json_t *)v, k, x) c += STR + strlen(k) + tree_cost(x);
      break;
    }
    case JSON_ARRAY:
      c += ARR;
      for (size_t i = 0; i < json_array_size(v); i++) c += tree_cost(json_array_get(v, i));
      break;
    case JSON_STRING: c += STR + json_string_length(v); break;
    case JSON_INTEGER:
    case JSON_REAL: c += NUM; break;
    default: c += LIT; break;
  }
  return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* an exact-size copy, so that a read past the end is caught */
  char *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  xd_error_t err;
  xd_error_clear(&err);
  (void)xd_json_guard(buf, size, &err);
  size_t est = xd_json_guard_estimate(buf, size, SIZE_MAX);
  (void)xd_json_guard_estimate(buf, size, 100); /* the early exit */
  json_error_t jerr;
  json_t *doc = size < 65536 ? json_loadb(buf, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr) : NULL;
  if (doc && est < tree_cost(doc)) abort();
  json_decref(doc);
  free(buf);
  return 0;
}
