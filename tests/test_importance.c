/* test_importance.c — permutation importance (scikit-learn invariants), scorers, Olden
 * and Garson (NeuralNetTools golden values, docs/algorithms.md §5), mean |gradient|. */
#include <float.h>
#include <pthread.h>
#include <string.h>

#include "core/importance.h"
#include "tests/imp_fixtures.h"
#include "tests/test.h"

/* ---- helpers ------------------------------------------------------------------------ */

static int run_all_parts(xd_imp_perm_t *p, int reverse) {
  size_t np = xd_imp_perm_parts(p);
  xd_error_t err;
  for (size_t q = 0; q < np; q++) {
    size_t part = reverse ? np - 1 - q : q;
    if (xd_imp_perm_run(p, part, NULL, &err) != XD_OK) {
      fprintf(stderr, "part %zu: %s\n", part, err.text);
      return -1;
    }
  }
  return 0;
}

typedef struct {
  xd_imp_perm_t *p;
  size_t first, stride;
  int rc;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  xd_error_t err;
  size_t np = xd_imp_perm_parts(w->p);
  w->rc = 0;
  for (size_t q = w->first; q < np; q += w->stride)
    if (xd_imp_perm_run(w->p, q, NULL, &err) != XD_OK) w->rc = -1;
  return NULL;
}

/* Runs the parts on `threads` threads, part q on thread q % threads. */
static int run_threads(xd_imp_perm_t *p, size_t threads) {
  pthread_t t[8];
  worker_t w[8];
  for (size_t i = 0; i < threads; i++) {
    w[i] = (worker_t){p, i, threads, 0};
    pthread_create(&t[i], NULL, worker, &w[i]);
  }
  int rc = 0;
  for (size_t i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    rc |= w[i].rc;
  }
  return rc;
}

/* An MLP 3 -> 4 relu -> 2 softmax whose input 1 has zero weight into every hidden unit. */
static xd_model_t *zero_weight_mlp(xd_task_t task) {
  static const double w1[] = {0.9, 0, -0.4, -0.7, 0, 0.8, 0.3, 0, 0.5, -0.2, 0, -0.6};
  static const double b1[] = {0.1, -0.1, 0.05, 0};
  static const double w2c[] = {1.2, -0.7, 0.4, 0.9, -1.1, 0.6, -0.3, 0.2};
  static const double w2r[] = {1.2, -0.7, 0.4, 0.9};
  fx_layer_t L[2] = {{3, 4, w1, b1, XD_ACT_RELU},
                     {4, task == XD_TASK_CLASSIFICATION ? 2 : 1, task == XD_TASK_CLASSIFICATION ? w2c : w2r, NULL,
                      task == XD_TASK_CLASSIFICATION ? XD_ACT_SOFTMAX : XD_ACT_IDENTITY}};
  return fx_build(task, 3, NULL, task == XD_TASK_CLASSIFICATION ? 2 : 0, L, 2, NULL, NULL, NULL, NULL, 0);
}

/* Data for zero_weight_mlp: rows N(0,1), targets from the model itself plus noise. */
static void zero_weight_data(const xd_model_t *m, size_t n, double *X, double *y) {
  xd_rng_t r;
  xd_rng_seed(&r, 7);
  fx_normal(&r, X, n, 3, NULL, NULL);
  size_t k = xd_model_n_outputs(m);
  double *P = xd_calloc(n * k, sizeof *P);
  xd_model_predict(m, X, n, P, NULL, NULL);
  for (size_t i = 0; i < n; i++) {
    if (xd_model_task(m) == XD_TASK_CLASSIFICATION)
      y[i] = xd_rng_uniform(&r) < P[i * k + 1] ? 1 : 0;
    else
      y[i] = P[i] + 0.3 * xd_rng_normal(&r);
  }
  xd_free(P);
}

/* ---- scorers -------------------------------------------------------------------------- */

