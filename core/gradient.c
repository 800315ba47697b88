/* gradient.c — saliency, gradient, input × gradient, integrated gradients, SmoothGrad.
 *
 * Reference: Captum (pytorch/captum @ faac0877), captum/attr/_core/{saliency,
 * input_x_gradient,integrated_gradients,noise_tunnel}.py and
 * captum/attr/_utils/approximation_methods.py; docs/algorithms.md §2.
 *
 * Every method is a list of "units" (an encoded input row and the output to
 * differentiate) laid out instance-major: instance i owns units [i·per, (i+1)·per).
 * Units are materialized XD_GRAD_CHUNK at a time into one matrix and sent through one
 * double-precision forward + backward (xd_model_gradient); the chunk's gradients are
 * folded into per-instance accumulators before the next chunk overwrites them. The
 * instance-major layout keeps one row's noise stream sequential, so a row draws the same
 * numbers whichever chunk boundaries fall inside it.
 */
#include "core/gradient.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"

const char *const xd_grad_method_names[] = {"saliency",   "gradient",      "input_x_gradient", "integrated_gradients",
                                            "smoothgrad", "smoothgrad_sq", "vargrad",          NULL};
const char *const xd_grad_integration_names[] = {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
                                                 "riemann_trapezoid", NULL};

/* ---- quadrature ------------------------------------------------------------------- */

/* P_n(z) by the three-term recurrence; *dp gets P_n'(z). */
static double legendre(size_t n, double z, double *dp) {
  double p1 = 1, p2 = 0;
  for (size_t j = 1; j <= n; j++) {
    double p3 = p2;
    p2 = p1;
    p1 = ((2.0 * (double)j - 1) * z * p2 - ((double)j - 1) * p3) / (double)j;
  }
  *dp = (double)n * (z * p1 - p2) / (z * z - 1);
  return p1;
}

/* Gauss–Legendre nodes x (n, ascending, on [-1,1]) and weights w (n, sum 2) by Newton's
 * method on P_n from the classical guesses cos(π(i-1/4)/(n+1/2)); the weight 2/((1-x²)P_n'(x)²) is taken
 * at the converged root. Symmetric roots are mirrored so the rule is exactly symmetric. */
static void gauss_legendre(size_t n, double *x, double *w) {
  for (size_t i = 0; i < (n + 1) / 2; i++) {
    double z = cos(M_PI * ((double)i + 0.75) / ((double)n + 0.5)), pp = 1;
    for (int it = 0; it < 100; it++) {
      double p = legendre(n, z, &pp);
      double dz = p / pp;
      z -= dz;
      if (fabs(dz) <= 1e-16) break;
    }
    legendre(n, z, &pp); /* the derivative at the converged root, for the weight */
    double wi = 2 / ((1 - z * z) * pp * pp);
    x[i] = -z;
    x[n - 1 - i] = z;
    w[i] = w[n - 1 - i] = wi;
  }
  if (n % 2) x[n / 2] = 0;
}

/* The rule of the last n each thread asked for, up to GL_CACHE points: Newton's method to
 * 1e-16 takes up to 100 rounds of the O(n) recurrence per root, a few percent of a small
 * model's request, and the same steps come back request after request. */
#define GL_CACHE 1024
static _Thread_local struct {
  size_t n;
  double x[GL_CACHE], w[GL_CACHE];
} gl_last;

static void gauss_legendre_cached(size_t n, double *x, double *w) {
  if (n > GL_CACHE) {
    gauss_legendre(n, x, w);
    return;
  }
  if (gl_last.n != n) {
    gauss_legendre(n, gl_last.x, gl_last.w);
    gl_last.n = n;
  }
  memcpy(x, gl_last.x, n * sizeof *x);
  memcpy(w, gl_last.w, n * sizeof *w);
}

