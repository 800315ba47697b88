/* kern.h — the heavy kernels of the graph engine: convolution, pooling, batched matrix
 * products, GRU, LSTM, normalizations and softmax, on raw arrays with explicit shapes.
 *
 * Semantics are the ONNX operators' (opsets 13–17) as torch.onnx.export emits them; the
 * definitions are written out in docs/kernels.md. Every kernel exists in float (`_f`:
 * predictions and, by default, gradients) and double (`_d`: gradients on request), both
 * generated from one body. Each forward has its backward directly below it in the source; the heavy ones
 * (Conv, MatMul, GRU, LSTM) also have a `_naive` twin in plain loops that the tests
 * compare against on awkward shapes.
 *
 * Conventions, the same for every function here:
 *   - Tensors are dense, row-major, NCHW (channels before space), float or double.
 *   - A shape struct is filled by the caller and checked once by its `_init`, which
 *     also computes the derived sizes (output sizes); kernels then trust it.
 *   - Backward functions ACCUMULATE: dx += ∂L/∂x·…, so the caller zeroes each gradient
 *     once and a tensor used twice simply receives both contributions. A NULL gradient
 *     pointer means "not wanted" and costs nothing.
 *   - Backward functions take the forward's inputs and recompute what they need (the
 *     argmax of a max pool, the gates of a recurrent layer, a mean): the caller keeps no
 *     tape. Softmax is the exception: its backward takes the forward's output.
 *   - Scratch memory is the caller's: `xd_<k>_scratch(shape)` gives the number of
 *     ELEMENTS (of the kernel's type) the fast forward and backward need, so nothing is
 *     allocated inside a kernel. The naive twins need no scratch.
 *   - No kernel allocates, prints or fails once its shape was accepted; any thread may
 *     call any kernel at once on distinct outputs (BLAS runs single-threaded, mat.h).
 */
#ifndef XD_KERN_H
#define XD_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define XD_KERN_MAX_SPATIAL 3 /* Conv and pools: 1-D, 2-D and 3-D */
#define XD_KERN_MAX_BATCH 6   /* MatMul: batch dimensions before the two matrix ones */

/* ---- padding helper ---------------------------------------------------------------- */

/* ONNX auto_pad SAME_UPPER (upper = 1) / SAME_LOWER (upper = 0) for one spatial axis:
 * the total padding that makes out = ceil(in/stride), split with the odd one at the end
 * (UPPER) or at the beginning (LOWER). VALID is pads 0, NOTSET the explicit pads. */
void xd_kern_auto_pad(size_t in, size_t k, size_t stride, size_t dil, int upper, size_t *pad0, size_t *pad1);

/* ---- Conv (kern_conv.c) -------------------------------------------------------------- */

/* ONNX Conv. The caller fills every field but out[]; stride and dil 0 mean 1.
 * x is (N, C, in...), w is (M, C/group, k...), b is (M) or NULL, y is (N, M, out...). */
typedef struct xd_conv_shape {
  size_t nsp;       /* spatial rank, 1..XD_KERN_MAX_SPATIAL */
  size_t N, C, M;   /* batch, input channels, output channels */
  size_t group;     /* C and M divisible by it; group == C == M is depthwise */
  size_t in[XD_KERN_MAX_SPATIAL], k[XD_KERN_MAX_SPATIAL], out[XD_KERN_MAX_SPATIAL];
  size_t stride[XD_KERN_MAX_SPATIAL], dil[XD_KERN_MAX_SPATIAL];
  size_t pad0[XD_KERN_MAX_SPATIAL], pad1[XD_KERN_MAX_SPATIAL]; /* begin, end */
} xd_conv_shape_t;

/* Checks s (ranks, divisibility, a non-empty output) and fills out[]. XD_OK or XD_EINVAL
 * with err naming the attribute ("group", "kernel_shape", "pads"). */
