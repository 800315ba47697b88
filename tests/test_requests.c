/* test_requests.c — the request suite over HTTP against the real server, and the
 * predictions of every demo model checked against the training script's goldens. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cases.h"
#include "tests/harness.h"
#include "tests/test.h"

static xd_server_t srv;

static int send_case(const xd_case_t *c, xd_http_resp_t *r) {
  char headers[1024] = "";
  json_t *h = json_object_get(c->spec, "headers");
  const char *k;
  json_t *v;
  json_object_foreach(h, k, v) {
    size_t l = strlen(headers);
    snprintf(headers + l, sizeof headers - l, "%s: %s\r\n", k, json_string_value(v));
  }
  if (!h && c->body) strcat(headers, "Content-Type: application/json\r\n");
  return xd_http(srv.port, json_string_value(json_object_get(c->spec, "method")),
                 json_string_value(json_object_get(c->spec, "path")), headers, c->body, c->body_len, r);
}

static void run_dir(const char *dir, size_t min_cases) {
  xd_case_t *cs;
  size_t n = xd_cases_load(dir, &cs);
  CHECK_MSG(n >= min_cases, "%s has %zu cases", dir, n);
  for (size_t i = 0; i < n; i++) {
    xd_http_resp_t r;
    if (send_case(&cs[i], &r) != 0) {
      CHECK_MSG(0, "case %s: no answer", cs[i].name);
      continue;
    }
    CHECK_MSG(xd_case_check(&cs[i], r.status, r.body, r.body_len), "case %s", cs[i].name);
    const char *ct = xd_http_header(&r, "Content-Type");
    CHECK_MSG(ct && strncmp(ct, "application/json", 16) == 0, "case %s: Content-Type %s", cs[i].name, ct ? ct : "-");
    CHECK_MSG(xd_http_header(&r, "X-Request-Id") != NULL, "case %s: no X-Request-Id", cs[i].name);
    if (r.status == 405) CHECK_MSG(xd_http_header(&r, "Allow") != NULL, "case %s: 405 without Allow", cs[i].name);
    xd_http_resp_free(&r);
  }
  xd_cases_free(cs, n);
}

TEST(invalid_requests_over_http) { run_dir("tests/requests/invalid", 30); }
TEST(valid_requests_over_http) { run_dir("tests/requests/valid", 5); }

/* POSTs body to path and returns the parsed JSON (or NULL), checking the status. */
static json_t *post(const char *path, const char *body, int want_status) {
  xd_http_resp_t r;
  if (xd_http(srv.port, "POST", path, "Content-Type: application/json\r\n", body, strlen(body), &r) != 0) return NULL;
  json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
  if (r.status != want_status) {
    fprintf(stderr, "  POST %s: status %d: %.300s\n", path, r.status, r.body);
    json_decref(j);
    j = NULL;
  }
  xd_http_resp_free(&r);
  return j;
}

TEST(readme_iris_example) {
  /* The README's curl example answers what the README shows under it (reals within 1e-12:
   * BLAS kernels may differ in the last bit between CPUs). */
  json_t *j = post("/predict", "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]]}", 200);
  CHECK(j != NULL);
  FILE *f = fopen("README.md", "r");
  char line[1024];
  json_t *shown = NULL;
  while (f && !shown && fgets(line, sizeof line, f))
    if (strncmp(line, "# {\"model\":\"iris\"", strlen("# {\"model\":\"iris\"")) == 0) shown = json_loads(line + 2, 0, NULL);
  if (f) fclose(f);
  CHECK_MSG(shown != NULL, "README.md has no example answer for iris");
  if (j && shown) {
    CHECK(json_object_size(j) == json_object_size(shown));
    CHECK_MSG(xd_json_subset_tol(shown, j, 1e-12), "README shows %s", line + 2);
    json_t *p = json_array_get(json_object_get(j, "probabilities"), 0);
    double s = 0;
    for (size_t c = 0; c < 3; c++) s += json_number_value(json_array_get(p, c));
    CHECK_NEAR(s, 1, 1e-12);
  }
  json_decref(shown);
  json_decref(j);
}

