/* graph_testlib.h — what the graph engine's test programs share: loading a graph built
 * with tests/graph_build.h, random inputs for every graph input (symbolic dims N_BATCH,
 * then N_SEQ), row sizes, a double forward, and a small CNN. Tests only. */
#ifndef XD_TESTS_GRAPH_TESTLIB_H
#define XD_TESTS_GRAPH_TESTLIB_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "tests/graph_build.h"
#include "tests/test.h"

#define N_BATCH 2
#define N_SEQ 3

static __attribute__((unused)) xd_graph_t *load(gb_t *b, xd_error_t *err) {
  size_t len;
  uint8_t *bytes = gb_pack(b, &len);
  xd_graph_t *g = NULL;
  int rc = xd_graph_from_onnx(bytes, len, &g, err);
  free(bytes);
  if (rc != XD_OK) fprintf(stderr, "  load: %s\n", err->text);
  return g;
}

static __attribute__((unused)) uint64_t rng_state = 12345;
static __attribute__((unused)) double urand(void) { /* splitmix64 -> [0, 1) */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

/* A value away from 0 and the usual kinks: ±[0.3, 1.7], or [0.3, 1.7] when pos. */
static __attribute__((unused)) double away(int pos) {
  double v = 0.3 + 1.4 * urand();
  return pos || urand() < 0.5 ? v : -v;
}

/* Inputs for every graph input: symbolic dims N_BATCH then N_SEQ; floats as doubles. */
typedef struct inputs {
  size_t n;
  xd_tensor_t t[8];
} inputs_t;

static __attribute__((unused)) void make_inputs(const xd_graph_t *g, inputs_t *in, int pos, int64_t ids_hi) {
  in->n = xd_graph_n_inputs(g);
  for (size_t k = 0; k < in->n; k++) {
    const xd_graph_info_t *f = xd_graph_input(g, k);
    xd_tensor_t *t = &in->t[k];
    memset(t, 0, sizeof *t);
    t->rank = f->rank;
    t->dtype = f->dtype == XD_DT_F32 ? XD_DT_F64 : f->dtype;
    for (size_t d = 0; d < f->rank; d++) t->dims[d] = d == 0 ? N_BATCH : f->dims[d].size >= 0 ? f->dims[d].size : N_SEQ;
    size_t n = xd_tensor_numel(t);
    t->data = calloc(n, 8);
    for (size_t i = 0; i < n; i++) {
      if (t->dtype == XD_DT_F64) ((double *)t->data)[i] = away(pos);
      else if (t->dtype == XD_DT_I64) ((int64_t *)t->data)[i] = (int64_t)(urand() * (double)ids_hi);
      else ((uint8_t *)t->data)[i] = urand() < 0.5;
    }
  }
}

static __attribute__((unused)) void free_inputs(inputs_t *in) {
  for (size_t k = 0; k < in->n; k++) free(in->t[k].data);
}

static __attribute__((unused)) size_t row_size(const xd_graph_t *g, const inputs_t *in, const char *name) {
  xd_tensor_t s;
  xd_error_t err;
  if (xd_graph_shape(g, in->t, name, &s, &err) != XD_OK) return 0;
  return xd_tensor_numel(&s) / (size_t)s.dims[0];
}

/* Σ seed·output in double. */

#define X3 ((int64_t[]){-1, 3, 4})

/* Runs the one-output graph g in double on in; out (N_BATCH·row values). */
static __attribute__((unused)) double *forward_d(xd_graph_t *g, inputs_t *in, size_t *n) {
  *n = N_BATCH * row_size(g, in, xd_graph_output(g, 0)->name);
  double *y = calloc(*n + 1, 8);
  xd_graph_run_t r = {.inputs = in->t, .precision = XD_DT_F64, .out = y};
  xd_error_t err;
  CHECK(xd_graph_run(g, &r, &err) == XD_OK);
  return y;
}

static __attribute__((unused)) void c_conv_pool(gb_t *b) {
  gb_input(b, "x", GB_FLOAT, 4, (int64_t[]){-1, 2, 5, 5});
  float w[3 * 2 * 3 * 3];
  for (int i = 0; i < 54; i++) w[i] = (float)(0.05 * ((i * 7) % 11) - 0.25);
  gb_init_f(b, "w", 4, (int64_t[]){3, 2, 3, 3}, w);
  gb_init_f(b, "bias", 1, (int64_t[]){3}, (float[]){0.1f, -0.1f, 0.05f});
  Onnx__NodeProto *c = gb_node(b, "Conv", "x,w,bias", "c");
  gb_attr_ints(b, c, "pads", 4, (int64_t[]){1, 1, 1, 1});
  gb_attr_ints(b, c, "kernel_shape", 2, (int64_t[]){3, 3});
  gb_init_f(b, "s", 1, (int64_t[]){3}, (float[]){1.1f, 0.9f, 1.2f});
  gb_init_f(b, "bb", 1, (int64_t[]){3}, (float[]){0.0f, 0.1f, -0.1f});
  gb_init_f(b, "m", 1, (int64_t[]){3}, (float[]){0.05f, -0.02f, 0.1f});
  gb_init_f(b, "v", 1, (int64_t[]){3}, (float[]){1.5f, 0.8f, 1.1f});
  gb_node(b, "BatchNormalization", "c,s,bb,m,v", "bn");
  Onnx__NodeProto *mp = gb_node(b, "MaxPool", "bn", "mp");
  gb_attr_ints(b, mp, "kernel_shape", 2, (int64_t[]){2, 2});
  gb_attr_ints(b, mp, "strides", 2, (int64_t[]){2, 2});
  Onnx__NodeProto *ap = gb_node(b, "AveragePool", "bn", "ap");
  gb_attr_ints(b, ap, "kernel_shape", 2, (int64_t[]){3, 3});
  gb_node(b, "GlobalAveragePool", "ap", "g");
  gb_node(b, "Flatten", "mp", "f1");
  gb_node(b, "Flatten", "g", "f2");
  gb_attr_i(b, gb_node(b, "Concat", "f1,f2", "y"), "axis", 1);
  gb_output(b, "y");
}
#endif
