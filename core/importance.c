/* importance.c — permutation importance (scikit-learn), Olden and Garson connection
 * weights (NeuralNetTools), mean absolute gradients. See importance.h for the contracts
 * and docs/algorithms.md §3.1 and §5 for the references. */
#include "core/importance.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"

/* ==== scorers ============================================================================ */

static const char *scoring_names[] = {"accuracy", "balanced_accuracy", "neg_log_loss", "r2",
                                      "neg_mean_squared_error"};

const char *xd_imp_scoring_name(xd_imp_scoring_t s) { return scoring_names[s]; }

int xd_imp_scoring_is_classification(xd_imp_scoring_t s) {
  return s == XD_IMP_ACCURACY || s == XD_IMP_BALANCED_ACCURACY || s == XD_IMP_NEG_LOG_LOSS;
}

/* First index of the largest value, as numpy's argmax (and xd_model_argmax). */
static size_t argmax_row(const double *p, size_t k) {
  size_t best = 0;
  for (size_t c = 1; c < k; c++)
    if (p[c] > p[best]) best = c;
  return best;
}

double xd_imp_score(xd_imp_scoring_t s, const double *P, size_t n, size_t k, const double *y, double *scratch) {
  switch (s) {
  case XD_IMP_ACCURACY: {
    size_t hit = 0;
    for (size_t i = 0; i < n; i++) hit += argmax_row(P + i * k, k) == (size_t)y[i];
    return (double)hit / (double)n;
  }
  case XD_IMP_BALANCED_ACCURACY: {
    /* sklearn: recall per class from the confusion matrix; classes absent from y_true
     * give 0/0 = nan and are dropped from the mean. */
    double *support = scratch, *correct = scratch + k;
    for (size_t c = 0; c < k; c++) support[c] = correct[c] = 0;
    for (size_t i = 0; i < n; i++) {
      size_t t = (size_t)y[i];
      support[t] += 1;
      correct[t] += argmax_row(P + i * k, k) == t;
    }
    double sum = 0;
    size_t present = 0;
    for (size_t c = 0; c < k; c++)
      if (support[c] > 0) {
        sum += correct[c] / support[c];
        present++;
      }
    return present ? sum / (double)present : 0.0;
  }
  case XD_IMP_NEG_LOG_LOSS: {
    /* Our probabilities are float64, so sklearn's eps = np.finfo(float64).eps. Clipping
     * the true class's probability is all that matters: the one-hot y_true zeroes the
     * other columns' terms. */
    const double eps = DBL_EPSILON;
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
      double q = P[i * k + (size_t)y[i]];
      if (q < eps) q = eps;
      if (q > 1 - eps) q = 1 - eps;
      loss -= log(q);
    }
    return -(loss / (double)n);
  }
  case XD_IMP_R2: {
    double mean = 0;
    for (size_t i = 0; i < n; i++) mean += y[i];
    mean /= (double)n;
    double ss_res = 0, ss_tot = 0;
    for (size_t i = 0; i < n; i++) {
      double r = y[i] - P[i * k], t = y[i] - mean;
      ss_res += r * r;
      ss_tot += t * t;
    }
    if (ss_tot == 0) return ss_res == 0 ? 1.0 : 0.0;
    return 1.0 - ss_res / ss_tot;
  }
  case XD_IMP_NEG_MSE: {
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
      double r = y[i] - P[i * k];
      ss += r * r;
    }
    return -(ss / (double)n);
  }
  }
  return NAN;
}

/* ==== permutation importance ============================================================== */

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

uint64_t xd_imp_perm_work_rows(size_t n, size_t d, size_t n_repeats, size_t n_sub) {
  return (uint64_t)d * n_repeats * n_sub + n;
}

void xd_imp_perm_deinit(xd_imp_perm_t *p) {
  if (!p) return;
  xd_free(p->rows);
  xd_free(p->y_sub);
  xd_free(p->src);
  xd_free(p->scores);
  memset(p, 0, sizeof *p);
}

