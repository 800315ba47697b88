/* test_kern_golden.c — the graph engine's kernels (core/kern.h) against PyTorch's outputs,
 * frozen by tools/make_kern_golden.py in tests/golden/kern/golden.txt (float64): Conv
 * with groups, dilation and 1-D; ConvTranspose with output_padding; pools with ceil_mode and count_include_pad; GRU and LSTM
 * with the weights exactly as torch.onnx.export lays them out (gate order, biases,
 * linear_before_reset, bidirectional); LayerNormalization. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/kern.h"
#include "tests/test.h"

#define MAX_ARRAYS 128
static struct {
  char name[64];
  size_t n;
  double *v;
} arr[MAX_ARRAYS];
static size_t n_arr;

static int load(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char name[64];
  size_t n;
  while (n_arr < MAX_ARRAYS && fscanf(f, "%63s %zu", name, &n) == 2) {
    double *v = xd_malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
      if (fscanf(f, "%lf", &v[i]) != 1) {
        xd_free(v);
        fclose(f);
        return -1;
      }
    snprintf(arr[n_arr].name, sizeof arr[n_arr].name, "%s", name);
    arr[n_arr].n = n;
    arr[n_arr++].v = v;
  }
  fclose(f);
  return 0;
}

/* The array "<c>.<what>", or NULL (a failed check names it). */
static const double *get(const char *c, const char *what, size_t *n) {
  char key[64];
  snprintf(key, sizeof key, "%s.%s", c, what);
  for (size_t i = 0; i < n_arr; i++)
    if (strcmp(arr[i].name, key) == 0) {
      if (n) *n = arr[i].n;
      return arr[i].v;
    }
  fprintf(stderr, "  missing golden array %s\n", key);
  return NULL;
}

static double worst(const double *a, const double *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]) / (1 + fabs(b[i]));
    if (!(d <= m)) m = d;
  }
  return m;
}

static void conv_golden(const char *c) {
  size_t ny, nx;
  const double *a = get(c, "attrs", NULL), *x = get(c, "x", &nx), *w = get(c, "w", NULL), *b = get(c, "b", NULL),
               *y = get(c, "y", &ny), *g = get(c, "g", NULL), *dx = get(c, "dx", NULL);
  CHECK(a && x && w && b && y && g && dx);
  if (!(a && x && w && b && y && g && dx)) return;
  xd_conv_shape_t s;
  memset(&s, 0, sizeof s);
  s.nsp = (size_t)a[0];
  s.N = (size_t)a[1];
  s.C = (size_t)a[2];
  s.M = (size_t)a[3];
  s.group = (size_t)a[4];
  for (size_t i = 0; i < s.nsp; i++) {
    s.in[i] = (size_t)a[5 + i];
    s.k[i] = (size_t)a[5 + s.nsp + i];
    s.stride[i] = (size_t)a[5 + 2 * s.nsp + i];
    s.dil[i] = (size_t)a[5 + 3 * s.nsp + i];
    s.pad0[i] = s.pad1[i] = (size_t)a[5 + 4 * s.nsp + i];
  }
  CHECK(xd_conv_shape_init(&s, NULL) == XD_OK);
  double *out = xd_calloc(ny, 8), *scr = xd_calloc(xd_conv_scratch(&s), 8), *gx = xd_calloc(nx, 8);
  xd_conv_forward_d(&s, x, w, b, out, scr);
  CHECK_MSG(worst(out, y, ny) < 1e-13, "%s: %g", c, worst(out, y, ny));
  xd_conv_backward_d(&s, x, w, g, gx, NULL, NULL, scr);
  CHECK_MSG(worst(gx, dx, nx) < 1e-13, "%s dx: %g", c, worst(gx, dx, nx));
  xd_free(out);
  xd_free(scr);
  xd_free(gx);
}

TEST(conv_like_torch) {
  conv_golden("conv_groups");
  conv_golden("conv_depthwise");
  conv_golden("conv_1d");
}

