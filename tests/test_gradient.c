/* test_gradient.c — core/gradient: quadrature, the closed forms of docs/algorithms.md §2/§6,
 * finite differences on every activation, IG completeness, the SmoothGrad family,
 * categorical folding, determinism, and accuracy on saturated rows against a
 * long-double reference. */
#include <float.h>
#include <string.h>

#include "core/gradient.h"
#include "core/mat.h"
#include "tests/gs_fixtures.h"
#include "tests/test.h"

static xd_grad_opts_t opts(xd_grad_method_t method) {
  xd_grad_opts_t o = {.method = method, .output = XD_OUTPUT_PROBABILITY, .steps = 50,
                      .integration = XD_GRAD_GAUSSLEGENDRE, .samples = 25, .noise_stddev = 0.1, .seed = 42};
  return o;
}

/* ---- quadrature -------------------------------------------------------------------- */

TEST(quadrature_weights_sum_to_one) {
  double a[300], w[300];
  for (int rule = 0; rule <= XD_GRAD_RIEMANN_TRAPEZOID; rule++)
    for (size_t n = 2; n <= 300; n += 7) {
      CHECK(xd_grad_quadrature((xd_grad_integration_t)rule, n, a, w, NULL) == XD_OK);
      double s = 0;
      for (size_t k = 0; k < n; k++) {
        s += w[k];
        CHECK(a[k] >= 0 && a[k] <= 1);
        if (k) CHECK(a[k] > a[k - 1]);
      }
      CHECK_NEAR(s, 1, 1e-13);
    }
  CHECK(xd_grad_quadrature(XD_GRAD_RIEMANN_LEFT, 1, a, w, NULL) == XD_EINVAL);
  CHECK(xd_grad_quadrature(XD_GRAD_RIEMANN_TRAPEZOID, 1, a, w, NULL) == XD_EINVAL);
  CHECK(xd_grad_quadrature(XD_GRAD_GAUSSLEGENDRE, 1, a, w, NULL) == XD_OK);
  CHECK_NEAR(a[0], 0.5, 0);
  CHECK_NEAR(w[0], 1, 0);
}

TEST(quadrature_captum_grids) {
  double a[5], w[5];
  xd_grad_quadrature(XD_GRAD_RIEMANN_LEFT, 4, a, w, NULL);
  CHECK_NEAR(a[0], 0, 0);
  CHECK_NEAR(a[3], 0.75, 1e-15);
  CHECK_NEAR(w[2], 0.25, 0);
  xd_grad_quadrature(XD_GRAD_RIEMANN_RIGHT, 4, a, w, NULL);
  CHECK_NEAR(a[0], 0.25, 1e-15);
  CHECK_NEAR(a[3], 1, 0);
  xd_grad_quadrature(XD_GRAD_RIEMANN_MIDDLE, 4, a, w, NULL);
  CHECK_NEAR(a[0], 0.125, 1e-15);
  CHECK_NEAR(a[3], 0.875, 1e-15);
  xd_grad_quadrature(XD_GRAD_RIEMANN_TRAPEZOID, 5, a, w, NULL); /* true trapezoid */
  CHECK_NEAR(a[2], 0.5, 1e-15);
  CHECK_NEAR(w[0], 0.125, 1e-15);
  CHECK_NEAR(w[2], 0.25, 1e-15);
  /* numpy.polynomial.legendre.leggauss(3): nodes ±sqrt(3/5), 0; weights 5/9, 8/9, 5/9 */
  xd_grad_quadrature(XD_GRAD_GAUSSLEGENDRE, 3, a, w, NULL);
  CHECK_NEAR(a[0], 0.5 * (1 - sqrt(0.6)), 1e-16);
  CHECK_NEAR(a[1], 0.5, 1e-16);
  CHECK_NEAR(w[0], 5.0 / 18, 1e-15);
  CHECK_NEAR(w[1], 8.0 / 18, 1e-15);
}

