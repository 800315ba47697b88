/* segment.c — what SLIC and quickshift share: parameters and their bounds, colour
 * conversion (scikit-image's rgb2lab), Gaussian smoothing (scipy.ndimage.gaussian_filter),
 * relabelling, the grid method and the entry point. See segment.h. */
#include "core/segment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

const char *const xd_segment_method_names[] = {"quickshift", "slic", "grid"};

void xd_segment_params_default(xd_segment_params_t *p, xd_segment_method_t method) {
  memset(p, 0, sizeof *p);
  p->method = method;
  p->n_segments = 50;
  p->compactness = 10;
  p->max_num_iter = 10;
  p->enforce_connectivity = 1;
  p->min_size_factor = 0.5;
  p->max_size_factor = 3;
  p->ratio = 0.2;
  p->kernel_size = 4;
  p->max_dist = 200;
  p->seed = 0;
  p->sigma = method == XD_SEGMENT_SLIC ? 1 : 0;
  p->convert2lab = 1;
  p->pixel_scale = 0;
  p->size = 4;
}

/* ---- bounds: the one place they are decided -------------------------------------------- */

/* A real-valued parameter inside [lo, hi] (finite); open_lo excludes lo. */
static int in_range(double v, double lo, double hi, int open_lo) {
  return isfinite(v) && (open_lo ? v > lo : v >= lo) && v <= hi;
}

int xd_segment_check(const xd_segment_params_t *p, int C, int H, int W, xd_error_t *err) {
  if (C != 1 && C != 3) return xd_error_set(err, XD_EINVAL, "image", "an image to segment has 1 or 3 channels, not %d", C);
  if (H < 1 || W < 1 || H > XD_SEGMENT_MAX_SIDE || W > XD_SEGMENT_MAX_SIDE)
    return xd_error_set(err, XD_EINVAL, "image", "an image to segment is 1 to %d pixels on each side, not %d×%d",
                        XD_SEGMENT_MAX_SIDE, H, W);
  switch (p->method) {
  case XD_SEGMENT_SLIC:
    /* more segments than pixels is allowed, as in scikit-image: every pixel is a centre */
    if (p->n_segments < 1 || p->n_segments > XD_SEGMENT_MAX_SEGMENTS)
      return xd_error_set(err, XD_EINVAL, "segmentation.n_segments", "n_segments must be between 1 and %d, not %d",
                          XD_SEGMENT_MAX_SEGMENTS, p->n_segments);
    if (!in_range(p->compactness, 0, 1e6, 1))
      return xd_error_set(err, XD_EINVAL, "segmentation.compactness", "compactness must be > 0 and <= 1e6");
    if (p->max_num_iter < 1 || p->max_num_iter > 100)
      return xd_error_set(err, XD_EINVAL, "segmentation.max_num_iter", "max_num_iter must be between 1 and 100");
    if (!in_range(p->min_size_factor, 0, 1, 0))
      return xd_error_set(err, XD_EINVAL, "segmentation.min_size_factor", "min_size_factor must be between 0 and 1");
    if (!in_range(p->max_size_factor, 1, 100, 0))
      return xd_error_set(err, XD_EINVAL, "segmentation.max_size_factor", "max_size_factor must be between 1 and 100");
    break;
  case XD_SEGMENT_QUICKSHIFT:
    if (!in_range(p->ratio, 0, 1, 0))
      return xd_error_set(err, XD_EINVAL, "segmentation.ratio", "ratio must be between 0 and 1");
    if (!in_range(p->kernel_size, 1, 20, 0))
      return xd_error_set(err, XD_EINVAL, "segmentation.kernel_size", "kernel_size must be between 1 and 20 (pixels)");
    if (!in_range(p->max_dist, 0, 1e9, 0))
      return xd_error_set(err, XD_EINVAL, "segmentation.max_dist", "max_dist must be >= 0 and finite");
    if (!in_range(p->pixel_scale, 0, 1e9, 0))
      return xd_error_set(err, XD_EINVAL, "segmentation.pixel_scale", "pixel_scale must be >= 0 (0: automatic)");
    break;
  case XD_SEGMENT_GRID:
    if (p->size < 1 || p->size > (H > W ? H : W))
      return xd_error_set(err, XD_EINVAL, "segmentation.size", "size must be between 1 and %d (the longer side), not %d",
                          H > W ? H : W, p->size);
    return XD_OK;
  default:
    return xd_error_set(err, XD_EINVAL, "segmentation.method", "method must be \"quickshift\", \"slic\" or \"grid\"");
  }
  /* SLIC and quickshift */
  if (!in_range(p->sigma, 0, 50, 0))
    return xd_error_set(err, XD_EINVAL, "segmentation.sigma", "sigma must be between 0 and 50 (pixels)");
  return XD_OK;
}

/* ---- colour ------------------------------------------------------------------------------ */

/* sRGB companding inverse, then XYZ (scikit-image's xyz_from_rgb), then Lab relative to the
 * D65 white (0.95047, 1, 1.08883) with its linear segment below 0.008856. */
static double lab_f(double t) { return t > 0.008856 ? cbrt(t) : 7.787 * t + 16.0 / 116.0; }
static double srgb_lin(double v) { return v > 0.04045 ? pow((v + 0.055) / 1.055, 2.4) : v / 12.92; }

