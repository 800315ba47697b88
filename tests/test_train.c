/* test_train.c — training from a CSV (core/train.c, core/train_net.c) and writing bundles
 * back (api/bundle_write.c).
 *
 *   golden:     the validation split equals the one tools/train_reference.py reproduces,
 *               and on it credit reaches scikit-learn's LogisticRegression accuracy
 *               (tests/golden/train_reference.json); iris and diabetes reach the
 *               accuracy / R² recorded below;
 *   invariants: bit-identical weights for one seed; the loss gradient against central
 *               differences; BLAS against the naive GEMM twins on awkward shapes; the
 *               trained model (xd_model_new, float predictions) agrees with the metrics;
 *               encode -> decode predicts identically, for every demo model and a
 *               trained one;
 *   errors:     every bad option and bad CSV names its option or column;
 *   faults:     every allocation of a small training run fails once, cleanly.
 * Run from the repository root (reads data/, models/, tests/golden/).
 */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "api/bundle.h"
#include "api/files.h"
#include "api/bundle_write.h"
#include "core/alloc.h"
#include "core/mat.h"
#include "core/rng.h"
#include "core/train.h"
#include "core/train_net.h"
#include "tests/test.h"

/* tests/golden/train_reference.json (tools/train_reference.py) holds, per dataset, the
 * seed, split and hidden layers of the run below, the validation rows of that split,
 * scikit-learn's figure on them and the figure this implementation reached when the test
 * was written ("explaind_recorded"). The recorded checks allow one validation row less
 * (R²: 0.01), because another CPU's OpenBLAS kernels may round differently; on one
 * machine the run is bit-deterministic, which is checked separately. */

/* ---- helpers ------------------------------------------------------------------------------ */

static int load_csv(const char *path, xd_csv_t *csv) {
  char *data = NULL;
  size_t len = 0;
  xd_error_t err;
  if (xd_read_file(path, 1 << 26, &data, &len, &err) != XD_OK) {
    fprintf(stderr, "read %s: %s\n", path, err.text);
    return -1;
  }
  int rc = xd_csv_parse(data, len, 1000000, csv, &err);
  if (rc != XD_OK) fprintf(stderr, "parse %s: %s\n", path, err.text);
  xd_free(data);
  return rc == XD_OK ? 0 : -1;
}

static int parse_text(const char *text, xd_csv_t *csv) {
  xd_error_t err;
  return xd_csv_parse(text, strlen(text), 1000, csv, &err) == XD_OK ? 0 : -1;
}

static void options(xd_train_options_t *o, const char *target, size_t n_hidden, const size_t *hidden) {
  xd_train_options_init(o);
  o->target = target;
  o->seed = 7;
  o->n_hidden = n_hidden;
  for (size_t l = 0; l < n_hidden; l++) o->hidden[l] = hidden[l];
}

/* 1 when two specs have bit-identical layers. */
static int same_layers(const xd_model_spec_t *a, const xd_model_spec_t *b) {
  if (a->n_layers != b->n_layers) return 0;
  for (size_t l = 0; l < a->n_layers; l++) {
    const xd_layer_spec_t *x = &a->layers[l], *y = &b->layers[l];
    if (x->in != y->in || x->out != y->out || x->act != y->act) return 0;
    if (memcmp(x->weights, y->weights, x->in * x->out * sizeof *x->weights) != 0) return 0;
    if (memcmp(x->bias, y->bias, x->out * sizeof *x->bias) != 0) return 0;
  }
  return 1;
}

/* The model's own (float) metric on the validation rows of csv, from raw rows. */
static double model_val_metric(const xd_model_t *m, const xd_csv_t *csv, const char *target,
                               const xd_train_result_t *r) {
  xd_error_t err;
  xd_dataset_t ds;
  int cls = xd_model_task(m) == XD_TASK_CLASSIFICATION;
  if (xd_dataset_from_csv(csv, xd_model_features(m), xd_model_n_features(m), target,
                          cls ? xd_model_classes(m) : NULL, cls ? xd_model_n_outputs(m) : 0, "csv", &ds,
                          &err) != XD_OK) {
    fprintf(stderr, "dataset: %s %s\n", err.field, err.text);
    return NAN;
  }
  size_t d = ds.d, k = xd_model_n_outputs(m), nv = r->n_val;
  double *X = xd_malloc(nv * d * sizeof *X), *out = xd_malloc(nv * k * sizeof *out);
  for (size_t i = 0; i < nv; i++) memcpy(X + i * d, ds.X + r->val_rows[i] * d, d * sizeof *X);
  double metric = NAN;
  if (xd_model_predict(m, X, nv, out, NULL, &err) == XD_OK) {
    double hit = 0, sse = 0, sst = 0, mean = 0;
    for (size_t i = 0; i < nv; i++) mean += ds.y[r->val_rows[i]] / (double)nv;
    for (size_t i = 0; i < nv; i++) {
      double y = ds.y[r->val_rows[i]];
      hit += cls && xd_model_argmax(m, out + i * k) == (size_t)y;
      sse += (out[i] - y) * (out[i] - y);
      sst += (y - mean) * (y - mean);
    }
    metric = cls ? hit / (double)nv : 1 - sse / sst;
  }
  xd_free(X);
  xd_free(out);
  xd_dataset_deinit(&ds);
  return metric;
}

static json_t *golden(void) {
  json_error_t je;
  json_t *g = json_load_file("tests/golden/train_reference.json", 0, &je);
  if (!g) fprintf(stderr, "golden: %s\n", je.text);
  return g;
}

/* The golden entry of a dataset and the options it records (target, seed, split, hidden);
 * NULL when the file is missing. */
