/* shap.h — Kernel SHAP, exact Shapley values and the linear closed form (SHAP's
 * KernelExplainer, ExactExplainer and LinearExplainer; docs/algorithms.md §4).
 *
 * The value function is the interventional one of KernelExplainer:
 *   v(S) = link( Σ_j w_j · f_t(x_S, bg_{j,S̄}) )
 * over a weighted background (the model's background summarized by k-means, or rows the
 * caller gives). Raw features are the players: a categorical feature is one player, and
 * a coalition switches its whole category.
 *
 * The work is staged so that callers can spread one instance over several threads:
 *   1. xd_shap_summarize    background -> weighted points (once per request),
 *   2. xd_shap_fnull        E_bg f for every output (once per request),
 *   3. xd_shap_plan_init    per instance: varying features, coalitions, kernel weights,
 *   4. xd_shap_plan_eval    model rows of coalitions [k0, k1) -> ey[k0..k1) (any
 *                           disjoint ranges may run concurrently on one plan),
 *   5. xd_shap_plan_solve   the efficiency-constrained weighted least squares (or the
 *                           Shapley sums of an exact plan) -> φ.
 * xd_shap_explain runs all stages on the calling thread (tests, benchmarks).
 * Every function is reentrant and may be called from any thread; a plan is written only
 * by its owner and by eval on disjoint ranges. Nothing here prints or keeps state.
 */
#ifndef XD_SHAP_H
#define XD_SHAP_H

#include <stddef.h>
#include <stdint.h>

#include "core/model.h"
#include "core/rng.h"
#include "core/status.h"

typedef enum xd_shap_link { XD_SHAP_LINK_IDENTITY = 0, XD_SHAP_LINK_LOGIT = 1 } xd_shap_link_t;

typedef enum xd_shap_method {
  XD_SHAP_AUTO = 0, /* linear when it gives Kernel SHAP's answer exactly, else kernel */
  XD_SHAP_KERNEL,
  XD_SHAP_EXACT,
  XD_SHAP_LINEAR
} xd_shap_method_t;

extern const char *const xd_shap_link_names[];   /* "identity", "logit", NULL */
extern const char *const xd_shap_method_names[]; /* "auto", "kernel", "exact", "linear", NULL */

/* Exact enumeration (2^M coalitions) is offered up to this many features. */
#define XD_SHAP_EXACT_MAX 16
/* Model rows per batched xd_model_predict call of plan_eval: enough for efficient GEMMs,
 * few enough that the coalition rows stay in cache between being written and being
 * encoded by the model (16384 measured 1.35x slower than 2048 on breast_cancer). */
#define XD_SHAP_CHUNK_ROWS 2048
/* First stream of the request seed for k-means: run r draws from stream
 * XD_SHAP_KMEANS_STREAM + r (instances use streams 0..n-1, far below). */
#define XD_SHAP_KMEANS_STREAM UINT64_C(0x6b6d65616e73) /* "kmeans" */

/* A weighted background: X (n, d) raw rows, w (n) non-negative, summing to 1. Owned. */
typedef struct xd_shap_bg {
  size_t n, d;
  double *X;
  double *w;
} xd_shap_bg_t;

void xd_shap_bg_deinit(xd_shap_bg_t *bg);

/* shap.kmeans (kmeans.c): k-means of X (n, d) into at most k weighted points —
 * XD_SHAP_KMEANS_RUNS runs of sklearn's greedy k-means++ seeding and Lloyd iterations
 * (tol 1e-4 of the mean column variance, at most 300), run r drawing from stream
 * XD_SHAP_KMEANS_STREAM + r of seed; the run of least inertia wins (the first on ties);
 * then each centre coordinate is snapped to the nearest observed value of its column
 * (first on ties, so category codes stay valid) and weights = cluster sizes / n. Empty
 * clusters are dropped. Returns XD_OK, XD_EINVAL (empty input) or XD_ENOMEM. */
#define XD_SHAP_KMEANS_RUNS 10
int xd_shap_kmeans(const double *X, size_t n, size_t d, size_t k, uint64_t seed, xd_shap_bg_t *out,
                   xd_error_t *err);

/* The two halves of xd_shap_kmeans, so that callers can spread the runs over threads:
 * run r (0 <= r < XD_SHAP_KMEANS_RUNS) writes its centres C (k', d) and cluster sizes
 * counts (k') with k' = min(k, n), and its inertia; pick takes the best run and builds the
 * summary. Both are reentrant. A run checks cancel (may be NULL) at every Lloyd
 * iteration and every XD_SHAP_KMEANS_CHECK seeded centres. */
#define XD_SHAP_KMEANS_CHECK 32
int xd_shap_kmeans_run(const double *X, size_t n, size_t d, size_t k, uint64_t seed, unsigned r, double *C,
                       size_t *counts, double *inertia, const xd_cancel_t *cancel, xd_error_t *err);
int xd_shap_kmeans_pick(const double *X, size_t n, size_t d, size_t k, double *const *C, size_t *const *counts,
                        const double *inertia, size_t runs, xd_shap_bg_t *out, xd_error_t *err);

/* The background of a request: ds used as is (uniform weights) when it has at most k
 * rows, else xd_shap_kmeans(ds, k, seed). */
int xd_shap_summarize(const xd_dataset_t *ds, size_t k, uint64_t seed, xd_shap_bg_t *out, xd_error_t *err);

/* link(p): identity, or logit with p clamped to [2^-53, 1-2^-53] so that a saturated
 * probability gives a large finite log-odds instead of ±inf. */
double xd_shap_link(xd_shap_link_t link, double p);

