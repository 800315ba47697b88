/* test_model.c — bundle loading (good and broken bundles), the dense forward pass against
 * its naive twin, the backward pass against finite differences for every activation,
 * background statistics and predictions against the goldens made by tools/make_models.py. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "api/bundle.h"
#include "core/alloc.h"
#include "core/mat.h"
#include "core/rng.h"
#include "tests/test.h"

static const char *demo[] = {"iris", "breast_cancer", "wine", "diabetes", "credit"};

static xd_model_t *load_demo(const char *name) {
  char p[256];
  snprintf(p, sizeof p, "models/%s/model.json", name);
  xd_model_t *m = NULL;
  xd_error_t err;
  if (xd_bundle_load_file(p, &m, NULL, &err) != XD_OK) fprintf(stderr, "load %s: %s: %s\n", name, err.field, err.text);
  return m;
}

/* ---- good and broken bundles --------------------------------------------------------- */

static const char *base_bundle =
    "{\"format\":\"explaind.model/v1\",\"task\":\"classification\","
    "\"features\":[{\"name\":\"a\"},{\"name\":\"b\",\"type\":\"numeric\"},"
    "{\"name\":\"color\",\"type\":\"categorical\",\"categories\":[\"red\",\"green\",\"blue\"]}],"
    "\"classes\":[\"no\",\"yes\"],"
    "\"preprocess\":{\"mean\":[1.0,2.0,0],\"scale\":[2.0,0.5,1]},"
    "\"layers\":[{\"weights\":[[0.1,-0.2,0.3,0.0,0.5],[0.2,0.1,-0.4,0.3,0.0],[-0.3,0.2,0.1,0.1,0.2]],"
    "\"bias\":[0.0,0.1,-0.1],\"activation\":\"tanh\"},"
    "{\"weights\":[[1.0,-1.0,0.5],[0.5,0.2,-0.3]],\"bias\":[0.0,0.0],\"activation\":\"softmax\"}],"
    "\"background\":{\"rows\":[[1,2,\"red\"],[3,1,\"blue\"],[0.5,2.5,1]],\"targets\":[\"no\",\"yes\",1]},"
    "\"x-note\":\"free\"}";

static int decode_str(const char *s, xd_model_t **m, xd_error_t *err) {
  return xd_bundle_decode(s, strlen(s), NULL, m, err);
}

TEST(base_bundle_loads) {
  xd_model_t *m = NULL;
  xd_error_t err;
  CHECK_MSG(decode_str(base_bundle, &m, &err) == XD_OK, "%s: %s", err.field, err.text);
  if (!m) return;
  CHECK(xd_model_n_features(m) == 3 && xd_model_n_inputs(m) == 5 && xd_model_n_outputs(m) == 2);
  CHECK(xd_model_input_offset(m, 2) == 2 && xd_model_input_width(m, 2) == 3);
  CHECK(xd_model_background(m)->n == 3 && xd_model_background(m)->y[2] == 1);
  double x[3] = {3, 1, 2}, e[5];
  xd_model_encode_d(m, x, 1, e);
  CHECK(e[0] == 1 && e[1] == -2 && e[2] == 0 && e[3] == 0 && e[4] == 1);
  xd_model_free(m);
}

typedef struct mutation {
  const char *path; /* where to change the base bundle (JSON pointer-ish, '/' separated) */
  const char *value; /* new JSON value, or NULL to delete */
  const char *field; /* the error's expected field */
} mutation_t;

