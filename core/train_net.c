/* train_net.c — forward, backward and Adam for the network being trained.
 *
 * Backpropagation for a stack of dense layers (Rumelhart et al. 1986) over a whole
 * mini-batch at once, and Adam (Kingma & Ba 2015, Algorithm 1). The softmax output is
 * folded into the cross-entropy so that the output gradient is simply (P − onehot(y))/n,
 * which never divides by a probability; the squared error's is 2(z − y)/n.
 */
#include "core/train_net.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/mat.h"

#define ADAM_B1 0.9
#define ADAM_B2 0.999
#define ADAM_EPS 1e-8

/* ---- set-up ---------------------------------------------------------------------------- */

void xd_train_net_deinit(xd_train_net_t *net) {
  if (!net) return;
  xd_free(net->params);
  xd_free(net->grad);
  xd_free(net->adam_m);
  xd_free(net->adam_v);
  xd_free(net->Z);
  xd_free(net->A);
  xd_free(net->d1);
  xd_free(net->d2);
  memset(net, 0, sizeof *net);
}

int xd_train_net_init(xd_train_net_t *net, size_t n_in, const size_t *hidden, size_t n_hidden, xd_act_t act,
                      size_t n_out, int softmax, size_t max_rows) {
  memset(net, 0, sizeof *net);
  if (n_hidden + 1 > XD_TRAIN_NET_MAX_LAYERS || n_in == 0 || n_out == 0 || max_rows == 0) return -1;
  net->n_layers = n_hidden + 1;
  net->act = act;
  net->softmax = softmax;
  net->max_rows = max_rows;
  net->dim[0] = n_in;
  for (size_t l = 0; l < n_hidden; l++) net->dim[l + 1] = hidden[l];
  net->dim[net->n_layers] = n_out;
  size_t p = 0, zs = 0, wide = 0;
  for (size_t l = 0; l < net->n_layers; l++) {
    size_t in = net->dim[l], out = net->dim[l + 1];
    if (in == 0 || out == 0) return -1;
    net->w_off[l] = p;
    p += in * out;
    net->b_off[l] = p;
    p += out;
    net->z_off[l] = zs;
    zs += out;
    if (out > wide) wide = out;
  }
  net->n_params = p;
  net->params = xd_calloc(p, sizeof *net->params);
  net->grad = xd_calloc(p, sizeof *net->grad);
  net->adam_m = xd_calloc(p, sizeof *net->adam_m);
  net->adam_v = xd_calloc(p, sizeof *net->adam_v);
  /* z_off is in units of max_rows rows: layer l's block starts at max_rows * z_off[l]. */
  net->Z = xd_calloc(xd_mul_size(max_rows, zs), sizeof *net->Z);
  net->A = xd_calloc(xd_mul_size(max_rows, zs), sizeof *net->A);
  net->d1 = xd_calloc(xd_mul_size(max_rows, wide), sizeof *net->d1);
  net->d2 = xd_calloc(xd_mul_size(max_rows, wide), sizeof *net->d2);
  if (!net->params || !net->grad || !net->adam_m || !net->adam_v || !net->Z || !net->A || !net->d1 || !net->d2) {
    xd_train_net_deinit(net);
    return -1;
  }
  for (size_t l = 0; l < net->n_layers; l++) net->z_off[l] *= max_rows;
  return 0;
}

