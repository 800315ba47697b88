/* test_shap.c — core/shap and /explain/shap's job: the closed forms of docs/algorithms.md
 * §4/§6 (linear regression, logistic regression with the logit link), Kernel SHAP equal
 * to exact Shapley values when every coalition is enumerated (M <= 11), efficiency on
 * every answer, non-varying features, categorical players, L1 selection, the k-means
 * summary, and the same answer whatever the worker count (jobs run by 1, 2 or 3 threads
 * in different part orders). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "api/bundle.h"
#include "api/endpoints.h"
#include "core/gradient.h"
#include "core/mat.h"
#include "core/shap.h"
#include "tests/gs_fixtures.h"
#include "tests/test.h"

#define EFF_TOL 1e-9

/* Σφ = out - expected for every row. */
static void check_efficiency(const double *phi, const double *expected, const double *out, size_t n, size_t d) {
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    for (size_t j = 0; j < d; j++) s += phi[i * d + j];
    CHECK_MSG(fabs(s - (out[i] - expected[i])) <= EFF_TOL, "row %zu: gap %.3g", i, s - (out[i] - expected[i]));
  }
}

/* The model's background as a uniform xd_shap_bg_t (no summary). */
static xd_shap_bg_t full_bg(const xd_model_t *m) {
  xd_shap_bg_t bg;
  xd_shap_summarize(xd_model_background(m), SIZE_MAX, 0, &bg, NULL);
  return bg;
}

static xd_shap_opts_t sopts(xd_shap_method_t method) {
  xd_shap_opts_t o = {method, XD_SHAP_LINK_IDENTITY, 0, 0, 42};
  return o;
}

/* ---- closed forms --------------------------------------------------------------------- */

/* Linear regression: kernel, exact and linear all give w_i (x_i - μ_i), μ the weighted
 * background mean (kernel/exact through float predictions, linear in double). */
TEST(linear_regression_all_methods_closed_form) {
  size_t ds[2] = {4, 14};
  for (int c = 0; c < 2; c++) {
    size_t d = ds[c];
    gs_net_t g = {.task = XD_TASK_REGRESSION, .d = d, .n_layers = 1, .out_act = XD_ACT_IDENTITY, .n_out = 1,
                  .n_bg = 12, .preprocess = 1, .seed = 5 + c};
    xd_model_t *m = gs_build(&g);
    if (!m) continue;
    size_t nl;
    const xd_dense_t *L = xd_model_dense_layers(m, &nl);
    xd_shap_bg_t bg = full_bg(m);
    bg.w[0] *= 3; /* non-uniform weights */
    double ws = 0;
    for (size_t i = 0; i < bg.n; i++) ws += bg.w[i];
    for (size_t i = 0; i < bg.n; i++) bg.w[i] /= ws;
    double X[3 * 14], mu[14] = {0}, phi[3 * 14], ex[3], out[3];
    gs_rows(m, &g, 3, 9, X);
    for (size_t i = 0; i < bg.n; i++)
      for (size_t j = 0; j < d; j++) mu[j] += bg.w[i] * bg.X[i * d + j];
    xd_shap_method_t methods[3] = {XD_SHAP_KERNEL, XD_SHAP_EXACT, XD_SHAP_LINEAR};
    for (int k = 0; k < 3; k++) {
      if (methods[k] == XD_SHAP_EXACT && d > 11) continue;
      size_t tg[3] = {0, 0, 0};
      xd_shap_opts_t o = sopts(methods[k]);
      xd_shap_method_t ran;
      CHECK(xd_shap_explain(m, &o, &bg, X, 3, tg, 0, phi, ex, out, &ran, NULL, NULL) == XD_OK);
      CHECK(ran == methods[k]);
      double tol = methods[k] == XD_SHAP_LINEAR ? 1e-12 : 2e-5; /* float GEMM predictions */
      for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < d; j++) {
          double want = L->wd[j] / xd_model_pre_scale(m, j) * (X[i * d + j] - mu[j]);
          CHECK_MSG(fabs(phi[i * d + j] - want) <= tol * (1 + fabs(want)), "d %zu method %d: %.10g vs %.10g", d, k,
                    phi[i * d + j], want);
        }
      check_efficiency(phi, ex, out, 3, d);
    }
    /* auto picks linear for a linear model with the identity link */
    xd_shap_opts_t o = sopts(XD_SHAP_AUTO);
    CHECK(xd_shap_resolve_method(m, o.method, o.link, bg.n) == XD_SHAP_LINEAR);
    xd_shap_bg_deinit(&bg);
    xd_model_free(m);
  }
}

