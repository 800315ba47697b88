/* lime.c — LIME tabular: plan, neighbourhood sampling, per-instance explanation.
 *
 * Reference: marcotcr/lime @ fd7eb2e6, lime/lime_tabular.py (__data_inverse,
 * explain_instance) and lime/discretize.py (undiscretize); docs/algorithms.md §1.
 * The surrogate (feature selection, ridge, R²) is in lime_fit.c.
 *
 * Sampling is the hot part besides the model: num_samples·d draws per neighbourhood.
 * Each draw uses one uniform: the bin (or category) is the interval of the cumulative
 * training frequencies the uniform falls in, and the uniform's position inside that
 * interval is itself uniform and independent of the bin, so it also drives the value
 * inside the bin. The value is lime's truncated normal (the bin's mean and std, cut at
 * its edges), drawn by inversion from a quantile table built once per plan: TN_KNOTS+1
 * knots per bin, exact there (Φ at the edges, Acklam's Φ⁻¹), linear between them — a
 * handful of instructions per draw — except in a first or last 1/TN_KNOTS of a bin where
 * the quantile runs to an edge far in the tail, drawn exactly (docs/lime.md).
 * Continuous mode draws N(0,1) by inversion too (Acklam, relative error 1.2e-9).
 */
#include "core/lime.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/lime_fit.h"
#include "core/rng.h"

const char *const xd_lime_disc_names[] = {"quartile", "decile", "entropy", "none", NULL};
const char *const xd_lime_fs_names[] = {"auto", "forward_selection", "highest_weights", "lasso_path", "none", NULL};

enum { FEAT_BINS = 0, FEAT_CONT = 1, FEAT_CAT = 2 };

/* Knots per bin of the tabulated truncated-normal quantile (see docs/lime.md). */
#define TN_KNOTS 64
/* Rows per sampling block of the continuous path: its three passes over a block stay in
 * L1/L2, and code (the sampler's scratch) holds one block. */
#define SAMPLE_BLOCK 128
/* Acklam's Φ⁻¹: the central formula holds for p in (PPF_LO, 1-PPF_LO). */
#define PPF_LO 0.02425

/* A truncated normal inside one bin, in the form the sampler wants: z = Φ⁻¹(lo + v·span)
 * clamped to [za, zb], negated when flip, then mean + std·z clamped to [vmin, vmax]. */
typedef struct tn {
  double lo, span, za, zb, mean, std, vmin, vmax;
  int flip, fixed; /* fixed: the bin always gives vmin (degenerate bin or a tail too far for Φ) */
} tn_t;

struct xd_lime_feat {
  /* hot: read by every draw of this feature */
  int kind;
  size_t n_vals;         /* bins or categories */
  double total;          /* cdf[n_vals-1] */
  double *cdf;           /* n_vals cumulative frequencies (owned) */
  /* FEAT_BINS: each bin's truncated-normal quantile at TN_KNOTS+1 equally spaced
   * probabilities, plus a copy of the last knot (owned, n_vals·(TN_KNOTS+2)), and the
   * map from the feature's cumulative position t to the bin's table position
   * qa[b] + qb[b]·t in [0, TN_KNOTS). */
  double *qtab;
  double qa[XD_BINS_MAX], qb[XD_BINS_MAX];
  unsigned char exact[XD_BINS_MAX]; /* bit 0/1: draw the first/last cell exactly */
  /* FEAT_BINS, FEAT_CAT: the bin (category) where each 1/256 of [0, total) starts, so a
   * draw finds its bin with one lookup and, rarely, a step or two. */
  uint16_t lut[256];
  /* cold: the exact draw, the plan, the continuous path */
  double pa[XD_BINS_MAX], pb[XD_BINS_MAX]; /* Φ(z) = pa[b] + pb[b]·t inside bin b */
  tn_t tn[XD_BINS_MAX];                    /* FEAT_BINS */
  const xd_bins_t *bins;                   /* FEAT_BINS */
  double mean, scale; /* FEAT_CONT: the standard scaler (scale 1 for a constant column) */
};

void xd_lime_options_default(xd_lime_options_t *o) {
  memset(o, 0, sizeof *o);
  o->num_samples = 5000;
  o->num_features = 10;
  o->top_labels = 1;
  o->discretize = XD_LIME_DISC_QUARTILE;
  o->feature_selection = XD_LIME_FS_AUTO;
  o->repeats = 1;
}

/* ---- Φ⁻¹ for sampling ---------------------------------------------------------------- */

/* Acklam's rational approximation of the standard normal quantile (relative error
 * 1.15e-9), without the refinement step of xd_norm_ppf. The central formula, valid for
 * p in (0.02425, 1-0.02425), is branch-free so that a loop of it overlaps; the tails
 * (about 5% of normal draws) go through ppf_tail. */
static inline double ppf_central(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01,  -1.328068155288572e+01};
  double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

