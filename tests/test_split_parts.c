/* test_split_parts.c — one instance's explanation split into sub-parts (api/job.h,
 * xd_work_split) gives the same bytes however it is run: in process with the parts in
 * order and in reverse order, and over HTTP by the real server with 1 and with 2
 * workers. Every split endpoint on the demo CNN (models/shapes): integrated gradients,
 * SmoothGrad, VarGrad, occlusion, LIME (top labels and given labels), Kernel SHAP over
 * segments; and on the text models integrated gradients and SmoothGrad. Each request is checked to be
 * split (more than one part for one instance), so the test fails if the split goes away,
 * and the split answer is checked against the unsplit computation of the same request
 * (the same rows, summed in another order: equal within 1e-9 relative). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/endpoints.h"
#include "api/context.h"
#include "api/graph_rows.h"
#include "api/job.h"
#include "api/registry.h"
#include "core/image_explain.h"
#include "core/text_explain.h"
#include "core/alloc.h"
#include "core/mat.h"
#include "tests/harness.h"
#include "tests/test.h"

static xd_api_t *api;
static xd_registry_t *reg;

static void quiet(void *ctx, const char *msg) {
  (void)ctx;
  fprintf(stderr, "  load: %s\n", msg);
}

typedef struct split_case {
  const char *name, *path;
  xd_endpoint_decode_fn decode;
  const char *extra; /* JSON object members added to {"model","instance"} */
} split_case_t;

static const split_case_t cases[] = {
    {"integrated gradients 50 steps", "/explain/gradient", xd_gradient_decode, "\"steps\":50"},
    {"smoothgrad 40 samples", "/explain/gradient", xd_gradient_decode,
     "\"method\":\"smoothgrad\",\"samples\":40,\"seed\":7"},
    {"vargrad 40 samples", "/explain/gradient", xd_gradient_decode, "\"method\":\"vargrad\",\"samples\":40,\"seed\":3"},
    {"occlusion 4x4 stride 2", "/explain/occlusion", xd_occlusion_decode, "\"render\":true"},
    {"lime 1000 samples, top label", "/explain/lime", xd_lime_decode,
     "\"num_samples\":1000,\"seed\":0,\"segmentation\":{\"method\":\"grid\",\"size\":8}"},
    {"lime 700 samples, given labels", "/explain/lime", xd_lime_decode,
     "\"num_samples\":700,\"seed\":5,\"labels\":[2,0],\"segmentation\":{\"method\":\"slic\"}"},
    {"kernel shap over 16 segments, auto", "/explain/shap", xd_shap_decode,
     "\"seed\":2,\"segmentation\":{\"method\":\"grid\",\"size\":8}"},
    /* text models: a whole body (starts with '{') */
    {"text integrated gradients, reviews_bert", "/explain/gradient", xd_gradient_decode,
     "{\"model\":\"reviews_bert\",\"instance\":\"a truly wonderful film, though the ending drags\",\"steps\":50}"},
    {"text integrated gradients, reviews_gru", "/explain/gradient", xd_gradient_decode,
     "{\"model\":\"reviews_gru\",\"instance\":\"dull plot but great acting\",\"steps\":50}"},
    {"text lime 2000 samples, reviews_bert", "/explain/lime", xd_lime_decode,
     "{\"model\":\"reviews_bert\",\"instance\":\"a truly wonderful film, though the ending drags\","
     "\"num_samples\":2000,\"seed\":6}"},
    {"text kernel shap, reviews_bert", "/explain/shap", xd_shap_decode,
     "{\"model\":\"reviews_bert\",\"instance\":\"a truly wonderful film, though the ending drags on and on\","
     "\"seed\":3,\"nsamples\":1200}"},
};
#define FIRST_TEXT 7 /* cases from here on are text models */
#define N_CASES (sizeof cases / sizeof *cases)

static char *image_b64;

static char *body_text(const split_case_t *c) {
  if (c->extra[0] == '{') return strdup(c->extra);
  size_t cap = strlen(image_b64) + strlen(c->extra) + 128;
  char *s = malloc(cap);
  snprintf(s, cap, "{\"model\":\"shapes\",\"instance\":{\"b64\":\"%s\"},%s}", image_b64, c->extra);
  return s;
}

