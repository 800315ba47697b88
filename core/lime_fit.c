/* lime_fit.c — LIME's surrogate: feature selection and weighted ridge on the Gram matrix.
 *
 * Reference: marcotcr/lime @ fd7eb2e6, lime/lime_base.py (feature_selection,
 * explain_instance_with_data) and scikit-learn's Ridge / lars_path. See lime_fit.h for
 * why everything works from the centred weighted Gram C = Acᵀ·Ac and B = Acᵀ·Yc.
 */
#include "core/lime_fit.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "core/mat.h"

size_t xd_lime_ws_doubles(size_t n, size_t d, size_t L) {
  return d * d + d * L + L + d + L + n + 2 * (d + 1) * (d + 1) + 6 * d + n * L + (n + d * d + d + 2 + 1) / 2;
}

size_t xd_lime_ws_sizes(size_t d) { return 3 * d; }

void xd_lime_ws_carve(xd_lime_ws_t *ws, size_t n, size_t d, size_t L, double *dbl, size_t *sz) {
  ws->n = n, ws->d = d, ws->L = L;
  ws->binary = 0;
  ws->C = dbl, dbl += d * d;
  ws->B = dbl, dbl += d * L;
  ws->syy = dbl, dbl += L;
  ws->xbar = dbl, dbl += d;
  ws->ybar = dbl, dbl += L;
  ws->sw = dbl, dbl += n;
  ws->M = dbl, dbl += (d + 1) * (d + 1);
  ws->S = dbl, dbl += (d + 1) * (d + 1);
  ws->v = dbl, dbl += 6 * d;
  ws->tmp = dbl, dbl += n * L;
  ws->u32 = (uint32_t *)dbl;
  ws->iv = sz;
  ws->binary = 0;
}

/* ---- centring and the Gram ---------------------------------------------------------- */

/* Z is (n,d), Y is (n, y_stride), w is (n); Yc is (n,L). */
void xd_lime_ws_prepare(xd_lime_ws_t *ws, double *Z, const double *Y, size_t y_stride, const size_t *cols,
                        const double *w, double *Yc) {
  size_t n = ws->n, d = ws->d, L = ws->L;
  double sumw = 0;
  for (size_t i = 0; i < n; i++) {
    sumw += w[i];
    ws->sw[i] = sqrt(w[i]);
  }
  /* xbar (1,d) = wᵀ (1,n) · Z (n,d) / Σw */
  xd_dgemm_tn(1, d, n, w, Z, 0.0, ws->xbar);
  for (size_t j = 0; j < d; j++) ws->xbar[j] /= sumw;
  for (size_t l = 0; l < L; l++) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += w[i] * Y[i * y_stride + cols[l]];
    ws->ybar[l] = s / sumw;
  }
  /* Ac = sqrt(w)·(Z - xbar), Yc = sqrt(w)·(y - ybar): one pass over the neighbourhood. */
  for (size_t i = 0; i < n; i++) {
    double s = ws->sw[i];
    double *zi = Z + i * d;
    for (size_t j = 0; j < d; j++) zi[j] = s * (zi[j] - ws->xbar[j]);
    for (size_t l = 0; l < L; l++) Yc[i * L + l] = s * (Y[i * y_stride + cols[l]] - ws->ybar[l]);
  }
  /* C (d,d) = Acᵀ·Ac and B (d,L) = Acᵀ·Yc: the only O(n·d²) work of the fit. */
  xd_dgemm_tn(d, d, n, Z, Z, 0.0, ws->C);
  xd_dgemm_tn(d, L, n, Z, Yc, 0.0, ws->B);
  for (size_t l = 0; l < L; l++) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += Yc[i * L + l] * Yc[i * L + l];
    ws->syy[l] = s;
  }
}

/* ---- the exact Gram of a binary neighbourhood --------------------------------------- */

/* Transposes a 64×64 bit matrix in place (Hacker's Delight 7-3): bit j of a[r] ends up
 * as bit 63-r of a[63-j]. */
static void transpose64(uint64_t a[64]) {
  uint64_t m = 0x00000000FFFFFFFFULL;
  for (int j = 32; j; j >>= 1, m ^= m << j)
    for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
      uint64_t t = (a[k] ^ (a[k | j] >> j)) & m;
      a[k] ^= t;
      a[k | j] ^= t << j;
    }
}

