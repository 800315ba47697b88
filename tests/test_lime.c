/* test_lime.c — LIME tabular (core/lime.h, lime_fit.c, entropy.c): invariants of the
 * neighbourhood, the surrogate on an injected neighbourhood against a naive double
 * computation, discretizer bins against numpy's (tests/golden/stats_*.json), recovery of
 * a linear model, credit's irrelevant feature, determinism across threads, repeats. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/bundle.h"
#include "core/alloc.h"
#include "core/entropy.h"
#include "core/lime.h"
#include "core/mat.h"
#include "core/rng.h"
#include "tests/test.h"

static const char *demo[] = {"breast_cancer", "credit", "iris", "wine", "diabetes"};
#define N_DEMO (sizeof demo / sizeof *demo)

static xd_model_t *load(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "models/%s/model.json", name);
  xd_model_t *m = NULL;
  xd_error_t err;
  if (xd_bundle_load_file(path, &m, NULL, &err) != XD_OK) {
    fprintf(stderr, "  load %s: %s %s\n", path, err.field, err.text);
    return NULL;
  }
  return m;
}

static int plan(xd_lime_plan_t *p, const xd_model_t *m, xd_lime_disc_t disc, xd_lime_fs_t fs, size_t ns,
                uint64_t seed) {
  xd_lime_options_t o;
  xd_lime_options_default(&o);
  o.discretize = disc;
  o.feature_selection = fs;
  o.num_samples = ns;
  o.seed = seed;
  xd_error_t err;
  int rc = xd_lime_plan_init(p, m, &o, &err);
  if (rc) fprintf(stderr, "  plan: %s %s\n", err.field, err.text);
  return rc;
}

/* ---- the neighbourhood ------------------------------------------------------------- */

/* Row 0 is the instance with distance 0 and weight 1; discretized distances are square
 * roots of integers and Z is 0/1 with Z = 1 exactly when the value kept x's bin;
 * undiscretized values lie inside their bin; w = exp(-d²/(2·width²)); the share of rows
 * that kept x's bin is about that bin's training frequency. */
static void check_neighbourhood(const char *name, const xd_model_t *m, xd_lime_disc_t disc, int around) {
  xd_lime_plan_t p;
  xd_lime_options_t o;
  xd_lime_options_default(&o);
  o.discretize = disc;
  o.sample_around_instance = around;
  o.num_samples = 4000;
  o.seed = 7;
  xd_error_t err;
  if (xd_lime_plan_init(&p, m, &o, &err) != XD_OK) {
    CHECK_MSG(0, "%s plan: %s", name, err.text);
    return;
  }
  const xd_dataset_t *bg = xd_model_background(m);
  const xd_stats_t *st = xd_model_stats(m);
  const xd_feature_t *fs = xd_model_features(m);
  size_t n = o.num_samples, d = p.d;
  double *inv = xd_malloc(n * d * sizeof *inv), *Z = xd_malloc(n * d * sizeof *Z), *dist = xd_malloc(n * 8),
         *w = xd_malloc(n * 8), *z0 = xd_malloc(d * 8);
  for (size_t inst = 0; inst < 3; inst++) {
    const double *x = bg->X + (inst * 7 % bg->n) * d;
    CHECK(xd_lime_neighbourhood(&p, x, inst, inv, Z, dist, w, z0) == XD_OK);
    CHECK_MSG(memcmp(inv, x, d * sizeof *x) == 0, "%s: row 0 is the instance", name);
    CHECK_MSG(memcmp(Z, z0, d * sizeof *z0) == 0, "%s: Z row 0 is z0", name);
    CHECK(dist[0] == 0 && w[0] == 1);
    size_t bad_dist = 0, bad_w = 0, bad_bin = 0, bad_z = 0;
    for (size_t i = 0; i < n; i++) {
      double expect_w = exp(-dist[i] * dist[i] / (2 * p.opt.kernel_width * p.opt.kernel_width));
      bad_w += !(w[i] > 0 && w[i] <= 1 && fabs(w[i] - expect_w) <= 1e-12);
      if (disc == XD_LIME_DISC_NONE) continue;
      double d2 = dist[i] * dist[i], moved = 0;
      bad_dist += fabs(d2 - nearbyint(d2)) > 1e-9;
      for (size_t j = 0; j < d; j++) {
        double zij = Z[i * d + j], v = inv[i * d + j];
        bad_z += zij != 0 && zij != 1;
        moved += zij == 0;
        if (fs[j].kind == XD_FEAT_CATEGORICAL) {
          bad_bin += (zij == 1) != (v == x[j]);
          continue;
        }
        const xd_bins_t *B = &st->f[j].bins[disc];
        size_t bx = xd_bins_index(B, x[j]), bv = xd_bins_index(B, v);
        /* a value drawn on its bin's lower edge (a clamp, or lime's boundary case)
         * belongs to the bin below by searchsorted: accept it either way */
        int bad = 0;
        if (i > 0 && zij == 1) bad = !(bv == bx || (bv + 1 == bx && v == B->min[bx])) || v < B->min[bx] || v > B->max[bx];
        if (i > 0 && zij == 0) bad = bv == bx && v != B->max[bx];
        if (bad && bad_bin++ == 0)
          fprintf(stderr, "  %s row %zu feature %zu: x %.17g (bin %zu) v %.17g (bin %zu) z %g\n", name, i, j, x[j], bx, v,
                  bv, zij);
      }
      bad_dist += fabs(d2 - moved) > 1e-9;
    }
    CHECK_MSG(bad_w == 0, "%s disc %d: %zu kernel weights off", name, disc, bad_w);
    CHECK_MSG(bad_dist == 0, "%s disc %d: %zu distances not sqrt(#moved)", name, disc, bad_dist);
    CHECK_MSG(bad_z == 0, "%s disc %d: %zu non-binary z", name, disc, bad_z);
    CHECK_MSG(bad_bin == 0, "%s disc %d: %zu values outside their bin", name, disc, bad_bin);
    if (disc != XD_LIME_DISC_NONE)
      for (size_t j = 0; j < d; j++) { /* P(keep x's bin) = its training frequency */
        double keep = 0, f;
        for (size_t i = 1; i < n; i++) keep += Z[i * d + j];
        keep /= (double)(n - 1);
        if (fs[j].kind == XD_FEAT_CATEGORICAL)
          f = st->f[j].cat_freq[(size_t)x[j]];
        else
          f = st->f[j].bins[disc].freq[xd_bins_index(&st->f[j].bins[disc], x[j])];
        CHECK_MSG(fabs(keep - f) <= 5 * sqrt(f * (1 - f) / (double)n) + 1e-12, "%s feature %zu: kept %g, freq %g",
                  name, j, keep, f);
      }
    else
      for (size_t j = 0; j < d; j++) { /* continuous: Z ~ N(0,1) (+ z0 around the instance) */
        if (fs[j].kind == XD_FEAT_CATEGORICAL) continue;
        double s = 0, q = 0;
        for (size_t i = 1; i < n; i++) {
          double g = Z[i * d + j] - (around ? z0[j] : 0);
          s += g, q += g * g;
        }
        s /= (double)(n - 1), q = q / (double)(n - 1) - s * s;
        CHECK_MSG(fabs(s) < 0.1 && fabs(q - 1) < 0.1, "%s feature %zu: mean %g var %g", name, j, s, q);
        double scale = st->f[j].std > 0 ? st->f[j].std : 1;
        double center = around ? x[j] : st->f[j].mean;
        CHECK_NEAR(inv[5 * d + j], (Z[5 * d + j] - (around ? z0[j] : 0)) * scale + center, 1e-9 * (1 + fabs(center)));
      }
  }
  xd_free(inv), xd_free(Z), xd_free(dist), xd_free(w), xd_free(z0);
  xd_lime_plan_deinit(&p);
}

