/* fuzz_onnx.c — ONNX import (core/onnx.c): protobuf parsing with protobuf-c, the bounds
 * on everything the file declares, and the graph conversion. A graph that converts must
 * give a consistent chain of layers that a model can be built from and evaluated. */
#include <string.h>

#include "core/alloc.h"
#include "core/mat.h"
#include "core/model.h"
#include "core/onnx.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    xd_blas_init();
    init = 1;
  }
  xd_model_spec_t s;
  memset(&s, 0, sizeof s);
  xd_error_t err;
  if (xd_onnx_to_layers(data, size, 0, &s.layers, &s.n_layers, &err) != XD_OK) return 0;
  for (size_t l = 1; l < s.n_layers; l++)
    if (s.layers[l].in != s.layers[l - 1].out) __builtin_trap();
  /* As a regression model on numeric features when its last layer has one output. */
  size_t in = s.layers[0].in, out = s.layers[s.n_layers - 1].out;
  s.task = XD_TASK_REGRESSION;
  s.n_features = in;
  s.features = xd_calloc(in, sizeof *s.features);
  for (size_t j = 0; s.features && j < in; j++) s.features[j].name = xd_strdup("x");
  xd_model_t *m = NULL;
  if (out == 1 && in <= 64 && s.features && xd_model_new(&s, &m, &err) == XD_OK) {
    double x[64] = {0}, y[1];
    xd_model_predict(m, x, 1, y, NULL, &err);
    xd_model_free(m);
  }
  xd_model_spec_deinit(&s);
  return 0;
}