/* cnt[j·d+k] (j <= k) += rows of the transposed block a that have both j and k. Cloned
 * for CPUs with POPCNT (without it, popcount is a dozen instructions). */
/* The popcnt clone's ifunc resolver runs before ThreadSanitizer's runtime is ready and
 * crashes the process, so TSan builds take the portable version only. */
#if defined(__SANITIZE_THREAD__)
#define XD_NO_CLONES 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define XD_NO_CLONES 1
#endif
#endif
#ifdef XD_NO_CLONES
#define XD_POPCNT_CLONES
#else
#define XD_POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#endif
XD_POPCNT_CLONES static void pair_counts(const uint64_t *a, size_t d,
                                                                           uint32_t *cnt) {
  for (size_t j = 0; j < d; j++) {
    uint64_t tj = a[63 - j];
    if (!tj) continue;
    for (size_t k = j; k < d; k++) cnt[j * d + k] += (uint32_t)__builtin_popcountll(tj & a[63 - k]);
  }
}

/* Z is (n,d) 0/1, mask (n), Y (n, y_stride), w (n); Yc (n,L). */
void xd_lime_ws_prepare_binary(xd_lime_ws_t *ws, const double *Z, const uint64_t *mask, const double *Y,
                               size_t y_stride, const size_t *cols, const double *w, double *Yc) {
  size_t n = ws->n, d = ws->d, L = ws->L;
  uint32_t *order = ws->u32, *cnt = order + n, *start = cnt + d * d; /* start: d+2 */
  double sumw = 0, *G = ws->C;
  ws->binary = 1;
  for (size_t i = 0; i < n; i++) {
    sumw += w[i];
    ws->sw[i] = sqrt(w[i]);
  }
  /* Rows grouped by the number of features that left x's bin (their weight is a
   * function of it): a counting sort. */
  memset(start, 0, (d + 2) * sizeof *start);
  for (size_t i = 0; i < n; i++) start[d - (size_t)__builtin_popcountll(mask[i]) + 1]++;
  for (size_t m = 0; m <= d; m++) start[m + 1] += start[m];
  for (size_t i = 0; i < n; i++) order[start[d - (size_t)__builtin_popcountll(mask[i])]++] = (uint32_t)i;
  /* start[m] is now the end of group m; G (d,d) = Σ_groups w_m · co-occurrence counts. */
  memset(G, 0, d * d * sizeof *G);
  for (size_t m = 0, g0 = 0; m <= d; g0 = start[m], m++) {
    size_t g1 = start[m];
    if (g1 == g0) continue;
    double wm = w[order[g0]];
    memset(cnt, 0, d * d * sizeof *cnt);
    for (size_t c = g0; c < g1; c += 64) {
      uint64_t a[64];
      size_t k = 0;
      for (; k < 64 && c + k < g1; k++) a[k] = mask[order[c + k]];
      for (; k < 64; k++) a[k] = 0;
      transpose64(a);
      pair_counts(a, d, cnt);
    }
    for (size_t j = 0; j < d; j++)
      for (size_t k = j; k < d; k++) G[j * d + k] += wm * (double)cnt[j * d + k];
  }
  /* z² = z: the weighted means are the diagonal; C = G - Σw·x̄·x̄ᵀ. */
  for (size_t j = 0; j < d; j++) ws->xbar[j] = G[j * d + j] / sumw;
  for (size_t j = 0; j < d; j++)
    for (size_t k = j; k < d; k++) G[k * d + j] = G[j * d + k] -= sumw * ws->xbar[j] * ws->xbar[k];
  for (size_t l = 0; l < L; l++) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += w[i] * Y[i * y_stride + cols[l]];
    ws->ybar[l] = s / sumw;
  }
  for (size_t i = 0; i < n; i++)
    for (size_t l = 0; l < L; l++) {
      Yc[i * L + l] = ws->sw[i] * (Y[i * y_stride + cols[l]] - ws->ybar[l]);
      ws->tmp[i * L + l] = ws->sw[i] * Yc[i * L + l];
    }
  /* B (d,L) = Zᵀ·(w ⊙ (y-ȳ)): Z needs no centring because Σ w (y-ȳ) = 0. */
  xd_dgemm_tn(d, L, n, Z, ws->tmp, 0.0, ws->B);
  for (size_t l = 0; l < L; l++) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += Yc[i * L + l] * Yc[i * L + l];
    ws->syy[l] = s;
  }
}

