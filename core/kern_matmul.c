/* kern_matmul.c — ONNX MatMul (numpy matmul, batch dimensions broadcast here) and Gemm,
 * forward and backward, over core/mat.h's strided GEMM.
 *
 * MatMul runs one GEMM per batch matrix, found by walking C's batch index with the
 * element strides of A and B (stride 0 on a broadcast axis). The common case of a
 * transformer or a dense layer on a sequence — B a weight shared by every batch, A's
 * batches contiguous — is one GEMM over all rows at once, forward and backward. The
 * float and double kernels come from one body, core/kern_matmul.inc, included twice.
 */
#include "core/kern.h"

#include <string.h>

#include "core/mat.h"

int xd_matmul_shape_init(xd_matmul_shape_t *s, const int64_t *adims, size_t arank, const int64_t *bdims,
                         size_t brank, xd_error_t *err) {
  memset(s, 0, sizeof *s);
  if (arank == 0 || brank == 0) return xd_error_set(err, XD_EINVAL, "A", "MatMul needs inputs of rank 1 or more");
  for (size_t i = 0; i < arank; i++)
    if (adims[i] < 0) return xd_error_set(err, XD_EINVAL, "A", "a negative dimension");
  for (size_t i = 0; i < brank; i++)
    if (bdims[i] < 0) return xd_error_set(err, XD_EINVAL, "B", "a negative dimension");
  int a1 = arank == 1, b1 = brank == 1;
  size_t M = a1 ? 1 : (size_t)adims[arank - 2], K = (size_t)adims[arank - 1];
  size_t K2 = b1 ? (size_t)bdims[0] : (size_t)bdims[brank - 2], N = b1 ? 1 : (size_t)bdims[brank - 1];
  if (K != K2)
    return xd_error_set(err, XD_EINVAL, "B", "MatMul inner dimensions differ: A has %zu columns, B %zu rows", K, K2);
  size_t na = a1 ? 0 : arank - 2, nbb = b1 ? 0 : brank - 2, nb = na > nbb ? na : nbb;
  if (nb > XD_KERN_MAX_BATCH)
    return xd_error_set(err, XD_EINVAL, "A", "MatMul supports at most %d batch dimensions", XD_KERN_MAX_BATCH);
  s->M = M;
  s->N = N;
  s->K = K;
  s->nb = nb;
  s->batch = 1;
  size_t sa = M * K, sb = K * N; /* element strides, innermost batch axis first */
  for (size_t i = nb; i-- > 0;) {
    size_t ia = i + na >= nb ? (size_t)adims[i + na - nb] : 1; /* right-aligned, absent = 1 */
    size_t ib = i + nbb >= nb ? (size_t)bdims[i + nbb - nb] : 1;
    if (ia != ib && ia != 1 && ib != 1)
      return xd_error_set(err, XD_EINVAL, "B", "MatMul batch dimensions %zu and %zu do not broadcast", ia, ib);
    s->bdim[i] = ia > ib ? ia : ib;
    s->astr[i] = ia == 1 ? 0 : sa;
    s->bstr[i] = ib == 1 ? 0 : sb;
    sa *= ia;
    sb *= ib;
  }
  for (size_t i = 0; i < nb; i++) {
    s->batch *= s->bdim[i];
    s->cdims[s->crank++] = (int64_t)s->bdim[i];
  }
  if (!a1) s->cdims[s->crank++] = (int64_t)M;
  if (!b1) s->cdims[s->crank++] = (int64_t)N;
  return XD_OK;
}

/* B is the same matrix for every batch and A's batches follow each other: the whole
 * product is one (batch·M, K)·(K, N) GEMM. */
static int shared_b(const xd_matmul_shape_t *s) {
  size_t sa = s->M * s->K;
  for (size_t i = s->nb; i-- > 0;) {
    if (s->bstr[i] != 0 && s->bdim[i] > 1) return 0;
    if (s->bdim[i] > 1 && s->astr[i] != sa) return 0;
    sa *= s->bdim[i];
  }
  return 1;
}

/* Offsets of A and B for batch index idx of C. */
static void batch_offsets(const xd_matmul_shape_t *s, size_t idx, size_t *ao, size_t *bo) {
  size_t a = 0, b = 0;
  for (size_t i = s->nb; i-- > 0;) {
    size_t d = idx % s->bdim[i];
    idx /= s->bdim[i];
    a += d * s->astr[i];
    b += d * s->bstr[i];
  }
  *ao = a;
  *bo = b;
}

#define T float
#define F(name) name##_f
#define FN(name) name##_f_naive
#define GEMM xd_sgemm
#include "core/kern_matmul.inc"
#undef T
#undef F
#undef FN
#undef GEMM

#define T double
#define F(name) name##_d
#define FN(name) name##_d_naive
#define GEMM xd_dgemm
#include "core/kern_matmul.inc"
#undef T
#undef F
#undef FN
#undef GEMM
