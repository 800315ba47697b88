/* lime.h — LIME for tabular data (marcotcr/lime, lime_tabular + lime_base), batched.
 *
 * Explains one prediction of a model by fitting a weighted ridge surrogate on a
 * neighbourhood of the instance, with the semantics of lime.lime_tabular's
 * LimeTabularExplainer where the model's background data is the training data
 * (see docs/algorithms.md §1 and docs/lime.md for the few deliberate differences):
 *   - discretized mode (quartile, decile, entropy bins of core/stats.h): every feature is
 *     resampled bin-wise with the training frequencies, undiscretized by a truncated
 *     normal inside the bin; the surrogate sees 1 = "same bin as the instance";
 *   - continuous mode: N(0,1)·std around the mean (or the instance); the surrogate sees
 *     standardized values;
 *   - categorical features: codes sampled with their training frequencies, seen as
 *     1 = "same category";
 *   - kernel exp(-d²/(2·width²)) on the Euclidean distance to row 0;
 *   - feature selection auto / forward_selection / highest_weights / lasso_path / none;
 *   - ridge (alpha 1, intercept, weighted) solved in double with LAPACK; weighted R².
 *
 * Use: xd_lime_plan_check on the network thread (the option checks alone), then
 * xd_lime_plan_init once per request on a worker (the checks again, and the sampling
 * tables: 0.1-0.3 ms), then xd_lime_explain per instance from any number of threads at
 * once: the plan is read-only, each call allocates its own scratch once and draws its
 * random numbers from xd_rng_seed_stream(seed, instance_index·repeats + repeat), so the
 * answer of one instance never depends on which thread ran it or in which order.
 */
#ifndef XD_LIME_H
#define XD_LIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/model.h"
#include "core/status.h"

typedef enum xd_lime_disc {
  XD_LIME_DISC_QUARTILE = 0, /* the values of xd_discretizer_t, plus NONE */
  XD_LIME_DISC_DECILE = 1,
  XD_LIME_DISC_ENTROPY = 2,
  XD_LIME_DISC_NONE = 3
} xd_lime_disc_t;

typedef enum xd_lime_fs {
  XD_LIME_FS_AUTO = 0,
  XD_LIME_FS_FORWARD_SELECTION = 1,
  XD_LIME_FS_HIGHEST_WEIGHTS = 2,
  XD_LIME_FS_LASSO_PATH = 3,
  XD_LIME_FS_NONE = 4
} xd_lime_fs_t;

/* Names as the API spells them ("quartile", ..., "none"), index = enum value. */
extern const char *const xd_lime_disc_names[];
extern const char *const xd_lime_fs_names[];

#define XD_LIME_MAX_LABELS 64 /* labels explained per instance */

typedef struct xd_lime_options {
  size_t num_samples;    /* >= 1; row 0 of the neighbourhood is the instance */
  size_t num_features;   /* >= 1 */
  size_t n_labels;       /* explicit labels (classification); 0: use top_labels */
  size_t labels[XD_LIME_MAX_LABELS];
  size_t top_labels;     /* >= 1; classification only */
  xd_lime_disc_t discretize;
  double kernel_width;   /* > 0, or 0 for the default 0.75·sqrt(n_features) */
  xd_lime_fs_t feature_selection;
  int sample_around_instance;
  size_t repeats;        /* >= 1 */
  uint64_t seed;
} xd_lime_options_t;

/* lime's defaults: 5000 samples, 10 features, top_labels 1, quartile, auto, 1 repeat. */
void xd_lime_options_default(xd_lime_options_t *o);

/* Per-feature sampling table (internal to lime.c; in the header only so that a plan can
 * live on the caller's stack). */
typedef struct xd_lime_feat xd_lime_feat_t;

typedef struct xd_lime_plan {
  const xd_model_t *model; /* borrowed; must outlive the plan */
  xd_lime_options_t opt;   /* resolved: kernel_width set, n_labels/top_labels checked */
  size_t d, n_outputs;
  int classification;
  size_t n_explain;        /* labels explained per instance */
  xd_lime_feat_t *feat;    /* d, owned */
} xd_lime_plan_t;

/* Checks opt against m (labels in range, top_labels <= classes, entropy bins present,
 * background present) and precomputes the sampling tables (0.1-0.3 ms). Errors are
 * XD_EINVAL naming the request field ("labels[1]", "discretize", ...) or XD_ENOMEM. On
 * failure the plan is deinitialized. Any thread. */
int xd_lime_plan_init(xd_lime_plan_t *p, const xd_model_t *m, const xd_lime_options_t *opt, xd_error_t *err);
void xd_lime_plan_deinit(xd_lime_plan_t *p);

