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

/* Largest tile of positions (QV·VL) of any shape, plus the widest kernel: the zero tail
 * after each padded plane that a tile overrunning the last output row may read. */
#define CONVD_TAIL 176
/* Floats of padded input at most (8 MB): larger images take im2col's bands of rows. */
#define CONVD_MAX_PLANES (1u << 21)
#define CONVD_MAX_K 11
#define CONVD_MAX_MB 8
#define CONVD_MAX_TILE 512 /* floats of the largest tile, MB·QV·VL (5·5·16) */

typedef void (*tile_fn)(const float *, size_t, size_t, size_t, size_t, size_t, const float *, float *);

/* ---- the tile kernels: portable, AVX2 and AVX-512, in several shapes ------------------ */

/* Every shape keeps its MB·QV accumulators, QV inputs and a weight in the variant's
 * registers (16 for SSE2 and AVX2, 32 for AVX-512); run() takes the shape that wastes the
 * least on the layer's channel count and row length (core/kern_conv_direct.inc). */
#define TILE_ATTR
#define VL 4
#define MB 4
#define QV 3
#define TILE tile_portable_4x3
#include "core/kern_conv_direct.inc"
#define MB 2
#define QV 5
#define TILE tile_portable_2x5
#include "core/kern_conv_direct.inc"
#define MB 6
#define QV 2
#define TILE tile_portable_6x2
#include "core/kern_conv_direct.inc"
#undef VL
#undef TILE_ATTR

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVD_X86 1
#define TILE_ATTR __attribute__((target("avx2,fma")))
#define VL 8
#define MB 4
#define QV 3
#define TILE tile_avx2_4x3
#include "core/kern_conv_direct.inc"
#define MB 2
#define QV 5
#define TILE tile_avx2_2x5
#include "core/kern_conv_direct.inc"
#define MB 6
#define QV 2
#define TILE tile_avx2_6x2
#include "core/kern_conv_direct.inc"
#undef VL
#undef TILE_ATTR

#define TILE_ATTR __attribute__((target("avx512f,fma")))
#define VL 16
#define MB 8
#define QV 3
#define TILE tile_avx512_8x3
#include "core/kern_conv_direct.inc"
#define MB 6
#define QV 4
#define TILE tile_avx512_6x4
#include "core/kern_conv_direct.inc"
#define MB 5
#define QV 5
#define TILE tile_avx512_5x5
#include "core/kern_conv_direct.inc"
#define MB 4
#define QV 6
#define TILE tile_avx512_4x6
#include "core/kern_conv_direct.inc"
#define MB 3
#define QV 7
#define TILE tile_avx512_3x7
#include "core/kern_conv_direct.inc"
#define MB 2
#define QV 10
#define TILE tile_avx512_2x10
#include "core/kern_conv_direct.inc"
#undef VL
#undef TILE_ATTR
#else
#define CONVD_X86 0
#endif

typedef struct tile_kind {
  size_t mb, qv, vl; /* output channels, vectors of positions, floats per vector */
  tile_fn fn;
} tile_kind_t;

#define CONVD_KINDS 6
/* Each instruction set's shapes, as compiled above; the first is the default. */
static const tile_kind_t kinds[][CONVD_KINDS] = {
    [XD_CONVD_PORTABLE] = {{4, 3, 4, tile_portable_4x3}, {2, 5, 4, tile_portable_2x5}, {6, 2, 4, tile_portable_6x2}},
#if CONVD_X86
    [XD_CONVD_AVX2] = {{4, 3, 8, tile_avx2_4x3}, {2, 5, 8, tile_avx2_2x5}, {6, 2, 8, tile_avx2_6x2}},
    [XD_CONVD_AVX512] = {{8, 3, 16, tile_avx512_8x3},
                         {6, 4, 16, tile_avx512_6x4},
                         {5, 5, 16, tile_avx512_5x5},
                         {4, 6, 16, tile_avx512_4x6},
                         {3, 7, 16, tile_avx512_3x7},
                         {2, 10, 16, tile_avx512_2x10}},
#endif
};

/* The shape with the fewest multiply-adds for Mo output channels over nq positions,
 * counting the rounding up of both to whole tiles (ties: the earlier, squarer shape). */
static const tile_kind_t *pick_kind(int isa, size_t Mo, size_t nq) {
  const tile_kind_t *best = &kinds[isa][0];
  size_t best_cost = (size_t)-1;
  for (int i = 0; i < CONVD_KINDS && kinds[isa][i].fn; i++) {
    const tile_kind_t *k = &kinds[isa][i];
    if (k->mb * k->qv * k->vl > CONVD_MAX_TILE || k->qv * k->vl + CONVD_MAX_K > CONVD_TAIL) continue; /* never */
    size_t nv = (nq + k->vl - 1) / k->vl, cost = (Mo + k->mb - 1) / k->mb * k->mb * ((nv + k->qv - 1) / k->qv * k->qv);
    if (cost < best_cost) best = k, best_cost = cost;
  }
  return best;
}

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
  size_t mpad = g.Mo + CONVD_MAX_MB - 1; /* whole tiles of any shape's MB */
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