void xd_segment_rgb2lab(const double *rgb, double *lab, size_t n) {
  for (size_t i = 0; i < n; i++) {
    double r = srgb_lin(rgb[i]), g = srgb_lin(rgb[n + i]), b = srgb_lin(rgb[2 * n + i]);
    double x = (0.412453 * r + 0.357580 * g + 0.180423 * b) / 0.95047;
    double y = 0.212671 * r + 0.715160 * g + 0.072169 * b;
    double z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / 1.08883;
    double fx = lab_f(x), fy = lab_f(y), fz = lab_f(z);
    lab[i] = 116.0 * fy - 16.0;
    lab[n + i] = 500.0 * (fx - fy);
    lab[2 * n + i] = 200.0 * (fy - fz);
  }
}

int xd_segment_prepare(const float *img, int C, int H, int W, double offset, double scale, int convert2lab,
                       double *out) {
  size_t n = (size_t)H * W;
  if (convert2lab) {
    for (int c = 0; c < 3; c++)
      for (size_t i = 0; i < n; i++) out[c * n + i] = ((double)img[(C == 3 ? c : 0) * n + i] + offset) * scale;
    xd_segment_rgb2lab(out, out, n);
    return 3;
  }
  for (size_t i = 0; i < (size_t)C * n; i++) out[i] = ((double)img[i] + offset) * scale;
  return C;
}

/* ---- Gaussian smoothing ------------------------------------------------------------------ */

static int gauss_radius(double sigma) { return (int)(4.0 * sigma + 0.5); }

size_t xd_segment_gaussian_scratch(double sigma, int H, int W) {
  if (sigma <= 0) return 1;
  int r = gauss_radius(sigma);
  return (size_t)(H > W ? H : W) + 2 * (size_t)r + 2 * (size_t)r + 1;
}

/* scipy's "reflect": ... c b a | a b c ... | c b a ..., repeated for long kernels. */
static int reflect(int i, int n) {
  int p = 2 * n;
  i %= p;
  if (i < 0) i += p;
  return i < n ? i : p - 1 - i;
}

/* One line of n values at x[0], x[stride], ... correlated with k[-r..r] (pad: n + 2r). */
static void smooth_line(double *x, ptrdiff_t stride, int n, const double *k, int r, double *pad) {
  for (int i = -r; i < n + r; i++) pad[i + r] = x[reflect(i, n) * stride];
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int j = -r; j <= r; j++) s += k[j] * pad[i + r + j];
    x[i * stride] = s;
  }
}

void xd_segment_gaussian(double *planes, int C, int H, int W, double sigma, double *scratch) {
  if (sigma <= 0) return;
  int r = gauss_radius(sigma);
  double *k = scratch + r, *pad = scratch + 2 * r + 1, sum = 0;
  for (int j = -r; j <= r; j++) sum += k[j] = exp(-0.5 / (sigma * sigma) * (double)j * j);
  for (int j = -r; j <= r; j++) k[j] /= sum;
  /* scipy filters axis by axis in order: rows (axis 0, along H) first, then columns */
  for (int c = 0; c < C; c++) {
    double *pl = planes + (size_t)c * H * W;
    for (int x = 0; x < W; x++) smooth_line(pl + x, W, H, k, r, pad);
    for (int y = 0; y < H; y++) smooth_line(pl + (size_t)y * W, 1, W, k, r, pad);
  }
}

/* ---- labels ------------------------------------------------------------------------------ */

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

int xd_segment_relabel(int32_t *labels, size_t n) {
  if (n == 0) return 0;
  int32_t *sorted = xd_malloc(xd_mul_size(n, sizeof *sorted));
  if (!sorted) return -1;
  memcpy(sorted, labels, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, cmp_i32);
  size_t u = 1;
  for (size_t i = 1; i < n; i++)
    if (sorted[i] != sorted[u - 1]) sorted[u++] = sorted[i];
  for (size_t i = 0; i < n; i++) {
    size_t lo = 0, hi = u; /* binary search: labels[i] is among sorted[0..u) */
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      if (sorted[mid] <= labels[i]) lo = mid;
      else hi = mid;
    }
    labels[i] = (int32_t)lo;
  }
  xd_free(sorted);
  return (int)u;
}

void xd_segment_grid(int size, int H, int W, int32_t *labels, int *n_segments) {
  int cols = (W + size - 1) / size, rows = (H + size - 1) / size;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) labels[(size_t)y * W + x] = (y / size) * cols + x / size;
  *n_segments = rows * cols;
}

int xd_segment_image(const xd_segment_params_t *p, const float *img, int C, int H, int W, int32_t *labels,
                     int *n_segments, const xd_cancel_t *cancel, xd_error_t *err) {
  int rc = xd_segment_check(p, C, H, W, err);
  if (rc) return rc;
  if (p->method == XD_SEGMENT_GRID) {
    xd_segment_grid(p->size, H, W, labels, n_segments);
    return XD_OK;
  }
  size_t n = (size_t)C * H * W;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(img[i]))
      return xd_error_set(err, XD_EINVAL, "image", "pixel values must be finite (element %zu is not)", i);
  if (p->method == XD_SEGMENT_SLIC) return xd_segment_slic(p, img, C, H, W, labels, n_segments, cancel, err);
  return xd_segment_quickshift(p, img, C, H, W, labels, n_segments, cancel, err);
}
