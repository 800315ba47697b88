/* fuzz_api.h — the API the request-level fuzz targets drive: the demo models behind the
 * router, with small limits so that every input stays fast (the decoders must enforce
 * them). Header-only because each target is built as a single translation unit. */
#ifndef XD_FUZZ_API_H
#define XD_FUZZ_API_H

#include <string.h>

#include "api/api.h"
#include "core/mat.h"

/* Builds the API once; keys and admin_key may be NULL/0 (no authentication). */
static inline xd_api_t *xd_fuzz_api(const char *const *keys, size_t n_keys, const char *admin_key) {
  static xd_api_t *api;
  if (api) return api;
  xd_blas_init();
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  cfg.limits.max_rows = 8;
  cfg.limits.max_samples = 300;
  cfg.limits.max_steps = 32;
  cfg.limits.max_work_rows = 200000;
  cfg.limits.max_background = 50;
  cfg.limits.max_nsamples = 300;
  cfg.limits.max_repeats = 3;
  cfg.limits.max_grid = 20;
  cfg.inline_predict_rows = 8;
  cfg.api_keys = keys;
  cfg.n_api_keys = n_keys;
  cfg.admin_key = admin_key;
  xd_registry_t *reg;
  xd_registry_new(&reg);
  xd_api_new(&cfg, reg, &api);
  xd_api_load_dir(api, "models", NULL, NULL);
  xd_api_set_ready(api, 1);
  return api;
}

#endif
