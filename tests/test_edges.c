/* test_edges.c — numeric edge cases through every endpoint: each answer is a 200 whose
 * numbers are all finite (no null where a number belongs: xd_json_real writes a
 * non-finite value as null) or a clear 4xx naming the field; never a 500, never NaN.
 *
 * Models at the edges, built from inline bundles:
 *   sat    binary softmax with weights of ±1000: probabilities exactly 0 and 1 (the logit
 *          link's log(0)), a background column that is constant (zero variance,
 *          duplicate quartile/decile edges, a PDP grid of one value);
 *   sig    one sigmoid unit (binary), saturated the same way;
 *   one    regression whose background is a single row;
 *   flat   regression whose background rows are all equal (every column constant);
 *   iris   the demo model, fed 1e300 / 1e-300 inputs.
 * Inputs: huge and tiny magnitudes, IG with baseline == input, LIME with 1 and 2 samples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/bundle.h"
#include "core/mat.h"
#include "tests/test.h"

static xd_api_t *api;
static xd_registry_t *reg;

static const char *const models_json[][2] = {
    {"sat",
     "{\"format\":\"explaind.model/v1\",\"task\":\"classification\",\"features\":[{\"name\":\"a\"},{\"name\":\"c\"},"
     "{\"name\":\"b\"}],\"classes\":[\"no\",\"yes\"],\"layers\":[{\"weights\":[[1000,0,-1000],[-1000,0,1000]],"
     "\"bias\":[0,0],\"activation\":\"softmax\"}],\"background\":{\"rows\":[[1,0.5,0],[0,0.5,1],[2,0.5,-1],[-1,0.5,3],"
     "[1,0.5,0],[0,0.5,1]],\"targets\":[\"no\",\"yes\",\"no\",\"yes\",\"no\",\"yes\"]}}"},
    {"sig",
     "{\"format\":\"explaind.model/v1\",\"task\":\"classification\",\"features\":[{\"name\":\"a\"},{\"name\":\"c\"}],"
     "\"classes\":[\"no\",\"yes\"],\"layers\":[{\"weights\":[[4,0],[-4,0]],\"bias\":[0,0],\"activation\":\"relu\"},"
     "{\"weights\":[[1000,-1000]],\"bias\":[0],\"activation\":\"sigmoid\"}],\"background\":{\"rows\":[[1,7],[-1,7],"
     "[3,7],[-2,7]],\"targets\":[1,0,1,0]}}"},
    {"one",
     "{\"format\":\"explaind.model/v1\",\"task\":\"regression\",\"features\":[{\"name\":\"a\"},{\"name\":\"b\"},"
     "{\"name\":\"k\",\"type\":\"categorical\",\"categories\":[\"x\",\"y\"]}],\"layers\":[{\"weights\":[[0.5,-1,0.1,2],"
     "[1,1,1,1]],\"bias\":[0,1],\"activation\":\"tanh\"},{\"weights\":[[1,-1]],\"bias\":[0.5],\"activation\":"
     "\"identity\"}],\"background\":{\"rows\":[[1,2,\"y\"]],\"targets\":[3]}}"},
    {"flat",
     "{\"format\":\"explaind.model/v1\",\"task\":\"regression\",\"features\":[{\"name\":\"a\"},{\"name\":\"b\"}],"
     "\"layers\":[{\"weights\":[[2,-3]],\"bias\":[1],\"activation\":\"identity\"}],\"background\":{\"rows\":[[1,2],"
     "[1,2],[1,2],[1,2],[1,2]],\"targets\":[5,5,5,5,5]}}"},
};

/* Keys whose value is null by design (not a number that went non-finite). */
static int null_allowed(const char *key) {
  static const char *const ok[] = {"baseline_score", "validation_metric", "validation_loss", "seed", NULL};
  for (size_t i = 0; ok[i]; i++)
    if (key && strcmp(key, ok[i]) == 0) return 1;
  return 0;
}

/* 1 when v holds a null outside null_allowed keys; path gets where. */
static int find_null(const json_t *v, const char *key, char *path, size_t cap) {
  if (json_is_null(v)) {
    if (null_allowed(key)) return 0;
    snprintf(path, cap, "%s", key ? key : "?");
    return 1;
  }
  if (json_is_real(v) && !isfinite(json_real_value(v))) {
    snprintf(path, cap, "%s", key ? key : "?");
    return 1;
  }
  if (json_is_object(v)) {
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) if (find_null(x, k, path, cap)) return 1;
  }
  if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (find_null(x, key, path, cap)) return 1;
  }
  return 0;
}

