/* gop_kern.c — operator-table rows over the heavy kernels of core/kern.h: Conv, ConvTranspose,
 * pools, MatMul, Gemm, BatchNormalization, LayerNormalization, Softmax, LogSoftmax; GRU and
 * LSTM are in core/gop_rnn.c. See core/gop.h for the contract of a row.
 *
 * Each row parses its attributes once into a small struct, rebuilds the kernel's shape
 * from its inputs' dims when it runs (cheap next to the kernel), and dispatches on the
 * run's float type (float32 or float64), forward and backward alike.
 */
#include "core/gop.h"

#include <assert.h>
#include <string.h>

#include "core/gop_kern.h"
#include "core/kern.h"

#define F32(t) ((float *)(t)->data)
#define F64(t) ((double *)(t)->data)
#define DATA_D(t) ((t) ? F64(t) : NULL)
#define DATA_F(t) ((t) ? F32(t) : NULL)

static size_t numel_from(const xd_tensor_t *t, size_t from) {
  size_t n = 1;
  for (size_t i = from; i < t->rank; i++) n *= (size_t)t->dims[i];
  return n;
}

static int need_float(const xd_tensor_t *t, const char *what, xd_error_t *err) {
  if (!t || !xd_dtype_is_float(t->dtype)) return xd_error_set(err, XD_EINVAL, what, "%s must be a float tensor", what);
  return XD_OK;
}

/* The output of Conv, ConvTranspose and the pools: (N, C, out...) with nsp spatial axes. */
static void set_spatial_out(xd_tensor_t *y, xd_dtype_t dt, size_t N, size_t C, size_t nsp, const size_t *out) {
  y->dtype = dt;
  y->rank = 2 + nsp;
  y->dims[0] = (int64_t)N;
  y->dims[1] = (int64_t)C;
  for (size_t i = 0; i < nsp; i++) y->dims[2 + i] = (int64_t)out[i];
}

/* ---- spatial attributes (Conv, pools) ------------------------------------------------------ */

enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID };

typedef struct spatial {
  int64_t k[XD_KERN_MAX_SPATIAL], st[XD_KERN_MAX_SPATIAL], dl[XD_KERN_MAX_SPATIAL];
  int64_t pads[2 * XD_KERN_MAX_SPATIAL];
  int64_t opad[XD_KERN_MAX_SPATIAL], oshape[XD_KERN_MAX_SPATIAL + 2]; /* ConvTranspose */
  size_t nk, nst, ndl, npads, nopad, noshape;
  int64_t group;
  int auto_pad, ceil_mode, count_include_pad;
} spatial_t;
static_assert(sizeof(spatial_t) <= XD_GOP_PARAMS, "spatial_t fits the node's params");

static int parse_spatial(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  spatial_t *p = (spatial_t *)nd->params;
  memset(p, 0, sizeof *p);
  int rc;
  if ((rc = xd_gattr_ints(a, "kernel_shape", p->k, XD_KERN_MAX_SPATIAL, &p->nk, err)) ||
      (rc = xd_gattr_ints(a, "strides", p->st, XD_KERN_MAX_SPATIAL, &p->nst, err)) ||
      (rc = xd_gattr_ints(a, "dilations", p->dl, XD_KERN_MAX_SPATIAL, &p->ndl, err)) ||
      (rc = xd_gattr_ints(a, "pads", p->pads, 2 * XD_KERN_MAX_SPATIAL, &p->npads, err)) ||
      (rc = xd_gattr_ints(a, "output_padding", p->opad, XD_KERN_MAX_SPATIAL, &p->nopad, err)) ||
      (rc = xd_gattr_ints(a, "output_shape", p->oshape, XD_KERN_MAX_SPATIAL + 2, &p->noshape, err)))
    return rc;
  for (size_t i = 0; i < p->nopad; i++)
    if (p->opad[i] < 0) return xd_error_set(err, XD_EINVAL, "output_padding", "output_padding must be 0 or more");
  for (size_t i = 0; i < p->noshape; i++)
    if (p->oshape[i] < 1) return xd_error_set(err, XD_EINVAL, "output_shape", "output_shape must be positive");
  int present = 0;
  if (xd_gattr_str_is(a, "auto_pad", "SAME_UPPER", &present))
    p->auto_pad = PAD_SAME_UPPER;
  else if (xd_gattr_str_is(a, "auto_pad", "SAME_LOWER", NULL))
    p->auto_pad = PAD_SAME_LOWER;
  else if (xd_gattr_str_is(a, "auto_pad", "VALID", NULL))
    p->auto_pad = PAD_VALID;
  else if (present && !xd_gattr_str_is(a, "auto_pad", "NOTSET", NULL))
    return xd_error_set(err, XD_EINVAL, "auto_pad", "auto_pad is NOTSET, SAME_UPPER, SAME_LOWER or VALID");
  p->group = xd_gattr_int(a, "group", 1);
  p->ceil_mode = xd_gattr_int(a, "ceil_mode", 0) != 0;
  p->count_include_pad = xd_gattr_int(a, "count_include_pad", 0) != 0;
  if (xd_gattr_int(a, "storage_order", 0) != 0)
    return xd_error_set(err, XD_EUNSUPPORTED, "storage_order", "only storage_order 0 (row major) is supported");
  for (size_t i = 0; i < p->nk; i++)
    if (p->k[i] < 1) return xd_error_set(err, XD_EINVAL, "kernel_shape", "kernel sizes must be positive");
  for (size_t i = 0; i < p->nst; i++)
    if (p->st[i] < 1) return xd_error_set(err, XD_EINVAL, "strides", "strides must be positive");
  for (size_t i = 0; i < p->ndl; i++)
    if (p->dl[i] < 1) return xd_error_set(err, XD_EINVAL, "dilations", "dilations must be positive");
  for (size_t i = 0; i < p->npads; i++)
    if (p->pads[i] < 0 || p->pads[i] > 1 << 20) return xd_error_set(err, XD_EINVAL, "pads", "pads must be 0 or more");
  if (p->group < 1) return xd_error_set(err, XD_EINVAL, "group", "group must be positive");
  return XD_OK;
}