TEST(scorers_match_sklearn_conventions) {
  double scratch[6];
  /* 3 classes, class 2 absent from y: balanced accuracy averages classes 0 and 1 only */
  const double P[] = {0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.6, 0.3, 0.1, 0.2, 0.3, 0.5};
  const double y[] = {0, 1, 1, 0};
  CHECK_NEAR(xd_imp_score(XD_IMP_ACCURACY, P, 4, 3, y, scratch), 0.5, 0);
  /* class 0: 1 of 2 right; class 1: 1 of 2 right -> 0.5 */
  CHECK_NEAR(xd_imp_score(XD_IMP_BALANCED_ACCURACY, P, 4, 3, y, scratch), 0.5, 0);
  const double y2[] = {0, 1, 0, 0};
  /* class 0: 2 of 3 (row 3 predicted 2), class 1: 1 of 1 -> (2/3 + 1)/2 */
  CHECK_NEAR(xd_imp_score(XD_IMP_BALANCED_ACCURACY, P, 4, 3, y2, scratch), (2.0 / 3 + 1) / 2, 1e-15);
  /* log loss clips at float64 eps: a zero probability costs -log(eps), a one costs
   * -log(1 - eps) */
  const double Q[] = {0.0, 1.0, 1.0, 0.0};
  const double yq[] = {0, 0};
  double ll = xd_imp_score(XD_IMP_NEG_LOG_LOSS, Q, 2, 2, yq, scratch);
  CHECK_NEAR(ll, -(-log(DBL_EPSILON) - log(1 - DBL_EPSILON)) / 2, 1e-12);
  /* r2 and mse */
  const double R[] = {1, 2, 3}, yr[] = {1, 2, 4};
  CHECK_NEAR(xd_imp_score(XD_IMP_NEG_MSE, R, 3, 1, yr, scratch), -1.0 / 3, 1e-15);
  double mean = 7.0 / 3, sst = (1 - mean) * (1 - mean) + (2 - mean) * (2 - mean) + (4 - mean) * (4 - mean);
  CHECK_NEAR(xd_imp_score(XD_IMP_R2, R, 3, 1, yr, scratch), 1 - 1 / sst, 1e-15);
  /* constant y: sklearn's force_finite gives 1 for a perfect fit, else 0 */
  const double yc[] = {2, 2, 2}, Rc[] = {2, 2, 2};
  CHECK(xd_imp_score(XD_IMP_R2, Rc, 3, 1, yc, scratch) == 1.0);
  CHECK(xd_imp_score(XD_IMP_R2, R, 3, 1, yc, scratch) == 0.0);
}

/* ---- permutation invariants ---------------------------------------------------------------- */

TEST(zero_weight_feature_is_exactly_zero) {
  const xd_task_t tasks[] = {XD_TASK_CLASSIFICATION, XD_TASK_REGRESSION};
  for (size_t t = 0; t < 2; t++) {
    xd_model_t *m = zero_weight_mlp(tasks[t]);
    CHECK(m != NULL);
    if (!m) return;
    const size_t n = 300, R = 6;
    double *X = xd_calloc(n * 3, sizeof *X), *y = xd_calloc(n, sizeof *y);
    zero_weight_data(m, n, X, y);
    const xd_imp_scoring_t sc[] = {XD_IMP_ACCURACY, XD_IMP_BALANCED_ACCURACY, XD_IMP_NEG_LOG_LOSS, XD_IMP_R2,
                                   XD_IMP_NEG_MSE};
    for (size_t s = 0; s < 5; s++) {
      if (xd_imp_scoring_is_classification(sc[s]) != (tasks[t] == XD_TASK_CLASSIFICATION)) continue;
      xd_imp_perm_t p;
      xd_error_t err;
      CHECK(xd_imp_perm_init(&p, m, X, y, n, sc[s], R, n, 11, &err) == XD_OK);
      CHECK(run_all_parts(&p, 0) == 0);
      double imp[3 * 6], mean[3], std[3];
      xd_imp_perm_result(&p, imp, mean, std);
      for (size_t r = 0; r < R; r++) CHECK_MSG(imp[1 * R + r] == 0.0, "scoring %s repeat %zu: %.17g",
                                               xd_imp_scoring_name(sc[s]), r, imp[1 * R + r]);
      CHECK(mean[1] == 0.0 && std[1] == 0.0);
      /* the used features do matter */
      CHECK(mean[0] > 0 && mean[2] > 0);
      xd_imp_perm_deinit(&p);
    }
    xd_free(X);
    xd_free(y);
    xd_model_free(m);
  }
}

