/* graph_run.c — planning and running a graph (graph.h): shape inference per input
 * shape, plan-time folding of shape computations, the memory arena, batch chunking,
 * the forward pass and the reverse-mode pass.
 *
 * Plan. For one set of input shapes and a float type, every node's row infers its
 * outputs' shapes in topological order. A node whose inputs are all known at plan time
 * (initializers, earlier folded values) or that reads only shapes (Shape) is evaluated
 * right there into plan-owned memory: that is how Shape -> Gather -> Concat -> Reshape
 * chains become plain constants before the run. The other tensors get offsets in one
 * arena: walking the nodes in order, a node's outputs and its scratch are placed
 * (best fit in the free list, else at the top), its scratch is released after it, and
 * each input is released after its last reader — so memory is reused as in ggml's
 * allocator. A run that keeps tensors (the read-out, a gradient pass) extends their
 * lifetime to the end.
 *
 * Chunks. The arena grows linearly with the batch: planning 1 and 2 rows gives the
 * fixed and per-row bytes, and the batch is split into chunks that fit max_work_memory.
 *
 * Reverse mode (float or double: the run's precision). Tensors on a path from `wrt` to
 * `output` need a gradient; the inputs and outputs of the nodes on that path are kept to
 * the end of the forward pass; those nodes run their backward in reverse order,
 * accumulating into zeroed gradient buffers of the run's float type. The output stage
 * stays in double whatever the precision: a float run hands seed_fn the output's values
 * converted to double and converts the double seed it writes to float (a confident
 * classifier's 1 - p_t is formed from the logits in double, not from float
 * probabilities), and the gradient comes back converted to double.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/graph_int.h"

typedef xd_graph__tensor_t gt_t;
typedef xd_graph__plan_t plan_t;

#define ALIGN 64
#define FOLD_MAX_ELEMENTS (1 << 16) /* plan-time folding is for shape-sized values */
#define FOLD_BUDGET ((size_t)16 << 20) /* bytes of folded values per plan, whatever the file holds */
#define NONE_OFF ((size_t)-1)
#define PREFERRED_BYTES ((size_t)4 << 20)       /* a forward chunk's arena, when the batch allows */
/* A gradient chunk keeps every tensor on the path (out of cache whatever its size): large
 * enough that an explanation's rows (IG's 52 rows of a text or an image) run as one chunk,
 * one GEMM per layer over all of them; 64 MiB split a BERT text's 52 rows in two. */
#define PREFERRED_GRAD_BYTES ((size_t)256 << 20)

/* ---- a first-fit free list over [0, top) ------------------------------------------------- */

typedef struct blk {
  size_t off, size;
} blk_t;

typedef struct freelist {
  blk_t *b;
  size_t n, cap, top, peak;
} freelist_t;

static size_t align_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static size_t fl_alloc(freelist_t *f, size_t size) {
  size = align_up(size ? size : 1);
  size_t best = f->n;
  for (size_t i = 0; i < f->n; i++)
    if (f->b[i].size >= size && (best == f->n || f->b[i].size < f->b[best].size)) best = i;
  if (best < f->n) {
    size_t off = f->b[best].off;
    f->b[best].off += size;
    f->b[best].size -= size;
    if (f->b[best].size == 0) memmove(&f->b[best], &f->b[best + 1], (--f->n - best) * sizeof *f->b);
    return off;
  }
  size_t off = f->top;
  f->top += size;
  if (f->top > f->peak) f->peak = f->top;
  return off;
}

static void fl_free(freelist_t *f, size_t off, size_t size) {
  size = align_up(size ? size : 1);
  size_t i = 0;
  while (i < f->n && f->b[i].off < off) i++;
  memmove(&f->b[i + 1], &f->b[i], (f->n - i) * sizeof *f->b);
  f->b[i] = (blk_t){off, size};
  f->n++;
  if (i + 1 < f->n && f->b[i].off + f->b[i].size == f->b[i + 1].off) { /* merge with the next */
    f->b[i].size += f->b[i + 1].size;
    memmove(&f->b[i + 1], &f->b[i + 2], (f->n - i - 2) * sizeof *f->b);
    f->n--;
  }
  if (i > 0 && f->b[i - 1].off + f->b[i - 1].size == f->b[i].off) { /* with the previous */
    f->b[i - 1].size += f->b[i].size;
    memmove(&f->b[i], &f->b[i + 1], (f->n - i - 1) * sizeof *f->b);
    f->n--;
    i--;
  }
  if (f->b[i].off + f->b[i].size == f->top) { /* the top block shrinks the arena's end */
    f->top = f->b[i].off;
    f->n--;
  }
}

/* ---- plan ---------------------------------------------------------------------------------- */

void xd_graph__plan_free(plan_t *p) {
  if (!p) return;
  for (size_t i = 0; i < p->n_owned; i++) xd_free(p->owned[i]);
  xd_free(p->owned);
  xd_free(p->tv);
  xd_free(p->known);
  xd_free(p->off);
  xd_free(p->scr_off);
  xd_free(p->scr_bwd);
  xd_free(p->scr_kept);
  xd_free(p->last);
  xd_free(p->keep);
  memset(p, 0, sizeof *p);
}