TEST(neighbourhood_invariants) {
  for (size_t k = 0; k < N_DEMO; k++) {
    xd_model_t *m = load(demo[k]);
    CHECK(m != NULL);
    if (!m) continue;
    check_neighbourhood(demo[k], m, XD_LIME_DISC_QUARTILE, 0);
    check_neighbourhood(demo[k], m, XD_LIME_DISC_DECILE, 0);
    if (xd_model_task(m) == XD_TASK_CLASSIFICATION) check_neighbourhood(demo[k], m, XD_LIME_DISC_ENTROPY, 0);
    check_neighbourhood(demo[k], m, XD_LIME_DISC_NONE, 0);
    check_neighbourhood(demo[k], m, XD_LIME_DISC_NONE, 1);
    xd_model_free(m);
  }
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Undiscretized values follow lime's truncated normal inside their bin (the bin's mean
 * and std + 1e-11, cut at its edges): Kolmogorov–Smirnov against the exact CDF, for every
 * bin of credit's numeric features and breast_cancer's first ones. */
TEST(undiscretize_is_truncated_normal) {
  static const char *names[] = {"credit", "breast_cancer"};
  for (size_t k = 0; k < 2; k++) {
    xd_model_t *m = load(names[k]);
    if (!m) {
      CHECK(0);
      continue;
    }
    xd_lime_plan_t p;
    enum { n = 20000 };
    CHECK(plan(&p, m, XD_LIME_DISC_QUARTILE, XD_LIME_FS_AUTO, n, 3) == XD_OK);
    size_t d = p.d;
    double *inv = xd_malloc(n * d * 8), *Z = xd_malloc(n * d * 8), *dist = xd_malloc(n * 8), *w = xd_malloc(n * 8),
           *z0 = xd_malloc(d * 8), *v = xd_malloc(n * 8);
    CHECK(xd_lime_neighbourhood(&p, xd_model_background(m)->X, 0, inv, Z, dist, w, z0) == XD_OK);
    const xd_stats_t *st = xd_model_stats(m);
    for (size_t j = 0; j < (d < 6 ? d : 6); j++) {
      if (xd_model_features(m)[j].kind == XD_FEAT_CATEGORICAL) continue;
      const xd_bins_t *B = &st->f[j].bins[XD_DISC_QUARTILE];
      for (size_t b = 0; b <= B->n_edges; b++) {
        double lo = B->min[b], hi = B->max[b], mu = B->mean[b], sd = B->std[b] + 1e-11;
        if (!(hi > lo) || B->count[b] < 2) continue;
        size_t c = 0;
        for (size_t i = 1; i < n; i++) {
          double x = inv[i * d + j];
          /* values of bin b: inside (lo, hi], or exactly lo for bin 0 */
          if ((x > lo && x <= hi) || (b == 0 && x == lo)) v[c++] = x;
        }
        if (c < 500) continue;
        qsort(v, c, sizeof *v, cmp_d);
        double pa = xd_norm_cdf((lo - mu) / sd), pb = xd_norm_cdf((hi - mu) / sd), ks = 0;
        if (!(pb - pa > 1e-9)) continue;
        for (size_t i = 0; i < c; i++) {
          double F = (xd_norm_cdf((v[i] - mu) / sd) - pa) / (pb - pa);
          double e1 = fabs(F - (double)i / (double)c), e2 = fabs(F - (double)(i + 1) / (double)c);
          ks = fmax(ks, fmax(e1, e2));
        }
        CHECK_MSG(ks < 1.95 / sqrt((double)c), "%s feature %zu bin %zu: KS %.4f with %zu values", names[k], j, b, ks,
                  c);
      }
    }
    xd_free(inv), xd_free(Z), xd_free(dist), xd_free(w), xd_free(z0), xd_free(v);
    xd_lime_plan_deinit(&p);
    xd_model_free(m);
  }
}

/* ---- the surrogate on an injected neighbourhood vs naive double code --------------- */

/* Solves A x = b (k,k) by Gaussian elimination with partial pivoting. */
static void naive_solve(size_t k, double *A, double *b) {
  for (size_t c = 0; c < k; c++) {
    size_t piv = c;
    for (size_t r = c + 1; r < k; r++)
      if (fabs(A[r * k + c]) > fabs(A[piv * k + c])) piv = r;
    for (size_t t = 0; t < k; t++) {
      double s = A[c * k + t];
      A[c * k + t] = A[piv * k + t], A[piv * k + t] = s;
    }
    double s = b[c];
    b[c] = b[piv], b[piv] = s;
    for (size_t r = c + 1; r < k; r++) {
      double f = A[r * k + c] / A[c * k + c];
      for (size_t t = c; t < k; t++) A[r * k + t] -= f * A[c * k + t];
      b[r] -= f * b[c];
    }
  }
  for (size_t c = k; c-- > 0;) {
    double s = b[c];
    for (size_t t = c + 1; t < k; t++) s -= A[c * k + t] * b[t];
    b[c] = s / A[c * k + c];
  }
}

/* sklearn's weighted Ridge(alpha) with intercept on columns S (k) of Z (n,d), written
 * the obvious way; returns the weighted R² on the same rows. */
static double naive_ridge(size_t n, size_t d, const double *Z, const double *y, const double *w, const size_t *S,
                          size_t k, double alpha, double *coef, double *intercept) {
  double sw = 0, yb = 0, xb[16] = {0}, A[256], b[16];
  for (size_t i = 0; i < n; i++) {
    sw += w[i];
    yb += w[i] * y[i];
    for (size_t a = 0; a < k; a++) xb[a] += w[i] * Z[i * d + S[a]];
  }
  yb /= sw;
  for (size_t a = 0; a < k; a++) xb[a] /= sw;
  for (size_t a = 0; a < k; a++) {
    b[a] = 0;
    for (size_t c = 0; c < k; c++) A[a * k + c] = a == c ? alpha : 0;
  }
  for (size_t i = 0; i < n; i++)
    for (size_t a = 0; a < k; a++) {
      double xa = Z[i * d + S[a]] - xb[a];
      b[a] += w[i] * xa * (y[i] - yb);
      for (size_t c = 0; c < k; c++) A[a * k + c] += w[i] * xa * (Z[i * d + S[c]] - xb[c]);
    }
  naive_solve(k, A, b);
  double ic = yb, rss = 0, tss = 0;
  for (size_t a = 0; a < k; a++) coef[a] = b[a], ic -= xb[a] * b[a];
  for (size_t i = 0; i < n; i++) {
    double f = ic;
    for (size_t a = 0; a < k; a++) f += coef[a] * Z[i * d + S[a]];
    rss += w[i] * (y[i] - f) * (y[i] - f);
    tss += w[i] * (y[i] - yb) * (y[i] - yb);
  }
  *intercept = ic;
  return tss > 0 ? 1 - rss / tss : (rss > 0 ? 0 : 1);
}