/* Logistic regression with link='logit' and a single background row b: φ_i = w_i(x_i-b_i). */
TEST(logistic_logit_link_single_background_row) {
  gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = 5, .n_layers = 1, .out_act = XD_ACT_SOFTMAX, .n_out = 2,
                .n_bg = 1, .preprocess = 1, .seed = 17};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  size_t nl, d = 5;
  const xd_dense_t *L = xd_model_dense_layers(m, &nl);
  xd_shap_bg_t bg = full_bg(m);
  double X[2 * 5], phi[10], ex[2], out[2];
  gs_rows(m, &g, 2, 3, X);
  xd_shap_method_t methods[3] = {XD_SHAP_KERNEL, XD_SHAP_EXACT, XD_SHAP_LINEAR};
  for (int k = 0; k < 3; k++)
    for (size_t t = 0; t < 2; t++) {
      size_t tg[2] = {t, t};
      xd_shap_opts_t o = sopts(methods[k]);
      o.link = XD_SHAP_LINK_LOGIT;
      CHECK(xd_shap_explain(m, &o, &bg, X, 2, tg, 0, phi, ex, out, NULL, NULL, NULL) == XD_OK);
      double tol = methods[k] == XD_SHAP_LINEAR ? 1e-12 : 1e-4;
      for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < d; j++) {
          double w = (L->wd[t * d + j] - L->wd[(1 - t) * d + j]) / xd_model_pre_scale(m, j);
          double want = w * (X[i * d + j] - bg.X[j]);
          CHECK_MSG(fabs(phi[i * d + j] - want) <= tol * (1 + fabs(want)), "method %d t %zu: %.10g vs %.10g", k, t,
                    phi[i * d + j], want);
        }
      check_efficiency(phi, ex, out, 2, d);
    }
  /* a three-class softmax is not linear in log-odds: 'linear' is refused */
  gs_net_t g3 = g;
  g3.n_out = 3;
  xd_model_t *m3 = gs_build(&g3);
  if (m3) {
    CHECK(!xd_shap_is_linear(m3, XD_SHAP_LINK_LOGIT));
    double p3[5], e3, o3;
    CHECK(xd_shap_linear(m3, X, 0, XD_SHAP_LINK_LOGIT, &bg, p3, &e3, &o3, NULL) == XD_EINVAL);
    xd_model_free(m3);
  }
  xd_shap_bg_deinit(&bg);
  xd_model_free(m);
}

/* ---- Kernel SHAP = exact Shapley when enumeration is complete ------------------------------ */

TEST(kernel_equals_exact_when_m_le_11) {
  size_t hidden[1] = {12}, ds[3] = {3, 6, 11};
  for (int c = 0; c < 3; c++) {
    size_t d = ds[c];
    gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = d, .n_layers = 2, .hidden = hidden, .act = XD_ACT_TANH,
                  .out_act = XD_ACT_SOFTMAX, .n_out = 3, .n_bg = 9, .preprocess = 1, .seed = 40 + c, .wscale = 2};
    xd_model_t *m = gs_build(&g);
    if (!m) continue;
    xd_shap_bg_t bg = full_bg(m);
    double X[2 * 11], pk[2 * 11], pe[2 * 11], ek[2], ee[2], ok[2], oe[2];
    gs_rows(m, &g, 2, 8, X);
    for (int link = 0; link < 2; link++) {
      size_t t1[2] = {SIZE_MAX, 2}, t2[2] = {SIZE_MAX, 2};
      xd_shap_opts_t o = sopts(XD_SHAP_KERNEL);
      o.link = (xd_shap_link_t)link;
      CHECK(xd_shap_explain(m, &o, &bg, X, 2, t1, 0, pk, ek, ok, NULL, NULL, NULL) == XD_OK);
      o.method = XD_SHAP_EXACT;
      CHECK(xd_shap_explain(m, &o, &bg, X, 2, t2, 0, pe, ee, oe, NULL, NULL, NULL) == XD_OK);
      CHECK(t1[0] == t2[0] && t1[0] < 3);
      for (size_t t = 0; t < 2 * d; t++) CHECK_MSG(fabs(pk[t] - pe[t]) <= 1e-9, "M=%zu link %d: %.15g vs %.15g", d, link, pk[t], pe[t]);
      check_efficiency(pk, ek, ok, 2, d);
      check_efficiency(pe, ee, oe, 2, d);
    }
    xd_shap_bg_deinit(&bg);
    xd_model_free(m);
  }
}

/* Sampling (M = 30): efficiency exact, deterministic from the seed, another seed differs,
 * and a larger budget moves the estimate toward the M = 30 answer of a larger budget. */
