/* vmath.c — vectorized float exp, sigmoid, tanh and erf (see core/vmath.h). */
#include "core/vmath.h"

#include <stdint.h>
#include <string.h>

#include "core/hotloop.h"

/* A fused multiply-add would round once where the default clone rounds twice. */
#pragma GCC optimize("fp-contract=off")

/* exp's shared middle: n = round(xc / ln 2) (returned in *n) and exp(r) for r = xc − n·ln 2
 * in two parts (Cody–Waite), by the degree-6 polynomial of Cephes' expf. */
static inline __attribute__((always_inline)) float exp_reduced(float xc, float *n_out) {
  float t = xc * 1.44269504088896341f + 12582912.0f; /* 1.5·2^23: rounds to an integer */
  float n = t - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  *n_out = n;
  return p * (r * r) + r + 1.0f;
}

/* exp(x): n = round(x / ln 2), r = x − n·ln 2 in two parts (Cody–Waite), exp(r) by the
 * degree-6 polynomial of Cephes' expf on [−ln2/2, ln2/2], times 2^n as two exact powers
 * of two built in the exponent bits (2^n alone overflows the bits at n = 128). x is
 * clamped to [−87.33, 88.7]; below −87.33 the answer is 0 (a masked attention score,
 * exp(−10000); the true value would be subnormal), above 88.7 it is +inf. */
static inline __attribute__((always_inline)) float exp_core(float x) {
  float xc = x < -87.33f ? -87.33f : x > 88.7f ? 88.7f : x;
  xc = xc == xc ? xc : 0.0f; /* NaN: no float-to-int conversion of it (undefined); NaN is returned below */
  float n, p = exp_reduced(xc, &n);
  int32_t ni = (int32_t)n, n1 = ni / 2, e1 = (n1 + 127) << 23, e2 = (ni - n1 + 127) << 23;
  float s1, s2;
  memcpy(&s1, &e1, sizeof s1);
  memcpy(&s2, &e2, sizeof s2);
  float y = p * s1 * s2;
  y = x < -87.33f ? 0.0f : y;
  y = x == x ? y : x;
  return x > 88.7f ? __builtin_inff() : y;
}

/* exp_core for x ≤ 0 (or NaN), the arguments of sigmoid and tanh: 2^n with n ≥ −126 is one
 * normal power of two, so the upper clamp, the split of 2^n and the +inf case go. Same
 * bits as exp_core: p·2^n is rounded once either way. */
static inline __attribute__((always_inline)) float expneg_core(float x) {
  float xc = x < -87.33f ? -87.33f : x;
  xc = xc == xc ? xc : 0.0f;
  float n, p = exp_reduced(xc, &n);
  int32_t e = ((int32_t)n + 127) << 23;
  float s;
  memcpy(&s, &e, sizeof s);
  float y = p * s;
  y = x < -87.33f ? 0.0f : y;
  return x == x ? y : x;
}

float xd_exp1_f(float x) { return exp_core(x); }

XD_HOT_LOOP void xd_vexp_f(const float *x, float *y, size_t n) {
#pragma GCC ivdep
  for (size_t i = 0; i < n; i++) y[i] = exp_core(x[i]);
}

/* 1/(1 + e^−x) for x ≥ 0, e^x/(1 + e^x) below: never e of a large positive number. */
static inline __attribute__((always_inline)) float sigmoid_core(float v) {
  float a = v < 0 ? v : -v, e = expneg_core(a), s = 1.0f / (1.0f + e);
  return v >= 0 ? s : e * s;
}

XD_HOT_LOOP void xd_vsigmoid_f(const float *x, float *y, size_t n) {
#pragma GCC ivdep
  for (size_t i = 0; i < n; i++) y[i] = sigmoid_core(x[i]);
}

/* tanh: its odd Taylor polynomial to x⁹ below 1/4 (the next term is under 0.2 ulp),
 * (1 − e)/(1 + e) with e = exp(−2|x|) above. */
static inline __attribute__((always_inline)) float tanh_core(float v) {
  float a = v < 0 ? -v : v, v2 = v * v;
  float small = v * (1.0f + v2 * (-1.0f / 3 + v2 * (2.0f / 15 + v2 * (-17.0f / 315 + v2 * (62.0f / 2835)))));
  float e = expneg_core(-2 * a), t = (1 - e) / (1 + e);
  t = v < 0 ? -t : t;
  return a < 0.25f ? small : t;
}

XD_HOT_LOOP void xd_vtanh_f(const float *x, float *y, size_t n) {
#pragma GCC ivdep
  for (size_t i = 0; i < n; i++) y[i] = tanh_core(x[i]);
}

/* A step's activations in one call per step rather than two per batch row: per row, one
 * loop over z and r (independent sigmoids, which overlap well), then one over the
 * candidate's tanh, which needs r, and the new state. */
XD_HOT_LOOP void xd_vgru_step_f(size_t rows, size_t h, float *g, const float *hr, const float *rbh, const float *hp,
                                float *st, float *hn) {
  for (size_t i = 0; i < rows; i++) {
    float *restrict gi = g + i * 3 * h, *restrict si = st + i * h, *restrict ni = hn + i * h;
    const float *restrict ri = hr + i * 3 * h, *restrict pi = hp + i * h;
#pragma GCC ivdep
    for (size_t j = 0; j < 2 * h; j++) gi[j] = sigmoid_core(gi[j] + ri[j]);
#pragma GCC ivdep
    for (size_t j = 0; j < h; j++) {
      float z = gi[j], r = gi[h + j], n = ri[2 * h + j] + rbh[j], c = tanh_core(gi[2 * h + j] + r * n);
      gi[2 * h + j] = c;
      si[j] = n;
      ni[j] = (1 - z) * c + z * pi[j];
    }
  }
}

/* erf: x·P(x²) for |x| ≤ 1 (degree 6, within 3 ulp), 1 − exp(Q(|x|)) for 1 < |x| ≤ 4 with
 * Q a degree-8 fit of log erfc (within 1 ulp of 1), and ±1 beyond (erfc(4) < ulp/2).
 * Least-squares fits on dense grids, checked against libm's erf in tests/test_vmath. */
XD_HOT_LOOP void xd_verf_f(const float *x, float *y, size_t n) {
#pragma GCC ivdep
  for (size_t i = 0; i < n; i++) {
    float v = x[i], a = v < 0 ? -v : v, t = v * v;
    float p = 7.971048424e-05f;
    p = p * t + -8.043374014e-04f;
    p = p * t + 5.191833298e-03f;
    p = p * t + -2.685550926e-02f;
    p = p * t + 1.128362205e-01f;
    p = p * t + -3.761262874e-01f;
    p = p * t + 1.128379166e+00f;
    float small = v * p;
    float b = a > 4.0f ? 4.0f : a < 1.0f ? 1.0f : a;
    float q = 1.626399042e-06f;
    q = q * b + -4.581857489e-05f;
    q = q * b + 5.945496680e-04f;
    q = q * b + -4.747866467e-03f;
    q = q * b + 2.638437020e-02f;
    q = q * b + -1.100090590e-01f;
    q = q * b + -6.319085029e-01f;
    q = q * b + -1.130180912e+00f;
    q = q * b + 3.060925463e-04f;
    float big = 1.0f - exp_core(q);
    big = v < 0 ? -big : big;
    y[i] = a <= 1.0f ? small : big;
  }
}