/* The checks of xd_lime_plan_init alone (same errors), without building the tables
 * (which take 0.1-0.3 ms): for decoders on the network thread, which then build the
 * plan on a worker. Allocates nothing. */
int xd_lime_plan_check(const xd_model_t *m, const xd_lime_options_t *opt, xd_error_t *err);

/* One label's explanation. With repeats > 1 every number is the mean over the runs and
 * weights lists every feature any run selected (0 in runs that did not select it), so
 * local_pred == intercept + Σ weight·z0 still holds. */
typedef struct xd_lime_label_exp {
  size_t label;           /* output index */
  double intercept, score, local_pred;
  double intercept_std, score_std, local_pred_std; /* population std over runs */
  size_t n_weights;
  size_t *feature;        /* n_weights feature indices, by decreasing |weight| */
  double *weight;         /* n_weights */
  double *std;            /* n_weights: population std over runs (0 for 1 run) */
  size_t *selected;       /* n_weights: runs that selected the feature */
} xd_lime_label_exp_t;

typedef struct xd_lime_result {
  size_t d, n_outputs, n_labels, repeats;
  double *prediction;     /* n_outputs: the model's output at the instance */
  double *z0;             /* d: the instance in the surrogate's representation */
  size_t *bin;            /* d: the instance's bin (discretized numeric) or code (categorical) */
  xd_lime_label_exp_t *labels; /* n_labels, in the order explained */
  /* Every run's raw fit (tests and diagnostics): runs_weight[(r·n_labels + l)·d + j]
   * is feature j's coefficient in run r for label l (0 when not selected); the same
   * layout without ·d for intercept, score and local_pred. */
  double *runs_weight, *runs_intercept, *runs_score, *runs_local_pred;
} xd_lime_result_t;

/* Explains instance x (n_features raw values, validated) as number instance_index of the
 * request. Fills res (caller storage; release with xd_lime_result_deinit, also after a
 * failure). Thread-safe on a shared plan. Returns XD_OK, XD_ENOMEM, XD_EINTERNAL or a
 * cancel status (checked between phases and repeats). */
int xd_lime_explain(const xd_lime_plan_t *p, const double *x, size_t instance_index, xd_lime_result_t *res,
                    const xd_cancel_t *cancel, xd_error_t *err);
void xd_lime_result_deinit(xd_lime_result_t *res);

/* Draws the neighbourhood that xd_lime_explain draws for random stream `stream`
 * (instance_index·repeats + repeat): inv (n,d) the raw rows given to the model, Z (n,d)
 * the surrogate's representation, dist (n), w (n) the kernel weights, z0 (d) the
 * instance's representation. Row 0 is the instance. For tests and diagnostics. Returns
 * XD_OK or XD_ENOMEM. */
int xd_lime_neighbourhood(const xd_lime_plan_t *p, const double *x, uint64_t stream, double *inv, double *Z,
                          double *dist, double *w, double *z0);

/* lime's feature text for feature j of instance x: "name <= 1.23", "1.23 < name <= 4.56",
 * "name > 4.56" (two decimals) for a discretized numeric feature, "name=value" for a
 * categorical one, the bare name otherwise. Writes at most size bytes (NUL included). */
void xd_lime_condition(const xd_lime_plan_t *p, size_t j, const double *x, char *buf, size_t size);

/* ---- test hook: the surrogate on an injected neighbourhood ---------------------------- */

/* The result of one surrogate fit: coef is dense (d, 0 for unused features); used lists
 * the selected features by decreasing |coef| (n_used of them). Caller-allocated arrays. */
typedef struct xd_lime_fit_out {
  double intercept, score, local_pred;
  size_t n_used;
  size_t *used; /* d */
  double *coef; /* d */
} xd_lime_fit_out_t;

/* LimeBase.explain_instance_with_data on an injected neighbourhood: Z (n,d) the scaled
 * data the surrogate sees (row 0 = the instance), y (n) the model output explained,
 * dist (n) the distances, kernel_width > 0. Feature selection fs with num_features,
 * then the alpha-1 weighted ridge. Uses exactly the code path of xd_lime_explain: the
 * exact bit-count Gram when Z is 0/1 with row 0 all ones and d <= 64 (the discretized
 * representation), the dgemm Gram otherwise. Returns XD_OK, XD_EINVAL, XD_ENOMEM or
 * XD_EINTERNAL (LAPACK failure). */
int xd_lime_fit_neighbourhood(size_t n, size_t d, const double *Z, const double *y, const double *dist,
                              double kernel_width, xd_lime_fs_t fs, size_t num_features, xd_lime_fit_out_t *out,
                              xd_error_t *err);

#endif