/* Fills the spatial fields shared by xd_conv_shape_t and xd_pool_shape_t for nsp axes
 * with input sizes in[] and kernel sizes k[] (from the attribute or the weight). */
static int spatial_fill(const spatial_t *p, size_t nsp, const int64_t *in, const int64_t *kw, size_t *k,
                        size_t *st, size_t *dl, size_t *p0, size_t *p1, xd_error_t *err) {
  if ((p->nst && p->nst != nsp) || (p->ndl && p->ndl != nsp) || (p->npads && p->npads != 2 * nsp))
    return xd_error_set(err, XD_EINVAL, "strides", "strides, dilations and pads must have one entry per spatial axis");
  for (size_t i = 0; i < nsp; i++) {
    k[i] = (size_t)(p->nk ? p->k[i] : kw[i]);
    st[i] = (size_t)(p->nst ? p->st[i] : 1);
    dl[i] = (size_t)(p->ndl ? p->dl[i] : 1);
    p0[i] = (size_t)(p->npads ? p->pads[i] : 0);
    p1[i] = (size_t)(p->npads ? p->pads[nsp + i] : 0);
    if (p->auto_pad == PAD_VALID) p0[i] = p1[i] = 0;
    if (p->auto_pad == PAD_SAME_UPPER || p->auto_pad == PAD_SAME_LOWER)
      xd_kern_auto_pad((size_t)in[i], k[i], st[i], dl[i], p->auto_pad == PAD_SAME_UPPER, &p0[i], &p1[i]);
  }
  return XD_OK;
}

/* ---- Conv ------------------------------------------------------------------------------------ */

static int conv_shape(const xd_gnode_t *nd, xd_gtv_t in, xd_conv_shape_t *s, xd_error_t *err) {
  const spatial_t *p = (const spatial_t *)nd->params;
  const xd_tensor_t *x = in[0], *w = in[1];
  int rc;
  if ((rc = need_float(x, "X", err)) || (rc = need_float(w, "W", err))) return rc;
  if (x->rank < 3 || x->rank > 2 + XD_KERN_MAX_SPATIAL || w->rank != x->rank)
    return xd_error_set(err, XD_EINVAL, "X", "Conv takes (N, C, 1 to 3 spatial axes) and a weight of the same rank");
  size_t nsp = x->rank - 2;
  if (p->nk && p->nk != nsp) return xd_error_set(err, XD_EINVAL, "kernel_shape", "kernel_shape has the wrong length");
  for (size_t i = 0; p->nk && i < nsp; i++)
    if (p->k[i] != w->dims[2 + i]) return xd_error_set(err, XD_EINVAL, "kernel_shape", "kernel_shape differs from W");
  memset(s, 0, sizeof *s);
  s->nsp = nsp;
  s->N = (size_t)x->dims[0];
  s->C = (size_t)x->dims[1];
  s->M = (size_t)w->dims[0];
  s->group = (size_t)p->group;
  if ((size_t)w->dims[1] * s->group != s->C)
    return xd_error_set(err, XD_EINVAL, "W", "W has %lld input channels per group; X has %zu channels in %zu groups",
                        (long long)w->dims[1], s->C, s->group);
  if (in[2] && (in[2]->rank != 1 || (size_t)in[2]->dims[0] != s->M))
    return xd_error_set(err, XD_EINVAL, "B", "the bias must have one value per output channel (%zu)", s->M);
  for (size_t i = 0; i < nsp; i++) s->in[i] = (size_t)x->dims[2 + i];
  if ((rc = spatial_fill(p, nsp, x->dims + 2, w->dims + 2, s->k, s->stride, s->dil, s->pad0, s->pad1, err)))
    return rc;
  return xd_conv_shape_init(s, err);
}