TEST(std_is_zero_with_one_repeat) {
  xd_model_t *m = zero_weight_mlp(XD_TASK_REGRESSION);
  const size_t n = 200;
  double *X = xd_calloc(n * 3, sizeof *X), *y = xd_calloc(n, sizeof *y);
  zero_weight_data(m, n, X, y);
  xd_imp_perm_t p;
  CHECK(xd_imp_perm_init(&p, m, X, y, n, XD_IMP_R2, 1, n, 3, NULL) == XD_OK);
  CHECK(run_all_parts(&p, 0) == 0);
  double imp[3], mean[3], std[3];
  xd_imp_perm_result(&p, imp, mean, std);
  for (size_t j = 0; j < 3; j++) {
    CHECK(std[j] == 0.0);
    CHECK(mean[j] == imp[j]);
  }
  xd_imp_perm_deinit(&p);
  xd_free(X);
  xd_free(y);
  xd_model_free(m);
}

/* Same seed, same bits: parts in order, in reverse, and on 2 and 3 threads. */
TEST(same_seed_same_answer_any_worker_count) {
  xd_model_t *m = fx_demo("breast_cancer");
  CHECK(m != NULL);
  if (!m) return;
  const xd_dataset_t *bg = xd_model_background(m);
  const size_t d = xd_model_n_features(m), R = 5;
  double *ref = xd_calloc(d * R, sizeof *ref), *got = xd_calloc(d * R, sizeof *got);
  double ref_base = 0;
  for (int mode = 0; mode < 4; mode++) {
    xd_imp_perm_t p;
    CHECK(xd_imp_perm_init(&p, m, bg->X, bg->y, bg->n, XD_IMP_NEG_LOG_LOSS, R, bg->n, 42, NULL) == XD_OK);
    int rc = mode == 0 ? run_all_parts(&p, 0) : mode == 1 ? run_all_parts(&p, 1) : run_threads(&p, (size_t)mode);
    CHECK(rc == 0);
    xd_imp_perm_result(&p, mode ? got : ref, NULL, NULL);
    if (mode == 0)
      ref_base = p.baseline;
    else {
      CHECK(memcmp(ref, got, d * R * sizeof *ref) == 0);
      CHECK(memcmp(&ref_base, &p.baseline, sizeof ref_base) == 0);
    }
    xd_imp_perm_deinit(&p);
  }
  /* another seed gives another answer */
  xd_imp_perm_t p;
  CHECK(xd_imp_perm_init(&p, m, bg->X, bg->y, bg->n, XD_IMP_NEG_LOG_LOSS, R, bg->n, 43, NULL) == XD_OK);
  CHECK(run_all_parts(&p, 0) == 0);
  xd_imp_perm_result(&p, got, NULL, NULL);
  CHECK(memcmp(ref, got, d * R * sizeof *ref) != 0);
  xd_imp_perm_deinit(&p);
  xd_free(ref);
  xd_free(got);
  xd_model_free(m);
}

/* The shuffles are scikit-learn's: cumulative, the same for every column, and a subset
 * without replacement when max_samples < n. */
