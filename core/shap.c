/* shap.c — Kernel SHAP, exact Shapley values and the linear closed form.
 *
 * Reference: shap/shap @ df974a19, shap/explainers/_kernel.py (KernelExplainer.explain,
 * .solve), _exact.py, _linear.py; docs/algorithms.md §4. The coalition schedule (complete
 * subset sizes first, greedily while the budget allows; then paired kernel-weighted
 * sampling with duplicate masks accumulating weight; random weights rescaled to the
 * unenumerated mass) and the efficiency-constrained weighted least squares follow
 * _kernel.py step by step; only the random numbers differ (xd_rng_t instead of numpy).
 * Deliberate differences (docs/gradients_shap.md): no zeroing of |φ| < 1e-10 (it would
 * break efficiency for nothing), logit clamped away from 0 and 1, and a tiny ridge as the
 * last fallback for a singular system instead of lstsq's warning.
 */
#include "core/shap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/mat.h"

const char *const xd_shap_link_names[] = {"identity", "logit", NULL};
const char *const xd_shap_method_names[] = {"auto", "kernel", "exact", "linear", NULL};

void xd_shap_bg_deinit(xd_shap_bg_t *bg) {
  if (!bg) return;
  xd_free(bg->X);
  xd_free(bg->w);
  memset(bg, 0, sizeof *bg);
}

double xd_shap_link(xd_shap_link_t link, double p) {
  if (link == XD_SHAP_LINK_IDENTITY) return p;
  const double lo = 0x1p-53, hi = 1 - 0x1p-53;
  if (p < lo) p = lo;
  if (p > hi) p = hi;
  return log(p) - log1p(-p);
}

int xd_shap_fnull(const xd_model_t *m, const xd_shap_bg_t *bg, double *fnull, const xd_cancel_t *cancel,
                  xd_error_t *err) {
  size_t K = xd_model_n_outputs(m);
  double *y = xd_malloc(xd_mul_size(bg->n, K) * sizeof *y);
  if (!y) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  int rc = xd_model_predict(m, bg->X, bg->n, y, cancel, err);
  if (rc == XD_OK) {
    for (size_t t = 0; t < K; t++) fnull[t] = 0;
    for (size_t j = 0; j < bg->n; j++)
      for (size_t t = 0; t < K; t++) fnull[t] += bg->w[j] * y[j * K + t];
  }
  xd_free(y);
  return rc;
}

/* ---- linear closed form ------------------------------------------------------------ */

int xd_shap_is_linear(const xd_model_t *m, xd_shap_link_t link) {
  size_t nl = 0;
  const xd_dense_t *L = xd_model_dense_layers(m, &nl);
  if (!L || nl != 1) return 0;
  if (link == XD_SHAP_LINK_IDENTITY) return L[0].act == XD_ACT_IDENTITY;
  return (L[0].act == XD_ACT_SIGMOID && L[0].out == 1) || (L[0].act == XD_ACT_SOFTMAX && L[0].out == 2);
}