/* Gauss–Legendre with n points integrates x^k exactly for k <= 2n-1, for any n. */
TEST(quadrature_gausslegendre_exact_polynomials) {
  static double a[1024], w[1024];
  size_t ns[] = {1, 2, 5, 17, 50, 128, 1024};
  for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
    size_t n = ns[t];
    CHECK(xd_grad_quadrature(XD_GRAD_GAUSSLEGENDRE, n, a, w, NULL) == XD_OK);
    size_t kmax = 2 * n - 1 < 60 ? 2 * n - 1 : 60;
    for (size_t k = 0; k <= kmax; k++) {
      long double s = 0;
      for (size_t q = 0; q < n; q++) s += (long double)w[q] * powl(a[q], (long double)k);
      CHECK_CLOSE((double)s, 1.0 / (double)(k + 1), 1e-13, 0);
    }
    for (size_t q = 0; q < n; q++) CHECK_NEAR(a[q] + a[n - 1 - q], 1, 1e-15); /* symmetric */
  }
}

/* ---- closed forms (docs/algorithms.md §6) ------------------------------------------------- */

TEST(linear_regression_closed_forms) {
  gs_net_t g = {.task = XD_TASK_REGRESSION, .d = 5, .n_layers = 1, .out_act = XD_ACT_IDENTITY, .n_out = 1,
                .n_bg = 40, .preprocess = 1, .seed = 7};
  xd_model_t *m = gs_build(&g);
  CHECK(m != NULL);
  if (!m) return;
  size_t nl, d = 5, p = xd_model_n_inputs(m);
  const xd_dense_t *L = xd_model_dense_layers(m, &nl);
  double X[3 * 5], Eb[5], wr[5], mu[5], attr[3 * 5], delta[3];
  size_t tg[3] = {0, 0, 0};
  gs_rows(m, &g, 3, 11, X);
  for (size_t j = 0; j < d; j++) {
    wr[j] = L->wd[j] / xd_model_pre_scale(m, j); /* raw-unit weight */
    mu[j] = xd_model_stats(m)->f[j].mean;
  }
  xd_grad_baseline_mean(m, Eb);
  CHECK(p == d);
  for (int rule = 0; rule <= XD_GRAD_RIEMANN_TRAPEZOID; rule++) {
    xd_grad_opts_t o = opts(XD_GRAD_INTEGRATED);
    o.integration = (xd_grad_integration_t)rule;
    o.steps = 7;
    CHECK(xd_grad_explain(m, &o, X, 3, tg, Eb, 0, attr, delta, NULL, NULL) == XD_OK);
    for (size_t i = 0; i < 3; i++) {
      for (size_t j = 0; j < d; j++) CHECK_CLOSE(attr[i * d + j], wr[j] * (X[i * d + j] - mu[j]), 1e-12, 1e-13);
      CHECK_NEAR(delta[i], 0, 1e-12);
    }
  }
  xd_grad_opts_t o = opts(XD_GRAD_SALIENCY);
  CHECK(xd_grad_explain(m, &o, X, 3, tg, Eb, 0, attr, NULL, NULL, NULL) == XD_OK);
  for (size_t j = 0; j < d; j++) CHECK_CLOSE(attr[d + j], fabs(wr[j]), 1e-14, 0);
  o = opts(XD_GRAD_GRADIENT);
  CHECK(xd_grad_explain(m, &o, X, 3, tg, Eb, 0, attr, NULL, NULL, NULL) == XD_OK);
  for (size_t j = 0; j < d; j++) CHECK_CLOSE(attr[2 * d + j], wr[j], 1e-14, 0);
  o = opts(XD_GRAD_INPUT_X_GRADIENT);
  CHECK(xd_grad_explain(m, &o, X, 3, tg, Eb, 0, attr, NULL, NULL, NULL) == XD_OK);
  for (size_t i = 0; i < 3; i++)
    for (size_t j = 0; j < d; j++) CHECK_CLOSE(attr[i * d + j], X[i * d + j] * wr[j], 1e-14, 0);
  xd_model_free(m);
}

static double sigm(double z) { return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)); }

/* Logistic regression, probability output: IG = w_i (x_i-b_i)(σ(z_x)-σ(z_b))/(z_x-z_b),
 * saliency = |w| σ(z)(1-σ(z)); on the logit output the linear rules. */