int xd_conv_shape_init(xd_conv_shape_t *s, xd_error_t *err);
/* Elements of scratch the fast forward and backward need (either type). */
size_t xd_conv_scratch(const xd_conv_shape_t *s);

/* x (N,C,in...), w (M,C/group,k...), b (M) or NULL -> y (N,M,out...) */
void xd_conv_forward_f(const xd_conv_shape_t *s, const float *x, const float *w, const float *b, float *y,
                       float *scratch);
void xd_conv_forward_d(const xd_conv_shape_t *s, const double *x, const double *w, const double *b, double *y,
                       double *scratch);
/* dy (N,M,out...) -> dx (N,C,in...) +=, dw (M,C/group,k...) +=, db (M) +=; each may be NULL */
void xd_conv_backward_f(const xd_conv_shape_t *s, const float *x, const float *w, const float *dy, float *dx,
                        float *dw, float *db, float *scratch);
void xd_conv_backward_d(const xd_conv_shape_t *s, const double *x, const double *w, const double *dy,
                        double *dx, double *dw, double *db, double *scratch);
/* Direct loops, no scratch. */
void xd_conv_forward_f_naive(const xd_conv_shape_t *s, const float *x, const float *w, const float *b, float *y);
void xd_conv_forward_d_naive(const xd_conv_shape_t *s, const double *x, const double *w, const double *b,
                             double *y);
void xd_conv_backward_f_naive(const xd_conv_shape_t *s, const float *x, const float *w, const float *dy,
                              float *dx, float *dw, float *db);
void xd_conv_backward_d_naive(const xd_conv_shape_t *s, const double *x, const double *w, const double *dy,
                              double *dx, double *dw, double *db);

/* ONNX ConvTranspose, computed as the adjoint of the Conv whose input has the
 * ConvTranspose's output shape (init fills `conv`). The caller fills every field but
 * out[] and conv; outpad[i] (output_padding) must be below stride[i].
 * x is (N, C, in...), w is (C, M/group, k...), b is (M) or NULL, y is (N, M, out...) with
 * out = stride·(in - 1) + outpad + (k - 1)·dil + 1 - pad0 - pad1. */
typedef struct xd_convt_shape {
  size_t nsp, N, C, M, group;
  size_t in[XD_KERN_MAX_SPATIAL], k[XD_KERN_MAX_SPATIAL], out[XD_KERN_MAX_SPATIAL];
  size_t stride[XD_KERN_MAX_SPATIAL], dil[XD_KERN_MAX_SPATIAL], outpad[XD_KERN_MAX_SPATIAL];
  size_t pad0[XD_KERN_MAX_SPATIAL], pad1[XD_KERN_MAX_SPATIAL];
  xd_conv_shape_t conv;
} xd_convt_shape_t;

int xd_convt_shape_init(xd_convt_shape_t *s, xd_error_t *err);
/* Elements of scratch forward and backward need (either type). */
size_t xd_convt_scratch(const xd_convt_shape_t *s);
/* x (N,C,in...), w (C,M/group,k...), b (M) or NULL -> y (N,M,out...) */
void xd_convt_forward_f(const xd_convt_shape_t *s, const float *x, const float *w, const float *b, float *y,
                        float *scratch);
void xd_convt_forward_d(const xd_convt_shape_t *s, const double *x, const double *w, const double *b, double *y,
                        double *scratch);
/* dy (N,M,out...) -> dx (N,C,in...) +=, dw (C,M/group,k...) +=, db (M) +=; each may be NULL */
void xd_convt_backward_f(const xd_convt_shape_t *s, const float *x, const float *w, const float *dy, float *dx,
                         float *dw, float *db, float *scratch);
void xd_convt_backward_d(const xd_convt_shape_t *s, const double *x, const double *w, const double *dy,
                         double *dx, double *dw, double *db, double *scratch);

/* ---- MaxPool, AveragePool, GlobalAveragePool (kern_pool.c) ----------------------------- */