static int conv_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  xd_conv_shape_t s;
  int rc = conv_shape(nd, in, &s, err);
  if (rc) return rc;
  set_spatial_out(out[0], env->fdt, s.N, s.M, s.nsp, s.out);
  env->scratch = env->scratch_bwd = xd_conv_scratch(&s) * xd_dtype_size(env->fdt);
  return XD_OK;
}

static int conv_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  xd_conv_shape_t s;
  if (conv_shape(nd, in, &s, NULL)) return XD_EINVAL;
  if (in[0]->dtype == XD_DT_F32)
    xd_conv_forward_f(&s, F32(in[0]), F32(in[1]), in[2] ? F32(in[2]) : NULL, F32(out[0]), scratch);
  else
    xd_conv_forward_d(&s, F64(in[0]), F64(in[1]), DATA_D(in[2]), F64(out[0]), scratch);
  return XD_OK;
}

static int conv_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                         void *scratch) {
  xd_conv_shape_t s;
  if (conv_shape(nd, in, &s, NULL)) return XD_EINVAL;
  if (!dout[0]) return XD_OK;
  if (in[0]->dtype == XD_DT_F32)
    xd_conv_backward_f(&s, F32(in[0]), F32(in[1]), F32(dout[0]), DATA_F(din[0]), DATA_F(din[1]),
                       in[2] ? DATA_F(din[2]) : NULL, scratch);
  else
    xd_conv_backward_d(&s, F64(in[0]), F64(in[1]), F64(dout[0]), DATA_D(din[0]), DATA_D(din[1]),
                       in[2] ? DATA_D(din[2]) : NULL, scratch);
  return XD_OK;
}

/* ---- ConvTranspose --------------------------------------------------------------------------- */

static int convt_shape(const xd_gnode_t *nd, xd_gtv_t in, xd_convt_shape_t *s, xd_error_t *err) {
  const spatial_t *p = (const spatial_t *)nd->params;
  const xd_tensor_t *x = in[0], *w = in[1];
  int rc;
  if ((rc = need_float(x, "X", err)) || (rc = need_float(w, "W", err))) return rc;
  if (x->rank < 3 || x->rank > 2 + XD_KERN_MAX_SPATIAL || w->rank != x->rank)
    return xd_error_set(err, XD_EINVAL, "X",
                        "ConvTranspose takes (N, C, 1 to 3 spatial axes) and a weight of the same rank");
  size_t nsp = x->rank - 2;
  if ((p->nk && p->nk != nsp) || (p->nopad && p->nopad != nsp) ||
      (p->noshape && p->noshape != nsp && p->noshape != nsp + 2))
    return xd_error_set(err, XD_EINVAL, "kernel_shape",
                        "kernel_shape, output_padding and output_shape need one entry per spatial axis");
  memset(s, 0, sizeof *s);
  s->nsp = nsp;
  s->N = (size_t)x->dims[0];
  s->C = (size_t)x->dims[1];
  s->group = (size_t)p->group;
  s->M = (size_t)w->dims[1] * s->group;
  if ((size_t)w->dims[0] != s->C || s->C % s->group)
    return xd_error_set(err, XD_EINVAL, "W", "W must be (%zu, M/group, kernel...) for %zu input channels in %zu groups",
                        s->C, s->C, s->group);
  if (in[2] && (in[2]->rank != 1 || (size_t)in[2]->dims[0] != s->M))
    return xd_error_set(err, XD_EINVAL, "B", "the bias must have one value per output channel (%zu)", s->M);
  for (size_t i = 0; i < nsp; i++) {
    s->in[i] = (size_t)x->dims[2 + i];
    s->k[i] = (size_t)w->dims[2 + i];
    if (p->nk && (size_t)p->k[i] != s->k[i])
      return xd_error_set(err, XD_EINVAL, "kernel_shape", "kernel_shape differs from W");
    s->stride[i] = (size_t)(p->nst ? p->st[i] : 1);
    s->dil[i] = (size_t)(p->ndl ? p->dl[i] : 1);
    s->outpad[i] = (size_t)(p->nopad ? p->opad[i] : 0);
    s->pad0[i] = (size_t)(p->npads ? p->pads[i] : 0);
    s->pad1[i] = (size_t)(p->npads ? p->pads[nsp + i] : 0);
    /* an output size asked for (output_shape, or SAME: in·stride) sets the pads */
    int64_t want = p->noshape ? p->oshape[p->noshape - nsp + i]
                   : p->auto_pad == PAD_SAME_UPPER || p->auto_pad == PAD_SAME_LOWER
                       ? (int64_t)(s->in[i] * s->stride[i])
                       : -1;
    if (p->auto_pad == PAD_VALID) s->pad0[i] = s->pad1[i] = 0;
    if (want > 0) {
      int64_t full = (int64_t)(s->stride[i] * (s->in[i] - 1) + s->outpad[i] + (s->k[i] - 1) * s->dil[i] + 1);
      int64_t total = full - want;
      if (total < 0)
        return xd_error_set(err, XD_EUNSUPPORTED, "output_shape", "an output larger than the full transposed size");
      s->pad0[i] = (size_t)(p->auto_pad == PAD_SAME_UPPER ? total / 2 : total - total / 2);
      s->pad1[i] = (size_t)total - s->pad0[i];
    }
  }
  return xd_convt_shape_init(s, err);
}

