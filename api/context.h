/* context.h — the API object every handler is given: configuration, model registry,
 * readiness, and the request pieces every model-work endpoint reads ("model",
 * "timeout_ms"). Handlers include this and api/response.h, never api/api.h (the router),
 * so that no handler depends on the router that depends on them.
 */
#ifndef XD_API_CONTEXT_H
#define XD_API_CONTEXT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/limits.h"
#include "api/registry.h"
#include "core/status.h"

typedef struct xd_api xd_api_t;

typedef struct xd_api_config {
  xd_limits_t limits;
  const char *model_dir;       /* for PUT/DELETE persistence; may be NULL */
  uint64_t inline_predict_rows; /* /predict rows at or below which it runs inline */
  /* Authentication (Authorization: Bearer KEY). With no api_keys every read endpoint is
   * open; with some, each request must carry one of them (or the admin key). Model
   * management needs admin_key; when it is NULL those endpoints answer 403. Health
   * probes (/healthz, /readyz, /v2/health/...) never need a key. Keys are compared in
   * constant time. Borrowed: they must outlive the API. */
  const char *const *api_keys;
  size_t n_api_keys;
  const char *admin_key;
  /* CORS (api/cors.h): origins whose pages may call the API ("https://host[:port]",
   * lower case, or "*"); none = same origin only. Borrowed, like the keys. */
  const char *const *cors_origins;
  size_t n_cors_origins;
  /* /readyz is ready with no model loaded (else 503 with the reason). */
  int allow_empty;
} xd_api_config_t;

/* A new API over reg (borrowed: it must outlive the API). Points jansson at xd_malloc
 * (api/alloc.h). Returns XD_OK or XD_ENOMEM. Main thread, before serving. */
int xd_api_new(const xd_api_config_t *cfg, xd_registry_t *reg, xd_api_t **out);
void xd_api_free(xd_api_t *api);

/* Readiness: the server sets it (0 while loading or draining). Any thread. */
void xd_api_set_ready(xd_api_t *api, int ready);
int xd_api_ready(const xd_api_t *api);
/* Borrowed pointers, valid for the API's life. Any thread. */
xd_registry_t *xd_api_registry(const xd_api_t *api);
const xd_api_config_t *xd_api_config(const xd_api_t *api);
const xd_limits_t *xd_api_limits(const xd_api_t *api);

/* Reads body's "model" (required string, valid name) and returns a new reference to its
 * entry, or NULL with err set (XD_EINVAL or XD_ENOTFOUND, field "model"). */
xd_model_entry_t *xd_api_model(const xd_api_t *api, const json_t *body, xd_error_t *err);

/* Batch jobs (api/jobs.h): the server plugs in what runs and stores them; without one,
 * the /jobs routes answer 503. Set before serving; the backend must outlive the API. */
struct xd_jobs_backend;
void xd_api_set_jobs(xd_api_t *api, const struct xd_jobs_backend *jobs);
const struct xd_jobs_backend *xd_api_jobs(const xd_api_t *api);

/* Sets err to XD_ENOTFOUND on field "model" for a name that is not loaded: the message
 * suggests the nearest loaded name (edit distance) and lists the loaded ones (bounded). */
void xd_api_unknown_model(xd_registry_t *reg, const char *name, xd_error_t *err);

/* Reads the optional "timeout_ms" field shared by every model-work endpoint. */
int xd_api_timeout(const json_t *body, int64_t *timeout_ms, xd_error_t *err);

#endif
