/* gop_light.c — the light operators: elementwise unary and binary ops with numpy
 * broadcasting, comparisons and Where, Cast, Clip (reductions: gop_reduce.c). Each
 * forward in float and double (and int64 where shape arithmetic needs it), each backward
 * (float or double, one body: XD_GOP_FLOAT_T) below its forward as the vector-Jacobian
 * product, accumulating into din (gop.h).
 * References: the ONNX operator specs, opsets 7–21.
 */
#include <math.h>
#include <string.h>

#include "core/gop.h"
#include "core/hotloop.h"
#include "core/vmath.h"

#define MAXR XD_TENSOR_MAX_RANK

/* ---- broadcasting iteration ------------------------------------------------------------ */

/* Up to three inputs walked in the output's coordinates: st[k][d] is input k's stride on
 * output axis d (0 where it broadcasts). */
typedef struct bc {
  size_t r, inner, outer;
  int64_t dims[MAXR];
  size_t st[3][MAXR];
} bc_t;

static void bc_init(bc_t *b, const xd_tensor_t *out, const xd_tensor_t *const *ins, int k) {
  memset(b, 0, sizeof *b);
  b->r = out->rank;
  memcpy(b->dims, out->dims, sizeof b->dims);
  for (int q = 0; q < k; q++) {
    const xd_tensor_t *x = ins[q];
    size_t s = 1;
    for (size_t i = b->r; i-- > 0;) {
      int64_t d = i + x->rank >= b->r ? x->dims[i + x->rank - b->r] : 1;
      b->st[q][i] = d == 1 ? 0 : s;
      s *= (size_t)d;
    }
  }
  b->inner = b->r ? (size_t)b->dims[b->r - 1] : 1;
  size_t n = xd_tensor_numel(out);
  b->outer = b->inner ? n / b->inner : 0;
}

/* Steps idx, a row's index over the axes [0, r-1) of dims, to the next row (the last of
 * those axes fastest): the odometer every row-wise walk below shares. */
static inline void next_row(size_t *idx, const int64_t *dims, size_t r) {
  for (size_t d = r ? r - 1 : 0; d-- > 0;) {
    if (++idx[d] < (size_t)dims[d]) break;
    idx[d] = 0;
  }
}

/* BODY sees o (output index) and i0, i1, i2 (input indices). */
#define BC_FOR(B, BODY)                                                                   \
  do {                                                                                    \
    size_t idx_[MAXR] = {0}, o = 0, r_ = (B)->r;                                          \
    size_t s0_ = r_ ? (B)->st[0][r_ - 1] : 0, s1_ = r_ ? (B)->st[1][r_ - 1] : 0;          \
    size_t s2_ = r_ ? (B)->st[2][r_ - 1] : 0;                                             \
    for (size_t it_ = 0; it_ < (B)->outer; it_++) {                                       \
      size_t i0 = 0, i1 = 0, i2 = 0;                                                      \
      for (size_t d_ = 0; d_ + 1 < r_; d_++) {                                            \
        i0 += idx_[d_] * (B)->st[0][d_];                                                  \
        i1 += idx_[d_] * (B)->st[1][d_];                                                  \
        i2 += idx_[d_] * (B)->st[2][d_];                                                  \
      }                                                                                   \
      for (size_t e_ = 0; e_ < (B)->inner; e_++, o++, i0 += s0_, i1 += s1_, i2 += s2_) { \
        BODY;                                                                             \
      }                                                                                   \
      next_row(idx_, (B)->dims, r_);                                                      \
    }                                                                                     \
  } while (0)

static xd_dtype_t logical(xd_dtype_t t) { return t == XD_DT_F64 ? XD_DT_F32 : t; }

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MIN, B_MAX, B_EQ, B_LT, B_GT, B_LE, B_GE, B_AND, B_OR, B_XOR };

/* ---- vectorized rows: the arithmetic of the hot cases ------------------------------------- */

/* y[e] = a[e·sa] op b[e·sb] for e < n, sa and sb 0 or 1 (a broadcast scalar or a row). One
 * loop per case so that each vectorizes; plain IEEE steps, the same bits in every clone. */
#define ROW_OP(T, NAME)                                                                              \
  XD_HOT_LOOP static void NAME(int c, const T *restrict a, size_t sa, const T *restrict b, size_t sb, \
                               T *restrict y, size_t n) {                                            \
    if (sa && sb) {                                                                                  \
      switch (c) {                                                                                   \
      case B_ADD: for (size_t e = 0; e < n; e++) y[e] = a[e] + b[e]; break;                          \
      case B_SUB: for (size_t e = 0; e < n; e++) y[e] = a[e] - b[e]; break;                          \
      case B_MUL: for (size_t e = 0; e < n; e++) y[e] = a[e] * b[e]; break;                          \
      default: for (size_t e = 0; e < n; e++) y[e] = a[e] / b[e]; break;                             \
      }                                                                                              \
    } else if (sa) {                                                                                 \
      T v = b[0];                                                                                    \
      switch (c) {                                                                                   \
      case B_ADD: for (size_t e = 0; e < n; e++) y[e] = a[e] + v; break;                             \
      case B_SUB: for (size_t e = 0; e < n; e++) y[e] = a[e] - v; break;                             \
      case B_MUL: for (size_t e = 0; e < n; e++) y[e] = a[e] * v; break;                             \
      default: for (size_t e = 0; e < n; e++) y[e] = a[e] / v; break;                                \
      }                                                                                              \
    } else {                                                                                         \
      T v = a[0];                                                                                    \
      switch (c) {                                                                                   \
      case B_ADD: for (size_t e = 0; e < n; e++) y[e] = v + b[e * sb]; break;                        \
      case B_SUB: for (size_t e = 0; e < n; e++) y[e] = v - b[e * sb]; break;                        \
      case B_MUL: for (size_t e = 0; e < n; e++) y[e] = v * b[e * sb]; break;                        \
      default: for (size_t e = 0; e < n; e++) y[e] = v / b[e * sb]; break;                           \
      }                                                                                              \
    }                                                                                                \
  }
ROW_OP(float, row_op_f)
ROW_OP(double, row_op_d)

