/* test_render.c — heatmap pictures (core/render.h): colour map endpoints (viridis's
 * published ends, coolwarm's blue and red), the signed map's neutral centre at 0 with a
 * symmetric range, alpha blending, the display image from model-input space, the legend
 * strip's bar and ticks, and outlines equal to scikit-image's find_boundaries(mode="outer")
 * on the fixtures of tests/golden/segment/ (written by tools/make_segment_fixtures.py):
 * both on full label maps and on lime's 0/1 mask of chosen segments. Run from the
 * repository root. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/render.h"
#include "tests/test.h"

#define DIR "tests/golden/segment/"

static int32_t *read_labels(const char *path, int *H, int *W) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  int32_t *lab = NULL;
  if (fscanf(f, "%d %d", H, W) == 2 && *H > 0 && *W > 0) {
    size_t n = (size_t)*H * *W;
    lab = malloc(n * sizeof *lab);
    for (size_t i = 0; lab && i < n; i++)
      if (fscanf(f, "%d", &lab[i]) != 1) {
        free(lab);
        lab = NULL;
      }
  }
  fclose(f);
  return lab;
}

static int same_rgb(const uint8_t *a, int r, int g, int b) { return a[0] == r && a[1] == g && a[2] == b; }

TEST(colormap_endpoints) {
  uint8_t c[3];
  xd_render_color(XD_RENDER_VIRIDIS, 0, c);
  CHECK(same_rgb(c, 68, 1, 84)); /* #440154 */
  xd_render_color(XD_RENDER_VIRIDIS, 1, c);
  CHECK(same_rgb(c, 253, 231, 37)); /* #fde725 */
  xd_render_color(XD_RENDER_VIRIDIS, -3, c);
  CHECK(same_rgb(c, 68, 1, 84));
  xd_render_color(XD_RENDER_VIRIDIS, NAN, c);
  CHECK(same_rgb(c, 68, 1, 84));
  xd_render_color(XD_RENDER_VIRIDIS, 7, c);
  CHECK(same_rgb(c, 253, 231, 37));
  xd_render_color(XD_RENDER_COOLWARM, 0, c);
  CHECK(same_rgb(c, 59, 76, 192)); /* Moreland's cool end */
  xd_render_color(XD_RENDER_COOLWARM, 1, c);
  CHECK(same_rgb(c, 180, 4, 38)); /* and warm end */
  /* viridis lightness (Rec. 709 luma as a proxy) rises monotonically */
  double prev = -1;
  for (int i = 0; i < 256; i++) {
    const float *v = xd_render_viridis[i];
    double y = 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
    CHECK(y > prev);
    prev = y;
  }
}

TEST(signed_map_is_centred_and_symmetric) {
  /* values -1 .. 3: the range is [-3, 3], so 0 is the centre and -1 is a light blue */
  float heat[5] = {-1, 0, 1, 2, 3};
  uint8_t out[5 * 3];
  xd_render_options_t o = {1, 0.5, 0};
  xd_render_legend_t lg;
  CHECK(xd_render_heatmap(&o, heat, 1, 5, NULL, out, &lg, NULL) == XD_OK);
  CHECK(lg.lo == -3 && lg.hi == 3 && lg.x_zero == 2);
  const uint8_t *z = out + 3; /* value 0: neutral (gray), the lightest colour of the map */
  CHECK(abs(z[0] - z[1]) <= 2 && abs(z[1] - z[2]) <= 2 && z[0] > 200);
  for (int i = 0; i < 256; i++) {
    const float *v = xd_render_coolwarm[i];
    CHECK(0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2] <= (0.2126 * z[0] + 0.7152 * z[1] + 0.0722 * z[2]) / 255 + 0.01);
  }
  uint8_t c[3];
  xd_render_color(XD_RENDER_COOLWARM, 1.0, c);
  CHECK(same_rgb(out + 12, c[0], c[1], c[2])); /* +3 is the warm end */
  CHECK(out[0] < out[2]);                       /* -1 is on the blue side */
  /* an all-zero map is all centre */
  float zero[4] = {0, 0, 0, 0};
  uint8_t o2[12];
  CHECK(xd_render_heatmap(&o, zero, 2, 2, NULL, o2, &lg, NULL) == XD_OK);
  CHECK(same_rgb(o2, z[0], z[1], z[2]) && same_rgb(o2 + 9, z[0], z[1], z[2]));
}

