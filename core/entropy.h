/* entropy.h — lime's EntropyDiscretizer: bin edges from a depth-3 entropy decision tree.
 *
 * lime (discretize.py, EntropyDiscretizer) fits sklearn's
 * DecisionTreeClassifier(criterion='entropy', max_depth=3) on one feature column against
 * the training labels and uses the thresholds of its internal nodes, sorted and
 * deduplicated, as bin edges (the column's median when the tree does not split): at
 * most 7 edges, 8 bins. Computed once per numeric feature at model load. Any thread.
 */
#ifndef XD_ENTROPY_H
#define XD_ENTROPY_H

#include <stddef.h>

#include "core/stats.h"

/* Fills out (edges and per-bin statistics, as xd_bins_fill) from col (n values) and the
 * class labels y (n class indices stored as doubles, each < n_classes). Returns XD_OK,
 * XD_EINVAL (n == 0 or a label out of range: no entropy bins) or XD_ENOMEM. */
int xd_entropy_bins(const double *col, const double *y, size_t n, size_t n_classes, xd_bins_t *out);

/* The sorted, unique thresholds alone (at most XD_BINS_MAX-1 of them) into edges;
 * returns their count (0 on error). For tests. */
size_t xd_entropy_edges(const double *col, const double *y, size_t n, size_t n_classes, double *edges);

#endif
