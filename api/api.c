/* api.c — routing, body parsing, the error table, response helpers.
 *
 * One table maps every status code to its HTTP status and API error code; no handler
 * builds error JSON by hand. */
#include "api/api.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/admin.h"
#include "api/alloc.h"
#include "api/cors.h"
#include "api/metrics.h"
#include "api/routes.h"
#include "api/static.h"
#include "api/train.h"
#include "api/v2.h"
#include "api/service.h"
#include "core/alloc.h"

struct xd_api {
  xd_api_config_t cfg;
  xd_registry_t *reg;
  atomic_int ready;
};

/* ---- errors ---------------------------------------------------------------------------- */

static const struct {
  int code, http;
  const char *name;
} error_table[] = {
    {XD_EINVAL, 400, "invalid_argument"},     {XD_EFORMAT, 400, "invalid_argument"},
    {XD_EUNSUPPORTED, 400, "invalid_argument"}, {XD_EJSON, 400, "invalid_json"},
    {XD_EUNAUTH, 401, "unauthenticated"},     {XD_EPERM, 403, "permission_denied"},
    {XD_ENOTFOUND, 404, "not_found"},         {XD_EMETHOD, 405, "method_not_allowed"},
    {XD_ECONFLICT, 409, "conflict"},          {XD_ETOOBIG, 413, "payload_too_large"},
    {XD_EMEDIA, 415, "unsupported_media_type"}, {XD_EOVERLOAD, 503, "overloaded"},
    {XD_ECANCELED, 503, "overloaded"},        {XD_ETIMEDOUT, 504, "deadline_exceeded"},
    {XD_EIO, 500, "internal"},                {XD_ENOMEM, 500, "internal"},
    {XD_EINTERNAL, 500, "internal"},
};

int xd_api_http_status(int code) {
  for (size_t i = 0; i < sizeof error_table / sizeof *error_table; i++)
    if (error_table[i].code == code) return error_table[i].http;
  return 500;
}

const char *xd_api_error_code(int code) {
  for (size_t i = 0; i < sizeof error_table / sizeof *error_table; i++)
    if (error_table[i].code == code) return error_table[i].name;
  return "internal";
}

/* ---- responses ------------------------------------------------------------------------- */

void xd_api_add_header(xd_api_response_t *resp, const char *name, const char *fmt, ...) {
  if (resp->n_headers >= XD_API_MAX_HEADERS) return;
  resp->header_names[resp->n_headers] = name;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(resp->header_values[resp->n_headers], sizeof resp->header_values[0], fmt, ap);
  va_end(ap);
  resp->n_headers++;
}

static void set_body(xd_api_response_t *resp, int status, char *body) {
  xd_free(resp->body);
  resp->status = status;
  resp->content_type = "application/json";
  resp->body = body;
  resp->body_len = body ? strlen(body) : 0;
}

void xd_api_error(const xd_error_t *err, xd_api_response_t *resp) {
  int code = err && err->code ? err->code : XD_EINTERNAL;
  int http = xd_api_http_status(code);
  const char *msg = err && err->text[0] ? err->text : xd_strerror(code);
  unsigned long mark = xd_json_oom_mark(); /* see below */
  json_t *body;
  if (resp->oip_errors) {
    /* The V2 protocol's shape: one string; the field goes into it. */
    char line[XD_ERROR_TEXT_MAX + XD_ERROR_FIELD_MAX + 4];
    if (err && err->field[0])
      snprintf(line, sizeof line, "%s: %s", err->field, msg);
    else
      snprintf(line, sizeof line, "%s", msg);
    body = json_pack("{s:s}", "error", line);
  } else {
    json_t *e = json_pack("{s:s, s:s}", "code", xd_api_error_code(code), "message", msg);
    if (e && err && err->field[0]) json_object_set_new(e, "field", json_string(err->field));
    body = e ? json_pack("{s:o}", "error", e) : NULL;
  }
  /* jansson allocates with xd_malloc (api/alloc.h), so its text is the response body. A
   * failed JSON allocation may have left the document without a member: then answer with
   * a fixed body instead. */
  char *s = body && xd_json_oom_mark() == mark ? xd_json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!s) {
    /* No body: either an allocation failed (the answer is then about the memory: a 500),
     * or the text is not valid UTF-8 (a method or path echoed from the request), which
     * jansson refuses: the status stands, with the code's generic message. */
    if (xd_json_oom_mark() != mark) http = 500, code = XD_ENOMEM;
    char fixed[256];
    if (resp->oip_errors)
      snprintf(fixed, sizeof fixed, "{\"error\":\"%s\"}", xd_strerror(code));
    else
      snprintf(fixed, sizeof fixed, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", xd_api_error_code(code),
               xd_strerror(code));
    s = xd_strdup(fixed);
  }
  set_body(resp, http, s);
  if (code == XD_EOVERLOAD || code == XD_ECANCELED) xd_api_add_header(resp, "Retry-After", "1");
}

