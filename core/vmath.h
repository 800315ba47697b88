/* vmath.h — exp, sigmoid, tanh and erf over float arrays, vectorized: the transcendental
 * functions of the float forward pass (predictions, LIME and SHAP evaluations).
 *
 * glibc's expf/erff/tanhf are one call per element that no loop vectorizes: they were
 * a quarter to a half of a transformer's or a GRU's float forward. These are branch-free
 * polynomial forms (docs/graph.md, "Float transcendental functions"), within a few ulp
 * of the correctly rounded value, every operation a plain IEEE step (no fused
 * multiply-add), so every clone of a loop gives the same bits. The double path (gradients)
 * keeps libm. y may equal x (in place); otherwise they must not overlap.
 */
#ifndef XD_VMATH_H
#define XD_VMATH_H

#include <stddef.h>

void xd_vexp_f(const float *x, float *y, size_t n);
void xd_vsigmoid_f(const float *x, float *y, size_t n);
void xd_vtanh_f(const float *x, float *y, size_t n);
void xd_verf_f(const float *x, float *y, size_t n);
/* One step of a GRU with linear_before_reset (ONNX gate order z, r, h), over `rows` rows
 * of h units, in one pass (core/kern_rnn.c): g (rows, 3h) holds the input projections
 * with the biases folded in (the candidate's recurrent bias Rbh apart), hr (rows, 3h) the
 * recurrent products H_prev·Rᵀ, hp (rows, h) H_prev. Writes g <- (z, r, c) activations,
 * st (rows, h) <- n = hr_h + rbh, hn (rows, h) <- (1 − z)·c + z·hp, where
 * z = σ(g_z + hr_z), r = σ(g_r + hr_r), c = tanh(g_h + r·n). Same bits as
 * xd_vsigmoid_f and xd_vtanh_f on the same sums. */
void xd_vgru_step_f(size_t rows, size_t h, float *g, const float *hr, const float *rbh, const float *hp, float *st,
                    float *hn);
/* Scalar forms of the same functions (same bits as the array forms). */
float xd_exp1_f(float x);

#endif
