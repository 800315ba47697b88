/* graph_fuse.c — a load-time rewrite: the LayerNorm and GELU that torch.onnx writes as
 * chains of elementwise nodes become one LayerNormalization / Gelu node each, whose
 * kernels make one pass (and one backward pass) where the chain made nine or five, each
 * with its own buffer and gradient buffer.
 *
 *   LayerNorm: m = ReduceMean(X, last axis, keepdims); d = Sub(X, m); p = Pow(d, 2);
 *              v = ReduceMean(p, last axis, keepdims); a = Add(v, eps); s = Sqrt(a);
 *              n = Div(d, s); k = Mul(n, gamma); Y = Add(k, beta)
 *           -> Y = LayerNormalization(X, gamma, beta; axis -1, epsilon eps)
 *   GELU:      q = Div(X, sqrt 2); e = Erf(q); a = Add(e, 1); k = Mul(X, a);
 *              Y = Mul(k, 0.5)
 *           -> Y = Gelu(X) (the erf form)
 * Add and Mul take their operands in either order. A chain is rewritten only when it is
 * exactly that: every intermediate tensor is read by the chain alone (d by Pow and Div,
 * the others once) and is no graph output; the reductions are over the last axis only,
 * with keepdims; the constants are scalars (rank 0 or 1, one value) with the values the
 * pattern needs (2 exactly, sqrt 2 within float rounding, 1, 0.5, a finite eps >= 0);
 * gamma and beta are float initializers of rank 1 whose length is X's last dimension;
 * X is float of rank 2 or more. Anything else stays as it is.
 *
 * The fused node keeps the chain's last tensor (its name and everything downstream of
 * it); the intermediate tensors are dropped from the graph, so they are no longer
 * layers a request may name. It runs after the shapes are described (X's rank and last
 * dimension decide whether gamma fits); the caller describes the graph again.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/gop_reduce.h"
#include "core/graph_int.h"

typedef xd_graph__tensor_t gt_t;

typedef struct fuse {
  xd_graph_t *g;
  int32_t *uses;     /* per tensor: how many node inputs read it */
  int32_t *use1;     /* per tensor: the first node reading it */
  int32_t *use2;     /* per tensor: the second node reading it */
  unsigned char *out; /* per tensor: a graph output */
  unsigned char *dead; /* per node: absorbed into a fused node */
} fuse_t;

/* The one node reading t when t is an intermediate the chain may absorb; else NULL. */
static xd_gnode_t *only_reader(const fuse_t *f, int32_t t) {
  if (t < 0 || f->uses[t] != 1 || f->out[t] || f->g->t[t].kind != XD_GRAPH__T_NODE) return NULL;
  xd_gnode_t *nd = &f->g->nodes[f->use1[t]];
  return f->dead[f->use1[t]] ? NULL : nd;
}

static int is_op(const xd_gnode_t *nd, const char *name, size_t n_in) {
  return nd && nd->op && strcmp(nd->op->name, name) == 0 && nd->n_in == n_in && nd->n_out == 1 && nd->out[0] >= 0;
}

/* The value of a one-value numeric initializer of rank 0 or 1 (a scalar that cannot
 * widen the other operand's shape by broadcasting), in *v; 0 when t is not one. */
static int scalar(const xd_graph_t *g, int32_t t, double *v) {
  if (t < 0 || g->t[t].kind != XD_GRAPH__T_INIT) return 0;
  const xd_tensor_t *x = &g->t[t].init;
  if (x->rank > 1 || xd_tensor_numel(x) != 1 || !x->data) return 0;
  if (x->dtype == XD_DT_F32) *v = g->t[t].init_d ? g->t[t].init_d[0] : ((const float *)x->data)[0];
  else if (x->dtype == XD_DT_F64) *v = ((const double *)x->data)[0];
  else return 0;
  return 1;
}

/* For a commutative binary node reading t: the other operand, or -1. */
static int32_t other(const xd_gnode_t *nd, int32_t t) {
  if (nd->in[0] == t && nd->in[1] != t) return nd->in[1];
  if (nd->in[1] == t && nd->in[0] != t) return nd->in[0];
  return -1;
}

