/* kern_testlib.h — helpers shared by tests/test_kern.c and tests/test_kern_rnn.c: random
 * arrays, relative differences, and central finite differences of a scalar loss. Static
 * functions in a header: each test program is one translation unit that includes it. */
#ifndef XD_KERN_TESTLIB_H
#define XD_KERN_TESTLIB_H

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"

static xd_rng_t rng;

static inline double *dvec(size_t n) {
  double *a = xd_malloc((n ? n : 1) * sizeof *a);
  for (size_t i = 0; i < n; i++) a[i] = xd_rng_uniform(&rng) * 2 - 1;
  return a;
}
static inline double *dzeros(size_t n) { return xd_calloc(n ? n : 1, sizeof(double)); }
static inline float *fcopy(const double *a, size_t n) {
  float *f = xd_malloc((n ? n : 1) * sizeof *f);
  for (size_t i = 0; i < n; i++) f[i] = (float)a[i];
  return f;
}
static inline double *dcopy(const double *a, size_t n) {
  double *d = xd_malloc((n ? n : 1) * sizeof *d);
  memcpy(d, a, n * sizeof *d);
  return d;
}
static inline double max_rel_diff_fd(const float *a, const double *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]) / (1 + fabs(b[i]));
    if (!(d <= m)) m = d; /* NaN sticks */
  }
  return m;
}
static inline double max_rel_diff_dd(const double *a, const double *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]) / (1 + fabs(b[i]));
    if (!(d <= m)) m = d;
  }
  return m;
}

/* Central differences of loss() = Σ y·g with respect to param[i], for up to `probes`
 * indices spread over the array, against grad[i]. Returns the worst relative error. */
typedef double (*loss_fn)(void *ctx);
static inline double fd_check(loss_fn loss, void *ctx, double *param, size_t n, const double *grad, size_t probes) {
  double worst = 0, h = 1e-6;
  size_t step = n > probes ? n / probes : 1;
  for (size_t i = 0; i < n; i += step) {
    double keep = param[i];
    param[i] = keep + h;
    double lp = loss(ctx);
    param[i] = keep - h;
    double lm = loss(ctx);
    param[i] = keep;
    double fd = (lp - lm) / (2 * h), e = fabs(fd - grad[i]) / (1e-3 + fabs(fd) + fabs(grad[i]));
    if (!(e <= worst)) worst = e;
  }
  return worst;
}
static inline double dot(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

#define FD_TOL 1e-5 /* relative, with a floor of 1e-3: central differences at h = 1e-6 in double */

#endif
