/* kmeans.c — the background summary of Kernel SHAP (shap.kmeans).
 *
 * Reference: shap/utils/_legacy.py kmeans(X, k, round_values=True), which runs
 * sklearn's KMeans(n_clusters=k, random_state=0, n_init=10) and snaps every centre
 * coordinate to the nearest value observed in its column; weights are cluster sizes.
 * Here the seeding is sklearn's greedy k-means++ (2 + ln k local trials per centre)
 * drawn from the request's seed, so the summary is deterministic; the Lloyd iterations,
 * the stopping rule (centre shift² ≤ 1e-4 · mean column variance, at most 300
 * iterations) and the distance expansion ||x||² - 2x·c + ||c||² (one GEMM per
 * iteration) follow sklearn's. Bit parity with sklearn is not a goal. Each of the 10
 * runs has its own random stream, so a caller may spread them over threads
 * (api/explain_shap.c does) and still get the same summary.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/mat.h"
#include "core/shap.h"

#define KM_MAX_ITER 300

static double sqdist(const double *a, const double *b, size_t d) {
  double s = 0;
  for (size_t j = 0; j < d; j++) {
    double t = a[j] - b[j];
    s += t * t;
  }
  return s;
}

/* First index i with cum[i] > u (cum non-decreasing), clipped to n-1. */
static size_t search_cum(const double *cum, size_t n, double u) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cum[mid] > u) hi = mid;
    else lo = mid + 1;
  }
  return lo < n ? lo : n - 1;
}

/* Squared distances as sklearn computes them, ||x||² - 2x·c + ||c||², clamped at 0:
 * X (n,d), C (m,d) -> D (n,m) with one GEMM. xn (n), cn (m) are the squared norms. */
static void sqdists(const double *X, const double *xn, size_t n, size_t d, const double *C, const double *cn,
                    size_t m, double *D) {
  xd_dgemm_nt(n, m, d, X, C, 0, D);
  for (size_t i = 0; i < n; i++)
    for (size_t c = 0; c < m; c++) {
      double v = xn[i] - 2 * D[i * m + c] + cn[c];
      D[i * m + c] = v > 0 ? v : 0;
    }
}

/* Greedy k-means++ (sklearn's _kmeans_plusplus, 2 + ln k local trials): C (k,d). */
static int seed_pp(const double *X, const double *xn, size_t n, size_t d, size_t k, xd_rng_t *rng, double *C,
                   double *closest, double *cum, double *cand, double *cnorm, double *CD, const xd_cancel_t *cancel) {
  size_t trials = 2 + (size_t)log((double)k), ids[64];
  if (trials > 64) trials = 64;
  size_t first = (size_t)xd_rng_below(rng, n);
  memcpy(C, X + first * d, d * sizeof *C);
  double pot = 0;
  for (size_t i = 0; i < n; i++) pot += closest[i] = sqdist(X + i * d, C, d);
  for (size_t c = 1; c < k; c++) {
    int rc = c % XD_SHAP_KMEANS_CHECK == 0 ? xd_cancel_check(cancel) : XD_OK;
    if (rc != XD_OK) return rc;
    double run = 0;
    for (size_t i = 0; i < n; i++) cum[i] = run += closest[i];
    for (size_t t = 0; t < trials; t++) {
      ids[t] = pot > 0 ? search_cum(cum, n, xd_rng_uniform(rng) * pot) : (size_t)xd_rng_below(rng, n);
      memcpy(cand + t * d, X + ids[t] * d, d * sizeof *cand);
      cnorm[t] = xn[ids[t]];
    }
    sqdists(X, xn, n, d, cand, cnorm, trials, CD);
    size_t best = 0;
    double best_pot = DBL_MAX;
    for (size_t t = 0; t < trials; t++) {
      double cp = 0;
      for (size_t i = 0; i < n; i++) cp += CD[i * trials + t] < closest[i] ? CD[i * trials + t] : closest[i];
      if (cp < best_pot) best_pot = cp, best = t;
    }
    memcpy(C + c * d, cand + best * d, d * sizeof *C);
    pot = 0;
    for (size_t i = 0; i < n; i++) {
      double dd = CD[i * trials + best];
      if (dd < closest[i]) closest[i] = dd;
      pot += closest[i];
    }
  }
  return XD_OK;
}