/* gamma or beta: a float initializer of shape (n). */
static int affine(const xd_graph_t *g, int32_t t, int64_t n) {
  if (t < 0 || g->t[t].kind != XD_GRAPH__T_INIT) return 0;
  const xd_tensor_t *x = &g->t[t].init;
  return x->dtype == XD_DT_F32 && x->rank == 1 && x->dims[0] == n && x->data;
}

/* X: a float tensor of rank >= 2 whose last dimension is fixed; its rank in *rank. */
static int norm_input(const xd_graph_t *g, int32_t t, size_t *rank, int64_t *last) {
  const xd_graph_info_t *f = &g->t[t].info;
  if (f->dtype != XD_DT_F32 || f->rank < 2 || f->dims[f->rank - 1].size < 1) return 0;
  *rank = f->rank;
  *last = f->dims[f->rank - 1].size;
  return 1;
}

static int mean_last(const xd_graph_t *g, const xd_gnode_t *nd, size_t rank) {
  if (!nd || !nd->op || nd->n_out != 1 || nd->out[0] < 0 || nd->in[0] < 0) return 0;
  const xd_tensor_t *axes = NULL;
  if (nd->n_in > 1 && nd->in[1] >= 0) {
    if (g->t[nd->in[1]].kind != XD_GRAPH__T_INIT) return 0;
    axes = &g->t[nd->in[1]].init;
  }
  return xd_gop_reduce_is_mean_last(nd, axes, rank);
}

/* Turns node `at` (the chain's last) into op_name(ins; attrs), writing what it wrote, and marks the chain's other nodes
 * dead. The row's own parser reads the attributes. */
static int rewrite(fuse_t *f, xd_gnode_t *at, const char *op_name, const int32_t *ins, size_t n_in,
                   const xd_gattr_t *attrs, size_t n_attrs, xd_gnode_t *const *chain, size_t n_chain,
                   xd_error_t *err) {
  const xd_gop_t *op = xd_gop_find(op_name);
  if (!op) return xd_error_set(err, XD_EFORMAT, "onnx", "operator %s is missing", op_name);
  int32_t *in = xd_calloc(n_in + 1, sizeof *in);
  if (!in) return xd_error_set(err, XD_ENOMEM, "onnx", "out of memory");
  memcpy(in, ins, n_in * sizeof *in);
  xd_gnode_t nd = *at;
  nd.op = op;
  nd.in = in;
  nd.n_in = n_in;
  memset(nd.params, 0, sizeof nd.params);
  xd_gattrs_t as = {.a = attrs, .n = n_attrs, .opset = at->opset};
  int rc = op->parse ? op->parse(&nd, &as, err) : XD_OK;
  if (rc != XD_OK) {
    xd_free(in);
    return xd_graph__node_fail(err, at, rc, "%s", err->text);
  }
  xd_free(at->in);
  *at = nd; /* keeps its name, index, and its output y */
  for (size_t c = 0; c < n_chain; c++)
    if (chain[c] != at) f->dead[chain[c] - f->g->nodes] = 1;
  return XD_OK;
}

