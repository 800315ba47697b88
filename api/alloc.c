/* alloc.c (api/) — jansson's allocator hook and the per-thread JSON OOM count. */
#include "api/alloc.h"

#include <pthread.h>

#include "core/alloc.h"

static _Thread_local unsigned long json_oom; /* JSON allocations failed on this thread */
static _Thread_local unsigned long json_nonfinite; /* non-finite numbers written as null */

static void *json_alloc(size_t n) {
  void *p = xd_malloc(n);
  if (!p) json_oom++;
  return p;
}

static void install(void) { json_set_alloc_funcs(json_alloc, xd_free); }

void xd_api_alloc_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, install);
}

unsigned long xd_json_oom_mark(void) { return json_oom; }
void xd_json_oom_note(void) { json_oom++; }

json_t *xd_json_oom_check(json_t *body, unsigned long mark, xd_error_t *err) {
  if (json_oom == mark) {
    if (!body && err && !err->code) xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
    return body;
  }
  json_decref(body);
  if (err) xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
  return NULL;
}

json_t *xd_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *jerr, int *oom) {
  unsigned long mark = json_oom;
  json_t *doc = json_loadb(buf ? buf : "", len, flags, jerr);
  *oom = json_oom != mark;
  if (*oom) { /* a document parsed around a failed allocation may lack a member */
    json_decref(doc);
    return NULL;
  }
  return doc;
}

char *xd_json_dumps(const json_t *json, size_t flags) {
  unsigned long mark = json_oom;
  char *s = json_dumps(json, flags);
  if (s && json_oom != mark) {
    xd_free(s);
    return NULL;
  }
  return s;
}

void xd_json_nonfinite_note(void) { json_nonfinite++; }
unsigned long xd_json_nonfinite_mark(void) { return json_nonfinite; }

json_t *xd_json_finite_check(json_t *body, unsigned long mark, xd_error_t *err) {
  if (!body || json_nonfinite == mark) return body;
  json_decref(body);
  xd_error_set(err, XD_EINVAL, NULL,
               "a result is not a finite number: the input is outside the range where the model's arithmetic "
               "stays finite (overflow); send smaller magnitudes");
  return NULL;
}
