/* graph.c — the loaded graph: name lookup, topological order, load-time constant
 * folding, the static description of every tensor (symbolic dimensions found by
 * planning two probe shapes), output semantics, and introspection (graph.h).
 *
 * Probing: the symbols of the inputs' dims take two sets of small values (the batch 2
 * then 3, the k-th other symbol 5+2k then 6+2k) and every tensor's shape is inferred in
 * both. A dim equal in both probes is fixed; one that follows a symbol's pair of values
 * is that symbol; any other is derived (size -1, no symbol). A tensor whose dim 0
 * follows the batch is "batch-major": it can be fetched, overridden and differentiated
 * at. A shape error in the probe is a load error naming the node.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/graph_int.h"

typedef xd_graph__tensor_t gt_t;

/* ---- names ------------------------------------------------------------------------------ */

static uint64_t hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

int xd_graph__names_build(xd_graph_t *g, xd_error_t *err) {
  size_t cap = 16;
  while (cap < 2 * g->nt + 2) cap *= 2;
  xd_free(g->name_slot);
  g->name_slot = xd_calloc(cap, sizeof *g->name_slot);
  if (!g->name_slot) return xd_error_set(err, XD_ENOMEM, "onnx", "out of memory");
  g->name_cap = cap;
  for (size_t i = 0; i < g->nt; i++) {
    size_t s = (size_t)hash(g->t[i].name) & (cap - 1);
    while (g->name_slot[s]) {
      if (strcmp(g->t[g->name_slot[s] - 1].name, g->t[i].name) == 0)
        return xd_error_set(err, XD_EFORMAT, "onnx", "tensor '%.80s' is defined twice", g->t[i].name);
      s = (s + 1) & (cap - 1);
    }
    g->name_slot[s] = i + 1;
  }
  return XD_OK;
}

int32_t xd_graph__lookup(const xd_graph_t *g, const char *name) {
  if (!g->name_slot || !name) return -1;
  size_t s = (size_t)hash(name) & (g->name_cap - 1);
  while (g->name_slot[s]) {
    if (strcmp(g->t[g->name_slot[s] - 1].name, name) == 0) return (int32_t)(g->name_slot[s] - 1);
    s = (s + 1) & (g->name_cap - 1);
  }
  return -1;
}