TEST(unsigned_map_spans_min_to_max) {
  float heat[4] = {2, 4, 6, 10};
  uint8_t out[12];
  xd_render_options_t o = {0, 0.5, 0};
  xd_render_legend_t lg;
  CHECK(xd_render_heatmap(&o, heat, 2, 2, NULL, out, &lg, NULL) == XD_OK);
  CHECK(lg.lo == 2 && lg.hi == 10 && lg.x_zero == -1);
  CHECK(same_rgb(out, 68, 1, 84) && same_rgb(out + 9, 253, 231, 37));
  float bad[4] = {0, NAN, 0, 0};
  xd_error_t err;
  CHECK(xd_render_heatmap(&o, bad, 2, 2, NULL, out, &lg, &err) == XD_EINVAL && strcmp(err.field, "heatmap") == 0);
  o.alpha = 2;
  CHECK(xd_render_heatmap(&o, heat, 2, 2, NULL, out, &lg, &err) == XD_EINVAL && strcmp(err.field, "alpha") == 0);
}

TEST(alpha_blending_over_the_display_image) {
  /* a 2x2 RGB image normalised with mean/std, back to display range */
  const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225}, scale = 1.0 / 255;
  const int pix[4][3] = {{0, 0, 0}, {255, 255, 255}, {10, 128, 200}, {77, 3, 250}};
  float x[3 * 4];
  for (int i = 0; i < 4; i++)
    for (int c = 0; c < 3; c++) x[c * 4 + i] = (float)((pix[i][c] * scale - mean[c]) / std[c]);
  uint8_t base[12], out[12];
  xd_render_display(x, 3, 2, 2, scale, mean, std, base);
  for (int i = 0; i < 4; i++)
    for (int c = 0; c < 3; c++) CHECK(base[i * 3 + c] == pix[i][c]);
  float heat[4] = {0, 1, 2, 3};
  xd_render_options_t o = {0, 0, 0};
  CHECK(xd_render_heatmap(&o, heat, 2, 2, base, out, NULL, NULL) == XD_OK);
  CHECK(memcmp(out, base, 12) == 0); /* alpha 0: the image */
  o.alpha = 1;
  CHECK(xd_render_heatmap(&o, heat, 2, 2, base, out, NULL, NULL) == XD_OK);
  CHECK(same_rgb(out, 68, 1, 84) && same_rgb(out + 9, 253, 231, 37)); /* alpha 1: the colours */
  o.alpha = 0.5;
  CHECK(xd_render_heatmap(&o, heat, 2, 2, base, out, NULL, NULL) == XD_OK);
  uint8_t c[3];
  xd_render_color(XD_RENDER_VIRIDIS, 1.0 / 3, c);
  for (int k = 0; k < 3; k++) CHECK(out[3 + k] == (uint8_t)round(0.5 * 255 + 0.5 * c[k]));
  /* one channel is gray */
  float g[1] = {0.5f};
  uint8_t gb[3];
  xd_render_display(g, 1, 1, 1, 1, NULL, NULL, gb);
  CHECK(same_rgb(gb, 128, 128, 128));
}

TEST(legend_strip_bar_and_ticks) {
  int H = 60, W = 41, L = xd_render_legend_height(H);
  CHECK(L == 10);
  CHECK(xd_render_legend_height(20) == 8 && xd_render_legend_height(1000) == 32);
  float *heat = malloc((size_t)H * W * sizeof *heat);
  for (int i = 0; i < H * W; i++) heat[i] = (float)(i % 7) - 2; /* -2 .. 4: range [-4, 4] */
  uint8_t *out = malloc((size_t)(H + L) * W * 3);
  xd_render_options_t o = {1, 0.5, 1};
  xd_render_legend_t lg;
  CHECK(xd_render_heatmap(&o, heat, H, W, NULL, out, &lg, NULL) == XD_OK);
  CHECK(lg.height == L && lg.lo == -4 && lg.hi == 4 && lg.x_lo == 0 && lg.x_hi == W - 1 && lg.x_zero == 20);
  const uint8_t *s = out + (size_t)H * W * 3;
  uint8_t c0[3], c1[3];
  xd_render_color(XD_RENDER_COOLWARM, 0, c0);
  xd_render_color(XD_RENDER_COOLWARM, 1, c1);
  CHECK(same_rgb(s, 255, 255, 255));                                  /* gap row */
  CHECK(same_rgb(s + ((size_t)3 * W + 0) * 3, c0[0], c0[1], c0[2]));  /* bar starts at the cool end */
  CHECK(same_rgb(s + ((size_t)3 * W + W - 1) * 3, c1[0], c1[1], c1[2]));
  int tick_row = L - 1, ticks = 0;
  for (int x = 0; x < W; x++) {
    const uint8_t *p = s + ((size_t)tick_row * W + x) * 3;
    if (same_rgb(p, 0, 0, 0)) {
      ticks++;
      CHECK(x == 0 || x == 20 || x == W - 1);
    } else {
      CHECK(same_rgb(p, 255, 255, 255));
    }
  }
  CHECK(ticks == 3);
  free(heat);
  free(out);
}

