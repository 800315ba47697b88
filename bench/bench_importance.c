/* bench_importance.c — permutation importance and PDP beside their floors.
 *
 * Floor = the batched forward passes the method cannot avoid: one xd_model_predict over
 * all the model rows it evaluates (breast_cancer, 5 repeats x 30 columns x 143 rows =
 * 21,450 rows; a 100-point PDP over the 143 background rows = 14,300 rows). The method
 * runs its parts on 1 and on 2 threads (parts q, q+T, ... on thread q), as the worker
 * pool would. Build from the repository root:
 *   make BUILD=build all && cc -O2 -I. -I/usr/include/x86_64-linux-gnu/openblas-pthread \
 *     -D_GNU_SOURCE -pthread bench/bench_importance.c build/libxd.a -o build/bench_importance \
 *     -ljansson -luv -lmicrohttpd -L/usr/lib/x86_64-linux-gnu/openblas-pthread \
 *     -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-pthread -lopenblas -lm
 *   ./build/bench_importance
 * Prints the median (and the minimum, steadier on a shared machine) of 30 runs of each,
 * in milliseconds. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/bundle.h"
#include "core/alloc.h"
#include "core/importance.h"
#include "core/mat.h"
#include "core/pdp.h"

#define RUNS 30

typedef struct {
  int (*run)(void *s, size_t part);
  void *s;
  size_t parts, first, stride;
} job_t;

static void *worker(void *a) {
  job_t *j = a;
  for (size_t q = j->first; q < j->parts; q += j->stride) j->run(j->s, q);
  return NULL;
}

static void run_parts(int (*run)(void *, size_t), void *s, size_t parts, size_t threads) {
  pthread_t t[8];
  job_t j[8];
  for (size_t i = 0; i < threads; i++) {
    j[i] = (job_t){run, s, parts, i, threads};
    pthread_create(&t[i], NULL, worker, &j[i]);
  }
  for (size_t i = 0; i < threads; i++) pthread_join(t[i], NULL);
}

static int perm_part(void *s, size_t q) { return xd_imp_perm_run(s, q, NULL, NULL); }
static int pdp_part(void *s, size_t q) { return xd_pdp_run(s, q, NULL, NULL); }

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_d);
  return v[n / 2];
}

/* min of the last median() call's (sorted) array */
#define MIN_OF(v) ((v)[0])

typedef struct {
  const xd_model_t *m;
  const double *X;
  size_t n;
  double *P;
} floor_t;

static int floor_part(void *s, size_t q) {
  floor_t *f = s;
  size_t d = xd_model_n_features(f->m), k = xd_model_n_outputs(f->m);
  size_t half = f->n / 2, r0 = q ? half : 0, nr = q ? f->n - half : half;
  return xd_model_predict(f->m, f->X + r0 * d, nr, f->P + r0 * k, NULL, NULL);
}