TEST(kernel_sampling_efficiency_and_seed) {
  size_t hidden[2] = {16, 8};
  gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = 30, .n_layers = 3, .hidden = hidden, .act = XD_ACT_RELU,
                .out_act = XD_ACT_SOFTMAX, .n_out = 2, .n_bg = 80, .preprocess = 1, .seed = 77};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  xd_shap_bg_t bg;
  CHECK(xd_shap_summarize(xd_model_background(m), 20, 9, &bg, NULL) == XD_OK);
  CHECK(bg.n <= 20);
  double X[2 * 30], a[60], b[60], c[60], ex[2], out[2];
  gs_rows(m, &g, 2, 1, X);
  size_t tg[2] = {1, 0};
  xd_shap_opts_t o = sopts(XD_SHAP_KERNEL);
  CHECK(xd_shap_explain(m, &o, &bg, X, 2, tg, 0, a, ex, out, NULL, NULL, NULL) == XD_OK);
  check_efficiency(a, ex, out, 2, 30);
  CHECK(xd_shap_explain(m, &o, &bg, X, 2, tg, 0, b, ex, out, NULL, NULL, NULL) == XD_OK);
  CHECK(memcmp(a, b, sizeof a) == 0);
  o.seed = 43;
  CHECK(xd_shap_explain(m, &o, &bg, X, 2, tg, 0, c, ex, out, NULL, NULL, NULL) == XD_OK);
  CHECK(memcmp(a, c, sizeof a) != 0);
  check_efficiency(c, ex, out, 2, 30);
  o.nsamples = 100; /* fewer coalitions than... still efficient */
  CHECK(xd_shap_explain(m, &o, &bg, X, 2, tg, 0, c, ex, out, NULL, NULL, NULL) == XD_OK);
  check_efficiency(c, ex, out, 2, 30);
  o.nsamples = 20; /* fewer coalitions than features: the fallbacks keep efficiency */
  CHECK(xd_shap_explain(m, &o, &bg, X, 2, tg, 0, c, ex, out, NULL, NULL, NULL) == XD_OK);
  check_efficiency(c, ex, out, 2, 30);
  for (size_t t = 0; t < 60; t++) CHECK(isfinite(c[t]));
  xd_shap_bg_deinit(&bg);
  xd_model_free(m);
}

/* M = 13: the sampled estimate approaches the exact Shapley values as the budget grows
 * (a mis-weighted schedule would converge elsewhere). */
TEST(kernel_sampling_converges_to_exact) {
  size_t hidden[1] = {16};
  gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = 13, .n_layers = 2, .hidden = hidden, .act = XD_ACT_TANH,
                .out_act = XD_ACT_SOFTMAX, .n_out = 3, .n_bg = 10, .preprocess = 1, .seed = 91, .wscale = 2};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  xd_shap_bg_t bg = full_bg(m);
  double x[13], ex[13], ph[13], e, o;
  gs_rows(m, &g, 1, 3, x);
  size_t t = 1;
  xd_shap_opts_t op = sopts(XD_SHAP_EXACT);
  CHECK(xd_shap_explain(m, &op, &bg, x, 1, &t, 0, ex, &e, &o, NULL, NULL, NULL) == XD_OK);
  double scale = 0, err_prev = INFINITY;
  for (size_t j = 0; j < 13; j++) scale = fabs(ex[j]) > scale ? fabs(ex[j]) : scale;
  size_t budgets[3] = {300, 2074, 8190}; /* 8190 = 2^13 - 2: every coalition */
  for (int b = 0; b < 3; b++) {
    double err = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) { /* mean error over a few seeds */
      op = sopts(XD_SHAP_KERNEL);
      op.nsamples = budgets[b];
      op.seed = seed;
      CHECK(xd_shap_explain(m, &op, &bg, x, 1, &t, 0, ph, &e, &o, NULL, NULL, NULL) == XD_OK);
      check_efficiency(ph, &e, &o, 1, 13);
      for (size_t j = 0; j < 13; j++) err += fabs(ph[j] - ex[j]) / 4;
    }
    CHECK_MSG(err < err_prev, "budget %zu: error %g, before %g", budgets[b], err, err_prev);
    if (budgets[b] == 8190) CHECK_MSG(err <= 1e-6 * 13 * scale + 1e-9, "full budget: error %g", err);
    if (budgets[b] == 2074) CHECK_MSG(err <= 0.05 * 13 * scale, "auto budget: error %g (scale %g)", err, scale);
    err_prev = err;
  }
  xd_shap_bg_deinit(&bg);
  xd_model_free(m);
}

/* The coalition schedule: complete sizes enumerated with shap's weights, kernel weights
 * summing to 1, masks unique. */
TEST(kernel_schedule_shape) {
  gs_net_t g = {.task = XD_TASK_REGRESSION, .d = 20, .n_layers = 1, .out_act = XD_ACT_IDENTITY, .n_out = 1,
                .n_bg = 5, .seed = 1};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  xd_shap_bg_t bg = full_bg(m);
  double x[20];
  gs_rows(m, &g, 1, 2, x);
  xd_rng_t r;
  xd_rng_seed(&r, 5);
  xd_shap_plan_t pl;
  CHECK(xd_shap_plan_init(&pl, XD_SHAP_KERNEL, x, &bg, 0, &r, NULL) == XD_OK);
  CHECK(pl.M == 20);
  CHECK(pl.K == 2 * 20 + 2048);
  double s = 0;
  for (size_t k = 0; k < pl.K; k++) s += pl.kw[k];
  CHECK_NEAR(s, 1, 1e-12);
  /* sizes 1 and 19 (40 masks) and 2 and 18 (380) are enumerated first: 420 fixed */
  for (size_t k = 0; k < 40; k++) {
    size_t c = 0;
    for (size_t v = 0; v < 20; v++) c += pl.masks[k * 20 + v];
    CHECK(c == (k % 2 ? 19u : 1u));
  }
  for (size_t k = 0; k < pl.K; k += 97)
    for (size_t q = k + 1; q < pl.K; q++) CHECK(memcmp(pl.masks + k * 20, pl.masks + q * 20, 20) != 0);
  xd_shap_plan_deinit(&pl);
  xd_shap_bg_deinit(&bg);
  xd_model_free(m);
}

