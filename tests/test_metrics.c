/* test_metrics.c — GET /metrics end to end: after traffic on several endpoints (200s, a
 * 404 path, an unknown model, a 503 overload, a 504 deadline, V2 infer, LIME), the page
 * is Prometheus text format 0.0.4 with every family of api/metrics.h, sane values
 * (counters grow with traffic, histogram buckets cumulative with +Inf == _count, the
 * request histogram's count equal to the request counter's sum), model labels only for
 * served models, and the real `promtool check metrics` accepts it.
 *
 * promtool: $PROMTOOL, else $BUILD/tools/promtool (`make edge-deps` unpacks it from
 * Debian's prometheus package), else promtool on PATH. Missing, the promtool test is a
 * skip, except under CI=true where it is a failure.
 * Closing line: "N passed, N failed, N skipped".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/test.h"

static const char *const IRIS = "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]]}";
static int n_skipped;

static int under_ci(void) {
  const char *ci = getenv("CI");
  return ci && *ci && strcmp(ci, "false") != 0 && strcmp(ci, "0") != 0;
}

static void skip(const char *name, const char *why) {
  if (under_ci()) {
    xd_test_failed++;
    fprintf(stderr, "FAIL %s: %s (a skip is a failure under CI)\n", name, why);
    return;
  }
  n_skipped++;
  fprintf(stderr, "skip %s: %s\n", name, why);
}

/* ---- a small parser of the text format ------------------------------------------------ */

typedef struct sample {
  char name[128];
  char labels[512]; /* raw text between the braces */
  double value;
} sample_t;

typedef struct scrape {
  char *text;
  sample_t *s;
  size_t n;
  int bad_lines; /* sample lines that did not parse */
} scrape_t;

/* Parses one sample line; 0 on success. Label values may hold escaped quotes. */
static int parse_line(const char *line, sample_t *out) {
  size_t i = 0;
  while (line[i] && line[i] != '{' && line[i] != ' ') i++;
  if (i == 0 || i >= sizeof out->name) return -1;
  memcpy(out->name, line, i);
  out->name[i] = '\0';
  out->labels[0] = '\0';
  if (line[i] == '{') {
    size_t j = i + 1, o = 0;
    int inq = 0;
    for (; line[j] && (inq || line[j] != '}'); j++) {
      if (inq && line[j] == '\\' && line[j + 1]) {
        if (o + 2 >= sizeof out->labels) return -1;
        out->labels[o++] = line[j++];
      } else if (line[j] == '"') {
        inq = !inq;
      }
      if (o + 1 >= sizeof out->labels) return -1;
      out->labels[o++] = line[j];
    }
    if (line[j] != '}') return -1;
    out->labels[o] = '\0';
    i = j + 1;
  }
  if (line[i] != ' ') return -1;
  char *end;
  out->value = strtod(line + i + 1, &end);
  if (end == line + i + 1 || (*end && *end != '\n' && *end != ' ')) return -1;
  return 0;
}

static int scrape(int port, scrape_t *sc, char *content_type, size_t ct_cap) {
  memset(sc, 0, sizeof *sc);
  xd_http_resp_t r;
  if (xd_http(port, "GET", "/metrics", NULL, NULL, 0, &r) != 0) return -1;
  if (r.status != 200) {
    xd_http_resp_free(&r);
    return -1;
  }
  const char *ct = xd_http_header(&r, "Content-Type");
  if (content_type) snprintf(content_type, ct_cap, "%s", ct ? ct : "");
  sc->text = strdup(r.body ? r.body : "");
  xd_http_resp_free(&r);
  size_t cap = 256;
  sc->s = calloc(cap, sizeof *sc->s);
  char *save = NULL, *copy = strdup(sc->text);
  for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#') continue;
    if (sc->n == cap) sc->s = realloc(sc->s, (cap *= 2) * sizeof *sc->s);
    if (parse_line(line, &sc->s[sc->n]) == 0) sc->n++;
    else sc->bad_lines++;
  }
  free(copy);
  return 0;
}

static void scrape_free(scrape_t *sc) {
  free(sc->text);
  free(sc->s);
}

