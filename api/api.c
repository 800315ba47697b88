/* api.c — the router: one pass over the route table (api/routes.c) decides, for every
 * request, the CORS preflight, 404/405 with Allow, 401/403, HEAD, the body's parsing
 * and where the work runs. Handlers decide nothing of that. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/alloc.h"
#include "api/auth.h"
#include "api/cors.h"
#include "api/routes.h"
#include "core/alloc.h"

/* Runs work on the calling thread and answers into resp when it is at most
 * inline_predict_rows model rows (cheaper than handing it to a worker): returns
 * XD_API_RESPOND with work consumed; otherwise XD_API_QUEUE with work untouched. */
static xd_api_outcome_t maybe_inline(const xd_api_t *api, xd_work_t *work, xd_api_response_t *resp) {
  if (work->cost_rows > xd_api_config(api)->inline_predict_rows) return XD_API_QUEUE;
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

/* Bodies are JSON. curl -d sends application/x-www-form-urlencoded unless told otherwise,
 * so that (and a missing type) is read as JSON too; any other type is refused. */
static int content_type_ok(const xd_api_request_t *req) {
  const char *ct = xd_api_header(req, "Content-Type");
  if (!ct || !*ct) return 1;
  static const char *const ok[] = {"application/json", "application/x-www-form-urlencoded", "text/plain"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    size_t n = strlen(ok[i]);
    if (strncasecmp(ct, ok[i], n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ')) return 1;
  }
  return 0;
}

/* A JSON-body route: Content-Type, parse, then the route's decoder. */
static xd_api_outcome_t decode_json(xd_api_t *api, const xd_route_t *r, const xd_api_request_t *req,
                                    xd_api_response_t *resp, xd_work_t *work) {
  if (!content_type_ok(req)) {
    xd_api_errorf(resp, XD_EMEDIA, NULL, "send the body as %s", "application/json");
    return XD_API_RESPOND;
  }
  if (r->fast && r->fast(api, req->body, req->body_len, work)) {
    if (work->model) snprintf(resp->model, sizeof resp->model, "%s", work->model);
    return XD_API_QUEUE;
  }
  json_error_t jerr;
  int oom = 0;
  json_t *body = xd_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr, &oom);
  if (!body || !json_is_object(body)) {
    if (oom)
      xd_api_errorf(resp, XD_ENOMEM, NULL, "out of memory reading the body"); /* not the client's fault */
    else if (!body && req->body_len == 0)
      xd_api_errorf(resp, XD_EJSON, NULL, "body is empty: send a JSON object such as {\"model\": ...}");
    else if (!body)
      xd_api_errorf(resp, XD_EJSON, NULL, "body is not valid JSON (expected a JSON object): %s (line %d, column %d)", jerr.text, jerr.line,
                    jerr.column);
    else
      xd_api_errorf(resp, XD_EJSON, NULL, "body must be a JSON object");
    json_decref(body);
    return XD_API_RESPOND;
  }
  json_t *model = json_object_get(body, "model");
  if (json_is_string(model)) snprintf(resp->model, sizeof resp->model, "%s", json_string_value(model));
  xd_error_t err;
  xd_error_clear(&err);
  int rc = r->decode(api, body, work, &err);
  json_decref(body);
  resp->explain_method = rc == XD_OK ? work->method : NULL;
  if (rc != XD_OK) {
    if (!err.code) err.code = rc;
    xd_api_error(&err, resp);
    return XD_API_RESPOND;
  }
  return XD_API_QUEUE;
}

/* The scope of a path the table has no row for with this method (404, 405): the least of
 * the path's rows, at most READ, so that not even an unknown path is told to a caller
 * without a key (open paths aside). */
static xd_scope_t miss_scope(const xd_route_miss_t *miss) {
  return miss->first && miss->scope < XD_SCOPE_READ ? miss->scope : XD_SCOPE_READ;
}

static int auth_fails(xd_api_t *api, const xd_api_request_t *req, xd_scope_t scope, xd_api_response_t *resp) {
  xd_error_t err;
  if (xd_auth_check(api, req, scope, &err) == XD_OK) return 0;
  xd_api_error(&err, resp);
  return 1;
}

int xd_api_authorize(const xd_api_t *api, const char *method, const char *path,
                     const char *(*header)(void *ctx, const char *name), void *ctx, xd_error_t *err) {
  xd_api_request_t req = {.method = method, .path = path, .header = header, .header_ctx = ctx};
  if (xd_cors_is_preflight(&req)) return XD_OK; /* as route() below */
  xd_route_args_t args;
  xd_route_miss_t miss;
  const xd_route_t *r = xd_routes_match(method, path, &args, &miss);
  return xd_auth_check(api, &req, r ? r->scope : miss_scope(&miss), err);
}

static xd_api_outcome_t route(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp,
                              xd_work_t *work) {
  memset(work, 0, sizeof *work);
  resp->endpoint = "other";
  resp->model[0] = '\0';
  /* Under /v2 errors take the Open Inference Protocol's shape, 404s included. */
  resp->oip_errors = strncmp(req->path, "/v2", 3) == 0 && (req->path[3] == '\0' || req->path[3] == '/');
  /* A CORS preflight carries no credentials (browsers never send Authorization on one):
   * answered before the key check, for any path (api/cors.h). */
  if (xd_cors_is_preflight(req)) {
    resp->endpoint = "cors_preflight";
    if (!xd_cors_allowed(api, xd_api_header(req, "Origin")))
      xd_api_errorf(resp, XD_EPERM, NULL, "cross-origin requests from this origin are not allowed (see --cors-origin)");
    else
      xd_api_empty(resp, 204, "text/plain");
    return XD_API_RESPOND;
  }
  xd_route_args_t args;
  xd_route_miss_t miss;
  const xd_route_t *r = xd_routes_match(req->method, req->path, &args, &miss);
  if (!r) {
    if (miss.first) resp->endpoint = miss.first->endpoint;
    if (auth_fails(api, req, miss_scope(&miss), resp)) return XD_API_RESPOND;
    if (miss.first) {
      xd_api_errorf(resp, XD_EMETHOD, NULL, "method %.20s is not allowed here", req->method);
      xd_api_add_header(resp, "Allow", "%s", miss.allow);
    } else {
      xd_api_errorf(resp, XD_ENOTFOUND, NULL, "no such path: %.200s; must be one of the paths listed in /openapi.json", req->path);
    }
    return XD_API_RESPOND;
  }
  resp->endpoint = r->endpoint;
  if (args.name) snprintf(resp->model, sizeof resp->model, "%.*s", (int)(args.name_len < 64 ? args.name_len : 64), args.name);
  if (auth_fails(api, req, r->scope, resp)) return XD_API_RESPOND;
  xd_api_outcome_t out = r->decode ? decode_json(api, r, req, resp, work) : r->answer(api, req, &args, resp, work);
  /* Small predictions are cheaper to answer here than to hand over to a worker. */
  if (out == XD_API_QUEUE && r->run == XD_RUN_POOL_UNLESS_SMALL) return maybe_inline(api, work, resp);
  return out;
}

/* A response built while a JSON allocation failed may lack a member (api/alloc.h): answer
 * 500 instead of a partial success. Queued work is checked by its own encode step. */
xd_api_outcome_t xd_api_handle(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp,
                               xd_work_t *work) {
  unsigned long mark = xd_json_oom_mark();
  xd_api_outcome_t out = route(api, req, resp, work);
  if (out == XD_API_RESPOND && resp->status < 400 && xd_json_oom_mark() != mark)
    xd_api_errorf(resp, XD_ENOMEM, NULL, "out of memory building the response");
  return out;
}
