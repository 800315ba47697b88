/* test_e2e_lime.c — POST /explain/lime over HTTP against the real server: every demo
 * model in every mode, API.md's response shape and invariants, same seed same bytes,
 * and invalid requests with their status, code and field. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/test.h"

static xd_server_t srv;
static const char *demo[] = {"breast_cancer", "credit", "iris", "wine", "diabetes"};

/* POSTs body to /explain/lime; returns the status, the parsed body in *out (NULL if not
 * JSON) and, if raw, the raw body (free it). */
static int post(const char *body, json_t **out, char **raw) {
  xd_http_resp_t r;
  *out = NULL;
  if (raw) *raw = NULL;
  if (xd_http(srv.port, "POST", "/explain/lime", "Content-Type: application/json\r\n", body, strlen(body), &r) != 0)
    return -1;
  *out = json_loadb(r.body, r.body_len, 0, NULL);
  if (raw) *raw = strdup(r.body);
  int st = r.status;
  if (st != 200 && (st / 100 != 4 || getenv("E2E_VERBOSE"))) fprintf(stderr, "  POST: %d %.300s\n", st, r.body);
  xd_http_resp_free(&r);
  return st;
}

/* The first k golden instances of a demo model (tests/golden/predict_NAME.json) as JSON. */
static char *instances(const char *name, size_t k) {
  char path[256];
  snprintf(path, sizeof path, "tests/golden/predict_%s.json", name);
  json_t *g = json_load_file(path, 0, NULL);
  if (!g) return NULL;
  json_t *all = json_object_get(g, "instances"), *some = json_array();
  for (size_t i = 0; i < k && i < json_array_size(all); i++) json_array_append(some, json_array_get(all, i));
  char *s = json_dumps(some, JSON_COMPACT);
  json_decref(some);
  json_decref(g);
  return s;
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

/* API.md's shape and LIME's invariants on one answer. */
static void check_answer(const char *what, json_t *j, size_t n_inst, size_t max_weights, int repeats) {
  CHECK_MSG(json_is_integer(json_object_get(j, "seed")), "%s: seed echoed", what);
  CHECK(json_is_integer(json_object_get(j, "num_samples")) && num(j, "kernel_width") > 0);
  json_t *exps = json_object_get(j, "explanations");
  CHECK_MSG(json_array_size(exps) == n_inst, "%s: %zu explanations", what, json_array_size(exps));
  for (size_t i = 0; i < json_array_size(exps); i++) {
    json_t *e = json_array_get(exps, i), *z0 = json_object_get(e, "z0"), *labels = json_object_get(e, "labels");
    json_t *probs = json_object_get(e, "probabilities");
    if (probs) {
      double s = 0;
      for (size_t c = 0; c < json_array_size(probs); c++) s += json_number_value(json_array_get(probs, c));
      CHECK_NEAR(s, 1, 1e-9);
      CHECK(json_is_string(json_object_get(e, "prediction")));
    } else {
      CHECK(json_is_number(json_object_get(e, "prediction")));
    }
    CHECK(json_array_size(labels) >= 1 && json_is_array(z0));
    for (size_t l = 0; l < json_array_size(labels); l++) {
      json_t *lab = json_array_get(labels, l), *ws = json_object_get(lab, "weights");
      CHECK(json_is_string(json_object_get(lab, "label")) && json_is_integer(json_object_get(lab, "label_index")));
      CHECK(num(lab, "score") <= 1 + 1e-12);
      double lp = num(lab, "intercept"), prev = INFINITY;
      CHECK(json_array_size(ws) <= max_weights);
      for (size_t a = 0; a < json_array_size(ws); a++) {
        json_t *w = json_array_get(ws, a);
        double wt = num(w, "weight");
        size_t f = (size_t)json_integer_value(json_object_get(w, "feature_index"));
        CHECK(f < json_array_size(z0));
        lp += wt * json_number_value(json_array_get(z0, f));
        CHECK_MSG(fabs(wt) <= prev, "%s: weights sorted by |weight|", what);
        prev = fabs(wt);
        const char *cond = json_string_value(json_object_get(w, "condition"));
        const char *feat = json_string_value(json_object_get(w, "feature"));
        CHECK(cond && feat && strstr(cond, feat) != NULL);
        CHECK((json_object_get(w, "std") != NULL) == repeats);
        if (repeats) CHECK(num(w, "std") >= 0);
      }
      CHECK_MSG(fabs(lp - num(lab, "local_pred")) <= 1e-9 * (1 + fabs(lp)), "%s: local_pred = intercept + w·z0",
                what);
    }
  }
}

TEST(every_model_every_mode) {
  static const char *modes[] = {
      "",
      ",\"discretize\":\"decile\",\"feature_selection\":\"forward_selection\",\"num_features\":3",
      ",\"discretize\":\"none\",\"feature_selection\":\"lasso_path\",\"num_features\":4",
      ",\"discretize\":\"none\",\"sample_around_instance\":true,\"feature_selection\":\"none\"",
      ",\"discretize\":\"entropy\",\"feature_selection\":\"highest_weights\"",
      ",\"repeats\":3,\"num_features\":4",
  };
  for (size_t k = 0; k < sizeof demo / sizeof *demo; k++) {
    char *inst = instances(demo[k], 3);
    CHECK(inst != NULL);
    for (size_t md = 0; md < sizeof modes / sizeof *modes; md++) {
      int regression = strcmp(demo[k], "diabetes") == 0;
      char body[65536];
      snprintf(body, sizeof body,
               "{\"model\":\"%s\",\"instances\":%s,\"num_samples\":1500,\"seed\":7,\"diagnostics\":true%s}", demo[k],
               inst, modes[md]);
      json_t *j;
      int st = post(body, &j, NULL);
      if (md == 4 && regression) { /* entropy needs classification targets */
        CHECK(st == 400);
        CHECK(strcmp(json_string_value(json_object_get(json_object_get(j, "error"), "field")), "discretize") == 0);
        json_decref(j);
        continue;
      }
      char what[128];
      snprintf(what, sizeof what, "%s mode %zu", demo[k], md);
      CHECK_MSG(st == 200, "%s: status %d", what, st);
      size_t maxw = md == 3 ? 1000 : (md == 1 ? 3 : (md == 2 ? 4 : (md == 5 ? 1000 : 10)));
      if (st == 200) check_answer(what, j, 3, maxw, md == 5);
      json_decref(j);
    }
    free(inst);
  }
}

/* The same request gives the same bytes; no seed gives a random one that replays. */
TEST(same_seed_same_bytes) {
  char *inst = instances("breast_cancer", 2);
  char body[65536];
  snprintf(body, sizeof body, "{\"model\":\"breast_cancer\",\"instances\":%s,\"seed\":123}", inst);
  json_t *a, *b;
  char *ra, *rb;
  CHECK(post(body, &a, &ra) == 200);
  CHECK(post(body, &b, &rb) == 200);
  CHECK(ra && rb && strcmp(ra, rb) == 0);
  /* z0 is a diagnostic: only with "diagnostics": true (check_answer asks for it) */
  CHECK(json_object_get(json_array_get(json_object_get(a, "explanations"), 0), "z0") == NULL);
  CHECK(json_object_get(json_array_get(json_object_get(a, "explanations"), 0), "labels") != NULL);
  json_decref(a), json_decref(b), free(ra), free(rb);
  snprintf(body, sizeof body, "{\"model\":\"breast_cancer\",\"instances\":%s}", inst);
  CHECK(post(body, &a, &ra) == 200);
  json_t *seed = json_object_get(a, "seed");
  CHECK(json_is_integer(seed));
  snprintf(body, sizeof body, "{\"model\":\"breast_cancer\",\"instances\":%s,\"seed\":%lld}", inst,
           (long long)json_integer_value(seed));
  CHECK(post(body, &b, &rb) == 200);
  CHECK(ra && rb && strcmp(ra, rb) == 0);
  json_decref(a), json_decref(b), free(ra), free(rb), free(inst);
}

/* A many-instance request answers the same bytes from a server with 1 worker and one
 * with 3: instances are parts run in any order, each with its own random stream. */
TEST(same_bytes_whatever_the_workers) {
  char *inst = instances("wine", 8);
  char body[65536];
  snprintf(body, sizeof body, "{\"model\":\"wine\",\"instances\":%s,\"seed\":5,\"num_samples\":3000,\"repeats\":2}",
           inst);
  json_t *a;
  char *ra;
  CHECK(post(body, &a, &ra) == 200);
  static const char *const one[] = {"--workers", "1", NULL}, *const three[] = {"--workers", "3", NULL};
  const char *const *cfg[] = {one, three};
  for (size_t c = 0; c < 2; c++) {
    xd_server_t other;
    if (xd_server_start(&other, cfg[c], NULL) != 0) {
      CHECK(0);
      continue;
    }
    xd_server_t keep = srv;
    srv = other;
    for (int t = 0; t < 400; t++) { /* wait for the models */
      xd_http_resp_t r;
      int ok = 0;
      if (xd_http(srv.port, "GET", "/readyz", NULL, NULL, 0, &r) == 0) {
        ok = r.status == 200;
        xd_http_resp_free(&r);
      }
      if (ok) break;
      xd_sleep_ms(25);
    }
    json_t *b;
    char *rb;
    CHECK(post(body, &b, &rb) == 200);
    CHECK_MSG(ra && rb && strcmp(ra, rb) == 0, "workers config %zu: different bytes", c);
    json_decref(b);
    free(rb);
    srv = keep;
    CHECK(xd_server_stop(&other) == 0);
  }
  json_decref(a);
  free(ra);
  free(inst);
}

/* breast_cancer's explanation is driven by the "worst ..." features; labels by name. */
TEST(sensible_explanations) {
  char *inst = instances("breast_cancer", 1);
  char body[65536];
  snprintf(body, sizeof body, "{\"model\":\"breast_cancer\",\"instances\":%s,\"seed\":42}", inst);
  json_t *j;
  CHECK(post(body, &j, NULL) == 200);
  json_t *ws = json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(j, "explanations"), 0),
                                                              "labels"),
                                              0),
                               "weights");
  size_t worst = 0;
  for (size_t a = 0; a < 5 && a < json_array_size(ws); a++)
    worst += strncmp(json_string_value(json_object_get(json_array_get(ws, a), "feature")), "worst", 5) == 0;
  CHECK_MSG(worst >= 2, "%zu 'worst' features in the top 5", worst);
  json_decref(j);
  free(inst);
  /* labels by class name and index, in the order given */
  json_t *o;
  CHECK(post("{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"labels\":[\"virginica\",0],\"seed\":1}", &o,
             NULL) == 200);
  json_t *labels = json_object_get(json_array_get(json_object_get(o, "explanations"), 0), "labels");
  CHECK(json_array_size(labels) == 2);
  CHECK(strcmp(json_string_value(json_object_get(json_array_get(labels, 0), "label")), "virginica") == 0);
  CHECK(json_integer_value(json_object_get(json_array_get(labels, 1), "label_index")) == 0);
  json_decref(o);
  /* instances named by feature, categorical values by name */
  CHECK(post("{\"model\":\"credit\",\"instance\":{\"age\":40,\"income\":30000,\"debt_ratio\":0.5,\"employment\":"
             "\"unemployed\",\"region\":\"west\",\"late_payments\":3},\"seed\":1,\"num_features\":6}",
             &o, NULL) == 200);
  ws = json_object_get(
      json_array_get(json_object_get(json_array_get(json_object_get(o, "explanations"), 0), "labels"), 0), "weights");
  int found = 0;
  for (size_t a = 0; a < json_array_size(ws); a++)
    found |= strcmp(json_string_value(json_object_get(json_array_get(ws, a), "condition")), "employment=unemployed") == 0;
  CHECK(found);
  json_decref(o);
}