int xd_graph__node_fail(xd_error_t *err, const xd_gnode_t *nd, int code, const char *fmt, ...) {
  char msg[XD_ERROR_TEXT_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (nd->name && nd->name[0])
    return xd_error_set(err, code, "onnx", "nodes[%zu] (%.40s '%.80s'): %s", nd->index, nd->op->name, nd->name, msg);
  return xd_error_set(err, code, "onnx", "nodes[%zu] (%.40s): %s", nd->index, nd->op->name, msg);
}

/* ---- order ------------------------------------------------------------------------------ */

/* Kahn's algorithm over the producer edges; a node left over sits on a cycle. */
static int toposort(xd_graph_t *g, xd_error_t *err) {
  size_t nn = g->nn;
  size_t *indeg = xd_calloc(nn + 1, sizeof *indeg), *order = xd_calloc(nn + 1, sizeof *order);
  size_t *cnt = xd_calloc(nn + 2, sizeof *cnt), *adj = NULL;
  xd_gnode_t *sorted = NULL;
  int rc = XD_OK;
  if (!indeg || !order || !cnt) goto nomem;
  size_t ne = 0;
  for (size_t j = 0; j < nn; j++)
    for (size_t k = 0; k < g->nodes[j].n_in; k++) {
      int32_t t = g->nodes[j].in[k];
      if (t >= 0 && g->t[t].kind == XD_GRAPH__T_NODE) {
        indeg[j]++;
        cnt[g->t[t].producer + 1]++;
        ne++;
      }
    }
  for (size_t j = 0; j < nn; j++) cnt[j + 1] += cnt[j];
  adj = xd_calloc(ne + 1, sizeof *adj);
  if (!adj) goto nomem;
  {
    size_t *fill = xd_calloc(nn + 1, sizeof *fill);
    if (!fill) goto nomem;
    for (size_t j = 0; j < nn; j++)
      for (size_t k = 0; k < g->nodes[j].n_in; k++) {
        int32_t t = g->nodes[j].in[k];
        if (t >= 0 && g->t[t].kind == XD_GRAPH__T_NODE) {
          size_t p = (size_t)g->t[t].producer;
          adj[cnt[p] + fill[p]++] = j;
        }
      }
    xd_free(fill);
  }
  size_t head = 0, tail = 0;
  for (size_t j = 0; j < nn; j++)
    if (!indeg[j]) order[tail++] = j;
  while (head < tail) {
    size_t j = order[head++];
    for (size_t e = cnt[j]; e < cnt[j + 1]; e++)
      if (--indeg[adj[e]] == 0) order[tail++] = adj[e];
  }
  if (tail < nn) {
    for (size_t j = 0; j < nn; j++)
      if (indeg[j]) {
        rc = xd_graph__node_fail(err, &g->nodes[j], XD_EFORMAT,
                                 "is on a cycle: its inputs depend on its own outputs (a graph must be acyclic)");
        goto done;
      }
  }
  sorted = xd_calloc(nn + 1, sizeof *sorted);
  if (!sorted) goto nomem;
  for (size_t i = 0; i < nn; i++) sorted[i] = g->nodes[order[i]];
  xd_free(g->nodes);
  g->nodes = sorted;
  for (size_t i = 0; i < nn; i++)
    for (size_t k = 0; k < g->nodes[i].n_out; k++)
      if (g->nodes[i].out[k] >= 0) g->t[g->nodes[i].out[k]].producer = (int32_t)i;
  goto done;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, "onnx", "out of memory");
done:
  xd_free(indeg);
  xd_free(order);
  xd_free(cnt);
  xd_free(adj);
  return rc;
}

/* ---- load-time folding: nodes that read only constants -------------------------------- */

static int all_const(const xd_graph_t *g, const xd_gnode_t *nd) {
  for (size_t k = 0; k < nd->n_in; k++)
    if (nd->in[k] >= 0 && g->t[nd->in[k]].kind != XD_GRAPH__T_INIT) return 0;
  return 1;
}

/* Evaluates node j (every input constant) in float and in double; its outputs become
 * constants. */
