/* test_answers.c — answers and errors that help: the unknown-model suggestion, readiness
 * without models, and the rule that every error of the request suite says what would be
 * valid (checked here case by case through the router, beside test_api's own run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/bundle.h"
#include "core/mat.h"
#include "tests/cases.h"
#include "tests/test.h"

static void quiet(void *ctx, const char *msg) { (void)ctx, (void)msg; }

typedef struct answer {
  int status;
  json_t *body;
} answer_t;

static answer_t call(xd_api_t *a, const char *method, const char *path, const char *body) {
  xd_api_request_t req = {method, path, NULL, body, body ? strlen(body) : 0, NULL, NULL};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  xd_api_handle_sync(a, &req, &resp, NULL);
  answer_t r = {resp.status, json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL)};
  xd_api_response_deinit(&resp);
  return r;
}

static const char *message(const answer_t *r) {
  return json_string_value(json_object_get(json_object_get(r->body, "error"), "message"));
}

static xd_api_t *api;
static xd_registry_t *reg;

TEST(unknown_model_suggests_the_nearest_and_lists_loaded) {
  answer_t r = call(api, "POST", "/predict", "{\"model\":\"irsi\",\"instances\":[[1,2,3,4]]}");
  CHECK(r.status == 404);
  const char *m = message(&r);
  CHECK_MSG(m && strstr(m, "did you mean 'iris'?") && strstr(m, "loaded: ") && strstr(m, "breast_cancer"), "%s",
            m ? m : "(none)");
  json_decref(r.body);
  /* nothing near: no suggestion, still the list */
  r = call(api, "POST", "/predict", "{\"model\":\"zzzzzzzz\",\"instances\":[[1,2,3,4]]}");
  m = message(&r);
  CHECK_MSG(m && !strstr(m, "did you mean") && strstr(m, "one of the loaded models"), "%s", m ? m : "(none)");
  json_decref(r.body);
  /* GET /models/{name} answers the same */
  r = call(api, "GET", "/models/iri", NULL);
  m = message(&r);
  CHECK(r.status == 404 && m && strstr(m, "did you mean 'iris'?"));
  json_decref(r.body);
}

TEST(unknown_model_list_is_bounded) {
  xd_registry_t *r2;
  xd_api_t *a2;
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  xd_registry_new(&r2);
  xd_api_new(&cfg, r2, &a2);
  xd_model_entry_t *iris = xd_registry_get(reg, "iris");
  CHECK(iris != NULL);
  if (!iris) return;
  /* twenty names: the message lists eight and counts the rest */
  char path[64];
  for (int i = 0; i < 20; i++) {
    snprintf(path, sizeof path, "m%02d", i);
    xd_model_t *m = NULL;
    CHECK(xd_bundle_load_file(iris->source, &m, NULL, NULL) == XD_OK);
    if (m) xd_registry_put(r2, path, m, "", NULL, 0, NULL);
  }
  xd_model_entry_release(iris);
  xd_api_set_ready(a2, 1);
  answer_t r = call(a2, "POST", "/predict", "{\"model\":\"m2\",\"instances\":[[1,2,3,4]]}");
  const char *m = message(&r);
  CHECK_MSG(m && strstr(m, "m07") && !strstr(m, "m08") && strstr(m, "and 12 more"), "%s", m ? m : "(none)");
  json_decref(r.body);
  xd_api_free(a2);
  xd_registry_free(r2);
}