/* body_text with "precision": "float64": the split and one-call paths add the same terms,
 * so in double they agree to 1e-9; in float32 each sub-part is a graph run of its own
 * size, whose float rounding differs (tests/test_text_batch.c checks that case). */
static char *body_text_f64(const split_case_t *c) {
  char *t = body_text(c);
  size_t cap = strlen(t) + 32;
  char *s = malloc(cap);
  snprintf(s, cap, "{\"precision\":\"float64\",%s", t + 1);
  free(t);
  return s;
}

/* A flat array of P numbers (their order is all close_answers looks at). */
static json_t *xd_json_chw_test(const double *a, size_t P) {
  json_t *r = json_array();
  for (size_t v = 0; v < P; v++) json_array_append_new(r, json_real(a[v]));
  return r;
}

/* Runs w's stages in process: prepare parts, prepare, the parts in order or reversed,
 * encode. Returns the compact JSON text (malloc'd) or NULL. */
static char *run_parts(const xd_work_t *w, int reverse) {
  xd_error_t err;
  xd_error_clear(&err);
  for (size_t p = 0; p < w->n_prepare_parts; p++)
    if (w->ops->prepare_part(w->state, p, NULL, &err) != XD_OK) return NULL;
  if (w->ops->prepare && w->ops->prepare(w->state, NULL, &err) != XD_OK) return NULL;
  for (size_t q = 0; q < w->n_parts; q++)
    if (w->ops->run(w->state, reverse ? w->n_parts - 1 - q : q, NULL, &err) != XD_OK) return NULL;
  json_t *o = w->ops->encode(w->state, &err);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

/* The answer through xd_api_handle_sync (inline), as bytes. */
static char *inline_bytes(const char *path, const char *text) {
  xd_api_request_t req = {"POST", path, NULL, text, strlen(text), NULL, NULL};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  xd_api_handle_sync(api, &req, &resp, NULL);
  char *s = NULL;
  if (resp.status == 200 && resp.body) {
    s = malloc(resp.body_len + 1);
    memcpy(s, resp.body, resp.body_len);
    s[resp.body_len] = 0;
  } else {
    fprintf(stderr, "  %s: status %d %.*s\n", path, resp.status, (int)(resp.body ? resp.body_len : 0),
            resp.body ? resp.body : "");
  }
  xd_api_response_deinit(&resp);
  return s;
}

/* Flattens every number of a JSON value, in order. */
static size_t numbers(const json_t *a, double *v, size_t cap, size_t at) {
  if (json_is_number(a)) {
    if (at < cap) v[at] = json_number_value(a);
    return at + 1;
  }
  if (json_is_array(a))
    for (size_t i = 0; i < json_array_size(a); i++) at = numbers(json_array_get(a, i), v, cap, at);
  if (json_is_object(a)) {
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)a, k, e) at = numbers(e, v, cap, at);
  }
  return at;
}

/* Every number of a and b (parsed texts) equal within tol relative to the largest. */
static int close_answers(const char *a, const char *b, double tol, double *worst) {
  static double x[20000], y[20000];
  json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
  json_object_del(ja, "images"); /* PNGs of the heatmaps: bytes, not numbers */
  json_object_del(jb, "images");
  size_t n = numbers(ja, x, 20000, 0), m = numbers(jb, y, 20000, 0);
  json_decref(ja);
  json_decref(jb);
  if (n != m || n > 20000 || n == 0) return 0;
  double big = 0, d = 0;
  for (size_t i = 0; i < n; i++) {
    big = fmax(big, fabs(y[i]));
    d = fmax(d, fabs(x[i] - y[i]));
  }
  *worst = big > 0 ? d / big : d;
  return *worst <= tol;
}

/* In process: split (n_parts > 1), parts in order = reversed = xd_api_handle_sync; the
 * unsplit computation (one instance among two: the two-instance request answers it
 * unsplit) agrees within 1e-9. */