static int fold_node(xd_graph_t *g, size_t j, xd_error_t *err) {
  xd_gnode_t *nd = &g->nodes[j];
  xd_tensor_t inv[2][64], outv[2][64];
  xd_tensor_t *ip[2][64], *op[2][64];
  if (nd->n_in > 64 || nd->n_out > 64) return XD_OK; /* big Concats are left to run time */
  int rc = XD_OK;
  void *scratch = NULL;
  for (int p = 0; p < 2; p++) {
    xd_dtype_t fdt = p ? XD_DT_F64 : XD_DT_F32;
    for (size_t k = nd->n_in; k < 64 && k < nd->op->max_in; k++) ip[p][k] = NULL; /* absent optional inputs */
    for (size_t k = 0; k < nd->n_in; k++) {
      ip[p][k] = NULL;
      if (nd->in[k] < 0) continue;
      gt_t *t = &g->t[nd->in[k]];
      inv[p][k] = t->init;
      if (t->init.dtype == XD_DT_F32 && p) {
        inv[p][k].dtype = XD_DT_F64;
        inv[p][k].data = t->init_d;
      }
      ip[p][k] = &inv[p][k];
    }
    for (size_t k = 0; k < nd->n_out; k++) {
      memset(&outv[p][k], 0, sizeof outv[p][k]);
      op[p][k] = &outv[p][k];
    }
    xd_gop_env_t env = {.fdt = fdt};
    if ((rc = nd->op->infer(nd, ip[p], op[p], &env, err)) != XD_OK)
      return xd_graph__node_fail(err, nd, rc == XD_EINVAL ? XD_EFORMAT : rc, "%s", err->text);
    for (size_t k = 0; k < nd->n_out; k++) {
      double n = 1;
      for (size_t d = 0; d < outv[p][k].rank; d++) n *= (double)outv[p][k].dims[d];
      if (n > (double)XD_GRAPH_MAX_ELEMENTS)
        return xd_graph__node_fail(err, nd, XD_EFORMAT, "output %zu would have %.0f elements (at most %lld)", k, n,
                                   (long long)XD_GRAPH_MAX_ELEMENTS);
      if (n > (1 << 24)) return XD_OK; /* a large constant: computed at run time instead */
      if (p == 0) {
        size_t bytes = (size_t)n * 12; /* float and double copies */
        if (bytes > g->fold_budget) return XD_OK;
        g->fold_budget -= bytes;
      }
    }
    for (size_t k = 0; k < nd->n_out; k++) {
      outv[p][k].data = xd_malloc(xd_tensor_bytes(&outv[p][k]) + 1);
      if (!outv[p][k].data) rc = XD_ENOMEM;
    }
    scratch = env.scratch ? xd_malloc(env.scratch) : NULL;
    if (rc == XD_OK && env.scratch && !scratch) rc = XD_ENOMEM;
    if (rc == XD_OK) {
      rc = nd->op->forward(nd, ip[p], op[p], scratch);
      if (rc != XD_OK)
        rc = xd_graph__node_fail(err, nd, rc == XD_EINVAL ? XD_EFORMAT : rc, "cannot be evaluated on its constant inputs");
    } else {
      xd_error_set(err, rc, "onnx", "out of memory");
    }
    xd_free(scratch);
    if (rc != XD_OK) {
      for (int q = 0; q <= p; q++)
        for (size_t k = 0; k < nd->n_out; k++) xd_free(outv[q][k].data);
      return rc;
    }
  }
  for (size_t k = 0; k < nd->n_out; k++) {
    if (nd->out[k] < 0) {
      xd_free(outv[0][k].data);
      xd_free(outv[1][k].data);
      continue;
    }
    gt_t *t = &g->t[nd->out[k]];
    t->kind = XD_GRAPH__T_INIT;
    t->producer = -1;
    t->init = outv[0][k];
    if (outv[0][k].dtype == XD_DT_F32) {
      t->init_d = outv[1][k].data;
    } else {
      xd_free(outv[1][k].data);
    }
  }
  nd->op = NULL; /* folded: removed by the caller */
  return XD_OK;
}

static int fold_constants(xd_graph_t *g, xd_error_t *err) {
  size_t w = 0;
  for (size_t j = 0; j < g->nn; j++) {
    xd_gnode_t *nd = &g->nodes[j];
    if (nd->op->forward && all_const(g, nd)) {
      int rc = fold_node(g, j, err);
      if (rc != XD_OK) { /* close the gap first, so that every node is owned once */
        memmove(&g->nodes[w], &g->nodes[j], (g->nn - j) * sizeof *g->nodes);
        g->nn = w + (g->nn - j);
        return rc;
      }
    }
    if (!nd->op) {
      xd_free(nd->name);
      xd_free(nd->in);
      xd_free(nd->out);
      continue;
    }
    if (w != j) g->nodes[w] = *nd;
    for (size_t k = 0; k < g->nodes[w].n_out; k++)
      if (g->nodes[w].out[k] >= 0) g->t[g->nodes[w].out[k]].producer = (int32_t)w;
    w++;
  }
  g->nn = w;
  return XD_OK;
}

/* ---- probes ------------------------------------------------------------------------------ */

static int64_t probe_val(int p, int s) { return s == 0 ? 2 + p : 5 + 2 * (s - 1) + p; }

static int probe(const xd_graph_t *g, int p, xd_graph__plan_t *pl, xd_error_t *err) {
  xd_tensor_t in[64];
  for (size_t i = 0; i < g->n_in; i++) {
    const gt_t *t = &g->t[g->in[i]];
    in[i] = t->init;
    in[i].data = NULL;
    for (size_t d = 0; d < t->init.rank; d++)
      if (t->sym[d] >= 0) in[i].dims[d] = probe_val(p, t->sym[d]);
  }
  return xd_graph__plan(g, in, (size_t)probe_val(p, 0), XD_DT_F32, NULL, 0, pl, err);
}

