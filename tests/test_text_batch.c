/* test_text_batch.c — the batched evaluation of perturbed texts (core/text_lime.h's
 * xd_text_words_eval: every distinct text tokenized once, length-sorted padded batches
 * with an attention mask, equal-length groups without) against the row-by-row reference (each
 * perturbed text rendered, tokenized and predicted alone), and LIME's steps (sample, fit,
 * finish; what a request split over workers runs) against xd_text_lime_explain, and a
 * one-text LIME, SHAP or integrated-gradients request (split over the workers) answered
 * the same by 1 and 3 workers. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/bundle.h"
#include "core/alloc.h"
#include "core/gradient.h"
#include "core/text_explain.h"
#include "core/text_lime.h"
#include "core/tokenizer.h"
#include "tests/harness.h"
#include "tests/test.h"

static const char *const models[] = {"reviews_bert", "reviews_gru"};
static const char *const text = "The acting was superb, but the ending felt rather dull and the script was a waste.";

static xd_model_t *load(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "models/%s/model.json", name);
  xd_model_t *m = NULL;
  xd_error_t err;
  xd_error_clear(&err);
  if (xd_bundle_load_file(path, &m, NULL, &err) != XD_OK) fprintf(stderr, "  %s: %s: %s\n", path, err.field, err.text);
  return m;
}

/* P (n, K) of the perturbations Z, one text at a time. */
static int row_by_row(const xd_model_t *m, const xd_text_words_t *w, const uint8_t *Z, size_t n, const char *mask,
                      double *P, size_t *minlen, size_t *maxlen) {
  const xd_tokenizer_t *tok = xd_model_tokenizer(m);
  size_t len = strlen(text), K = xd_model_n_outputs(m);
  char *buf = malloc(len + w->n_pieces * (mask ? strlen(mask) : 0) + 1);
  int64_t fill = xd_tokenizer_pad_id(tok) >= 0 ? xd_tokenizer_pad_id(tok) : xd_tokenizer_unk_id(tok);
  uint32_t zero = 0;
  xd_error_t err;
  *minlen = SIZE_MAX;
  *maxlen = 0;
  for (size_t i = 0; i < n; i++) {
    size_t bl = xd_text_words_render(w, text, len, Z + i * w->d, mask, buf);
    xd_tok_encoding_t enc, use;
    if (xd_tokenizer_encode(tok, buf, bl, xd_model_max_length(m), &enc, &err) != XD_OK) return -1;
    use = enc;
    if (enc.n == 0) {
      use.n = 1;
      use.ids = &fill;
      use.type_ids = &zero;
    }
    *minlen = use.n < *minlen ? use.n : *minlen;
    *maxlen = use.n > *maxlen ? use.n : *maxlen;
    int rc = xd_model_predict_text(m, &use, 1, P + i * K, NULL, &err);
    xd_tok_encoding_deinit(&enc);
    if (rc != XD_OK) return -1;
  }
  free(buf);
  return 0;
}