/* The value of label key in s (unescaped text is fine here: our values have no escapes). */
static int label(const sample_t *s, const char *key, char *out, size_t cap) {
  size_t kl = strlen(key);
  for (const char *p = s->labels; (p = strstr(p, key)); p++) {
    if ((p == s->labels || p[-1] == ',') && strncmp(p + kl, "=\"", 2) == 0) {
      const char *v = p + kl + 2, *e = strchr(v, '"');
      if (!e) return -1;
      snprintf(out, cap, "%.*s", (int)(e - v), v);
      return 0;
    }
  }
  return -1;
}

static int has_label(const sample_t *s, const char *key, const char *want) {
  char v[256];
  return label(s, key, v, sizeof v) == 0 && strcmp(v, want) == 0;
}

/* Sum of the samples named name whose labels match every key=value pair of the
 * NULL-terminated list; 0 when none. */
static double sum_of(const scrape_t *sc, const char *name, const char *const *kv) {
  double t = 0;
  for (size_t i = 0; i < sc->n; i++) {
    if (strcmp(sc->s[i].name, name) != 0) continue;
    int ok = 1;
    for (size_t k = 0; kv && kv[k] && ok; k += 2) ok = has_label(&sc->s[i], kv[k], kv[k + 1]);
    if (ok) t += sc->s[i].value;
  }
  return t;
}

static int has_family(const scrape_t *sc, const char *name, const char *type) {
  char h[200], t[200];
  snprintf(h, sizeof h, "# HELP %s ", name);
  snprintf(t, sizeof t, "# TYPE %s %s\n", name, type);
  return strstr(sc->text, h) && strstr(sc->text, t);
}

/* ---- traffic ---------------------------------------------------------------------------- */

typedef struct call {
  int port;
  const char *body;
  xd_http_resp_t resp;
  int rc;
  pthread_t t;
} call_t;

static void *call_main(void *arg) {
  call_t *c = arg;
  c->rc = xd_http(c->port, "POST", "/predict", NULL, c->body, strlen(c->body), &c->resp);
  return NULL;
}

static int post(int port, const char *path, const char *body) {
  xd_http_resp_t r;
  if (xd_http(port, "POST", path, NULL, body, strlen(body), &r) != 0) return -1;
  int st = r.status;
  xd_http_resp_free(&r);
  return st;
}

static int get(int port, const char *path) {
  xd_http_resp_t r;
  if (xd_http(port, "GET", path, NULL, NULL, 0, &r) != 0) return -1;
  int st = r.status;
  xd_http_resp_free(&r);
  return st;
}

static xd_server_t srv;
static scrape_t before, after;
static char after_ct[128];

/* One worker, one slot, each part held 300 ms: a second request while one is in flight
 * is a 503, and a 50 ms deadline is a 504. */
static int run_traffic(void) {
  if (scrape(srv.port, &before, NULL, 0) != 0) return -1;
  int ok = 1;
  for (int i = 0; i < 3; i++) ok &= post(srv.port, "/predict", IRIS) == 200;
  ok &= post(srv.port, "/predict", "{\"model\":\"no-such-model-x7\",\"instances\":[[1,2,3,4]]}") == 404;
  ok &= get(srv.port, "/no/such/path") == 404;
  ok &= get(srv.port, "/models") == 200;
  ok &= get(srv.port, "/models/no-such-model-y8") == 404;
  ok &= post(srv.port, "/v2/models/no-such-model-z9/infer", "{\"inputs\":[]}") == 404;
  ok &= post(srv.port, "/v2/models/iris/infer",
             "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP64\",\"data\":[5.1,3.5,1.4,0.2]}]}") == 200;
  ok &= post(srv.port, "/explain/lime", "{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"num_samples\":200,\"seed\":1}") == 200;
  ok &= post(srv.port, "/predict", "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]],\"timeout_ms\":50}") == 504;
  call_t a;
  memset(&a, 0, sizeof a);
  a.port = srv.port;
  a.body = IRIS;
  pthread_create(&a.t, NULL, call_main, &a);
  int st = 0;
  for (int i = 0; i < 100 && st != 503; i++) { /* until the first one holds the slot */
    xd_sleep_ms(10);
    st = post(srv.port, "/predict", IRIS);
  }
  pthread_join(a.t, NULL);
  ok &= st == 503 && a.rc == 0 && a.resp.status == 200;
  xd_http_resp_free(&a.resp);
  xd_sleep_ms(50); /* the last request is counted when MHD reports it complete */
  if (!ok) fprintf(stderr, "  some traffic did not get the expected status (last overload try: %d)\n", st);
  return scrape(srv.port, &after, after_ct, sizeof after_ct) == 0 && ok ? 0 : -1;
}