static int describe(xd_graph_t *g, xd_error_t *err) {
  xd_graph__plan_t pa, pb;
  memset(&pa, 0, sizeof pa);
  memset(&pb, 0, sizeof pb);
  int rc = probe(g, 0, &pa, err);
  if (rc == XD_OK) rc = probe(g, 1, &pb, err);
  gt_t *first = &g->t[g->in[0]];
  if (rc != XD_OK && rc != XD_ENOMEM && first->fixed0 > 0) {
    /* the graph only works with the batch size the file declares (an export without a
     * dynamic batch): keep it fixed; runs then take exactly that many rows */
    xd_graph__plan_free(&pa);
    xd_graph__plan_free(&pb);
    first->sym[0] = -1;
    first->init.dims[0] = first->fixed0;
    g->fixed_batch = first->fixed0;
    rc = probe(g, 0, &pa, err);
    if (rc == XD_OK) rc = probe(g, 1, &pb, err);
  }
  if (rc == XD_EINVAL || rc == XD_ETOOBIG) rc = err->code = XD_EFORMAT; /* shapes that do not fit: the file's fault */
  if (rc != XD_OK) goto done;
  for (size_t i = 0; i < g->nt; i++) {
    gt_t *t = &g->t[i];
    const xd_tensor_t *a = &pa.tv[i], *b = &pb.tv[i];
    xd_graph_info_t *f = &t->info;
    f->name = t->name;
    f->op = t->kind == XD_GRAPH__T_INPUT  ? "input"
            : t->kind == XD_GRAPH__T_INIT ? "initializer"
                                          : g->nodes[t->producer].op->name;
    f->dtype = a->dtype == XD_DT_F64 ? XD_DT_F32 : a->dtype;
    f->rank = a->rank;
    for (size_t d = 0; d < a->rank; d++) {
      f->dims[d].size = -1;
      f->dims[d].symbol = NULL;
      if (b->rank == a->rank && a->dims[d] == b->dims[d]) {
        f->dims[d].size = a->dims[d];
        continue;
      }
      for (size_t s = 0; s < g->nsym; s++)
        if (b->rank == a->rank && a->dims[d] == probe_val(0, (int)s) && b->dims[d] == probe_val(1, (int)s))
          f->dims[d].symbol = g->sym[s];
    }
    t->batch0 = a->rank >= 1 && b->rank == a->rank &&
                (g->fixed_batch ? a->dims[0] == g->fixed_batch && b->dims[0] == g->fixed_batch
                                : a->dims[0] == probe_val(0, 0) && b->dims[0] == probe_val(1, 0));
  }
done:
  xd_graph__plan_free(&pa);
  xd_graph__plan_free(&pb);
  return rc;
}

static const xd_gnode_t *producer(const xd_graph_t *g, int32_t t) {
  return t >= 0 && g->t[t].kind == XD_GRAPH__T_NODE ? &g->nodes[g->t[t].producer] : NULL;
}

/* Rows must not interact (a Softmax or a reduction over dimension 0 would make a row's
 * output depend on the others, and chunking would change answers): output 0's first row
 * is computed with the batch of two probe rows and alone, and must agree. Inputs: floats
 * from a fixed sine, integers 0, bools 1. A graph that cannot run on such inputs, or
 * whose probe needs more than ROWS_CHECK_BYTES, is not judged here. */
