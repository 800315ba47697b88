/* gop_shape.c — shape and indexing operators: Shape, Reshape, Flatten, Unsqueeze,
 * Squeeze, Transpose, Concat, Split, Slice, Gather, Expand, ConstantOfShape, Range.
 * Any element type moves through them (they copy bytes); their backward (double) moves
 * the gradient back the same way, accumulating (gop.h). Inputs that decide a shape
 * (Reshape's shape, Slice's starts, ...) must be known at plan time: constants or shape
 * computations, which the planner folds. References: the ONNX operator specs.
 */
#include <math.h>
#include <string.h>

#include "core/gop.h"
#include "core/graph.h"

#define MAXR XD_TENSOR_MAX_RANK

static int need_known(const xd_tensor_t *t, const char *what, xd_error_t *err) {
  if (!t || !t->data)
    return xd_error_set(err, XD_EINVAL, what,
                        "%s must be computable before the run (from constants and shapes only)", what);
  if (xd_tensor_numel(t) > 64) return xd_error_set(err, XD_EINVAL, what, "%s has too many values", what);
  return XD_OK;
}

/* din[0] += dout[0] element by element (views: Reshape, Flatten, (Un)Squeeze, Identity). */
static int view_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                         void *scratch) {
  if (!din[0] || !dout[0]) return XD_OK;
  const double *G = dout[0]->data;
  double *D = din[0]->data;
  for (size_t i = 0, n = xd_tensor_numel(out[0]); i < n; i++) D[i] += G[i];
  return XD_OK;
}

static int view_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  memcpy(out[0]->data, in[0]->data, xd_tensor_bytes(out[0]));
  return XD_OK;
}

/* ---- Shape ------------------------------------------------------------------------------- */

typedef struct shape_p {
  int64_t start, end;
  int has_end;
} shape_p;

static int shape_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  shape_p *p = (shape_p *)nd->params;
  p->start = xd_gattr_int(a, "start", 0);
  p->has_end = xd_gattr_find(a, "end") != NULL;
  p->end = xd_gattr_int(a, "end", 0);
  return XD_OK;
}

static void shape_range(const shape_p *p, size_t r, size_t *s, size_t *e) {
  int64_t a = p->start < 0 ? p->start + (int64_t)r : p->start, b = p->has_end ? p->end : (int64_t)r;
  if (b < 0) b += (int64_t)r;
  a = a < 0 ? 0 : a > (int64_t)r ? (int64_t)r : a;
  b = b < 0 ? 0 : b > (int64_t)r ? (int64_t)r : b;
  *s = (size_t)a;
  *e = b > a ? (size_t)b : (size_t)a;
}

static int shape_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  size_t s, e;
  shape_range((const shape_p *)nd->params, in[0]->rank, &s, &e);
  out[0]->dtype = XD_DT_I64;
  out[0]->rank = 1;
  out[0]->dims[0] = (int64_t)(e - s);
  return XD_OK;
}

static int shape_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  size_t s, e;
  shape_range((const shape_p *)nd->params, in[0]->rank, &s, &e);
  for (size_t i = s; i < e; i++) ((int64_t *)out[0]->data)[i - s] = in[0]->dims[i];
  return XD_OK;
}

/* ---- Reshape, Flatten, Unsqueeze, Squeeze ---------------------------------------------------- */

typedef struct axes_p {
  int64_t axis; /* Flatten */
  int allowzero;
  size_t naxes;
  int64_t axes[MAXR];
  int from_input;
} axes_p;

static int axes_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  axes_p *p = (axes_p *)nd->params;
  p->axis = xd_gattr_int(a, "axis", 1);
  p->allowzero = (int)xd_gattr_int(a, "allowzero", 0);
  p->from_input = a->opset >= 13;
  return xd_gattr_ints(a, "axes", p->axes, MAXR, &p->naxes, err);
}

static int reshape_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  const axes_p *p = (const axes_p *)nd->params;
  const xd_tensor_t *x = in[0], *s = in[1];
  int rc = need_known(s, "shape", err);
  if (rc != XD_OK) return rc;
  size_t r = xd_tensor_numel(s), numel = xd_tensor_numel(x), prod = 1;
  int infer_at = -1;
  if (r > MAXR) return xd_error_set(err, XD_EINVAL, "shape", "a shape of rank %zu (at most %d)", r, MAXR);
  out[0]->rank = r;
  out[0]->dtype = x->dtype;
  for (size_t i = 0; i < r; i++) {
    int64_t v = xd_tensor_get_i(s, i);
    if (v == 0 && !p->allowzero) {
      if (i >= x->rank) return xd_error_set(err, XD_EINVAL, "shape", "0 at %zu copies a dimension the input lacks", i);
      v = x->dims[i];
    }
    if (v == -1) {
      if (infer_at >= 0) return xd_error_set(err, XD_EINVAL, "shape", "more than one -1");
      infer_at = (int)i;
      continue;
    }
    if (v < 0 || v > XD_GRAPH_MAX_ELEMENTS)
      return xd_error_set(err, XD_EINVAL, "shape", "dimension %lld", (long long)v);
    out[0]->dims[i] = v;
    prod *= (size_t)v;
    if (prod > (size_t)XD_GRAPH_MAX_ELEMENTS) return xd_error_set(err, XD_EINVAL, "shape", "too many elements");
  }
  if (infer_at >= 0) {
    if (prod == 0 || numel % prod) return xd_error_set(err, XD_EINVAL, "shape", "-1 cannot be inferred");
    out[0]->dims[infer_at] = (int64_t)(numel / prod);
    prod *= numel / prod;
  }
  if (prod != numel) {
    char a[96], b[96];
    xd_tensor_shape_str(x, a, sizeof a);
    xd_tensor_shape_str(out[0], b, sizeof b);
    return xd_error_set(err, XD_EINVAL, "shape", "cannot reshape %s to %s", a, b);
  }
  return XD_OK;
}