/* The inner rows of a broadcast Add/Sub/Mul/Div through row_op. */
#define ROWS(B, ROWF, A_, B_, Y_, C_)                                                     \
  do {                                                                                    \
    size_t idx_[MAXR] = {0}, r_ = (B)->r, o = 0;                                          \
    size_t s0_ = r_ ? (B)->st[0][r_ - 1] : 0, s1_ = r_ ? (B)->st[1][r_ - 1] : 0;          \
    for (size_t it_ = 0; it_ < (B)->outer; it_++, o += (B)->inner) {                      \
      size_t i0 = 0, i1 = 0;                                                              \
      for (size_t d_ = 0; d_ + 1 < r_; d_++) {                                            \
        i0 += idx_[d_] * (B)->st[0][d_];                                                  \
        i1 += idx_[d_] * (B)->st[1][d_];                                                  \
      }                                                                                   \
      ROWF(C_, A_ + i0, s0_, B_ + i1, s1_, Y_ + o, (B)->inner);                           \
      next_row(idx_, (B)->dims, r_);                                                      \
    }                                                                                     \
  } while (0)

/* The same over `rows` rows: y (rows, n) from a and b, row r of a at a + r·sar (element
 * stride sae, 0 or 1) and of b at b + r·sbr (sbe): a whole broadcast block in one call (a
 * call per short row cost more than the row: LayerNorm's x − mean, a bias over tokens). */
#define ROWS2_OP(T, NAME)                                                                                  \
  XD_HOT_LOOP static void NAME(int c, const T *restrict a, size_t sar, size_t sae, const T *restrict b,     \
                               size_t sbr, size_t sbe, T *restrict y, size_t rows, size_t n) {              \
    for (size_t r = 0; r < rows; r++) {                                                                    \
      const T *restrict ar = a + r * sar, *restrict br = b + r * sbr;                                      \
      T *restrict yr = y + r * n;                                                                          \
      if (sae && sbe) {                                                                                    \
        switch (c) {                                                                                       \
        case B_ADD: for (size_t e = 0; e < n; e++) yr[e] = ar[e] + br[e]; break;                           \
        case B_SUB: for (size_t e = 0; e < n; e++) yr[e] = ar[e] - br[e]; break;                           \
        case B_MUL: for (size_t e = 0; e < n; e++) yr[e] = ar[e] * br[e]; break;                           \
        default: for (size_t e = 0; e < n; e++) yr[e] = ar[e] / br[e]; break;                              \
        }                                                                                                  \
      } else if (sae) {                                                                                    \
        T v = br[0];                                                                                       \
        switch (c) {                                                                                       \
        case B_ADD: for (size_t e = 0; e < n; e++) yr[e] = ar[e] + v; break;                               \
        case B_SUB: for (size_t e = 0; e < n; e++) yr[e] = ar[e] - v; break;                               \
        case B_MUL: for (size_t e = 0; e < n; e++) yr[e] = ar[e] * v; break;                               \
        default: for (size_t e = 0; e < n; e++) yr[e] = ar[e] / v; break;                                  \
        }                                                                                                  \
      } else {                                                                                             \
        T v = ar[0];                                                                                       \
        switch (c) {                                                                                       \
        case B_ADD: for (size_t e = 0; e < n; e++) yr[e] = v + br[e * sbe]; break;                         \
        case B_SUB: for (size_t e = 0; e < n; e++) yr[e] = v - br[e * sbe]; break;                         \
        case B_MUL: for (size_t e = 0; e < n; e++) yr[e] = v * br[e * sbe]; break;                         \
        default: for (size_t e = 0; e < n; e++) yr[e] = v / br[e * sbe]; break;                            \
        }                                                                                                  \
      }                                                                                                    \
    }                                                                                                      \
  }
ROWS2_OP(float, rows2_f)
ROWS2_OP(double, rows2_d)

/* Add/Sub/Mul/Div of float a and b (strides in bc) by blocks: the output's axes of size
 * 1 dropped, neighbours that both inputs broadcast alike merged (contiguous inputs), the
 * last two merged axes one rows2 call, the axes before them walked. 0 when the pattern
 * does not fit (an innermost axis both inputs broadcast): the caller's general loop. */
static int binary_blocks(int c, const bc_t *bc, const void *a, const void *b, void *y, int dbl) {
  size_t k = 0, dim[MAXR], sa[MAXR], sb[MAXR];
  for (size_t d = 0; d < bc->r; d++) {
    if (bc->dims[d] == 1) continue;
    size_t pa = bc->st[0][d] != 0, pb = bc->st[1][d] != 0;
    if (k && (sa[k - 1] != 0) == pa && (sb[k - 1] != 0) == pb) { /* same pattern: one axis */
      dim[k - 1] *= (size_t)bc->dims[d];
      sa[k - 1] = bc->st[0][d];
      sb[k - 1] = bc->st[1][d];
      continue;
    }
    dim[k] = (size_t)bc->dims[d];
    sa[k] = bc->st[0][d];
    sb[k] = bc->st[1][d];
    k++;
  }
  if (k == 0) { /* one element */
    dim[0] = 1;
    sa[0] = sb[0] = 1;
    k = 1;
  }
  if (!sa[k - 1] && !sb[k - 1]) return 0;
  size_t n = dim[k - 1], sae = sa[k - 1] ? 1 : 0, sbe = sb[k - 1] ? 1 : 0;
  size_t rows = k >= 2 ? dim[k - 2] : 1, sar = k >= 2 ? sa[k - 2] : 0, sbr = k >= 2 ? sb[k - 2] : 0;
  size_t outer_r = k >= 2 ? k - 2 : 0, outer = 1, idx[MAXR] = {0};
  for (size_t d = 0; d < outer_r; d++) outer *= dim[d];
  for (size_t it = 0; it < outer; it++) {
    size_t ia = 0, ib = 0;
    for (size_t d = 0; d < outer_r; d++) {
      ia += idx[d] * sa[d];
      ib += idx[d] * sb[d];
    }
    if (dbl)
      rows2_d(c, (const double *)a + ia, sar, sae, (const double *)b + ib, sbr, sbe, (double *)y + it * rows * n,
              rows, n);
    else
      rows2_f(c, (const float *)a + ia, sar, sae, (const float *)b + ib, sbr, sbe, (float *)y + it * rows * n, rows,
              n);
    for (size_t d = outer_r; d-- > 0;) {
      if (++idx[d] < dim[d]) break;
      idx[d] = 0;
    }
  }
  return 1;
}