/* Input k's shape against its declaration; symbols must agree across inputs. */
static int check_inputs(const xd_graph_t *g, const xd_tensor_t *inputs, size_t batch, xd_error_t *err) {
  int64_t symv[XD_GRAPH__MAX_SYMBOLS];
  for (size_t s = 0; s < XD_GRAPH__MAX_SYMBOLS; s++) symv[s] = -1;
  symv[0] = (int64_t)batch;
  char field[32];
  for (size_t k = 0; k < g->n_in; k++) {
    const gt_t *t = &g->t[g->in[k]];
    const xd_tensor_t *x = &inputs[k];
    snprintf(field, sizeof field, "inputs[%zu]", k);
    if (x->rank != t->init.rank)
      return xd_error_set(err, XD_EINVAL, field, "input '%.80s' has %zu dimensions, the graph declares %zu", t->name,
                          x->rank, t->init.rank);
    int fl = xd_dtype_is_float(t->init.dtype);
    if (fl ? !xd_dtype_is_float(x->dtype) : x->dtype != t->init.dtype)
      return xd_error_set(err, XD_EINVAL, field, "input '%.80s' must be %s, got %s", t->name,
                          fl ? "float" : xd_dtype_name(t->init.dtype), xd_dtype_name(x->dtype));
    for (size_t d = 0; d < x->rank; d++) {
      int s = t->sym[d];
      if (s == 0 && d == 0) continue; /* the batch */
      if (x->dims[d] < 1 || x->dims[d] > (1 << 24))
        return xd_error_set(err, XD_EINVAL, field, "input '%.80s' dimension %zu is %lld", t->name, d,
                            (long long)x->dims[d]);
      if (s < 0 && x->dims[d] != t->init.dims[d])
        return xd_error_set(err, XD_EINVAL, field, "input '%.80s' dimension %zu must be %lld, got %lld", t->name, d,
                            (long long)t->init.dims[d], (long long)x->dims[d]);
      if (s >= 0 && symv[s] >= 0 && symv[s] != x->dims[d])
        return xd_error_set(err, XD_EINVAL, field, "input '%.80s' dimension %zu ('%s') is %lld, another input has %lld",
                            t->name, d, g->sym[s], (long long)x->dims[d], (long long)symv[s]);
      if (s >= 0) symv[s] = x->dims[d];
    }
  }
  return XD_OK;
}

/* Arrays of a node's input and output tensors in the plan. */
static void node_views(const xd_gnode_t *nd, xd_tensor_t *tv, xd_tensor_t **ip, xd_tensor_t **op, xd_tensor_t *spare) {
  size_t m = nd->op->max_in < XD_GRAPH_MAX_IO ? nd->op->max_in : XD_GRAPH_MAX_IO;
  for (size_t k = 0; k < m; k++) ip[k] = k < nd->n_in && nd->in[k] >= 0 ? &tv[nd->in[k]] : NULL; /* absent: NULL */
  for (size_t k = 0; k < nd->n_out; k++) op[k] = nd->out[k] >= 0 ? &tv[nd->out[k]] : &spare[k];
}