TEST(shuffles_and_subset_follow_sklearn) {
  xd_model_t *m = zero_weight_mlp(XD_TASK_REGRESSION);
  const size_t n = 50;
  double *X = xd_calloc(n * 3, sizeof *X), *y = xd_calloc(n, sizeof *y);
  zero_weight_data(m, n, X, y);
  xd_imp_perm_t p;
  CHECK(xd_imp_perm_init(&p, m, X, y, n, XD_IMP_R2, 4, 20, 5, NULL) == XD_OK);
  /* subset: 20 distinct rows, ascending, targets follow */
  for (size_t i = 0; i < 20; i++) {
    CHECK(p.rows[i] < n);
    if (i) CHECK(p.rows[i] > p.rows[i - 1]);
    CHECK(p.y_sub[i] == y[p.rows[i]]);
  }
  /* every repeat is a permutation of the subset */
  for (size_t r = 0; r < 4; r++) {
    int seen[20] = {0};
    for (size_t i = 0; i < 20; i++) seen[p.src[r * 20 + i]]++;
    for (size_t i = 0; i < 20; i++) CHECK(seen[i] == 1);
  }
  /* repeats differ (cumulative shuffles, not the same one) */
  CHECK(memcmp(p.src, p.src + 20, 20 * sizeof *p.src) != 0);
  CHECK(run_all_parts(&p, 0) == 0);
  /* the baseline is scored on the full data, as scikit-learn does */
  double P[50], scratch[2];
  xd_model_predict(m, X, n, P, NULL, NULL);
  CHECK(p.baseline == xd_imp_score(XD_IMP_R2, P, n, 1, y, scratch));
  xd_imp_perm_deinit(&p);
  xd_free(X);
  xd_free(y);
  xd_model_free(m);
}

/* For a linear regressor under R², E[importance_j] ≈ 2·w_j²·Var(x_j)/Var(y). */
TEST(linear_regression_matches_closed_form) {
  const size_t d = 4, n = 40000, R = 3;
  const double w[] = {2.0, -1.0, 0.5, 0.0};
  const double sd[] = {1.0, 2.0, 1.5, 1.0};
  xd_model_t *m = fx_linear(d, w, 0.3);
  double *X = xd_calloc(n * d, sizeof *X), *y = xd_calloc(n, sizeof *y);
  xd_rng_t r;
  xd_rng_seed(&r, 99);
  fx_normal(&r, X, n, d, NULL, sd);
  double vy = 0, my = 0;
  for (size_t i = 0; i < n; i++) {
    y[i] = 0.3 + 1.0 * xd_rng_normal(&r);
    for (size_t j = 0; j < d; j++) y[i] += w[j] * X[i * d + j];
    my += y[i];
  }
  my /= (double)n;
  for (size_t i = 0; i < n; i++) vy += (y[i] - my) * (y[i] - my);
  vy /= (double)n;
  xd_imp_perm_t p;
  CHECK(xd_imp_perm_init(&p, m, X, y, n, XD_IMP_R2, R, n, 1, NULL) == XD_OK);
  CHECK(run_all_parts(&p, 0) == 0);
  double mean[4], std[4];
  xd_imp_perm_result(&p, NULL, mean, std);
  for (size_t j = 0; j < d; j++) {
    double vx = 0, mx = 0;
    for (size_t i = 0; i < n; i++) mx += X[i * d + j];
    mx /= (double)n;
    for (size_t i = 0; i < n; i++) vx += (X[i * d + j] - mx) * (X[i * d + j] - mx);
    vx /= (double)n;
    double expect = 2 * w[j] * w[j] * vx / vy;
    CHECK_CLOSE(mean[j], expect, 0.03, 1e-6);
  }
  CHECK(mean[3] == 0.0);
  xd_imp_perm_deinit(&p);
  xd_free(X);
  xd_free(y);
  xd_model_free(m);
}

/* credit: region has no effect (ranks last or within noise of zero), late_payments is in
 * the top 3 — under the API defaults (accuracy, 5 repeats, seed 0, background). */