XD_HOT_LOOP static void relu_f(const float *restrict x, float *restrict y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}
XD_HOT_LOOP static void relu_d(const double *restrict x, double *restrict y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}
/* Relu's backward, d += x > 0 ? g : 0: a CNN's most frequent elementwise backward. */
XD_HOT_LOOP static void relu_bwd_f(const float *restrict x, const float *restrict g, float *restrict d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] += x[i] > 0 ? g[i] : 0;
}
XD_HOT_LOOP static void relu_bwd_d(const double *restrict x, const double *restrict g, double *restrict d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] += x[i] > 0 ? g[i] : 0;
}

/* ---- binary ops ------------------------------------------------------------------------------ */

static const char *bnames[] = {"Add",  "Sub",     "Mul",  "Div",          "Pow", "Min", "Max", "Equal",
                               "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or",  "Xor"};

static int bcode(const xd_gnode_t *nd) {
  for (int i = 0; i < (int)(sizeof bnames / sizeof *bnames); i++)
    if (strcmp(nd->op->name, bnames[i]) == 0) return i;
  return -1;
}

static int binary_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  int c = bcode(nd);
  const xd_tensor_t *a = in[0], *b = in[1];
  size_t nin = nd->n_in;
  if (c == B_MIN || c == B_MAX) { /* variadic in ONNX; two inputs here */
    if (nin != 2) return xd_error_set(err, XD_EINVAL, NULL, "%s with %zu inputs is not supported (2 only)", bnames[c], nin);
  }
  if (!a || !b) return xd_error_set(err, XD_EINVAL, NULL, "needs two inputs");
  if (c == B_POW) { /* the exponent may have another type (a float tensor to an int power) */
    if (!xd_dtype_is_float(a->dtype)) return xd_error_set(err, XD_EINVAL, NULL, "Pow of a non-float base");
  } else if (logical(a->dtype) != logical(b->dtype)) {
    return xd_error_set(err, XD_EINVAL, NULL, "inputs of types %s and %s", xd_dtype_name(a->dtype),
                        xd_dtype_name(b->dtype));
  }
  if (c >= B_AND && a->dtype != XD_DT_BOOL) return xd_error_set(err, XD_EINVAL, NULL, "expects bool inputs");
  if (c <= B_MAX && a->dtype == XD_DT_BOOL) return xd_error_set(err, XD_EINVAL, NULL, "arithmetic on bool");
  int rc = xd_gop_broadcast(a, b, out[0], err);
  if (rc != XD_OK) return rc;
  out[0]->dtype = c >= B_EQ ? XD_DT_BOOL : a->dtype;
  env->scratch_bwd = xd_tensor_numel(out[0]) * sizeof(double);
  return XD_OK;
}

#define ARITH(T, A, B, C)                                                            \
  switch (C) {                                                                       \
  case B_ADD: BC_FOR(&bc, Y[o] = A[i0] + B[i1]); break;                              \
  case B_SUB: BC_FOR(&bc, Y[o] = A[i0] - B[i1]); break;                              \
  case B_MUL: BC_FOR(&bc, Y[o] = A[i0] * B[i1]); break;                              \
  case B_MIN: BC_FOR(&bc, Y[o] = A[i0] < B[i1] ? A[i0] : B[i1]); break;              \
  case B_MAX: BC_FOR(&bc, Y[o] = A[i0] > B[i1] ? A[i0] : B[i1]); break;              \
  default: break;                                                                    \
  }

#define COMPARE(T)                                                                   \
  do {                                                                               \
    const T *A = a->data, *B = b->data;                                              \
    switch (c) {                                                                     \
    case B_EQ: BC_FOR(&bc, Yb[o] = A[i0] == B[i1]); break;                           \
    case B_LT: BC_FOR(&bc, Yb[o] = A[i0] < B[i1]); break;                            \
    case B_GT: BC_FOR(&bc, Yb[o] = A[i0] > B[i1]); break;                            \
    case B_LE: BC_FOR(&bc, Yb[o] = A[i0] <= B[i1]); break;                           \
    case B_GE: BC_FOR(&bc, Yb[o] = A[i0] >= B[i1]); break;                           \
    default: break;                                                                  \
    }                                                                                \
  } while (0)