/* A reproducible neighbourhood: binary (discretized-like, row 0 all ones) or Gaussian. */
static void make_neighbourhood(size_t n, size_t d, int binary, double *Z, double *y, double *dist) {
  xd_rng_t r;
  xd_rng_seed(&r, binary ? 11 : 12);
  for (size_t i = 0; i < n; i++) {
    double d2 = 0;
    for (size_t j = 0; j < d; j++) {
      double v = binary ? (i == 0 || xd_rng_uniform(&r) < 0.3 + 0.08 * (double)j) : xd_rng_normal(&r);
      Z[i * d + j] = v;
      double e = v - (binary ? 1.0 : Z[j]);
      d2 += e * e;
    }
    dist[i] = sqrt(d2);
    const double *z = Z + i * d;
    y[i] = 0.3 + 0.8 * z[0] - 0.5 * z[2] + 0.25 * z[1] * z[3] + 0.1 * z[4] - 0.05 * z[6] + 0.05 * xd_rng_normal(&r);
  }
}

static void check_fit(const char *what, size_t n, size_t d, const double *Z, const double *y, const double *dist,
                      double kw, xd_lime_fs_t fs, size_t k) {
  size_t used[16];
  double coef[16], w[512];
  xd_lime_fit_out_t out = {.used = used, .coef = coef};
  xd_error_t err;
  CHECK(xd_lime_fit_neighbourhood(n, d, Z, y, dist, kw, fs, k, &out, &err) == XD_OK);
  for (size_t i = 0; i < n; i++) w[i] = exp(-dist[i] * dist[i] / (2 * kw * kw));
  /* naive selection */
  size_t S[16], ks = 0;
  double c[16], ic;
  if (fs == XD_LIME_FS_AUTO) fs = k <= 6 ? XD_LIME_FS_FORWARD_SELECTION : XD_LIME_FS_HIGHEST_WEIGHTS;
  if (fs == XD_LIME_FS_NONE) {
    for (size_t j = 0; j < d; j++) S[ks++] = j;
  } else if (fs == XD_LIME_FS_FORWARD_SELECTION) {
    for (size_t r = 0; r < (k < d ? k : d); r++) {
      double best = -1e8;
      size_t bj = 0;
      for (size_t j = 0; j < d; j++) {
        int taken = 0;
        for (size_t a = 0; a < ks; a++) taken |= S[a] == j;
        if (taken) continue;
        S[ks] = j;
        double sc = naive_ridge(n, d, Z, y, w, S, ks + 1, 0.0, c, &ic);
        if (sc > best) best = sc, bj = j;
      }
      S[ks++] = bj;
    }
  } else if (fs == XD_LIME_FS_HIGHEST_WEIGHTS) {
    size_t all[16];
    for (size_t j = 0; j < d; j++) all[j] = j;
    naive_ridge(n, d, Z, y, w, all, d, 0.01, c, &ic);
    for (size_t a = 0; a < d; a++) { /* stable selection of the largest |coef·z0| */
      size_t b = a;
      for (size_t t = a + 1; t < d; t++)
        if (fabs(c[all[t]] * Z[all[t]]) > fabs(c[all[b]] * Z[all[b]])) b = t;
      size_t s = all[b];
      memmove(all + a + 1, all + a, (b - a) * sizeof *all);
      all[a] = s;
    }
    for (size_t a = 0; a < (k < d ? k : d); a++) S[ks++] = all[a];
  } else {
    /* lasso_path: only its first variable is checked here (the largest |Xcᵀ W yc|);
     * the full path is checked through its end point below. */
    ks = 0;
  }
  if (ks) {
    CHECK_MSG(out.n_used == ks, "%s: %zu features used, naive %zu", what, out.n_used, ks);
    for (size_t a = 0; a < ks && a < out.n_used; a++) {
      int found = 0;
      for (size_t b = 0; b < out.n_used; b++) found |= out.used[b] == S[a];
      CHECK_MSG(found, "%s: naive selects feature %zu", what, S[a]);
    }
  } else {
    for (size_t a = 0; a < out.n_used; a++) S[ks++] = out.used[a];
  }
  double score = naive_ridge(n, d, Z, y, w, S, ks, 1.0, c, &ic);
  CHECK_CLOSE(out.intercept, ic, 1e-10, 1e-12);
  CHECK_CLOSE(out.score, score, 1e-10, 1e-12);
  double lp = ic, lp2 = out.intercept;
  for (size_t a = 0; a < ks; a++) {
    CHECK_CLOSE(out.coef[S[a]], c[a], 1e-9, 1e-11);
    lp += c[a] * Z[S[a]];
  }
  CHECK_CLOSE(out.local_pred, lp, 1e-10, 1e-12);
  for (size_t a = 0; a < out.n_used; a++) lp2 += out.coef[out.used[a]] * Z[out.used[a]];
  CHECK_NEAR(out.local_pred, lp2, 1e-12);
  for (size_t a = 1; a < out.n_used; a++)
    CHECK_MSG(fabs(out.coef[out.used[a - 1]]) >= fabs(out.coef[out.used[a]]), "%s: weights not sorted", what);
}

/* lasso_path's selection against an independent computation: the lasso solved by
 * coordinate descent on the weighted, centred data along a fine grid of penalties; for
 * each k, lime keeps the support at the smallest penalty whose support has at most k
 * features. */
static void naive_lasso_supports(size_t n, size_t d, const double *Z, const double *y, const double *w, size_t k,
                                 int *keep) {
  double sw = 0, yb = 0, xb[16] = {0}, G[256] = {0}, b[16] = {0}, beta[16] = {0};
  for (size_t i = 0; i < n; i++) {
    sw += w[i], yb += w[i] * y[i];
    for (size_t j = 0; j < d; j++) xb[j] += w[i] * Z[i * d + j];
  }
  yb /= sw;
  for (size_t j = 0; j < d; j++) xb[j] /= sw;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < d; j++) {
      double xj = Z[i * d + j] - xb[j];
      b[j] += w[i] * xj * (y[i] - yb);
      for (size_t t = 0; t < d; t++) G[j * d + t] += w[i] * xj * (Z[i * d + t] - xb[t]);
    }
  double lmax = 0;
  for (size_t j = 0; j < d; j++) lmax = fmax(lmax, fabs(b[j]));
  for (size_t j = 0; j < d; j++) keep[j] = 0;
  for (int g = 1; g <= 3000; g++) {
    double lam = lmax * pow(1e-7, g / 3000.0);
    for (int it = 0; it < 2000; it++) { /* coordinate descent, warm started */
      double change = 0;
      for (size_t j = 0; j < d; j++) {
        double rho = b[j];
        for (size_t t = 0; t < d; t++)
          if (t != j) rho -= G[j * d + t] * beta[t];
        double nb = (rho > lam ? rho - lam : (rho < -lam ? rho + lam : 0)) / G[j * d + j];
        change = fmax(change, fabs(nb - beta[j]));
        beta[j] = nb;
      }
      if (change < 1e-13 * (1 + lmax)) break;
    }
    size_t nnz = 0;
    for (size_t j = 0; j < d; j++) nnz += beta[j] != 0;
    if (nnz <= k)
      for (size_t j = 0; j < d; j++) keep[j] = beta[j] != 0;
  }
}

