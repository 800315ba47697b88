/* test_server.c — end-to-end tests of the server mechanics against the real binary and
 * the demo models: health, request ids, errors, body limits, overload, deadlines,
 * graceful shutdown and the command line.
 *
 * Jobs are held in flight with EXPLAIND_TEST_PART_DELAY_MS (every worker part first
 * sleeps that long, cancellably) so the timing-dependent tests do not depend on how fast
 * the model code is; --inline-predict-rows 0 sends every /predict through the pool.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/test.h"

static const char *const IRIS = "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]]}";

/* Under valgrind everything is ~20x slower: stretch the waits that order events. */
static int scaled(int ms) { return xd_under_valgrind() ? ms * 5 : ms; }

/* "EXPLAIND_TEST_PART_DELAY_MS=<scaled ms>" in a static buffer (one per call site). */
#define PART_DELAY(buf, ms) (snprintf(buf, sizeof buf, "EXPLAIND_TEST_PART_DELAY_MS=%d", scaled(ms)), (const char *)buf)

static int body_has(const xd_http_resp_t *r, const char *s) { return r->body && strstr(r->body, s) != NULL; }

static int is_json(const xd_http_resp_t *r) {
  const char *ct = xd_http_header(r, "Content-Type");
  return ct && strncmp(ct, "application/json", 16) == 0;
}

/* POST /predict on a thread, for requests that must be in flight together. */
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

static void call_start(call_t *c, int port, const char *body) {
  memset(c, 0, sizeof *c);
  c->port = port;
  c->body = body;
  pthread_create(&c->t, NULL, call_main, c);
}

static void call_join(call_t *c) { pthread_join(c->t, NULL); }

/* Runs $BUILD/explaind with args (and optional env "K=V"), output to a file; returns the
 * exit status and, if out is given, up to cap bytes of output. */
