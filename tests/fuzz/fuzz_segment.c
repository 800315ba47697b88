/* fuzz_segment.c — superpixel segmentation and the heatmap pictures (core/segment.h,
 * core/render.h) on small images with arbitrary parameters. Layout of an input: byte 0
 * method, 1 channels (odd: 3, even: 1), 2-3 height and width (1..24), 4-12 parameters
 * (n_segments, compactness, sigma, kernel_size, max_dist, ratio, size, flags, pixel
 * scale; out-of-range values must give XD_EINVAL naming a field), then pixel bytes (reused
 * cyclically; with flag bit 7 a byte 255 is a NaN). A segmentation that succeeds must give
 * labels 0..S-1; then a heatmap with a legend and lime's outlines are drawn over it.
 * Seeds in tests/fuzz/corpus/segment/. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/render.h"
#include "core/segment.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 13) return 0;
  xd_segment_params_t p;
  xd_segment_params_default(&p, (xd_segment_method_t)(data[0] % 4)); /* 3: an invalid method */
  int C = data[1] & 1 ? 3 : 1, H = 1 + data[2] % 24, W = 1 + data[3] % 24;
  p.n_segments = (int)data[4] - 8;
  p.compactness = data[5] / 8.0;
  p.sigma = data[6] / 32.0 - 1;
  p.kernel_size = data[7] / 16.0;
  p.max_dist = (double)data[8] - 16;
  p.ratio = data[9] / 128.0;
  p.size = (int)data[10] - 2;
  p.enforce_connectivity = data[11] & 1;
  p.convert2lab = (data[11] >> 1) & 1;
  p.max_num_iter = 1 + (data[11] >> 2) % 12;
  p.pixel_scale = data[12] % 3 == 0 ? 0 : data[12] % 3 == 1 ? 1.0 / 255 : data[12] / 7.0;
  p.seed = data[0];
  size_t n = (size_t)H * W, extra = size - 13;
  float *img = malloc(3 * n * sizeof *img);
  int32_t *lab = malloc(n * sizeof *lab);
  if (!img || !lab) abort();
  for (size_t i = 0; i < (size_t)C * n; i++) {
    uint8_t b = extra ? data[13 + i % extra] : (uint8_t)i;
    img[i] = (data[11] & 0x80) && b == 255 ? NAN : (float)b;
  }
  int S = -1;
  xd_error_t err;
  int rc = xd_segment_image(&p, img, C, H, W, lab, &S, NULL, &err);
  if (rc == XD_EINVAL && err.field[0] == '\0') abort(); /* an invalid value names its field */
  if (rc == XD_OK) {
    char *seen = calloc((size_t)S, 1);
    if (S < 1 || (size_t)S > n || !seen) abort();
    for (size_t i = 0; i < n; i++) {
      if (lab[i] < 0 || lab[i] >= S) abort();
      seen[lab[i]] = 1;
    }
    for (int s = 0; s < S; s++)
      if (!seen[s]) abort(); /* no gaps */
    free(seen);
    /* a heat map of the labels, drawn with a legend, and the outlines of the top segments */
    int L = xd_render_legend_height(H);
    float *heat = malloc(n * sizeof *heat);
    uint8_t *base = malloc(n * 3), *out = malloc((n + (size_t)L * W) * 3);
    double *w = malloc((size_t)S * sizeof *w);
    void *scratch = malloc(xd_render_outline_scratch(H, W));
    if (!heat || !base || !out || !w || !scratch) abort();
    for (size_t i = 0; i < n; i++) heat[i] = (float)lab[i] - (float)S / 2;
    for (int s = 0; s < S; s++) w[s] = (double)((s * 7 + data[0]) % 5) - 2;
    xd_render_display(img, C, H, W, NULL, NULL, base);
    xd_render_options_t o = {data[0] & 1, (data[12] % 11) / 10.0, 1};
    xd_render_legend_t lg;
    if (xd_render_heatmap(&o, heat, H, W, base, out, &lg, &err) != XD_OK) abort();
    if (lg.height != L || lg.x_hi != W - 1) abort();
    if (xd_render_outline_top(out, H, W, lab, S, w, 5, NULL, scratch) > 5) abort();
    free(heat);
    free(base);
    free(out);
    free(w);
    free(scratch);
  }
  free(img);
  free(lab);
  return 0;
}