static int flatten_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  const axes_p *p = (const axes_p *)nd->params;
  int64_t r = (int64_t)in[0]->rank, a = p->axis < 0 ? p->axis + r : p->axis;
  if (a < 0 || a > r) return xd_error_set(err, XD_EINVAL, "axis", "axis %lld for rank %lld", (long long)p->axis, (long long)r);
  int64_t d0 = 1, d1 = 1;
  for (int64_t i = 0; i < r; i++) *(i < a ? &d0 : &d1) *= in[0]->dims[i];
  out[0]->dtype = in[0]->dtype;
  out[0]->rank = 2;
  out[0]->dims[0] = d0;
  out[0]->dims[1] = d1;
  return XD_OK;
}

/* The axes of (Un)Squeeze: attribute, or input 1 from opset 13. */
static int get_axes(const axes_p *p, const xd_gnode_t *nd, xd_gtv_t in, int64_t *ax, size_t *na, xd_error_t *err) {
  if (p->from_input) {
    *na = 0;
    if (nd->n_in < 2 || !in[1]) return XD_OK;
    int rc = need_known(in[1], "axes", err);
    if (rc != XD_OK) return rc;
    *na = xd_tensor_numel(in[1]);
    if (*na > MAXR) return xd_error_set(err, XD_EINVAL, "axes", "too many axes");
    for (size_t i = 0; i < *na; i++) ax[i] = xd_tensor_get_i(in[1], i);
    return XD_OK;
  }
  *na = p->naxes;
  memcpy(ax, p->axes, sizeof p->axes);
  return XD_OK;
}

static int unsqueeze_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  int64_t ax[MAXR];
  size_t na;
  int rc = get_axes((const axes_p *)nd->params, nd, in, ax, &na, err);
  if (rc != XD_OK) return rc;
  size_t r = in[0]->rank + na;
  if (r > MAXR || na == 0) return xd_error_set(err, XD_EINVAL, "axes", "%zu axes on rank %zu", na, in[0]->rank);
  unsigned char ins[MAXR] = {0};
  for (size_t i = 0; i < na; i++) {
    size_t a;
    if ((rc = xd_gop_axis(ax[i], r, "axes", &a, err)) != XD_OK) return rc;
    if (ins[a]) return xd_error_set(err, XD_EINVAL, "axes", "axis %lld twice", (long long)ax[i]);
    ins[a] = 1;
  }
  out[0]->dtype = in[0]->dtype;
  out[0]->rank = r;
  for (size_t d = 0, k = 0; d < r; d++) out[0]->dims[d] = ins[d] ? 1 : in[0]->dims[k++];
  return XD_OK;
}

static int squeeze_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  int64_t ax[MAXR];
  size_t na;
  int rc = get_axes((const axes_p *)nd->params, nd, in, ax, &na, err);
  if (rc != XD_OK) return rc;
  unsigned char sq[MAXR] = {0};
  size_t r = in[0]->rank;
  for (size_t i = 0; i < na; i++) {
    size_t a;
    if ((rc = xd_gop_axis(ax[i], r, "axes", &a, err)) != XD_OK) return rc;
    if (in[0]->dims[a] != 1)
      return xd_error_set(err, XD_EINVAL, "axes", "axis %zu has size %lld, not 1", a, (long long)in[0]->dims[a]);
    sq[a] = 1;
  }
  if (na == 0)
    for (size_t d = 0; d < r; d++) sq[d] = in[0]->dims[d] == 1;
  out[0]->dtype = in[0]->dtype;
  out[0]->rank = 0;
  for (size_t d = 0; d < r; d++)
    if (!sq[d]) out[0]->dims[out[0]->rank++] = in[0]->dims[d];
  return XD_OK;
}

/* ---- Transpose ------------------------------------------------------------------------------ */

typedef struct perm_p {
  size_t n;
  int64_t perm[MAXR];
} perm_p;

static int transpose_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  perm_p *p = (perm_p *)nd->params;
  return xd_gattr_ints(a, "perm", p->perm, MAXR, &p->n, err);
}

static void get_perm(const perm_p *p, size_t r, size_t *perm) {
  for (size_t d = 0; d < r; d++) perm[d] = p->n ? (size_t)p->perm[d] : r - 1 - d;
}

static int transpose_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  const perm_p *p = (const perm_p *)nd->params;
  size_t r = in[0]->rank, perm[MAXR];
  if (p->n && p->n != r) return xd_error_set(err, XD_EINVAL, "perm", "perm has %zu entries for rank %zu", p->n, r);
  unsigned char seen[MAXR] = {0};
  for (size_t d = 0; d < p->n; d++) {
    if (p->perm[d] < 0 || p->perm[d] >= (int64_t)r || seen[p->perm[d]])
      return xd_error_set(err, XD_EINVAL, "perm", "perm is not a permutation");
    seen[p->perm[d]] = 1;
  }
  get_perm(p, r, perm);
  out[0]->dtype = in[0]->dtype;
  out[0]->rank = r;
  for (size_t d = 0; d < r; d++) out[0]->dims[d] = in[0]->dims[perm[d]];
  return XD_OK;
}