static const mutation_t broken[] = {
    {"format", "\"explaind.model/v2\"", "format"},
    {"task", "\"ranking\"", "task"},
    {"layerz", "[]", "layerz"},
    {"features", "[]", "features"},
    {"features/1/name", NULL, "features[1].name"},
    {"features/2/categories", NULL, "features[2].categories"},
    {"features/2/type", "\"ordinal\"", "features[2].type"},
    {"features/1/name", "\"a\"", "features[1].name"},
    {"features/0/unit", "\"cm\"", "features[0].unit"},
    {"classes", NULL, "classes"},
    {"preprocess/mean", "[1.0, 2.0]", "preprocess.mean"},
    {"preprocess/scale/0", "0", "preprocess.scale[0]"},
    {"preprocess/scale/2", "2", "preprocess.scale[2]"},
    {"layers/0/weights/1", "[0.2,0.1,-0.4,0.3]", "layers[0].weights[1]"},
    {"layers/1/weights", "[[1,1],[1,1]]", "layers[1].weights"},
    {"layers/0/bias", "[0.0,0.1]", "layers[0].bias"},
    {"layers/1/activation", "\"swish\"", "layers[1].activation"},
    {"layers/0/activation", "\"softmax\"", "layers[0].activation"},
    {"classes", "\"no\"", "classes"},
    {"layers/1/bias", "[0,0,0]", "layers[1].bias"},
    {"layers/0/weights/0/2", "\"x\"", "layers[0].weights[0][2]"},
    {"layers", "[]", "layers"},
    {"background/rows/1", "[1,2]", "background.rows[1]"},
    {"background/rows/0/2", "\"purple\"", "background.rows[0][2]"},
    {"background/rows/0/2", "7", "background.rows[0][2]"},
    {"background/targets/0", "\"maybe\"", "background.targets[0]"},
    {"background/csv", "\"bg.csv\"", "background"},
    {"background/targets", "[0]", "background.targets"},
    {"onnx", "\"model.onnx\"", "onnx"},
    {"layers/1/activation", "\"relu\"", "layers[1].activation"},
};

/* Applies a mutation to a parsed bundle: walks objects by key and arrays by index. */
static int mutate(json_t *root, const mutation_t *mu) {
  char path[256];
  snprintf(path, sizeof path, "%s", mu->path);
  json_t *cur = root;
  char *save = NULL, *tok = strtok_r(path, "/", &save);
  while (tok) {
    char *next = strtok_r(NULL, "/", &save);
    int is_index = tok[0] >= '0' && tok[0] <= '9';
    if (!next) {
      if (!mu->value) return is_index ? json_array_remove(cur, (size_t)atoi(tok)) : json_object_del(cur, tok);
      json_t *v = json_loads(mu->value, JSON_DECODE_ANY, NULL);
      if (!v) return -1;
      return is_index ? json_array_set_new(cur, (size_t)atoi(tok), v) : json_object_set_new(cur, tok, v);
    }
    cur = is_index ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    if (!cur) return -1;
    tok = next;
  }
  return -1;
}

TEST(broken_bundles_name_the_path) {
  CHECK(sizeof broken / sizeof *broken >= 15);
  for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
    json_t *root = json_loads(base_bundle, 0, NULL);
    CHECK_MSG(mutate(root, &broken[i]) == 0, "mutation %zu (%s) did not apply", i, broken[i].path);
    char *s = json_dumps(root, 0);
    xd_model_t *m = NULL;
    xd_error_t err;
    xd_error_clear(&err);
    int rc = decode_str(s, &m, &err);
    CHECK_MSG(rc != XD_OK && m == NULL, "mutation %s=%s was accepted", broken[i].path, broken[i].value);
    CHECK_MSG(strcmp(err.field, broken[i].field) == 0, "mutation %s: field '%s', want '%s' (%s)", broken[i].path,
              err.field, broken[i].field, err.text);
    CHECK(rc == XD_EFORMAT || rc == XD_EUNSUPPORTED);
    xd_model_free(m);
    free(s);
    json_decref(root);
  }
}

TEST(not_json_and_wrong_shapes) {
  xd_model_t *m = NULL;
  xd_error_t err;
  CHECK(decode_str("{\"format\": ", &m, &err) == XD_EFORMAT);
  CHECK(decode_str("[1,2]", &m, &err) == XD_EFORMAT);
  CHECK(decode_str("{\"format\":\"explaind.model/v1\",\"format\":\"x\"}", &m, &err) == XD_EFORMAT);
  CHECK(m == NULL);
}

TEST(demo_bundles_load_with_background) {
  for (size_t i = 0; i < 5; i++) {
    xd_model_t *m = load_demo(demo[i]);
    CHECK_MSG(m != NULL, "%s", demo[i]);
    if (!m) continue;
    CHECK(xd_model_background(m)->n > 0 && xd_model_background(m)->y != NULL);
    CHECK(xd_model_stats(m) != NULL);
    xd_model_free(m);
  }
}

/* ---- goldens ------------------------------------------------------------------------------ */