int xd_shap_kmeans_run(const double *X, size_t n, size_t d, size_t k, uint64_t seed, unsigned r, double *C,
                       size_t *counts, double *inertia, const xd_cancel_t *cancel, xd_error_t *err) {
  if (k > n) k = n;
  if (n == 0 || k == 0 || d == 0) return xd_error_set(err, XD_EINVAL, "background", "empty background");
  size_t w = k > 64 ? k : 64;
  double *xn = xd_malloc(n * sizeof *xn), *closest = xd_malloc(n * sizeof *closest), *cum = xd_malloc(n * sizeof *cum);
  double *cand = xd_malloc(xd_mul_size(64, d) * sizeof *cand), *cn = xd_malloc(w * sizeof *cn);
  double *D = xd_malloc(xd_mul_size(n, w) * sizeof *D), *S = xd_malloc(xd_mul_size(k, d) * sizeof *S);
  size_t *labels = xd_malloc(n * sizeof *labels);
  int rc = XD_OK;
  if (!xn || !closest || !cum || !cand || !cn || !D || !S || !labels) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory for the k-means background summary");
    goto done;
  }
  /* tol = 1e-4 × mean of the column variances (sklearn's _tolerance) */
  double tol = 0;
  for (size_t j = 0; j < d; j++) {
    double mu = 0, var = 0;
    for (size_t i = 0; i < n; i++) mu += X[i * d + j];
    mu /= (double)n;
    for (size_t i = 0; i < n; i++) var += (X[i * d + j] - mu) * (X[i * d + j] - mu);
    tol += var / (double)n;
  }
  tol = 1e-4 * tol / (double)d;
  for (size_t i = 0; i < n; i++) xn[i] = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < d; j++) xn[i] += X[i * d + j] * X[i * d + j];

  xd_rng_t rng;
  xd_rng_seed_stream(&rng, seed, XD_SHAP_KMEANS_STREAM + r);
  if ((rc = seed_pp(X, xn, n, d, k, &rng, C, closest, cum, cand, cn, D, cancel)) != XD_OK) goto stopped;

  /* Lloyd: assign with one GEMM per iteration, move centres to their means */
  for (int it = 0; it < KM_MAX_ITER; it++) {
    if ((rc = xd_cancel_check(cancel)) != XD_OK) goto stopped;
    for (size_t c = 0; c < k; c++) cn[c] = 0;
    for (size_t c = 0; c < k; c++)
      for (size_t j = 0; j < d; j++) cn[c] += C[c * d + j] * C[c * d + j];
    sqdists(X, xn, n, d, C, cn, k, D);
    memset(S, 0, k * d * sizeof *S);
    memset(counts, 0, k * sizeof *counts);
    for (size_t i = 0; i < n; i++) {
      size_t b = 0;
      for (size_t c = 1; c < k; c++)
        if (D[i * k + c] < D[i * k + b]) b = c;
      labels[i] = b;
      counts[b]++;
      for (size_t j = 0; j < d; j++) S[b * d + j] += X[i * d + j];
    }
    double shift = 0;
    for (size_t c = 0; c < k; c++) {
      if (!counts[c]) continue; /* an empty cluster keeps its centre */
      for (size_t j = 0; j < d; j++) {
        double v = S[c * d + j] / (double)counts[c], t = v - C[c * d + j];
        shift += t * t;
        C[c * d + j] = v;
      }
    }
    if (shift <= tol) break;
  }
  /* final assignment against the final centres (sklearn's labels_), exact distances */
  memset(counts, 0, k * sizeof *counts);
  double in = 0;
  for (size_t i = 0; i < n; i++) {
    size_t b = 0;
    double bd = DBL_MAX;
    for (size_t c = 0; c < k; c++) {
      double dd = sqdist(X + i * d, C + c * d, d);
      if (dd < bd) bd = dd, b = c;
    }
    counts[b]++;
    in += bd;
  }
  *inertia = in;
  goto done;
stopped:
  xd_error_set(err, rc, NULL, "%s while summarizing the background", rc == XD_ETIMEDOUT ? "deadline exceeded" : "canceled");
