/* fuzz_bundle.c — model bundle decoding and validation (JSON -> model). */
#include "api/bundle.h"
#include "core/mat.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    xd_blas_init();
    init = 1;
  }
  xd_model_t *m = NULL;
  xd_error_t err;
  /* dir NULL: no file may be opened, whatever the input names */
  if (xd_bundle_decode((const char *)data, size, NULL, &m, &err) == XD_OK) {
    /* A model that loads must also evaluate: one row of its own background, or zeros. */
    size_t d = xd_model_n_features(m), k = xd_model_n_outputs(m);
    double x[64] = {0}, out[64];
    const xd_dataset_t *bg = xd_model_background(m);
    if (d <= 64 && k <= 64) {
      if (bg->n) for (size_t j = 0; j < d; j++) x[j] = bg->X[j];
      xd_model_predict(m, x, 1, out, NULL, &err);
    }
    xd_model_free(m);
  }
  return 0;
}