TEST(injected_neighbourhood_fit) {
  enum { n = 400, d = 7 };
  static double Z[n * d], y[n], dist[n];
  for (int binary = 0; binary <= 1; binary++) {
    make_neighbourhood(n, d, binary, Z, y, dist);
    double kw = 0.75 * sqrt((double)d);
    for (int fs = 0; fs <= XD_LIME_FS_NONE; fs++)
      for (size_t k = 1; k <= d + 1; k += 2) {
        char what[64];
        snprintf(what, sizeof what, "binary %d fs %s k %zu", binary, xd_lime_fs_names[fs], k);
        check_fit(what, n, d, Z, y, dist, kw, (xd_lime_fs_t)fs, k);
      }
    /* lasso_path: the first variable to enter is the largest |Xcᵀ W yc|; with k >= d the
     * last point of the path (every feature) is kept. */
    double w[n], sw = 0, yb = 0, xb[d] = {0}, best = -1;
    size_t bj = 0, used[16];
    double coef[16];
    for (size_t i = 0; i < n; i++) {
      w[i] = exp(-dist[i] * dist[i] / (2 * kw * kw));
      sw += w[i], yb += w[i] * y[i];
      for (size_t j = 0; j < d; j++) xb[j] += w[i] * Z[i * d + j];
    }
    for (size_t j = 0; j < d; j++) {
      double cj = 0;
      for (size_t i = 0; i < n; i++) cj += w[i] * (Z[i * d + j] - xb[j] / sw) * (y[i] - yb / sw);
      if (fabs(cj) > best) best = fabs(cj), bj = j;
    }
    xd_lime_fit_out_t out = {.used = used, .coef = coef};
    CHECK(xd_lime_fit_neighbourhood(n, d, Z, y, dist, kw, XD_LIME_FS_LASSO_PATH, 1, &out, NULL) == XD_OK);
    CHECK(out.n_used == 1 && out.used[0] == bj);
    CHECK(xd_lime_fit_neighbourhood(n, d, Z, y, dist, kw, XD_LIME_FS_LASSO_PATH, d, &out, NULL) == XD_OK);
    CHECK(out.n_used == d);
    for (size_t k = 1; k < d; k++) {
      int keep[16];
      naive_lasso_supports(n, d, Z, y, w, k, keep);
      CHECK(xd_lime_fit_neighbourhood(n, d, Z, y, dist, kw, XD_LIME_FS_LASSO_PATH, k, &out, NULL) == XD_OK);
      size_t nk = 0;
      for (size_t j = 0; j < d; j++) nk += keep[j];
      CHECK_MSG(out.n_used == nk, "lasso_path k %zu: %zu features, coordinate descent %zu", k, out.n_used, nk);
      for (size_t a = 0; a < out.n_used; a++) CHECK_MSG(keep[out.used[a]], "lasso_path k %zu: feature %zu", k, out.used[a]);
    }
  }
  /* A constant output: R² is 1 (sklearn: 0/0 -> 1), every weight 0, local_pred = y. */
  make_neighbourhood(n, d, 1, Z, y, dist);
  for (size_t i = 0; i < n; i++) y[i] = 0.25;
  size_t used[16];
  double coef[16];
  xd_lime_fit_out_t out = {.used = used, .coef = coef};
  CHECK(xd_lime_fit_neighbourhood(n, d, Z, y, dist, 2.0, XD_LIME_FS_HIGHEST_WEIGHTS, 3, &out, NULL) == XD_OK);
  CHECK_NEAR(out.score, 1.0, 0);
  CHECK_NEAR(out.local_pred, 0.25, 1e-15);
  CHECK(xd_lime_fit_neighbourhood(n, d, Z, y, dist, 2.0, XD_LIME_FS_LASSO_PATH, 3, &out, NULL) == XD_OK);
  CHECK(out.n_used == d); /* a path with only its start: lime keeps every feature */
}

/* ---- bins vs numpy ------------------------------------------------------------------- */

static void check_bins(const char *what, const xd_bins_t *b, json_t *edges, json_t *g) {
  size_t ne = json_array_size(edges);
  CHECK_MSG(b->n_edges == ne, "%s: %zu edges, numpy %zu", what, b->n_edges, ne);
  if (b->n_edges != ne) return;
  for (size_t e = 0; e < ne; e++) CHECK_CLOSE(b->edges[e], json_number_value(json_array_get(edges, e)), 1e-12, 1e-15);
  for (size_t k = 0; k <= ne; k++) {
    CHECK(b->count[k] == (size_t)json_integer_value(json_array_get(json_object_get(g, "count"), k)));
    CHECK_CLOSE(b->mean[k], json_number_value(json_array_get(json_object_get(g, "mean"), k)), 1e-12, 1e-15);
    CHECK_CLOSE(b->std[k], json_number_value(json_array_get(json_object_get(g, "std"), k)), 1e-9, 1e-12);
    CHECK_CLOSE(b->min[k], json_number_value(json_array_get(json_object_get(g, "min"), k)), 1e-12, 1e-15);
    CHECK_CLOSE(b->max[k], json_number_value(json_array_get(json_object_get(g, "max"), k)), 1e-12, 1e-15);
  }
}

TEST(bins_match_numpy) {
  for (size_t k = 0; k < N_DEMO; k++) {
    char path[256];
    snprintf(path, sizeof path, "tests/golden/stats_%s.json", demo[k]);
    json_t *g = json_load_file(path, 0, NULL);
    xd_model_t *m = load(demo[k]);
    CHECK(g && m);
    if (!g || !m) {
      json_decref(g);
      xd_model_free(m);
      continue;
    }
    const xd_stats_t *st = xd_model_stats(m);
    json_t *feats = json_object_get(g, "features");
    CHECK(json_array_size(feats) == st->d);
    for (size_t j = 0; j < st->d && j < json_array_size(feats); j++) {
      json_t *f = json_array_get(feats, j);
      char what[128];
      snprintf(what, sizeof what, "%s.%s", demo[k], json_string_value(json_object_get(f, "name")));
      if (strcmp(json_string_value(json_object_get(f, "type")), "categorical") == 0) {
        json_t *fr = json_object_get(f, "frequencies");
        CHECK(st->f[j].n_categories == json_array_size(fr));
        for (size_t c = 0; c < json_array_size(fr) && c < st->f[j].n_categories; c++)
          CHECK_CLOSE(st->f[j].cat_freq[c], json_number_value(json_array_get(fr, c)), 1e-12, 0);
        continue;
      }
      CHECK_CLOSE(st->f[j].mean, json_number_value(json_object_get(f, "mean")), 1e-12, 1e-15);
      CHECK_CLOSE(st->f[j].std, json_number_value(json_object_get(f, "std")), 1e-10, 1e-15);
      check_bins(what, &st->f[j].bins[XD_DISC_QUARTILE], json_object_get(f, "quartiles"),
                 json_object_get(f, "quartile_bins"));
      check_bins(what, &st->f[j].bins[XD_DISC_DECILE], json_object_get(f, "deciles"), json_object_get(f, "decile_bins"));
      /* entropy bins exist exactly for classifiers, with at most 8 bins */
      int cls = xd_model_task(m) == XD_TASK_CLASSIFICATION;
      CHECK_MSG(st->f[j].has_entropy == cls, "%s: has_entropy %d", what, st->f[j].has_entropy);
      if (cls) CHECK(st->f[j].bins[XD_DISC_ENTROPY].n_edges >= 1 && st->f[j].bins[XD_DISC_ENTROPY].n_edges <= 7);
    }
    json_decref(g);
    xd_model_free(m);
  }
}

