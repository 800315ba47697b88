/* test_text_explain.c — attributions for the demo text models (core/text_explain.h)
 * against PyTorch float64 references (tests/golden/graph/reviews_*.json, written by
 * tools/make_graph_models.py): input x gradient and saliency per token at the
 * token-embedding output; integrated gradients' completeness (Σ attributions = f(x) −
 * f(baseline)) for every baseline; occlusion equal to the probabilities of the occluded
 * texts evaluated one by one.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/bundle.h"
#include "core/alloc.h"
#include "core/text_explain.h"
#include "tests/test.h"

static const char *const models[] = {"reviews_bert", "reviews_gru"};

static xd_model_t *load(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "models/%s/model.json", name);
  xd_model_t *m = NULL;
  xd_error_t err;
  xd_error_clear(&err);
  if (xd_bundle_load_file(path, &m, NULL, &err) != XD_OK) fprintf(stderr, "  %s: %s: %s\n", path, err.field, err.text);
  return m;
}

static json_t *golden(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "tests/golden/graph/%s.json", name);
  return json_load_file(path, 0, NULL);
}

static int encode(const xd_model_t *m, const char *text, xd_tok_encoding_t *enc) {
  xd_error_t err;
  return xd_tokenizer_encode(xd_model_tokenizer(m), text, strlen(text), xd_model_max_length(m), enc, &err);
}

/* max |a-b| / max |b| */
static double rel(const double *a, const json_t *b, size_t n) {
  double d = 0, mx = 0;
  for (size_t i = 0; i < n; i++) {
    double v = json_number_value(json_array_get(b, i));
    d = fmax(d, fabs(a[i] - v));
    mx = fmax(mx, fabs(v));
  }
  return mx > 0 ? d / mx : d;
}

TEST(gradients_match_torch) {
  for (size_t mi = 0; mi < 2; mi++) {
    xd_model_t *m = load(models[mi]);
    json_t *gd = golden(models[mi]);
    CHECK(m && gd);
    if (!m || !gd) continue;
    size_t i;
    json_t *inst;
    json_array_foreach(json_object_get(gd, "instances"), i, inst) {
      xd_tok_encoding_t enc;
      CHECK(encode(m, json_string_value(json_object_get(inst, "text")), &enc) == XD_OK);
      json_t *ids = json_object_get(inst, "ids");
      CHECK(enc.n == json_array_size(ids));
      size_t t = (size_t)json_integer_value(json_object_get(inst, "target"));
      double *a = calloc(enc.n, sizeof *a);
      const struct {
        xd_grad_method_t m;
        const char *key;
      } cases[] = {{XD_GRAD_INPUT_X_GRADIENT, "gradient_x_embedding"}, {XD_GRAD_SALIENCY, "saliency"}};
      for (size_t c = 0; c < 2; c++) {
        xd_text_grad_opts_t o = {.method = cases[c].m, .output = XD_OUTPUT_PROBABILITY};
        xd_error_t err;
        int rc = xd_text_grad_explain(m, &o, &enc, t, i, a, NULL, NULL, &err);
        CHECK_MSG(rc == XD_OK, "%s: %s", err.field, err.text);
        double e = rel(a, json_object_get(inst, cases[c].key), enc.n);
        CHECK_MSG(e < 1e-6, "%s text %zu %s: relative error %g", models[mi], i, cases[c].key, e);
      }
      free(a);
      xd_tok_encoding_deinit(&enc);
    }
    json_decref(gd);
    xd_model_free(m);
  }
}

TEST(integrated_gradients_complete) {
  const char *texts[] = {"A great movie!", "The acting was superb, but the ending felt rather dull.",
                         "terrible waste of time"};
  double alpha[256], w[256];
  xd_error_t err;
  CHECK(xd_grad_quadrature(XD_GRAD_GAUSSLEGENDRE, 256, alpha, w, &err) == XD_OK);
  for (size_t mi = 0; mi < 2; mi++) {
    xd_model_t *m = load(models[mi]);
    CHECK(m != NULL);
    if (!m) continue;
    for (size_t i = 0; i < 3; i++) {
      xd_tok_encoding_t enc;
      CHECK(encode(m, texts[i], &enc) == XD_OK);
      double a[64], delta = 1;
      for (int b = XD_TEXT_BASE_PAD; b <= XD_TEXT_BASE_ZEROS; b++) {
        xd_text_grad_opts_t o = {.method = XD_GRAD_INTEGRATED, .output = XD_OUTPUT_PROBABILITY,
                                 .baseline = (xd_text_base_t)b, .steps = 256, .alpha = alpha, .weights = w};
        int rc = xd_text_grad_explain(m, &o, &enc, 0, i, a, &delta, NULL, &err);
        CHECK_MSG(rc == XD_OK, "%s: %s", err.field, err.text);
        double s = 0;
        for (size_t k = 0; k < enc.n; k++) s += fabs(a[k]);
        CHECK_MSG(fabs(delta) < 1e-3 * fmax(s, 1e-3), "%s text %zu baseline %s: delta %g (sum |a| %g)", models[mi],
                  i, xd_text_base_names[b], delta, s);
      }
      xd_tok_encoding_deinit(&enc);
    }
    xd_model_free(m);
  }
}

TEST(occlusion_equals_one_by_one) {
  for (size_t mi = 0; mi < 2; mi++) {
    xd_model_t *m = load(models[mi]);
    CHECK(m != NULL);
    if (!m) continue;
    xd_tok_encoding_t enc;
    CHECK(encode(m, "The acting was superb, but the ending felt dull", &enc) == XD_OK);
    int64_t pad = xd_tokenizer_pad_id(xd_model_tokenizer(m));
    for (int how = XD_TEXT_BASE_PAD; how <= XD_TEXT_BASE_DELETE; how++) {
      if (how == XD_TEXT_BASE_ZEROS) continue;
      double a[64], fx = 0, p[2], px[2];
      xd_error_t err;
      CHECK(xd_text_occlusion(m, &enc, 1, (xd_text_base_t)how, XD_OUTPUT_PROBABILITY, a, &fx, NULL, &err) == XD_OK);
      CHECK(xd_model_predict_text(m, &enc, 1, px, NULL, &err) == XD_OK);
      CHECK_NEAR(fx, px[1], 1e-6); /* float runs, batched differently */
      for (size_t k = 0; k < enc.n; k++) {
        int64_t ids[64];
        uint32_t ty[64];
        size_t n = 0;
        for (size_t j = 0; j < enc.n; j++) {
          if (j == k && how == XD_TEXT_BASE_DELETE) continue;
          ids[n] = j != k ? enc.ids[j] : how == XD_TEXT_BASE_PAD ? pad : xd_tokenizer_unk_id(xd_model_tokenizer(m));
          ty[n++] = 0;
        }
        xd_tok_encoding_t v = {.n = n, .ids = ids, .type_ids = ty};
        CHECK(xd_model_predict_text(m, &v, 1, p, NULL, &err) == XD_OK);
        CHECK_NEAR(a[k], px[1] - p[1], 1e-5);
      }
    }
    xd_tok_encoding_deinit(&enc);
    xd_model_free(m);
  }
}

int main(void) {
  RUN(gradients_match_torch);
  RUN(integrated_gradients_complete);
  RUN(occlusion_equals_one_by_one);
  TEST_REPORT();
}