TEST(credit_ranking) {
  xd_model_t *m = fx_demo("credit");
  CHECK(m != NULL);
  if (!m) return;
  const xd_dataset_t *bg = xd_model_background(m);
  const size_t d = xd_model_n_features(m);
  const xd_feature_t *fs = xd_model_features(m);
  size_t region = d, late = d;
  for (size_t j = 0; j < d; j++) {
    if (strcmp(fs[j].name, "region") == 0) region = j;
    if (strcmp(fs[j].name, "late_payments") == 0) late = j;
  }
  CHECK(region < d && late < d);
  const xd_imp_scoring_t sc[] = {XD_IMP_ACCURACY, XD_IMP_NEG_LOG_LOSS};
  for (size_t s = 0; s < 2; s++) {
    xd_imp_perm_t p;
    CHECK(xd_imp_perm_init(&p, m, bg->X, bg->y, bg->n, sc[s], 5, bg->n, 0, NULL) == XD_OK);
    CHECK(run_all_parts(&p, 0) == 0);
    double mean[16], std[16];
    xd_imp_perm_result(&p, NULL, mean, std);
    size_t above_late = 0, below_region = 0;
    for (size_t j = 0; j < d; j++) {
      above_late += mean[j] > mean[late];
      below_region += mean[j] < mean[region];
    }
    CHECK_MSG(above_late < 3, "%s: late_payments has %zu features above it", xd_imp_scoring_name(sc[s]),
              above_late);
    CHECK_MSG(below_region == 0 || fabs(mean[region]) <= 2 * std[region] + 0.005,
              "%s: region mean %g std %g", xd_imp_scoring_name(sc[s]), mean[region], std[region]);
    xd_imp_perm_deinit(&p);
  }
  xd_model_free(m);
}

/* ---- connection weights ------------------------------------------------------------------- */

/* NeuralNetTools' example: wts = c(13.12,1.49,0.16,-0.11,-0.19,-0.16,0.56,-0.52,0.81),
 * struct = c(2,2,1): hidden node h = [bias, x1, x2], output = [bias, h1, h2]. */
static xd_model_t *neuralnettools_example(xd_act_t hidden) {
  static const double w1[] = {1.49, 0.16, -0.19, -0.16}; /* (out=2, in=2) */
  static const double b1[] = {13.12, -0.11};
  static const double w2[] = {-0.52, 0.81};
  static const double b2[] = {0.56};
  fx_layer_t L[2] = {{2, 2, w1, b1, hidden}, {2, 1, w2, b2, XD_ACT_IDENTITY}};
  return fx_build(XD_TASK_REGRESSION, 2, NULL, 0, L, 2, NULL, NULL, NULL, NULL, 0);
}

TEST(garson_and_olden_golden) {
  xd_model_t *m = neuralnettools_example(XD_ACT_SIGMOID);
  CHECK(m != NULL);
  if (!m) return;
  double g[2], o[2];
  CHECK(xd_imp_garson(m, 0, g, NULL) == XD_OK);
  CHECK(xd_imp_olden(m, 0, o, NULL) == XD_OK);
  CHECK_NEAR(g[0], 0.722944, 5e-7);
  CHECK_NEAR(g[1], 0.277056, 5e-7);
  CHECK_NEAR(g[0] + g[1], 1.0, 1e-15);
  CHECK_NEAR(o[0], -0.9287, 1e-12);
  CHECK_NEAR(o[1], -0.2128, 1e-12);
  CHECK(xd_imp_olden(m, 1, o, NULL) == XD_EINVAL); /* one output only */
  xd_model_free(m);
}

TEST(one_hidden_unit_closed_forms) {
  /* Garson_i = |W_i1| / Σ|W_k1| and Olden_i = W_i1·v_1 */
  static const double w1[] = {0.5, -1.5, 2.0};
  static const double w2[] = {-3.0};
  fx_layer_t L[2] = {{3, 1, w1, NULL, XD_ACT_TANH}, {1, 1, w2, NULL, XD_ACT_IDENTITY}};
  xd_model_t *m = fx_build(XD_TASK_REGRESSION, 3, NULL, 0, L, 2, NULL, NULL, NULL, NULL, 0);
  double g[3], o[3];
  CHECK(xd_imp_garson(m, 0, g, NULL) == XD_OK && xd_imp_olden(m, 0, o, NULL) == XD_OK);
  for (size_t i = 0; i < 3; i++) {
    CHECK_NEAR(g[i], fabs(w1[i]) / 4.0, 1e-15);
    CHECK_NEAR(o[i], w1[i] * -3.0, 1e-15);
  }
  xd_model_free(m);
}