/* The entropy tree on hand-checked columns. */
TEST(entropy_discretizer) {
  double e[XD_BINS_MAX];
  /* 0×4, 1×4, 0×4 over 1..12: the splits at 4.5 and 8.5 tie at the root; the first
   * position wins (sklearn's strict >), then the right child splits at 8.5. */
  double col[12], y[12];
  for (int i = 0; i < 12; i++) col[i] = i + 1, y[i] = (i >= 4 && i < 8);
  size_t ne = xd_entropy_edges(col, y, 12, 2, e);
  CHECK(ne == 2);
  CHECK_NEAR(e[0], 4.5, 0);
  CHECK_NEAR(e[1], 8.5, 0);
  /* pure labels: no split, the median */
  for (int i = 0; i < 12; i++) y[i] = 1;
  ne = xd_entropy_edges(col, y, 11, 2, e);
  CHECK(ne == 1);
  CHECK_NEAR(e[0], 6, 0);
  /* thresholds are midpoints of float32 values, computed in double */
  double c2[4] = {0.1, 0.1, 0.2, 0.2}, y2[4] = {0, 0, 1, 1};
  ne = xd_entropy_edges(c2, y2, 4, 2, e);
  CHECK(ne == 1);
  CHECK(e[0] == (double)0.1f / 2.0 + (double)0.2f / 2.0);
  /* depth 3 caps the tree at 7 thresholds: alternate labels over 64 values */
  double c3[64], y3[64];
  for (int i = 0; i < 64; i++) c3[i] = i, y3[i] = i % 2;
  ne = xd_entropy_edges(c3, y3, 64, 2, e);
  CHECK(ne >= 1 && ne <= 7);
  for (size_t i = 1; i < ne; i++) CHECK(e[i] > e[i - 1]);
  /* labels out of range: no bins */
  xd_bins_t b;
  y2[0] = 5;
  CHECK(xd_entropy_bins(c2, y2, 4, 2, &b) == XD_EINVAL);
}

/* ---- explanations ------------------------------------------------------------------- */

/* local_pred == intercept + Σ weight·z0; sorted by |weight|; at most num_features;
 * top_labels 1 is the predicted class. */
static void check_explanation(const char *what, const xd_lime_plan_t *p, const xd_lime_result_t *r) {
  for (size_t l = 0; l < r->n_labels; l++) {
    const xd_lime_label_exp_t *e = &r->labels[l];
    double lp = e->intercept;
    for (size_t a = 0; a < e->n_weights; a++) lp += e->weight[a] * r->z0[e->feature[a]];
    CHECK_MSG(fabs(lp - e->local_pred) <= 1e-9 * (1 + fabs(lp)), "%s: local_pred %.17g vs %.17g", what,
              e->local_pred, lp);
    for (size_t a = 1; a < e->n_weights; a++) CHECK(fabs(e->weight[a - 1]) >= fabs(e->weight[a]));
    if (p->opt.feature_selection != XD_LIME_FS_NONE && p->opt.repeats == 1)
      CHECK(e->n_weights <= p->opt.num_features);
    CHECK(e->score <= 1 + 1e-12 && isfinite(e->score) && isfinite(e->intercept));
  }
  if (p->classification && p->opt.n_labels == 0) {
    size_t best = 0;
    for (size_t c = 1; c < r->n_outputs; c++)
      if (r->prediction[c] > r->prediction[best]) best = c;
    CHECK(r->labels[0].label == best);
    for (size_t l = 1; l < r->n_labels; l++)
      CHECK(r->prediction[r->labels[l - 1].label] >= r->prediction[r->labels[l].label]);
  }
}

TEST(explanation_invariants) {
  for (size_t k = 0; k < N_DEMO; k++) {
    xd_model_t *m = load(demo[k]);
    if (!m) continue;
    const double *x = xd_model_background(m)->X;
    for (int disc = 0; disc <= XD_LIME_DISC_NONE; disc++)
      for (int fs = 0; fs <= XD_LIME_FS_NONE; fs++) {
        if (disc == XD_LIME_DISC_ENTROPY && xd_model_task(m) != XD_TASK_CLASSIFICATION) continue;
        xd_lime_options_t o;
        xd_lime_options_default(&o);
        o.discretize = (xd_lime_disc_t)disc;
        o.feature_selection = (xd_lime_fs_t)fs;
        o.num_samples = 1500;
        o.num_features = fs == XD_LIME_FS_FORWARD_SELECTION ? 3 : 5;
        o.top_labels = xd_model_n_outputs(m);
        o.seed = 99;
        xd_lime_plan_t p;
        xd_error_t err;
        if (xd_lime_plan_init(&p, m, &o, &err) != XD_OK) {
          CHECK_MSG(0, "%s: %s", demo[k], err.text);
          continue;
        }
        xd_lime_result_t r;
        char what[128];
        snprintf(what, sizeof what, "%s %s %s", demo[k], xd_lime_disc_names[disc], xd_lime_fs_names[fs]);
        CHECK_MSG(xd_lime_explain(&p, x, 0, &r, NULL, &err) == XD_OK, "%s: %s", what, err.text);
        check_explanation(what, &p, &r);
        for (size_t j = 0; j < p.d; j++)
          CHECK(disc == XD_LIME_DISC_NONE ? isfinite(r.z0[j]) : r.z0[j] == 1.0);
        xd_lime_result_deinit(&r);
        xd_lime_plan_deinit(&p);
      }
    xd_model_free(m);
  }
}

/* lime's condition texts. */
TEST(conditions) {
  xd_model_t *m = load("credit");
  if (!m) { CHECK(0); return; }
  xd_lime_plan_t p;
  CHECK(plan(&p, m, XD_LIME_DISC_QUARTILE, XD_LIME_FS_AUTO, 100, 1) == XD_OK);
  /* age quartiles 33, 50, 65 (tests/golden/stats_credit.json) */
  double x[6] = {20, 40000, 0.3, 1, 2, 0};
  char buf[128];
  xd_lime_condition(&p, 0, x, buf, sizeof buf);
  CHECK(strcmp(buf, "age <= 33.00") == 0);
  x[0] = 40;
  xd_lime_condition(&p, 0, x, buf, sizeof buf);
  CHECK(strcmp(buf, "33.00 < age <= 50.00") == 0);
  x[0] = 65;
  xd_lime_condition(&p, 0, x, buf, sizeof buf);
  CHECK(strcmp(buf, "50.00 < age <= 65.00") == 0);
  x[0] = 70;
  xd_lime_condition(&p, 0, x, buf, sizeof buf);
  CHECK(strcmp(buf, "age > 65.00") == 0);
  xd_lime_condition(&p, 3, x, buf, sizeof buf);
  CHECK(strcmp(buf, "employment=retired") == 0);
  xd_lime_condition(&p, 4, x, buf, sizeof buf);
  CHECK(strcmp(buf, "region=south") == 0);
  xd_lime_plan_deinit(&p);
  CHECK(plan(&p, m, XD_LIME_DISC_NONE, XD_LIME_FS_AUTO, 100, 1) == XD_OK);
  xd_lime_condition(&p, 0, x, buf, sizeof buf);
  CHECK(strcmp(buf, "age") == 0);
  xd_lime_condition(&p, 4, x, buf, sizeof buf);
  CHECK(strcmp(buf, "region=south") == 0);
  xd_lime_plan_deinit(&p);
  xd_model_free(m);
}

