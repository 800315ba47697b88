/* test_importance_api.c — /importance and /explain/pdp through the router in process
 * (decode, run the parts inline, encode) on hand-built models with closed forms, and
 * allocation failures injected at every step of a request. */
#include <string.h>

#include "api/api.h"
#include "core/alloc.h"
#include "tests/imp_fixtures.h"
#include "tests/test.h"

static xd_api_t *api;
static xd_registry_t *reg;

/* lin: f = w·x + c over 4 numeric features, 300 background rows N(mu, sd), targets
 * f(x) + noise. w[2] = 0. */
static const double lin_w[] = {2.0, -1.0, 0.0, 0.5};
static const double lin_c = 1.5;
static double lin_X[300 * 4], lin_y[300];

static int post(const char *path, const char *body, json_t **out) {
  xd_api_request_t req = {"POST", path, NULL, body, strlen(body), NULL, NULL};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  xd_api_handle_sync(api, &req, &resp, NULL);
  int st = resp.status;
  if (out) *out = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
  xd_api_response_deinit(&resp);
  return st;
}

/* The importance entry of feature index j. */
static json_t *entry_of(json_t *j, size_t f) {
  json_t *imp = json_object_get(j, "importances");
  for (size_t i = 0; i < json_array_size(imp); i++)
    if ((size_t)json_integer_value(json_object_get(json_array_get(imp, i), "feature_index")) == f)
      return json_array_get(imp, i);
  return NULL;
}

static double mean_of(json_t *j, size_t f) { return json_number_value(json_object_get(entry_of(j, f), "mean")); }

TEST(linear_closed_forms_through_the_api) {
  json_t *j;
  /* mean_abs_shap of a linear model: φ_j = w_j (x_j - mean_j), exactly (LinearExplainer) */
  CHECK(post("/importance", "{\"model\":\"lin\",\"method\":\"mean_abs_shap\"}", &j) == 200);
  double mu[4] = {0};
  for (size_t i = 0; i < 300; i++)
    for (size_t f = 0; f < 4; f++) mu[f] += lin_X[i * 4 + f] / 300;
  for (size_t f = 0; f < 4; f++) {
    double s = 0;
    for (size_t i = 0; i < 300; i++) s += fabs(lin_w[f] * (lin_X[i * 4 + f] - mu[f]));
    CHECK_CLOSE(mean_of(j, f), s / 300, 1e-9, 1e-12);
  }
  json_decref(j);
  /* mean_abs_gradient: |w| at every row, so std 0 */
  CHECK(post("/importance", "{\"model\":\"lin\",\"method\":\"mean_abs_gradient\"}", &j) == 200);
  for (size_t f = 0; f < 4; f++) {
    CHECK_NEAR(mean_of(j, f), fabs(lin_w[f]), 1e-12);
    CHECK_NEAR(json_number_value(json_object_get(entry_of(j, f), "std")), 0, 1e-12);
  }
  json_decref(j);
  /* olden: w itself, sorted by |w| */
  CHECK(post("/importance", "{\"model\":\"lin\",\"method\":\"olden\"}", &j) == 200);
  for (size_t f = 0; f < 4; f++) CHECK(mean_of(j, f) == lin_w[f]);
  CHECK(json_integer_value(json_object_get(json_array_get(json_object_get(j, "importances"), 0), "feature_index")) ==
        0);
  json_decref(j);
  /* permutation: the zero-weight feature is exactly 0 in every repeat */
  CHECK(post("/importance", "{\"model\":\"lin\",\"n_repeats\":4,\"scoring\":\"neg_mean_squared_error\"}", &j) == 200);
  json_t *v = json_object_get(entry_of(j, 2), "values");
  CHECK(json_array_size(v) == 4);
  for (size_t r = 0; r < 4; r++) CHECK(json_real_value(json_array_get(v, r)) == 0.0);
  CHECK(mean_of(j, 0) > mean_of(j, 3) && mean_of(j, 3) > 0);
  json_decref(j);
  /* PDP: slope w_j */
  CHECK(post("/explain/pdp", "{\"model\":\"lin\",\"features\":\"x1\",\"grid_resolution\":11}", &j) == 200);
  json_t *g = json_array_get(json_object_get(j, "grid_values"), 0), *a = json_array_get(json_object_get(j, "average"), 0);
  CHECK(json_array_size(g) == 11 && json_array_size(a) == 11);
  for (size_t q = 1; q < 11; q++) {
    double dx = json_number_value(json_array_get(g, q)) - json_number_value(json_array_get(g, q - 1));
    double dy = json_number_value(json_array_get(a, q)) - json_number_value(json_array_get(a, q - 1));
    CHECK_NEAR(dy / dx, lin_w[1], 1e-4);
  }
  json_decref(j);
}