TEST(readyz_not_ready_without_models_unless_allowed) {
  for (int allow = 0; allow < 2; allow++) {
    xd_registry_t *r2;
    xd_api_t *a2;
    xd_api_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    xd_limits_default(&cfg.limits);
    cfg.allow_empty = allow;
    xd_registry_new(&r2);
    xd_api_new(&cfg, r2, &a2);
    xd_api_set_ready(a2, 1);
    answer_t r = call(a2, "GET", "/readyz", NULL);
    if (allow) {
      CHECK(r.status == 200);
    } else {
      const char *m = message(&r);
      CHECK(r.status == 503);
      CHECK_MSG(m && strstr(m, "no model is loaded") && strstr(m, "--allow-empty"), "%s", m ? m : "(none)");
    }
    json_decref(r.body);
    /* the explaind_ready gauge agrees with /readyz */
    xd_api_request_t mq = {"GET", "/metrics", NULL, NULL, 0, NULL, NULL};
    xd_api_response_t mr;
    memset(&mr, 0, sizeof mr);
    xd_api_handle_sync(a2, &mq, &mr, NULL);
    CHECK(mr.status == 200 && mr.body && strstr(mr.body, allow ? "\nexplaind_ready 1\n" : "\nexplaind_ready 0\n"));
    xd_api_response_deinit(&mr);
    /* an unknown model on an empty server says there is none */
    r = call(a2, "POST", "/predict", "{\"model\":\"iris\",\"instances\":[[1,2,3,4]]}");
    CHECK(r.status == 404 && message(&r) && strstr(message(&r), "no model is loaded"));
    json_decref(r.body);
    xd_api_free(a2);
    xd_registry_free(r2);
  }
}

TEST(wrong_typed_value_names_feature_and_value) {
  answer_t r = call(api, "POST", "/predict", "{\"model\":\"iris\",\"instances\":[[5.1,3.5,\"abc\",0.2]]}");
  const char *m = message(&r);
  const char *f = json_string_value(json_object_get(json_object_get(r.body, "error"), "field"));
  CHECK(r.status == 400 && f && strcmp(f, "instances[0][2]") == 0);
  CHECK_MSG(m && strstr(m, "feature '") && strstr(m, "expected a finite number, got \"abc\""), "%s", m ? m : "(none)");
  json_decref(r.body);
  /* a long value is clipped on a character boundary: the message stays valid UTF-8 and whole */
  r = call(api, "POST", "/predict",
           "{\"model\":\"iris\",\"instances\":[[5.1,3.5,\"a\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
           "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\",0.2]]}");
  m = message(&r);
  CHECK_MSG(r.status == 400 && m && strstr(m, "got \"a\xc3\xa9") && strstr(m, "\".."), "%s", m ? m : "(none)");
  json_decref(r.body);
  r = call(api, "POST", "/explain/lime", "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"a\u00e9\u00e9\u00e9\u00e9\u00e9"
           "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
           "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9x\":1}");
  m = message(&r);
  CHECK_MSG(r.status == 400 && m && strstr(m, "unknown field 'a\xc3\xa9") && strstr(m, "must be one of"), "%s",
            m ? m : "(none)");
  json_decref(r.body);
}

static int has_warning(const json_t *body, const char *text) {
  json_t *w = json_object_get(body, "warnings");
  for (size_t i = 0; i < json_array_size(w); i++)
    if (strstr(json_string_value(json_array_get(w, i)) ? json_string_value(json_array_get(w, i)) : "", text)) return 1;
  return 0;
}

TEST(class_names_beside_target_indices) {
  answer_t r = call(api, "POST", "/explain/shap",
                    "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]],\"target\":\"virginica\"}");
  CHECK(r.status == 200);
  json_t *t = json_object_get(r.body, "targets"), *tn = json_object_get(r.body, "target_names");
  CHECK(json_array_size(t) == 2 && json_integer_value(json_array_get(t, 0)) == 2);
  CHECK_MSG(json_array_size(tn) == 2 && !strcmp(json_string_value(json_array_get(tn, 1)) ?: "", "virginica"), "%s",
            tn ? "names" : "no target_names");
  json_decref(r.body);
  r = call(api, "POST", "/explain/gradient", "{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2]}");
  tn = json_object_get(r.body, "target_names");
  CHECK(r.status == 200 && json_array_size(tn) == 1 && !strcmp(json_string_value(json_array_get(tn, 0)) ?: "", "setosa"));
  json_decref(r.body);
  r = call(api, "POST", "/importance", "{\"model\":\"iris\",\"method\":\"olden\",\"target\":1}");
  CHECK_MSG(r.status == 200 && !strcmp(json_string_value(json_object_get(r.body, "target_name")) ?: "", "versicolor"),
            "importance: %d", r.status);
  json_decref(r.body);
  /* a regression has no class names */
  r = call(api, "POST", "/explain/gradient", "{\"model\":\"diabetes\",\"instance\":[0,0,0,0,0,0,0,0,0,0]}");
  CHECK(r.status == 200 && json_object_get(r.body, "targets") && !json_object_get(r.body, "target_names"));
  json_decref(r.body);
}