static json_t *golden_case(json_t *g, const char *name, xd_train_options_t *o) {
  json_t *e = g ? json_object_get(g, name) : NULL;
  if (!e) return NULL;
  json_t *h = json_object_get(e, "explaind_hidden");
  xd_train_options_init(o);
  o->target = json_string_value(json_object_get(e, "target"));
  o->seed = (uint64_t)json_integer_value(json_object_get(e, "seed"));
  o->validation_split = json_number_value(json_object_get(e, "validation_split"));
  o->n_hidden = json_array_size(h);
  for (size_t l = 0; l < o->n_hidden && l < XD_TRAIN_MAX_HIDDEN; l++)
    o->hidden[l] = (size_t)json_integer_value(json_array_get(h, l));
  return e;
}

static double golden_number(json_t *e, const char *key) { return json_number_value(json_object_get(e, key)); }

/* ---- the split ---------------------------------------------------------------------------- */

TEST(split_matches_reference_script) {
  json_t *g = golden();
  CHECK(g != NULL);
  if (!g) return;
  const char *names[] = {"credit", "iris", "diabetes"};
  for (size_t c = 0; c < 3; c++) {
    json_t *e = json_object_get(g, names[c]);
    json_t *rows = json_object_get(e, "validation_rows");
    size_t n = (size_t)json_integer_value(json_object_get(e, "n_rows"));
    double split = json_number_value(json_object_get(e, "validation_split"));
    uint64_t seed = (uint64_t)json_integer_value(json_object_get(e, "seed"));
    size_t *v = xd_malloc(n * sizeof *v);
    size_t nv = xd_train_split(n, split, seed, v);
    CHECK_MSG(nv == json_array_size(rows), "%s: %zu validation rows, golden has %zu", names[c], nv,
              json_array_size(rows));
    size_t bad = 0;
    for (size_t i = 0; i < nv && i < json_array_size(rows); i++)
      bad += v[i] != (size_t)json_integer_value(json_array_get(rows, i));
    CHECK_MSG(bad == 0, "%s: %zu validation rows differ from tools/train_reference.py's", names[c], bad);
    xd_free(v);
  }
  json_decref(g);
  CHECK(xd_train_n_validation(10, 0.2) == 2 && xd_train_n_validation(10, 0.25) == 3);
  CHECK(xd_train_n_validation(2, 0.9) == 1 && xd_train_n_validation(5, 0.01) == 1);
  CHECK(xd_train_n_validation(100, 0) == 0 && xd_train_n_validation(1, 0.5) == 0);
}

/* ---- datasets: accuracy, determinism, the built model ------------------------------------- */

/* Trains twice with o, checks bit-identical layers and the model built from the spec;
 * returns the first run's result (caller deinits) and its model via *mp. */
static int train_twice(const xd_csv_t *csv, const xd_train_options_t *o, xd_train_result_t *r, xd_model_t **mp) {
  xd_model_spec_t s1, s2;
  xd_train_result_t r2;
  xd_error_t err;
  *mp = NULL;
  int rc = xd_train_csv(csv, o, NULL, &s1, r, &err);
  CHECK_MSG(rc == XD_OK, "%s: %s", err.field, err.text);
  if (rc != XD_OK) return -1;
  rc = xd_train_csv(csv, o, NULL, &s2, &r2, &err);
  CHECK(rc == XD_OK);
  if (rc == XD_OK) {
    CHECK_MSG(same_layers(&s1, &s2), "two runs with seed %llu differ", (unsigned long long)o->seed);
    CHECK(memcmp(r->train_loss, r2.train_loss, r->epochs * sizeof *r->train_loss) == 0);
    CHECK(r->val_metric == r2.val_metric);
    xd_model_spec_deinit(&s2);
    xd_train_result_deinit(&r2);
  }
  CHECK(r->epochs == o->epochs && r->n_train + r->n_val == r->n_rows);
  for (size_t e = 0; e < r->epochs; e++) CHECK(isfinite(r->train_loss[e]) && isfinite(r->val_loss[e]));
  rc = xd_model_new(&s1, mp, &err);
  CHECK_MSG(rc == XD_OK, "trained spec rejected: %s: %s", err.field, err.text);
  return rc == XD_OK ? 0 : -1;
}

TEST(iris_reaches_recorded_accuracy_deterministically) {
  json_t *g = golden(), *e;
  xd_train_options_t o;
  xd_csv_t csv;
  if (!(e = golden_case(g, "iris", &o)) || load_csv("data/iris.csv", &csv) != 0) {
    CHECK(0);
    json_decref(g);
    return;
  }
  double recorded = golden_number(e, "explaind_recorded");
  xd_train_result_t r;
  xd_model_t *m = NULL;
  if (train_twice(&csv, &o, &r, &m) == 0) {
    CHECK(r.task == XD_TASK_CLASSIFICATION && r.n_rows == 150 && r.n_val == 30 && r.n_inputs == 4);
    fprintf(stderr, "  iris: validation accuracy %.5f (recorded %.5f)\n", r.val_metric, recorded);
    CHECK(recorded > 0.9);
    CHECK_MSG(r.val_metric >= recorded - 1.0 / 30 - 1e-12, "val accuracy %.4f", r.val_metric);
    CHECK(r.train_metric > 0.9);
    CHECK(r.train_loss[r.epochs - 1] < r.train_loss[0] && r.val_loss[r.epochs - 1] < r.val_loss[0]);
    char *const *cl = xd_model_classes(m);
    CHECK(xd_model_n_outputs(m) == 3 && !strcmp(cl[0], "setosa") && !strcmp(cl[1], "versicolor") &&
          !strcmp(cl[2], "virginica"));
    CHECK_NEAR(model_val_metric(m, &csv, "species", &r), r.val_metric, 1.0 / 30 + 1e-12);
    CHECK(xd_model_background(m)->n == 120 && xd_model_background(m)->y != NULL);
  }
  xd_model_free(m);
  xd_train_result_deinit(&r);
  xd_csv_deinit(&csv);
  json_decref(g);
}