/* Every demo model over HTTP against tests/golden/predict_NAME.json; the 10 golden rows
 * are repeated `times` times in one request (times = 100 makes 1,000 rows). */
static void check_golden(const char *name, size_t times) {
  char p[256];
  snprintf(p, sizeof p, "tests/golden/predict_%s.json", name);
  json_t *g = json_load_file(p, 0, NULL);
  CHECK(g != NULL);
  if (!g) return;
  json_t *inst = json_object_get(g, "instances"), *rows = json_array();
  size_t n = json_array_size(inst);
  for (size_t t = 0; t < times; t++)
    for (size_t i = 0; i < n; i++) json_array_append(rows, json_array_get(inst, i));
  json_t *req = json_pack("{s:s, s:o}", "model", name, "instances", rows);
  char *body = json_dumps(req, JSON_COMPACT);
  json_t *j = post("/predict", body, 200);
  free(body);
  json_decref(req);
  CHECK_MSG(j != NULL, "%s", name);
  if (j) {
    json_t *probs = json_object_get(g, "probabilities");
    json_t *got = json_object_get(j, probs ? "probabilities" : "predictions");
    json_t *want = probs ? probs : json_object_get(g, "predictions");
    CHECK(json_array_size(got) == n * times);
    for (size_t i = 0; i < n * times && i < json_array_size(got); i++) {
      json_t *a = json_array_get(got, i), *b = json_array_get(want, i % n);
      if (probs) {
        for (size_t c = 0; c < json_array_size(b); c++)
          CHECK_NEAR(json_number_value(json_array_get(a, c)), json_number_value(json_array_get(b, c)), 1e-5);
      } else {
        CHECK_CLOSE(json_number_value(a), json_number_value(b), 1e-5, 1e-5);
      }
    }
    json_t *labels = json_object_get(g, "labels");
    for (size_t i = 0; labels && i < n; i++)
      CHECK(json_equal(json_array_get(json_object_get(j, "predictions"), i), json_array_get(labels, i)));
  }
  json_decref(j);
  json_decref(g);
}

TEST(demo_models_match_goldens) {
  const char *names[] = {"iris", "breast_cancer", "wine", "diabetes", "credit"};
  for (size_t i = 0; i < 5; i++) check_golden(names[i], 1);
}

TEST(thousand_rows_of_breast_cancer_in_one_request) { check_golden("breast_cancer", 100); }

TEST(request_id_is_echoed_or_generated) {
  xd_http_resp_t r;
  CHECK(xd_http(srv.port, "GET", "/healthz", "X-Request-Id: abc-123\r\n", NULL, 0, &r) == 0);
  const char *id = xd_http_header(&r, "X-Request-Id");
  CHECK(id && strcmp(id, "abc-123") == 0);
  xd_http_resp_free(&r);
  CHECK(xd_http(srv.port, "GET", "/healthz", NULL, NULL, 0, &r) == 0);
  id = xd_http_header(&r, "X-Request-Id");
  CHECK(id && strlen(id) >= 8);
  xd_http_resp_free(&r);
}

int main(void) {
  /* The declared-length 413 case claims 100 MB; the default 8 MiB limit refuses it. */
  const char *args[] = {"--max-rows", "1000", NULL};
  if (xd_server_start(&srv, args, NULL) != 0) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  RUN(invalid_requests_over_http);
  RUN(valid_requests_over_http);
  RUN(readme_iris_example);
  RUN(demo_models_match_goldens);
  RUN(thousand_rows_of_breast_cancer_in_one_request);
  RUN(request_id_is_echoed_or_generated);
  int st = xd_server_stop(&srv);
  CHECK_MSG(st == 0, "server exit status %d", st);
  if (st != 0) xd_test_failed++;
  return TEST_REPORT();
}
