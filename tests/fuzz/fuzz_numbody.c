/* fuzz_numbody.c — the request decoder's fast path (api/numbody.h) against jansson: for
 * any input the fast path takes, jansson must parse it too and read every number to the
 * same bits; a disagreement aborts. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/numbody.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const keys[] = {"model", "instances", "timeout_ms", NULL};
  xd_numbody_t nb;
  if (!xd_numbody_parse((const char *)data, size, keys, size, &nb)) return 0;
  json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
  if (!doc) abort(); /* taken by the fast path, refused by jansson */
  const xd_numbody_value_t *v = &nb.v[1];
  if (v->kind == XD_NB_ROWS) {
    json_t *rows = json_object_get(doc, "instances");
    if (json_array_size(rows) != v->n_rows) abort();
    for (size_t i = 0; i < v->n_rows; i++) {
      json_t *row = json_array_get(rows, i);
      if (json_array_size(row) != v->row_len) abort();
      for (size_t k = 0; k < v->row_len; k++) {
        double want = json_number_value(json_array_get(row, k)), got = v->x[i * v->row_len + k];
        if (memcmp(&want, &got, sizeof want) != 0) abort();
      }
    }
  }
  json_decref(doc);
  xd_numbody_deinit(&nb);
  return 0;
}