/* Walks the output in order; BODY sees o (output index) and i (input index). */
#define PERM_FOR(X, Y, PERM, BODY)                                                    \
  do {                                                                                \
    size_t r_ = (Y)->rank, ist_[MAXR], st_[MAXR], idx_[MAXR] = {0};                   \
    for (size_t d_ = 0; d_ < r_; d_++) ist_[d_] = xd_tensor_stride(X, d_);            \
    for (size_t d_ = 0; d_ < r_; d_++) st_[d_] = ist_[(PERM)[d_]];                    \
    size_t inner_ = r_ ? (size_t)(Y)->dims[r_ - 1] : 1, n_ = xd_tensor_numel(Y), o = 0; \
    size_t is_ = r_ ? st_[r_ - 1] : 0;                                                \
    for (size_t it_ = 0; inner_ && it_ < n_ / inner_; it_++) {                        \
      size_t i = 0;                                                                   \
      for (size_t d_ = 0; d_ + 1 < r_; d_++) i += idx_[d_] * st_[d_];                 \
      for (size_t e_ = 0; e_ < inner_; e_++, o++, i += is_) { BODY; }                 \
      for (size_t d_ = r_ ? r_ - 1 : 0; d_-- > 0;) {                                  \
        if (++idx_[d_] < (size_t)(Y)->dims[d_]) break;                                \
        idx_[d_] = 0;                                                                 \
      }                                                                               \
    }                                                                                 \
  } while (0)

static int transpose_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  size_t perm[MAXR];
  get_perm((const perm_p *)nd->params, in[0]->rank, perm);
  size_t es = xd_dtype_size(in[0]->dtype);
  const char *X = in[0]->data;
  char *Y = out[0]->data;
  if (es == 4) PERM_FOR(in[0], out[0], perm, memcpy(Y + 4 * o, X + 4 * i, 4));
  else if (es == 8) PERM_FOR(in[0], out[0], perm, memcpy(Y + 8 * o, X + 8 * i, 8));
  else PERM_FOR(in[0], out[0], perm, Y[o] = X[i]);
  return XD_OK;
}

static int transpose_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                              void *scratch) {
  if (!din[0] || !dout[0]) return XD_OK;
  size_t perm[MAXR];
  get_perm((const perm_p *)nd->params, in[0]->rank, perm);
  const double *G = dout[0]->data;
  double *D = din[0]->data;
  PERM_FOR(in[0], out[0], perm, D[i] += G[o]);
  return XD_OK;
}

/* ---- Concat and Split ---------------------------------------------------------------------- */

typedef struct axis_p {
  int64_t axis;
  size_t nsplit;
  int64_t split[24];
  int from_input;
  int64_t num_outputs;
} axis_p;

static int axis_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  axis_p *p = (axis_p *)nd->params;
  p->axis = xd_gattr_int(a, "axis", 0);
  p->from_input = a->opset >= 13;
  p->num_outputs = xd_gattr_int(a, "num_outputs", 0);
  return xd_gattr_ints(a, "split", p->split, 24, &p->nsplit, err);
}
_Static_assert(sizeof(axis_p) <= XD_GOP_PARAMS, "params");

static int concat_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  const axis_p *p = (const axis_p *)nd->params;
  const xd_tensor_t *a = NULL;
  for (size_t k = 0; k < nd->n_in && !a; k++) a = in[k];
  if (!a) return xd_error_set(err, XD_EINVAL, NULL, "no inputs");
  size_t ax;
  int rc = xd_gop_axis(p->axis, a->rank, "axis", &ax, err);
  if (rc != XD_OK) return rc;
  xd_gop_same(a, out[0], a->dtype);
  out[0]->dims[ax] = 0;
  for (size_t k = 0; k < nd->n_in; k++) {
    const xd_tensor_t *x = in[k];
    if (!x) continue;
    if (x->rank != a->rank || x->dtype != a->dtype)
      return xd_error_set(err, XD_EINVAL, NULL, "input %zu has another rank or type", k);
    for (size_t d = 0; d < a->rank; d++)
      if (d != ax && x->dims[d] != a->dims[d]) {
        char s1[96], s2[96];
        xd_tensor_shape_str(a, s1, sizeof s1);
        xd_tensor_shape_str(x, s2, sizeof s2);
        return xd_error_set(err, XD_EINVAL, NULL, "inputs of shapes %s and %s do not concatenate on axis %zu", s1, s2, ax);
      }
    out[0]->dims[ax] += x->dims[ax];
  }
  return XD_OK;
}

/* Copies between a whole tensor (outer, dall·inner) and its part [off, off+dk) on the
 * axis. dir 0: part -> whole; 1: whole -> part. */
static void block_copy(char *whole, char *part, size_t outer, size_t dall, size_t dk, size_t off, size_t inner_b,
                       int dir) {
  for (size_t o = 0; o < outer; o++) {
    char *w = whole + (o * dall + off) * inner_b, *q = part + o * dk * inner_b;
    if (dir == 0) memcpy(w, q, dk * inner_b);
    else memcpy(q, w, dk * inner_b);
  }
}

static void axis_geom(const xd_tensor_t *t, size_t ax, size_t *outer, size_t *inner) {
  *outer = 1;
  for (size_t d = 0; d < ax; d++) *outer *= (size_t)t->dims[d];
  *inner = xd_tensor_stride(t, ax);
}