TEST(logistic_regression_closed_forms) {
  gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = 4, .n_layers = 1, .out_act = XD_ACT_SIGMOID, .n_out = 1,
                .n_bg = 30, .preprocess = 1, .seed = 3, .wscale = 2};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  size_t nl, d = 4;
  const xd_dense_t *L = xd_model_dense_layers(m, &nl);
  double X[4 * 4], Eb[4], wr[4], mu[4], attr[16], delta[4];
  gs_rows(m, &g, 4, 5, X);
  xd_grad_baseline_mean(m, Eb);
  double zb = L->bd[0];
  for (size_t j = 0; j < d; j++) {
    wr[j] = L->wd[j] / xd_model_pre_scale(m, j);
    mu[j] = xd_model_stats(m)->f[j].mean;
    zb += L->wd[j] * Eb[j];
  }
  for (size_t target = 0; target < 2; target++) {
    size_t tg[4] = {target, target, target, target};
    double sg = target == 1 ? 1 : -1;
    xd_grad_opts_t o = opts(XD_GRAD_INTEGRATED);
    CHECK(xd_grad_explain(m, &o, X, 4, tg, Eb, 0, attr, delta, NULL, NULL) == XD_OK);
    for (size_t i = 0; i < 4; i++) {
      double zx = L->bd[0];
      for (size_t j = 0; j < d; j++) zx += wr[j] * (X[i * d + j] - xd_model_pre_mean(m, j));
      double ratio = (sigm(sg * zx) - sigm(sg * zb)) / (sg * zx - sg * zb);
      for (size_t j = 0; j < d; j++)
        CHECK_CLOSE(attr[i * d + j], sg * wr[j] * (X[i * d + j] - mu[j]) * ratio, 1e-11, 1e-15);
      CHECK_NEAR(delta[i], 0, 1e-12);
    }
    o = opts(XD_GRAD_SALIENCY);
    CHECK(xd_grad_explain(m, &o, X, 4, tg, Eb, 0, attr, NULL, NULL, NULL) == XD_OK);
    for (size_t i = 0; i < 4; i++) {
      double zx = L->bd[0];
      for (size_t j = 0; j < d; j++) zx += wr[j] * (X[i * d + j] - xd_model_pre_mean(m, j));
      for (size_t j = 0; j < d; j++) CHECK_CLOSE(attr[i * d + j], fabs(wr[j]) * sigm(zx) * sigm(-zx), 1e-13, 0);
    }
    o = opts(XD_GRAD_INTEGRATED);
    o.output = XD_OUTPUT_LOGIT; /* margin: the linear rule, sign by class */
    CHECK(xd_grad_explain(m, &o, X, 4, tg, Eb, 0, attr, delta, NULL, NULL) == XD_OK);
    for (size_t i = 0; i < 4; i++)
      for (size_t j = 0; j < d; j++) CHECK_CLOSE(attr[i * d + j], sg * wr[j] * (X[i * d + j] - mu[j]), 1e-12, 1e-14);
  }
  xd_model_free(m);
}

/* ---- finite differences on every activation -------------------------------------------- */

/* f at raw row x through the double-precision path. */
static double f_at(const xd_model_t *m, const double *x, size_t t, xd_output_kind_t kind) {
  double e[64], G[64], f = 0;
  xd_model_encode_d(m, x, 1, e);
  xd_model_gradient(m, e, 1, &t, kind, &f, G, NULL, NULL, NULL);
  return f;
}

TEST(gradient_matches_finite_differences_every_activation) {
  xd_act_t acts[] = {XD_ACT_IDENTITY, XD_ACT_RELU,     XD_ACT_LEAKY_RELU, XD_ACT_TANH,
                     XD_ACT_SIGMOID,  XD_ACT_SOFTPLUS, XD_ACT_GELU};
  struct { xd_task_t task; xd_act_t out; size_t k; } outs[] = {
      {XD_TASK_CLASSIFICATION, XD_ACT_SOFTMAX, 3},
      {XD_TASK_CLASSIFICATION, XD_ACT_SIGMOID, 1},
      {XD_TASK_REGRESSION, XD_ACT_IDENTITY, 1}};
  size_t hidden[2] = {6, 5};
  for (size_t a = 0; a < sizeof acts / sizeof *acts; a++)
    for (size_t oi = 0; oi < 3; oi++) {
      gs_net_t g = {.task = outs[oi].task, .d = 4, .n_layers = 3, .hidden = hidden, .act = acts[a],
                    .out_act = outs[oi].out, .n_out = outs[oi].k, .n_bg = 10, .preprocess = 1,
                    .seed = 100 + a * 7 + oi};
      xd_model_t *m = gs_build(&g);
      if (!m) continue;
      size_t K = xd_model_n_outputs(m);
      double X[3 * 4], attr[3 * 4];
      gs_rows(m, &g, 3, 9 + a, X);
      for (int kind = 0; kind < 2; kind++)
        for (size_t t = 0; t < K; t++) {
          size_t tg[3] = {t, t, t};
          xd_grad_opts_t o = opts(XD_GRAD_GRADIENT);
          o.output = (xd_output_kind_t)kind;
          CHECK(xd_grad_explain(m, &o, X, 3, tg, NULL, 0, attr, NULL, NULL, NULL) == XD_OK);
          for (size_t i = 0; i < 3; i++)
            for (size_t j = 0; j < 4; j++) {
              double x[4], h = 1e-6 * xd_model_pre_scale(m, j);
              memcpy(x, X + i * 4, sizeof x);
              x[j] += h;
              double fp = f_at(m, x, t, (xd_output_kind_t)kind);
              x[j] -= 2 * h;
              double fm = f_at(m, x, t, (xd_output_kind_t)kind);
              double fd = (fp - fm) / (2 * h);
              CHECK_MSG(fabs(fd - attr[i * 4 + j]) <= 1e-6 * fabs(fd) + 1e-8 / xd_model_pre_scale(m, j),
                        "act %s out %s kind %d t %zu: fd %.12g grad %.12g", xd_act_name(acts[a]),
                        xd_act_name(outs[oi].out), kind, t, fd, attr[i * 4 + j]);
            }
        }
      xd_model_free(m);
    }
}

