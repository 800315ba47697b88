/* graph.h — the graph engine: an ONNX graph (CNN, transformer, GRU/LSTM, ...) loaded
 * once and run many times on batches, forward in float or double, and backward (reverse
 * mode, in the same precision; the output stage in double) to any named tensor.
 *
 * A graph holds its tensors (graph inputs, initializers kept in float AND double, node
 * outputs), its nodes in topological order and, per tensor, a static description with
 * symbolic dimensions ("batch", "sequence": ONNX dim_param names). Dimension 0 of the
 * first graph input is always the batch (and of every input where it is symbolic). Every run resolves the symbols from the
 * inputs' shapes, infers every shape (evaluating shape subgraphs such as
 * Shape -> Gather -> Concat -> Reshape on int64 at that time), plans one memory arena in
 * which a tensor's memory is reused once its last reader ran, splits the batch into
 * chunks so that the arena stays under max_work_memory, and evaluates the nodes on the
 * whole chunk at once. See docs/graph.md.
 *
 * Rows. Where this header speaks of "(n, row)", the tensor's dimension 0 is the batch
 * and a row is everything after it, contiguous, row = product of dims 1.. for the
 * inputs given. Tensors whose dimension 0 is not the batch cannot be fetched, overridden
 * or differentiated at (xd_graph_nodes lists the ones that can).
 *
 * Output semantics (softmax accuracy). When the graph's output is computed by a final
 * Softmax over its last axis (or a Sigmoid), xd_graph_final() says so and names the
 * logits (that op's input). A caller that needs probabilities near 0 or 1, or their
 * derivatives, runs the graph to the logits (run.output = logits) in double and forms
 * p = softmax(z) and dp/dz itself from z (as core/model.c's output_deriv does for the
 * dense family: 1 - p_t as the sum of the other classes), then passes that dp/dz as the
 * seed (run.seed_fn sees the logits of each chunk before the backward pass).
 *
 * Ownership and threads: xd_graph_t is immutable after load; any number of threads may
 * call xd_graph_run on one graph at once (each run has its own arena; a thread keeps its
 * largest arena, at most max_work_memory, for its next run and frees it when it exits). Every
 * string and info pointer returned is borrowed and lives as long as the graph.
 */
#ifndef XD_GRAPH_H
#define XD_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"

/* Bounds checked while loading, before anything they size is allocated. */
#define XD_GRAPH_MAX_NODES 20000
#define XD_GRAPH_MAX_TENSORS 65536
#define XD_GRAPH_MAX_ELEMENTS ((int64_t)1 << 31) /* elements in one tensor (any run) */
#define XD_GRAPH_MAX_IO 256                      /* inputs or outputs of one node */
/* Default work memory of one run when the caller gives none (bytes). */
#define XD_GRAPH_DEFAULT_WORK_MEMORY ((size_t)1 << 30)

typedef struct xd_graph xd_graph_t;

/* ---- load ------------------------------------------------------------------------------ */

/* Reads a serialized ONNX ModelProto (default domain, opsets 7..21; torch.onnx.export at
 * 13..17 is what is tested). Returns XD_OK with *out owned by the caller
 * (xd_graph_free), or XD_EFORMAT with err->field "onnx" and a text naming the node and
 * its operator ("nodes[12] (Conv 'conv1'): ..."): unsupported operator, a cycle, a
 * tensor nobody defines, shapes that do not fit, absurd dimensions, or a graph whose
 * rows interact (a Softmax over the batch: rows could not be explained one by one); or
 * XD_ENOMEM. */
int xd_graph_from_onnx(const void *bytes, size_t len, xd_graph_t **out, xd_error_t *err);
void xd_graph_free(xd_graph_t *g); /* NULL: no-op */

/* ---- introspection (GET /models/{name}) --------------------------------------------------- */

typedef struct xd_graph_dim {
  int64_t size;       /* >= 0 when fixed; -1 when symbolic */
  const char *symbol; /* the symbol's name when symbolic ("batch", "sequence"), else NULL */
} xd_graph_dim_t;

typedef struct xd_graph_info {
  const char *name;
  const char *op;   /* operator that computes it ("Conv"), "input" or "initializer" */
  xd_dtype_t dtype; /* XD_DT_F32 stands for "float" (double in a double run) */
  size_t rank;
  xd_graph_dim_t dims[XD_TENSOR_MAX_RANK];
} xd_graph_info_t;

size_t xd_graph_n_inputs(const xd_graph_t *g);
const xd_graph_info_t *xd_graph_input(const xd_graph_t *g, size_t i);
size_t xd_graph_n_outputs(const xd_graph_t *g);
const xd_graph_info_t *xd_graph_output(const xd_graph_t *g, size_t i);
/* Named float tensors computed by nodes whose dimension 0 is the batch: what a request
 * may name as `layer`, in graph order. */
size_t xd_graph_n_nodes(const xd_graph_t *g);
const xd_graph_info_t *xd_graph_node(const xd_graph_t *g, size_t i);
/* Any tensor by name (inputs, initializers, node outputs), or NULL. */
const xd_graph_info_t *xd_graph_find(const xd_graph_t *g, const char *name);