void xd_api_json(xd_api_response_t *resp, int status, json_t *body) {
  /* json_dumps allocates with xd_malloc (api/alloc.h): its text is the body as is. When
   * one of its buffer allocations fails, jansson 2.14 may still return text with a piece
   * missing ("label_indices:[0]"): never send that, answer 500. */
  char *s = body ? xd_json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
  json_decref(body);
  if (!s) {
    xd_error_t err;
    xd_error_set(&err, XD_ENOMEM, NULL, "out of memory encoding the response");
    xd_api_error(&err, resp);
    return;
  }
  set_body(resp, status, s);
}

void xd_api_finish(json_t *body, const xd_error_t *err, xd_api_response_t *resp) {
  if (body)
    xd_api_json(resp, 200, body);
  else
    xd_api_error(err, resp);
}

void xd_api_response_deinit(xd_api_response_t *resp) {
  xd_free(resp->body);
  resp->body = NULL;
}

/* ---- the API object ---------------------------------------------------------------------- */

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
xd_registry_t *xd_api_registry(xd_api_t *api) { return api->reg; }
const xd_limits_t *xd_api_limits(const xd_api_t *api) { return &api->cfg.limits; }
const xd_api_config_t *xd_api_config(const xd_api_t *api) { return &api->cfg; }

xd_model_entry_t *xd_api_model(xd_api_t *api, const json_t *body, xd_error_t *err) {
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
  if (!e) xd_error_set(err, XD_ENOTFOUND, "model", "model '%s' is not loaded", json_string_value(v));
  return e;
}

int xd_api_timeout(const json_t *body, int64_t *timeout_ms, xd_error_t *err) {
  size_t t = 0;
  int rc = xd_json_opt_size(body, "timeout_ms", 1, 3600000, &t, err);
  if (rc == XD_OK) *timeout_ms = (int64_t)t;
  return rc;
}

xd_api_outcome_t xd_api_maybe_inline(const xd_api_t *api, xd_work_t *work, xd_api_response_t *resp) {
  if (work->cost_rows > api->cfg.inline_predict_rows) return XD_API_QUEUE;
  xd_error_t err;
  xd_error_clear(&err);
  json_t *out = xd_work_run_inline(work, NULL, &err);
  xd_api_finish(out, &err, resp);
  work->ops->free(work->state);
  memset(work, 0, sizeof *work);
  return XD_API_RESPOND;
}

void xd_api_handle_sync(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp,
                        const xd_cancel_t *cancel) {
  xd_work_t work;
  if (xd_api_handle(api, req, resp, &work) != XD_API_QUEUE) return;
  xd_error_t err;
  xd_error_clear(&err);
  json_t *body = xd_work_run_inline(&work, cancel, &err);
  xd_api_finish(body, &err, resp);
  work.ops->free(work.state);
}

json_t *xd_work_run_inline(const xd_work_t *w, const xd_cancel_t *cancel, xd_error_t *err) {
  if (w->ops->prepare && w->ops->prepare(w->state, cancel, err) != XD_OK) return NULL;
  for (size_t p = 0; p < w->n_parts; p++)
    if (w->ops->run(w->state, p, cancel, err) != XD_OK) return NULL;
  return w->ops->encode(w->state, err);
}

/* ---- routing ------------------------------------------------------------------------------ */

/* Bodies are JSON. curl -d sends application/x-www-form-urlencoded unless told otherwise,
 * so that (and a missing type) is read as JSON too; any other type is refused. */
