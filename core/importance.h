/* importance.h — global feature importance: permutation, connection weights, gradients.
 *
 * Permutation importance follows scikit-learn's permutation_importance
 * (sklearn/inspection/_permutation_importance.py, docs/algorithms.md §3.1): the baseline score
 * on the full data; for every column, n_repeats cumulative shuffles of that column in a
 * copy of the (optionally subsampled) rows; importance = baseline - permuted score; mean
 * and population std over the repeats. As in scikit-learn every column uses the same
 * random stream (one seed for all columns), so every column sees the same row subset and
 * the same sequence of shuffles. The stream is drawn once, up front, by
 * xd_imp_perm_init; the per-column parts then only read it, so the answer is
 * bit-identical whatever the number of workers or the order in which parts run.
 *
 * Connection weights follow NeuralNetTools (docs/algorithms.md §5): Olden is the signed
 * product of the weight matrices (any depth), Garson the normalized absolute
 * contributions (one hidden layer as defined; see xd_imp_garson for the generalization).
 * Both are with respect to the *encoded* inputs the network sees (after preprocess and
 * one-hot); a categorical feature gets the sum over its one-hot inputs.
 *
 * Everything here is pure computation: no threads, no JSON. An xd_imp_perm_t is owned by
 * its caller; its parts may run concurrently on different threads (each writes only its
 * own slots).
 */
#ifndef XD_IMPORTANCE_H
#define XD_IMPORTANCE_H

#include <stddef.h>
#include <stdint.h>

#include "core/model.h"
#include "core/status.h"

/* Scorers, greater is better (scikit-learn's names and conventions). */
typedef enum xd_imp_scoring {
  XD_IMP_ACCURACY = 0,
  XD_IMP_BALANCED_ACCURACY = 1,
  XD_IMP_NEG_LOG_LOSS = 2,
  XD_IMP_R2 = 3,
  XD_IMP_NEG_MSE = 4
} xd_imp_scoring_t;

/* Static scikit-learn name of a scorer ("neg_log_loss"). */
const char *xd_imp_scoring_name(xd_imp_scoring_t s);
/* 1 when the scorer applies to classification outputs (accuracy, balanced_accuracy,
 * neg_log_loss), 0 for the regression scorers. */
int xd_imp_scoring_is_classification(xd_imp_scoring_t s);

/* Score of outputs P (n, k) against targets y (n) (class indices as doubles for the
 * classification scorers, values for the regression ones). k is the model's output
 * count (class probabilities, or 1 for regression). scratch holds 2k doubles (used by
 * balanced_accuracy). Conventions of scikit-learn:
 *   accuracy: fraction of rows whose argmax (first on ties) equals y;
 *   balanced_accuracy: mean recall over the classes present in y;
 *   neg_log_loss: -mean(-log(clip(P[i, y_i], eps, 1 - eps))), eps = DBL_EPSILON
 *     (sklearn >= 1.5 uses np.finfo(y_pred.dtype).eps and no longer renormalizes);
 *   r2: 1 - SS_res/SS_tot; 1 when both are 0, 0 when only SS_tot is (force_finite);
 *   neg_mean_squared_error: -mean((y - P)^2).
 * n >= 1. Any thread. */
double xd_imp_score(xd_imp_scoring_t s, const double *P, size_t n, size_t k, const double *y, double *scratch);

/* ---- permutation importance ---------------------------------------------------------- */

typedef struct xd_imp_perm {
  /* inputs (borrowed: they must outlive the plan) */
  const xd_model_t *model;
  const double *X; /* (n, d) raw rows */
  const double *y; /* (n) targets */
  size_t n, d, k;  /* rows, raw features, model outputs */
  xd_imp_scoring_t scoring;
  size_t n_repeats;
  size_t n_sub; /* rows per repeat: n, or the max_samples subset size */
  /* derived by init (owned) */
  size_t *rows;   /* (n_sub) rows of X in the subset (0..n-1 without max_samples) */
  double *y_sub;  /* (n_sub) their targets */
  size_t *src;    /* (n_repeats, n_sub): in repeat r, row i of the copy takes the permuted
                     column's value from subset row src[r*n_sub + i] */
  /* results (written by the parts) */
  double baseline;
  double *scores; /* (d, n_repeats) scores of the permuted copies */
} xd_imp_perm_t;

/* Prepares a permutation-importance plan: draws the row subset (n_sub < n: without
 * replacement) and the n_repeats cumulative shuffles from one stream seeded with seed.
 * Requires n >= 1, 1 <= n_sub <= n, n_repeats >= 1 and, for the classification scorers,
 * y holding valid class indices (the caller validates). Returns XD_OK, or XD_ENOMEM (p is
 * then deinitialized). */
int xd_imp_perm_init(xd_imp_perm_t *p, const xd_model_t *m, const double *X, const double *y, size_t n,
                     xd_imp_scoring_t scoring, size_t n_repeats, size_t n_sub, uint64_t seed, xd_error_t *err);
void xd_imp_perm_deinit(xd_imp_perm_t *p);

/* Number of independent parts: one per column plus one for the baseline (the last). */
size_t xd_imp_perm_parts(const xd_imp_perm_t *p);

