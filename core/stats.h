/* stats.h — background statistics computed once, at model load.
 *
 * Per feature: min, max, mean, population std; for numeric features the bins of lime's
 * quartile and decile discretizers (edges as numpy's linear-interpolation percentiles,
 * deduplicated as np.unique does; per-bin count, frequency, mean, std, min, max) and,
 * when the background has classification targets, the entropy discretizer's bins; for
 * categorical features the category frequencies. Read-only after load.
 */
#ifndef XD_STATS_H
#define XD_STATS_H

#include <stddef.h>

#include "core/dataset.h"

#define XD_BINS_MAX 10 /* deciles: 9 edges, 10 bins; entropy: at most 8 bins */

/* One discretization of one feature. Bin b holds v with edges[b-1] < v <= edges[b]
 * (numpy searchsorted side='left'): bin 0 is v <= edges[0], the last is v > edges[-1]. */
typedef struct xd_bins {
  size_t n_edges;               /* n_bins - 1 */
  double edges[XD_BINS_MAX - 1];
  size_t count[XD_BINS_MAX];
  double freq[XD_BINS_MAX];     /* count / n */
  double mean[XD_BINS_MAX];     /* 0 for an empty bin */
  double std[XD_BINS_MAX];      /* population std; 0 for an empty bin (lime adds 1e-11) */
  double min[XD_BINS_MAX];      /* [col.min()] + edges */
  double max[XD_BINS_MAX];      /* edges + [col.max()] */
} xd_bins_t;

typedef enum xd_discretizer { XD_DISC_QUARTILE = 0, XD_DISC_DECILE = 1, XD_DISC_ENTROPY = 2 } xd_discretizer_t;

typedef struct xd_feature_stats {
  double min, max, mean, std; /* std: population (ddof 0) */
  xd_bins_t bins[3];          /* indexed by xd_discretizer_t; numeric features only */
  int has_entropy;            /* bins[XD_DISC_ENTROPY] is valid */
  size_t n_categories;        /* categorical only */
  double *cat_freq;           /* categorical only: frequency of each code */
} xd_stats_feature_t;

typedef struct xd_stats {
  size_t d, n;
  xd_stats_feature_t *f; /* d */
} xd_stats_t;

/* Computes the statistics of ds (n >= 1) for the given features. If ds has targets and
 * n_classes > 0, also the entropy bins. Returns XD_OK or XD_ENOMEM. */
int xd_stats_compute(const xd_dataset_t *ds, const xd_feature_t *features, size_t n_classes, xd_stats_t *out,
                     xd_error_t *err);
void xd_stats_deinit(xd_stats_t *s);

/* numpy.percentile(sorted[0..n-1], q) with linear interpolation; q in [0,100]. */
double xd_percentile_sorted(const double *sorted, size_t n, double q);

/* Bin index of v (searchsorted side='left' on the edges). */
size_t xd_bins_index(const xd_bins_t *b, double v);

/* Fills b from a column and its edges (sorted ascending, already unique, at most
 * XD_BINS_MAX-1): counts, frequencies, per-bin mean/std/min/max. col has n values. */
void xd_bins_fill(xd_bins_t *b, const double *col, size_t n, const double *edges, size_t n_edges);

#endif