/* A LayerNorm chain starting at ReduceMean r1; XD_OK whether or not it fused. */
static int try_layernorm(fuse_t *f, xd_gnode_t *r1, size_t *nfused, xd_error_t *err) {
  xd_graph_t *g = f->g;
  size_t rank;
  int64_t last;
  double c;
  int32_t x = r1->in[0];
  if (x < 0 || !norm_input(g, x, &rank, &last) || !mean_last(g, r1, rank)) return XD_OK;
  int32_t m = r1->out[0];
  xd_gnode_t *sub = only_reader(f, m);
  if (!is_op(sub, "Sub", 2) || sub->in[0] != x || sub->in[1] != m) return XD_OK;
  int32_t d = sub->out[0]; /* read by Pow and Div, by nothing else */
  if (f->uses[d] != 2 || f->out[d]) return XD_OK;
  xd_gnode_t *pw = &g->nodes[f->use1[d]], *dv = &g->nodes[f->use2[d]];
  if (strcmp(pw->op->name, "Pow") != 0) {
    xd_gnode_t *s = pw;
    pw = dv;
    dv = s;
  }
  if (f->dead[pw - g->nodes] || f->dead[dv - g->nodes]) return XD_OK;
  if (!is_op(pw, "Pow", 2) || pw->in[0] != d || !scalar(g, pw->in[1], &c) || c != 2) return XD_OK;
  if (!is_op(dv, "Div", 2) || dv->in[0] != d) return XD_OK;
  xd_gnode_t *r2 = only_reader(f, pw->out[0]);
  if (!mean_last(g, r2, rank) || r2->in[0] != pw->out[0]) return XD_OK;
  xd_gnode_t *add = only_reader(f, r2->out[0]);
  double eps;
  if (!is_op(add, "Add", 2) || !scalar(g, other(add, r2->out[0]), &eps) || !(eps >= 0) || !isfinite(eps))
    return XD_OK;
  xd_gnode_t *sq = only_reader(f, add->out[0]);
  if (!is_op(sq, "Sqrt", 1) || sq->in[0] != add->out[0]) return XD_OK;
  if (only_reader(f, sq->out[0]) != dv || dv->in[1] != sq->out[0]) return XD_OK;
  xd_gnode_t *mul = only_reader(f, dv->out[0]);
  if (!is_op(mul, "Mul", 2)) return XD_OK;
  int32_t gamma = other(mul, dv->out[0]);
  if (!affine(g, gamma, last)) return XD_OK;
  xd_gnode_t *badd = only_reader(f, mul->out[0]);
  if (!is_op(badd, "Add", 2)) return XD_OK;
  int32_t beta = other(badd, mul->out[0]);
  if (!affine(g, beta, last)) return XD_OK;
  xd_gattr_t attrs[2] = {{.name = "axis", .type = XD_GATTR_INT, .i = -1},
                         {.name = "epsilon", .type = XD_GATTR_FLOAT, .f = eps}};
  xd_gnode_t *chain[] = {r1, sub, pw, r2, add, sq, dv, mul, badd};
  int32_t ins[3] = {x, gamma, beta};
  int rc = rewrite(f, badd, "LayerNormalization", ins, 3, attrs, 2, chain, 9, err);
  if (rc == XD_OK) (*nfused)++;
  return rc;
}

/* A GELU chain around Erf node e; XD_OK whether or not it fused. */
static int try_gelu(fuse_t *f, xd_gnode_t *e, size_t *nfused, xd_error_t *err) {
  xd_graph_t *g = f->g;
  double c;
  if (!is_op(e, "Erf", 1) || e->in[0] < 0 || g->t[e->in[0]].kind != XD_GRAPH__T_NODE) return XD_OK;
  int32_t q = e->in[0];
  xd_gnode_t *dv = &g->nodes[g->t[q].producer];
  if (f->dead[dv - g->nodes] || only_reader(f, q) != e) return XD_OK;
  if (!is_op(dv, "Div", 2) || !scalar(g, dv->in[1], &c) || fabs(c - sqrt(2.0)) > 4e-7) return XD_OK;
  int32_t x = dv->in[0];
  if (x < 0 || x == q || g->t[x].info.dtype != XD_DT_F32) return XD_OK;
  xd_gnode_t *add = only_reader(f, e->out[0]);
  if (!is_op(add, "Add", 2) || !scalar(g, other(add, e->out[0]), &c) || c != 1) return XD_OK;
  xd_gnode_t *mul = only_reader(f, add->out[0]);
  if (!is_op(mul, "Mul", 2) || other(mul, add->out[0]) != x) return XD_OK;
  xd_gnode_t *half = only_reader(f, mul->out[0]);
  if (!is_op(half, "Mul", 2) || !scalar(g, other(half, mul->out[0]), &c) || c != 0.5) return XD_OK;
  /* the scalars are rank <= 1: Y has X's shape unless X is a scalar itself */
  if (g->t[x].info.rank < 1) return XD_OK;
  xd_gnode_t *chain[] = {dv, e, add, mul, half};
  int32_t ins[1] = {x};
  int rc = rewrite(f, half, "Gelu", ins, 1, NULL, 0, chain, 5, err);
  if (rc == XD_OK) (*nfused)++;
  return rc;
}