TEST(credit_reaches_sklearn_logistic_regression) {
  json_t *g = golden(), *e;
  xd_train_options_t o;
  xd_csv_t csv;
  if (!(e = golden_case(g, "credit", &o)) || load_csv("data/credit.csv", &csv) != 0) {
    CHECK(0);
    json_decref(g);
    return;
  }
  double ref = golden_number(e, "sklearn_logistic_regression_accuracy");
  double recorded = golden_number(e, "explaind_recorded");
  CHECK(ref > 0.6 && o.n_hidden == 0); /* logistic regression, like the reference */
  xd_train_result_t r;
  xd_model_t *m = NULL;
  if (train_twice(&csv, &o, &r, &m) == 0) {
    fprintf(stderr, "  credit: validation accuracy %.5f, scikit-learn LogisticRegression %.5f\n", r.val_metric, ref);
    CHECK_MSG(r.val_metric >= ref, "%.5f < scikit-learn's %.5f", r.val_metric, ref);
    CHECK(r.val_metric >= recorded - 1.0 / 800 - 1e-12);
    CHECK(r.n_val == 800 && r.n_inputs == 12); /* 4 numeric + employment + region one-hot */
    /* categorical columns: sorted categories, preprocess 0/1 */
    const xd_feature_t *f = xd_model_features(m);
    size_t j = 3;
    CHECK(!strcmp(f[j].name, "employment") && f[j].kind == XD_FEAT_CATEGORICAL);
    for (size_t k = 1; k < f[j].n_categories; k++) CHECK(strcmp(f[j].categories[k - 1], f[j].categories[k]) < 0);
    CHECK(xd_model_pre_mean(m, j) == 0 && xd_model_pre_scale(m, j) == 1);
    CHECK(f[0].kind == XD_FEAT_NUMERIC && xd_model_pre_scale(m, 0) > 1);
    CHECK(!strcmp(xd_model_classes(m)[0], "no") && !strcmp(xd_model_classes(m)[1], "yes"));
    CHECK_NEAR(model_val_metric(m, &csv, "approved", &r), r.val_metric, 2.0 / 800);
    /* background: the 3200 training rows, capped to the default 1000 by a seeded sample */
    CHECK(xd_model_background(m)->n == XD_TRAIN_DEFAULT_MAX_BACKGROUND);
  }
  xd_model_free(m);
  xd_train_result_deinit(&r);
  xd_csv_deinit(&csv);
  json_decref(g);
}

TEST(diabetes_regression_has_sane_r2) {
  json_t *g = golden(), *e;
  xd_train_options_t o;
  xd_csv_t csv;
  if (!(e = golden_case(g, "diabetes", &o)) || load_csv("data/diabetes.csv", &csv) != 0) {
    CHECK(0);
    json_decref(g);
    return;
  }
  double recorded = golden_number(e, "explaind_recorded");
  xd_train_result_t r;
  xd_model_t *m = NULL;
  if (train_twice(&csv, &o, &r, &m) == 0) {
    CHECK(r.task == XD_TASK_REGRESSION); /* integer target, but more than 20 values */
    CHECK_MSG(r.val_metric > 0.3, "validation R² %.4f", r.val_metric);
    fprintf(stderr, "  diabetes: validation R² %.5f (recorded %.5f, scikit-learn LinearRegression %.5f)\n",
            r.val_metric, recorded, golden_number(e, "sklearn_linear_regression_r2"));
    CHECK(r.val_metric >= recorded - 0.01);
    /* the model predicts the target in its own units: the scaling is folded back */
    CHECK_NEAR(model_val_metric(m, &csv, "progression", &r), r.val_metric, 1e-4);
    CHECK(r.val_loss[r.epochs - 1] > 1000); /* MSE in the target's units (progression²) */
  }
  xd_model_free(m);
  xd_train_result_deinit(&r);
  xd_csv_deinit(&csv);
  json_decref(g);
}

/* ---- early stopping ------------------------------------------------------------------------ */

/* patience: the epoch with the lowest validation loss is kept, training stops `patience`
 * epochs after it, and the weights kept are exactly those of a run of best_epoch epochs. */
TEST(early_stopping_keeps_the_best_epoch) {
  xd_csv_t csv;
  if (load_csv("data/diabetes.csv", &csv) != 0) {
    CHECK(0);
    return;
  }
  static const size_t hidden[] = {64, 64};
  xd_train_options_t o;
  options(&o, "progression", 2, hidden);
  o.learning_rate = 0.01; /* overfits 353 rows quickly: the validation loss turns up */
  o.epochs = 400;
  o.patience = 15;
  xd_model_spec_t s, s2;
  xd_train_result_t r, r2;
  xd_error_t err;
  memset(&s, 0, sizeof s);
  memset(&s2, 0, sizeof s2);
  CHECK(xd_train_csv(&csv, &o, NULL, &s, &r, &err) == XD_OK);
  CHECK(r.best_epoch >= 1 && r.best_epoch <= r.epochs);
  CHECK_MSG(r.epochs < o.epochs, "did not stop early: %zu epochs", r.epochs);
  CHECK(r.epochs == r.best_epoch + o.patience);
  for (size_t e = 0; e < r.epochs; e++) CHECK(r.val_loss[e] >= r.val_loss[r.best_epoch - 1]);
  for (size_t e = 0; e + 1 < r.best_epoch; e++) CHECK(r.val_loss[e] > r.val_loss[r.best_epoch - 1]);
  /* Same seed, best_epoch epochs, no patience: the same weights, bit for bit. */
  xd_train_options_t o2 = o;
  o2.epochs = r.best_epoch;
  o2.patience = 0;
  CHECK(xd_train_csv(&csv, &o2, NULL, &s2, &r2, &err) == XD_OK);
  CHECK(r2.best_epoch == 0 && r2.epochs == r.best_epoch);
  CHECK(same_layers(&s, &s2));
  CHECK(r.val_metric == r2.val_metric);
  fprintf(stderr, "  early stopping: best epoch %zu of %zu run, validation R² %.4f\n", r.best_epoch, r.epochs,
          r.val_metric);
  xd_model_spec_deinit(&s);
  xd_model_spec_deinit(&s2);
  xd_train_result_deinit(&r);
  xd_train_result_deinit(&r2);
  /* patience needs held-out rows, and is bounded */
  o.validation_split = 0;
  CHECK(xd_train_options_check(&o, &err) == XD_EINVAL && strcmp(err.field, "patience") == 0);
  o.validation_split = 0.2;
  o.patience = XD_TRAIN_MAX_EPOCHS + 1;
  CHECK(xd_train_options_check(&o, &err) == XD_EINVAL && strcmp(err.field, "patience") == 0);
  xd_csv_deinit(&csv);
}