void xd_train_net_init_weights(xd_train_net_t *net, xd_rng_t *rng) {
  for (size_t l = 0; l < net->n_layers; l++) {
    size_t in = net->dim[l], out = net->dim[l + 1];
    int hidden = l + 1 < net->n_layers;
    /* Glorot & Bengio (2010) keep the variance of activations and gradients equal
     * across layers; ahead of relu, half the units are off, so He et al. (2015) double
     * the variance (uniform bound sqrt(6/fan_in)). */
    int relu_like = hidden && (net->act == XD_ACT_RELU || net->act == XD_ACT_LEAKY_RELU ||
                               net->act == XD_ACT_GELU || net->act == XD_ACT_GELU_ERF ||
                               net->act == XD_ACT_SOFTPLUS);
    double bound = relu_like ? sqrt(6.0 / (double)in) : sqrt(6.0 / (double)(in + out));
    double *W = net->params + net->w_off[l], *b = net->params + net->b_off[l];
    for (size_t i = 0; i < in * out; i++) W[i] = (2.0 * xd_rng_uniform(rng) - 1.0) * bound;
    for (size_t i = 0; i < out; i++) b[i] = 0;
  }
  memset(net->adam_m, 0, net->n_params * sizeof *net->adam_m);
  memset(net->adam_v, 0, net->n_params * sizeof *net->adam_v);
  net->adam_t = 0;
}

/* ---- one layer: forward, then backward --------------------------------------------- */

/* X is (n,in), W is (out,in), b is (out); Z is (n,out) = X·Wᵀ + b. Bias rows first, then
 * one GEMM accumulating onto them (beta = 1). */
static void layer_forward(const xd_train_net_t *net, const double *X, const double *W, const double *b, size_t n,
                          size_t in, size_t out, double *Z) {
  for (size_t i = 0; i < n; i++) memcpy(Z + i * out, b, out * sizeof *Z);
  if (net->naive)
    xd_dgemm_nt_naive(n, out, in, X, W, 1.0, Z);
  else
    xd_dgemm_nt(n, out, in, X, W, 1.0, Z);
}

/* dZ is (n,out), X is (n,in), W is (out,in): dW (out,in) = dZᵀ·X + l2·W, db (out) = Σ_i dZ[i],
 * and, when dX is non-NULL, dX (n,in) = dZ·W. */
static void layer_backward(const xd_train_net_t *net, const double *dZ, const double *X, const double *W, size_t n,
                           size_t in, size_t out, double l2, double *dW, double *db, double *dX) {
  for (size_t i = 0; i < in * out; i++) dW[i] = l2 * W[i];
  if (net->naive)
    xd_dgemm_tn_naive(out, in, n, dZ, X, 1.0, dW);
  else
    xd_dgemm_tn(out, in, n, dZ, X, 1.0, dW);
  for (size_t j = 0; j < out; j++) db[j] = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < out; j++) db[j] += dZ[i * out + j];
  if (!dX) return;
  if (net->naive)
    xd_dgemm_nn_naive(n, in, out, dZ, W, 0.0, dX);
  else
    xd_dgemm_nn(n, in, out, dZ, W, 0.0, dX);
}

/* ---- the network ---------------------------------------------------------------------- */

const double *xd_train_net_forward(xd_train_net_t *net, const double *X, size_t n) {
  const double *x = X;
  for (size_t l = 0; l < net->n_layers; l++) {
    size_t in = net->dim[l], out = net->dim[l + 1];
    double *z = net->Z + net->z_off[l], *a = net->A + net->z_off[l];
    layer_forward(net, x, net->params + net->w_off[l], net->params + net->b_off[l], n, in, out, z);
    if (l + 1 == net->n_layers) return z;
    if (net->act == XD_ACT_RELU) {
      for (size_t i = 0; i < n * out; i++) a[i] = z[i] > 0 ? z[i] : 0;
    } else {
      for (size_t i = 0; i < n * out; i++) a[i] = xd_act_apply(net->act, z[i]);
    }
    x = a;
  }
  return NULL; /* unreachable: n_layers >= 1 */
}

/* Loss of one output row z (k) against target t; when dz is non-NULL also writes the
 * row's gradient dL/dz scaled by inv_n. */
