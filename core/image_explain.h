/* image_explain.h — attributions for image models: the gradient family (saliency,
 * gradient, input × gradient, integrated gradients, SmoothGrad / SmoothGrad² / VarGrad),
 * Grad-CAM, occlusion, and the IG / occlusion baselines (docs/image_explanations.md).
 *
 * Rows are model-input rows x (P = C*H*W values, [C][H][W], after the bundle's
 * preprocessing): attributions are about them, element by element, as Captum's are
 * about the tensor it is given. Every IG step, noisy copy and occluded window of every
 * instance becomes one row of a batched call (xd_model_gradient, xd_model_predict),
 * chunked to at most XD_IMGX_CHUNK_VALUES model-input values so memory stays bounded; the
 * graph engine splits each call further to its work-memory limit.
 *
 * Pure computation on caller memory plus scratch per call; any thread.
 */
#ifndef XD_IMAGE_EXPLAIN_H
#define XD_IMAGE_EXPLAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/gradient.h"
#include "core/model.h"
#include "core/status.h"

/* Model-input values per batched call (rows = this / P). */
#define XD_IMGX_CHUNK_VALUES ((size_t)1 << 21)

/* Baselines in model-input space (docs/image_explanations.md). */
typedef enum xd_imgx_baseline {
  XD_IMGX_BLACK = 0, /* pixel 0 -> (0 - mean[c]) / std[c] */
  XD_IMGX_WHITE,     /* pixel 1/scale -> (1 - mean[c]) / std[c] */
  XD_IMGX_BLUR,      /* the instance blurred by a Gaussian of sigma pixels */
  XD_IMGX_MEAN,      /* the background mean image (black without a background) */
  XD_IMGX_ZERO,      /* 0 in model-input space */
  XD_IMGX_ROW        /* a given row */
} xd_imgx_baseline_t;

/* Baseline b (P) for the instance x (P). sigma for XD_IMGX_BLUR (> 0); row for
 * XD_IMGX_ROW; sigma <= 16 (the kernel radius is capped at 64). Returns XD_OK or
 * XD_ENOMEM. The blur is scipy.ndimage.gaussian_filter per channel (truncate 4,
 * mode "reflect"), which commutes with the per-channel affine preprocessing. */
int xd_imgx_baseline(const xd_model_t *m, xd_imgx_baseline_t kind, const double *x, double sigma,
                     const double *row, double *b, xd_error_t *err);

/* The gradient family on n rows X (n, P): o as for tabular rows (core/gradient.h) except
 * that noise_stddev is a fraction of each instance's value range (max - min). B (n, P):
 * IG baselines per row (ignored otherwise). attr (n, P); delta (n) or NULL: IG
 * convergence delta. row0: X's first row in the request (noise streams). Each instance's
 * rows run apart from every other instance's, so an instance's answer depends on it and
 * o only (not on the other rows of X), bit for bit. */
int xd_imgx_gradient(const xd_model_t *m, const xd_grad_opts_t *o, const double *X, size_t n, const size_t *target,
                     const double *B, size_t row0, double *attr, double *delta, const xd_cancel_t *cancel,
                     xd_error_t *err);

/* One instance's gradient rows [k0, k1) of xd_grad_rows_per_instance(o) (IG: the steps,
 * then x, then b; SmoothGrad family: the noisy copies in stream order), for a request
 * split into sub-parts that run on several workers. Adds to sum (P) Σ w_k g_k (IG) or
 * Σ g_k, to sum2 (P, SmoothGrad family only) Σ g_k²; fxb[0] = f_t(x), fxb[1] = f_t(b)
 * when their IG rows are in range. row: the instance's noise stream (as row0 + i).
 * IG needs o->alpha and o->weights. */
int xd_imgx_gradient_range(const xd_model_t *m, const xd_grad_opts_t *o, const double *x, size_t target, const double *b,
                           size_t row, size_t k0, size_t k1, double *sum, double *sum2, double *fxb,
                           const xd_cancel_t *cancel, xd_error_t *err);
/* attr (P) from the sums of every range added in range order (sum, sum2, fxb as above):
 * IG: sum · (x − b) and delta = Σ attr − (f(x) − f(b)); SmoothGrad family: the mean, the
 * mean square or the variance. attr may be sum. */
void xd_imgx_gradient_finish(const xd_grad_opts_t *o, size_t P, const double *x, const double *b, const double *sum,
                             const double *sum2, const double *fxb, double *attr, double *delta);

/* Grad-CAM at `layer` (shape [K][h][w] after the batch, from xd_model_layer_shape):
 * cam (n, h*w) = Σ_k mean_hw(dA_k) · A_k, ReLU when relu; heat (n, H*W) = cam resized
 * bilinearly (align_corners = false). The graph runs in precision (xd_grad_opts_t). */
int xd_imgx_gradcam(const xd_model_t *m, const char *layer, size_t K, size_t h, size_t w, int relu,
                    xd_output_kind_t output, xd_dtype_t precision, const double *X, size_t n, const size_t *target,
                    double *cam, double *heat, const xd_cancel_t *cancel, xd_error_t *err);

/* Windows of occlusion over a row of dims[0..rank) (rank 1 for tabular/text, 3 for
 * images): positions per dim floor((dims-window)/stride)+1. */
typedef struct xd_occl_plan {
  size_t rank;
  size_t dims[3], window[3], stride[3], count[3];
  size_t n_windows;
} xd_occl_plan_t;

/* Checks and fills a plan (field names "window" / "strides"): 1 <= window <= dims,
 * stride >= 1. */
int xd_occl_plan(xd_occl_plan_t *p, size_t rank, const size_t *dims, const size_t *window, const size_t *stride,
                 xd_error_t *err);

/* Captum's Occlusion on n rows X (n, d) of a model taking rows of d values
 * (xd_model_predict's rows: raw tabular features, or image model inputs): B (n, d) the
 * baseline per row; attr (n, d) = Σ over the windows covering an element of
 * (f_t(x) - f_t(occluded)) / the number of covering windows (0 where none). f_t is the
 * model's output t (probability or value), in double. */
int xd_imgx_occlusion(const xd_model_t *m, const xd_occl_plan_t *p, const double *X, size_t n,
                      const size_t *target, const double *B, double *attr, const xd_cancel_t *cancel,
                      xd_error_t *err);

/* One instance's occlusion rows [k0, k1) of n_windows + 1 (row 0: x itself; row 1 + w:
 * x with window w at the baseline b) evaluated: f[k - k0] = f_t(row k). For a request
 * split into sub-parts; xd_imgx_occlusion_combine turns every row's f into attr. */
int xd_imgx_occlusion_eval(const xd_model_t *m, const xd_occl_plan_t *p, const double *x, size_t target,
                           const double *b, size_t k0, size_t k1, double *f, const xd_cancel_t *cancel,
                           xd_error_t *err);
/* attr (d) of one instance from f (n_windows + 1) as xd_imgx_occlusion computes it. */
void xd_imgx_occlusion_combine(const xd_occl_plan_t *p, const double *f, double *attr);

#endif