/* ---- categorical features ---------------------------------------------------------------- */

TEST(categorical_attributions_fold_one_hot_inputs) {
  size_t cats[4] = {0, 3, 0, 4}, hidden[1] = {8};
  gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = 4, .cats = cats, .n_layers = 2, .hidden = hidden,
                .act = XD_ACT_TANH, .out_act = XD_ACT_SOFTMAX, .n_out = 2, .n_bg = 50, .preprocess = 1, .seed = 21};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  size_t p = xd_model_n_inputs(m), tg[2] = {1, 0};
  CHECK(p == 9);
  double X[2 * 4], E[2 * 9], G[2 * 9], f[2], a_g[8], a_s[8], a_x[8], a_ig[8], Eb[9], delta[2];
  gs_rows(m, &g, 2, 4, X);
  xd_model_encode_d(m, X, 2, E);
  xd_model_gradient(m, E, 2, tg, XD_OUTPUT_PROBABILITY, f, G, NULL, NULL, NULL);
  xd_grad_opts_t o = opts(XD_GRAD_GRADIENT);
  CHECK(xd_grad_explain(m, &o, X, 2, tg, NULL, 0, a_g, NULL, NULL, NULL) == XD_OK);
  o.method = XD_GRAD_SALIENCY;
  CHECK(xd_grad_explain(m, &o, X, 2, tg, NULL, 0, a_s, NULL, NULL, NULL) == XD_OK);
  o.method = XD_GRAD_INPUT_X_GRADIENT;
  CHECK(xd_grad_explain(m, &o, X, 2, tg, NULL, 0, a_x, NULL, NULL, NULL) == XD_OK);
  for (size_t i = 0; i < 2; i++)
    for (size_t j = 0; j < 4; j++) {
      size_t off = xd_model_input_offset(m, j), w = xd_model_input_width(m, j);
      double s = 0, sa = 0;
      for (size_t c = 0; c < w; c++) s += G[i * p + off + c], sa += fabs(G[i * p + off + c]);
      double sc = cats[j] ? 1 : xd_model_pre_scale(m, j);
      CHECK_CLOSE(a_g[i * 4 + j], s / sc, 1e-14, 0);
      CHECK_CLOSE(a_s[i * 4 + j], sa / sc, 1e-14, 0);
      double ix = cats[j] ? G[i * p + off + (size_t)X[i * 4 + j]] : X[i * 4 + j] * s / sc;
      CHECK_CLOSE(a_x[i * 4 + j], ix, 1e-14, 0);
    }
  /* IG completeness holds in the encoded space, categorical features included */
  xd_grad_baseline_mean(m, Eb);
  double fsum = 0;
  for (size_t c = 0; c < 3; c++) fsum += Eb[1 + c];
  CHECK_NEAR(fsum, 1, 1e-12); /* category frequencies */
  o = opts(XD_GRAD_INTEGRATED);
  o.steps = 200;
  CHECK(xd_grad_explain(m, &o, X, 2, tg, Eb, 0, a_ig, delta, NULL, NULL) == XD_OK);
  for (size_t i = 0; i < 2; i++) CHECK_NEAR(delta[i], 0, 1e-9);
  xd_model_free(m);
}

