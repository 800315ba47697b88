/* gop.h — the graph engine's operator table: one row per ONNX operator, with its
 * attribute parser, shape inference, forward and backward (vector-Jacobian product).
 *
 * Internal to core/graph*.c, core/onnx_graph.c and the core/gop_*.c files that hold the
 * rows; not used outside core/. Adding an operator is one function set in one gop_*.c
 * file and one row in that file's table (rows are found by name, xd_gop_find).
 *
 * The contract every row follows:
 *   parse(nd, attrs, err)   reads the node's attributes into nd->params (a small blob the
 *                           op casts to its own struct; XD_GOP_PARAMS bytes at most).
 *                           Called once at load. NULL: the op has no attributes.
 *   infer(nd, in, out, env, err)
 *                           from the inputs' dtypes and shapes (in[k]->data is non-NULL
 *                           only when that input's VALUE is known at plan time: an
 *                           initializer or a folded shape computation — Reshape's shape,
 *                           Slice's starts, ...) sets every output's dtype, rank and dims,
 *                           and env->scratch (bytes the forward needs) and
 *                           env->scratch_bwd (bytes the backward needs). Float outputs
 *                           take env->fdt (F32 or F64: the run's precision). Errors
 *                           (XD_EINVAL: shapes that do not fit) name the problem; the
 *                           caller prefixes the node. Never allocates.
 *   forward(nd, in, out, scratch)
 *                           every data pointer set; out[] never aliases in[]. Float
 *                           tensors are all F32 or all F64. Returns XD_OK or XD_EINVAL
 *                           for a value out of range (a Gather index).
 *   backward(nd, in, out, dout, din, scratch)
 *                           runs after the forward of the same chunk (scratch: the forward's
 *                           own region when infer set env->scratch_kept); in the run's float type (the tensors' and their gradients'
 *                           F32 or F64 alike). dout[k] is the gradient of output k, or NULL
 *                           (zero). din[k] is NULL when input k's gradient is not wanted
 *                           (weights, ints), else it ACCUMULATES: din[k] += dL/d in[k]
 *                           (the caller zeroes it once), as core/kern.h's kernels do.
 *                           NULL row entry: the op is not differentiable (Shape, Equal,
 *                           Cast to int, ...), a gradient through it is XD_EUNSUPPORTED.
 * Absent optional inputs are NULL in in[]; every output is a real tensor (an output the
 * file leaves unnamed is still computed).
 */
#ifndef XD_GOP_H
#define XD_GOP_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"

#define XD_GOP_PARAMS 256 /* bytes of parsed attributes per node */

/* ---- attributes as the importer hands them over (ONNX types stay in onnx_graph.c) ---- */

typedef enum xd_gattr_type {
  XD_GATTR_INT,
  XD_GATTR_FLOAT,
  XD_GATTR_INTS,
  XD_GATTR_FLOATS,
  XD_GATTR_STRING,
  XD_GATTR_TENSOR,
  XD_GATTR_OTHER
} xd_gattr_type_t;

typedef struct xd_gattr {
  const char *name;
  xd_gattr_type_t type;
  int64_t i;
  double f;
  const int64_t *ints; /* n values */
  const float *floats; /* n values */
  size_t n;
  const char *s; /* n bytes, not terminated */
  const xd_tensor_t *t;
} xd_gattr_t;

typedef struct xd_gattrs {
  const xd_gattr_t *a;
  size_t n;
  long opset; /* of the default domain */
} xd_gattrs_t;

/* Lookup helpers; every one returns the default when the attribute is absent. */
const xd_gattr_t *xd_gattr_find(const xd_gattrs_t *a, const char *name);
int64_t xd_gattr_int(const xd_gattrs_t *a, const char *name, int64_t def);
double xd_gattr_float(const xd_gattrs_t *a, const char *name, double def);
/* Copies INTS into out (max values); *n the count (0 when absent). XD_EINVAL when more
 * than max, naming the attribute. */
int xd_gattr_ints(const xd_gattrs_t *a, const char *name, int64_t *out, size_t max, size_t *n, xd_error_t *err);
/* 1 when the STRING attribute equals s; *present (may be NULL) says whether it exists. */
int xd_gattr_str_is(const xd_gattrs_t *a, const char *name, const char *s, int *present);