/* ---- players -------------------------------------------------------------------------------- */

TEST(non_varying_features_get_zero) {
  size_t hidden[1] = {6};
  gs_net_t g = {.task = XD_TASK_REGRESSION, .d = 5, .n_layers = 2, .hidden = hidden, .act = XD_ACT_SIGMOID,
                .out_act = XD_ACT_IDENTITY, .n_out = 1, .n_bg = 6, .seed = 3};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  xd_shap_bg_t bg = full_bg(m);
  for (size_t i = 0; i < bg.n; i++) bg.X[i * 5 + 2] = 1.5; /* constant column */
  double x[5], phi[5], ex, out;
  gs_rows(m, &g, 1, 4, x);
  x[2] = 1.5;
  for (int k = XD_SHAP_KERNEL; k <= XD_SHAP_EXACT; k++) {
    size_t tg = 0;
    xd_shap_opts_t o = sopts((xd_shap_method_t)k);
    CHECK(xd_shap_explain(m, &o, &bg, x, 1, &tg, 0, phi, &ex, &out, NULL, NULL, NULL) == XD_OK);
    CHECK(phi[2] == 0);
    check_efficiency(phi, &ex, &out, 1, 5);
  }
  /* one varying feature: φ = f(x) - E f exactly */
  memcpy(x, bg.X, sizeof x);
  for (size_t i = 0; i < bg.n; i++) memcpy(bg.X + i * 5, x, sizeof x);
  x[4] += 1;
  size_t tg = 0;
  xd_shap_opts_t o = sopts(XD_SHAP_KERNEL);
  CHECK(xd_shap_explain(m, &o, &bg, x, 1, &tg, 0, phi, &ex, &out, NULL, NULL, NULL) == XD_OK);
  for (size_t j = 0; j < 4; j++) CHECK(phi[j] == 0);
  CHECK_NEAR(phi[4], out - ex, 1e-15);
  xd_shap_bg_deinit(&bg);
  xd_model_free(m);
}

/* A categorical feature is one player: kernel = exact, efficiency, and the closed form on
 * a linear model (the one-hot weights of x's category minus the frequency-weighted mean). */
TEST(categorical_feature_is_one_player) {
  size_t cats[4] = {0, 4, 0, 3}, hidden[1] = {8};
  gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = 4, .cats = cats, .n_layers = 2, .hidden = hidden,
                .act = XD_ACT_TANH, .out_act = XD_ACT_SOFTMAX, .n_out = 2, .n_bg = 10, .preprocess = 1, .seed = 23};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  xd_shap_bg_t bg = full_bg(m);
  double X[3 * 4], pk[12], pe[12], ex[3], out[3];
  gs_rows(m, &g, 3, 6, X);
  size_t t1[3] = {1, 1, 0}, t2[3] = {1, 1, 0};
  xd_shap_opts_t o = sopts(XD_SHAP_KERNEL);
  CHECK(xd_shap_explain(m, &o, &bg, X, 3, t1, 0, pk, ex, out, NULL, NULL, NULL) == XD_OK);
  check_efficiency(pk, ex, out, 3, 4);
  o.method = XD_SHAP_EXACT;
  CHECK(xd_shap_explain(m, &o, &bg, X, 3, t2, 0, pe, ex, out, NULL, NULL, NULL) == XD_OK);
  for (size_t t = 0; t < 12; t++) CHECK_NEAR(pk[t], pe[t], 1e-9);
  xd_shap_bg_deinit(&bg);
  xd_model_free(m);

  gs_net_t gl = {.task = XD_TASK_REGRESSION, .d = 4, .cats = cats, .n_layers = 1, .out_act = XD_ACT_IDENTITY,
                 .n_out = 1, .n_bg = 25, .preprocess = 1, .seed = 24};
  m = gs_build(&gl);
  if (!m) return;
  size_t nl;
  const xd_dense_t *L = xd_model_dense_layers(m, &nl);
  bg = full_bg(m);
  gs_rows(m, &gl, 3, 6, X);
  size_t tg[3] = {0, 0, 0};
  o = sopts(XD_SHAP_LINEAR);
  CHECK(xd_shap_explain(m, &o, &bg, X, 3, tg, 0, pe, ex, out, NULL, NULL, NULL) == XD_OK);
  o.method = XD_SHAP_EXACT;
  CHECK(xd_shap_explain(m, &o, &bg, X, 3, tg, 0, pk, ex, out, NULL, NULL, NULL) == XD_OK);
  for (size_t i = 0; i < 3; i++) {
    size_t off = xd_model_input_offset(m, 1);
    double mean_w = 0;
    for (size_t r = 0; r < bg.n; r++) mean_w += bg.w[r] * L->wd[off + (size_t)bg.X[r * 4 + 1]];
    CHECK_NEAR(pe[i * 4 + 1], L->wd[off + (size_t)X[i * 4 + 1]] - mean_w, 1e-12);
    for (size_t j = 0; j < 4; j++) CHECK_NEAR(pk[i * 4 + j], pe[i * 4 + j], 2e-5);
  }
  xd_shap_bg_deinit(&bg);
  xd_model_free(m);
}

