/* render.c — heatmap overlays, lime-style outlines and the legend strip. See render.h. */
#include "core/render.h"

#include <math.h>
#include <string.h>

/* ---- colours ------------------------------------------------------------------------------ */

static uint8_t to8(double v) {
  v = round(v * 255.0);
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void xd_render_color(xd_render_cmap_t cmap, double t, uint8_t rgb[3]) {
  const float(*tab)[3] = cmap == XD_RENDER_COOLWARM ? xd_render_coolwarm : xd_render_viridis;
  if (!(t > 0)) t = 0; /* NaN too */
  int i = (int)(t * 256.0);
  if (i > 255) i = 255;
  for (int c = 0; c < 3; c++) rgb[c] = to8(tab[i][c]);
}

void xd_render_display(const float *x, int C, int H, int W, double scale, const double *mean, const double *std,
                       uint8_t *rgb) {
  size_t n = (size_t)H * W;
  (void)scale; /* 255·p·scale = 255·(x·std + mean): scale cancels; kept in the contract */
  for (size_t i = 0; i < n; i++)
    for (int c = 0; c < 3; c++) {
      int k = C == 3 ? c : 0;
      double v = (double)x[k * n + i] * (std ? std[k] : 1.0) + (mean ? mean[k] : 0.0);
      rgb[i * 3 + c] = to8(v);
    }
}

/* ---- heatmap and legend ------------------------------------------------------------------- */

int xd_render_legend_height(int H) {
  int h = H / 6;
  return h < 8 ? 8 : h > 32 ? 32 : h;
}

/* t of value v in [lo, hi] (the centre when the range is empty). */
static double position(double v, double lo, double hi) { return hi > lo ? (v - lo) / (hi - lo) : 0.5; }

int xd_render_heatmap(const xd_render_options_t *o, const float *heat, int H, int W, const uint8_t *base,
                      uint8_t *out, xd_render_legend_t *legend, xd_error_t *err) {
  size_t n = (size_t)H * W;
  if (!(o->alpha >= 0 && o->alpha <= 1)) return xd_error_set(err, XD_EINVAL, "alpha", "alpha must be between 0 and 1");
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(heat[i]))
      return xd_error_set(err, XD_EINVAL, "heatmap", "heatmap values must be finite (element %zu is not)", i);
    lo = fmin(lo, heat[i]);
    hi = fmax(hi, heat[i]);
  }
  if (o->signed_map) { /* symmetric, so that 0 is the neutral centre */
    double m = fmax(fabs(lo), fabs(hi));
    lo = -m, hi = m;
  }
  xd_render_cmap_t cm = o->signed_map ? XD_RENDER_COOLWARM : XD_RENDER_VIRIDIS;
  double a = base ? o->alpha : 1.0;
  for (size_t i = 0; i < n; i++) {
    uint8_t col[3];
    xd_render_color(cm, position(heat[i], lo, hi), col);
    for (int c = 0; c < 3; c++) {
      double b = base ? base[i * 3 + c] : 0;
      double v = round((1 - a) * b + a * col[c]);
      out[i * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
  xd_render_legend_t lg = {lo, hi, 0, 0, W - 1, -1};
  if (lo <= 0 && 0 <= hi) lg.x_zero = (int)lround(position(0, lo, hi) * (W - 1));
  if (o->legend) {
    /* rows: 2 white, the bar, 3 rows of ticks (black on white) */
    int L = xd_render_legend_height(H), bar_end = L - 3;
    lg.height = L;
    uint8_t *s = out + n * 3;
    memset(s, 255, (size_t)L * W * 3);
    for (int x = 0; x < W; x++) {
      uint8_t col[3];
      xd_render_color(cm, W > 1 ? (double)x / (W - 1) : 0.5, col);
      for (int y = 2; y < bar_end; y++) memcpy(s + ((size_t)y * W + x) * 3, col, 3);
    }
    int ticks[3] = {lg.x_lo, lg.x_hi, lg.x_zero};
    for (int t = 0; t < 3; t++) {
      if (ticks[t] < 0) continue;
      for (int y = bar_end; y < L; y++) memset(s + ((size_t)y * W + ticks[t]) * 3, 0, 3);
    }
  }
  if (legend) *legend = lg;
  return XD_OK;
}

/* ---- outlines ------------------------------------------------------------------------------ */

/* find_boundaries, mode "outer", with labels held as int64 (what slic and quickshift
 * return, and the dtype of lime's mask): a pixel is a boundary when its 4-neighbourhood
 * (itself included) holds two labels — dilation != erosion with the cross — and it is
 * background, or it is not and dilation(labels) != erosion(labels with background =
 * INT64_MAX) over the 3×3 square. scipy erodes the square separably, rows (axis 0) then
 * columns, and each 1-D minimum goes through double: INT64_MAX comes back as INT64_MIN.
 * So the second erosion is "minus infinity" wherever one of the three columns has a
 * vertical 3-window all background, which also marks chosen pixels beside such runs.
 * Reproduced on purpose: the outlines then equal what lime's users see. Neighbours outside
 * the image repeat the edge pixel (scipy's "reflect" for a 3-window). */
void xd_render_find_boundaries_outer(const int32_t *labels, int H, int W, int32_t background, uint8_t *out) {
#define L(yy, xx) labels[(size_t)(yy) * W + (xx)]
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      int32_t v = L(y, x), mx4 = v, mn4 = v, mx8 = v;
      int minus_inf = 0;      /* the erosion came back as INT64_MIN */
      int32_t mn8 = INT32_MAX; /* else the smallest object label in the square */
      for (int dx = -1; dx <= 1; dx++) {
        int xx = x + dx < 0 ? 0 : x + dx >= W ? W - 1 : x + dx;
        int all_bg = 1;
        for (int dy = -1; dy <= 1; dy++) {
          int yy = y + dy < 0 ? 0 : y + dy >= H ? H - 1 : y + dy;
          int32_t u = L(yy, xx);
          if (dy == 0 || dx == 0) {
            if (u > mx4) mx4 = u;
            if (u < mn4) mn4 = u;
          }
          if (u > mx8) mx8 = u;
          if (u != background) {
            all_bg = 0;
            if (u < mn8) mn8 = u;
          }
        }
        if (all_bg) minus_inf = 1;
      }
      int bg = v == background;
      int adjacent_objects = !bg && (minus_inf || mx8 != mn8);
      out[(size_t)y * W + x] = mx4 != mn4 && (bg || adjacent_objects);
    }
#undef L
}

size_t xd_render_outline_scratch(int H, int W) { return (size_t)H * W * (sizeof(int32_t) + 2); }

int xd_render_outline_top(uint8_t *rgb, int H, int W, const int32_t *segments, int S, const double *weights, int n_top,
                          const uint8_t color[3], void *scratch) {
  static const uint8_t yellow[3] = {255, 255, 0};
  size_t n = (size_t)H * W;
  int32_t *mask = scratch;
  uint8_t *bnd = (uint8_t *)(mask + n), *chosen = bnd + n; /* chosen: one byte per label, S <= H·W */
  memset(chosen, 0, (size_t)S);
  int k = 0;
  /* the n_top largest positive weights, by repeated selection (n_top is small) */
  for (; k < n_top; k++) {
    int best = -1;
    for (int s = 0; s < S; s++)
      if (!chosen[s] && weights[s] > 0 && (best < 0 || weights[s] > weights[best])) best = s;
    if (best < 0) break;
    chosen[best] = 1;
  }
  for (size_t i = 0; i < n; i++) mask[i] = chosen[segments[i]];
  xd_render_find_boundaries_outer(mask, H, W, 0, bnd);
  const uint8_t *col = color ? color : yellow;
  for (size_t i = 0; i < n; i++)
    if (bnd[i]) memcpy(rgb + i * 3, col, 3);
  return k;
}
