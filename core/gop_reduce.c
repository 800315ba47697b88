/* gop_reduce.c — ReduceMean, ReduceSum, ReduceMax, ReduceMin: axes as an attribute or (from
 * opset 13 for ReduceSum, 18 for the others) an input, keepdims, noop_with_empty_axes.
 * Forward in float, double and int64; backward (double) spreads the gradient back over
 * the reduced axes (Max/Min: shared evenly among ties, as torch's amax). gop.h has the
 * contract of a row. */
#include <math.h>
#include <string.h>

#include "core/gop.h"
#include "core/gop_reduce.h"
#include "core/hotloop.h"

#define MAXR XD_TENSOR_MAX_RANK

/* ---- reductions ------------------------------------------------------------------------------ */

enum { R_MEAN, R_SUM, R_MAX, R_MIN };

typedef struct reduce_p {
  int code, keepdims, noop_empty, from_input;
  size_t naxes;
  int64_t axes[MAXR];
} reduce_p;

static int reduce_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  reduce_p *p = (reduce_p *)nd->params;
  const char *nm = nd->op->name;
  p->code = strcmp(nm, "ReduceMean") == 0 ? R_MEAN : strcmp(nm, "ReduceSum") == 0 ? R_SUM
            : strcmp(nm, "ReduceMax") == 0   ? R_MAX
                                             : R_MIN;
  p->keepdims = (int)xd_gattr_int(a, "keepdims", 1);
  p->noop_empty = (int)xd_gattr_int(a, "noop_with_empty_axes", 0);
  /* axes became an input in opset 13 for ReduceSum and 18 for the others */
  p->from_input = a->opset >= (p->code == R_SUM ? 13 : 18);
  return xd_gattr_ints(a, "axes", p->axes, MAXR, &p->naxes, err);
}

/* The reduced axes as flags; XD_EINVAL when out of range. */
static int reduce_axes(const reduce_p *p, const xd_gnode_t *nd, xd_gtv_t in, unsigned char *red, int *noop,
                       xd_error_t *err) {
  size_t r = in[0]->rank, na = p->naxes;
  int64_t ax[MAXR];
  memcpy(ax, p->axes, sizeof ax);
  *noop = 0;
  if (p->from_input && nd->n_in > 1 && in[1]) {
    if (!in[1]->data) return xd_error_set(err, XD_EINVAL, "axes", "the axes must be known before the run");
    na = xd_tensor_numel(in[1]);
    if (na > MAXR) return xd_error_set(err, XD_EINVAL, "axes", "too many axes");
    for (size_t i = 0; i < na; i++) ax[i] = xd_tensor_get_i(in[1], i);
  } else if (p->from_input) {
    na = 0;
  }
  memset(red, 0, MAXR);
  if (na == 0) {
    if (p->noop_empty) *noop = 1;
    for (size_t d = 0; d < r; d++) red[d] = !p->noop_empty;
    return XD_OK;
  }
  for (size_t i = 0; i < na; i++) {
    size_t d;
    int rc = xd_gop_axis(ax[i], r, "axes", &d, err);
    if (rc != XD_OK) return rc;
    red[d] = 1;
  }
  return XD_OK;
}

static int reduce_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  const reduce_p *p = (const reduce_p *)nd->params;
  unsigned char red[MAXR];
  int noop;
  if (!xd_dtype_is_float(in[0]->dtype) && !(in[0]->dtype == XD_DT_I64 && p->code != R_MEAN))
    return xd_error_set(err, XD_EINVAL, NULL, "expects a float input");
  int rc = reduce_axes(p, nd, in, red, &noop, err);
  if (rc != XD_OK) return rc;
  out[0]->dtype = in[0]->dtype;
  out[0]->rank = 0;
  for (size_t d = 0; d < in[0]->rank; d++) {
    if (red[d] && !p->keepdims) continue;
    out[0]->dims[out[0]->rank++] = red[d] ? 1 : in[0]->dims[d];
  }
  env->scratch_bwd = xd_tensor_numel(out[0]) * sizeof(double);
  return XD_OK;
}

/* ost[d]: the output stride of input axis d (0 when reduced). */
static size_t reduce_strides(const xd_tensor_t *x, const unsigned char *red, size_t *ost) {
  size_t s = 1, cnt = 1;
  for (size_t d = x->rank; d-- > 0;) {
    ost[d] = red[d] ? 0 : s;
    if (red[d]) cnt *= (size_t)x->dims[d];
    else s *= (size_t)x->dims[d];
  }
  return cnt;
}

