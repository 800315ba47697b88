/* stats.c — background statistics: moments, lime's quartile/decile bins, category
 * frequencies. Percentiles follow numpy's default linear interpolation. */
#include "core/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/entropy.h"

double xd_percentile_sorted(const double *s, size_t n, double q) {
  if (n == 0) return NAN;
  double h = (double)(n - 1) * q / 100.0;
  size_t lo = (size_t)floor(h);
  if (lo >= n - 1) return s[n - 1];
  double frac = h - (double)lo;
  /* numpy's _lerp: a + (b-a)*t, switching form for t >= 0.5 to stay monotone */
  double a = s[lo], b = s[lo + 1];
  double diff = b - a;
  return frac >= 0.5 ? b - diff * (1.0 - frac) : a + diff * frac;
}

size_t xd_bins_index(const xd_bins_t *b, double v) {
  size_t i = 0;
  while (i < b->n_edges && v > b->edges[i]) i++;
  return i;
}

void xd_bins_fill(xd_bins_t *b, const double *col, size_t n, const double *edges, size_t n_edges) {
  memset(b, 0, sizeof *b);
  b->n_edges = n_edges;
  memcpy(b->edges, edges, n_edges * sizeof *edges);
  size_t nb = n_edges + 1;
  double lo = INFINITY, hi = -INFINITY;
  double sum[XD_BINS_MAX] = {0};
  for (size_t i = 0; i < n; i++) {
    size_t k = xd_bins_index(b, col[i]);
    b->count[k]++;
    sum[k] += col[i];
    if (col[i] < lo) lo = col[i];
    if (col[i] > hi) hi = col[i];
  }
  for (size_t k = 0; k < nb; k++) {
    b->freq[k] = n ? (double)b->count[k] / (double)n : 0;
    b->mean[k] = b->count[k] ? sum[k] / (double)b->count[k] : 0;
  }
  /* Two-pass variance: the means are known, so this keeps the digits a one-pass sum
   * of squares would lose on features with a large offset (areas of ~1000). */
  double ss[XD_BINS_MAX] = {0};
  for (size_t i = 0; i < n; i++) {
    size_t k = xd_bins_index(b, col[i]);
    double d = col[i] - b->mean[k];
    ss[k] += d * d;
  }
  for (size_t k = 0; k < nb; k++) b->std[k] = b->count[k] ? sqrt(ss[k] / (double)b->count[k]) : 0;
  b->min[0] = lo;
  for (size_t k = 0; k < n_edges; k++) {
    b->min[k + 1] = edges[k];
    b->max[k] = edges[k];
  }
  b->max[n_edges] = hi;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Percentile edges of sorted col, then np.unique (sorted, exact duplicates removed). */
static size_t percentile_edges(const double *sorted, size_t n, const double *qs, size_t nq, double *edges) {
  size_t m = 0;
  for (size_t i = 0; i < nq; i++) {
    double e = xd_percentile_sorted(sorted, n, qs[i]);
    if (m == 0 || e != edges[m - 1]) edges[m++] = e;
  }
  return m;
}

void xd_stats_deinit(xd_stats_t *s) {
  if (!s) return;
  if (s->f)
    for (size_t j = 0; j < s->d; j++) xd_free(s->f[j].cat_freq);
  xd_free(s->f);
  memset(s, 0, sizeof *s);
}

int xd_stats_compute(const xd_dataset_t *ds, const xd_feature_t *features, size_t n_classes, xd_stats_t *out,
                     xd_error_t *err) {
  memset(out, 0, sizeof *out);
  size_t n = ds->n, d = ds->d;
  out->n = n;
  out->d = d;
  out->f = xd_calloc(d ? d : 1, sizeof *out->f);
  double *col = xd_malloc((n ? n : 1) * sizeof *col);
  double *sorted = xd_malloc((n ? n : 1) * sizeof *sorted);
  double *ycol = ds->y ? xd_malloc((n ? n : 1) * sizeof *ycol) : NULL; /* targets of col's rows */
  if (!out->f || !col || !sorted || (ds->y && !ycol)) goto nomem;
  const size_t n_all = n;
  static const double quartiles[] = {25, 50, 75};
  static const double deciles[] = {10, 20, 30, 40, 50, 60, 70, 80, 90};
  for (size_t j = 0; j < d; j++) {
    xd_stats_feature_t *f = &out->f[j];
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    /* Missing values (NaN: tree models' backgrounds may hold them) are left out of every
     * statistic; m counts the rest. Without any, m == n and nothing changes. */
    size_t m = 0;
    n = n_all;
    for (size_t i = 0; i < n_all; i++) {
      double v = ds->X[i * d + j];
      if (isnan(v)) continue;
      if (ycol) ycol[m] = ds->y[i];
      col[m++] = v;
      sum += v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    n = m;
    f->mean = n ? sum / (double)n : 0;
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (col[i] - f->mean) * (col[i] - f->mean);
    f->std = n ? sqrt(ss / (double)n) : 0;
    f->min = lo;
    f->max = hi;
    if (features[j].kind == XD_FEAT_CATEGORICAL) {
      f->n_categories = features[j].n_categories;
      f->cat_freq = xd_calloc(f->n_categories ? f->n_categories : 1, sizeof *f->cat_freq);
      if (!f->cat_freq) goto nomem;
      for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)col[i];
        if (k < f->n_categories) f->cat_freq[k] += 1.0 / (double)n;
      }
      continue;
    }
    if (n == 0) { /* every value missing: one empty bin, and a range of 0 */
      f->min = f->max = 0;
      continue;
    }
    memcpy(sorted, col, n * sizeof *col);
    qsort(sorted, n, sizeof *sorted, cmp_double);
    double edges[XD_BINS_MAX - 1];
    size_t ne = percentile_edges(sorted, n, quartiles, 3, edges);
    xd_bins_fill(&f->bins[XD_DISC_QUARTILE], col, n, edges, ne);
    ne = percentile_edges(sorted, n, deciles, 9, edges);
    xd_bins_fill(&f->bins[XD_DISC_DECILE], col, n, edges, ne);
    if (ds->y && n_classes > 0) { /* lime's entropy discretizer (core/entropy.c) */
      int erc = xd_entropy_bins(col, ycol, n, n_classes, &f->bins[XD_DISC_ENTROPY]);
      if (erc == XD_ENOMEM) goto nomem;
      f->has_entropy = erc == XD_OK;
    }
  }
  n = n_all;
  (void)n_classes;
  xd_free(col);
  xd_free(sorted);
  xd_free(ycol);
  return XD_OK;
nomem:
  xd_free(col);
  xd_free(sorted);
  xd_free(ycol);
  xd_stats_deinit(out);
  return xd_error_set(err, XD_ENOMEM, "background", "out of memory computing background statistics");
}