/* ---- tests ------------------------------------------------------------------------------ */

TEST(content_type_and_every_family) {
  CHECK_MSG(strncmp(after_ct, "text/plain; version=0.0.4", 25) == 0, "Content-Type %s", after_ct);
  CHECK(after.bad_lines == 0);
  size_t len = strlen(after.text);
  CHECK(len > 0 && after.text[len - 1] == '\n');
  static const char *const fams[][2] = {
      {"explaind_requests_total", "counter"},
      {"explaind_request_duration_seconds", "histogram"},
      {"explaind_queue_duration_seconds", "histogram"},
      {"explaind_compute_duration_seconds", "histogram"},
      {"explaind_rejected_total", "counter"},
      {"explaind_model_rows_total", "counter"},
      {"explaind_inflight_jobs", "gauge"},
      {"explaind_queue_capacity", "gauge"},
      {"explaind_model_info", "gauge"},
      {"explaind_models_loaded", "gauge"},
      {"explaind_ready", "gauge"},
      {"explaind_build_info", "gauge"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_cpu_seconds_total", "counter"},
      {"process_open_fds", "gauge"},
      {"process_start_time_seconds", "gauge"},
  };
  for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++)
    CHECK_MSG(has_family(&after, fams[i][0], fams[i][1]), "family %s (%s) missing", fams[i][0], fams[i][1]);
}

TEST(counters_follow_traffic) {
  const char *ok200[] = {"endpoint", "predict", "model", "iris", "code", "200", NULL};
  double d = sum_of(&after, "explaind_requests_total", ok200) - sum_of(&before, "explaind_requests_total", ok200);
  CHECK_MSG(d >= 4, "predict/iris/200 grew by %g", d);
  const char *c404[] = {"endpoint", "predict", "code", "404", NULL};
  CHECK(sum_of(&after, "explaind_requests_total", c404) >= 1);
  const char *c503[] = {"endpoint", "predict", "code", "503", NULL};
  CHECK(sum_of(&after, "explaind_requests_total", c503) >= 1);
  const char *c504[] = {"endpoint", "predict", "code", "504", NULL};
  CHECK(sum_of(&after, "explaind_requests_total", c504) >= 1);
  const char *other404[] = {"code", "404", NULL};
  CHECK(sum_of(&after, "explaind_requests_total", other404) >= 4);
  const char *full[] = {"endpoint", "predict", "reason", "queue_full", NULL};
  CHECK(sum_of(&after, "explaind_rejected_total", full) >= 1);
  const char *rows[] = {"endpoint", "predict", NULL};
  CHECK(sum_of(&after, "explaind_model_rows_total", rows) > sum_of(&before, "explaind_model_rows_total", rows));
  const char *pq[] = {"endpoint", "predict", NULL};
  CHECK(sum_of(&after, "explaind_queue_duration_seconds_count", pq) >= 4);
  CHECK(sum_of(&after, "explaind_compute_duration_seconds_count", pq) >= 4);
  const char *lime[] = {"endpoint", "explain_lime", "model", "iris", NULL};
  CHECK_MSG(sum_of(&after, "explaind_compute_duration_seconds_count", lime) >= 1, "no LIME compute sample");
  /* every counter is monotonic between the two scrapes */
  for (size_t i = 0; i < before.n; i++) {
    const sample_t *b = &before.s[i];
    size_t nl = strlen(b->name);
    int counter = (nl > 6 && strcmp(b->name + nl - 6, "_total") == 0) || strstr(b->name, "_count") ||
                  strstr(b->name, "_bucket");
    if (!counter) continue;
    for (size_t j = 0; j < after.n; j++)
      if (strcmp(after.s[j].name, b->name) == 0 && strcmp(after.s[j].labels, b->labels) == 0)
        CHECK_MSG(after.s[j].value >= b->value, "%s{%s} went down", b->name, b->labels);
  }
}