static int run_binary(const char *const *args, const char *env, char *out, size_t cap) {
  const char *b = getenv("BUILD");
  char exe[1024], path[256];
  snprintf(exe, sizeof exe, "%s/explaind", b && *b ? b : "build");
  snprintf(path, sizeof path, "/tmp/explaind-cli-%d.out", (int)getpid());
  const char *argv[32];
  int n = 0;
  argv[n++] = exe;
  for (int i = 0; args[i] && n < 31; i++) argv[n++] = args[i];
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid == 0) {
    FILE *f = fopen(path, "w");
    if (f) {
      dup2(fileno(f), 1);
      dup2(fileno(f), 2);
    }
    if (env) putenv((char *)env);
    execv(exe, (char *const *)argv);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (out) {
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(out, 1, cap - 1, f) : 0;
    out[got] = '\0';
    if (f) fclose(f);
  }
  unlink(path);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- basic mechanics on one server ----------------------------------------------- */

static xd_server_t srv; /* shared by the tests below; started in main */

TEST(healthz_ok) {
  xd_http_resp_t r;
  CHECK(xd_http(srv.port, "GET", "/healthz", NULL, NULL, 0, &r) == 0);
  CHECK(r.status == 200);
  CHECK(is_json(&r));
  CHECK(body_has(&r, "\"ok\""));
  CHECK(xd_http_header(&r, "X-Request-Id") != NULL);
  xd_http_resp_free(&r);
}

TEST(readyz_ok_once_loaded) {
  int status = 0;
  for (int i = 0; i < 250 && status != 200; i++) { /* models load after /healthz is up */
    xd_http_resp_t r;
    if (xd_http(srv.port, "GET", "/readyz", NULL, NULL, 0, &r) == 0) {
      status = r.status;
      if (status == 200) CHECK(body_has(&r, "ready"));
      xd_http_resp_free(&r);
    }
    if (status != 200) xd_sleep_ms(20);
  }
  CHECK(status == 200);
}

TEST(request_id_echoed_and_generated) {
  xd_http_resp_t a, b, c;
  CHECK(xd_http(srv.port, "GET", "/healthz", "X-Request-Id: trace-42.abc\r\n", NULL, 0, &a) == 0);
  const char *ra = xd_http_header(&a, "X-Request-Id");
  CHECK(ra && strcmp(ra, "trace-42.abc") == 0);
  CHECK(xd_http(srv.port, "GET", "/healthz", NULL, NULL, 0, &b) == 0);
  CHECK(xd_http(srv.port, "GET", "/nope", NULL, NULL, 0, &c) == 0);
  const char *rb = xd_http_header(&b, "X-Request-Id"), *rc = xd_http_header(&c, "X-Request-Id");
  CHECK(rb && rc && strlen(rb) > 8 && strlen(rb) <= 64);
  CHECK(rb && rc && strcmp(rb, rc) != 0); /* unique */
  xd_http_resp_free(&a);
  xd_http_resp_free(&b);
  xd_http_resp_free(&c);

  /* too long (65 chars) is not echoed: a fresh id instead */
  char hdr[128], id[66];
  memset(id, 'x', 65);
  id[65] = '\0';
  snprintf(hdr, sizeof hdr, "X-Request-Id: %s\r\n", id);
  CHECK(xd_http(srv.port, "GET", "/healthz", hdr, NULL, 0, &a) == 0);
  ra = xd_http_header(&a, "X-Request-Id");
  CHECK(ra && strcmp(ra, id) != 0 && strlen(ra) <= 64);
  xd_http_resp_free(&a);
  /* the id is echoed on errors and on pooled work too */
  CHECK(xd_http(srv.port, "POST", "/predict", "X-Request-Id: p-1\r\n", IRIS, strlen(IRIS), &a) == 0);
  CHECK(a.status == 200);
  ra = xd_http_header(&a, "X-Request-Id");
  CHECK(ra && strcmp(ra, "p-1") == 0);
  xd_http_resp_free(&a);
}

TEST(unknown_path_404_json) {
  xd_http_resp_t r;
  CHECK(xd_http(srv.port, "GET", "/no/such/path", NULL, NULL, 0, &r) == 0);
  CHECK(r.status == 404);
  CHECK(is_json(&r));
  CHECK(body_has(&r, "\"code\":\"not_found\""));
  xd_http_resp_free(&r);
}

TEST(wrong_method_405_with_allow) {
  xd_http_resp_t r;
  CHECK(xd_http(srv.port, "GET", "/predict", NULL, NULL, 0, &r) == 0);
  CHECK(r.status == 405);
  CHECK(is_json(&r));
  CHECK(body_has(&r, "\"code\":\"method_not_allowed\""));
  const char *allow = xd_http_header(&r, "Allow");
  CHECK(allow && strstr(allow, "POST"));
  xd_http_resp_free(&r);
}

TEST(predict_through_the_pool) {
  xd_http_resp_t r;
  CHECK(xd_http(srv.port, "POST", "/predict", NULL, IRIS, strlen(IRIS), &r) == 0);
  CHECK_MSG(r.status == 200, "status %d body %s", r.status, r.body ? r.body : "");
  CHECK(is_json(&r));
  CHECK(body_has(&r, "\"predictions\""));
  xd_http_resp_free(&r);
  /* a bad body is answered by the API, not the pool */
  CHECK(xd_http(srv.port, "POST", "/predict", NULL, "{nope", 5, &r) == 0);
  CHECK(r.status == 400);
  CHECK(body_has(&r, "invalid_json"));
  xd_http_resp_free(&r);
}

TEST(body_limit_413_content_length) {
  /* a declared length over --max-body is refused before any body is sent */
  xd_http_resp_t r;
  CHECK(xd_http(srv.port, "POST", "/predict", "Content-Length: 100000000\r\n", "", 0, &r) == 0);
  CHECK(r.status == 413);
  CHECK(is_json(&r));
  CHECK(body_has(&r, "\"code\":\"payload_too_large\""));
  CHECK(xd_http_header(&r, "X-Request-Id") != NULL);
  xd_http_resp_free(&r);
  /* on the Open Inference Protocol routes the error has that protocol's shape */
  CHECK(xd_http(srv.port, "POST", "/v2/models/iris/infer", "Content-Length: 100000000\r\n", "", 0, &r) == 0);
  CHECK(r.status == 413);
  CHECK_MSG(body_has(&r, "{\"error\":\""), "body %s", r.body ? r.body : "");
  xd_http_resp_free(&r);
}

TEST(body_limit_413_chunked) {
  size_t n = 200 * 1024; /* --max-body is 64 KiB */
  char *big = malloc(n);
  memset(big, ' ', n);
  xd_http_resp_t r;
  CHECK(xd_http_chunked(srv.port, "POST", "/predict", NULL, big, n, 8192, &r) == 0);
  CHECK(r.status == 413);
  CHECK(body_has(&r, "\"code\":\"payload_too_large\""));
  xd_http_resp_free(&r);
  free(big);
  /* under the limit, a chunked body is read whole */
  CHECK(xd_http_chunked(srv.port, "POST", "/predict", NULL, IRIS, strlen(IRIS), 7, &r) == 0);
  CHECK(r.status == 200);
  xd_http_resp_free(&r);
}

typedef struct burst {
  int port, ok, n;
  pthread_t t;
} burst_t;

static void *burst_main(void *arg) {
  burst_t *b = arg;
  for (int i = 0; i < b->n; i++) {
    xd_http_resp_t r;
    if (xd_http(b->port, "POST", "/predict", NULL, IRIS, strlen(IRIS), &r) == 0 && r.status == 200) b->ok++;
    xd_http_resp_free(&r);
  }
  return NULL;
}

TEST(concurrent_requests_all_answered) {
  burst_t b[8];
  int per = xd_under_valgrind() ? 3 : 25;
  for (int i = 0; i < 8; i++) {
    b[i] = (burst_t){.port = srv.port, .n = per};
    pthread_create(&b[i].t, NULL, burst_main, &b[i]);
  }
  int ok = 0;
  for (int i = 0; i < 8; i++) {
    pthread_join(b[i].t, NULL);
    ok += b[i].ok;
  }
  CHECK_MSG(ok == 8 * per, "%d of %d answered 200 (queue-size is large enough for all)", ok, 8 * per);
}

/* ---- servers of their own --------------------------------------------------------- */

TEST(sigterm_exits_zero) {
  xd_server_t s;
  CHECK(xd_server_start(&s, NULL, NULL) == 0);
  CHECK(xd_server_stop(&s) == 0);
  /* SIGINT too */
  CHECK(xd_server_start(&s, NULL, NULL) == 0);
  kill(s.pid, SIGINT);
  CHECK(xd_server_wait(&s, scaled(10000)) == 0);
}

TEST(queue_full_503_then_recovers) {
  const char *args[] = {"--workers", "1", "--queue-size", "2", "--inline-predict-rows", "0", NULL};
  static char delay[64];
  const char *env[] = {PART_DELAY(delay, 1000), NULL};
  xd_server_t s;
  if (xd_server_start(&s, args, env) != 0 || xd_server_wait_ready(&s, 10000) != 0) {
    CHECK(0);
    return;
  }
  call_t a, b;
  call_start(&a, s.port, IRIS);
  call_start(&b, s.port, IRIS);
  xd_sleep_ms(scaled(300)); /* both admitted: each holds its slot for >= 1 s */
  xd_http_resp_t r;
  CHECK(xd_http(s.port, "POST", "/predict", NULL, IRIS, strlen(IRIS), &r) == 0);
  CHECK_MSG(r.status == 503, "status %d", r.status);
  CHECK(body_has(&r, "\"code\":\"overloaded\""));
  const char *ra = xd_http_header(&r, "Retry-After");
  CHECK(ra && strcmp(ra, "1") == 0);
  CHECK(is_json(&r));
  xd_http_resp_free(&r);
  /* cheap requests never queue: health stays up while the pool is full */
  CHECK(xd_http(s.port, "GET", "/healthz", NULL, NULL, 0, &r) == 0 && r.status == 200);
  xd_http_resp_free(&r);
  call_join(&a);
  call_join(&b);
  CHECK(a.rc == 0 && a.resp.status == 200);
  CHECK(b.rc == 0 && b.resp.status == 200);
  xd_http_resp_free(&a.resp);
  xd_http_resp_free(&b.resp);
  /* the rejection is counted, and the gauges come from the pool */
  CHECK(xd_http(s.port, "GET", "/metrics", NULL, NULL, 0, &r) == 0 && r.status == 200);
  CHECK_MSG(body_has(&r, "reason=\"queue_full\""), "no queue_full rejection in /metrics");
  CHECK(body_has(&r, "explaind_queue_capacity 2"));
  xd_http_resp_free(&r);
  /* slots are free again */
  CHECK(xd_http(s.port, "POST", "/predict", NULL, IRIS, strlen(IRIS), &r) == 0);
  CHECK(r.status == 200);
  xd_http_resp_free(&r);
  CHECK(xd_server_stop(&s) == 0);
}

/* A /predict body of n breast_cancer rows (30 features), caller frees. */
static char *big_predict(size_t n) {
  const char *row = "[17.99,10.38,122.8,1001.0,0.1184,0.2776,0.3001,0.1471,0.2419,0.07871,1.095,0.9053,8.589,153.4,"
                    "0.006399,0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,2019.0,0.1622,0.6656,0.7119,"
                    "0.2654,0.4601,0.1189]";
  size_t rl = strlen(row);
  char *b = malloc(64 + n * (rl + 1));
  size_t pos = (size_t)sprintf(b, "{\"model\":\"breast_cancer\",\"instances\":[");
  for (size_t i = 0; i < n; i++) {
    memcpy(b + pos, row, rl);
    pos += rl;
    b[pos++] = i + 1 < n ? ',' : ']';
  }
  pos += (size_t)sprintf(b + pos, "}");
  return b;
}

TEST(deadline_504) {
  const char *args[] = {"--request-timeout", "1", "--inline-predict-rows", "0", NULL};
  xd_server_t s;
  if (xd_server_start(&s, args, NULL) != 0 || xd_server_wait_ready(&s, 10000) != 0) {
    CHECK(0);
    return;
  }
  char *body = big_predict(5000); /* ~1.5 MB: reading and decoding it alone takes > 1 ms */
  xd_http_resp_t r;
  CHECK(xd_http(s.port, "POST", "/predict", NULL, body, strlen(body), &r) == 0);
  CHECK_MSG(r.status == 504, "status %d body %.200s", r.status, r.body ? r.body : "");
  CHECK(body_has(&r, "\"code\":\"deadline_exceeded\""));
  CHECK(is_json(&r));
  xd_http_resp_free(&r);
  free(body);
  /* the server is fine afterwards: cheap requests still work */
  CHECK(xd_http(s.port, "GET", "/healthz", NULL, NULL, 0, &r) == 0 && r.status == 200);
  xd_http_resp_free(&r);
  CHECK(xd_server_stop(&s) == 0);
}

TEST(drain_waits_for_in_flight_and_readiness_503) {
  /* --shutdown-delay keeps accepting connections after SIGTERM, with /readyz 503 */
  const char *args[] = {"--shutdown-delay", "1500", "--inline-predict-rows", "0", NULL};
  static char delay[64];
  const char *env[] = {PART_DELAY(delay, 1200), NULL};
  xd_server_t s;
  if (xd_server_start(&s, args, env) != 0 || xd_server_wait_ready(&s, 10000) != 0) {
    CHECK(0);
    return;
  }
  xd_http_resp_t r;
  call_t a;
  call_start(&a, s.port, IRIS);
  xd_sleep_ms(scaled(200));
  kill(s.pid, SIGTERM);
  xd_sleep_ms(scaled(100));
  CHECK(xd_http(s.port, "GET", "/readyz", NULL, NULL, 0, &r) == 0);
  CHECK_MSG(r.status == 503, "readyz %d during drain", r.status);
  xd_http_resp_free(&r);
  CHECK(xd_http(s.port, "GET", "/healthz", NULL, NULL, 0, &r) == 0);
  CHECK(r.status == 200); /* alive while draining */
  xd_http_resp_free(&r);
  call_join(&a);
  CHECK_MSG(a.rc == 0 && a.resp.status == 200, "in-flight request: rc %d status %d", a.rc, a.resp.status);
  xd_http_resp_free(&a.resp);
  CHECK(xd_server_wait(&s, scaled(10000)) == 0);
  if (s.pid) xd_server_stop(&s);
  else unlink(s.log_path);
}

TEST(drain_without_delay_still_answers_in_flight) {
  const char *args[] = {"--inline-predict-rows", "0", NULL};
  static char delay[64];
  const char *env[] = {PART_DELAY(delay, 800), NULL};
  xd_server_t s;
  if (xd_server_start(&s, args, env) != 0 || xd_server_wait_ready(&s, 10000) != 0) {
    CHECK(0);
    return;
  }
  call_t a;
  call_start(&a, s.port, IRIS);
  xd_sleep_ms(scaled(200));
  double t0 = xd_ms_now();
  kill(s.pid, SIGTERM);
  call_join(&a);
  CHECK_MSG(a.rc == 0 && a.resp.status == 200, "in-flight request: rc %d status %d", a.rc, a.resp.status);
  xd_http_resp_free(&a.resp);
  int st = xd_server_wait(&s, scaled(10000));
  CHECK(st == 0);
  CHECK(xd_ms_now() - t0 < scaled(5000));
  if (s.pid) xd_server_stop(&s);
  else unlink(s.log_path);
}

TEST(drain_timeout_cancels_and_exits) {
  const char *args[] = {"--drain-timeout", "300", "--inline-predict-rows", "0", NULL};
  static char delay[64];
  const char *env[] = {PART_DELAY(delay, 20000), NULL};
  xd_server_t s;
  if (xd_server_start(&s, args, env) != 0 || xd_server_wait_ready(&s, 10000) != 0) {
    CHECK(0);
    return;
  }
  call_t a;
  call_start(&a, s.port, IRIS);
  xd_sleep_ms(scaled(200));
  double t0 = xd_ms_now();
  kill(s.pid, SIGTERM);
  call_join(&a);
  CHECK_MSG(a.rc == 0 && a.resp.status == 503, "canceled request: rc %d status %d", a.rc, a.resp.status);
  CHECK(xd_http_header(&a.resp, "Retry-After") != NULL);
  xd_http_resp_free(&a.resp);
  CHECK(xd_server_wait(&s, scaled(10000)) == 0);
  CHECK(xd_ms_now() - t0 < scaled(5000)); /* not the 20 s the job wanted */
  if (s.pid) xd_server_stop(&s);
  else unlink(s.log_path);
}

/* ---- the command line ---------------------------------------------------------------- */

TEST(help_and_version_exit_zero) {
  static char out[16384];
  const char *help[] = {"--help", NULL};
  CHECK(run_binary(help, NULL, out, sizeof out) == 0);
  const char *must[] = {"--listen", "--model-dir", "--threads", "--workers", "--queue-size", "--max-body",
                        "--request-timeout", "--drain-timeout", "--conn-timeout", "--log-level", "--max-rows",
                        "--max-samples", "--max-steps", "--max-work-rows", "--healthcheck", "EXPLAIND_QUEUE_SIZE",
                        "--strict-models", "--allow-empty", "EXPLAIND_STRICT_MODELS",
                        "127.0.0.1:8080", NULL};
  for (int i = 0; must[i]; i++) CHECK_MSG(strstr(out, must[i]) != NULL, "--help lacks %s", must[i]);
  const char *ver[] = {"--version", NULL};
  CHECK(run_binary(ver, NULL, out, sizeof out) == 0);
  CHECK(strstr(out, "explaind") != NULL);
}

TEST(invalid_values_exit_two) {
  const char *bad[][3] = {{"--workers", "0", NULL},     {"--threads", "x", NULL},      {"--listen", "nohost", NULL},
                          {"--max-body", "-5", NULL},   {"--log-level", "loud", NULL}, {"--frobnicate", "1", NULL},
                          {"--queue-size", NULL, NULL}, {"stray", NULL, NULL}};
  static char out[4096];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int st = run_binary(bad[i], NULL, out, sizeof out);
    CHECK_MSG(st == 2, "%s %s: exit %d", bad[i][0], bad[i][1] ? bad[i][1] : "", st);
    CHECK_MSG(strstr(out, "explaind:") != NULL, "no message for %s", bad[i][0]);
  }
  const char *none[] = {NULL};
  CHECK(run_binary(none, "EXPLAIND_WORKERS=many", out, sizeof out) == 2);
  CHECK(strstr(out, "EXPLAIND_WORKERS") != NULL);
}