/* ---- task inference and small tables ------------------------------------------------------ */

static int train_text(const char *text, xd_train_options_t *o, xd_model_spec_t *s, xd_train_result_t *r,
                      xd_error_t *err) {
  xd_csv_t csv;
  if (parse_text(text, &csv) != 0) return -100;
  int rc = xd_train_csv(&csv, o, NULL, s, r, err);
  xd_csv_deinit(&csv);
  return rc;
}

/* 24 rows: x numeric, c categorical, then the target t given by tv(i). */
static void make_table(char *buf, size_t cap, const char *(*tv)(size_t, char *)) {
  size_t o = (size_t)snprintf(buf, cap, "x,c,t\n");
  char tb[32];
  for (size_t i = 0; i < 24; i++)
    o += (size_t)snprintf(buf + o, cap - o, "%zu.5,%s,%s\n", i, i % 3 == 0 ? "b" : "a", tv(i, tb));
}
static const char *t_ints(size_t i, char *b) { return snprintf(b, 32, "%zu", (i % 3) * 10), b; }
static const char *t_many(size_t i, char *b) { return snprintf(b, 32, "%zu", i * 7), b; }
static const char *t_real(size_t i, char *b) { return snprintf(b, 32, "%zu.25", i % 4), b; }
static const char *t_word(size_t i, char *b) { return snprintf(b, 32, "%s", i % 2 ? "yes" : "no"), b; }

TEST(task_inference_and_classes) {
  char buf[2048];
  xd_train_options_t o;
  xd_model_spec_t s;
  xd_train_result_t r;
  xd_error_t err;
  options(&o, "t", 0, NULL);
  o.epochs = 3;
  make_table(buf, sizeof buf, t_ints); /* 3 integer values: classes, sorted numerically */
  CHECK(train_text(buf, &o, &s, &r, &err) == XD_OK);
  CHECK(s.task == XD_TASK_CLASSIFICATION && s.n_classes == 3);
  if (s.n_classes == 3) CHECK(!strcmp(s.classes[0], "0") && !strcmp(s.classes[1], "10") && !strcmp(s.classes[2], "20"));
  CHECK(s.features[1].kind == XD_FEAT_CATEGORICAL && s.features[1].n_categories == 2 &&
        !strcmp(s.features[1].categories[0], "a"));
  CHECK(s.pre_mean[1] == 0 && s.pre_scale[1] == 1 && s.layers[0].in == 3 && s.layers[0].out == 3);
  CHECK(s.layers[0].act == XD_ACT_SOFTMAX);
  xd_model_spec_deinit(&s);
  xd_train_result_deinit(&r);
  make_table(buf, sizeof buf, t_many); /* 24 integer values: regression */
  CHECK(train_text(buf, &o, &s, &r, &err) == XD_OK && s.task == XD_TASK_REGRESSION && s.n_classes == 0);
  CHECK(s.layers[0].out == 1 && s.layers[0].act == XD_ACT_IDENTITY && r.val_loss != NULL);
  xd_model_spec_deinit(&s);
  xd_train_result_deinit(&r);
  make_table(buf, sizeof buf, t_real); /* non-integers: regression, unless asked */
  CHECK(train_text(buf, &o, &s, &r, &err) == XD_OK && s.task == XD_TASK_REGRESSION);
  xd_model_spec_deinit(&s);
  xd_train_result_deinit(&r);
  o.task = XD_TASK_CLASSIFICATION;
  CHECK(train_text(buf, &o, &s, &r, &err) == XD_OK && s.task == XD_TASK_CLASSIFICATION && s.n_classes == 4);
  if (s.n_classes == 4) CHECK(!strcmp(s.classes[0], "0.25") && !strcmp(s.classes[3], "3.25"));
  xd_model_spec_deinit(&s);
  xd_train_result_deinit(&r);
  o.task = XD_TRAIN_TASK_AUTO;
  make_table(buf, sizeof buf, t_word); /* words: binary classification = 2-unit softmax */
  size_t hidden[] = {5, 4};
  options(&o, "t", 2, hidden);
  o.epochs = 3;
  o.validation_split = 0;
  o.activation = XD_ACT_TANH;
  CHECK(train_text(buf, &o, &s, &r, &err) == XD_OK && s.task == XD_TASK_CLASSIFICATION && s.n_classes == 2);
  CHECK(s.n_layers == 3 && s.layers[2].out == 2 && s.layers[0].act == XD_ACT_TANH);
  CHECK(r.n_val == 0 && r.val_loss == NULL && isnan(r.val_metric) && s.background.n == 24);
  xd_model_spec_deinit(&s);
  xd_train_result_deinit(&r);
  o.task = XD_TASK_REGRESSION; /* a word target cannot be regressed */
  CHECK(train_text(buf, &o, &s, &r, &err) == XD_EINVAL && !strcmp(err.field, "target"));
  CHECK(s.layers == NULL && r.train_loss == NULL);
}