TEST(gauges_sane) {
  CHECK(sum_of(&after, "explaind_inflight_jobs", NULL) == 0); /* nothing in flight at the scrape */
  CHECK(sum_of(&after, "explaind_queue_capacity", NULL) == 1);
  CHECK(sum_of(&after, "explaind_ready", NULL) == 1);
  CHECK(sum_of(&after, "explaind_models_loaded", NULL) == 8); /* five tabular demo models, one image, two text */
  const char *iris[] = {"model", "iris", NULL};
  CHECK(sum_of(&after, "explaind_model_info", iris) == 1);
  CHECK(sum_of(&after, "explaind_build_info", NULL) == 1);
  CHECK(sum_of(&after, "process_resident_memory_bytes", NULL) > 1e6);
  CHECK(sum_of(&after, "process_open_fds", NULL) >= 3);
  CHECK(sum_of(&after, "process_cpu_seconds_total", NULL) >= 0);
  double start = sum_of(&after, "process_start_time_seconds", NULL);
  CHECK_MSG(start > (double)time(NULL) - 600 && start <= (double)time(NULL) + 1, "start time %f", start);
}

/* Per histogram series: le ascending, counts cumulative, +Inf == _count, _sum >= 0. */
TEST(histograms_cumulative) {
  int checked = 0;
  for (size_t i = 0; i < after.n; i++) {
    const sample_t *s = &after.s[i];
    size_t nl = strlen(s->name);
    if (nl < 7 || strcmp(s->name + nl - 7, "_bucket") != 0) continue;
    char le[32];
    if (label(s, "le", le, sizeof le) != 0) {
      CHECK_MSG(0, "bucket without le: %s{%s}", s->name, s->labels);
      continue;
    }
    if (strcmp(le, "+Inf") != 0) continue;
    /* the series' other labels: the text before ",le=" (le is always last here) */
    char base[128], rest[512];
    snprintf(base, sizeof base, "%.*s", (int)(nl - 7), s->name);
    const char *lp = strstr(s->labels, "le=\"+Inf\"");
    snprintf(rest, sizeof rest, "%.*s", (int)(lp - s->labels), s->labels);
    double prev_le = -1, prev_count = 0, count = -1, sum = -1;
    int nb = 0, ordered = 1;
    size_t rl = strlen(rest);
    char plain[512], cn[160], sn[160]; /* the labels of _count and _sum: rest without its comma */
    snprintf(plain, sizeof plain, "%.*s", (int)(rl ? rl - 1 : 0), rest);
    snprintf(cn, sizeof cn, "%s_count", base);
    snprintf(sn, sizeof sn, "%s_sum", base);
    for (size_t j = 0; j < after.n; j++) {
      const sample_t *b = &after.s[j];
      if (strcmp(b->name, s->name) == 0 && strncmp(b->labels, rest, rl) == 0 && strncmp(b->labels + rl, "le=", 3) == 0) {
        char bl[32];
        label(b, "le", bl, sizeof bl);
        double v = strcmp(bl, "+Inf") == 0 ? 1e308 : strtod(bl, NULL);
        ordered &= v > prev_le && b->value >= prev_count;
        prev_le = v;
        prev_count = b->value;
        nb++;
      } else if (strcmp(b->name, cn) == 0 && strcmp(b->labels, plain) == 0) {
        count = b->value;
      } else if (strcmp(b->name, sn) == 0 && strcmp(b->labels, plain) == 0) {
        sum = b->value;
      }
    }
    CHECK_MSG(ordered && nb >= 2, "%s{%s}: buckets not cumulative (%d buckets)", s->name, rest, nb);
    CHECK_MSG(count == s->value, "%s{%s}: +Inf %g != _count %g", s->name, rest, s->value, count);
    CHECK_MSG(sum >= 0, "%s{%s}: no _sum", base, rest);
    checked++;
  }
  CHECK_MSG(checked >= 6, "only %d histogram series", checked);
  /* the request histogram counts exactly what the request counter counts */
  for (size_t i = 0; i < after.n; i++) {
    const sample_t *s = &after.s[i];
    if (strcmp(s->name, "explaind_request_duration_seconds_count") != 0) continue;
    char ep[64], mo[80];
    label(s, "endpoint", ep, sizeof ep);
    label(s, "model", mo, sizeof mo);
    const char *kv[] = {"endpoint", ep, "model", mo, NULL};
    CHECK_MSG(sum_of(&after, "explaind_requests_total", kv) == s->value, "endpoint %s model %s", ep, mo);
  }
}

