/* model_graph.h — the graph family behind core/model.h (internal to core/: model.c is
 * its only caller). It checks a graph against its bundle's input kind, decides the
 * output stage, and runs image rows and token batches through the engine (core/graph.h).
 * The output stage itself (softmax/sigmoid in double from the logits) stays model.c's,
 * shared with the dense family.
 *
 * Immutable after xd_gmodel_new; any thread. */
#ifndef XD_MODEL_GRAPH_H
#define XD_MODEL_GRAPH_H

#include "core/model.h"

typedef struct xd_gmodel xd_gmodel_t;

/* What xd_gmodel_new decided. */
typedef struct xd_gmodel_out {
  size_t n_inputs; /* image: C*H*W; text: 0 */
  xd_act_t act;    /* output stage: softmax, sigmoid or identity */
  size_t width;    /* columns of the tensor the stage reads */
} xd_gmodel_out_t;

/* Validates gs against the task and classes (errors name bundle paths: "input",
 * "input.channels", "output", "onnx") and takes ownership of gs's contents on success
 * and on failure (gs zeroed either way). */
int xd_gmodel_new(xd_graph_spec_t *gs, xd_task_t task, size_t n_classes, xd_gmodel_t **out, xd_gmodel_out_t *info,
                  xd_error_t *err);
void xd_gmodel_free(xd_gmodel_t *gm);
/* Bytes of working memory each graph run of gm may use (xd_graph_run_t.max_work_memory;
 * 0: XD_GRAPH_DEFAULT_WORK_MEMORY). Set before the model is shared between threads. */
void xd_gmodel_set_max_work_memory(xd_gmodel_t *gm, size_t bytes);
/* Floating-point operations of one row (a text at the model's longest length), from the
 * planned shapes (xd_graph_flops_per_row); 0 when the graph cannot be planned. */
double xd_gmodel_flops_per_row(const xd_gmodel_t *gm);
void xd_graph_spec_deinit(xd_graph_spec_t *gs);

xd_input_kind_t xd_gmodel_kind(const xd_gmodel_t *gm);
const xd_graph_t *xd_gmodel_graph(const xd_gmodel_t *gm);
const xd_image_prep_t *xd_gmodel_image_prep(const xd_gmodel_t *gm);
const xd_tokenizer_t *xd_gmodel_tokenizer(const xd_gmodel_t *gm);
size_t xd_gmodel_max_length(const xd_gmodel_t *gm);
const char *xd_gmodel_embedding(const xd_gmodel_t *gm);
const char *xd_gmodel_output_tensor(const xd_gmodel_t *gm);
const double *xd_gmodel_background_images(const xd_gmodel_t *gm, size_t *n);
char *const *xd_gmodel_background_texts(const xd_gmodel_t *gm, size_t *n);

/* Image rows E (n, C*H*W) float -> z (n, width) of the output tensor, in float. */
int xd_gmodel_forward_image(const xd_gmodel_t *gm, const float *E, size_t n, double *z, const xd_cancel_t *cancel,
                            xd_error_t *err);

/* Image rows E (n, C*H*W) double -> G (n, C*H*W) = d(Σ_j seed[i,j] z[i,j]) / dE[i,:],
 * the forward and backward in precision (XD_DT_F32 or XD_DT_F64), z, the seed and G in
 * double, where seed_fn writes the seed of rows [row0, row0+c) from their z (the
 * engine's seed callback, core/graph.h). */
int xd_gmodel_gradient_image(const xd_gmodel_t *gm, xd_dtype_t precision, const double *E, size_t n,
                             int (*seed_fn)(void *ctx, size_t row0, size_t c, const double *z, double *seed), void *ctx,
                             double *G, const xd_cancel_t *cancel, xd_error_t *err);

/* Image rows E (n, C*H*W) double -> the values A (n, row) of tensor `layer` and dA (n,
 * row) = d(Σ_j seed[i,j] z[i,j]) / dA[i,:] (Grad-CAM). *row (may be NULL) receives the
 * layer's row size and dims its shape after the batch (rank-1 entries, up to 3; *rank). */
int xd_gmodel_layer_image(const xd_gmodel_t *gm, xd_dtype_t precision, const double *E, size_t n, const char *layer,
                          int (*seed_fn)(void *ctx, size_t row0, size_t c, const double *z, double *seed), void *ctx,
                          double *A, double *dA, const xd_cancel_t *cancel, xd_error_t *err);
int xd_gmodel_layer_shape(const xd_gmodel_t *gm, const char *layer, size_t *rank, int64_t *dims, xd_error_t *err);

/* Token rows -> z (n, width), batched as xd_model_predict_text says. */
int xd_gmodel_forward_tokens(const xd_gmodel_t *gm, const xd_tok_encoding_t *rows, size_t n, double *z,
                             const xd_cancel_t *cancel, xd_error_t *err);

#endif
