/* test_e2e_gradient_shap.c — /explain/gradient and /explain/shap over HTTP against the
 * real server: every method on every demo model (shapes, finite numbers, IG completeness,
 * SHAP efficiency, echoed fields, determinism), and invalid requests with the expected
 * status, code and field. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/test.h"

static xd_server_t srv;
static int up;

static void wait_ready(int port);

typedef struct demo {
  const char *name;
  size_t d, k; /* features, outputs */
  const char *row;
} demo_t;

static const demo_t demos[] = {
    {"breast_cancer", 30, 2,
     "[17.6,23.33,119.0,980.5,0.09289,0.2004,0.2136,0.1002,0.1696,0.07369,0.9289,1.465,5.801,104.9,0.006766,"
     "0.07025,0.06591,0.02311,0.01673,0.0113,21.57,28.87,143.6,1437.0,0.1207,0.4785,0.5165,0.1996,0.2301,0.1224]"},
    {"credit", 6, 2, "[33.0,41816.0,0.2156,\"employed\",\"east\",1.0]"},
    {"diabetes", 10, 1, "[54.0,2.0,36.1,115.0,163.0,98.4,43.0,4.0,4.6821,101.0]"},
    {"iris", 4, 3, "[5.1,3.4,1.5,0.2]"},
    {"wine", 13, 3, "[13.32,3.24,2.38,21.5,92.0,1.93,0.76,0.45,1.25,8.42,0.55,1.62,650.0]"},
};
#define N_DEMOS (sizeof demos / sizeof *demos)

/* POSTs body to path; returns the parsed response (caller decrefs) and its status. */
static json_t *post(const char *path, const char *body, int *status) {
  xd_http_resp_t r;
  *status = 0;
  if (xd_http(srv.port, "POST", path, "Content-Type: application/json\r\n", body, strlen(body), &r) != 0) return NULL;
  *status = r.status;
  json_t *o = json_loadb(r.body, r.body_len, 0, NULL);
  if (!o) fprintf(stderr, "  unparsable body: %.300s\n", r.body);
  xd_http_resp_free(&r);
  return o;
}

/* Checks that o.key is an n x d matrix of finite numbers. */
static int matrix_ok(const json_t *o, const char *key, size_t n, size_t d) {
  json_t *a = json_object_get(o, key);
  if (!json_is_array(a) || json_array_size(a) != n) return 0;
  for (size_t i = 0; i < n; i++) {
    json_t *r = json_array_get(a, i);
    if (!json_is_array(r) || json_array_size(r) != d) return 0;
    for (size_t j = 0; j < d; j++)
      if (!json_is_number(json_array_get(r, j))) return 0;
  }
  return 1;
}

static double row_sum(const json_t *o, const char *key, size_t i) {
  json_t *r = json_array_get(json_object_get(o, key), i);
  double s = 0;
  for (size_t j = 0; j < json_array_size(r); j++) s += json_number_value(json_array_get(r, j));
  return s;
}

TEST(gradient_every_method_every_model) {
  static const char *methods[] = {"saliency",   "gradient",      "input_x_gradient", "integrated_gradients",
                                  "smoothgrad", "smoothgrad_sq", "vargrad"};
  char body[4096];
  for (size_t m = 0; m < N_DEMOS; m++)
    for (size_t k = 0; k < 7; k++) {
      snprintf(body, sizeof body, "{\"model\":\"%s\",\"instances\":[%s,%s],\"method\":\"%s\",\"seed\":5}",
               demos[m].name, demos[m].row, demos[m].row, methods[k]);
      int st;
      json_t *o = post("/explain/gradient", body, &st);
      CHECK_MSG(st == 200 && o, "%s %s: status %d", demos[m].name, methods[k], st);
      if (!o) continue;
      CHECK(matrix_ok(o, "attributions", 2, demos[m].d));
      CHECK(!strcmp(json_string_value(json_object_get(o, "method")), methods[k]));
      CHECK(json_array_size(json_object_get(o, "targets")) == 2);
      if (k == 3) { /* IG: baseline echoed, completeness */
        CHECK(json_array_size(json_object_get(o, "baseline")) == demos[m].d);
        json_t *delta = json_object_get(o, "convergence_delta");
        CHECK(json_array_size(delta) == 2);
        for (size_t i = 0; i < 2; i++) CHECK(fabs(json_number_value(json_array_get(delta, i))) < 0.05);
      }
      if (k == 6)
        for (size_t j = 0; j < demos[m].d; j++)
          CHECK(json_number_value(json_array_get(json_array_get(json_object_get(o, "attributions"), 0), j)) >= 0);
      if (k >= 4) CHECK(json_integer_value(json_object_get(o, "seed")) == 5);
      /* both rows are the same instance: same attributions (deterministic per-row streams
       * differ for SmoothGrad, so only the plain methods) */
      if (k < 4) CHECK_NEAR(row_sum(o, "attributions", 0), row_sum(o, "attributions", 1), 1e-12);
      json_decref(o);
    }
}

