/* soak.c — `make soak`: the real server under a steady mixed load for SOAK_SECONDS
 * (default 300), checking that it stays correct and that its memory stays flat.
 *
 * SOAK_CLIENTS client threads (default 12, more than the default queue) loop over a fixed, weighted mix of valid
 * requests on every kind of endpoint (predict, LIME, gradient, SHAP, importance, PDP,
 * model metadata, health, readiness, metrics), each on a new connection. A sampler reads
 * the server's VmRSS from /proc/PID/status every SOAK_SAMPLE_MS (default 2000).
 *
 * Checks, printed as "N passed, N failed":
 *  - no 5xx other than 503 (503 overloaded is the server doing admission control);
 *  - no other unexpected answer (every request in the mix is valid: 200 or 503 only)
 *    and no connection error;
 *  - every endpoint of the mix answered 200 at least once;
 *  - RSS growth under 10% after warm-up: the highest of the last three samples against
 *    the highest sample of the warm-up (SOAK_WARMUP seconds, default 60, or a quarter of
 *    the run when that is shorter than 4 minutes);
 *  - SIGTERM at the end drains and exits 0.
 * Not linked into the test programs (it lives in its own folder); see docs/load.md.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

#define BC_ROW                                                                                                  \
  "[17.99,10.38,122.8,1001.0,0.1184,0.2776,0.3001,0.1471,0.2419,0.07871,1.095,0.9053,8.589,153.4,0.006399,"     \
  "0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,2019.0,0.1622,0.6656,0.7119,0.2654,0.4601,0.1189]"
#define IRIS_ROW "[6.5,3.0,5.2,2.0]"

typedef struct kind {
  const char *name, *method, *path;
  const char *body; /* NULL for GET; built at start for the big ones */
  int weight;
  /* results, under mu */
  long n, ok, busy, client_err, server_err, conn_err;
  int last_bad_status;
  double *lat; /* ms of the 200s, up to LAT_CAP */
  size_t n_lat;
} kind_t;

#define LAT_CAP 200000

static char predict100[64 * 1024];
/* (fields after weight start at zero) */
#define K(nm, me, pa, bo, we) {.name = nm, .method = me, .path = pa, .body = bo, .weight = we}
static kind_t kinds[] = {
    K("healthz", "GET", "/healthz", NULL, 4),
    K("readyz", "GET", "/readyz", NULL, 1),
    K("models", "GET", "/models", NULL, 1),
    K("model_metadata", "GET", "/models/breast_cancer", NULL, 1),
    K("metrics", "GET", "/metrics", NULL, 1),
    K("predict_1", "POST", "/predict", "{\"model\":\"iris\",\"instances\":[" IRIS_ROW "]}", 4),
    K("predict_100", "POST", "/predict", predict100, 1),
    K("lime_bc_5000", "POST", "/explain/lime", "{\"model\":\"breast_cancer\",\"instance\":" BC_ROW ",\"num_samples\":5000}", 2),
    K("lime_iris", "POST", "/explain/lime", "{\"model\":\"iris\",\"instance\":" IRIS_ROW ",\"num_samples\":1000,\"seed\":7}", 1),
    K("gradient_ig", "POST", "/explain/gradient", "{\"model\":\"breast_cancer\",\"instance\":" BC_ROW "}", 1),
    K("gradient_smoothgrad", "POST", "/explain/gradient",
     "{\"model\":\"iris\",\"instance\":" IRIS_ROW ",\"method\":\"smoothgrad\",\"seed\":2}", 1),
    K("shap_iris", "POST", "/explain/shap", "{\"model\":\"iris\",\"instance\":" IRIS_ROW ",\"seed\":1}", 1),
    K("shap_bc_kernel", "POST", "/explain/shap",
     "{\"model\":\"breast_cancer\",\"instance\":" BC_ROW ",\"nsamples\":1000,\"background_size\":20}", 1),
    K("importance_perm", "POST", "/importance", "{\"model\":\"credit\",\"n_repeats\":2,\"max_samples\":100}", 1),
    K("importance_olden", "POST", "/importance", "{\"model\":\"breast_cancer\",\"method\":\"olden\"}", 1),
    K("importance_grad", "POST", "/importance", "{\"model\":\"iris\",\"method\":\"mean_abs_gradient\"}", 1),
    K("pdp_bc", "POST", "/explain/pdp", "{\"model\":\"breast_cancer\",\"features\":[\"worst radius\"],\"grid_resolution\":20}", 1),
    K("pdp_credit_pair", "POST", "/explain/pdp", "{\"model\":\"credit\",\"features\":[\"region\",\"employment\"]}", 1),
    K("pdp_diabetes_ice", "POST", "/explain/pdp",
     "{\"model\":\"diabetes\",\"features\":[2],\"kind\":\"both\",\"grid_resolution\":10}", 1),
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop;
static int port;

static long env_long(const char *name, long def, long min) {
  const char *v = getenv(name);
  long x = v && *v ? strtol(v, NULL, 10) : def;
  return x < min ? min : x;
}

/* splitmix64: a fixed, reproducible sequence per client */
static uint64_t next_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void *client_main(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg;
  int total = 0;
  for (size_t k = 0; k < N_KINDS; k++) total += kinds[k].weight;
  while (!atomic_load(&stop)) {
    int pick = (int)(next_rand(&seed) % (uint64_t)total);
    size_t k = 0;
    while (pick >= kinds[k].weight) pick -= kinds[k++].weight;
    kind_t *kd = &kinds[k];
    xd_http_resp_t r;
    double t0 = xd_ms_now();
    int rc = xd_http(port, kd->method, kd->path, NULL, kd->body, kd->body ? strlen(kd->body) : 0, &r);
    double ms = xd_ms_now() - t0;
    int st = rc == 0 ? r.status : -1;
    xd_http_resp_free(&r);
    pthread_mutex_lock(&mu);
    kd->n++;
    if (st == 200) {
      kd->ok++;
      if (kd->n_lat < LAT_CAP) kd->lat[kd->n_lat++] = ms;
    } else if (st == 503) {
      kd->busy++;
    } else if (st < 0) {
      kd->conn_err++;
    } else if (st >= 500) {
      kd->server_err++;
      kd->last_bad_status = st;
    } else {
      kd->client_err++;
      kd->last_bad_status = st;
    }
    pthread_mutex_unlock(&mu);
    if (st == 503) xd_sleep_ms(20); /* back off a little, as a client honouring Retry-After would */
  }
  return NULL;
}

static long vmrss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p) {
  if (!n) return 0;
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return v[i < n ? i : n - 1];
}

