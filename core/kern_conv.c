/* kern_conv.c — ONNX Conv and ConvTranspose, forward and backward: im2col + GEMM, and a
 * direct-loop twin.
 *
 * Float convolutions with stride 1, one group and dilation 1 go to the register-blocked
 * direct kernel instead (core/kern_conv_direct.c, forward and input gradient); the rest,
 * double, and the weight gradient take the lowering below.
 *
 * The lowering turns each group of each image into one matrix product: the input patch
 * under every kernel position is copied into a column matrix col (C/group·ksp, osp)
 * (im2col), and y_g (M/group, osp) = w_g (M/group, C/group·ksp) · col. When the output of
 * one image is small, several images share one column matrix (nb·osp columns) so that
 * the GEMM is wide enough for BLAS to reach its speed; the products are then scattered
 * back to NCHW. A large image is lowered a band of output rows at a time, so the column
 * matrix stays under CONV_MAX_COL elements. Backward reuses the same lowering:
 * dw_g += dy_g · colᵀ and dcol = w_gᵀ · dy_g, which col2im adds back onto dx. A depthwise
 * convolution (one input channel per group) skips the lowering and runs direct loops.
 * ConvTranspose is Conv's adjoint: its forward is a Conv backward and vice versa.
 *
 * Spatial ranks 1..3 are handled as 3-D with leading sizes 1, so there is one code path.
 * The float and double kernels come from one body, core/kern_conv.inc, included twice.
 */
#include "core/kern.h"

#include <string.h>

#include "core/hotloop.h"
#include "core/kern_conv_direct.h"
#include "core/kern_geo.h"
#include "core/mat.h"

/* Output columns one GEMM should see at least: below this BLAS spends more on set-up and
 * packing than on arithmetic (measured on the demo CNN: see docs/kernels.md). */
#ifndef CONV_MIN_COLS
#define CONV_MIN_COLS 1024
#endif
/* Elements of the column matrix at most (16 MB in double): a large image is lowered a
 * band of output rows at a time, so scratch stays bounded whatever the input size. */
#define CONV_MAX_COL (1u << 21)

void xd_kern_auto_pad(size_t in, size_t k, size_t stride, size_t dil, int upper, size_t *pad0, size_t *pad1) {
  if (stride == 0) stride = 1;
  if (dil == 0) dil = 1;
  size_t out = (in + stride - 1) / stride, ext = (k - 1) * dil + 1;
  size_t need = (out - 1) * stride + ext, total = need > in ? need - in : 0;
  *pad0 = upper ? total / 2 : total - total / 2;
  *pad1 = total - *pad0;
}

int xd_conv_shape_init(xd_conv_shape_t *s, xd_error_t *err) {
  if (s->nsp < 1 || s->nsp > XD_KERN_MAX_SPATIAL)
    return xd_error_set(err, XD_EINVAL, "kernel_shape", "a convolution has 1 to %d spatial axes, not %zu",
                        XD_KERN_MAX_SPATIAL, s->nsp);
  if (s->group == 0) s->group = 1;
  if (s->N == 0 || s->C == 0 || s->M == 0 || s->C % s->group || s->M % s->group)
    return xd_error_set(err, XD_EINVAL, "group",
                        "channels in (%zu) and out (%zu) must be non-zero multiples of group (%zu)", s->C, s->M,
                        s->group);
  for (size_t i = 0; i < s->nsp; i++) {
    if (s->stride[i] == 0) s->stride[i] = 1;
    if (s->dil[i] == 0) s->dil[i] = 1;
    if (s->k[i] == 0 || s->in[i] == 0)
      return xd_error_set(err, XD_EINVAL, "kernel_shape", "spatial axis %zu has size 0", i);
    size_t ext = (s->k[i] - 1) * s->dil[i] + 1, padded = s->in[i] + s->pad0[i] + s->pad1[i];
    if (ext > padded)
      return xd_error_set(err, XD_EINVAL, "pads",
                          "the kernel (extent %zu) is larger than the padded input (%zu) on axis %zu", ext, padded,
                          i);
    s->out[i] = (padded - ext) / s->stride[i] + 1;
  }
  for (size_t i = s->nsp; i < XD_KERN_MAX_SPATIAL; i++) s->out[i] = 0;
  return XD_OK;
}