/* Runs part `part`: column `part` (every repeat of it, in batched xd_model_predict calls
 * of about XD_IMP_PERM_CHUNK rows), or the baseline when part == d. Parts write only
 * their own results, so they may run concurrently and in any order. Allocates its
 * scratch once per call. Returns XD_OK, XD_ENOMEM or a cancel status. */
int xd_imp_perm_run(xd_imp_perm_t *p, size_t part, const xd_cancel_t *cancel, xd_error_t *err);

/* Rows per model call in a column part: whole repeats up to this many rows. */
#define XD_IMP_PERM_CHUNK 32768

/* After every part succeeded: importances (d, n_repeats) = baseline - scores, and per
 * feature their mean and population std (ddof 0). Any argument may be NULL. */
void xd_imp_perm_result(const xd_imp_perm_t *p, double *importances, double *mean, double *std);

/* Model rows the plan evaluates: d * n_repeats * n_sub + n. */
uint64_t xd_imp_perm_work_rows(size_t n, size_t d, size_t n_repeats, size_t n_sub);

/* ---- sums for sharded permutation importance (docs/algorithms.md §14) ------------------- */

/* Per row block, the sums a score is made of: correct predictions, Σ log loss (clipped as
 * xd_imp_score), Σ(y − ŷ)², Σy, Σy². Blocks are XD_IMP_SUM_BLOCK consecutive rows; block
 * sums add up in block order, so any split of the rows into shards on block boundaries
 * gives the same totals, bit for bit, as one machine. */
#define XD_IMP_NSUMS 5
#define XD_IMP_SUM_BLOCK 1024

/* Block sums of part `part` over rows [r0, r1) (r0 a multiple of XD_IMP_SUM_BLOCK): the
 * baseline (part == d) over the data rows, else column `part` in every repeat over the
 * subset rows. out: (repeats, ceil((r1 - r0) / XD_IMP_SUM_BLOCK), XD_IMP_NSUMS), repeats = 1
 * for the baseline. balanced_accuracy does not decompose this way: XD_EUNSUPPORTED
 * (field "scoring"). */
int xd_imp_perm_sums(const xd_imp_perm_t *p, size_t part, size_t r0, size_t r1, double *out,
                     const xd_cancel_t *cancel, xd_error_t *err);

/* The score of n rows from their total sums (greater is better, as xd_imp_score). */
double xd_imp_score_from_sums(xd_imp_scoring_t s, const double *sums, size_t n);

/* ---- connection weights (dense networks) ----------------------------------------------- */

/* Default target of olden/garson: output 1 of a binary classifier, else 0. */
size_t xd_imp_default_weight_target(const xd_model_t *m);

/* Olden's connection-weight importance of output `target` with respect to every encoded
 * input: I = W1·W2·…·W_{L-1}·v, with W_l as (in, out), biases and activations ignored
 * (NeuralNetTools olden.default). With no hidden layer it is the output row v itself.
 * A binary classifier with a single sigmoid output unit has class 1's weights v and class
 * 0's weights -v. out has n_inputs entries. Returns XD_OK, XD_EUNSUPPORTED (no dense
 * layers), XD_EINVAL (target out of range, field "target") or XD_ENOMEM. */
int xd_imp_olden(const xd_model_t *m, size_t target, double *out, xd_error_t *err);

/* Garson's relative importance of output `target` for every encoded input, in [0, 1] and
 * summing to 1 (0 everywhere when every path carries zero weight):
 *   c_ij = |W1_ij|·a_j,  r_ij = c_ij / Σ_i' c_i'j,  S_i = Σ_j r_ij,  RI_i = S_i / Σ S.
 * One hidden layer: a = |v|, exactly NeuralNetTools garson.default. Deeper networks
 * (a documented generalization; NeuralNetTools refuses them): a_j is the absolute weight
 * product from first-hidden unit j to the output, a = |W2|·…·|W_{L-1}|·|v|, so the
 * per-unit normalization stays over the inputs of the first hidden layer. No hidden
 * layer: RI_i = |v_i| / Σ|v| (the output unit plays the hidden unit, a = 1). Hidden units
 * whose Σ_i c_ij is 0 (dead) are skipped instead of dividing 0/0. Returns as
 * xd_imp_olden. */
int xd_imp_garson(const xd_model_t *m, size_t target, double *out, xd_error_t *err);

/* Sums per-encoded-input values into per-raw-feature values (categorical features: the
 * sum over their one-hot inputs). in has n_inputs entries, out n_features. */
void xd_imp_sum_inputs(const xd_model_t *m, const double *in, double *out);

/* ---- gradients ---------------------------------------------------------------------------- */

/* |∂f_t/∂x| per row and raw feature, for rows X (n, d): f_t is the probability (or
 * regression value) of target[i] (NULL: each row's predicted class, argmax of
 * xd_model_predict, as /predict reports it). Numeric features are in raw units
 * (|∂f/∂e|/scale, e the standardized input); a categorical feature, which has no raw
 * derivative, gets the sum of |∂f/∂e_c| over its one-hot inputs. A (n, d) receives the
 * values. Batched: one encode and one xd_model_gradient call. Returns XD_OK,
 * XD_EUNSUPPORTED, XD_ENOMEM or a cancel status. */
int xd_imp_abs_gradient(const xd_model_t *m, const double *X, size_t n, const size_t *target, double *A,
                        const xd_cancel_t *cancel, xd_error_t *err);

#endif