/* Deep Garson (our generalization): a_j = (|W2|·|v|)_j weights first-hidden unit j, then
 * Garson's per-unit normalization over the inputs. Checked against a direct evaluation. */
TEST(garson_deep_generalization) {
  static const double w1[] = {1.0, -2.0, 0.5, 0.25, -1.5, 3.0}; /* (3 hidden, 2 inputs) */
  static const double w2[] = {0.5, -1.0, 2.0, -0.3, 0.7, 0.1};  /* (2 hidden, 3 hidden) */
  static const double w3[] = {-1.2, 0.4};                       /* (1, 2) */
  fx_layer_t L[3] = {{2, 3, w1, NULL, XD_ACT_RELU}, {3, 2, w2, NULL, XD_ACT_TANH}, {2, 1, w3, NULL, XD_ACT_IDENTITY}};
  xd_model_t *m = fx_build(XD_TASK_REGRESSION, 2, NULL, 0, L, 3, NULL, NULL, NULL, NULL, 0);
  CHECK(m != NULL);
  if (!m) return;
  double a[3], S[2] = {0, 0};
  for (size_t j = 0; j < 3; j++) a[j] = fabs(w2[0 * 3 + j]) * fabs(w3[0]) + fabs(w2[1 * 3 + j]) * fabs(w3[1]);
  for (size_t j = 0; j < 3; j++) {
    double c0 = fabs(w1[j * 2]) * a[j], c1 = fabs(w1[j * 2 + 1]) * a[j];
    S[0] += c0 / (c0 + c1);
    S[1] += c1 / (c0 + c1);
  }
  double g[2];
  CHECK(xd_imp_garson(m, 0, g, NULL) == XD_OK);
  CHECK_NEAR(g[0], S[0] / (S[0] + S[1]), 1e-15);
  CHECK_NEAR(g[1], S[1] / (S[0] + S[1]), 1e-15);
  /* and Olden is the plain product W1ᵀ·W2ᵀ·v in our (out, in) storage */
  double o[2];
  CHECK(xd_imp_olden(m, 0, o, NULL) == XD_OK);
  for (size_t i = 0; i < 2; i++) {
    double want = 0;
    for (size_t j = 0; j < 3; j++)
      for (size_t k = 0; k < 2; k++) want += w1[j * 2 + i] * w2[k * 3 + j] * w3[k];
    CHECK_NEAR(o[i], want, 1e-15);
  }
  xd_model_free(m);
}

/* With identity activations the network is linear: Olden (any depth) is its gradient. */
TEST(olden_equals_gradient_of_identity_network) {
  static const double w1[] = {0.3, -0.2, 0.5, 0.1, 0.7, -0.4, 0.2, 0.9, -0.6, 0.05, 0.35, -0.15,
                              0.25, 0.45, -0.55, 0.65, -0.75, 0.85, 0.95, -0.05};  /* (5, 4) */
  static const double w2[] = {0.2, -0.3, 0.4, 0.1, -0.5, 0.6, 0.7, -0.8, 0.9, -0.1, 0.3, 0.2, -0.4, 0.5, 0.6};
  /* (3, 5) */
  static const double w3[] = {1.1, -0.9, 0.4}; /* (1, 3) */
  static const double b[] = {0.1, 0.2, 0.3, 0.4, 0.5};
  fx_layer_t L[3] = {{4, 5, w1, b, XD_ACT_IDENTITY}, {5, 3, w2, b, XD_ACT_IDENTITY}, {3, 1, w3, b, XD_ACT_IDENTITY}};
  const double mean[] = {1, 2, 3, 4}, scale[] = {2, 0.5, 1, 4};
  xd_model_t *m = fx_build(XD_TASK_REGRESSION, 4, NULL, 0, L, 3, mean, scale, NULL, NULL, 0);
  CHECK(m != NULL);
  if (!m) return;
  double o[4], E[4] = {0.3, -1.2, 2.0, 0.7}, f, G[4];
  CHECK(xd_imp_olden(m, 0, o, NULL) == XD_OK);
  CHECK(xd_model_gradient(m, E, 1, NULL, XD_OUTPUT_PROBABILITY, &f, G, NULL, NULL, NULL) == XD_OK);
  for (size_t i = 0; i < 4; i++) CHECK_NEAR(o[i], G[i], 1e-12);
  /* and mean |gradient| in raw units is |Olden| / scale at every row */
  double X[3 * 4] = {0, 1, 2, 3, 4, 5, 6, 7, -1, -2, -3, -4}, A[12];
  CHECK(xd_imp_abs_gradient(m, X, 3, NULL, A, NULL, NULL) == XD_OK);
  for (size_t r = 0; r < 3; r++)
    for (size_t i = 0; i < 4; i++) CHECK_NEAR(A[r * 4 + i], fabs(o[i]) / scale[i], 1e-12);
  xd_model_free(m);
}