int xd_graph__plan(const xd_graph_t *g, const xd_tensor_t *inputs, size_t batch, xd_dtype_t fdt,
                   const unsigned char *keep, int keep_all, plan_t *p, xd_error_t *err) {
  memset(p, 0, sizeof *p);
  p->fdt = fdt;
  p->batch = batch;
  size_t nt = g->nt, nn = g->nn;
  int rc = check_inputs(g, inputs, batch, err);
  if (rc != XD_OK) return rc;
  size_t n_outs = 0;
  for (size_t j = 0; j < nn; j++) n_outs += g->nodes[j].n_out;
  p->tv = xd_calloc(nt + 1, sizeof *p->tv);
  p->known = xd_calloc(nt + 1, 1);
  p->owned = xd_calloc(n_outs + 1, sizeof *p->owned);
  p->off = xd_malloc((nt + 1) * sizeof *p->off);
  p->scr_off = xd_malloc((nn + 1) * sizeof *p->scr_off);
  p->scr_bwd = xd_calloc(nn + 1, sizeof *p->scr_bwd);
  p->scr_kept = xd_calloc(nn + 1, 1);
  p->last = xd_malloc((nt + 1) * sizeof *p->last);
  p->keep = xd_calloc(nt + 1, 1);
  xd_tensor_t **ip = xd_calloc(2 * XD_GRAPH_MAX_IO, sizeof *ip), **op = ip ? ip + XD_GRAPH_MAX_IO : NULL;
  xd_tensor_t *spare = xd_calloc(XD_GRAPH_MAX_IO, sizeof *spare);
  freelist_t fl = {.cap = nt + nn + 8};
  fl.b = xd_calloc(fl.cap, sizeof *fl.b);
  if (!p->tv || !p->known || !p->owned || !p->off || !p->scr_off || !p->scr_bwd || !p->scr_kept || !p->last ||
      !p->keep || !ip || !spare || !fl.b) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory planning the graph");
    goto done;
  }
  for (size_t i = 0; i < nt; i++) {
    const gt_t *t = &g->t[i];
    p->off[i] = NONE_OFF;
    p->last[i] = -1;
    p->keep[i] = keep_all || (keep && keep[i]);
    if (t->kind == XD_GRAPH__T_INIT) {
      p->tv[i] = t->init;
      if (t->init.dtype == XD_DT_F32 && fdt == XD_DT_F64) {
        p->tv[i].dtype = XD_DT_F64;
        p->tv[i].data = t->init_d;
      }
      p->known[i] = 1;
    }
  }
  for (size_t k = 0; k < g->n_in; k++) {
    xd_tensor_t *x = &p->tv[g->in[k]];
    *x = inputs[k];
    if (g->t[g->in[k]].sym[0] == 0) x->dims[0] = (int64_t)batch;
    x->data = NULL;
    x->dtype = xd_dtype_is_float(g->t[g->in[k]].init.dtype) ? fdt : g->t[g->in[k]].init.dtype;
  }
  /* shapes, plan-time folding, readers */
  for (size_t j = 0; j < nn; j++) {
    const xd_gnode_t *nd = &g->nodes[j];
    node_views(nd, p->tv, ip, op, spare);
    xd_gop_env_t env = {.fdt = fdt};
    for (size_t k = 0; k < nd->n_out; k++) memset(op[k], 0, sizeof *op[k]);
    if ((rc = nd->op->infer(nd, ip, op, &env, err)) != XD_OK) {
      xd_graph__node_fail(err, nd, rc == XD_EINVAL ? XD_EFORMAT : rc, "%s", err->text);
      if (rc == XD_EINVAL) err->code = rc; /* a run's shapes: the caller's inputs do not fit */
      goto done;
    }
    int fold = 1;
    for (size_t k = 0; k < nd->n_out; k++) {
      double n = 1;
      for (size_t d = 0; d < op[k]->rank; d++) n *= (double)op[k]->dims[d];
      if (op[k]->rank > XD_TENSOR_MAX_RANK || n > (double)XD_GRAPH_MAX_ELEMENTS) {
        rc = xd_graph__node_fail(err, nd, XD_ETOOBIG, "output %zu would have %.0f elements (at most %lld)", k, n,
                                 (long long)XD_GRAPH_MAX_ELEMENTS);
        goto done;
      }
      if (n > FOLD_MAX_ELEMENTS) fold = 0;
    }
    if (!(nd->op->flags & XD_GOP_SHAPE_ONLY))
      for (size_t k = 0; k < nd->n_in && fold; k++)
        if (ip[k] && !p->known[nd->in[k]]) fold = 0;
    for (size_t k = 0; k < nd->n_out && fold; k++) /* only folded values spend the budget */
      if ((p->owned_bytes += xd_tensor_numel(op[k]) * 8) > FOLD_BUDGET) fold = 0; /* the rest runs in the arena */
    if (fold) {
      void *scr = env.scratch ? xd_malloc(env.scratch) : NULL;
      for (size_t k = 0; k < nd->n_out; k++) {
        op[k]->data = xd_malloc(xd_tensor_bytes(op[k]) + 1);
        if (op[k]->data && nd->out[k] >= 0) p->owned[p->n_owned++] = op[k]->data;
        if (!op[k]->data) rc = XD_ENOMEM;
      }
      if (rc == XD_OK && env.scratch && !scr) rc = XD_ENOMEM;
      if (rc == XD_OK) rc = nd->op->forward(nd, ip, op, scr);
      xd_free(scr);
      for (size_t k = 0; k < nd->n_out; k++)
        if (nd->out[k] < 0) xd_free(op[k]->data);
      if (rc != XD_OK) {
        xd_graph__node_fail(err, nd, rc, "%s", rc == XD_ENOMEM ? "out of memory" : "cannot evaluate its inputs");
        goto done;
      }
      for (size_t k = 0; k < nd->n_out; k++)
        if (nd->out[k] >= 0) p->known[nd->out[k]] = 1;
      p->scr_off[j] = NONE_OFF;
      continue;
    }
    p->scr_off[j] = env.scratch; /* bytes for now; an offset once placed */
    p->scr_bwd[j] = env.scratch_bwd;
    p->scr_kept[j] = env.scratch_kept != 0;
    if (env.scratch_kept && env.scratch_bwd > env.scratch) p->scr_off[j] = env.scratch_bwd;
    if (env.scratch_bwd > p->max_bwd && !env.scratch_kept) p->max_bwd = env.scratch_bwd;
    for (size_t k = 0; k < nd->n_in; k++)
      if (nd->in[k] >= 0) p->last[nd->in[k]] = (int32_t)j;
  }
  for (size_t i = 0; i < g->n_out; i++) p->keep[g->out[i]] = 1;
  /* placement: graph inputs first, then each runtime node's outputs and scratch */
  for (size_t k = 0; k < g->n_in; k++) {
    int32_t t = g->in[k];
    p->off[t] = fl_alloc(&fl, xd_tensor_bytes(&p->tv[t]));
  }
  for (size_t j = 0; j < nn; j++) {
    const xd_gnode_t *nd = &g->nodes[j];
    if (p->scr_off[j] == NONE_OFF) continue;
    for (size_t k = 0; k < nd->n_out; k++) {
      int32_t t = nd->out[k];
      if (t >= 0) p->off[t] = fl_alloc(&fl, xd_tensor_bytes(&p->tv[t]));
    }
    size_t sb = p->scr_off[j];
    p->scr_off[j] = fl_alloc(&fl, sb);
    int kept = 0; /* a scratch its backward reads lives as long as the node's kept outputs */
    for (size_t k = 0; k < nd->n_out && p->scr_kept[j]; k++) kept |= nd->out[k] >= 0 && p->keep[nd->out[k]];
    p->scr_kept[j] = (unsigned char)kept;
    if (!kept) fl_free(&fl, p->scr_off[j], sb);
    for (size_t k = 0; k < nd->n_in; k++) {
      int32_t t = nd->in[k];
      if (t < 0 || p->off[t] == NONE_OFF || p->keep[t] || p->last[t] != (int32_t)j) continue;
      int dup = 0; /* a tensor read twice by this node is released once */
      for (size_t q = 0; q < k; q++) dup |= nd->in[q] == t;
      if (!dup) fl_free(&fl, p->off[t], xd_tensor_bytes(&p->tv[t]));
    }
    for (size_t k = 0; k < nd->n_out; k++) {
      int32_t t = nd->out[k];
      if (t >= 0 && p->last[t] < 0 && !p->keep[t]) fl_free(&fl, p->off[t], xd_tensor_bytes(&p->tv[t]));
    }
  }
  p->arena = fl.peak;
done:
  xd_free(fl.b);
  xd_free(ip);
  xd_free(spare);
  if (rc != XD_OK) xd_graph__plan_free(p);
  return rc;
}

/* ---- the arena: one buffer per thread, kept between runs ------------------------------------ */