/* ONNX MaxPool / AveragePool. The caller fills every field but out[]; stride and dil 0
 * mean 1 (dil is MaxPool's; AveragePool before opset 19 has none: leave it 0).
 * ceil_mode rounds the output size up, but a window that would start in the end padding
 * is dropped (as torch and ONNX opset 19 do). count_include_pad: AveragePool divides by
 * the window clipped to the padded input instead of by the real elements it covers.
 * x is (N, C, in...), y is (N, C, out...). */
typedef struct xd_pool_shape {
  size_t nsp, N, C;
  size_t in[XD_KERN_MAX_SPATIAL], k[XD_KERN_MAX_SPATIAL], out[XD_KERN_MAX_SPATIAL];
  size_t stride[XD_KERN_MAX_SPATIAL], dil[XD_KERN_MAX_SPATIAL];
  size_t pad0[XD_KERN_MAX_SPATIAL], pad1[XD_KERN_MAX_SPATIAL];
  int ceil_mode, count_include_pad;
} xd_pool_shape_t;

int xd_pool_shape_init(xd_pool_shape_t *s, xd_error_t *err);

/* x (N,C,in...) -> y (N,C,out...); padding is -inf */
void xd_maxpool_forward_f(const xd_pool_shape_t *s, const float *x, float *y);
void xd_maxpool_forward_d(const xd_pool_shape_t *s, const double *x, double *y);
/* dy (N,C,out...) -> dx (N,C,in...) +=, to the first maximum of each window (torch's) */
void xd_maxpool_backward_f(const xd_pool_shape_t *s, const float *x, const float *dy, float *dx);
void xd_maxpool_backward_d(const xd_pool_shape_t *s, const double *x, const double *dy, double *dx);
/* x (N,C,in...) -> y (N,C,out...) */
void xd_avgpool_forward_f(const xd_pool_shape_t *s, const float *x, float *y);
void xd_avgpool_forward_d(const xd_pool_shape_t *s, const double *x, double *y);
/* dy (N,C,out...) -> dx (N,C,in...) += */
void xd_avgpool_backward_f(const xd_pool_shape_t *s, const float *dy, float *dx);
void xd_avgpool_backward_d(const xd_pool_shape_t *s, const double *dy, double *dx);

/* x (nc, sp) -> y (nc): the mean of each row (GlobalAveragePool with nc = N·C) */
void xd_gap_forward_f(size_t nc, size_t sp, const float *x, float *y);
void xd_gap_forward_d(size_t nc, size_t sp, const double *x, double *y);
/* dy (nc) -> dx (nc, sp) += */
void xd_gap_backward_f(size_t nc, size_t sp, const float *dy, float *dx);
void xd_gap_backward_d(size_t nc, size_t sp, const double *dy, double *dx);

/* ---- MatMul and Gemm (kern_matmul.c) ---------------------------------------------------- */

/* ONNX MatMul (numpy matmul): A (..., M, K) · B (..., K, N) -> C (..., M, N), batch
 * dimensions broadcast here; a 1-D A is (1,K) and its M axis dropped from C, a 1-D B is
 * (K,1) and its N axis dropped. Filled by xd_matmul_shape_init from the two shapes. */
typedef struct xd_matmul_shape {
  size_t M, N, K;
  size_t nb, batch;                    /* batch rank of C, product of its batch dims */
  size_t bdim[XD_KERN_MAX_BATCH];      /* C's batch dims */
  size_t astr[XD_KERN_MAX_BATCH];      /* element stride of A per batch dim, 0: broadcast */
  size_t bstr[XD_KERN_MAX_BATCH];      /* likewise for B */
  size_t crank;                        /* C's rank and dims (what shape inference needs) */
  int64_t cdims[XD_KERN_MAX_BATCH + 2];
} xd_matmul_shape_t;