/* ---- IG completeness ------------------------------------------------------------------------ */

TEST(ig_completeness_tanh_mlp_delta_shrinks) {
  size_t hidden[2] = {16, 8};
  gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = 6, .n_layers = 3, .hidden = hidden, .act = XD_ACT_TANH,
                .out_act = XD_ACT_SOFTMAX, .n_out = 3, .n_bg = 60, .preprocess = 1, .seed = 8, .wscale = 1.5};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  double X[5 * 6], Eb[6], attr[5 * 6], delta[5], prev[5];
  size_t tg[5] = {0, 1, 2, 0, 1};
  gs_rows(m, &g, 5, 77, X);
  for (size_t i = 0; i < 5; i++) prev[i] = INFINITY;
  xd_grad_baseline_mean(m, Eb);
  size_t steps[] = {2, 4, 8, 16, 50};
  for (size_t s = 0; s < 5; s++) {
    xd_grad_opts_t o = opts(XD_GRAD_INTEGRATED);
    o.steps = steps[s];
    CHECK(xd_grad_explain(m, &o, X, 5, tg, Eb, 0, attr, delta, NULL, NULL) == XD_OK);
    for (size_t i = 0; i < 5; i++) {
      double gap = fabs(f_at(m, X + i * 6, tg[i], XD_OUTPUT_PROBABILITY));
      double e[6], G[6], fb;
      memcpy(e, Eb, sizeof e);
      xd_model_gradient(m, e, 1, &tg[i], XD_OUTPUT_PROBABILITY, &fb, G, NULL, NULL, NULL);
      gap = fabs(f_at(m, X + i * 6, tg[i], XD_OUTPUT_PROBABILITY) - fb);
      if (steps[s] >= 8) CHECK_MSG(fabs(delta[i]) <= fabs(prev[i]) + 1e-15, "row %zu steps %zu", i, steps[s]);
      if (steps[s] == 50) CHECK_MSG(fabs(delta[i]) <= 1e-4 * gap, "row %zu delta %g gap %g", i, delta[i], gap);
      prev[i] = delta[i];
    }
  }
  /* riemann rules converge too, more slowly */
  xd_grad_opts_t o = opts(XD_GRAD_INTEGRATED);
  o.integration = XD_GRAD_RIEMANN_TRAPEZOID;
  o.steps = 400;
  CHECK(xd_grad_explain(m, &o, X, 5, tg, Eb, 0, attr, delta, NULL, NULL) == XD_OK);
  for (size_t i = 0; i < 5; i++) CHECK_NEAR(delta[i], 0, 1e-4);
  /* symmetry: x == b gives zeros */
  double xb[6];
  for (size_t j = 0; j < 6; j++) xb[j] = xd_model_stats(m)->f[j].mean;
  o = opts(XD_GRAD_INTEGRATED);
  CHECK(xd_grad_explain(m, &o, xb, 1, tg, Eb, 0, attr, delta, NULL, NULL) == XD_OK);
  for (size_t j = 0; j < 6; j++) CHECK_NEAR(attr[j], 0, 1e-15);
  xd_model_free(m);
}

/* Chunking: more rows than XD_GRAD_CHUNK gradient rows give the same answers. */
TEST(ig_chunking_is_invisible) {
  size_t hidden[1] = {8};
  gs_net_t g = {.task = XD_TASK_REGRESSION, .d = 3, .n_layers = 2, .hidden = hidden, .act = XD_ACT_SOFTPLUS,
                .out_act = XD_ACT_IDENTITY, .n_out = 1, .n_bg = 20, .seed = 4};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  size_t n = 200;
  double *X = xd_malloc(n * 3 * sizeof *X), *A = xd_malloc(n * 3 * sizeof *A), *D = xd_malloc(n * sizeof *D);
  size_t *tg = xd_calloc(n, sizeof *tg);
  double Eb[3], a1[3], d1;
  gs_rows(m, &g, n, 5, X);
  xd_grad_baseline_mean(m, Eb);
  xd_grad_opts_t o = opts(XD_GRAD_INTEGRATED);
  o.steps = 99; /* 200 × 101 rows: three chunks, boundaries inside rows */
  CHECK(xd_grad_explain(m, &o, X, n, tg, Eb, 0, A, D, NULL, NULL) == XD_OK);
  for (size_t i = 0; i < n; i += 37) {
    CHECK(xd_grad_explain(m, &o, X + i * 3, 1, tg, Eb, i, a1, &d1, NULL, NULL) == XD_OK);
    for (size_t j = 0; j < 3; j++) CHECK_CLOSE(a1[j], A[i * 3 + j], 1e-13, 1e-16);
  }
  xd_free(X), xd_free(A), xd_free(D), xd_free(tg);
  xd_model_free(m);
}

