/* gop_shape.c — shape operators: Shape, Reshape, Flatten, Unsqueeze, Squeeze,
 * Transpose, Concat, Split, ConstantOfShape, Range (indexing ones: gop_index.c).
 * Any element type moves through them (they copy bytes); their backward (the run's float type) moves
 * the gradient back the same way, accumulating (gop.h). Inputs that decide a shape
 * (Reshape's shape, Slice's starts, ...) must be known at plan time: constants or shape
 * computations, which the planner folds. References: the ONNX operator specs.
 */
#include <math.h>
#include <string.h>

#include "core/gop.h"
#include "core/hotloop.h"
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
  XD_GOP_FLOAT_T(out[0]->dtype, {
    const T *G = dout[0]->data;
    T *D = din[0]->data;
    for (size_t i = 0, n = xd_tensor_numel(out[0]); i < n; i++) D[i] += G[i];
  });
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

/* Output rows of `inner` elements, row k from input offset Σ idx[d]·st[d] (idx row k's
 * index over the output's leading axes): a transpose that keeps the last axis. Floats
 * copy inline (the attention heads' runs are 16 floats: a memcpy call each cost more). */
XD_HOT_LOOP static void runs_f(const float *restrict X, float *restrict Y, size_t n, size_t inner, const size_t *st,
                               const int64_t *dims, size_t r) {
  size_t idx[MAXR] = {0};
  for (size_t o = 0; o < n; o += inner) {
    size_t i = 0;
    for (size_t d = 0; d + 1 < r; d++) i += idx[d] * st[d];
    for (size_t e = 0; e < inner; e++) Y[o + e] = X[i + e];
    for (size_t d = r - 1; d-- > 0;) {
      if (++idx[d] < (size_t)dims[d]) break;
      idx[d] = 0;
    }
  }
}

static void runs_bytes(const char *X, char *Y, size_t es, size_t n, size_t inner, const size_t *st, const int64_t *dims,
                       size_t r) {
  size_t idx[MAXR] = {0};
  for (size_t o = 0; inner && o < n; o += inner) {
    size_t i = 0;
    for (size_t d = 0; d + 1 < r; d++) i += idx[d] * st[d];
    memcpy(Y + es * o, X + es * i, es * inner);
    for (size_t d = r - 1; d-- > 0;) {
      if (++idx[d] < (size_t)dims[d]) break;
      idx[d] = 0;
    }
  }
}

static int transpose_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  size_t perm[MAXR];
  get_perm((const perm_p *)nd->params, in[0]->rank, perm);
  size_t es = xd_dtype_size(in[0]->dtype);
  const char *X = in[0]->data;
  char *Y = out[0]->data;
  size_t r = in[0]->rank;
  if (r >= 2 && perm[r - 1] == r - 1) { /* the last axis stays: contiguous runs of it, one copy each */
    size_t inner = (size_t)out[0]->dims[r - 1], n = xd_tensor_numel(out[0]), ist[MAXR], st[MAXR];
    for (size_t d = 0; d < r; d++) ist[d] = xd_tensor_stride(in[0], d);
    for (size_t d = 0; d < r; d++) st[d] = ist[perm[d]];
    if (es == 4 && inner)
      runs_f((const float *)X, (float *)Y, n, inner, st, out[0]->dims, r);
    else
      runs_bytes(X, Y, es, n, inner, st, out[0]->dims, r);
    return XD_OK;
  }
  if (es == 4) PERM_FOR(in[0], out[0], perm, memcpy(Y + 4 * o, X + 4 * i, 4));
  else if (es == 8) PERM_FOR(in[0], out[0], perm, memcpy(Y + 8 * o, X + 8 * i, 8));
  else PERM_FOR(in[0], out[0], perm, Y[o] = X[i]);
  return XD_OK;
}

XD_HOT_LOOP static void add_row_f(float *restrict d, const float *restrict g, size_t n) {
  for (size_t e = 0; e < n; e++) d[e] += g[e];
}
XD_HOT_LOOP static void add_row_d(double *restrict d, const double *restrict g, size_t n) {
  for (size_t e = 0; e < n; e++) d[e] += g[e];
}

static int transpose_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                              void *scratch) {
  if (!din[0] || !dout[0]) return XD_OK;
  size_t perm[MAXR], r = in[0]->rank;
  get_perm((const perm_p *)nd->params, r, perm);
  if (r > 1 && perm[r - 1] == r - 1) { /* the last axis stays last (attention's head split): row by row */
    size_t inner = (size_t)out[0]->dims[r - 1];
    xd_tensor_t yo = *out[0], xo = *in[0]; /* the same transpose without that axis */
    yo.rank = xo.rank = r - 1;
    int f = out[0]->dtype == XD_DT_F32;
    PERM_FOR(&xo, &yo, perm, {
      if (f) add_row_f((float *)din[0]->data + i * inner, (const float *)dout[0]->data + o * inner, inner);
      else add_row_d((double *)din[0]->data + i * inner, (const double *)dout[0]->data + o * inner, inner);
    });
    return XD_OK;
  }
  XD_GOP_FLOAT_T(out[0]->dtype, {
    const T *G = dout[0]->data;
    T *D = din[0]->data;
    PERM_FOR(in[0], out[0], perm, D[i] += G[o]);
  });
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
  XD_GOP_FLOAT_T(out[0]->dtype, {
    const T *G = dout[0]->data;
    for (size_t k = 0; k < nd->n_in; k++) {
      if (!in[k]) continue;
      size_t dk = (size_t)in[k]->dims[ax];
      if (din[k]) {
        T *D = din[k]->data;
        for (size_t o = 0; o < outer; o++)
          for (size_t e = 0; e < dk * inner; e++) D[o * dk * inner + e] += G[(o * dall + off) * inner + e];
      }
      off += dk;
    }
  });
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
  XD_GOP_FLOAT_T(in[0]->dtype, {
    T *D = din[0]->data;
    for (size_t k = 0; k < nd->n_out; k++) {
      size_t dk = (size_t)out[k]->dims[ax];
      if (dout[k]) {
        const T *G = dout[k]->data;
        for (size_t o = 0; o < outer; o++)
          for (size_t e = 0; e < dk * inner; e++) D[(o * dall + off) * inner + e] += G[o * dk * inner + e];
      }
      off += dk;
    }
  });
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
  size_t n = xd_tensor_numel(out[0]), es = xd_dtype_size(out[0]->dtype);
  if (n == 0) return XD_OK;
  xd_tensor_set_d(out[0], 0, p->v); /* then copies of it, doubling: a conversion per element
                                      * was a few percent of a GRU text model's forward (its h0) */
  for (size_t have = 1; have < n;) {
    size_t c = have < n - have ? have : n - have;
    memcpy((char *)out[0]->data + have * es, out[0]->data, c * es);
    have += c;
  }
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
    {"ConstantOfShape", 1, 1, 1, 1, 0, cos_parse, cos_infer, cos_forward, NULL},
    {"Range", 3, 3, 1, 1, 0, NULL, range_infer, range_forward, NULL},
    {.name = NULL},
};
