/* jobs.c — the /jobs routes (docs/jobs.md): requests in, answers out; the backend
 * (api/jobs.h, the server's job manager) runs and stores the jobs. */
#include "api/jobs.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/alloc.h"
#include "api/endpoints.h"
#include "core/alloc.h"

/* The backend, or NULL (an API without one, in tests and tools: no job exists, and a
 * valid submission is refused). The id is no model: no metrics label for it. */
static const xd_jobs_backend_t *backend(xd_api_t *api, xd_api_response_t *resp) {
  resp->model[0] = '\0';
  return xd_api_jobs(api);
}

/* The {name} segment as a job id: at most 32 characters of [0-9a-z]. */
static int job_id(const xd_route_args_t *args, char id[40], xd_api_response_t *resp) {
  size_t n = args->name_len;
  int ok = n > 0 && n <= 32;
  for (size_t i = 0; ok && i < n; i++) ok = (args->name[i] >= '0' && args->name[i] <= '9') || (args->name[i] >= 'a' && args->name[i] <= 'z');
  if (!ok) {
    xd_api_errorf(resp, XD_ENOTFOUND, "id", "no job '%.*s' (ids are up to 32 characters of 0-9 and a-z)",
                  (int)(n < 40 ? n : 40), args->name);
    return 0;
  }
  memcpy(id, args->name, n);
  id[n] = '\0';
  return 1;
}

static void not_found(xd_api_response_t *resp, const char *id) {
  xd_api_errorf(resp, XD_ENOTFOUND, "id", "no job '%s': give the id of a job that GET /jobs lists", id);
}

xd_api_outcome_t xd_jobs_post(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                              xd_api_response_t *resp, xd_work_t *work) {
  const xd_jobs_backend_t *b = backend(api, resp);
  json_error_t jerr;
  int oom = 0;
  json_t *body = xd_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr, &oom);
  if (!body || !json_is_object(body)) {
    if (oom) xd_api_errorf(resp, XD_ENOMEM, NULL, "out of memory reading the body");
    else if (!body) xd_api_errorf(resp, XD_EJSON, NULL, "body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
    else xd_api_errorf(resp, XD_EJSON, NULL, "body must be a JSON object");
    json_decref(body);
    return XD_API_RESPOND;
  }
  xd_jobspec_t spec;
  xd_error_t err;
  xd_error_clear(&err);
  json_t *status = NULL;
  int rc = xd_jobspec_parse(b && b->api ? b->api : api, body, b ? b->max_rows : 1000000, &spec, &err);
  json_decref(body);
  if (rc == XD_OK) {
    rc = b ? b->submit(b->ctx, &spec, &status, &err)
           : xd_error_set(&err, XD_EUNSUPPORTED, NULL, "batch jobs are not enabled here (no job manager)");
    xd_jobspec_deinit(&spec);
  }
  if (rc != XD_OK) {
    if (!err.code) err.code = rc;
    xd_api_error(&err, resp);
    return XD_API_RESPOND;
  }
  xd_api_add_header(resp, "Location", "/jobs/%s", json_string_value(json_object_get(status, "id")));
  xd_api_json(resp, 202, status);
  (void)args, (void)work;
  return XD_API_RESPOND;
}

xd_api_outcome_t xd_jobs_list(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                              xd_api_response_t *resp, xd_work_t *work) {
  const xd_jobs_backend_t *b = backend(api, resp);
  xd_api_json(resp, 200, b ? b->list(b->ctx) : json_pack("{s:[]}", "jobs"));
  (void)req, (void)args, (void)work;
  return XD_API_RESPOND;
}

xd_api_outcome_t xd_jobs_get(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                             xd_api_response_t *resp, xd_work_t *work) {
  const xd_jobs_backend_t *b = backend(api, resp);
  char id[40];
  if (!job_id(args, id, resp)) return XD_API_RESPOND;
  if (!b) return not_found(resp, id), XD_API_RESPOND;
  json_t *st = b->status(b->ctx, id);
  if (!st) not_found(resp, id);
  else xd_api_json(resp, 200, st);
  (void)req, (void)work;
  return XD_API_RESPOND;
}

xd_api_outcome_t xd_jobs_delete(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                                xd_api_response_t *resp, xd_work_t *work) {
  const xd_jobs_backend_t *b = backend(api, resp);
  char id[40];
  if (!job_id(args, id, resp)) return XD_API_RESPOND;
  if (!b) return not_found(resp, id), XD_API_RESPOND;
  xd_error_t err;
  xd_error_clear(&err);
  json_t *st = NULL;
  if (b->remove(b->ctx, id, &st, &err) != XD_OK) xd_api_error(&err, resp);
  else xd_api_json(resp, 200, st);
  (void)req, (void)work;
  return XD_API_RESPOND;
}

/* Accept: text/csv asks for the CSV table; anything else gets NDJSON. */
static int wants_csv(const xd_api_request_t *req) {
  const char *a = xd_api_header(req, "Accept");
  return a && strcasestr(a, "text/csv") != NULL;
}

xd_api_outcome_t xd_jobs_results(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                                 xd_api_response_t *resp, xd_work_t *work) {
  const xd_jobs_backend_t *b = backend(api, resp);
  char id[40];
  if (!job_id(args, id, resp)) return XD_API_RESPOND;
  if (!b) return not_found(resp, id), XD_API_RESPOND;
  int csv = wants_csv(req);
  xd_error_t err;
  xd_error_clear(&err);
  char *text = NULL;
  size_t len = 0;
  const char *type = NULL;
  if (b->results(b->ctx, id, csv, &text, &len, &type, &err) != XD_OK) {
    xd_api_error(&err, resp);
    return XD_API_RESPOND;
  }
  xd_api_response_deinit(resp);
  resp->status = 200;
  resp->body = text;
  resp->body_len = len;
  resp->content_type = type;
  (void)work;
  return XD_API_RESPOND;
}

xd_api_outcome_t xd_jobs_events(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                                xd_api_response_t *resp, xd_work_t *work) {
  const xd_jobs_backend_t *b = backend(api, resp);
  char id[40];
  if (!job_id(args, id, resp)) return XD_API_RESPOND;
  if (!b) return not_found(resp, id), XD_API_RESPOND;
  xd_error_t err;
  xd_error_clear(&err);
  if (b->events(b->ctx, id, resp, &err) != XD_OK) {
    xd_api_error(&err, resp);
    return XD_API_RESPOND;
  }
  resp->status = 200;
  resp->content_type = "text/event-stream";
  xd_api_add_header(resp, "Cache-Control", "no-cache");
  (void)req, (void)work;
  return XD_API_RESPOND;
}