int xd_shap_linear(const xd_model_t *m, const double *x, size_t target, xd_shap_link_t link,
                   const xd_shap_bg_t *bg, double *phi, double *expected, double *out, xd_error_t *err) {
  if (!xd_shap_is_linear(m, link))
    return xd_error_set(err, XD_EINVAL, "method",
                        "method 'linear' needs a model linear in its inputs for this link (one identity layer; "
                        "with link 'logit', one sigmoid unit or a two-class softmax)");
  size_t nl, p = xd_model_n_inputs(m), d = xd_model_n_features(m);
  const xd_dense_t *L = xd_model_dense_layers(m, &nl);
  double *a = xd_calloc(p, sizeof *a), *eb = xd_calloc(p, sizeof *eb), *ex = xd_malloc(p * sizeof *ex);
  double *E = xd_malloc(xd_mul_size(bg->n, p) * sizeof *E);
  int rc = XD_OK;
  if (!a || !eb || !ex || !E) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  /* a·e + c: the link-space output of target as an affine function of the encoded input */
  double c;
  if (L->act == XD_ACT_SOFTMAX) { /* log(p_t / p_o) = z_t - z_o for two classes */
    size_t o = 1 - target;
    for (size_t q = 0; q < p; q++) a[q] = L->wd[target * p + q] - L->wd[o * p + q];
    c = L->bd[target] - L->bd[o];
  } else if (L->act == XD_ACT_SIGMOID) { /* class 1's log-odds is z, class 0's is -z */
    double sg = target == 1 ? 1 : -1;
    for (size_t q = 0; q < p; q++) a[q] = sg * L->wd[q];
    c = sg * L->bd[0];
  } else {
    for (size_t q = 0; q < p; q++) a[q] = L->wd[target * p + q];
    c = L->bd[target];
  }
  xd_model_encode_d(m, bg->X, bg->n, E);
  for (size_t j = 0; j < bg->n; j++)
    for (size_t q = 0; q < p; q++) eb[q] += bg->w[j] * E[j * p + q];
  xd_model_encode_d(m, x, 1, ex);
  double e0 = c, e1 = c;
  for (size_t q = 0; q < p; q++) e0 += a[q] * eb[q], e1 += a[q] * ex[q];
  for (size_t j = 0; j < d; j++) {
    size_t off = xd_model_input_offset(m, j), w = xd_model_input_width(m, j);
    double s = 0;
    for (size_t q = off; q < off + w; q++) s += a[q] * (ex[q] - eb[q]);
    phi[j] = s;
  }
  *expected = e0;
  *out = e1;
done:
  xd_free(a);
  xd_free(eb);
  xd_free(ex);
  xd_free(E);
  return rc;
}

/* ---- coalition plan ----------------------------------------------------------------- */

void xd_shap_plan_deinit(xd_shap_plan_t *pl) {
  if (!pl) return;
  xd_free(pl->varying);
  xd_free(pl->masks);
  xd_free(pl->kw);
  xd_free(pl->ey);
  memset(pl, 0, sizeof *pl);
}

/* np.allclose(a, b): |a - b| <= 1e-8 + 1e-5·|b| */
static int close_to(double a, double b) { return fabs(a - b) <= 1e-8 + 1e-5 * fabs(b); }

static double binom(size_t n, size_t k) {
  double r = 1;
  for (size_t i = 1; i <= k; i++) r = r * (double)(n - k + i) / (double)i;
  return r;
}

/* Open-addressing set of sampled masks (index of the stored mask, or -1). */
typedef struct mask_set {
  long *slot;
  size_t cap; /* power of two */
} mask_set_t;

static uint64_t mask_hash(const unsigned char *mk, size_t M) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < M; i++) h = (h ^ mk[i]) * 1099511628211ULL;
  return h ^ (h >> 29);
}

/* Returns the stored index of mk, or inserts idx and returns -1. */
static long mask_set_find_or_add(mask_set_t *s, const unsigned char *masks, size_t M, const unsigned char *mk,
                                 long idx) {
  size_t h = (size_t)mask_hash(mk, M) & (s->cap - 1);
  while (s->slot[h] >= 0) {
    if (!memcmp(masks + (size_t)s->slot[h] * M, mk, M)) return s->slot[h];
    h = (h + 1) & (s->cap - 1);
  }
  s->slot[h] = idx;
  return -1;
}

static void add_mask(xd_shap_plan_t *pl, const unsigned char *mk, double w) {
  memcpy(pl->masks + pl->K * pl->M, mk, pl->M);
  pl->kw[pl->K++] = w;
}

