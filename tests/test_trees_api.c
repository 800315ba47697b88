/* test_trees_api.c — TreeSHAP and the tree importances through the router in process
 * (decode, parts run inline, encode) on golden fixtures (tests/golden/trees/) given a
 * background: the answers equal core/treeshap's, efficiency holds, interventional TreeSHAP
 * equals exact Shapley values (method "exact", Kernel SHAP's value function) with the same
 * background, interaction rows sum to the SHAP values, multiclass targets resolve to the
 * predicted class, the split importances equal core's; allocation failures injected at
 * every step of a request answer 200 or 500 and leak nothing (make asan). */
#include <string.h>

#include "api/api.h"
#include "api/bundle.h"
#include "core/alloc.h"
#include "core/trees.h"
#include "tests/test.h"

static xd_api_t *api;
static xd_registry_t *reg;
static json_t *fx_reg, *fx_multi; /* fixtures (reference files) */

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

/* Registers the fixture's bundle as name, with its rows X as background; returns the
 * fixture (owned by the caller) or NULL. */
static json_t *add_model(const char *file, const char *name) {
  char path[256];
  snprintf(path, sizeof path, "tests/golden/trees/%s", file);
  json_t *fx = json_load_file(path, 0, NULL);
  if (!fx) return NULL;
  json_t *bundle = json_deep_copy(json_object_get(fx, "bundle"));
  json_object_set_new(bundle, "background", json_pack("{s:O}", "rows", json_object_get(fx, "X")));
  char *s = json_dumps(bundle, JSON_COMPACT);
  json_decref(bundle);
  xd_model_t *m = NULL;
  xd_error_t err;
  int replaced;
  int ok = s && xd_bundle_decode(s, strlen(s), NULL, &m, &err) == XD_OK &&
           xd_registry_put(reg, name, m, "0", NULL, 0, &replaced) == XD_OK;
  free(s);
  if (!ok) {
    fprintf(stderr, "cannot load %s: %s %s\n", file, err.field, err.text);
    json_decref(fx);
    return NULL;
  }
  return fx;
}

static const xd_model_t *model(const char *name) {
  xd_model_entry_t *e = xd_registry_get(reg, name);
  const xd_model_t *m = e ? e->model : NULL;
  xd_model_entry_release(e); /* the registry keeps its own reference */
  return m;
}

/* Rows i0..i1 of the fixture's X as a JSON array text (null for missing). */
static char *rows_text(json_t *fx, size_t i0, size_t i1) {
  json_t *a = json_array();
  for (size_t i = i0; i < i1; i++) json_array_append(a, json_array_get(json_object_get(fx, "X"), i));
  char *s = json_dumps(a, JSON_COMPACT);
  json_decref(a);
  return s;
}

static double *rows_of(const json_t *X, size_t d, size_t i0, size_t n) {
  double *out = malloc(n * d * sizeof *out);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < d; j++) {
      json_t *v = json_array_get(json_array_get(X, i0 + i), j);
      out[i * d + j] = json_is_null(v) ? NAN : json_number_value(v);
    }
  return out;
}

static double at2(json_t *o, const char *key, size_t i, size_t j) {
  return json_number_value(json_array_get(json_array_get(json_object_get(o, key), i), j));
}

TEST(default_is_path_dependent_treeshap) {
  char *rows = rows_text(fx_reg, 0, 5), body[8192];
  snprintf(body, sizeof body, "{\"model\":\"reg\",\"instances\":%s}", rows);
  json_t *o = NULL;
  CHECK(post("/explain/shap", body, &o) == 200 && o);
  if (!o) goto out;
  CHECK(strcmp(json_string_value(json_object_get(o, "method")), "tree") == 0);
  const xd_trees_t *t = xd_model_trees(model("reg"));
  size_t d = 4;
  double *X = rows_of(json_object_get(fx_reg, "X"), d, 0, 5), phi[4], e;
  double *scratch = malloc(xd_treeshap_scratch(t) * sizeof *scratch);
  for (size_t i = 0; i < 5; i++) {
    xd_treeshap_path(t, X + i * d, d, 0, phi, &e, scratch);
    for (size_t j = 0; j < d; j++) CHECK_NEAR(at2(o, "shap_values", i, j), phi[j], 0);
    CHECK_NEAR(json_number_value(json_array_get(json_object_get(o, "efficiency_gap"), i)), 0, 1e-12);
    /* and XGBoost's pred_contribs */
    json_t *c = json_array_get(json_array_get(json_object_get(fx_reg, "contribs"), i), 0);
    for (size_t j = 0; j < d; j++) CHECK_NEAR(phi[j], json_number_value(json_array_get(c, j)), 1e-4);
  }
  free(X);
  free(scratch);
out:
  json_decref(o);
  free(rows);
}