int xd_imp_perm_init(xd_imp_perm_t *p, const xd_model_t *m, const double *X, const double *y, size_t n,
                     xd_imp_scoring_t scoring, size_t n_repeats, size_t n_sub, uint64_t seed, xd_error_t *err) {
  memset(p, 0, sizeof *p);
  p->model = m;
  p->X = X;
  p->y = y;
  p->n = n;
  p->d = xd_model_n_features(m);
  p->k = xd_model_n_outputs(m);
  p->scoring = scoring;
  p->n_repeats = n_repeats;
  p->n_sub = n_sub;
  size_t *pool = NULL, *idx = NULL;
  p->rows = xd_calloc(n_sub, sizeof *p->rows);
  p->y_sub = xd_calloc(n_sub, sizeof *p->y_sub);
  p->src = xd_calloc(xd_mul_size(n_repeats, n_sub), sizeof *p->src);
  p->scores = xd_calloc(xd_mul_size(p->d, n_repeats), sizeof *p->scores);
  idx = xd_calloc(n_sub, sizeof *idx);
  if (n_sub < n) pool = xd_calloc(n, sizeof *pool);
  if (!p->rows || !p->y_sub || !p->src || !p->scores || !idx || (n_sub < n && !pool)) goto nomem;

  /* One stream for every column, as scikit-learn seeds every column's RandomState with
   * the same integer: same subset, same shuffles. */
  xd_rng_t rng;
  xd_rng_seed(&rng, seed);
  if (n_sub < n) {
    /* Without replacement: the first n_sub draws of a partial Fisher–Yates, sorted so
     * that the copy reads X in order (the order of the subset does not change a score). */
    for (size_t i = 0; i < n; i++) pool[i] = i;
    for (size_t i = 0; i < n_sub; i++) {
      size_t j = i + (size_t)xd_rng_below(&rng, n - i);
      size_t t = pool[i];
      pool[i] = pool[j];
      pool[j] = t;
    }
    memcpy(p->rows, pool, n_sub * sizeof *pool);
    qsort(p->rows, n_sub, sizeof *p->rows, cmp_size);
  } else {
    for (size_t i = 0; i < n; i++) p->rows[i] = i;
  }
  for (size_t i = 0; i < n_sub; i++) p->y_sub[i] = y[p->rows[i]];

  /* scikit-learn shuffles idx in place each repeat and assigns X'[:, j] = X'[idx, j] to
   * the already-permuted column, so repeat r reads src_r[i] = src_{r-1}[idx_r[i]]
   * (src_{-1} = identity): a composition of cumulative shuffles, resolved here once. */
  for (size_t i = 0; i < n_sub; i++) idx[i] = i;
  for (size_t r = 0; r < n_repeats; r++) {
    xd_rng_shuffle(&rng, idx, n_sub);
    size_t *cur = p->src + r * n_sub;
    const size_t *prev = r ? p->src + (r - 1) * n_sub : NULL;
    for (size_t i = 0; i < n_sub; i++) cur[i] = prev ? prev[idx[i]] : idx[i];
  }
  xd_free(pool);
  xd_free(idx);
  return XD_OK;
nomem:
  xd_free(pool);
  xd_free(idx);
  xd_imp_perm_deinit(p);
  return xd_error_set(err, XD_ENOMEM, NULL, "out of memory preparing permutation importance");
}

size_t xd_imp_perm_parts(const xd_imp_perm_t *p) { return p->d + 1; }

static int perm_baseline(xd_imp_perm_t *p, const xd_cancel_t *cancel, xd_error_t *err) {
  double *P = xd_calloc(xd_mul_size(p->n, p->k), sizeof *P);
  double *scratch = xd_calloc(2 * p->k, sizeof *scratch);
  int rc = XD_ENOMEM;
  if (!P || !scratch) {
    xd_error_set(err, rc, NULL, "out of memory scoring the baseline");
    goto done;
  }
  rc = xd_model_predict(p->model, p->X, p->n, P, cancel, err);
  if (rc != XD_OK) goto done;
  p->baseline = xd_imp_score(p->scoring, P, p->n, p->k, p->y, scratch);
done:
  xd_free(P);
  xd_free(scratch);
  return rc;
}