/* XD_OK, or XD_EINVAL (K mismatch, batch dims that do not broadcast, rank > 8, zero rank). */
int xd_matmul_shape_init(xd_matmul_shape_t *s, const int64_t *adims, size_t arank, const int64_t *bdims,
                         size_t brank, xd_error_t *err);

/* A (...,M,K), B (...,K,N) -> C (...,M,N). One GEMM per batch matrix; when B is shared by
 * every batch (a weight) and A's batches are contiguous, one GEMM over all of them. */
void xd_matmul_forward_f(const xd_matmul_shape_t *s, const float *A, const float *B, float *C);
void xd_matmul_forward_d(const xd_matmul_shape_t *s, const double *A, const double *B, double *C);
/* dC (...,M,N) -> dA (...,M,K) +=, dB (...,K,N) += (summed over broadcast batches) */
void xd_matmul_backward_f(const xd_matmul_shape_t *s, const float *A, const float *B, const float *dC, float *dA,
                          float *dB);
void xd_matmul_backward_d(const xd_matmul_shape_t *s, const double *A, const double *B, const double *dC,
                          double *dA, double *dB);
void xd_matmul_forward_f_naive(const xd_matmul_shape_t *s, const float *A, const float *B, float *C);
void xd_matmul_forward_d_naive(const xd_matmul_shape_t *s, const double *A, const double *B, double *C);
void xd_matmul_backward_f_naive(const xd_matmul_shape_t *s, const float *A, const float *B, const float *dC,
                                float *dA, float *dB);
void xd_matmul_backward_d_naive(const xd_matmul_shape_t *s, const double *A, const double *B, const double *dC,
                                double *dA, double *dB);

/* ONNX Gemm: Y (M,N) = alpha·op(A)·op(B) + beta·C, op = transpose when transA/transB.
 * A is (M,K) or (K,M) when transA, B is (K,N) or (N,K) when transB. C is optional and
 * broadcasts unidirectionally: cm is its row count (1 or M) and cn its column count
 * (1 or N); cm = cn = 0 means no C. */
typedef struct xd_gemm_shape {
  size_t M, N, K;
  int transA, transB;
  double alpha, beta;
  size_t cm, cn;
} xd_gemm_shape_t;

/* A, B, C as above -> Y (M,N) */
void xd_gemm_forward_f(const xd_gemm_shape_t *s, const float *A, const float *B, const float *C, float *Y);
void xd_gemm_forward_d(const xd_gemm_shape_t *s, const double *A, const double *B, const double *C, double *Y);
/* dY (M,N) -> dA +=, dB +=, dC (cm,cn) += ; each may be NULL */
void xd_gemm_backward_f(const xd_gemm_shape_t *s, const float *A, const float *B, const float *dY, float *dA,
                        float *dB, float *dC);
void xd_gemm_backward_d(const xd_gemm_shape_t *s, const double *A, const double *B, const double *dY, double *dA,
                        double *dB, double *dC);

/* ---- GRU and LSTM (kern_rnn.c) ----------------------------------------------------------- */

/* ONNX GRU / LSTM with layout 0, default activations (sigmoid, tanh, tanh), no clip, no
 * sequence_lens (every sequence full length), LSTM without input_forget. G is the gate
 * count: 3 for GRU (z, r, h), 4 for LSTM (i, o, f, c), in that order inside W, R, B.
 *   x (seq, batch, input)        w (ndir, G·hidden, input)    r (ndir, G·hidden, hidden)
 *   b (ndir, 2·G·hidden): Wb then Rb, or NULL (zeros)
 *   p (ndir, 3·hidden): LSTM peepholes i, o, f, or NULL (zeros)
 *   h0, c0 (ndir, batch, hidden) or NULL (zeros)
 *   y (seq, ndir, batch, hidden), yh and yc (ndir, batch, hidden); each may be NULL.
 * Direction 0 runs forward (backward when `reverse`), direction 1 of a bidirectional
 * layer runs backward; y keeps each step at its own time index. */
