/* test_jobs.c — batch jobs against the real server (docs/jobs.md): a job's lines equal
 * the synchronous answers, kill -9 and restart lose or repeat no line, cancel, monotone
 * progress, Server-Sent Events seen by curl, shards run by the command line merge into
 * the server's file byte for byte, and the 4xx answers. Loopback only, bounded waits. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/test.h"

static const char *build_dir(void) {
  const char *b = getenv("BUILD");
  return b && *b ? b : "build";
}

/* iris rows: n of them, varied so that every instance differs */
static char *iris_rows(size_t n, int bad_row) {
  size_t cap = 64 + n * 64, pos = 0;
  char *b = malloc(cap);
  pos += (size_t)sprintf(b + pos, "[");
  for (size_t i = 0; i < n; i++) {
    if ((int)i == bad_row) pos += (size_t)sprintf(b + pos, "%s[1.0,2.0]", i ? "," : "");
    else
      pos += (size_t)sprintf(b + pos, "%s[%.2f,%.2f,%.2f,%.2f]", i ? "," : "", 4.5 + 0.07 * (double)(i % 50),
                             2.2 + 0.03 * (double)(i % 37), 1.1 + 0.11 * (double)(i % 53), 0.1 + 0.05 * (double)(i % 47));
  }
  sprintf(b + pos, "]");
  return b;
}

static json_t *http_json(int port, const char *method, const char *path, const char *body, int *status) {
  xd_http_resp_t r;
  if (xd_http(port, method, path, NULL, body, body ? strlen(body) : 0, &r) != 0) {
    *status = -1;
    return NULL;
  }
  *status = r.status;
  json_t *j = json_loads(r.body, 0, NULL);
  xd_http_resp_free(&r);
  return j;
}

/* Submits body; returns the job id (static buffer) or NULL. */
static const char *submit(int port, const char *body) {
  static char id[64];
  int st;
  json_t *j = http_json(port, "POST", "/jobs", body, &st);
  const char *v = json_string_value(json_object_get(j, "id"));
  if (st != 202 || !v) {
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    fprintf(stderr, "  submit: %d %.300s\n", st, t ? t : "");
    free(t);
    json_decref(j);
    return NULL;
  }
  snprintf(id, sizeof id, "%s", v);
  json_decref(j);
  return id;
}

/* The job's status (new reference) */
static json_t *job_status(int port, const char *id) {
  char path[128];
  snprintf(path, sizeof path, "/jobs/%s", id);
  int st;
  json_t *j = http_json(port, "GET", path, NULL, &st);
  if (st != 200) {
    json_decref(j);
    return NULL;
  }
  return j;
}

static size_t job_done(const json_t *st) { return (size_t)json_integer_value(json_object_get(json_object_get(st, "progress"), "done")); }
static const char *job_state(const json_t *st) { return json_string_value(json_object_get(st, "status")); }

/* Waits for the job to finish; its final status (new reference) or NULL. */
static json_t *wait_finished(int port, const char *id, int timeout_ms) {
  double t0 = xd_ms_now();
  while (xd_ms_now() - t0 < timeout_ms) {
    json_t *st = job_status(port, id);
    const char *s = job_state(st);
    if (s && (strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0)) return st;
    json_decref(st);
    xd_sleep_ms(50);
  }
  return NULL;
}

static char *results(int port, const char *id, const char *accept, size_t *len) {
  char path[128], hdr[64] = "";
  snprintf(path, sizeof path, "/jobs/%s/results", id);
  if (accept) snprintf(hdr, sizeof hdr, "Accept: %s\r\n", accept);
  xd_http_resp_t r;
  if (xd_http(port, "GET", path, hdr[0] ? hdr : NULL, NULL, 0, &r) != 0 || r.status != 200) {
    if (r.body) xd_http_resp_free(&r);
    return NULL;
  }
  char *b = r.body;
  *len = r.body_len;
  r.body = NULL;
  xd_http_resp_free(&r);
  return b;
}

/* Checks every line of ndjson against the synchronous answer sync: line i has "index" i
 * and, for every per-instance member key of keys, the i-th element of sync[key], equal
 * as JSON (reals compared as doubles: bit for bit). Returns the line count. */
static size_t check_lines(const char *ndjson, const json_t *sync, const char *const *keys, size_t n) {
  size_t i = 0;
  for (const char *p = ndjson; *p; i++) {
    const char *nl = strchr(p, '\n');
    CHECK(nl != NULL);
    if (!nl) break;
    json_t *line = json_loadb(p, (size_t)(nl - p), 0, NULL);
    CHECK(line != NULL);
    CHECK_MSG(json_integer_value(json_object_get(line, "index")) == (json_int_t)i, "line %zu", i);
    for (const char *const *k = keys; *k; k++) {
      json_t *want = json_array_get(json_object_get(sync, *k), i), *got = json_object_get(line, *k);
      CHECK_MSG(want && got && json_equal(want, got), "line %zu member %s", i, *k);
    }
    json_decref(line);
    p = nl + 1;
  }
  CHECK_MSG(i == n, "%zu lines, want %zu", i, n);
  return i;
}

static json_t *sync_answer(int port, const char *path, const char *body) {
  int st;
  json_t *j = http_json(port, "POST", path, body, &st);
  CHECK_MSG(st == 200, "%s answered %d", path, st);
  return j;
}