/* One column: whole repeats are stacked into one matrix ((reps·n_sub), d) so the model
 * sees a few large batches instead of n_repeats small ones. */
static int perm_column(xd_imp_perm_t *p, size_t col, const xd_cancel_t *cancel, xd_error_t *err) {
  const size_t d = p->d, k = p->k, ns = p->n_sub;
  size_t reps = XD_IMP_PERM_CHUNK / ns;
  if (reps < 1) reps = 1;
  if (reps > p->n_repeats) reps = p->n_repeats;
  double *B = xd_malloc(xd_mul_size(xd_mul_size(reps, ns), d * sizeof(double)));
  double *P = xd_malloc(xd_mul_size(xd_mul_size(reps, ns), k * sizeof(double)));
  double *scratch = xd_calloc(2 * k, sizeof *scratch);
  int rc = XD_ENOMEM;
  if (!B || !P || !scratch) {
    xd_error_set(err, rc, NULL, "out of memory permuting column %zu", col);
    goto done;
  }
  /* The untouched columns are the same in every repeat: copy the subset once per block
   * row, then overwrite the permuted column per repeat. */
  for (size_t r = 0; r < reps; r++)
    for (size_t i = 0; i < ns; i++) memcpy(B + (r * ns + i) * d, p->X + p->rows[i] * d, d * sizeof(double));
  for (size_t r0 = 0; r0 < p->n_repeats; r0 += reps) {
    size_t nr = p->n_repeats - r0 < reps ? p->n_repeats - r0 : reps;
    for (size_t r = 0; r < nr; r++) {
      const size_t *src = p->src + (r0 + r) * ns;
      double *blk = B + r * ns * d;
      for (size_t i = 0; i < ns; i++) blk[i * d + col] = p->X[p->rows[src[i]] * d + col];
    }
    rc = xd_model_predict(p->model, B, nr * ns, P, cancel, err);
    if (rc != XD_OK) goto done;
    for (size_t r = 0; r < nr; r++)
      p->scores[col * p->n_repeats + r0 + r] = xd_imp_score(p->scoring, P + r * ns * k, ns, k, p->y_sub, scratch);
  }
  rc = XD_OK;
done:
  xd_free(B);
  xd_free(P);
  xd_free(scratch);
  return rc;
}

/* Adds row i's terms (outputs P, k of them; target y) to sums. */
static void add_row_sums(xd_imp_scoring_t s, const double *P, size_t k, double y, double *sums) {
  if (xd_imp_scoring_is_classification(s)) {
    size_t t = (size_t)y;
    double q = P[t];
    if (q < DBL_EPSILON) q = DBL_EPSILON;
    if (q > 1 - DBL_EPSILON) q = 1 - DBL_EPSILON;
    sums[0] += argmax_row(P, k) == t;
    sums[1] -= log(q);
  } else {
    double r = y - P[0];
    sums[2] += r * r;
    sums[3] += y;
    sums[4] += y * y;
  }
}

