/* registry.c — name -> reference-counted model entry. A mutex guards the table only;
 * entries are immutable, so a request holding a reference reads its model lock-free. */
#include "api/registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"

struct xd_registry {
  pthread_mutex_t mu;
  xd_model_entry_t **e;
  size_t n, cap;
};

int xd_model_name_valid(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > XD_MODEL_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) return 0;
  }
  return 1;
}

int xd_registry_new(xd_registry_t **out) {
  xd_registry_t *r = xd_calloc(1, sizeof *r);
  if (!r) return XD_ENOMEM;
  pthread_mutex_init(&r->mu, NULL);
  *out = r;
  return XD_OK;
}

void xd_model_entry_release(xd_model_entry_t *e) {
  if (!e) return;
  if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
    xd_model_free(e->model);
    xd_free(e->source);
    xd_free(e);
  }
}

void xd_registry_free(xd_registry_t *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n; i++) xd_model_entry_release(r->e[i]);
  xd_free(r->e);
  pthread_mutex_destroy(&r->mu);
  xd_free(r);
}

static long find(xd_registry_t *r, const char *name) {
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->e[i]->name, name) == 0) return (long)i;
  return -1;
}

xd_model_entry_t *xd_registry_get(xd_registry_t *r, const char *name) {
  pthread_mutex_lock(&r->mu);
  long i = find(r, name);
  xd_model_entry_t *e = i >= 0 ? r->e[i] : NULL;
  if (e) atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&r->mu);
  return e;
}

int xd_registry_put(xd_registry_t *r, const char *name, xd_model_t *model, const char *sha256, const char *source,
                    uint64_t version, int *replaced) {
  if (replaced) *replaced = 0;
  if (!xd_model_name_valid(name)) {
    xd_model_free(model);
    return XD_EINVAL;
  }
  xd_model_entry_t *e = xd_calloc(1, sizeof *e);
  char *src = source ? xd_strdup(source) : NULL;
  if (!e || (source && !src)) {
    xd_free(e);
    xd_free(src);
    xd_model_free(model);
    return XD_ENOMEM;
  }
  strcpy(e->name, name);
  e->model = model;
  e->source = src;
  snprintf(e->sha256, sizeof e->sha256, "%s", sha256 ? sha256 : "");
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  e->loaded_at = (double)ts.tv_sec + ts.tv_nsec / 1e9;
  atomic_init(&e->refs, 1);
  pthread_mutex_lock(&r->mu);
  long i = find(r, name);
  if (i >= 0) {
    xd_model_entry_t *old = r->e[i];
    e->version = version ? version : old->version + 1;
    r->e[i] = e;
    pthread_mutex_unlock(&r->mu);
    if (replaced) *replaced = 1;
    xd_model_entry_release(old); /* in-flight users keep it alive until they finish */
    return XD_OK;
  }
  if (r->n == r->cap) {
    size_t nc = r->cap ? r->cap * 2 : 16;
    xd_model_entry_t **g = xd_realloc(r->e, nc * sizeof *g);
    if (!g) {
      pthread_mutex_unlock(&r->mu);
      xd_model_entry_release(e);
      return XD_ENOMEM;
    }
    r->e = g;
    r->cap = nc;
  }
  e->version = version ? version : 1;
  r->e[r->n++] = e;
  pthread_mutex_unlock(&r->mu);
  return XD_OK;
}

int xd_registry_remove(xd_registry_t *r, const char *name) {
  pthread_mutex_lock(&r->mu);
  long i = find(r, name);
  if (i < 0) {
    pthread_mutex_unlock(&r->mu);
    return XD_ENOTFOUND;
  }
  xd_model_entry_t *e = r->e[i];
  r->e[i] = r->e[--r->n];
  pthread_mutex_unlock(&r->mu);
  xd_model_entry_release(e);
  return XD_OK;
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(xd_model_entry_t *const *)a)->name, (*(xd_model_entry_t *const *)b)->name);
}

int xd_registry_list(xd_registry_t *r, xd_model_entry_t ***out, size_t *n) {
  pthread_mutex_lock(&r->mu);
  xd_model_entry_t **a = xd_malloc((r->n ? r->n : 1) * sizeof *a);
  if (!a) {
    pthread_mutex_unlock(&r->mu);
    return XD_ENOMEM;
  }
  for (size_t i = 0; i < r->n; i++) {
    a[i] = r->e[i];
    atomic_fetch_add_explicit(&a[i]->refs, 1, memory_order_relaxed);
  }
  *n = r->n;
  pthread_mutex_unlock(&r->mu);
  qsort(a, *n, sizeof *a, by_name);
  *out = a;
  return XD_OK;
}

size_t xd_registry_count(xd_registry_t *r) {
  pthread_mutex_lock(&r->mu);
  size_t n = r->n;
  pthread_mutex_unlock(&r->mu);
  return n;
}
