/* model.h — a trained model in memory: features, encoding, a network family, background.
 *
 * The model is an interface: every family (the dense network; tree ensembles, which
 * read raw values: core/trees.h) maps an input row to outputs, and may offer the gradient
 * of one output with respect to the encoded input (dense only). Everything around the family is shared: raw
 * features -> encoded inputs (numeric: (x-mean)/scale; categorical: one-hot of its code,
 * in feature order), output semantics (classification: probabilities of every class;
 * regression: one value), background data and its statistics.
 *
 * A model is immutable after xd_model_new and may be used by any number of threads at
 * once. Explanation code talks to it only through this header.
 */
#ifndef XD_MODEL_H
#define XD_MODEL_H

#include <stddef.h>

#include "core/dataset.h"
#include "core/dense.h"
#include "core/graph.h"
#include "core/image.h"
#include "core/stats.h"
#include "core/status.h"
#include "core/tokenizer.h"

typedef enum xd_task { XD_TASK_CLASSIFICATION = 0, XD_TASK_REGRESSION = 1 } xd_task_t;

/* What gradients differentiate: the model's final output (probability or regression
 * value) or the last layer's pre-activation (logit). */
typedef enum xd_output_kind { XD_OUTPUT_PROBABILITY = 0, XD_OUTPUT_LOGIT = 1 } xd_output_kind_t;

/* ---- the decoded bundle: a plain description that xd_model_new validates --------- */

typedef struct xd_layer_spec {
  size_t in, out;
  double *weights; /* (out, in) */
  double *bias;    /* (out) */
  xd_act_t act;
} xd_layer_spec_t;

/* What a row is (MODEL_FORMAT "Graph models"). Tabular rows are raw features; an image
 * row is the model input after preprocessing, C*H*W values [C][H][W]; a text row is a
 * token sequence (xd_model_predict_text). */
typedef enum xd_input_kind { XD_INPUT_TABULAR = 0, XD_INPUT_IMAGE = 1, XD_INPUT_TEXT = 2 } xd_input_kind_t;

/* The graph family's part of a spec (kind != XD_INPUT_TABULAR): then features,
 * preprocess and layers stay empty. Everything here is owned by the spec. */
typedef struct xd_graph_spec {
  xd_input_kind_t kind;
  xd_graph_t *graph;
  xd_image_prep_t image;     /* XD_INPUT_IMAGE */
  xd_tokenizer_t *tokenizer; /* XD_INPUT_TEXT */
  size_t max_length;         /* XD_INPUT_TEXT: tokens, special ones included */
  char *embedding;           /* XD_INPUT_TEXT: token-embedding tensor; NULL = found in the graph */
  int output_logits;         /* the bundle's "output": "logits" (else "probabilities") */
  size_t n_background;
  double *background_images; /* (n_background, C*H*W), preprocessed */
  char **background_texts;   /* n_background UTF-8 strings */
} xd_graph_spec_t;

typedef struct xd_model_spec {
  xd_task_t task;
  size_t n_features;
  xd_feature_t *features;
  size_t n_classes;
  char **classes;
  double *pre_mean, *pre_scale; /* n_features each, or NULL (no preprocess) */
  size_t n_layers;
  xd_layer_spec_t *layers;
  xd_dataset_t background; /* n == 0: none */
  /* A tree ensemble instead of layers (core/trees.h; owned, freed with the spec). The
   * trees see raw feature values: no preprocess, no one-hot; NaN is a missing value. */
  struct xd_trees_spec *trees;
  xd_graph_spec_t graph;    /* kind XD_INPUT_TABULAR: not a graph model */
} xd_model_spec_t;

/* Frees everything a spec owns (decoders build specs with xd_malloc). */
void xd_model_spec_deinit(xd_model_spec_t *spec);

/* ---- the model ------------------------------------------------------------------- */

typedef struct xd_model xd_model_t;

/* Validates spec (every shape and number; errors name the exact path, e.g.
 * "layers[1].weights[2]") and builds a model. Takes ownership of the spec's contents on
 * success and on failure (the spec is left zeroed either way). Computes background
 * statistics. Returns XD_OK with *out owned by the caller (xd_model_free), or an error. */
int xd_model_new(xd_model_spec_t *spec, xd_model_t **out, xd_error_t *err);
void xd_model_free(xd_model_t *m);