TEST(model_labels_only_for_served_models) {
  CHECK(strstr(after.text, "no-such-model") == NULL);
  static const char *const served[] = {"",       "iris",   "wine",         "diabetes",   "breast_cancer",
                                       "credit", "shapes", "reviews_bert", "reviews_gru"};
  for (size_t i = 0; i < after.n; i++) {
    char m[128];
    if (label(&after.s[i], "model", m, sizeof m) != 0) continue;
    int ok = 0;
    for (size_t k = 0; k < sizeof served / sizeof served[0]; k++) ok |= strcmp(m, served[k]) == 0;
    CHECK_MSG(ok, "model label '%s' in %s", m, after.s[i].name);
  }
}

static const char *promtool_path(char *buf, size_t cap) {
  const char *e = getenv("PROMTOOL");
  if (e && *e) return e;
  const char *b = getenv("BUILD");
  snprintf(buf, cap, "%s/tools/promtool", b && *b ? b : "build");
  if (access(buf, X_OK) == 0) return buf;
  if (system("command -v promtool >/dev/null 2>&1") == 0) return "promtool";
  return NULL;
}

static void promtool_check(void) {
  char pbuf[512];
  const char *pt = promtool_path(pbuf, sizeof pbuf);
  if (!pt) {
    skip("promtool_check_metrics", "needs promtool (make edge-deps unpacks it from Debian's prometheus package)");
    return;
  }
  xd_test_cur_name = "promtool_check_metrics";
  xd_test_cur_failed = 0;
  char path[256], cmd[1200], out[4096];
  snprintf(path, sizeof path, "/tmp/explaind-metrics-%d.txt", (int)getpid());
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (f) {
    fputs(after.text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' check metrics < %s 2>&1", pt, path);
    FILE *p = popen(cmd, "r");
    size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[got] = '\0';
    int st = p ? pclose(p) : -1;
    CHECK_MSG(st == 0, "promtool exit %d: %s", WIFEXITED(st) ? WEXITSTATUS(st) : st, out);
    unlink(path);
  }
  if (xd_test_cur_failed) {
    xd_test_failed++;
    fprintf(stderr, "FAIL promtool_check_metrics\n");
  } else {
    xd_test_passed++;
    fprintf(stderr, "ok   promtool_check_metrics\n");
  }
}

int main(void) {
  const char *args[] = {"--workers", "1", "--queue-size", "1", "--inline-predict-rows", "0", NULL};
  char delay[64];
  snprintf(delay, sizeof delay, "EXPLAIND_TEST_PART_DELAY_MS=%d", xd_under_valgrind() ? 1500 : 300);
  const char *env[] = {delay, NULL};
  if (xd_server_start(&srv, args, env) != 0) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  xd_test_cur_name = "traffic";
  xd_test_cur_failed = 0;
  CHECK(run_traffic() == 0);
  if (xd_test_cur_failed) {
    xd_test_failed++;
    fprintf(stderr, "FAIL traffic\n");
  } else {
    xd_test_passed++;
    fprintf(stderr, "ok   traffic\n");
  }
  if (after.text) {
    RUN(content_type_and_every_family);
    RUN(counters_follow_traffic);
    RUN(gauges_sane);
    RUN(histograms_cumulative);
    RUN(model_labels_only_for_served_models);
    promtool_check();
  }
  int st = xd_server_stop(&srv);
  if (st != 0) {
    fprintf(stderr, "FAIL server exit status %d\n", st);
    xd_test_failed++;
  }
  scrape_free(&before);
  scrape_free(&after);
  printf("%d passed, %d failed, %d skipped\n", xd_test_passed, xd_test_failed, n_skipped);
  return xd_test_failed ? 1 : 0;
}