/* Invalid requests: status, code and field. */
TEST(invalid_requests) {
  static const struct {
    const char *body;
    int status;
    const char *code, *field;
  } cases[] = {
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"bogus\":1}", 400, "invalid_argument", "bogus"},
      {"{\"instance\":[5.1,3.5,1.4,0.2]}", 400, "invalid_argument", "model"},
      {"{\"model\":\"nope\",\"instance\":[5.1,3.5,1.4,0.2]}", 404, "not_found", "model"},
      {"{\"model\":\"iris\"}", 400, "invalid_argument", "instances"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4]}", 400, "invalid_argument", "instance"},
      {"{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,\"x\"]]}", 400, "invalid_argument", "instances[0][3]"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"num_samples\":0}", 400, "invalid_argument", "num_samples"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"num_samples\":100001}", 400, "invalid_argument",
       "num_samples"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"num_samples\":1.5}", 400, "invalid_argument",
       "num_samples"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"num_features\":0}", 400, "invalid_argument",
       "num_features"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"labels\":[3]}", 400, "invalid_argument", "labels[0]"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"labels\":[\"rose\"]}", 400, "invalid_argument",
       "labels[0]"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"labels\":[]}", 400, "invalid_argument", "labels"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"labels\":[1,1]}", 400, "invalid_argument", "labels[1]"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"top_labels\":4}", 400, "invalid_argument", "top_labels"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"top_labels\":0}", 400, "invalid_argument", "top_labels"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"labels\":[1],\"top_labels\":2}", 400, "invalid_argument",
       "top_labels"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"discretize\":\"octile\"}", 400, "invalid_argument",
       "discretize"},
      {"{\"model\":\"diabetes\",\"instance\":[0,0,0,0,0,0,0,0,0,0],\"discretize\":\"entropy\"}", 400,
       "invalid_argument", "discretize"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"kernel_width\":0}", 400, "invalid_argument",
       "kernel_width"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"kernel_width\":-1}", 400, "invalid_argument",
       "kernel_width"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"kernel_width\":\"wide\"}", 400, "invalid_argument",
       "kernel_width"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"feature_selection\":\"greedy\"}", 400,
       "invalid_argument", "feature_selection"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"sample_around_instance\":1}", 400, "invalid_argument",
       "sample_around_instance"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"repeats\":0}", 400, "invalid_argument", "repeats"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"repeats\":101}", 400, "invalid_argument", "repeats"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"seed\":-1}", 400, "invalid_argument", "seed"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"timeout_ms\":0}", 400, "invalid_argument", "timeout_ms"},
      {"{\"model\":\"iris\",\"instance\":[5.1,3.5,1.4,0.2],\"instances\":[[5.1,3.5,1.4,0.2]]}", 400,
       "invalid_argument", "instance"},
      /* 6 rows x 100000 samples x 100 repeats > 50,000,000 model rows */
      {"{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2],[5.1,3.5,1.4,0.2],[5.1,3.5,1.4,0.2],[5.1,3.5,1.4,0.2],[5.1,3.5,1.4,0.2],[5.1,3.5,1.4,0.2]],\"num_samples\":100000,\"repeats\":100}",
       413,
       "payload_too_large", "num_samples"},
      {"[1,2]", 400, "invalid_json", NULL},
      /* the deadline passes while the neighbourhoods are evaluated: cancelled, 504 */
      {"{\"model\":\"breast_cancer\",\"instance\":[17.99,10.38,122.8,1001,0.1184,0.2776,0.3001,0.1471,0.2419,"
       "0.07871,1.095,0.9053,8.589,153.4,0.006399,0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,2019,"
       "0.1622,0.6656,0.7119,0.2654,0.4601,0.1189],\"num_samples\":100000,\"repeats\":40,\"timeout_ms\":5}",
       504, "deadline_exceeded", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    json_t *j;
    int st = post(cases[i].body, &j, NULL);
    json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *field = json_string_value(json_object_get(e, "field"));
    CHECK_MSG(st == cases[i].status, "case %zu %s: status %d, want %d", i, cases[i].body, st, cases[i].status);
    CHECK_MSG(code && strcmp(code, cases[i].code) == 0, "case %zu: code %s, want %s", i, code ? code : "(none)",
              cases[i].code);
    if (cases[i].field)
      CHECK_MSG(field && strcmp(field, cases[i].field) == 0, "case %zu: field %s, want %s", i,
                field ? field : "(none)", cases[i].field);
    json_decref(j);
  }
  xd_http_resp_t r;
  CHECK(xd_http(srv.port, "GET", "/explain/lime", NULL, NULL, 0, &r) == 0);
  CHECK(r.status == 405);
  xd_http_resp_free(&r);
}

int main(void) {
  if (xd_server_start(&srv, NULL, NULL) != 0) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  /* /healthz answers while the model folder still loads: wait for /readyz */
  for (int t = 0; t < 400; t++) {
    xd_http_resp_t r;
    int ok = 0;
    if (xd_http(srv.port, "GET", "/readyz", NULL, NULL, 0, &r) == 0) {
      ok = r.status == 200;
      xd_http_resp_free(&r);
    }
    if (ok) break;
    xd_sleep_ms(25 * (xd_under_valgrind() ? 4 : 1));
  }
  RUN(every_model_every_mode);
  RUN(same_seed_same_bytes);
  RUN(same_bytes_whatever_the_workers);
  RUN(sensible_explanations);
  RUN(invalid_requests);
  CHECK(xd_server_stop(&srv) == 0);
  return TEST_REPORT();
}