TEST(degenerate_requests_answered_with_warnings) {
  /* num_features over the model's 4 features is clamped, and said */
  answer_t r = call(api, "POST", "/explain/lime",
                    "{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"num_features\":10,\"seed\":1}");
  CHECK(r.status == 200);
  CHECK(has_warning(r.body, "num_features 10 is more than the model's 4 features: clamped to 4"));
  /* each label whose fit scores below 0.5 is named, with the threshold; none above it */
  json_t *l0 = json_array_get(json_object_get(json_array_get(json_object_get(r.body, "explanations"), 0), "labels"), 0);
  double score = json_number_value(json_object_get(l0, "score"));
  CHECK(has_warning(r.body, "explanations[0].labels[0]: the local fit has score") == (score < 0.5));
  json_decref(r.body);
  /* without a degenerate input there is no list at all */
  r = call(api, "POST", "/explain/lime",
           "{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"num_features\":2,\"seed\":1,\"num_samples\":5000}");
  CHECK(r.status == 200);
  CHECK(!has_warning(r.body, "num_features"));
  json_decref(r.body);
  /* Kernel SHAP with 5 coalitions for 30 features */
  r = call(api, "POST", "/explain/shap",
           "{\"model\":\"breast_cancer\",\"instance\":[14,20,90,600,0.1,0.1,0.1,0.05,0.18,0.06,0.4,1.2,2.8,40,0.007,"
           "0.025,0.03,0.01,0.02,0.004,16,25,105,800,0.13,0.25,0.27,0.11,0.29,0.08],\"nsamples\":5,\"seed\":1}");
  CHECK(r.status == 200);
  CHECK_MSG(has_warning(r.body, "nsamples 5 is too small for 30 features"), "%.300s", "shap warning missing");
  json_decref(r.body);
  r = call(api, "POST", "/explain/shap", "{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"seed\":1}");
  CHECK(r.status == 200 && !json_object_get(r.body, "warnings"));
  json_decref(r.body);
  /* a background_size over the stored background is clamped, and said */
  r = call(api, "POST", "/explain/shap",
           "{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"seed\":1,\"background_size\":5000}");
  CHECK(r.status == 200);
  CHECK_MSG(has_warning(r.body, "background_size 5000 is more than the model's"), "background clamp not said");
  json_decref(r.body);
}

/* "instance" is "instances" with one row on every explanation endpoint (one shared
 * decoder, xd_json_instances): the answers are equal. */
