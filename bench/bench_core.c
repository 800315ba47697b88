/* bench_core.c — in-process microbenchmarks of explaind's core, each beside its floor.
 *
 * Prints one JSON object per line (bench/report.c turns them into bench/RESULTS.md):
 *   {"id":..., "group":..., "label":..., "threads":T, "runs":N, "median_ms":..., "p99_ms":...,
 *    "min_ms":..., "per_s":..., "rows":R, "flop":F, "floor":"<id of the floor line>"}
 * A measurement runs its operation on T threads at once for a time budget (each thread
 * loops; per_s counts completed operations per second of wall time, median/p99 are over
 * the per-operation latencies of all threads). A "job" operation is a real request for
 * breast_cancer (30 -> 64 -> 32 -> 2 relu MLP) run as the server runs it minus HTTP:
 * decode on the calling thread, the parts pulled from a shared counter by T persistent
 * workers (as the libuv pool does), then encode and json_dumps. A floor is the batched
 * model evaluation the method cannot avoid: xd_model_predict over the job's cost_rows
 * (sampling methods), or xd_model_gradient over them (gradient methods), on the same
 * thread count (2 threads: the rows split in halves).
 *
 * Usage (from the repository root):
 *   bench_core                 all benchmarks (BENCH_SCALE=0.2 shortens every budget)
 *   bench_core --bodies DIR    write the request bodies (the HTTP load uses the same ones)
 *   bench_core --machine       the OpenBLAS configuration as one JSON line
 *   bench_core --free-port     a free loopback TCP port (bound, then released)
 * Built by `make bench` into $(BUILD)/bench/bench_core. Single-threaded OpenBLAS
 * (xd_blas_init), as in the server. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/bundle.h"
#include "api/endpoints.h"
#include "api/registry.h"
#include "core/alloc.h"
#include "core/kern.h"
#include "core/lime.h"
#include "core/mat.h"
#include "core/model.h"

#define MAXT 2
static double scale = 1.0; /* BENCH_SCALE */
static xd_api_t *api;
static xd_model_t *model;

/* ---- timing --------------------------------------------------------------------------- */

static double now_s(void) { return (double)xd_now_ns() / 1e9; }

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct stats {
  size_t runs;
  double median, p99, min, per_s; /* ms, ms, ms, ops/s */
  double cpu_ms;                  /* process CPU time per operation, all threads: load-independent */
} stats_t;

static double cpu_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef void (*op_fn)(void *ctx, int tid);

typedef struct run_arg {
  op_fn op;
  void *ctx;
  int tid;
  double budget, start;
  size_t min_runs, max_runs, n;
  double *lat; /* ms */
  double end, cpu0;
  pthread_barrier_t *bar;
} run_arg_t;

static void *runner(void *a) {
  run_arg_t *r = a;
  pthread_barrier_wait(r->bar);
  double t0 = now_s();
  r->start = t0;
  r->op(r->ctx, r->tid); /* warm-up, not counted: first-touch pages, caches */
  pthread_barrier_wait(r->bar);
  if (r->tid == 0) r->cpu0 = cpu_now_ms();
  t0 = now_s();
  r->start = t0;
  while (r->n < r->max_runs && (r->n < r->min_runs || now_s() - t0 < r->budget)) {
    double s = now_s();
    r->op(r->ctx, r->tid);
    r->lat[r->n++] = (now_s() - s) * 1e3;
  }
  r->end = now_s();
  return NULL;
}

/* Runs op on `threads` threads at once for about budget seconds (scaled), at least
 * min_runs and at most max_runs times per thread. */
static stats_t measure(op_fn op, void *ctx, int threads, double budget, size_t min_runs, size_t max_runs) {
  run_arg_t r[MAXT];
  pthread_t th[MAXT];
  pthread_barrier_t bar;
  budget *= scale;
  if (scale < 1 && min_runs > 3) min_runs = (size_t)((double)min_runs * scale) + 3;
  pthread_barrier_init(&bar, NULL, (unsigned)threads);
  for (int t = 0; t < threads; t++) {
    r[t] = (run_arg_t){op, ctx, t, budget, 0, min_runs, max_runs, 0, malloc(max_runs * sizeof(double)), 0, 0, &bar};
    if (t) pthread_create(&th[t], NULL, runner, &r[t]);
  }
  runner(&r[0]);
  for (int t = 1; t < threads; t++) pthread_join(th[t], NULL);
  double cpu = cpu_now_ms() - r[0].cpu0;
  pthread_barrier_destroy(&bar);
  size_t n = 0;
  double start = r[0].start, end = r[0].end;
  for (int t = 0; t < threads; t++) {
    n += r[t].n;
    start = r[t].start < start ? r[t].start : start;
    end = r[t].end > end ? r[t].end : end;
  }
  double *all = malloc(n * sizeof *all);
  n = 0;
  for (int t = 0; t < threads; t++) {
    memcpy(all + n, r[t].lat, r[t].n * sizeof *all);
    n += r[t].n;
    free(r[t].lat);
  }
  qsort(all, n, sizeof *all, cmp_d);
  size_t i99 = (size_t)(0.99 * (double)n + 0.999999);
  stats_t s = {n, all[n / 2], all[(i99 ? i99 : 1) - 1], all[0], (double)n / (end - start), cpu / (double)n};
  free(all);
  return s;
}