static int convt_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  xd_convt_shape_t s;
  int rc = convt_shape(nd, in, &s, err);
  if (rc) return rc;
  set_spatial_out(out[0], env->fdt, s.N, s.M, s.nsp, s.out);
  env->scratch = env->scratch_bwd = xd_convt_scratch(&s) * xd_dtype_size(env->fdt);
  return XD_OK;
}

static int convt_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  xd_convt_shape_t s;
  if (convt_shape(nd, in, &s, NULL)) return XD_EINVAL;
  if (in[0]->dtype == XD_DT_F32)
    xd_convt_forward_f(&s, F32(in[0]), F32(in[1]), in[2] ? F32(in[2]) : NULL, F32(out[0]), scratch);
  else
    xd_convt_forward_d(&s, F64(in[0]), F64(in[1]), DATA_D(in[2]), F64(out[0]), scratch);
  return XD_OK;
}

static int convt_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                          void *scratch) {
  xd_convt_shape_t s;
  if (convt_shape(nd, in, &s, NULL)) return XD_EINVAL;
  if (dout[0] && in[0]->dtype == XD_DT_F32)
    xd_convt_backward_f(&s, F32(in[0]), F32(in[1]), F32(dout[0]), DATA_F(din[0]), DATA_F(din[1]),
                        in[2] ? DATA_F(din[2]) : NULL, scratch);
  else if (dout[0])
    xd_convt_backward_d(&s, F64(in[0]), F64(in[1]), F64(dout[0]), DATA_D(din[0]), DATA_D(din[1]),
                        in[2] ? DATA_D(din[2]) : NULL, scratch);
  return XD_OK;
}

/* ---- MaxPool, AveragePool, GlobalAveragePool ---------------------------------------------- */

static int pool_shape(const xd_gnode_t *nd, xd_gtv_t in, xd_pool_shape_t *s, xd_error_t *err) {
  const spatial_t *p = (const spatial_t *)nd->params;
  const xd_tensor_t *x = in[0];
  int rc = need_float(x, "X", err);
  if (rc) return rc;
  if (x->rank < 3 || x->rank > 2 + XD_KERN_MAX_SPATIAL)
    return xd_error_set(err, XD_EINVAL, "X", "pools take (N, C, 1 to 3 spatial axes)");
  size_t nsp = x->rank - 2;
  if (p->nk != nsp) return xd_error_set(err, XD_EINVAL, "kernel_shape", "kernel_shape needs %zu entries", nsp);
  memset(s, 0, sizeof *s);
  s->nsp = nsp;
  s->N = (size_t)x->dims[0];
  s->C = (size_t)x->dims[1];
  for (size_t i = 0; i < nsp; i++) s->in[i] = (size_t)x->dims[2 + i];
  if ((rc = spatial_fill(p, nsp, x->dims + 2, p->k, s->k, s->stride, s->dil, s->pad0, s->pad1, err))) return rc;
  s->ceil_mode = p->ceil_mode;
  s->count_include_pad = p->count_include_pad;
  return xd_pool_shape_init(s, err);
}

static int pool_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  xd_pool_shape_t s;
  int rc = pool_shape(nd, in, &s, err);
  if (rc) return rc;
  set_spatial_out(out[0], env->fdt, s.N, s.C, s.nsp, s.out);
  env->scratch = env->scratch_bwd = 0;
  return XD_OK;
}

static int maxpool_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  xd_pool_shape_t s;
  if (pool_shape(nd, in, &s, NULL)) return XD_EINVAL;
  if (in[0]->dtype == XD_DT_F32)
    xd_maxpool_forward_f(&s, F32(in[0]), F32(out[0]));
  else
    xd_maxpool_forward_d(&s, F64(in[0]), F64(out[0]));
  return XD_OK;
}

static int maxpool_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                            void *scratch) {
  xd_pool_shape_t s;
  if (pool_shape(nd, in, &s, NULL)) return XD_EINVAL;
  if (!dout[0] || !din[0]) return XD_OK;
  if (in[0]->dtype == XD_DT_F32) xd_maxpool_backward_f(&s, F32(in[0]), F32(dout[0]), F32(din[0]));
  else xd_maxpool_backward_d(&s, F64(in[0]), F64(dout[0]), F64(din[0]));
  return XD_OK;
}

static int avgpool_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  xd_pool_shape_t s;
  if (pool_shape(nd, in, &s, NULL)) return XD_EINVAL;
  if (in[0]->dtype == XD_DT_F32)
    xd_avgpool_forward_f(&s, F32(in[0]), F32(out[0]));
  else
    xd_avgpool_forward_d(&s, F64(in[0]), F64(out[0]));
  return XD_OK;
}