/* ---- ridge on a subset -------------------------------------------------------------- */

/* Solves (C[S,S] + alpha·I) coef = B[S,l] for the k features in S with LAPACK dposv.
 * coef (k). Returns the dposv info (0 = ok). */
static int ridge_subset(xd_lime_ws_t *ws, size_t l, const size_t *S, size_t k, double alpha, double *coef) {
  size_t d = ws->d, L = ws->L;
  double *A = ws->S;
  for (size_t a = 0; a < k; a++) {
    for (size_t b = 0; b < k; b++) A[a * k + b] = ws->C[S[a] * d + S[b]];
    A[a * k + a] += alpha;
    coef[a] = ws->B[S[a] * L + l];
  }
  if (k == 0) return 0;
  return xd_dposv(k, 1, A, coef);
}

/* sklearn's r2_score with sample weights from the two sums. */
static double r2_from(double rss, double tss) {
  if (tss > 0) return 1.0 - rss / tss;
  return rss > 0 ? 0.0 : 1.0;
}

/* ---- forward selection: greedy OLS by sweeping [C b; bᵀ syy] ------------------------ */

/* lime fits Ridge(alpha=0) on used+candidate for every candidate in every round, keeping
 * the best weighted R² (strict >, so the lowest index wins ties). After sweeping the
 * used features out of M = [C b; bᵀ syy], M[j][j] is candidate j's residual variance and
 * M[j][d] its residual covariance with y, so the RSS of used+j is M[d][d] - M[j][d]²/M[j][j]:
 * O(d²) per round instead of O(d) refits. A candidate collinear with the used set
 * (residual variance ~0) leaves the RSS unchanged, as lstsq would. */
static size_t forward_selection(xd_lime_ws_t *ws, size_t l, size_t k, size_t *used) {
  size_t d = ws->d, L = ws->L, p = d + 1;
  double *M = ws->M;
  char *taken = (char *)(ws->iv + 2 * d); /* d bytes fit in d size_t's */
  memset(taken, 0, d);
  for (size_t i = 0; i < d; i++) {
    for (size_t j = 0; j < d; j++) M[i * p + j] = ws->C[i * d + j];
    M[i * p + d] = M[d * p + i] = ws->B[i * L + l];
  }
  M[d * p + d] = ws->syy[l];
  size_t rounds = k < d ? k : d;
  for (size_t r = 0; r < rounds; r++) {
    double best_score = -1e8;
    size_t best = 0;
    for (size_t j = 0; j < d; j++) {
      if (taken[j]) continue;
      double rss = M[d * p + d];
      double mjj = M[j * p + j];
      if (mjj > 1e-12 * (ws->C[j * d + j] > 0 ? ws->C[j * d + j] : 1.0)) rss -= M[j * p + d] * M[j * p + d] / mjj;
      if (rss < 0) rss = 0;
      double score = r2_from(rss, ws->syy[l]);
      if (score > best_score) best_score = score, best = j;
    }
    used[r] = best;
    taken[best] = 1;
    double piv = M[best * p + best];
    if (!(piv > 1e-12 * (ws->C[best * d + best] > 0 ? ws->C[best * d + best] : 1.0))) continue;
    /* Eliminate `best` from the untaken rows and columns (and y's). */
    for (size_t i = 0; i < p; i++) {
      if (i < d && taken[i]) continue;
      double f = M[i * p + best] / piv;
      if (f == 0) continue;
      for (size_t j = 0; j < p; j++) {
        if (j < d && taken[j]) continue;
        M[i * p + j] -= f * M[best * p + j];
      }
    }
  }
  return rounds;
}

/* ---- highest weights -------------------------------------------------------------- */

/* Ridge(alpha=0.01) on every feature, then the features by decreasing |coef_j·z0_j|
 * (Python's sorted is stable: ties keep the lower index first). */