TEST(background_sample_is_seeded) {
  char buf[2048];
  make_table(buf, sizeof buf, t_word);
  xd_train_options_t o;
  xd_model_spec_t s1, s2;
  xd_train_result_t r;
  xd_error_t err;
  options(&o, "t", 0, NULL);
  o.epochs = 1;
  o.max_background = 5;
  CHECK(train_text(buf, &o, &s1, &r, &err) == XD_OK && s1.background.n == 5);
  xd_train_result_deinit(&r);
  CHECK(train_text(buf, &o, &s2, &r, &err) == XD_OK && s2.background.n == 5);
  xd_train_result_deinit(&r);
  if (s1.background.n == 5 && s2.background.n == 5) {
    CHECK(memcmp(s1.background.X, s2.background.X, 5 * 2 * sizeof(double)) == 0);
    CHECK(s1.background.y != NULL);
  }
  xd_model_spec_deinit(&s1);
  xd_model_spec_deinit(&s2);
  o.max_background = 0;
  CHECK(train_text(buf, &o, &s1, &r, &err) == XD_OK && s1.background.n == 0);
  xd_model_spec_deinit(&s1);
  xd_train_result_deinit(&r);
}

/* ---- errors name the option or the column ------------------------------------------------- */

typedef struct bad_option {
  const char *field;
  void (*set)(xd_train_options_t *);
} bad_option_t;

static void b_target(xd_train_options_t *o) { o->target = NULL; }
static void b_task(xd_train_options_t *o) { o->task = 7; }
static void b_layers(xd_train_options_t *o) { o->n_hidden = XD_TRAIN_MAX_HIDDEN + 1; }
static void b_width0(xd_train_options_t *o) { o->n_hidden = 2, o->hidden[0] = 4, o->hidden[1] = 0; }
static void b_width(xd_train_options_t *o) { o->n_hidden = 1, o->hidden[0] = XD_TRAIN_MAX_WIDTH + 1; }
static void b_act(xd_train_options_t *o) { o->activation = XD_ACT_SOFTMAX; }
static void b_epochs0(xd_train_options_t *o) { o->epochs = 0; }
static void b_epochs(xd_train_options_t *o) { o->epochs = XD_TRAIN_MAX_EPOCHS + 1; }
static void b_batch(xd_train_options_t *o) { o->batch_size = 0; }
static void b_lr(xd_train_options_t *o) { o->learning_rate = 0; }
static void b_lr_nan(xd_train_options_t *o) { o->learning_rate = NAN; }
static void b_l2(xd_train_options_t *o) { o->l2 = -1e-3; }
static void b_split(xd_train_options_t *o) { o->validation_split = 0.95; }
static void b_split_nan(xd_train_options_t *o) { o->validation_split = NAN; }
static void b_bg(xd_train_options_t *o) { o->max_background = XD_TRAIN_MAX_BACKGROUND + 1; }

TEST(bad_options_are_named) {
  static const bad_option_t cases[] = {
      {"target", b_target},       {"task", b_task},         {"hidden", b_layers},        {"hidden[1]", b_width0},
      {"hidden[0]", b_width},     {"activation", b_act},    {"epochs", b_epochs0},       {"epochs", b_epochs},
      {"batch_size", b_batch},    {"learning_rate", b_lr},  {"learning_rate", b_lr_nan}, {"l2", b_l2},
      {"validation_split", b_split}, {"validation_split", b_split_nan}, {"max_background", b_bg},
  };
  char buf[2048];
  make_table(buf, sizeof buf, t_word);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    xd_train_options_t o;
    xd_model_spec_t s;
    xd_train_result_t r;
    xd_error_t err;
    options(&o, "t", 0, NULL);
    o.epochs = 1;
    cases[i].set(&o);
    memset(&err, 0, sizeof err);
    int rc = train_text(buf, &o, &s, &r, &err);
    CHECK_MSG(rc == XD_EINVAL && !strcmp(err.field, cases[i].field), "case %zu: rc %d field '%s', want '%s'", i,
              rc, err.field, cases[i].field);
  }
}

typedef struct bad_csv {
  const char *text, *target, *field;
  int code;
} bad_csv_t;

TEST(bad_tables_are_named) {
  static const bad_csv_t cases[] = {
      {"a,b,t\n1,2,x\n3,4,y\n", "nope", "target", XD_EINVAL},
      {"a,b,t\n1,,x\n3,4,y\n", "t", "csv[0].b", XD_EINVAL},
      {"a,b,t\n1,2,x\n3, ,y\n", "t", "csv[1].b", XD_EINVAL},
      {"a,c,t\n1,q,x\n3,q,y\n", "t", "csv.c", XD_EINVAL},
      {"a,a,t\n1,2,x\n3,4,y\n", "t", "csv.a", XD_EINVAL},
      {"a,b,t\n1,2,x\n3,4,x\n", "t", "target", XD_EINVAL},
      {"a,b,t\n1,2,x\n", "t", "csv", XD_EINVAL},
      {"t\nx\ny\n", "t", "csv", XD_EINVAL},
      {"a,b,t\n1,2,x\n3,4,y\n5,6,x\n", "t", "csv", XD_ETOOBIG}, /* max_rows 2 below */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    xd_train_options_t o;
    xd_model_spec_t s;
    xd_train_result_t r;
    xd_error_t err;
    options(&o, cases[i].target, 0, NULL);
    o.epochs = 1;
    if (cases[i].code == XD_ETOOBIG) o.max_rows = 2;
    memset(&err, 0, sizeof err);
    int rc = train_text(cases[i].text, &o, &s, &r, &err);
    CHECK_MSG(rc == cases[i].code && !strcmp(err.field, cases[i].field), "case %zu: rc %d field '%s' (%s)", i, rc,
              err.field, err.text);
  }
}

