/* test_load.c — the server under load, end to end with the real binary and real model
 * work (no EXPLAIND_TEST_PART_DELAY_MS): admission (503 + Retry-After, then recovery),
 * deadlines (504, and the worker is free again at once), /healthz latency while the
 * queue is full, fairness between a big request and small ones, SIGTERM during 20
 * in-flight explanations, and a client that disconnects (its job is canceled).
 *
 * The work is LIME on breast_cancer (30 features): one instance with 20,000 samples is
 * ~15 ms of one core here, so "long" requests are batches of instances (each instance is
 * one part of the job). The machine has 2 cores shared with other builds: every timing
 * bound is generous, and the checks compare durations with each other (a freed worker
 * against the work it skipped) rather than with absolute figures where possible.
 * Everything talks to 127.0.0.1 only; every loop is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/test.h"

static const char *const IRIS = "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]]}";
static const char *const BC_ROW =
    "[17.99,10.38,122.8,1001.0,0.1184,0.2776,0.3001,0.1471,0.2419,0.07871,1.095,0.9053,8.589,153.4,"
    "0.006399,0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,2019.0,0.1622,0.6656,0.7119,"
    "0.2654,0.4601,0.1189]";

/* Under valgrind everything is ~20x slower: stretch the bounds. */
static int scaled(int ms) { return xd_under_valgrind() ? ms * 20 : ms; }

static int body_has(const xd_http_resp_t *r, const char *s) { return r->body && strstr(r->body, s) != NULL; }

/* {"model":"breast_cancer","instances":[n rows],"num_samples":ns,"seed":1<extra>}; free it. */
static char *lime_body(size_t n, unsigned ns, const char *extra) {
  size_t rl = strlen(BC_ROW);
  char *b = malloc(256 + n * (rl + 1) + (extra ? strlen(extra) : 0));
  size_t pos = (size_t)sprintf(b, "{\"model\":\"breast_cancer\",\"instances\":[");
  for (size_t i = 0; i < n; i++) {
    memcpy(b + pos, BC_ROW, rl);
    pos += rl;
    b[pos++] = i + 1 < n ? ',' : ']';
  }
  sprintf(b + pos, ",\"num_samples\":%u,\"seed\":1%s}", ns, extra ? extra : "");
  return b;
}

/* {"model":"breast_cancer","instances":[n rows]} for /predict. */
static char *predict_body(size_t n) {
  size_t rl = strlen(BC_ROW);
  char *b = malloc(64 + n * (rl + 1));
  size_t pos = (size_t)sprintf(b, "{\"model\":\"breast_cancer\",\"instances\":[");
  for (size_t i = 0; i < n; i++) {
    memcpy(b + pos, BC_ROW, rl);
    pos += rl;
    b[pos++] = i + 1 < n ? ',' : ']';
  }
  sprintf(b + pos, "}");
  return b;
}

static int post(int port, const char *path, const char *body, xd_http_resp_t *r) {
  return xd_http(port, "POST", path, NULL, body, strlen(body), r);
}

/* Status of one request (-1: connection error); ms, when given, gets its latency. */
static int status_of(int port, const char *method, const char *path, const char *body, double *ms) {
  xd_http_resp_t r;
  double t0 = xd_ms_now();
  int rc = xd_http(port, method, path, NULL, body, body ? strlen(body) : 0, &r);
  if (ms) *ms = xd_ms_now() - t0;
  int st = rc == 0 ? r.status : -1;
  xd_http_resp_free(&r);
  return st;
}

/* The value of a plain (label-less) gauge in /metrics, or -1. */
static long metric(int port, const char *name) {
  xd_http_resp_t r;
  long v = -1;
  if (xd_http(port, "GET", "/metrics", NULL, NULL, 0, &r) == 0 && r.status == 200 && r.body) {
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(r.body, key);
    if (p) v = strtol(p + strlen(key), NULL, 10);
  }
  xd_http_resp_free(&r);
  return v;
}