static int concat_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  const axis_p *p = (const axis_p *)nd->params;
  size_t ax, outer, inner, off = 0;
  xd_gop_axis(p->axis, out[0]->rank, "axis", &ax, NULL);
  axis_geom(out[0], ax, &outer, &inner);
  size_t es = xd_dtype_size(out[0]->dtype), dall = (size_t)out[0]->dims[ax];
  for (size_t k = 0; k < nd->n_in; k++) {
    if (!in[k]) continue;
    size_t dk = (size_t)in[k]->dims[ax];
    block_copy(out[0]->data, in[k]->data, outer, dall, dk, off, inner * es, 0);
    off += dk;
  }
  return XD_OK;
}

static int concat_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                           void *scratch) {
  const axis_p *p = (const axis_p *)nd->params;
  size_t ax, outer, inner, off = 0;
  xd_gop_axis(p->axis, out[0]->rank, "axis", &ax, NULL);
  axis_geom(out[0], ax, &outer, &inner);
  size_t dall = (size_t)out[0]->dims[ax];
  const double *G = dout[0]->data;
  for (size_t k = 0; k < nd->n_in; k++) {
    if (!in[k]) continue;
    size_t dk = (size_t)in[k]->dims[ax];
    if (din[k]) {
      double *D = din[k]->data;
      for (size_t o = 0; o < outer; o++)
        for (size_t e = 0; e < dk * inner; e++) D[o * dk * inner + e] += G[(o * dall + off) * inner + e];
    }
    off += dk;
  }
  return XD_OK;
}

/* The split sizes of Split into sz (n_out entries). */
static int split_sizes(const axis_p *p, const xd_gnode_t *nd, xd_gtv_t in, size_t ax, int64_t *sz, xd_error_t *err) {
  int64_t total = in[0]->dims[ax], n = (int64_t)nd->n_out;
  if (p->from_input && nd->n_in > 1 && in[1]) {
    int rc = need_known(in[1], "split", err);
    if (rc != XD_OK) return rc;
    if (xd_tensor_numel(in[1]) != nd->n_out) return xd_error_set(err, XD_EINVAL, "split", "one size per output needed");
    for (size_t k = 0; k < nd->n_out; k++) sz[k] = xd_tensor_get_i(in[1], k);
  } else if (!p->from_input && p->nsplit) {
    if (p->nsplit != nd->n_out) return xd_error_set(err, XD_EINVAL, "split", "one size per output needed");
    memcpy(sz, p->split, nd->n_out * sizeof *sz);
  } else { /* equal parts, the last smaller (opset 18) */
    int64_t each = (total + n - 1) / n;
    for (int64_t k = 0; k < n; k++) sz[k] = k + 1 < n ? each : total - each * (n - 1);
  }
  int64_t s = 0;
  for (size_t k = 0; k < nd->n_out; k++) {
    if (sz[k] < 0) return xd_error_set(err, XD_EINVAL, "split", "negative size");
    s += sz[k];
  }
  if (s != total) return xd_error_set(err, XD_EINVAL, "split", "sizes add up to %lld, the axis has %lld", (long long)s, (long long)total);
  return XD_OK;
}

static int split_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  const axis_p *p = (const axis_p *)nd->params;
  size_t ax;
  int64_t sz[XD_GRAPH_MAX_IO];
  int rc = xd_gop_axis(p->axis, in[0]->rank, "axis", &ax, err);
  if (rc == XD_OK) rc = split_sizes(p, nd, in, ax, sz, err);
  if (rc != XD_OK) return rc;
  for (size_t k = 0; k < nd->n_out; k++) {
    xd_gop_same(in[0], out[k], in[0]->dtype);
    out[k]->dims[ax] = sz[k];
  }
  return XD_OK;
}

static int split_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  const axis_p *p = (const axis_p *)nd->params;
  size_t ax, outer, inner, off = 0;
  xd_gop_axis(p->axis, in[0]->rank, "axis", &ax, NULL);
  axis_geom(in[0], ax, &outer, &inner);
  size_t es = xd_dtype_size(in[0]->dtype), dall = (size_t)in[0]->dims[ax];
  for (size_t k = 0; k < nd->n_out; k++) {
    size_t dk = (size_t)out[k]->dims[ax];
    block_copy(in[0]->data, out[k]->data, outer, dall, dk, off, inner * es, 1);
    off += dk;
  }
  return XD_OK;
}

static int split_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                          void *scratch) {
  const axis_p *p = (const axis_p *)nd->params;
  if (!din[0]) return XD_OK;
  size_t ax, outer, inner, off = 0;
  xd_gop_axis(p->axis, in[0]->rank, "axis", &ax, NULL);
  axis_geom(in[0], ax, &outer, &inner);
  size_t dall = (size_t)in[0]->dims[ax];
  double *D = din[0]->data;
  for (size_t k = 0; k < nd->n_out; k++) {
    size_t dk = (size_t)out[k]->dims[ax];
    if (dout[k]) {
      const double *G = dout[k]->data;
      for (size_t o = 0; o < outer; o++)
        for (size_t e = 0; e < dk * inner; e++) D[(o * dall + off) * inner + e] += G[o * dk * inner + e];
    }
    off += dk;
  }
  return XD_OK;
}

/* ---- Slice ------------------------------------------------------------------------------------ */

typedef struct slice_p {
  int from_input;
  size_t n;
  int64_t starts[MAXR], ends[MAXR], axes[MAXR];
  size_t naxes;
} slice_p;
_Static_assert(sizeof(slice_p) <= XD_GOP_PARAMS, "params");