int xd_convt_shape_init(xd_convt_shape_t *s, xd_error_t *err) {
  if (s->nsp < 1 || s->nsp > XD_KERN_MAX_SPATIAL)
    return xd_error_set(err, XD_EINVAL, "kernel_shape", "a convolution has 1 to %d spatial axes, not %zu",
                        XD_KERN_MAX_SPATIAL, s->nsp);
  xd_conv_shape_t *c = &s->conv;
  memset(c, 0, sizeof *c);
  c->nsp = s->nsp;
  c->N = s->N;
  c->C = s->M; /* the Conv's input is our output */
  c->M = s->C;
  c->group = s->group;
  for (size_t i = 0; i < s->nsp; i++) {
    if (s->stride[i] == 0) s->stride[i] = 1;
    if (s->dil[i] == 0) s->dil[i] = 1;
    if (s->outpad[i] >= s->stride[i])
      return xd_error_set(err, XD_EINVAL, "output_padding", "output_padding must be below the stride on axis %zu", i);
    if (s->k[i] == 0 || s->in[i] == 0)
      return xd_error_set(err, XD_EINVAL, "kernel_shape", "spatial axis %zu has size 0", i);
    size_t full = s->stride[i] * (s->in[i] - 1) + s->outpad[i] + (s->k[i] - 1) * s->dil[i] + 1;
    if (s->pad0[i] + s->pad1[i] >= full)
      return xd_error_set(err, XD_EINVAL, "pads", "the pads leave no output on axis %zu", i);
    s->out[i] = full - s->pad0[i] - s->pad1[i];
    c->in[i] = s->out[i];
    c->k[i] = s->k[i];
    c->stride[i] = s->stride[i];
    c->dil[i] = s->dil[i];
    c->pad0[i] = s->pad0[i];
    c->pad1[i] = s->pad1[i];
  }
  int rc = xd_conv_shape_init(c, err);
  if (rc) return rc;
  for (size_t i = 0; i < s->nsp; i++) /* the adjoint maps back onto our input exactly */
    if (c->out[i] != s->in[i]) return xd_error_set(err, XD_EINVAL, "pads", "inconsistent transposed shape");
  return XD_OK;
}

size_t xd_convt_scratch(const xd_convt_shape_t *s) {
  size_t isp = 1;
  for (size_t i = 0; i < s->nsp; i++) isp *= s->in[i];
  return xd_conv_scratch(&s->conv) + s->N * s->C * isp; /* backward: dx before it is added */
}

/* ---- geometry shared by both types --------------------------------------------------- */

/* The shape as 3-D (leading axes of size 1) with the products the loops need. */
typedef struct geo {
  size_t in[3], k[3], out[3], st[3], dl[3], p0[3], p1[3];
  size_t isp, ksp, osp; /* products of in, k, out */
  size_t Cg, Mg, G, N;
  size_t ck;     /* rows of col: Cg·ksp */
  size_t nb;     /* images per GEMM */
  size_t nq, qt; /* output rows (out[0]·out[1], each out[2] long), rows per band */
  int direct;    /* 1×1, stride 1, no padding: col is the input itself */
  int same_rows; /* stride 1 on the last two axes and out[2] == in[2]: im2col copies runs */
} geo_t;