/* A fresh multi-megabyte malloc per run is fresh pages from the kernel: their faults and
 * zeroing cost a CNN batch 8% of its time. Each thread keeps its largest arena (at most
 * what max_work_memory allowed) for its next run, and frees it when it exits. */
typedef struct arena_cache {
  void *p;
  size_t cap;
} arena_cache_t;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *v) {
  arena_cache_t *c = v;
  if (c) xd_free(c->p);
  xd_free(c);
}

static void cache_init(void) { pthread_key_create(&cache_key, cache_free); }

/* A buffer of at least n bytes for the calling thread (owned by the cache), or NULL. */
static void *arena_get(size_t n) {
  pthread_once(&cache_once, cache_init);
  arena_cache_t *c = pthread_getspecific(cache_key);
  if (!c) {
    if (!(c = xd_calloc(1, sizeof *c))) return NULL;
    if (pthread_setspecific(cache_key, c) != 0) {
      xd_free(c);
      return NULL;
    }
  }
  if (c->cap >= n && c->p) return c->p;
  xd_free(c->p);
  c->cap = 0;
  if (!(c->p = xd_malloc(n + 1))) return NULL;
  c->cap = n;
  return c->p;
}

/* ---- run ---------------------------------------------------------------------------------- */

typedef struct run {
  const xd_graph_t *g;
  const xd_graph_run_t *r;
  int32_t out, fetch, over, wrt;
  unsigned char *keep, *dep, *need; /* per tensor */
  int grad;
} run_t;

static int resolve(const xd_graph_t *g, const char *name, const char *field, int32_t *id, xd_error_t *err) {
  *id = -1;
  if (!name) return XD_OK;
  *id = xd_graph__lookup(g, name);
  if (*id < 0) return xd_error_set(err, XD_ENOTFOUND, field, "the graph has no tensor named '%.80s'", name);
  if (!g->t[*id].batch0 || g->t[*id].info.dtype != XD_DT_F32)
    return xd_error_set(err, XD_EUNSUPPORTED, field,
                        "tensor '%.80s' is not a float tensor whose first dimension is the batch", name);
  return XD_OK;
}

/* Row size of tensor t in plan p (everything after dim 0). */
static size_t row_of(const plan_t *p, int32_t t) {
  const xd_tensor_t *x = &p->tv[t];
  return x->dims[0] ? xd_tensor_numel(x) / (size_t)x->dims[0] : 0;
}

/* 1 when node nd's backward runs: a gradient reaches one of its outputs and one of its
 * inputs needs one. */
static int runs_backward(const run_t *R, const xd_gnode_t *nd) {
  int want_out = 0, want_in = 0;
  for (size_t k = 0; k < nd->n_out; k++) want_out |= nd->out[k] >= 0 && R->need[nd->out[k]];
  for (size_t k = 0; k < nd->n_in; k++) want_in |= nd->in[k] >= 0 && R->need[nd->in[k]];
  return want_out && want_in;
}

/* Where each gradient buffer lies in the gradient region (goff, nt entries; NONE_OFF for
 * tensors off the path), and the region's bytes; 0 when out of memory. A tensor's gradient
 * is live from the backward of its last consumer (the first to run in reverse order) to
 * that of its producer, after which nothing reads it, so buffers are reused as the
 * backward walks up: a transformer's many elementwise steps then share a few buffers that
 * stay in cache, instead of each holding its own for the whole pass. wrt's gradient, the
 * answer, is never released. */
static size_t grad_layout(const run_t *R, const plan_t *p, size_t *goff) {
  const xd_graph_t *g = R->g;
  size_t es = xd_dtype_size(p->fdt);
  freelist_t fl = {.cap = g->nt + 2};
  if (!(fl.b = xd_calloc(fl.cap, sizeof *fl.b))) return 0;
  for (size_t i = 0; i < g->nt; i++) goff[i] = NONE_OFF;
  goff[R->out] = fl_alloc(&fl, xd_tensor_numel(&p->tv[R->out]) * es); /* the seed */
  for (size_t j = g->nn; j-- > 0;) {
    const xd_gnode_t *nd = &g->nodes[j];
    if (!runs_backward(R, nd)) continue;
    for (size_t k = 0; k < nd->n_in; k++) {
      int32_t t = nd->in[k];
      if (t >= 0 && R->need[t] && goff[t] == NONE_OFF) goff[t] = fl_alloc(&fl, xd_tensor_numel(&p->tv[t]) * es);
    }
    for (size_t k = 0; k < nd->n_out; k++) { /* its producer is done: the gradient is dead */
      int32_t t = nd->out[k];
      int dup = 0;
      for (size_t q = 0; q < k; q++) dup |= nd->out[q] == t;
      if (t >= 0 && R->need[t] && t != R->wrt && goff[t] != NONE_OFF && !dup)
        fl_free(&fl, goff[t], xd_tensor_numel(&p->tv[t]) * es);
    }
  }
  for (size_t i = 0; i < g->nt; i++) /* on the path but never written (none today): own place */
    if (R->need[i] && goff[i] == NONE_OFF) goff[i] = fl_alloc(&fl, xd_tensor_numel(&p->tv[i]) * es);
  size_t bytes = fl.peak ? fl.peak : ALIGN;
  xd_free(fl.b);
  return bytes;
}

/* Bytes one chunk needs with plan p. */
static size_t chunk_bytes(const run_t *R, const plan_t *p) {
  size_t b = p->arena;
  if (R->grad) {
    size_t *goff = xd_malloc((R->g->nt + 1) * sizeof *goff), gb = goff ? grad_layout(R, p, goff) : 0;
    xd_free(goff);
    if (!gb) /* out of memory: the bound without reuse */
      for (size_t i = 0; i < R->g->nt; i++)
        if (R->need[i]) gb += align_up(xd_tensor_numel(&p->tv[i]) * xd_dtype_size(p->fdt));
    b += align_up(gb);
    b += align_up(p->max_bwd);
    if (p->fdt != XD_DT_F64) /* the output stage in double: the output's values and the seed */
      b += 2 * align_up(xd_tensor_numel(&p->tv[R->out]) * sizeof(double));
  }
  return b;
}