/* A linear regression y = β·x + c in continuous mode with feature_selection none: the
 * surrogate sees standardized features, so its coefficients are β_j·std_j, and R² ≈ 1
 * (slightly below because of the alpha-1 shrinkage against Σw ≫ 1). */
/* A regression model y = β·x + 1.5 (one identity layer) whose background has nb rows of
 * N(mean_j, scale_j²) features. */
static xd_model_t *linear_model(size_t d, size_t nb, const double *beta, const double *scale, const double *mean) {
  xd_model_spec_t s;
  memset(&s, 0, sizeof s);
  s.task = XD_TASK_REGRESSION;
  s.n_features = d;
  s.features = xd_calloc(d, sizeof *s.features);
  s.n_layers = 1;
  s.layers = xd_calloc(1, sizeof *s.layers);
  s.layers[0] = (xd_layer_spec_t){d, 1, xd_malloc(d * sizeof(double)), xd_malloc(sizeof(double)), XD_ACT_IDENTITY};
  s.background = (xd_dataset_t){nb, d, xd_malloc(nb * d * sizeof(double)), NULL};
  xd_rng_t r;
  xd_rng_seed(&r, 5);
  for (size_t j = 0; j < d; j++) {
    char nm[32];
    snprintf(nm, sizeof nm, "x%zu", j);
    s.features[j].name = xd_strdup(nm);
    s.layers[0].weights[j] = beta[j];
  }
  s.layers[0].bias[0] = 1.5;
  for (size_t i = 0; i < nb * d; i++) s.background.X[i] = mean[i % d] + scale[i % d] * xd_rng_normal(&r);
  xd_model_t *m = NULL;
  xd_error_t err;
  if (xd_model_new(&s, &m, &err) != XD_OK) fprintf(stderr, "  linear model: %s %s\n", err.field, err.text);
  return m;
}

TEST(linear_model_recovered) {
  enum { d = 4, nb = 400 };
  const double beta[d] = {2.0, -0.5, 0.03, 7.0}, scale[d] = {1.0, 10.0, 100.0, 0.2}, mean[d] = {0, 5, -50, 1};
  xd_error_t err;
  xd_model_t *m = linear_model(d, nb, beta, scale, mean);
  CHECK(m != NULL);
  if (!m) return;
  const xd_stats_t *st = xd_model_stats(m);
  for (int around = 0; around <= 1; around++) {
    xd_lime_options_t o;
    xd_lime_options_default(&o);
    o.discretize = XD_LIME_DISC_NONE;
    o.feature_selection = XD_LIME_FS_NONE;
    o.sample_around_instance = around;
    o.seed = 3;
    xd_lime_plan_t p;
    CHECK(xd_lime_plan_init(&p, m, &o, &err) == XD_OK);
    xd_lime_result_t res;
    CHECK(xd_lime_explain(&p, xd_model_background(m)->X + 3 * d, 0, &res, NULL, &err) == XD_OK);
    const xd_lime_label_exp_t *e = &res.labels[0];
    CHECK(e->n_weights == d);
    for (size_t a = 0; a < e->n_weights; a++) {
      size_t j = e->feature[a];
      CHECK_CLOSE(e->weight[a], beta[j] * st->f[j].std, 5e-3, 1e-4);
    }
    CHECK(e->score > 0.999 && e->score <= 1);
    CHECK_CLOSE(e->local_pred, res.prediction[0], 1e-3, 1e-3);
    xd_lime_result_deinit(&res);
    xd_lime_plan_deinit(&p);
  }
  xd_model_free(m);
}

/* More features than a row mask has bits (d > 64): the generic Gram path in discretized
 * mode gives the same invariants, and matches the naive fit on the same neighbourhood. */
TEST(wide_model) {
  enum { d = 70, nb = 200 };
  double beta[d], scale[d], mean[d];
  for (size_t j = 0; j < d; j++) beta[j] = (j % 7 == 0) ? 1.0 + j / 10.0 : 0.01 * (double)j, scale[j] = 1, mean[j] = 0;
  xd_model_t *m = linear_model(d, nb, beta, scale, mean);
  if (!m) {
    CHECK(0);
    return;
  }
  for (int disc = 0; disc <= XD_LIME_DISC_NONE; disc += 3) {
    xd_lime_plan_t p;
    CHECK(plan(&p, m, (xd_lime_disc_t)disc, XD_LIME_FS_AUTO, 3000, 4) == XD_OK);
    xd_lime_result_t r;
    xd_error_t err;
    CHECK(xd_lime_explain(&p, xd_model_background(m)->X, 0, &r, NULL, &err) == XD_OK);
    check_explanation("wide", &p, &r);
    CHECK(r.labels[0].n_weights == 10);
    /* the largest coefficients (features 63, 56, 49) lead */
    CHECK(r.labels[0].feature[0] == 63);
    xd_lime_result_deinit(&r);
    size_t n = 3000;
    double *inv = xd_malloc(n * d * 8), *Z = xd_malloc(n * d * 8), *dist = xd_malloc(n * 8), *w = xd_malloc(n * 8),
           *z0 = xd_malloc(d * 8);
    CHECK(xd_lime_neighbourhood(&p, xd_model_background(m)->X, 1, inv, Z, dist, w, z0) == XD_OK);
    for (size_t i = 1; i < n && disc != XD_LIME_DISC_NONE; i++) {
      double moved = 0;
      for (size_t j = 0; j < d; j++) moved += Z[i * d + j] == 0;
      CHECK_NEAR(dist[i] * dist[i], moved, 1e-9);
    }
    xd_free(inv), xd_free(Z), xd_free(dist), xd_free(w), xd_free(z0);
    xd_lime_plan_deinit(&p);
  }
  xd_model_free(m);
}

/* credit's region has no effect on the label (make_models.py): over 20 instances it never
 * ranks among the three largest weights. */
TEST(credit_region_irrelevant) {
  xd_model_t *m = load("credit");
  if (!m) { CHECK(0); return; }
  xd_lime_plan_t p;
  CHECK(plan(&p, m, XD_LIME_DISC_QUARTILE, XD_LIME_FS_AUTO, 5000, 2024) == XD_OK);
  const xd_dataset_t *bg = xd_model_background(m);
  size_t region = 4, hits = 0;
  for (size_t i = 0; i < 20; i++) {
    xd_lime_result_t r;
    xd_error_t err;
    CHECK(xd_lime_explain(&p, bg->X + i * 37 * bg->d, i, &r, NULL, &err) == XD_OK);
    const xd_lime_label_exp_t *e = &r.labels[0];
    for (size_t a = 0; a < 3 && a < e->n_weights; a++) hits += e->feature[a] == region;
    xd_lime_result_deinit(&r);
  }
  CHECK_MSG(hits == 0, "region in the top 3 of %zu explanations", hits);
  xd_lime_plan_deinit(&p);
  xd_model_free(m);
}

