/* kern_conv_direct.c — float Conv with stride 1 by register-blocked direct loops (see
 * core/kern_conv_direct.h for why), forward and input gradient.
 *
 * Each image is copied into zero-padded planes of Hp = OH + kh - 1 rows of Wp = OW + kw - 1
 * values, one per input channel. Output (i, j) then reads the padded plane at
 * q + a·Wp + b with q = i·Wp + j, so consecutive q are consecutive in memory for every
 * tap: the kernel computes all q in [0, OH·Wp), OW valid ones per row and kw - 1 that
 * fall across the row's end and are dropped. Tiles of MB output channels × QB positions
 * are summed in registers (core/kern_conv_direct.inc) and written out with the bias
 * (forward) or added (the input gradient's +=).
 *
 * The input gradient dx (c, y, x) = Σ_m Σ_a Σ_b w (m, c, a, b) · dy (m, y + p0 - a, x + pl - b)
 * is the same convolution of dy with the kernel turned by 180° and its channel axes
 * swapped, padded by kh - 1 - p0 above (and alike on the other sides): the weight packing
 * does the turning, so one tile kernel serves both. */
#include "core/kern_conv_direct.h"

#include <string.h>

#include "core/hotloop.h"
#include "core/kern_geo.h"

#if defined(__clang__)
#define XD_CONVD_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define XD_CONVD_UNROLL _Pragma("GCC unroll 32")
#else
#define XD_CONVD_UNROLL
#endif

/* Largest tile of positions (QV·VL) of any variant, plus the widest kernel: the zero tail
 * after each padded plane that a tile overrunning the last output row may read. */
#define CONVD_TAIL 128
/* Floats of padded input at most (8 MB): larger images take im2col's bands of rows. */
#define CONVD_MAX_PLANES (1u << 21)
#define CONVD_MAX_K 11
#define CONVD_MAX_MB 8
#define CONVD_MAX_QB 96

typedef void (*tile_fn)(const float *, size_t, size_t, size_t, size_t, size_t, const float *, float *);

/* ---- the tile kernels: portable, AVX2 and AVX-512, each in a wide and a narrow shape ---- */

#define TILE_ATTR
#define VL 4
#define MB 4
#define QV 3
#define TILE tile_portable_wide
#include "core/kern_conv_direct.inc"
#undef MB
#undef QV
#undef TILE
#define MB 2
#define QV 5
#define TILE tile_portable_narrow
#include "core/kern_conv_direct.inc"
#undef MB
#undef QV
#undef TILE
#undef VL
#undef TILE_ATTR

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVD_X86 1
#define TILE_ATTR __attribute__((target("avx2,fma")))
#define VL 8
#define MB 4
#define QV 3
#define TILE tile_avx2_wide
#include "core/kern_conv_direct.inc"
#undef MB
#undef QV
#undef TILE
#define MB 2
#define QV 5
#define TILE tile_avx2_narrow
#include "core/kern_conv_direct.inc"
#undef MB
#undef QV
#undef TILE
#undef VL
#undef TILE_ATTR

#define TILE_ATTR __attribute__((target("avx512f,fma")))
#define VL 16
#define MB 8
#define QV 3
#define TILE tile_avx512_wide
#include "core/kern_conv_direct.inc"
#undef MB
#undef QV
#undef TILE
#define MB 4
#define QV 6
#define TILE tile_avx512_narrow
#include "core/kern_conv_direct.inc"
#undef MB
#undef QV
#undef TILE
#undef VL
#undef TILE_ATTR
#else
#define CONVD_X86 0
#endif

typedef struct tile_kind {
  size_t mb, qb; /* output channels and positions per tile */
  tile_fn fn;
} tile_kind_t;

/* (MB, QV, VL) as the tile was compiled with (core/kern_conv_direct.inc) */
#define KIND(mb, qv, vl, fn) {(mb), (qv) * (vl), (fn)}

/* One row per instruction set: the wide tile, and the narrow one for few output channels
 * (the input gradient of a first layer has 3, which an 8-channel tile would mostly waste). */
static const struct {
  tile_kind_t wide, narrow;
} variants[] = {
    [XD_CONVD_PORTABLE] = {KIND(4, 3, 4, tile_portable_wide), KIND(2, 5, 4, tile_portable_narrow)},
#if CONVD_X86
    [XD_CONVD_AVX2] = {KIND(4, 3, 8, tile_avx2_wide), KIND(2, 5, 8, tile_avx2_narrow)},
    [XD_CONVD_AVX512] = {KIND(8, 3, 16, tile_avx512_wide), KIND(4, 6, 16, tile_avx512_narrow)},
#endif
};

int xd_convd_isa_available(int isa) {
  switch (isa) {
  case XD_CONVD_PORTABLE: return 1;
#if CONVD_X86
  case XD_CONVD_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  case XD_CONVD_AVX512: return __builtin_cpu_supports("avx512f");
#endif
  default: return 0;
  }
}

