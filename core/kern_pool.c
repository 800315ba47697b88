/* kern_pool.c — ONNX MaxPool, AveragePool and GlobalAveragePool, forward and backward.
 *
 * Plain loops: a pool reads each input element a few times and does no arithmetic worth
 * a BLAS call, so these are their own reference. Spatial ranks 1..3 run as 3-D with
 * leading sizes 1. The output size follows torch and ONNX opset 19: with ceil_mode a
 * last window that would start inside the end padding is dropped. The float and double
 * kernels come from one body, core/kern_pool.inc, included twice.
 */
#include "core/kern.h"

#include <math.h>
#include <string.h>

#include "core/hotloop.h"
#include "core/kern_geo.h"

int xd_pool_shape_init(xd_pool_shape_t *s, xd_error_t *err) {
  if (s->nsp < 1 || s->nsp > XD_KERN_MAX_SPATIAL)
    return xd_error_set(err, XD_EINVAL, "kernel_shape", "a pool has 1 to %d spatial axes, not %zu",
                        XD_KERN_MAX_SPATIAL, s->nsp);
  if (s->N == 0 || s->C == 0) return xd_error_set(err, XD_EINVAL, "X", "the input has an empty batch or channel axis");
  for (size_t i = 0; i < s->nsp; i++) {
    if (s->stride[i] == 0) s->stride[i] = 1;
    if (s->dil[i] == 0) s->dil[i] = 1;
    if (s->k[i] == 0 || s->in[i] == 0)
      return xd_error_set(err, XD_EINVAL, "kernel_shape", "spatial axis %zu has size 0", i);
    if (s->pad0[i] >= s->k[i] * s->dil[i] || s->pad1[i] >= s->k[i] * s->dil[i])
      return xd_error_set(err, XD_EINVAL, "pads", "a pad (%zu, %zu) on axis %zu covers a whole window", s->pad0[i],
                          s->pad1[i], i);
    size_t ext = (s->k[i] - 1) * s->dil[i] + 1, padded = s->in[i] + s->pad0[i] + s->pad1[i];
    if (ext > padded)
      return xd_error_set(err, XD_EINVAL, "kernel_shape",
                          "the window (extent %zu) is larger than the padded input (%zu) on axis %zu", ext, padded, i);
    size_t span = padded - ext, out = span / s->stride[i] + 1;
    if (s->ceil_mode && span % s->stride[i]) {
      out++;
      if ((out - 1) * s->stride[i] >= s->in[i] + s->pad0[i]) out--; /* starts in the end padding */
    }
    s->out[i] = out;
  }
  for (size_t i = s->nsp; i < XD_KERN_MAX_SPATIAL; i++) s->out[i] = 0;
  return XD_OK;
}

/* The shape as 3-D (leading axes of size 1). */
typedef struct pgeo {
  size_t in[3], k[3], out[3], st[3], dl[3], p0[3], p1[3];
  size_t isp, osp, planes;
} pgeo_t;

static pgeo_t pgeo_of(const xd_pool_shape_t *s) {
  pgeo_t g;
  XD_KERN_LIFT3(&g, s);
  g.isp = g.in[0] * g.in[1] * g.in[2];
  g.osp = g.out[0] * g.out[1] * g.out[2];
  g.planes = s->N * s->C;
  return g;
}

/* The window of output o along axis ax: kernel taps [*k0, *k1) fall inside the input;
 * *first is the input index of tap 0 (may be negative: in the begin padding). */
static void taps(const pgeo_t *g, int ax, size_t o, ptrdiff_t *first, size_t *k0, size_t *k1) {
  ptrdiff_t f = (ptrdiff_t)(o * g->st[ax]) - (ptrdiff_t)g->p0[ax], dl = (ptrdiff_t)g->dl[ax];
  size_t a = 0, b = g->k[ax];
  while (a < b && f + (ptrdiff_t)a * dl < 0) a++;
  while (b > a && f + (ptrdiff_t)(b - 1) * dl >= (ptrdiff_t)g->in[ax]) b--;
  *first = f;
  *k0 = a;
  *k1 = b;
}

/* AveragePool's divisor along one axis with count_include_pad: the taps inside the
 * padded input (begin padding, input, end padding). */
static size_t taps_padded(const pgeo_t *g, int ax, size_t o) {
  ptrdiff_t f = (ptrdiff_t)(o * g->st[ax]) - (ptrdiff_t)g->p0[ax], lim = (ptrdiff_t)(g->in[ax] + g->p1[ax]);
  size_t n = 0;
  for (size_t i = 0; i < g->k[ax]; i++)
    if (f + (ptrdiff_t)(i * g->dl[ax]) < lim) n++;
  return n;
}

/* A 2-D 2×2 window with stride 2, no dilation and every window inside the input: the
 * max pool of most CNNs, which gets a loop without the general bookkeeping. */
static int pool_2x2(const xd_pool_shape_t *s, const pgeo_t *g) {
  return s->nsp == 2 && g->k[1] == 2 && g->k[2] == 2 && g->st[1] == 2 && g->st[2] == 2 && g->dl[1] == 1 &&
         g->dl[2] == 1 && !g->p0[1] && !g->p0[2] && g->out[1] * 2 <= g->in[1] && g->out[2] * 2 <= g->in[2];
}

#define T float
#define F(name) name##_f
#include "core/kern_pool.inc"
#undef T
#undef F

#define T double
#define F(name) name##_d
#include "core/kern_pool.inc"
#undef T
#undef F
