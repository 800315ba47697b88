/* fuzz_graph.c — graph import (core/onnx_graph.c, core/graph.c): protobuf parsing, the
 * bounds on every declared size, topological order and cycles, dangling names, shape
 * inference with symbolic dimensions. A graph that loads is also run on a small batch
 * (float, double, and a gradient at its first input) under a work-memory limit, so the
 * planner and every operator row see whatever shapes the file can produce. */
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "core/mat.h"
#include "tests/fuzz/fuzz.h"

static int seed_ones(void *ctx, size_t row0, size_t n, const double *outv, double *seed) {
  (void)row0;
  size_t row = *(size_t *)ctx;
  for (size_t i = 0; i < n * row; i++) seed[i] = outv[i] == outv[i] ? 1 : 0;
  return XD_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    xd_blas_init();
    init = 1;
  }
  xd_graph_t *g = NULL;
  xd_error_t err;
  if (xd_graph_from_onnx(data, size, &g, &err) != XD_OK) return 0;
  size_t ni = xd_graph_n_inputs(g);
  xd_tensor_t in[64];
  memset(in, 0, sizeof in);
  int ok = ni <= 64;
  for (size_t k = 0; ok && k < ni; k++) {
    const xd_graph_info_t *f = xd_graph_input(g, k);
    in[k].dtype = f->dtype;
    in[k].rank = f->rank;
    size_t n = 1;
    for (size_t d = 0; d < f->rank; d++) {
      in[k].dims[d] = d == 0 && f->dims[0].size < 0 ? 2 : f->dims[d].size >= 0 ? f->dims[d].size : 3;
      n *= (size_t)in[k].dims[d];
      if (n > (1u << 20)) ok = 0;
    }
    in[k].data = ok ? calloc(n + 1, 8) : NULL; /* zeros: valid ids, masks and pixels */
  }
  const xd_graph_info_t *out = xd_graph_output(g, 0);
  double *y = NULL, *gr = NULL;
  xd_tensor_t shape;
  if (ok && xd_graph_shape(g, in, out->name, &shape, &err) == XD_OK) {
    size_t n = xd_tensor_numel(&shape), nin = ni ? xd_tensor_numel(&in[0]) : 0;
    y = n <= (1u << 22) ? calloc(n + 1, 8) : NULL;
    gr = calloc(nin + 1, 8);
    xd_graph_run_t r = {.inputs = in, .precision = XD_DT_F32, .out = y, .max_work_memory = (size_t)64 << 20};
    if (y && xd_graph_run(g, &r, &err) == XD_OK) {
      r.precision = XD_DT_F64;
      xd_graph_run(g, &r, &err);
      size_t row = shape.rank && shape.dims[0] ? n / (size_t)shape.dims[0] : 0;
      if (in[0].dtype == XD_DT_F32) {
        r.wrt = xd_graph_input(g, 0)->name;
        r.grad = gr;
        r.seed_fn = seed_ones;
        r.seed_ctx = &row;
        xd_graph_run(g, &r, &err);
        r.precision = XD_DT_F32; /* the float reverse mode too */
        xd_graph_run(g, &r, &err);
      }
    }
  }
  free(y);
  free(gr);
  for (size_t k = 0; k < ni && k < 64; k++) free(in[k].data);
  xd_graph_free(g);
  return 0;
}