TEST(batched_equals_row_by_row) {
  for (size_t mi = 0; mi < 2; mi++) {
    xd_model_t *m = load(models[mi]);
    CHECK(m != NULL);
    if (!m) continue;
    size_t K = xd_model_n_outputs(m), n = 700;
    xd_text_words_t w;
    xd_error_t err;
    CHECK(xd_text_words_split(text, strlen(text), 1, &w, &err) == XD_OK);
    xd_text_lime_opts_t o = {.num_samples = n, .seed = 3, .repeats = 1};
    uint8_t *Z = malloc(n * w.d);
    double *P = malloc(n * K * sizeof *P), *Q = malloc(n * K * sizeof *Q);
    CHECK(xd_text_lime_sample(&w, &o, 0, Z, &err) == XD_OK);
    memset(Z + (n - 1) * w.d, 0, w.d); /* one text left with no word at all */
    for (int masked = 0; masked < 2; masked++) {
      const char *mask = masked ? "UNKWORD" : NULL;
      size_t lo = 0, hi = 0;
      CHECK(xd_text_words_eval(m, &w, text, strlen(text), Z, n, mask, P, NULL, &err) == XD_OK);
      CHECK(row_by_row(m, &w, Z, n, mask, Q, &lo, &hi) == 0);
      if (!masked) CHECK_MSG(lo + 5 < hi, "%s: lengths %zu..%zu (the batches must pad or group)", models[mi], lo, hi);
      double worst = 0;
      for (size_t i = 0; i < n * K; i++) worst = fmax(worst, fabs(P[i] - Q[i]));
      CHECK_MSG(worst <= 2e-6, "%s mask %d: batched vs row by row differ by %g", models[mi], masked, worst);
      /* repeated rows (evaluated once) get their first occurrence's outputs */
      size_t dup = 0, same = 0;
      for (size_t i = 1; i < n; i++)
        for (size_t k = 0; k < i; k++)
          if (!memcmp(Z + i * w.d, Z + k * w.d, w.d)) {
            dup++;
            same += !memcmp(P + i * K, P + k * K, K * sizeof *P);
            break;
          }
      CHECK_MSG(dup > 10 && same == dup, "%s mask %d: %zu repeated rows, %zu with their first's outputs", models[mi],
                masked, dup, same);
      /* slices, as the parts of a split request evaluate them */
      size_t cut[4] = {0, 123, 456, n};
      for (int s = 0; s < 3; s++)
        CHECK(xd_text_words_eval(m, &w, text, strlen(text), Z + cut[s] * w.d, cut[s + 1] - cut[s], mask, Q + cut[s] * K,
                                 NULL, &err) == XD_OK);
      worst = 0;
      for (size_t i = 0; i < n * K; i++) worst = fmax(worst, fabs(P[i] - Q[i]));
      CHECK_MSG(worst <= 2e-6, "%s mask %d: sliced vs whole differ by %g", models[mi], masked, worst);
    }
    free(Z);
    free(P);
    free(Q);
    xd_text_words_deinit(&w);
    xd_model_free(m);
  }
}

/* sample + eval + fit + finish, repeat by repeat, gives xd_text_lime_explain's answer bit for bit. */
TEST(steps_equal_explain) {
  xd_model_t *m = load("reviews_gru");
  CHECK(m != NULL);
  if (!m) return;
  size_t K = xd_model_n_outputs(m), n = 600, R = 3, label = 1;
  xd_text_words_t w;
  xd_error_t err;
  CHECK(xd_text_words_split(text, strlen(text), 0, &w, &err) == XD_OK);
  xd_text_lime_opts_t o = {.num_samples = n, .num_features = 5, .kernel_width = 25, .seed = 11, .repeats = R};
  size_t d = w.d;
  xd_text_lime_out_t a = {.used = calloc(d, sizeof(size_t)), .coef = calloc(d, sizeof(double)), .sd = calloc(d, sizeof(double))};
  xd_text_lime_out_t b = {.used = calloc(d, sizeof(size_t)), .coef = calloc(d, sizeof(double)), .sd = calloc(d, sizeof(double))};
  double probs[8], *acc = calloc(xd_text_lime_acc_size(&w, 1), sizeof *acc), *P = malloc(n * K * sizeof *P);
  uint8_t *Z = malloc(n * d);
  CHECK(xd_text_lime_explain(m, &w, text, strlen(text), &o, &label, 1, probs, &a, NULL, &err) == XD_OK);
  for (size_t r = 0; r < R; r++) {
    CHECK(xd_text_lime_sample(&w, &o, r, Z, &err) == XD_OK);
    CHECK(xd_text_words_eval(m, &w, text, strlen(text), Z, n, NULL, P, NULL, &err) == XD_OK);
    CHECK(xd_text_lime_fit(&w, &o, K, Z, P, &label, 1, acc, &err) == XD_OK);
  }
  xd_text_lime_finish(&w, &o, acc, 1, &b);
  CHECK(a.n_used >= 5 && a.n_used == b.n_used); /* the union of every repeat's selection */
  CHECK(!memcmp(a.used, b.used, d * sizeof *a.used) && !memcmp(a.coef, b.coef, d * sizeof *a.coef) &&
        !memcmp(a.sd, b.sd, d * sizeof *a.sd));
  CHECK(a.intercept == b.intercept && a.score == b.score && a.local_pred == b.local_pred);
  free(a.used), free(a.coef), free(a.sd), free(b.used), free(b.coef), free(b.sd);
  free(acc);
  free(P);
  free(Z);
  xd_text_words_deinit(&w);
  xd_model_free(m);
}