/* shap's KernelExplainer coalition schedule (see the file header). */
static int kernel_schedule(xd_shap_plan_t *pl, size_t nsamples, xd_rng_t *rng, xd_error_t *err) {
  size_t M = pl->M;
  if (nsamples == 0) nsamples = 2 * M + 2048;
  if (M <= 30 && nsamples > ((size_t)1 << M) - 2) nsamples = ((size_t)1 << M) - 2;
  size_t S = M / 2, P = (M - 1) / 2; /* ceil((M-1)/2) and floor((M-1)/2) */
  int rc = XD_ENOMEM;
  double *wv = xd_calloc(S + 1, sizeof *wv), *rem = xd_calloc(S + 1, sizeof *rem), *cdf = xd_calloc(S + 1, sizeof *cdf);
  unsigned char *mk = xd_malloc(M);
  size_t *idx = xd_malloc((M + 1) * sizeof *idx), *perm = xd_malloc(M * sizeof *perm);
  mask_set_t set = {NULL, 0};
  pl->masks = xd_malloc(xd_mul_size(nsamples, M));
  pl->kw = xd_malloc(nsamples * sizeof *pl->kw);
  pl->ey = xd_calloc(nsamples, sizeof *pl->ey);
  if (!wv || !rem || !cdf || !mk || !idx || !perm || !pl->masks || !pl->kw || !pl->ey) goto done;

  double sum = 0;
  for (size_t s = 1; s <= S; s++) {
    wv[s] = (double)(M - 1) / (double)(s * (M - s));
    if (s <= P) wv[s] *= 2;
    sum += wv[s];
  }
  for (size_t s = 1; s <= S; s++) rem[s] = wv[s] /= sum;

  /* 1. complete subset sizes, smallest first, while the budget covers them */
  size_t full = 0;
  double left = (double)nsamples;
  for (size_t s = 1; s <= S; s++) {
    double nsub = binom(M, s) * (s <= P ? 2 : 1);
    if (!(left * rem[s] / nsub >= 1 - 1e-8)) break;
    full++;
    left -= nsub;
    if (rem[s] < 1) {
      double r = 1 - rem[s];
      for (size_t t = 1; t <= S; t++) rem[t] /= r;
    }
    double w = wv[s] / binom(M, s) / (s <= P ? 2 : 1);
    for (size_t i = 0; i < s; i++) idx[i] = i; /* itertools.combinations order */
    for (;;) {
      memset(mk, 0, M);
      for (size_t i = 0; i < s; i++) mk[idx[i]] = 1;
      add_mask(pl, mk, w);
      if (s <= P) {
        for (size_t i = 0; i < M; i++) mk[i] ^= 1;
        add_mask(pl, mk, w);
      }
      size_t i = s;
      while (i > 0 && idx[i - 1] == M - s + i - 1) i--;
      if (i == 0) break;
      idx[i - 1]++;
      for (size_t t = i; t < s; t++) idx[t] = idx[t - 1] + 1;
    }
  }

  /* 2. the rest by paired, kernel-weighted sampling */
  size_t nfixed = pl->K;
  if (full != S && pl->K < nsamples) {
    size_t samples_left = nsamples - pl->K, nsizes = S - full;
    double run = 0;
    for (size_t t = 0; t < nsizes; t++) {
      size_t s = full + 1 + t;
      run += s <= P ? wv[s] / 2 : wv[s];
      cdf[t] = run;
    }
    set.cap = 16;
    while (set.cap < 2 * nsamples + 2) set.cap <<= 1;
    set.slot = xd_malloc(set.cap * sizeof *set.slot);
    if (!set.slot) goto done;
    for (size_t i = 0; i < set.cap; i++) set.slot[i] = -1;
    size_t draws = 4 * samples_left;
    for (size_t dr = 0; dr < draws && samples_left > 0; dr++) {
      size_t s = full + 1 + xd_rng_choice_cdf(rng, cdf, nsizes);
      for (size_t i = 0; i < M; i++) perm[i] = i;
      memset(mk, 0, M);
      for (size_t i = 0; i < s; i++) { /* the first s of a random permutation */
        size_t j = i + (size_t)xd_rng_below(rng, M - i), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        mk[perm[i]] = 1;
      }
      long at = mask_set_find_or_add(&set, pl->masks, M, mk, (long)pl->K);
      int is_new = at < 0;
      if (is_new) {
        at = (long)pl->K;
        add_mask(pl, mk, 1);
        samples_left--;
      } else {
        pl->kw[at] += 1;
      }
      if (samples_left > 0 && s <= P) { /* its complement, stored right after it */
        for (size_t i = 0; i < M; i++) mk[i] ^= 1;
        if (is_new) {
          add_mask(pl, mk, 1);
          samples_left--;
        } else {
          pl->kw[at + 1] += 1;
        }
      }
    }
    double wleft = 0, wsum = 0;
    for (size_t s = full + 1; s <= S; s++) wleft += wv[s];
    for (size_t k = nfixed; k < pl->K; k++) wsum += pl->kw[k];
    for (size_t k = nfixed; k < pl->K; k++) pl->kw[k] *= wleft / wsum;
  }
  rc = XD_OK;
done:
  if (rc != XD_OK) xd_error_set(err, rc, NULL, "out of memory for %zu coalitions", nsamples);
  xd_free(wv);
  xd_free(rem);
  xd_free(cdf);
  xd_free(mk);
  xd_free(idx);
  xd_free(perm);
  xd_free(set.slot);
  return rc;
}