/* The model folder at start-up: unreadable (exit 2 before listening), a broken bundle
 * (logged at warn with file and reason; with --strict-models, exit 1 naming it). */
TEST(model_folder_checks_at_start_up) {
  static char out[16384];
  char listen[32], dir[] = "/tmp/explaind-strict-XXXXXX", cmd[256];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", xd_free_port());
  const char *missing[] = {"--listen", listen, "--model-dir", "/nonexistent/explaind-models", NULL};
  CHECK(run_binary(missing, NULL, out, sizeof out) == 2);
  CHECK_MSG(strstr(out, "--model-dir /nonexistent/explaind-models") && strstr(out, "must be a readable folder") &&
                !strstr(out, "listening on"),
            "%s", out);
  if (!mkdtemp(dir)) {
    CHECK(0);
    return;
  }
  snprintf(cmd, sizeof cmd, "cp -r models/iris %s/iris && printf '{\"format\":1}' > %s/broken.json", dir, dir);
  CHECK(system(cmd) == 0);
  const char *strict[] = {"--listen", listen, "--model-dir", dir, "--strict-models", NULL};
  CHECK(run_binary(strict, NULL, out, sizeof out) == 1);
  CHECK_MSG(strstr(out, "broken.json") && strstr(out, "--strict-models: 1 bundle(s)"), "%s", out);
  /* without it the server serves the good bundle and warns about the broken one */
  const char *lenient[] = {"--model-dir", dir, "--allow-empty=false", NULL};
  xd_server_t s;
  if (xd_server_start(&s, lenient, NULL) == 0) {
    CHECK(xd_server_log_contains(&s, "warn"));
    CHECK(xd_server_log_contains(&s, "skipping"));
    CHECK(xd_server_log_contains(&s, "broken.json"));
    CHECK(xd_server_stop(&s) == 0);
  } else {
    CHECK(0);
  }
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
}