/* Metadata (borrowed pointers, valid for the model's lifetime). */
xd_task_t xd_model_task(const xd_model_t *m);
const char *xd_model_family(const xd_model_t *m);       /* "dense", "trees" or "graph" */
size_t xd_model_n_features(const xd_model_t *m);        /* raw features */
const xd_feature_t *xd_model_features(const xd_model_t *m);
size_t xd_model_n_inputs(const xd_model_t *m);          /* encoded inputs (trees: the raw features) */
size_t xd_model_n_outputs(const xd_model_t *m);         /* classes, or 1 for regression */
char *const *xd_model_classes(const xd_model_t *m);     /* NULL for regression */
/* First encoded column of feature j and its width (1, or the category count). */
size_t xd_model_input_offset(const xd_model_t *m, size_t j);
size_t xd_model_input_width(const xd_model_t *m, size_t j);
/* Preprocess of feature j (mean 0, scale 1 without one). */
double xd_model_pre_mean(const xd_model_t *m, size_t j);
double xd_model_pre_scale(const xd_model_t *m, size_t j);
/* The background (n == 0 when the bundle has none) and its statistics (NULL then). */
const xd_dataset_t *xd_model_background(const xd_model_t *m);
const xd_stats_t *xd_model_stats(const xd_model_t *m);
/* Dense layers of the network, or NULL for a family that has none (n set to 0). */
const xd_dense_t *xd_model_dense_layers(const xd_model_t *m, size_t *n);
/* 1 when the family can compute input gradients. */
int xd_model_has_gradient(const xd_model_t *m);
/* The tree ensemble of a "trees" model (borrowed), or NULL for other families. Tree
 * models take missing values (NaN) in their rows. */
const struct xd_trees *xd_model_trees(const xd_model_t *m);

/* ---- graph models (images, text) ----------------------------------------------------
 * A graph model has no tabular features (n_features 0). An image model's rows are
 * n_inputs = C*H*W preprocessed values: xd_model_predict and xd_model_gradient take
 * them as both raw and encoded rows. A text model's rows are token sequences:
 * xd_model_predict_text. Getters return borrowed pointers, NULL for other kinds. */
xd_input_kind_t xd_model_input_kind(const xd_model_t *m);
const xd_graph_t *xd_model_graph(const xd_model_t *m);
const xd_image_prep_t *xd_model_image_prep(const xd_model_t *m);
const xd_tokenizer_t *xd_model_tokenizer(const xd_model_t *m);
size_t xd_model_max_length(const xd_model_t *m);
/* The token-embedding tensor text attributions differentiate at (bundle or graph), or NULL. */
const char *xd_model_embedding(const xd_model_t *m);
/* Bytes of working memory one graph run of m may use (every predict and gradient of a
 * graph model; 0: XD_GRAPH_DEFAULT_WORK_MEMORY). A batch is run in chunks that fit; a
 * request whose one row does not fit fails with XD_ETOOBIG, field "max_work_memory".
 * Set once, before the model is shared (the registry's loader applies the server's
 * --max-work-memory); no effect on other families. */
void xd_model_set_max_work_memory(xd_model_t *m, size_t bytes);

/* The cost of one row of m in "dense rows", the unit of the work estimates
 * (xd_work_t.cost_rows: inline or pool, admission): 1 for the dense family; for trees
 * ceil(trees x depth / XD_MODEL_TREE_VISITS_PER_ROW); for graphs ceil(FLOPs of a row /
 * XD_MODEL_DENSE_ROW_FLOPS). Always >= 1. docs/routing.md has the measurements. */
#define XD_MODEL_DENSE_ROW_FLOPS 8192.0   /* the largest demo MLP (30-64-32-2): ~150 ns a row */
#define XD_MODEL_TREE_VISITS_PER_ROW 10.0 /* a node visit is ~1/10 of a dense row */
uint64_t xd_model_row_cost(const xd_model_t *m);
/* The tensor the output stage reads (the logits before a final softmax or sigmoid, or
 * the graph's output), its activation and its width (n, width). */
const char *xd_model_output_tensor(const xd_model_t *m, xd_act_t *act, size_t *width);
/* Background of a graph model: preprocessed images (n, n_inputs) or texts. */
const double *xd_model_background_images(const xd_model_t *m, size_t *n);
char *const *xd_model_background_texts(const xd_model_t *m, size_t *n);

/* ---- evaluation -------------------------------------------------------------------- */

/* Rows per cancellation check: between two checks the model evaluates at most this many
 * rows (internally in smaller cache-sized blocks), so scratch memory stays bounded and a
 * cancelled or expired job stops within one such batch. */
#define XD_MODEL_BATCH 8192

/* Raw rows X (n, n_features) -> encoded rows E (n, n_inputs). Categorical codes must be
 * valid (callers validate input); an invalid code encodes as all zeros. */