static int avgpool_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                            void *scratch) {
  xd_pool_shape_t s;
  if (pool_shape(nd, in, &s, NULL)) return XD_EINVAL;
  if (!dout[0] || !din[0]) return XD_OK;
  if (in[0]->dtype == XD_DT_F32) xd_avgpool_backward_f(&s, F32(dout[0]), F32(din[0]));
  else xd_avgpool_backward_d(&s, F64(dout[0]), F64(din[0]));
  return XD_OK;
}

static int gap_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  int rc = need_float(in[0], "X", err);
  if (rc) return rc;
  if (in[0]->rank < 3) return xd_error_set(err, XD_EINVAL, "X", "GlobalAveragePool takes (N, C, spatial axes)");
  xd_gop_same(in[0], out[0], env->fdt);
  for (size_t i = 2; i < in[0]->rank; i++) out[0]->dims[i] = 1;
  env->scratch = env->scratch_bwd = 0;
  return XD_OK;
}

static int gap_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  size_t nc = numel_from(in[0], 0) / numel_from(in[0], 2), sp = numel_from(in[0], 2);
  if (in[0]->dtype == XD_DT_F32)
    xd_gap_forward_f(nc, sp, F32(in[0]), F32(out[0]));
  else
    xd_gap_forward_d(nc, sp, F64(in[0]), F64(out[0]));
  return XD_OK;
}

static int gap_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                        void *scratch) {
  size_t sp = numel_from(in[0], 2), nc = sp ? numel_from(in[0], 0) / sp : 0;
  if (!dout[0] || !din[0]) return XD_OK;
  if (in[0]->dtype == XD_DT_F32) xd_gap_backward_f(nc, sp, F32(dout[0]), F32(din[0]));
  else xd_gap_backward_d(nc, sp, F64(dout[0]), F64(din[0]));
  return XD_OK;
}

/* ---- MatMul, Gemm ------------------------------------------------------------------------------ */

static int matmul_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  int rc;
  xd_matmul_shape_t s;
  if ((rc = need_float(in[0], "A", err)) || (rc = need_float(in[1], "B", err))) return rc;
  if ((rc = xd_matmul_shape_init(&s, in[0]->dims, in[0]->rank, in[1]->dims, in[1]->rank, err))) return rc;
  out[0]->dtype = env->fdt;
  out[0]->rank = s.crank;
  for (size_t i = 0; i < s.crank; i++) out[0]->dims[i] = s.cdims[i];
  env->scratch = env->scratch_bwd = 0;
  return XD_OK;
}

static int matmul_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  xd_matmul_shape_t s;
  if (xd_matmul_shape_init(&s, in[0]->dims, in[0]->rank, in[1]->dims, in[1]->rank, NULL)) return XD_EINVAL;
  if (in[0]->dtype == XD_DT_F32)
    xd_matmul_forward_f(&s, F32(in[0]), F32(in[1]), F32(out[0]));
  else
    xd_matmul_forward_d(&s, F64(in[0]), F64(in[1]), F64(out[0]));
  return XD_OK;
}

static int matmul_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                           void *scratch) {
  xd_matmul_shape_t s;
  if (xd_matmul_shape_init(&s, in[0]->dims, in[0]->rank, in[1]->dims, in[1]->rank, NULL)) return XD_EINVAL;
  if (dout[0] && in[0]->dtype == XD_DT_F32)
    xd_matmul_backward_f(&s, F32(in[0]), F32(in[1]), F32(dout[0]), DATA_F(din[0]), DATA_F(din[1]));
  else if (dout[0])
    xd_matmul_backward_d(&s, F64(in[0]), F64(in[1]), F64(dout[0]), DATA_D(din[0]), DATA_D(din[1]));
  return XD_OK;
}

typedef struct gemm_params {
  double alpha, beta;
  int transA, transB;
} gemm_params_t;

static int gemm_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  gemm_params_t *p = (gemm_params_t *)nd->params;
  p->alpha = xd_gattr_float(a, "alpha", 1.0);
  p->beta = xd_gattr_float(a, "beta", 1.0);
  p->transA = xd_gattr_int(a, "transA", 0) != 0;
  p->transB = xd_gattr_int(a, "transB", 0) != 0;
  return XD_OK;
}