static void convt_golden(const char *c) {
  size_t ny, nx, nw;
  const double *a = get(c, "attrs", NULL), *x = get(c, "x", &nx), *w = get(c, "w", &nw), *b = get(c, "b", NULL),
               *y = get(c, "y", &ny), *g = get(c, "g", NULL), *dx = get(c, "dx", NULL), *dw = get(c, "dw", NULL);
  CHECK(a && x && w && b && y && g && dx && dw);
  if (!(a && x && w && b && y && g && dx && dw)) return;
  xd_convt_shape_t s;
  memset(&s, 0, sizeof s);
  s.nsp = 2;
  s.N = (size_t)a[0];
  s.C = (size_t)a[1];
  s.M = (size_t)a[2];
  s.group = (size_t)a[3];
  for (size_t i = 0; i < 2; i++) {
    s.in[i] = (size_t)a[4 + i];
    s.k[i] = (size_t)a[6 + i];
    s.stride[i] = (size_t)a[8 + i];
    s.dil[i] = (size_t)a[10 + i];
    s.pad0[i] = s.pad1[i] = (size_t)a[12 + i];
    s.outpad[i] = (size_t)a[14 + i];
  }
  CHECK(xd_convt_shape_init(&s, NULL) == XD_OK);
  CHECK_MSG(s.N * s.M * s.out[0] * s.out[1] == ny, "%s: output %zux%zu", c, s.out[0], s.out[1]);
  if (s.N * s.M * s.out[0] * s.out[1] != ny) return;
  double *out = xd_calloc(ny, 8), *scr = xd_calloc(xd_convt_scratch(&s), 8), *gx = xd_calloc(nx, 8),
         *gw = xd_calloc(nw, 8);
  xd_convt_forward_d(&s, x, w, b, out, scr);
  CHECK_MSG(worst(out, y, ny) < 1e-13, "%s: %g", c, worst(out, y, ny));
  xd_convt_backward_d(&s, x, w, g, gx, gw, NULL, scr);
  CHECK_MSG(worst(gx, dx, nx) < 1e-13, "%s dx: %g", c, worst(gx, dx, nx));
  CHECK_MSG(worst(gw, dw, nw) < 1e-13, "%s dw: %g", c, worst(gw, dw, nw));
  xd_free(out);
  xd_free(scr);
  xd_free(gx);
  xd_free(gw);
}

TEST(conv_transpose_like_torch) {
  convt_golden("convt_stride");
  convt_golden("convt_dil");
}

static void pool_golden(const char *c) {
  size_t ny;
  const double *a = get(c, "attrs", NULL), *x = get(c, "x", NULL), *y = get(c, "y", &ny);
  CHECK(a && x && y);
  if (!(a && x && y)) return;
  xd_pool_shape_t s;
  memset(&s, 0, sizeof s);
  s.nsp = 2;
  s.N = (size_t)a[0];
  s.C = (size_t)a[1];
  for (size_t i = 0; i < 2; i++) {
    s.in[i] = (size_t)a[2 + i];
    s.k[i] = (size_t)a[4 + i];
    s.stride[i] = (size_t)a[6 + i];
    s.dil[i] = (size_t)a[8 + i];
    s.pad0[i] = s.pad1[i] = (size_t)a[10 + i];
  }
  s.ceil_mode = (int)a[12];
  s.count_include_pad = (int)a[13];
  CHECK(xd_pool_shape_init(&s, NULL) == XD_OK);
  CHECK_MSG(s.N * s.C * s.out[0] * s.out[1] == ny, "%s: output %zux%zu", c, s.out[0], s.out[1]);
  if (s.N * s.C * s.out[0] * s.out[1] != ny) return;
  double *out = xd_calloc(ny, 8);
  if (a[14] != 0)
    xd_maxpool_forward_d(&s, x, out);
  else
    xd_avgpool_forward_d(&s, x, out);
  CHECK_MSG(worst(out, y, ny) < 1e-14, "%s: %g", c, worst(out, y, ny));
  xd_free(out);
}