static int binary_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  int c = bcode(nd);
  const xd_tensor_t *a = in[0], *b = in[1];
  const xd_tensor_t *ins[2] = {a, b};
  bc_t bc;
  bc_init(&bc, out[0], ins, 2);
  if (c >= B_EQ) {
    uint8_t *Yb = out[0]->data;
    if (c >= B_AND) {
      const uint8_t *A = a->data, *B = b->data;
      if (c == B_AND) BC_FOR(&bc, Yb[o] = A[i0] && B[i1]);
      else if (c == B_OR) BC_FOR(&bc, Yb[o] = A[i0] || B[i1]);
      else BC_FOR(&bc, Yb[o] = (A[i0] != 0) != (B[i1] != 0));
      return XD_OK;
    }
    switch (a->dtype) {
    case XD_DT_F32: COMPARE(float); break;
    case XD_DT_F64: COMPARE(double); break;
    case XD_DT_I64: COMPARE(int64_t); break;
    default: COMPARE(uint8_t); break;
    }
    return XD_OK;
  }
  if (c <= B_DIV && a->dtype == b->dtype && xd_dtype_is_float(a->dtype) &&
      binary_blocks(c, &bc, a->data, b->data, out[0]->data, a->dtype == XD_DT_F64))
    return XD_OK;
  if (c == B_POW && xd_dtype_is_float(a->dtype) && b->dtype == a->dtype && xd_tensor_numel(b) == 1 &&
      xd_tensor_get_d(b, 0) == 2.0 && xd_tensor_numel(a) == xd_tensor_numel(out[0])) { /* x² = x·x, as below */
    const xd_tensor_t *aa[2] = {a, a};
    bc_t sq;
    bc_init(&sq, out[0], aa, 2);
    if (binary_blocks(B_MUL, &sq, a->data, a->data, out[0]->data, a->dtype == XD_DT_F64)) return XD_OK;
  }
  int rowable = c <= B_DIV && a->dtype == b->dtype && (bc.r == 0 || bc.st[0][bc.r - 1] || bc.st[1][bc.r - 1]);
  if (rowable && a->dtype == XD_DT_F32) {
    ROWS(&bc, row_op_f, (const float *)a->data, (const float *)b->data, (float *)out[0]->data, c);
    return XD_OK;
  }
  if (rowable && a->dtype == XD_DT_F64) {
    ROWS(&bc, row_op_d, (const double *)a->data, (const double *)b->data, (double *)out[0]->data, c);
    return XD_OK;
  }
  if (a->dtype == XD_DT_F32) {
    const float *A = a->data, *B = b->data;
    float *Y = out[0]->data;
    if (c == B_POW) {
      if (b->dtype == XD_DT_F32) {
        int sq = xd_tensor_numel(b) == 1 && B[0] == 2.0f; /* x² (decomposed LayerNorm) */
        if (sq) BC_FOR(&bc, Y[o] = A[i0] * A[i0]);
        else BC_FOR(&bc, Y[o] = powf(A[i0], B[i1]));
      } else {
        BC_FOR(&bc, Y[o] = powf(A[i0], (float)xd_tensor_get_d(b, i1)));
      }
    } else if (c == B_DIV) {
      BC_FOR(&bc, Y[o] = A[i0] / B[i1]);
    } else {
      ARITH(float, A, B, c)
    }
  } else if (a->dtype == XD_DT_F64) {
    const double *A = a->data, *B = b->data;
    double *Y = out[0]->data;
    if (c == B_POW) {
      if (b->dtype == XD_DT_F64) BC_FOR(&bc, Y[o] = B[i1] == 2.0 ? A[i0] * A[i0] : pow(A[i0], B[i1]));
      else BC_FOR(&bc, Y[o] = pow(A[i0], xd_tensor_get_d(b, i1)));
    } else if (c == B_DIV) {
      BC_FOR(&bc, Y[o] = A[i0] / B[i1]);
    } else {
      ARITH(double, A, B, c)
    }
  } else { /* int64: shape arithmetic; division truncates, by zero gives 0 */
    const int64_t *A = a->data, *B = b->data;
    int64_t *Y = out[0]->data;
    if (c == B_DIV) BC_FOR(&bc, Y[o] = B[i1] ? A[i0] / B[i1] : 0);
    else if (c == B_POW) return XD_EINVAL;
    else ARITH(int64_t, A, B, c)
  }
  return XD_OK;
}

/* One row of the backward of Mul, Div and Pow (x²) on one side, v the other operand (Pow:
 * the base itself; stride sv, 0 or 1), y the output: the term is g·v (c 0), g / v (c 1),
 * −g·y / v (c 2) or 2·g·v (c 3); d += term (acc), or d = term (the broadcast side's
 * per-element terms, summed afterwards). The hot rows of attention and decomposed LayerNorm. */
#define BWD_LOOPS(EXPR)                                                    \
  do {                                                                     \
    if (sv && acc) for (size_t e = 0; e < n; e++) d[e] += EXPR(g[e], v[e], y[e]); \
    else if (sv) for (size_t e = 0; e < n; e++) d[e] = EXPR(g[e], v[e], y[e]);    \
    else if (acc) for (size_t e = 0; e < n; e++) d[e] += EXPR(g[e], v0, y[e]);    \
    else for (size_t e = 0; e < n; e++) d[e] = EXPR(g[e], v0, y[e]);              \
  } while (0)
#define BWD_MUL(g, v, y) ((g) * (v))
#define BWD_DIV(g, v, y) ((g) / (v))
#define BWD_DIVB(g, v, y) (-((g) * (y)) / (v))
#define BWD_SQ(g, v, y) (2 * (g) * (v))
#define BWD_ROW(T, NAME)                                                                                    \
  XD_HOT_LOOP static void NAME(int c, int acc, T *restrict d, const T *restrict g, const T *restrict v,      \
                               size_t sv, const T *restrict y, size_t n) {                                 \
    T v0 = v[0];                                                                                           \
    switch (c) { /* one loop per case, each vectorized */                                                  \
    case 0: BWD_LOOPS(BWD_MUL); break;                                                                     \
    case 1: BWD_LOOPS(BWD_DIV); break;                                                                     \
    case 2: BWD_LOOPS(BWD_DIVB); break;                                                                    \
    default: BWD_LOOPS(BWD_SQ); break;                                                                     \
    }                                                                                                      \
  }
BWD_ROW(float, bwd_row_f)
BWD_ROW(double, bwd_row_d)

/* The terms of Mul, Div or Pow (x²) on `side`, row by row through bwd_row: accumulated into
 * d (acc, a side with the output's shape) or written to d (the output's shape, to be
 * summed over the broadcast axes). 0 when the other operand's last axis is neither
 * contiguous nor broadcast (the caller's general loop then does it). */
static int binary_rows(int c, int side, int acc, const bc_t *bc, const xd_tensor_t *a, const xd_tensor_t *b,
                       const xd_tensor_t *y, const xd_tensor_t *g, void *d) {
  int code = c == B_MUL ? 0 : c == B_POW ? 3 : side ? 2 : 1;
  int vk = (c == B_MUL && side) || c == B_POW ? 0 : 1; /* the operand the term reads: a or b */
  const xd_tensor_t *v = vk ? b : a;
  size_t r = bc->r, so = r ? bc->st[vk][r - 1] : 0;
  if (so > 1 || a->dtype != b->dtype || !xd_dtype_is_float(a->dtype)) return 0;
  size_t idx[MAXR] = {0}, es = xd_dtype_size(a->dtype);
  for (size_t it = 0, o = 0; it < bc->outer; it++, o += bc->inner) {
    size_t i = 0;
    for (size_t k = 0; k + 1 < r; k++) i += idx[k] * bc->st[vk][k];
    const char *vp = (const char *)v->data + i * es;
    if (a->dtype == XD_DT_F32)
      bwd_row_f(code, acc, (float *)d + o, (const float *)g->data + o, (const float *)vp, so,
                (const float *)y->data + o, bc->inner);
    else
      bwd_row_d(code, acc, (double *)d + o, (const double *)g->data + o, (const double *)vp, so,
                (const double *)y->data + o, bc->inner);
    next_row(idx, bc->dims, r);
  }
  return 1;
}