int xd_grad_quadrature(xd_grad_integration_t rule, size_t n, double *alpha, double *w, xd_error_t *err) {
  size_t min_n = (rule == XD_GRAD_RIEMANN_LEFT || rule == XD_GRAD_RIEMANN_TRAPEZOID) ? 2 : 1;
  if (n < min_n)
    return xd_error_set(err, XD_EINVAL, "steps", "integration '%s' needs at least %zu steps",
                        xd_grad_integration_names[rule], min_n);
  double dn = (double)n;
  switch (rule) {
  case XD_GRAD_GAUSSLEGENDRE:
    gauss_legendre_cached(n, alpha, w);
    for (size_t k = 0; k < n; k++) {
      alpha[k] = 0.5 * (1 + alpha[k]);
      w[k] *= 0.5;
    }
    break;
  case XD_GRAD_RIEMANN_LEFT: /* linspace(0, 1-1/n, n) */
    for (size_t k = 0; k < n; k++) alpha[k] = (double)k / dn, w[k] = 1 / dn;
    break;
  case XD_GRAD_RIEMANN_RIGHT: /* linspace(1/n, 1, n) */
    for (size_t k = 0; k < n; k++) alpha[k] = (double)(k + 1) / dn, w[k] = 1 / dn;
    break;
  case XD_GRAD_RIEMANN_MIDDLE:
    for (size_t k = 0; k < n; k++) alpha[k] = ((double)k + 0.5) / dn, w[k] = 1 / dn;
    break;
  case XD_GRAD_RIEMANN_TRAPEZOID: /* linspace(0, 1, n); true trapezoid weights */
    for (size_t k = 0; k < n; k++) alpha[k] = (double)k / (dn - 1), w[k] = 1 / (dn - 1);
    w[0] *= 0.5;
    w[n - 1] *= 0.5;
    alpha[n - 1] = 1;
    break;
  default:
    return xd_error_set(err, XD_EINVAL, "integration", "unknown integration rule");
  }
  return XD_OK;
}

size_t xd_grad_rows_per_instance(const xd_grad_opts_t *o) {
  switch (o->method) {
  case XD_GRAD_INTEGRATED: return o->steps + 2;
  case XD_GRAD_SMOOTHGRAD:
  case XD_GRAD_SMOOTHGRAD_SQ:
  case XD_GRAD_VARGRAD: return o->samples;
  default: return 1;
  }
}

void xd_grad_baseline_mean(const xd_model_t *m, double *Eb) {
  size_t d = xd_model_n_features(m), p = xd_model_n_inputs(m);
  const xd_stats_t *st = xd_model_stats(m);
  const xd_feature_t *F = xd_model_features(m);
  if (!st) {
    memset(Eb, 0, p * sizeof *Eb);
    for (size_t j = 0; j < d; j++) {
      size_t off = xd_model_input_offset(m, j);
      if (F[j].kind == XD_FEAT_NUMERIC)
        Eb[off] = (0 - xd_model_pre_mean(m, j)) / xd_model_pre_scale(m, j);
      else
        Eb[off] = 1; /* raw code 0: the first category */
    }
    return;
  }
  for (size_t j = 0; j < d; j++) {
    size_t off = xd_model_input_offset(m, j), wdt = xd_model_input_width(m, j);
    if (F[j].kind == XD_FEAT_NUMERIC) {
      Eb[off] = (st->f[j].mean - xd_model_pre_mean(m, j)) / xd_model_pre_scale(m, j);
    } else {
      for (size_t c = 0; c < wdt; c++) Eb[off + c] = st->f[j].cat_freq ? st->f[j].cat_freq[c] : 0;
    }
  }
}

/* ---- per-feature reduction ----------------------------------------------------------- */

typedef enum fold { FOLD_RAW_GRAD, FOLD_ABS_GRAD, FOLD_INPUT_X_GRAD, FOLD_SUM } fold_t;

/* Layout of raw feature j in the encoded row, cached once per call. */
typedef struct feat_map {
  size_t off, width;
  double scale; /* numeric: preprocess scale; categorical: 1 */
  int categorical;
} feat_map_t;

/* g (n_inputs) encoded values -> out (d) per raw feature; x is the raw row (for
 * input × gradient). FOLD_SUM adds encoded values as they are (IG attributions). */
static void fold_row(const feat_map_t *fm, size_t d, const double *g, const double *x, fold_t how, double *out) {
  for (size_t j = 0; j < d; j++) {
    const feat_map_t *f = &fm[j];
    if (!f->categorical) {
      double v = g[f->off];
      switch (how) {
      case FOLD_RAW_GRAD: out[j] = v / f->scale; break;
      case FOLD_ABS_GRAD: out[j] = fabs(v / f->scale); break;
      case FOLD_INPUT_X_GRAD: out[j] = x[j] * (v / f->scale); break;
      case FOLD_SUM: out[j] = v; break;
      }
      continue;
    }
    double s = 0;
    if (how == FOLD_INPUT_X_GRAD) { /* one-hot input (1 at the code) times its gradient */
      double c = x[j];
      s = (c >= 0 && c < (double)f->width && c == floor(c)) ? g[f->off + (size_t)c] : 0;
    } else if (how == FOLD_ABS_GRAD) {
      for (size_t c = 0; c < f->width; c++) s += fabs(g[f->off + c]);
    } else {
      for (size_t c = 0; c < f->width; c++) s += g[f->off + c];
    }
    out[j] = s;
  }
}