int main(void) {
  xd_blas_init();
  xd_model_t *m = NULL;
  xd_error_t err;
  if (xd_bundle_load_file("models/breast_cancer/model.json", &m, NULL, &err) != XD_OK) {
    fprintf(stderr, "load: %s\n", err.text);
    return 1;
  }
  const xd_dataset_t *bg = xd_model_background(m);
  const size_t n = bg->n, d = xd_model_n_features(m), k = xd_model_n_outputs(m), R = 5;

  /* Floor input: exactly the rows the method evaluates, every permuted copy of every
   * column stacked. (The values matter for speed: a forward over identical repeated
   * rows runs faster, its ReLU branches being predictable.) */
  size_t rows = d * R * n;
  double *X = xd_malloc(rows * d * sizeof *X), *P = xd_malloc(rows * k * sizeof *P);
  {
    xd_imp_perm_t p;
    xd_imp_perm_init(&p, m, bg->X, bg->y, n, XD_IMP_ACCURACY, R, n, 0, NULL);
    for (size_t j = 0; j < d; j++)
      for (size_t r = 0; r < R; r++) {
        double *blk = X + (j * R + r) * n * d;
        memcpy(blk, bg->X, n * d * sizeof *X);
        for (size_t i = 0; i < n; i++) blk[i * d + j] = bg->X[p.src[r * n + i] * d + j];
      }
    xd_imp_perm_deinit(&p);
  }
  double t[RUNS];
  for (size_t threads = 1; threads <= 2; threads++) {
    floor_t f = {m, X, rows, P};
    for (int i = 0; i < RUNS; i++) {
      int64_t t0 = xd_now_ns();
      if (threads == 1)
        xd_model_predict(m, X, rows, P, NULL, NULL);
      else
        run_parts(floor_part, &f, 2, 2);
      t[i] = (double)(xd_now_ns() - t0) / 1e6;
    }
    double fl = median(t, RUNS), fl_min = MIN_OF(t);
    for (int i = 0; i < RUNS; i++) {
      int64_t t0 = xd_now_ns();
      xd_imp_perm_t p;
      xd_imp_perm_init(&p, m, bg->X, bg->y, n, XD_IMP_ACCURACY, R, n, 0, NULL);
      run_parts(perm_part, &p, xd_imp_perm_parts(&p), threads);
      xd_imp_perm_deinit(&p);
      t[i] = (double)(xd_now_ns() - t0) / 1e6;
    }
    double pm = median(t, RUNS), pm_min = MIN_OF(t);
    printf("permutation breast_cancer 5x30x143 = %zu rows, %zu thread(s): median %.3f ms (floor %.3f, ratio %.2f); "
           "min %.3f ms (floor %.3f, ratio %.2f)\n",
           rows, threads, pm, fl, pm / fl, pm_min, fl_min, pm_min / fl_min);
  }

  /* PDP: 100 grid points x 143 rows, the floor over the same rows */
  size_t prow = 100 * n;
  {
    double *v = NULL;
    size_t nv = 0;
    xd_pdp_grid(m, bg->X, n, 0, 100, 0.05, 0.95, &v, &nv, NULL);
    for (size_t g = 0; g < 100; g++) {
      double *blk = X + g * n * d;
      memcpy(blk, bg->X, n * d * sizeof *X);
      for (size_t i = 0; i < n; i++) blk[i * d] = v[g];
    }
    xd_free(v);
  }
  for (size_t threads = 1; threads <= 2; threads++) {
    floor_t f = {m, X, prow, P};
    for (int i = 0; i < RUNS; i++) {
      int64_t t0 = xd_now_ns();
      if (threads == 1)
        xd_model_predict(m, X, prow, P, NULL, NULL);
      else
        run_parts(floor_part, &f, 2, 2);
      t[i] = (double)(xd_now_ns() - t0) / 1e6;
    }
    double fl = median(t, RUNS), fl_min = MIN_OF(t);
    size_t j = 0;
    for (int i = 0; i < RUNS; i++) {
      int64_t t0 = xd_now_ns();
      xd_pdp_t p;
      xd_pdp_init(&p, m, bg->X, n, &j, 1, 100, 0.05, 0.95, 0, 0, NULL);
      run_parts(pdp_part, &p, xd_pdp_parts(&p), threads);
      xd_pdp_deinit(&p);
      t[i] = (double)(xd_now_ns() - t0) / 1e6;
    }
    double pm = median(t, RUNS), pm_min = MIN_OF(t);
    printf("pdp breast_cancer 100 x 143 = %zu rows, %zu thread(s): median %.3f ms (floor %.3f, ratio %.2f); "
           "min %.3f ms (floor %.3f, ratio %.2f)\n",
           prow, threads, pm, fl, pm / fl, pm_min, fl_min, pm_min / fl_min);
  }
  xd_free(X);
  xd_free(P);
  xd_model_free(m);
  return 0;
}