#define ROWS_CHECK_BYTES ((size_t)64 << 20)
static int rows_independent(const xd_graph_t *g, xd_error_t *err) {
  if (g->fixed_batch || !g->t[g->out[0]].batch0 || g->n_in > 64) return XD_OK;
  xd_tensor_t in[64], o2[64], o1[64];
  int rc = XD_OK, ok = 1;
  memset(in, 0, sizeof in);
  for (size_t k = 0; k < g->n_in && rc == XD_OK; k++) {
    const gt_t *t = &g->t[g->in[k]];
    in[k] = t->init;
    in[k].dtype = t->init.dtype == XD_DT_F32 ? XD_DT_F64 : t->init.dtype;
    for (size_t d = 0; d < t->init.rank; d++)
      if (t->sym[d] >= 0) in[k].dims[d] = probe_val(0, t->sym[d]);
    double big = 1;
    for (size_t d = 0; d < in[k].rank; d++) big *= (double)in[k].dims[d];
    if (big > (double)(ROWS_CHECK_BYTES / 8)) break; /* not judged: in[k].data stays NULL */
    size_t n = xd_tensor_numel(&in[k]);
    if (!(in[k].data = xd_malloc(n * 8 + 8))) rc = xd_error_set(err, XD_ENOMEM, "onnx", "out of memory");
    for (size_t i = 0; i < n && in[k].data; i++) {
      if (in[k].dtype == XD_DT_F64) ((double *)in[k].data)[i] = sin(1.0 + 0.7 * (double)i + (double)k);
      else if (in[k].dtype == XD_DT_I64) ((int64_t *)in[k].data)[i] = 0;
      else ((uint8_t *)in[k].data)[i] = 1;
    }
  }
  xd_error_t ignore;
  int all = 1;
  for (size_t k = 0; k < g->n_in; k++) all &= in[k].data != NULL;
  if (rc == XD_OK && all && xd_graph__eval(g, in, XD_DT_F64, ROWS_CHECK_BYTES, o2, &ignore) == XD_OK) {
    for (size_t k = 0; k < g->n_in; k++)
      if (g->t[g->in[k]].sym[0] == 0) in[k].dims[0] = 1; /* the first row alone */
    if (xd_graph__eval(g, in, XD_DT_F64, ROWS_CHECK_BYTES, o1, &ignore) == XD_OK) {
      size_t n1 = xd_tensor_numel(&o1[0]);
      const double *a = o2[0].data, *b = o1[0].data;
      for (size_t i = 0; i < n1 && ok; i++) ok = fabs(a[i] - b[i]) <= 1e-9 * (1 + fabs(b[i])) || (a[i] != a[i] && b[i] != b[i]);
      for (size_t i = 0; i < g->n_out; i++) xd_free(o1[i].data);
    }
    for (size_t i = 0; i < g->n_out; i++) xd_free(o2[i].data);
  }
  for (size_t k = 0; k < g->n_in; k++) xd_free(in[k].data);
  if (rc == XD_OK && !ok)
    rc = xd_error_set(err, XD_EFORMAT, "onnx",
                      "the graph mixes the rows of a batch (e.g. a Softmax or a reduction over dimension 0), so rows "
                      "cannot be evaluated independently");
  return rc;
}

/* Shape nodes whose input has a static shape (no symbol in any probe) become constants;
 * returns how many did (what they feed is then folded by fold_constants). */