TEST(predictions_match_training_script) {
  for (size_t i = 0; i < 5; i++) {
    xd_model_t *m = load_demo(demo[i]);
    char p[256];
    snprintf(p, sizeof p, "tests/golden/predict_%s.json", demo[i]);
    json_t *g = json_load_file(p, 0, NULL);
    CHECK_MSG(m && g, "%s", demo[i]);
    if (!m || !g) {
      xd_model_free(m);
      json_decref(g);
      continue;
    }
    json_t *inst = json_object_get(g, "instances");
    size_t n = json_array_size(inst), d = xd_model_n_features(m), k = xd_model_n_outputs(m);
    double *X = xd_malloc(n * d * sizeof *X), *out = xd_malloc(n * k * sizeof *out);
    const xd_feature_t *fs = xd_model_features(m);
    for (size_t r = 0; r < n; r++)
      for (size_t j = 0; j < d; j++) {
        json_t *v = json_array_get(json_array_get(inst, r), j);
        X[r * d + j] = json_is_string(v) ? (double)xd_feature_category(&fs[j], json_string_value(v)) : json_number_value(v);
      }
    xd_error_t err;
    CHECK(xd_model_predict(m, X, n, out, NULL, &err) == XD_OK);
    if (xd_model_task(m) == XD_TASK_CLASSIFICATION) {
      json_t *pr = json_object_get(g, "probabilities");
      for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < k; c++)
          CHECK_NEAR(out[r * k + c], json_number_value(json_array_get(json_array_get(pr, r), c)), 1e-5);
    } else {
      json_t *pr = json_object_get(g, "predictions");
      for (size_t r = 0; r < n; r++) CHECK_CLOSE(out[r], json_number_value(json_array_get(pr, r)), 1e-5, 1e-5);
    }
    /* The double-precision gradient path gives the same outputs to ~1e-12. */
    size_t ni = xd_model_n_inputs(m);
    double *E = xd_malloc(n * ni * sizeof *E), *G = xd_malloc(n * ni * sizeof *G), *all = xd_malloc(n * k * sizeof *all);
    xd_model_encode_d(m, X, n, E);
    CHECK(xd_model_gradient(m, E, n, NULL, XD_OUTPUT_PROBABILITY, NULL, G, all, NULL, &err) == XD_OK);
    if (xd_model_task(m) == XD_TASK_CLASSIFICATION) {
      json_t *pr = json_object_get(g, "probabilities");
      for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < k; c++)
          CHECK_NEAR(all[r * k + c], json_number_value(json_array_get(json_array_get(pr, r), c)), 1e-11);
    } else {
      json_t *pr = json_object_get(g, "predictions");
      for (size_t r = 0; r < n; r++) CHECK_CLOSE(all[r], json_number_value(json_array_get(pr, r)), 1e-11, 1e-11);
    }
    xd_free(E), xd_free(G), xd_free(all), xd_free(X), xd_free(out);
    json_decref(g);
    xd_model_free(m);
  }
}

static void check_bins(const xd_bins_t *b, const json_t *edges, const json_t *bins, const char *what) {
  size_t ne = json_array_size(edges);
  CHECK_MSG(b->n_edges == ne, "%s: %zu edges, golden %zu", what, b->n_edges, ne);
  if (b->n_edges != ne) return;
  for (size_t e = 0; e < ne; e++) CHECK_CLOSE(b->edges[e], json_number_value(json_array_get(edges, e)), 1e-12, 1e-12);
  for (size_t k = 0; k <= ne; k++) {
    CHECK(b->count[k] == (size_t)json_integer_value(json_array_get(json_object_get(bins, "count"), k)));
    CHECK_CLOSE(b->mean[k], json_number_value(json_array_get(json_object_get(bins, "mean"), k)), 1e-10, 1e-12);
    CHECK_CLOSE(b->std[k], json_number_value(json_array_get(json_object_get(bins, "std"), k)), 1e-9, 1e-12);
    CHECK_CLOSE(b->min[k], json_number_value(json_array_get(json_object_get(bins, "min"), k)), 1e-12, 1e-12);
    CHECK_CLOSE(b->max[k], json_number_value(json_array_get(json_object_get(bins, "max"), k)), 1e-12, 1e-12);
  }
}