static int binary_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                           void *scratch) {
  int c = bcode(nd);
  const xd_tensor_t *a = in[0], *b = in[1];
  const xd_tensor_t *ins[2] = {a, b};
  bc_t bc;
  bc_init(&bc, out[0], ins, 2);
  int bf = b->dtype == a->dtype; /* Pow's exponent may have another type */
  size_t nout = xd_tensor_numel(out[0]);
  if (c > B_MAX) return XD_EUNSUPPORTED;
  /* T is the run's float type (gop.h); math in double where float would lose (pow, log) */
#define BV(i) (bf ? (double)((const T *)b->data)[i] : xd_tensor_get_d(b, i))
  XD_GOP_FLOAT_T(a->dtype, {
    const T *A = a->data, *Y = out[0]->data, *G = dout[0]->data;
    T *t = scratch;
    for (int side = 0; side < 2; side++) {
      if (!din[side]) continue;
      T *D = din[side]->data;
      if (c == B_ADD || (c == B_SUB && side == 0)) { /* the gradient itself, summed over broadcast axes */
        xd_gop_unbroadcast_add(out[0], G, in[side], D);
        continue;
      }
      if (xd_tensor_numel(in[side]) == nout && (c == B_SUB || c == B_MUL || c == B_DIV)) {
        /* no broadcast on this side: accumulate in place */
        if (c == B_SUB) for (size_t i = 0; i < nout; i++) D[i] -= G[i];
        else if (binary_rows(c, side, 1, &bc, a, b, out[0], dout[0], din[side]->data)) continue;
        else if (c == B_MUL) BC_FOR(&bc, D[o] += G[o] * (side ? A[i0] : (T)BV(i1)));
        else BC_FOR(&bc, D[o] += side ? -G[o] * Y[o] / (T)BV(i1) : G[o] / (T)BV(i1));
        continue;
      }
      int sq = c == B_POW && !side && xd_tensor_numel(b) == 1 && xd_tensor_get_d(b, 0) == 2.0; /* x² */
      if ((c == B_MUL || c == B_DIV || sq) && binary_rows(c, side, 0, &bc, a, b, out[0], dout[0], t)) {
        xd_gop_unbroadcast_add(out[0], t, in[side], din[side]->data);
        continue;
      }
      switch (c) {
      case B_SUB: BC_FOR(&bc, t[o] = side ? -G[o] : G[o]); break;
      case B_MUL: BC_FOR(&bc, t[o] = G[o] * (side ? A[i0] : (T)BV(i1))); break;
      case B_DIV: BC_FOR(&bc, t[o] = side ? -G[o] * Y[o] / (T)BV(i1) : G[o] / (T)BV(i1)); break;
      case B_POW:
        if (side) BC_FOR(&bc, t[o] = A[i0] > 0 ? (T)(G[o] * (double)Y[o] * log((double)A[i0])) : 0);
        else
          BC_FOR(&bc, t[o] = BV(i1) == 2.0 ? 2 * G[o] * A[i0]
                                           : (T)(G[o] * BV(i1) * pow((double)A[i0], BV(i1) - 1)));
        break;
      default: /* Min, Max: to the chosen input; a tie goes to the first */
        BC_FOR(&bc, t[o] = ((A[i0] == Y[o]) == !side) ? G[o] : 0);
        break;
      }
      xd_gop_unbroadcast_add(out[0], t, in[side], din[side]->data);
    }
  });
#undef BV
  return XD_OK;
}

/* ---- Where ------------------------------------------------------------------------------------ */

static int where_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  if (in[0]->dtype != XD_DT_BOOL) return xd_error_set(err, XD_EINVAL, NULL, "the condition must be bool");
  if (logical(in[1]->dtype) != logical(in[2]->dtype))
    return xd_error_set(err, XD_EINVAL, NULL, "X and Y have types %s and %s", xd_dtype_name(in[1]->dtype),
                        xd_dtype_name(in[2]->dtype));
  xd_tensor_t t;
  int rc = xd_gop_broadcast(in[0], in[1], &t, err);
  if (rc == XD_OK) rc = xd_gop_broadcast(&t, in[2], out[0], err);
  out[0]->dtype = in[1]->dtype;
  env->scratch_bwd = xd_tensor_numel(out[0]) * sizeof(double);
  return rc;
}

static int where_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  const xd_tensor_t *ins[3] = {in[0], in[1], in[2]};
  bc_t bc;
  bc_init(&bc, out[0], ins, 3);
  const uint8_t *C = in[0]->data;
  size_t es = xd_dtype_size(out[0]->dtype);
  const char *X = in[1]->data, *Z = in[2]->data;
  char *Y = out[0]->data;
  switch (es) {
  case 8: BC_FOR(&bc, memcpy(Y + 8 * o, C[i0] ? X + 8 * i1 : Z + 8 * i2, 8)); break;
  case 4: BC_FOR(&bc, memcpy(Y + 4 * o, C[i0] ? X + 4 * i1 : Z + 4 * i2, 4)); break;
  default: BC_FOR(&bc, Y[o] = C[i0] ? X[i1] : Z[i2]); break;
  }
  return XD_OK;
}

static int where_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                          void *scratch) {
  const xd_tensor_t *ins[3] = {in[0], in[1], in[2]};
  bc_t bc;
  bc_init(&bc, out[0], ins, 3);
  const uint8_t *C = in[0]->data;
  XD_GOP_FLOAT_T(out[0]->dtype, {
    const T *G = dout[0]->data;
    T *t = scratch;
    for (int side = 1; side <= 2; side++) {
      if (!din[side]) continue;
      BC_FOR(&bc, t[o] = (C[i0] != 0) == (side == 1) ? G[o] : 0);
      xd_gop_unbroadcast_add(out[0], t, in[side], din[side]->data);
    }
  });
  return XD_OK;
}

/* ---- unary float ops ---------------------------------------------------------------------- */

enum { U_RELU, U_LEAKY, U_SIGMOID, U_TANH, U_ERF, U_SQRT, U_NEG, U_EXP, U_LOG, U_ABS, U_RECIP, U_IDENT, U_SOFTPLUS,
       U_GELU, U_CLIP, U_FLOOR, U_CEIL };