static int slice_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  slice_p *p = (slice_p *)nd->params;
  p->from_input = a->opset >= 10;
  size_t ne;
  int rc = xd_gattr_ints(a, "starts", p->starts, MAXR, &p->n, err);
  if (rc == XD_OK) rc = xd_gattr_ints(a, "ends", p->ends, MAXR, &ne, err);
  if (rc == XD_OK) rc = xd_gattr_ints(a, "axes", p->axes, MAXR, &p->naxes, err);
  if (rc == XD_OK && !p->from_input && ne != p->n) rc = xd_error_set(err, XD_EINVAL, "ends", "starts and ends differ in length");
  return rc;
}

/* Per axis of x: first index, step and count of the slice. */
static int slice_geom(const xd_gnode_t *nd, xd_gtv_t in, int64_t *first, int64_t *step, int64_t *count,
                      xd_error_t *err) {
  const slice_p *p = (const slice_p *)nd->params;
  const xd_tensor_t *x = in[0];
  size_t r = x->rank, n = p->n;
  int64_t st[MAXR], en[MAXR], ax[MAXR], sp[MAXR];
  int rc;
  if (p->from_input) {
    if ((rc = need_known(in[1], "starts", err)) != XD_OK || (rc = need_known(in[2], "ends", err)) != XD_OK) return rc;
    n = xd_tensor_numel(in[1]);
    if (n > MAXR || xd_tensor_numel(in[2]) != n) return xd_error_set(err, XD_EINVAL, "ends", "starts and ends differ");
    for (size_t i = 0; i < n; i++) {
      st[i] = xd_tensor_get_i(in[1], i);
      en[i] = xd_tensor_get_i(in[2], i);
      ax[i] = (int64_t)i;
      sp[i] = 1;
    }
    if (nd->n_in > 3 && in[3]) {
      if ((rc = need_known(in[3], "axes", err)) != XD_OK) return rc;
      if (xd_tensor_numel(in[3]) != n) return xd_error_set(err, XD_EINVAL, "axes", "one axis per start");
      for (size_t i = 0; i < n; i++) ax[i] = xd_tensor_get_i(in[3], i);
    }
    if (nd->n_in > 4 && in[4]) {
      if ((rc = need_known(in[4], "steps", err)) != XD_OK) return rc;
      if (xd_tensor_numel(in[4]) != n) return xd_error_set(err, XD_EINVAL, "steps", "one step per start");
      for (size_t i = 0; i < n; i++) sp[i] = xd_tensor_get_i(in[4], i);
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      st[i] = p->starts[i];
      en[i] = p->ends[i];
      ax[i] = p->naxes ? p->axes[i] : (int64_t)i;
      sp[i] = 1;
    }
  }
  for (size_t d = 0; d < r; d++) {
    first[d] = 0;
    step[d] = 1;
    count[d] = x->dims[d];
  }
  for (size_t i = 0; i < n; i++) {
    size_t d;
    if ((rc = xd_gop_axis(ax[i], r, "axes", &d, err)) != XD_OK) return rc;
    int64_t dim = x->dims[d], s = st[i], e = en[i], k = sp[i];
    if (k == 0) return xd_error_set(err, XD_EINVAL, "steps", "a step of 0");
    if (s < 0) s += dim;
    if (e < 0 && e > INT64_MIN / 2) e += dim;
    if (k > 0) {
      s = s < 0 ? 0 : s > dim ? dim : s;
      e = e < 0 ? 0 : e > dim ? dim : e;
      count[d] = e > s ? (e - s + k - 1) / k : 0;
    } else {
      s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
      e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
      count[d] = s > e ? (s - e + (-k) - 1) / (-k) : 0;
    }
    first[d] = s;
    step[d] = k;
  }
  return XD_OK;
}

static int slice_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  int64_t first[MAXR], step[MAXR], count[MAXR];
  int rc = slice_geom(nd, in, first, step, count, err);
  if (rc != XD_OK) return rc;
  xd_gop_same(in[0], out[0], in[0]->dtype);
  for (size_t d = 0; d < in[0]->rank; d++) out[0]->dims[d] = count[d];
  return XD_OK;
}

/* Walks the output; BODY sees o and i (the input index). */
#define SLICE_FOR(X, Y, FIRST, STEP, BODY)                                                \
  do {                                                                                    \
    size_t r_ = (X)->rank, idx_[MAXR] = {0};                                              \
    int64_t ist_[MAXR], base_ = 0;                                                        \
    for (size_t d_ = 0; d_ < r_; d_++) {                                                  \
      ist_[d_] = (int64_t)xd_tensor_stride(X, d_);                                        \
      base_ += (FIRST)[d_] * ist_[d_];                                                    \
    }                                                                                     \
    size_t inner_ = r_ ? (size_t)(Y)->dims[r_ - 1] : 1, n_ = xd_tensor_numel(Y), o = 0;   \
    int64_t is_ = r_ ? (STEP)[r_ - 1] * ist_[r_ - 1] : 0;                                 \
    for (size_t it_ = 0; inner_ && it_ < n_ / inner_; it_++) {                            \
      int64_t i = base_;                                                                  \
      for (size_t d_ = 0; d_ + 1 < r_; d_++) i += (int64_t)idx_[d_] * (STEP)[d_] * ist_[d_]; \
      for (size_t e_ = 0; e_ < inner_; e_++, o++, i += is_) { BODY; }                     \
      for (size_t d_ = r_ ? r_ - 1 : 0; d_-- > 0;) {                                      \
        if (++idx_[d_] < (size_t)(Y)->dims[d_]) break;                                    \
        idx_[d_] = 0;                                                                     \
      }                                                                                   \
    }                                                                                     \
  } while (0)

