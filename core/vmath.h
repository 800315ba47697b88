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
/* Scalar forms of the same functions (same bits as the array forms). */
float xd_exp1_f(float x);

#endif