TEST(deadline_stops_training) {
  char buf[2048];
  make_table(buf, sizeof buf, t_word);
  xd_csv_t csv;
  CHECK(parse_text(buf, &csv) == 0);
  xd_train_options_t o;
  xd_model_spec_t s;
  xd_train_result_t r;
  xd_error_t err;
  options(&o, "t", 0, NULL);
  xd_cancel_t past = {NULL, 1};
  CHECK(xd_train_csv(&csv, &o, &past, &s, &r, &err) == XD_ETIMEDOUT);
  CHECK(s.layers == NULL && s.features == NULL && r.train_loss == NULL);
  atomic_int flag = 1;
  xd_cancel_t stop = {&flag, 0};
  CHECK(xd_train_csv(&csv, &o, &stop, &s, &r, &err) == XD_ECANCELED);
  xd_csv_deinit(&csv);
}

/* ---- the network: gradient against finite differences, BLAS against naive ----------------- */

static void fill_batch(xd_rng_t *rng, double *X, double *y, size_t n, size_t d, size_t k, int softmax) {
  for (size_t i = 0; i < n * d; i++) X[i] = xd_rng_normal(rng);
  for (size_t i = 0; i < n; i++) y[i] = softmax ? (double)xd_rng_below(rng, k) : xd_rng_normal(rng);
}

TEST(loss_gradient_matches_finite_differences) {
  static const xd_act_t acts[] = {XD_ACT_TANH, XD_ACT_SIGMOID, XD_ACT_SOFTPLUS, XD_ACT_GELU,
                                  XD_ACT_LEAKY_RELU, XD_ACT_RELU, XD_ACT_IDENTITY};
  for (size_t a = 0; a < sizeof acts / sizeof *acts; a++)
    for (int softmax = 0; softmax <= 1; softmax++) {
      size_t hidden[] = {4, 3}, n = 5, d = 3, k = softmax ? 3 : 1;
      xd_train_net_t net;
      CHECK(xd_train_net_init(&net, d, hidden, 2, acts[a], k, softmax, n) == 0);
      xd_rng_t rng;
      xd_rng_seed(&rng, 100 + a);
      xd_train_net_init_weights(&net, &rng);
      for (size_t i = 0; i < net.n_params; i++) net.params[i] += 0.1 * xd_rng_normal(&rng); /* non-zero biases */
      double X[15], y[5], l2 = 0.05;
      fill_batch(&rng, X, y, n, d, k, softmax);
      xd_train_net_loss_grad(&net, X, y, n, l2);
      double worst = 0;
      for (size_t p = 0; p < net.n_params; p++) {
        double keep = net.params[p], h = 1e-6;
        net.params[p] = keep + h;
        double fp = xd_train_net_objective(&net, X, y, n, l2);
        net.params[p] = keep - h;
        double fm = xd_train_net_objective(&net, X, y, n, l2);
        net.params[p] = keep;
        double fd = (fp - fm) / (2 * h), e = fabs(fd - net.grad[p]) / (fabs(fd) + 1e-4);
        if (e > worst) worst = e;
      }
      CHECK_MSG(worst < 1e-5, "%s softmax=%d: worst relative error %.3g", xd_act_name(acts[a]), softmax, worst);
      xd_train_net_deinit(&net);
    }
}

TEST(blas_matches_naive_on_awkward_shapes) {
  /* (inputs, hidden, outputs, rows): K=1, a single row, odd sizes */
  static const size_t shapes[][4] = {{1, 1, 2, 1}, {1, 7, 3, 5}, {9, 1, 1, 1}, {13, 11, 4, 17}};
  for (size_t c = 0; c < 4; c++) {
    size_t d = shapes[c][0], h = shapes[c][1], k = shapes[c][2], n = shapes[c][3];
    for (int softmax = 0; softmax <= 1; softmax++) {
      size_t kk = softmax ? (k < 2 ? 2 : k) : 1;
      xd_train_net_t a, b;
      CHECK(xd_train_net_init(&a, d, &h, 1, XD_ACT_TANH, kk, softmax, n) == 0);
      CHECK(xd_train_net_init(&b, d, &h, 1, XD_ACT_TANH, kk, softmax, n) == 0);
      b.naive = 1;
      xd_rng_t r1, r2;
      xd_rng_seed(&r1, c);
      xd_rng_seed(&r2, c);
      xd_train_net_init_weights(&a, &r1);
      xd_train_net_init_weights(&b, &r2);
      double X[17 * 13], y[17];
      fill_batch(&r1, X, y, n, d, kk, softmax);
      double la = xd_train_net_loss_grad(&a, X, y, n, 0.01), lb = xd_train_net_loss_grad(&b, X, y, n, 0.01);
      CHECK_CLOSE(la, lb, 1e-12, 1e-14);
      double worst = 0;
      for (size_t p = 0; p < a.n_params; p++) {
        double e = fabs(a.grad[p] - b.grad[p]);
        if (e > worst) worst = e;
      }
      CHECK_MSG(worst < 1e-12, "shape %zu: gradients differ by %.3g", c, worst);
      xd_train_net_deinit(&a);
      xd_train_net_deinit(&b);
    }
  }
}

/* ---- bundle_write: encode -> decode predicts identically ---------------------------------- */

/* Encodes m, decodes the text, and compares predictions on m's background (or a few
 * made-up rows); also checks that re-encoding gives the same text. */