int xd_imp_perm_sums(const xd_imp_perm_t *p, size_t part, size_t r0, size_t r1, double *out,
                     const xd_cancel_t *cancel, xd_error_t *err) {
  if (p->scoring == XD_IMP_BALANCED_ACCURACY)
    return xd_error_set(err, XD_EUNSUPPORTED, "scoring", "balanced_accuracy does not split into per-row sums: "
                        "run it in one request");
  if (part > p->d) return xd_error_set(err, XD_EINTERNAL, NULL, "permutation part %zu out of range", part);
  const int base = part == p->d;
  const size_t d = p->d, k = p->k, reps = base ? 1 : p->n_repeats, n_rows = base ? p->n : p->n_sub;
  if (r0 % XD_IMP_SUM_BLOCK || r1 > n_rows || r0 > r1)
    return xd_error_set(err, XD_EINTERNAL, NULL, "rows %zu..%zu are not a block range", r0, r1);
  const size_t nb = (r1 - r0 + XD_IMP_SUM_BLOCK - 1) / XD_IMP_SUM_BLOCK, m = r1 - r0;
  memset(out, 0, reps * nb * XD_IMP_NSUMS * sizeof *out);
  if (m == 0) return XD_OK;
  double *B = xd_malloc(xd_mul_size(m, d * sizeof(double))), *P = xd_malloc(xd_mul_size(m, k * sizeof(double)));
  int rc = XD_ENOMEM;
  if (!B || !P) {
    xd_error_set(err, rc, NULL, "out of memory summing part %zu", part);
    goto done;
  }
  for (size_t r = 0; r < reps; r++) {
    /* the rows [r0, r1) of the (permuted) copy, as xd_imp_perm_run builds them */
    for (size_t i = 0; i < m; i++) {
      size_t row = base ? r0 + i : p->rows[r0 + i];
      memcpy(B + i * d, p->X + row * d, d * sizeof(double));
      if (!base) B[i * d + part] = p->X[p->rows[p->src[r * p->n_sub + r0 + i]] * d + part];
    }
    if ((rc = xd_model_predict(p->model, B, m, P, cancel, err)) != XD_OK) goto done;
    for (size_t i = 0; i < m; i++) {
      double y = base ? p->y[r0 + i] : p->y_sub[r0 + i];
      add_row_sums(p->scoring, P + i * k, k, y, out + (r * nb + i / XD_IMP_SUM_BLOCK) * XD_IMP_NSUMS);
    }
  }
  rc = XD_OK;
done:
  xd_free(B);
  xd_free(P);
  return rc;
}

double xd_imp_score_from_sums(xd_imp_scoring_t s, const double *sums, size_t n) {
  switch (s) {
  case XD_IMP_ACCURACY: return sums[0] / (double)n;
  case XD_IMP_NEG_LOG_LOSS: return -(sums[1] / (double)n);
  case XD_IMP_NEG_MSE: return -(sums[2] / (double)n);
  case XD_IMP_R2: {
    double ss_tot = sums[4] - sums[3] * sums[3] / (double)n;
    if (ss_tot <= 0) return sums[2] == 0 ? 1.0 : 0.0;
    return 1 - sums[2] / ss_tot;
  }
  default: return NAN;
  }
}

int xd_imp_perm_run(xd_imp_perm_t *p, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  if (part == p->d) return perm_baseline(p, cancel, err);
  if (part > p->d) return xd_error_set(err, XD_EINTERNAL, NULL, "permutation part %zu out of range", part);
  return perm_column(p, part, cancel, err);
}

void xd_imp_perm_result(const xd_imp_perm_t *p, double *importances, double *mean, double *std) {
  const size_t R = p->n_repeats;
  for (size_t j = 0; j < p->d; j++) {
    double s = 0;
    for (size_t r = 0; r < R; r++) {
      double v = p->baseline - p->scores[j * R + r];
      if (importances) importances[j * R + r] = v;
      s += v;
    }
    double mu = s / (double)R, ss = 0;
    for (size_t r = 0; r < R; r++) {
      double v = p->baseline - p->scores[j * R + r] - mu;
      ss += v * v;
    }
    if (mean) mean[j] = mu;
    if (std) std[j] = sqrt(ss / (double)R);
  }
}

/* ==== connection weights ================================================================== */

size_t xd_imp_default_weight_target(const xd_model_t *m) {
  return (xd_model_task(m) == XD_TASK_CLASSIFICATION && xd_model_n_outputs(m) == 2) ? 1 : 0;
}

/* The output-layer weight row of `target` as a vector over the last layer's inputs,
 * with the sign convention of a single sigmoid unit (class 0 = -z). */
