/* test_graph_models.c — the graph engine on the three demo graph models against PyTorch's
 * float64 references (tests/golden/graph/, written by tools/make_graph_models.py).
 *
 * - shapes: probabilities of six held-out images (float and double runs, one batch),
 *   the gradient of the target probability with respect to the model input, and Grad-CAM's
 *   ingredients at xd_graph_last_conv (the activation fetched, its gradient).
 * - reviews_bert: the seven golden texts (token ids from the golden file) as ONE batch,
 *   right-padded with attention mask 0, so padding must not change any row; probabilities
 *   and the gradient with respect to the token-embedding output (xd_graph_embedding).
 * - reviews_gru: each text alone (the graph has no attention mask), same checks.
 * Double runs must agree with PyTorch's double to about 1e-9 (the references are written
 * with 9 to 12 significant digits); float runs to 1e-5.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/graph.h"
#include "core/mat.h"
#include "tests/test.h"

static xd_graph_t *load_graph(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  void *b = malloc((size_t)n);
  xd_graph_t *g = NULL;
  xd_error_t err;
  xd_error_clear(&err);
  if (b && fread(b, 1, (size_t)n, f) == (size_t)n && xd_graph_from_onnx(b, (size_t)n, &g, &err) != XD_OK)
    fprintf(stderr, "  %s: %s: %s\n", path, err.field, err.text);
  free(b);
  fclose(f);
  return g;
}

/* Flattens nested JSON arrays of numbers into out (capacity cap); returns the count. */
static size_t flatten(json_t *a, double *out, size_t cap) {
  if (json_is_number(a)) {
    if (cap) out[0] = json_number_value(a);
    return 1;
  }
  size_t n = 0, i;
  json_t *v;
  json_array_foreach(a, i, v) n += flatten(v, out + n, cap > n ? cap - n : 0);
  return n;
}

/* max |a - b| over n values, relative to max |b| (1 when b is all zeros). */
static double rel_err(const double *a, const double *b, size_t n) {
  double d = 0, m = 0;
  for (size_t i = 0; i < n; i++) {
    d = fmax(d, fabs(a[i] - b[i]));
    m = fmax(m, fabs(b[i]));
  }
  return d / (m > 0 ? m : 1);
}

typedef struct seed_ctx {
  const int *target;
  size_t k;
} seed_ctx_t;

/* d p[target] / d x: seed 1 at the golden target class of each row. */
static int seed_target(void *ctx, size_t row0, size_t n, const double *outv, double *seed) {
  const seed_ctx_t *s = ctx;
  memset(seed, 0, n * s->k * sizeof(double));
  for (size_t i = 0; i < n; i++) seed[i * s->k + (size_t)s->target[row0 + i]] = 1;
  return XD_OK;
}

