/* fuzz_shards.c — the merge of shard documents (`explaind jobs merge`, and a server job's
 * parts: api/jobspec.h xd_jobspec_merge_shards, api/importance.h xd_pdp_merge and
 * xd_importance_merge): for any lines, each read as JSON, the merge answers an object or
 * NULL with an error set, and never reads out of bounds whatever the sizes and block
 * ranges the documents claim. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/jobspec.h"
#include "core/status.h"
#include "tests/fuzz/fuzz.h"

#define MAX_DOCS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  json_t *docs[MAX_DOCS];
  size_t n = 0;
  for (size_t p = 0; p < size && n < MAX_DOCS;) {
    const char *nl = memchr(text + p, '\n', size - p);
    size_t l = nl ? (size_t)(nl - (text + p)) : size - p;
    json_t *d = json_loadb(text + p, l, 0, NULL);
    if (d) docs[n++] = d;
    p += l + 1;
  }
  if (n > 0) {
    xd_error_t err;
    xd_error_clear(&err);
    json_t *out = xd_jobspec_merge_shards(docs, n, &err);
    if (out ? !json_is_object(out) : err.code == XD_OK) abort();
    json_decref(out);
  }
  for (size_t i = 0; i < n; i++) json_decref(docs[i]);
  return 0;
}