TEST(flag_wins_over_environment) {
  const char *args[] = {"--queue-size", "3", NULL};
  const char *env[] = {"EXPLAIND_QUEUE_SIZE=5", "EXPLAIND_CONN_TIMEOUT=9", NULL};
  xd_server_t s;
  if (xd_server_start(&s, args, env) != 0 || xd_server_wait_ready(&s, 10000) != 0) {
    CHECK(0);
    return;
  }
  CHECK(xd_server_log_contains(&s, "queue_size=3"));
  CHECK(xd_server_log_contains(&s, "conn_timeout_s=9"));
  CHECK(xd_server_log_contains(&s, "OpenBLAS"));
  CHECK(xd_server_stop(&s) == 0);
}

TEST(api_keys_and_sighup_reload) {
  const char *env[] = {"EXPLAIND_API_KEYS=first-key-123,second-key-456", NULL};
  xd_server_t s;
  if (xd_server_start(&s, NULL, env) != 0 || xd_server_wait_ready(&s, 10000) != 0) {
    CHECK(0);
    return;
  }
  xd_http_resp_t r;
  CHECK(xd_http(s.port, "POST", "/predict", NULL, IRIS, strlen(IRIS), &r) == 0);
  CHECK(r.status == 401);
  xd_http_resp_free(&r);
  CHECK(xd_http(s.port, "POST", "/predict", "Authorization: Bearer second-key-456\r\n", IRIS, strlen(IRIS), &r) == 0);
  CHECK(r.status == 200);
  xd_http_resp_free(&r);
  CHECK(xd_http(s.port, "GET", "/healthz", NULL, NULL, 0, &r) == 0 && r.status == 200); /* probes need no key */
  xd_http_resp_free(&r);
  /* SIGHUP loads the folder again and the server goes on serving */
  kill(s.pid, SIGHUP);
  int seen = 0;
  for (int i = 0; i < 250 && !seen; i++) {
    xd_sleep_ms(20);
    seen = xd_server_log_contains(&s, "SIGHUP");
  }
  CHECK(seen);
  CHECK(xd_http(s.port, "POST", "/predict", "Authorization: Bearer first-key-123\r\n", IRIS, strlen(IRIS), &r) == 0);
  CHECK(r.status == 200);
  xd_http_resp_free(&r);
  CHECK(!xd_server_log_contains(&s, "first-key-123")); /* secrets never reach the log */
  CHECK(xd_server_log_contains(&s, "api_keys=2"));
  CHECK(xd_server_stop(&s) == 0);
}