static const char *unames[] = {"Relu", "LeakyRelu", "Sigmoid",    "Tanh",     "Erf",  "Sqrt",  "Neg",   "Exp",
                               "Log",  "Abs",       "Reciprocal", "Identity", "Softplus", "Gelu", "Clip", "Floor",
                               "Ceil"};

typedef struct unary_p {
  int code;
  double alpha;    /* LeakyRelu */
  int tanh_form;   /* Gelu approximate="tanh" */
  double lo, hi;   /* Clip (attributes before opset 11) */
} unary_p;
_Static_assert(sizeof(unary_p) <= XD_GOP_PARAMS, "params");

static int unary_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  unary_p *p = (unary_p *)nd->params;
  p->code = -1;
  for (int i = 0; i < (int)(sizeof unames / sizeof *unames); i++)
    if (strcmp(nd->op->name, unames[i]) == 0) p->code = i;
  if (strcmp(nd->op->name, "Dropout") == 0) p->code = U_IDENT;
  p->alpha = xd_gattr_float(a, "alpha", 0.01);
  int present;
  p->tanh_form = xd_gattr_str_is(a, "approximate", "tanh", &present);
  if (present && !p->tanh_form && !xd_gattr_str_is(a, "approximate", "none", NULL))
    return xd_error_set(err, XD_EINVAL, "approximate", "approximate must be \"none\" or \"tanh\"");
  p->lo = xd_gattr_float(a, "min", -INFINITY);
  p->hi = xd_gattr_float(a, "max", INFINITY);
  if (p->code == U_IDENT && strcmp(nd->op->name, "Dropout") == 0 && xd_gattr_int(a, "is_test", 1) == 0 &&
      a->opset < 7)
    return xd_error_set(err, XD_EINVAL, "is_test", "Dropout in training mode");
  return XD_OK;
}

static int unary_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  const unary_p *p = (const unary_p *)nd->params;
  const xd_tensor_t *x = in[0];
  if (p->code == U_IDENT) { /* Identity and Dropout pass any type */
    xd_gop_same(x, out[0], x->dtype);
    if (nd->n_out > 1) xd_gop_same(x, out[1], XD_DT_BOOL); /* Dropout's mask: all kept */
    if (nd->n_in > 2 && in[2] && in[2]->data && xd_tensor_get_i(in[2], 0))
      return xd_error_set(err, XD_EINVAL, "training_mode", "Dropout in training mode; export the model in eval mode");
    return XD_OK;
  }
  if (!xd_dtype_is_float(x->dtype) && !((p->code == U_NEG || p->code == U_ABS) && x->dtype == XD_DT_I64))
    return xd_error_set(err, XD_EINVAL, NULL, "expects a float input, got %s", xd_dtype_name(x->dtype));
  if (p->code == U_CLIP)
    for (size_t k = 1; k < nd->n_in; k++)
      if (in[k] && xd_tensor_numel(in[k]) != 1) return xd_error_set(err, XD_EINVAL, NULL, "min and max must be scalars");
  xd_gop_same(x, out[0], x->dtype);
  return XD_OK;
}

#define GELU_ERF(x) (0.5 * (x) * (1 + erf((x)*M_SQRT1_2)))
#define GELU_TANH(x) (0.5 * (x) * (1 + tanh(0.7978845608028654 * ((x) + 0.044715 * (x) * (x) * (x)))))

#define UNARY_BODY(T, EXP, ERF, SQRT, TANH, LOG, FABS, LOG1P)                              \
  do {                                                                                   \
    const T *restrict X = x->data;                                                       \
    T *restrict Y = y->data;                                                             \
    switch (p->code) {                                                                   \
    case U_RELU: for (size_t i = 0; i < n; i++) Y[i] = X[i] > 0 ? X[i] : 0; break;       \
    case U_LEAKY: {                                                                      \
      T al = (T)p->alpha;                                                                \
      for (size_t i = 0; i < n; i++) Y[i] = X[i] >= 0 ? X[i] : al * X[i];                \
      break;                                                                             \
    }                                                                                    \
    case U_SIGMOID:                                                                      \
      for (size_t i = 0; i < n; i++)                                                     \
        Y[i] = X[i] >= 0 ? 1 / (1 + EXP(-X[i])) : EXP(X[i]) / (1 + EXP(X[i]));           \
      break;                                                                             \
    case U_TANH: for (size_t i = 0; i < n; i++) Y[i] = TANH(X[i]); break;                \
    case U_ERF: for (size_t i = 0; i < n; i++) Y[i] = ERF(X[i]); break;                  \
    case U_SQRT: for (size_t i = 0; i < n; i++) Y[i] = SQRT(X[i]); break;                \
    case U_NEG: for (size_t i = 0; i < n; i++) Y[i] = -X[i]; break;                      \
    case U_EXP: for (size_t i = 0; i < n; i++) Y[i] = EXP(X[i]); break;                  \
    case U_LOG: for (size_t i = 0; i < n; i++) Y[i] = LOG(X[i]); break;                  \
    case U_ABS: for (size_t i = 0; i < n; i++) Y[i] = FABS(X[i]); break;                 \
    case U_RECIP: for (size_t i = 0; i < n; i++) Y[i] = 1 / X[i]; break;                 \
    case U_SOFTPLUS:                                                                     \
      for (size_t i = 0; i < n; i++) Y[i] = X[i] > 0 ? X[i] + LOG1P(EXP(-X[i])) : LOG1P(EXP(X[i])); \
      break;                                                                             \
    case U_GELU:                                                                         \
      if (p->tanh_form)                                                                  \
        for (size_t i = 0; i < n; i++) Y[i] = (T)GELU_TANH((double)X[i]);                \
      else                                                                               \
        for (size_t i = 0; i < n; i++) Y[i] = (T)GELU_ERF((double)X[i]);                 \
      break;                                                                             \
    case U_CLIP:                                                                         \
      for (size_t i = 0; i < n; i++) Y[i] = X[i] < lo ? (T)lo : X[i] > hi ? (T)hi : X[i]; \
      break;                                                                             \
    case U_FLOOR: for (size_t i = 0; i < n; i++) Y[i] = floor(X[i]); break;              \
    case U_CEIL: for (size_t i = 0; i < n; i++) Y[i] = ceil(X[i]); break;                \
    default: memcpy(Y, X, n * sizeof *Y); break;                                         \
    }                                                                                    \
  } while (0)