TEST(in_process_order_does_not_matter) {
  for (size_t c = 0; c < N_CASES; c++) {
    char *text = body_text(&cases[c]);
    json_t *body = json_loads(text, 0, NULL);
    char *ans[2] = {NULL, NULL};
    size_t parts = 0;
    for (int rev = 0; rev < 2; rev++) {
      xd_work_t w;
      memset(&w, 0, sizeof w);
      xd_error_t err;
      xd_error_clear(&err);
      int rc = cases[c].decode(api, body, &w, &err);
      CHECK_MSG(rc == XD_OK, "%s: decode: %s", cases[c].name, err.text);
      if (rc != XD_OK) continue;
      parts = w.n_parts;
      ans[rev] = run_parts(&w, rev);
      w.ops->free(w.state);
    }
    CHECK_MSG(parts > 1, "%s: one instance in %zu part(s): not split", cases[c].name, parts);
    char *sync = inline_bytes(cases[c].path, text);
    CHECK_MSG(ans[0] && ans[1] && !strcmp(ans[0], ans[1]), "%s: parts in reverse order answer differently",
              cases[c].name);
    /* the server's body is the same object; compare through a reparse (its own dump flags) */
    json_t *js = sync ? json_loads(sync, 0, NULL) : NULL;
    char *sd = js ? json_dumps(js, JSON_COMPACT) : NULL;
    CHECK_MSG(sd && ans[0] && !strcmp(sd, ans[0]), "%s: xd_api_handle_sync answers differently", cases[c].name);
    /* the unsplit computation: LIME and Kernel SHAP with two instances are one part per
     * instance, and the first draws what a single instance draws */
    if (sync && (cases[c].decode == xd_lime_decode || cases[c].decode == xd_shap_decode)) {
      json_t *b2 = json_loads(text, 0, NULL);
      json_t *inst = json_object_get(b2, "instance");
      json_object_set_new(b2, "instances", json_pack("[O,O]", inst, inst));
      json_object_del(b2, "instance");
      char *t2 = json_dumps(b2, JSON_COMPACT), *two = inline_bytes(cases[c].path, t2);
      json_t *j2 = two ? json_loads(two, 0, NULL) : NULL;
      const char *key = cases[c].decode == xd_shap_decode ? "shap_values" : "explanations";
      json_t *e0 = json_array_get(json_object_get(j2, key), 0);
      json_t *s0 = json_array_get(json_object_get(js, key), 0);
      char *a = e0 ? json_dumps(e0, JSON_COMPACT) : NULL, *b = s0 ? json_dumps(s0, JSON_COMPACT) : NULL;
      /* text rows go to the model in padded batches whose make-up follows the range, and
       * float sums over a different padding round differently: 1e-6 there */
      double worst = INFINITY, tol = c >= FIRST_TEXT ? 1e-6 : 1e-9;
      CHECK_MSG(a && b && close_answers(a, b, tol, &worst), "%s: split vs unsplit: worst relative difference %g",
                cases[c].name, worst);
      free(a);
      free(b);
      json_decref(j2);
      free(two);
      free(t2);
      json_decref(b2);
    }
    json_decref(js);
    free(sd);
    free(sync);
    free(ans[0]);
    free(ans[1]);
    json_decref(body);
    free(text);
  }
}

/* The split gradient and occlusion answers against core/image_explain.c computing every
 * row of the instance in one call (xd_imgx_gradient, xd_imgx_occlusion): the same rows,
 * summed in another order, so the gradients (asked in float64) equal within 1e-9
 * relative. Occlusion has no precision: its forward is float32, and its rows go through
 * graph runs of other sizes split than whole; OpenBLAS rounds a row's product
 * differently with the batch's row count (rows in a partial group of 4, and in the
 * transposed case others too), so a logit may move by an ulp and the answers agree to
 * float32's rounding of the probabilities (1e-6 of the largest attribution), no closer. */