typedef enum xd_graph_final {
  XD_GRAPH_FINAL_NONE = 0,
  XD_GRAPH_FINAL_SOFTMAX = 1, /* output = Softmax(logits) over its last axis */
  XD_GRAPH_FINAL_SIGMOID = 2  /* output = Sigmoid(logits) */
} xd_graph_final_t;
/* How output 0 is computed; *logits (may be NULL) receives the name of the
 * pre-activation tensor, or output 0's own name for XD_GRAPH_FINAL_NONE. */
xd_graph_final_t xd_graph_final(const xd_graph_t *g, const char **logits);

/* The token embedding: the first Gather whose data is a 2-D float initializer [V][d]
 * and whose indices are an int64 graph input. Returns its output's name and sets
 * *matrix (V·d floats, borrowed), *V, *d (each may be NULL), or returns NULL. */
const char *xd_graph_embedding(const xd_graph_t *g, const float **matrix, size_t *V, size_t *d);
/* The last Conv's output, or the output of the activation (Relu, LeakyRelu, Sigmoid,
 * Tanh, Clip) that directly follows it; NULL when the graph has no Conv. */
const char *xd_graph_last_conv(const xd_graph_t *g);

/* Floating-point operations of one row (inputs: shapes of a batch of one; data may be
 * NULL), from the planned shapes: a multiply-add counts two (Conv, MatMul, Gemm, GRU,
 * LSTM), any other node one per output element. An estimate for scheduling (the cost of
 * a row), not a measurement. XD_OK, or an error as xd_graph_shape. */
int xd_graph_flops_per_row(const xd_graph_t *g, const xd_tensor_t *inputs, double *flops, xd_error_t *err);

/* ---- run ----------------------------------------------------------------------------- */

/* What one run computes; caller-owned storage, zero it and fill what is wanted. */
typedef struct xd_graph_run {
  /* One tensor per graph input, in xd_graph_input order. dims[0] is the batch n, equal
   * for the first input and every input whose dimension 0 is symbolic (an input with a
   * fixed dimension 0 other than the first is not batched); the other dims must match the fixed dims and fill the symbols
   * (consistently across inputs). Float inputs may be F32 or F64 whatever the
   * precision; int64 and bool inputs as declared. */
  const xd_tensor_t *inputs;
  /* XD_DT_F32 or XD_DT_F64: the type of the forward and, for a gradient, of the
   * backward pass and its gradient buffers. Whatever it is, seed_fn sees the output in
   * double and writes a double seed (converted to the run's type), and grad is double. */
  xd_dtype_t precision;
  /* The tensor read out, NULL for output 0; its values go to out (n, row) when out is
   * not NULL. */
  const char *output;
  double *out;
  /* Optional: also read out a named tensor's values (n, row) (Grad-CAM's activation). */
  const char *fetch;
  double *fetch_out;
  /* Optional: replace a named tensor's values by override_values (n, row) right after
   * its node runs, so that everything downstream sees them (layer integrated gradients
   * interpolate the embedding output). */
  const char *override;
  const double *override_values;
  /* Optional: grad (n, row of wrt) = d(Σ_j seed[i,j]·output[i,j])
   * / d wrt[i,:] for every row i. wrt is a graph input or any tensor of
   * xd_graph_nodes. The seed (n, row of output) is either given, or written by seed_fn
   * for each chunk of rows [row0, row0+n) after the forward pass, from the output's
   * values outv (n, row) (the logits, to form probability derivatives in double).
   * seed_fn returns XD_OK or an error code that stops the run. */
  const char *wrt;
  double *grad;
  const double *seed;
  int (*seed_fn)(void *ctx, size_t row0, size_t n, const double *outv, double *seed);
  void *seed_ctx;
  /* Bytes of working memory one chunk may use (arena and scratch); 0 for
   * XD_GRAPH_DEFAULT_WORK_MEMORY. The batch is split so that each chunk fits; when one
   * row does not fit, the run fails with XD_ETOOBIG before allocating anything. */
  size_t max_work_memory;
  const xd_cancel_t *cancel; /* checked between chunks and between nodes; may be NULL */
} xd_graph_run_t;

/* Runs r. Returns XD_OK; XD_EINVAL (inputs that do not fit the graph; err->field names
 * "inputs[k]" or the tensor), XD_ENOTFOUND (an unknown tensor name, field "output",
 * "fetch", "override" or "wrt"), XD_EUNSUPPORTED (a gradient through an operator that
 * has none, naming it, or a tensor without a batch dimension 0), XD_ETOOBIG (one row
 * needs more than max_work_memory), XD_ENOMEM, XD_ECANCELED or XD_ETIMEDOUT. */
int xd_graph_run(const xd_graph_t *g, const xd_graph_run_t *r, xd_error_t *err);

/* The shape tensor `name` has for the given inputs (only their shapes are read; data may
 * be NULL). Fills *shape (data NULL) and
 * returns XD_OK, or an error as xd_graph_run. Use it to size out, fetch_out, grad. */
int xd_graph_shape(const xd_graph_t *g, const xd_tensor_t *inputs, const char *name, xd_tensor_t *shape,
                   xd_error_t *err);

#endif