/* BODY sees i (input index) and o (output index). */
#define RED_FOR(X, OST, BODY)                                                      \
  do {                                                                             \
    size_t r_ = (X)->rank, idx_[MAXR] = {0};                                       \
    size_t inner_ = r_ ? (size_t)(X)->dims[r_ - 1] : 1, n_ = xd_tensor_numel(X);   \
    size_t os_ = r_ ? (OST)[r_ - 1] : 0, i = 0;                                    \
    for (size_t it_ = 0; inner_ && it_ < n_ / inner_; it_++) {                     \
      size_t o = 0;                                                                \
      for (size_t d_ = 0; d_ + 1 < r_; d_++) o += idx_[d_] * (OST)[d_];            \
      for (size_t e_ = 0; e_ < inner_; e_++, i++, o += os_) { BODY; }              \
      for (size_t d_ = r_ ? r_ - 1 : 0; d_-- > 0;) {                               \
        if (++idx_[d_] < (size_t)(X)->dims[d_]) break;                             \
        idx_[d_] = 0;                                                              \
      }                                                                            \
    }                                                                              \
  } while (0)

#define REDUCE_BODY(T)                                                                        \
  do {                                                                                        \
    const T *X = x->data;                                                                     \
    T *Y = y->data;                                                                           \
    if (p->code == R_MAX || p->code == R_MIN) {                                               \
      for (size_t o = 0; o < m; o++) Y[o] = 0;                                                \
      unsigned char *seen = scratch;                                                          \
      memset(seen, 0, m);                                                                     \
      if (p->code == R_MAX)                                                                   \
        RED_FOR(x, ost, if (!seen[o] || X[i] > Y[o]) { Y[o] = X[i]; seen[o] = 1; });           \
      else                                                                                    \
        RED_FOR(x, ost, if (!seen[o] || X[i] < Y[o]) { Y[o] = X[i]; seen[o] = 1; });           \
    } else if (last) { /* the common case: reduce the contiguous last axes */                \
      for (size_t o = 0; o < m; o++) {                                                        \
        double s = 0;                                                                         \
        const T *xr = X + o * cnt;                                                            \
        for (size_t e = 0; e < cnt; e++) s += xr[e];                                          \
        Y[o] = (T)(p->code == R_MEAN ? s / (double)cnt : s);                                  \
      }                                                                                       \
    } else {                                                                                  \
      for (size_t o = 0; o < m; o++) Y[o] = 0;                                                \
      RED_FOR(x, ost, Y[o] += X[i]);                                                          \
      if (p->code == R_MEAN)                                                                  \
        for (size_t o = 0; o < m; o++) Y[o] = (T)(Y[o] / (double)cnt);                        \
    }                                                                                         \
  } while (0)

/* 1 when the reduced axes are exactly the last ones (a contiguous inner block). */
static int reduces_last(const xd_tensor_t *x, const unsigned char *red) {
  size_t d = x->rank;
  while (d > 0 && red[d - 1]) d--;
  for (size_t e = 0; e < d; e++)
    if (red[e]) return 0;
  return 1;
}

/* Float rows (m, cnt) summed (or averaged) in double with eight partial sums in a fixed
 * order: vectorized, and the same bits in every clone (the one-accumulator loop waited
 * on each addition; LayerNorm's means are most of a transformer's reductions). */
XD_HOT_LOOP static void sum_rows_f(const float *restrict x, float *restrict y, size_t m, size_t cnt, int mean) {
  for (size_t o = 0; o < m; o++) {
    const float *restrict xr = x + o * cnt;
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t e = 0;
    for (; e + 8 <= cnt; e += 8)
      for (size_t k = 0; k < 8; k++) acc[k] += (double)xr[e + k];
    double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; e < cnt; e++) s += (double)xr[e];
    y[o] = (float)(mean ? s / (double)cnt : s);
  }
}