/* ---- nodes and rows ------------------------------------------------------------------------ */

typedef struct xd_gop xd_gop_t;

typedef struct xd_gnode {
  const xd_gop_t *op;
  char *name;    /* ONNX node name, "" when it has none */
  size_t index;  /* position in the ONNX file's node list (error messages: nodes[i]) */
  size_t n_in, n_out;
  int32_t *in, *out; /* tensor ids; -1 = an absent optional input / unused output */
  long opset;
  _Alignas(16) unsigned char params[XD_GOP_PARAMS];
} xd_gnode_t;

typedef struct xd_gop_env {
  xd_dtype_t fdt;     /* the run's float type: XD_DT_F32 or XD_DT_F64 */
  size_t scratch;     /* out: forward scratch bytes */
  size_t scratch_bwd; /* out: backward scratch bytes */
  int scratch_kept;   /* out: the backward reads what the forward left in its scratch (a
                       * recurrent layer's gates): a run that keeps the node's outputs (a
                       * gradient pass) keeps that region to the end and hands it to the
                       * backward as its scratch, max(scratch, scratch_bwd) bytes */
} xd_gop_env_t;

typedef xd_tensor_t *const *xd_gtv_t; /* an array of tensor pointers, entries may be NULL */

struct xd_gop {
  const char *name; /* ONNX op_type */
  uint16_t min_in, max_in, min_out, max_out;
  int flags;
  int (*parse)(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err);
  int (*infer)(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err);
  int (*forward)(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch);
  int (*backward)(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din, void *scratch);
};

/* flags */
#define XD_GOP_SHAPE_ONLY 1 /* forward reads only its inputs' shapes (Shape, Size): always evaluated at plan time */

/* The row of op_type, or NULL when the operator is not supported. */
const xd_gop_t *xd_gop_find(const char *op_type);
/* Names of every supported operator, comma-separated (static storage; error messages). */
const char *xd_gop_names(void);

/* Row arrays, each ended by a row with name NULL; xd_gop_find searches them in order.
 * gop_light.c: elementwise, comparisons, activations, Cast; gop_reduce.c: reductions;
 * gop_shape.c: shape ops; gop_index.c: Slice, Gather, Expand, Pad; gop_kern.c: Conv, pools, MatMul/Gemm, norms,
 * GRU, LSTM (adapters over core/kern.h). */
extern const xd_gop_t xd_gop_light_rows[];
extern const xd_gop_t xd_gop_reduce_rows[];
extern const xd_gop_t xd_gop_shape_rows[];
extern const xd_gop_t xd_gop_index_rows[];
extern const xd_gop_t xd_gop_kern_rows[];

/* ---- helpers shared by the rows --------------------------------------------------------- */

/* numpy broadcasting of a and b into out (rank and dims). XD_EINVAL when they do not
 * broadcast. */
int xd_gop_broadcast(const xd_tensor_t *a, const xd_tensor_t *b, xd_tensor_t *out, xd_error_t *err);
/* Normalizes axis (negative counts from the end) for rank r; XD_EINVAL when out of
 * range, naming `what`. */
int xd_gop_axis(int64_t axis, size_t r, const char *what, size_t *out, xd_error_t *err);
/* Fills dims/rank of out from in (same shape), dtype dt. */
void xd_gop_same(const xd_tensor_t *in, xd_tensor_t *out, xd_dtype_t dt);
/* Sum-reduces g (shape of `full`) into acc (shape `small`, which broadcasts to full):
 * acc += Σ over the broadcast axes. g and acc are of full's dtype (F32 or F64). The
 * backward of every broadcasting op. */
void xd_gop_unbroadcast_add(const xd_tensor_t *full, const void *g, const xd_tensor_t *small, void *acc);

/* Runs the statements with T typedef'd to float when dt is XD_DT_F32, else to double:
 * one body for the float and the double backward of the light operators. */
#define XD_GOP_FLOAT_T(dt, ...)   \
  do {                            \
    if ((dt) == XD_DT_F32) {      \
      typedef float T;            \
      __VA_ARGS__                 \
    } else {                      \
      typedef double T;           \
      __VA_ARGS__                 \
    }                             \
  } while (0)

#endif