/* Runs one request; checks a finite 200 or a 4xx with a message. Returns the status. */
static int edge(const char *path, const char *body) {
  xd_api_request_t req = {"POST", path, NULL, body, strlen(body), NULL, NULL};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  xd_api_handle_sync(api, &req, &resp, NULL);
  int st = resp.status;
  json_t *j = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
  CHECK_MSG(j != NULL, "%s %s: the answer is not JSON: %.200s", path, body, resp.body);
  if (st == 200) {
    char where[128] = "";
    CHECK_MSG(!find_null(j, NULL, where, sizeof where), "%s %s: null/non-finite at \"%s\": %.600s", path, body, where,
              resp.body);
  } else {
    CHECK_MSG(st >= 400 && st < 500, "%s %s: status %d: %.300s", path, body, st, resp.body);
  }
  if (getenv("VERBOSE")) fprintf(stderr, "  %d %s %s%s%.200s\n", st, path, body, st == 200 ? "" : " -> ", st == 200 ? "" : resp.body);
  json_decref(j);
  xd_api_response_deinit(&resp);
  return st;
}

/* Every endpoint with instance x (a JSON row) on model m. */
static void all_endpoints(const char *m, const char *x, size_t n_features) {
  char b[1024];
#define E(path, ...)                           \
  do {                                         \
    snprintf(b, sizeof b, __VA_ARGS__);        \
    edge(path, b);                             \
  } while (0)
  E("/predict", "{\"model\":\"%s\",\"instances\":[%s]}", m, x);
  {
    char p[128];
    snprintf(p, sizeof p, "/v2/models/%s/infer", m);
    snprintf(b, sizeof b, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,%zu],\"datatype\":\"FP64\",\"data\":%s}]}",
             n_features, x);
    if (!strchr(x, '"')) edge(p, b);
  }
  static const char *const disc[] = {"quartile", "decile", "entropy", "none"};
  for (size_t i = 0; i < 4; i++)
    E("/explain/lime", "{\"model\":\"%s\",\"instance\":%s,\"num_samples\":300,\"seed\":1,\"discretize\":\"%s\"}", m, x,
      disc[i]);
  E("/explain/lime", "{\"model\":\"%s\",\"instance\":%s,\"num_samples\":1,\"seed\":1}", m, x);
  E("/explain/lime", "{\"model\":\"%s\",\"instance\":%s,\"num_samples\":2,\"seed\":1,\"discretize\":\"none\"}", m, x);
  E("/explain/lime", "{\"model\":\"%s\",\"instance\":%s,\"num_samples\":2,\"seed\":1,\"feature_selection\":\"lasso_path\",\"num_features\":1}", m, x);
  E("/explain/lime", "{\"model\":\"%s\",\"instance\":%s,\"num_samples\":50,\"seed\":1,\"sample_around_instance\":true,\"discretize\":\"none\"}", m, x);
  static const char *const grad[] = {"saliency", "input_x_gradient", "integrated_gradients", "smoothgrad"};
  for (size_t i = 0; i < 4; i++)
    E("/explain/gradient", "{\"model\":\"%s\",\"instance\":%s,\"method\":\"%s\",\"seed\":2,\"samples\":8}", m, x,
      grad[i]);
  E("/explain/gradient", "{\"model\":\"%s\",\"instance\":%s,\"baseline\":%s}", m, x, x); /* baseline == input */
  E("/explain/gradient", "{\"model\":\"%s\",\"instance\":%s,\"baseline\":\"mean\",\"output\":\"logit\"}", m, x);
  static const char *const link[] = {"identity", "logit"};
  static const char *const meth[] = {"kernel", "exact", "linear"};
  for (size_t l = 0; l < 2; l++)
    for (size_t k = 0; k < 3; k++)
      E("/explain/shap", "{\"model\":\"%s\",\"instance\":%s,\"method\":\"%s\",\"link\":\"%s\",\"seed\":3,\"nsamples\":64}",
        m, x, meth[k], link[l]);
  E("/explain/shap", "{\"model\":\"%s\",\"instance\":%s,\"background_size\":1,\"seed\":3}", m, x);
  E("/explain/shap", "{\"model\":\"%s\",\"instance\":%s,\"background\":[%s],\"seed\":3}", m, x, x); /* bg == x */
