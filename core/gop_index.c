/* gop_index.c — indexing operators: Slice, Gather, Expand, Pad (constant mode). Any
 * element type moves through them; their backward (the run's float type) scatters the gradient back,
 * accumulating (gop.h). Starts, ends, pads and shapes must be known at plan time
 * (constants or folded shape computations). References: the ONNX operator specs. */
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

static void axis_geom(const xd_tensor_t *t, size_t ax, size_t *outer, size_t *inner) {
  *outer = 1;
  for (size_t d = 0; d < ax; d++) *outer *= (size_t)t->dims[d];
  *inner = xd_tensor_stride(t, ax);
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

/* Steps idx, a row's index over the axes [0, r-1) of dims, to the next row (the last of
 * those axes fastest): the odometer every row-wise walk below shares. */
static inline void next_row(size_t *idx, const int64_t *dims, size_t r) {
  for (size_t d = r ? r - 1 : 0; d-- > 0;) {
    if (++idx[d] < (size_t)dims[d]) break;
    idx[d] = 0;
  }
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
      next_row(idx_, (Y)->dims, r_);                                                      \
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
  XD_GOP_FLOAT_T(out[0]->dtype, {
    const T *G = dout[0]->data;
    T *D = din[0]->data;
    SLICE_FOR(in[0], out[0], first, step, D[i] += G[o]);
  });
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
  XD_GOP_FLOAT_T(out[0]->dtype, {
    const T *G = dout[0]->data;
    T *D = din[0]->data;
    for (size_t o = 0; o < outer; o++)
      for (size_t k = 0; k < ni; k++) {
        size_t j = (size_t)(I[k] < 0 ? I[k] + (int64_t)dim : I[k]);
        for (size_t e = 0; e < inner; e++) D[(o * dim + j) * inner + e] += G[(o * ni + k) * inner + e];
      }
  });
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
  /* row by row: the input's strides are 0 on broadcast axes; a row is copied whole, or its
   * one value repeated when the last axis broadcasts */
  const xd_tensor_t *x = in[0];
  xd_tensor_t *y = out[0];
  size_t r = y->rank, st[MAXR], s = 1, idx[MAXR] = {0};
  for (size_t i = r; i-- > 0;) {
    int64_t d = i + x->rank >= r ? x->dims[i + x->rank - r] : 1;
    st[i] = d == 1 ? 0 : s;
    s *= (size_t)d;
  }
  size_t es = xd_dtype_size(x->dtype), n = xd_tensor_numel(y), inner = r ? (size_t)y->dims[r - 1] : 1;
  int whole = r && st[r - 1] == 1;
  const char *X = x->data;
  char *Y = y->data;
  for (size_t o = 0; inner && o < n; o += inner) {
    size_t i = 0;
    for (size_t d = 0; d + 1 < r; d++) i += idx[d] * st[d];
    if (whole) memcpy(Y + o * es, X + i * es, inner * es);
    else
      for (size_t k = 0; k < inner; k++) memcpy(Y + (o + k) * es, X + i * es, es);
    for (size_t d = r ? r - 1 : 0; d-- > 0;) {
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

/* Walks the output row by row (all axes but the last): BODY sees o (the row's first
 * output index), i (the matching input row's first index, or -1 when the row lies in the
 * padding), lo and len (the output columns [lo, lo+len) that come from input columns
 * [lo - b_last + ..., ...)) and src0 (the first input column copied). */
#define PAD_ROWS(X, Y, B, BODY)                                                               \
  do {                                                                                        \
    size_t r_ = (Y)->rank, idx_[MAXR] = {0};                                                  \
    size_t inner_ = r_ ? (size_t)(Y)->dims[r_ - 1] : 1, n_ = xd_tensor_numel(Y);              \
    int64_t xin_ = r_ ? (X)->dims[r_ - 1] : 1, bl_ = r_ ? (B)[r_ - 1] : 0;                     \
    int64_t lo_ = bl_ > 0 ? bl_ : 0, src0 = bl_ < 0 ? -bl_ : 0;                                \
    int64_t len_ = xin_ - src0;                                                               \
    if (lo_ + len_ > (int64_t)inner_) len_ = (int64_t)inner_ - lo_;                            \
    if (len_ < 0) len_ = 0;                                                                   \
    size_t lo = (size_t)lo_, len = (size_t)len_;                                              \
    for (size_t o = 0; inner_ && o < n_; o += inner_) {                                       \
      int64_t i = 0;                                                                          \
      for (size_t d_ = 0; d_ + 1 < r_ && i >= 0; d_++) {                                      \
        int64_t c_ = (int64_t)idx_[d_] - (B)[d_];                                             \
        if (c_ < 0 || c_ >= (X)->dims[d_]) i = -1;                                            \
        else i += c_ * (int64_t)xd_tensor_stride(X, d_);                                      \
      }                                                                                       \
      BODY;                                                                                   \
      next_row(idx_, (Y)->dims, r_);                                                          \
    }                                                                                         \
  } while (0)

static int pad_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  int64_t b[MAXR], e[MAXR];
  double v;
  if (pad_geom(nd, in, b, e, &v, NULL) != XD_OK) return XD_EINVAL;
  size_t es = xd_dtype_size(in[0]->dtype), inner = out[0]->rank ? (size_t)out[0]->dims[out[0]->rank - 1] : 1;
  char fill[8];
  xd_tensor_t one = {.dtype = in[0]->dtype, .rank = 0, .data = fill};
  xd_tensor_set_d(&one, 0, v);
  const char *X = in[0]->data;
  char *Y = out[0]->data;
  PAD_ROWS(in[0], out[0], b, {
    for (size_t k = 0; k < inner; k++) memcpy(Y + (o + k) * es, fill, es);
    if (i >= 0 && len) memcpy(Y + (o + lo) * es, X + ((size_t)i + (size_t)src0) * es, len * es);
  });
  return XD_OK;
}

static int pad_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                        void *scratch) {
  if (!din[0] || !dout[0]) return XD_OK;
  int64_t b[MAXR], e[MAXR];
  double v;
  if (pad_geom(nd, in, b, e, &v, NULL) != XD_OK) return XD_EINVAL;
  XD_GOP_FLOAT_T(out[0]->dtype, {
    const T *G = dout[0]->data;
    T *D = din[0]->data;
    PAD_ROWS(in[0], out[0], b, {
      if (i >= 0)
        for (size_t k = 0; k < len; k++) D[(size_t)i + (size_t)src0 + k] += G[o + lo + k];
    });
  });
  return XD_OK;
}

/* ---- the rows ---------------------------------------------------------------------------------- */

const xd_gop_t xd_gop_index_rows[] = {
    {"Slice", 1, 5, 1, 1, 0, slice_parse, slice_infer, slice_forward, slice_backward},
    {"Gather", 2, 2, 1, 1, 0, gather_parse, gather_infer, gather_forward, gather_backward},
    {"Expand", 2, 2, 1, 1, 0, NULL, expand_infer, expand_forward, expand_backward},
    {"Pad", 1, 4, 1, 1, 0, pad_parse, pad_infer, pad_forward, pad_backward},
    {.name = NULL},
};