/* Gelu's erf form in float with the vectorized erf and exp (core/vmath.h), as the Erf
 * node of a decomposed GELU has them: one scalar double erf per element cost more than the
 * matrix product before it. Forward: y = 0.5·x·(1 + erf(x/√2)). */
XD_VEC_LOOP static void gelu_erf_f(const float *restrict x, float *restrict y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] * (float)M_SQRT1_2;
  xd_verf_f(y, y, n);
  for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1 + y[i]);
}

/* d += g·(0.5·(1 + erf(x/√2)) + x·φ(x)), in blocks with the erf and exp on the stack. */
XD_VEC_LOOP static void gelu_erf_bwd_f(const float *restrict x, const float *restrict g, float *restrict d, size_t n) {
  float e[256], q[256];
  for (size_t i0 = 0; i0 < n; i0 += 256) {
    size_t m = n - i0 < 256 ? n - i0 : 256;
    const float *xb = x + i0;
    for (size_t i = 0; i < m; i++) {
      e[i] = xb[i] * (float)M_SQRT1_2;
      q[i] = -0.5f * xb[i] * xb[i];
    }
    xd_verf_f(e, e, m);
    xd_vexp_f(q, q, m);
    for (size_t i = 0; i < m; i++)
      d[i0 + i] += g[i0 + i] * (0.5f * (1 + e[i]) + xb[i] * q[i] * 0.3989422804014327f);
  }
}

static void clip_bounds(const unary_p *p, const xd_gnode_t *nd, xd_gtv_t in, double *lo, double *hi) {
  *lo = p->lo;
  *hi = p->hi;
  if (nd->n_in > 1 && in[1]) *lo = xd_tensor_get_d(in[1], 0);
  if (nd->n_in > 2 && in[2]) *hi = xd_tensor_get_d(in[2], 0);
}

static int unary_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  const unary_p *p = (const unary_p *)nd->params;
  const xd_tensor_t *x = in[0];
  xd_tensor_t *y = out[0];
  size_t n = xd_tensor_numel(x);
  double lo = 0, hi = 0;
  if (p->code == U_CLIP) clip_bounds(p, nd, in, &lo, &hi);
  if (p->code == U_RELU && x->dtype == XD_DT_F32) {
    relu_f(x->data, y->data, n);
  } else if (p->code == U_RELU && x->dtype == XD_DT_F64) {
    relu_d(x->data, y->data, n);
  } else if (p->code == U_IDENT) {
    memcpy(y->data, x->data, xd_tensor_bytes(x));
    if (nd->n_out > 1) memset(out[1]->data, 1, n);
  } else if (x->dtype == XD_DT_F32 && p->code == U_GELU && !p->tanh_form) {
    gelu_erf_f(x->data, y->data, n);
  } else if (x->dtype == XD_DT_F32 && (p->code == U_ERF || p->code == U_TANH || p->code == U_SIGMOID ||
                                        p->code == U_EXP)) { /* vectorized (core/vmath.h) */
    (p->code == U_ERF ? xd_verf_f : p->code == U_TANH ? xd_vtanh_f : p->code == U_SIGMOID ? xd_vsigmoid_f : xd_vexp_f)(
        x->data, y->data, n);
  } else if (x->dtype == XD_DT_F32) {
    UNARY_BODY(float, expf, erff, sqrtf, tanhf, logf, fabsf, log1pf);
  } else if (x->dtype == XD_DT_F64) {
    UNARY_BODY(double, exp, erf, sqrt, tanh, log, fabs, log1p);
  } else {
    const int64_t *X = x->data;
    int64_t *Y = y->data;
    for (size_t i = 0; i < n; i++) Y[i] = p->code == U_NEG ? -X[i] : X[i] < 0 ? -X[i] : X[i];
  }
  return XD_OK;
}

static int unary_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                          void *scratch) {
  const unary_p *p = (const unary_p *)nd->params;
  if (!din[0] || !dout[0]) return XD_OK;
  size_t n = xd_tensor_numel(in[0]);
  double lo = 0, hi = 0;
  if (p->code == U_CLIP) clip_bounds(p, nd, in, &lo, &hi);
  if (p->code == U_RELU && in[0]->dtype == XD_DT_F32) {
    relu_bwd_f(in[0]->data, dout[0]->data, din[0]->data, n);
    return XD_OK;
  }
  if (p->code == U_RELU && in[0]->dtype == XD_DT_F64) {
    relu_bwd_d(in[0]->data, dout[0]->data, din[0]->data, n);
    return XD_OK;
  }
  if (p->code == U_GELU && !p->tanh_form && in[0]->dtype == XD_DT_F32) {
    gelu_erf_bwd_f(in[0]->data, dout[0]->data, din[0]->data, n);
    return XD_OK;
  }
  /* T is the run's float type (gop.h); transcendental derivatives in double */
  XD_GOP_FLOAT_T(in[0]->dtype, {
    const T *restrict X = in[0]->data, *restrict Y = out[0]->data, *restrict G = dout[0]->data;
    T *restrict D = din[0]->data;
    switch (p->code) {
    case U_RELU: for (size_t i = 0; i < n; i++) D[i] += X[i] > 0 ? G[i] : 0; break;
    case U_LEAKY: for (size_t i = 0; i < n; i++) D[i] += X[i] >= 0 ? G[i] : (T)p->alpha * G[i]; break;
    case U_SIGMOID: for (size_t i = 0; i < n; i++) D[i] += G[i] * Y[i] * (1 - Y[i]); break;
    case U_TANH: for (size_t i = 0; i < n; i++) D[i] += G[i] * (1 - Y[i] * Y[i]); break;
    case U_ERF:
      if (sizeof(T) == sizeof(float))
        for (size_t i = 0; i < n; i++) D[i] += G[i] * (float)M_2_SQRTPI * expf(-(float)X[i] * (float)X[i]);
      else
        for (size_t i = 0; i < n; i++) D[i] += (T)(G[i] * M_2_SQRTPI * exp(-(double)X[i] * X[i]));
      break;
    case U_SQRT: for (size_t i = 0; i < n; i++) D[i] += (T)(G[i] * 0.5 / Y[i]); break;
    case U_NEG: for (size_t i = 0; i < n; i++) D[i] -= G[i]; break;
    case U_EXP: for (size_t i = 0; i < n; i++) D[i] += G[i] * Y[i]; break;
    case U_LOG: for (size_t i = 0; i < n; i++) D[i] += G[i] / X[i]; break;
    case U_ABS: for (size_t i = 0; i < n; i++) D[i] += X[i] > 0 ? G[i] : X[i] < 0 ? -G[i] : 0; break;
    case U_RECIP: for (size_t i = 0; i < n; i++) D[i] -= G[i] * Y[i] * Y[i]; break;
    case U_IDENT: for (size_t i = 0; i < n; i++) D[i] += G[i]; break;
    case U_SOFTPLUS:
      for (size_t i = 0; i < n; i++) {
        double x = X[i];
        D[i] += (T)(G[i] * (x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))));
      }
      break;
    case U_GELU:
      for (size_t i = 0; i < n; i++) {
        double x = X[i], d;
        if (p->tanh_form) {
          double u = 0.7978845608028654 * (x + 0.044715 * x * x * x), t = tanh(u);
          d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x);
        } else if (sizeof(T) == sizeof(float)) { /* float's erff and expf: within float's digits */
          float xf = (float)x;
          d = 0.5f * (1 + erff(xf * (float)M_SQRT1_2)) + xf * expf(-0.5f * xf * xf) * 0.3989422804014327f;
        } else {
          d = 0.5 * (1 + erf(x * M_SQRT1_2)) + x * exp(-0.5 * x * x) * 0.3989422804014327;
        }
        D[i] += (T)(G[i] * d);
      }
      break;
    case U_CLIP: for (size_t i = 0; i < n; i++) D[i] += X[i] >= lo && X[i] <= hi ? G[i] : 0; break;
    default: break; /* Floor, Ceil: zero almost everywhere */
    }
  });
  return XD_OK;
}