TEST(instance_is_a_one_row_instances_everywhere) {
  static const char *const eps[][2] = {
      {"/explain/lime", "\"num_samples\":300,\"seed\":3"},
      {"/explain/shap", "\"seed\":3"},
      {"/explain/gradient", "\"method\":\"integrated_gradients\",\"steps\":16"},
  };
  for (size_t e = 0; e < sizeof eps / sizeof eps[0]; e++) {
    char one[512], many[512];
    snprintf(one, sizeof one, "{\"model\":\"iris\",\"instance\":[6.1,2.8,4.7,1.2],%s}", eps[e][1]);
    snprintf(many, sizeof many, "{\"model\":\"iris\",\"instances\":[[6.1,2.8,4.7,1.2]],%s}", eps[e][1]);
    answer_t a = call(api, "POST", eps[e][0], one), b = call(api, "POST", eps[e][0], many);
    CHECK_MSG(a.status == 200 && b.status == 200, "%s: %d %d", eps[e][0], a.status, b.status);
    CHECK_MSG(a.body && b.body && json_equal(a.body, b.body), "%s: instance and instances differ", eps[e][0]);
    json_decref(a.body);
    json_decref(b.body);
  }
  /* both at once is refused, naming the field */
  answer_t r = call(api, "POST", "/explain/shap",
                    "{\"model\":\"iris\",\"instance\":[1,2,3,4],\"instances\":[[1,2,3,4]]}");
  CHECK(r.status == 400 && message(&r) && xd_error_message_helps(message(&r)));
  json_decref(r.body);
}

/* The rule itself must be able to fail. */
TEST(hint_rule_rejects_bare_messages) {
  CHECK(!xd_error_message_helps("bad value"));
  CHECK(!xd_error_message_helps("unknown field 'x'"));
  CHECK(xd_error_message_helps("must be between 1 and 10"));
  CHECK(xd_error_message_helps("unknown model 'irs'; did you mean 'iris'? loaded: iris"));
}

/* Every invalid case of the suite: its answer names a field when it refuses a value of
 * the body, and its message says what would be valid (xd_case_check holds both). */
TEST(every_invalid_case_says_what_would_be_valid) {
  xd_case_t *cs;
  size_t n = xd_cases_load("tests/requests/invalid", &cs), ran = 0;
  CHECK(n >= 40);
  for (size_t i = 0; i < n; i++) {
    if (json_is_true(json_object_get(cs[i].spec, "http_only"))) continue;
    const char *method = json_string_value(json_object_get(cs[i].spec, "method"));
    const char *path = json_string_value(json_object_get(cs[i].spec, "path"));
    json_t *h = json_object_get(cs[i].spec, "headers");
    if (json_object_size(h)) continue; /* headers matter to these: test_api runs them */
    xd_api_request_t req = {method, path, NULL, cs[i].body, cs[i].body_len, NULL, NULL};
    xd_api_response_t resp;
    memset(&resp, 0, sizeof resp);
    xd_api_handle_sync(api, &req, &resp, NULL);
    json_t *b = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
    json_t *e = json_object_get(b, "error");
    const char *m = json_string_value(json_object_get(e, "message"));
    CHECK_MSG(m && xd_error_message_helps(m), "case %s: message '%s' does not say what would be valid", cs[i].name,
              m ? m : "(none)");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *f = json_string_value(json_object_get(e, "field"));
    if (code && strcmp(code, "invalid_argument") == 0)
      CHECK_MSG(f && *f, "case %s: invalid_argument without a field", cs[i].name);
    json_decref(b);
    xd_api_response_deinit(&resp);
    ran++;
  }
  CHECK(ran > 40);
  xd_cases_free(cs, n);
}

int main(void) {
  xd_blas_init();
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  cfg.limits.max_rows = 100;
  cfg.inline_predict_rows = 64;
  xd_registry_new(&reg);
  xd_api_new(&cfg, reg, &api);
  xd_api_load_dir(api, "models", quiet, NULL);
  xd_api_set_ready(api, 1);
  RUN(unknown_model_suggests_the_nearest_and_lists_loaded);
  RUN(unknown_model_list_is_bounded);
  RUN(readyz_not_ready_without_models_unless_allowed);
  RUN(wrong_typed_value_names_feature_and_value);
  RUN(hint_rule_rejects_bare_messages);
  RUN(class_names_beside_target_indices);
  RUN(instance_is_a_one_row_instances_everywhere);
  RUN(degenerate_requests_answered_with_warnings);
  RUN(every_invalid_case_says_what_would_be_valid);
  xd_api_free(api);
  xd_registry_free(reg);
  return TEST_REPORT();
}