/* ---- L1 selection ------------------------------------------------------------------------ */

TEST(l1_num_features_selects_k_and_keeps_efficiency) {
  size_t hidden[1] = {10};
  gs_net_t g = {.task = XD_TASK_REGRESSION, .d = 12, .n_layers = 2, .hidden = hidden, .act = XD_ACT_SOFTPLUS,
                .out_act = XD_ACT_IDENTITY, .n_out = 1, .n_bg = 8, .seed = 29};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  xd_shap_bg_t bg = full_bg(m);
  double X[2 * 12], phi[24], full[24], ex[2], out[2];
  gs_rows(m, &g, 2, 5, X);
  size_t tg[2] = {0, 0};
  xd_shap_opts_t o = sopts(XD_SHAP_KERNEL);
  CHECK(xd_shap_explain(m, &o, &bg, X, 2, tg, 0, full, ex, out, NULL, NULL, NULL) == XD_OK);
  for (size_t k = 1; k <= 6; k += 5) {
    o.l1_k = k;
    CHECK(xd_shap_explain(m, &o, &bg, X, 2, tg, 0, phi, ex, out, NULL, NULL, NULL) == XD_OK);
    check_efficiency(phi, ex, out, 2, 12);
    for (size_t i = 0; i < 2; i++) {
      size_t nz = 0;
      for (size_t j = 0; j < 12; j++) nz += phi[i * 12 + j] != 0;
      CHECK(nz <= k && nz >= 1);
    }
  }
  /* a linear model: LARS enters the largest |w_i (x_i - μ_i)| first */
  gs_net_t gl = {.task = XD_TASK_REGRESSION, .d = 8, .n_layers = 1, .out_act = XD_ACT_IDENTITY, .n_out = 1,
                 .n_bg = 8, .seed = 30};
  xd_model_t *lm = gs_build(&gl);
  if (lm) {
    xd_shap_bg_t lb = full_bg(lm);
    double lx[8], lp[8], lf[8], le, lo;
    gs_rows(lm, &gl, 1, 3, lx);
    size_t t0 = 0;
    xd_shap_opts_t ol = sopts(XD_SHAP_KERNEL);
    CHECK(xd_shap_explain(lm, &ol, &lb, lx, 1, &t0, 0, lf, &le, &lo, NULL, NULL, NULL) == XD_OK);
    ol.l1_k = 1;
    CHECK(xd_shap_explain(lm, &ol, &lb, lx, 1, &t0, 0, lp, &le, &lo, NULL, NULL, NULL) == XD_OK);
    size_t top = 0, got = 0;
    for (size_t j = 1; j < 8; j++) top = fabs(lf[j]) > fabs(lf[top]) ? j : top;
    for (size_t j = 0; j < 8; j++) got = lp[j] != 0 ? j : got;
    CHECK(top == got);
    xd_shap_bg_deinit(&lb);
    xd_model_free(lm);
  }
  xd_shap_bg_deinit(&bg);
  xd_model_free(m);
}

/* ---- k-means summary ---------------------------------------------------------------------- */

TEST(kmeans_summary_weights_snapped_deterministic) {
  size_t cats[3] = {0, 5, 0};
  gs_net_t g = {.task = XD_TASK_REGRESSION, .d = 3, .cats = cats, .n_layers = 1, .out_act = XD_ACT_IDENTITY,
                .n_out = 1, .n_bg = 300, .preprocess = 1, .seed = 2};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  const xd_dataset_t *ds = xd_model_background(m);
  xd_shap_bg_t a, b, c;
  CHECK(xd_shap_summarize(ds, 10, 7, &a, NULL) == XD_OK);
  CHECK(xd_shap_summarize(ds, 10, 7, &b, NULL) == XD_OK);
  CHECK(a.n == b.n && a.n <= 10 && a.n >= 2);
  CHECK(memcmp(a.X, b.X, a.n * 3 * sizeof *a.X) == 0);
  double s = 0;
  for (size_t i = 0; i < a.n; i++) {
    s += a.w[i];
    CHECK(a.w[i] > 0);
    for (size_t j = 0; j < 3; j++) { /* every coordinate is an observed value */
      int seen = 0;
      for (size_t r = 0; r < ds->n && !seen; r++) seen = ds->X[r * 3 + j] == a.X[i * 3 + j];
      CHECK(seen);
    }
  }
  CHECK_NEAR(s, 1, 1e-12);
  /* small backgrounds are used as they are */
  CHECK(xd_shap_summarize(ds, 1000, 7, &c, NULL) == XD_OK);
  CHECK(c.n == ds->n && memcmp(c.X, ds->X, ds->n * 3 * sizeof *c.X) == 0);
  CHECK_NEAR(c.w[0], 1.0 / 300, 1e-15);
  /* two well-separated blobs: two centres, weights = blob sizes */
  double blob[40 * 2];
  for (size_t i = 0; i < 40; i++) blob[i * 2] = i < 30 ? 0.01 * (double)i : 100 + 0.01 * (double)i, blob[i * 2 + 1] = 1;
  xd_shap_bg_t k2;
  CHECK(xd_shap_kmeans(blob, 40, 2, 2, 1, &k2, NULL) == XD_OK);
  CHECK(k2.n == 2);
  if (k2.n == 2) {
    size_t lo = k2.X[0] < k2.X[2] ? 0 : 1;
    CHECK_NEAR(k2.w[lo], 0.75, 1e-15);
    CHECK_NEAR(k2.X[lo * 2], 0.14, 1e-12); /* mean 0.145 snapped to an observed value */
  }
  xd_shap_bg_deinit(&k2);
  xd_shap_bg_deinit(&a);
  xd_shap_bg_deinit(&b);
  xd_shap_bg_deinit(&c);
  xd_model_free(m);
}