int xd_shap_plan_init(xd_shap_plan_t *pl, xd_shap_method_t method, const double *x, const xd_shap_bg_t *bg,
                      size_t nsamples, xd_rng_t *rng, xd_error_t *err) {
  memset(pl, 0, sizeof *pl);
  pl->method = method;
  pl->d = bg->d;
  pl->varying = xd_malloc((bg->d ? bg->d : 1) * sizeof *pl->varying);
  if (!pl->varying) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  for (size_t j = 0; j < bg->d; j++) { /* varying: x_j not allclose to some background value */
    int vary = 0;
    for (size_t i = 0; i < bg->n && !vary; i++) vary = !close_to(x[j], bg->X[i * bg->d + j]);
    if (vary) pl->varying[pl->M++] = j;
  }
  if (pl->M <= 1) return XD_OK; /* closed form in solve */
  if (method == XD_SHAP_EXACT) {
    if (pl->M > XD_SHAP_EXACT_MAX) {
      int rc = xd_error_set(err, XD_EINVAL, "method", "method 'exact' supports at most %d varying features, got %zu",
                            XD_SHAP_EXACT_MAX, pl->M);
      xd_shap_plan_deinit(pl);
      return rc;
    }
    pl->K = (size_t)1 << pl->M;
    pl->ey = xd_calloc(pl->K, sizeof *pl->ey);
    if (!pl->ey) {
      xd_shap_plan_deinit(pl);
      return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    }
    return XD_OK;
  }
  int rc = kernel_schedule(pl, nsamples, rng, err);
  if (rc != XD_OK) xd_shap_plan_deinit(pl);
  return rc;
}

/* ---- evaluation ------------------------------------------------------------------------ */

/* Coalition k -> (kk·N .. kk·N+N-1) rows of R: the background with the coalition's
 * varying features set to x. R is (C·N, d), Y (C·N, n_outputs). */
