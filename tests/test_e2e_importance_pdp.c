/* test_e2e_importance_pdp.c — POST /importance and POST /explain/pdp over HTTP against the
 * real server: every method on every demo model, the response shapes of API.md, same
 * seed same bytes, and invalid requests with their status, code and field. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/test.h"

static xd_server_t srv;
static const char *demo[] = {"breast_cancer", "credit", "iris", "wine", "diabetes"};

/* POSTs body; returns the status and, in *out, the parsed body (NULL if not JSON). */
static int post(int port, const char *path, const char *body, json_t **out, char **raw) {
  xd_http_resp_t r;
  *out = NULL;
  if (xd_http(port, "POST", path, "Content-Type: application/json\r\n", body, strlen(body), &r) != 0) return -1;
  *out = json_loadb(r.body, r.body_len, 0, NULL);
  if (raw) *raw = strdup(r.body);
  int st = r.status;
  if (st != 200 && (st / 100 != 4 || getenv("E2E_VERBOSE")))
    fprintf(stderr, "  POST %s: %d %.300s\n", path, st, r.body);
  xd_http_resp_free(&r);
  return st;
}

/* The golden instances of a demo model (tests/golden/predict_NAME.json), as JSON text. */
static char *golden_instances(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "tests/golden/predict_%s.json", name);
  json_t *g = json_load_file(path, 0, NULL);
  if (!g) return NULL;
  char *s = json_dumps(json_object_get(g, "instances"), JSON_COMPACT);
  json_decref(g);
  return s;
}

/* GET /models/NAME -> n_features, n_outputs of the answer's fields. */
static int model_shape(const char *name, size_t *d, size_t *k, int *regression) {
  char path[128];
  snprintf(path, sizeof path, "/models/%s", name);
  xd_http_resp_t r;
  if (xd_http(srv.port, "GET", path, NULL, NULL, 0, &r) != 0) return -1;
  json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
  xd_http_resp_free(&r);
  if (!j) return -1;
  *d = json_array_size(json_object_get(j, "features"));
  json_t *cl = json_object_get(j, "classes");
  *regression = !json_is_array(cl) || json_array_size(cl) == 0;
  *k = *regression ? 1 : json_array_size(cl);
  json_decref(j);
  return 0;
}

/* Checks one /importance answer: one entry per feature, each feature once, the API's
 * fields, sorted by decreasing mean (|mean| for olden). */
static void check_importances(const char *name, const char *method, json_t *j, size_t d, size_t n_values) {
  CHECK_MSG(strcmp(json_string_value(json_object_get(j, "model")), name) == 0, "%s %s model", name, method);
  CHECK(strcmp(json_string_value(json_object_get(j, "method")), method) == 0);
  CHECK(json_object_get(j, "baseline_score") != NULL);
  json_t *imp = json_object_get(j, "importances");
  CHECK_MSG(json_array_size(imp) == d, "%s %s: %zu importances", name, method, json_array_size(imp));
  int seen[64] = {0};
  double prev = INFINITY, sum = 0;
  for (size_t i = 0; i < json_array_size(imp); i++) {
    json_t *e = json_array_get(imp, i);
    CHECK(json_is_string(json_object_get(e, "feature")));
    json_int_t fi = json_integer_value(json_object_get(e, "feature_index"));
    CHECK(fi >= 0 && (size_t)fi < d && fi < 64);
    if (fi >= 0 && fi < 64) seen[fi]++;
    double mean = json_number_value(json_object_get(e, "mean"));
    CHECK(json_is_number(json_object_get(e, "mean")) && json_is_number(json_object_get(e, "std")));
    CHECK(json_number_value(json_object_get(e, "std")) >= 0);
    CHECK_MSG(json_array_size(json_object_get(e, "values")) == n_values, "%s %s values", name, method);
    double key = strcmp(method, "olden") == 0 ? fabs(mean) : mean;
    CHECK_MSG(key <= prev, "%s %s not sorted at %zu", name, method, i);
    prev = key;
    sum += mean;
    if (strcmp(method, "garson") == 0 || strstr(method, "mean_abs")) CHECK(mean >= 0);
  }
  for (size_t f = 0; f < d && f < 64; f++) CHECK(seen[f] == 1);
  if (strcmp(method, "garson") == 0) CHECK_NEAR(sum, 1.0, 1e-9);
}

