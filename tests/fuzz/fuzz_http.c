/* fuzz_http.c — the router as the HTTP layer drives it, with synthetic requests:
 * "METHOD PATH[?QUERY]\n(Header: value\n)*\nBODY". Covers routing, 404/405, auth (an admin key
 * "k" and a read key "r" are configured), model management without a model folder (no
 * disk writes), the service endpoints, metrics and the V2 routes. */
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/mat.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_api.h"

typedef struct hdrs {
  char names[8][64], values[8][256];
  int n;
} hdrs_t;

static const char *lookup(void *ctx, const char *name) {
  hdrs_t *h = ctx;
  for (int i = 0; i < h->n; i++)
    if (strcasecmp(h->names[i], name) == 0) return h->values[i];
  return NULL;
}

static const char *const keys[] = {"r"};

static xd_api_t *setup(void) { return xd_fuzz_api(keys, 1, "k"); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  xd_api_t *api = setup();
  char line[512];
  const char *p = (const char *)data, *end = p + size;
  const char *nl = memchr(p, '\n', size);
  size_t ll = nl ? (size_t)(nl - p) : size;
  if (ll >= sizeof line || memchr(p, '\0', ll)) return 0;
  memcpy(line, p, ll);
  line[ll] = '\0';
  char *sp = strchr(line, ' ');
  if (!sp) return 0;
  *sp = '\0';
  const char *method = line, *path = sp + 1, *query = NULL;
  char *qm = strchr(sp + 1, '?'); /* "PATH?QUERY": the query string as the HTTP layer splits it */
  if (qm) {
    *qm = '\0';
    query = qm + 1;
  }
  hdrs_t h = {.n = 0};
  p = nl ? nl + 1 : end;
  while (p < end && *p != '\n' && h.n < 8) {
    const char *e = memchr(p, '\n', (size_t)(end - p));
    size_t l = e ? (size_t)(e - p) : (size_t)(end - p);
    const char *colon = memchr(p, ':', l);
    if (colon && (size_t)(colon - p) < 64 && l - (size_t)(colon - p) < 256) {
      memcpy(h.names[h.n], p, (size_t)(colon - p));
      h.names[h.n][colon - p] = '\0';
      const char *v = colon + 1;
      while (v < p + l && *v == ' ') v++;
      memcpy(h.values[h.n], v, (size_t)(p + l - v));
      h.values[h.n][p + l - v] = '\0';
      h.n++;
    }
    p = e ? e + 1 : end;
  }
  if (p < end && *p == '\n') p++;
  xd_api_request_t req = {method, path, query, p, (size_t)(end - p), lookup, &h};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  /* A generous deadline, as a worker would have, so slow inputs end as 504. */
  xd_cancel_t cancel = {NULL, xd_now_ns() + 2000000000LL};
  xd_api_handle_sync(api, &req, &resp, &cancel);
  if (resp.status == 500) __builtin_trap();
  xd_api_response_deinit(&resp);
  return 0;
}
