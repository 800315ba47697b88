/* alloc.c — malloc wrappers with an injectable failure countdown. */
#include "core/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown; /* 0 = off; k > 0: the k-th next call fails */
static atomic_long fail_count;

static int should_fail(void) {
  long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
  if (c <= 0) return 0;
  /* Only the thread that moves the counter from 1 to 0 fails. */
  while (c > 0) {
    if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1)) {
      if (c == 1) {
        atomic_fetch_add(&fail_count, 1);
        return 1;
      }
      return 0;
    }
  }
  return 0;
}

void xd_alloc_fail_after(long n) { atomic_store(&fail_countdown, n > 0 ? n : 0); }
long xd_alloc_failures(void) { return atomic_load(&fail_count); }

size_t xd_mul_size(size_t n, size_t m) {
  if (n && m > SIZE_MAX / n) return 0;
  return n * m;
}

void *xd_malloc(size_t n) {
  if (should_fail()) return NULL;
  return malloc(n ? n : 1);
}

void *xd_calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  if (should_fail()) return NULL;
  return calloc(count ? count : 1, size ? size : 1);
}

void *xd_realloc(void *p, size_t n) {
  if (should_fail()) return NULL;
  return realloc(p, n ? n : 1);
}

void xd_free(void *p) { free(p); }

char *xd_strndup(const char *s, size_t n) {
  char *d = xd_malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *xd_strdup(const char *s) { return xd_strndup(s, strlen(s)); }