TEST(importance_every_method_every_model) {
  const char *methods[] = {"permutation", "olden", "garson", "mean_abs_gradient", "mean_abs_shap"};
  for (size_t q = 0; q < 5; q++) {
    size_t d, k;
    int reg;
    CHECK(model_shape(demo[q], &d, &k, &reg) == 0);
    char *inst = golden_instances(demo[q]);
    CHECK(inst != NULL);
    for (size_t mth = 0; mth < 5; mth++) {
      char body[65536];
      /* SHAP over the golden rows keeps the test short; the others use the background */
      if (mth == 4)
        snprintf(body, sizeof body, "{\"model\":\"%s\",\"method\":\"%s\",\"seed\":1,\"data\":{\"instances\":%s}}",
                 demo[q], methods[mth], inst ? inst : "[]");
      else
        snprintf(body, sizeof body, "{\"model\":\"%s\",\"method\":\"%s\"}", demo[q], methods[mth]);
      json_t *j;
      int st = post(srv.port, "/importance", body, &j, NULL);
      CHECK_MSG(st == 200, "%s %s: status %d", demo[q], methods[mth], st);
      if (st == 200 && j) {
        check_importances(demo[q], methods[mth], j, d, mth == 0 ? 5 : 1);
        if (mth == 0) {
          CHECK(json_is_number(json_object_get(j, "baseline_score")));
          CHECK(json_integer_value(json_object_get(j, "seed")) == 0);
        }
      }
      json_decref(j);
    }
    free(inst);
  }
}

TEST(importance_same_seed_same_bytes) {
  const char *body = "{\"model\":\"breast_cancer\",\"n_repeats\":3,\"seed\":12345,\"scoring\":\"neg_log_loss\","
                     "\"max_samples\":0.5}";
  json_t *a, *b;
  char *ra = NULL, *rb = NULL;
  CHECK(post(srv.port, "/importance", body, &a, &ra) == 200);
  CHECK(post(srv.port, "/importance", body, &b, &rb) == 200);
  CHECK(ra && rb && strcmp(ra, rb) == 0);
  CHECK(json_integer_value(json_object_get(a, "max_samples")) == 71); /* int(0.5 * 143) */
  json_decref(a);
  json_decref(b);
  free(ra);
  free(rb);
}

TEST(importance_given_data_and_targets) {
  /* iris rows with targets by class name and by index */
  const char *body = "{\"model\":\"iris\",\"n_repeats\":2,\"data\":{\"instances\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3],"
                     "[5.9,3.0,4.2,1.5],[4.9,3.0,1.4,0.2]],\"targets\":[\"setosa\",2,\"versicolor\",0]}}";
  json_t *j;
  CHECK(post(srv.port, "/importance", body, &j, NULL) == 200);
  if (j) {
    CHECK(json_integer_value(json_object_get(j, "n_rows")) == 4);
    CHECK_NEAR(json_number_value(json_object_get(j, "baseline_score")), 1.0, 0);
    check_importances("iris", "permutation", j, 4, 2);
  }
  json_decref(j);
}

/* PDP on every model: one feature (kind both) and a pair (average). */
TEST(pdp_every_model_shapes) {
  for (size_t q = 0; q < 5; q++) {
    size_t d, k;
    int reg;
    CHECK(model_shape(demo[q], &d, &k, &reg) == 0);
    size_t n_out = reg ? 1 : (k == 2 ? 1 : k);
    for (size_t f = 0; f < d; f++) {
      char body[256];
      snprintf(body, sizeof body, "{\"model\":\"%s\",\"features\":%zu,\"grid_resolution\":7,\"kind\":\"both\"}",
               demo[q], f);
      json_t *j;
      int st = post(srv.port, "/explain/pdp", body, &j, NULL);
      CHECK_MSG(st == 200, "%s feature %zu: %d", demo[q], f, st);
      if (st != 200 || !j) {
        json_decref(j);
        continue;
      }
      json_t *grid = json_array_get(json_object_get(j, "grid_values"), 0);
      size_t G = json_array_size(grid), n = (size_t)json_integer_value(json_object_get(j, "n_rows"));
      /* numeric: at most grid_resolution points; categorical: every category, by name */
      CHECK(G >= 1 && (G <= 7 || json_is_string(json_array_get(grid, 0))));
      CHECK(json_array_size(json_object_get(j, "outputs")) == n_out);
      json_t *avg = json_object_get(j, "average"), *ind = json_object_get(j, "individual");
      CHECK(json_array_size(avg) == n_out && json_array_size(ind) == n_out);
      for (size_t o = 0; o < n_out; o++) {
        json_t *ao = json_array_get(avg, o), *io = json_array_get(ind, o);
        CHECK(json_array_size(ao) == G && json_array_size(io) == n);
        for (size_t g = 0; g < G; g++) {
          double s = 0;
          for (size_t i = 0; i < n; i++) s += json_number_value(json_array_get(json_array_get(io, i), g));
          CHECK_CLOSE(json_number_value(json_array_get(ao, g)), s / (double)n, 1e-12, 1e-12);
        }
      }
      json_decref(j);
    }
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"features\":[0,%zu],\"grid_resolution\":5}", demo[q], d - 1);
    json_t *j;
    CHECK(post(srv.port, "/explain/pdp", body, &j, NULL) == 200);
    if (j) {
      json_t *gv = json_object_get(j, "grid_values");
      size_t g0 = json_array_size(json_array_get(gv, 0)), g1 = json_array_size(json_array_get(gv, 1));
      json_t *a0 = json_array_get(json_object_get(j, "average"), 0);
      CHECK(json_array_size(a0) == g0 && json_array_size(json_array_get(a0, 0)) == g1);
      CHECK(json_object_get(j, "individual") == NULL);
    }
    json_decref(j);
  }
}