static int gemm_shape(const xd_gnode_t *nd, xd_gtv_t in, xd_gemm_shape_t *s, xd_error_t *err) {
  const gemm_params_t *p = (const gemm_params_t *)nd->params;
  const xd_tensor_t *A = in[0], *B = in[1], *C = in[2];
  int rc;
  if ((rc = need_float(A, "A", err)) || (rc = need_float(B, "B", err))) return rc;
  if (A->rank != 2 || B->rank != 2) return xd_error_set(err, XD_EINVAL, "A", "Gemm takes two matrices");
  memset(s, 0, sizeof *s);
  s->transA = p->transA;
  s->transB = p->transB;
  s->alpha = p->alpha;
  s->beta = p->beta;
  s->M = (size_t)A->dims[p->transA ? 1 : 0];
  s->K = (size_t)A->dims[p->transA ? 0 : 1];
  s->N = (size_t)B->dims[p->transB ? 0 : 1];
  if ((size_t)B->dims[p->transB ? 1 : 0] != s->K)
    return xd_error_set(err, XD_EINVAL, "B", "Gemm inner dimensions differ (%zu and %lld)", s->K,
                        (long long)B->dims[p->transB ? 1 : 0]);
  if (C) {
    if (!xd_dtype_is_float(C->dtype) || C->rank > 2) return xd_error_set(err, XD_EINVAL, "C", "C must be a float of rank 0 to 2");
    size_t cm = C->rank == 2 ? (size_t)C->dims[0] : 1, cn = C->rank >= 1 ? (size_t)C->dims[C->rank - 1] : 1;
    if ((cm != 1 && cm != s->M) || (cn != 1 && cn != s->N))
      return xd_error_set(err, XD_EINVAL, "C", "C does not broadcast to (%zu, %zu)", s->M, s->N);
    s->cm = cm;
    s->cn = cn;
  }
  return XD_OK;
}

static int gemm_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  xd_gemm_shape_t s;
  int rc = gemm_shape(nd, in, &s, err);
  if (rc) return rc;
  out[0]->dtype = env->fdt;
  out[0]->rank = 2;
  out[0]->dims[0] = (int64_t)s.M;
  out[0]->dims[1] = (int64_t)s.N;
  env->scratch = env->scratch_bwd = 0;
  return XD_OK;
}

static int gemm_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  xd_gemm_shape_t s;
  if (gemm_shape(nd, in, &s, NULL)) return XD_EINVAL;
  if (in[0]->dtype == XD_DT_F32)
    xd_gemm_forward_f(&s, F32(in[0]), F32(in[1]), in[2] ? F32(in[2]) : NULL, F32(out[0]));
  else
    xd_gemm_forward_d(&s, F64(in[0]), F64(in[1]), DATA_D(in[2]), F64(out[0]));
  return XD_OK;
}

static int gemm_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                         void *scratch) {
  xd_gemm_shape_t s;
  if (gemm_shape(nd, in, &s, NULL)) return XD_EINVAL;
  if (dout[0] && in[0]->dtype == XD_DT_F32)
    xd_gemm_backward_f(&s, F32(in[0]), F32(in[1]), F32(dout[0]), DATA_F(din[0]), DATA_F(din[1]),
                       in[2] ? DATA_F(din[2]) : NULL);
  else if (dout[0])
    xd_gemm_backward_d(&s, F64(in[0]), F64(in[1]), F64(dout[0]), DATA_D(din[0]), DATA_D(din[1]),
                       in[2] ? DATA_D(din[2]) : NULL);
  return XD_OK;
}

/* ---- BatchNormalization, LayerNormalization ----------------------------------------------- */

typedef struct norm_params {
  double eps;
  int64_t axis;
} norm_params_t;

static int bn_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  norm_params_t *p = (norm_params_t *)nd->params;
  p->eps = xd_gattr_float(a, "epsilon", 1e-5);
  if (xd_gattr_int(a, "training_mode", 0) != 0)
    return xd_error_set(err, XD_EUNSUPPORTED, "training_mode", "BatchNormalization runs in inference mode only");
  if (nd->n_out > 1)
    return xd_error_set(err, XD_EUNSUPPORTED, "outputs", "BatchNormalization in inference mode has one output");
  return XD_OK;
}

static int bn_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  int rc = need_float(in[0], "X", err);
  if (rc) return rc;
  if (in[0]->rank < 2) return xd_error_set(err, XD_EINVAL, "X", "BatchNormalization takes (N, C, ...)");
  static const char *names[] = {"", "scale", "B", "input_mean", "input_var"};
  for (size_t k = 1; k < 5; k++) {
    if ((rc = need_float(in[k], names[k], err))) return rc;
    if (xd_tensor_numel(in[k]) != (size_t)in[0]->dims[1])
      return xd_error_set(err, XD_EINVAL, names[k], "%s must have one value per channel (%lld)", names[k],
                          (long long)in[0]->dims[1]);
  }
  xd_gop_same(in[0], out[0], env->fdt);
  env->scratch = env->scratch_bwd = 0;
  return XD_OK;
}

static int bn_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  const norm_params_t *p = (const norm_params_t *)nd->params;
  size_t N = (size_t)in[0]->dims[0], C = (size_t)in[0]->dims[1], sp = numel_from(in[0], 2);
  if (in[0]->dtype == XD_DT_F32)
    xd_batchnorm_forward_f(N, C, sp, p->eps, F32(in[0]), F32(in[1]), F32(in[2]), F32(in[3]), F32(in[4]), F32(out[0]));
  else
    xd_batchnorm_forward_d(N, C, sp, p->eps, F64(in[0]), F64(in[1]), F64(in[2]), F64(in[3]), F64(in[4]), F64(out[0]));
  return XD_OK;
}