/* One image's Ci planes (H, W) -> the data rows of the padded planes (Hp, Wp), stride P.
 * The zeros around them (padding, the tail) are written once per call, before the first
 * image, and no image's copy touches them. Rows are short: plain loops, no memcpy calls. */
XD_HOT_LOOP static void pad_image(const dgeo_t *g, const float *restrict x, float *restrict xp, int first) {
  size_t Wp = g->Wp, r0 = g->pt, c0 = g->pl;
  size_t rows = g->Hp > r0 ? g->Hp - r0 : 0, cols = Wp > c0 ? Wp - c0 : 0;
  if (rows > g->H) rows = g->H;
  if (cols > g->W) cols = g->W;
  if (first)
    for (size_t i = 0; i < g->Ci * g->P; i++) xp[i] = 0;
  for (size_t c = 0; c < g->Ci; c++) {
    float *pc = xp + c * g->P + r0 * Wp + c0;
    const float *xc = x + c * g->H * g->W;
    for (size_t r = 0; r < rows; r++)
      for (size_t j = 0; j < cols; j++) pc[r * Wp + j] = xc[r * g->W + j];
  }
}

/* A tile (mn of its rows, each positions q0..q1-1 of the extended rows, qb apart) into y's
 * planes (OH, OW): y = t + bias (accumulate 0) or y += t (1); positions with j >= OW lie
 * past the row's end and are dropped. */
XD_HOT_LOOP static void store_tile(const dgeo_t *g, const float *restrict tile, size_t qb, size_t mn, size_t q0,
                                   size_t q1, const float *bias, float *restrict ym, int accumulate) {
  size_t Wp = g->Wp, OW = g->OW, osp = g->OH * OW, i0 = q0 / Wp, j0 = q0 % Wp; /* one division a tile */
  for (size_t r = 0; r < mn; r++, ym += osp) {
    float bv = bias ? bias[r] : 0;
    const float *t = tile + r * qb;
    for (size_t q = q0, i = i0, j = j0; q < q1; i++, j = 0) { /* one run per output row */
      size_t end = q + (Wp - j) < q1 ? q + (Wp - j) : q1;
      if (j < OW) {
        size_t len = end - q < OW - j ? end - q : OW - j;
        float *o = ym + i * OW + j;
        const float *tq = t + (q - q0);
        size_t k = 0; /* whole 8-float chunks first: fixed-length loops vectorize without a tail */
        if (accumulate) {
          for (; k + 8 <= len; k += 8)
            for (size_t l = 0; l < 8; l++) o[k + l] += tq[k + l];
          for (; k < len; k++) o[k] += tq[k];
        } else {
          for (; k + 8 <= len; k += 8)
            for (size_t l = 0; l < 8; l++) o[k + l] = tq[k + l] + bv;
          for (; k < len; k++) o[k] = tq[k] + bv;
        }
      }
      q = end;
    }
  }
}

/* y (N, Mo, OH, OW) = bias + conv (accumulate 0) or += conv (accumulate 1). */
static void run(const dgeo_t *g, const float *x, const float *w, int backward, const float *bias, float *y,
                int accumulate, float *scratch, int isa) {
  size_t nq = g->OH * g->Wp, taps = g->kh * g->kw;
  const tile_kind_t *tk = pick_kind(pick_isa(isa), g->Mo, nq);
  size_t mb = tk->mb, qb = tk->qv * tk->vl;
  float *xp = scratch, *wp = scratch + g->Ci * g->P;
  float tile[CONVD_MAX_TILE];
  pack_weights(g, w, backward, mb, wp);
  for (size_t n = 0; n < g->N; n++) {
    pad_image(g, x + n * g->Ci * g->H * g->W, xp, n == 0);
    float *yn = y + n * g->Mo * g->OH * g->OW;
    for (size_t m0 = 0; m0 < g->Mo; m0 += mb) {
      const float *wb = wp + (m0 / mb) * g->Ci * taps * mb;
      size_t mn = g->Mo - m0 < mb ? g->Mo - m0 : mb;
      for (size_t q0 = 0; q0 < nq; q0 += qb) {
        tk->fn(xp + q0, g->P, g->Ci, g->kh, g->kw, g->Wp, wb, tile);
        store_tile(g, tile, qb, mn, q0, nq - q0 < qb ? nq : q0 + qb, bias ? bias + m0 : NULL,
                   yn + m0 * g->OH * g->OW, accumulate);
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