/* Polls the gauge until it equals want, at most ms. Returns the ms waited, or -1. */
static double wait_metric(int port, const char *name, long want, int ms) {
  double t0 = xd_ms_now();
  while (xd_ms_now() - t0 < ms) {
    if (metric(port, name) == want) return xd_ms_now() - t0;
    xd_sleep_ms(5);
  }
  return -1;
}

/* A plain TCP connection to 127.0.0.1:port, or -1 (errno set: ECONNREFUSED when nothing
 * listens). */
static int tcp_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static int start(xd_server_t *s, const char *const *args) {
  if (xd_server_start(s, args, NULL) != 0) return -1;
  if (xd_server_wait_ready(s, 10000) != 0) {
    xd_server_stop(s);
    return -1;
  }
  return 0;
}

static double pct(double *v, size_t n, double p) { /* sorts v */
  for (size_t i = 1; i < n; i++) {
    double x = v[i];
    size_t j = i;
    while (j > 0 && v[j - 1] > x) v[j] = v[j - 1], j--;
    v[j] = x;
  }
  size_t k = (size_t)(p * (double)(n - 1) + 0.5);
  return v[k < n ? k : n - 1];
}

/* ---- admission: 503 + Retry-After when the queue is full, then recovery --------------- */

typedef struct storm {
  int port, n;
  const char *body;
  int ok, busy, other, no_retry_after, bad_body, conn_err;
  int other_status;
  pthread_t t;
} storm_t;

static void *storm_main(void *arg) {
  storm_t *s = arg;
  for (int i = 0; i < s->n; i++) {
    xd_http_resp_t r;
    if (post(s->port, "/explain/lime", s->body, &r) != 0) {
      s->conn_err++;
      continue;
    }
    if (r.status == 200) {
      s->ok++;
    } else if (r.status == 503) {
      s->busy++;
      const char *ra = xd_http_header(&r, "Retry-After");
      if (!ra || atoi(ra) < 1) s->no_retry_after++;
      if (!body_has(&r, "\"code\":\"overloaded\"")) s->bad_body++;
    } else {
      s->other++;
      s->other_status = r.status;
    }
    xd_http_resp_free(&r);
  }
  return NULL;
}

TEST(queue_full_503_with_retry_after_then_recovers) {
  const char *args[] = {"--workers", "1", "--queue-size", "2", NULL};
  xd_server_t s;
  if (start(&s, args) != 0) {
    CHECK(0);
    return;
  }
  char *body = lime_body(1, 20000, NULL);
  enum { T = 12 };
  storm_t st[T];
  for (int i = 0; i < T; i++) {
    st[i] = (storm_t){.port = s.port, .n = xd_under_valgrind() ? 2 : 15, .body = body};
    pthread_create(&st[i].t, NULL, storm_main, &st[i]);
  }
  int ok = 0, busy = 0, other = 0, nra = 0, bad = 0, cerr = 0, other_status = 0;
  for (int i = 0; i < T; i++) {
    pthread_join(st[i].t, NULL);
    ok += st[i].ok, busy += st[i].busy, other += st[i].other;
    nra += st[i].no_retry_after, bad += st[i].bad_body, cerr += st[i].conn_err;
    if (st[i].other) other_status = st[i].other_status;
  }
  fprintf(stderr, "  storm: %d x 200, %d x 503, %d other, %d connection errors\n", ok, busy, other, cerr);
  CHECK_MSG(busy > 0, "12 clients against a queue of 2 never saw 503");
  CHECK(ok > 0);
  CHECK_MSG(other == 0, "%d answers were neither 200 nor 503 (e.g. %d)", other, other_status);
  CHECK_MSG(cerr == 0, "%d connection errors", cerr);
  CHECK_MSG(nra == 0, "%d 503s without Retry-After", nra);
  CHECK_MSG(bad == 0, "%d 503s without code overloaded", bad);
  /* recovered: sequential requests are all admitted */
  for (int i = 0; i < 10; i++) {
    int code = status_of(s.port, "POST", "/explain/lime", body, NULL);
    CHECK_MSG(code == 200, "request %d after the storm: %d", i, code);
  }
  CHECK(wait_metric(s.port, "explaind_inflight_jobs", 0, scaled(2000)) >= 0); /* the gauge drops just after the answer */
  free(body);
  CHECK(xd_server_stop(&s) == 0);
}