/* Marks dep (reached from wrt) and need (dep and reaching out). */
static void mark_path(run_t *R) {
  const xd_graph_t *g = R->g;
  R->dep[R->wrt] = 1;
  for (size_t j = 0; j < g->nn; j++) {
    const xd_gnode_t *nd = &g->nodes[j];
    int d = 0;
    for (size_t k = 0; k < nd->n_in; k++) d |= nd->in[k] >= 0 && R->dep[nd->in[k]];
    if (d)
      for (size_t k = 0; k < nd->n_out; k++)
        if (nd->out[k] >= 0 && g->t[nd->out[k]].info.dtype == XD_DT_F32) R->dep[nd->out[k]] = 1;
  }
  R->need[R->out] = R->dep[R->out];
  for (size_t j = g->nn; j-- > 0;) {
    const xd_gnode_t *nd = &g->nodes[j];
    int n = 0;
    for (size_t k = 0; k < nd->n_out; k++) n |= nd->out[k] >= 0 && R->need[nd->out[k]];
    if (n)
      for (size_t k = 0; k < nd->n_in; k++)
        if (nd->in[k] >= 0 && R->dep[nd->in[k]]) R->need[nd->in[k]] = 1;
  }
}

static void put_rows(xd_tensor_t *t, size_t row, const double *src) {
  xd_tensor_convert(t->dtype, t->data, XD_DT_F64, src, xd_tensor_numel(t));
  (void)row;
}

/* Runs every node the plan did not fold, in order, on arena mem (data pointers set).
 * When over >= 0, tensor over takes the values ov right after its node runs. */
static int forward_nodes(const xd_graph_t *g, plan_t *p, unsigned char *mem, const xd_cancel_t *cancel, int32_t over,
                         const double *ov, xd_error_t *err) {
  xd_tensor_t *ip[XD_GRAPH_MAX_IO], *op[XD_GRAPH_MAX_IO], spare[XD_GRAPH_MAX_IO];
  int rc;
  for (size_t j = 0; j < g->nn; j++) {
    const xd_gnode_t *nd = &g->nodes[j];
    if (p->scr_off[j] == NONE_OFF) continue;
    if ((j & 7) == 0 && (rc = xd_cancel_check(cancel)) != XD_OK)
      return xd_error_set(err, rc, NULL, "%s", rc == XD_ETIMEDOUT ? "deadline exceeded" : "canceled");
    node_views(nd, p->tv, ip, op, spare);
    if ((rc = nd->op->forward(nd, ip, op, mem + p->scr_off[j])) != XD_OK)
      return xd_graph__node_fail(err, nd, rc, "an input value is out of range (e.g. a token id beyond the vocabulary)");
    for (size_t k = 0; k < nd->n_out; k++)
      if (nd->out[k] == over) put_rows(&p->tv[over], 0, ov);
  }
  return XD_OK;
}

