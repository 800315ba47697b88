/* bench_segment.c — SLIC and quickshift (core/segment.h) on a 32×32 and a 224×224 RGB
 * image, the image and parameters of bench/segment_skimage.py (lime's settings: quickshift
 * kernel_size 4, max_dist 200, ratio 0.2; SLIC n_segments 50, compactness 10, sigma 1).
 * Prints one JSON line per case: {"kind":"segment","id":"slic_224","method":...,"side":N,
 * "runs":R,"median_ms":...,"min_ms":...,"cpu_ms":...,"segments":S} (cpu_ms: the median
 * process CPU time of one run, which a busy machine does not inflate); bench/run.sh adds scikit-image's
 * figures for the same cases (kind "segment_ref") and bench_report puts both in
 * bench/RESULTS.md. One thread. BENCH_SCALE shortens the time budget. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/segment.h"

/* The benchmark image, the same formula as bench/segment_skimage.py: smooth bands and
 * blocks of colour, 8-bit values. */
static void make_image(float *img, int side) {
  size_t n = (size_t)side * side;
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < side; y++)
      for (int x = 0; x < side; x++) {
        double v = 128 + 60 * sin(x / 9.0 + c) * cos(y / 7.0) + 40 * (((x / 28) + (y / 28) + c) % 3 - 1);
        img[c * n + (size_t)y * side + x] = (float)fmin(255, fmax(0, floor(v + 0.5)));
      }
}

static double cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(void) {
  const char *e = getenv("BENCH_SCALE");
  double scale = e ? atof(e) : 1.0;
  if (!(scale > 0)) scale = 1.0;
  static const int sides[2] = {32, 224};
  for (int m = 0; m < 2; m++)
    for (int k = 0; k < 2; k++) {
      int side = sides[k];
      size_t n = (size_t)side * side;
      float *img = malloc(3 * n * sizeof *img);
      int32_t *lab = malloc(n * sizeof *lab);
      double t[200], c[200];
      int runs = 0, S = 0;
      if (!img || !lab) return 1;
      make_image(img, side);
      xd_segment_params_t p;
      xd_segment_params_default(&p, m == 0 ? XD_SEGMENT_SLIC : XD_SEGMENT_QUICKSHIFT);
      p.seed = 42;
      double start = (double)xd_now_ns() / 1e9, budget = 1.5 * scale;
      do {
        int64_t t0 = xd_now_ns();
        double c0 = cpu_ms();
        if (xd_segment_image(&p, img, 3, side, side, lab, &S, NULL, NULL) != XD_OK) return 1;
        c[runs] = cpu_ms() - c0;
        t[runs++] = (double)(xd_now_ns() - t0) / 1e6;
      } while (runs < 200 && (runs < 3 || (double)xd_now_ns() / 1e9 - start < budget));
      qsort(t, runs, sizeof *t, cmp_d);
      qsort(c, runs, sizeof *c, cmp_d);
      printf("{\"kind\":\"segment\",\"id\":\"%s_%d\",\"method\":\"%s\",\"side\":%d,\"runs\":%d,\"median_ms\":%.6g,"
             "\"min_ms\":%.6g,\"cpu_ms\":%.6g,\"segments\":%d}\n",
             m == 0 ? "slic" : "quickshift", side, m == 0 ? "slic" : "quickshift", side, runs, t[runs / 2], t[0], c[runs / 2], S);
      free(img);
      free(lab);
    }
  return 0;
}