/* One JSON line. extra: further "key":value pairs (without braces), or "". */
static void emit(const char *id, const char *group, const char *label, int threads, stats_t s, const char *extra) {
  printf("{\"id\":\"%s\",\"group\":\"%s\",\"label\":\"%s\",\"threads\":%d,\"runs\":%zu,\"median_ms\":%.6g,"
         "\"p99_ms\":%.6g,\"min_ms\":%.6g,\"per_s\":%.6g,\"cpu_ms\":%.6g%s%s}\n",
         id, group, label, threads, s.runs, s.median, s.p99, s.min, s.per_s, s.cpu_ms, *extra ? "," : "", extra);
  fflush(stdout);
}

/* ---- machine peak ----------------------------------------------------------------------- */

typedef struct gemm_ctx {
  size_t n;
  int dbl;
  void *A, *B, *C;
} gemm_ctx_t;

static void gemm_op(void *c, int tid) {
  gemm_ctx_t *g = c;
  if (g->dbl)
    xd_dgemm_nt(g->n, g->n, g->n, g->A, g->B, 0.0, g->C);
  else
    xd_sgemm_nt(g->n, g->n, g->n, g->A, g->B, 0.0f, g->C);
}

/* Square GEMM N^3, single thread, best of several: the machine's single-core peak. */
static double bench_peak(int dbl) {
  gemm_ctx_t g = {2048, dbl, NULL, NULL, NULL};
  size_t es = dbl ? sizeof(double) : sizeof(float), nn = g.n * g.n;
  g.A = malloc(nn * es), g.B = malloc(nn * es), g.C = malloc(nn * es);
  for (size_t i = 0; i < nn; i++) {
    double v = (double)((i * 2654435761u) % 1000) / 1000.0 - 0.5;
    if (dbl) ((double *)g.A)[i] = v, ((double *)g.B)[i] = -v;
    else ((float *)g.A)[i] = (float)v, ((float *)g.B)[i] = (float)-v;
  }
  stats_t s = measure(gemm_op, &g, 1, 0.0, scale < 1 ? 2 : 5, 5);
  double flop = 2.0 * (double)g.n * (double)g.n * (double)g.n, best = flop / (s.min * 1e6);
  char extra[256];
  /* gflops_cpu: from the mean CPU time per call, which descheduling on a busy machine does not inflate */
  snprintf(extra, sizeof extra, "\"flop\":%.6g,\"gflops\":%.6g,\"gflops_median\":%.6g,\"gflops_cpu\":%.6g,\"n\":%zu",
           flop, best, flop / (s.median * 1e6), flop / (s.cpu_ms * 1e6), g.n);
  emit(dbl ? "peak_dgemm" : "peak_sgemm", "peak", dbl ? "dgemm 2048^3, 1 thread" : "sgemm 2048^3, 1 thread", 1, s,
       extra);
  free(g.A), free(g.B), free(g.C);
  return best;
}

/* ---- forward pass ------------------------------------------------------------------------ */

/* Rows of the background, cycled: realistic inputs (ReLU patterns of real data). */
static double *cycled_rows(size_t rows) {
  const xd_dataset_t *bg = xd_model_background(model);
  double *X = xd_malloc(rows * bg->d * sizeof *X);
  for (size_t i = 0; i < rows; i++) memcpy(X + i * bg->d, bg->X + (i % bg->n) * bg->d, bg->d * sizeof *X);
  return X;
}

static double forward_flop_per_row(int backward) {
  size_t nl;
  const xd_dense_t *L = xd_model_dense_layers(model, &nl);
  double f = 0;
  for (size_t l = 0; l < nl; l++) f += 2.0 * (double)L[l].in * (double)L[l].out;
  return backward ? 2 * f : f;
}