/* One chunk of c rows starting at row0, with plan p and arena mem. */
static int run_chunk(const run_t *R, plan_t *p, size_t row0, size_t c, unsigned char *mem, unsigned char *gmem,
                     xd_error_t *err) {
  const xd_graph_t *g = R->g;
  const xd_graph_run_t *r = R->r;
  xd_tensor_t *ip[XD_GRAPH_MAX_IO], *op[XD_GRAPH_MAX_IO], spare[XD_GRAPH_MAX_IO];
  int rc;
  for (size_t i = 0; i < g->nt; i++)
    if (p->off[i] != NONE_OFF) p->tv[i].data = mem + p->off[i];
  for (size_t k = 0; k < g->n_in; k++) {
    xd_tensor_t *x = &p->tv[g->in[k]];
    const xd_tensor_t *src = &r->inputs[k];
    size_t row = row_of(p, g->in[k]);
    if (g->t[g->in[k]].sym[0] != 0) { /* not batched: whole, in every chunk */
      xd_tensor_convert(x->dtype, x->data, src->dtype, src->data, xd_tensor_numel(x));
      continue;
    }
    xd_tensor_convert(x->dtype, x->data, src->dtype, (const char *)src->data + row0 * row * xd_dtype_size(src->dtype),
                      row * c);
    if (g->in[k] == R->over) put_rows(x, row, r->override_values + row0 * row);
  }
  if ((rc = forward_nodes(g, p, mem, r->cancel, R->over, r->override_values ? r->override_values + row0 * (R->over >= 0 ? row_of(p, R->over) : 0) : NULL, err)) != XD_OK)
    return rc;
  size_t orow = row_of(p, R->out);
  if (r->out) xd_tensor_convert(XD_DT_F64, r->out + row0 * orow, p->tv[R->out].dtype, p->tv[R->out].data, orow * c);
  if (R->fetch >= 0 && r->fetch_out) {
    size_t fr = row_of(p, R->fetch);
    xd_tensor_convert(XD_DT_F64, r->fetch_out + row0 * fr, p->tv[R->fetch].dtype, p->tv[R->fetch].data, fr * c);
  }
  if (!R->grad) return XD_OK;
  /* reverse mode: gradient buffers for the tensors on the path, each zeroed right before
   * the first backward that reads or accumulates into it (zd), while it is about to be in
   * cache anyway, rather than all of them up front */
  xd_tensor_t *gt = xd_calloc(g->nt + 1, sizeof *gt);
  unsigned char *zd = xd_calloc(g->nt + 1, 1);
  size_t *goff = xd_malloc((g->nt + 1) * sizeof *goff), gbytes = goff ? grad_layout(R, p, goff) : 0;
  if (!gt || !zd || !gbytes) {
    xd_free(gt);
    xd_free(zd);
    xd_free(goff);
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory computing gradients");
  }
  for (size_t i = 0; i < g->nt; i++)
    if (R->need[i]) {
      gt[i] = p->tv[i];
      gt[i].data = gmem + goff[i];
    }
  xd_free(goff);
  unsigned char *gp = gmem + align_up(gbytes);
  size_t es = xd_dtype_size(p->fdt);
  zd[R->out] = 1; /* the seed below writes all of it */
  void *bscr = gp;
  if (p->fdt == XD_DT_F64) {
    double *seed = gt[R->out].data;
    if (r->seed) {
      memcpy(seed, r->seed + row0 * orow, orow * c * sizeof *seed);
    } else if ((rc = r->seed_fn(r->seed_ctx, row0, c, p->tv[R->out].data, seed)) != XD_OK) {
      xd_free(gt);
      xd_free(zd);
      return xd_error_set(err, rc, NULL, "the gradient seed could not be formed");
    }
  } else { /* float run, double output stage (after the backward scratch) */
    double *outd = (double *)(gp + align_up(p->max_bwd)), *seed = outd + align_up(orow * c * sizeof(double)) / sizeof(double);
    const double *sd = seed;
    if (r->seed) {
      sd = r->seed + row0 * orow;
    } else {
      xd_tensor_convert(XD_DT_F64, outd, p->fdt, p->tv[R->out].data, orow * c);
      if ((rc = r->seed_fn(r->seed_ctx, row0, c, outd, seed)) != XD_OK) {
        xd_free(gt);
        xd_free(zd);
        return xd_error_set(err, rc, NULL, "the gradient seed could not be formed");
      }
    }
    xd_tensor_convert(p->fdt, gt[R->out].data, XD_DT_F64, sd, orow * c);
  }
  xd_tensor_t *dp[XD_GRAPH_MAX_IO], *ap[XD_GRAPH_MAX_IO];
  rc = XD_OK;
  for (size_t j = g->nn; j-- > 0 && rc == XD_OK;) {
    const xd_gnode_t *nd = &g->nodes[j];
    if (!runs_backward(R, nd)) continue;
    if (!nd->op->backward) {
      rc = xd_graph__node_fail(err, nd, XD_EUNSUPPORTED, "has no gradient, and the gradient path goes through it");
      break;
    }
    node_views(nd, p->tv, ip, op, spare);
    for (size_t k = 0; k < nd->n_out; k++) dp[k] = nd->out[k] >= 0 && R->need[nd->out[k]] ? &gt[nd->out[k]] : NULL;
    for (size_t k = 0; k < nd->n_in; k++) ap[k] = nd->in[k] >= 0 && R->need[nd->in[k]] ? &gt[nd->in[k]] : NULL;
    if ((j & 7) == 0 && (rc = xd_cancel_check(r->cancel)) != XD_OK) {
      xd_error_set(err, rc, NULL, "%s", rc == XD_ETIMEDOUT ? "deadline exceeded" : "canceled");
      break;
    }
    for (size_t k = 0; k < nd->n_out + nd->n_in; k++) {
      xd_tensor_t *t = k < nd->n_out ? dp[k] : ap[k - nd->n_out];
      int32_t id = k < nd->n_out ? nd->out[k] : nd->in[k - nd->n_out];
      if (t && !zd[id]) {
        memset(t->data, 0, xd_tensor_numel(t) * es);
        zd[id] = 1;
      }
    }
    if ((rc = nd->op->backward(nd, ip, op, dp, ap, p->scr_kept[j] ? mem + p->scr_off[j] : bscr)) != XD_OK)
      xd_graph__node_fail(err, nd, rc, "its gradient could not be computed");
  }
  if (rc == XD_OK) {
    size_t wr = row_of(p, R->wrt);
    if (!zd[R->wrt]) memset(gt[R->wrt].data, 0, wr * c * es);
    xd_tensor_convert(XD_DT_F64, r->grad + row0 * wr, p->fdt, gt[R->wrt].data, wr * c);
  }
  xd_free(gt);
  xd_free(zd);
  return rc;
}

static int plan_for(const run_t *R, size_t c, plan_t *p, xd_error_t *err) {
  return xd_graph__plan(R->g, R->r->inputs, c, R->r->precision, R->keep, 0, p, err);
}