static int bn_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                       void *scratch) {
  const norm_params_t *p = (const norm_params_t *)nd->params;
  for (size_t k = 1; k < 5; k++)
    if (din[k]) return XD_EUNSUPPORTED; /* the statistics and affine terms are constants here */
  size_t N = (size_t)in[0]->dims[0], C = (size_t)in[0]->dims[1], sp = numel_from(in[0], 2);
  if (!dout[0] || !din[0]) return XD_OK;
  if (in[0]->dtype == XD_DT_F32)
    xd_batchnorm_backward_f(N, C, sp, p->eps, F32(in[1]), F32(in[4]), F32(dout[0]), F32(din[0]));
  else
    xd_batchnorm_backward_d(N, C, sp, p->eps, F64(in[1]), F64(in[4]), F64(dout[0]), F64(din[0]));
  return XD_OK;
}

static int ln_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  norm_params_t *p = (norm_params_t *)nd->params;
  p->eps = xd_gattr_float(a, "epsilon", 1e-5);
  p->axis = xd_gattr_int(a, "axis", -1);
  return XD_OK;
}

/* (outer, n) of LayerNormalization's input, checking Scale and B. */
static int ln_shape(const xd_gnode_t *nd, xd_gtv_t in, size_t *outer, size_t *n, size_t *axis, xd_error_t *err) {
  const norm_params_t *p = (const norm_params_t *)nd->params;
  int rc = need_float(in[0], "X", err);
  if (rc || (rc = xd_gop_axis(p->axis, in[0]->rank, "axis", axis, err))) return rc;
  *n = numel_from(in[0], *axis);
  *outer = *n ? xd_tensor_numel(in[0]) / *n : 0;
  if ((rc = need_float(in[1], "Scale", err))) return rc;
  if (xd_tensor_numel(in[1]) != *n)
    return xd_error_set(err, XD_EINVAL, "Scale", "Scale must have the normalized shape (%zu values)", *n);
  if (in[2] && xd_tensor_numel(in[2]) != *n)
    return xd_error_set(err, XD_EINVAL, "B", "B must have the normalized shape (%zu values)", *n);
  return XD_OK;
}

static int ln_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  size_t outer, n, axis;
  int rc = ln_shape(nd, in, &outer, &n, &axis, err);
  if (rc) return rc;
  xd_gop_same(in[0], out[0], env->fdt);
  for (size_t k = 1; k < nd->n_out; k++) { /* Mean, InvStdDev: the input's shape, 1 from axis on */
    xd_gop_same(in[0], out[k], env->fdt);
    for (size_t i = axis; i < in[0]->rank; i++) out[k]->dims[i] = 1;
  }
  env->scratch = env->scratch_bwd = 0;
  return XD_OK;
}

static int ln_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  const norm_params_t *p = (const norm_params_t *)nd->params;
  size_t outer, n, axis;
  if (ln_shape(nd, in, &outer, &n, &axis, NULL)) return XD_EINVAL;
  const xd_tensor_t *m = nd->n_out > 1 ? out[1] : NULL, *v = nd->n_out > 2 ? out[2] : NULL;
  if (in[0]->dtype == XD_DT_F32)
    xd_layernorm_forward_f(outer, n, p->eps, F32(in[0]), F32(in[1]), in[2] ? F32(in[2]) : NULL, F32(out[0]),
                           m ? F32(m) : NULL, v ? F32(v) : NULL);
  else
    xd_layernorm_forward_d(outer, n, p->eps, F64(in[0]), F64(in[1]), DATA_D(in[2]), F64(out[0]), DATA_D(m),
                           DATA_D(v));
  return XD_OK;
}

static int ln_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                       void *scratch) {
  const norm_params_t *p = (const norm_params_t *)nd->params;
  size_t outer, n, axis;
  if (ln_shape(nd, in, &outer, &n, &axis, NULL)) return XD_EINVAL;
  for (size_t k = 1; k < nd->n_out; k++)
    if (dout[k]) return XD_EUNSUPPORTED; /* a gradient through Mean or InvStdDev */
  if (dout[0] && in[0]->dtype == XD_DT_F32)
    xd_layernorm_backward_f(outer, n, p->eps, F32(in[0]), F32(in[1]), F32(dout[0]), DATA_F(din[0]), DATA_F(din[1]),
                            in[2] ? DATA_F(din[2]) : NULL);
  else if (dout[0])
    xd_layernorm_backward_d(outer, n, p->eps, F64(in[0]), F64(in[1]), F64(dout[0]), DATA_D(din[0]), DATA_D(din[1]),
                            in[2] ? DATA_D(din[2]) : NULL);
  return XD_OK;
}