TEST(shapes_against_torch) {
  json_t *gold = json_load_file("tests/golden/graph/shapes.json", 0, NULL);
  xd_graph_t *g = load_graph("models/shapes/model.onnx");
  CHECK(gold && g);
  if (!gold || !g) goto done;
  json_t *inst = json_object_get(gold, "instances"), *pre = json_object_get(gold, "input");
  size_t n = json_array_size(inst), row = 3 * 32 * 32;
  double scale = json_number_value(json_object_get(pre, "scale"));
  double *x = xd_malloc(n * row * sizeof(double)), *probs = xd_malloc(n * 3 * sizeof(double));
  double *grad = xd_malloc(n * row * sizeof(double)), *want = xd_malloc(row * sizeof(double));
  int target[16];
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(inst, i);
    CHECK(flatten(json_object_get(e, "pixels"), x + i * row, row) == row);
    for (size_t c = 0; c < 3; c++) {
      double mean = json_number_value(json_array_get(json_object_get(pre, "mean"), c));
      double std = json_number_value(json_array_get(json_object_get(pre, "std"), c));
      for (size_t p = 0; p < 32 * 32; p++) x[i * row + c * 1024 + p] = (x[i * row + c * 1024 + p] * scale - mean) / std;
    }
    target[i] = (int)json_integer_value(json_object_get(e, "target"));
  }
  xd_tensor_t in = {XD_DT_F64, 4, {(int64_t)n, 3, 32, 32}, x};
  xd_error_t err;
  for (int prec = 0; prec < 2; prec++) { /* float, then double */
    xd_graph_run_t r;
    memset(&r, 0, sizeof r);
    r.inputs = &in, r.precision = prec ? XD_DT_F64 : XD_DT_F32, r.out = probs;
    CHECK(xd_graph_run(g, &r, &err) == XD_OK);
    for (size_t i = 0; i < n; i++) {
      double p[3];
      flatten(json_object_get(json_array_get(inst, i), "probabilities"), p, 3);
      for (int k = 0; k < 3; k++) CHECK_NEAR(probs[i * 3 + k], p[k], prec ? 1e-9 : 1e-5);
    }
  }
  /* the input gradient of the target probability, one double run for the batch */
  seed_ctx_t sc = {target, 3};
  xd_graph_run_t r;
  memset(&r, 0, sizeof r);
  r.inputs = &in, r.precision = XD_DT_F64, r.out = probs, r.wrt = xd_graph_input(g, 0)->name, r.grad = grad;
  r.seed_fn = seed_target, r.seed_ctx = &sc;
  CHECK(xd_graph_run(g, &r, &err) == XD_OK);
  for (size_t i = 0; i < n; i++) {
    CHECK(flatten(json_object_get(json_array_get(inst, i), "gradient"), want, row) == row);
    double e = rel_err(grad + i * row, want, row);
    CHECK_MSG(e < 1e-7, "image %zu: input gradient off by %g (relative to its largest entry)", i, e);
  }
  /* Grad-CAM's ingredients at the default layer */
  const char *layer = xd_graph_last_conv(g);
  json_t *cam0 = json_object_get(json_array_get(inst, 0), "gradcam");
  CHECK(layer && strcmp(layer, json_string_value(json_object_get(cam0, "layer"))) == 0);
  if (layer) {
    size_t lr = 64 * 8 * 8;
    double *act = xd_malloc(n * lr * sizeof(double)), *lg = xd_malloc(n * lr * sizeof(double));
    double *w = xd_malloc(lr * sizeof(double));
    memset(&r, 0, sizeof r);
    r.inputs = &in, r.precision = XD_DT_F64, r.out = probs, r.fetch = layer, r.fetch_out = act;
    r.wrt = layer, r.grad = lg, r.seed_fn = seed_target, r.seed_ctx = &sc;
    CHECK(xd_graph_run(g, &r, &err) == XD_OK);
    for (size_t i = 0; i < n; i++) {
      json_t *cam = json_object_get(json_array_get(inst, i), "gradcam");
      if (!cam) continue;
      CHECK(flatten(json_object_get(cam, "activation"), w, lr) == lr);
      CHECK_MSG(rel_err(act + i * lr, w, lr) < 1e-7, "image %zu: activation", i);
      CHECK(flatten(json_object_get(cam, "gradient"), w, lr) == lr);
      CHECK_MSG(rel_err(lg + i * lr, w, lr) < 1e-7, "image %zu: layer gradient off by %g", i,
                rel_err(lg + i * lr, w, lr));
    }
    xd_free(act), xd_free(lg), xd_free(w);
  }
  xd_free(x), xd_free(probs), xd_free(grad), xd_free(want);
done:
  xd_graph_free(g);
  json_decref(gold);
}

/* The text models: `batched` runs every text in one right-padded batch with an attention
 * mask; otherwise each text alone. */
