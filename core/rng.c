/* rng.c — xoshiro256** (Blackman & Vigna 2018) with splitmix64 seeding, plus the few
 * distributions the explainers need. */
#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void xd_rng_seed(xd_rng_t *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void xd_rng_seed_stream(xd_rng_t *r, uint64_t seed, uint64_t stream) {
  /* Mix the stream number through splitmix first so that (seed, stream) pairs that
   * differ in one bit still start far apart. */
  uint64_t x = stream;
  uint64_t k = splitmix64(&x);
  xd_rng_seed(r, seed ^ k ^ 0x6a09e667f3bcc909ULL);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t xd_rng_next(xd_rng_t *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double xd_rng_uniform(xd_rng_t *r) { return (double)(xd_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t xd_rng_below(xd_rng_t *r, uint64_t n) {
  /* Lemire's multiply-and-reject: unbiased without a division in the common case. */
  unsigned __int128 m = (unsigned __int128)xd_rng_next(r) * n;
  uint64_t lo = (uint64_t)m;
  if (lo < n) {
    uint64_t thresh = (0 - n) % n;
    while (lo < thresh) {
      m = (unsigned __int128)xd_rng_next(r) * n;
      lo = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

double xd_rng_normal(xd_rng_t *r) {
  double x, y, s;
  do {
    x = 2.0 * xd_rng_uniform(r) - 1.0;
    y = 2.0 * xd_rng_uniform(r) - 1.0;
    s = x * x + y * y;
  } while (s >= 1.0 || s == 0.0);
  return x * sqrt(-2.0 * log(s) / s);
}

double xd_norm_cdf(double x) { return 0.5 * erfc(-x / M_SQRT2); }

/* Acklam's rational approximation (relative error 1.15e-9), refined by one Halley step
 * on erfc, which brings it to full double precision over the range used here. */
double xd_norm_ppf(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01,  -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  if (p <= 0) return -INFINITY;
  if (p >= 1) return INFINITY;
  double q, x;
  if (p < 0.02425) {
    q = sqrt(-2 * log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p > 1 - 0.02425) {
    q = sqrt(-2 * log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    q = p - 0.5;
    double rr = q * q;
    x = (((((a[0] * rr + a[1]) * rr + a[2]) * rr + a[3]) * rr + a[4]) * rr + a[5]) * q /
        (((((b[0] * rr + b[1]) * rr + b[2]) * rr + b[3]) * rr + b[4]) * rr + 1);
  }
  double e = xd_norm_cdf(x) - p;
  double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

double xd_rng_truncnorm(xd_rng_t *r, double a, double b) {
  /* Work on the side of zero where the CDF keeps its relative precision: for a > 0
   * mirror the interval to [-b, -a], sample, and mirror back. */
  int flip = 0;
  if (a > 0) {
    double t = a;
    a = -b;
    b = -t;
    flip = 1;
  }
  double pa = xd_norm_cdf(a), pb = xd_norm_cdf(b);
  double x;
  if (!(pb > pa)) {
    /* Interval too far in the tail for double precision: its mass sits at the edge
     * nearer zero. */
    x = b;
  } else {
    double u = pa + xd_rng_uniform(r) * (pb - pa);
    x = xd_norm_ppf(u);
    if (x < a) x = a;
    if (x > b) x = b;
  }
  return flip ? -x : x;
}

size_t xd_rng_choice_cdf(xd_rng_t *r, const double *cdf, size_t n) {
  double u = xd_rng_uniform(r) * cdf[n - 1];
  size_t lo = 0, hi = n - 1;
  while (lo < hi) { /* first i with u < cdf[i] */
    size_t mid = lo + (hi - lo) / 2;
    if (u < cdf[mid])
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

void xd_rng_shuffle(xd_rng_t *r, size_t *idx, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)xd_rng_below(r, i);
    size_t t = idx[i - 1];
    idx[i - 1] = idx[j];
    idx[j] = t;
  }
}