static int pick_isa(int isa) {
  if (isa != XD_CONVD_AUTO) return xd_convd_isa_available(isa) ? isa : XD_CONVD_PORTABLE;
  if (xd_convd_isa_available(XD_CONVD_AVX512)) return XD_CONVD_AVX512;
  if (xd_convd_isa_available(XD_CONVD_AVX2)) return XD_CONVD_AVX2;
  return XD_CONVD_PORTABLE;
}

/* ---- geometry ------------------------------------------------------------------------- */

/* One direction's convolution: Ci planes of H×W in, Mo planes of OH×OW out, kernel kh×kw,
 * pt rows and pl columns of zeros before the input. */
typedef struct dgeo {
  size_t N, Ci, Mo, H, W, kh, kw, pt, pl, OH, OW;
  size_t Hp, Wp, P; /* padded plane and its stride (with the zero tail) */
} dgeo_t;

static dgeo_t dgeo_of(const xd_conv_shape_t *s, int backward) {
  size_t in[3], k[3], out[3], p0[3];
  xd_kern_as3d(s->nsp, s->in, 1, in);
  xd_kern_as3d(s->nsp, s->k, 1, k);
  xd_kern_as3d(s->nsp, s->out, 1, out);
  xd_kern_as3d(s->nsp, s->pad0, 0, p0);
  dgeo_t g = {.N = s->N, .kh = k[1], .kw = k[2]};
  if (!backward) {
    g.Ci = s->C, g.Mo = s->M, g.H = in[1], g.W = in[2], g.OH = out[1], g.OW = out[2];
    g.pt = p0[1], g.pl = p0[2];
  } else { /* fits() checked p0 <= k - 1 */
    g.Ci = s->M, g.Mo = s->C, g.H = out[1], g.W = out[2], g.OH = in[1], g.OW = in[2];
    g.pt = k[1] - 1 - p0[1], g.pl = k[2] - 1 - p0[2];
  }
  g.Hp = g.OH + g.kh - 1;
  g.Wp = g.OW + g.kw - 1;
  g.P = g.Hp * g.Wp + CONVD_TAIL;
  return g;
}

int xd_convd_fits(const xd_conv_shape_t *s, int backward) {
  size_t in[3], k[3], st[3], dl[3], p0[3], p1[3];
  xd_kern_as3d(s->nsp, s->in, 1, in);
  xd_kern_as3d(s->nsp, s->k, 1, k);
  xd_kern_as3d(s->nsp, s->stride, 1, st);
  xd_kern_as3d(s->nsp, s->dil, 1, dl);
  xd_kern_as3d(s->nsp, s->pad0, 0, p0);
  xd_kern_as3d(s->nsp, s->pad1, 0, p1);
  if (s->group != 1 || in[0] != 1 || k[0] != 1 || p0[0] || p1[0]) return 0;
  for (int i = 1; i < 3; i++) {
    if (st[i] != 1 || dl[i] != 1 || k[i] > CONVD_MAX_K) return 0;
    if (backward && (p0[i] >= k[i] || p1[i] >= k[i])) return 0;
  }
  if (k[1] == 1 && k[2] == 1 && !p0[1] && !p0[2] && !p1[1] && !p1[2]) return 0; /* a plain GEMM */
  dgeo_t g = dgeo_of(s, backward);
  return g.Ci * g.P <= CONVD_MAX_PLANES && g.Mo <= 256;
}

static size_t dir_scratch(const xd_conv_shape_t *s, int backward) {
  if (!xd_convd_fits(s, backward)) return 0;
  dgeo_t g = dgeo_of(s, backward);
  size_t mpad = (g.Mo + CONVD_MAX_MB - 1) / CONVD_MAX_MB * CONVD_MAX_MB;
  return g.Ci * g.P + mpad * g.Ci * g.kh * g.kw;
}

size_t xd_convd_scratch(const xd_conv_shape_t *s) {
  size_t f = dir_scratch(s, 0), b = dir_scratch(s, 1);
  return f > b ? f : b;
}

/* ---- the two directions --------------------------------------------------------------- */

/* wp (Mo/mb blocks, Ci, kh, kw, mb) from w: forward w (Mo, Ci, kh, kw); backward w is
 * (Ci, Mo, kh, kw) read turned by 180°. Channels past Mo are zeros (their sums dropped). */
static void pack_weights(const dgeo_t *g, const float *w, int backward, size_t mb, float *wp) {
  size_t taps = g->kh * g->kw, nblk = (g->Mo + mb - 1) / mb;
  for (size_t blk = 0; blk < nblk; blk++)
    for (size_t c = 0; c < g->Ci; c++)
      for (size_t t = 0; t < taps; t++)
        for (size_t r = 0; r < mb; r++) {
          size_t mo = blk * mb + r;
          float v = 0;
          if (mo < g->Mo) v = backward ? w[(c * g->Mo + mo) * taps + (taps - 1 - t)] : w[(mo * g->Ci + c) * taps + t];
          wp[((blk * g->Ci + c) * taps + t) * mb + r] = v;
        }
}