typedef struct fwd_ctx {
  size_t rows; /* per thread */
  double *X, *P;
  float *E, *Z1, *Z2;
  double *Ed, *G, *f;
  size_t *target;
} fwd_ctx_t;

static void predict_op(void *c, int tid) {
  fwd_ctx_t *f = c;
  size_t d = xd_model_n_features(model), k = xd_model_n_outputs(model);
  xd_model_predict(model, f->X + (size_t)tid * f->rows * d, f->rows, f->P + (size_t)tid * f->rows * k, NULL, NULL);
}

static void gradient_op(void *c, int tid) {
  fwd_ctx_t *f = c;
  size_t p = xd_model_n_inputs(model);
  size_t o = (size_t)tid * f->rows;
  xd_model_gradient(model, f->Ed + o * p, f->rows, f->target + o, XD_OUTPUT_PROBABILITY, f->f + o, f->G + o * p,
                    NULL, NULL, NULL);
}

static void encode_op(void *c, int tid) {
  fwd_ctx_t *f = c;
  xd_model_encode_f(model, f->X, f->rows, f->E);
}

/* The layers alone: bias, GEMM and activation (xd_dense_forward_f), or the GEMMs alone. */
static void layers_op_impl(fwd_ctx_t *f, int gemm_only) {
  size_t nl;
  const xd_dense_t *L = xd_model_dense_layers(model, &nl);
  const float *x = f->E;
  float *bufs[2] = {f->Z1, f->Z2};
  for (size_t l = 0; l < nl; l++) {
    float *z = bufs[l & 1];
    if (gemm_only)
      xd_sgemm_nt(f->rows, L[l].out, L[l].in, x, L[l].wf, 0.0f, z);
    else
      xd_dense_forward_f(&L[l], x, f->rows, z, l + 1 < nl);
    x = z;
  }
}
static void layers_op(void *c, int tid) { layers_op_impl(c, 0); }
static void gemms_op(void *c, int tid) { layers_op_impl(c, 1); }

/* Floor lines: predict (or gradient) over `rows` rows on `threads` threads (halves). */
static stats_t floor_rows(const char *id, const char *label, size_t rows, int threads, int gradient, double budget) {
  fwd_ctx_t f;
  memset(&f, 0, sizeof f);
  size_t p = xd_model_n_inputs(model), k = xd_model_n_outputs(model);
  f.rows = (rows + (size_t)threads - 1) / (size_t)threads;
  size_t tot = f.rows * (size_t)threads;
  f.X = cycled_rows(tot);
  f.P = xd_malloc(tot * k * sizeof *f.P);
  if (gradient) {
    f.Ed = xd_malloc(tot * p * sizeof *f.Ed);
    f.G = xd_malloc(tot * p * sizeof *f.G);
    f.f = xd_malloc(tot * sizeof *f.f);
    f.target = xd_calloc(tot, sizeof *f.target);
    xd_model_encode_d(model, f.X, tot, f.Ed);
    for (size_t i = 0; i < tot; i++) f.target[i] = 1;
  }
  stats_t s = measure(gradient ? gradient_op : predict_op, &f, threads, budget, 10, 100000);
  double flop = forward_flop_per_row(gradient) * (double)rows;
  s.per_s = s.per_s / (double)threads; /* one floor = all rows, split over the threads */
  s.cpu_ms = s.cpu_ms * (double)threads;
  char extra[256];
  snprintf(extra, sizeof extra, "\"rows\":%zu,\"flop\":%.6g,\"kind\":\"%s\"", rows, flop,
           gradient ? "gradient" : "predict");
  emit(id, "floor", label, threads, s, extra);
  xd_free(f.X), xd_free(f.P), xd_free(f.Ed), xd_free(f.G), xd_free(f.f), xd_free(f.target);
  return s;
}