static int slice_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  int64_t first[MAXR], step[MAXR], count[MAXR];
  if (slice_geom(nd, in, first, step, count, NULL) != XD_OK) return XD_EINVAL;
  size_t es = xd_dtype_size(in[0]->dtype);
  const char *X = in[0]->data;
  char *Y = out[0]->data;
  if (es == 4) SLICE_FOR(in[0], out[0], first, step, memcpy(Y + 4 * o, X + 4 * i, 4));
  else if (es == 8) SLICE_FOR(in[0], out[0], first, step, memcpy(Y + 8 * o, X + 8 * i, 8));
  else SLICE_FOR(in[0], out[0], first, step, Y[o] = X[i]);
  return XD_OK;
}

static int slice_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                          void *scratch) {
  if (!din[0] || !dout[0]) return XD_OK;
  int64_t first[MAXR], step[MAXR], count[MAXR];
  if (slice_geom(nd, in, first, step, count, NULL) != XD_OK) return XD_EINVAL;
  const double *G = dout[0]->data;
  double *D = din[0]->data;
  SLICE_FOR(in[0], out[0], first, step, D[i] += G[o]);
  return XD_OK;
}

/* ---- Gather ------------------------------------------------------------------------------------ */

typedef struct gather_p {
  int64_t axis;
} gather_p;

static int gather_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  ((gather_p *)nd->params)->axis = xd_gattr_int(a, "axis", 0);
  return XD_OK;
}

static int gather_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  const xd_tensor_t *x = in[0], *ix = in[1];
  size_t ax;
  int rc = xd_gop_axis(((const gather_p *)nd->params)->axis, x->rank, "axis", &ax, err);
  if (rc != XD_OK) return rc;
  if (ix->dtype != XD_DT_I64) return xd_error_set(err, XD_EINVAL, NULL, "indices must be integers");
  if (x->rank + ix->rank - 1 > MAXR) return xd_error_set(err, XD_EINVAL, NULL, "result of rank > %d", MAXR);
  out[0]->dtype = x->dtype;
  out[0]->rank = 0;
  for (size_t d = 0; d < ax; d++) out[0]->dims[out[0]->rank++] = x->dims[d];
  for (size_t d = 0; d < ix->rank; d++) out[0]->dims[out[0]->rank++] = ix->dims[d];
  for (size_t d = ax + 1; d < x->rank; d++) out[0]->dims[out[0]->rank++] = x->dims[d];
  return XD_OK;
}

static int gather_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  const xd_tensor_t *x = in[0], *ix = in[1];
  size_t ax, outer, inner;
  xd_gop_axis(((const gather_p *)nd->params)->axis, x->rank, "axis", &ax, NULL);
  axis_geom(x, ax, &outer, &inner);
  size_t es = xd_dtype_size(x->dtype), ni = xd_tensor_numel(ix), dim = (size_t)x->dims[ax];
  const int64_t *I = ix->data;
  for (size_t k = 0; k < ni; k++)
    if (I[k] < -(int64_t)dim || I[k] >= (int64_t)dim) return XD_EINVAL;
  const char *X = x->data;
  char *Y = out[0]->data;
  size_t rowb = inner * es;
  for (size_t o = 0; o < outer; o++)
    for (size_t k = 0; k < ni; k++) {
      size_t j = (size_t)(I[k] < 0 ? I[k] + (int64_t)dim : I[k]);
      memcpy(Y + (o * ni + k) * rowb, X + (o * dim + j) * rowb, rowb);
    }
  return XD_OK;
}

static int gather_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                           void *scratch) {
  if (!din[0] || !dout[0]) return XD_OK;
  const xd_tensor_t *x = in[0], *ix = in[1];
  size_t ax, outer, inner;
  xd_gop_axis(((const gather_p *)nd->params)->axis, x->rank, "axis", &ax, NULL);
  axis_geom(x, ax, &outer, &inner);
  size_t ni = xd_tensor_numel(ix), dim = (size_t)x->dims[ax];
  const int64_t *I = ix->data;
  const double *G = dout[0]->data;
  double *D = din[0]->data;
  for (size_t o = 0; o < outer; o++)
    for (size_t k = 0; k < ni; k++) {
      size_t j = (size_t)(I[k] < 0 ? I[k] + (int64_t)dim : I[k]);
      for (size_t e = 0; e < inner; e++) D[(o * dim + j) * inner + e] += G[(o * ni + k) * inner + e];
    }
  return XD_OK;
}

/* ---- Expand ----------------------------------------------------------------------------------- */

static int expand_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  int rc = need_known(in[1], "shape", err);
  if (rc != XD_OK) return rc;
  xd_tensor_t s = {.rank = xd_tensor_numel(in[1])};
  if (s.rank > MAXR) return xd_error_set(err, XD_EINVAL, "shape", "rank > %d", MAXR);
  for (size_t d = 0; d < s.rank; d++) {
    s.dims[d] = xd_tensor_get_i(in[1], d);
    if (s.dims[d] < 0 || s.dims[d] > XD_GRAPH_MAX_ELEMENTS) return xd_error_set(err, XD_EINVAL, "shape", "bad dimension");
  }
  rc = xd_gop_broadcast(in[0], &s, out[0], err);
  out[0]->dtype = in[0]->dtype;
  return rc;
}