int xd_graph_run(const xd_graph_t *g, const xd_graph_run_t *r, xd_error_t *err) {
  run_t R = {.g = g, .r = r};
  plan_t p1, p2, pc;
  memset(&p1, 0, sizeof p1);
  memset(&p2, 0, sizeof p2);
  memset(&pc, 0, sizeof pc);
  unsigned char *mem = NULL;
  unsigned char *gmem = NULL;
  int rc;
  if (!r->inputs) return xd_error_set(err, XD_EINVAL, "inputs", "no inputs");
  if (r->precision != XD_DT_F32 && r->precision != XD_DT_F64)
    return xd_error_set(err, XD_EINVAL, "precision", "precision must be float32 or float64");
  size_t n = r->inputs[0].rank ? (size_t)r->inputs[0].dims[0] : 0;
  for (size_t k = 0; k < g->n_in; k++)
    if (!r->inputs[k].rank || (g->t[g->in[k]].sym[0] == 0 && (size_t)r->inputs[k].dims[0] != n) ||
        (n && !r->inputs[k].data))
      return xd_error_set(err, XD_EINVAL, "inputs", "input %zu: every input needs data and the same batch size %zu", k,
                          n);
  if (r->output) {
    if ((rc = resolve(g, r->output, "output", &R.out, err)) != XD_OK) return rc;
  } else {
    R.out = g->out[0];
    if (!g->t[R.out].batch0 || g->t[R.out].info.dtype != XD_DT_F32)
      return xd_error_set(err, XD_EUNSUPPORTED, "output", "the graph output is not a float tensor with a batch first");
  }
  if ((rc = resolve(g, r->fetch, "fetch", &R.fetch, err)) != XD_OK ||
      (rc = resolve(g, r->override, "override", &R.over, err)) != XD_OK ||
      (rc = resolve(g, r->wrt, "wrt", &R.wrt, err)) != XD_OK)
    return rc;
  if (R.over >= 0 && !r->override_values)
    return xd_error_set(err, XD_EINVAL, "override", "override needs override_values");
  R.grad = R.wrt >= 0;
  if (R.grad && (!r->grad || (!r->seed && !r->seed_fn)))
    return xd_error_set(err, XD_EINVAL, "wrt", "a gradient needs a grad buffer and a seed");
  if (n == 0) return XD_OK;
  R.keep = xd_calloc(g->nt + 1, 1);
  R.dep = xd_calloc(g->nt + 1, 1);
  R.need = xd_calloc(g->nt + 1, 1);
  if (!R.keep || !R.dep || !R.need) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  R.keep[R.out] = 1;
  if (R.fetch >= 0) R.keep[R.fetch] = 1;
  if (R.grad) {
    /* the backward pass reads the inputs and outputs of the nodes on the path: those
     * tensors live to the end; the others are released as in a forward run */
    mark_path(&R);
    for (size_t j = 0; j < g->nn; j++) {
      const xd_gnode_t *nd = &g->nodes[j];
      int wo = 0, wi = 0;
      for (size_t k = 0; k < nd->n_out; k++) wo |= nd->out[k] >= 0 && R.need[nd->out[k]];
      for (size_t k = 0; k < nd->n_in; k++) wi |= nd->in[k] >= 0 && R.need[nd->in[k]];
      if (!wo || !wi) continue;
      for (size_t k = 0; k < nd->n_in; k++)
        if (nd->in[k] >= 0) R.keep[nd->in[k]] = 1;
      for (size_t k = 0; k < nd->n_out; k++)
        if (nd->out[k] >= 0) R.keep[nd->out[k]] = 1;
    }
  }
  if (R.grad && !R.need[R.wrt]) {
    rc = xd_error_set(err, XD_EINVAL, "wrt", "output '%.80s' does not depend on '%.80s'", g->t[R.out].name,
                      g->t[R.wrt].name);
    goto done;
  }
  /* chunk size from the plans of 1 and 2 rows */
  size_t limit = r->max_work_memory ? r->max_work_memory : XD_GRAPH_DEFAULT_WORK_MEMORY;
  if ((rc = plan_for(&R, 1, &p1, err)) != XD_OK) goto done;
  size_t b1 = chunk_bytes(&R, &p1), chunk = 1;
  if (b1 > limit) {
    rc = xd_error_set(err, XD_ETOOBIG, "max_work_memory",
                      "one row needs %zu bytes of working memory, more than the limit of %zu", b1, limit);
    goto done;
  }
  if (n > 1) {
    if ((rc = plan_for(&R, 2, &p2, err)) != XD_OK) goto done;
    size_t b2 = chunk_bytes(&R, &p2);
    size_t per = b2 > b1 ? b2 - b1 : 1, fixed = b1 > per ? b1 - per : 0;
    chunk = limit > fixed ? (limit - fixed) / per : 1;
    /* and rows enough to fill the preferred size, so a chunk's activations stay in cache
     * between operators (a CNN's whole 256-image batch ran 1.8x slower than chunks of a few MB) */
    size_t pref = R.grad ? PREFERRED_GRAD_BYTES : PREFERRED_BYTES;
    size_t cache_rows = pref > fixed ? (pref - fixed) / per : 1;
    if (cache_rows < chunk) chunk = cache_rows;
    if (chunk < 1) chunk = 1;
    if (chunk > n) chunk = n;
    /* the estimate is linear; a plan that grows faster (shapes that square with the
     * batch) is caught here, halving until the chunk fits */
    while (chunk > 1) {
      plan_t pt;
      if ((rc = plan_for(&R, chunk, &pt, err)) != XD_OK) goto done;
      size_t bt = chunk_bytes(&R, &pt);
      xd_graph__plan_free(&pt);
      if (bt <= limit) break;
      chunk /= 2;
    }
    /* a gradient run's chunks of equal size (52 rows in 26 + 26, not 46 + 6): the GEMMs of
     * a small last chunk cost as much per row as a row at a time */
    if (R.grad && chunk < n) {
      size_t k = (n + chunk - 1) / chunk;
      chunk = (n + k - 1) / k;
    }
  }
  size_t cur = 0, cap = 0;
  for (size_t row0 = 0; row0 < n && rc == XD_OK; row0 += cur) {
    size_t c = n - row0 < chunk ? n - row0 : chunk;
    if ((rc = xd_cancel_check(r->cancel)) != XD_OK) {
      xd_error_set(err, rc, NULL, "%s", rc == XD_ETIMEDOUT ? "deadline exceeded" : "canceled");
      break;
    }
    if (c != cur) {
      xd_graph__plan_free(&pc);
      if ((rc = plan_for(&R, c, &pc, err)) != XD_OK) break;
      cur = c;
      /* the arena, then the gradient buffers and backward scratch, in the thread's buffer */
      size_t need = align_up(pc.arena) + (R.grad ? chunk_bytes(&R, &pc) - pc.arena : 0);
      if (need > cap || !mem) {
        cap = need;
        if (!(mem = arena_get(cap))) {
          rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory running the graph");
          break;
        }
      }
      gmem = mem + align_up(pc.arena);
    }
    rc = run_chunk(&R, &pc, row0, c, mem, gmem, err);
  }
done:
  xd_graph__plan_free(&p1);
  xd_graph__plan_free(&p2);
  xd_graph__plan_free(&pc);
  /* mem (and gmem inside it) belongs to the thread's cache */
  xd_free(R.keep);
  xd_free(R.dep);
  xd_free(R.need);
  return rc;
}