static double row_loss(const xd_train_net_t *net, const double *z, size_t k, double t, double inv_n, double *dz,
                       size_t *correct) {
  if (!net->softmax) {
    double r = z[0] - t;
    if (dz) dz[0] = 2.0 * r * inv_n;
    return r * r;
  }
  size_t y = (size_t)t, best = 0;
  double mx = z[0], s = 0;
  for (size_t j = 1; j < k; j++)
    if (z[j] > mx) {
      mx = z[j];
      best = j;
    }
  for (size_t j = 0; j < k; j++) s += exp(z[j] - mx);
  double lse = mx + log(s);
  if (correct && best == y) (*correct)++;
  if (dz)
    for (size_t j = 0; j < k; j++) dz[j] = (exp(z[j] - lse) - (j == y ? 1.0 : 0.0)) * inv_n;
  return lse - z[y];
}

double xd_train_net_loss(const xd_train_net_t *net, const double *y, size_t n, size_t *correct) {
  size_t L = net->n_layers, k = net->dim[L];
  const double *z = net->Z + net->z_off[L - 1];
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += row_loss(net, z + i * k, k, y[i], 0, NULL, correct);
  return sum;
}

double xd_train_net_loss_grad(xd_train_net_t *net, const double *X, const double *y, size_t n, double l2) {
  size_t L = net->n_layers, k = net->dim[L];
  const double *z = xd_train_net_forward(net, X, n);
  double inv_n = 1.0 / (double)n, sum = 0;
  double *dz = net->d1, *spare = net->d2;
  for (size_t i = 0; i < n; i++) sum += row_loss(net, z + i * k, k, y[i], inv_n, dz + i * k, NULL);
  /* Walk the layers in exactly the reverse order of the forward pass. dz holds dL/dZ_l. */
  for (size_t l = L; l-- > 0;) {
    size_t in = net->dim[l], out = net->dim[l + 1];
    const double *x = l == 0 ? X : net->A + net->z_off[l - 1];
    double *dx = l == 0 ? NULL : spare;
    layer_backward(net, dz, x, net->params + net->w_off[l], n, in, out, l2, net->grad + net->w_off[l],
                   net->grad + net->b_off[l], dx);
    if (l == 0) break;
    /* dA_{l-1} -> dZ_{l-1} through the hidden activation, from the kept pre-activations. */
    const double *zp = net->Z + net->z_off[l - 1];
    if (net->act == XD_ACT_RELU) {
      for (size_t i = 0; i < n * in; i++) dx[i] = zp[i] > 0 ? dx[i] : 0;
    } else {
      for (size_t i = 0; i < n * in; i++) dx[i] *= xd_act_deriv(net->act, zp[i]);
    }
    spare = dz;
    dz = dx;
  }
  return sum * inv_n;
}

double xd_train_net_objective(xd_train_net_t *net, const double *X, const double *y, size_t n, double l2) {
  xd_train_net_forward(net, X, n);
  double data = xd_train_net_loss(net, y, n, NULL) / (double)n, w2 = 0;
  for (size_t l = 0; l < net->n_layers; l++) {
    const double *W = net->params + net->w_off[l];
    for (size_t i = 0; i < net->dim[l] * net->dim[l + 1]; i++) w2 += W[i] * W[i];
  }
  return data + 0.5 * l2 * w2;
}

void xd_train_net_adam_step(xd_train_net_t *net, double learning_rate) {
  net->adam_t++;
  double c1 = 1.0 - pow(ADAM_B1, (double)net->adam_t), c2 = 1.0 - pow(ADAM_B2, (double)net->adam_t);
  /* Kingma & Ba's efficient form: fold both bias corrections into the step size. */
  double step = learning_rate * sqrt(c2) / c1, eps = ADAM_EPS * sqrt(c2);
  double *p = net->params, *g = net->grad, *m = net->adam_m, *v = net->adam_v;
  for (size_t i = 0; i < net->n_params; i++) {
    m[i] = ADAM_B1 * m[i] + (1.0 - ADAM_B1) * g[i];
    v[i] = ADAM_B2 * v[i] + (1.0 - ADAM_B2) * g[i] * g[i];
    p[i] -= step * m[i] / (sqrt(v[i]) + eps);
  }
}