#undef E
}

/* Model-level endpoints (no instance). */
static void model_endpoints(const char *m, size_t n_features) {
  char b[512];
  static const char *const imp[] = {"permutation", "olden", "garson", "mean_abs_gradient", "mean_abs_shap"};
  for (size_t i = 0; i < 5; i++) {
    snprintf(b, sizeof b, "{\"model\":\"%s\",\"method\":\"%s\",\"seed\":4}", m, imp[i]);
    edge("/importance", b);
  }
  snprintf(b, sizeof b, "{\"model\":\"%s\",\"scoring\":\"neg_log_loss\",\"seed\":4}", m);
  edge("/importance", b);
  for (size_t f = 0; f < n_features; f++) {
    snprintf(b, sizeof b, "{\"model\":\"%s\",\"features\":[%zu],\"kind\":\"both\",\"grid_resolution\":5}", m, f);
    edge("/explain/pdp", b);
    snprintf(b, sizeof b, "{\"model\":\"%s\",\"features\":[%zu],\"percentiles\":[0.49,0.51]}", m, f);
    edge("/explain/pdp", b);
  }
}

TEST(saturated_softmax_and_constant_column) {
  static const char *const xs[] = {"[1,0.5,0]",     "[1e300,0.5,-1e300]", "[1e-300,0.5,-1e-300]",
                                   "[100,0.5,-100]", "[0,0,0]",             "[-1e300,1e300,1e300]"};
  for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) all_endpoints("sat", xs[i], 3);
  model_endpoints("sat", 3);
}

TEST(saturated_sigmoid) {
  static const char *const xs[] = {"[1,7]", "[50,7]", "[-50,7]", "[1e300,7]", "[1e-300,-1e300]"};
  for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) all_endpoints("sig", xs[i], 2);
  model_endpoints("sig", 2);
}

TEST(single_background_row) {
  static const char *const xs[] = {"[1,2,\"y\"]", "[1e300,-1e300,\"x\"]", "[1e-300,0,1]"};
  for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) all_endpoints("one", xs[i], 3);
  model_endpoints("one", 3);
}

TEST(constant_background) {
  static const char *const xs[] = {"[1,2]", "[3,-4]", "[1e300,1e300]", "[1e-300,1e-300]"};
  for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) all_endpoints("flat", xs[i], 2);
  model_endpoints("flat", 2);
}

TEST(iris_at_huge_and_tiny_magnitudes) {
  static const char *const xs[] = {"[1e300,1e300,1e300,1e300]", "[-1e300,1e300,-1e300,1e300]",
                                   "[1e-300,1e-300,1e-300,1e-300]", "[1.7e308,-1.7e308,0,0]"};
  for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) all_endpoints("iris", xs[i], 4);
}

int main(void) {
  xd_blas_init();
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  cfg.inline_predict_rows = 64;
  xd_registry_new(&reg);
  xd_api_new(&cfg, reg, &api);
  for (size_t i = 0; i < sizeof models_json / sizeof *models_json; i++) {
    xd_model_t *m = NULL;
    xd_error_t err;
    int replaced = 0;
    if (xd_bundle_decode(models_json[i][1], strlen(models_json[i][1]), NULL, &m, &err) != XD_OK ||
        xd_registry_put(reg, models_json[i][0], m, "0", NULL, 0, &replaced) != XD_OK) {
      fprintf(stderr, "model %s: %s: %s\n", models_json[i][0], err.field, err.text);
      printf("0 passed, 1 failed\n");
      return 1;
    }
  }
  xd_model_t *iris = NULL;
  xd_error_t err;
  int replaced = 0;
  if (xd_bundle_load_file("models/iris/model.json", &iris, NULL, &err) != XD_OK ||
      xd_registry_put(reg, "iris", iris, "0", NULL, 0, &replaced) != XD_OK) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  xd_api_set_ready(api, 1);
  RUN(saturated_softmax_and_constant_column);
  RUN(saturated_sigmoid);
  RUN(single_background_row);
  RUN(constant_background);
  RUN(iris_at_huge_and_tiny_magnitudes);
  xd_api_free(api);
  xd_registry_free(reg);
  return TEST_REPORT();
}
