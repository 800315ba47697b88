/* trees.h — tree ensembles (XGBoost boosters, scikit-learn forests and boosting): the
 * model family behind core/model.h, and the tree-specific explanations (TreeSHAP,
 * interaction values, split importances). docs/trees.md describes the algorithms.
 *
 * A decoder (api/bundle_trees.c) fills a plain xd_trees_spec_t; xd_trees_new validates it
 * (child indices, cycles, feature indices, finite numbers; errors name
 * "trees[3].nodes[17]") and builds a flat, immutable ensemble: every node of every tree
 * in one array, children as absolute indices. An ensemble may be used by any number of
 * threads at once.
 *
 * Semantics, one table per decision (trees.c):
 *   routing   a missing value (NaN) follows the node's default direction; a categorical
 *             split sends the categories of its set right and every other one left (the
 *             XGBoost 1.7 convention; or left, flagged per node); a numeric split sends x
 *             left when x < threshold,
 *             with x rounded to float32 first when the ensemble says so (XGBoost and
 *             scikit-learn trees compare float32 inputs; "<=" thresholds are stored as
 *             the next double up, so "<" serves both);
 *   margins   margin[g] = base[g] + scale · Σ over the trees of group g of their leaf
 *             value (a tree with leaf_width > 1 adds its k-th leaf value to margin k);
 *   outputs   the link turns margins into the model's outputs (class probabilities or
 *             the regression value), xd_trees_link_t.
 */
#ifndef XD_TREES_H
#define XD_TREES_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Bounds on what a spec may hold (decoders check them before allocating). */
#define XD_TREES_MAX_TREES 100000
#define XD_TREES_MAX_NODES (1u << 22)       /* per tree */
#define XD_TREES_MAX_TOTAL_NODES (1u << 24) /* per ensemble (about 1.5 GiB built) */
#define XD_TREES_MAX_DEPTH 128
#define XD_TREES_MAX_GROUPS 1024

/* Margins -> outputs. */
typedef enum xd_trees_link {
  XD_TREES_IDENTITY = 0, /* outputs = margins (regression; forest class probabilities) */
  XD_TREES_SIGMOID,      /* binary classifier [1-σ(z), σ(z)]; regression σ(z) (reg:logistic) */
  XD_TREES_SOFTMAX,      /* multiclass probabilities */
  XD_TREES_EXP,          /* regression exp(z) (count:poisson, reg:gamma, reg:tweedie) */
  XD_TREES_HINGE         /* binary classifier: class 1 when z > 0 (binary:hinge) */
} xd_trees_link_t;

extern const char *const xd_trees_link_names[]; /* "identity", "sigmoid", ... */

/* How a numeric split compares. */
typedef enum xd_trees_split {
  XD_TREES_LT_F32 = 0, /* XGBoost: (float)x < (float)t */
  XD_TREES_LE_F32,     /* scikit-learn trees: (float)x <= t (t a double) */
  XD_TREES_LE_F64      /* scikit-learn HistGradientBoosting: x <= t in double */
} xd_trees_split_t;

typedef struct xd_tree_node {
  int32_t feature;      /* split feature, or -1 for a leaf */
  int32_t left, right;  /* children (spec: index in the tree; built: absolute) */
  uint8_t default_left; /* where a missing value goes */
  uint8_t categorical;  /* categorical split: cats[cat_off .. cat_off+cat_len) go right
                           (left when set_left), every other category the other way */
  uint8_t set_left;     /* the category set goes left (scikit-learn); 0: right (XGBoost) */
  uint32_t cat_off, cat_len;
  double threshold; /* numeric split threshold (as the source stores it) */
  double cover;     /* training weight through the node (XGBoost sum_hessian,
                       scikit-learn weighted_n_node_samples) */
  double gain;      /* loss reduction of the split (XGBoost loss_changes), 0 if unknown */
} xd_tree_node_t;

typedef struct xd_tree_spec {
  size_t n_nodes;
  xd_tree_node_t *nodes; /* node 0 is the root */
  double *values;        /* (n_nodes, leaf_width): leaf values (internal nodes ignored) */
  size_t group;          /* margin this tree adds to (leaf_width == 1) */
  uint32_t *cats;        /* category values of the categorical splits */
  size_t n_cats;
} xd_tree_spec_t;

typedef struct xd_trees_spec {
  size_t n_trees;
  xd_tree_spec_t *trees;
  size_t n_groups;   /* margins: classes of a multiclass/forest classifier, else 1 */
  size_t leaf_width; /* 1, or n_groups (a forest classifier's per-class leaf values) */
  double *base;      /* (n_groups) base margins (XGBoost base_score in margin space) */
  double scale;      /* multiplies each margin's sum of leaves (forests: 1/n_trees) */
  xd_trees_link_t link;
  xd_trees_split_t split;
  char source[64]; /* "xgboost:binary:logistic", "sklearn:RandomForestClassifier" */
} xd_trees_spec_t;