/* Allocation failures anywhere in decode, run or encode answer 500 "internal" (or the
 * request still succeeds when the failure hit a path with a fallback) and leak nothing. */
TEST(allocation_failures_through_the_api) {
  const char *reqs[][2] = {
      {"/importance", "{\"model\":\"lin\",\"n_repeats\":2,\"max_samples\":0.5}"},
      {"/importance", "{\"model\":\"lin\",\"method\":\"garson\"}"},
      {"/importance", "{\"model\":\"lin\",\"method\":\"mean_abs_gradient\",\"data\":{\"instances\":[[1,2,3,4]]}}"},
      {"/importance", "{\"model\":\"lin\",\"method\":\"mean_abs_shap\",\"data\":{\"instances\":[[1,2,3,4]]}}"},
      {"/explain/pdp", "{\"model\":\"lin\",\"features\":[0,1],\"grid_resolution\":4,\"kind\":\"both\"}"},
  };
  for (size_t q = 0; q < sizeof reqs / sizeof *reqs; q++) {
    int injected_any = 0;
    for (long k = 1; k < 2000; k++) {
      long before = xd_alloc_failures();
      xd_alloc_fail_after(k);
      int st = post(reqs[q][0], reqs[q][1], NULL);
      xd_alloc_fail_after(0);
      int injected = xd_alloc_failures() > before;
      CHECK_MSG(st == 200 || (injected && st == 500), "%s %s, allocation %ld: status %d", reqs[q][0], reqs[q][1], k,
                st);
      injected_any |= injected;
      if (!injected) {
        if (getenv("VERBOSE")) fprintf(stderr, "  %s: %ld allocations failed one by one\n", reqs[q][1], k - 1);
        break;
      }
    }
    CHECK(injected_any);
  }
}

int main(void) {
  xd_registry_new(&reg);
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  xd_api_new(&cfg, reg, &api);
  xd_api_set_ready(api, 1);
  xd_rng_t r;
  xd_rng_seed(&r, 2024);
  const double mu[] = {1, -2, 0.5, 3}, sd[] = {1, 2, 0.5, 1.5};
  fx_normal(&r, lin_X, 300, 4, mu, sd);
  for (size_t i = 0; i < 300; i++) {
    lin_y[i] = lin_c + 0.2 * xd_rng_normal(&r);
    for (size_t f = 0; f < 4; f++) lin_y[i] += lin_w[f] * lin_X[i * 4 + f];
  }
  fx_layer_t L = {4, 1, lin_w, &lin_c, XD_ACT_IDENTITY};
  xd_model_t *m = fx_build(XD_TASK_REGRESSION, 4, NULL, 0, &L, 1, NULL, NULL, lin_X, lin_y, 300);
  int replaced = 0;
  if (!m || xd_registry_put(reg, "lin", m, "0", NULL, 0, &replaced) != XD_OK) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  RUN(linear_closed_forms_through_the_api);
  RUN(allocation_failures_through_the_api);
  xd_api_free(api);
  xd_registry_free(reg);
  return TEST_REPORT();
}
