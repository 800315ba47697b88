/* fuzz_trees.c — the XGBoost model loader (JSON with NaN literals, and UBJSON) and what a
 * loaded ensemble then runs: margins, path-dependent and interventional TreeSHAP and
 * interaction values on rows with missing values. Each input is tried as a model of 2 or
 * 4 features and of 0 (regression), 2 or 3 classes, so one seed exercises every check
 * against the bundle. */
#include <math.h>
#include <stdlib.h>

#include "api/bundle_trees.h"
#include "core/trees.h"
#include "tests/fuzz/fuzz.h"

static void exercise(const xd_trees_t *t, size_t d) {
  double X[3 * 4] = {0.5, -1, NAN, 3, NAN, NAN, NAN, NAN, 1e30, -1e30, 2, 0}, Z[3 * 1024];
  size_t G = xd_trees_n_groups(t);
  if (G > 1024 || xd_trees_max_depth(t) > 32) return; /* interactions cost d^2 walks */
  xd_trees_margins(t, X, 3, d, Z);
  size_t ns = xd_treeshap_scratch(t) + 3 * d + xd_treeshap_interv_scratch(t, d);
  double *scratch = malloc(ns * sizeof *scratch), phi[4], Phi[16], e, w[2] = {0.5, 0.5};
  if (!scratch) return;
  size_t g = G - 1;
  xd_treeshap_path(t, X, d, g, phi, &e, scratch);
  xd_treeshap_interactions(t, X + d, d, g, Phi, phi, &e, scratch);
  xd_treeshap_interventional(t, X, X + d, w, 2, d, g, 1, phi, &e, scratch);
  free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const size_t nfs[] = {2, 4}, ncs[] = {0, 2, 3};
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 3; b++) {
      xd_trees_spec_t spec;
      xd_error_t err;
      xd_trees_t *t = NULL;
      if (xd_bundle_trees_xgboost_bytes(data, size, nfs[a], ncs[b], &spec, &err) != XD_OK) {
        xd_trees_spec_deinit(&spec);
        continue;
      }
      size_t outputs = ncs[b] ? ncs[b] : 1;
      if (xd_trees_new(&spec, nfs[a], outputs, ncs[b] > 0, &t, &err) == XD_OK) {
        exercise(t, nfs[a]);
        xd_trees_free(t);
      }
    }
  return 0;
}