static int highest_weights(xd_lime_ws_t *ws, size_t l, const double *z0, size_t k, size_t *used, size_t *n_used) {
  size_t d = ws->d;
  double *coef = ws->v, *key = ws->v + d;
  size_t *all = ws->iv + d;
  for (size_t j = 0; j < d; j++) all[j] = j;
  int info = ridge_subset(ws, l, all, d, 0.01, coef);
  if (info) return info;
  for (size_t j = 0; j < d; j++) key[j] = fabs(coef[j] * z0[j]);
  for (size_t a = 1; a < d; a++) { /* insertion sort: stable, d is small */
    size_t t = all[a], b = a;
    while (b > 0 && key[all[b - 1]] < key[t]) all[b] = all[b - 1], b--;
    all[b] = t;
  }
  size_t m = k < d ? k : d;
  memcpy(used, all, m * sizeof *used);
  *n_used = m;
  return 0;
}

/* ---- lasso path: LARS-lasso on the Gram --------------------------------------------- */

static double min_pos_or(double cur, double x) { return (x > 0 && x < cur) ? x : cur; }

/* sklearn.linear_model.lars_path(Xc·sqrt(w), yc·sqrt(w), method='lasso') from its Gram
 * C and Xᵀy B[:,l]; lime then walks the path from its last point back to point 1 and
 * keeps the first point with at most k nonzero coefficients. We record, going forward,
 * the last such point, which is the same point. A path with only its starting point
 * (y constant) selects every feature, as lime does. */
static size_t lasso_path(xd_lime_ws_t *ws, size_t l, size_t k, size_t *used) {
  size_t d = ws->d, L = ws->L, n = ws->n;
  double *coef = ws->v, *c = ws->v + d, *dir = ws->v + 2 * d, *a = ws->v + 3 * d, *sgn = ws->v + 4 * d;
  size_t *active = ws->iv, *best = ws->iv + d;
  char *is_active = (char *)(ws->iv + 2 * d);
  const double tiny32 = FLT_MIN, eps = DBL_EPSILON;
  size_t n_active = 0, n_best = 0, n_points = 1;
  int have_best = 0, drop = 0;
  memset(coef, 0, d * sizeof *coef);
  memset(is_active, 0, d);
  for (size_t j = 0; j < d; j++) c[j] = ws->B[j * L + l];
  for (size_t iter = 0; iter < 8 * d + 8; iter++) {
    /* C = the largest |correlation| among the inactive features. */
    double Cmax = 0;
    size_t cj = d;
    for (size_t j = 0; j < d; j++)
      if (!is_active[j] && fabs(c[j]) > Cmax) Cmax = fabs(c[j]), cj = j;
    if (Cmax / (double)n <= eps) break;
    if (n_active >= d) break;
    if (!drop) {
      if (cj == d) break;
      active[n_active++] = cj;
      is_active[cj] = 1;
      sgn[cj] = c[cj] > 0 ? 1.0 : -1.0;
    }
    /* Equiangular direction: G_AA s = sign, AA = 1/sqrt(sign·s), dir = AA·s. */
    double *G = ws->S;
    for (size_t p = 0; p < n_active; p++) {
      for (size_t q = 0; q < n_active; q++) G[p * n_active + q] = ws->C[active[p] * d + active[q]];
      dir[p] = sgn[active[p]];
    }
    if (xd_dposv(n_active, 1, G, dir) != 0) break; /* degenerate active set: stop */
    double ss = 0;
    for (size_t p = 0; p < n_active; p++) ss += dir[p] * sgn[active[p]];
    if (!(ss > 0)) break;
    double AA = 1.0 / sqrt(ss);
    for (size_t p = 0; p < n_active; p++) dir[p] *= AA;
    /* a_j = G[j, A]·dir for every feature: how fast each correlation moves. */
    for (size_t j = 0; j < d; j++) {
      double s = 0;
      for (size_t p = 0; p < n_active; p++) s += ws->C[j * d + active[p]] * dir[p];
      a[j] = s;
    }
    double gamma = Cmax / AA;
    for (size_t j = 0; j < d; j++) {
      if (is_active[j]) continue;
      gamma = min_pos_or(gamma, (Cmax - c[j]) / (AA - a[j] + tiny32));
      gamma = min_pos_or(gamma, (Cmax + c[j]) / (AA + a[j] + tiny32));
    }
    /* Lasso modification: a coefficient that would cross zero leaves the active set. */
    drop = 0;
    double zpos = INFINITY;
    size_t zi = 0;
    for (size_t p = 0; p < n_active; p++) {
      double z = -coef[active[p]] / (dir[p] + tiny32);
      if (z > 0 && z < zpos) zpos = z, zi = p;
    }
    if (zpos < gamma) gamma = zpos, drop = 1;
    for (size_t p = 0; p < n_active; p++) coef[active[p]] += gamma * dir[p];
    for (size_t j = 0; j < d; j++) c[j] -= gamma * a[j];
    if (drop) {
      size_t j = active[zi];
      coef[j] = 0;
      is_active[j] = 0;
      memmove(active + zi, active + zi + 1, (n_active - zi - 1) * sizeof *active);
      n_active--;
    }
    n_points++;
    size_t nnz = 0;
    for (size_t j = 0; j < d; j++) nnz += coef[j] != 0;
    if (nnz <= k) {
      have_best = 1;
      n_best = 0;
      for (size_t j = 0; j < d; j++)
        if (coef[j] != 0) best[n_best++] = j;
    }
  }
  if (n_points == 1 || !have_best) {
    /* Only the starting point: lime keeps range(d). (A path whose every point has more
     * than k nonzeros cannot happen: point 1 has one.) */
    for (size_t j = 0; j < d; j++) used[j] = j;
    return d;
  }
  memcpy(used, best, n_best * sizeof *used);
  return n_best;
}