void xd_trees_spec_deinit(xd_trees_spec_t *s);

typedef struct xd_trees xd_trees_t;

/* Validates spec for a model with n_features raw features and n_outputs outputs (classes,
 * or 1) and builds the ensemble. Takes the spec's contents on success and on failure (the
 * spec is left zeroed). Errors (XD_EFORMAT) name the node: "trees[3].nodes[17].left".
 * Returns XD_OK with *out owned by the caller (xd_trees_free), XD_EFORMAT or XD_ENOMEM. */
int xd_trees_new(xd_trees_spec_t *spec, size_t n_features, size_t n_outputs, int classification, xd_trees_t **out,
                 xd_error_t *err);
void xd_trees_free(xd_trees_t *t);

/* Metadata. */
size_t xd_trees_n_groups(const xd_trees_t *t);
size_t xd_trees_n_trees(const xd_trees_t *t);
size_t xd_trees_max_depth(const xd_trees_t *t);
xd_trees_link_t xd_trees_link(const xd_trees_t *t);
const char *xd_trees_source(const xd_trees_t *t); /* borrowed */

/* ---- evaluation (trees.c) -------------------------------------------------------------- */

/* Margins of rows X (n, d) raw values (NaN = missing) -> Z (n, n_groups), in double.
 * Walks each tree for a block of rows at a time. Any thread. */
void xd_trees_margins(const xd_trees_t *t, const double *X, size_t n, size_t d, double *Z);

/* Margins Z (n, n_groups) -> outputs (n, n_outputs) through the link. */
void xd_trees_outputs(const xd_trees_t *t, const double *Z, size_t n, double *out);

/* link(z) of margin g for single-margin models (sigmoid: σ(z) of class 1, exp: e^z,
 * identity: z): the "probability" output of interventional TreeSHAP. Returns XD_EINVAL
 * for links where one margin does not determine one output (softmax, hinge). */
int xd_trees_transform(const xd_trees_t *t, double z, double *out);

/* ---- split importances (XGBoost get_score) ----------------------------------------------- */

typedef enum xd_trees_imp {
  XD_TREES_IMP_WEIGHT = 0, /* number of splits on the feature */
  XD_TREES_IMP_GAIN,       /* mean gain of those splits */
  XD_TREES_IMP_TOTAL_GAIN, /* their total gain */
  XD_TREES_IMP_COVER,      /* mean cover of those splits */
  XD_TREES_IMP_TOTAL_COVER /* their total cover */
} xd_trees_imp_t;

/* out (n_features): the importance of every feature (0 for features never split on). */
void xd_trees_importance(const xd_trees_t *t, xd_trees_imp_t type, size_t n_features, double *out);

/* ---- TreeSHAP (treeshap.c) -------------------------------------------------------------- */

/* Path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2) of margin g for one
 * row x (d values): phi (d) and *expected (the base margin plus every tree's cover-weighted
 * mean leaf value), with expected + Σ phi == margin g of x (to rounding). Equals
 * XGBoost's pred_contribs. scratch: xd_treeshap_scratch(t) doubles. */
size_t xd_treeshap_scratch(const xd_trees_t *t);
void xd_treeshap_path(const xd_trees_t *t, const double *x, size_t d, size_t g, double *phi, double *expected,
                      double *scratch);

/* SHAP interaction values of margin g for one row (XGBoost's pred_interactions): Phi
 * (d, d), Phi[i][j] for i != j half the difference of feature j's TreeSHAP value with
 * feature i conditioned on and off; Phi[i][i] = phi_i - Σ_{j≠i} Phi[i][j]. Each row and
 * column sums to phi. phi (d) receives the plain values. scratch as above plus 3d. */
void xd_treeshap_interactions(const xd_trees_t *t, const double *x, size_t d, size_t g, double *Phi, double *phi,
                              double *expected, double *scratch);

/* Interventional TreeSHAP (Lundberg et al. 2020) of margin g for one row against a
 * weighted background B (nb, d), w (nb) summing to 1: exact Shapley values of
 * v(S) = Σ_b w_b · F(x_S, b_S̄), where F is margin g (transform == 0) or its link
 * (transform == 1, xd_trees_transform; per background row, the margin values are rescaled
 * so that they sum to link(f(x)) - link(f(b)), as SHAP's TreeExplainer does). phi (d),
 * *expected = Σ_b w_b F(b). scratch: xd_treeshap_interv_scratch(t, d) doubles.
 * Returns XD_OK, or XD_EINVAL when transform is asked of a link that has none. */
size_t xd_treeshap_interv_scratch(const xd_trees_t *t, size_t d);
int xd_treeshap_interventional(const xd_trees_t *t, const double *x, const double *B, const double *w, size_t nb,
                               size_t d, size_t g, int transform, double *phi, double *expected, double *scratch);

#endif