static int reduce_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  const reduce_p *p = (const reduce_p *)nd->params;
  const xd_tensor_t *x = in[0];
  xd_tensor_t *y = out[0];
  unsigned char red[MAXR];
  int noop;
  size_t ost[MAXR];
  if (reduce_axes(p, nd, in, red, &noop, NULL) != XD_OK) return XD_EINVAL;
  size_t cnt = reduce_strides(x, red, ost), m = xd_tensor_numel(y);
  int last = reduces_last(x, red);
  if (noop) {
    memcpy(y->data, x->data, xd_tensor_bytes(x));
    return XD_OK;
  }
  if (x->dtype == XD_DT_F32 && last && (p->code == R_MEAN || p->code == R_SUM))
    sum_rows_f(x->data, y->data, m, cnt, p->code == R_MEAN);
  else if (x->dtype == XD_DT_F32) REDUCE_BODY(float);
  else if (x->dtype == XD_DT_F64) REDUCE_BODY(double);
  else REDUCE_BODY(int64_t);
  return XD_OK;
}

static int reduce_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                           void *scratch) {
  const reduce_p *p = (const reduce_p *)nd->params;
  if (!din[0] || !dout[0]) return XD_OK;
  const xd_tensor_t *x = in[0];
  unsigned char red[MAXR];
  int noop;
  size_t ost[MAXR];
  if (reduce_axes(p, nd, in, red, &noop, NULL) != XD_OK) return XD_EINVAL;
  size_t cnt = reduce_strides(x, red, ost), m = xd_tensor_numel(out[0]);
  /* the run's float type: T (float or double) for the tensors and their gradients */
#define REDUCE_BWD(T)                                                                                 \
  do {                                                                                                \
    const T *X = x->data, *Y = out[0]->data, *G = dout[0]->data;                                      \
    T *D = din[0]->data;                                                                              \
    if (noop) {                                                                                       \
      for (size_t i = 0, n = xd_tensor_numel(x); i < n; i++) D[i] += G[i];                            \
    } else if (p->code == R_MAX || p->code == R_MIN) { /* shared evenly among ties, as torch's amax */ \
      double *ties = scratch;                                                                         \
      for (size_t o = 0; o < m; o++) ties[o] = 0;                                                     \
      RED_FOR(x, ost, if (X[i] == Y[o]) ties[o] += 1);                                                \
      RED_FOR(x, ost, if (X[i] == Y[o]) D[i] += (T)(G[o] / ties[o]));                                 \
    } else {                                                                                          \
      T s = (T)(p->code == R_MEAN ? 1.0 / (double)cnt : 1.0);                                         \
      RED_FOR(x, ost, D[i] += G[o] * s);                                                              \
    }                                                                                                 \
  } while (0)
  if (x->dtype == XD_DT_F32) REDUCE_BWD(float);
  else REDUCE_BWD(double);
#undef REDUCE_BWD
  return XD_OK;
}

static int reduce_infer_scratch(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env,
                                xd_error_t *err) {
  int rc = reduce_infer(nd, in, out, env, err);
  env->scratch = xd_tensor_numel(out[0]); /* Max/Min: a seen flag per output */
  return rc;
}

/* ---- the rows -------------------------------------------------------------------------------- */

#define RED(name) {name, 1, 2, 1, 1, 0, reduce_parse, reduce_infer_scratch, reduce_forward, reduce_backward}

const xd_gop_t xd_gop_reduce_rows[] = {
    RED("ReduceMean"),
    RED("ReduceSum"),
    RED("ReduceMax"),
    RED("ReduceMin"),
    {.name = NULL},
};

/* ---- for load-time rewrites (gop_reduce.h) ------------------------------------------------- */

int xd_gop_reduce_is_mean_last(const xd_gnode_t *nd, const xd_tensor_t *axes_in, size_t rank) {
  if (!nd->op || strcmp(nd->op->name, "ReduceMean") != 0 || rank == 0) return 0;
  const reduce_p *p = (const reduce_p *)nd->params;
  if (!p->keepdims) return 0;
  size_t na = p->naxes;
  int64_t ax = na ? p->axes[0] : 0;
  if (p->from_input) {
    if (nd->n_in < 2 || nd->in[1] < 0 || !axes_in || !axes_in->data || axes_in->dtype != XD_DT_I64) return 0;
    na = xd_tensor_numel(axes_in);
    if (na == 1) ax = xd_tensor_get_i(axes_in, 0);
  } else if (nd->n_in > 1 && nd->in[1] >= 0) {
    return 0; /* an axes input the opset does not read: not the plain form */
  }
  return na == 1 && (ax == -1 || ax == (int64_t)rank - 1);
}
