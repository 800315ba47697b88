/* segment_quickshift.c — quickshift (Vedaldi & Soatto 2008) with the behaviour of
 * scikit-image 0.19's skimage.segmentation.quickshift. See segment.h and
 * docs/segmentation.md.
 *
 * Steps:
 *   1. values · pixel_scale as RGB in [0, 1] (scikit-image's img_as_float: 8-bit images
 *      are divided by 255, float images taken as they are) -> CIELAB;
 *   2. Gaussian smoothing with sigma; colours × ratio;
 *   3. density of pixel p: Σ over the window |dr|, |dc| <= ceil(3·kernel_size) of
 *      exp(-(‖colour_p − colour_q‖² + dr² + dc²) / (2·kernel_size²)) (each pair computed
 *      once for both pixels: the kernel is symmetric), plus N(0, 1e-5²)
 *      noise drawn from xd_rng_t seeded with `seed` (scikit-image draws it from numpy's
 *      default_rng(random_seed): same purpose, different numbers);
 *   4. parent of p: the nearest q of the window (same distance) with a strictly higher
 *      density, the first in raster order on equal distances; none (p is a root) when
 *      there is none or when it is farther than max_dist;
 *   5. every pixel takes its root; roots are numbered in raster order (numpy's unique). */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "core/segment.h"

int xd_segment_quickshift(const xd_segment_params_t *p, const float *img, int C, int H, int W, int32_t *labels,
                          int *n_segments, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t n = (size_t)H * W;
  int rc = XD_ENOMEM;
  double *pl = NULL, *scratch = NULL, *dens = NULL, *pix = NULL, *spw = NULL;
  int32_t *parent = NULL;

  double scale = p->pixel_scale;
  if (scale <= 0) {
    double hi = -INFINITY;
    for (size_t i = 0; i < (size_t)C * n; i++) hi = fmax(hi, img[i]);
    scale = hi > 1 ? 1.0 / 255.0 : 1.0;
  }
  int kw = (int)ceil(3 * p->kernel_size), side = 2 * kw + 1;
  pl = xd_malloc(xd_mul_size(3 * n, sizeof *pl));
  pix = xd_malloc(xd_mul_size(3 * n, sizeof *pix));
  scratch = xd_malloc(xd_mul_size(xd_segment_gaussian_scratch(p->sigma, H, W), sizeof *scratch));
  dens = xd_malloc(xd_mul_size(n, sizeof *dens));
  parent = xd_malloc(xd_mul_size(n, sizeof *parent));
  spw = xd_malloc(xd_mul_size((size_t)side * side, sizeof *spw));
  if (!pl || !pix || !scratch || !dens || !parent || !spw) goto done;
  int Cp = xd_segment_prepare(img, C, H, W, 0, scale, p->convert2lab, pl);
  xd_segment_gaussian(pl, Cp, H, W, p->sigma, scratch);
  /* pixel-major copy [H][W][Cp] of the colours × ratio: the window loops read it */
  for (size_t i = 0; i < n; i++)
    for (int c = 0; c < Cp; c++) pix[i * Cp + c] = pl[c * n + i] * p->ratio;

  double inv = -0.5 / (p->kernel_size * p->kernel_size);
  /* exp(a + b) = exp(a)·exp(b): the spatial factor of every window offset once */
  for (int dr = -kw; dr <= kw; dr++)
    for (int dc = -kw; dc <= kw; dc++) spw[(dr + kw) * side + dc + kw] = exp((double)(dr * dr + dc * dc) * inv);

  xd_rng_t rng;
  xd_rng_seed(&rng, p->seed);
  for (size_t i = 0; i < n; i++) dens[i] = 1e-5 * xd_rng_normal(&rng);

  /* 3. densities. The kernel is symmetric, so each pair within the window is evaluated
   * once and added to both pixels: the forward half of the window (same row to the right,
   * then the rows below); the pixel itself adds exp(0) = 1. Half the exp calls of the
   * reference; the sums differ from its order of summation only in the last bits. */
  for (size_t i = 0; i < n; i++) dens[i] += 1.0;
  for (int r = 0; r < H; r++) {
    if ((rc = xd_cancel_check(cancel))) goto stopped;
    int r1 = r + kw + 1 < H ? r + kw + 1 : H;
    for (int c = 0; c < W; c++) {
      int c0 = c - kw > 0 ? c - kw : 0, c1 = c + kw + 1 < W ? c + kw + 1 : W;
      size_t i = (size_t)r * W + c;
      const double *cp = pix + i * Cp;
      double s = 0;
      for (int r_ = r; r_ < r1; r_++) {
        const double *w = spw + (r_ - r + kw) * side + kw - c;
        for (int c_ = r_ == r ? c + 1 : c0; c_ < c1; c_++) {
          size_t j = (size_t)r_ * W + c_;
          const double *q = pix + j * Cp;
          double d = 0;
          for (int ch = 0; ch < Cp; ch++) {
            double t = cp[ch] - q[ch];
            d += t * t;
          }
          double k = exp(d * inv) * w[c_];
          s += k;
          dens[j] += k;
        }
      }
      dens[i] += s;
    }
  }

  /* 4. parents */
  double max_d2 = p->max_dist * p->max_dist;
  for (int r = 0; r < H; r++) {
    if ((rc = xd_cancel_check(cancel))) goto stopped;
    int r0 = r - kw > 0 ? r - kw : 0, r1 = r + kw + 1 < H ? r + kw + 1 : H;
    for (int c = 0; c < W; c++) {
      int c0 = c - kw > 0 ? c - kw : 0, c1 = c + kw + 1 < W ? c + kw + 1 : W;
      size_t i = (size_t)r * W + c;
      const double *cp = pix + i * Cp;
      double here = dens[i], closest = INFINITY;
      int32_t par = (int32_t)i;
      for (int r_ = r0; r_ < r1; r_++)
        for (int c_ = c0; c_ < c1; c_++) {
          size_t j = (size_t)r_ * W + c_;
          if (!(dens[j] > here)) continue;
          double d = (double)(r - r_) * (r - r_) + (double)(c - c_) * (c - c_);
          const double *q = pix + j * Cp;
          for (int ch = 0; ch < Cp; ch++) {
            double t = cp[ch] - q[ch];
            d += t * t;
          }
          if (d < closest) {
            closest = d;
            par = (int32_t)j;
          }
        }
      /* scikit-image compares sqrt(closest) > max_dist; squares compare the same */
      parent[i] = closest <= max_d2 ? par : (int32_t)i;
    }
  }

  /* 5. roots: parents point to strictly denser pixels, so chains end; path halving */
  for (size_t i = 0; i < n; i++) {
    size_t j = i;
    while ((size_t)parent[j] != j) {
      parent[j] = parent[parent[j]];
      j = (size_t)parent[j];
    }
    labels[i] = (int32_t)j;
  }
  int s = xd_segment_relabel(labels, n);
  if (s < 0) goto done;
  *n_segments = s;
  rc = XD_OK;
  goto done;
stopped:
  xd_error_set(err, rc, NULL, "segmentation stopped: %s", xd_strerror(rc));
done:
  if (rc == XD_ENOMEM) xd_error_set(err, rc, NULL, "out of memory while segmenting a %d×%d image", H, W);
  xd_free(pl);
  xd_free(pix);
  xd_free(scratch);
  xd_free(dens);
  xd_free(parent);
  xd_free(spw);
  return rc;
}