static int output_row(const xd_model_t *m, const xd_dense_t *L, size_t nl, size_t target, double *v,
                      xd_error_t *err) {
  const xd_dense_t *last = &L[nl - 1];
  size_t k = xd_model_n_outputs(m);
  if (target >= k) return xd_error_set(err, XD_EINVAL, "target", "target %zu is out of range (%zu outputs)", target, k);
  if (last->out == k) {
    memcpy(v, last->wd + target * last->in, last->in * sizeof *v);
  } else if (last->out == 1 && k == 2) {
    double sign = target == 1 ? 1.0 : -1.0;
    for (size_t i = 0; i < last->in; i++) v[i] = sign * last->wd[i];
  } else {
    return xd_error_set(err, XD_EUNSUPPORTED, "method", "the network's output layer does not map to its outputs");
  }
  return XD_OK;
}

static size_t widest(const xd_dense_t *L, size_t nl) {
  size_t w = 0;
  for (size_t l = 0; l < nl; l++) {
    if (L[l].in > w) w = L[l].in;
    if (L[l].out > w) w = L[l].out;
  }
  return w;
}

/* u (L->in) = Wᵀ·v for v (L->out), W stored (out, in); absolute weights when abs_w. */
static void back_through(const xd_dense_t *L, const double *v, double *u, int abs_w) {
  for (size_t i = 0; i < L->in; i++) u[i] = 0;
  for (size_t o = 0; o < L->out; o++) {
    const double *w = L->wd + o * L->in;
    double vo = v[o];
    if (abs_w)
      for (size_t i = 0; i < L->in; i++) u[i] += fabs(w[i]) * vo;
    else
      for (size_t i = 0; i < L->in; i++) u[i] += w[i] * vo;
  }
}

int xd_imp_olden(const xd_model_t *m, size_t target, double *out, xd_error_t *err) {
  size_t nl = 0;
  const xd_dense_t *L = xd_model_dense_layers(m, &nl);
  if (!L || nl == 0) return xd_error_set(err, XD_EUNSUPPORTED, "method", "olden needs a dense network");
  size_t w = widest(L, nl);
  double *a = xd_calloc(w, sizeof *a), *b = xd_calloc(w, sizeof *b);
  int rc = XD_ENOMEM;
  if (!a || !b) {
    xd_error_set(err, rc, NULL, "out of memory");
    goto done;
  }
  rc = output_row(m, L, nl, target, a, err);
  if (rc != XD_OK) goto done;
  /* I = W1·…·W_{L-1}·v: walk back from the output, one layer at a time (activations
   * and biases ignored, as Olden & Jackson define it). */
  for (size_t l = nl - 1; l-- > 0;) {
    back_through(&L[l], a, b, 0);
    double *t = a;
    a = b;
    b = t;
  }
  memcpy(out, a, L[0].in * sizeof *out);
done:
  xd_free(a);
  xd_free(b);
  return rc;
}

int xd_imp_garson(const xd_model_t *m, size_t target, double *out, xd_error_t *err) {
  size_t nl = 0;
  const xd_dense_t *L = xd_model_dense_layers(m, &nl);
  if (!L || nl == 0) return xd_error_set(err, XD_EUNSUPPORTED, "method", "garson needs a dense network");
  const size_t d = L[0].in;
  size_t w = widest(L, nl);
  double *a = xd_calloc(w, sizeof *a), *b = xd_calloc(w, sizeof *b);
  int rc = XD_ENOMEM;
  if (!a || !b) {
    xd_error_set(err, rc, NULL, "out of memory");
    goto done;
  }
  rc = output_row(m, L, nl, target, a, err);
  if (rc != XD_OK) goto done;
  for (size_t i = 0; i < d; i++) out[i] = 0;
  if (nl == 1) {
    /* No hidden layer: the output unit is the only "hidden" unit, RI_i = |v_i| / Σ|v|. */
    double s = 0;
    for (size_t i = 0; i < d; i++) s += fabs(a[i]);
    if (s > 0)
      for (size_t i = 0; i < d; i++) out[i] = fabs(a[i]) / s;
    goto done;
  }
  /* a_j: absolute path weight from first-hidden unit j to the output. */
  for (size_t i = 0; i < L[nl - 1].in; i++) a[i] = fabs(a[i]);
  for (size_t l = nl - 1; l-- > 1;) {
    back_through(&L[l], a, b, 1);
    double *t = a;
    a = b;
    b = t;
  }
  const xd_dense_t *W1 = &L[0]; /* (h1, d) */
  for (size_t j = 0; j < W1->out; j++) {
    const double *wj = W1->wd + j * d;
    double cs = 0;
    for (size_t i = 0; i < d; i++) cs += fabs(wj[i]) * a[j];
    if (!(cs > 0)) continue; /* dead unit: 0/0 in Garson's r_ij */
    for (size_t i = 0; i < d; i++) out[i] += fabs(wj[i]) * a[j] / cs;
  }
  double s = 0;
  for (size_t i = 0; i < d; i++) s += out[i];
  if (s > 0)
    for (size_t i = 0; i < d; i++) out[i] /= s;
done:
  xd_free(a);
  xd_free(b);
  return rc;
}