/* The runs of a summary taken as prepare parts (api/job.h), here in reverse order on
 * threads of their own, then picked: the serial summary bit for bit. */
typedef struct km_arg {
  const xd_dataset_t *ds;
  unsigned r;
  double *C;
  size_t *cnt;
  double *inertia;
  int rc;
} km_arg_t;

static void *km_one(void *a) {
  km_arg_t *k = a;
  k->rc = xd_shap_kmeans_run(k->ds->X, k->ds->n, k->ds->d, 10, 7, k->r, k->C, k->cnt, k->inertia, NULL, NULL);
  return NULL;
}

TEST(kmeans_runs_in_any_order_equal_the_serial_summary) {
  size_t cats[3] = {0, 5, 0};
  gs_net_t g = {.task = XD_TASK_REGRESSION, .d = 3, .cats = cats, .n_layers = 1, .out_act = XD_ACT_IDENTITY,
                .n_out = 1, .n_bg = 300, .preprocess = 1, .seed = 2};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  const xd_dataset_t *ds = xd_model_background(m);
  xd_shap_bg_t serial, par;
  CHECK(xd_shap_summarize(ds, 10, 7, &serial, NULL) == XD_OK);
  double *C[XD_SHAP_KMEANS_RUNS], inertia[XD_SHAP_KMEANS_RUNS];
  size_t *cnt[XD_SHAP_KMEANS_RUNS];
  km_arg_t args[XD_SHAP_KMEANS_RUNS];
  pthread_t th[XD_SHAP_KMEANS_RUNS];
  for (int r = XD_SHAP_KMEANS_RUNS - 1; r >= 0; r--) {
    C[r] = xd_malloc(10 * ds->d * sizeof **C);
    cnt[r] = xd_malloc(10 * sizeof **cnt);
    args[r] = (km_arg_t){ds, (unsigned)r, C[r], cnt[r], &inertia[r], -1};
    pthread_create(&th[r], NULL, km_one, &args[r]);
  }
  for (int r = 0; r < XD_SHAP_KMEANS_RUNS; r++) {
    pthread_join(th[r], NULL);
    CHECK(args[r].rc == XD_OK);
  }
  CHECK(xd_shap_kmeans_pick(ds->X, ds->n, ds->d, 10, C, cnt, inertia, XD_SHAP_KMEANS_RUNS, &par, NULL) == XD_OK);
  CHECK(par.n == serial.n && par.d == serial.d);
  if (par.n == serial.n && par.d == serial.d) {
    CHECK(memcmp(par.X, serial.X, par.n * par.d * sizeof *par.X) == 0);
    CHECK(memcmp(par.w, serial.w, par.n * sizeof *par.w) == 0);
  }
  for (int r = 0; r < XD_SHAP_KMEANS_RUNS; r++) {
    xd_free(C[r]);
    xd_free(cnt[r]);
  }
  xd_shap_bg_deinit(&serial);
  xd_shap_bg_deinit(&par);
  xd_model_free(m);
}

/* ---- same answer whatever the worker count (the API job) ---------------------------------- */

typedef struct runner {
  const xd_work_t *w;
  atomic_size_t next;
  int reverse;
  atomic_int rc;
  int prep; /* runs the prepare parts, not the parts */
} runner_t;

static void *run_parts(void *arg) {
  runner_t *r = arg;
  size_t n = r->prep ? r->w->n_prepare_parts : r->w->n_parts;
  for (;;) {
    size_t i = atomic_fetch_add(&r->next, 1);
    if (i >= n) break;
    size_t part = r->reverse ? n - 1 - i : i;
    xd_error_t err;
    int rc = r->prep ? r->w->ops->prepare_part(r->w->state, part, NULL, &err)
                     : r->w->ops->run(r->w->state, part, NULL, &err);
    if (rc != XD_OK) atomic_store(&r->rc, rc);
  }
  return NULL;
}