static int expand_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  /* broadcast copy: walk the output, the input's strides 0 on broadcast axes */
  const xd_tensor_t *x = in[0];
  xd_tensor_t *y = out[0];
  size_t r = y->rank, st[MAXR], s = 1, idx[MAXR] = {0};
  for (size_t i = r; i-- > 0;) {
    int64_t d = i + x->rank >= r ? x->dims[i + x->rank - r] : 1;
    st[i] = d == 1 ? 0 : s;
    s *= (size_t)d;
  }
  size_t es = xd_dtype_size(x->dtype), n = xd_tensor_numel(y);
  const char *X = x->data;
  char *Y = y->data;
  for (size_t o = 0; o < n; o++) {
    size_t i = 0;
    for (size_t d = 0; d < r; d++) i += idx[d] * st[d];
    memcpy(Y + o * es, X + i * es, es);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < (size_t)y->dims[d]) break;
      idx[d] = 0;
    }
  }
  return XD_OK;
}

static int expand_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                           void *scratch) {
  if (din[0] && dout[0]) xd_gop_unbroadcast_add(out[0], dout[0]->data, in[0], din[0]->data);
  return XD_OK;
}

/* ---- ConstantOfShape, Range --------------------------------------------------------------------- */

typedef struct cos_p {
  int dtype; /* logical: F32 (the run's float), I64 or BOOL */
  double v;
} cos_p;

static int cos_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  cos_p *p = (cos_p *)nd->params;
  const xd_gattr_t *t = xd_gattr_find(a, "value");
  p->dtype = XD_DT_F32;
  p->v = 0;
  if (t && t->type == XD_GATTR_TENSOR && t->t) {
    if (xd_tensor_numel(t->t) != 1) return xd_error_set(err, XD_EINVAL, "value", "value must hold one element");
    p->dtype = t->t->dtype;
    p->v = xd_tensor_get_d(t->t, 0);
  }
  return XD_OK;
}

static int cos_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  const cos_p *p = (const cos_p *)nd->params;
  int rc = need_known(in[0], "input", err);
  if (rc != XD_OK) return rc;
  out[0]->rank = xd_tensor_numel(in[0]);
  if (out[0]->rank > MAXR) return xd_error_set(err, XD_EINVAL, "input", "rank > %d", MAXR);
  for (size_t d = 0; d < out[0]->rank; d++) {
    out[0]->dims[d] = xd_tensor_get_i(in[0], d);
    if (out[0]->dims[d] < 0 || out[0]->dims[d] > XD_GRAPH_MAX_ELEMENTS)
      return xd_error_set(err, XD_EINVAL, "input", "dimension %lld", (long long)out[0]->dims[d]);
  }
  out[0]->dtype = p->dtype == XD_DT_F32 ? env->fdt : (xd_dtype_t)p->dtype;
  return XD_OK;
}

static int cos_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  const cos_p *p = (const cos_p *)nd->params;
  size_t n = xd_tensor_numel(out[0]);
  for (size_t i = 0; i < n; i++) xd_tensor_set_d(out[0], i, p->v);
  return XD_OK;
}

static int range_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  int rc;
  for (int k = 0; k < 3; k++)
    if ((rc = need_known(in[k], k == 0 ? "start" : k == 1 ? "limit" : "delta", err)) != XD_OK) return rc;
  double s = xd_tensor_get_d(in[0], 0), l = xd_tensor_get_d(in[1], 0), d = xd_tensor_get_d(in[2], 0);
  if (d == 0 || d != d) return xd_error_set(err, XD_EINVAL, "delta", "delta is 0");
  double n = ceil((l - s) / d);
  if (n < 0) n = 0;
  if (!(n <= (double)XD_GRAPH_MAX_ELEMENTS)) return xd_error_set(err, XD_EINVAL, "limit", "too many elements");
  out[0]->rank = 1;
  out[0]->dims[0] = (int64_t)n;
  out[0]->dtype = in[0]->dtype;
  return XD_OK;
}

static int range_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  size_t n = xd_tensor_numel(out[0]);
  if (out[0]->dtype == XD_DT_I64) {
    int64_t s = xd_tensor_get_i(in[0], 0), d = xd_tensor_get_i(in[2], 0);
    for (size_t i = 0; i < n; i++) ((int64_t *)out[0]->data)[i] = s + (int64_t)i * d;
  } else {
    double s = xd_tensor_get_d(in[0], 0), d = xd_tensor_get_d(in[2], 0);
    for (size_t i = 0; i < n; i++) xd_tensor_set_d(out[0], i, s + (double)i * d);
  }
  return XD_OK;
}

/* ---- Pad (constant mode) ----------------------------------------------------------------------- */

typedef struct pad_p {
  int from_input;
  size_t n;
  int64_t pads[2 * MAXR];
  double value;
} pad_p;

static int pad_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  pad_p *p = (pad_p *)nd->params;
  int present;
  if (!xd_gattr_str_is(a, "mode", "constant", &present) && present)
    return xd_error_set(err, XD_EINVAL, "mode", "only mode \"constant\" is supported");
  p->from_input = a->opset >= 11;
  p->value = xd_gattr_float(a, "value", 0);
  return xd_gattr_ints(a, "pads", p->pads, 2 * MAXR, &p->n, err);
}

