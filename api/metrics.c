/* metrics.c — counters and histograms kept in a small table, rendered on demand. */
#include "api/metrics.h"

#include <dirent.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/mat.h"
#include "core/version.h"

#define NB 15
static const double bounds[NB] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

/* Quality histograms have their own buckets (same count): an R² (at most 1; a fit at or
 * below 0 lands in the first bucket), absolute
 * gaps from round-off (1e-9) to a broken explanation (1). */
static const double score_bounds[NB] = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 1};
static const double gap_bounds[NB] = {1e-12, 1e-10, 1e-8, 1e-6, 1e-5, 1e-4, 1e-3, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1};

typedef struct hist {
  unsigned long long b[NB + 1]; /* per bucket, not cumulative; last is +Inf */
  double sum;
  unsigned long long count;
} hist_t;

enum { K_REQ, K_REQDUR, K_QUEUE, K_COMPUTE, K_REJECT, K_ROWS, K_LIME_SCORE, K_IG_DELTA, K_SHAP_GAP };

typedef struct series {
  int kind;
  char l1[48], l2[XD_MODEL_NAME_MAX + 1]; /* endpoint, model or reason */
  char method[32]; /* explanation method (requests of explanation endpoints), or "" */
  int code;
  unsigned long long n;
  hist_t h;
} series_t;

#define MAX_SERIES 2048
static series_t table[MAX_SERIES];
static size_t n_series;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static xd_metrics_gauges_t gauges;
static double start_time;
/* The registry whose names may appear as model labels (set once by xd_api_new). */
static _Atomic(xd_registry_t *) known_models;

void xd_metrics_set_registry(xd_registry_t *reg) { atomic_store(&known_models, reg); }

void xd_metrics_set_gauges(const xd_metrics_gauges_t *g) {
  pthread_mutex_lock(&mu);
  gauges = *g;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  start_time = (double)ts.tv_sec + ts.tv_nsec / 1e9;
  pthread_mutex_unlock(&mu);
}

/* Finds or adds a series; mu held. Returns NULL when the table is full. */
static series_t *get_m(int kind, const char *l1, const char *l2, const char *method, int code) {
  for (size_t i = 0; i < n_series; i++) {
    series_t *s = &table[i];
    if (s->kind == kind && s->code == code && strcmp(s->l1, l1) == 0 && strcmp(s->l2, l2) == 0 &&
        strcmp(s->method, method) == 0)
      return s;
  }
  if (n_series == MAX_SERIES) return NULL;
  series_t *s = &table[n_series++];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  s->code = code;
  snprintf(s->l1, sizeof s->l1, "%s", l1);
  snprintf(s->l2, sizeof s->l2, "%s", l2);
  snprintf(s->method, sizeof s->method, "%s", method);
  return s;
}

static series_t *get(int kind, const char *l1, const char *l2, int code) { return get_m(kind, l1, l2, "", code); }

static const double *bounds_of(int kind) {
  return kind == K_LIME_SCORE ? score_bounds : kind == K_IG_DELTA || kind == K_SHAP_GAP ? gap_bounds : bounds;
}

static void observe_in(hist_t *h, const double *bd, double v) {
  size_t i = 0;
  while (i < NB && v > bd[i]) i++;
  h->b[i]++;
  h->sum += v;
  h->count++;
}

static void observe(hist_t *h, double v) {
  size_t i = 0;
  while (i < NB && v > bounds[i]) i++;
  h->b[i]++;
  h->sum += v;
  h->count++;
}

/* Model labels only for served models, so a client cannot grow the table with names. */
static const char *model_label(const char *model) {
  xd_registry_t *reg = atomic_load(&known_models);
  if (!model || !*model || !reg) return "";
  xd_model_entry_t *e = xd_registry_get(reg, model);
  if (!e) return "";
  xd_model_entry_release(e);
  return model;
}

void xd_metrics_request(const char *endpoint, const char *model, int status, double seconds) {
  xd_metrics_request_method(endpoint, model, NULL, status, seconds);
}

void xd_metrics_request_method(const char *endpoint, const char *model, const char *method, int status,
                               double seconds) {
  const char *m = model_label(model), *x = method ? method : "";
  pthread_mutex_lock(&mu);
  series_t *s = get_m(K_REQ, endpoint ? endpoint : "other", m, x, status);
  if (s) s->n++;
  s = get_m(K_REQDUR, endpoint ? endpoint : "other", m, x, 0);
  if (s) observe(&s->h, seconds);
  pthread_mutex_unlock(&mu);
}

void xd_metrics_queue(const char *endpoint, double seconds) {
  pthread_mutex_lock(&mu);
  series_t *s = get(K_QUEUE, endpoint ? endpoint : "other", "", 0);
  if (s) observe(&s->h, seconds);
  pthread_mutex_unlock(&mu);
}