static void bench_forward(void) {
  static const size_t sizes[] = {1, 100, 5000, 105400};
  char id[64], label[128], extra[256];
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    fwd_ctx_t f;
    memset(&f, 0, sizeof f);
    f.rows = sizes[i];
    f.X = cycled_rows(f.rows);
    f.P = xd_malloc(f.rows * xd_model_n_outputs(model) * sizeof *f.P);
    stats_t s = measure(predict_op, &f, 1, 1.0, 20, 200000);
    snprintf(id, sizeof id, "forward_%zu", f.rows);
    snprintf(label, sizeof label, "xd_model_predict, %zu rows", f.rows);
    snprintf(extra, sizeof extra, "\"rows\":%zu,\"flop\":%.6g", f.rows, forward_flop_per_row(0) * (double)f.rows);
    emit(id, "forward", label, 1, s, extra);
    xd_free(f.X), xd_free(f.P);
  }
  /* Where 5,000 rows go: encode, layers (bias + GEMM + ReLU), the GEMMs alone. */
  fwd_ctx_t f;
  memset(&f, 0, sizeof f);
  f.rows = 5000;
  size_t nl, w = 0;
  const xd_dense_t *L = xd_model_dense_layers(model, &nl);
  for (size_t l = 0; l < nl; l++) w = L[l].out > w ? L[l].out : w;
  f.X = cycled_rows(f.rows);
  f.E = xd_malloc(f.rows * xd_model_n_inputs(model) * sizeof *f.E);
  f.Z1 = xd_malloc(f.rows * w * sizeof *f.Z1);
  f.Z2 = xd_malloc(f.rows * w * sizeof *f.Z2);
  xd_model_encode_f(model, f.X, f.rows, f.E);
  snprintf(extra, sizeof extra, "\"rows\":5000,\"flop\":%.6g", forward_flop_per_row(0) * 5000);
  emit("part_encode_5000", "forward_parts", "encode (xd_model_encode_f), 5000 rows", 1,
       measure(encode_op, &f, 1, 0.5, 20, 200000), "\"rows\":5000");
  emit("part_layers_5000", "forward_parts", "layers (bias + sgemm + ReLU), 5000 rows", 1,
       measure(layers_op, &f, 1, 0.5, 20, 200000), extra);
  emit("part_gemms_5000", "forward_parts", "the three sgemm calls alone, 5000 rows", 1,
       measure(gemms_op, &f, 1, 0.5, 20, 200000), extra);
  xd_free(f.X), xd_free(f.E), xd_free(f.Z1), xd_free(f.Z2);
}

/* ---- request jobs on a persistent worker pool --------------------------------------------- */

typedef struct pool {
  pthread_mutex_t mu;
  pthread_cond_t go, done;
  const xd_work_t *w;
  atomic_size_t next;
  unsigned gen, busy;
  int n, quit;
  pthread_t th[MAXT];
} pool_t;

static void pull_parts(pool_t *p) {
  for (size_t q; (q = atomic_fetch_add(&p->next, 1)) < p->w->n_parts;) {
    xd_error_t err;
    if (p->w->ops->run(p->w->state, q, NULL, &err) != XD_OK) {
      fprintf(stderr, "bench: part failed: %s\n", err.text);
      exit(1);
    }
  }
}

static void *pool_thread(void *a) {
  pool_t *p = a;
  unsigned seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->gen == seen && !p->quit) pthread_cond_wait(&p->go, &p->mu);
    if (p->quit) break;
    seen = p->gen;
    pthread_mutex_unlock(&p->mu);
    pull_parts(p);
    pthread_mutex_lock(&p->mu);
    if (--p->busy == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* threads workers in all: the caller and threads-1 helpers. */
static void pool_init(pool_t *p, int threads) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->go, NULL);
  pthread_cond_init(&p->done, NULL);
  p->n = threads - 1;
  for (int i = 0; i < p->n; i++) pthread_create(&p->th[i], NULL, pool_thread, p);
}

static void pool_run(pool_t *p, const xd_work_t *w) {
  pthread_mutex_lock(&p->mu);
  p->w = w;
  atomic_store(&p->next, 0);
  p->busy = (unsigned)p->n;
  p->gen++;
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->mu);
  pull_parts(p);
  pthread_mutex_lock(&p->mu);
  while (p->busy) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

static void pool_free(pool_t *p) {
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->n; i++) pthread_join(p->th[i], NULL);
}

typedef struct job_ctx {
  xd_endpoint_decode_fn decode;
  const char *body;
  pool_t pool;
  uint64_t cost_rows;
} job_ctx_t;

static uint64_t run_job(job_ctx_t *j) {
  xd_error_t err;
  xd_work_t w;
  memset(&w, 0, sizeof w);
  json_t *b = json_loads(j->body, 0, NULL);
  if (!b || j->decode(api, b, &w, &err) != XD_OK) {
    fprintf(stderr, "bench: decode failed: %s %s\n", err.field, err.text);
    exit(1);
  }
  pool_run(&j->pool, &w);
  json_t *out = w.ops->encode(w.state, &err);
  if (!out) {
    fprintf(stderr, "bench: encode failed: %s\n", err.text);
    exit(1);
  }
  free(json_dumps(out, JSON_COMPACT));
  json_decref(out);
  w.ops->free(w.state);
  json_decref(b);
  return w.cost_rows;
}

