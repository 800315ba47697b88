/* test_text_api.c — explanations of the demo text models over HTTP against the real
 * server: /explain/gradient (IG and input x gradient equal to the torch reference of
 * tests/golden/text_explain.json), /explain/occlusion (equal to the reference), /explain/lime
 * (shape, sorting, positions, same seed same bytes) and /explain/shap (efficiency against
 * /predict), truncation warnings, and invalid text requests. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/test.h"

static xd_server_t srv;

static int post(const char *path, json_t *body, json_t **out, char **raw) {
  char *b = json_dumps(body, JSON_COMPACT);
  xd_http_resp_t r;
  *out = NULL;
  if (raw) *raw = NULL;
  int st = -1;
  if (b && xd_http(srv.port, "POST", path, "Content-Type: application/json\r\n", b, strlen(b), &r) == 0) {
    *out = json_loadb(r.body, r.body_len, 0, NULL);
    if (raw) *raw = strdup(r.body);
    st = r.status;
    if (st != 200 && getenv("E2E_VERBOSE")) fprintf(stderr, "  %s: %d %.300s\n", path, st, r.body);
    xd_http_resp_free(&r);
  }
  free(b);
  json_decref(body);
  return st;
}

static json_t *reference(const char *model) {
  static json_t *ref;
  if (!ref) ref = json_load_file("tests/golden/text_explain.json", 0, NULL);
  return json_object_get(json_object_get(ref, "models"), model);
}

static double rel(json_t *a, json_t *b) {
  double d = 0, m = 0;
  for (size_t i = 0; i < json_array_size(b); i++) {
    double x = json_number_value(json_array_get(a, i)), y = json_number_value(json_array_get(b, i));
    d = fmax(d, fabs(x - y));
    m = fmax(m, fabs(y));
  }
  return m > 0 ? d / m : d;
}

TEST(gradient_and_occlusion_match_reference) {
  const char *models[] = {"reviews_bert", "reviews_gru"};
  for (int mi = 0; mi < 2; mi++) {
    json_t *R = reference(models[mi]), *texts = json_array();
    CHECK(R != NULL);
    if (!R) continue;
    size_t n = 6;
    for (size_t i = 0; i < n; i++)
      json_array_append(texts, json_object_get(json_array_get(json_object_get(R, "instances"), i), "text"));
    json_t *o;
    for (int f64 = 0; f64 < 2; f64++) { /* the default float32 pass, then "precision": "float64" */
      json_t *body = json_pack("{s:s,s:O,s:i}", "model", models[mi], "instances", texts, "steps", 50);
      if (f64) json_object_set_new(body, "precision", json_string("float64"));
      int st = post("/explain/gradient", body, &o, NULL);
      CHECK(st == 200);
      CHECK(!strcmp(json_string_value(json_object_get(o, "precision")), f64 ? "float64" : "float32"));
      json_t *att = json_object_get(o, "attributions"), *tok = json_object_get(o, "tokens");
      json_t *off = json_object_get(o, "offsets"), *dl = json_object_get(o, "convergence_delta");
      CHECK(json_array_size(att) == n && json_array_size(tok) == n && json_array_size(off) == n && json_array_size(dl) == n);
      for (size_t i = 0; i < n && i < json_array_size(att); i++) {
        json_t *ri = json_array_get(json_object_get(R, "instances"), i);
        CHECK(json_array_size(json_array_get(att, i)) == json_array_size(json_array_get(tok, i)));
        CHECK(json_array_size(json_array_get(off, i)) == json_array_size(json_array_get(tok, i)));
        CHECK(json_integer_value(json_array_get(json_object_get(o, "targets"), i)) ==
              json_integer_value(json_object_get(ri, "target")));
        double e = rel(json_array_get(att, i), json_object_get(ri, "integrated_gradients"));
        CHECK_MSG(e <= 2e-3, "%s text %zu: IG relative error %g", models[mi], i, e);
        /* the delta is a difference of probabilities near 1: float32's (forward in float,
         * output stage in double) is good to about 1e-6 of them, float64's far better */
        CHECK_NEAR(json_number_value(json_array_get(dl, i)), json_number_value(json_object_get(ri, "convergence_delta")),
                   f64 ? 1e-9 : 1e-5);
      }
      json_decref(o);
    }
    int st = post("/explain/gradient", json_pack("{s:s,s:O,s:s}", "model", models[mi], "instances", texts, "method",
                                             "input_x_gradient"), &o, NULL);
    CHECK(st == 200);
    for (size_t i = 0; i < n; i++) {
      json_t *ri = json_array_get(json_object_get(R, "instances"), i);
      double e = rel(json_array_get(json_object_get(o, "attributions"), i), json_object_get(ri, "input_x_gradient"));
      CHECK_MSG(e <= 2e-3, "%s text %zu: input x gradient relative error %g", models[mi], i, e);
    }
    json_decref(o);
    st = post("/explain/occlusion", json_pack("{s:s,s:O,s:s}", "model", models[mi], "instances", texts, "baseline", "unk"),
              &o, NULL);
    CHECK(st == 200);
    for (size_t i = 0; i < n; i++) {
      json_t *ri = json_array_get(json_object_get(R, "instances"), i);
      double e = rel(json_array_get(json_object_get(o, "attributions"), i),
                     json_object_get(json_object_get(ri, "occlusion"), "unk"));
      CHECK_MSG(e <= 2e-3, "%s text %zu: occlusion relative error %g", models[mi], i, e);
    }
    json_decref(o);
    json_decref(texts);
  }
}

