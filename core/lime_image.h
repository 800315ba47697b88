/* lime_image.h — LIME over superpixels (lime.lime_image.LimeImageExplainer.explain_instance)
 * for image models, with the surrogate of core/lime_fit (xd_lime_fit_neighbourhood).
 *
 * For one instance x (model-input row [C][H][W]) and a segment map (labels 0..S-1):
 *   - the fudged image: each segment filled with its mean per channel (hide_color absent),
 *     or every pixel at hide (model-input values per channel);
 *   - num_samples rows of S Bernoulli(0.5) bits, row 0 all ones; a 0 bit puts the
 *     segment's pixels at the fudged image's values; every row is classified, in batches
 *     of bounded memory (xd_model_predict);
 *   - distance of row r: the cosine distance between its bits and row 0 (1 for all zeros,
 *     as scikit-learn's pairwise cosine distance on a zero row), kernel
 *     sqrt(exp(-d²/width²));
 *   - per explained label, LimeBase's selection and weighted ridge (core/lime_fit.h).
 * With repeats > 1 the numbers are the means over runs drawn from streams
 * instance_index·repeats + r of the seed.
 * Any thread; allocates its own scratch.
 */
#ifndef XD_LIME_IMAGE_H
#define XD_LIME_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/lime.h"
#include "core/model.h"
#include "core/shap.h"

typedef struct xd_lime_image_opts {
  size_t num_samples, num_features, repeats;
  double kernel_width;
  xd_lime_fs_t feature_selection;
  uint64_t seed;
  const double *hide; /* C values in model-input space, or NULL: segment means */
} xd_lime_image_opts_t;

/* One label: weights per segment, dense (S), and the fit's numbers (means over runs). */
typedef struct xd_lime_image_label {
  size_t label;
  double intercept, score, local_pred;
  double *coef; /* S, xd_malloc'd */
} xd_lime_image_label_t;

/* Explains x for n_labels labels (outputs of the model). segments [H][W] with S labels.
 * out (n_labels) filled; release with xd_lime_image_free. pred (n_outputs) receives the
 * model's output at x (may be NULL). Returns XD_OK, XD_EINVAL, XD_ENOMEM, XD_EINTERNAL or
 * a cancel status. */
int xd_lime_image_explain(const xd_model_t *m, const xd_lime_image_opts_t *o, const double *x, const int32_t *segments,
                          size_t S, const size_t *labels, size_t n_labels, size_t instance_index,
                          xd_lime_image_label_t *out, double *pred, const xd_cancel_t *cancel, xd_error_t *err);
void xd_lime_image_free(xd_lime_image_label_t *out, size_t n_labels);

/* The steps of xd_lime_image_explain, for a run split into sub-parts on several workers
 * (one run, n = num_samples rows; Y rows are the model's outputs, K per row):
 *   fudge    the fudged image fz (P); XD_OK or XD_ENOMEM;
 *   sample   Z (n, S) bits and dist (n) of the run drawing from stream `stream` of seed;
 *   eval     Y (r1 - r0, K) = the model on rows [r0, r1) of Z (any split of the rows);
 *   fit      per label, the surrogate over every row, added / runs into out[l] (whose
 *            coef the caller allocated, S each) with out[l].label = labels[l]. */
int xd_lime_image_fudge(const xd_model_t *m, const double *x, const int32_t *seg, size_t S, const double *hide,
                        double *fz);
void xd_lime_image_sample(size_t n, size_t S, uint64_t seed, uint64_t stream, double *Z, double *dist);
int xd_lime_image_eval(const xd_model_t *m, const double *x, const double *fz, const int32_t *seg, size_t S,
                       const double *Z, size_t r0, size_t r1, double *Y, const xd_cancel_t *cancel, xd_error_t *err);
int xd_lime_image_fit(const xd_lime_image_opts_t *o, size_t S, const double *Z, const double *Y, size_t K,
                      const double *dist, const size_t *labels, size_t n_labels, size_t runs,
                      xd_lime_image_label_t *out, xd_error_t *err);

/* Kernel SHAP over the same superpixels (players = segments; a hidden segment takes the
 * fudged image's values, as in LIME): shap's coalitions and efficiency-constrained
 * weighted least squares (core/shap.h, identity link) with v(∅) = f_t(everything
 * hidden) = *expected and v(all) = f_t(x) = *fx, so Σ phi = fx − expected. nsamples 0 =
 * auto (2S + 2048). Coalitions are evaluated in bounded batches. The random stream is
 * instance_index of seed. phi has S entries. Returns XD_OK, XD_EINVAL, XD_ENOMEM or a
 * cancel status. */
int xd_shap_image_explain(const xd_model_t *m, const double *x, const int32_t *segments, size_t S,
                          const double *hide, size_t nsamples, uint64_t seed, size_t instance_index, size_t target,
                          double *phi, double *expected, double *fx, const xd_cancel_t *cancel, xd_error_t *err);

/* The steps of xd_shap_image_explain, for a run split into sub-parts on several workers:
 *   plan   the coalitions (pl, release with xd_shap_plan_deinit) of stream instance_index;
 *   eval   y (r1 - r0) = f_t of rows [r0, r1) of pl->K + 2: row 0 every segment shown,
 *          row 1 every segment hidden (fz), row 2 + k coalition k (any split of the rows);
 *   then   pl->ey = y[2..], xd_shap_plan_solve with fx = y[0], expected = y[1]. */
int xd_shap_image_plan(size_t S, size_t nsamples, uint64_t seed, size_t instance_index, xd_shap_plan_t *pl,
                       xd_error_t *err);
int xd_shap_image_eval(const xd_model_t *m, const double *x, const double *fz, const int32_t *segments, size_t S,
                       const xd_shap_plan_t *pl, size_t target, size_t r0, size_t r1, double *y,
                       const xd_cancel_t *cancel, xd_error_t *err);

#endif