/* Outlines against scikit-image: the "outer" and "outer_mask" lines of cases.txt. */
TEST(outlines_equal_find_boundaries_outer) {
  FILE *f = fopen(DIR "cases.txt", "r");
  CHECK(f != NULL);
  if (!f) return;
  char line[512], lab_file[160], bnd_file[160], chosen[128], path[320];
  int cases = 0;
  while (fgets(line, sizeof line, f)) {
    int mask_case = strncmp(line, "outer_mask ", 11) == 0;
    if (mask_case ? sscanf(line, "%*s %159s %127s %159s", lab_file, chosen, bnd_file) != 3
                  : (strncmp(line, "outer ", 6) != 0 || sscanf(line, "%*s %159s %159s", lab_file, bnd_file) != 2))
      continue;
    int H, W, h2, w2;
    snprintf(path, sizeof path, DIR "%s", lab_file);
    int32_t *lab = read_labels(path, &H, &W);
    snprintf(path, sizeof path, DIR "%s", bnd_file);
    int32_t *ref = read_labels(path, &h2, &w2);
    CHECK(lab && ref && H == h2 && W == w2);
    if (!lab || !ref || H != h2 || W != w2) {
      free(lab);
      free(ref);
      continue;
    }
    size_t n = (size_t)H * W;
    uint8_t *b = malloc(n), *rgb = malloc(n * 3), *scratch = malloc(xd_render_outline_scratch(H, W));
    int S = 0, mismatch = 0;
    for (size_t i = 0; i < n; i++)
      if (lab[i] + 1 > S) S = lab[i] + 1;
    if (!mask_case) {
      xd_render_find_boundaries_outer(lab, H, W, 0, b);
    } else {
      /* weights that choose exactly the listed segments as the 5 strongest positive ones */
      double *w = calloc(S, sizeof *w);
      for (int s = 0; s < S; s++) w[s] = -0.001 * s; /* negative: never outlined */
      int k = 0;
      for (char *t = strtok(chosen, ","); t; t = strtok(NULL, ","), k++)
        if (atoi(t) < S) w[atoi(t)] = 1.0 + k;
      memset(rgb, 90, n * 3);
      CHECK(xd_render_outline_top(rgb, H, W, lab, S, w, 5, NULL, scratch) == 5);
      for (size_t i = 0; i < n; i++) {
        b[i] = same_rgb(rgb + i * 3, 255, 255, 0);
        if (!b[i]) CHECK(same_rgb(rgb + i * 3, 90, 90, 90));
      }
      free(w);
    }
    for (size_t i = 0; i < n; i++) mismatch += b[i] != (ref[i] != 0);
    CHECK_MSG(mismatch == 0, "%s: %d pixels differ", bnd_file, mismatch);
    cases++;
    free(b);
    free(rgb);
    free(scratch);
    free(lab);
    free(ref);
  }
  fclose(f);
  CHECK(cases >= 10);
}

TEST(outline_top_picks_positive_weights) {
  int32_t seg[4 * 4] = {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3};
  double w[4] = {-5, 0.1, 0.3, 0};
  uint8_t rgb[16 * 3];
  int32_t scratch[16 * 2];
  memset(rgb, 0, sizeof rgb);
  CHECK(xd_render_outline_top(rgb, 4, 4, seg, 4, w, 5, NULL, scratch) == 2); /* only two positive */
  memset(rgb, 0, sizeof rgb);
  CHECK(xd_render_outline_top(rgb, 4, 4, seg, 4, w, 1, (const uint8_t[3]){1, 2, 3}, scratch) == 1);
  /* segment 2 (bottom-left) chosen: find_boundaries(mask, mode="outer") of the int64 mask
   * is row 1 cols 0-1 and col 2 rows 2-3 (the background ring), plus col 1 rows 2-3 (scipy's
   * int64 rounding next to the all-background columns 2-3) */
  for (int i = 0; i < 16; i++) {
    int y = i / 4, x = i % 4, on = (y == 1 && x < 2) || ((x == 1 || x == 2) && y >= 2);
    CHECK(same_rgb(rgb + i * 3, on ? 1 : 0, on ? 2 : 0, on ? 3 : 0));
  }
}

int main(void) {
  RUN(colormap_endpoints);
  RUN(signed_map_is_centred_and_symmetric);
  RUN(unsigned_map_spans_min_to_max);
  RUN(alpha_blending_over_the_display_image);
  RUN(legend_strip_bar_and_ticks);
  RUN(outlines_equal_find_boundaries_outer);
  RUN(outline_top_picks_positive_weights);
  return TEST_REPORT();
}
