/* pdp.c — partial dependence and ICE by brute force (scikit-learn partial_dependence,
 * method="brute"; grid from scipy's mquantiles). See pdp.h and docs/algorithms.md §3.2. */
#include "core/pdp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* ==== grid ================================================================================ */

double xd_pdp_mquantile(const double *sorted, size_t n, double prob, double alphap, double betap) {
  if (n == 1) return sorted[0];
  double m = alphap + prob * (1.0 - alphap - betap);
  double aleph = (double)n * prob + m;
  double c = aleph < 1 ? 1 : (aleph > (double)(n - 1) ? (double)(n - 1) : aleph);
  size_t k = (size_t)floor(c);
  double gamma = aleph - (double)k;
  if (gamma < 0) gamma = 0;
  if (gamma > 1) gamma = 1;
  return (1.0 - gamma) * sorted[k - 1] + gamma * sorted[k];
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int xd_pdp_grid(const xd_model_t *m, const double *X, size_t n, size_t j, size_t resolution, double p_lo,
                double p_hi, double **values, size_t *n_values, xd_error_t *err) {
  const size_t d = xd_model_n_features(m);
  const xd_feature_t *f = &xd_model_features(m)[j];
  *values = NULL;
  *n_values = 0;
  if (f->kind == XD_FEAT_CATEGORICAL) {
    /* Every category, present in the data or not: a dashboard wants the whole axis, and
     * codes are all the model knows (scikit-learn would use the data's unique values). */
    double *v = xd_calloc(f->n_categories, sizeof *v);
    if (!v) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory building the grid");
    for (size_t c = 0; c < f->n_categories; c++) v[c] = (double)c;
    *values = v;
    *n_values = f->n_categories;
    return XD_OK;
  }
  double *col = xd_calloc(n, sizeof *col);
  if (!col) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory building the grid");
  /* missing values (NaN, tree models) are no grid points: the grid spans the rest */
  size_t nn = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(X[i * d + j])) col[nn++] = X[i * d + j];
  n = nn;
  qsort(col, n, sizeof *col, cmp_double);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (u == 0 || col[i] != col[u - 1]) col[u++] = col[i];
  if (u < resolution) {
    /* Fewer distinct values than points: the values themselves (scikit-learn's rule). */
    *values = col;
    *n_values = u;
    return XD_OK;
  }
  /* mquantiles needs the sorted column with its repeats: sort again (u >= resolution
   * >= 2 here, so the column is not constant). */
  nn = 0;
  for (size_t i = 0; nn < n; i++)
    if (!isnan(X[i * d + j])) col[nn++] = X[i * d + j];
  qsort(col, n, sizeof *col, cmp_double);
  double lo = xd_pdp_mquantile(col, n, p_lo, 0.4, 0.4);
  double hi = xd_pdp_mquantile(col, n, p_hi, 0.4, 0.4);
  xd_free(col);
  if (fabs(lo - hi) <= 1e-8 + 1e-5 * fabs(hi))
    return xd_error_set(err, XD_EINVAL, "percentiles",
                        "percentiles are too close to each other for feature '%s' (%.17g and %.17g): "
                        "unable to build the grid; choose percentiles further apart",
                        f->name, lo, hi);
  double *v = xd_calloc(resolution, sizeof *v);
  if (!v) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory building the grid");
  /* numpy.linspace: start + i·step, the last point set to stop exactly. */
  double step = (hi - lo) / (double)(resolution - 1);
  for (size_t i = 0; i < resolution; i++) v[i] = (double)i * step + lo;
  v[resolution - 1] = hi;
  *values = v;
  *n_values = resolution;
  return XD_OK;
}

/* ==== evaluation ========================================================================== */

void xd_pdp_deinit(xd_pdp_t *p) {
  if (!p) return;
  xd_free(p->grid[0]);
  xd_free(p->grid[1]);
  xd_free(p->average);
  xd_free(p->individual);
  memset(p, 0, sizeof *p);
}

