/* dense.h — dense layers and their activations: forward and backward side by side.
 *
 * A layer maps X (n, in) to Z = X·Wᵀ + b (n, out), then A = act(Z). W is (out, in),
 * PyTorch's nn.Linear layout. The forward pass exists in float (sgemm: predictions and
 * every sampling method) and in double (dgemm: the gradient methods, which need the
 * digits that float loses on saturated outputs); the backward pass is double only.
 * Layers are read-only after construction and shared by all threads.
 */
#ifndef XD_DENSE_H
#define XD_DENSE_H

#include <stddef.h>

typedef enum xd_act {
  XD_ACT_IDENTITY,
  XD_ACT_RELU,
  XD_ACT_LEAKY_RELU, /* slope 0.01 for z < 0 */
  XD_ACT_TANH,
  XD_ACT_SIGMOID,
  XD_ACT_SOFTPLUS,
  XD_ACT_GELU, /* tanh approximation */
  XD_ACT_SOFTMAX, /* last layer only; applied by the model's output stage */
  XD_ACT_GELU_ERF /* exact GELU z·Φ(z) = z/2·(1 + erf(z/√2)): PyTorch's nn.GELU() default and
                     the form ONNX exports (Div, Erf, Add, Mul, Mul); name "gelu_erf" */
} xd_act_t;

/* Parses an activation name; returns 0 or -1. */
int xd_act_parse(const char *name, xd_act_t *out);
/* Static name of an activation. */
const char *xd_act_name(xd_act_t a);

/* Elementwise activation and its derivative at z (not for softmax). */
double xd_act_apply(xd_act_t a, double z);
double xd_act_deriv(xd_act_t a, double z);

typedef struct xd_dense {
  size_t in, out;
  xd_act_t act;
  float *wf, *bf;  /* W (out,in), b (out) in float */
  double *wd, *bd; /* the same in double */
} xd_dense_t;

/* Copies W (out,in) and b (out) into a new layer's float and double storage.
 * Returns 0, or -1 on allocation failure (L is then deinitialized). */
int xd_dense_init(xd_dense_t *L, size_t in, size_t out, xd_act_t act, const double *w, const double *b);
void xd_dense_deinit(xd_dense_t *L);

/* X (n,in) -> Z (n,out) = X·Wᵀ + b, then, unless apply_act is 0, A = act(Z) in place.
 * Softmax is never applied here. */
void xd_dense_forward_f(const xd_dense_t *L, const float *X, size_t n, float *Z, int apply_act);
void xd_dense_forward_d(const xd_dense_t *L, const double *X, size_t n, double *Z, int apply_act);
/* The same with naive loops instead of BLAS (tests). */
void xd_dense_forward_f_naive(const xd_dense_t *L, const float *X, size_t n, float *Z, int apply_act);

/* Backward through the activation and the affine map:
 * given Z (n,out) pre-activations and dA (n,out) = dL/dA, overwrite dA with
 * dZ = dA ⊙ act'(Z) (skipped when apply_act is 0, e.g. the output layer whose dZ the
 * caller computed) and write dX (n,in) = dZ·W. */
void xd_dense_backward_d(const xd_dense_t *L, const double *Z, double *dA, size_t n, double *dX, int apply_act);

#endif