/* begin[d], end[d] pads of x (may be negative: a crop) and the fill value. */
static int pad_geom(const xd_gnode_t *nd, xd_gtv_t in, int64_t *b, int64_t *e, double *v, xd_error_t *err) {
  const pad_p *p = (const pad_p *)nd->params;
  size_t r = in[0]->rank, n = p->n;
  int64_t pads[2 * MAXR];
  memcpy(pads, p->pads, sizeof pads);
  *v = p->value;
  if (p->from_input) {
    int rc = need_known(in[1], "pads", err);
    if (rc != XD_OK) return rc;
    n = xd_tensor_numel(in[1]);
    if (n > 2 * MAXR) return xd_error_set(err, XD_EINVAL, "pads", "too many pads");
    for (size_t i = 0; i < n; i++) pads[i] = xd_tensor_get_i(in[1], i);
    if (nd->n_in > 2 && in[2]) {
      if ((rc = need_known(in[2], "constant_value", err)) != XD_OK) return rc;
      *v = xd_tensor_get_d(in[2], 0);
    }
    if (nd->n_in > 3 && in[3]) return xd_error_set(err, XD_EINVAL, "axes", "Pad with axes is not supported");
  }
  if (n != 2 * r) return xd_error_set(err, XD_EINVAL, "pads", "%zu pads for rank %zu", n, r);
  for (size_t d = 0; d < r; d++) {
    b[d] = pads[d];
    e[d] = pads[d + r];
    if (in[0]->dims[d] + b[d] + e[d] < 0 || b[d] > (1 << 24) || e[d] > (1 << 24))
      return xd_error_set(err, XD_EINVAL, "pads", "pads do not fit dimension %zu", d);
  }
  return XD_OK;
}

static int pad_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  int64_t b[MAXR], e[MAXR];
  double v;
  int rc = pad_geom(nd, in, b, e, &v, err);
  if (rc != XD_OK) return rc;
  xd_gop_same(in[0], out[0], in[0]->dtype);
  for (size_t d = 0; d < in[0]->rank; d++) out[0]->dims[d] += b[d] + e[d];
  return XD_OK;
}

/* For output index o: the input index, or -1 in the padding. */
static int64_t pad_src(const xd_tensor_t *x, const xd_tensor_t *y, const int64_t *b, size_t o) {
  int64_t i = 0;
  for (size_t d = y->rank; d-- > 0;) {
    int64_t c = (int64_t)(o % (size_t)y->dims[d]) - b[d];
    o /= (size_t)y->dims[d];
    if (c < 0 || c >= x->dims[d]) return -1;
    i += c * (int64_t)xd_tensor_stride(x, d);
  }
  return i;
}

static int pad_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  int64_t b[MAXR], e[MAXR];
  double v;
  if (pad_geom(nd, in, b, e, &v, NULL) != XD_OK) return XD_EINVAL;
  size_t n = xd_tensor_numel(out[0]), es = xd_dtype_size(in[0]->dtype);
  for (size_t o = 0; o < n; o++) {
    int64_t i = pad_src(in[0], out[0], b, o);
    if (i < 0) xd_tensor_set_d(out[0], o, v);
    else memcpy((char *)out[0]->data + o * es, (const char *)in[0]->data + (size_t)i * es, es);
  }
  return XD_OK;
}

static int pad_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                        void *scratch) {
  if (!din[0] || !dout[0]) return XD_OK;
  int64_t b[MAXR], e[MAXR];
  double v;
  if (pad_geom(nd, in, b, e, &v, NULL) != XD_OK) return XD_EINVAL;
  const double *G = dout[0]->data;
  double *D = din[0]->data;
  for (size_t o = 0, n = xd_tensor_numel(out[0]); o < n; o++) {
    int64_t i = pad_src(in[0], out[0], b, o);
    if (i >= 0) D[i] += G[o];
  }
  return XD_OK;
}

/* ---- the rows ---------------------------------------------------------------------------------- */

const xd_gop_t xd_gop_shape_rows[] = {
    {"Shape", 1, 1, 1, 1, XD_GOP_SHAPE_ONLY, shape_parse, shape_infer, shape_forward, NULL},
    {"Reshape", 2, 2, 1, 1, 0, axes_parse, reshape_infer, view_forward, view_backward},
    {"Flatten", 1, 1, 1, 1, 0, axes_parse, flatten_infer, view_forward, view_backward},
    {"Unsqueeze", 1, 2, 1, 1, 0, axes_parse, unsqueeze_infer, view_forward, view_backward},
    {"Squeeze", 1, 2, 1, 1, 0, axes_parse, squeeze_infer, view_forward, view_backward},
    {"Transpose", 1, 1, 1, 1, 0, transpose_parse, transpose_infer, transpose_forward, transpose_backward},
    {"Concat", 1, XD_GRAPH_MAX_IO, 1, 1, 0, axis_parse, concat_infer, concat_forward, concat_backward},
    {"Split", 1, 2, 1, XD_GRAPH_MAX_IO, 0, axis_parse, split_infer, split_forward, split_backward},
    {"Slice", 1, 5, 1, 1, 0, slice_parse, slice_infer, slice_forward, slice_backward},
    {"Gather", 2, 2, 1, 1, 0, gather_parse, gather_infer, gather_forward, gather_backward},
    {"Expand", 2, 2, 1, 1, 0, NULL, expand_infer, expand_forward, expand_backward},
    {"ConstantOfShape", 1, 1, 1, 1, 0, cos_parse, cos_infer, cos_forward, NULL},
    {"Range", 3, 3, 1, 1, 0, NULL, range_infer, range_forward, NULL},
    {"Pad", 1, 4, 1, 1, 0, pad_parse, pad_infer, pad_forward, pad_backward},
    {.name = NULL},
};
