/* test_vmath.c — core/vmath.h: the vectorized float exp, sigmoid, tanh and erf against
 * libm in double (ulp bounds), their special values, and that the array form (a
 * vectorized clone) gives the same bits as the scalar form and as an unaligned tail;
 * the fused GRU step gives the bits of the separate functions. */
#include <math.h>
#include <string.h>

#include "core/vmath.h"
#include "tests/test.h"

#define N 200001

static float xs[N], ys[N];

/* Error of got against want in units of the float spacing at want (normal range). */
static double ulps(float got, double want) {
  float w = (float)fabs(want);
  double u = (double)nextafterf(w, INFINITY) - (double)w;
  return fabs((double)got - want) / u;
}

static double worst(void (*f)(const float *, float *, size_t), double (*ref)(double), float lo, float hi) {
  for (size_t i = 0; i < N; i++) xs[i] = lo + (hi - lo) * (float)i / (float)(N - 1);
  f(xs, ys, N);
  double mx = 0;
  for (size_t i = 0; i < N; i++) {
    double w = ref(xs[i]);
    if (fabs(w) < 1.2e-38 || fabs(w) > 3e38) continue; /* subnormal or overflowing answers */
    double u = ulps(ys[i], w);
    if (!(u <= mx)) mx = u; /* NaN sticks */
  }
  return mx;
}

static double sig_ref(double x) { return 1 / (1 + exp(-x)); }

TEST(accuracy) {
  CHECK(worst(xd_vexp_f, exp, -90, 90) <= 2);
  CHECK(worst(xd_vsigmoid_f, sig_ref, -30, 30) <= 4);
  CHECK(worst(xd_vtanh_f, tanh, -10, 10) <= 4);
  CHECK(worst(xd_verf_f, erf, -6, 6) <= 4);
  CHECK(worst(xd_verf_f, erf, -1e-3f, 1e-3f) <= 4); /* tiny arguments keep their relative precision */
}

TEST(special_values) {
  float x[6] = {-INFINITY, INFINITY, -1e4f, 1e4f, 0, -0.0f}, y[6];
  xd_vexp_f(x, y, 6);
  CHECK(y[0] == 0 && isinf(y[1]) && y[2] == 0 && isinf(y[3]) && y[4] == 1 && y[5] == 1);
  xd_vsigmoid_f(x, y, 6);
  CHECK(y[0] == 0 && y[1] == 1 && y[2] == 0 && y[3] == 1 && y[4] == 0.5f);
  xd_vtanh_f(x, y, 6);
  CHECK(y[0] == -1 && y[1] == 1 && y[2] == -1 && y[3] == 1 && y[4] == 0);
  xd_verf_f(x, y, 6);
  CHECK(y[0] == -1 && y[1] == 1 && y[2] == -1 && y[3] == 1 && y[4] == 0);
  float nan = NAN;
  xd_vexp_f(&nan, y, 1);
  CHECK(isnan(y[0]));
  xd_verf_f(&nan, y, 1);
  CHECK(isnan(y[0]));
}

/* The vector body, its scalar remainder and the scalar function agree bit for bit, and
 * in-place calls give what out-of-place ones give. */
TEST(same_bits) {
  for (size_t i = 0; i < 1000; i++) xs[i] = -20 + 0.04f * (float)i + 1e-3f * (float)(i % 7);
  float a[1000], b[1000];
  xd_vexp_f(xs, a, 1000);
  for (size_t off = 0; off < 17; off++) {
    xd_vexp_f(xs + off, b, 1000 - off);
    CHECK(memcmp(a + off, b, (1000 - off) * sizeof *b) == 0);
  }
  int same = 1;
  for (size_t i = 0; i < 1000; i++) {
    float s = xd_exp1_f(xs[i]);
    same &= memcmp(&s, &a[i], sizeof s) == 0;
  }
  CHECK(same);
  void (*fs[4])(const float *, float *, size_t) = {xd_vexp_f, xd_vsigmoid_f, xd_vtanh_f, xd_verf_f};
  for (int f = 0; f < 4; f++) {
    memcpy(b, xs, sizeof b);
    fs[f](xs, a, 1000);
    fs[f](b, b, 1000);
    CHECK(memcmp(a, b, sizeof a) == 0);
  }
}

/* xd_vgru_step_f: the bits of xd_vsigmoid_f and xd_vtanh_f on the same sums, and the
 * state update, on rows of h = 20 units (a vector body and a remainder). */
TEST(gru_step_same_bits) {
  enum { R = 3, H = 20, G = 3 * H };
  float g[R * G], g0[R * G], hr[R * G], rbh[H], hp[R * H], st[R * H], hn[R * H];
  for (size_t i = 0; i < R * G; i++) {
    g[i] = g0[i] = -6 + 0.21f * (float)(i % 57);
    hr[i] = 3 - 0.13f * (float)(i % 41);
  }
  for (size_t j = 0; j < H; j++) rbh[j] = 0.05f * (float)j - 0.4f;
  for (size_t i = 0; i < R * H; i++) hp[i] = 0.9f - 0.017f * (float)i;
  xd_vgru_step_f(R, H, g, hr, rbh, hp, st, hn);
  int same = 1;
  for (size_t i = 0; i < R; i++) {
    float zr[2 * H], c[H];
    for (size_t j = 0; j < 2 * H; j++) zr[j] = g0[i * G + j] + hr[i * G + j];
    xd_vsigmoid_f(zr, zr, 2 * H);
    for (size_t j = 0; j < H; j++) {
      float n = hr[i * G + 2 * H + j] + rbh[j];
      same &= memcmp(&n, &st[i * H + j], sizeof n) == 0;
      c[j] = g0[i * G + 2 * H + j] + zr[H + j] * n;
    }
    xd_vtanh_f(c, c, H);
    same &= memcmp(zr, g + i * G, sizeof zr) == 0 && memcmp(c, g + i * G + 2 * H, sizeof c) == 0;
    for (size_t j = 0; j < H; j++) {
      float z = zr[j], want = (1 - z) * c[j] + z * hp[i * H + j];
      same &= memcmp(&want, &hn[i * H + j], sizeof want) == 0;
    }
  }
  CHECK(same);
}

int main(void) {
  RUN(accuracy);
  RUN(special_values);
  RUN(same_bits);
  RUN(gru_step_same_bits);
  return TEST_REPORT();
}