typedef struct xd_rnn_shape {
  size_t seq, batch, input, hidden;
  size_t ndir;             /* 1, or 2 for bidirectional */
  int reverse;             /* ndir == 1 only: direction "reverse" */
  int linear_before_reset; /* GRU: apply Rh (and Rbh) before the reset gate (torch: 1) */
} xd_rnn_shape_t;

/* XD_OK, or XD_EINVAL for zero sizes, ndir not 1 or 2, reverse with ndir 2. */
int xd_rnn_shape_init(const xd_rnn_shape_t *s, xd_error_t *err);
size_t xd_gru_scratch(const xd_rnn_shape_t *s);  /* elements for forward and backward */
size_t xd_lstm_scratch(const xd_rnn_shape_t *s); /* elements for forward and backward */

/* x, w, r, b, h0 -> y, yh (see above) */
void xd_gru_forward_f(const xd_rnn_shape_t *s, const float *x, const float *w, const float *r, const float *b,
                      const float *h0, float *y, float *yh, float *scratch);
void xd_gru_forward_d(const xd_rnn_shape_t *s, const double *x, const double *w, const double *r, const double *b,
                      const double *h0, double *y, double *yh, double *scratch);
/* dy (seq,ndir,batch,hidden) or NULL, dyh (ndir,batch,hidden) or NULL
 * -> dx, dw, dr, db, dh0 += (shapes of x, w, r, b, h0); each may be NULL. kept 1: scratch
 * still holds what xd_gru_forward left there for these same inputs (its gates and
 * states, which the backward then reads instead of recomputing, and overwrites in part);
 * kept 0: any scratch, the forward is recomputed. */
void xd_gru_backward_f(const xd_rnn_shape_t *s, const float *x, const float *w, const float *r, const float *b,
                       const float *h0, const float *dy, const float *dyh, float *dx, float *dw, float *dr,
                       float *db, float *dh0, float *scratch, int kept);
void xd_gru_backward_d(const xd_rnn_shape_t *s, const double *x, const double *w, const double *r,
                       const double *b, const double *h0, const double *dy, const double *dyh, double *dx,
                       double *dw, double *dr, double *db, double *dh0, double *scratch, int kept);
void xd_gru_forward_f_naive(const xd_rnn_shape_t *s, const float *x, const float *w, const float *r,
                            const float *b, const float *h0, float *y, float *yh);
void xd_gru_forward_d_naive(const xd_rnn_shape_t *s, const double *x, const double *w, const double *r,
                            const double *b, const double *h0, double *y, double *yh);

/* x, w, r, b, p, h0, c0 -> y, yh, yc (see above) */
void xd_lstm_forward_f(const xd_rnn_shape_t *s, const float *x, const float *w, const float *r, const float *b,
                       const float *p, const float *h0, const float *c0, float *y, float *yh, float *yc,
                       float *scratch);
void xd_lstm_forward_d(const xd_rnn_shape_t *s, const double *x, const double *w, const double *r,
                       const double *b, const double *p, const double *h0, const double *c0, double *y,
                       double *yh, double *yc, double *scratch);
/* dy, dyh, dyc (each may be NULL) -> dx, dw, dr, db, dp, dh0, dc0 += ; each may be NULL */
void xd_lstm_backward_f(const xd_rnn_shape_t *s, const float *x, const float *w, const float *r, const float *b,
                        const float *p, const float *h0, const float *c0, const float *dy, const float *dyh,
                        const float *dyc, float *dx, float *dw, float *dr, float *db, float *dp, float *dh0,
                        float *dc0, float *scratch);
void xd_lstm_backward_d(const xd_rnn_shape_t *s, const double *x, const double *w, const double *r,
                        const double *b, const double *p, const double *h0, const double *c0, const double *dy,
                        const double *dyh, const double *dyc, double *dx, double *dw, double *dr, double *db,
                        double *dp, double *dh0, double *dc0, double *scratch);