static void job_op(void *c, int tid) { run_job(c); }

/* A request job on 1..threads workers, then its floor on as many threads. */
static void bench_job(const char *id, const char *group, const char *label, xd_endpoint_decode_fn decode,
                      const char *body, int gradient, int max_threads, double budget) {
  char jid[96], fid[96], lab[192], flab[192], extra[256];
  for (int t = 1; t <= max_threads; t++) {
    job_ctx_t j = {.decode = decode, .body = body};
    pool_init(&j.pool, t);
    j.cost_rows = run_job(&j);
    stats_t s = measure(job_op, &j, 1, budget, 10, 100000);
    pool_free(&j.pool);
    snprintf(jid, sizeof jid, "%s_t%d", id, t);
    snprintf(fid, sizeof fid, "floor_%s_t%d", id, t);
    snprintf(lab, sizeof lab, "%s, %d worker%s", label, t, t > 1 ? "s" : "");
    snprintf(flab, sizeof flab, "%s over %llu rows, %d thread%s", gradient ? "xd_model_gradient" : "xd_model_predict",
             (unsigned long long)j.cost_rows, t, t > 1 ? "s" : "");
    snprintf(extra, sizeof extra, "\"rows\":%llu,\"floor\":\"%s\",\"flop\":%.6g", (unsigned long long)j.cost_rows,
             fid, forward_flop_per_row(gradient) * (double)j.cost_rows);
    emit(jid, group, lab, t, s, extra);
    floor_rows(fid, flab, (size_t)j.cost_rows, t, gradient, budget * 0.6);
  }
}

/* ---- LIME, the core call on 1 and 2 threads at once -------------------------------------- */

typedef struct lime_ctx {
  xd_lime_plan_t plan;
  const double *x;
} lime_ctx_t;

static void lime_op(void *c, int tid) {
  lime_ctx_t *l = c;
  xd_lime_result_t res;
  xd_error_t err;
  if (xd_lime_explain(&l->plan, l->x, (size_t)tid, &res, NULL, &err) != XD_OK) {
    fprintf(stderr, "bench: lime failed: %s\n", err.text);
    exit(1);
  }
  xd_lime_result_deinit(&res);
}

static void bench_lime(int discretize, const char *body) {
  const char *tag = discretize ? "disc" : "cont";
  char id[64], fid[64], label[160], extra[256];
  lime_ctx_t l;
  xd_lime_options_t o;
  xd_error_t err;
  xd_lime_options_default(&o);
  o.num_samples = 5000;
  o.seed = 42;
  o.discretize = discretize ? XD_LIME_DISC_QUARTILE : XD_LIME_DISC_NONE;
  if (xd_lime_plan_init(&l.plan, model, &o, &err) != XD_OK) {
    fprintf(stderr, "bench: lime plan: %s\n", err.text);
    exit(1);
  }
  l.x = xd_model_background(model)->X;
  for (int t = 1; t <= 2; t++) {
    snprintf(id, sizeof id, "lime_%s_core_t%d", tag, t);
    snprintf(fid, sizeof fid, "floor_lime_t%d", t);
    snprintf(label, sizeof label, "xd_lime_explain, %s, 5000 samples, %d explanation%s at once",
             discretize ? "quartile" : "continuous", t, t > 1 ? "s" : "");
    stats_t s = measure(lime_op, &l, t, 1.5, 20, 100000);
    snprintf(extra, sizeof extra, "\"rows\":5000,\"floor\":\"%s\",\"flop\":%.6g", fid,
             forward_flop_per_row(0) * 5000);
    emit(id, "lime", label, t, s, extra);
  }
  xd_lime_plan_deinit(&l.plan);
  /* The request as the server runs it (decode, plan, explain, encode), one worker. */
  snprintf(id, sizeof id, "lime_%s_job", tag);
  snprintf(label, sizeof label, "/explain/lime job minus HTTP, %s, 5000 samples", discretize ? "quartile" : "continuous");
  job_ctx_t j = {.decode = xd_lime_decode, .body = body};
  pool_init(&j.pool, 1);
  stats_t s = measure(job_op, &j, 1, 1.0, 20, 100000);
  pool_free(&j.pool);
  snprintf(extra, sizeof extra, "\"rows\":5000,\"floor\":\"floor_lime_t1\"");
  emit(id, "lime", label, 1, s, extra);
}