/* ---- the driver ------------------------------------------------------------------------ */

int xd_grad_explain(const xd_model_t *m, const xd_grad_opts_t *o, const double *X, size_t n, const size_t *target,
                    const double *Eb, size_t row0, double *attr, double *delta, const xd_cancel_t *cancel,
                    xd_error_t *err) {
  size_t d = xd_model_n_features(m), p = xd_model_n_inputs(m), K = xd_model_n_outputs(m);
  int ig = o->method == XD_GRAD_INTEGRATED;
  int sg = o->method == XD_GRAD_SMOOTHGRAD || o->method == XD_GRAD_SMOOTHGRAD_SQ || o->method == XD_GRAD_VARGRAD;
  int rc = XD_OK;
  if (!xd_model_has_gradient(m))
    return xd_error_set(err, XD_EUNSUPPORTED, "model", "this model family has no input gradient");
  for (size_t i = 0; i < n; i++)
    if (target[i] >= K) return xd_error_set(err, XD_EINVAL, "target", "target %zu out of range", target[i]);
  if (ig && (!Eb || o->steps < 1))
    return xd_error_set(err, XD_EINVAL, "baseline", "integrated gradients need a baseline and steps >= 1");
  if (sg && (o->samples < 1 || !(o->noise_stddev >= 0) || !isfinite(o->noise_stddev)))
    return xd_error_set(err, XD_EINVAL, "samples", "SmoothGrad needs samples >= 1 and noise_stddev >= 0");
  if (n == 0) return XD_OK;

  size_t per = xd_grad_rows_per_instance(o);
  size_t steps = ig ? o->steps : 0;
  size_t total = xd_mul_size(n, per);
  size_t chunk = total < XD_GRAD_CHUNK ? total : XD_GRAD_CHUNK;
  feat_map_t *fm = NULL;
  double *Ex = NULL, *E = NULL, *G = NULL, *f = NULL, *acc = NULL, *acc2 = NULL, *fxb = NULL;
  double *alpha = NULL, *wq = NULL, *sd = NULL, *v = NULL;
  size_t *tg = NULL;
  if (total == 0) return xd_error_set(err, XD_ETOOBIG, NULL, "request too large");

  fm = xd_calloc(d, sizeof *fm);
  Ex = xd_malloc(xd_mul_size(n, p) * sizeof *Ex);
  E = xd_malloc(xd_mul_size(chunk, p) * sizeof *E);
  G = xd_malloc(xd_mul_size(chunk, p) * sizeof *G);
  f = xd_malloc(chunk * sizeof *f);
  tg = xd_malloc(chunk * sizeof *tg);
  v = xd_malloc(d * sizeof *v);
  if (!fm || !Ex || !E || !G || !f || !tg || !v) goto nomem;
  if (ig) { /* acc: Σ_k s_k g_k per encoded input; fxb: f(x), f(b) */
    acc = xd_calloc(xd_mul_size(n, p), sizeof *acc);
    fxb = xd_calloc(xd_mul_size(n, 2), sizeof *fxb);
    alpha = xd_malloc(steps * sizeof *alpha);
    wq = xd_malloc(steps * sizeof *wq);
    if (!acc || !fxb || !alpha || !wq) goto nomem;
    if (o->alpha && o->weights) {
      memcpy(alpha, o->alpha, steps * sizeof *alpha);
      memcpy(wq, o->weights, steps * sizeof *wq);
    } else if ((rc = xd_grad_quadrature(o->integration, steps, alpha, wq, err)) != XD_OK) {
      goto done;
    }
  } else if (sg) { /* Welford: acc = running mean, acc2 = M2; attr collects mean of squares */
    acc = xd_calloc(xd_mul_size(n, d), sizeof *acc);
    acc2 = xd_calloc(xd_mul_size(n, d), sizeof *acc2);
    sd = xd_calloc(p, sizeof *sd);
    if (!acc || !acc2 || !sd) goto nomem;
  }

  const xd_feature_t *F = xd_model_features(m);
  const xd_stats_t *st = xd_model_stats(m);
  for (size_t j = 0; j < d; j++) {
    fm[j].off = xd_model_input_offset(m, j);
    fm[j].width = xd_model_input_width(m, j);
    fm[j].categorical = F[j].kind == XD_FEAT_CATEGORICAL;
    fm[j].scale = fm[j].categorical ? 1 : xd_model_pre_scale(m, j);
    if (sg && !fm[j].categorical) { /* encoded noise std = raw std / scale */
      double s = st ? st->f[j].std : xd_model_pre_scale(m, j);
      sd[fm[j].off] = o->noise_stddev * s / fm[j].scale;
    }
  }
  xd_model_encode_d(m, X, n, Ex);
  if (sg) memset(attr, 0, xd_mul_size(n, d) * sizeof *attr);

  xd_rng_t rng;
  size_t rng_row = (size_t)-1;
  for (size_t u0 = 0; u0 < total; u0 += chunk) {
    size_t c = total - u0 < chunk ? total - u0 : chunk;
    if ((rc = xd_cancel_check(cancel)) != XD_OK) {
      xd_error_set(err, rc, NULL, "explanation stopped: %s", xd_strerror(rc));
      goto done;
    }
    /* materialize units u0 .. u0+c-1 */
    for (size_t r = 0; r < c; r++) {
      size_t u = u0 + r, i = u / per, k = u % per;
      const double *ex = Ex + i * p;
      double *e = E + r * p;
      tg[r] = target[i];
      if (ig) {
        if (k < steps) {
          double a = alpha[k];
          for (size_t q = 0; q < p; q++) e[q] = Eb[q] + a * (ex[q] - Eb[q]);
        } else {
          memcpy(e, k == steps ? ex : Eb, p * sizeof *e);
        }
      } else if (sg) {
        if (rng_row != i) {
          xd_rng_seed_stream(&rng, o->seed, (uint64_t)(row0 + i));
          rng_row = i;
        }
        memcpy(e, ex, p * sizeof *e);
        for (size_t j = 0; j < d; j++)
          if (!fm[j].categorical) e[fm[j].off] += sd[fm[j].off] * xd_rng_normal(&rng);
      } else {
        memcpy(e, ex, p * sizeof *e);
      }
    }
    if ((rc = xd_model_gradient(m, E, c, tg, o->output, f, G, NULL, cancel, err)) != XD_OK) goto done;
    /* fold the chunk into the instances' accumulators */
    for (size_t r = 0; r < c; r++) {
      size_t u = u0 + r, i = u / per, k = u % per;
      const double *g = G + r * p;
      if (ig) {
        if (k < steps) {
          double s = wq[k], *a = acc + i * p;
          for (size_t q = 0; q < p; q++) a[q] += s * g[q];
        } else {
          fxb[i * 2 + (k - steps)] = f[r];
        }
      } else if (sg) {
        double *mean = acc + i * d, *m2 = acc2 + i * d, *sq = attr + i * d;
        fold_row(fm, d, g, X + i * d, FOLD_RAW_GRAD, v);
        double cnt = (double)(k + 1);
        for (size_t j = 0; j < d; j++) {
          double dv = v[j] - mean[j];
          mean[j] += dv / cnt;
          m2[j] += dv * (v[j] - mean[j]);
          sq[j] += v[j] * v[j];
        }
      } else {
        fold_t how = o->method == XD_GRAD_SALIENCY ? FOLD_ABS_GRAD
                     : o->method == XD_GRAD_INPUT_X_GRADIENT ? FOLD_INPUT_X_GRAD
                                                             : FOLD_RAW_GRAD;
        fold_row(fm, d, g, X + i * d, how, attr + i * d);
      }
    }
  }

  /* finish */
  if (ig) {
    for (size_t i = 0; i < n; i++) {
      double *a = acc + i * p;
      const double *ex = Ex + i * p;
      for (size_t q = 0; q < p; q++) a[q] *= ex[q] - Eb[q];
      fold_row(fm, d, a, X + i * d, FOLD_SUM, attr + i * d);
      if (delta) {
        double s = 0;
        for (size_t j = 0; j < d; j++) s += attr[i * d + j];
        delta[i] = s - (fxb[i * 2] - fxb[i * 2 + 1]);
      }
    }
  } else if (sg) {
    double S = (double)o->samples;
    for (size_t t = 0; t < n * d; t++) {
      if (o->method == XD_GRAD_SMOOTHGRAD) attr[t] = acc[t];
      else if (o->method == XD_GRAD_SMOOTHGRAD_SQ) attr[t] = attr[t] / S;
      else attr[t] = acc2[t] / S;
    }
  }
  rc = XD_OK;
  goto done;

nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory for %zu gradient rows", total);
done:
  xd_free(fm);
  xd_free(Ex);
  xd_free(E);
  xd_free(G);
  xd_free(f);
  xd_free(tg);
  xd_free(v);
  xd_free(acc);
  xd_free(acc2);
  xd_free(fxb);
  xd_free(alpha);
  xd_free(wq);
  xd_free(sd);
  return rc;
}