void xd_imp_sum_inputs(const xd_model_t *m, const double *in, double *out) {
  size_t d = xd_model_n_features(m);
  for (size_t j = 0; j < d; j++) {
    size_t off = xd_model_input_offset(m, j), wdt = xd_model_input_width(m, j);
    double s = 0;
    for (size_t c = 0; c < wdt; c++) s += in[off + c];
    out[j] = s;
  }
}

/* ==== gradients ============================================================================ */

int xd_imp_abs_gradient(const xd_model_t *m, const double *X, size_t n, const size_t *target, double *A,
                        const xd_cancel_t *cancel, xd_error_t *err) {
  if (!xd_model_has_gradient(m))
    return xd_error_set(err, XD_EUNSUPPORTED, "method", "this model family has no input gradient");
  const size_t d = xd_model_n_features(m), ni = xd_model_n_inputs(m), k = xd_model_n_outputs(m);
  double *E = xd_malloc(xd_mul_size(n, ni * sizeof(double)));
  double *G = xd_malloc(xd_mul_size(n, ni * sizeof(double)));
  double *f = xd_malloc(xd_mul_size(n, sizeof(double)));
  double *P = target ? NULL : xd_malloc(xd_mul_size(n, k * sizeof(double)));
  size_t *t = target ? NULL : xd_malloc(xd_mul_size(n, sizeof(size_t)));
  int rc = XD_ENOMEM;
  if (!E || !G || !f || (!target && (!P || !t))) {
    xd_error_set(err, rc, NULL, "out of memory computing gradients");
    goto done;
  }
  if (!target) {
    rc = xd_model_predict(m, X, n, P, cancel, err);
    if (rc != XD_OK) goto done;
    for (size_t i = 0; i < n; i++) t[i] = xd_model_argmax(m, P + i * k);
    target = t;
  }
  xd_model_encode_d(m, X, n, E);
  rc = xd_model_gradient(m, E, n, target, XD_OUTPUT_PROBABILITY, f, G, NULL, cancel, err);
  if (rc != XD_OK) goto done;
  for (size_t j = 0; j < d; j++) {
    size_t off = xd_model_input_offset(m, j), wdt = xd_model_input_width(m, j);
    const xd_feature_t *ft = &xd_model_features(m)[j];
    double scale = xd_model_pre_scale(m, j);
    for (size_t i = 0; i < n; i++) {
      const double *g = G + i * ni + off;
      double v;
      if (ft->kind == XD_FEAT_CATEGORICAL) {
        v = 0;
        for (size_t c = 0; c < wdt; c++) v += fabs(g[c]);
      } else {
        /* e = (x - mean)/scale, so ∂f/∂x = ∂f/∂e / scale. */
        v = fabs(g[0]) / scale;
      }
      A[i * d + j] = v;
    }
  }
  rc = XD_OK;
done:
  xd_free(E);
  xd_free(G);
  xd_free(f);
  xd_free(P);
  xd_free(t);
  return rc;
}