static int fold_static_shapes(xd_graph_t *g, size_t *n, xd_error_t *err) {
  *n = 0;
  for (size_t j = 0; j < g->nn; j++) {
    xd_gnode_t *nd = &g->nodes[j];
    if (!(nd->op->flags & XD_GOP_SHAPE_ONLY) || nd->n_in < 1 || nd->in[0] < 0 || nd->out[0] < 0) continue;
    const xd_graph_info_t *f = &g->t[nd->in[0]].info;
    int fixed = g->t[nd->in[0]].kind == XD_GRAPH__T_NODE;
    for (size_t d = 0; d < f->rank && fixed; d++) fixed = f->dims[d].size >= 0;
    if (!fixed || g->t[nd->in[0]].batch0) continue;
    xd_tensor_t x = {.dtype = f->dtype, .rank = f->rank}, y;
    for (size_t d = 0; d < f->rank; d++) x.dims[d] = f->dims[d].size;
    xd_tensor_t *ip[1] = {&x}, *op[1] = {&y};
    xd_gop_env_t env = {.fdt = XD_DT_F32};
    memset(&y, 0, sizeof y);
    if (nd->op->infer(nd, ip, op, &env, err) != XD_OK || y.dtype != XD_DT_I64) continue;
    if (!(y.data = xd_malloc(xd_tensor_bytes(&y) + 1))) return xd_error_set(err, XD_ENOMEM, "onnx", "out of memory");
    nd->op->forward(nd, ip, op, NULL);
    gt_t *t = &g->t[nd->out[0]];
    t->kind = XD_GRAPH__T_INIT;
    t->producer = -1;
    t->init = y;
    nd->out[0] = -1; /* the node is dropped below */
    (*n)++;
  }
  if (!*n) return XD_OK;
  size_t w = 0; /* drop the folded Shape nodes */
  for (size_t j = 0; j < g->nn; j++) {
    xd_gnode_t *nd = &g->nodes[j];
    if ((nd->op->flags & XD_GOP_SHAPE_ONLY) && nd->n_out == 1 && nd->out[0] < 0) {
      xd_free(nd->name);
      xd_free(nd->in);
      xd_free(nd->out);
      continue;
    }
    if (w != j) g->nodes[w] = *nd;
    for (size_t k = 0; k < g->nodes[w].n_out; k++)
      if (g->nodes[w].out[k] >= 0) g->t[g->nodes[w].out[k]].producer = (int32_t)w;
    w++;
  }
  g->nn = w;
  return XD_OK;
}

int xd_graph__finish(xd_graph_t *g, int flags, xd_error_t *err) {
  int rc = toposort(g, err);
  if (rc == XD_OK) rc = fold_constants(g, err);
  if (rc == XD_OK) rc = describe(g, err);
  size_t nfold = 0;
  if (rc == XD_OK) rc = fold_static_shapes(g, &nfold, err);
  if (rc == XD_OK && nfold) { /* what the shapes fed folds now; the description is redone */
    rc = fold_constants(g, err);
    if (rc == XD_OK) rc = describe(g, err);
  }
  size_t nfused = 0; /* the shapes are known now: fuse, then describe what is left */
  if (rc == XD_OK && !(flags & XD_GRAPH__NO_FUSE)) rc = xd_graph__fuse(g, &nfused, err);
  if (rc == XD_OK && nfused) rc = describe(g, err);
  if (rc == XD_OK && (flags & XD_GRAPH__CHECK_ROWS)) rc = rows_independent(g, err);
  if (rc != XD_OK) return rc;
  g->layer = xd_calloc(g->nt + 1, sizeof *g->layer);
  if (!g->layer) return xd_error_set(err, XD_ENOMEM, "onnx", "out of memory");
  for (size_t j = 0; j < g->nn; j++)
    for (size_t k = 0; k < g->nodes[j].n_out; k++) {
      int32_t t = g->nodes[j].out[k];
      if (t >= 0 && g->t[t].batch0 && g->t[t].info.dtype == XD_DT_F32) g->layer[g->n_layer++] = t;
    }
  /* output semantics: a final Softmax over the last axis, or a Sigmoid */
  const xd_gnode_t *p = producer(g, g->out[0]);
  g->final = XD_GRAPH_FINAL_NONE;
  g->logits = g->out[0];
  if (p && p->in[0] >= 0 && g->t[g->out[0]].info.rank >= 1) {
    if (strcmp(p->op->name, "Softmax") == 0) {
      int64_t axis = *(const int64_t *)p->params; /* the Softmax row stores its axis first */
      int64_t r = (int64_t)g->t[g->out[0]].info.rank;
      if (axis == -1 || axis == r - 1 || (p->opset < 13 && axis == 1 && r == 2)) g->final = XD_GRAPH_FINAL_SOFTMAX;
    } else if (strcmp(p->op->name, "Sigmoid") == 0) {
      g->final = XD_GRAPH_FINAL_SIGMOID;
    }
    if (g->final != XD_GRAPH_FINAL_NONE) g->logits = p->in[0];
  }
  return XD_OK;
}