TEST(split_equals_unsplit_within_rounding) {
  for (size_t c = 0; c < 4; c++) {
    char *t = cases[c].decode == xd_occlusion_decode ? body_text(&cases[c]) : body_text_f64(&cases[c]);
    json_t *body = json_loads(t, 0, NULL);
    char *a = inline_bytes(cases[c].path, t);
    json_t *ja = a ? json_loads(a, 0, NULL) : NULL;
    xd_error_t err;
    xd_error_clear(&err);
    xd_model_entry_t *e = xd_api_model(api, body, &err);
    double *X = NULL;
    size_t n = 0;
    CHECK(e && xd_json_image_rows(e->model, body, 1, 1, &X, &n, &err) == XD_OK && n == 1);
    if (!e || !X || !ja) {
      xd_model_entry_release(e);
      continue;
    }
    const xd_model_t *m = e->model;
    size_t P = xd_model_n_inputs(m), target = (size_t)json_integer_value(json_array_get(json_object_get(ja, "targets"), 0));
    double *B = xd_calloc(P, sizeof *B), *attr = xd_calloc(P, sizeof *attr), delta = 0;
    int rc;
    if (cases[c].decode == xd_occlusion_decode) {
      size_t dims[3] = {3, 32, 32}, win[3] = {3, 4, 4}, str[3] = {3, 2, 2};
      xd_occl_plan_t pl;
      rc = xd_occl_plan(&pl, 3, dims, win, str, &err);
      if (rc == XD_OK) rc = xd_imgx_occlusion(m, &pl, X, 1, &target, B, attr, NULL, &err);
    } else {
      xd_grad_opts_t o;
      memset(&o, 0, sizeof o);
      o.output = XD_OUTPUT_PROBABILITY;
      o.integration = XD_GRAD_GAUSSLEGENDRE;
      o.method = c == 0 ? XD_GRAD_INTEGRATED : c == 1 ? XD_GRAD_SMOOTHGRAD : XD_GRAD_VARGRAD;
      o.steps = 50;
      o.samples = 40;
      o.noise_stddev = 0.15;
      o.seed = c == 1 ? 7 : 3;
      o.precision = XD_DT_F64;
      rc = xd_imgx_baseline(m, XD_IMGX_BLACK, X, 0, NULL, B, &err);
      if (rc == XD_OK) rc = xd_imgx_gradient(m, &o, X, 1, &target, B, 0, attr, &delta, NULL, &err);
    }
    CHECK_MSG(rc == XD_OK, "%s: %s", cases[c].name, err.text);
    json_t *ref = json_pack("{s:o}", "attributions", xd_json_chw_test(attr, P));
    char *rt = json_dumps(ref, JSON_COMPACT);
    json_t *got = json_pack("{s:O}", "attributions", json_object_get(ja, "attributions"));
    char *gt = json_dumps(got, JSON_COMPACT);
    double worst = INFINITY, tol = cases[c].decode == xd_occlusion_decode ? 1e-6 : 1e-9;
    CHECK_MSG(close_answers(gt, rt, tol, &worst), "%s: split vs one call: worst relative difference %g",
              cases[c].name, worst);
    if (c == 0) {
      double d = json_number_value(json_array_get(json_object_get(ja, "convergence_delta"), 0));
      CHECK_MSG(fabs(d - delta) <= 1e-9 * fmax(1, fabs(delta)) + 1e-12, "IG delta %g vs %g", d, delta);
    }
    free(rt);
    free(gt);
    json_decref(ref);
    json_decref(got);
    xd_free(B);
    xd_free(attr);
    xd_free(X);
    xd_model_entry_release(e);
    json_decref(ja);
    free(a);
    json_decref(body);
    free(t);
  }
}

/* Text: the split shares added up equal xd_text_grad_explain over every row at once
 * within 1e-9 relative (attributions and IG's delta). */
