/* entropy.c — the entropy discretizer's tree (sklearn DecisionTreeClassifier semantics
 * on a single feature, max_depth 3, criterion 'entropy').
 *
 * With one feature every node is a contiguous range of the column sorted by value, so
 * the tree is a recursion over ranges. sklearn's choices reproduced: the tree sees the
 * values as float32; a split position needs the two neighbouring values to differ by
 * more than 1e-7 (FEATURE_THRESHOLD); the best split maximizes -(nL·H(L) + nR·H(R))
 * with a strict >, so the first position wins ties; the threshold is the midpoint
 * v[p-1]/2 + v[p]/2 in double (v[p-1] if that rounds up to v[p]); a node is a leaf at
 * depth 3, with fewer than 2 rows, when pure, or when no position splits it.
 */
#include "core/entropy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"

typedef struct pair {
  float v;
  size_t c;
} pair_t;

static int cmp_pair(const void *a, const void *b) {
  float x = ((const pair_t *)a)->v, y = ((const pair_t *)b)->v;
  return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Σ c·log c over the class counts, and n·log n: n·H = n log n - Σ c log c. */
static double nH(const size_t *cnt, size_t k, size_t n) {
  if (n == 0) return 0;
  double s = (double)n * log((double)n);
  for (size_t c = 0; c < k; c++)
    if (cnt[c]) s -= (double)cnt[c] * log((double)cnt[c]);
  return s;
}

/* Splits rows [s,e) of P at `depth`, appending thresholds to edges. left/tot are
 * scratch class counts (k each). */
static void grow(const pair_t *P, size_t s, size_t e, int depth, size_t k, size_t *tot, size_t *left,
                 double *edges, size_t *ne) {
  if (depth >= 3 || e - s < 2) return;
  memset(tot, 0, k * sizeof *tot);
  for (size_t i = s; i < e; i++) tot[P[i].c]++;
  if (nH(tot, k, e - s) / (double)(e - s) <= 2.220446049250313e-16) return; /* pure */
  memset(left, 0, k * sizeof *left);
  double best = -INFINITY;
  size_t bp = 0;
  for (size_t p = s + 1; p < e; p++) {
    left[P[p - 1].c]++;
    if (!((double)P[p].v > (double)P[p - 1].v + 1e-7)) continue;
    size_t nl = p - s, nr = e - p;
    for (size_t c = 0; c < k; c++) tot[c] -= left[c]; /* tot becomes the right counts */
    double proxy = -(nH(left, k, nl) + nH(tot, k, nr));
    for (size_t c = 0; c < k; c++) tot[c] += left[c];
    if (proxy > best) best = proxy, bp = p;
  }
  if (bp == 0) return;
  double t = (double)P[bp - 1].v / 2.0 + (double)P[bp].v / 2.0;
  if (t == (double)P[bp].v || isinf(t)) t = (double)P[bp - 1].v;
  edges[(*ne)++] = t;
  grow(P, s, bp, depth + 1, k, tot, left, edges, ne);
  grow(P, bp, e, depth + 1, k, tot, left, edges, ne);
}

size_t xd_entropy_edges(const double *col, const double *y, size_t n, size_t n_classes, double *edges) {
  if (n == 0 || n_classes == 0) return 0;
  pair_t *P = xd_malloc(n * sizeof *P);
  size_t *cnt = xd_malloc(2 * n_classes * sizeof *cnt);
  double *tmp = xd_malloc(n * sizeof *tmp);
  size_t ne = 0;
  if (!P || !cnt || !tmp) goto done;
  for (size_t i = 0; i < n; i++) {
    if (!(y[i] >= 0 && y[i] < (double)n_classes)) goto done;
    P[i].v = (float)col[i];
    P[i].c = (size_t)y[i];
  }
  qsort(P, n, sizeof *P, cmp_pair);
  double e7[7];
  grow(P, 0, n, 0, n_classes, cnt, cnt + n_classes, e7, &ne);
  if (ne == 0) { /* no split: np.median of the column */
    memcpy(tmp, col, n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, cmp_double);
    e7[ne++] = n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2.0;
  }
  qsort(e7, ne, sizeof *e7, cmp_double);
  size_t u = 0;
  for (size_t i = 0; i < ne; i++)
    if (u == 0 || e7[i] != edges[u - 1]) edges[u++] = e7[i];
  ne = u;
done:
  xd_free(P);
  xd_free(cnt);
  xd_free(tmp);
  return ne;
}

int xd_entropy_bins(const double *col, const double *y, size_t n, size_t n_classes, xd_bins_t *out) {
  if (n == 0 || n_classes == 0) return XD_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!(y[i] >= 0 && y[i] < (double)n_classes)) return XD_EINVAL;
  double edges[XD_BINS_MAX - 1];
  size_t ne = xd_entropy_edges(col, y, n, n_classes, edges);
  if (ne == 0) return XD_ENOMEM; /* inputs were checked: only allocation can fail */
  xd_bins_fill(out, col, n, edges, ne);
  return XD_OK;
}