TEST(pools_like_torch) {
  pool_golden("maxpool_ceil");
  pool_golden("maxpool_dil");
  pool_golden("avgpool_ceil_incl");
  pool_golden("avgpool_ceil_excl");
  pool_golden("avgpool_plain");
}

static void rnn_golden(const char *c, int lstm) {
  size_t ny, nh;
  const double *a = get(c, "attrs", NULL), *x = get(c, "x", NULL), *W = get(c, "W", NULL), *R = get(c, "R", NULL),
               *B = get(c, "B", NULL), *h0 = get(c, "h0", NULL), *y = get(c, "y", &ny), *yh = get(c, "yh", &nh),
               *c0 = lstm ? get(c, "c0", NULL) : NULL, *yc = lstm ? get(c, "yc", NULL) : NULL;
  CHECK(a && x && W && R && B && h0 && y && yh && (!lstm || (c0 && yc)));
  if (!(a && x && W && R && B && h0 && y && yh && (!lstm || (c0 && yc)))) return;
  xd_rnn_shape_t s = {(size_t)a[0], (size_t)a[1], (size_t)a[2], (size_t)a[3], (size_t)a[4], 0, (int)a[5]};
  CHECK(xd_rnn_shape_init(&s, NULL) == XD_OK);
  if (!lstm) CHECK_MSG(s.linear_before_reset == 1, "torch exports GRU with linear_before_reset 1");
  size_t nscr = lstm ? xd_lstm_scratch(&s) : xd_gru_scratch(&s);
  double *oy = xd_calloc(ny, 8), *oh = xd_calloc(nh, 8), *oc = xd_calloc(nh, 8), *scr = xd_calloc(nscr, 8);
  if (lstm)
    xd_lstm_forward_d(&s, x, W, R, B, NULL, h0, c0, oy, oh, oc, scr);
  else
    xd_gru_forward_d(&s, x, W, R, B, h0, oy, oh, scr);
  CHECK_MSG(worst(oy, y, ny) < 1e-12, "%s Y: %g", c, worst(oy, y, ny));
  CHECK_MSG(worst(oh, yh, nh) < 1e-12, "%s Y_h: %g", c, worst(oh, yh, nh));
  if (lstm) CHECK_MSG(worst(oc, yc, nh) < 1e-12, "%s Y_c: %g", c, worst(oc, yc, nh));
  xd_free(oy);
  xd_free(oh);
  xd_free(oc);
  xd_free(scr);
}

TEST(gru_like_torch_export) {
  rnn_golden("gru_bidir", 0);
  rnn_golden("gru_fwd", 0);
}

TEST(lstm_like_torch_export) {
  rnn_golden("lstm_bidir", 1);
  rnn_golden("lstm_fwd", 1);
}

TEST(layernorm_like_torch) {
  size_t ny;
  const double *a = get("layernorm", "attrs", NULL), *x = get("layernorm", "x", NULL),
               *sc = get("layernorm", "scale", NULL), *bi = get("layernorm", "bias", NULL),
               *y = get("layernorm", "y", &ny);
  CHECK(a && x && sc && bi && y);
  if (!(a && x && sc && bi && y)) return;
  double *out = xd_calloc(ny, 8);
  xd_layernorm_forward_d((size_t)a[0], (size_t)a[1], 1e-5, x, sc, bi, out, NULL, NULL);
  CHECK_MSG(worst(out, y, ny) < 1e-13, "%g", worst(out, y, ny));
  xd_free(out);
}

int main(void) {
  if (load("tests/golden/kern/golden.txt") != 0) {
    fprintf(stderr, "cannot read tests/golden/kern/golden.txt (run from the repository root)\n");
    printf("0 passed, 1 failed\n");
    return 1;
  }
  RUN(conv_like_torch);
  RUN(conv_transpose_like_torch);
  RUN(pools_like_torch);
  RUN(gru_like_torch_export);
  RUN(lstm_like_torch_export);
  RUN(layernorm_like_torch);
  for (size_t i = 0; i < n_arr; i++) xd_free(arr[i].v);
  return TEST_REPORT();
}