/* POST body to a server started with args; the raw answer (malloc'd) or NULL. */
static char *answer_at(const char *path, const char *const *args, const char *body) {
  xd_server_t srv;
  if (xd_server_start(&srv, args, NULL) != 0) return NULL;
  xd_http_resp_t r;
  char *out = NULL;
  if (xd_http(srv.port, "POST", path, "Content-Type: application/json\r\n", body, strlen(body), &r) == 0) {
    if (r.status == 200) out = strdup(r.body);
    else fprintf(stderr, "  %d %.300s\n", r.status, r.body);
    xd_http_resp_free(&r);
  }
  CHECK(xd_server_stop(&srv) == 0);
  return out;
}

/* One text, 3,000 samples x 2 repeats: its slices go to every worker; the answer does not
 * depend on how many there are, and matches the one-piece core path. */
TEST(split_request_independent_of_workers) {
  char body[512];
  snprintf(body, sizeof body,
           "{\"model\":\"reviews_bert\",\"instance\":\"%s\",\"num_samples\":3000,\"repeats\":2,\"seed\":4,"
           "\"labels\":[1],\"num_features\":18}", text);
  const char *w1[] = {"--workers", "1", NULL}, *w3[] = {"--workers", "3", NULL};
  char *a = answer_at("/explain/lime", w1, body), *b = answer_at("/explain/lime", w3, body);
  CHECK(a && b && !strcmp(a, b));
  xd_model_t *m = load("reviews_bert");
  json_t *o = a ? json_loads(a, 0, NULL) : NULL;
  json_t *ws = json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(o, "explanations"), 0),
                                                              "labels"), 0), "weights");
  xd_text_words_t w;
  xd_error_t err;
  CHECK(m && xd_text_words_split(text, strlen(text), 1, &w, &err) == XD_OK);
  if (m && o) {
    size_t d = w.d, label = 1;
    xd_text_lime_opts_t lo = {.num_samples = 3000, .num_features = 18, .kernel_width = 25, .seed = 4, .repeats = 2};
    xd_text_lime_out_t q = {.used = calloc(d, sizeof(size_t)), .coef = calloc(d, sizeof(double)), .sd = calloc(d, sizeof(double))};
    double probs[8];
    CHECK(xd_text_lime_explain(m, &w, text, strlen(text), &lo, &label, 1, probs, &q, NULL, &err) == XD_OK);
    CHECK(json_array_size(ws) == q.n_used && q.n_used > 0);
    double worst = 0;
    for (size_t k = 0; k < json_array_size(ws); k++) {
      json_t *wk = json_array_get(ws, k);
      size_t f = (size_t)json_integer_value(json_object_get(wk, "feature_index"));
      worst = fmax(worst, f < d ? fabs(json_number_value(json_object_get(wk, "weight")) - q.coef[f]) : 1);
    }
    CHECK_MSG(worst <= 1e-6, "split request vs one-piece explain: weights differ by %g", worst);
    free(q.used), free(q.coef), free(q.sd);
  }
  xd_text_words_deinit(&w);
  json_decref(o);
  xd_model_free(m);
  free(a);
  free(b);
}

/* Kernel SHAP over the words of one text, its coalitions split over the workers: the
 * same answer with 1 and 3 workers, equal to the one-piece core path, efficient. */
TEST(split_shap_independent_of_workers) {
  char body[512];
  snprintf(body, sizeof body, "{\"model\":\"reviews_gru\",\"instance\":\"%s\",\"nsamples\":2000,\"seed\":9,\"target\":1}",
           text);
  const char *w1[] = {"--workers", "1", NULL}, *w3[] = {"--workers", "3", NULL};
  char *a = answer_at("/explain/shap", w1, body), *b = answer_at("/explain/shap", w3, body);
  CHECK(a && b && !strcmp(a, b));
  xd_model_t *m = load("reviews_gru");
  json_t *o = a ? json_loads(a, 0, NULL) : NULL;
  json_t *sv = json_array_get(json_object_get(o, "shap_values"), 0);
  xd_text_words_t w;
  xd_error_t err;
  CHECK(m && xd_text_words_split(text, strlen(text), 1, &w, &err) == XD_OK);
  if (m && o) {
    double *phi = calloc(w.d, sizeof *phi), ev = 0, fx = 0, worst = 0, sum = 0;
    CHECK(xd_text_shap_explain(m, &w, text, strlen(text), NULL, XD_SHAP_KERNEL, 2000, XD_SHAP_LINK_IDENTITY, 9, 0, 1, phi,
                               &ev, &fx, NULL, &err) == XD_OK);
    CHECK(json_array_size(sv) == w.d);
    for (size_t f = 0; f < w.d; f++) {
      double v = json_number_value(json_array_get(sv, f));
      worst = fmax(worst, fabs(v - phi[f]));
      sum += v;
    }
    CHECK_MSG(worst <= 1e-6, "split SHAP vs one-piece: %g", worst);
    double e = json_number_value(json_array_get(json_object_get(o, "expected_value"), 0));
    CHECK_NEAR(e + sum, fx, 1e-6);
    free(phi);
  }
  xd_text_words_deinit(&w);
  json_decref(o);
  xd_model_free(m);
  free(a);
  free(b);
}