TEST(interventional_equals_exact_shapley) {
  /* a regression margin is the model output: interventional TreeSHAP and exact Shapley
   * values of v(S) = mean_b f(x_S, b_S̄) (method "exact") must agree to rounding */
  char *rows = rows_text(fx_reg, 0, 4), *bg = rows_text(fx_reg, 4, 10), body[16384];
  json_t *a = NULL, *b = NULL;
  snprintf(body, sizeof body,
           "{\"model\":\"reg\",\"instances\":%s,\"feature_perturbation\":\"interventional\",\"background\":%s}", rows,
           bg);
  CHECK(post("/explain/shap", body, &a) == 200 && a);
  snprintf(body, sizeof body, "{\"model\":\"reg\",\"instances\":%s,\"method\":\"exact\",\"background\":%s}", rows, bg);
  CHECK(post("/explain/shap", body, &b) == 200 && b);
  if (a && b) {
    CHECK(strcmp(json_string_value(json_object_get(b, "method")), "exact") == 0);
    for (size_t i = 0; i < 4; i++) {
      CHECK_NEAR(json_number_value(json_array_get(json_object_get(a, "expected_value"), i)),
                 json_number_value(json_array_get(json_object_get(b, "expected_value"), i)), 1e-9);
      for (size_t j = 0; j < 4; j++) CHECK_NEAR(at2(a, "shap_values", i, j), at2(b, "shap_values", i, j), 1e-9);
    }
  }
  json_decref(a);
  json_decref(b);
  free(rows);
  free(bg);
}

TEST(multiclass_targets_and_interactions) {
  char *rows = rows_text(fx_multi, 0, 6), body[8192];
  json_t *o = NULL, *p = NULL;
  snprintf(body, sizeof body, "{\"model\":\"multi\",\"instances\":%s,\"interactions\":true}", rows);
  CHECK(post("/explain/shap", body, &o) == 200 && o);
  snprintf(body, sizeof body, "{\"model\":\"multi\",\"instances\":%s}", rows);
  CHECK(post("/predict", body, &p) == 200 && p);
  if (o && p) {
    json_t *inter = json_object_get(o, "shap_interaction_values");
    CHECK(json_array_size(inter) == 6);
    for (size_t i = 0; i < 6; i++) {
      size_t t = (size_t)json_integer_value(json_array_get(json_object_get(o, "targets"), i));
      CHECK(t == (size_t)json_integer_value(json_array_get(json_object_get(p, "label_indices"), i)));
      /* XGBoost's pred_interactions of that class, and rows summing to the values */
      json_t *ref = json_array_get(json_array_get(json_object_get(fx_multi, "interactions"), i), t);
      for (size_t a = 0; a < 4; a++) {
        double s = 0;
        for (size_t b = 0; b < 4; b++) {
          double v = json_number_value(json_array_get(json_array_get(json_array_get(inter, i), a), b));
          s += v;
          CHECK_NEAR(v, json_number_value(json_array_get(json_array_get(ref, a), b)), 1e-4);
        }
        CHECK_NEAR(s, at2(o, "shap_values", i, a), 1e-12);
      }
    }
  }
  json_decref(o);
  json_decref(p);
  snprintf(body, sizeof body, "{\"model\":\"multi\",\"instances\":%s,\"target\":\"c2\"}", rows);
  CHECK(post("/explain/shap", body, &o) == 200 && o);
  if (o) CHECK(json_integer_value(json_array_get(json_object_get(o, "targets"), 0)) == 2);
  json_decref(o);
  free(rows);
}

TEST(split_importances_equal_get_score) {
  static const char *const types[] = {"weight", "gain", "total_gain", "cover", "total_cover"};
  for (int ty = 0; ty < 5; ty++) {
    char body[128];
    snprintf(body, sizeof body, "{\"model\":\"reg\",\"method\":\"%s\"}", types[ty]);
    json_t *o = NULL;
    CHECK(post("/importance", body, &o) == 200 && o);
    if (!o) continue;
    json_t *ref = json_object_get(json_object_get(fx_reg, "scores"), types[ty]);
    json_t *imp = json_object_get(o, "importances");
    for (size_t k = 0; k < json_array_size(imp); k++) {
      json_t *e = json_array_get(imp, k);
      size_t j = (size_t)json_integer_value(json_object_get(e, "feature_index"));
      double want = json_number_value(json_array_get(ref, j));
      CHECK_NEAR(json_number_value(json_object_get(e, "mean")), want, 1e-5 * want + 1e-6);
    }
    json_decref(o);
  }
  /* mean_abs_shap: the mean over the background rows of |TreeSHAP| */
  json_t *o = NULL;
  CHECK(post("/importance", "{\"model\":\"reg\",\"method\":\"mean_abs_shap\"}", &o) == 200 && o);
  if (o) {
    const xd_trees_t *t = xd_model_trees(model("reg"));
    size_t n = json_array_size(json_object_get(fx_reg, "X"));
    double *X = rows_of(json_object_get(fx_reg, "X"), 4, 0, n), phi[4], e, mean[4] = {0};
    double *scratch = malloc(xd_treeshap_scratch(t) * sizeof *scratch);
    for (size_t i = 0; i < n; i++) {
      xd_treeshap_path(t, X + i * 4, 4, 0, phi, &e, scratch);
      for (size_t j = 0; j < 4; j++) mean[j] += fabs(phi[j]) / (double)n;
    }
    json_t *imp = json_object_get(o, "importances");
    for (size_t k = 0; k < json_array_size(imp); k++) {
      json_t *en = json_array_get(imp, k);
      size_t j = (size_t)json_integer_value(json_object_get(en, "feature_index"));
      CHECK_NEAR(json_number_value(json_object_get(en, "mean")), mean[j], 1e-12);
    }
    free(X);
    free(scratch);
  }
  json_decref(o);
}