void xd_lstm_forward_f_naive(const xd_rnn_shape_t *s, const float *x, const float *w, const float *r,
                             const float *b, const float *p, const float *h0, const float *c0, float *y,
                             float *yh, float *yc);
void xd_lstm_forward_d_naive(const xd_rnn_shape_t *s, const double *x, const double *w, const double *r,
                             const double *b, const double *p, const double *h0, const double *c0, double *y,
                             double *yh, double *yc);

/* ---- LayerNormalization, BatchNormalization, Softmax (kern_norm.c) ------------------------ */

/* ONNX LayerNormalization with the input viewed as (outer, n), n the product of the dims
 * from `axis` on: x (outer,n), scale (n), bias (n) or NULL -> y (outer,n), and when not
 * NULL mean (outer) and invstd (outer) = 1/sqrt(var + eps) (population variance). */
void xd_layernorm_forward_f(size_t outer, size_t n, double eps, const float *x, const float *scale,
                            const float *bias, float *y, float *mean, float *invstd);
void xd_layernorm_forward_d(size_t outer, size_t n, double eps, const double *x, const double *scale,
                            const double *bias, double *y, double *mean, double *invstd);
/* dy (outer,n) -> dx (outer,n) +=, dscale (n) +=, dbias (n) += ; each may be NULL */
void xd_layernorm_backward_f(size_t outer, size_t n, double eps, const float *x, const float *scale,
                             const float *dy, float *dx, float *dscale, float *dbias);
void xd_layernorm_backward_d(size_t outer, size_t n, double eps, const double *x, const double *scale,
                             const double *dy, double *dx, double *dscale, double *dbias);

/* ONNX BatchNormalization in inference mode (running statistics): x (N,C,sp),
 * scale, bias, mean, var (C) -> y (N,C,sp) = (x - mean)/sqrt(var + eps)·scale + bias. */
void xd_batchnorm_forward_f(size_t N, size_t C, size_t sp, double eps, const float *x, const float *scale,
                            const float *bias, const float *mean, const float *var, float *y);
void xd_batchnorm_forward_d(size_t N, size_t C, size_t sp, double eps, const double *x, const double *scale,
                            const double *bias, const double *mean, const double *var, double *y);
/* dy (N,C,sp) -> dx (N,C,sp) += (the input only: the statistics are constants) */
void xd_batchnorm_backward_f(size_t N, size_t C, size_t sp, double eps, const float *scale, const float *var,
                             const float *dy, float *dx);
void xd_batchnorm_backward_d(size_t N, size_t C, size_t sp, double eps, const double *scale, const double *var,
                             const double *dy, double *dx);

/* Softmax / LogSoftmax over the middle axis of x viewed as (outer, n, inner) (ONNX
 * opset 13: one axis). x -> y, same shape; max-subtracted, so no overflow. */
void xd_softmax_forward_f(size_t outer, size_t n, size_t inner, const float *x, float *y);
void xd_softmax_forward_d(size_t outer, size_t n, size_t inner, const double *x, double *y);
/* y (the forward's output), dy -> dx += */
void xd_softmax_backward_f(size_t outer, size_t n, size_t inner, const float *y, const float *dy, float *dx);
void xd_softmax_backward_d(size_t outer, size_t n, size_t inner, const double *y, const double *dy, double *dx);
void xd_logsoftmax_forward_f(size_t outer, size_t n, size_t inner, const float *x, float *y);
void xd_logsoftmax_forward_d(size_t outer, size_t n, size_t inner, const double *x, double *y);
/* y (the forward's output), dy -> dx += */
void xd_logsoftmax_backward_f(size_t outer, size_t n, size_t inner, const float *y, const float *dy, float *dx);
void xd_logsoftmax_backward_d(size_t outer, size_t n, size_t inner, const double *y, const double *dy,
                              double *dx);

#endif