TEST(gradient_options) {
  int st;
  char body[2048];
  /* IG with a row baseline, riemann_trapezoid, logit output, a class name target */
  snprintf(body, sizeof body,
           "{\"model\":\"iris\",\"instance\":[6.5,3.0,5.2,2.0],\"baseline\":[5.0,3.0,1.5,0.2],"
           "\"integration\":\"riemann_trapezoid\",\"steps\":300,\"output\":\"logit\",\"target\":\"virginica\"}");
  json_t *o = post("/explain/gradient", body, &st);
  CHECK(st == 200 && o);
  if (o) {
    CHECK(json_integer_value(json_array_get(json_object_get(o, "targets"), 0)) == 2);
    CHECK_NEAR(json_number_value(json_array_get(json_object_get(o, "baseline"), 0)), 5.0, 0);
    /* iris is linear in the logit: attributions are exactly w (x - b), delta ~ 0 */
    CHECK_NEAR(json_number_value(json_array_get(json_object_get(o, "convergence_delta"), 0)), 0, 1e-10);
    json_decref(o);
  }
  /* credit: categorical baseline echo ("mean" = category frequencies) and "zeros" */
  o = post("/explain/gradient", "{\"model\":\"credit\",\"instance\":[33,41816,0.2156,\"employed\",\"east\",1]}", &st);
  CHECK(st == 200 && o);
  if (o) {
    json_t *b = json_object_get(o, "baseline");
    CHECK(json_is_object(json_array_get(b, 3)));
    CHECK(json_is_number(json_array_get(b, 0)));
    json_decref(o);
  }
  o = post("/explain/gradient",
           "{\"model\":\"credit\",\"instance\":[33,41816,0.2156,\"employed\",\"east\",1],\"baseline\":\"zeros\","
           "\"target\":[\"yes\"]}",
           &st);
  CHECK(st == 200 && o);
  if (o) {
    CHECK(json_is_string(json_array_get(json_object_get(o, "baseline"), 3)));
    CHECK(json_integer_value(json_array_get(json_object_get(o, "targets"), 0)) == 1);
    json_decref(o);
  }
}

TEST(shap_every_model_efficiency_and_determinism) {
  char body[4096];
  for (size_t m = 0; m < N_DEMOS; m++) {
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"instances\":[%s,%s],\"seed\":13,\"background_size\":20}",
             demos[m].name, demos[m].row, demos[m].row);
    int st, st2;
    json_t *o = post("/explain/shap", body, &st), *o2 = post("/explain/shap", body, &st2);
    CHECK_MSG(st == 200 && o && st2 == 200 && o2, "%s: status %d", demos[m].name, st);
    if (!o || !o2) {
      json_decref(o);
      json_decref(o2);
      continue;
    }
    CHECK(matrix_ok(o, "shap_values", 2, demos[m].d));
    CHECK(json_equal(o, o2)); /* same seed, same answer */
    const char *meth = json_string_value(json_object_get(o, "method"));
    CHECK(meth && (!strcmp(meth, "kernel") || !strcmp(meth, "linear")));
    for (size_t i = 0; i < 2; i++) {
      double ev = json_number_value(json_array_get(json_object_get(o, "expected_value"), i));
      double fx = json_number_value(json_array_get(json_object_get(o, "model_output"), i));
      CHECK_NEAR(ev + row_sum(o, "shap_values", i), fx, 1e-9);
      CHECK(fabs(json_number_value(json_array_get(json_object_get(o, "efficiency_gap"), i))) <= 1e-9);
    }
    json_decref(o);
    json_decref(o2);
  }
  /* exact, l1 and logit link, custom weighted background */
  const char *bodies[] = {
      "{\"model\":\"iris\",\"instance\":[6.5,3.0,5.2,2.0],\"method\":\"exact\",\"link\":\"logit\",\"seed\":1}",
      "{\"model\":\"wine\",\"instance\":[13.32,3.24,2.38,21.5,92.0,1.93,0.76,0.45,1.25,8.42,0.55,1.62,650.0],"
      "\"l1_reg\":\"num_features(4)\",\"nsamples\":500,\"seed\":2}",
      "{\"model\":\"credit\",\"instance\":[33,41816,0.2156,\"employed\",\"east\",1],\"background\":[[50,30000,0.3,"
      "\"retired\",\"west\",0],[25,60000,0.1,\"employed\",\"north\",2]],\"background_weights\":[1,3],\"seed\":3}",
  };
  const char *want[] = {"exact", "kernel", "kernel"};
  for (size_t b = 0; b < 3; b++) {
    int st;
    json_t *o = post("/explain/shap", bodies[b], &st);
    CHECK_MSG(st == 200 && o, "body %zu: status %d", b, st);
    if (!o) continue;
    CHECK(!strcmp(json_string_value(json_object_get(o, "method")), want[b]));
    CHECK(fabs(json_number_value(json_array_get(json_object_get(o, "efficiency_gap"), 0))) <= 1e-9);
    if (b == 1) {
      json_t *r = json_array_get(json_object_get(o, "shap_values"), 0);
      size_t nz = 0;
      for (size_t j = 0; j < json_array_size(r); j++) nz += json_number_value(json_array_get(r, j)) != 0;
      CHECK(nz <= 4);
    }
    if (b == 2) CHECK(json_integer_value(json_object_get(o, "background_size")) == 2);
    json_decref(o);
  }
}