TEST(healthcheck_mode) {
  char port[16], url[64];
  snprintf(port, sizeof port, "%d", srv.port);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", srv.port);
  const char *a1[] = {"--healthcheck", port, NULL};
  const char *a2[] = {"--healthcheck", url, NULL};
  CHECK(run_binary(a1, NULL, NULL, 0) == 0);
  CHECK(run_binary(a2, NULL, NULL, 0) == 0);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/nope", srv.port);
  CHECK(run_binary(a2, NULL, NULL, 0) == 1); /* 404 is not healthy */
  snprintf(port, sizeof port, "%d", xd_free_port());
  CHECK(run_binary(a1, NULL, NULL, 0) == 1); /* nothing listens there */
}

TEST(access_log_has_one_line_per_request) {
  xd_http_resp_t r;
  CHECK(xd_http(srv.port, "GET", "/healthz", "X-Request-Id: log-check-1\r\nAuthorization: Bearer s3cret\r\n", NULL, 0,
                &r) == 0);
  xd_http_resp_free(&r);
  xd_sleep_ms(50); /* the line is written when MHD reports the request complete */
  CHECK(xd_server_log_contains(&srv, "rid=log-check-1 method=GET path=/healthz"));
  CHECK(!xd_server_log_contains(&srv, "s3cret"));
}