/* ---- deadlines: 504, and the worker is free again at once ----------------------------- */

/* A small job through the same (single) worker: how long it waits says whether the worker
 * still runs the expired job. */
static double small_job_ms(int port, int *code) {
  double ms = 0;
  *code = status_of(port, "POST", "/predict", IRIS, &ms); /* --inline-predict-rows 0: pooled */
  return ms;
}

TEST(deadline_504_frees_the_worker) {
  const char *args[] = {"--workers", "1", "--request-timeout", "400", "--inline-predict-rows", "0", NULL};
  xd_server_t s;
  if (start(&s, args) != 0) {
    CHECK(0);
    return;
  }
  /* How long is one instance of the big job here and now? (3 instances, well inside the
   * 400 ms deadline even on a busy machine: a job that ends after its deadline is a 504) */
  char *one = lime_body(3, 20000, NULL);
  double t0 = xd_ms_now();
  CHECK(status_of(s.port, "POST", "/explain/lime", one, NULL) == 200);
  double per10 = (xd_ms_now() - t0) * 10 / 3;
  free(one);
  /* 300 instances ~ 30 x per10 ms of work: far past both deadlines below. */
  size_t n = 300;
  double full = per10 * (double)n / 10;
  fprintf(stderr, "  10 instances: %.0f ms; the big job would take ~%.0f ms\n", per10, full);

  /* (1) per-request timeout_ms */
  char *big = lime_body(n, 20000, ",\"timeout_ms\":250");
  xd_http_resp_t r;
  t0 = xd_ms_now();
  CHECK(post(s.port, "/explain/lime", big, &r) == 0);
  double took = xd_ms_now() - t0;
  CHECK_MSG(r.status == 504, "status %d", r.status);
  CHECK(body_has(&r, "\"code\":\"deadline_exceeded\""));
  CHECK(body_has(&r, "250 ms"));
  xd_http_resp_free(&r);
  int code;
  double small = small_job_ms(s.port, &code);
  fprintf(stderr, "  timeout_ms 250: 504 after %.0f ms; next small job %.0f ms\n", took, small);
  CHECK(code == 200);
  CHECK_MSG(took < 250 + scaled(1500) && took < full, "504 after %.0f ms", took);
  CHECK_MSG(small < scaled(300), "the next small job took %.0f ms: the worker was not freed", small);
  free(big);

  /* (2) the server's --request-timeout (400 ms) */
  big = lime_body(n, 20000, NULL);
  t0 = xd_ms_now();
  CHECK(post(s.port, "/explain/lime", big, &r) == 0);
  took = xd_ms_now() - t0;
  CHECK_MSG(r.status == 504, "status %d", r.status);
  CHECK(body_has(&r, "\"code\":\"deadline_exceeded\""));
  CHECK(body_has(&r, "400 ms"));
  xd_http_resp_free(&r);
  small = small_job_ms(s.port, &code);
  fprintf(stderr, "  --request-timeout 400: 504 after %.0f ms; next small job %.0f ms\n", took, small);
  CHECK(code == 200);
  CHECK_MSG(took >= 390 && took < 400 + scaled(1500), "504 after %.0f ms", took);
  CHECK_MSG(small < scaled(300), "the next small job took %.0f ms: the worker was not freed", small);
  CHECK(wait_metric(s.port, "explaind_inflight_jobs", 0, scaled(2000)) >= 0); /* the gauge drops just after the answer */
  free(big);
  CHECK(xd_server_stop(&s) == 0);
}

/* ---- /healthz stays fast while the queue is full -------------------------------------- */

typedef struct looper {
  int port;
  const char *body;
  atomic_int *stop;
  int ok, busy, other;
  pthread_t t;
} looper_t;