/* ---- Softmax, LogSoftmax ----------------------------------------------------------------------- */

/* axis first: the graph reads it to find a final softmax over the last axis. */
typedef struct softmax_params {
  int64_t axis;
  int flatten; /* opset < 13: the input is seen as 2-D, (dims before axis, dims from axis on) */
} softmax_params_t;
static_assert(offsetof(softmax_params_t, axis) == 0, "the graph reads axis first");

static int softmax_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  softmax_params_t *p = (softmax_params_t *)nd->params;
  p->flatten = a->opset < 13;
  p->axis = xd_gattr_int(a, "axis", p->flatten ? 1 : -1);
  return XD_OK;
}

static int softmax_dims(const xd_gnode_t *nd, const xd_tensor_t *x, size_t *outer, size_t *n, size_t *inner,
                        xd_error_t *err) {
  const softmax_params_t *p = (const softmax_params_t *)nd->params;
  size_t axis;
  int rc = need_float(x, "input", err);
  if (rc || (rc = xd_gop_axis(p->axis, x->rank, "axis", &axis, err))) return rc;
  *outer = 1;
  for (size_t i = 0; i < axis; i++) *outer *= (size_t)x->dims[i];
  *n = p->flatten ? numel_from(x, axis) : x->rank ? (size_t)x->dims[axis] : 1;
  *inner = p->flatten ? 1 : numel_from(x, axis + 1);
  return XD_OK;
}

static int softmax_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  size_t o, n, i;
  int rc = softmax_dims(nd, in[0], &o, &n, &i, err);
  if (rc) return rc;
  xd_gop_same(in[0], out[0], env->fdt);
  env->scratch = env->scratch_bwd = 0;
  return XD_OK;
}

static int softmax_run(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, int log_) {
  size_t o, n, i;
  if (softmax_dims(nd, in[0], &o, &n, &i, NULL)) return XD_EINVAL;
  if (in[0]->dtype == XD_DT_F32)
    (log_ ? xd_logsoftmax_forward_f : xd_softmax_forward_f)(o, n, i, F32(in[0]), F32(out[0]));
  else
    (log_ ? xd_logsoftmax_forward_d : xd_softmax_forward_d)(o, n, i, F64(in[0]), F64(out[0]));
  return XD_OK;
}

static int softmax_back(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din, int log_) {
  size_t o, n, i;
  if (softmax_dims(nd, in[0], &o, &n, &i, NULL)) return XD_EINVAL;
  if (!dout[0] || !din[0]) return XD_OK;
  if (in[0]->dtype == XD_DT_F32)
    (log_ ? xd_logsoftmax_backward_f : xd_softmax_backward_f)(o, n, i, F32(out[0]), F32(dout[0]), F32(din[0]));
  else
    (log_ ? xd_logsoftmax_backward_d : xd_softmax_backward_d)(o, n, i, F64(out[0]), F64(dout[0]), F64(din[0]));
  return XD_OK;
}

static int softmax_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  return softmax_run(nd, in, out, 0);
}
static int logsoftmax_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  return softmax_run(nd, in, out, 1);
}
static int softmax_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                            void *scratch) {
  return softmax_back(nd, in, out, dout, din, 0);
}
static int logsoftmax_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                               void *scratch) {
  return softmax_back(nd, in, out, dout, din, 1);
}

/* ---- the rows ------------------------------------------------------------------------------------ */

const xd_gop_t xd_gop_kern_rows[] = {
    {"Conv", 2, 3, 1, 1, 0, parse_spatial, conv_infer, conv_forward, conv_backward},
    {"ConvTranspose", 2, 3, 1, 1, 0, parse_spatial, convt_infer, convt_forward, convt_backward},
    {"MaxPool", 1, 1, 1, 1, 0, parse_spatial, pool_infer, maxpool_forward, maxpool_backward},
    {"AveragePool", 1, 1, 1, 1, 0, parse_spatial, pool_infer, avgpool_forward, avgpool_backward},
    {"GlobalAveragePool", 1, 1, 1, 1, 0, NULL, gap_infer, gap_forward, gap_backward},
    {"MatMul", 2, 2, 1, 1, 0, NULL, matmul_infer, matmul_forward, matmul_backward},
    {"Gemm", 2, 3, 1, 1, 0, gemm_parse, gemm_infer, gemm_forward, gemm_backward},
    {"BatchNormalization", 5, 5, 1, 3, 0, bn_parse, bn_infer, bn_forward, bn_backward},
    {"LayerNormalization", 2, 3, 1, 3, 0, ln_parse, ln_infer, ln_forward, ln_backward},
    {"Softmax", 1, 1, 1, 1, 0, softmax_parse, softmax_infer, softmax_forward, softmax_backward},
    {"LogSoftmax", 1, 1, 1, 1, 0, softmax_parse, softmax_infer, logsoftmax_forward, logsoftmax_backward},
    XD_GOP_RNN_ROWS,
    {.name = NULL},
};
