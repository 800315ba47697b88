/* gradient.h — gradient attributions: saliency, gradient, input × gradient, integrated
 * gradients and the SmoothGrad family (Captum's Saliency, InputXGradient,
 * IntegratedGradients, NoiseTunnel; see docs/algorithms.md §2).
 *
 * Work happens in the encoded space the network sees (xd_model_encode_d): every IG step
 * and every noisy copy of every row becomes one row of a batched, double-precision
 * forward + backward (xd_model_gradient), chunked to XD_GRAD_CHUNK rows so memory stays
 * bounded whatever the request. Attributions are reported per raw feature:
 *   - numeric feature j: the gradient w.r.t. the raw value is the encoded gradient
 *     divided by the preprocess scale; IG is the same number in both spaces, since
 *     (g/scale)·(x-b) = g·(e_x-e_b);
 *   - categorical feature: the sum over its one-hot inputs (saliency: the sum of their
 *     absolute values; input × gradient: the gradient of the active one-hot input).
 * The SmoothGrad family wraps the signed gradient (Captum NoiseTunnel over
 * Saliency(abs=False)) and aggregates the per-feature values; noise is added to numeric
 * features only (a category code has no neighbourhood), with standard deviation
 * noise_stddev × that feature's background std, in raw units.
 *
 * Everything here is pure computation on caller memory plus one scratch allocation per
 * call; any thread may call it with its own outputs.
 */
#ifndef XD_GRADIENT_H
#define XD_GRADIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/model.h"
#include "core/status.h"

/* Rows per batched xd_model_gradient call. */
#define XD_GRAD_CHUNK 8192

typedef enum xd_grad_method {
  XD_GRAD_SALIENCY = 0,  /* |df/dx| */
  XD_GRAD_GRADIENT,      /* df/dx, signed */
  XD_GRAD_INPUT_X_GRADIENT,
  XD_GRAD_INTEGRATED,    /* integrated gradients */
  XD_GRAD_SMOOTHGRAD,    /* mean of noisy gradients */
  XD_GRAD_SMOOTHGRAD_SQ, /* mean of squared noisy gradients */
  XD_GRAD_VARGRAD        /* population variance of noisy gradients */
} xd_grad_method_t;

typedef enum xd_grad_integration {
  XD_GRAD_GAUSSLEGENDRE = 0,
  XD_GRAD_RIEMANN_LEFT,
  XD_GRAD_RIEMANN_RIGHT,
  XD_GRAD_RIEMANN_MIDDLE,
  XD_GRAD_RIEMANN_TRAPEZOID
} xd_grad_integration_t;

/* Names as the API spells them (NULL-terminated, indexed by the enums). */
extern const char *const xd_grad_method_names[];
extern const char *const xd_grad_integration_names[];

typedef struct xd_grad_opts {
  xd_grad_method_t method;
  xd_output_kind_t output;           /* probability (final output) or logit */
  size_t steps;                      /* IG: quadrature points, >= 1 (riemann_left/trapezoid: >= 2) */
  xd_grad_integration_t integration; /* IG */
  size_t samples;                    /* SmoothGrad family: noisy copies per row, >= 1 */
  double noise_stddev;               /* SmoothGrad family: fraction of each feature's std, >= 0 */
  uint64_t seed;                     /* SmoothGrad family: row i draws from stream row0 + i */
  /* IG: xd_grad_quadrature(integration, steps) computed once by the caller (a request
   * split into many parts), or NULL to compute it per call. Borrowed. */
  const double *alpha, *weights;
  /* Graph models (images): the type of the batched forward and backward pass, XD_DT_F32
   * (the zero value, float GEMMs) or XD_DT_F64; the output stage, the seed and the
   * attributions are double either way. Other families compute in double. */
  xd_dtype_t precision;
} xd_grad_opts_t;

/* Quadrature on [0,1] with n points: nodes alpha (n, ascending) and weights w (n) that
 * sum to 1. Gauss–Legendre nodes come from Newton's method on P_n (any n >= 1, accurate
 * to a few ulps), the Riemann rules are Captum's grids, and the trapezoid is the true
 * one (weights 1/(n-1), halved at both ends; Captum's (n-1)/n quirk is not reproduced).
 * Returns XD_OK, or XD_EINVAL when n is too small for the rule. */
int xd_grad_quadrature(xd_grad_integration_t rule, size_t n, double *alpha, double *w, xd_error_t *err);

/* Model rows evaluated per explained row (for cost estimates and chunking): 1 for the
 * plain gradient methods, steps + 2 for IG (the path plus x and the baseline for the
 * convergence delta), samples for the SmoothGrad family. */
size_t xd_grad_rows_per_instance(const xd_grad_opts_t *o);

/* The "mean" baseline in the encoded space: numeric inputs at their background mean,
 * a categorical feature's one-hot inputs at its category frequencies. Without a
 * background, zeros in raw units (encoded). Eb has n_inputs entries. */
void xd_grad_baseline_mean(const xd_model_t *m, double *Eb);

/* Explains n raw rows X (n, n_features) of model m.
 *   target  (n): output explained for each row (< n_outputs).
 *   Eb      (n_inputs): IG baseline in the encoded space (see xd_grad_baseline_mean or
 *           xd_model_encode_d of a raw row); required for IG, ignored (may be NULL) by
 *           the other methods.
 *   row0:   index of X's first row in the request, so row i draws its noise from
 *           xd_rng_seed_stream(seed, row0 + i) and answers do not depend on how rows
 *           were split into parts.
 *   attr    (n, n_features): attributions per raw feature.
 *   delta   (n) or NULL: IG convergence delta, sum(attr) - (f(x) - f(b)), with f(x)
 *           and f(b) from the same double-precision pass.
 * Returns XD_OK, XD_EINVAL (bad option or target), XD_EUNSUPPORTED (the model has no
 * gradient), XD_ENOMEM, or a cancel status. */
int xd_grad_explain(const xd_model_t *m, const xd_grad_opts_t *o, const double *X, size_t n, const size_t *target,
                    const double *Eb, size_t row0, double *attr, double *delta, const xd_cancel_t *cancel,
                    xd_error_t *err);

#endif
