/* pdp.h — partial dependence and ICE curves (scikit-learn partial_dependence, "brute").
 *
 * For one feature or a pair, a grid of raw values per feature (docs/algorithms.md §3.2):
 * every category for a categorical feature; the sorted unique values of the column when
 * there are fewer than grid_resolution of them; otherwise grid_resolution evenly spaced
 * points (numpy.linspace) between scipy's mquantiles of the column at the two
 * percentiles, with alphap = betap = 0.4. A pair uses the cartesian grid, the first
 * feature varying slowest. For every grid point every data row is evaluated with the
 * feature(s) set to the point: ICE is that row's output, PD the mean over rows.
 *
 * Outputs: regression its value; a binary classifier the positive class (index 1) only,
 * as scikit-learn; a multiclass classifier every class's probability.
 *
 * Grid points are split into parts that workers may run concurrently, in any order;
 * each part evaluates all its points x rows in batched xd_model_predict calls and writes
 * only its own slots, so the answer does not depend on the worker count. Pure
 * computation: no threads, no JSON.
 */
#ifndef XD_PDP_H
#define XD_PDP_H

#include <stddef.h>
#include <stdint.h>

#include "core/model.h"
#include "core/status.h"

/* scipy.stats.mstats.mquantiles of sorted[0..n-1] (n >= 1) at probability prob, with
 * plotting positions alphap, betap: m = alphap + prob·(1 - alphap - betap),
 * aleph = n·prob + m, k = floor(clip(aleph, 1, n-1)), gamma = clip(aleph - k, 0, 1),
 * result (1-gamma)·x[k-1] + gamma·x[k]. */
double xd_pdp_mquantile(const double *sorted, size_t n, double prob, double alphap, double betap);

/* Grid of raw values of feature j over rows X (n, d), as described above. *values is
 * xd_malloc'd (caller frees), *n_values >= 1. Fails with XD_EINVAL, field "percentiles",
 * when the two quantiles are numpy.allclose (|lo-hi| <= 1e-8 + 1e-5|hi|), as scikit-learn
 * refuses to build that grid; XD_ENOMEM otherwise. resolution >= 2, 0 <= p_lo < p_hi <= 1. */
int xd_pdp_grid(const xd_model_t *m, const double *X, size_t n, size_t j, size_t resolution, double p_lo,
                double p_hi, double **values, size_t *n_values, xd_error_t *err);

typedef struct xd_pdp {
  /* inputs (borrowed) */
  const xd_model_t *model;
  const double *X; /* (n, d) raw rows */
  size_t n, d;
  size_t n_feat;   /* 1 or 2 */
  size_t feat[2];
  int want_individual;
  /* derived (owned) */
  double *grid[2];
  size_t n_grid[2];
  size_t n_points;     /* n_grid[0] (· n_grid[1]) */
  size_t n_out;        /* reported outputs */
  size_t out_first;    /* model output of reported output 0 (1 for binary, else 0) */
  size_t pts_per_part; /* grid points per part */
  double *average;     /* (n_out, n_points) */
  double *individual;  /* (n_out, n, n_points) when want_individual, else NULL */
} xd_pdp_t;

/* Builds the grids for feats[0..n_feat-1] (distinct raw feature indices, n_feat 1 or 2)
 * and allocates the results. When max_work_rows > 0 and n · n_points exceeds it, fails
 * with XD_ETOOBIG (field "grid_resolution") before allocating the results. Returns XD_OK,
 * XD_EINVAL (see xd_pdp_grid), XD_ETOOBIG or XD_ENOMEM (p is then deinitialized). */
int xd_pdp_init(xd_pdp_t *p, const xd_model_t *m, const double *X, size_t n, const size_t *feats, size_t n_feat,
                size_t resolution, double p_lo, double p_hi, int want_individual, uint64_t max_work_rows,
                xd_error_t *err);
void xd_pdp_deinit(xd_pdp_t *p);

/* Rows one part evaluates, at most (whole grid points). */
#define XD_PDP_PART_ROWS 4096

/* Number of parts (>= 1). */
size_t xd_pdp_parts(const xd_pdp_t *p);

/* Evaluates the grid points of part `part`: fills their columns of average (and
 * individual). Allocates its scratch once. Returns XD_OK, XD_ENOMEM or a cancel status. */
int xd_pdp_run(xd_pdp_t *p, size_t part, const xd_cancel_t *cancel, xd_error_t *err);

/* Partial dependence sums its rows in blocks of XD_PDP_SUM_BLOCK consecutive rows (each
 * block in row order from 0), then the block sums in block order, and divides by n: a
 * split of the rows on block boundaries (a job's parts, shards on several machines) gives
 * the block sums of its rows, and adding them in block order gives the one request's
 * average bit for bit (docs/jobs.md). */
#define XD_PDP_SUM_BLOCK 1024

/* Rows [r0, r1) of the data (r0 a multiple of XD_PDP_SUM_BLOCK, r1 <= n) at every grid
 * point: sums (n_out, n_points, nb) the block sums, nb = ceil((r1 − r0) / XD_PDP_SUM_BLOCK);
 * ice (n_out, r1 − r0, n_points) the rows' outputs, or NULL. Does not touch p's results;
 * works without them (xd_pdp_init with want_individual 0). Returns XD_OK, XD_ENOMEM or a
 * cancel status. */
int xd_pdp_block_sums(const xd_pdp_t *p, size_t r0, size_t r1, double *sums, double *ice, const xd_cancel_t *cancel,
                      xd_error_t *err);

/* Model rows the PDP evaluates: n · n_points. */
uint64_t xd_pdp_work_rows(const xd_pdp_t *p);

#endif