/* Garson's generalization to deep networks sums to 1; no hidden layer gives |w|/Σ|w|;
 * categorical features sum their one-hot inputs; a sigmoid unit's class 0 is -v. */
TEST(connection_weights_on_demo_models) {
  const char *names[] = {"breast_cancer", "credit", "iris", "wine", "diabetes"};
  for (size_t q = 0; q < 5; q++) {
    xd_model_t *m = fx_demo(names[q]);
    CHECK(m != NULL);
    if (!m) continue;
    size_t ni = xd_model_n_inputs(m), d = xd_model_n_features(m);
    double *g = xd_calloc(ni, sizeof *g), *o = xd_calloc(ni, sizeof *o), *gf = xd_calloc(d, sizeof *gf);
    size_t t = xd_imp_default_weight_target(m);
    CHECK(xd_imp_garson(m, t, g, NULL) == XD_OK);
    CHECK(xd_imp_olden(m, t, o, NULL) == XD_OK);
    double s = 0;
    for (size_t i = 0; i < ni; i++) {
      CHECK(g[i] >= 0);
      s += g[i];
    }
    CHECK_NEAR(s, 1.0, 1e-12);
    xd_imp_sum_inputs(m, g, gf);
    s = 0;
    for (size_t j = 0; j < d; j++) s += gf[j];
    CHECK_NEAR(s, 1.0, 1e-12);
    size_t nl = 0;
    const xd_dense_t *L = xd_model_dense_layers(m, &nl);
    if (nl == 1) { /* iris: no hidden layer */
      double a = 0;
      for (size_t i = 0; i < ni; i++) a += fabs(L[0].wd[t * ni + i]);
      for (size_t i = 0; i < ni; i++) {
        CHECK_NEAR(g[i], fabs(L[0].wd[t * ni + i]) / a, 1e-15);
        CHECK(o[i] == L[0].wd[t * ni + i]);
      }
    }
    if (strcmp(names[q], "credit") == 0) {
      double of[16];
      xd_imp_sum_inputs(m, o, of);
      size_t off = xd_model_input_offset(m, 3), w = xd_model_input_width(m, 3);
      CHECK(w == 4);
      double sum = 0;
      for (size_t c = 0; c < w; c++) sum += o[off + c];
      CHECK_NEAR(of[3], sum, 1e-15);
    }
    xd_free(g);
    xd_free(o);
    xd_free(gf);
    xd_model_free(m);
  }
}

TEST(sigmoid_output_unit_sign) {
  static const double w1[] = {1.0, -2.0};
  fx_layer_t L[1] = {{2, 1, w1, NULL, XD_ACT_SIGMOID}};
  xd_model_t *m = fx_build(XD_TASK_CLASSIFICATION, 2, NULL, 2, L, 1, NULL, NULL, NULL, NULL, 0);
  CHECK(m != NULL);
  if (!m) return;
  double o1[2], o0[2];
  CHECK(xd_imp_default_weight_target(m) == 1);
  CHECK(xd_imp_olden(m, 1, o1, NULL) == XD_OK && xd_imp_olden(m, 0, o0, NULL) == XD_OK);
  CHECK(o1[0] == 1.0 && o1[1] == -2.0 && o0[0] == -1.0 && o0[1] == 2.0);
  xd_model_free(m);
}