/* /healthz answers before the models are loaded: wait for /readyz (10 s). */
static int wait_ready(int port) {
  for (int i = 0; i < 1000; i++) {
    xd_http_resp_t r;
    if (xd_http(port, "GET", "/readyz", NULL, NULL, 0, &r) == 0) {
      int st = r.status;
      xd_http_resp_free(&r);
      if (st == 200) return 0;
    }
    xd_sleep_ms(10);
  }
  return -1;
}

typedef struct {
  const char *path, *body;
  int status;
  const char *code, *field;
} bad_t;

static const bad_t bad[] = {
    {"/importance", "{\"model\":\"iris\",\"foo\":1}", 400, "invalid_argument", "foo"},
    {"/importance", "{\"model\":\"nope\"}", 404, "not_found", "model"},
    {"/importance", "{\"method\":\"olden\"}", 400, "invalid_argument", "model"},
    {"/importance", "{\"model\":\"iris\",\"method\":\"lime\"}", 400, "invalid_argument", "method"},
    {"/importance", "{\"model\":\"iris\",\"scoring\":\"r2\"}", 400, "invalid_argument", "scoring"},
    {"/importance", "{\"model\":\"diabetes\",\"scoring\":\"accuracy\"}", 400, "invalid_argument", "scoring"},
    {"/importance", "{\"model\":\"iris\",\"scoring\":\"f1\"}", 400, "invalid_argument", "scoring"},
    {"/importance", "{\"model\":\"iris\",\"n_repeats\":0}", 400, "invalid_argument", "n_repeats"},
    {"/importance", "{\"model\":\"iris\",\"n_repeats\":100000}", 400, "invalid_argument", "n_repeats"},
    {"/importance", "{\"model\":\"iris\",\"n_repeats\":2.5}", 400, "invalid_argument", "n_repeats"},
    {"/importance", "{\"model\":\"iris\",\"max_samples\":0.0}", 400, "invalid_argument", "max_samples"},
    {"/importance", "{\"model\":\"iris\",\"max_samples\":1.5}", 400, "invalid_argument", "max_samples"},
    {"/importance", "{\"model\":\"iris\",\"max_samples\":39}", 400, "invalid_argument", "max_samples"},
    {"/importance", "{\"model\":\"iris\",\"max_samples\":0.01}", 400, "invalid_argument", "max_samples"},
    {"/importance", "{\"model\":\"iris\",\"max_samples\":\"all\"}", 400, "invalid_argument", "max_samples"},
    {"/importance", "{\"model\":\"iris\",\"seed\":-1}", 400, "invalid_argument", "seed"},
    {"/importance", "{\"model\":\"iris\",\"data\":[1]}", 400, "invalid_argument", "data"},
    {"/importance", "{\"model\":\"iris\",\"data\":{\"rows\":[]}}", 400, "invalid_argument", "data.rows"},
    {"/importance", "{\"model\":\"iris\",\"data\":{\"targets\":[0]}}", 400, "invalid_argument", "data.instances"},
    {"/importance", "{\"model\":\"iris\",\"data\":{\"instances\":[[1,2,3,4]]}}", 400, "invalid_argument",
     "data.targets"},
    {"/importance", "{\"model\":\"iris\",\"data\":{\"instances\":[[1,2,3,4]],\"targets\":[0,1]}}", 400,
     "invalid_argument", "data.targets"},
    {"/importance", "{\"model\":\"iris\",\"data\":{\"instances\":[[1,2,3,4]],\"targets\":[\"tulip\"]}}", 400,
     "invalid_argument", "data.targets[0]"},
    {"/importance", "{\"model\":\"iris\",\"data\":{\"instances\":[[1,2,3,4]],\"targets\":[3]}}", 400,
     "invalid_argument", "data.targets[0]"},
    {"/importance", "{\"model\":\"diabetes\",\"data\":{\"instances\":[[1,2,3,4,5,6,7,8,9,10]],\"targets\":[\"x\"]}}",
     400, "invalid_argument", "data.targets[0]"},
    {"/importance", "{\"model\":\"iris\",\"data\":{\"instances\":[[1,2,3]],\"targets\":[0]}}", 400,
     "invalid_argument", "data.instances[0]"},
    {"/importance", "{\"model\":\"iris\",\"data\":{\"instances\":[],\"targets\":[]}}", 400, "invalid_argument",
     "data.instances"},
    {"/importance", "{\"model\":\"iris\",\"method\":\"olden\",\"target\":\"predicted\"}", 400, "invalid_argument",
     "target"},
    {"/importance", "{\"model\":\"iris\",\"method\":\"garson\",\"target\":3}", 400, "invalid_argument", "target"},
    {"/importance", "{\"model\":\"iris\",\"method\":\"mean_abs_gradient\",\"target\":\"tulip\"}", 400,
     "invalid_argument", "target"},
    {"/importance", "{\"model\":\"iris\",\"timeout_ms\":-5}", 400, "invalid_argument", "timeout_ms"},
    {"/explain/pdp", "{\"model\":\"iris\"}", 400, "invalid_argument", "features"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":\"petals\"}", 400, "invalid_argument", "features"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":4}", 400, "invalid_argument", "features"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":[0,0]}", 400, "invalid_argument", "features[1]"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":[0,1,2]}", 400, "invalid_argument", "features"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":[]}", 400, "invalid_argument", "features"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":[0,true]}", 400, "invalid_argument", "features[1]"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":0,\"grid_resolution\":1}", 400, "invalid_argument",
     "grid_resolution"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":0,\"grid_resolution\":100000}", 400, "invalid_argument",
     "grid_resolution"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":0,\"percentiles\":[0.9,0.1]}", 400, "invalid_argument",
     "percentiles"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":0,\"percentiles\":[0.1]}", 400, "invalid_argument",
     "percentiles"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":0,\"percentiles\":[-0.1,0.5]}", 400, "invalid_argument",
     "percentiles[0]"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":0,\"percentiles\":[0.1,\"x\"]}", 400, "invalid_argument",
     "percentiles[1]"},
    {"/explain/pdp", "{\"model\":\"breast_cancer\",\"features\":0,\"percentiles\":[0.5,0.500001]}", 400,
     "invalid_argument", "percentiles"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":0,\"kind\":\"mean\"}", 400, "invalid_argument", "kind"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":0,\"method\":\"brute\"}", 400, "invalid_argument", "method"},
    {"/explain/pdp", "{\"model\":\"iris\",\"features\":0,\"data\":{\"instances\":[[1,2]]}}", 400,
     "invalid_argument", "data.instances[0]"},
    {"/explain/pdp", "{\"model\":\"nope\",\"features\":0}", 404, "not_found", "model"},
};