/* ---- SmoothGrad family ---------------------------------------------------------------------- */

TEST(smoothgrad_zero_noise_equals_gradient_vargrad_nonnegative) {
  size_t hidden[1] = {10}, cats[4] = {0, 0, 3, 0};
  gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = 4, .cats = cats, .n_layers = 2, .hidden = hidden,
                .act = XD_ACT_GELU, .out_act = XD_ACT_SOFTMAX, .n_out = 3, .n_bg = 40, .preprocess = 1, .seed = 12};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  double X[3 * 4], ga[12], sg[12], sq[12], vg[12];
  size_t tg[3] = {0, 1, 2};
  gs_rows(m, &g, 3, 3, X);
  xd_grad_opts_t o = opts(XD_GRAD_GRADIENT);
  CHECK(xd_grad_explain(m, &o, X, 3, tg, NULL, 0, ga, NULL, NULL, NULL) == XD_OK);
  o = opts(XD_GRAD_SMOOTHGRAD);
  o.noise_stddev = 0;
  CHECK(xd_grad_explain(m, &o, X, 3, tg, NULL, 0, sg, NULL, NULL, NULL) == XD_OK);
  o.method = XD_GRAD_VARGRAD;
  CHECK(xd_grad_explain(m, &o, X, 3, tg, NULL, 0, vg, NULL, NULL, NULL) == XD_OK);
  o.method = XD_GRAD_SMOOTHGRAD_SQ;
  CHECK(xd_grad_explain(m, &o, X, 3, tg, NULL, 0, sq, NULL, NULL, NULL) == XD_OK);
  for (size_t t = 0; t < 12; t++) {
    CHECK_CLOSE(sg[t], ga[t], 1e-14, 0);
    CHECK_NEAR(vg[t], 0, 1e-30);
    CHECK_CLOSE(sq[t], ga[t] * ga[t], 1e-13, 0);
  }
  /* with noise: vargrad >= 0, smoothgrad_sq >= smoothgrad², sq = sg² + var */
  for (int s = 0; s < 3; s++) {
    o = opts(XD_GRAD_SMOOTHGRAD);
    o.noise_stddev = 0.5;
    o.seed = (uint64_t)s;
    o.samples = 40;
    CHECK(xd_grad_explain(m, &o, X, 3, tg, NULL, 0, sg, NULL, NULL, NULL) == XD_OK);
    o.method = XD_GRAD_VARGRAD;
    CHECK(xd_grad_explain(m, &o, X, 3, tg, NULL, 0, vg, NULL, NULL, NULL) == XD_OK);
    o.method = XD_GRAD_SMOOTHGRAD_SQ;
    CHECK(xd_grad_explain(m, &o, X, 3, tg, NULL, 0, sq, NULL, NULL, NULL) == XD_OK);
    for (size_t t = 0; t < 12; t++) {
      CHECK(vg[t] >= 0);
      CHECK(sq[t] >= sg[t] * sg[t] * (1 - 1e-12));
      CHECK_CLOSE(sq[t], sg[t] * sg[t] + vg[t], 1e-10, 1e-300);
    }
  }
  xd_model_free(m);
}