done:
  xd_free(xn);
  xd_free(closest);
  xd_free(cum);
  xd_free(cand);
  xd_free(cn);
  xd_free(D);
  xd_free(S);
  xd_free(labels);
  return rc;
}

int xd_shap_kmeans_pick(const double *X, size_t n, size_t d, size_t k, double *const *C, size_t *const *counts,
                        const double *inertia, size_t runs, xd_shap_bg_t *out, xd_error_t *err) {
  memset(out, 0, sizeof *out);
  if (k > n) k = n;
  size_t r = 0;
  for (size_t t = 1; t < runs; t++)
    if (inertia[t] < inertia[r]) r = t; /* strict: the first of equal runs wins, as sklearn */
  const double *best = C[r];
  const size_t *bc = counts[r];
  size_t kept = 0;
  for (size_t c = 0; c < k; c++) kept += bc[c] > 0;
  out->X = xd_malloc(xd_mul_size(kept, d) * sizeof *out->X);
  out->w = xd_malloc((kept ? kept : 1) * sizeof *out->w);
  if (!out->X || !out->w) {
    xd_shap_bg_deinit(out);
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory for the k-means background summary");
  }
  out->n = kept;
  out->d = d;
  size_t row = 0;
  for (size_t c = 0; c < k; c++) {
    if (!bc[c]) continue;
    for (size_t j = 0; j < d; j++) { /* snap to the nearest observed value, first on ties */
      double v = best[c * d + j], bv = X[j], bd = fabs(X[j] - v);
      for (size_t i = 1; i < n; i++) {
        double dd = fabs(X[i * d + j] - v);
        if (dd < bd) bd = dd, bv = X[i * d + j];
      }
      out->X[row * d + j] = bv;
    }
    out->w[row] = (double)bc[c] / (double)n;
    row++;
  }
  return XD_OK;
}

int xd_shap_kmeans(const double *X, size_t n, size_t d, size_t k, uint64_t seed, xd_shap_bg_t *out,
                   xd_error_t *err) {
  memset(out, 0, sizeof *out);
  if (k > n) k = n;
  if (n == 0 || k == 0 || d == 0) return xd_error_set(err, XD_EINVAL, "background", "empty background");
  double *C[XD_SHAP_KMEANS_RUNS] = {0}, inertia[XD_SHAP_KMEANS_RUNS];
  size_t *cnt[XD_SHAP_KMEANS_RUNS] = {0};
  int rc = XD_OK;
  for (unsigned r = 0; r < XD_SHAP_KMEANS_RUNS && rc == XD_OK; r++) {
    C[r] = xd_malloc(xd_mul_size(k, d) * sizeof **C);
    cnt[r] = xd_malloc(k * sizeof **cnt);
    if (!C[r] || !cnt[r]) rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory for the k-means background summary");
    else rc = xd_shap_kmeans_run(X, n, d, k, seed, r, C[r], cnt[r], &inertia[r], NULL, err);
  }
  if (rc == XD_OK) rc = xd_shap_kmeans_pick(X, n, d, k, C, cnt, inertia, XD_SHAP_KMEANS_RUNS, out, err);
  for (unsigned r = 0; r < XD_SHAP_KMEANS_RUNS; r++) {
    xd_free(C[r]);
    xd_free(cnt[r]);
  }
  return rc;
}

int xd_shap_summarize(const xd_dataset_t *ds, size_t k, uint64_t seed, xd_shap_bg_t *out, xd_error_t *err) {
  memset(out, 0, sizeof *out);
  if (!ds || ds->n == 0) return xd_error_set(err, XD_EINVAL, "background", "the model has no background data");
  if (ds->n > k) return xd_shap_kmeans(ds->X, ds->n, ds->d, k, seed, out, err);
  out->X = xd_malloc(xd_mul_size(ds->n, ds->d) * sizeof *out->X);
  out->w = xd_malloc(ds->n * sizeof *out->w);
  if (!out->X || !out->w) {
    xd_shap_bg_deinit(out);
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory for the background");
  }
  memcpy(out->X, ds->X, ds->n * ds->d * sizeof *out->X);
  for (size_t i = 0; i < ds->n; i++) out->w[i] = 1.0 / (double)ds->n;
  out->n = ds->n;
  out->d = ds->d;
  return XD_OK;
}
