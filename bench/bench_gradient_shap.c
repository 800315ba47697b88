/* bench_gradient_shap.c — /explain/gradient and /explain/shap jobs beside their floors.
 *
 * Each case decodes a real request for breast_cancer (30 -> 64 -> 32 -> 2 relu MLP), runs
 * its parts on 1 and on 2 threads (threads pull parts from a shared counter, as the
 * worker pool does) and encodes the answer: everything the server does except HTTP.
 * Floor = the batched passes the method cannot avoid, on one thread: one
 * xd_model_gradient over all gradient rows (IG: steps + 2 per row; SmoothGrad: samples
 * per row; saliency: 1), or one xd_model_predict over all coalition rows (Kernel SHAP,
 * 50-point background, nsamples auto: 2,108 coalitions x 50 = 105,400 rows). Build from
 * the repository root:
 *   make BUILD=build all && cc -O2 -I. -I/usr/include/x86_64-linux-gnu/openblas-pthread \
 *     -D_GNU_SOURCE -pthread bench/bench_gradient_shap.c build/libxd.a -o build/bench_gradient_shap \
 *     -ljansson -luv -lmicrohttpd -lprotobuf-c -L/usr/lib/x86_64-linux-gnu/openblas-pthread \
 *     -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-pthread -lopenblas -lm
 *   ./build/bench_gradient_shap
 * Prints the median and the minimum (steadier on a shared machine) of RUNS runs, in ms,
 * of wall time and of process CPU time (which other load on the machine does not
 * inflate; with 2 threads it adds both threads). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/bundle.h"
#include "api/endpoints.h"
#include "core/alloc.h"
#include "core/mat.h"

#define RUNS 30

static const char *BC = "[17.99,10.38,122.8,1001,0.1184,0.2776,0.3001,0.1471,0.2419,0.07871,1.095,0.9053,8.589,"
                        "153.4,0.006399,0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,2019,0.1622,"
                        "0.6656,0.7119,0.2654,0.4601,0.1189]";

typedef struct pool {
  const xd_work_t *w;
  atomic_size_t next;
} pool_t;

static void *worker(void *a) {
  pool_t *p = a;
  for (size_t q; (q = atomic_fetch_add(&p->next, 1)) < p->w->n_parts;) {
    xd_error_t err;
    p->w->ops->run(p->w->state, q, NULL, &err);
  }
  return NULL;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* t: wall times, c: CPU times (RUNS each). */
static void report(const char *what, double *t, double *c) {
  qsort(t, RUNS, sizeof *t, cmp_d);
  qsort(c, RUNS, sizeof *c, cmp_d);
  printf("%-42s wall median %8.3f min %8.3f | cpu median %8.3f min %8.3f ms\n", what, t[RUNS / 2], t[0],
         c[RUNS / 2], c[0]);
}

/* One request, end to end minus HTTP, on `threads` threads. */
static double run_job(xd_api_t *api, xd_endpoint_decode_fn decode, const char *body, int threads) {
  double t0 = (double)xd_now_ns();
  json_t *b = json_loads(body, 0, NULL);
  xd_work_t w;
  memset(&w, 0, sizeof w);
  xd_error_t err;
  if (!b || decode(api, b, &w, &err) != XD_OK) {
    fprintf(stderr, "decode failed: %s %s\n", err.field, err.text);
    exit(1);
  }
  pool_t p = {&w, 0};
  pthread_t th[8];
  for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, worker, &p);
  for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
  json_t *out = w.ops->encode(w.state, &err);
  char *txt = json_dumps(out, JSON_COMPACT);
  free(txt);
  json_decref(out);
  w.ops->free(w.state);
  json_decref(b);
  return ((double)xd_now_ns() - t0) / 1e6;
}

static void bench_job(xd_api_t *api, const char *name, xd_endpoint_decode_fn decode, const char *body) {
  double t[RUNS], c[RUNS];
  char label[96];
  for (int threads = 1; threads <= 2; threads++) {
    run_job(api, decode, body, threads); /* warm */
    for (int r = 0; r < RUNS; r++) {
      double c0 = cpu_ms();
      t[r] = run_job(api, decode, body, threads);
      c[r] = cpu_ms() - c0;
    }
    snprintf(label, sizeof label, "%s, %d thread%s", name, threads, threads > 1 ? "s" : "");
    report(label, t, c);
  }
}