static void *looper_main(void *arg) {
  looper_t *l = arg;
  for (int i = 0; i < 100000 && !atomic_load(l->stop); i++) {
    int code = status_of(l->port, "POST", "/explain/lime", l->body, NULL);
    if (code == 200) l->ok++;
    else if (code == 503) {
      l->busy++;
      xd_sleep_ms(5); /* a polite client would wait Retry-After; keep the pressure on */
    } else l->other++;
  }
  return NULL;
}

TEST(healthz_p99_under_100ms_with_2x_capacity_in_flight) {
  const char *args[] = {"--workers", "2", "--queue-size", "4", NULL};
  xd_server_t s;
  if (start(&s, args) != 0) {
    CHECK(0);
    return;
  }
  char *body = lime_body(4, 20000, NULL); /* ~60 ms of one core each */
  atomic_int stop;
  atomic_init(&stop, 0);
  enum { L = 8 }; /* 2 x the queue capacity */
  looper_t lp[L];
  for (int i = 0; i < L; i++) {
    lp[i] = (looper_t){.port = s.port, .body = body, .stop = &stop};
    pthread_create(&lp[i].t, NULL, looper_main, &lp[i]);
  }
  double full_ms = wait_metric(s.port, "explaind_inflight_jobs", 4, scaled(5000));
  CHECK_MSG(full_ms >= 0, "the queue never filled up");
  enum { N = 300 };
  double lat[N];
  int bad = 0, saturated = 0;
  for (int i = 0; i < N; i++) {
    if (status_of(s.port, "GET", "/healthz", NULL, &lat[i]) != 200) bad++;
    if (i % 50 == 0 && metric(s.port, "explaind_inflight_jobs") >= 3) saturated++;
    xd_sleep_ms(2);
  }
  atomic_store(&stop, 1);
  int ok = 0, busy = 0, other = 0;
  for (int i = 0; i < L; i++) {
    pthread_join(lp[i].t, NULL);
    ok += lp[i].ok, busy += lp[i].busy, other += lp[i].other;
  }
  double p50 = pct(lat, N, 0.50), p99 = pct(lat, N, 0.99), mx = lat[N - 1];
  fprintf(stderr, "  healthz under load: p50 %.2f ms, p99 %.2f ms, max %.2f ms; LIME %d x 200, %d x 503\n", p50, p99,
          mx, ok, busy);
  CHECK(bad == 0);
  CHECK_MSG(p99 < scaled(100), "healthz p99 %.1f ms", p99);
  CHECK_MSG(saturated >= 3, "the queue was not kept full (%d of 6 samples)", saturated);
  CHECK(ok > 0 && busy > 0 && other == 0);
  free(body);
  CHECK(xd_server_stop(&s) == 0);
}

/* ---- fairness: a big request is split into parts that interleave ---------------------- */

typedef struct big_call {
  int port;
  const char *path, *body;
  int status;
  double ms;
  atomic_int done;
  pthread_t t;
} big_call_t;

static void *big_main(void *arg) {
  big_call_t *b = arg;
  b->status = status_of(b->port, "POST", b->path, b->body, &b->ms);
  atomic_store(&b->done, 1);
  return NULL;
}

static void big_start(big_call_t *b, int port, const char *path, const char *body) {
  memset(b, 0, sizeof *b);
  b->port = port, b->path = path, b->body = body;
  atomic_init(&b->done, 0);
  pthread_create(&b->t, NULL, big_main, b);
}