/* A job's lines equal the synchronous answers (chunk boundaries crossed: 150 rows, chunks of 64). */
TEST(lines_equal_synchronous_answers) {
  xd_server_t s;
  const char *args[] = {"--workers", "2", NULL};
  if (xd_server_start(&s, args, NULL) != 0) {
    CHECK(0);
    return;
  }
  char *rows = iris_rows(150, -1);
  static const struct {
    const char *path, *opts;
    const char *keys[7];
  } cases[] = {
      {"/explain/lime", "\"num_samples\":300,\"seed\":7", {"explanations", NULL}},
      {"/explain/shap", "\"nsamples\":64,\"seed\":11", {"targets", "expected_value", "shap_values", "model_output", "efficiency_gap", "nsamples", NULL}},
      {"/explain/gradient", "\"method\":\"smoothgrad\",\"samples\":8,\"seed\":5", {"targets", "attributions", NULL}},
      {"/explain/occlusion", "\"baseline\":\"mean\"", {"targets", "attributions", NULL}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    size_t cap = strlen(rows) + 256;
    char *sync_body = malloc(cap), *job_body = malloc(cap);
    snprintf(sync_body, cap, "{\"model\":\"iris\",\"instances\":%s,%s}", rows, cases[c].opts);
    snprintf(job_body, cap, "{\"endpoint\":\"%s\",\"model\":\"iris\",\"instances\":%s,%s}", cases[c].path, rows, cases[c].opts);
    json_t *sync = sync_answer(s.port, cases[c].path, sync_body);
    const char *id = submit(s.port, job_body);
    CHECK(id != NULL);
    json_t *st = id ? wait_finished(s.port, id, 60000) : NULL;
    CHECK_MSG(st && strcmp(job_state(st), "succeeded") == 0, "%s", cases[c].path);
    size_t len = 0;
    char *nd = id ? results(s.port, id, NULL, &len) : NULL;
    CHECK(nd != NULL);
    if (nd && sync) check_lines(nd, sync, cases[c].keys, 150);
    if (c == 1 && id) { /* CSV: header and one row per instance */
      char *csv = results(s.port, id, "text/csv", &len);
      CHECK(csv && strncmp(csv, "index,sepal length (cm),", 24) == 0);
      size_t lines = 0;
      for (char *p = csv; p && *p; p++) lines += *p == '\n';
      CHECK(lines == 151);
      free(csv);
    }
    free(nd);
    json_decref(st);
    json_decref(sync);
    free(sync_body);
    free(job_body);
  }
  free(rows);
  CHECK(xd_server_stop(&s) == 0);
}

static int count_char(const char *s, char c) {
  int n = 0;
  for (; s && *s; s++) n += *s == c;
  return n;
}

/* Image occlusion: a line holds the instance's attributions, heatmap and rendered PNG. */
TEST(image_occlusion_lines_equal_synchronous_answer) {
  xd_server_t s;
  const char *args[] = {"--workers", "2", NULL};
  if (xd_server_start(&s, args, NULL) != 0) {
    CHECK(0);
    return;
  }
  json_t *g = json_load_file("tests/golden/image_explain/shapes.json", 0, NULL);
  CHECK(g != NULL);
  json_t *rows = json_array();
  for (size_t i = 0; g && i < json_array_size(json_object_get(g, "images")); i++)
    json_array_append_new(rows, json_pack("{s:O}", "b64", json_array_get(json_object_get(g, "images"), i)));
  json_t *sb = json_pack("{s:s, s:O, s:[iii], s:[iii], s:b}", "model", "shapes", "instances", rows, "window", 3, 4, 4,
                         "strides", 3, 2, 2, "render", 1);
  char *sync_body = json_dumps(sb, JSON_COMPACT);
  json_object_set_new(sb, "endpoint", json_string("/explain/occlusion"));
  char *job_body = json_dumps(sb, JSON_COMPACT);
  json_t *sync = sync_answer(s.port, "/explain/occlusion", sync_body);
  CHECK(json_array_size(json_object_get(sync, "images")) == json_array_size(rows));
  const char *id = submit(s.port, job_body);
  CHECK(id != NULL);
  json_t *st = id ? wait_finished(s.port, id, 60000) : NULL;
  CHECK(st && strcmp(job_state(st), "succeeded") == 0);
  size_t len = 0;
  char *nd = id ? results(s.port, id, NULL, &len) : NULL;
  static const char *const keys[] = {"targets", "attributions", "heatmaps", "images", NULL};
  if (nd && sync) check_lines(nd, sync, keys, json_array_size(rows));
  char *csv = id ? results(s.port, id, "text/csv", &len) : NULL; /* an image model has no named features: the index only */
  CHECK(csv && strcmp(csv, "index\n0\n1\n2\n3\n") == 0);
  free(csv);
  free(nd);
  json_decref(st);
  json_decref(sync);
  free(sync_body);
  free(job_body);
  json_decref(sb);
  json_decref(rows);
  json_decref(g);
  CHECK(xd_server_stop(&s) == 0);
}

/* kill -9 in the middle of a job, a torn line appended, restart: every line exactly once,
 * equal to the synchronous answer. */
TEST(kill9_and_restart_resume_without_loss_or_duplicates) {
  char dir[] = "/tmp/xd-jobs-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  const char *args[] = {"--workers", "2", "--job-dir", dir, NULL};
  const char *env[] = {"EXPLAIND_TEST_PART_DELAY_MS=20", NULL};
  xd_server_t s;
  if (xd_server_start(&s, args, env) != 0) {
    CHECK(0);
    return;
  }
  char *rows = iris_rows(192, -1), *body = malloc(strlen(rows) + 256), *sync_body = malloc(strlen(rows) + 256);
  sprintf(body, "{\"endpoint\":\"/explain/lime\",\"model\":\"iris\",\"instances\":%s,\"num_samples\":200,\"seed\":3}", rows);
  sprintf(sync_body, "{\"model\":\"iris\",\"instances\":%s,\"num_samples\":200,\"seed\":3}", rows);
  const char *id0 = submit(s.port, body);
  char id[64] = "";
  if (id0) snprintf(id, sizeof id, "%s", id0);
  CHECK(id[0]);
  /* wait until some chunks are done, but not all */
  double t0 = xd_ms_now();
  size_t done = 0;
  while (xd_ms_now() - t0 < 30000) {
    json_t *st = job_status(s.port, id);
    done = job_done(st);
    json_decref(st);
    if (done >= 64) break;
    xd_sleep_ms(20);
  }
  CHECK_MSG(done >= 64 && done < 192, "done %zu", done);
  kill(s.pid, SIGKILL);
  xd_server_wait(&s, 5000);
  char path[256];
  snprintf(path, sizeof path, "%s/%s/results.ndjson", dir, id);
  FILE *f = fopen(path, "a");
  CHECK(f != NULL);
  if (f) { /* what a crash in the middle of a write leaves */
    fputs("{\"index\":9999,\"explanations\":[{\"pred", f);
    fclose(f);
  }
  const char *env2[] = {NULL};
  if (xd_server_start(&s, args, env2) != 0) {
    CHECK(0);
    return;
  }
  json_t *st = wait_finished(s.port, id, 60000);
  CHECK(st && strcmp(job_state(st), "succeeded") == 0);
  CHECK(st && job_done(st) == 192);
  size_t len = 0;
  char *nd = results(s.port, id, NULL, &len);
  CHECK(nd && count_char(nd, '\n') == 192);
  json_t *sync = sync_answer(s.port, "/explain/lime", sync_body);
  static const char *const keys[] = {"explanations", NULL};
  if (nd && sync) check_lines(nd, sync, keys, 192);
  CHECK(xd_server_log_contains(&s, "resuming"));
  free(nd);
  json_decref(st);
  json_decref(sync);
  free(rows);
  free(body);
  free(sync_body);
  CHECK(xd_server_stop(&s) == 0);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

/* Cancel stops the job promptly; DELETE again deletes it; unknown ids are 404 naming them. */
TEST(cancel_then_delete) {
  xd_server_t s;
  const char *args[] = {"--workers", "2", NULL};
  const char *env[] = {"EXPLAIND_TEST_PART_DELAY_MS=50", NULL};
  if (xd_server_start(&s, args, env) != 0) {
    CHECK(0);
    return;
  }
  char *rows = iris_rows(200, -1), *body = malloc(strlen(rows) + 256);
  sprintf(body, "{\"endpoint\":\"/explain/lime\",\"model\":\"iris\",\"instances\":%s,\"num_samples\":100}", rows);
  const char *id0 = submit(s.port, body);
  char id[64] = "", p[128];
  if (id0) snprintf(id, sizeof id, "%s", id0);
  xd_sleep_ms(300);
  snprintf(p, sizeof p, "/jobs/%s", id);
  int code;
  double t0 = xd_ms_now();
  json_t *d = http_json(s.port, "DELETE", p, NULL, &code);
  CHECK(code == 200);
  CHECK(d && strcmp(job_state(d), "cancelled") == 0);
  json_decref(d);
  json_t *a = job_status(s.port, id);
  xd_sleep_ms(500);
  json_t *b = job_status(s.port, id);
  CHECK(a && b && job_done(a) == job_done(b) && job_done(b) < 200);
  CHECK(b && strcmp(job_state(b), "cancelled") == 0);
  CHECK(xd_ms_now() - t0 < 5000);
  json_decref(a);
  json_decref(b);
  d = http_json(s.port, "DELETE", p, NULL, &code); /* finished now: deleted */
  CHECK(code == 200 && json_is_true(json_object_get(d, "deleted")));
  json_decref(d);
  d = http_json(s.port, "GET", p, NULL, &code);
  CHECK(code == 404);
  json_decref(d);
  d = http_json(s.port, "DELETE", "/jobs/0123456789abcdef", NULL, &code);
  CHECK(code == 404);
  CHECK(d && strcmp(json_string_value(json_object_get(json_object_get(d, "error"), "field")) ?: "", "id") == 0);
  char *dtext = d ? json_dumps(d, 0) : NULL;
  CHECK(dtext && strstr(dtext, "0123456789abcdef") != NULL);
  free(dtext);
  json_decref(d);
  free(rows);
  free(body);
  CHECK(xd_server_stop(&s) == 0);
}

/* Progress only grows, and the event stream, read by curl -N, shows it to the end. */
TEST(progress_monotone_and_event_stream) {
  xd_server_t s;
  const char *args[] = {"--workers", "2", NULL};
  const char *env[] = {"EXPLAIND_TEST_PART_DELAY_MS=15", NULL};
  if (xd_server_start(&s, args, env) != 0) {
    CHECK(0);
    return;
  }
  char *rows = iris_rows(96, -1), *body = malloc(strlen(rows) + 256);
  sprintf(body, "{\"endpoint\":\"/explain/lime\",\"model\":\"iris\",\"instances\":%s,\"num_samples\":100}", rows);
  const char *id0 = submit(s.port, body);
  char id[64] = "", cmd[256];
  if (id0) snprintf(id, sizeof id, "%s", id0);
  snprintf(cmd, sizeof cmd, "curl -s -N --max-time 60 http://127.0.0.1:%d/jobs/%s/events", s.port, id);
  FILE *curl = popen(cmd, "r");
  size_t last = 0, polls = 0;
  int mono = 1;
  for (double t0 = xd_ms_now(); xd_ms_now() - t0 < 60000; polls++) {
    json_t *st = job_status(s.port, id);
    size_t d = job_done(st);
    mono &= d >= last;
    last = d;
    int fin = st && strcmp(job_state(st), "running") != 0 && strcmp(job_state(st), "queued") != 0;
    json_decref(st);
    if (fin) break;
    xd_sleep_ms(30);
  }
  CHECK(mono);
  CHECK(last == 96);
  char *out = calloc(1, 1 << 20);
  size_t n = curl ? fread(out, 1, (1 << 20) - 1, curl) : 0;
  int rc = curl ? pclose(curl) : -1;
  CHECK_MSG(rc == 0, "curl exit %d", rc);
  CHECK(n > 0 && strstr(out, "event: progress\ndata: {") != NULL);
  CHECK(strstr(out, "event: end\ndata: {") && strstr(strstr(out, "event: end"), "\"succeeded\""));
  /* the events' done counts only grow too */
  long prev = -1;
  int ev_mono = 1, events = 0;
  for (char *p = strstr(out, "\"done\":"); p; p = strstr(p + 1, "\"done\":")) {
    long v = strtol(p + 7, NULL, 10);
    ev_mono &= v >= prev;
    prev = v;
    events++;
  }
  CHECK(ev_mono && events >= 2);
  free(out);
  free(rows);
  free(body);
  CHECK(xd_server_stop(&s) == 0);
}

static int run_cmd(const char *cmd) {
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Three shards run by the command line, merged, equal the server's file byte for byte. */
TEST(cli_shards_merge_into_the_servers_lines) {
  xd_server_t s;
  if (xd_server_start(&s, NULL, NULL) != 0) {
    CHECK(0);
    return;
  }
  char dir[] = "/tmp/xd-shards-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char *rows = iris_rows(37, -1), *body = malloc(strlen(rows) + 256), path[512], cmd[1024];
  sprintf(body, "{\"endpoint\":\"/explain/shap\",\"model\":\"iris\",\"instances\":%s,\"nsamples\":48,\"seed\":21}", rows);
  snprintf(path, sizeof path, "%s/spec.json", dir);
  FILE *f = fopen(path, "w");
  fputs(body, f);
  fclose(f);
  const char *id0 = submit(s.port, body);
  char id[64] = "";
  if (id0) snprintf(id, sizeof id, "%s", id0);
  json_t *st = wait_finished(s.port, id, 60000);
  CHECK(st && strcmp(job_state(st), "succeeded") == 0);
  size_t len = 0;
  char *nd = results(s.port, id, NULL, &len);
  for (int i = 0; i < 3; i++) {
    snprintf(cmd, sizeof cmd, "%s/explaind jobs run %s/spec.json --model-dir models --shard %d/3 --output %s/part%d.ndjson 2>/dev/null",
             build_dir(), dir, i, dir, i);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", cmd);
  }
  /* merge in any order of arguments */
  snprintf(cmd, sizeof cmd, "%s/explaind jobs merge %s/part2.ndjson %s/part0.ndjson %s/part1.ndjson --output %s/all.ndjson 2>/dev/null",
           build_dir(), dir, dir, dir, dir);
  CHECK(run_cmd(cmd) == 0);
  snprintf(path, sizeof path, "%s/all.ndjson", dir);
  f = fopen(path, "rb");
  char *merged = calloc(1, len + 16);
  size_t got = f ? fread(merged, 1, len + 8, f) : 0;
  if (f) fclose(f);
  CHECK_MSG(nd && got == len && memcmp(merged, nd, len) == 0, "merged %zu bytes, server %zu", got, len);
  /* a missing shard is refused */
  snprintf(cmd, sizeof cmd, "%s/explaind jobs merge %s/part0.ndjson %s/part2.ndjson --output %s/bad.ndjson 2>/dev/null",
           build_dir(), dir, dir, dir);
  CHECK(run_cmd(cmd) == 1);
  free(merged);
  free(nd);
  json_decref(st);
  free(rows);
  free(body);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(run_cmd(cmd) == 0);
  CHECK(xd_server_stop(&s) == 0);
}

static void expect_error(int port, const char *body, int status, const char *field) {
  int st;
  json_t *j = http_json(port, "POST", "/jobs", body, &st);
  const char *f = json_string_value(json_object_get(json_object_get(j, "error"), "field"));
  CHECK_MSG(st == status && f && strcmp(f, field) == 0, "%.80s: %d field %s", body, st, f ? f : "(none)");
  json_decref(j);
}

/* 4xx naming the field; a row that fails gets an error line and the job finishes. */
TEST(bad_input_and_failing_rows) {
  xd_server_t s;
  const char *args[] = {"--max-job-rows", "50", NULL};
  if (xd_server_start(&s, args, NULL) != 0) {
    CHECK(0);
    return;
  }
  expect_error(s.port, "{\"endpoint\":\"/explain/nope\",\"model\":\"iris\",\"instances\":[[1,2,3,4]]}", 400, "endpoint");
  expect_error(s.port, "{\"model\":\"iris\",\"instances\":[[1,2,3,4]]}", 400, "endpoint");
  expect_error(s.port, "{\"endpoint\":\"/explain/shap\",\"model\":\"iris\",\"csv\":\"a,b,c,d\\n1,2,3,4\\n\"}", 400, "csv");
  expect_error(s.port, "{\"endpoint\":\"/explain/shap\",\"model\":\"iris\",\"instances\":[[1,2,3,4]],\"nsamples\":-3}", 400, "nsamples");
  char *rows = iris_rows(51, -1), *body = malloc(strlen(rows) + 256);
  sprintf(body, "{\"endpoint\":\"/explain/shap\",\"model\":\"iris\",\"instances\":%s}", rows);
  expect_error(s.port, body, 413, "instances");
  /* CSV with the model's header works */
  const char *csv = "{\"endpoint\":\"/explain/shap\",\"model\":\"iris\",\"seed\":1,\"csv\":\"petal width (cm),sepal length (cm),"
                    "sepal width (cm),petal length (cm)\\n0.2,5.1,3.5,1.4\\n1.3,6.2,2.9,4.3\\n\"}";
  const char *id = submit(s.port, csv);
  json_t *st = id ? wait_finished(s.port, id, 30000) : NULL;
  CHECK(st && strcmp(job_state(st), "succeeded") == 0 && job_done(st) == 2);
  json_decref(st);
  /* row 3 of 6 is malformed: its line is an error, the others are answers */
  free(rows);
  rows = iris_rows(6, 3);
  sprintf(body, "{\"endpoint\":\"/explain/shap\",\"model\":\"iris\",\"instances\":%s,\"seed\":2}", rows);
  id = submit(s.port, body);
  char idc[64] = "";
  if (id) snprintf(idc, sizeof idc, "%s", id);
  st = idc[0] ? wait_finished(s.port, idc, 30000) : NULL;
  CHECK(st && strcmp(job_state(st), "succeeded") == 0);
  size_t len = 0;
  char *nd = idc[0] ? results(s.port, idc, NULL, &len) : NULL;
  CHECK(nd && count_char(nd, '\n') == 6);
  char *l3 = nd ? strstr(nd, "{\"index\":3,") : NULL;
  CHECK(l3 && strncmp(l3, "{\"index\":3,\"error\":{", 20) == 0 && strstr(l3, "\"field\":\"instances[3]"));
  CHECK(nd && strstr(nd, "{\"index\":4,\"targets\"") != NULL);
  json_decref(st);
  free(nd);
  free(rows);
  free(body);
  CHECK(xd_server_stop(&s) == 0);
}

/* Chunks shrink to the per-request limits (--max-work-rows 3000: LIME rows of 1000 samples
 * go 3 to a chunk): the job succeeds without error lines, its lines the synchronous ones. */
TEST(chunks_within_the_request_limits) {
  xd_server_t s;
  const char *args[] = {"--max-work-rows", "3000", NULL};
  if (xd_server_start(&s, args, NULL) != 0) {
    CHECK(0);
    return;
  }
  char *rows = iris_rows(7, -1), body[2048], sync_body[2048];
  snprintf(body, sizeof body, "{\"endpoint\":\"/explain/lime\",\"model\":\"iris\",\"instances\":%s,\"num_samples\":1000,\"seed\":4}", rows);
  const char *id = submit(s.port, body);
  char idc[64] = "";
  if (id) snprintf(idc, sizeof idc, "%s", id);
  json_t *st = idc[0] ? wait_finished(s.port, idc, 30000) : NULL;
  CHECK(st && strcmp(job_state(st), "succeeded") == 0);
  size_t len = 0;
  char *nd = idc[0] ? results(s.port, idc, NULL, &len) : NULL;
  CHECK(nd && strstr(nd, "\"error\"") == NULL);
  /* the first three lines against the synchronous answer for rows 0..2 (the request
   * limit allows 3 rows of 1000 samples) */
  static const char *const keys[] = {"explanations", NULL};
  json_t *inst = json_loads(rows, 0, NULL), *part = json_array();
  for (size_t i = 0; i < 3; i++) json_array_append(part, json_array_get(inst, i));
  char *pt = json_dumps(part, JSON_COMPACT);
  snprintf(sync_body, sizeof sync_body, "{\"model\":\"iris\",\"instances\":%s,\"num_samples\":1000,\"seed\":4}", pt);
  free(pt);
  json_decref(part);
  json_t *first3 = sync_answer(s.port, "/explain/lime", sync_body);
  char *nl = nd ? strchr(nd, '\n') : NULL;
  nl = nl ? strchr(nl + 1, '\n') : NULL;
  nl = nl ? strchr(nl + 1, '\n') : NULL;
  if (nl) nl[1] = '\0';
  if (nd && nl && first3) check_lines(nd, first3, keys, 3);
  json_decref(first3);
  json_decref(inst);
  json_decref(st);
  free(nd);
  free(rows);
  CHECK(xd_server_stop(&s) == 0);
}

/* A model changed while the server was down: the unfinished job fails naming "model"
 * instead of resuming on the other model. */
TEST(model_changed_while_down_fails_the_job) {
  char dir[] = "/tmp/xd-jobs-model-XXXXXX", cmd[1024], jobdir[300], modeldir[300];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(jobdir, sizeof jobdir, "%s/jobs", dir);
  snprintf(modeldir, sizeof modeldir, "%s/models", dir);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -r models/iris '%s/'", modeldir, modeldir);
  CHECK(system(cmd) == 0);
  const char *args[] = {"--workers", "2", "--job-dir", jobdir, "--model-dir", modeldir, NULL};
  const char *env[] = {"EXPLAIND_TEST_PART_DELAY_MS=20", NULL};
  xd_server_t s;
  if (xd_server_start(&s, args, env) != 0) {
    CHECK(0);
    return;
  }
  char *rows = iris_rows(192, -1), *body = malloc(strlen(rows) + 256);
  sprintf(body, "{\"endpoint\":\"/explain/lime\",\"model\":\"iris\",\"instances\":%s,\"num_samples\":100}", rows);
  const char *id0 = submit(s.port, body);
  char id[64] = "";
  if (id0) snprintf(id, sizeof id, "%s", id0);
  xd_sleep_ms(300);
  kill(s.pid, SIGKILL);
  xd_server_wait(&s, 5000);
  snprintf(cmd, sizeof cmd, "printf ' ' >> '%s/iris/model.json'", modeldir); /* other bytes, other digest */
  CHECK(system(cmd) == 0);
  const char *env2[] = {NULL};
  if (xd_server_start(&s, args, env2) != 0) {
    CHECK(0);
    return;
  }
  json_t *st = job_status(s.port, id);
  CHECK(st && strcmp(job_state(st), "failed") == 0);
  const char *field = json_string_value(json_object_get(json_object_get(st, "error"), "field"));
  CHECK(field && strcmp(field, "model") == 0);
  json_decref(st);
  free(rows);
  free(body);
  CHECK(xd_server_stop(&s) == 0);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

/* Permutation importance in 3 shards merges into exactly the 1-shard result (the block
 * sums add up in block order) and the server job's answer, and matches the synchronous
 * /importance: bit for bit for accuracy (counts), to 1e-12 for log loss (a different order
 * of summation). */
TEST(importance_shards_equal_the_single_run) {
  xd_server_t s;
  if (xd_server_start(&s, NULL, NULL) != 0) {
    CHECK(0);
    return;
  }
  char dir[] = "/tmp/xd-imp-XXXXXX", path[512], cmd[1400];
  CHECK(mkdtemp(dir) != NULL);
  size_t n = 2500;
  char *rows = iris_rows(n, -1), *targets = malloc(n * 14 + 8);
  size_t pos = (size_t)sprintf(targets, "[");
  static const char *const cls[] = {"setosa", "versicolor", "virginica"};
  for (size_t i = 0; i < n; i++) pos += (size_t)sprintf(targets + pos, "%s\"%s\"", i ? "," : "", cls[(i * 7 + i / 3) % 3]);
  sprintf(targets + pos, "]");
  static const char *const scorings[] = {"accuracy", "neg_log_loss"};
  for (int k = 0; k < 2; k++) {
    size_t cap = strlen(rows) + strlen(targets) + 512;
    char *opts = malloc(cap), *spec = malloc(cap + 64);
    snprintf(opts, cap, "\"model\":\"iris\",\"method\":\"permutation\",\"scoring\":\"%s\",\"n_repeats\":3,\"seed\":5,"
             "\"data\":{\"instances\":%s,\"targets\":%s}", scorings[k], rows, targets);
    snprintf(spec, cap + 64, "{\"endpoint\":\"/importance\",%s}", opts);
    snprintf(path, sizeof path, "%s/spec.json", dir);
    FILE *f = fopen(path, "w");
    fputs(spec, f);
    fclose(f);
    for (int i = 0; i < 3; i++) {
      snprintf(cmd, sizeof cmd, "%s/explaind jobs run %s/spec.json --model-dir models --shard %d/3 --output %s/s%d.json 2>/dev/null",
               build_dir(), dir, i, dir, i);
      CHECK(run_cmd(cmd) == 0);
    }
    snprintf(cmd, sizeof cmd, "%s/explaind jobs run %s/spec.json --model-dir models --shard 0/1 --output %s/one.json 2>/dev/null && "
             "%s/explaind jobs merge %s/one.json --output %s/m1.json 2>/dev/null && "
             "%s/explaind jobs merge %s/s1.json %s/s2.json %s/s0.json --output %s/m3.json 2>/dev/null && cmp -s %s/m1.json %s/m3.json",
             build_dir(), dir, dir, build_dir(), dir, dir, build_dir(), dir, dir, dir, dir, dir, dir);
    CHECK_MSG(run_cmd(cmd) == 0, "%s: 3 shards merged differ from one", scorings[k]);
    snprintf(cmd, sizeof cmd, "%s/explaind jobs merge %s/s0.json %s/s2.json --output %s/bad.json 2>/dev/null", build_dir(), dir, dir, dir);
    CHECK_MSG(run_cmd(cmd) == 1, "a missing importance shard must be refused");
    /* the same spec as a server job: its answer is the merged file, byte for byte */
    const char *jid = submit(s.port, spec);
    char jidc[64] = "";
    if (jid) snprintf(jidc, sizeof jidc, "%s", jid);
    json_t *jst = jidc[0] ? wait_finished(s.port, jidc, 60000) : NULL;
    CHECK(jst && strcmp(job_state(jst), "succeeded") == 0);
    json_decref(jst);
    size_t alen = 0;
    char *ans = jidc[0] ? results(s.port, jidc, NULL, &alen) : NULL;
    snprintf(path, sizeof path, "%s/m1.json", dir);
    FILE *mf = fopen(path, "rb");
    char *m1 = calloc(1, alen + 16);
    size_t got = mf ? fread(m1, 1, alen + 8, mf) : 0;
    if (mf) fclose(mf);
    CHECK_MSG(ans && got == alen && memcmp(ans, m1, alen) == 0, "%s: server job answer (%zu bytes) != merged shards (%zu)",
              scorings[k], alen, got);
    free(ans);
    free(m1);
    /* against the synchronous answer */
    char *body = malloc(cap + 8);
    snprintf(body, cap + 8, "{%s}", opts);
    json_t *sync = sync_answer(s.port, "/importance", body);
    snprintf(path, sizeof path, "%s/m3.json", dir);
    json_t *merged = json_load_file(path, 0, NULL);
    CHECK(sync && merged);
    json_t *a = json_object_get(sync, "importances"), *b = json_object_get(merged, "importances");
    CHECK(json_array_size(a) == 4 && json_array_size(b) == 4);
    for (size_t j = 0; j < json_array_size(a) && j < json_array_size(b); j++) {
      json_t *va = json_object_get(json_array_get(a, j), "values"), *vb = json_object_get(json_array_get(b, j), "values");
      CHECK(json_equal(json_object_get(json_array_get(a, j), "feature"), json_object_get(json_array_get(b, j), "feature")));
      for (size_t r = 0; r < 3; r++) {
        double x = json_number_value(json_array_get(va, r)), y = json_number_value(json_array_get(vb, r));
        if (k == 0) CHECK_MSG(x == y, "accuracy: %.17g vs %.17g", x, y);
        else CHECK_CLOSE(x, y, 1e-12, 1e-12);
      }
    }
    double bx = json_number_value(json_object_get(sync, "baseline_score")), by = json_number_value(json_object_get(merged, "baseline_score"));
    if (k == 0) CHECK(bx == by);
    else CHECK_CLOSE(bx, by, 1e-12, 1e-12);
    json_decref(sync);
    json_decref(merged);
    free(body);
    free(opts);
    free(spec);
  }
  free(rows);
  free(targets);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(run_cmd(cmd) == 0);
  CHECK(xd_server_stop(&s) == 0);
}

/* ---- partial dependence as a job (docs/jobs.md "PDP over large data") ----------------- */

/* The raw text of a synchronous answer (NULL unless 200). */
static char *sync_text(int port, const char *path, const char *body, size_t *len) {
  xd_http_resp_t r;
  if (xd_http(port, "POST", path, NULL, body, strlen(body), &r) != 0) return NULL;
  char *b = r.status == 200 ? r.body : NULL;
  if (!b) fprintf(stderr, "  %s: %d %.300s\n", path, r.status, r.body ? r.body : "");
  *len = r.body_len;
  if (b) r.body = NULL;
  xd_http_resp_free(&r);
  return b;
}

/* Submits body and waits for success; the results text (the one answer for PDP) or NULL. */
static char *job_results(int port, const char *body, int timeout_ms, size_t *len) {
  const char *id0 = submit(port, body);
  char id[64] = "";
  if (id0) snprintf(id, sizeof id, "%s", id0);
  json_t *st = id[0] ? wait_finished(port, id, timeout_ms) : NULL;
  int ok = st && strcmp(job_state(st), "succeeded") == 0;
  CHECK_MSG(ok, "job %s did not succeed", id);
  json_decref(st);
  return ok ? results(port, id, NULL, len) : NULL;
}

/* The answer text plus the newline the job's answer file ends with equals the job's. */
static int same_answer(const char *sync, size_t slen, const char *job, size_t jlen) {
  return sync && job && jlen == slen + 1 && memcmp(sync, job, slen) == 0 && job[slen] == '\n';
}

/* A PDP job (a pair of features over 17,500 rows: two parts of 16 blocks of 1,024 rows)
 * answers the synchronous /explain/pdp body byte for byte; so does one with ICE curves
 * whose rows are given as a job's "instances"; a target list per instance is cut per
 * chunk. */
TEST(pdp_job_equals_synchronous_answer) {
  xd_server_t s;
  const char *args[] = {"--workers", "2", "--max-background", "20000", NULL};
  if (xd_server_start(&s, args, NULL) != 0) {
    CHECK(0);
    return;
  }
  size_t n = 17500, cap = n * 64 + 512, slen = 0, jlen = 0;
  char *rows = iris_rows(n, -1), *sb = malloc(cap), *jb = malloc(cap);
  snprintf(sb, cap, "{\"model\":\"iris\",\"features\":[\"petal length (cm)\",3],\"grid_resolution\":6,\"data\":{\"instances\":%s}}", rows);
  snprintf(jb, cap, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":[\"petal length (cm)\",3],\"grid_resolution\":6,"
           "\"data\":{\"instances\":%s}}", rows);
  char *sync = sync_text(s.port, "/explain/pdp", sb, &slen), *job = job_results(s.port, jb, 120000, &jlen);
  CHECK_MSG(same_answer(sync, slen, job, jlen), "pair over 17500 rows: job %zu bytes, synchronous %zu", jlen, slen);
  json_t *a = sync ? json_loads(sync, 0, NULL) : NULL;
  CHECK(json_array_size(json_object_get(a, "average")) == 3 && json_integer_value(json_object_get(a, "n_rows")) == 17500);
  json_decref(a);
  free(sync);
  free(job);
  free(rows);
  /* ICE: kind "both", rows as the job's "instances" */
  rows = iris_rows(2500, -1);
  snprintf(sb, cap, "{\"model\":\"iris\",\"features\":2,\"grid_resolution\":9,\"kind\":\"both\",\"data\":{\"instances\":%s}}", rows);
  snprintf(jb, cap, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":2,\"grid_resolution\":9,\"kind\":\"both\",\"instances\":%s}", rows);
  sync = sync_text(s.port, "/explain/pdp", sb, &slen);
  job = job_results(s.port, jb, 120000, &jlen);
  CHECK_MSG(same_answer(sync, slen, job, jlen), "ICE over 2500 rows: job %zu bytes, synchronous %zu", jlen, slen);
  free(sync);
  free(job);
  free(rows);
  free(sb);
  free(jb);
  CHECK(xd_server_stop(&s) == 0);
}

/* Per-instance targets (one per row, 150 rows: three chunks) are cut as the rows are:
 * every line equals the synchronous answer's; a list of another length is a 400 naming
 * "target". */
TEST(per_instance_targets_are_cut_per_chunk) {
  xd_server_t s;
  const char *args[] = {"--workers", "2", NULL};
  if (xd_server_start(&s, args, NULL) != 0) {
    CHECK(0);
    return;
  }
  size_t n = 150;
  char *rows = iris_rows(n, -1), *targets = malloc(n * 4 + 8);
  size_t pos = (size_t)sprintf(targets, "[");
  for (size_t i = 0; i < n; i++) pos += (size_t)sprintf(targets + pos, "%s%zu", i ? "," : "", (i * 7 + i / 5) % 3);
  sprintf(targets + pos, "]");
  static const struct {
    const char *path, *opts;
    const char *keys[7];
  } cases[] = {
      {"/explain/shap", "\"nsamples\":64,\"seed\":11", {"targets", "expected_value", "shap_values", "model_output", NULL}},
      {"/explain/gradient", "\"method\":\"integrated_gradients\",\"steps\":16", {"targets", "attributions", "convergence_delta", NULL}},
      {"/explain/occlusion", "\"baseline\":\"mean\"", {"targets", "attributions", NULL}},
  };
  size_t cap = strlen(rows) + strlen(targets) + 512;
  char *sb = malloc(cap), *jb = malloc(cap);
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    snprintf(sb, cap, "{\"model\":\"iris\",\"instances\":%s,\"target\":%s,%s}", rows, targets, cases[c].opts);
    snprintf(jb, cap, "{\"endpoint\":\"%s\",\"model\":\"iris\",\"instances\":%s,\"target\":%s,%s}", cases[c].path, rows, targets,
             cases[c].opts);
    json_t *sync = sync_answer(s.port, cases[c].path, sb);
    /* the targets are the ones asked for, not all "predicted" */
    CHECK_MSG(sync && json_integer_value(json_array_get(json_object_get(sync, "targets"), 1)) == 1 &&
                  json_integer_value(json_array_get(json_object_get(sync, "targets"), 2)) == 2,
              "%s", cases[c].path);
    size_t len = 0;
    char *nd = job_results(s.port, jb, 60000, &len);
    CHECK_MSG(nd && strstr(nd, "\"error\"") == NULL, "%s: a line is an error", cases[c].path);
    if (nd && sync) check_lines(nd, sync, cases[c].keys, n);
    free(nd);
    json_decref(sync);
  }
  snprintf(jb, cap, "{\"endpoint\":\"/explain/shap\",\"model\":\"iris\",\"instances\":%s,\"target\":[0,1]}", rows);
  expect_error(s.port, jb, 400, "target");
  /* a bad element fails its own row, named by its place in the job */
  json_t *tl = json_loads(targets, 0, NULL);
  json_array_set_new(tl, 70, json_integer(7));
  char *tt = json_dumps(tl, JSON_COMPACT);
  snprintf(jb, cap, "{\"endpoint\":\"/explain/shap\",\"model\":\"iris\",\"instances\":%s,\"target\":%s,\"nsamples\":32}", rows, tt);
  size_t elen = 0;
  char *nd = job_results(s.port, jb, 60000, &elen);
  char *l70 = nd ? strstr(nd, "{\"index\":70,") : NULL;
  CHECK_MSG(l70 && strncmp(l70, "{\"index\":70,\"error\":{", 21) == 0 && strstr(l70, "\"field\":\"target[70]\""), "%.200s",
            l70 ? l70 : "(no line 70)");
  CHECK(nd && count_char(nd, '\n') == (int)n && strstr(nd, "{\"index\":71,\"targets\":") != NULL);
  free(nd);
  free(tt);
  json_decref(tl);
  free(sb);
  free(jb);
  free(rows);
  free(targets);
  CHECK(xd_server_stop(&s) == 0);
}

/* Three command-line shards of a PDP spec with ICE curves (3 blocks of 2,500 rows), merged
 * in any order, give the server job's answer byte for byte. */
TEST(pdp_cli_shards_merge_into_the_servers_answer) {
  xd_server_t s;
  if (xd_server_start(&s, NULL, NULL) != 0) {
    CHECK(0);
    return;
  }
  char dir[] = "/tmp/xd-pdp-XXXXXX", path[512], cmd[1400];
  CHECK(mkdtemp(dir) != NULL);
  char *rows = iris_rows(2500, -1), *spec = malloc(strlen(rows) + 512);
  sprintf(spec, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":[\"sepal width (cm)\"],\"grid_resolution\":11,"
          "\"kind\":\"both\",\"percentiles\":[0.1,0.9],\"data\":{\"instances\":%s}}", rows);
  snprintf(path, sizeof path, "%s/spec.json", dir);
  FILE *f = fopen(path, "w");
  fputs(spec, f);
  fclose(f);
  size_t len = 0;
  char *ans = job_results(s.port, spec, 60000, &len);
  for (int i = 0; i < 3; i++) {
    snprintf(cmd, sizeof cmd, "%s/explaind jobs run %s/spec.json --model-dir models --shard %d/3 --output %s/s%d.json 2>/dev/null",
             build_dir(), dir, i, dir, i);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", cmd);
  }
  snprintf(cmd, sizeof cmd, "%s/explaind jobs merge %s/s2.json %s/s0.json %s/s1.json --output %s/m.json 2>/dev/null",
           build_dir(), dir, dir, dir, dir);
  CHECK(run_cmd(cmd) == 0);
  snprintf(path, sizeof path, "%s/m.json", dir);
  f = fopen(path, "rb");
  char *merged = calloc(1, len + 16);
  size_t got = f ? fread(merged, 1, len + 8, f) : 0;
  if (f) fclose(f);
  CHECK_MSG(ans && got == len && memcmp(merged, ans, len) == 0, "merged %zu bytes, server %zu", got, len);
  /* each shard holds one block: its ICE rows and sums */
  snprintf(path, sizeof path, "%s/s1.json", dir);
  json_t *s1 = json_load_file(path, 0, NULL), *sh = json_object_get(s1, "pdp_shard");
  CHECK(json_integer_value(json_array_get(json_object_get(sh, "blocks"), 0)) == 1);
  CHECK(json_array_size(json_array_get(json_object_get(sh, "individual"), 0)) == 1024);
  json_decref(s1);
  /* a missing shard is refused */
  snprintf(cmd, sizeof cmd, "%s/explaind jobs merge %s/s0.json %s/s2.json --output %s/bad.json 2>/dev/null", build_dir(), dir, dir, dir);
  CHECK(run_cmd(cmd) == 1);
  free(merged);
  free(ans);
  free(rows);
  free(spec);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(run_cmd(cmd) == 0);
  CHECK(xd_server_stop(&s) == 0);
}

/* kill -9 between the two parts of a PDP job: after the restart it resumes at its second
 * part, and the answer is still the synchronous one byte for byte. */
TEST(pdp_job_resumes_after_kill9) {
  char dir[] = "/tmp/xd-pdp-jobs-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  const char *args[] = {"--workers", "2", "--job-dir", dir, "--max-background", "20000", NULL};
  const char *env[] = {"EXPLAIND_TEST_PART_DELAY_MS=1500", NULL};
  xd_server_t s;
  if (xd_server_start(&s, args, env) != 0) {
    CHECK(0);
    return;
  }
  size_t n = 17000, cap = n * 64 + 512;
  char *rows = iris_rows(n, -1), *jb = malloc(cap), *sb = malloc(cap);
  snprintf(jb, cap, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":0,\"grid_resolution\":5,\"instances\":%s}", rows);
  snprintf(sb, cap, "{\"model\":\"iris\",\"features\":0,\"grid_resolution\":5,\"data\":{\"instances\":%s}}", rows);
  const char *id0 = submit(s.port, jb);
  char id[64] = "";
  if (id0) snprintf(id, sizeof id, "%s", id0);
  CHECK(id[0]);
  size_t done = 0;
  for (double t0 = xd_ms_now(); xd_ms_now() - t0 < 30000;) {
    json_t *st = job_status(s.port, id);
    done = job_done(st);
    json_decref(st);
    if (done >= 1) break;
    xd_sleep_ms(20);
  }
  CHECK_MSG(done == 1, "done %zu of 2 parts", done);
  kill(s.pid, SIGKILL);
  xd_server_wait(&s, 5000);
  const char *env2[] = {NULL};
  if (xd_server_start(&s, args, env2) != 0) {
    CHECK(0);
    return;
  }
  json_t *st = wait_finished(s.port, id, 60000);
  CHECK(st && strcmp(job_state(st), "succeeded") == 0 && job_done(st) == 2);
  json_decref(st);
  CHECK(xd_server_log_contains(&s, "resuming"));
  size_t len = 0, slen = 0;
  char *ans = results(s.port, id, NULL, &len), *sync = sync_text(s.port, "/explain/pdp", sb, &slen);
  CHECK_MSG(same_answer(sync, slen, ans, len), "resumed job %zu bytes, synchronous %zu", len, slen);
  free(ans);
  free(sync);
  free(rows);
  free(jb);
  free(sb);
  CHECK(xd_server_stop(&s) == 0);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

/* A bad PDP job is a 4xx at submission naming the field. */
TEST(pdp_job_bad_input) {
  xd_server_t s;
  const char *args[] = {"--max-job-rows", "3", NULL};
  if (xd_server_start(&s, args, NULL) != 0) {
    CHECK(0);
    return;
  }
  expect_error(s.port, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":[\"nope\"],\"instances\":[[1,2,3,4],[2,3,4,5]]}",
               400, "features[0]");
  expect_error(s.port, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":0,\"grid_resolution\":100000,"
               "\"instances\":[[1,2,3,4],[2,3,4,5]]}", 400, "grid_resolution");
  expect_error(s.port, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":0,\"kind\":\"all\","
               "\"instances\":[[1,2,3,4],[2,3,4,5]]}", 400, "kind");
  expect_error(s.port, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":0,\"csv\":\"a,b\\n1,2\\n\"}", 400, "csv");
  expect_error(s.port, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":0,\"instances\":[[1,2,3,4]],"
               "\"data\":{\"instances\":[[1,2,3,4]]}}", 400, "instances");
  expect_error(s.port, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":0,\"instances\":[[1,2,3,4],[1,2,3]]}", 400,
               "instances[1]");
  expect_error(s.port, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":0,"
               "\"instances\":[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4]]}", 413, "instances");
  /* CSV rows work */
  size_t len = 0;
  char *ans = job_results(s.port, "{\"endpoint\":\"/explain/pdp\",\"model\":\"iris\",\"features\":3,\"csv\":\"petal width (cm),"
                          "sepal length (cm),sepal width (cm),petal length (cm)\\n0.2,5.1,3.5,1.4\\n1.3,6.2,2.9,4.3\\n\"}", 30000, &len);
  CHECK(ans && strncmp(ans, "{\"model\":\"iris\",\"features\":[\"petal width (cm)\"]", 47) == 0 && strstr(ans, "\"n_rows\":2}"));
  free(ans);
  CHECK(xd_server_stop(&s) == 0);
}

/* Runs spec (a job body) as two command-line shards, merges them, and checks every line
 * against the synchronous answer to the same body without "endpoint". */
static void two_shards_equal_sync(int port, json_t *spec, const char *const *keys, size_t n) {
  char dir[] = "/tmp/xd-two-XXXXXX", path[512], cmd[1400];
  CHECK(mkdtemp(dir) != NULL);
  const char *endpoint = json_string_value(json_object_get(spec, "endpoint"));
  json_t *sb = json_deep_copy(spec);
  json_object_del(sb, "endpoint");
  char *sync_body = json_dumps(sb, JSON_COMPACT);
  snprintf(path, sizeof path, "%s/spec.json", dir);
  CHECK(json_dump_file(spec, path, JSON_COMPACT) == 0);
  json_t *sync = sync_answer(port, endpoint, sync_body);
  for (int i = 0; i < 2; i++) {
    snprintf(cmd, sizeof cmd, "%s/explaind jobs run %s --model-dir models --shard %d/2 --output %s/p%d.ndjson 2>/dev/null",
             build_dir(), path, i, dir, i);
    CHECK_MSG(run_cmd(cmd) == 0, "%s", cmd);
  }
  snprintf(cmd, sizeof cmd, "%s/explaind jobs merge %s/p1.ndjson %s/p0.ndjson --output %s/all.ndjson 2>/dev/null", build_dir(), dir,
           dir, dir);
  CHECK(run_cmd(cmd) == 0);
  snprintf(path, sizeof path, "%s/all.ndjson", dir);
  FILE *f = fopen(path, "rb");
  char *nd = calloc(1, 1 << 22);
  if (f) {
    CHECK(fread(nd, 1, (1 << 22) - 1, f) > 0);
    fclose(f);
  }
  CHECK_MSG(strstr(nd, "\"error\"") == NULL, "%s: %.300s", endpoint, nd);
  if (sync) check_lines(nd, sync, keys, n);
  free(nd);
  free(sync_body);
  json_decref(sync);
  json_decref(sb);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(run_cmd(cmd) == 0);
}

/* Image SHAP with one segment map per image (2x2 .. 5x5 grids) and a target per image, run
 * as two command-line shards of two images each: each shard cuts "segments" and "target"
 * as its rows, and the merged lines equal the synchronous answer's. So do the other
 * endpoints that draw random numbers per image or text: each shard's instance k draws from
 * stream first + k. */
TEST(image_and_text_shards_equal_the_synchronous_answer) {
  xd_server_t s;
  if (xd_server_start(&s, NULL, NULL) != 0) {
    CHECK(0);
    return;
  }
  json_t *g = json_load_file("tests/golden/image_explain/shapes.json", 0, NULL), *rows = json_array(), *segs = json_array();
  for (size_t i = 0; g && i < 4; i++) {
    json_array_append_new(rows, json_pack("{s:O}", "b64", json_array_get(json_object_get(g, "images"), i)));
    json_t *map = json_array();
    size_t k = 2 + i;
    for (size_t y = 0; y < 32; y++) {
      json_t *r = json_array();
      for (size_t x = 0; x < 32; x++) json_array_append_new(r, json_integer((json_int_t)((y * k / 32) * k + x * k / 32)));
      json_array_append_new(map, r);
    }
    json_array_append_new(segs, map);
  }
  json_t *spec = json_pack("{s:s, s:s, s:O, s:O, s:[iiii], s:i, s:i}", "endpoint", "/explain/shap", "model", "shapes", "instances",
                           rows, "segments", segs, "target", 1, 0, 2, 1, "nsamples", 40, "seed", 3);
  static const char *const shap_keys[] = {"targets", "expected_value", "shap_values", "outputs", "explanations", NULL};
  two_shards_equal_sync(s.port, spec, shap_keys, 4);
  json_decref(spec);
  /* image LIME with the segments given per image */
  spec = json_pack("{s:s, s:s, s:O, s:O, s:i, s:i, s:[i]}", "endpoint", "/explain/lime", "model", "shapes", "instances", rows,
                   "segments", segs, "num_samples", 60, "seed", 4, "labels", 1);
  static const char *const lime_keys[] = {"explanations", NULL};
  two_shards_equal_sync(s.port, spec, lime_keys, 4);
  json_decref(spec);
  static const char *const grad_keys[] = {"targets", "attributions", "tokens", "offsets", NULL};
  /* image gradients: each image's rows run apart from the others' (core/image_explain.h),
   * so a shard's images get the bits of the whole request's; "heatmaps" and "cam" too */
  static const char *const igrad_keys[] = {"targets", "attributions", "heatmaps", NULL};
  static const char *const cam_keys[] = {"targets", "cam", "heatmaps", NULL};
  const char *image_methods[] = {"saliency", "smoothgrad", "integrated_gradients", "grad_cam"};
  for (size_t k = 0; k < 4; k++) {
    spec = json_pack("{s:s, s:s, s:O, s:s, s:i, s:i}", "endpoint", "/explain/gradient", "model", "shapes", "instances", rows,
                     "method", image_methods[k], "samples", 6, "seed", 11);
    if (k != 1) json_object_del(spec, "samples");
    two_shards_equal_sync(s.port, spec, k == 3 ? cam_keys : igrad_keys, 4);
    json_decref(spec);
  }
  /* text: Kernel SHAP and SmoothGrad on the words of four reviews */
  json_t *texts = json_pack("[ssss]", "a great film with a fine cast", "dull and far too long", "not bad at all, really",
                            "the plot makes no sense but the music is lovely");
  spec = json_pack("{s:s, s:s, s:O, s:i, s:i}", "endpoint", "/explain/shap", "model", "reviews_gru", "instances", texts,
                   "nsamples", 30, "seed", 8);
  static const char *const tshap_keys[] = {"targets", "expected_value", "shap_values", "tokens", "words", NULL};
  two_shards_equal_sync(s.port, spec, tshap_keys, 4);
  json_decref(spec);
  spec = json_pack("{s:s, s:s, s:O, s:s, s:i, s:i}", "endpoint", "/explain/gradient", "model", "reviews_gru", "instances", texts,
                   "method", "smoothgrad", "samples", 3, "seed", 9);
  two_shards_equal_sync(s.port, spec, grad_keys, 4);
  json_decref(spec);
  json_decref(texts);
  /* two texts, a shard each: one text alone would have its 1,100 perturbed texts split over
   * parts; a shard of the two-text request must not (xd_work_t.request_rows), or its
   * batches, and their float rounding, would not be the request's */
  texts = json_pack("[ss]", "a great film with a fine cast", "dull and far too long, the plot makes no sense");
  spec = json_pack("{s:s, s:s, s:O, s:i, s:i, s:[i]}", "endpoint", "/explain/lime", "model", "reviews_bert", "instances", texts,
                   "num_samples", 1100, "seed", 12, "labels", 1);
  static const char *const tlime_keys[] = {"explanations", "tokens", NULL};
  two_shards_equal_sync(s.port, spec, tlime_keys, 2);
  json_decref(spec);
  json_decref(texts);
  json_decref(rows);
  json_decref(segs);
  json_decref(g);
  CHECK(xd_server_stop(&s) == 0);
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
  signal(SIGPIPE, SIG_IGN);
  if (!only || strstr("lines_equal_synchronous_answers", only)) RUN(lines_equal_synchronous_answers);
  if (!only || strstr("image_occlusion_lines_equal_synchronous_answer", only)) RUN(image_occlusion_lines_equal_synchronous_answer);
  if (!only || strstr("kill9_and_restart_resume_without_loss_or_duplicates", only)) RUN(kill9_and_restart_resume_without_loss_or_duplicates);
  if (!only || strstr("cancel_then_delete", only)) RUN(cancel_then_delete);
  if (!only || strstr("progress_monotone_and_event_stream", only)) RUN(progress_monotone_and_event_stream);
  if (!only || strstr("cli_shards_merge_into_the_servers_lines", only)) RUN(cli_shards_merge_into_the_servers_lines);
  if (!only || strstr("bad_input_and_failing_rows", only)) RUN(bad_input_and_failing_rows);
  if (!only || strstr("chunks_within_the_request_limits", only)) RUN(chunks_within_the_request_limits);
  if (!only || strstr("model_changed_while_down_fails_the_job", only)) RUN(model_changed_while_down_fails_the_job);
  if (!only || strstr("importance_shards_equal_the_single_run", only)) RUN(importance_shards_equal_the_single_run);
  if (!only || strstr("pdp_job_equals_synchronous_answer", only)) RUN(pdp_job_equals_synchronous_answer);
  if (!only || strstr("per_instance_targets_are_cut_per_chunk", only)) RUN(per_instance_targets_are_cut_per_chunk);
  if (!only || strstr("pdp_cli_shards_merge_into_the_servers_answer", only)) RUN(pdp_cli_shards_merge_into_the_servers_answer);
  if (!only || strstr("pdp_job_resumes_after_kill9", only)) RUN(pdp_job_resumes_after_kill9);
  if (!only || strstr("pdp_job_bad_input", only)) RUN(pdp_job_bad_input);
  if (!only || strstr("image_and_text_shards_equal_the_synchronous_answer", only))
    RUN(image_and_text_shards_equal_the_synchronous_answer);
  return TEST_REPORT();
}