TEST(invalid_requests) {
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *j;
    int st = post(srv.port, bad[i].path, bad[i].body, &j, NULL);
    json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *field = json_string_value(json_object_get(e, "field"));
    CHECK_MSG(st == bad[i].status && code && strcmp(code, bad[i].code) == 0 && field &&
                  strcmp(field, bad[i].field) == 0,
              "%s %s: got %d %s field %s (%s)", bad[i].path, bad[i].body, st, code ? code : "-",
              field ? field : "-", json_string_value(json_object_get(e, "message")));
    json_decref(j);
  }
}

/* Work beyond --max-work-rows is 413 payload_too_large before anything runs. */
TEST(work_limit_is_413) {
  xd_server_t small;
  const char *args[] = {"--max-work-rows", "2000", NULL};
  CHECK(xd_server_start(&small, args, NULL) == 0 && wait_ready(small.port) == 0);
  json_t *j;
  int st = post(small.port, "/importance", "{\"model\":\"breast_cancer\"}", &j, NULL);
  CHECK(st == 413);
  CHECK(strcmp(json_string_value(json_object_get(json_object_get(j, "error"), "field")), "n_repeats") == 0);
  json_decref(j);
  st = post(small.port, "/explain/pdp", "{\"model\":\"breast_cancer\",\"features\":0}", &j, NULL);
  CHECK(st == 413);
  json_decref(j);
  /* connection weights evaluate no rows */
  st = post(small.port, "/importance", "{\"model\":\"breast_cancer\",\"method\":\"olden\"}", &j, NULL);
  CHECK(st == 200);
  json_decref(j);
  CHECK(xd_server_stop(&small) == 0);
}

int main(void) {
  if (xd_server_start(&srv, NULL, NULL) != 0 || wait_ready(srv.port) != 0) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  RUN(importance_every_method_every_model);
  RUN(importance_same_seed_same_bytes);
  RUN(importance_given_data_and_targets);
  RUN(pdp_every_model_shapes);
  RUN(invalid_requests);
  RUN(work_limit_is_413);
  if (xd_server_stop(&srv) != 0) {
    fprintf(stderr, "FAIL server exited with a non-zero status\n");
    xd_test_failed++;
  }
  return TEST_REPORT();
}