/* fnull (n_outputs) = Σ_j w_j f(bg_j). */
int xd_shap_fnull(const xd_model_t *m, const xd_shap_bg_t *bg, double *fnull, const xd_cancel_t *cancel,
                  xd_error_t *err);

/* 1 when the model is linear in its inputs in link space: a single identity layer with
 * the identity link, or a single sigmoid unit / two-class softmax with the logit link
 * (the log-odds is then affine in the encoded input). */
int xd_shap_is_linear(const xd_model_t *m, xd_shap_link_t link);

/* Closed form for such a model (LinearExplainer, interventional): with ē the weighted
 * background mean of the encoded inputs and a·e + c the link-space output for target,
 * φ_j = Σ_{q in feature j} a_q (e_q(x) - ē_q), expected = a·ē + c, out = a·e(x) + c,
 * all in double. For the logit link with more than one background row this is the
 * margin explanation (LinearExplainer's), not Kernel SHAP's link(E f). phi has
 * n_features entries. Returns XD_OK, XD_EINVAL (not linear) or XD_ENOMEM. */
int xd_shap_linear(const xd_model_t *m, const double *x, size_t target, xd_shap_link_t link,
                   const xd_shap_bg_t *bg, double *phi, double *expected, double *out, xd_error_t *err);

/* ---- per-instance plan -------------------------------------------------------------- */

typedef struct xd_shap_plan {
  xd_shap_method_t method; /* XD_SHAP_KERNEL or XD_SHAP_EXACT */
  size_t d;                /* raw features */
  size_t M;                /* varying features (np.allclose against every background row) */
  size_t *varying;         /* (M) their indices, ascending */
  size_t K;                /* coalitions to evaluate */
  unsigned char *masks;    /* kernel: (K, M) 0/1; exact: NULL (coalition k is the bits of k) */
  double *kw;              /* kernel: (K) kernel weights; exact: NULL */
  double *ey;              /* (K) Σ_j w_j f_t(coalition k, bg_j), filled by plan_eval */
} xd_shap_plan_t;

/* Builds the plan of instance x (d raw values) against bg.
 *   method XD_SHAP_KERNEL: shap's coalitions — complete subset sizes enumerated while
 *     the budget allows, the rest drawn by paired kernel-weighted sampling from rng;
 *     nsamples 0 means "auto" (2M + 2048), capped at 2^M - 2.
 *   method XD_SHAP_EXACT: all 2^M coalitions (M <= XD_SHAP_EXACT_MAX, else XD_EINVAL).
 * M <= 1 needs no coalitions (K = 0). Returns XD_OK, XD_EINVAL or XD_ENOMEM. */
int xd_shap_plan_init(xd_shap_plan_t *pl, xd_shap_method_t method, const double *x, const xd_shap_bg_t *bg,
                      size_t nsamples, xd_rng_t *rng, xd_error_t *err);
void xd_shap_plan_deinit(xd_shap_plan_t *pl);

/* Evaluates coalitions [k0, k1) of pl for output target: (k1-k0)·bg.n model rows in
 * batched xd_model_predict calls of about XD_SHAP_CHUNK_ROWS rows, writing pl->ey[k0..k1).
 * Allocates its scratch once per call. Returns XD_OK, XD_ENOMEM or a cancel status. */
int xd_shap_plan_eval(const xd_model_t *m, xd_shap_plan_t *pl, const double *x, const xd_shap_bg_t *bg,
                      size_t target, size_t k0, size_t k1, const xd_cancel_t *cancel, xd_error_t *err);

/* φ (d) from an evaluated plan, fx = f_t(x) and fnull = E_bg f_t (probabilities or
 * values, before the link). Kernel: shap's efficiency-constrained WLS (Cholesky, with a
 * least-squares then a tiny-ridge fallback when the normal matrix is singular), after
 * LARS selection of l1_k features when 0 < l1_k < M. Exact: Shapley's sums, with
 * v(∅) = link(fnull) and v(F) = link(fx) so that efficiency is exact. Non-varying
 * features get 0. cancel (may be NULL) is checked at each LARS step and before the
 * normal equations. Returns XD_OK, XD_ENOMEM or a cancel status. */
int xd_shap_plan_solve(const xd_shap_plan_t *pl, xd_shap_link_t link, double fx, double fnull, size_t l1_k,
                       double *phi, const xd_cancel_t *cancel, xd_error_t *err);

/* ---- one call ------------------------------------------------------------------------- */

typedef struct xd_shap_opts {
  xd_shap_method_t method;
  xd_shap_link_t link;
  size_t nsamples; /* 0 = auto */
  size_t l1_k;     /* 0 = no L1 selection */
  uint64_t seed;   /* row i samples from stream row0 + i */
} xd_shap_opts_t;

/* Resolves AUTO for model m (linear when xd_shap_is_linear and the link is identity or
 * the background has one row, else kernel). */
xd_shap_method_t xd_shap_resolve_method(const xd_model_t *m, xd_shap_method_t method, xd_shap_link_t link,
                                        size_t bg_rows);

/* Explains rows X (n, d) against bg on the calling thread. target (n): in/out,
 * SIZE_MAX entries become the predicted class. Outputs: phi (n, d), expected (n) =
 * link(E f_t) (linear: a·ē + c), out (n) = link(f_t(x)); *ran = the method used.
 * Returns XD_OK or an error. */
int xd_shap_explain(const xd_model_t *m, const xd_shap_opts_t *o, const xd_shap_bg_t *bg, const double *X, size_t n,
                    size_t *target, size_t row0, double *phi, double *expected, double *out, xd_shap_method_t *ran,
                    const xd_cancel_t *cancel, xd_error_t *err);

#endif