int main(void) {
  const char *args[] = {"--max-body", "65536", "--inline-predict-rows", "0", "--queue-size", "64", NULL};
  if (xd_server_start(&srv, args, NULL) != 0) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  RUN(healthz_ok);
  RUN(readyz_ok_once_loaded); /* also makes the tests below wait for the models */
  RUN(request_id_echoed_and_generated);
  RUN(unknown_path_404_json);
  RUN(wrong_method_405_with_allow);
  RUN(predict_through_the_pool);
  RUN(body_limit_413_content_length);
  RUN(body_limit_413_chunked);
  RUN(concurrent_requests_all_answered);
  RUN(healthcheck_mode);
  RUN(access_log_has_one_line_per_request);
  int st = xd_server_stop(&srv);
  xd_test_cur_name = "shared_server_exit";
  xd_test_cur_failed = 0;
  CHECK_MSG(st == 0, "exit status %d", st);
  if (xd_test_cur_failed) xd_test_failed++;
  else xd_test_passed++;

  RUN(sigterm_exits_zero);
  RUN(queue_full_503_then_recovers);
  RUN(deadline_504);
  RUN(drain_waits_for_in_flight_and_readiness_503);
  RUN(drain_without_delay_still_answers_in_flight);
  RUN(drain_timeout_cancels_and_exits);
  RUN(help_and_version_exit_zero);
  RUN(invalid_values_exit_two);
  RUN(flag_wins_over_environment);
  RUN(model_folder_checks_at_start_up);
  RUN(api_keys_and_sighup_reload);
  return TEST_REPORT();
}