void xd_model_encode_f(const xd_model_t *m, const double *X, size_t n, float *E);
void xd_model_encode_d(const xd_model_t *m, const double *X, size_t n, double *E);

/* Raw rows X (n, n_features) -> outputs (n, n_outputs): class probabilities or the
 * regression value, computed in float GEMMs with the output stage in double, in
 * cache-sized blocks. Checks cancel between blocks (so at least every XD_MODEL_BATCH
 * rows). Allocates its scratch once per call. Returns XD_OK, XD_ENOMEM, XD_ECANCELED or
 * XD_ETIMEDOUT. */
int xd_model_predict(const xd_model_t *m, const double *X, size_t n, double *out, const xd_cancel_t *cancel,
                     xd_error_t *err);

/* As xd_model_predict for an image model, on rows already in float (n, n_inputs), as
 * the graph runs them: the same outputs as xd_model_predict on the doubles these floats
 * round, without the double rows and their copy (occlusion and LIME build many rows per
 * instance). XD_EUNSUPPORTED for other models. */
int xd_model_predict_image_f32(const xd_model_t *m, const float *E, size_t n, double *out, const xd_cancel_t *cancel,
                               xd_error_t *err);

/* Encoded rows E (n, n_inputs), double precision end to end:
 *   f[i]      = output target[i] of row i (probability/value, or logit), and
 *   G[i, :]   = d f[i] / d E[i, :]   (n, n_inputs).
 * target may be NULL (all 0). out_all (n, n_outputs) receives every output when
 * non-NULL. Output-layer derivatives are formed from the logits in double (1-p as the
 * sum of the other classes), so saturated rows keep their digits.
 * For a single sigmoid unit, class 1's logit is z and class 0's is -z.
 * Returns XD_OK, XD_EUNSUPPORTED (no gradient), XD_ENOMEM or a cancel status. */
int xd_model_gradient(const xd_model_t *m, const double *E, size_t n, const size_t *target, xd_output_kind_t kind,
                      double *f, double *G, double *out_all, const xd_cancel_t *cancel, xd_error_t *err);
/* As xd_model_gradient, with a graph model's forward and backward pass in precision
 * (XD_DT_F32: float GEMMs, or XD_DT_F64); the output stage (softmax and its derivative
 * from the logits), f, G and out_all stay double. Other families compute in double
 * whatever precision says. xd_model_gradient is this with XD_DT_F64. */
int xd_model_gradient_prec(const xd_model_t *m, xd_dtype_t precision, const double *E, size_t n, const size_t *target,
                           xd_output_kind_t kind, double *f, double *G, double *out_all, const xd_cancel_t *cancel,
                           xd_error_t *err);

/* Image model, Grad-CAM: rows E (n, n_inputs) in double -> A (n, row) the values of the
 * tensor `layer` (a name of xd_graph_nodes) and dA (n, row) = d f[i] / d A[i,:], with f
 * as xd_model_gradient (f may be NULL), computed in precision as xd_model_gradient_prec. xd_model_layer_shape gives the layer's shape after
 * the batch dimension (*rank <= 3 entries in dims). Returns XD_OK, XD_ENOTFOUND (field
 * "layer"), XD_EUNSUPPORTED (not an image model), XD_ETOOBIG, XD_ENOMEM or a cancel status. */
int xd_model_layer_gradient(const xd_model_t *m, xd_dtype_t precision, const double *E, size_t n,
                            const size_t *target, xd_output_kind_t kind, const char *layer, double *A, double *dA,
                            double *f, const xd_cancel_t *cancel, xd_error_t *err);
int xd_model_layer_shape(const xd_model_t *m, const char *layer, size_t *rank, int64_t dims[3], xd_error_t *err);

/* Text model: n tokenized rows (xd_tokenizer_encode with xd_model_max_length; at least
 * one token each) -> out (n, n_outputs) as xd_model_predict. Rows are batched by length:
 * right-padded with the pad token (mask 0) when the graph takes an attention_mask,
 * otherwise only rows of equal length share a batch. Returns XD_OK, XD_EINVAL (an empty
 * row, field "rows[i]"), XD_EUNSUPPORTED (not a text model), XD_ETOOBIG, XD_ENOMEM or a
 * cancel status. */
int xd_model_predict_text(const xd_model_t *m, const xd_tok_encoding_t *rows, size_t n, double *out,
                          const xd_cancel_t *cancel, xd_error_t *err);

/* Predicted class of a row of outputs (argmax; first on ties), or 0 for regression. */
size_t xd_model_argmax(const xd_model_t *m, const double *outputs_row);

#endif