static void text_model(const char *golden, const char *onnx, int batched) {
  json_t *gold = json_load_file(golden, 0, NULL);
  xd_graph_t *g = load_graph(onnx);
  CHECK(gold && g);
  if (!gold || !g) goto done;
  json_t *inst = json_object_get(gold, "instances");
  size_t n = json_array_size(inst), T = 0, d = 0;
  const char *emb = xd_graph_embedding(g, NULL, NULL, &d);
  CHECK(emb && strcmp(emb, json_string_value(json_object_get(gold, "embedding_tensor"))) == 0);
  if (!emb) goto done;
  for (size_t i = 0; i < n; i++) {
    size_t t = json_array_size(json_object_get(json_array_get(inst, i), "ids"));
    T = t > T ? t : T;
  }
  int64_t *ids = xd_calloc(n * T, sizeof(int64_t)), *mask = xd_calloc(n * T, sizeof(int64_t));
  double *probs = xd_malloc(n * 2 * sizeof(double)), *grad = xd_malloc(n * T * d * sizeof(double));
  double *want = xd_malloc(T * d * sizeof(double));
  int target[16];
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(inst, i), *v;
    size_t j;
    json_array_foreach(json_object_get(e, "ids"), j, v) ids[i * T + j] = json_integer_value(v), mask[i * T + j] = 1;
    target[i] = (int)json_integer_value(json_object_get(e, "target"));
  }
  xd_error_t err;
  for (size_t b = 0; b < (batched ? 1 : n); b++) { /* one batch, or one run per text */
    size_t rows = batched ? n : 1, len = batched ? T : json_array_size(json_object_get(json_array_get(inst, b), "ids"));
    int64_t *bi = ids + b * T, *bm = mask + b * T; /* alone: row b's first len ids */
    xd_tensor_t in[2] = {{XD_DT_I64, 2, {(int64_t)rows, (int64_t)len}, bi}, {XD_DT_I64, 2, {(int64_t)rows, (int64_t)len}, bm}};
    seed_ctx_t sc = {target + b, 2};
    for (int prec = 0; prec < 2; prec++) {
      xd_graph_run_t r;
      memset(&r, 0, sizeof r);
      r.inputs = in, r.precision = prec ? XD_DT_F64 : XD_DT_F32, r.out = probs;
      if (prec) r.wrt = emb, r.grad = grad, r.seed_fn = seed_target, r.seed_ctx = &sc;
      int rc = xd_graph_run(g, &r, &err);
      CHECK_MSG(rc == XD_OK, "%s: %s: %s", onnx, err.field, err.text);
      if (rc != XD_OK) continue;
      for (size_t i = 0; i < rows; i++) {
        json_t *e = json_array_get(inst, b + i);
        double p[2];
        flatten(json_object_get(e, "probabilities"), p, 2);
        for (int k = 0; k < 2; k++) CHECK_NEAR(probs[i * 2 + k], p[k], prec ? 1e-9 : 1e-5);
        if (!prec) continue;
        size_t t = json_array_size(json_object_get(e, "ids"));
        CHECK(flatten(json_object_get(e, "gradient"), want, T * d) == t * d);
        double er = rel_err(grad + i * len * d, want, t * d);
        CHECK_MSG(er < 1e-7, "%s text %zu: embedding gradient off by %g", onnx, b + i, er);
      }
    }
  }
  xd_free(ids), xd_free(mask), xd_free(probs), xd_free(grad), xd_free(want);
done:
  xd_graph_free(g);
  json_decref(gold);
}

TEST(reviews_bert_padded_batch_against_torch) {
  text_model("tests/golden/graph/reviews_bert.json", "models/reviews_bert/model.onnx", 1);
}

TEST(reviews_gru_one_text_at_a_time_against_torch) {
  text_model("tests/golden/graph/reviews_gru.json", "models/reviews_gru/model.onnx", 0);
}

int main(void) {
  xd_blas_init();
  RUN(shapes_against_torch);
  RUN(reviews_bert_padded_batch_against_torch);
  RUN(reviews_gru_one_text_at_a_time_against_torch);
  return TEST_REPORT();
}