/* ---- determinism and repeats --------------------------------------------------------- */

typedef struct det_arg {
  const xd_lime_plan_t *p;
  const double *X;
  xd_lime_result_t *res;
  size_t first, step, n;
  int reverse;
} det_arg_t;

static void *det_worker(void *a) {
  det_arg_t *t = a;
  for (size_t k = 0; k < t->n; k++) {
    size_t i = t->reverse ? t->n - 1 - k : k;
    if (i % t->step != t->first) continue;
    xd_error_t err;
    xd_lime_explain(t->p, t->X + i * t->p->d, i, &t->res[i], NULL, &err);
  }
  return NULL;
}

static int same_result(const xd_lime_result_t *a, const xd_lime_result_t *b) {
  if (a->n_labels != b->n_labels || a->d != b->d) return 0;
  if (memcmp(a->prediction, b->prediction, a->n_outputs * sizeof(double))) return 0;
  for (size_t l = 0; l < a->n_labels; l++) {
    const xd_lime_label_exp_t *x = &a->labels[l], *y = &b->labels[l];
    if (x->label != y->label || x->n_weights != y->n_weights) return 0;
    if (memcmp(&x->intercept, &y->intercept, sizeof x->intercept) || memcmp(&x->score, &y->score, sizeof x->score))
      return 0;
    if (memcmp(x->feature, y->feature, x->n_weights * sizeof(size_t)) ||
        memcmp(x->weight, y->weight, x->n_weights * sizeof(double)))
      return 0;
  }
  return 1;
}

/* Parts run on 1 thread in order and on 3 threads in reverse order give identical bits. */
TEST(deterministic_across_workers) {
  xd_model_t *m = load("breast_cancer");
  if (!m) { CHECK(0); return; }
  enum { n = 6 };
  for (int disc = 0; disc <= XD_LIME_DISC_NONE; disc += 3) {
    xd_lime_plan_t p;
    CHECK(plan(&p, m, (xd_lime_disc_t)disc, XD_LIME_FS_AUTO, 2000, 77) == XD_OK);
    const double *X = xd_model_background(m)->X;
    xd_lime_result_t one[n], many[n];
    det_arg_t a = {&p, X, one, 0, 1, n, 0};
    det_worker(&a);
    pthread_t th[3];
    det_arg_t args[3];
    for (size_t t = 0; t < 3; t++) {
      args[t] = (det_arg_t){&p, X, many, t, 3, n, 1};
      pthread_create(&th[t], NULL, det_worker, &args[t]);
    }
    for (size_t t = 0; t < 3; t++) pthread_join(th[t], NULL);
    for (size_t i = 0; i < n; i++) {
      CHECK_MSG(same_result(&one[i], &many[i]), "instance %zu differs across threads", i);
      xd_lime_result_deinit(&one[i]);
      xd_lime_result_deinit(&many[i]);
    }
    /* and a different seed gives a different neighbourhood */
    xd_lime_plan_t q;
    CHECK(plan(&q, m, (xd_lime_disc_t)disc, XD_LIME_FS_AUTO, 2000, 78) == XD_OK);
    xd_error_t err;
    CHECK(xd_lime_explain(&p, X, 0, &one[0], NULL, &err) == XD_OK);
    CHECK(xd_lime_explain(&q, X, 0, &many[0], NULL, &err) == XD_OK);
    CHECK(one[0].labels[0].intercept != many[0].labels[0].intercept);
    xd_lime_result_deinit(&one[0]);
    xd_lime_result_deinit(&many[0]);
    xd_lime_plan_deinit(&q);
    xd_lime_plan_deinit(&p);
  }
  xd_model_free(m);
}

/* repeats k: run r of instance i uses stream i·k + r, which is instance i·k + r of a
 * one-repeat plan; the reported mean and population std are those of the k runs. */
TEST(repeats_mean_and_std) {
  xd_model_t *m = load("wine");
  if (!m) { CHECK(0); return; }
  enum { K = 4 };
  xd_lime_options_t o;
  xd_lime_options_default(&o);
  o.num_samples = 800;
  o.num_features = 4;
  o.repeats = K;
  o.seed = 5;
  o.top_labels = 2;
  xd_lime_plan_t pk, p1;
  xd_error_t err;
  CHECK(xd_lime_plan_init(&pk, m, &o, &err) == XD_OK);
  o.repeats = 1;
  CHECK(xd_lime_plan_init(&p1, m, &o, &err) == XD_OK);
  const double *X = xd_model_background(m)->X;
  size_t inst = 2, d = pk.d;
  xd_lime_result_t rk, r1[K];
  CHECK(xd_lime_explain(&pk, X + inst * d, inst, &rk, NULL, &err) == XD_OK);
  for (size_t r = 0; r < K; r++) CHECK(xd_lime_explain(&p1, X + inst * d, inst * K + r, &r1[r], NULL, &err) == XD_OK);
  check_explanation("repeats", &pk, &rk);
  for (size_t l = 0; l < rk.n_labels; l++) {
    const xd_lime_label_exp_t *e = &rk.labels[l];
    double mi = 0;
    for (size_t r = 0; r < K; r++) mi += r1[r].labels[l].intercept / K;
    CHECK_NEAR(e->intercept, mi, 1e-12);
    for (size_t a = 0; a < e->n_weights; a++) {
      size_t j = e->feature[a], sel = 0;
      double w[K], mean = 0, var = 0;
      for (size_t r = 0; r < K; r++) {
        w[r] = 0;
        const xd_lime_label_exp_t *er = &r1[r].labels[l];
        for (size_t b = 0; b < er->n_weights; b++)
          if (er->feature[b] == j) w[r] = er->weight[b], sel++;
        mean += w[r] / K;
      }
      for (size_t r = 0; r < K; r++) var += (w[r] - mean) * (w[r] - mean) / K;
      CHECK_NEAR(e->weight[a], mean, 1e-12);
      CHECK_NEAR(e->std[a], sqrt(var), 1e-12);
      CHECK(e->std[a] >= 0);
      CHECK(e->selected[a] == sel && sel >= 1);
    }
  }
  for (size_t r = 0; r < K; r++) xd_lime_result_deinit(&r1[r]);
  xd_lime_result_deinit(&rk);
  xd_lime_plan_deinit(&pk);
  xd_lime_plan_deinit(&p1);
  xd_model_free(m);
}

/* ---- options, cancellation, allocation failures --------------------------------------- */

/* Every combination of options on every demo model, down to neighbourhoods of 1, 2 and 7
 * rows (fewer rows than features: singular Gram matrices): an explanation, finite, whose
 * local_pred is intercept + Σ weight·z0. */