int xd_pdp_init(xd_pdp_t *p, const xd_model_t *m, const double *X, size_t n, const size_t *feats, size_t n_feat,
                size_t resolution, double p_lo, double p_hi, int want_individual, uint64_t max_work_rows,
                xd_error_t *err) {
  memset(p, 0, sizeof *p);
  p->model = m;
  p->X = X;
  p->n = n;
  p->d = xd_model_n_features(m);
  p->n_feat = n_feat;
  p->want_individual = want_individual;
  int rc;
  p->n_points = 1;
  for (size_t f = 0; f < n_feat; f++) {
    p->feat[f] = feats[f];
    rc = xd_pdp_grid(m, X, n, feats[f], resolution, p_lo, p_hi, &p->grid[f], &p->n_grid[f], err);
    if (rc != XD_OK) goto fail;
    p->n_points *= p->n_grid[f];
  }
  size_t k = xd_model_n_outputs(m);
  if (xd_model_task(m) == XD_TASK_CLASSIFICATION && k == 2) {
    p->n_out = 1;
    p->out_first = 1;
  } else {
    p->n_out = k;
    p->out_first = 0;
  }
  if (max_work_rows && (uint64_t)n * p->n_points > max_work_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, "grid_resolution",
                      "partial dependence needs %llu model rows (%zu rows x %zu grid points), over the limit of %llu",
                      (unsigned long long)((uint64_t)n * p->n_points), n, p->n_points,
                      (unsigned long long)max_work_rows);
    goto fail;
  }
  p->pts_per_part = XD_PDP_PART_ROWS / n;
  if (p->pts_per_part < 1) p->pts_per_part = 1;
  p->average = xd_calloc(xd_mul_size(p->n_out, p->n_points), sizeof *p->average);
  if (!p->average) goto nomem;
  if (want_individual) {
    p->individual = xd_calloc(xd_mul_size(xd_mul_size(p->n_out, n), p->n_points), sizeof *p->individual);
    if (!p->individual) goto nomem;
  }
  return XD_OK;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory for partial dependence results");
fail:
  xd_pdp_deinit(p);
  return rc;
}

size_t xd_pdp_parts(const xd_pdp_t *p) { return (p->n_points + p->pts_per_part - 1) / p->pts_per_part; }

uint64_t xd_pdp_work_rows(const xd_pdp_t *p) { return (uint64_t)p->n * p->n_points; }

/* Block sum of output c over rows [i0, i1) of P (rows, k): one pass in row order from 0,
 * the same additions wherever the block is evaluated (one request, a job's part, a shard). */
static double block_sum(const double *P, size_t k, size_t c, size_t i0, size_t i1) {
  double s = 0;
  for (size_t i = i0; i < i1; i++) s += P[i * k + c];
  return s;
}

/* P (np·(r1 − r0), k): the model's outputs for rows [r0, r1) of X with the feature(s) set
 * to grid points [g0, g0 + np), point after point. B is scratch of the same rows × d. */
static int eval_points(const xd_pdp_t *p, size_t g0, size_t np, size_t r0, size_t r1, double *B, double *P,
                       const xd_cancel_t *cancel, xd_error_t *err) {
  const size_t d = p->d, m = r1 - r0;
  for (size_t q = 0; q < np; q++) {
    size_t g = g0 + q;
    double v0 = p->n_feat == 2 ? p->grid[0][g / p->n_grid[1]] : p->grid[0][g];
    double v1 = p->n_feat == 2 ? p->grid[1][g % p->n_grid[1]] : 0;
    double *blk = B + q * m * d;
    memcpy(blk, p->X + r0 * d, m * d * sizeof(double));
    for (size_t i = 0; i < m; i++) {
      blk[i * d + p->feat[0]] = v0;
      if (p->n_feat == 2) blk[i * d + p->feat[1]] = v1;
    }
  }
  return xd_model_predict(p->model, B, np * m, P, cancel, err);
}