/* Same seed, same answer, however the rows are split (row i uses stream row0 + i). */
TEST(smoothgrad_deterministic_across_splits) {
  size_t hidden[1] = {7};
  gs_net_t g = {.task = XD_TASK_REGRESSION, .d = 5, .n_layers = 2, .hidden = hidden, .act = XD_ACT_TANH,
                .out_act = XD_ACT_IDENTITY, .n_out = 1, .n_bg = 30, .preprocess = 1, .seed = 13};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  double X[6 * 5], all[30], part[30], other[30];
  size_t tg[6] = {0};
  gs_rows(m, &g, 6, 1, X);
  xd_grad_opts_t o = opts(XD_GRAD_VARGRAD);
  o.seed = 12345;
  CHECK(xd_grad_explain(m, &o, X, 6, tg, NULL, 0, all, NULL, NULL, NULL) == XD_OK);
  CHECK(xd_grad_explain(m, &o, X, 2, tg, NULL, 0, part, NULL, NULL, NULL) == XD_OK);
  CHECK(xd_grad_explain(m, &o, X + 10, 4, tg, NULL, 2, part + 10, NULL, NULL, NULL) == XD_OK);
  CHECK(memcmp(all, part, sizeof all) == 0);
  o.seed = 54321;
  CHECK(xd_grad_explain(m, &o, X, 6, tg, NULL, 0, other, NULL, NULL, NULL) == XD_OK);
  CHECK(memcmp(all, other, sizeof all) != 0);
  xd_model_free(m);
}

/* ---- saturated rows ------------------------------------------------------------------------- */

/* Long-double reference of d p_t / d x_raw for a relu MLP with a softmax output:
 * p_t(δ_tk - p_k) with 1 - p_t formed as the sum of the other classes. */
static void ref_grad_ld(const xd_model_t *m, const double *x, size_t t, long double *g) {
  size_t nl, d = xd_model_n_features(m);
  const xd_dense_t *L = xd_model_dense_layers(m, &nl);
  long double a[4][64], z[4][64];
  for (size_t j = 0; j < d; j++) a[0][j] = ((long double)x[j] - xd_model_pre_mean(m, j)) / xd_model_pre_scale(m, j);
  for (size_t l = 0; l < nl; l++)
    for (size_t o = 0; o < L[l].out; o++) {
      long double s = L[l].bd[o];
      for (size_t i = 0; i < L[l].in; i++) s += (long double)L[l].wd[o * L[l].in + i] * a[l][i];
      z[l][o] = s;
      a[l + 1][o] = l + 1 == nl ? s : (s > 0 ? s : 0);
    }
  size_t K = L[nl - 1].out;
  long double mx = z[nl - 1][0], e[64], se = 0, dz[64], nxt[64];
  for (size_t k = 1; k < K; k++) mx = z[nl - 1][k] > mx ? z[nl - 1][k] : mx;
  for (size_t k = 0; k < K; k++) se += e[k] = expl(z[nl - 1][k] - mx);
  long double pt = e[t] / se, others = 0;
  for (size_t k = 0; k < K; k++)
    if (k != t) others += e[k] / se;
  for (size_t k = 0; k < K; k++) dz[k] = k == t ? pt * others : -pt * (e[k] / se);
  for (size_t l = nl; l-- > 0;) {
    for (size_t i = 0; i < L[l].in; i++) {
      long double s = 0;
      for (size_t o = 0; o < L[l].out; o++) s += dz[o] * (long double)L[l].wd[o * L[l].in + i];
      nxt[i] = s;
    }
    for (size_t i = 0; i < L[l].in; i++) dz[i] = l > 0 ? (z[l - 1][i] > 0 ? nxt[i] : 0) : nxt[i];
  }
  for (size_t j = 0; j < d; j++) g[j] = dz[j] / xd_model_pre_scale(m, j);
}