int xd_shap_plan_eval(const xd_model_t *m, xd_shap_plan_t *pl, const double *x, const xd_shap_bg_t *bg,
                      size_t target, size_t k0, size_t k1, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t N = bg->n, d = bg->d, K = xd_model_n_outputs(m), M = pl->M;
  if (k1 > pl->K) k1 = pl->K;
  if (k0 >= k1) return XD_OK;
  size_t C = XD_SHAP_CHUNK_ROWS / N ? XD_SHAP_CHUNK_ROWS / N : 1;
  if (C > k1 - k0) C = k1 - k0;
  double *R = xd_malloc(xd_mul_size(xd_mul_size(C, N), d) * sizeof *R);
  double *Y = xd_malloc(xd_mul_size(xd_mul_size(C, N), K) * sizeof *Y);
  int rc = XD_OK;
  if (!R || !Y) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory for %zu coalition rows", C * N);
    goto done;
  }
  for (size_t c0 = k0; c0 < k1; c0 += C) {
    size_t c = k1 - c0 < C ? k1 - c0 : C;
    for (size_t kk = 0; kk < c; kk++) {
      size_t k = c0 + kk;
      double *r = R + kk * N * d;
      memcpy(r, bg->X, N * d * sizeof *r);
      for (size_t v = 0; v < M; v++) {
        int on = pl->masks ? pl->masks[k * M + v] : (int)((k >> v) & 1);
        if (!on) continue;
        size_t j = pl->varying[v];
        for (size_t i = 0; i < N; i++) r[i * d + j] = x[j];
      }
    }
    if ((rc = xd_model_predict(m, R, c * N, Y, cancel, err)) != XD_OK) goto done;
    for (size_t kk = 0; kk < c; kk++) {
      double s = 0;
      for (size_t i = 0; i < N; i++) s += bg->w[i] * Y[(kk * N + i) * K + target];
      pl->ey[c0 + kk] = s;
    }
  }
done:
  xd_free(R);
  xd_free(Y);
  return rc;
}

/* ---- solve ---------------------------------------------------------------------------- */

/* sklearn lars_path(A, y, method='lar', max_iter=r): the first r variables to enter the
 * active set, in order of entry, written to act; returns how many entered. A is (R, M). */