TEST(option_sweep) {
  static const size_t ns[] = {1, 2, 7}, nf[] = {1, 100}, rep[] = {1, 3};
  size_t runs = 0;
  for (size_t k = 0; k < N_DEMO; k++) {
    xd_model_t *m = load(demo[k]);
    if (!m) {
      CHECK(0);
      continue;
    }
    const double *X = xd_model_background(m)->X;
    size_t d = xd_model_n_features(m);
    for (int disc = 0; disc <= XD_LIME_DISC_NONE; disc++)
      for (int fs = 0; fs <= XD_LIME_FS_NONE; fs++)
        for (size_t a = 0; a < 3; a++)
          for (size_t b = 0; b < 2; b++)
            for (size_t c = 0; c < 2; c++)
              for (int around = 0; around <= 1; around++) {
                xd_lime_options_t o;
                xd_lime_options_default(&o);
                o.discretize = (xd_lime_disc_t)disc, o.feature_selection = (xd_lime_fs_t)fs;
                o.num_samples = ns[a], o.num_features = nf[b], o.repeats = rep[c];
                o.sample_around_instance = around, o.seed = runs;
                o.top_labels = xd_model_n_outputs(m) > 1 ? 2 : 1;
                xd_lime_plan_t p;
                xd_error_t err;
                if (xd_lime_plan_init(&p, m, &o, &err) != XD_OK) { /* only entropy on a regressor */
                  CHECK(disc == XD_LIME_DISC_ENTROPY && xd_model_task(m) == XD_TASK_REGRESSION);
                  continue;
                }
                xd_lime_result_t r;
                int rc = xd_lime_explain(&p, X + (runs % 5) * d, runs % 3, &r, NULL, &err);
                CHECK_MSG(rc == XD_OK, "%s disc %d fs %d ns %zu: %s", demo[k], disc, fs, ns[a], err.text);
                for (size_t l = 0; rc == XD_OK && l < r.n_labels; l++) {
                  const xd_lime_label_exp_t *e = &r.labels[l];
                  double lp = e->intercept;
                  for (size_t w = 0; w < e->n_weights; w++) lp += e->weight[w] * r.z0[e->feature[w]];
                  CHECK_MSG(fabs(lp - e->local_pred) <= 1e-9 * (1 + fabs(lp)) && isfinite(e->score),
                            "%s disc %d fs %d ns %zu nf %zu", demo[k], disc, fs, ns[a], nf[b]);
                }
                runs++;
                xd_lime_result_deinit(&r);
                xd_lime_plan_deinit(&p);
              }
    xd_model_free(m);
  }
  CHECK(runs > 2000);
}

TEST(plan_errors) {
  xd_model_t *dia = load("diabetes"), *iris = load("iris");
  if (!dia || !iris) { CHECK(0); return; }
  xd_lime_options_t o;
  xd_lime_plan_t p;
  xd_error_t err;
  xd_lime_options_default(&o);
  o.discretize = XD_LIME_DISC_ENTROPY;
  CHECK(xd_lime_plan_init(&p, dia, &o, &err) == XD_EINVAL && strcmp(err.field, "discretize") == 0);
  xd_lime_options_default(&o);
  o.top_labels = 4;
  CHECK(xd_lime_plan_init(&p, iris, &o, &err) == XD_EINVAL && strcmp(err.field, "top_labels") == 0);
  xd_lime_options_default(&o);
  o.n_labels = 2, o.labels[0] = 1, o.labels[1] = 3;
  CHECK(xd_lime_plan_init(&p, iris, &o, &err) == XD_EINVAL && strcmp(err.field, "labels[1]") == 0);
  o.labels[1] = 1;
  CHECK(xd_lime_plan_init(&p, iris, &o, &err) == XD_EINVAL && strcmp(err.field, "labels[1]") == 0);
  /* explicit labels are explained in the order given */
  o.labels[1] = 0;
  CHECK(xd_lime_plan_init(&p, iris, &o, &err) == XD_OK);
  xd_lime_result_t r;
  CHECK(xd_lime_explain(&p, xd_model_background(iris)->X, 0, &r, NULL, &err) == XD_OK);
  CHECK(r.n_labels == 2 && r.labels[0].label == 1 && r.labels[1].label == 0);
  xd_lime_result_deinit(&r);
  xd_lime_plan_deinit(&p);
  /* the default kernel width */
  xd_lime_options_default(&o);
  CHECK(xd_lime_plan_init(&p, dia, &o, &err) == XD_OK);
  CHECK_NEAR(p.opt.kernel_width, 0.75 * sqrt(10.0), 1e-15);
  /* num_samples 1: only the instance; the surrogate is its value */
  xd_lime_plan_deinit(&p);
  o.num_samples = 1;
  CHECK(xd_lime_plan_init(&p, dia, &o, &err) == XD_OK);
  CHECK(xd_lime_explain(&p, xd_model_background(dia)->X, 0, &r, NULL, &err) == XD_OK);
  CHECK_NEAR(r.labels[0].local_pred, r.prediction[0], 1e-9);
  xd_lime_result_deinit(&r);
  xd_lime_plan_deinit(&p);
  xd_model_free(dia);
  xd_model_free(iris);
}

TEST(cancel_and_alloc_failures) {
  xd_model_t *m = load("iris");
  if (!m) { CHECK(0); return; }
  xd_lime_plan_t p;
  CHECK(plan(&p, m, XD_LIME_DISC_QUARTILE, XD_LIME_FS_AUTO, 300, 1) == XD_OK);
  atomic_int flag = 1;
  xd_cancel_t c = {&flag, 0};
  xd_lime_result_t r;
  xd_error_t err;
  CHECK(xd_lime_explain(&p, xd_model_background(m)->X, 0, &r, &c, &err) == XD_ECANCELED);
  xd_lime_result_deinit(&r);
  xd_cancel_t late = {NULL, 1};
  CHECK(xd_lime_explain(&p, xd_model_background(m)->X, 0, &r, &late, &err) == XD_ETIMEDOUT);
  xd_lime_result_deinit(&r);
  /* every allocation of an explanation may fail: a clean XD_ENOMEM, nothing leaked (ASan) */
  int failures = 0;
  for (long k = 1; k < 200; k++) {
    xd_alloc_fail_after(k);
    long before = xd_alloc_failures();
    int rc = xd_lime_explain(&p, xd_model_background(m)->X, 0, &r, NULL, &err);
    int injected = xd_alloc_failures() > before;
    xd_alloc_fail_after(0);
    xd_lime_result_deinit(&r);
    if (!injected) {
      CHECK(rc == XD_OK);
      break;
    }
    failures++;
    CHECK_MSG(rc == XD_ENOMEM, "allocation %ld: rc %d", k, rc);
  }
  CHECK(failures > 5);
  xd_lime_plan_deinit(&p);
  xd_model_free(m);
}

int main(void) {
  xd_blas_init();
  RUN(neighbourhood_invariants);
  RUN(undiscretize_is_truncated_normal);
  RUN(injected_neighbourhood_fit);
  RUN(bins_match_numpy);
  RUN(entropy_discretizer);
  RUN(explanation_invariants);
  RUN(wide_model);
  RUN(conditions);
  RUN(linear_model_recovered);
  RUN(credit_region_irrelevant);
  RUN(deterministic_across_workers);
  RUN(repeats_mean_and_std);
  RUN(option_sweep);
  RUN(plan_errors);
  RUN(cancel_and_alloc_failures);
  return TEST_REPORT();
}
