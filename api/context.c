/* context.c — the API object (context.h). */
#include "api/context.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "api/alloc.h"
#include "api/json.h"
#include "api/metrics.h"
#include "core/alloc.h"

struct xd_api {
  xd_api_config_t cfg;
  xd_registry_t *reg;
  /* A flag the main thread flips and probes read, not coordination between workers:
   * an atomic int is the whole of it. */
  atomic_int ready;
  const struct xd_jobs_backend *jobs;
};

void xd_api_set_jobs(xd_api_t *api, const struct xd_jobs_backend *jobs) { api->jobs = jobs; }
const struct xd_jobs_backend *xd_api_jobs(const xd_api_t *api) { return api->jobs; }

int xd_api_new(const xd_api_config_t *cfg, xd_registry_t *reg, xd_api_t **out) {
  xd_api_alloc_init(); /* jansson on xd_malloc: injected failures reach JSON too */
  xd_api_t *api = xd_calloc(1, sizeof *api);
  if (!api) return XD_ENOMEM;
  api->cfg = *cfg;
  api->reg = reg;
  atomic_init(&api->ready, 0);
  xd_metrics_set_registry(reg);
  *out = api;
  return XD_OK;
}

void xd_api_free(xd_api_t *api) { xd_free(api); }
void xd_api_set_ready(xd_api_t *api, int ready) { atomic_store(&api->ready, ready); }
int xd_api_ready(const xd_api_t *api) { return atomic_load(&((xd_api_t *)api)->ready); }
xd_registry_t *xd_api_registry(const xd_api_t *api) { return api->reg; }
const xd_limits_t *xd_api_limits(const xd_api_t *api) { return &api->cfg.limits; }
const xd_api_config_t *xd_api_config(const xd_api_t *api) { return &api->cfg; }

xd_model_entry_t *xd_api_model(const xd_api_t *api, const json_t *body, xd_error_t *err) {
  json_t *v = json_object_get(body, "model");
  if (!v) {
    xd_error_set(err, XD_EINVAL, "model", "required: the name of a model");
    return NULL;
  }
  if (!json_is_string(v) || !xd_model_name_valid(json_string_value(v))) {
    xd_error_set(err, XD_EINVAL, "model", "must be a model name matching ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$");
    return NULL;
  }
  xd_model_entry_t *e = xd_registry_get(api->reg, json_string_value(v));
  if (!e) xd_api_unknown_model(api->reg, json_string_value(v), err);
  return e;
}

/* How many loaded names an error lists before "and N more": the message stays one line. */
#define XD_UNKNOWN_MODEL_LIST 8

void xd_api_unknown_model(xd_registry_t *reg, const char *name, xd_error_t *err) {
  xd_model_entry_t **es = NULL;
  size_t n = 0;
  if (xd_registry_list(reg, &es, &n) != XD_OK) n = 0;
  /* The nearest name, if it is near enough to be a typo: at most a third of the name's
   * length (rounded up) edits away. */
  size_t best = (size_t)-1, limit = (strnlen(name, XD_MODEL_NAME_MAX + 1) + 2) / 3;
  const char *near = NULL;
  for (size_t i = 0; i < n; i++) {
    size_t d = xd_json_edit_distance(name, es[i]->name);
    if (d <= limit && d < best) best = d, near = es[i]->name;
  }
  char list[XD_ERROR_TEXT_MAX / 2] = "";
  size_t len = 0;
  for (size_t i = 0; i < n && i < XD_UNKNOWN_MODEL_LIST; i++) {
    int w = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", es[i]->name);
    if (w < 0 || (size_t)w >= sizeof list - len) break;
    len += (size_t)w;
  }
  if (n > XD_UNKNOWN_MODEL_LIST && len + 24 < sizeof list)
    snprintf(list + len, sizeof list - len, ", and %zu more", n - XD_UNKNOWN_MODEL_LIST);
  if (near)
    xd_error_set(err, XD_ENOTFOUND, "model", "unknown model '%.64s'; did you mean '%s'? loaded: %s", name, near, list);
  else if (n)
    xd_error_set(err, XD_ENOTFOUND, "model", "unknown model '%.64s'; must be one of the loaded models: %s", name, list);
  else
    xd_error_set(err, XD_ENOTFOUND, "model", "unknown model '%.64s'; no model is loaded (upload one with PUT /models/{name})",
                 name);
  for (size_t i = 0; i < n; i++) xd_model_entry_release(es[i]);
  xd_free(es);
}

int xd_api_timeout(const json_t *body, int64_t *timeout_ms, xd_error_t *err) {
  size_t t = 0;
  int rc = xd_json_opt_size(body, "timeout_ms", 1, 3600000, &t, err);
  if (rc == XD_OK) *timeout_ms = (int64_t)t;
  return rc;
}