TEST(text_split_equals_unsplit_within_rounding) {
  for (size_t c = FIRST_TEXT; c < FIRST_TEXT + 2; c++) {
    char *t = cases[c].decode == xd_occlusion_decode ? body_text(&cases[c]) : body_text_f64(&cases[c]);
    json_t *body = json_loads(t, 0, NULL);
    char *a = inline_bytes(cases[c].path, t);
    json_t *ja = a ? json_loads(a, 0, NULL) : NULL;
    xd_error_t err;
    xd_error_clear(&err);
    xd_model_entry_t *e = xd_api_model(api, body, &err);
    xd_tok_encoding_t *rows = NULL;
    size_t n = 0;
    json_t *warn = json_array();
    CHECK(e && xd_json_text_rows(e->model, body, 1, 1, &rows, &n, warn, &err) == XD_OK && n == 1);
    if (!e || !rows || !ja) {
      xd_model_entry_release(e);
      continue;
    }
    xd_text_grad_opts_t o;
    memset(&o, 0, sizeof o);
    o.output = XD_OUTPUT_PROBABILITY;
    o.baseline = XD_TEXT_BASE_PAD;
    o.precision = XD_DT_F64;
    double alpha[50], w[50], delta = 0;
    o.method = XD_GRAD_INTEGRATED; /* the text gradient split (SmoothGrad on a text is not split) */
    o.steps = 50;
    CHECK(xd_grad_quadrature(XD_GRAD_GAUSSLEGENDRE, 50, alpha, w, &err) == XD_OK);
    o.alpha = alpha;
    o.weights = w;
    size_t target = (size_t)json_integer_value(json_array_get(json_object_get(ja, "targets"), 0));
    double *attr = xd_calloc(rows[0].n, sizeof *attr);
    int rc = xd_text_grad_explain(e->model, &o, &rows[0], target, 0, attr, &delta, NULL, &err);
    CHECK_MSG(rc == XD_OK, "%s: %s", cases[c].name, err.text);
    json_t *ref = json_pack("{s:o}", "attributions", xd_json_chw_test(attr, rows[0].n));
    json_t *got = json_pack("{s:O}", "attributions", json_array_get(json_object_get(ja, "attributions"), 0));
    char *rt = json_dumps(ref, JSON_COMPACT), *gt = json_dumps(got, JSON_COMPACT);
    double worst = INFINITY, tol = cases[c].decode == xd_occlusion_decode ? 1e-6 : 1e-9;
    CHECK_MSG(close_answers(gt, rt, tol, &worst), "%s: split vs one call: worst relative difference %g",
              cases[c].name, worst);
    double d = json_number_value(json_array_get(json_object_get(ja, "convergence_delta"), 0));
    CHECK_MSG(fabs(d - delta) <= 1e-9 * fmax(1, fabs(delta)) + 1e-12, "text IG delta %g vs %g", d, delta);
    free(rt);
    free(gt);
    json_decref(ref);
    json_decref(got);
    xd_free(attr);
    xd_tok_rows_free(rows, n);
    json_decref(warn);
    xd_model_entry_release(e);
    json_decref(ja);
    free(a);
    json_decref(body);
    free(t);
  }
}

/* Split jobs under allocation failure: decode, prepare, the parts and encode either
 * succeed or fail cleanly with an error code (no crash; no leak under ASan). */