static double ppf_tail(double p) {
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  if (p <= 0) return -INFINITY;
  if (p >= 1) return INFINITY;
  double s = p < 0.5 ? 1.0 : -1.0;
  double q = sqrt(-2 * log(p < 0.5 ? p : 1 - p));
  return s * (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
         ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
}

/* Inlined xoshiro256** step: the same stream as xd_rng_next, without a call per draw. */
static inline uint64_t next64(xd_rng_t *r) {
  uint64_t *q = r->s, res = ((q[1] * 5) << 7 | (q[1] * 5) >> 57) * 9, t = q[1] << 17;
  q[2] ^= q[0], q[3] ^= q[1], q[1] ^= q[2], q[0] ^= q[3], q[2] ^= t;
  q[3] = q[3] << 45 | q[3] >> 19;
  return res;
}

/* Uniform in (0,1): never 0, so Φ⁻¹ stays finite. */
static inline double uniform_open(xd_rng_t *r) { return ((double)(next64(r) >> 11) + 0.5) * 0x1.0p-53; }

/* ---- plan ---------------------------------------------------------------------------- */

static void tn_init(tn_t *t, const xd_bins_t *B, size_t b) {
  t->vmin = B->min[b];
  t->vmax = B->max[b];
  t->mean = B->mean[b];
  t->std = B->std[b] + 1e-11; /* lime adds 1e-11 so that a single-valued bin is not 0/0 */
  t->flip = 0;
  t->fixed = 0;
  if (t->vmin == t->vmax) { /* degenerate bin: its value (lime returns a z-score here) */
    t->fixed = 1;
    return;
  }
  double a = (t->vmin - t->mean) / t->std, bb = (t->vmax - t->mean) / t->std;
  if (a > 0) { /* sample on the side of zero where Φ keeps its relative precision */
    double s = a;
    a = -bb, bb = -s;
    t->flip = 1;
  }
  t->za = a, t->zb = bb;
  t->lo = xd_norm_cdf(a);
  t->span = xd_norm_cdf(bb) - t->lo;
  if (!(t->span > 0)) { /* all the mass sits at the edge nearer the mean */
    t->fixed = 1;
    double z = t->flip ? -bb : bb;
    t->vmin = t->vmax = fmin(fmax(t->mean + t->std * z, B->min[b]), B->max[b]);
  }
}

/* The value of a bin's truncated normal at Φ(z) = pz, by Acklam's Φ⁻¹. */
static double tn_exact(const tn_t *t, double pz);

/* The value of a bin's truncated normal whose Φ⁻¹ is z. */
static inline double tn_finish(const tn_t *t, double z) {
  if (t->fixed) return t->vmin;
  z = z < t->za ? t->za : (z > t->zb ? t->zb : z);
  if (t->flip) z = -z;
  double v = t->mean + t->std * z;
  return v < t->vmin ? t->vmin : (v > t->vmax ? t->vmax : v);
}

static inline size_t choose(const double *cdf, size_t n, double t);

static double tn_exact(const tn_t *t, double pz) {
  if (t->fixed) return t->vmin;
  return tn_finish(t, (pz > PPF_LO && pz < 1 - PPF_LO) ? ppf_central(pz) : ppf_tail(pz));
}

/* Tabulates every bin's truncated-normal quantile Q_b(v) at v = k/TN_KNOTS (Φ at the
 * bin's edges once, then Acklam's Φ⁻¹), monotone and inside the bin. Sampling then
 * interpolates linearly between knots — exact at the knots, uniform between two
 * neighbours, two loads and a multiply-add instead of a Φ⁻¹ per draw — except in an
 * end cell where the density changes more than 4-fold (exact[b]): there Q may run to an
 * edge far in the tail (a bin whose values are nearly all equal has std ~1e-11), and a
 * straight line would spread 1/TN_KNOTS of the bin's draws across the whole bin. */
static int tabulate(xd_lime_feat_t *f, xd_error_t *err) {
  f->qtab = xd_malloc(f->n_vals * (TN_KNOTS + 2) * sizeof *f->qtab);
  if (!f->qtab) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  for (size_t b = 0; b < f->n_vals; b++) {
    const tn_t *t = &f->tn[b];
    double *q = f->qtab + b * (TN_KNOTS + 2);
    for (size_t k = 0; k <= TN_KNOTS; k++) {
      q[k] = tn_exact(t, t->lo + t->span * ((double)k / TN_KNOTS));
      if (k && q[k] < q[k - 1]) q[k] = q[k - 1];
    }
    q[TN_KNOTS + 1] = q[TN_KNOTS]; /* so that a position rounded up to TN_KNOTS needs no clamp */
    /* An end cell whose density changes more than 4-fold across it is drawn exactly:
     * below that, a straight line misplaces under 0.3% of the bin's draws, each within
     * its 1/TN_KNOTS slice. */
    double z0 = (q[0] - t->mean) / t->std, z1 = (q[1] - t->mean) / t->std;
    double zk = (q[TN_KNOTS - 1] - t->mean) / t->std, zK = (q[TN_KNOTS] - t->mean) / t->std;
    f->exact[b] = 0;
    if (!t->fixed && fabs(z0 * z0 - z1 * z1) / 2 > 1.3863) f->exact[b] |= 1;
    if (!t->fixed && fabs(zK * zK - zk * zk) / 2 > 1.3863) f->exact[b] |= 2;
    double c0 = b ? f->cdf[b - 1] : 0.0, w = f->cdf[b] - c0;
    f->qb[b] = w > 0 ? TN_KNOTS / w : 0.0;
    f->qa[b] = -c0 * f->qb[b];
    f->pb[b] = w > 0 ? t->span / w : 0.0;
    f->pa[b] = t->lo - c0 * f->pb[b];
  }
  return XD_OK;
}

void xd_lime_plan_deinit(xd_lime_plan_t *p) {
  if (!p) return;
  if (p->feat)
    for (size_t j = 0; j < p->d; j++) {
      xd_free(p->feat[j].cdf);
      xd_free(p->feat[j].qtab);
    }
  xd_free(p->feat);
  memset(p, 0, sizeof *p);
}

/* Checks the options against the model and, when tables, builds the sampling tables. */
static int plan_build(xd_lime_plan_t *p, const xd_model_t *m, const xd_lime_options_t *opt, int tables,
                      xd_error_t *err) {
  memset(p, 0, sizeof *p);
  p->model = m;
  p->opt = *opt;
  p->d = xd_model_n_features(m);
  p->n_outputs = xd_model_n_outputs(m);
  p->classification = xd_model_task(m) == XD_TASK_CLASSIFICATION;
  const xd_stats_t *st = xd_model_stats(m);
  const xd_feature_t *fs = xd_model_features(m);
  int rc = XD_OK;
  if (!st || !xd_model_background(m) || xd_model_background(m)->n == 0)
    return xd_error_set(err, XD_EINVAL, "model", "the model has no background data, which LIME samples from");
  if (opt->num_samples < 1) return xd_error_set(err, XD_EINVAL, "num_samples", "num_samples must be at least 1");
  if (opt->num_features < 1) return xd_error_set(err, XD_EINVAL, "num_features", "num_features must be at least 1");
  if (opt->repeats < 1) return xd_error_set(err, XD_EINVAL, "repeats", "repeats must be at least 1");
  if ((unsigned)opt->discretize > XD_LIME_DISC_NONE)
    return xd_error_set(err, XD_EINVAL, "discretize", "unknown discretizer");
  if ((unsigned)opt->feature_selection > XD_LIME_FS_NONE)
    return xd_error_set(err, XD_EINVAL, "feature_selection", "unknown feature selection");
  if (!(opt->kernel_width >= 0) || !isfinite(opt->kernel_width))
    return xd_error_set(err, XD_EINVAL, "kernel_width", "kernel_width must be a positive finite number");
  if (opt->kernel_width == 0) p->opt.kernel_width = sqrt((double)p->d) * 0.75;
  if (p->classification) {
    if (opt->n_labels > XD_LIME_MAX_LABELS)
      return xd_error_set(err, XD_EINVAL, "labels", "at most %d labels", XD_LIME_MAX_LABELS);
    for (size_t i = 0; i < opt->n_labels; i++) {
      char f[32];
      snprintf(f, sizeof f, "labels[%zu]", i);
      if (opt->labels[i] >= p->n_outputs)
        return xd_error_set(err, XD_EINVAL, f, "label %zu is out of range: the model has %zu classes",
                            opt->labels[i], p->n_outputs);
      for (size_t k = 0; k < i; k++)
        if (opt->labels[k] == opt->labels[i])
          return xd_error_set(err, XD_EINVAL, f, "label %zu is listed twice", opt->labels[i]);
    }
    if (opt->n_labels == 0 && (opt->top_labels < 1 || opt->top_labels > p->n_outputs))
      return xd_error_set(err, XD_EINVAL, "top_labels", "top_labels must be between 1 and %zu", p->n_outputs);
    p->n_explain = opt->n_labels ? opt->n_labels : opt->top_labels;
    if (p->n_explain > XD_LIME_MAX_LABELS) p->n_explain = XD_LIME_MAX_LABELS;
  } else {
    for (size_t i = 0; i < opt->n_labels; i++)
      if (opt->labels[i] != 0) return xd_error_set(err, XD_EINVAL, "labels", "a regression model has one output, 0");
    p->n_explain = 1;
  }
  for (size_t j = 0; j < p->d; j++) { /* every check first: they need no memory */
    const xd_stats_feature_t *sf = &st->f[j];
    double s = 0;
    if (fs[j].kind == XD_FEAT_CATEGORICAL) {
      for (size_t b = 0; b < sf->n_categories; b++) s += sf->cat_freq[b];
    } else if (opt->discretize == XD_LIME_DISC_NONE) {
      continue;
    } else {
      if (opt->discretize == XD_LIME_DISC_ENTROPY && !sf->has_entropy)
        return xd_error_set(err, XD_EINVAL, "discretize",
                            "the entropy discretizer needs background data with classification targets");
      const xd_bins_t *B = &sf->bins[opt->discretize];
      for (size_t b = 0; b <= B->n_edges; b++) s += B->freq[b];
    }
    if (!(s > 0)) return xd_error_set(err, XD_EINVAL, "model", "feature %zu has no background frequencies", j);
  }
  if (!tables) return XD_OK;
  p->feat = xd_calloc(p->d, sizeof *p->feat);
  if (!p->feat) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  for (size_t j = 0; j < p->d; j++) {
    xd_lime_feat_t *f = &p->feat[j];
    const xd_stats_feature_t *sf = &st->f[j];
    if (fs[j].kind == XD_FEAT_CATEGORICAL) {
      f->kind = FEAT_CAT;
      f->n_vals = sf->n_categories;
    } else if (opt->discretize == XD_LIME_DISC_NONE) {
      f->kind = FEAT_CONT;
      f->mean = sf->mean;
      f->scale = sf->std < 10 * 2.220446049250313e-16 ? 1.0 : sf->std; /* sklearn's zero-scale rule */
      continue;
    } else {
      f->kind = FEAT_BINS;
      f->bins = &sf->bins[opt->discretize];
      f->n_vals = f->bins->n_edges + 1;
      for (size_t b = 0; b < f->n_vals; b++) tn_init(&f->tn[b], f->bins, b);
    }
    f->cdf = xd_malloc((f->n_vals ? f->n_vals : 1) * sizeof *f->cdf);
    if (!f->cdf) {
      rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
      goto fail;
    }
    double s = 0;
    for (size_t b = 0; b < f->n_vals; b++) f->cdf[b] = (s += f->kind == FEAT_CAT ? sf->cat_freq[b] : f->bins->freq[b]);
    f->total = s;
    for (uint32_t c = 0; c < 256; c++) { /* the same t as a draw u = c·2^24 gives */
      size_t b = choose(f->cdf, f->n_vals, (double)(c << 24) * 0x1.0p-32 * s);
      f->lut[c] = (uint16_t)(b < 65535 ? b : 0);
    }
    if (f->kind == FEAT_BINS && (rc = tabulate(f, err)) != XD_OK) goto fail;
  }
  return XD_OK;
fail:
  xd_lime_plan_deinit(p);
  return rc;
}

int xd_lime_plan_init(xd_lime_plan_t *p, const xd_model_t *m, const xd_lime_options_t *opt, xd_error_t *err) {
  return plan_build(p, m, opt, 1, err);
}

int xd_lime_plan_check(const xd_model_t *m, const xd_lime_options_t *opt, xd_error_t *err) {
  xd_lime_plan_t p;
  return plan_build(&p, m, opt, 0, err);
}

/* ---- the neighbourhood ---------------------------------------------------------------- */

/* The interval of cdf (n) that t in [0, cdf[n-1]) falls in: the count of entries <= t,
 * branch-free for the few bins of a discretizer (a random bin would mispredict every
 * branch of a search). Zero-width intervals (frequency 0) are never chosen. */
static inline size_t choose(const double *cdf, size_t n, double t) {
  size_t b = 0;
  if (n <= 16) {
    for (size_t k = 0; k + 1 < n; k++) b += t >= cdf[k];
    return b;
  }
  size_t hi = n - 1;
  while (b < hi) {
    size_t mid = b + (hi - b) / 2;
    if (t < cdf[mid])
      hi = mid;
    else
      b = mid + 1;
  }
  return b;
}

/* The bin (category) of a 32-bit uniform u for feature f, and t = u·total/2^32, its
 * position in [0, total): the lookup table gives the bin where u's 1/256 starts, and
 * the loop steps over the boundaries inside that 1/256 (rarely any). */
static inline size_t draw_bin(const xd_lime_feat_t *f, uint32_t u, double *t) {
  double tt = (double)u * 0x1.0p-32 * f->total;
  size_t b = f->lut[u >> 24];
  while (b + 1 < f->n_vals && !(tt < f->cdf[b])) b++;
  *t = tt;
  return b;
}

/* The instance's representation z0 (d) and its bin/code per feature (d). */
static void instance_repr(const xd_lime_plan_t *p, const double *x, double *z0, size_t *bin) {
  for (size_t j = 0; j < p->d; j++) {
    const xd_lime_feat_t *f = &p->feat[j];
    bin[j] = 0;
    if (f->kind == FEAT_CONT) {
      z0[j] = (x[j] - f->mean) / f->scale;
      continue;
    }
    z0[j] = 1.0;
    bin[j] = f->kind == FEAT_BINS ? xd_bins_index(f->bins, x[j]) : (size_t)(x[j] >= 0 ? x[j] : 0);
  }
}


/* Draws one neighbourhood of x from r: inv (n,d) the raw rows the model sees, Z (n,d)
 * the surrogate's representation, dist (n) and w (n) the distances to row 0 and their
 * kernel weights; code (SAMPLE_BLOCK,d) is scratch (continuous path). Discretized with
 * d <= 64, mask (n) (may be NULL) gets each row's Z as bits. Row 0 is the instance
 * (inv[0] == x, dist 0, w 1). z0 and bin come from instance_repr. 32 random bits per
 * cell in discretized mode, 53 in continuous mode, row-major. */
static void sample(const xd_lime_plan_t *p, const double *x, const double *z0, const size_t *bin, xd_rng_t *r,
                   double *inv, double *Z, uint16_t *code, uint64_t *mask, double *dist, double *w) {
  size_t n = p->opt.num_samples, d = p->d;
  double kw2 = 2.0 * p->opt.kernel_width * p->opt.kernel_width;
  int around = p->opt.sample_around_instance;
  const xd_lime_feat_t *feat = p->feat;
  /* The generator state lives in a local so it stays in registers: through the pointer
   * every draw would wait on the previous draw's stores. */
  xd_rng_t rl = *r;
  memcpy(inv, x, d * sizeof *inv);
  memcpy(Z, z0, d * sizeof *Z);
  dist[0] = 0, w[0] = 1;
  if (p->opt.discretize != XD_LIME_DISC_NONE) {
    /* Every feature is categorical here: the uniform picks the bin (or category) by the
     * training frequencies, its position inside the bin's share picks the value from
     * the bin's tabulated quantile; Z is 1 where the row kept x's bin, and the squared
     * distance is the number of features that left it. */
    if (mask) mask[0] = d == 64 ? ~(uint64_t)0 : (((uint64_t)1 << d) - 1);
    for (size_t i = 1; i < n; i++) {
      double *iv = inv + i * d, *zi = Z + i * d;
      uint64_t bits = 0, rnd = 0;
      for (size_t j = 0; j < d; j++) {
        const xd_lime_feat_t *f = &feat[j];
        /* 32 random bits per cell (two cells per draw): they place the cell to 2^-32 of
         * its feature's distribution, far below anything a neighbourhood resolves */
        uint32_t u;
        if (j & 1) {
          u = (uint32_t)rnd;
        } else {
          rnd = next64(&rl);
          u = (uint32_t)(rnd >> 32);
        }
        double t;
        size_t b = draw_bin(f, u, &t);
        if (f->kind == FEAT_CAT) {
          iv[j] = (double)b;
        } else {
          double pos = f->qa[b] + f->qb[b] * t; /* in [0, TN_KNOTS], up to rounding */
          size_t k = (size_t)pos;                 /* (a rounding below 0 truncates to 0) */
          if (k - 1 < TN_KNOTS - 2 || !(f->exact[b] & (k == 0 ? 1 : 2))) { /* interpolate */
            const double *q = f->qtab + b * (TN_KNOTS + 2) + k;
            iv[j] = q[0] + (pos - (double)k) * (q[1] - q[0]);
          } else { /* an end cell that reaches an edge far in the tail: exact */
            iv[j] = tn_exact(&f->tn[b], f->pa[b] + f->pb[b] * t);
          }
        }
        int same = b == bin[j];
        zi[j] = same;
        bits |= (uint64_t)same << (j & 63);
      }
      size_t moved = d - (size_t)__builtin_popcountll(bits);
      if (d > 64) { /* more features than mask bits: count them */
        moved = 0;
        for (size_t j = 0; j < d; j++) moved += zi[j] == 0;
      }
      if (mask) mask[i] = bits;
      dist[i] = sqrt((double)moved);
      w[i] = exp(-(double)moved / kw2);
    }
    *r = rl;
    return;
  }
  /* Continuous: N(0,1) by inversion, in three passes per block of rows so that Φ⁻¹'s
   * rational function — a chain of dependent multiplies and a divide — runs in a loop
   * of independent cells the CPU overlaps:
   *   A. one uniform per cell (categorical: the category and its code);
   *   B. Φ⁻¹ by the central formula for every cell;
   *   C. the tails (about 5%) redone, scale and centre, indicators, distance, weight. */
  for (size_t i0 = 1; i0 < n; i0 += SAMPLE_BLOCK) {
    size_t i1 = n - i0 < SAMPLE_BLOCK ? n : i0 + SAMPLE_BLOCK, m = (i1 - i0) * d;
    double *zb = Z + i0 * d, *ib = inv + i0 * d;
    uint16_t *cb = code; /* (rows, d): block-local */
    /* A: zb (rows, d) = uniforms in (0,1); cb = categories */
    for (size_t k = 0, j = 0; k < m; k++, j = j + 1 == d ? 0 : j + 1) {
      const xd_lime_feat_t *f = &feat[j];
      if (f->kind == FEAT_CAT) {
        double t;
        cb[k] = (uint16_t)draw_bin(f, (uint32_t)(next64(&rl) >> 32), &t);
        zb[k] = 0.5;
      } else {
        zb[k] = uniform_open(&rl);
      }
    }
    /* B: ib = Φ⁻¹(zb), central formula, elementwise */
    for (size_t k = 0; k < m; k++) ib[k] = ppf_central(zb[k]);
    /* C: finish each cell, then the row's distance */
    for (size_t i = i0; i < i1; i++) {
      double *iv = inv + i * d, *zi = Z + i * d, d2 = 0;
      const uint16_t *ci = code + (i - i0) * d;
      for (size_t j = 0; j < d; j++) {
        const xd_lime_feat_t *f = &feat[j];
        double zr;
        if (f->kind == FEAT_CAT) {
          iv[j] = (double)ci[j];
          zr = ci[j] == bin[j];
        } else {
          double pz = zi[j], g = iv[j];
          if (!(pz > PPF_LO && pz < 1 - PPF_LO)) g = ppf_tail(pz);
          /* lime: data = N(0,1)·scale + (x or mean); the surrogate sees (data-mean)/scale */
          iv[j] = g * f->scale + (around ? x[j] : f->mean);
          zr = around ? g + z0[j] : g;
        }
        zi[j] = zr;
        double e = zr - z0[j];
        d2 += e * e;
      }
      dist[i] = sqrt(d2);
      w[i] = exp(-d2 / kw2);
    }
  }
  *r = rl;
}

int xd_lime_neighbourhood(const xd_lime_plan_t *p, const double *x, uint64_t stream, double *inv, double *Z,
                          double *dist, double *w, double *z0) {
  size_t *bin = xd_malloc((p->d ? p->d : 1) * sizeof *bin);
  uint16_t *code = xd_malloc(xd_mul_size(SAMPLE_BLOCK, p->d ? p->d : 1) * sizeof *code);
  int rc = XD_ENOMEM;
  if (bin && code) {
    xd_rng_t r;
    xd_rng_seed_stream(&r, p->opt.seed, stream);
    instance_repr(p, x, z0, bin);
    sample(p, x, z0, bin, &r, inv, Z, code, NULL, dist, w);
    rc = XD_OK;
  }
  xd_free(bin);
  xd_free(code);
  return rc;
}

/* ---- explanation ------------------------------------------------------------------------ */

void xd_lime_result_deinit(xd_lime_result_t *res) {
  if (!res) return;
  if (res->labels)
    for (size_t l = 0; l < res->n_labels; l++) {
      xd_free(res->labels[l].feature);
      xd_free(res->labels[l].weight);
      xd_free(res->labels[l].std);
      xd_free(res->labels[l].selected);
    }
  xd_free(res->labels);
  xd_free(res->prediction);
  xd_free(res->z0);
  xd_free(res->bin);
  xd_free(res->runs_weight);
  xd_free(res->runs_intercept);
  xd_free(res->runs_score);
  xd_free(res->runs_local_pred);
  memset(res, 0, sizeof *res);
}

static int result_alloc(xd_lime_result_t *res, size_t d, size_t n_out, size_t L, size_t R) {
  memset(res, 0, sizeof *res);
  res->d = d, res->n_outputs = n_out, res->n_labels = L, res->repeats = R;
  res->prediction = xd_calloc(n_out, sizeof(double));
  res->z0 = xd_calloc(d, sizeof(double));
  res->bin = xd_calloc(d, sizeof(size_t));
  res->labels = xd_calloc(L, sizeof *res->labels);
  res->runs_weight = xd_calloc(xd_mul_size(R * L, d), sizeof(double));
  res->runs_intercept = xd_calloc(R * L, sizeof(double));
  res->runs_score = xd_calloc(R * L, sizeof(double));
  res->runs_local_pred = xd_calloc(R * L, sizeof(double));
  if (!res->prediction || !res->z0 || !res->bin || !res->labels || !res->runs_weight || !res->runs_intercept ||
      !res->runs_score || !res->runs_local_pred)
    return XD_ENOMEM;
  for (size_t l = 0; l < L; l++) {
    xd_lime_label_exp_t *e = &res->labels[l];
    e->feature = xd_calloc(d, sizeof(size_t));
    e->weight = xd_calloc(d, sizeof(double));
    e->std = xd_calloc(d, sizeof(double));
    e->selected = xd_calloc(d, sizeof(size_t));
    if (!e->feature || !e->weight || !e->std || !e->selected) return XD_ENOMEM;
  }
  return XD_OK;
}

/* The labels to explain, from the model's output at the instance: the given ones, or
 * the top_labels most probable classes in decreasing probability (the lower index first
 * on ties, so top_labels 1 is xd_model_argmax). */
static void choose_labels(const xd_lime_plan_t *p, const double *y0, size_t *labels) {
  if (!p->classification) {
    labels[0] = 0;
    return;
  }
  if (p->opt.n_labels) {
    memcpy(labels, p->opt.labels, p->n_explain * sizeof *labels);
    return;
  }
  size_t k = 0, K = p->n_explain;
  for (size_t c = 0; c < p->n_outputs; c++) { /* insertion into a sorted top-K list */
    size_t b = k;
    while (b > 0 && y0[labels[b - 1]] < y0[c]) b--;
    if (b >= K) continue;
    for (size_t t = k < K ? k : K - 1; t > b; t--) labels[t] = labels[t - 1];
    labels[b] = c;
    if (k < K) k++;
  }
}

static void mean_std(const double *v, size_t stride, size_t R, double *mean, double *sd) {
  double s = 0, q = 0;
  for (size_t r = 0; r < R; r++) s += v[r * stride];
  s /= (double)R;
  for (size_t r = 0; r < R; r++) q += (v[r * stride] - s) * (v[r * stride] - s);
  *mean = s;
  *sd = sqrt(q / (double)R);
}

/* Folds the R runs of label l into its explanation: means, population stds, and the
 * features any run selected sorted by decreasing |mean weight|. With one run this is
 * the run itself, in lime's order. */
static void aggregate(xd_lime_result_t *res, size_t l, const xd_lime_fit_out_t *last, char *sel_any) {
  size_t d = res->d, L = res->n_labels, R = res->repeats;
  xd_lime_label_exp_t *e = &res->labels[l];
  mean_std(res->runs_intercept + l, L, R, &e->intercept, &e->intercept_std);
  mean_std(res->runs_score + l, L, R, &e->score, &e->score_std);
  mean_std(res->runs_local_pred + l, L, R, &e->local_pred, &e->local_pred_std);
  e->n_weights = 0;
  if (R == 1) {
    for (size_t a = 0; a < last->n_used; a++) {
      size_t j = last->used[a];
      e->feature[a] = j, e->weight[a] = last->coef[j], e->std[a] = 0, e->selected[a] = 1;
    }
    e->n_weights = last->n_used;
    return;
  }
  for (size_t j = 0; j < d; j++) {
    if (!sel_any[l * d + j]) continue;
    size_t k = e->n_weights++, cnt = 0;
    for (size_t r = 0; r < R; r++) cnt += (sel_any[(L + r * L + l) * d + j] != 0);
    e->feature[k] = j;
    e->selected[k] = cnt;
    mean_std(res->runs_weight + l * d + j, L * d, R, &e->weight[k], &e->std[k]);
  }
  for (size_t a = 1; a < e->n_weights; a++) { /* stable: ties keep the lower index */
    size_t f = e->feature[a], c = e->selected[a], b = a;
    double wv = e->weight[a], sv = e->std[a];
    while (b > 0 && fabs(e->weight[b - 1]) < fabs(wv)) {
      e->feature[b] = e->feature[b - 1], e->weight[b] = e->weight[b - 1];
      e->std[b] = e->std[b - 1], e->selected[b] = e->selected[b - 1];
      b--;
    }
    e->feature[b] = f, e->weight[b] = wv, e->std[b] = sv, e->selected[b] = c;
  }
}

int xd_lime_explain(const xd_lime_plan_t *p, const double *x, size_t instance_index, xd_lime_result_t *res,
                    const xd_cancel_t *cancel, xd_error_t *err) {
  size_t n = p->opt.num_samples, d = p->d, no = p->n_outputs, L = p->n_explain, R = p->opt.repeats;
  double *blk = NULL;
  size_t *szb = NULL;
  char *sel = NULL;
  uint16_t *code = NULL;
  int rc = result_alloc(res, d, no, L, R);
  if (rc) goto nomem;
  /* Scratch for the whole explanation, sized once: inv (n,d), Z (n,d), Y (n,no),
   * Yc (n,L), dist (n), w (n), coef (d), mask (n), then the fit workspace; code
   * (SAMPLE_BLOCK,d) for the continuous sampler; sel, which features each run chose. */
  int binary = p->opt.discretize != XD_LIME_DISC_NONE && d <= 64;
  size_t nd = xd_mul_size(n, d), ndbl = 2 * nd + n * no + n * L + 3 * n + d + xd_lime_ws_doubles(n, d, L);
  if (n && d && !nd) goto nomem;
  blk = xd_malloc(ndbl * sizeof *blk);
  szb = xd_malloc((2 * d + xd_lime_ws_sizes(d) + L + 1) * sizeof *szb);
  if (p->opt.discretize == XD_LIME_DISC_NONE) /* continuous only */
    code = xd_malloc(xd_mul_size(SAMPLE_BLOCK, d ? d : 1) * sizeof *code);
  sel = xd_calloc((1 + R) * L, d ? d : 1); /* [l][j] any run, then [r][l][j] */
  if (!blk || !szb || !sel || (p->opt.discretize == XD_LIME_DISC_NONE && !code)) goto nomem;
  double *inv = blk, *Z = inv + nd, *Y = Z + nd, *Yc = Y + n * no, *dist = Yc + n * L, *w = dist + n,
         *coef = w + n, *wsd = coef + d + n;
  uint64_t *mask = binary ? (uint64_t *)(coef + d) : NULL; /* n */
  size_t *used = szb, *labels = szb + d, *wsz = labels + L;
  xd_lime_ws_t ws;
  xd_lime_ws_carve(&ws, n, d, L, wsd, wsz);
  xd_lime_fit_out_t fit = {.used = used, .coef = coef};
  instance_repr(p, x, res->z0, res->bin);

  for (size_t r = 0; r < R; r++) {
    if ((rc = xd_cancel_check(cancel))) goto canceled;
    xd_rng_t rng;
    xd_rng_seed_stream(&rng, p->opt.seed, (uint64_t)instance_index * R + r);
    sample(p, x, res->z0, res->bin, &rng, inv, Z, code, mask, dist, w);
    if ((rc = xd_cancel_check(cancel))) goto canceled;
    /* The whole neighbourhood through the model in one call. */
    rc = xd_model_predict(p->model, inv, n, Y, cancel, err);
    if (rc) goto done;
    if (r == 0) {
      memcpy(res->prediction, Y, no * sizeof *Y);
      choose_labels(p, Y, labels);
      for (size_t l = 0; l < L; l++) res->labels[l].label = labels[l];
    }
    if (binary)
      xd_lime_ws_prepare_binary(&ws, Z, mask, Y, no, labels, w, Yc);
    else
      xd_lime_ws_prepare(&ws, Z, Y, no, labels, w, Yc);
    for (size_t l = 0; l < L; l++) {
      if ((rc = xd_cancel_check(cancel))) goto canceled; /* the Gram above is O(n d²) */
      if ((rc = xd_lime_ws_fit(&ws, l, Z, Yc, res->z0, p->opt.feature_selection, p->opt.num_features, &fit, err)))
        goto done;
      size_t k = r * L + l;
      memcpy(res->runs_weight + k * d, fit.coef, d * sizeof *fit.coef);
      res->runs_intercept[k] = fit.intercept;
      res->runs_score[k] = fit.score;
      res->runs_local_pred[k] = fit.local_pred;
      for (size_t a = 0; a < fit.n_used; a++) {
        sel[l * d + used[a]] = 1;
        sel[(L + k) * d + used[a]] = 1;
      }
      if (r == R - 1) aggregate(res, l, &fit, sel);
    }
  }
  rc = XD_OK;
  goto done;
canceled:
  xd_error_set(err, rc, NULL, "%s", rc == XD_ETIMEDOUT ? "the request's deadline passed" : "the request was canceled");
  goto done;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory for a LIME neighbourhood of %zu rows", n);
done:
  xd_free(blk);
  xd_free(szb);
  xd_free(sel);
  xd_free(code);
  return rc;
}

/* ---- text ------------------------------------------------------------------------------ */

void xd_lime_condition(const xd_lime_plan_t *p, size_t j, const double *x, char *buf, size_t size) {
  const xd_feature_t *f = &xd_model_features(p->model)[j];
  const xd_lime_feat_t *lf = &p->feat[j];
  if (lf->kind == FEAT_CAT) {
    long c = (long)x[j];
    if (c >= 0 && (size_t)c < f->n_categories)
      snprintf(buf, size, "%s=%s", f->name, f->categories[c]);
    else
      snprintf(buf, size, "%s=%ld", f->name, c);
  } else if (lf->kind == FEAT_BINS && lf->bins->n_edges > 0) {
    const xd_bins_t *B = lf->bins;
    size_t b = xd_bins_index(B, x[j]);
    if (b == 0)
      snprintf(buf, size, "%s <= %.2f", f->name, B->edges[0]);
    else if (b == B->n_edges)
      snprintf(buf, size, "%s > %.2f", f->name, B->edges[B->n_edges - 1]);
    else
      snprintf(buf, size, "%.2f < %s <= %.2f", B->edges[b - 1], f->name, B->edges[b]);
  } else {
    snprintf(buf, size, "%s", f->name);
  }
}

/* ---- test hook --------------------------------------------------------------------------- */

int xd_lime_fit_neighbourhood(size_t n, size_t d, const double *Z, const double *y, const double *dist,
                              double kernel_width, xd_lime_fs_t fs, size_t num_features, xd_lime_fit_out_t *out,
                              xd_error_t *err) {
  if (n < 1 || d < 1 || !(kernel_width > 0) || num_features < 1)
    return xd_error_set(err, XD_EINVAL, NULL, "bad neighbourhood shape or kernel width");
  size_t nd = xd_mul_size(n, d), ndbl = nd + 3 * n + xd_lime_ws_doubles(n, d, 1);
  double *blk = nd ? xd_malloc(ndbl * sizeof *blk) : NULL;
  size_t *szb = xd_malloc((xd_lime_ws_sizes(d) + 1) * sizeof *szb);
  int rc = XD_OK;
  if (!blk || !szb) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  double *Ac = blk, *Yc = Ac + nd, *w = Yc + n;
  uint64_t *mask = (uint64_t *)(w + n);
  xd_lime_ws_t ws;
  size_t col0 = 0;
  xd_lime_ws_carve(&ws, n, d, 1, w + 2 * n, szb);
  for (size_t i = 0; i < n; i++) w[i] = exp(-dist[i] * dist[i] / (2 * kernel_width * kernel_width));
  /* the discretized representation (0/1, row 0 all ones) takes explain's binary path */
  int binary = d <= 64;
  for (size_t i = 0; i < n && binary; i++) {
    mask[i] = 0;
    for (size_t j = 0; j < d && binary; j++) {
      double v = Z[i * d + j];
      binary = v == 1 || (v == 0 && i > 0);
      mask[i] |= (uint64_t)(v == 1) << j;
    }
  }
  if (binary) {
    xd_lime_ws_prepare_binary(&ws, Z, mask, y, 1, &col0, w, Yc);
    rc = xd_lime_ws_fit(&ws, 0, Z, Yc, Z, fs, num_features, out, err);
  } else {
    memcpy(Ac, Z, nd * sizeof *Ac);
    xd_lime_ws_prepare(&ws, Ac, y, 1, &col0, w, Yc);
    rc = xd_lime_ws_fit(&ws, 0, Ac, Yc, Z, fs, num_features, out, err);
  }
done:
  xd_free(blk);
  xd_free(szb);
  return rc;
}
