/* test_lime_api.c — POST /explain/lime through the router in process (decode, the parts
 * run inline, encode): the response against the core result, and allocation failures
 * injected at every step of a request. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/bundle.h"
#include "core/alloc.h"
#include "core/lime.h"
#include "tests/test.h"

static xd_api_t *api;
static xd_registry_t *reg;

static int post(const char *body, json_t **out) {
  xd_api_request_t req = {"POST", "/explain/lime", NULL, body, strlen(body), NULL, NULL};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  xd_api_handle_sync(api, &req, &resp, NULL);
  int st = resp.status;
  if (out) *out = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
  xd_api_response_deinit(&resp);
  return st;
}

/* The HTTP answer carries exactly the core's numbers for the same options. */
TEST(response_matches_core) {
  json_t *j;
  CHECK(post("{\"model\":\"wine\",\"instances\":[[13.2,1.8,2.1,11,100,2.6,2.7,0.26,1.2,4.3,1.05,2.9,1000],"
             "[12.4,2.5,2.4,20,90,1.9,1.2,0.4,1.0,3.8,0.8,2.0,500]],\"seed\":11,\"num_samples\":900,"
             "\"num_features\":4,\"top_labels\":2,\"discretize\":\"entropy\"}",
             &j) == 200);
  xd_model_entry_t *e = xd_registry_get(reg, "wine");
  xd_lime_options_t o;
  xd_lime_options_default(&o);
  o.seed = 11, o.num_samples = 900, o.num_features = 4, o.top_labels = 2, o.discretize = XD_LIME_DISC_ENTROPY;
  xd_lime_plan_t p;
  xd_error_t err;
  CHECK(xd_lime_plan_init(&p, e->model, &o, &err) == XD_OK);
  double x[13] = {12.4, 2.5, 2.4, 20, 90, 1.9, 1.2, 0.4, 1.0, 3.8, 0.8, 2.0, 500};
  xd_lime_result_t r;
  CHECK(xd_lime_explain(&p, x, 1, &r, NULL, &err) == XD_OK); /* the second instance */
  json_t *labels = json_object_get(json_array_get(json_object_get(j, "explanations"), 1), "labels");
  CHECK(json_array_size(labels) == 2 && r.n_labels == 2);
  for (size_t l = 0; l < r.n_labels && l < json_array_size(labels); l++) {
    json_t *lab = json_array_get(labels, l), *ws = json_object_get(lab, "weights");
    CHECK((size_t)json_integer_value(json_object_get(lab, "label_index")) == r.labels[l].label);
    CHECK(json_real_value(json_object_get(lab, "intercept")) == r.labels[l].intercept);
    CHECK(json_real_value(json_object_get(lab, "local_pred")) == r.labels[l].local_pred);
    CHECK(json_array_size(ws) == r.labels[l].n_weights);
    for (size_t a = 0; a < json_array_size(ws) && a < r.labels[l].n_weights; a++) {
      json_t *w = json_array_get(ws, a);
      char cond[256];
      xd_lime_condition(&p, r.labels[l].feature[a], x, cond, sizeof cond);
      CHECK((size_t)json_integer_value(json_object_get(w, "feature_index")) == r.labels[l].feature[a]);
      CHECK(json_real_value(json_object_get(w, "weight")) == r.labels[l].weight[a]);
      CHECK(strcmp(json_string_value(json_object_get(w, "condition")), cond) == 0);
    }
  }
  xd_lime_result_deinit(&r);
  xd_lime_plan_deinit(&p);
  xd_model_entry_release(e);
  json_decref(j);
}

TEST(allocation_failures_through_the_api) {
  static const char *reqs[] = {
      "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2],[6.5,3.0,5.2,2.0]],\"num_samples\":200,\"seed\":1}",
      "{\"model\":\"credit\",\"instance\":[40,30000,0.5,3,2,1],\"num_samples\":200,\"seed\":2,"
      "\"discretize\":\"none\",\"repeats\":2,\"feature_selection\":\"lasso_path\",\"num_features\":3}",
      "{\"model\":\"wine\",\"instance\":[13.2,1.8,2.1,11,100,2.6,2.7,0.26,1.2,4.3,1.05,2.9,1000],"
      "\"num_samples\":200,\"seed\":3,\"discretize\":\"decile\",\"feature_selection\":\"forward_selection\","
      "\"num_features\":2,\"labels\":[\"class_2\",0]}",
  };
  for (size_t q = 0; q < sizeof reqs / sizeof *reqs; q++) {
    int injected_any = 0;
    for (long k = 1; k < 5000; k++) {
      long before = xd_alloc_failures();
      xd_alloc_fail_after(k);
      int st = post(reqs[q], NULL);
      xd_alloc_fail_after(0);
      int injected = xd_alloc_failures() > before;
      CHECK_MSG(st == 200 || (injected && st == 500), "request %zu, allocation %ld: status %d", q, k, st);
      injected_any |= injected;
      if (!injected) {
        if (getenv("VERBOSE")) fprintf(stderr, "  request %zu: %ld allocations failed one by one\n", q, k - 1);
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
  static const char *names[] = {"iris", "credit", "wine"};
  for (size_t i = 0; i < 3; i++) {
    char path[128];
    snprintf(path, sizeof path, "models/%s/model.json", names[i]);
    xd_model_t *m = NULL;
    xd_error_t err;
    int replaced = 0;
    if (xd_bundle_load_file(path, &m, NULL, &err) != XD_OK ||
        xd_registry_put(reg, names[i], m, "0", NULL, 0, &replaced) != XD_OK) {
      printf("0 passed, 1 failed\n");
      return 1;
    }
  }
  RUN(response_matches_core);
  RUN(allocation_failures_through_the_api);
  xd_api_free(api);
  xd_registry_free(reg);
  return TEST_REPORT();
}