TEST(split_jobs_survive_allocation_failures) {
  static const split_case_t small[] = {
      {"ig", "/explain/gradient", xd_gradient_decode, "\"steps\":20"},
      {"occlusion", "/explain/occlusion", xd_occlusion_decode, "\"window\":[3,8,8],\"strides\":[3,4,4]"},
      {"lime", "/explain/lime", xd_lime_decode, "\"num_samples\":40,\"segmentation\":{\"method\":\"grid\",\"size\":8}"},
      {"shap", "/explain/shap", xd_shap_decode, "\"nsamples\":40,\"segmentation\":{\"method\":\"grid\",\"size\":8}"},
      {"text ig", "/explain/gradient", xd_gradient_decode,
       "{\"model\":\"reviews_gru\",\"instance\":\"dull plot\",\"steps\":50}"},
      {"text lime", "/explain/lime", xd_lime_decode,
       "{\"model\":\"reviews_gru\",\"instance\":\"dull plot, fine cast\",\"num_samples\":1100}"},
      {"text shap", "/explain/shap", xd_shap_decode,
       "{\"model\":\"reviews_gru\",\"instance\":\"dull plot, fine cast, slow end, a weak score and a lovely final scene\","
       "\"nsamples\":1100}"},
  };
  for (size_t c = 0; c < sizeof small / sizeof *small; c++) {
    char *t = body_text(&small[c]);
    json_t *body = json_loads(t, 0, NULL);
    int ok = 0, failed = 0, split = 0;
    /* every early allocation, then ever sparser (a graph run allocates per layer) until
     * one run has every allocation it needs */
    for (long n = 1; n < 1000000 && !ok; n = n < 60 ? n + 1 : n + n / 8) {
      xd_work_t w;
      memset(&w, 0, sizeof w);
      xd_error_t err;
      xd_error_clear(&err);
      xd_alloc_fail_after(n);
      int rc = small[c].decode(api, body, &w, &err);
      json_t *out = NULL;
      if (rc == XD_OK) {
        split |= w.n_parts > 1;
        out = xd_work_run_inline(&w, NULL, &err);
        w.ops->free(w.state);
      }
      xd_alloc_fail_after(0);
      if (out) {
        ok++;
      } else {
        failed++;
        CHECK_MSG(err.code != XD_OK, "%s: failed without an error code", small[c].name);
      }
      json_decref(out);
    }
    CHECK_MSG(ok > 0 && failed > 0 && split, "%s: %d ok, %d failed, split %d", small[c].name, ok, failed, split);
    json_decref(body);
    free(t);
  }
}

/* The real server with 1 and 2 workers answers every split request with the same bytes
 * as in process. */
TEST(workers_1_and_2_answer_the_same_bytes) {
  char *want[N_CASES];
  for (size_t c = 0; c < N_CASES; c++) {
    char *t = body_text(&cases[c]);
    want[c] = inline_bytes(cases[c].path, t);
    free(t);
  }
  for (int workers = 1; workers <= 2; workers++) {
    xd_server_t srv;
    const char *const args[] = {"--workers", workers == 1 ? "1" : "2", NULL};
    if (xd_server_start(&srv, args, NULL) != 0) {
      CHECK_MSG(0, "server did not start");
      break;
    }
    for (size_t c = 0; c < N_CASES; c++) {
      char *t = body_text(&cases[c]);
      xd_http_resp_t r;
      int ok = xd_http(srv.port, "POST", cases[c].path, "Content-Type: application/json\r\n", t, strlen(t), &r) == 0;
      CHECK_MSG(ok && r.status == 200, "%s, %d workers: status %d", cases[c].name, workers, ok ? r.status : -1);
      CHECK_MSG(ok && want[c] && r.body_len == strlen(want[c]) && !memcmp(r.body, want[c], r.body_len),
                "%s, %d workers: the bytes differ from the in-process answer", cases[c].name, workers);
      if (ok) xd_http_resp_free(&r);
      free(t);
    }
    CHECK(xd_server_stop(&srv) == 0);
  }
  for (size_t c = 0; c < N_CASES; c++) free(want[c]);
}

int main(void) {
  xd_blas_init();
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  xd_registry_new(&reg);
  xd_api_new(&cfg, reg, &api);
  CHECK(xd_api_load_dir(api, "models", quiet, NULL) >= 8);
  xd_api_set_ready(api, 1);
  json_t *g = json_load_file("tests/golden/image_explain/shapes.json", 0, NULL);
  const char *b64 = json_string_value(json_array_get(json_object_get(g, "images"), 0));
  CHECK(b64 != NULL);
  image_b64 = strdup(b64 ? b64 : "");
  json_decref(g);
  RUN(in_process_order_does_not_matter);
  RUN(split_equals_unsplit_within_rounding);
  RUN(text_split_equals_unsplit_within_rounding);
  RUN(split_jobs_survive_allocation_failures);
  RUN(workers_1_and_2_answer_the_same_bytes);
  free(image_b64);
  xd_api_free(api);
  xd_registry_free(reg);
  return TEST_REPORT();
}