void xd_metrics_compute(const char *endpoint, const char *model, double seconds, unsigned long long rows) {
  const char *m = model_label(model);
  pthread_mutex_lock(&mu);
  series_t *s = get(K_COMPUTE, endpoint ? endpoint : "other", m, 0);
  if (s) observe(&s->h, seconds);
  s = get(K_ROWS, endpoint ? endpoint : "other", "", 0);
  if (s) s->n += rows;
  pthread_mutex_unlock(&mu);
}

void xd_metrics_quality(xd_metrics_quality_t q, const char *method, double value) {
  static const int kinds[] = {[XD_QUALITY_LIME_SCORE] = K_LIME_SCORE, [XD_QUALITY_IG_DELTA] = K_IG_DELTA,
                              [XD_QUALITY_SHAP_GAP] = K_SHAP_GAP};
  if ((unsigned)q >= sizeof kinds / sizeof *kinds || !(value == value)) return; /* NaN: nothing to count */
  int kind = kinds[q];
  if (kind != K_LIME_SCORE && value < 0) value = -value; /* gaps are reported absolute */
  pthread_mutex_lock(&mu);
  series_t *s = get(kind, method ? method : "", "", 0);
  if (s) observe_in(&s->h, bounds_of(kind), value);
  pthread_mutex_unlock(&mu);
}

void xd_metrics_rejected(const char *endpoint, const char *reason) {
  pthread_mutex_lock(&mu);
  series_t *s = get(K_REJECT, endpoint ? endpoint : "other", reason, 0);
  if (s) s->n++;
  pthread_mutex_unlock(&mu);
}

/* ---- rendering ------------------------------------------------------------------------ */

typedef struct buf {
  char *p;
  size_t n, cap;
  int oom;
} buf_t;

static void put(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf_t *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (w < 0) return;
    if ((size_t)w < b->cap - b->n) {
      b->n += (size_t)w;
      return;
    }
    size_t nc = b->cap * 2 + (size_t)w;
    char *g = xd_realloc(b->p, nc);
    if (!g) {
      b->oom = 1;
      return;
    }
    b->p = g;
    b->cap = nc;
  }
}

/* Label values escape backslash, quote and newline. */
static const char *esc(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (; *s && o + 3 < cap; s++) {
    if (*s == '\\' || *s == '"') out[o++] = '\\';
    if (*s == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
      continue;
    }
    out[o++] = *s;
  }
  out[o] = '\0';
  return out;
}