/* Floor of two explanations at once: two threads, each a forward over its 5,000 rows. */
static void bench_lime_floor(void) {
  for (int t = 1; t <= 2; t++) {
    fwd_ctx_t f;
    memset(&f, 0, sizeof f);
    f.rows = 5000;
    f.X = cycled_rows(f.rows * (size_t)t);
    f.P = xd_malloc(f.rows * (size_t)t * xd_model_n_outputs(model) * sizeof *f.P);
    stats_t s = measure(predict_op, &f, t, 1.0, 20, 100000);
    char id[64], label[128], extra[128];
    snprintf(id, sizeof id, "floor_lime_t%d", t);
    snprintf(label, sizeof label, "xd_model_predict over 5000 rows, %d at once", t);
    snprintf(extra, sizeof extra, "\"rows\":5000,\"flop\":%.6g,\"kind\":\"predict\"", forward_flop_per_row(0) * 5000);
    emit(id, "floor", label, t, s, extra);
    xd_free(f.X), xd_free(f.P);
  }
}

/* ---- request bodies ----------------------------------------------------------------------- */

enum { B_PREDICT1, B_PREDICT100, B_LIME_DISC, B_LIME_CONT, B_IG1, B_IG100, B_SALIENCY, B_SMOOTHGRAD, B_SHAP,
       B_PERM, B_PDP, B_N };
static const char *body_names[B_N] = {"predict_1", "predict_100", "lime", "lime_continuous", "ig_1", "ig_100",
                                      "saliency", "smoothgrad", "shap", "importance", "pdp"};
static char *bodies[B_N];

/* rows [0, n) of the background as a JSON list of lists. */
static char *rows_json(size_t n) {
  const xd_dataset_t *bg = xd_model_background(model);
  size_t cap = n * bg->d * 26 + 16, len = 0;
  char *s = malloc(cap);
  len += (size_t)snprintf(s + len, cap - len, "[");
  for (size_t i = 0; i < n; i++) {
    len += (size_t)snprintf(s + len, cap - len, "%s[", i ? "," : "");
    for (size_t j = 0; j < bg->d; j++)
      len += (size_t)snprintf(s + len, cap - len, "%s%.17g", j ? "," : "", bg->X[(i % bg->n) * bg->d + j]);
    len += (size_t)snprintf(s + len, cap - len, "]");
  }
  snprintf(s + len, cap - len, "]");
  return s;
}

static void make_bodies(void) {
  char *r1 = rows_json(1), *r100 = rows_json(100);
  const char *fmt[B_N] = {
      "{\"model\":\"breast_cancer\",\"instances\":%s}",
      "{\"model\":\"breast_cancer\",\"instances\":%s}",
      "{\"model\":\"breast_cancer\",\"instances\":%s,\"num_samples\":5000,\"seed\":42}",
      "{\"model\":\"breast_cancer\",\"instances\":%s,\"num_samples\":5000,\"discretize\":\"none\",\"seed\":42}",
      "{\"model\":\"breast_cancer\",\"instances\":%s,\"method\":\"integrated_gradients\",\"steps\":50}",
      "{\"model\":\"breast_cancer\",\"instances\":%s,\"method\":\"integrated_gradients\",\"steps\":50}",
      "{\"model\":\"breast_cancer\",\"instances\":%s,\"method\":\"saliency\"}",
      "{\"model\":\"breast_cancer\",\"instances\":%s,\"method\":\"smoothgrad\",\"samples\":25,\"seed\":1}",
      "{\"model\":\"breast_cancer\",\"instances\":%s,\"seed\":42}",
      "{\"model\":\"breast_cancer\",\"method\":\"permutation\",\"n_repeats\":5,\"seed\":0%s}",
      "{\"model\":\"breast_cancer\",\"features\":[\"worst radius\"],\"grid_resolution\":100%s}",
  };
  for (int b = 0; b < B_N; b++) {
    const char *arg = (b == B_PREDICT100 || b == B_IG100) ? r100 : (b == B_PERM || b == B_PDP) ? "" : r1;
    size_t n = strlen(fmt[b]) + strlen(arg) + 1;
    bodies[b] = malloc(n);
    snprintf(bodies[b], n, fmt[b], arg);
  }
  free(r1), free(r100);
}