/* Floor of a gradient method: one xd_model_gradient over rows encoded rows. */
static void floor_gradient(const xd_model_t *m, size_t rows, const char *name) {
  size_t p = xd_model_n_inputs(m);
  double *E = xd_malloc(rows * p * sizeof *E), *G = xd_malloc(rows * p * sizeof *G), *f = xd_malloc(rows * sizeof *f);
  size_t *tg = xd_calloc(rows, sizeof *tg);
  const xd_dataset_t *bg = xd_model_background(m);
  for (size_t i = 0; i < rows; i++) xd_model_encode_d(m, bg->X + (i % bg->n) * bg->d, 1, E + i * p);
  double t[RUNS], c[RUNS];
  for (int r = 0; r < RUNS; r++) {
    double t0 = (double)xd_now_ns(), c0 = cpu_ms();
    xd_model_gradient(m, E, rows, tg, XD_OUTPUT_PROBABILITY, f, G, NULL, NULL, NULL);
    t[r] = ((double)xd_now_ns() - t0) / 1e6;
    c[r] = cpu_ms() - c0;
  }
  char label[96];
  snprintf(label, sizeof label, "floor: %s (%zu grad rows)", name, rows);
  report(label, t, c);
  xd_free(E), xd_free(G), xd_free(f), xd_free(tg);
}

static void floor_predict(const xd_model_t *m, size_t rows) {
  size_t d = xd_model_n_features(m), k = xd_model_n_outputs(m);
  const xd_dataset_t *bg = xd_model_background(m);
  double *X = xd_malloc(rows * d * sizeof *X), *Y = xd_malloc(rows * k * sizeof *Y);
  for (size_t i = 0; i < rows; i++) memcpy(X + i * d, bg->X + (i % bg->n) * d, d * sizeof *X);
  double t[RUNS], c[RUNS];
  for (int r = 0; r < RUNS; r++) {
    double t0 = (double)xd_now_ns(), c0 = cpu_ms();
    xd_model_predict(m, X, rows, Y, NULL, NULL);
    t[r] = ((double)xd_now_ns() - t0) / 1e6;
    c[r] = cpu_ms() - c0;
  }
  char label[96];
  snprintf(label, sizeof label, "floor: predict (%zu rows)", rows);
  report(label, t, c);
  xd_free(X), xd_free(Y);
}

int main(void) {
  xd_blas_init();
  xd_registry_t *reg = NULL;
  xd_registry_new(&reg);
  xd_model_t *m = NULL;
  xd_error_t err;
  char sha[65];
  int replaced;
  if (xd_bundle_load_file("models/breast_cancer/model.json", &m, sha, &err) != XD_OK) {
    fprintf(stderr, "load: %s\n", err.text);
    return 1;
  }
  xd_registry_put(reg, "breast_cancer", m, sha, NULL, 0, &replaced);
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  xd_api_t *api = NULL;
  xd_api_new(&cfg, reg, &api);

  static char body[64 * 1024];
  size_t len;
  snprintf(body, sizeof body, "{\"model\":\"breast_cancer\",\"instance\":%s}", BC);
  bench_job(api, "IG 50 steps, 1 row", xd_gradient_decode, body);
  floor_gradient(m, 52, "IG 1 row");
  len = (size_t)snprintf(body, sizeof body, "{\"model\":\"breast_cancer\",\"instances\":[");
  for (int i = 0; i < 100; i++) len += (size_t)snprintf(body + len, sizeof body - len, "%s%s", i ? "," : "", BC);
  snprintf(body + len, sizeof body - len, "]}");
  bench_job(api, "IG 50 steps, 100 rows", xd_gradient_decode, body);
  floor_gradient(m, 5200, "IG 100 rows");
  snprintf(body, sizeof body, "{\"model\":\"breast_cancer\",\"instance\":%s,\"method\":\"saliency\"}", BC);
  bench_job(api, "saliency, 1 row", xd_gradient_decode, body);
  floor_gradient(m, 1, "saliency");
  snprintf(body, sizeof body, "{\"model\":\"breast_cancer\",\"instance\":%s,\"method\":\"smoothgrad\",\"seed\":1}", BC);
  bench_job(api, "SmoothGrad 25 samples, 1 row", xd_gradient_decode, body);
  floor_gradient(m, 25, "SmoothGrad");
  snprintf(body, sizeof body, "{\"model\":\"breast_cancer\",\"instance\":%s,\"seed\":1}", BC);
  bench_job(api, "Kernel SHAP auto, bg 50, 1 row", xd_shap_decode, body);
  floor_predict(m, 105400);

  xd_api_free(api);
  xd_registry_free(reg);
  return 0;
}