/* ---- introspection ----------------------------------------------------------------------- */

void xd_graph_free(xd_graph_t *g) {
  if (!g) return;
  for (size_t i = 0; i < g->nt; i++) {
    xd_free(g->t[i].name);
    xd_free(g->t[i].init.data);
    xd_free(g->t[i].init_d);
  }
  xd_free(g->t);
  for (size_t j = 0; j < g->nn; j++) {
    xd_free(g->nodes[j].name);
    xd_free(g->nodes[j].in);
    xd_free(g->nodes[j].out);
  }
  /* a node that failed to parse is counted in nn; nothing else is owned past it */
  xd_free(g->nodes);
  xd_free(g->in);
  xd_free(g->out);
  xd_free(g->layer);
  xd_free(g->name_slot);
  for (size_t s = 0; s < g->nsym; s++) xd_free(g->sym[s]);
  xd_free(g);
}

size_t xd_graph_n_inputs(const xd_graph_t *g) { return g->n_in; }
const xd_graph_info_t *xd_graph_input(const xd_graph_t *g, size_t i) { return &g->t[g->in[i]].info; }
size_t xd_graph_n_outputs(const xd_graph_t *g) { return g->n_out; }
const xd_graph_info_t *xd_graph_output(const xd_graph_t *g, size_t i) { return &g->t[g->out[i]].info; }
size_t xd_graph_n_nodes(const xd_graph_t *g) { return g->n_layer; }
const xd_graph_info_t *xd_graph_node(const xd_graph_t *g, size_t i) { return &g->t[g->layer[i]].info; }

const xd_graph_info_t *xd_graph_find(const xd_graph_t *g, const char *name) {
  int32_t t = xd_graph__lookup(g, name);
  return t < 0 ? NULL : &g->t[t].info;
}

xd_graph_final_t xd_graph_final(const xd_graph_t *g, const char **logits) {
  if (logits) *logits = g->t[g->logits].name;
  return g->final;
}

const char *xd_graph_embedding(const xd_graph_t *g, const float **matrix, size_t *V, size_t *d) {
  for (size_t j = 0; j < g->nn; j++) {
    const xd_gnode_t *nd = &g->nodes[j];
    if (strcmp(nd->op->name, "Gather") != 0 || nd->in[0] < 0 || nd->in[1] < 0 || nd->out[0] < 0) continue;
    const gt_t *w = &g->t[nd->in[0]], *ix = &g->t[nd->in[1]];
    if (w->kind != XD_GRAPH__T_INIT || w->init.dtype != XD_DT_F32 || w->init.rank != 2) continue;
    if (ix->kind != XD_GRAPH__T_INPUT || ix->init.dtype != XD_DT_I64) continue;
    if (matrix) *matrix = w->init.data;
    if (V) *V = (size_t)w->init.dims[0];
    if (d) *d = (size_t)w->init.dims[1];
    return g->t[nd->out[0]].name;
  }
  return NULL;
}

const char *xd_graph_last_conv(const xd_graph_t *g) {
  for (size_t j = g->nn; j-- > 0;) {
    const xd_gnode_t *nd = &g->nodes[j];
    if (strcmp(nd->op->name, "Conv") != 0 || nd->out[0] < 0) continue;
    int32_t t = nd->out[0], follow = -1;
    size_t readers = 0;
    for (size_t i = j + 1; i < g->nn; i++)
      for (size_t k = 0; k < g->nodes[i].n_in; k++)
        if (g->nodes[i].in[k] == t) {
          readers++;
          follow = (int32_t)i;
        }
    static const char *acts[] = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip"};
    if (readers == 1)
      for (size_t a = 0; a < sizeof acts / sizeof *acts; a++)
        if (strcmp(g->nodes[follow].op->name, acts[a]) == 0 && g->nodes[follow].out[0] >= 0)
          return g->t[g->nodes[follow].out[0]].name;
    return g->t[t].name;
  }
  return NULL;
}