/* LIME, Kernel SHAP, permutation importance and PDP go through the model interface, also
 * with missing values in the background and the instance; gradients are a 400. */
TEST(model_agnostic_methods_with_missing_values) {
  static const char *const ok[][2] = {
      {"/explain/lime", "{\"model\":\"nan\",\"instance\":[0.1,null,1,2],\"seed\":1,\"num_samples\":300}"},
      {"/explain/shap", "{\"model\":\"nan\",\"instance\":[0.1,null,1,2],\"method\":\"kernel\",\"seed\":1}"},
      {"/importance", "{\"model\":\"nan\",\"data\":{\"instances\":[[0.1,null,1,2],[1,2,null,0]],\"targets\":[0,1]}}"},
      {"/explain/pdp", "{\"model\":\"nan\",\"features\":[\"f1\"],\"grid_resolution\":5}"},
      {"/explain/shap",
       "{\"model\":\"nan\",\"instance\":[0.1,null,1,2],\"feature_perturbation\":\"interventional\","
       "\"output\":\"probability\"}"},
  };
  for (size_t q = 0; q < sizeof ok / sizeof *ok; q++) {
    json_t *o = NULL;
    int st = post(ok[q][0], ok[q][1], &o);
    CHECK_MSG(st == 200, "%s %s: %d", ok[q][0], ok[q][1], st);
    json_t *gap = json_object_get(o, "efficiency_gap");
    if (gap) CHECK_NEAR(json_number_value(json_array_get(gap, 0)), 0, 1e-12);
    json_decref(o);
  }
  json_t *o = NULL;
  CHECK(post("/explain/gradient", "{\"model\":\"nan\",\"instance\":[0.1,null,1,2]}", &o) == 400);
  if (o) CHECK(strcmp(json_string_value(json_object_get(json_object_get(o, "error"), "field")), "model") == 0);
  json_decref(o);
}

TEST(allocation_failures_through_the_api) {
  const char *reqs[][2] = {
      {"/explain/shap", "{\"model\":\"multi\",\"instances\":[[0.1,null,2,3],[1,2,3,4]],\"interactions\":true}"},
      {"/explain/shap", "{\"model\":\"reg\",\"instance\":[0.1,null,2,3],\"feature_perturbation\":\"interventional\"}"},
      {"/importance", "{\"model\":\"multi\",\"method\":\"mean_abs_shap\"}"},
      {"/importance", "{\"model\":\"reg\",\"method\":\"gain\"}"},
      {"/predict", "{\"model\":\"multi\",\"instances\":[[0.1,null,2,3]]}"},
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
      if (!injected) break;
    }
    CHECK(injected_any);
  }
}

TEST(bundle_allocation_failures) {
  /* every allocation of loading a tree bundle may fail: an error, never a crash or leak */
  char *s = json_dumps(json_object_get(fx_multi, "bundle"), JSON_COMPACT);
  for (long k = 1; k < 100000; k++) {
    long before = xd_alloc_failures();
    xd_model_t *m = NULL;
    xd_error_t err;
    xd_alloc_fail_after(k);
    int rc = xd_bundle_decode(s, strlen(s), NULL, &m, &err);
    xd_alloc_fail_after(0);
    int injected = xd_alloc_failures() > before;
    CHECK_MSG(rc == XD_OK || injected, "allocation %ld: rc %d without an injected failure", k, rc);
    xd_model_free(m);
    if (!injected) break;
  }
  free(s);
}

int main(void) {
  xd_registry_new(&reg);
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  xd_api_new(&cfg, reg, &api);
  xd_api_set_ready(api, 1);
  fx_reg = add_model("xgb_reg_squarederror.json", "reg");
  fx_multi = add_model("xgb_multi_softprob.json", "multi");
  json_t *fx_nan = add_model("xgb_nan_heavy.json", "nan"); /* its rows hold nulls */
  if (!fx_reg || !fx_multi || !fx_nan) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  RUN(default_is_path_dependent_treeshap);
  RUN(interventional_equals_exact_shapley);
  RUN(multiclass_targets_and_interactions);
  RUN(split_importances_equal_get_score);
  RUN(model_agnostic_methods_with_missing_values);
  RUN(allocation_failures_through_the_api);
  RUN(bundle_allocation_failures);
  json_decref(fx_nan);
  json_decref(fx_reg);
  json_decref(fx_multi);
  xd_api_free(api);
  xd_registry_free(reg);
  return TEST_REPORT();
}