/* Layer integrated gradients of one text, its 52 rows split over the workers: the same
 * answer with 1 and 3 workers, in either precision. In float64 it equals the one-piece
 * core path to 1e-12 (the slices add the same terms); in float32 the slices are separate,
 * smaller graph runs whose float rounding differs from one run's, so it equals the
 * one-piece path to float accuracy. */
TEST(split_ig_independent_of_workers) {
  xd_model_t *m = load("reviews_bert");
  xd_tok_encoding_t enc;
  xd_error_t err;
  CHECK(m && xd_tokenizer_encode(xd_model_tokenizer(m), text, strlen(text), xd_model_max_length(m), &enc, &err) == XD_OK);
  for (int p64 = 1; p64 >= 0; p64--) {
    char body[512];
    snprintf(body, sizeof body, "{\"model\":\"reviews_bert\",\"instance\":\"%s\",\"steps\":50,\"precision\":\"%s\"}", text,
             p64 ? "float64" : "float32");
    const char *w1[] = {"--workers", "1", NULL}, *w3[] = {"--workers", "3", NULL};
    char *a = answer_at("/explain/gradient", w1, body), *b = answer_at("/explain/gradient", w3, body);
    CHECK(a && b && !strcmp(a, b));
    json_t *o = a ? json_loads(a, 0, NULL) : NULL;
    json_t *at = json_array_get(json_object_get(o, "attributions"), 0);
    if (m && o) {
      double alpha[50], wq[50], *attr = calloc(enc.n, sizeof *attr), delta = 0, worst = 0, scale = 0;
      CHECK(xd_grad_quadrature(XD_GRAD_GAUSSLEGENDRE, 50, alpha, wq, &err) == XD_OK);
      xd_text_grad_opts_t go = {.method = XD_GRAD_INTEGRATED, .output = XD_OUTPUT_PROBABILITY, .baseline = XD_TEXT_BASE_PAD,
                                .steps = 50, .alpha = alpha, .weights = wq, .precision = p64 ? XD_DT_F64 : XD_DT_F32};
      size_t t = (size_t)json_integer_value(json_array_get(json_object_get(o, "targets"), 0));
      CHECK(xd_text_grad_explain(m, &go, &enc, t, 0, attr, &delta, NULL, &err) == XD_OK);
      CHECK(json_array_size(at) == enc.n);
      for (size_t k = 0; k < enc.n; k++) {
        worst = fmax(worst, fabs(json_number_value(json_array_get(at, k)) - attr[k]));
        scale = fmax(scale, fabs(attr[k]));
      }
      double tol = p64 ? 1e-12 : 1e-5 * scale;
      CHECK_MSG(worst <= tol, "%s split IG vs one-piece: %g (tolerance %g)", p64 ? "float64" : "float32", worst, tol);
      CHECK_NEAR(json_number_value(json_array_get(json_object_get(o, "convergence_delta"), 0)), delta, p64 ? 1e-12 : 1e-5 * scale);
      free(attr);
    }
    json_decref(o);
    free(a);
    free(b);
  }
  if (m) xd_tok_encoding_deinit(&enc);
  xd_model_free(m);
}

int main(void) {
  RUN(batched_equals_row_by_row);
  RUN(steps_equal_explain);
  RUN(split_request_independent_of_workers);
  RUN(split_shap_independent_of_workers);
  RUN(split_ig_independent_of_workers);
  return TEST_REPORT();
}