TEST(saturated_rows_accurate_to_1e6_relative) {
  size_t hidden[2] = {16, 8};
  gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = 6, .n_layers = 3, .hidden = hidden, .act = XD_ACT_RELU,
                .out_act = XD_ACT_SOFTMAX, .n_out = 2, .n_bg = 20, .preprocess = 1, .seed = 31, .wscale = 4};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  double X[40 * 6], attr[40 * 6], P[40 * 2];
  size_t tg[40];
  gs_rows(m, &g, 40, 17, X);
  for (size_t i = 0; i < 40 * 6; i++) X[i] *= 1.5; /* away from the data: confident */
  xd_model_predict(m, X, 40, P, NULL, NULL);
  size_t saturated = 0;
  for (size_t i = 0; i < 40; i++) {
    tg[i] = P[i * 2 + 1] > P[i * 2] ? 1 : 0;
    saturated += P[i * 2 + tg[i]] > 1 - 1e-7;
  }
  fprintf(stderr, "  %zu of 40 rows have p > 1 - 1e-7\n", saturated);
  CHECK_MSG(saturated >= 10, "only %zu saturated rows", saturated);
  xd_grad_opts_t o = opts(XD_GRAD_GRADIENT);
  CHECK(xd_grad_explain(m, &o, X, 40, tg, NULL, 0, attr, NULL, NULL, NULL) == XD_OK);
  for (size_t i = 0; i < 40; i++) {
    long double ref[6], mx = 0;
    ref_grad_ld(m, X + i * 6, tg[i], ref);
    for (size_t j = 0; j < 6; j++) mx = fabsl(ref[j]) > mx ? fabsl(ref[j]) : mx;
    for (size_t j = 0; j < 6; j++)
      CHECK_MSG(fabsl(attr[i * 6 + j] - ref[j]) <= 1e-6L * fabsl(ref[j]) + 1e-12L * mx, "row %zu feat %zu: %.17g vs %.17Lg",
                i, j, attr[i * 6 + j], ref[j]);
  }
  /* a single saturated sigmoid unit: dp/dx = w σ(z)σ(-z) at z = ±30 */
  gs_net_t gl = {.task = XD_TASK_CLASSIFICATION, .d = 2, .n_layers = 1, .out_act = XD_ACT_SIGMOID, .n_out = 1,
                 .seed = 2};
  xd_model_t *lm = gs_build(&gl);
  if (lm) {
    size_t nl;
    const xd_dense_t *L = xd_model_dense_layers(lm, &nl);
    double x[2] = {0, 0}, a2[2];
    x[0] = (30 - L->bd[0]) / L->wd[0];
    size_t t1 = 1;
    CHECK(xd_grad_explain(lm, &o, x, 1, &t1, NULL, 0, a2, NULL, NULL, NULL) == XD_OK);
    double z = L->bd[0] + L->wd[0] * x[0], ref = exp(-z) / ((1 + exp(-z)) * (1 + exp(-z)));
    for (size_t j = 0; j < 2; j++) CHECK_CLOSE(a2[j], L->wd[j] * ref, 1e-9, 0);
    xd_model_free(lm);
  }
  xd_model_free(m);
}

/* Every allocation failure gives XD_ENOMEM and leaks nothing (ASan checks the leaks). */
TEST(allocation_failures_are_clean) {
  size_t hidden[1] = {6}, cats[3] = {0, 3, 0};
  gs_net_t g = {.task = XD_TASK_CLASSIFICATION, .d = 3, .cats = cats, .n_layers = 2, .hidden = hidden,
                .act = XD_ACT_TANH, .out_act = XD_ACT_SOFTMAX, .n_out = 2, .n_bg = 10, .preprocess = 1, .seed = 1};
  xd_model_t *m = gs_build(&g);
  if (!m) return;
  double X[2 * 3], Eb[5], attr[6], delta[2];
  size_t tg[2] = {0, 1};
  gs_rows(m, &g, 2, 1, X);
  xd_grad_baseline_mean(m, Eb);
  xd_grad_method_t methods[3] = {XD_GRAD_INTEGRATED, XD_GRAD_VARGRAD, XD_GRAD_SALIENCY};
  for (int k = 0; k < 3; k++) {
    xd_grad_opts_t o = opts(methods[k]);
    int failures = 0;
    for (long n = 1; n < 40; n++) {
      xd_alloc_fail_after(n);
      xd_error_t err;
      int rc = xd_grad_explain(m, &o, X, 2, tg, Eb, 0, attr, delta, NULL, &err);
      xd_alloc_fail_after(0);
      CHECK(rc == XD_OK || rc == XD_ENOMEM);
      failures += rc == XD_ENOMEM;
    }
    CHECK(failures > 0);
  }
  xd_model_free(m);
}

int main(void) {
  xd_blas_init();
  RUN(quadrature_weights_sum_to_one);
  RUN(quadrature_captum_grids);
  RUN(quadrature_gausslegendre_exact_polynomials);
  RUN(linear_regression_closed_forms);
  RUN(logistic_regression_closed_forms);
  RUN(gradient_matches_finite_differences_every_activation);
  RUN(categorical_attributions_fold_one_hot_inputs);
  RUN(ig_completeness_tanh_mlp_delta_shrinks);
  RUN(ig_chunking_is_invisible);
  RUN(smoothgrad_zero_noise_equals_gradient_vargrad_nonnegative);
  RUN(smoothgrad_deterministic_across_splits);
  RUN(saturated_rows_accurate_to_1e6_relative);
  RUN(allocation_failures_are_clean);
  return TEST_REPORT();
}
