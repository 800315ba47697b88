/* render.h — heatmaps and segment outlines as pictures: RGB8 buffers for image explanations.
 *
 * Everything here writes `uint8_t rgb[H][W][3]` (row-major, 3 bytes per pixel, sRGB), the
 * layout a PNG encoder takes as 8-bit RGB rows; this module encodes nothing itself.
 *   - colour maps (render_cmap.c, generated from matplotlib by tools/make_colormaps.py):
 *     viridis (perceptually uniform, sequential) for unsigned maps over [min, max];
 *     coolwarm (Moreland's diverging blue - neutral gray - red, even lightness steps) for
 *     signed attributions over the symmetric range [-m, m], m = max |value|, so that 0 is
 *     the neutral centre. A value t in [0, 1] takes entry min(floor(t·256), 255), as
 *     matplotlib's Colormap does with floats.
 *   - the instance image back in display range from model-input space: pixel p became
 *     x = (p·scale − mean[c]) / std[c]; shown is 255·(x·std[c] + mean[c]) = 255·p·scale,
 *     clamped to 0..255 (so p·scale is taken to span [0, 1], the convention of scale = 1/255
 *     for 8-bit pixels); one channel is shown as gray.
 *   - the heat colour alpha-blended over that image: out = (1 − alpha)·image + alpha·colour.
 *   - lime's picture of a LIME explanation: the N segments with the largest positive
 *     weights (lime's get_image_and_mask(positive_only=True, num_features=N)) outlined in
 *     yellow the way scikit-image's mark_boundaries(image, mask) does: the pixels of
 *     find_boundaries(mask, mode="outer") — the background pixels next to a chosen segment,
 *     and, through scipy's int64 rounding (render.c), chosen pixels beside background runs.
 *   - a legend strip under the picture: the colour bar over the width, and black tick marks
 *     below it at the columns of min, 0 (when inside the range) and max. No text: the JSON
 *     answer carries the numbers (xd_render_legend_t).
 * Thread-safe: no global state, no allocation except where said.
 */
#ifndef XD_RENDER_H
#define XD_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum xd_render_cmap {
  XD_RENDER_VIRIDIS = 0,
  XD_RENDER_COOLWARM = 1
} xd_render_cmap_t;

/* The tables, sRGB in [0, 1] (render_cmap.c). */
extern const float xd_render_viridis[256][3];
extern const float xd_render_coolwarm[256][3];

/* The colour of t (clamped to [0, 1]; NaN as 0) in cmap, rounded to 8 bits. */
void xd_render_color(xd_render_cmap_t cmap, double t, uint8_t rgb[3]);

/* Model input x [C][H][W] (C = 1 or 3) -> rgb [H][W][3] display image (see above).
 * mean and std have C entries (NULL: 0 and 1); scale > 0. */
void xd_render_display(const float *x, int C, int H, int W, double scale, const double *mean, const double *std,
                       uint8_t *rgb);

typedef struct xd_render_legend {
  double lo, hi;     /* the value range of the colour map */
  int height;        /* rows of the strip under the picture (0: no legend) */
  int x_lo, x_hi;    /* tick columns of lo and hi (0 and W − 1) */
  int x_zero;        /* tick column of 0, or -1 when 0 is outside [lo, hi] */
} xd_render_legend_t;

typedef struct xd_render_options {
  int signed_map;    /* 1: coolwarm over [-m, m]; 0: viridis over [min, max] */
  double alpha;      /* heat opacity over the image, 0..1 */
  int legend;        /* 1: add the legend strip */
} xd_render_options_t;

/* Rows of the legend strip for a picture H high: clamp(H / 6, 8, 32). */
int xd_render_legend_height(int H);

/* Heatmap heat [H][W] (finite values) over base [H][W][3] (NULL: over black, alpha then
 * ignored: pure colours) -> out [H + legend rows][W][3] (caller-owned; size it with
 * xd_render_legend_height when o->legend). Fills *legend (may be NULL).
 * Returns XD_OK or XD_EINVAL (field "heatmap" for a non-finite value, "alpha"). */
int xd_render_heatmap(const xd_render_options_t *o, const float *heat, int H, int W, const uint8_t *base,
                      uint8_t *out, xd_render_legend_t *legend, xd_error_t *err);

/* scikit-image's find_boundaries(labels, mode="outer", background=background,
 * connectivity=1) of an int64 label array, scipy's int64 rounding included (render.c)
 * -> out [H][W] of 0/1. */
void xd_render_find_boundaries_outer(const int32_t *labels, int H, int W, int32_t background, uint8_t *out);

/* Bytes of scratch xd_render_outline_top needs: 6·H·W. */
size_t xd_render_outline_scratch(int H, int W);

/* Outlines in rgb [H][W][3] (in place) the n_top segments of segments [H][W] (labels
 * 0..S-1, S <= H·W) with the largest positive weights[S], in colour (NULL: yellow
 * 255,255,0), as mark_boundaries(rgb, mask) with mask = 1 on those segments. Ties keep the
 * lower label. scratch: xd_render_outline_scratch bytes, aligned for int32 (malloc'd).
 * Returns the number of segments outlined. */
int xd_render_outline_top(uint8_t *rgb, int H, int W, const int32_t *segments, int S, const double *weights, int n_top,
                          const uint8_t color[3], void *scratch);

#endif
