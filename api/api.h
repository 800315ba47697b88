/* api.h — the HTTP API without sockets: route a request, decode it, answer it or hand
 * back the work it needs.
 *
 * The server gives xd_api_handle a request (method, path, headers through a callback,
 * body). Cheap requests are answered at once (health, metadata, small predictions);
 * model work comes back as an xd_work_t for the worker pool, and xd_api_finish turns its
 * outcome into a response. Error bodies are built in one place (xd_api_error) from the
 * table that maps status codes to HTTP statuses.
 */
#ifndef XD_API_API_H
#define XD_API_API_H

#include <stddef.h>
#include <stdint.h>

#include "api/job.h"
#include "api/json.h"
#include "api/registry.h"

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
} xd_api_config_t;

typedef struct xd_api_request {
  const char *method;
  const char *path;   /* without the query string */
  const char *query;  /* raw query string or NULL */
  const char *body;
  size_t body_len;
  /* Header lookup (case-insensitive); returns NULL when absent. */
  const char *(*header)(void *ctx, const char *name);
  void *header_ctx;
} xd_api_request_t;

#define XD_API_MAX_HEADERS 4

typedef struct xd_api_response {
  int status;
  char *body; /* xd_malloc'd, owned by the response */
  size_t body_len;
  const char *content_type; /* static */
  const char *header_names[XD_API_MAX_HEADERS]; /* static names */
  char header_values[XD_API_MAX_HEADERS][96];
  size_t n_headers;
  char model[XD_MODEL_NAME_MAX + 1]; /* for the access log and metrics; "" if none */
  const char *endpoint;              /* static route label */
  int oip_errors; /* errors in the Open Inference Protocol's shape {"error": "..."} */
} xd_api_response_t;

typedef enum xd_api_outcome { XD_API_RESPOND = 0, XD_API_QUEUE = 1 } xd_api_outcome_t;

int xd_api_new(const xd_api_config_t *cfg, xd_registry_t *reg, xd_api_t **out);
void xd_api_free(xd_api_t *api);

/* Readiness: the server sets it (0 while loading or draining). Any thread. */
void xd_api_set_ready(xd_api_t *api, int ready);
int xd_api_ready(const xd_api_t *api);
xd_registry_t *xd_api_registry(xd_api_t *api);
const xd_api_config_t *xd_api_config(const xd_api_t *api);

/* Loads every bundle of the model directory into the registry: DIR/NAME.json and
 * DIR/NAME/model.json. A bundle that fails is reported through log (file and reason)
 * and skipped. Returns the number of models loaded, or -1 when DIR cannot be read. Call before serving or from one
 * thread at a time. */
int xd_api_load_dir(xd_api_t *api, const char *dir, void (*log)(void *ctx, const char *msg), void *ctx);
const xd_limits_t *xd_api_limits(const xd_api_t *api);

/* Routes and decodes req. Either fills resp (XD_API_RESPOND) or fills work and returns
 * XD_API_QUEUE; resp->endpoint and resp->model are set in both cases. Network thread;
 * never blocks on model work. */
xd_api_outcome_t xd_api_handle(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp, xd_work_t *work);

/* Routes req and answers it entirely on the calling thread, running any model work
 * inline under cancel (may be NULL): what a worker pool would do, without one. For tests,
 * fuzzers and tools. resp must be zeroed by the caller; deinit it after. */
void xd_api_handle_sync(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp,
                        const xd_cancel_t *cancel);

/* Runs work on the calling thread and answers into resp when it is at most
 * inline_predict_rows model rows (cheaper than handing it to a worker): returns
 * XD_API_RESPOND with work consumed; otherwise XD_API_QUEUE with work untouched. */
xd_api_outcome_t xd_api_maybe_inline(const xd_api_t *api, xd_work_t *work, xd_api_response_t *resp);

/* Turns a finished job into a response: body (a new reference, consumed) on success,
 * or the error. Any thread. */
void xd_api_finish(json_t *body, const xd_error_t *err, xd_api_response_t *resp);

/* Fills resp with the JSON error for err (status from the code table). */
void xd_api_error(const xd_error_t *err, xd_api_response_t *resp);
/* HTTP status and API error code ("invalid_argument") for a status code. */
int xd_api_http_status(int code);
const char *xd_api_error_code(int code);

/* Adds a response header (name static). */
void xd_api_add_header(xd_api_response_t *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets resp's body to the compact serialization of body (consumes the reference). */
void xd_api_json(xd_api_response_t *resp, int status, json_t *body);
void xd_api_response_deinit(xd_api_response_t *resp);

#endif