/* ---- one label ---------------------------------------------------------------------- */

int xd_lime_ws_fit(xd_lime_ws_t *ws, size_t l, const double *Ac, const double *Yc, const double *z0,
                   xd_lime_fs_t fs, size_t num_features, xd_lime_fit_out_t *out, xd_error_t *err) {
  size_t n = ws->n, d = ws->d, L = ws->L, k;
  size_t *used = out->used;
  if (fs == XD_LIME_FS_AUTO) fs = num_features <= 6 ? XD_LIME_FS_FORWARD_SELECTION : XD_LIME_FS_HIGHEST_WEIGHTS;
  switch (fs) {
  case XD_LIME_FS_FORWARD_SELECTION:
    k = forward_selection(ws, l, num_features, used);
    break;
  case XD_LIME_FS_HIGHEST_WEIGHTS: {
    int r = highest_weights(ws, l, z0, num_features, used, &k);
    if (r) return xd_error_set(err, XD_EINTERNAL, NULL, "ridge for feature selection failed (dposv %d)", r);
    break;
  }
  case XD_LIME_FS_LASSO_PATH:
    k = lasso_path(ws, l, num_features, used);
    break;
  default:
    for (size_t j = 0; j < d; j++) used[j] = j;
    k = d;
  }
  /* The surrogate: Ridge(alpha=1) on the used features. */
  double *c = ws->v + 5 * d;
  int info = ridge_subset(ws, l, used, k, 1.0, c);
  if (info) return xd_error_set(err, XD_EINTERNAL, NULL, "ridge solve failed (dposv %d)", info);
  double intercept = ws->ybar[l], local = 0;
  memset(out->coef, 0, d * sizeof *out->coef);
  for (size_t a = 0; a < k; a++) {
    out->coef[used[a]] = c[a];
    intercept -= ws->xbar[used[a]] * c[a];
  }
  /* Weighted RSS on the rows themselves: sqrt(w)·(y - ŷ) = Yc - Ac[:,S]·coef. O(n·k). */
  double rss = 0, off = 0;
  if (ws->binary) /* Ac is Z itself: sqrt(w)·(Z - x̄)·coef = sqrt(w)·(Z·coef - x̄·coef) */
    for (size_t a = 0; a < k; a++) off += ws->xbar[used[a]] * c[a];
  for (size_t i = 0; i < n; i++) {
    const double *ai = Ac + i * d;
    double f = 0;
    for (size_t a = 0; a < k; a++) f += ai[used[a]] * c[a];
    double r = Yc[i * L + l] - (ws->binary ? ws->sw[i] * (f - off) : f);
    rss += r * r;
  }
  for (size_t a = 0; a < k; a++) local += c[a] * z0[used[a]];
  out->intercept = intercept;
  out->score = r2_from(rss, ws->syy[l]);
  out->local_pred = intercept + local;
  /* lime sorts (feature, coef) by |coef| descending with a stable sort. */
  for (size_t a = 1; a < k; a++) {
    size_t t = used[a], b = a;
    while (b > 0 && fabs(out->coef[used[b - 1]]) < fabs(out->coef[t])) used[b] = used[b - 1], b--;
    used[b] = t;
  }
  out->n_used = k;
  return XD_OK;
}
