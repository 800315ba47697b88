/* train_net.h — the network being trained: parameters, Adam state, scratch, and the
 * forward/backward passes over a mini-batch (used by core/train.c; exported for tests).
 *
 * Layer l maps A_{l-1} (n, in_l) to Z_l = A_{l-1}·W_lᵀ + b_l (n, out_l), then
 * A_l = act(Z_l) for hidden layers. The output layer's Z is the logits (softmax +
 * cross-entropy) or the prediction (identity + squared error). Each pass is one GEMM per
 * layer over the whole mini-batch: forward xd_dgemm_nt, weight gradient xd_dgemm_tn,
 * input gradient xd_dgemm_nn (skipped for layer 1, whose input needs none).
 *
 * All memory (parameters, gradients, Adam moments, per-layer activations for max_rows
 * rows) is allocated once by xd_train_net_init; nothing allocates afterwards.
 * A net is plain caller-owned state, one thread at a time.
 */
#ifndef XD_TRAIN_NET_H
#define XD_TRAIN_NET_H

#include <stddef.h>

#include "core/dense.h"
#include "core/rng.h"

#define XD_TRAIN_NET_MAX_LAYERS 9 /* XD_TRAIN_MAX_HIDDEN + the output layer */

typedef struct xd_train_net {
  size_t n_layers;
  size_t dim[XD_TRAIN_NET_MAX_LAYERS + 1]; /* dim[0] inputs, dim[l+1] outputs of layer l */
  xd_act_t act;                            /* hidden layers' activation */
  int softmax;                             /* 1: softmax + cross-entropy; 0: identity + squared error */
  int naive;                               /* 1: the naive GEMM twins (tests) */
  size_t n_params;
  double *params, *grad, *adam_m, *adam_v; /* (n_params) each */
  size_t w_off[XD_TRAIN_NET_MAX_LAYERS], b_off[XD_TRAIN_NET_MAX_LAYERS]; /* W_l (out,in), b_l (out) */
  unsigned long adam_t;                    /* Adam steps taken */
  size_t max_rows;                         /* scratch capacity in rows */
  double *Z, *A;                           /* layer l at z_off[l]: (max_rows, out_l) */
  size_t z_off[XD_TRAIN_NET_MAX_LAYERS];
  double *d1, *d2;                         /* (max_rows, widest layer) backward ping-pong */
} xd_train_net_t;

/* Sizes and allocates a net: n_in inputs, hidden[0..n_hidden-1] units with activation act,
 * n_out outputs (softmax or identity), scratch for max_rows rows. Parameters start at 0.
 * Returns 0, or -1 when out of memory (net deinitialized) or n_hidden too large. */
int xd_train_net_init(xd_train_net_t *net, size_t n_in, const size_t *hidden, size_t n_hidden, xd_act_t act,
                      size_t n_out, int softmax, size_t max_rows);
void xd_train_net_deinit(xd_train_net_t *net);

/* Glorot-uniform weights (He-uniform ahead of relu-like activations), zero biases,
 * drawn from rng in layer order, row-major. Resets Adam. */
void xd_train_net_init_weights(xd_train_net_t *net, xd_rng_t *rng);

/* X (n, dim[0]) -> the output layer's Z (n, dim[n_layers]), a pointer into the net's
 * scratch valid until the next pass. n <= max_rows. */
const double *xd_train_net_forward(xd_train_net_t *net, const double *X, size_t n);

/* Data loss of the last forward pass's n rows against y (n): class indices (softmax) or
 * values. Returns the sum over rows; *correct (may be NULL) receives the number of rows
 * whose argmax is y (softmax only). */
double xd_train_net_loss(const xd_train_net_t *net, const double *y, size_t n, size_t *correct);

/* Forward and backward over X (n, dim[0]), y (n): fills grad with the gradient of
 *   mean data loss + l2/2 · Σ_l ‖W_l‖²
 * and returns the mean data loss (without the l2 term). n <= max_rows, n > 0. */
double xd_train_net_loss_grad(xd_train_net_t *net, const double *X, const double *y, size_t n, double l2);

/* The objective above at the current parameters (forward only; for gradient checks). */
double xd_train_net_objective(xd_train_net_t *net, const double *X, const double *y, size_t n, double l2);

/* One Adam step (β1 0.9, β2 0.999, ε 1e-8, bias-corrected) along grad. */
void xd_train_net_adam_step(xd_train_net_t *net, double learning_rate);

#endif
