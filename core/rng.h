/* rng.h — explicit, seedable random streams (xoshiro256**, seeded by splitmix64).
 *
 * Every method that samples takes an xd_rng_t seeded from the request's seed: never
 * rand(), never global state. Work split across threads derives one stream per part
 * with xd_rng_seed_stream(seed, part) so results do not depend on the thread count.
 * An xd_rng_t is plain caller-owned state; one per thread at a time.
 */
#ifndef XD_RNG_H
#define XD_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct xd_rng {
  uint64_t s[4];
} xd_rng_t;

/* Seeds the generator from a 64-bit seed (splitmix64 expansion). */
void xd_rng_seed(xd_rng_t *r, uint64_t seed);
/* Seeds stream number `stream` of `seed`: independent of other streams of the same seed. */
void xd_rng_seed_stream(xd_rng_t *r, uint64_t seed, uint64_t stream);
/* Next 64 random bits. */
uint64_t xd_rng_next(xd_rng_t *r);
/* Uniform double in [0, 1) with 53 random bits. */
double xd_rng_uniform(xd_rng_t *r);
/* Uniform integer in [0, n); n > 0. Unbiased (Lemire's method). */
uint64_t xd_rng_below(xd_rng_t *r, uint64_t n);
/* Standard normal deviate (Marsaglia polar method; no cached second value so that the
 * state is the only state). */
double xd_rng_normal(xd_rng_t *r);
/* Standard normal truncated to [a, b] (a < b; either may be +-INFINITY), by inversion
 * on the tail nearer zero, as scipy.stats.truncnorm does. */
double xd_rng_truncnorm(xd_rng_t *r, double a, double b);
/* Draws an index from a discrete distribution given its cumulative weights cdf[0..n-1]
 * (non-decreasing, cdf[n-1] > 0): the first i with u*cdf[n-1] < cdf[i]. */
size_t xd_rng_choice_cdf(xd_rng_t *r, const double *cdf, size_t n);
/* Fisher–Yates shuffle of idx[0..n-1]. */
void xd_rng_shuffle(xd_rng_t *r, size_t *idx, size_t n);

/* Standard normal CDF and its inverse (used by truncnorm; exported for tests). */
double xd_norm_cdf(double x);
double xd_norm_ppf(double p);

#endif