/* One image's Ci planes (H, W) -> padded planes (Hp, Wp) with stride P, zero elsewhere:
 * one pass, row by row (rows are short: plain loops, no memcpy/memset calls). */
XD_HOT_LOOP static void pad_image(const dgeo_t *g, const float *restrict x, float *restrict xp) {
  size_t Wp = g->Wp, r0 = g->pt, c0 = g->pl;
  size_t rows = g->Hp > r0 ? g->Hp - r0 : 0, cols = Wp > c0 ? Wp - c0 : 0;
  if (rows > g->H) rows = g->H;
  if (cols > g->W) cols = g->W;
  for (size_t c = 0; c < g->Ci; c++) {
    float *pc = xp + c * g->P;
    const float *xc = x + c * g->H * g->W;
    for (size_t r = 0; r < g->Hp; r++) {
      float *pr = pc + r * Wp;
      if (r < r0 || r >= r0 + rows) {
        for (size_t j = 0; j < Wp; j++) pr[j] = 0;
        continue;
      }
      const float *xr = xc + (r - r0) * g->W;
      for (size_t j = 0; j < c0; j++) pr[j] = 0;
      for (size_t j = 0; j < cols; j++) pr[c0 + j] = xr[j];
      for (size_t j = c0 + cols; j < Wp; j++) pr[j] = 0;
    }
    for (size_t j = g->Hp * Wp; j < g->P; j++) pc[j] = 0;
  }
}

/* y (n) = t (n) + bias, and y (n) += t (n): vectorized (-O2 alone leaves them scalar). */
XD_HOT_LOOP static void copy_bias_run(float *restrict y, const float *restrict t, float bias, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = t[i] + bias;
}
XD_HOT_LOOP static void add_run(float *restrict y, const float *restrict t, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] += t[i];
}

/* y (N, Mo, OH, OW) = bias + conv (accumulate 0) or += conv (accumulate 1). */
static void run(const dgeo_t *g, const float *x, const float *w, int backward, const float *bias, float *y,
                int accumulate, float *scratch, int isa) {
  isa = pick_isa(isa);
  const tile_kind_t *tk = g->Mo <= variants[isa].narrow.mb ? &variants[isa].narrow : &variants[isa].wide;
  size_t mb = tk->mb, qb = tk->qb, taps = g->kh * g->kw, nq = g->OH * g->Wp;
  float *xp = scratch, *wp = scratch + g->Ci * g->P;
  float tile[CONVD_MAX_MB * CONVD_MAX_QB];
  pack_weights(g, w, backward, mb, wp);
  for (size_t n = 0; n < g->N; n++) {
    pad_image(g, x + n * g->Ci * g->H * g->W, xp);
    float *yn = y + n * g->Mo * g->OH * g->OW;
    for (size_t m0 = 0; m0 < g->Mo; m0 += mb) {
      const float *wb = wp + (m0 / mb) * g->Ci * taps * mb;
      size_t mn = g->Mo - m0 < mb ? g->Mo - m0 : mb;
      for (size_t q0 = 0; q0 < nq; q0 += qb) {
        tk->fn(xp + q0, g->P, g->Ci, g->kh, g->kw, g->Wp, wb, tile);
        size_t q1 = nq - q0 < qb ? nq : q0 + qb;
        for (size_t r = 0; r < mn; r++) {
          float *ym = yn + (m0 + r) * g->OH * g->OW, bv = bias ? bias[m0 + r] : 0;
          for (size_t q = q0; q < q1;) { /* one run per output row; j >= OW lies past its end */
            size_t i = q / g->Wp, j = q % g->Wp, end = (i + 1) * g->Wp < q1 ? (i + 1) * g->Wp : q1;
            if (j < g->OW) {
              size_t len = end - q < g->OW - j ? end - q : g->OW - j;
              const float *t = tile + r * qb + (q - q0);
              if (accumulate)
                add_run(ym + i * g->OW + j, t, len);
              else
                copy_bias_run(ym + i * g->OW + j, t, bv, len);
            }
            q = end;
          }
        }
      }
    }
  }
}

void xd_convd_forward(const xd_conv_shape_t *s, const float *x, const float *w, const float *b, float *y,
                      float *scratch, int isa) {
  dgeo_t g = dgeo_of(s, 0);
  run(&g, x, w, 0, b, y, 0, scratch, isa);
}

void xd_convd_backward_dx(const xd_conv_shape_t *s, const float *w, const float *dy, float *dx, float *scratch,
                          int isa) {
  dgeo_t g = dgeo_of(s, 1);
  run(&g, dy, w, 1, NULL, dx, 1, scratch, isa);
}