TEST(fairness_small_requests_interleave_with_a_big_one) {
  /* One worker, and every /predict goes through the pool: small ones can only be fast if
   * the big job gives the worker up between its parts. */
  const char *args[] = {"--workers", "1", "--queue-size", "8", "--inline-predict-rows", "0", NULL};
  xd_server_t s;
  if (start(&s, args) != 0) {
    CHECK(0);
    return;
  }
  char *big = lime_body(200, 20000, NULL); /* 200 parts, seconds of work */
  big_call_t b;
  big_start(&b, s.port, "/explain/lime", big);
  CHECK(wait_metric(s.port, "explaind_inflight_jobs", 1, scaled(3000)) >= 0);
  xd_sleep_ms(100);
  double lat[20], worst = 0;
  int ok = 0, during = 0;
  for (int i = 0; i < 20; i++) {
    int code = status_of(s.port, "POST", "/predict", IRIS, &lat[i]);
    ok += code == 200;
    if (!atomic_load(&b.done)) during++;
    if (lat[i] > worst) worst = lat[i];
  }
  pthread_join(b.t, NULL);
  fprintf(stderr, "  big LIME (200 parts) %.0f ms; 20 small /predict during it: worst %.1f ms (%d answered while it ran)\n",
          b.ms, worst, during);
  CHECK(b.status == 200);
  CHECK(ok == 20);
  CHECK_MSG(during == 20, "only %d small requests were answered before the big one finished", during);
  CHECK_MSG(worst < scaled(300) && worst < b.ms / 4, "a small request waited %.0f ms (big: %.0f ms)", worst, b.ms);
  free(big);

  /* A 10,000-instance /predict (5 parts of 2,048 rows) alongside small ones: all answered,
   * the small ones promptly. */
  char *huge = predict_body(10000);
  big_start(&b, s.port, "/predict", huge);
  worst = 0;
  ok = 0;
  for (int i = 0; i < 20; i++) {
    int code = status_of(s.port, "POST", "/predict", IRIS, &lat[i]);
    ok += code == 200;
    if (lat[i] > worst) worst = lat[i];
  }
  pthread_join(b.t, NULL);
  fprintf(stderr, "  /predict of 10,000 rows %.0f ms; small /predict alongside: worst %.1f ms\n", b.ms, worst);
  CHECK_MSG(b.status == 200, "10,000-row predict: %d", b.status);
  CHECK(ok == 20);
  CHECK_MSG(worst < scaled(500), "a small request waited %.0f ms", worst);
  free(huge);
  CHECK(xd_server_stop(&s) == 0);
}

/* ---- SIGTERM during 20 in-flight explanations ------------------------------------------ */

TEST(sigterm_drains_20_in_flight_explanations) {
  /* --shutdown-delay keeps the listener open for a moment so /readyz can be seen at 503;
   * after it, new connections must be refused while the 20 jobs still run. */
  const char *args[] = {"--workers", "2", "--queue-size", "32", "--shutdown-delay", "300", NULL};
  xd_server_t s;
  if (start(&s, args) != 0) {
    CHECK(0);
    return;
  }
  char *body = lime_body(12, 20000, NULL); /* ~150-200 ms of one core each: > 1.5 s for all */
  enum { N = 20 };
  big_call_t c[N];
  for (int i = 0; i < N; i++) big_start(&c[i], s.port, "/explain/lime", body);
  double in_ms = wait_metric(s.port, "explaind_inflight_jobs", N, scaled(5000));
  CHECK_MSG(in_ms >= 0, "the 20 requests were never in flight together");
  double t0 = xd_ms_now();
  kill(s.pid, SIGTERM);
  /* readiness goes 503 at once (as soon as the signal is delivered: poll briefly) */
  int ready = 0;
  double ready_at = -1;
  while (xd_ms_now() - t0 < scaled(250)) {
    ready = status_of(s.port, "GET", "/readyz", NULL, NULL);
    if (ready == 503) {
      ready_at = xd_ms_now() - t0;
      break;
    }
    xd_sleep_ms(2);
  }
  CHECK_MSG(ready == 503, "/readyz %d 250 ms after SIGTERM", ready);
  /* after the delay: connections refused */
  double refused_at = -1;
  int still_running = 0;
  while (xd_ms_now() - t0 < scaled(5000)) {
    int fd = tcp_connect(s.port);
    if (fd < 0) {
      if (errno == ECONNREFUSED) {
        refused_at = xd_ms_now() - t0;
        for (int i = 0; i < N; i++) still_running += !atomic_load(&c[i].done);
      }
      break;
    }
    close(fd);
    xd_sleep_ms(10);
  }
  CHECK_MSG(refused_at >= 0, "new connections were never refused");
  CHECK_MSG(still_running > 0, "every job had finished before connections were refused: drain not exercised");
  int ok = 0;
  double last = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(c[i].t, NULL);
    ok += c[i].status == 200;
    if (c[i].status != 200) fprintf(stderr, "  in-flight request %d: status %d\n", i, c[i].status);
    if (c[i].ms > last) last = c[i].ms;
  }
  int st = xd_server_wait(&s, scaled(30000));
  fprintf(stderr, "  20 in flight; readyz 503 at %.0f ms, refused at %.0f ms with %d still running; %d x 200; exit %d\n",
          ready_at, refused_at, still_running, ok, st);
  CHECK_MSG(ok == N, "%d of %d in-flight explanations answered 200", ok, N);
  CHECK_MSG(st == 0, "exit status %d", st);
  if (s.pid) xd_server_stop(&s);
  else unlink(s.log_path);
  free(body);
}

