/* segment.h — superpixel segmentation of one image: SLIC, quickshift and a square grid.
 *
 * The building block of image explanations over segments (LIME and Kernel SHAP on
 * superpixels). Behaviour of scikit-image 0.19 (docs/segmentation.md; docs/algorithms.md
 * §12):
 *   - SLIC (segment_slic.c): min-max rescale of the whole image to [0, 1], RGB -> CIELAB,
 *     Gaussian smoothing (sigma, truncate 4, "reflect" borders), scikit-image's regular
 *     grid of initial centres, max_num_iter rounds of k-means in a window of ±2 grid steps,
 *     distance d_colour² + (d_space / step)² with colours divided by compactness, then the
 *     connectivity pass that merges components under min_size_factor·H·W/n_centres into a
 *     neighbour and splits those above max_size_factor·H·W/n_centres; labels start at 0.
 *   - quickshift (segment_quickshift.c): pixel values times pixel_scale taken as RGB in
 *     [0, 1], -> CIELAB, smoothing, colour × ratio; Parzen density with a Gaussian of std
 *     kernel_size over (row, col, colour) in a window of ceil(3·kernel_size); each pixel
 *     links to the nearest pixel of higher density; links longer than max_dist are cut;
 *     each tree is a segment. Densities get N(0, 1e-5²) noise from an xd_rng_t seeded
 *     with `seed` to break ties, as scikit-image does with numpy's generator: labels equal
 *     scikit-image's closely (adjusted Rand index), not exactly.
 *   - grid: squares of `size` pixels labelled row-major (the last row/column of squares
 *     may be narrower).
 * Images are float `[C][H][W]` (C = 1 or 3) in the image's own pixel range; a one-channel
 * image is segmented as lime segments it (it calls gray2rgb first): the gray value taken
 * as R = G = B. Every result is a label map int32 `[H][W]` with labels 0..S-1, no gaps.
 * Thread-safe: no global state; every call allocates its own scratch.
 */
#ifndef XD_SEGMENT_H
#define XD_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum xd_segment_method {
  XD_SEGMENT_QUICKSHIFT = 0,
  XD_SEGMENT_SLIC = 1,
  XD_SEGMENT_GRID = 2
} xd_segment_method_t;

/* Names as the API spells them ("quickshift", "slic", "grid"), index = enum value. */
extern const char *const xd_segment_method_names[];

/* Bounds checked by xd_segment_check (one table of limits, in segment.c). */
#define XD_SEGMENT_MAX_SIDE 2048        /* H and W */
#define XD_SEGMENT_MAX_SEGMENTS 1000000 /* SLIC n_segments */

typedef struct xd_segment_params {
  xd_segment_method_t method;
  /* SLIC */
  int n_segments;          /* approximate number of segments, 1..XD_SEGMENT_MAX_SEGMENTS */
  double compactness;      /* > 0: colour distances are divided by it */
  int max_num_iter;        /* k-means rounds, 1..100 */
  int enforce_connectivity;/* 1: the connectivity pass (scikit-image's default) */
  double min_size_factor;  /* 0..1 */
  double max_size_factor;  /* >= 1 */
  /* quickshift */
  double ratio;            /* 0..1, weight of colour against position */
  double kernel_size;      /* 1..20, std of the density kernel in pixels */
  double max_dist;         /* >= 0, longest link kept */
  uint64_t seed;           /* tie-breaking noise */
  /* SLIC and quickshift */
  double sigma;            /* >= 0, Gaussian pre-smoothing in pixels; 0: none */
  int convert2lab;         /* 1: RGB (or gray as RGB) -> CIELAB first (default) */
  double pixel_scale;      /* quickshift: value·pixel_scale in [0,1] is RGB; 0: 1/255 when
                              the image's maximum exceeds 1, else 1 (scikit-image's
                              img_as_float of 8-bit and of [0,1] float images). SLIC rescales
                              min..max to 0..1 itself, as scikit-image does. */
  /* grid */
  int size;                /* square side in pixels, 1..max(H, W) */
} xd_segment_params_t;

/* Fills p with explaind's defaults for `method` (API.md's /explain/lime on images):
 * quickshift kernel_size 4, max_dist 200, ratio 0.2, sigma 0 (lime's); slic n_segments 50,
 * compactness 10, sigma 1, max_num_iter 10, connectivity with factors 0.5 and 3; grid 4. */
void xd_segment_params_default(xd_segment_params_t *p, xd_segment_method_t method);

/* Checks p against the bounds for a C×H×W image; fills err with the field path
 * ("segmentation.n_segments", "image") and what would be valid. Cheap, no allocation. */
int xd_segment_check(const xd_segment_params_t *p, int C, int H, int W, xd_error_t *err);

/* Segments img [C][H][W] (finite values) into labels [H][W] (caller-owned), labels 0..S-1
 * with S stored in *n_segments. Runs xd_segment_check first. cancel may be NULL.
 * Returns XD_OK, XD_EINVAL, XD_ENOMEM, XD_ECANCELED or XD_ETIMEDOUT. */
int xd_segment_image(const xd_segment_params_t *p, const float *img, int C, int H, int W, int32_t *labels,
                     int *n_segments, const xd_cancel_t *cancel, xd_error_t *err);

/* The methods alone (no checks; xd_segment_image is the entry point). */
int xd_segment_slic(const xd_segment_params_t *p, const float *img, int C, int H, int W, int32_t *labels,
                    int *n_segments, const xd_cancel_t *cancel, xd_error_t *err);
int xd_segment_quickshift(const xd_segment_params_t *p, const float *img, int C, int H, int W, int32_t *labels,
                          int *n_segments, const xd_cancel_t *cancel, xd_error_t *err);
void xd_segment_grid(int size, int H, int W, int32_t *labels, int *n_segments);

/* ---- shared steps (exported for the two methods and the tests) ---- */

/* Renumbers labels[0..n-1] (any int32 values) to 0..S-1 keeping their order (numpy's
 * unique(..., return_inverse=True)); returns S, or -1 when out of memory. */
int xd_segment_relabel(int32_t *labels, size_t n);

/* sRGB in [0,1] -> CIELAB (D65, 2° observer), scikit-image's rgb2lab constants.
 * rgb and lab are [3][n] planes; they may be the same buffer. */
void xd_segment_rgb2lab(const double *rgb, double *lab, size_t n);

/* In-place Gaussian smoothing of each of C planes [H][W] with std sigma along rows and
 * columns: scipy.ndimage.gaussian_filter with truncate 4 and mode "reflect" (a b c | c b a).
 * scratch holds max(H, W) + 2·radius doubles + the kernel (xd_segment_gaussian_scratch).
 * sigma <= 0 leaves the planes unchanged. */
size_t xd_segment_gaussian_scratch(double sigma, int H, int W);
void xd_segment_gaussian(double *planes, int C, int H, int W, double sigma, double *scratch);

/* The colour planes both methods start from: img [C][H][W] -> out [Cout][H][W] doubles
 * (Cout = 3 with Lab conversion, else C), values (v + offset)·scale. Lab conversion treats
 * a one-channel image as gray RGB. out holds 3·H·W doubles. Returns Cout. */
int xd_segment_prepare(const float *img, int C, int H, int W, double offset, double scale, int convert2lab,
                       double *out);

#endif