TEST(lime_answers) {
  const char *text = "The acting was superb, but the ending felt rather dull and the script was a waste of two hours.";
  json_t *o;
  char *raw1, *raw2;
  CHECK(post("/explain/lime", json_pack("{s:s,s:s,s:i,s:i}", "model", "reviews_bert", "instance", text, "seed", 5,
                                        "num_samples", 2000), &o, &raw1) == 200);
  json_t *e = json_array_get(json_object_get(o, "explanations"), 0);
  json_t *lab = json_array_get(json_object_get(e, "labels"), 0), *ws = json_object_get(lab, "weights");
  CHECK(json_array_size(ws) == 10);
  double prev = INFINITY;
  for (size_t k = 0; k < json_array_size(ws); k++) {
    json_t *w = json_array_get(ws, k), *pos = json_object_get(w, "positions");
    const char *word = json_string_value(json_object_get(w, "feature"));
    double v = json_number_value(json_object_get(w, "weight"));
    CHECK(fabs(v) <= prev);
    prev = fabs(v);
    CHECK(word && json_array_size(pos) >= 1);
    for (size_t p = 0; word && p < json_array_size(pos); p++) /* positions are character offsets (ASCII here) */
      CHECK(!strncmp(text + json_integer_value(json_array_get(pos, p)), word, strlen(word)));
  }
  /* the planted words lead */
  const char *top = json_string_value(json_object_get(json_array_get(ws, 0), "feature"));
  CHECK(top && (!strcmp(top, "dull") || !strcmp(top, "waste") || !strcmp(top, "superb")));
  json_decref(o);
  CHECK(post("/explain/lime", json_pack("{s:s,s:s,s:i,s:i}", "model", "reviews_bert", "instance", text, "seed", 5,
                                        "num_samples", 2000), &o, &raw2) == 200);
  CHECK(raw1 && raw2 && !strcmp(raw1, raw2));
  json_decref(o);
  free(raw1);
  free(raw2);
  CHECK(post("/explain/lime", json_pack("{s:s,s:s,s:b,s:s,s:i,s:i}", "model", "reviews_gru", "instance", "great great film",
                                        "bow", 0, "mask_string", "xyz", "num_samples", 500, "repeats", 3), &o, NULL) == 200);
  ws = json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(o, "explanations"), 0), "labels"), 0),
                       "weights");
  CHECK(json_array_size(ws) == 3 && json_is_number(json_object_get(json_array_get(ws, 0), "std")));
  json_decref(o);
}

