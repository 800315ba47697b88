/* graph_int.h — internal to the graph engine (graph.c, graph_run.c, onnx_graph.c); not a
 * contract. The loaded graph's layout and the per-run plan. Names with the xd_graph__
 * prefix (two underscores) are shared by those files only. */
#ifndef XD_GRAPH_INT_H
#define XD_GRAPH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/gop.h"
#include "core/graph.h"

#define XD_GRAPH__NONE (-1)
#define XD_GRAPH__MAX_SYMBOLS 32

enum { XD_GRAPH__T_INPUT = 0, XD_GRAPH__T_INIT, XD_GRAPH__T_NODE };

/* One tensor of the graph. */
typedef struct xd_graph__tensor {
  char *name;
  int kind;         /* T_INPUT, T_INIT, T_NODE */
  int32_t producer; /* node index (T_NODE) or -1 */
  int32_t out_slot; /* which output of its producer */
  /* T_INIT: value, floats as F32 in init and as F64 in init_d; others in init only */
  xd_tensor_t init;
  double *init_d;
  /* T_INPUT: declared dims; sym[d] the symbol index of dim d, or -1 (fixed) */
  int sym[XD_TENSOR_MAX_RANK];
  int64_t fixed0; /* T_INPUT: dimension 0 as the file fixes it, or -1 (symbolic) */
  xd_graph_info_t info; /* static description (probe plans at load) */
  int batch0;           /* dims[0] is the batch symbol in every plan */
} xd_graph__tensor_t;

struct xd_graph {
  size_t nt;
  xd_graph__tensor_t *t;
  size_t nn;
  xd_gnode_t *nodes; /* topological order */
  size_t n_in, n_out;
  int32_t *in, *out; /* tensor ids */
  size_t n_layer;
  int32_t *layer; /* tensor ids listed by xd_graph_node */
  size_t nsym;
  char *sym[XD_GRAPH__MAX_SYMBOLS];
  size_t *name_slot; /* open-addressing table of tensor names: index+1, 0 empty */
  size_t name_cap;
  xd_graph_final_t final;
  int32_t logits;
  long opset;
  size_t fold_budget;  /* bytes load-time folding may still create (bounded by the file's size) */
  int64_t fixed_batch; /* 0: dimension 0 of the first input is a free batch; else its fixed size */
};

/* graph.c */
int32_t xd_graph__lookup(const xd_graph_t *g, const char *name); /* -1 when absent */
int xd_graph__names_build(xd_graph_t *g, xd_error_t *err); /* XD_OK, XD_EFORMAT (a name twice), XD_ENOMEM */
/* Load flags (0: neither). */
#define XD_GRAPH__CHECK_ROWS 1 /* check that the rows of a batch do not interact */
#define XD_GRAPH__NO_FUSE 2    /* keep LayerNorm and GELU chains as written (graph_fuse.c) */
/* Sorts g's nodes topologically, checks every input is defined, rejects cycles, folds
 * constant nodes, probes the shapes (infos, symbols, batch axes, final op), fuses
 * LayerNorm and GELU chains unless XD_GRAPH__NO_FUSE, and with XD_GRAPH__CHECK_ROWS
 * checks that the rows of a batch do not interact. */
int xd_graph__finish(xd_graph_t *g, int flags, xd_error_t *err);
/* xd_graph_from_onnx (which passes XD_GRAPH__CHECK_ROWS) with the flags given: without
 * the rows check, operator tests run graphs as ONNX Runtime would, never in batches;
 * XD_GRAPH__NO_FUSE: tests compare the fused graph with the one as written. */
int xd_graph__load(const void *bytes, size_t len, int flags, xd_graph_t **out, xd_error_t *err);

/* graph_fuse.c: rewrites each exact decomposed LayerNorm chain into one
 * LayerNormalization node and each decomposed GELU (erf form) into one Gelu node, after
 * the first description of shapes; the chains' intermediate tensors are dropped (tensor
 * ids renumbered, names rebuilt). *nfused: chains rewritten (the caller then describes
 * the graph again). XD_OK or XD_ENOMEM. */
int xd_graph__fuse(xd_graph_t *g, size_t *nfused, xd_error_t *err);
/* Sets err for node nd: field "onnx", text "nodes[12] (Conv 'conv1'): ...". */
int xd_graph__node_fail(xd_error_t *err, const xd_gnode_t *nd, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- the plan of one run shape (graph_run.c) ---- */

typedef struct xd_graph__plan {
  xd_dtype_t fdt;
  size_t batch;
  xd_tensor_t *tv;     /* per tensor: shape, and data when known or placed */
  unsigned char *known; /* value known at plan time (initializer, folded) */
  void **owned;        /* folded values (xd_malloc), freed with the plan */
  size_t n_owned, owned_bytes;
  size_t *off;         /* arena offset of runtime tensors, SIZE_MAX: none */
  size_t *scr_off;     /* per node: forward scratch offset in the arena */
  size_t *scr_bwd;     /* per node: backward scratch bytes */
  unsigned char *scr_kept; /* per node: its scratch lives on for its backward (xd_gop_env_t) */
  int32_t *last;       /* per tensor: last node reading it (or nn when kept) */
  unsigned char *keep; /* per tensor: kept to the end of the run */
  size_t arena;        /* bytes */
  size_t max_bwd;      /* largest backward scratch */
} xd_graph__plan_t;

/* Plans g for inputs' shapes (inputs[k].dims[0] replaced by batch), fdt, keeping the
 * tensors in keep (may be NULL; all when keep_all). XD_OK or an error naming the node. */
int xd_graph__plan(const xd_graph_t *g, const xd_tensor_t *inputs, size_t batch, xd_dtype_t fdt,
                   const unsigned char *keep, int keep_all, xd_graph__plan_t *p, xd_error_t *err);
void xd_graph__plan_free(xd_graph__plan_t *p);

/* Evaluates every graph output on inputs as given (no chunking, any dtype, any shape):
 * outs[i] receives shape, dtype and xd_malloc'd data (the caller frees). XD_ETOOBIG,
 * before allocating, when the arena would exceed max_bytes. Load-time checks and tests. */
int xd_graph__eval(const xd_graph_t *g, const xd_tensor_t *inputs, xd_dtype_t fdt, size_t max_bytes,
                   xd_tensor_t *outs, xd_error_t *err);

#endif
