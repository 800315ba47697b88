/* alloc.h — the one allocator of core/ and api/, with a fault-injection hook.
 *
 * Every heap allocation of core/ and api/ goes through these so that tests can make the
 * Nth allocation fail (as SQLite's fault simulation and jansson's json_set_alloc_funcs)
 * and check that every caller answers with a clean error and leaks nothing.
 * Thread-safe: the countdown is atomic.
 */
#ifndef XD_ALLOC_H
#define XD_ALLOC_H

#include <stddef.h>

void *xd_malloc(size_t n);
void *xd_calloc(size_t count, size_t size); /* overflow-checked */
void *xd_realloc(void *p, size_t n);
void xd_free(void *p);
char *xd_strdup(const char *s);
char *xd_strndup(const char *s, size_t n);

/* Makes the allocation `n` calls from now fail (1 = the next one), then every later one
 * succeed again; n <= 0 disables injection. Returns nothing; tests only. */
void xd_alloc_fail_after(long n);
/* Number of injected failures so far (tests). */
long xd_alloc_failures(void);

/* Checked n*m for allocation sizes: returns 0 on overflow (callers treat 0 as ENOMEM). */
size_t xd_mul_size(size_t n, size_t m);

#endif