/* ---- graph kernels (core/kern.h) ------------------------------------------------------------ */

/* The convolutions of models/shapes (3x32x32 input, 3x3 pad 1, 16-32-64 channels, 2x2 max
 * pools between them) at batch 256 in float, fast and naive (naive over 8 images: the
 * direct loops take seconds at 256), and a bidirectional GRU (seq 32, batch 64, 32 -> 32). */
typedef struct kern_ctx {
  xd_conv_shape_t c[3];
  xd_pool_shape_t p;
  int naive;
  float *x, *w, *b, *y, *y2, *scr;
  xd_rnn_shape_t r;
  float *rx, *rw, *rr, *rb, *ry, *rscr;
} kern_ctx_t;

static void kern_cnn_op(void *c, int tid) {
  kern_ctx_t *k = c;
  for (int i = 0; i < 3; i++) {
    if (k->naive)
      xd_conv_forward_f_naive(&k->c[i], k->x, k->w, k->b, k->y);
    else
      xd_conv_forward_f(&k->c[i], k->x, k->w, k->b, k->y, k->scr);
    if (i < 2 && !k->naive) xd_maxpool_forward_f(&k->p, k->y, k->y2);
  }
}

static void kern_gru_op(void *c, int tid) {
  kern_ctx_t *k = c;
  xd_gru_forward_f(&k->r, k->rx, k->rw, k->rr, k->rb, NULL, k->ry, NULL, k->rscr);
}

static void bench_kernels(void) {
  static const size_t ch[4] = {3, 16, 32, 64}, hw[3] = {32, 16, 8};
  kern_ctx_t k;
  memset(&k, 0, sizeof k);
  size_t scr = 0;
  for (int i = 0; i < 3; i++) {
    xd_conv_shape_t *c = &k.c[i];
    c->nsp = 2, c->N = 256, c->C = ch[i], c->M = ch[i + 1], c->group = 1;
    c->in[0] = c->in[1] = hw[i], c->k[0] = c->k[1] = 3;
    c->pad0[0] = c->pad0[1] = c->pad1[0] = c->pad1[1] = 1;
    xd_conv_shape_init(c, NULL);
    if (xd_conv_scratch(c) > scr) scr = xd_conv_scratch(c);
  }
  k.p = (xd_pool_shape_t){.nsp = 2, .N = 256, .C = 16, .in = {32, 32}, .k = {2, 2}, .stride = {2, 2}};
  xd_pool_shape_init(&k.p, NULL);
  k.x = xd_calloc(256 * 32 * 32 * 16, 4);
  k.w = xd_calloc(64 * 32 * 9, 4);
  k.b = xd_calloc(64, 4);
  k.y = xd_calloc(256 * 32 * 32 * 16, 4);
  k.y2 = xd_calloc(256 * 16 * 16 * 16, 4);
  k.scr = xd_calloc(scr, 4);
  for (size_t i = 0; i < 256 * 32 * 32 * 16; i++) k.x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
  for (size_t i = 0; i < 64 * 32 * 9; i++) k.w[i] = (float)((i * 104729) % 1000) / 5000.0f - 0.1f;
  char extra[256];
  double flop = 0;
  for (int i = 0; i < 3; i++)
    flop += 2.0 * 256 * (double)(ch[i + 1] * ch[i] * 9 * hw[i] * hw[i]);
  snprintf(extra, sizeof extra, "\"rows\":256,\"flop\":%.6g", flop);
  emit("kern_cnn_256", "kernels", "shapes CNN convolutions + pools, float, batch 256", 1,
       measure(kern_cnn_op, &k, 1, 1.0, 3, 50), extra);
  for (int i = 0; i < 3; i++) k.c[i].N = 8;
  k.naive = 1;
  snprintf(extra, sizeof extra, "\"rows\":8,\"flop\":%.6g", flop / 32);
  emit("kern_cnn_naive_8", "kernels", "the same convolutions, naive loops, batch 8", 1,
       measure(kern_cnn_op, &k, 1, 0.5, 1, 5), extra);
  k.r = (xd_rnn_shape_t){32, 64, 32, 32, 2, 0, 1};
  k.rx = xd_calloc(32 * 64 * 32, 4);
  k.rw = xd_calloc(2 * 96 * 32, 4);
  k.rr = xd_calloc(2 * 96 * 32, 4);
  k.rb = xd_calloc(2 * 192, 4);
  k.ry = xd_calloc(32 * 2 * 64 * 32, 4);
  k.rscr = xd_calloc(xd_gru_scratch(&k.r), 4);
  snprintf(extra, sizeof extra, "\"rows\":64,\"flop\":%.6g", 2.0 * 2 * 32 * 64 * (96.0 * 32 + 96.0 * 32));
  emit("kern_gru_64", "kernels", "bidirectional GRU 32->32, seq 32, float, batch 64", 1,
       measure(kern_gru_op, &k, 1, 0.5, 3, 200), extra);
  float *all[] = {k.x, k.w, k.b, k.y, k.y2, k.scr, k.rx, k.rw, k.rr, k.rb, k.ry, k.rscr};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) xd_free(all[i]);
}