static void check_round_trip(const char *name, const xd_model_t *m) {
  xd_error_t err;
  char *text = xd_bundle_encode(m, 100000, &err);
  CHECK_MSG(text != NULL, "%s: %s", name, err.text);
  if (!text) return;
  xd_model_t *m2 = NULL;
  int rc = xd_bundle_decode(text, strlen(text), NULL, &m2, &err);
  CHECK_MSG(rc == XD_OK, "%s: decoding the encoded bundle: %s: %s", name, err.field, err.text);
  if (rc == XD_OK) {
    const xd_dataset_t *bg = xd_model_background(m), *bg2 = xd_model_background(m2);
    CHECK(bg->n > 0 && bg2->n == bg->n && bg2->d == bg->d);
    CHECK(memcmp(bg->X, bg2->X, bg->n * bg->d * sizeof *bg->X) == 0);
    CHECK((bg->y == NULL) == (bg2->y == NULL));
    if (bg->y && bg2->y) CHECK(memcmp(bg->y, bg2->y, bg->n * sizeof *bg->y) == 0);
    size_t k = xd_model_n_outputs(m), n = bg->n;
    double *o1 = xd_malloc(n * k * sizeof *o1), *o2 = xd_malloc(n * k * sizeof *o2);
    CHECK(xd_model_predict(m, bg->X, n, o1, NULL, &err) == XD_OK);
    CHECK(xd_model_predict(m2, bg->X, n, o2, NULL, &err) == XD_OK);
    CHECK_MSG(memcmp(o1, o2, n * k * sizeof *o1) == 0, "%s: predictions differ after the round trip", name);
    /* the double path (gradients) too */
    size_t ni = xd_model_n_inputs(m);
    double *E = xd_malloc(n * ni * sizeof *E), *E2 = xd_malloc(n * ni * sizeof *E2);
    double *G1 = xd_malloc(n * ni * sizeof *G1), *G2 = xd_malloc(n * ni * sizeof *G2);
    xd_model_encode_d(m, bg->X, n, E);
    xd_model_encode_d(m2, bg->X, n, E2);
    CHECK(memcmp(E, E2, n * ni * sizeof *E) == 0);
    CHECK(xd_model_gradient(m, E, n, NULL, XD_OUTPUT_PROBABILITY, o1, G1, NULL, NULL, &err) == XD_OK);
    CHECK(xd_model_gradient(m2, E, n, NULL, XD_OUTPUT_PROBABILITY, o2, G2, NULL, NULL, &err) == XD_OK);
    CHECK(memcmp(o1, o2, n * sizeof *o1) == 0 && memcmp(G1, G2, n * ni * sizeof *G1) == 0);
    char *again = xd_bundle_encode(m2, 100000, &err);
    CHECK_MSG(again && strcmp(again, text) == 0, "%s: re-encoding changed the text", name);
    xd_free(again);
    xd_free(E);
    xd_free(E2);
    xd_free(G1);
    xd_free(G2);
    xd_free(o1);
    xd_free(o2);
  }
  xd_model_free(m2);
  xd_free(text);
}

TEST(bundle_round_trip_demo_models) {
  static const char *demo[] = {"iris", "breast_cancer", "wine", "diabetes", "credit"};
  for (size_t i = 0; i < sizeof demo / sizeof *demo; i++) {
    char p[256];
    snprintf(p, sizeof p, "models/%s/model.json", demo[i]);
    xd_model_t *m = NULL;
    xd_error_t err;
    int rc = xd_bundle_load_file(p, &m, NULL, &err);
    CHECK_MSG(rc == XD_OK, "%s: %s", p, err.text);
    if (rc == XD_OK) check_round_trip(demo[i], m);
    xd_model_free(m);
  }
}

TEST(bundle_round_trip_sigmoid_no_preprocess_no_targets) {
  /* a single sigmoid unit, no preprocess, background without targets, awkward doubles */
  static const char *b =
      "{\"format\":\"explaind.model/v1\",\"task\":\"classification\","
      "\"features\":[{\"name\":\"a\"},{\"name\":\"c\",\"type\":\"categorical\",\"categories\":[\"x\",\"y\"]}],"
      "\"classes\":[\"neg\",\"pos\"],"
      "\"layers\":[{\"weights\":[[0.1,-0.2,0.30000000000000004],[1e-300,3.141592653589793,-2.5e17]],"
      "\"bias\":[0.1,-0.7],\"activation\":\"gelu\"},"
      "{\"weights\":[[0.3333333333333333,-1.0000000000000002]],\"bias\":[5e-324],\"activation\":\"sigmoid\"}],"
      "\"background\":{\"rows\":[[1.5,\"x\"],[-2,1],[0.1,\"y\"]]}}";
  xd_model_t *m = NULL;
  xd_error_t err;
  CHECK_MSG(xd_bundle_decode(b, strlen(b), NULL, &m, &err) == XD_OK, "%s: %s", err.field, err.text);
  if (!m) return;
  check_round_trip("sigmoid", m);
  char *text = xd_bundle_encode(m, 100, &err);
  CHECK(text && !strstr(text, "preprocess") && !strstr(text, "targets") && strstr(text, "\"sigmoid\""));
  xd_free(text);
  xd_model_free(m);
}

TEST(bundle_round_trip_trained_model_and_background_cap) {
  xd_csv_t csv;
  if (load_csv("data/credit.csv", &csv) != 0) {
    CHECK(0);
    return;
  }
  xd_train_options_t o;
  size_t hidden[] = {8};
  options(&o, "approved", 1, hidden);
  o.epochs = 5;
  o.max_background = 300;
  xd_model_spec_t s;
  xd_train_result_t r;
  xd_error_t err;
  xd_model_t *m = NULL;
  CHECK(xd_train_csv(&csv, &o, NULL, &s, &r, &err) == XD_OK);
  CHECK(xd_model_new(&s, &m, &err) == XD_OK);
  if (m) {
    check_round_trip("trained credit", m);
    /* categorical values and classes are written by name */
    char *text = xd_bundle_encode(m, 10, &err);
    CHECK(text && strstr(text, "\"categories\":[") && strstr(text, "\"targets\":[\""));
    xd_model_t *m2 = NULL;
    CHECK(text && xd_bundle_decode(text, strlen(text), NULL, &m2, &err) == XD_OK);
    CHECK(m2 && xd_model_background(m2)->n == 10);
    if (m2) /* rows i·n/k: row 1 of the written ten is row 30 of 300 */
      CHECK(memcmp(xd_model_background(m2)->X + 6, xd_model_background(m)->X + 30 * 6, 6 * sizeof(double)) == 0);
    xd_model_free(m2);
    xd_free(text);
    text = xd_bundle_encode(m, 0, &err);
    CHECK(text && !strstr(text, "\"background\""));
    xd_free(text);
  }
  xd_model_free(m);
  xd_train_result_deinit(&r);
  xd_csv_deinit(&csv);
}