static geo_t geo_of(const xd_conv_shape_t *s) {
  geo_t g;
  XD_KERN_LIFT3(&g, s);
  g.direct = 1;
  for (size_t i = 0; i < s->nsp; i++)
    if (s->k[i] != 1 || s->stride[i] != 1 || s->pad0[i] || s->pad1[i]) g.direct = 0;
  g.isp = g.in[0] * g.in[1] * g.in[2];
  g.ksp = g.k[0] * g.k[1] * g.k[2];
  g.osp = g.out[0] * g.out[1] * g.out[2];
  g.G = s->group;
  g.Cg = s->C / s->group;
  g.Mg = s->M / s->group;
  g.N = s->N;
  g.ck = g.Cg * g.ksp;
  g.nb = g.osp >= CONV_MIN_COLS ? 1 : (CONV_MIN_COLS + g.osp - 1) / g.osp;
  if (g.nb > g.N) g.nb = g.N;
  while (g.nb > 1 && g.ck * g.nb * g.osp > CONV_MAX_COL) g.nb /= 2;
  g.same_rows = g.st[1] == 1 && g.st[2] == 1 && g.out[2] == g.in[2];
  g.nq = g.out[0] * g.out[1];
  g.qt = g.nq;
  if (g.nb == 1 && !g.direct && g.ck * g.osp > CONV_MAX_COL) {
    g.qt = CONV_MAX_COL / (g.ck * g.out[2]);
    if (g.qt < 1) g.qt = 1;
  }
  return g;
}

/* First and one-past-last output index o along an axis for which o·st - p0 + kk·dl
 * falls inside [0, in): the valid run of an im2col row. */
static void valid_run(size_t in, size_t out, size_t st, size_t p0, size_t off, size_t *lo, size_t *hi) {
  /* x = o·st + off - p0 in [0, in)  <=>  o·st >= p0 - off  and  o·st < in + p0 - off */
  size_t a = p0 > off ? (p0 - off + st - 1) / st : 0;
  size_t lim = in + p0, b = lim > off ? (lim - off + st - 1) / st : 0;
  if (b > out) b = out;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}

size_t xd_conv_scratch(const xd_conv_shape_t *s) {
  geo_t g = geo_of(s);
  size_t direct = xd_convd_scratch(s); /* the float direct kernel's, where it fits */
  /* col (ck, nb·osp), unless direct with one image per GEMM; ytmp (Mg, nb·osp) when nb > 1 */
  if (g.Cg == 1 && !g.direct) return direct + 1; /* depthwise runs direct loops */
  size_t cols = g.nb > 1 ? g.nb * g.osp : g.qt * g.out[2];
  size_t col = (g.direct && g.nb == 1) ? 0 : g.ck * cols;
  size_t tmp = g.nb > 1 ? g.Mg * cols : 0;
  return (col + tmp > direct ? col + tmp : direct) + 1;
}

/* Float convolutions with stride 1 run the direct kernel where it fits
 * (core/kern_conv_direct.c): on small planes im2col's copies cost as much as the
 * arithmetic. Double keeps im2col + GEMM: it is the exactness path, not the fast one. */
static int direct_forward_f(const xd_conv_shape_t *s, const float *x, const float *w, const float *b, float *y,
                            float *scratch) {
  if (!xd_convd_fits(s, 0)) return 0;
  xd_convd_forward(s, x, w, b, y, scratch, XD_CONVD_AUTO);
  return 1;
}
static int direct_dx_f(const xd_conv_shape_t *s, const float *w, const float *dy, float *dx, float *scratch) {
  if (!xd_convd_fits(s, 1)) return 0;
  xd_convd_backward_dx(s, w, dy, dx, scratch, XD_CONVD_AUTO);
  return 1;
}
static int direct_forward_d(const xd_conv_shape_t *s, const double *x, const double *w, const double *b,
                            double *y, double *scratch) {
  (void)s, (void)x, (void)w, (void)b, (void)y, (void)scratch;
  return 0;
}
static int direct_dx_d(const xd_conv_shape_t *s, const double *w, const double *dy, double *dx, double *scratch) {
  (void)s, (void)w, (void)dy, (void)dx, (void)scratch;
  return 0;
}

/* ---- the two types -------------------------------------------------------------------- */

#define T float
#define F(name) name##_f
#define FN(name) name##_f_naive
#define GEMM xd_sgemm
#include "core/kern_conv.inc"
#undef T
#undef F
#undef FN
#undef GEMM

#define T double
#define F(name) name##_d
#define FN(name) name##_d_naive
#define GEMM xd_dgemm
#include "core/kern_conv.inc"
#undef T
#undef F
#undef FN
#undef GEMM