static int lars_select(const double *A, const double *y, size_t R, size_t M, size_t r, size_t *act,
                       double *scratch, size_t *n_act, const xd_cancel_t *cancel) {
  /* Graw keeps the active columns' inner products from step to step: each step adds one
   * row of it (O(a R)) instead of recomputing all (O(a² R)); the sums are the same. */
  double *c = scratch, *av = c + M, *u = av + M, *G = u + R, *g = G + r * r, *sg = g + r, *Graw = sg + r;
  unsigned char *in = (unsigned char *)(Graw + r * r);
  *n_act = 0;
  memset(in, 0, M);
  xd_dgemm_tn(M, 1, R, A, y, 0, c);
  size_t j0 = 0;
  for (size_t j = 1; j < M; j++)
    if (fabs(c[j]) > fabs(c[j0])) j0 = j;
  if (!(fabs(c[j0]) > 0)) return XD_OK;
  act[0] = j0;
  in[j0] = 1;
  size_t a = 1;
  int rc = XD_OK;
  while (a < r && a < M) {
    if ((rc = xd_cancel_check(cancel)) != XD_OK) break;
    double Cm = 0;
    for (size_t q = 0; q < a; q++) Cm = fabs(c[act[q]]) > Cm ? fabs(c[act[q]]) : Cm;
    if (Cm < 1e-14) break;
    for (size_t q = 0; q < a; q++) sg[q] = c[act[q]] >= 0 ? 1 : -1;
    { /* the newest active column against all, in one pass over A's rows (each sum still
       * runs over i in order, so it is the same number as a column-by-column loop) */
      size_t q1 = a - 1;
      double *gr = Graw + q1 * r;
      for (size_t q2 = 0; q2 < a; q2++) gr[q2] = 0;
      for (size_t i = 0; i < R; i++) {
        const double *row = A + i * M;
        double an = row[act[q1]];
        for (size_t q2 = 0; q2 < a; q2++) gr[q2] += an * row[act[q2]];
      }
    }
    for (size_t q1 = 0; q1 < a; q1++)
      for (size_t q2 = 0; q2 <= q1; q2++) G[q1 * a + q2] = G[q2 * a + q1] = Graw[q1 * r + q2] * sg[q1] * sg[q2];
    for (size_t q = 0; q < a; q++) g[q] = 1;
    if (xd_dposv(a, 1, G, g) != 0) break;
    double s1 = 0;
    for (size_t q = 0; q < a; q++) s1 += g[q];
    if (!(s1 > 0)) break;
    double AA = 1 / sqrt(s1);
    for (size_t i = 0; i < R; i++) {
      double s = 0;
      for (size_t q = 0; q < a; q++) s += AA * g[q] * sg[q] * A[i * M + act[q]];
      u[i] = s;
    }
    xd_dgemm_tn(M, 1, R, A, u, 0, av);
    double gamma = INFINITY;
    size_t jn = M;
    for (size_t j = 0; j < M; j++) {
      if (in[j]) continue;
      double t1 = (Cm - c[j]) / (AA - av[j]), t2 = (Cm + c[j]) / (AA + av[j]);
      if (t1 > 1e-15 && t1 < gamma) gamma = t1, jn = j;
      if (t2 > 1e-15 && t2 < gamma) gamma = t2, jn = j;
    }
    if (jn == M) break;
    for (size_t j = 0; j < M; j++) c[j] -= gamma * av[j];
    act[a++] = jn;
    in[jn] = 1;
  }
  *n_act = a;
  return rc;
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

static int solve_kernel(const xd_shap_plan_t *pl, xd_shap_link_t link, double fx, double fnull, size_t l1_k,
                        double *phi, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t M = pl->M, K = pl->K;
  double lnull = xd_shap_link(link, fnull), delta = xd_shap_link(link, fx) - lnull;
  int rc = XD_ENOMEM;
  size_t *sel = xd_malloc(M * sizeof *sel), ns = M;
  double *adj = xd_malloc(K * sizeof *adj), *Xs = NULL, *ys = NULL, *A = NULL, *b = NULL, *scr = NULL;
  if (!sel || !adj) goto done;
  for (size_t k = 0; k < K; k++) adj[k] = xd_shap_link(link, pl->ey[k]) - lnull;
  for (size_t v = 0; v < M; v++) sel[v] = v;

  if (l1_k > 0 && l1_k < M) { /* shap's augmented problem, then LARS's first l1_k entries */
    size_t R = 2 * K;
    double *Aa = xd_malloc(xd_mul_size(R, M) * sizeof *Aa), *ya = xd_malloc(R * sizeof *ya);
    scr = xd_malloc((3 * M + R + 2 * l1_k * l1_k + 2 * l1_k) * sizeof *scr + M);
    if (!Aa || !ya || !scr) {
      xd_free(Aa);
      xd_free(ya);
      goto done;
    }
    for (size_t k = 0; k < K; k++) {
      double s = 0;
      for (size_t v = 0; v < M; v++) s += pl->masks[k * M + v];
      double w1 = sqrt(pl->kw[k] * ((double)M - s)), w2 = sqrt(pl->kw[k] * s);
      for (size_t v = 0; v < M; v++) {
        Aa[k * M + v] = w1 * pl->masks[k * M + v];
        Aa[(K + k) * M + v] = w2 * (pl->masks[k * M + v] - 1.0);
      }
      ya[k] = w1 * adj[k];
      ya[K + k] = w2 * (adj[k] - delta);
    }
    rc = lars_select(Aa, ya, R, M, l1_k, sel, scr, &ns, cancel);
    xd_free(Aa);
    xd_free(ya);
    if (rc != XD_OK) goto done;
    rc = XD_ENOMEM;
    qsort(sel, ns, sizeof *sel, cmp_size);
  }
  for (size_t j = 0; j < pl->d; j++) phi[j] = 0;
  if (ns == 0) {
    rc = XD_OK;
    goto done;
  }
  if (ns == 1) {
    phi[pl->varying[sel[0]]] = delta;
    rc = XD_OK;
    goto done;
  }
  /* efficiency eliminates the last selected feature l: φ_l = Δ - Σ_others φ */
  size_t q = ns - 1, l = sel[ns - 1];
  Xs = xd_malloc(xd_mul_size(K, q) * sizeof *Xs);
  ys = xd_malloc((K > q ? K : q) * sizeof *ys);
  A = xd_malloc(xd_mul_size(q, q) * sizeof *A);
  b = xd_malloc(q * sizeof *b);
  if (!Xs || !ys || !A || !b) goto done;
  if ((rc = xd_cancel_check(cancel)) != XD_OK) goto done;
  rc = XD_ENOMEM;
  for (size_t k = 0; k < K; k++) { /* √kw-weighted rows: (X'ᵀKX') = XsᵀXs */
    double sw = sqrt(pl->kw[k]), ml = pl->masks[k * M + l];
    for (size_t t = 0; t < q; t++) Xs[k * q + t] = sw * (pl->masks[k * M + sel[t]] - ml);
    ys[k] = sw * (adj[k] - ml * delta);
  }
  xd_dgemm_tn(q, q, K, Xs, Xs, 0, A);
  xd_dgemm_tn(q, 1, K, Xs, ys, 0, b);
  if (xd_dposv(q, 1, A, b) != 0) {
    /* singular normal matrix (too few coalitions): least squares, then a tiny ridge */
    int ok = 0;
    if (K >= q) {
      double *Xc = xd_malloc(xd_mul_size(K, q) * sizeof *Xc), *yc = xd_malloc(K * sizeof *yc);
      if (Xc && yc) {
        memcpy(Xc, Xs, K * q * sizeof *Xc);
        memcpy(yc, ys, K * sizeof *yc);
        if (xd_dgels(K, q, 1, Xc, yc) == 0) {
          memcpy(b, yc, q * sizeof *b);
          ok = 1;
          for (size_t t = 0; t < q; t++) ok &= isfinite(b[t]);
        }
      }
      xd_free(Xc);
      xd_free(yc);
    }
    if (!ok) {
      xd_dgemm_tn(q, q, K, Xs, Xs, 0, A);
      xd_dgemm_tn(q, 1, K, Xs, ys, 0, b);
      double mx = 0;
      for (size_t t = 0; t < q; t++) mx = A[t * q + t] > mx ? A[t * q + t] : mx;
      for (size_t t = 0; t < q; t++) A[t * q + t] += 1e-10 * (mx > 0 ? mx : 1);
      if (xd_dposv(q, 1, A, b) != 0) memset(b, 0, q * sizeof *b);
    }
  }
  double s = 0;
  for (size_t t = 0; t < q; t++) {
    phi[pl->varying[sel[t]]] = b[t];
    s += b[t];
  }
  phi[pl->varying[l]] = delta - s;
  rc = XD_OK;
done:
  if (rc == XD_ETIMEDOUT || rc == XD_ECANCELED)
    xd_error_set(err, rc, NULL, "%s during the Kernel SHAP solve", rc == XD_ETIMEDOUT ? "deadline exceeded" : "canceled");
  else if (rc != XD_OK)
    xd_error_set(err, rc, NULL, "out of memory for the Kernel SHAP solve");
  xd_free(sel);
  xd_free(adj);
  xd_free(Xs);
  xd_free(ys);
  xd_free(A);
  xd_free(b);
  xd_free(scr);
  return rc;
}

/* φ_i = Σ_{S ∌ i} |S|!(M-|S|-1)!/M! · (v(S ∪ i) - v(S)) over the 2^M bit masks. */
static int solve_exact(const xd_shap_plan_t *pl, xd_shap_link_t link, double fx, double fnull, double *phi,
                       xd_error_t *err) {
  size_t M = pl->M, K = pl->K;
  double *v = xd_malloc(K * sizeof *v), coef[XD_SHAP_EXACT_MAX + 1];
  if (!v) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  for (size_t s = 0; s < M; s++) coef[s] = 1 / ((double)M * binom(M - 1, s));
  for (size_t k = 0; k < K; k++) v[k] = xd_shap_link(link, pl->ey[k]);
  v[0] = xd_shap_link(link, fnull); /* the same numbers, so that efficiency is exact */
  v[K - 1] = xd_shap_link(link, fx);
  for (size_t j = 0; j < pl->d; j++) phi[j] = 0;
  for (size_t i = 0; i < M; i++) {
    size_t bit = (size_t)1 << i;
    double s = 0;
    for (size_t k = 0; k < K; k++)
      if (!(k & bit)) s += coef[__builtin_popcountll(k)] * (v[k | bit] - v[k]);
    phi[pl->varying[i]] = s;
  }
  xd_free(v);
  return XD_OK;
}

int xd_shap_plan_solve(const xd_shap_plan_t *pl, xd_shap_link_t link, double fx, double fnull, size_t l1_k,
                       double *phi, const xd_cancel_t *cancel, xd_error_t *err) {
  if (pl->M <= 1) {
    for (size_t j = 0; j < pl->d; j++) phi[j] = 0;
    if (pl->M == 1) phi[pl->varying[0]] = xd_shap_link(link, fx) - xd_shap_link(link, fnull);
    return XD_OK;
  }
  if (pl->method == XD_SHAP_EXACT) return solve_exact(pl, link, fx, fnull, phi, err);
  return solve_kernel(pl, link, fx, fnull, l1_k, phi, cancel, err);
}

/* ---- one call ------------------------------------------------------------------------- */

xd_shap_method_t xd_shap_resolve_method(const xd_model_t *m, xd_shap_method_t method, xd_shap_link_t link,
                                        size_t bg_rows) {
  if (method != XD_SHAP_AUTO) return method;
  if (xd_shap_is_linear(m, link) && (link == XD_SHAP_LINK_IDENTITY || bg_rows == 1)) return XD_SHAP_LINEAR;
  return XD_SHAP_KERNEL;
}

int xd_shap_explain(const xd_model_t *m, const xd_shap_opts_t *o, const xd_shap_bg_t *bg, const double *X, size_t n,
                    size_t *target, size_t row0, double *phi, double *expected, double *out, xd_shap_method_t *ran,
                    const xd_cancel_t *cancel, xd_error_t *err) {
  size_t d = xd_model_n_features(m), K = xd_model_n_outputs(m);
  xd_shap_method_t method = xd_shap_resolve_method(m, o->method, o->link, bg->n);
  double *fnull = xd_malloc(K * sizeof *fnull), *fx = xd_malloc(xd_mul_size(n, K) * sizeof *fx);
  int rc = XD_OK;
  if (!fnull || !fx) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  if ((rc = xd_shap_fnull(m, bg, fnull, cancel, err)) != XD_OK) goto done;
  if ((rc = xd_model_predict(m, X, n, fx, cancel, err)) != XD_OK) goto done;
  for (size_t i = 0; i < n; i++) {
    const double *x = X + i * d;
    if (target[i] == SIZE_MAX) target[i] = xd_model_argmax(m, fx + i * K);
    size_t t = target[i];
    if (method == XD_SHAP_LINEAR) {
      if ((rc = xd_shap_linear(m, x, t, o->link, bg, phi + i * d, expected + i, out + i, err)) != XD_OK) goto done;
      continue;
    }
    xd_shap_plan_t pl;
    xd_rng_t rng;
    xd_rng_seed_stream(&rng, o->seed, (uint64_t)(row0 + i));
    if ((rc = xd_shap_plan_init(&pl, method, x, bg, o->nsamples, &rng, err)) != XD_OK) goto done;
    rc = xd_shap_plan_eval(m, &pl, x, bg, t, 0, pl.K, cancel, err);
    if (rc == XD_OK) rc = xd_shap_plan_solve(&pl, o->link, fx[i * K + t], fnull[t], o->l1_k, phi + i * d, cancel, err);
    xd_shap_plan_deinit(&pl);
    if (rc != XD_OK) goto done;
    expected[i] = xd_shap_link(o->link, fnull[t]);
    out[i] = xd_shap_link(o->link, fx[i * K + t]);
  }
  if (ran) *ran = method;
done:
  xd_free(fnull);
  xd_free(fx);
  return rc;
}