/* Drops the dead nodes and the tensors only they wrote; renumbers tensors. */
static int compact(fuse_t *f, xd_error_t *err) {
  xd_graph_t *g = f->g;
  unsigned char *keep_t = xd_calloc(g->nt + 1, 1);
  int32_t *map = xd_calloc(g->nt + 1, sizeof *map);
  if (!keep_t || !map) {
    xd_free(keep_t);
    xd_free(map);
    return xd_error_set(err, XD_ENOMEM, "onnx", "out of memory");
  }
  for (size_t i = 0; i < g->nt; i++) keep_t[i] = 1;
  size_t w = 0;
  for (size_t j = 0; j < g->nn; j++) {
    xd_gnode_t *nd = &g->nodes[j];
    if (f->dead[j]) {
      for (size_t k = 0; k < nd->n_out; k++)
        if (nd->out[k] >= 0) keep_t[nd->out[k]] = 0;
      xd_free(nd->name);
      xd_free(nd->in);
      xd_free(nd->out);
      continue;
    }
    if (w != j) g->nodes[w] = *nd;
    w++;
  }
  g->nn = w;
  size_t nt = 0;
  for (size_t i = 0; i < g->nt; i++) {
    if (!keep_t[i]) {
      map[i] = -1;
      xd_free(g->t[i].name);
      xd_free(g->t[i].init.data);
      xd_free(g->t[i].init_d);
      continue;
    }
    map[i] = (int32_t)nt;
    if (nt != i) g->t[nt] = g->t[i];
    nt++;
  }
  g->nt = nt;
  for (size_t j = 0; j < g->nn; j++) {
    xd_gnode_t *nd = &g->nodes[j];
    for (size_t k = 0; k < nd->n_in; k++)
      if (nd->in[k] >= 0) nd->in[k] = map[nd->in[k]];
    for (size_t k = 0; k < nd->n_out; k++)
      if (nd->out[k] >= 0) {
        nd->out[k] = map[nd->out[k]];
        g->t[nd->out[k]].producer = (int32_t)j;
      }
  }
  for (size_t i = 0; i < g->n_in; i++) g->in[i] = map[g->in[i]];
  for (size_t i = 0; i < g->n_out; i++) g->out[i] = map[g->out[i]];
  xd_free(keep_t);
  xd_free(map);
  return xd_graph__names_build(g, err);
}

int xd_graph__fuse(xd_graph_t *g, size_t *nfused, xd_error_t *err) {
  *nfused = 0;
  fuse_t f = {.g = g};
  f.uses = xd_calloc(g->nt + 1, sizeof *f.uses);
  f.use1 = xd_calloc(g->nt + 1, sizeof *f.use1);
  f.use2 = xd_calloc(g->nt + 1, sizeof *f.use2);
  f.out = xd_calloc(g->nt + 1, 1);
  f.dead = xd_calloc(g->nn + 1, 1);
  int rc = XD_OK;
  if (!f.uses || !f.use1 || !f.use2 || !f.out || !f.dead) {
    rc = xd_error_set(err, XD_ENOMEM, "onnx", "out of memory");
    goto done;
  }
  for (size_t j = 0; j < g->nn; j++)
    for (size_t k = 0; k < g->nodes[j].n_in; k++) {
      int32_t t = g->nodes[j].in[k];
      if (t < 0) continue;
      if (f.uses[t] == 0) f.use1[t] = (int32_t)j;
      else if (f.uses[t] == 1) f.use2[t] = (int32_t)j;
      f.uses[t]++;
    }
  for (size_t i = 0; i < g->n_out; i++) f.out[g->out[i]] = 1;
  for (size_t j = 0; j < g->nn && rc == XD_OK; j++) {
    xd_gnode_t *nd = &g->nodes[j];
    if (f.dead[j]) continue;
    if (strcmp(nd->op->name, "ReduceMean") == 0) rc = try_layernorm(&f, nd, nfused, err);
    else if (strcmp(nd->op->name, "Erf") == 0) rc = try_gelu(&f, nd, nfused, err);
  }
  if (rc == XD_OK && *nfused) rc = compact(&f, err);
done:
  xd_free(f.uses);
  xd_free(f.use1);
  xd_free(f.use2);
  xd_free(f.out);
  xd_free(f.dead);
  return rc;
}