/* Decodes body and runs its job on `threads` threads; returns the sorted JSON text. */
static char *run_job(xd_api_t *api, xd_endpoint_decode_fn decode, const char *body, int threads, int reverse,
                     size_t *n_parts) {
  json_error_t jerr;
  json_t *b = json_loads(body, 0, &jerr);
  xd_work_t w;
  memset(&w, 0, sizeof w);
  xd_error_t err;
  xd_error_clear(&err);
  char *txt = NULL;
  if (!b || decode(api, b, &w, &err) != XD_OK) {
    fprintf(stderr, "  decode: %s: %s\n", err.field, err.text);
    json_decref(b);
    return NULL;
  }
  *n_parts = w.n_parts;
  /* the job contract (api/job.h): prepare parts in any order, prepare once, then the
   * parts in any order */
  runner_t pr = {&w, 0, reverse, XD_OK, 1};
  pthread_t pth[4];
  for (int t = 0; t < threads; t++) pthread_create(&pth[t], NULL, run_parts, &pr);
  for (int t = 0; t < threads; t++) pthread_join(pth[t], NULL);
  if (atomic_load(&pr.rc) != XD_OK) {
    w.ops->free(w.state);
    json_decref(b);
    return NULL;
  }
  if (w.ops->prepare && w.ops->prepare(w.state, NULL, &err) != XD_OK) {
    fprintf(stderr, "  prepare: %s: %s\n", err.field, err.text);
    w.ops->free(w.state);
    json_decref(b);
    return NULL;
  }
  runner_t r = {&w, 0, reverse, XD_OK, 0};
  pthread_t th[4];
  for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, run_parts, &r);
  for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
  if (atomic_load(&r.rc) == XD_OK) {
    json_t *out = w.ops->encode(w.state, &err);
    if (out) txt = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(out);
  }
  w.ops->free(w.state);
  json_decref(b);
  return txt;
}

static xd_api_t *demo_api(xd_registry_t **reg) {
  static const char *names[] = {"breast_cancer", "credit", "iris", "diabetes", "wine"};
  xd_registry_new(reg);
  for (size_t i = 0; i < 5; i++) {
    char path[128], sha[65];
    snprintf(path, sizeof path, "models/%s/model.json", names[i]);
    xd_model_t *m = NULL;
    xd_error_t err;
    int replaced;
    if (xd_bundle_load_file(path, &m, sha, &err) != XD_OK) {
      fprintf(stderr, "  load %s: %s\n", path, err.text);
      continue;
    }
    xd_registry_put(*reg, names[i], m, sha, path, 0, &replaced);
  }
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  xd_api_t *api = NULL;
  xd_api_new(&cfg, *reg, &api);
  return api;
}

static const char *BC_ROW = "[17.99,10.38,122.8,1001,0.1184,0.2776,0.3001,0.1471,0.2419,0.07871,1.095,0.9053,8.589,"
                            "153.4,0.006399,0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,2019,0.1622,"
                            "0.6656,0.7119,0.2654,0.4601,0.1189]";

TEST(same_seed_same_answer_whatever_the_worker_count) {
  xd_registry_t *reg = NULL;
  xd_api_t *api = demo_api(&reg);
  CHECK(api != NULL);
  if (!api) return;
  char bodies[6][1200];
  snprintf(bodies[0], sizeof bodies[0], "{\"model\":\"breast_cancer\",\"instance\":%s,\"seed\":7}", BC_ROW);
  snprintf(bodies[1], sizeof bodies[1],
           "{\"model\":\"credit\",\"instances\":[[33,41816,0.2156,\"employed\",\"east\",1],[59,67766,0.1644,"
           "\"retired\",\"north\",0],[40,20000,0.5,\"unemployed\",\"west\",3]],\"seed\":11,\"nsamples\":30}");
  snprintf(bodies[2], sizeof bodies[2], "{\"model\":\"breast_cancer\",\"instances\":[%s,%s],\"seed\":3,\"l1_reg\":\"num_features(5)\",\"link\":\"logit\"}",
           BC_ROW, BC_ROW);
  snprintf(bodies[3], sizeof bodies[3], "{\"model\":\"wine\",\"instance\":[13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050],\"method\":\"exact\",\"background_size\":5,\"seed\":5}");
  snprintf(bodies[4], sizeof bodies[4], "{\"model\":\"breast_cancer\",\"instances\":[%s,%s],\"method\":\"smoothgrad\",\"seed\":9}", BC_ROW, BC_ROW);
  snprintf(bodies[5], sizeof bodies[5], "{\"model\":\"credit\",\"instances\":[[33,41816,0.2156,\"employed\",\"east\",1],[59,67766,0.1644,\"retired\",\"north\",0]],\"method\":\"vargrad\",\"seed\":2,\"samples\":300}");
  for (int b = 0; b < 6; b++) {
    xd_endpoint_decode_fn fn = b < 4 ? xd_shap_decode : xd_gradient_decode;
    size_t np = 0;
    char *ref = run_job(api, fn, bodies[b], 1, 0, &np);
    CHECK_MSG(ref != NULL, "body %d", b);
    if (!ref) continue;
    if (b == 0) CHECK_MSG(np > 1, "a single-row SHAP request splits into parts (%zu)", np);
    for (int threads = 1; threads <= 3; threads++)
      for (int rev = 0; rev < 2; rev++) {
        char *got = run_job(api, fn, bodies[b], threads, rev, &np);
        CHECK_MSG(got && strcmp(got, ref) == 0, "body %d threads %d reverse %d", b, threads, rev);
        free(got);
      }
    /* efficiency on every SHAP answer */
    if (b < 4) {
      json_t *o = json_loads(ref, 0, NULL);
      json_t *gap = json_object_get(o, "efficiency_gap");
      CHECK(json_array_size(gap) >= 1);
      for (size_t i = 0; i < json_array_size(gap); i++) CHECK(fabs(json_number_value(json_array_get(gap, i))) <= EFF_TOL);
      json_decref(o);
    }
    free(ref);
  }
  xd_api_free(api);
  xd_registry_free(reg);
}