TEST(background_stats_match_numpy) {
  for (size_t i = 0; i < 5; i++) {
    xd_model_t *m = load_demo(demo[i]);
    char p[256];
    snprintf(p, sizeof p, "tests/golden/stats_%s.json", demo[i]);
    json_t *g = json_load_file(p, 0, NULL);
    CHECK(m && g);
    if (!m || !g) {
      xd_model_free(m);
      json_decref(g);
      continue;
    }
    const xd_stats_t *st = xd_model_stats(m);
    json_t *fs = json_object_get(g, "features");
    CHECK(st->d == json_array_size(fs));
    for (size_t j = 0; j < st->d && j < json_array_size(fs); j++) {
      json_t *f = json_array_get(fs, j);
      const xd_stats_feature_t *s = &st->f[j];
      if (strcmp(json_string_value(json_object_get(f, "type")), "categorical") == 0) {
        json_t *fr = json_object_get(f, "frequencies");
        for (size_t k = 0; k < json_array_size(fr); k++)
          CHECK_NEAR(s->cat_freq[k], json_number_value(json_array_get(fr, k)), 1e-12);
        continue;
      }
      CHECK_CLOSE(s->mean, json_number_value(json_object_get(f, "mean")), 1e-12, 1e-12);
      CHECK_CLOSE(s->std, json_number_value(json_object_get(f, "std")), 1e-10, 1e-12);
      CHECK(s->min == json_number_value(json_object_get(f, "min")));
      CHECK(s->max == json_number_value(json_object_get(f, "max")));
      check_bins(&s->bins[XD_DISC_QUARTILE], json_object_get(f, "quartiles"), json_object_get(f, "quartile_bins"), "quartile");
      check_bins(&s->bins[XD_DISC_DECILE], json_object_get(f, "deciles"), json_object_get(f, "decile_bins"), "decile");
    }
    json_decref(g);
    xd_model_free(m);
  }
}

/* ---- kernels ---------------------------------------------------------------------------- */

TEST(dense_forward_matches_naive_on_awkward_shapes) {
  static const size_t sh[][3] = {{1, 1, 1}, {1, 30, 64}, {7, 1, 5}, {5, 9, 1}, {33, 17, 13}, {1000, 30, 64}};
  xd_rng_t r;
  xd_rng_seed(&r, 11);
  for (size_t s = 0; s < sizeof sh / sizeof *sh; s++) {
    size_t n = sh[s][0], in = sh[s][1], out = sh[s][2];
    double *w = xd_malloc(in * out * 8), *b = xd_malloc(out * 8);
    for (size_t i = 0; i < in * out; i++) w[i] = xd_rng_normal(&r);
    for (size_t i = 0; i < out; i++) b[i] = xd_rng_normal(&r);
    for (int a = XD_ACT_IDENTITY; a <= XD_ACT_GELU; a++) {
      xd_dense_t L;
      CHECK(xd_dense_init(&L, in, out, (xd_act_t)a, w, b) == 0);
      float *X = xd_malloc(n * in * 4), *Z1 = xd_malloc(n * out * 4), *Z2 = xd_malloc(n * out * 4);
      for (size_t i = 0; i < n * in; i++) X[i] = (float)xd_rng_normal(&r);
      xd_dense_forward_f(&L, X, n, Z1, 1);
      xd_dense_forward_f_naive(&L, X, n, Z2, 1);
      for (size_t i = 0; i < n * out; i++) CHECK_CLOSE(Z1[i], Z2[i], 1e-5, 1e-5);
      xd_free(X), xd_free(Z1), xd_free(Z2);
      xd_dense_deinit(&L);
    }
    xd_free(w), xd_free(b);
  }
}