/* Random small tables and options: every run either trains a model that xd_model_new
 * accepts and that round-trips through the encoder, or fails naming a field. */
TEST(random_tables_train_or_fail_cleanly) {
  static const char *words[] = {"a", "b", "c", "x y", "-", "1", "2", "2.5", "1e3", "", " ", "nan", "3"};
  xd_rng_t rng;
  xd_rng_seed(&rng, 2024);
  size_t ok = 0;
  for (int it = 0; it < 300; it++) {
    char text[4096];
    size_t cols = 1 + xd_rng_below(&rng, 4), rows = 1 + xd_rng_below(&rng, 12), o = 0;
    for (size_t c = 0; c < cols; c++) o += (size_t)snprintf(text + o, sizeof text - o, "%sc%zu", c ? "," : "", c);
    o += (size_t)snprintf(text + o, sizeof text - o, "\n");
    for (size_t i = 0; i < rows; i++) {
      for (size_t c = 0; c < cols; c++) {
        const char *w = words[xd_rng_below(&rng, 13)];
        char num[32];
        if (xd_rng_below(&rng, 2)) {
          snprintf(num, sizeof num, "%.3g", xd_rng_normal(&rng) * 10);
          w = num;
        }
        o += (size_t)snprintf(text + o, sizeof text - o, "%s%s", c ? "," : "", w);
      }
      o += (size_t)snprintf(text + o, sizeof text - o, "\n");
    }
    xd_train_options_t opt;
    options(&opt, "c0", 0, NULL);
    opt.seed = (uint64_t)it;
    opt.epochs = 1 + xd_rng_below(&rng, 3);
    opt.batch_size = 1 + xd_rng_below(&rng, 8);
    opt.validation_split = xd_rng_uniform(&rng) * 0.9;
    opt.task = (int)xd_rng_below(&rng, 3) - 1;
    opt.n_hidden = xd_rng_below(&rng, 3);
    for (size_t l = 0; l < opt.n_hidden; l++) opt.hidden[l] = 1 + xd_rng_below(&rng, 4);
    xd_model_spec_t s;
    xd_train_result_t r;
    xd_error_t err;
    memset(&err, 0, sizeof err);
    int rc = train_text(text, &opt, &s, &r, &err);
    if (rc == -100) continue; /* not CSV at all */
    if (rc != XD_OK) {
      CHECK_MSG(err.field[0] != '\0' && s.layers == NULL, "it %d: rc %d without a field: %s", it, rc, err.text);
      continue;
    }
    xd_model_t *m = NULL;
    CHECK_MSG(xd_model_new(&s, &m, &err) == XD_OK, "it %d: %s: %s", it, err.field, err.text);
    if (m) {
      char *b = xd_bundle_encode(m, 1000, &err);
      xd_model_t *m2 = NULL;
      CHECK_MSG(b && xd_bundle_decode(b, strlen(b), NULL, &m2, &err) == XD_OK, "it %d: %s: %s", it, err.field,
                err.text);
      xd_model_free(m2);
      xd_free(b);
      ok++;
    }
    xd_model_free(m);
    xd_train_result_deinit(&r);
  }
  CHECK(ok > 20);
}

/* ---- faults -------------------------------------------------------------------------------- */

TEST(allocation_failures_are_clean) {
  char buf[2048];
  make_table(buf, sizeof buf, t_word);
  xd_csv_t csv;
  CHECK(parse_text(buf, &csv) == 0);
  xd_train_options_t o;
  size_t hidden[] = {3};
  options(&o, "t", 1, hidden);
  o.epochs = 2;
  int done = 0;
  for (long k = 1; k < 500 && !done; k++) {
    xd_model_spec_t s;
    xd_train_result_t r;
    xd_error_t err;
    xd_alloc_fail_after(k);
    int rc = xd_train_csv(&csv, &o, NULL, &s, &r, &err);
    xd_alloc_fail_after(0);
    if (rc == XD_OK) {
      done = 1;
      xd_model_t *m = NULL;
      CHECK(xd_model_new(&s, &m, &err) == XD_OK);
      for (long j = 1; m && j < 500; j++) { /* and the encoder */
        xd_alloc_fail_after(j);
        char *text = xd_bundle_encode(m, 100, &err);
        xd_alloc_fail_after(0);
        if (text) {
          xd_free(text);
          break;
        }
        CHECK(err.code == XD_ENOMEM);
      }
      xd_model_free(m);
      xd_train_result_deinit(&r);
    } else {
      CHECK_MSG(rc == XD_ENOMEM && s.layers == NULL && r.train_loss == NULL, "allocation %ld: rc %d", k, rc);
    }
  }
  CHECK(done);
  xd_csv_deinit(&csv);
}

int main(void) {
  xd_blas_init();
  RUN(split_matches_reference_script);
  RUN(iris_reaches_recorded_accuracy_deterministically);
  RUN(early_stopping_keeps_the_best_epoch);
  RUN(credit_reaches_sklearn_logistic_regression);
  RUN(diabetes_regression_has_sane_r2);
  RUN(task_inference_and_classes);
  RUN(background_sample_is_seeded);
  RUN(bad_options_are_named);
  RUN(bad_tables_are_named);
  RUN(deadline_stops_training);
  RUN(loss_gradient_matches_finite_differences);
  RUN(blas_matches_naive_on_awkward_shapes);
  RUN(bundle_round_trip_demo_models);
  RUN(bundle_round_trip_sigmoid_no_preprocess_no_targets);
  RUN(bundle_round_trip_trained_model_and_background_cap);
  RUN(random_tables_train_or_fail_cleanly);
  RUN(allocation_failures_are_clean);
  return TEST_REPORT();
}