static int content_type_ok(const xd_api_request_t *req) {
  const char *ct = req->header ? req->header(req->header_ctx, "Content-Type") : NULL;
  if (!ct || !*ct) return 1;
  static const char *const ok[] = {"application/json", "application/x-www-form-urlencoded", "text/plain"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    size_t n = strlen(ok[i]);
    if (strncasecmp(ct, ok[i], n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ')) return 1;
  }
  return 0;
}

static void respond_error(xd_api_response_t *resp, int code, const char *field, const char *fmt, const char *arg) {
  xd_error_t err;
  xd_error_set(&err, code, field, fmt, arg);
  xd_api_error(&err, resp);
}

static xd_api_outcome_t handle(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp,
                               xd_work_t *work);

/* A response built while a JSON allocation failed may lack a member (api/alloc.h): answer
 * 500 instead of a partial success. Queued work is checked by its own encode step. */
xd_api_outcome_t xd_api_handle(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp,
                               xd_work_t *work) {
  unsigned long mark = xd_json_oom_mark();
  xd_api_outcome_t out = handle(api, req, resp, work);
  if (out == XD_API_RESPOND && resp->status < 400 && xd_json_oom_mark() != mark) {
    xd_error_t err;
    xd_error_set(&err, XD_ENOMEM, NULL, "out of memory building the response");
    xd_api_error(&err, resp);
  }
  return out;
}

static xd_api_outcome_t handle(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp,
                               xd_work_t *work) {
  memset(work, 0, sizeof *work);
  resp->endpoint = "other";
  resp->model[0] = '\0';
  /* A CORS preflight carries no credentials (browsers never send Authorization on one):
   * it is answered here, on any path, before the key check (api/cors.h). */
  if (xd_cors_preflight(api, req, resp)) return XD_API_RESPOND;
  /* The dashboard and the API description hold no data and a browser cannot send a
   * Bearer header when it opens a page: they are served before the key check. */
  if (xd_static_handle(req, resp)) return XD_API_RESPOND;
  int v2 = strncmp(req->path, "/v2", 3) == 0 && (req->path[3] == '\0' || req->path[3] == '/');
  resp->oip_errors = v2;
  /* Probes never need a key: an orchestrator must be able to ask. */
  int probe = strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/readyz") == 0 ||
              strncmp(req->path, "/v2/health/", 11) == 0;
  if (!probe) {
    xd_error_t aerr;
    if (xd_auth_check(api, req, 0, &aerr) != XD_OK) {
      xd_api_error(&aerr, resp);
      return XD_API_RESPOND;
    }
  }
  if (strncmp(req->path, "/models/", 8) == 0 && !strchr(req->path + 8, '/') &&
      (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "DELETE") == 0)) {
    resp->endpoint = "model_admin";
    snprintf(resp->model, sizeof resp->model, "%.64s", req->path + 8);
    xd_admin_models(api, req, req->path + 8, resp);
    return XD_API_RESPOND;
  }
  if (strncmp(req->path, "/models/", 8) == 0) {
    const char *slash = strchr(req->path + 8, '/');
    if (slash && strcmp(slash, "/train") == 0) {
      /* An over-long name is cut to 65 characters, which the name check then refuses. */
      char name[XD_MODEL_NAME_MAX + 2];
      size_t nl = (size_t)(slash - (req->path + 8));
      if (nl > XD_MODEL_NAME_MAX + 1) nl = XD_MODEL_NAME_MAX + 1;
      memcpy(name, req->path + 8, nl);
      name[nl] = '\0';
      resp->endpoint = "train";
      snprintf(resp->model, sizeof resp->model, "%.64s", name);
      xd_error_t terr;
      xd_error_clear(&terr);
      if (strcmp(req->method, "POST") != 0) {
        xd_error_set(&terr, XD_EMETHOD, NULL, "method %s is not allowed here", req->method);
        xd_api_error(&terr, resp);
        xd_api_add_header(resp, "Allow", "POST");
        return XD_API_RESPOND;
      }
      if (xd_auth_check(api, req, 1, &terr) != XD_OK || xd_train_decode(api, req, name, work, &terr) != XD_OK) {
        xd_api_error(&terr, resp);
        return XD_API_RESPOND;
      }
      return XD_API_QUEUE;
    }
  }
  if (xd_service_handle(api, req, resp)) return XD_API_RESPOND;
  if (v2) return xd_v2_handle(api, req, resp, work);

  int known = 0;
  char allow[64];
  const xd_route_t *r = xd_routes_find(req->method, req->path, &known, allow, sizeof allow);
  if (!r) {
    if (known) {
      respond_error(resp, XD_EMETHOD, NULL, "method %s is not allowed here", req->method);
      xd_api_add_header(resp, "Allow", "%s", allow);
    } else {
      respond_error(resp, XD_ENOTFOUND, NULL, "no such path: %.200s", req->path);
    }
    return XD_API_RESPOND;
  }
  resp->endpoint = r->endpoint;
  if (!content_type_ok(req)) {
    respond_error(resp, XD_EMEDIA, NULL, "send the body as %s", "application/json");
    return XD_API_RESPOND;
  }
  json_error_t jerr;
  int oom = 0;
  json_t *body = xd_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr, &oom);
  if (!body || !json_is_object(body)) {
    xd_error_t err;
    if (oom)
      xd_error_set(&err, XD_ENOMEM, NULL, "out of memory reading the body"); /* not the client's fault */
    else if (!body)
      xd_error_set(&err, XD_EJSON, NULL, "body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                   jerr.column);
    else
      xd_error_set(&err, XD_EJSON, NULL, "body must be a JSON object");
    json_decref(body);
    xd_api_error(&err, resp);
    return XD_API_RESPOND;
  }
  json_t *model = json_object_get(body, "model");
  if (json_is_string(model)) snprintf(resp->model, sizeof resp->model, "%s", json_string_value(model));
  xd_error_t err;
  xd_error_clear(&err);
  int rc = r->decode(api, body, work, &err);
  json_decref(body);
  if (rc != XD_OK) {
    if (!err.code) err.code = rc;
    xd_api_error(&err, resp);
    return XD_API_RESPOND;
  }
  /* Small predictions are cheaper to answer here than to hand over to a worker. */
  if (r->decode == xd_predict_decode) return xd_api_maybe_inline(api, work, resp);
  return XD_API_QUEUE;
}