/* A 4 -> 5 -> 3 -> k network with hidden activation a and the given output layer. */
static xd_model_t *small_net(xd_act_t a, xd_task_t task, xd_act_t out_act, size_t k, uint64_t seed) {
  xd_rng_t r;
  xd_rng_seed(&r, seed);
  xd_model_spec_t s;
  memset(&s, 0, sizeof s);
  s.task = task;
  s.n_features = 4;
  s.features = xd_calloc(4, sizeof *s.features);
  for (int j = 0; j < 4; j++) {
    char nm[24];
    snprintf(nm, sizeof nm, "f%d", j);
    s.features[j].name = xd_strdup(nm);
  }
  if (task == XD_TASK_CLASSIFICATION) {
    s.n_classes = out_act == XD_ACT_SIGMOID ? 2 : k;
    s.classes = xd_calloc(s.n_classes, sizeof *s.classes);
    for (size_t c = 0; c < s.n_classes; c++) {
      char nm[24];
      snprintf(nm, sizeof nm, "c%zu", c);
      s.classes[c] = xd_strdup(nm);
    }
  }
  size_t dims[4] = {4, 5, 3, k};
  s.n_layers = 3;
  s.layers = xd_calloc(3, sizeof *s.layers);
  for (int l = 0; l < 3; l++) {
    xd_layer_spec_t *L = &s.layers[l];
    L->in = dims[l];
    L->out = dims[l + 1];
    L->act = l == 2 ? out_act : a;
    L->weights = xd_malloc(L->in * L->out * 8);
    L->bias = xd_malloc(L->out * 8);
    for (size_t i = 0; i < L->in * L->out; i++) L->weights[i] = xd_rng_normal(&r);
    for (size_t i = 0; i < L->out; i++) L->bias[i] = 0.5 * xd_rng_normal(&r);
  }
  xd_model_t *m = NULL;
  xd_error_t err;
  if (xd_model_new(&s, &m, &err) != XD_OK) fprintf(stderr, "small_net: %s: %s\n", err.field, err.text);
  return m;
}

/* Central differences of output t at x in encoded space vs xd_model_gradient. */
static void check_fd(const xd_model_t *m, size_t t, xd_output_kind_t kind, const char *what) {
  xd_rng_t r;
  xd_rng_seed(&r, 99);
  size_t ni = xd_model_n_inputs(m);
  for (int trial = 0; trial < 5; trial++) {
    double x[4], G[4], xp[4], f0, fp, fm;
    for (size_t i = 0; i < ni; i++) x[i] = xd_rng_normal(&r);
    xd_error_t err;
    CHECK(xd_model_gradient(m, x, 1, &t, kind, &f0, G, NULL, NULL, &err) == XD_OK);
    for (size_t i = 0; i < ni; i++) {
      const double h = 1e-6;
      memcpy(xp, x, sizeof x);
      xp[i] = x[i] + h;
      double g[4];
      xd_model_gradient(m, xp, 1, &t, kind, &fp, g, NULL, NULL, &err);
      xp[i] = x[i] - h;
      xd_model_gradient(m, xp, 1, &t, kind, &fm, g, NULL, NULL, &err);
      double fd = (fp - fm) / (2 * h);
      CHECK_MSG(fabs(fd - G[i]) <= 1e-6 * (1 + fabs(fd)), "%s input %zu: fd %.10g analytic %.10g", what, i, fd, G[i]);
    }
  }
}

TEST(backward_matches_finite_differences_for_every_activation) {
  /* relu and leaky_relu have kinks; random normal points miss them almost surely. */
  for (int a = XD_ACT_IDENTITY; a <= XD_ACT_GELU; a++) {
    xd_model_t *m = small_net((xd_act_t)a, XD_TASK_REGRESSION, XD_ACT_IDENTITY, 1, 5 + a);
    CHECK(m != NULL);
    if (!m) continue;
    check_fd(m, 0, XD_OUTPUT_PROBABILITY, xd_act_name((xd_act_t)a));
    xd_model_free(m);
    /* the same activation as a regression output */
    m = small_net(XD_ACT_TANH, XD_TASK_REGRESSION, (xd_act_t)a, 1, 50 + a);
    if (m) check_fd(m, 0, XD_OUTPUT_PROBABILITY, "output activation");
    xd_model_free(m);
  }
  xd_model_t *m = small_net(XD_ACT_TANH, XD_TASK_CLASSIFICATION, XD_ACT_SOFTMAX, 3, 7);
  for (size_t t = 0; t < 3; t++) {
    check_fd(m, t, XD_OUTPUT_PROBABILITY, "softmax probability");
    check_fd(m, t, XD_OUTPUT_LOGIT, "softmax logit");
  }
  xd_model_free(m);
  m = small_net(XD_ACT_SOFTPLUS, XD_TASK_CLASSIFICATION, XD_ACT_SIGMOID, 1, 8);
  for (size_t t = 0; t < 2; t++) {
    check_fd(m, t, XD_OUTPUT_PROBABILITY, "sigmoid probability");
    check_fd(m, t, XD_OUTPUT_LOGIT, "sigmoid logit");
  }
  xd_model_free(m);
}