TEST(shap_efficiency) {
  const char *texts[] = {"The acting was superb, but the ending felt rather dull.", "a waste of a great cast"};
  const char *models[] = {"reviews_bert", "reviews_gru"};
  for (int mi = 0; mi < 2; mi++) {
    json_t *o, *p;
    json_t *ins = json_pack("[s,s]", texts[0], texts[1]);
    CHECK(post("/explain/shap", json_pack("{s:s,s:O,s:i}", "model", models[mi], "instances", ins, "seed", 1), &o, NULL) ==
          200);
    CHECK(post("/predict", json_pack("{s:s,s:O}", "model", models[mi], "instances", ins), &p, NULL) == 200);
    for (size_t i = 0; i < 2; i++) {
      size_t t = (size_t)json_integer_value(json_array_get(json_object_get(o, "targets"), i));
      double fx = json_number_value(json_array_get(json_array_get(json_object_get(p, "probabilities"), i), t));
      double s = json_number_value(json_array_get(json_object_get(o, "expected_value"), i));
      json_t *sv = json_array_get(json_object_get(o, "shap_values"), i);
      for (size_t k = 0; k < json_array_size(sv); k++) s += json_number_value(json_array_get(sv, k));
      CHECK_MSG(fabs(s - fx) < 1e-6, "%s text %zu: expected + sum = %g, f(x) = %g", models[mi], i, s, fx);
      CHECK(json_array_size(sv) == json_array_size(json_array_get(json_object_get(o, "words"), i)));
    }
    json_decref(ins);
    json_decref(o);
    json_decref(p);
  }
}

TEST(truncation_warns) {
  char text[4000] = "";
  for (int i = 0; i < 150; i++) strcat(text, "great ");
  json_t *o;
  CHECK(post("/explain/gradient", json_pack("{s:s,s:[s],s:s}", "model", "reviews_bert", "instances", text, "method",
                                            "saliency"), &o, NULL) == 200);
  json_t *w = json_object_get(o, "warnings");
  CHECK(json_array_size(w) == 1 && strstr(json_string_value(json_array_get(w, 0)), "truncated to 64 tokens"));
  CHECK(json_array_size(json_array_get(json_object_get(o, "attributions"), 0)) == 64);
  json_decref(o);
}

TEST(invalid_requests) {
  json_t *o;
  CHECK(post("/explain/gradient", json_pack("{s:s,s:[s,i]}", "model", "reviews_bert", "instances", "ok", 3), &o, NULL) == 400);
  CHECK(!strcmp(json_string_value(json_object_get(json_object_get(o, "error"), "field")), "instances[1]"));
  json_decref(o);
  CHECK(post("/explain/lime", json_pack("{s:s,s:s,s:s}", "model", "reviews_bert", "instance", "ok", "bow", "no"), &o, NULL) ==
        400);
  CHECK(!strcmp(json_string_value(json_object_get(json_object_get(o, "error"), "field")), "bow"));
  json_decref(o);
  CHECK(post("/explain/gradient", json_pack("{s:s,s:s,s:s}", "model", "reviews_gru", "instance", "ok", "precision", "half"),
             &o, NULL) == 400);
  CHECK(!strcmp(json_string_value(json_object_get(json_object_get(o, "error"), "field")), "precision"));
  json_decref(o);
  const char bad_utf8[] = "{\"model\": \"reviews_bert\", \"instance\": \"caf\xc3\"}";
  xd_http_resp_t r;
  CHECK(xd_http(srv.port, "POST", "/explain/lime", "Content-Type: application/json\r\n", bad_utf8, strlen(bad_utf8), &r) == 0);
  CHECK(r.status == 400);
  xd_http_resp_free(&r);
}

int main(void) {
  if (xd_server_start(&srv, NULL, NULL) != 0) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
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
  RUN(gradient_and_occlusion_match_reference);
  RUN(lime_answers);
  RUN(shap_efficiency);
  RUN(truncation_warns);
  RUN(invalid_requests);
  CHECK(xd_server_stop(&srv) == 0);
  return TEST_REPORT();
}