static int passed, failed;
static void check(int ok, const char *what, const char *detail) {
  if (ok) passed++;
  else failed++;
  printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what, detail && *detail ? ": " : "", detail ? detail : "");
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  long seconds = env_long("SOAK_SECONDS", 300, 10);
  long warmup = env_long("SOAK_WARMUP", seconds >= 240 ? 60 : seconds / 4, 1);
  long clients = env_long("SOAK_CLIENTS", 12, 1); /* > the default queue (4 x workers): some 503s */
  long sample_ms = env_long("SOAK_SAMPLE_MS", 2000, 100);
  if (warmup >= seconds) warmup = seconds / 4;

  /* /predict with 100 breast_cancer rows */
  size_t pos = (size_t)snprintf(predict100, sizeof predict100, "{\"model\":\"breast_cancer\",\"instances\":[");
  for (int i = 0; i < 100; i++) pos += (size_t)snprintf(predict100 + pos, sizeof predict100 - pos, "%s%s", i ? "," : "", BC_ROW);
  snprintf(predict100 + pos, sizeof predict100 - pos, "]}");
  for (size_t k = 0; k < N_KINDS; k++) kinds[k].lat = malloc(LAT_CAP * sizeof(double));

  const char *args[] = {"--log-level", "warn", NULL}; /* no access log: it would fill the disk */
  xd_server_t s;
  if (xd_server_start(&s, args, NULL) != 0) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  port = s.port;
  printf("soak: %ld s (warm-up %ld s), %ld clients, RSS every %ld ms, server pid %d port %d\n", seconds, warmup,
         clients, sample_ms, (int)s.pid, s.port);
  fflush(stdout);

  pthread_t *th = calloc((size_t)clients, sizeof *th);
  atomic_init(&stop, 0);
  for (long i = 0; i < clients; i++) pthread_create(&th[i], NULL, client_main, (void *)(uintptr_t)(i * 7919 + 1));

  size_t cap = (size_t)(seconds * 1000 / sample_ms) + 8, ns = 0;
  long *rss = calloc(cap, sizeof *rss);
  double *at = calloc(cap, sizeof *at);
  double t0 = xd_ms_now();
  long warm_peak = 0, after_peak = 0;
  double next_report = 30000;
  while (xd_ms_now() - t0 < (double)seconds * 1000) {
    xd_sleep_ms((int)sample_ms);
    long kb = vmrss_kb(s.pid);
    double t = xd_ms_now() - t0;
    if (kb > 0 && ns < cap) {
      rss[ns] = kb;
      at[ns++] = t / 1000;
      if (t < (double)warmup * 1000) {
        if (kb > warm_peak) warm_peak = kb;
      } else if (kb > after_peak) after_peak = kb;
    }
    if (t >= next_report) {
      long n = 0, bad = 0;
      pthread_mutex_lock(&mu);
      for (size_t k = 0; k < N_KINDS; k++) n += kinds[k].n, bad += kinds[k].server_err + kinds[k].client_err;
      pthread_mutex_unlock(&mu);
      printf("  %4.0f s: %ld requests, %ld unexpected, RSS %ld KiB\n", t / 1000, n, bad, kb);
      fflush(stdout);
      next_report += 30000;
    }
  }
  atomic_store(&stop, 1);
  for (long i = 0; i < clients; i++) pthread_join(th[i], NULL);
  double elapsed = (xd_ms_now() - t0) / 1000;
  int exit_status = xd_server_stop(&s);

  /* ---- summary ---- */
  long n = 0, ok = 0, busy = 0, s5 = 0, s4 = 0, ce = 0;
  int all_served = 1;
  char missing[512] = "";
  printf("\n%-20s %8s %8s %6s %6s %6s %9s %9s\n", "endpoint", "requests", "200", "503", "other", "conn", "p50 ms",
         "p99 ms");
  for (size_t k = 0; k < N_KINDS; k++) {
    kind_t *kd = &kinds[k];
    qsort(kd->lat, kd->n_lat, sizeof *kd->lat, cmp_double);
    printf("%-20s %8ld %8ld %6ld %6ld %6ld %9.2f %9.2f\n", kd->name, kd->n, kd->ok, kd->busy,
           kd->server_err + kd->client_err, kd->conn_err, pct(kd->lat, kd->n_lat, 0.5), pct(kd->lat, kd->n_lat, 0.99));
    if (kd->server_err + kd->client_err)
      printf("    %s: last unexpected status %d\n", kd->name, kd->last_bad_status);
    n += kd->n, ok += kd->ok, busy += kd->busy, s5 += kd->server_err, s4 += kd->client_err, ce += kd->conn_err;
    if (!kd->ok) {
      all_served = 0;
      snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s", kd->name);
    }
  }
  printf("total: %ld requests in %.0f s (%.0f/s): %ld x 200, %ld x 503, %ld other 5xx, %ld 4xx, %ld connection errors\n",
         n, elapsed, (double)n / elapsed, ok, busy, s5, s4, ce);

  printf("\nRSS (KiB), every %ld ms:", sample_ms);
  for (size_t i = 0; i < ns; i++) printf("%s%ld", i % 12 ? " " : "\n  ", rss[i]);
  long last3 = 0;
  for (size_t i = ns > 3 ? ns - 3 : 0; i < ns; i++)
    if (rss[i] > last3) last3 = rss[i];
  /* least-squares slope after warm-up, for the record */
  double sx = 0, sy = 0, sxx = 0, sxy = 0, m = 0;
  for (size_t i = 0; i < ns; i++)
    if (at[i] >= (double)warmup) sx += at[i], sy += (double)rss[i], sxx += at[i] * at[i], sxy += at[i] * (double)rss[i], m++;
  double slope = m > 2 && (m * sxx - sx * sx) != 0 ? (m * sxy - sx * sy) / (m * sxx - sx * sx) * 60 : 0;
  double growth = warm_peak > 0 ? 100.0 * (double)(last3 - warm_peak) / (double)warm_peak : 0;
  printf("\nRSS: warm-up peak %ld KiB, peak after warm-up %ld KiB, end %ld KiB: growth %+.1f%% (slope %+.0f KiB/min)\n\n",
         warm_peak, after_peak, last3, growth, slope);

  char d[256];
  snprintf(d, sizeof d, "%ld other 5xx", s5);
  check(s5 == 0, "no 5xx other than 503", s5 ? d : NULL);
  snprintf(d, sizeof d, "%ld 4xx, %ld connection errors", s4, ce);
  check(s4 == 0 && ce == 0, "every answer 200 or 503, no connection error", s4 || ce ? d : NULL);
  check(all_served, "every endpoint answered 200", all_served ? NULL : missing);
  snprintf(d, sizeof d, "%+.1f%% (%ld -> %ld KiB)", growth, warm_peak, last3);
  check(warm_peak > 0 && ns > 3 && growth < 10.0, "RSS growth after warm-up under 10%", d);
  snprintf(d, sizeof d, "exit status %d", exit_status);
  check(exit_status == 0, "SIGTERM drains and exits 0", exit_status ? d : NULL);
  printf("%d passed, %d failed\n", passed, failed);
  for (size_t k = 0; k < N_KINDS; k++) free(kinds[k].lat);
  free(rss);
  free(at);
  free(th);
  return failed ? 1 : 0;
}
