/* response.c — the code -> HTTP status table and the response helpers (response.h). */
#include "api/response.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/alloc.h"
#include "api/jsonout.h"
#include "core/alloc.h"

/* ---- the error table -------------------------------------------------------------------- */

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

const char *xd_api_header(const xd_api_request_t *req, const char *name) {
  return req->header ? req->header(req->header_ctx, name) : NULL;
}

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

void xd_api_empty(xd_api_response_t *resp, int status, const char *content_type) {
  set_body(resp, status, NULL);
  resp->content_type = content_type;
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
  char *s = body && xd_json_oom_mark() == mark ? xd_json_print(body) : NULL;
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

void xd_api_errorf(xd_api_response_t *resp, int code, const char *field, const char *fmt, ...) {
  xd_error_t err;
  xd_error_set(&err, code, field, "%s", "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err.text, sizeof err.text, fmt, ap);
  va_end(ap);
  xd_api_error(&err, resp);
}

static void json_cancel(xd_api_response_t *resp, int status, json_t *body, const xd_cancel_t *print_cancel) {
  /* Reals as the shortest text that reads back the same (api/jsonout.h). The text is
   * allocated with xd_malloc: it is the body as is. A failed allocation while printing
   * gives NULL, never text with a piece missing: answer 500. */
  int rc = XD_ENOMEM;
  char *s = body ? xd_json_print_cancel(body, print_cancel, &rc) : NULL;
  json_decref(body);
  if (!s) {
    xd_error_t err;
    if (rc != XD_ENOMEM)
      xd_error_set(&err, rc, NULL, "the request %s while its answer was being written",
                   rc == XD_ETIMEDOUT ? "passed its deadline" : "was canceled");
    else
      xd_error_set(&err, XD_ENOMEM, NULL, "out of memory encoding the response");
    xd_api_error(&err, resp);
    return;
  }
  set_body(resp, status, s);
}

void xd_api_json(xd_api_response_t *resp, int status, json_t *body) { json_cancel(resp, status, body, NULL); }

void xd_api_finish_cancel(json_t *body, const xd_error_t *err, const xd_cancel_t *cancel, xd_api_response_t *resp) {
  if (body)
    json_cancel(resp, 200, body, cancel);
  else
    xd_api_error(err, resp);
}

void xd_api_finish(json_t *body, const xd_error_t *err, xd_api_response_t *resp) {
  xd_api_finish_cancel(body, err, NULL, resp);
}

void xd_api_response_deinit(xd_api_response_t *resp) {
  xd_free(resp->body);
  resp->body = NULL;
  if (resp->stream_free && resp->stream_ctx) resp->stream_free(resp->stream_ctx);
  resp->stream = NULL;
  resp->stream_free = NULL;
  resp->stream_ctx = NULL;
}