typedef struct bad {
  const char *path, *body;
  int status;
  const char *code, *field;
} bad_t;

TEST(invalid_requests) {
  static const bad_t cases[] = {
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"bogus\":1}", 400, "invalid_argument", "bogus"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"method\":\"deeplift\"}", 400, "invalid_argument", "method"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"steps\":0}", 400, "invalid_argument", "steps"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"steps\":100000}", 400, "invalid_argument", "steps"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"steps\":1,\"integration\":\"riemann_left\"}", 400, "invalid_argument", "steps"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"integration\":\"simpson\"}", 400, "invalid_argument", "integration"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"output\":\"margin\"}", 400, "invalid_argument", "output"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"target\":3}", 400, "invalid_argument", "target"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"target\":\"rose\"}", 400, "invalid_argument", "target"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instances\":[[1,2,3,4]],\"target\":[0,1]}", 400, "invalid_argument", "target"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"baseline\":[1,2]}", 400, "invalid_argument", "baseline"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"baseline\":\"median\"}", 400, "invalid_argument", "baseline"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"noise_stddev\":-1}", 400, "invalid_argument", "noise_stddev"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"samples\":0}", 400, "invalid_argument", "samples"},
      {"/explain/gradient", "{\"model\":\"iris\",\"instance\":[1,2,3]}", 400, "invalid_argument", "instance"},
      {"/explain/gradient", "{\"model\":\"nope\",\"instance\":[1,2,3,4]}", 404, "not_found", "model"},
      {"/explain/gradient", "{\"model\":\"diabetes\",\"instance\":[1,2,3,4,5,6,7,8,9,10],\"target\":1}", 400, "invalid_argument", "target"},
      {"/explain/shap", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"nsample\":10}", 400, "invalid_argument", "nsample"},
      {"/explain/shap", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"nsamples\":\"many\"}", 400, "invalid_argument", "nsamples"},
      {"/explain/shap", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"nsamples\":0}", 400, "invalid_argument", "nsamples"},
      {"/explain/shap", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"l1_reg\":\"aic\"}", 400, "invalid_argument", "l1_reg"},
      {"/explain/shap", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"link\":\"probit\"}", 400, "invalid_argument", "link"},
      {"/explain/shap", "{\"model\":\"diabetes\",\"instance\":[1,2,3,4,5,6,7,8,9,10],\"link\":\"logit\"}", 400, "invalid_argument", "link"},
      {"/explain/shap", "{\"model\":\"breast_cancer\",\"instance\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30],\"method\":\"exact\"}", 400, "invalid_argument", "method"},
      {"/explain/shap", "{\"model\":\"wine\",\"instance\":[1,2,3,4,5,6,7,8,9,10,11,12,13],\"method\":\"linear\"}", 400, "invalid_argument", "method"},
      {"/explain/shap", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"background_weights\":[1]}", 400, "invalid_argument", "background_weights"},
      {"/explain/shap", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"background\":[[1,2,3,4]],\"background_weights\":[-1]}", 400, "invalid_argument", "background_weights[0]"},
      {"/explain/shap", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"background\":[[1,2,3]]}", 400, "invalid_argument", "background[0]"},
      {"/explain/shap", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"background_size\":0}", 400, "invalid_argument", "background_size"},
      {"/explain/shap", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"method\":\"tree\"}", 400, "invalid_argument", "method"},
      {"/explain/shap", "{\"model\":\"credit\",\"instance\":[33,41816,0.2156,\"astronaut\",\"east\",1]}", 400, "invalid_argument", "instance"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    int st;
    json_t *o = post(cases[c].path, cases[c].body, &st);
    json_t *e = json_object_get(o, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *field = json_string_value(json_object_get(e, "field"));
    CHECK_MSG(st == cases[c].status && code && !strcmp(code, cases[c].code), "case %zu: status %d code %s", c, st,
              code ? code : "-");
    CHECK_MSG(field && !strncmp(field, cases[c].field, strlen(cases[c].field)), "case %zu: field %s, want %s", c,
              field ? field : "-", cases[c].field);
    json_decref(o);
  }
  /* work beyond max_work_rows: 413 */
  char *big = malloc(1 << 20);
  size_t len = (size_t)snprintf(big, 1 << 20, "{\"model\":\"iris\",\"method\":\"smoothgrad\",\"samples\":100000,\"instances\":[");
  for (int i = 0; i < 600; i++) len += (size_t)snprintf(big + len, (1 << 20) - len, "%s[1,2,3,4]", i ? "," : "");
  snprintf(big + len, (1 << 20) - len, "]}");
  int st;
  json_t *o = post("/explain/gradient", big, &st);
  CHECK(st == 413);
  CHECK(o && !strcmp(json_string_value(json_object_get(json_object_get(o, "error"), "code")), "payload_too_large"));
  json_decref(o);
  free(big);
}

/* Raw body of POST path on port. malloc'd, or NULL. */
static char *raw_post(int port, const char *path, const char *body) {
  xd_http_resp_t r;
  if (xd_http(port, "POST", path, "Content-Type: application/json\r\n", body, strlen(body), &r) != 0) return NULL;
  char *out = r.status == 200 ? strdup(r.body) : NULL;
  xd_http_resp_free(&r);
  return out;
}

static void wait_ready(int port) {
  for (int i = 0; i < 200; i++) { /* /healthz answers while models still load */
    xd_http_resp_t r;
    int ok = xd_http(port, "GET", "/readyz", NULL, NULL, 0, &r) == 0 && r.status == 200;
    xd_http_resp_free(&r);
    if (ok) break;
    xd_sleep_ms(50);
  }
}

/* Byte-identical answers from servers with 1, 2 (the main one) and 3 workers. */
TEST(same_answer_whatever_the_worker_count_over_http) {
  char b0[2048], b1[2048], b2[2048];
  snprintf(b0, sizeof b0, "{\"model\":\"breast_cancer\",\"instance\":%s,\"seed\":21}", demos[0].row);
  snprintf(b1, sizeof b1, "{\"model\":\"credit\",\"instances\":[%s,%s,%s],\"method\":\"vargrad\",\"seed\":4}",
           demos[1].row, demos[1].row, demos[1].row);
  snprintf(b2, sizeof b2, "{\"model\":\"wine\",\"instances\":[%s,%s],\"seed\":8,\"nsamples\":900}", demos[4].row,
           demos[4].row);
  const char *paths[3] = {"/explain/shap", "/explain/gradient", "/explain/shap"};
  const char *bodies[3] = {b0, b1, b2};
  char *ref[3];
  for (int b = 0; b < 3; b++) CHECK((ref[b] = raw_post(srv.port, paths[b], bodies[b])) != NULL);
  const char *counts[2] = {"1", "3"};
  for (int c = 0; c < 2; c++) {
    xd_server_t other;
    const char *args[] = {"--workers", counts[c], NULL};
    if (xd_server_start(&other, args, NULL) != 0) {
      CHECK_MSG(0, "could not start a server with %s workers", counts[c]);
      continue;
    }
    wait_ready(other.port);
    for (int b = 0; b < 3; b++) {
      char *got = raw_post(other.port, paths[b], bodies[b]);
      CHECK_MSG(got && ref[b] && strcmp(got, ref[b]) == 0, "body %d with %s workers", b, counts[c]);
      free(got);
    }
    CHECK(xd_server_stop(&other) == 0);
  }
  for (int b = 0; b < 3; b++) free(ref[b]);
}

int main(void) {
  if (xd_server_start(&srv, NULL, NULL) != 0) {
    fprintf(stderr, "could not start the server\n");
    return 1;
  }
  up = 1;
  wait_ready(srv.port);
  RUN(gradient_every_method_every_model);
  RUN(gradient_options);
  RUN(shap_every_model_efficiency_and_determinism);
  RUN(invalid_requests);
  RUN(same_answer_whatever_the_worker_count_over_http);
  int rc = xd_server_stop(&srv);
  if (rc != 0) {
    fprintf(stderr, "server exit status %d\n", rc);
    xd_test_failed++;
  }
  return TEST_REPORT();
}