/* ---- main ------------------------------------------------------------------------------------ */

static void setup(void) {
  xd_blas_init();
  const char *sc = getenv("BENCH_SCALE");
  if (sc && atof(sc) > 0) scale = atof(sc);
  xd_registry_t *reg = NULL;
  xd_error_t err;
  char sha[65];
  int replaced;
  xd_registry_new(&reg);
  if (xd_bundle_load_file("models/breast_cancer/model.json", &model, sha, &err) != XD_OK) {
    fprintf(stderr, "bench: load models/breast_cancer: %s (run from the repository root)\n", err.text);
    exit(1);
  }
  xd_registry_put(reg, "breast_cancer", model, sha, NULL, 0, &replaced);
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  xd_api_new(&cfg, reg, &api);
  make_bodies();
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--machine") == 0) {
    xd_blas_init();
    printf("{\"openblas_config\":\"%s\",\"openblas_threadsafe\":%d}\n", xd_blas_config(), xd_blas_threadsafe());
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "--free-port") == 0) { /* a free loopback port, for the HTTP load */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
      perror("free port");
      return 1;
    }
    printf("%d\n", ntohs(a.sin_port));
    close(fd);
    return 0;
  }
  setup();
  if (argc > 2 && strcmp(argv[1], "--bodies") == 0) {
    for (int b = 0; b < B_N; b++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s.json", argv[2], body_names[b]);
      FILE *f = fopen(path, "w");
      if (!f || fputs(bodies[b], f) < 0 || fclose(f) != 0) {
        perror(path);
        return 1;
      }
    }
    return 0;
  }
  const char *only = argc > 1 ? argv[1] : NULL; /* a group name, for development */
#define WANT(g) (!only || strcmp(only, g) == 0)
  if (WANT("peak")) {
    bench_peak(0);
    bench_peak(1);
  }
  if (WANT("forward")) bench_forward();
  if (WANT("predict")) {
    bench_job("predict_1", "predict", "/predict job minus HTTP, 1 row", xd_predict_decode, bodies[B_PREDICT1], 0, 1, 0.5);
    bench_job("predict_100", "predict", "/predict job minus HTTP, 100 rows", xd_predict_decode, bodies[B_PREDICT100], 0,
              1, 0.5);
  }
  if (WANT("lime")) {
    bench_lime_floor();
    bench_lime(1, bodies[B_LIME_DISC]);
    bench_lime(0, bodies[B_LIME_CONT]);
  }
  if (WANT("gradient")) {
    bench_job("ig_1", "gradient", "IG 50 steps, 1 row", xd_gradient_decode, bodies[B_IG1], 1, 1, 1.0);
    bench_job("ig_100", "gradient", "IG 50 steps, 100 rows", xd_gradient_decode, bodies[B_IG100], 1, 2, 1.5);
    bench_job("saliency", "gradient", "saliency, 1 row", xd_gradient_decode, bodies[B_SALIENCY], 1, 1, 0.5);
    bench_job("smoothgrad", "gradient", "SmoothGrad 25 samples, 1 row", xd_gradient_decode, bodies[B_SMOOTHGRAD], 1, 1,
              0.5);
  }
  if (WANT("shap")) bench_job("shap", "shap", "Kernel SHAP, bg 50, nsamples auto, 1 row", xd_shap_decode,
                              bodies[B_SHAP], 0, 2, 3.0);
  if (WANT("kernels")) bench_kernels();
  if (WANT("importance")) {
    bench_job("perm", "importance", "permutation importance, 5 repeats, 143 rows", xd_importance_decode,
              bodies[B_PERM], 0, 2, 1.5);
    bench_job("pdp", "importance", "PDP, 100 grid points, 143 rows", xd_pdp_decode, bodies[B_PDP], 0, 2, 1.5);
  }
  return 0;
}