/* mean |gradient| of a linear regression with preprocess: |w_j| / scale_j per row. */
TEST(abs_gradient_raw_units) {
  const double w[] = {1.5, -0.5};
  fx_layer_t L = {2, 1, w, NULL, XD_ACT_IDENTITY};
  const double mean[] = {10, -3}, scale[] = {4, 0.25};
  xd_model_t *m = fx_build(XD_TASK_REGRESSION, 2, NULL, 0, &L, 1, mean, scale, NULL, NULL, 0);
  double X[] = {1, 2, 3, 4, 5, 6}, A[6];
  size_t t[3] = {0, 0, 0};
  CHECK(xd_imp_abs_gradient(m, X, 3, t, A, NULL, NULL) == XD_OK);
  for (size_t i = 0; i < 3; i++) {
    CHECK_NEAR(A[i * 2], 1.5 / 4, 1e-15);
    CHECK_NEAR(A[i * 2 + 1], 0.5 / 0.25, 1e-15);
  }
  xd_model_free(m);
}

/* Every allocation of a plan, its parts and the connection-weight and gradient paths may
 * fail: the answer is then XD_ENOMEM and nothing leaks (ASan's leak check in make asan). */
TEST(allocation_failures_are_clean) {
  xd_model_t *m = zero_weight_mlp(XD_TASK_CLASSIFICATION);
  const size_t n = 40;
  double X[40 * 3], y[40], A[40 * 3], o[3];
  zero_weight_data(m, n, X, y);
  int injected_any = 0;
  for (long k = 1; k < 400; k++) {
    long before = xd_alloc_failures();
    xd_alloc_fail_after(k);
    xd_imp_perm_t p;
    xd_error_t err;
    int rc = xd_imp_perm_init(&p, m, X, y, n, XD_IMP_NEG_LOG_LOSS, 3, 20, 1, &err);
    if (rc == XD_OK) {
      for (size_t q = 0; q < xd_imp_perm_parts(&p) && rc == XD_OK; q++) rc = xd_imp_perm_run(&p, q, NULL, &err);
      xd_imp_perm_deinit(&p);
    }
    if (rc == XD_OK) rc = xd_imp_olden(m, 1, o, &err);
    if (rc == XD_OK) rc = xd_imp_garson(m, 1, o, &err);
    if (rc == XD_OK) rc = xd_imp_abs_gradient(m, X, n, NULL, A, NULL, &err);
    xd_alloc_fail_after(0);
    int injected = xd_alloc_failures() > before;
    CHECK_MSG(injected ? rc == XD_ENOMEM : rc == XD_OK, "allocation %ld: rc %d", k, rc);
    injected_any |= injected;
    if (!injected) break; /* every allocation has been failed once */
  }
  CHECK(injected_any);
  xd_model_free(m);
}

int main(void) {
  RUN(scorers_match_sklearn_conventions);
  RUN(zero_weight_feature_is_exactly_zero);
  RUN(std_is_zero_with_one_repeat);
  RUN(same_seed_same_answer_any_worker_count);
  RUN(shuffles_and_subset_follow_sklearn);
  RUN(linear_regression_matches_closed_form);
  RUN(credit_ranking);
  RUN(garson_and_olden_golden);
  RUN(one_hidden_unit_closed_forms);
  RUN(garson_deep_generalization);
  RUN(olden_equals_gradient_of_identity_network);
  RUN(connection_weights_on_demo_models);
  RUN(sigmoid_output_unit_sign);
  RUN(abs_gradient_raw_units);
  RUN(allocation_failures_are_clean);
  return TEST_REPORT();
}