TEST(saturated_softmax_keeps_its_digits) {
  /* One linear layer, 2-class softmax, logits (0, z) with z = 40: p1 = 1 - 4.2e-18.
   * dp1/dz = p0*p1 must come out as ~4.25e-18, not 0 as 1 - p1 would give. */
  xd_model_spec_t s;
  memset(&s, 0, sizeof s);
  s.task = XD_TASK_CLASSIFICATION;
  s.n_features = 1;
  s.features = xd_calloc(1, sizeof *s.features);
  s.features[0].name = xd_strdup("x");
  s.n_classes = 2;
  s.classes = xd_calloc(2, sizeof(char *));
  s.classes[0] = xd_strdup("a");
  s.classes[1] = xd_strdup("b");
  s.n_layers = 1;
  s.layers = xd_calloc(1, sizeof *s.layers);
  s.layers[0] = (xd_layer_spec_t){1, 2, xd_calloc(2, 8), xd_calloc(2, 8), XD_ACT_SOFTMAX};
  s.layers[0].weights[1] = 1;
  xd_model_t *m;
  xd_error_t err;
  CHECK(xd_model_new(&s, &m, &err) == XD_OK);
  double x = 40, f, g;
  size_t t = 1;
  CHECK(xd_model_gradient(m, &x, 1, &t, XD_OUTPUT_PROBABILITY, &f, &g, NULL, NULL, &err) == XD_OK);
  long double p0 = 1.0L / (1.0L + expl(40.0L));
  long double truth = p0 * (1 - p0);
  CHECK_CLOSE(g, (double)truth, 1e-12, 0);
  t = 0;
  CHECK(xd_model_gradient(m, &x, 1, &t, XD_OUTPUT_PROBABILITY, &f, &g, NULL, NULL, &err) == XD_OK);
  CHECK_CLOSE(f, (double)p0, 1e-12, 0);
  CHECK_CLOSE(g, -(double)truth, 1e-12, 0);
  xd_model_free(m);
}

TEST(predict_batches_equal_rows_one_by_one) {
  xd_model_t *m = load_demo("breast_cancer");
  CHECK(m != NULL);
  if (!m) return;
  /* More rows than one internal batch, so the chunking is exercised too. */
  size_t n = XD_MODEL_BATCH + 37, d = xd_model_n_features(m);
  const xd_dataset_t *bg = xd_model_background(m);
  double *X = xd_malloc(n * d * 8), *out = xd_malloc(n * 2 * 8), one[2];
  for (size_t i = 0; i < n; i++) memcpy(X + i * d, bg->X + (i % bg->n) * d, d * 8);
  xd_error_t err;
  CHECK(xd_model_predict(m, X, n, out, NULL, &err) == XD_OK);
  for (size_t i = 0; i < n; i += 997) {
    xd_model_predict(m, X + i * d, 1, one, NULL, &err);
    CHECK_NEAR(out[i * 2 + 1], one[1], 1e-6);
  }
  atomic_int flag = 1;
  xd_cancel_t c = {&flag, 0};
  CHECK(xd_model_predict(m, X, n, out, &c, &err) == XD_ECANCELED);
  xd_free(X), xd_free(out);
  xd_model_free(m);
}

int main(void) {
  xd_blas_init();
  RUN(base_bundle_loads);
  RUN(broken_bundles_name_the_path);
  RUN(not_json_and_wrong_shapes);
  RUN(demo_bundles_load_with_background);
  RUN(predictions_match_training_script);
  RUN(background_stats_match_numpy);
  RUN(dense_forward_matches_naive_on_awkward_shapes);
  RUN(backward_matches_finite_differences_for_every_activation);
  RUN(saturated_softmax_keeps_its_digits);
  RUN(predict_batches_equal_rows_one_by_one);
  return TEST_REPORT();
}