static void header(buf_t *b, const char *name, const char *type, const char *help) {
  put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_hist_in(buf_t *b, const char *name, const char *labels, const hist_t *h, const double *bd) {
  unsigned long long cum = 0;
  for (size_t i = 0; i < NB; i++) {
    cum += h->b[i];
    put(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", bd[i], cum);
  }
  cum += h->b[NB];
  put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "", cum);
  put(b, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name, labels, h->sum, name, labels, h->count);
}

static void render_hist(buf_t *b, const char *name, const char *labels, const hist_t *h) {
  render_hist_in(b, name, labels, h, bounds);
}

static void process_metrics(buf_t *b) {
  long page = sysconf(_SC_PAGESIZE), ticks = sysconf(_SC_CLK_TCK);
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &rss) != 2) rss = 0;
    fclose(f);
  }
  header(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  put(b, "process_resident_memory_bytes %lu\n", rss * (unsigned long)page);
  header(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  put(b, "process_virtual_memory_bytes %lu\n", size * (unsigned long)page);
  f = fopen("/proc/self/stat", "r");
  unsigned long ut = 0, st = 0;
  if (f) {
    char line[1024];
    if (fgets(line, sizeof line, f)) {
      char *p = strrchr(line, ')'); /* fields after the command name */
      if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) ut = st = 0;
    }
    fclose(f);
  }
  header(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  put(b, "process_cpu_seconds_total %.2f\n", (double)(ut + st) / (double)ticks);
  size_t fds = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    struct dirent *de;
    while ((de = readdir(d))) fds += de->d_name[0] != '.';
    closedir(d);
  }
  header(b, "process_open_fds", "gauge", "Number of open file descriptors.");
  put(b, "process_open_fds %zu\n", fds);
  header(b, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  put(b, "process_start_time_seconds %.3f\n", start_time);
}

void xd_metrics_render(xd_registry_t *reg, int ready, xd_api_response_t *resp) {
  buf_t b = {xd_malloc(16384), 0, 16384, 0};
  if (!b.p) b.oom = 1;
  char e1[128], e2[160], e3[160], lab[512], mlab[64];
  pthread_mutex_lock(&mu);
  static const struct {
    int kind;
    const char *name, *type, *help;
  } fams[] = {
      {K_REQ, "explaind_requests_total", "counter", "Requests answered, by endpoint, model and HTTP status."},
      {K_REQDUR, "explaind_request_duration_seconds", "histogram", "Time from the request's arrival to its answer."},
      {K_QUEUE, "explaind_queue_duration_seconds", "histogram", "Time a job waited between admission and its first part starting."},
      {K_COMPUTE, "explaind_compute_duration_seconds", "histogram", "Worker time of a job, from its first part starting to its encoding."},
      {K_REJECT, "explaind_rejected_total", "counter", "Requests refused before any work (queue_full, draining, too_large, no_memory, body_memory, bad_request) and connections refused (connections, connections_per_ip)."},
      {K_ROWS, "explaind_model_rows_total", "counter", "Model rows evaluated by finished jobs (their estimate)."},
      {K_LIME_SCORE, "explaind_lime_score", "histogram", "R2 of each LIME surrogate fit on its weighted samples."},
      {K_IG_DELTA, "explaind_ig_convergence_delta", "histogram", "Absolute integrated-gradients convergence delta per explained row."},
      {K_SHAP_GAP, "explaind_shap_efficiency_gap", "histogram", "Absolute SHAP efficiency gap (sum of values minus output minus expected value) per explained row."},
  };
  for (size_t f = 0; f < sizeof fams / sizeof *fams; f++) {
    header(&b, fams[f].name, fams[f].type, fams[f].help);
    for (size_t i = 0; i < n_series; i++) {
      series_t *s = &table[i];
      if (s->kind != fams[f].kind) continue;
      esc(s->l1, e1, sizeof e1);
      esc(s->l2, e2, sizeof e2);
      /* the method label only where one applies (explanation endpoints) */
      if (s->method[0]) snprintf(mlab, sizeof mlab, ",method=\"%s\"", s->method);
      else mlab[0] = '\0';
      switch (s->kind) {
      case K_REQ:
        put(&b, "%s{endpoint=\"%s\",model=\"%s\"%s,code=\"%d\"} %llu\n", fams[f].name, e1, e2, mlab, s->code, s->n);
        break;
      case K_REJECT:
        put(&b, "%s{endpoint=\"%s\",reason=\"%s\"} %llu\n", fams[f].name, e1, e2, s->n);
        break;
      case K_ROWS:
        put(&b, "%s{endpoint=\"%s\"} %llu\n", fams[f].name, e1, s->n);
        break;
      case K_QUEUE:
        snprintf(lab, sizeof lab, "endpoint=\"%s\"", e1);
        render_hist(&b, fams[f].name, lab, &s->h);
        break;
      case K_LIME_SCORE:
      case K_IG_DELTA:
      case K_SHAP_GAP:
        snprintf(lab, sizeof lab, "method=\"%s\"", e1);
        render_hist_in(&b, fams[f].name, lab, &s->h, bounds_of(s->kind));
        break;
      default:
        snprintf(lab, sizeof lab, "endpoint=\"%s\",model=\"%s\"%s", e1, e2, mlab);
        render_hist(&b, fams[f].name, lab, &s->h);
      }
    }
  }
  xd_metrics_gauges_t g = gauges;
  pthread_mutex_unlock(&mu);
  header(&b, "explaind_inflight_jobs", "gauge", "Jobs admitted and not finished.");
  put(&b, "explaind_inflight_jobs %u\n", g.inflight ? g.inflight(g.ctx) : 0);
  header(&b, "explaind_queue_capacity", "gauge", "Jobs that may be admitted at once.");
  put(&b, "explaind_queue_capacity %u\n", g.capacity ? g.capacity(g.ctx) : 0);
  header(&b, "explaind_ready", "gauge", "1 while the server is ready for traffic.");
  put(&b, "explaind_ready %d\n", ready);
  xd_model_entry_t **es = NULL;
  size_t n = 0;
  if (xd_registry_list(reg, &es, &n) == XD_OK) {
    header(&b, "explaind_models_loaded", "gauge", "Models being served.");
    put(&b, "explaind_models_loaded %zu\n", n);
    header(&b, "explaind_model_info", "gauge", "A served model, its version and bundle digest.");
    for (size_t i = 0; i < n; i++) {
      put(&b, "explaind_model_info{model=\"%s\",version=\"%llu\",sha256=\"%s\"} 1\n", esc(es[i]->name, e1, sizeof e1),
          (unsigned long long)es[i]->version, es[i]->sha256);
      xd_model_entry_release(es[i]);
    }
    xd_free(es);
  }
  header(&b, "explaind_build_info", "gauge", "Build information.");
  put(&b, "explaind_build_info{version=\"%s\",openblas_config=\"%s\",mhd_version=\"%s\"} 1\n", XD_VERSION,
      esc(xd_blas_config(), e3, sizeof e3), g.mhd_version ? g.mhd_version : "");
  process_metrics(&b);
  if (b.oom) {
    xd_free(b.p);
    xd_error_t err;
    xd_error_set(&err, XD_ENOMEM, NULL, "out of memory rendering metrics");
    xd_api_error(&err, resp);
    return;
  }
  xd_free(resp->body);
  resp->status = 200;
  resp->body = b.p;
  resp->body_len = b.n;
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
