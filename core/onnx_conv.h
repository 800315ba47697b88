/* onnx_conv.h — internal to the ONNX importer (onnx.c, onnx_ops.c); not a contract.
 *
 * The converter's state and the symbolic values it keeps for each tensor of the graph.
 * onnx.c owns parsing, the value table, layer emission and the graph walk; onnx_ops.c
 * owns the per-operator rules. Names with the xd_onnx__ prefix (two underscores, as
 * libuv's uv__) are shared by those two files only. Includes the header protoc-c
 * generates at build time, so only these two files need $(BUILD)/gen on their path.
 */
#ifndef XD_ONNX_CONV_H
#define XD_ONNX_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "core/dense.h"
#include "core/model.h"
#include "core/status.h"
#include "onnx.pb-c.h"

#define XD_ONNX__MAX_RANK 8
#define XD_ONNX__NONE SIZE_MAX

enum { XD_ONNX__UNUSABLE = 0, XD_ONNX__CONST, XD_ONNX__DATA, XD_ONNX__ERF, XD_ONNX__GELU };

/* One tensor of the graph. */
typedef struct xd_onnx__value {
  int kind;
  size_t uses; /* live consumers not yet converted; 0: the arrays may be moved */
  /* CONST: decoded lazily from tp (a Constant node's scalar attributes decode at once) */
  const Onnx__TensorProto *tp;
  int decoded;
  size_t rank, n;
  int64_t dims[XD_ONNX__MAX_RANK];
  double *k;
  /* DATA: the (batch, width) tensor A·h + c, where h is the output of layer `base` (0: the
   * graph input), of width cols. A (width, cols) NULL means diag(d) (d NULL: ones, and
   * width == cols); c NULL means zeros. drank is the tensor's rank (2 once flat). */
  size_t base, cols, width, drank;
  double *A, *d, *c;
  int final;    /* a Softmax output: only Identity may follow */
  int moved;    /* arrays given to another value */
  int pinned;   /* a scaled copy refers to it (src): its arrays are copied, never moved */
  size_t src;   /* this tensor is src·scale (a Mul or Div by a scalar), or NONE: */
  double scale; /* the Erf form of GELU is recognized through it (x/√2) */
  /* ERF: erf(x/√2). GELU: f·(1 + erf(x/√2)), times x when has_x. x indexes a DATA value. */
  size_t x;
  double f;
  int has_x;
} xd_onnx__value_t;

typedef struct xd_onnx__names {
  const char **key; /* borrowed from the unpacked model */
  size_t *val;
  size_t cap; /* a power of two, at least twice the entries */
} xd_onnx__names_t;

typedef struct xd_onnx__conv {
  xd_onnx__value_t *v; /* every defined tensor; sized once, never moves */
  size_t nv, cap;
  xd_onnx__names_t names, uses; /* name -> index in v; name -> live consumers */
  xd_layer_spec_t *layers;      /* XD_ONNX_MAX_LAYERS slots */
  size_t n_layers, base_width;
  size_t budget; /* doubles left for work arrays */
  long opset;
  const Onnx__NodeProto *node; /* being converted, for error messages; NULL outside nodes */
  size_t node_i;
  int rc;
  xd_error_t *err;
} xd_onnx__conv_t;

/* onnx.c */
int xd_onnx__fail(xd_onnx__conv_t *cv, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
double *xd_onnx__work(xd_onnx__conv_t *cv, size_t n); /* zeroed, charged to the budget; NULL: cv->rc set */
void xd_onnx__value_deinit(xd_onnx__value_t *v);
xd_onnx__value_t xd_onnx__identity(size_t base, size_t width, size_t drank);
size_t xd_onnx__lookup(const xd_onnx__conv_t *cv, const char *name); /* index or NONE */
int xd_onnx__tensor_decode(xd_onnx__conv_t *cv, const Onnx__TensorProto *t, xd_onnx__value_t *v);
int xd_onnx__take(xd_onnx__conv_t *cv, xd_onnx__value_t *from, xd_onnx__value_t *out);
int xd_onnx__emit_layer(xd_onnx__conv_t *cv, xd_onnx__value_t *v, xd_act_t act);
int xd_onnx__affine(xd_onnx__conv_t *cv, xd_onnx__value_t *v, const double *W, const double *b, size_t out);
int xd_onnx__elementwise(xd_onnx__conv_t *cv, xd_onnx__value_t *v, const double *s, size_t ns, const double *add,
                         size_t na);

/* Bounds-checks (pre-scan) and unpacks a ModelProto; *out freed with xd_onnx__release.
 * Shared with the graph importer (onnx_graph.c). XD_OK, XD_EFORMAT (field "onnx") or
 * XD_ENOMEM. */
int xd_onnx__read(const void *bytes, size_t len, Onnx__ModelProto **out, xd_error_t *err);
void xd_onnx__release(Onnx__ModelProto *m);

/* onnx_ops.c */
/* Converts one live node: *res (zeroed by the caller) receives the value of its first
 * output; further outputs (Dropout's mask) are defined unusable by the caller. */
int xd_onnx__node(xd_onnx__conv_t *cv, const Onnx__NodeProto *nd, xd_onnx__value_t *res);
/* Makes v[i] a DATA value (completing a recognized GELU), or fails naming why. */
int xd_onnx__as_data(xd_onnx__conv_t *cv, size_t i);

#endif