int xd_graph_shape(const xd_graph_t *g, const xd_tensor_t *inputs, const char *name, xd_tensor_t *shape,
                   xd_error_t *err) {
  int32_t id = xd_graph__lookup(g, name);
  if (id < 0) return xd_error_set(err, XD_ENOTFOUND, "name", "the graph has no tensor named '%.80s'", name ? name : "");
  plan_t p;
  size_t n = inputs[0].rank ? (size_t)inputs[0].dims[0] : 0;
  int rc = xd_graph__plan(g, inputs, n ? n : 1, XD_DT_F32, NULL, 0, &p, err);
  if (rc != XD_OK) return rc;
  *shape = p.tv[id];
  shape->data = NULL;
  if (shape->dtype == XD_DT_F64) shape->dtype = XD_DT_F32;
  if (!n && g->t[id].batch0) shape->dims[0] = 0;
  xd_graph__plan_free(&p);
  return XD_OK;
}

/* Multiply-adds count two: Conv 2·out·(C_in/group·kernel), MatMul 2·out·K (A's last
 * dimension), Gemm 2·out·K (|A| / M, whether A is transposed or not), GRU/LSTM 2·seq·(|W| + |R|); every
 * other node one per output element. Only the node's shapes are read (a plan). */
static double node_flops(const xd_gnode_t *nd, const plan_t *p) {
  const xd_tensor_t *o = nd->n_out && nd->out[0] >= 0 ? &p->tv[nd->out[0]] : NULL;
  double out = o ? (double)xd_tensor_numel(o) : 0;
  const xd_tensor_t *a = nd->n_in > 0 && nd->in[0] >= 0 ? &p->tv[nd->in[0]] : NULL;
  const xd_tensor_t *w = nd->n_in > 1 && nd->in[1] >= 0 ? &p->tv[nd->in[1]] : NULL;
  const char *op = nd->op->name;
  if (strcmp(op, "Conv") == 0 && w && w->rank >= 1 && w->dims[0] > 0)
    return 2 * out * ((double)xd_tensor_numel(w) / (double)w->dims[0]);
  if (strcmp(op, "MatMul") == 0 && a && a->rank >= 1) return 2 * out * (double)a->dims[a->rank - 1];
  if (strcmp(op, "Gemm") == 0 && a && o && o->rank == 2 && o->dims[0] > 0) /* A is (M,K) or (K,M) */
    return 2 * out * ((double)xd_tensor_numel(a) / (double)o->dims[0]);
  if ((strcmp(op, "GRU") == 0 || strcmp(op, "LSTM") == 0) && a && a->rank == 3 && w && nd->n_in > 2 && nd->in[2] >= 0)
    return 2 * (double)a->dims[0] * (double)(xd_tensor_numel(w) + xd_tensor_numel(&p->tv[nd->in[2]]));
  return out;
}

int xd_graph_flops_per_row(const xd_graph_t *g, const xd_tensor_t *inputs, double *flops, xd_error_t *err) {
  plan_t p;
  *flops = 0;
  int rc = xd_graph__plan(g, inputs, 1, XD_DT_F32, NULL, 0, &p, err);
  if (rc != XD_OK) return rc;
  for (size_t i = 0; i < g->nn; i++) *flops += node_flops(&g->nodes[i], &p);
  xd_graph__plan_free(&p);
  return XD_OK;
}

int xd_graph__eval(const xd_graph_t *g, const xd_tensor_t *inputs, xd_dtype_t fdt, size_t max_bytes,
                   xd_tensor_t *outs, xd_error_t *err) {
  plan_t p;
  size_t n = inputs[0].rank ? (size_t)inputs[0].dims[0] : 1;
  for (size_t i = 0; i < g->n_out; i++) outs[i].data = NULL;
  int rc = xd_graph__plan(g, inputs, n, fdt, NULL, 0, &p, err);
  if (rc != XD_OK) return rc;
  if (p.arena > max_bytes) {
    xd_graph__plan_free(&p);
    return xd_error_set(err, XD_ETOOBIG, NULL, "the graph needs %zu bytes, more than %zu", p.arena, max_bytes);
  }
  unsigned char *mem = xd_malloc(p.arena + 1);
  if (!mem) {
    xd_graph__plan_free(&p);
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  for (size_t i = 0; i < g->nt; i++)
    if (p.off[i] != NONE_OFF) p.tv[i].data = mem + p.off[i];
  for (size_t k = 0; k < g->n_in; k++)
    xd_tensor_convert(p.tv[g->in[k]].dtype, p.tv[g->in[k]].data, inputs[k].dtype, inputs[k].data,
                      xd_tensor_numel(&p.tv[g->in[k]]));
  rc = forward_nodes(g, &p, mem, NULL, -1, NULL, err);
  for (size_t i = 0; i < g->n_out && rc == XD_OK; i++) {
    outs[i] = p.tv[g->out[i]];
    outs[i].data = xd_malloc(xd_tensor_bytes(&outs[i]) + 1);
    if (!outs[i].data) rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    else memcpy(outs[i].data, p.tv[g->out[i]].data, xd_tensor_bytes(&outs[i]));
  }
  xd_free(mem);
  xd_graph__plan_free(&p);
  return rc;
}