/* ---- Not, Cast ----------------------------------------------------------------------------- */

static int not_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  if (in[0]->dtype != XD_DT_BOOL) return xd_error_set(err, XD_EINVAL, NULL, "expects a bool input");
  xd_gop_same(in[0], out[0], XD_DT_BOOL);
  return XD_OK;
}

static int not_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  const uint8_t *x = in[0]->data;
  uint8_t *y = out[0]->data;
  for (size_t i = 0, n = xd_tensor_numel(in[0]); i < n; i++) y[i] = !x[i];
  return XD_OK;
}

typedef struct cast_p {
  int to; /* 0 float, 1 int64, 2 bool */
} cast_p;

static int cast_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) {
  cast_p *p = (cast_p *)nd->params;
  int64_t to = xd_gattr_int(a, "to", -1);
  switch (to) {
  case 1: case 11: case 10: case 16: p->to = 0; break; /* float, double, float16, bfloat16: the run's float */
  case 7: case 6: case 5: case 3: case 2: case 4: case 12: case 13: p->to = 1; break; /* integers: int64 */
  case 9: p->to = 2; break;
  default: return xd_error_set(err, XD_EINVAL, "to", "Cast to type %lld is not supported", (long long)to);
  }
  return XD_OK;
}

static int cast_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  const cast_p *p = (const cast_p *)nd->params;
  xd_dtype_t to = p->to == 0 ? (xd_dtype_is_float(in[0]->dtype) ? in[0]->dtype : env->fdt)
                  : p->to == 1 ? XD_DT_I64
                               : XD_DT_BOOL;
  xd_gop_same(in[0], out[0], to);
  return XD_OK;
}

static int cast_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  xd_tensor_convert(out[0]->dtype, out[0]->data, in[0]->dtype, in[0]->data, xd_tensor_numel(in[0]));
  return XD_OK;
}

static int cast_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                         void *scratch) {
  if (!din[0] || !dout[0] || !xd_dtype_is_float(in[0]->dtype) || !xd_dtype_is_float(out[0]->dtype)) return XD_OK;
  if (in[0]->dtype != out[0]->dtype) return XD_EUNSUPPORTED; /* both are the run's float type */
  XD_GOP_FLOAT_T(in[0]->dtype, {
    const T *G = dout[0]->data;
    T *D = din[0]->data;
    for (size_t i = 0, n = xd_tensor_numel(in[0]); i < n; i++) D[i] += G[i];
  });
  return XD_OK;
}

/* ---- the rows -------------------------------------------------------------------------------- */

#define BIN(name, bwd) {name, 2, 2, 1, 1, 0, NULL, binary_infer, binary_forward, bwd}
#define UN(name, maxin) {name, 1, maxin, 1, 1, 0, unary_parse, unary_infer, unary_forward, unary_backward}

const xd_gop_t xd_gop_light_rows[] = {
    BIN("Add", binary_backward),
    BIN("Sub", binary_backward),
    BIN("Mul", binary_backward),
    BIN("Div", binary_backward),
    BIN("Pow", binary_backward),
    BIN("Min", binary_backward),
    BIN("Max", binary_backward),
    BIN("Equal", NULL),
    BIN("Less", NULL),
    BIN("Greater", NULL),
    BIN("LessOrEqual", NULL),
    BIN("GreaterOrEqual", NULL),
    BIN("And", NULL),
    BIN("Or", NULL),
    BIN("Xor", NULL),
    {"Where", 3, 3, 1, 1, 0, NULL, where_infer, where_forward, where_backward},
    UN("Relu", 1),
    UN("LeakyRelu", 1),
    UN("Sigmoid", 1),
    UN("Tanh", 1),
    UN("Erf", 1),
    UN("Sqrt", 1),
    UN("Neg", 1),
    UN("Exp", 1),
    UN("Log", 1),
    UN("Abs", 1),
    UN("Reciprocal", 1),
    UN("Identity", 1),
    UN("Softplus", 1),
    UN("Gelu", 1),
    UN("Clip", 3),
    UN("Floor", 1),
    UN("Ceil", 1),
    {"Dropout", 1, 3, 1, 2, 0, unary_parse, unary_infer, unary_forward, unary_backward},
    {"Not", 1, 1, 1, 1, 0, NULL, not_infer, not_forward, NULL},
    {"Cast", 1, 1, 1, 1, 0, cast_parse, cast_infer, cast_forward, cast_backward},
    {.name = NULL},
};