/* ---- a client that disconnects does not keep its job running -------------------------- */

TEST(disconnect_cancels_the_job) {
  const char *args[] = {"--workers", "1", "--inline-predict-rows", "0", NULL};
  xd_server_t s;
  if (start(&s, args) != 0) {
    CHECK(0);
    return;
  }
  char *ten = lime_body(10, 20000, NULL);
  double t0 = xd_ms_now();
  CHECK(status_of(s.port, "POST", "/explain/lime", ten, NULL) == 200);
  double per10 = xd_ms_now() - t0;
  free(ten);
  size_t n = 300;
  double full = per10 * (double)n / 10;

  char *big = lime_body(n, 20000, NULL);
  size_t len = strlen(big);
  char *req = malloc(len + 256);
  int hl = sprintf(req,
                   "POST /explain/lime HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                   len);
  memcpy(req + hl, big, len);
  int fd = tcp_connect(s.port);
  CHECK(fd >= 0);
  if (fd < 0) goto out;
  size_t sent = 0;
  while (sent < (size_t)hl + len) {
    ssize_t k = send(fd, req + sent, (size_t)hl + len - sent, MSG_NOSIGNAL);
    if (k <= 0) break;
    sent += (size_t)k;
  }
  CHECK(sent == (size_t)hl + len);
  CHECK(wait_metric(s.port, "explaind_inflight_jobs", 1, scaled(3000)) >= 0);
  xd_sleep_ms(200); /* the job is running */
  t0 = xd_ms_now();
  close(fd);
  double freed = wait_metric(s.port, "explaind_inflight_jobs", 0, scaled(10000));
  int code;
  double small = small_job_ms(s.port, &code);
  fprintf(stderr, "  job of ~%.0f ms: freed %.0f ms after the client left; next small job %.0f ms\n", full, freed,
          small);
  CHECK_MSG(freed >= 0, "the job never ended");
  CHECK_MSG(freed < full / 2 && freed < scaled(1000), "the job ran on for %.0f ms after the client left (full: %.0f)",
            freed, full);
  CHECK(code == 200);
  CHECK_MSG(small < scaled(300), "the next small job took %.0f ms", small);
  xd_sleep_ms(50);
  CHECK(xd_server_log_contains(&s, "client closed the connection"));
  CHECK(xd_server_log_contains(&s, "status=499"));
out:
  free(req);
  free(big);
  CHECK(xd_server_stop(&s) == 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  double t0 = xd_ms_now();
  RUN(queue_full_503_with_retry_after_then_recovers);
  RUN(deadline_504_frees_the_worker);
  RUN(healthz_p99_under_100ms_with_2x_capacity_in_flight);
  RUN(fairness_small_requests_interleave_with_a_big_one);
  RUN(sigterm_drains_20_in_flight_explanations);
  RUN(disconnect_cancels_the_job);
  fprintf(stderr, "test_load: %.1f s\n", (xd_ms_now() - t0) / 1000);
  return TEST_REPORT();
}