/* Every allocation failure gives XD_ENOMEM and leaks nothing (ASan checks the leaks). */
TEST(allocation_failures_are_clean) {
  size_t hidden[1] = {6};
  gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = 14, .n_layers = 2, .hidden = hidden, .act = XD_ACT_RELU,
                .out_act = XD_ACT_SOFTMAX, .n_out = 2, .n_bg = 30, .seed = 6};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  double X[14], phi[14], ex, out;
  gs_rows(m, &g, 1, 2, X);
  xd_shap_method_t methods[2] = {XD_SHAP_KERNEL, XD_SHAP_EXACT};
  for (int k = 0; k < 2; k++) {
    int failures = 0;
    for (long n = 1; n < 60; n++) {
      xd_alloc_fail_after(n);
      xd_shap_bg_t bg;
      xd_error_t err;
      int rc = xd_shap_summarize(xd_model_background(m), 8, 1, &bg, &err);
      if (rc == XD_OK) {
        size_t tg = 1;
        xd_shap_opts_t o = sopts(methods[k]);
        o.l1_k = k == 0 ? 3 : 0;
        rc = xd_shap_explain(m, &o, &bg, X, 1, &tg, 0, phi, &ex, &out, NULL, NULL, &err);
        xd_shap_bg_deinit(&bg);
      }
      xd_alloc_fail_after(0);
      CHECK(rc == XD_OK || rc == XD_ENOMEM);
      failures += rc == XD_ENOMEM;
    }
    CHECK(failures > 0);
  }
  xd_model_free(m);
}

/* The endpoints' jobs under allocation failure: decode, run and encode either succeed
 * or fail cleanly (no crash, no leak, an error code set). */
TEST(endpoint_jobs_survive_allocation_failures) {
  xd_registry_t *reg = NULL;
  xd_api_t *api = demo_api(&reg);
  if (!api) return;
  const char *bodies[] = {
      "{\"model\":\"credit\",\"instances\":[[33,41816,0.2156,\"employed\",\"east\",1],[59,67766,0.1644,"
      "\"retired\",\"north\",0]],\"seed\":1,\"nsamples\":40,\"background_size\":10}",
      "{\"model\":\"credit\",\"instance\":[33,41816,0.2156,\"employed\",\"east\",1],\"method\":\"smoothgrad\",\"seed\":1}",
      "{\"model\":\"iris\",\"instance\":[6.5,3.0,5.2,2.0],\"baseline\":\"zeros\"}"};
  for (int b = 0; b < 3; b++) {
    xd_endpoint_decode_fn fn = b == 0 ? xd_shap_decode : xd_gradient_decode;
    json_t *body = json_loads(bodies[b], 0, NULL);
    int ok = 0, failed = 0;
    for (long n = 1; n < 400; n++) {
      xd_work_t w;
      memset(&w, 0, sizeof w);
      xd_error_t err;
      xd_error_clear(&err);
      xd_alloc_fail_after(n);
      int rc = fn(api, body, &w, &err);
      json_t *out = NULL;
      if (rc == XD_OK) {
        out = xd_work_run_inline(&w, NULL, &err);
        w.ops->free(w.state);
      }
      xd_alloc_fail_after(0);
      if (out) {
        ok++;
      } else {
        failed++;
        CHECK(err.code != XD_OK);
      }
      json_decref(out);
    }
    CHECK_MSG(ok > 0 && failed > 0, "body %d: %d ok, %d failed", b, ok, failed);
    json_decref(body);
  }
  xd_api_free(api);
  xd_registry_free(reg);
}

int main(void) {
  xd_blas_init();
  RUN(linear_regression_all_methods_closed_form);
  RUN(logistic_logit_link_single_background_row);
  RUN(kernel_equals_exact_when_m_le_11);
  RUN(kernel_sampling_efficiency_and_seed);
  RUN(kernel_sampling_converges_to_exact);
  RUN(kernel_schedule_shape);
  RUN(non_varying_features_get_zero);
  RUN(categorical_feature_is_one_player);
  RUN(l1_num_features_selects_k_and_keeps_efficiency);
  RUN(kmeans_summary_weights_snapped_deterministic);
  RUN(kmeans_runs_in_any_order_equal_the_serial_summary);
  RUN(same_seed_same_answer_whatever_the_worker_count);
  RUN(allocation_failures_are_clean);
  RUN(endpoint_jobs_survive_allocation_failures);
  return TEST_REPORT();
}