int xd_pdp_run(xd_pdp_t *p, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  const size_t n = p->n, d = p->d, k = xd_model_n_outputs(p->model), G = p->n_points;
  size_t g0 = part * p->pts_per_part;
  if (g0 >= G) return xd_error_set(err, XD_EINTERNAL, NULL, "pdp part %zu out of range", part);
  size_t np = G - g0 < p->pts_per_part ? G - g0 : p->pts_per_part;
  double *B = xd_malloc(xd_mul_size(xd_mul_size(np, n), d * sizeof(double)));
  double *P = xd_malloc(xd_mul_size(xd_mul_size(np, n), k * sizeof(double)));
  int rc = XD_ENOMEM;
  if (!B || !P) {
    xd_error_set(err, rc, NULL, "out of memory evaluating the grid");
    goto done;
  }
  rc = eval_points(p, g0, np, 0, n, B, P, cancel, err);
  if (rc != XD_OK) goto done;
  for (size_t q = 0; q < np; q++) {
    size_t g = g0 + q;
    const double *Pq = P + q * n * k;
    for (size_t o = 0; o < p->n_out; o++) {
      size_t c = p->out_first + o;
      /* block sums added in block order: what a job's parts add up to (xd_pdp_block_sums) */
      double s = 0;
      for (size_t i0 = 0; i0 < n; i0 += XD_PDP_SUM_BLOCK)
        s += block_sum(Pq, k, c, i0, n - i0 < XD_PDP_SUM_BLOCK ? n : i0 + XD_PDP_SUM_BLOCK);
      if (p->individual)
        for (size_t i = 0; i < n; i++) p->individual[(o * n + i) * G + g] = Pq[i * k + c];
      p->average[o * G + g] = s / (double)n;
    }
  }
  rc = XD_OK;
done:
  xd_free(B);
  xd_free(P);
  return rc;
}

int xd_pdp_block_sums(const xd_pdp_t *p, size_t r0, size_t r1, double *sums, double *ice, const xd_cancel_t *cancel,
                      xd_error_t *err) {
  const size_t d = p->d, k = xd_model_n_outputs(p->model), G = p->n_points, m = r1 - r0;
  if (r0 % XD_PDP_SUM_BLOCK || r1 > p->n || r0 >= r1)
    return xd_error_set(err, XD_EINTERNAL, NULL, "pdp rows [%zu, %zu) are not on block boundaries", r0, r1);
  const size_t nb = (m + XD_PDP_SUM_BLOCK - 1) / XD_PDP_SUM_BLOCK;
  size_t per = XD_PDP_PART_ROWS / m; /* grid points per model call */
  if (per < 1) per = 1;
  if (per > G) per = G;
  double *B = xd_malloc(xd_mul_size(xd_mul_size(per, m), d * sizeof(double)));
  double *P = xd_malloc(xd_mul_size(xd_mul_size(per, m), k * sizeof(double)));
  int rc = XD_ENOMEM;
  if (!B || !P) {
    xd_error_set(err, rc, NULL, "out of memory evaluating the grid");
    goto done;
  }
  for (size_t g0 = 0; g0 < G; g0 += per) {
    size_t np = G - g0 < per ? G - g0 : per;
    if ((rc = eval_points(p, g0, np, r0, r1, B, P, cancel, err)) != XD_OK) goto done;
    for (size_t q = 0; q < np; q++) {
      const double *Pq = P + q * m * k;
      for (size_t o = 0; o < p->n_out; o++) {
        size_t c = p->out_first + o;
        for (size_t b = 0; b < nb; b++) {
          size_t i0 = b * XD_PDP_SUM_BLOCK, i1 = i0 + XD_PDP_SUM_BLOCK < m ? i0 + XD_PDP_SUM_BLOCK : m;
          sums[(o * G + g0 + q) * nb + b] = block_sum(Pq, k, c, i0, i1);
        }
        if (ice)
          for (size_t i = 0; i < m; i++) ice[(o * m + i) * G + g0 + q] = Pq[i * k + c];
      }
    }
  }
  rc = XD_OK;
done:
  xd_free(B);
  xd_free(P);
  return rc;
}
