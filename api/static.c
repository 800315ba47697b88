/* static.c — serves the embedded web/ files: the dashboard (/, /app.js, /app.css) and the
 * OpenAPI document (/openapi.json). The bytes live in the table generated at build time
 * by tools/embed_web.sh (see static.h); nothing is read from disk. */
#include "api/static.h"

#include "api/endpoints.h"

#include <string.h>

#include "core/alloc.h"
#include "core/status.h"

/* Scripts and styles come from this origin only; the page draws its charts as inline SVG
 * through the DOM, which this policy allows. */
#define CSP "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"

static const struct {
  const char *ext, *type;
} mime_table[] = {
    {".html", "text/html; charset=utf-8"},       {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},         {".json", "application/json"},
    {".svg", "image/svg+xml"},                    {".png", "image/png"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *mime_type(const char *path) {
  const char *dot = strrchr(path, '.');
  if (dot)
    for (size_t i = 0; i < sizeof mime_table / sizeof *mime_table; i++)
      if (strcmp(dot, mime_table[i].ext) == 0) return mime_table[i].type;
  return "application/octet-stream";
}

const xd_static_asset_t *xd_static_find(const char *path) {
  if (!path) return NULL;
  if (strcmp(path, "/") == 0) path = "/index.html";
  for (size_t i = 0; i < xd_static_n_assets; i++)
    if (strcmp(xd_static_assets[i].path, path) == 0) return &xd_static_assets[i];
  return NULL;
}

/* If-None-Match names our ETag (in a list, weak or strong) or is "*". */
static int not_modified(const xd_api_request_t *req, const char *etag) {
  const char *inm = xd_api_header(req, "If-None-Match");
  if (!inm) return 0;
  while (*inm == ' ') inm++;
  return strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL;
}

xd_api_outcome_t xd_static_answer(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                                  xd_api_response_t *resp, xd_work_t *work) {
  const xd_static_asset_t *a = xd_static_find(req->path); /* the route matched: it exists */
  resp->endpoint = strcmp(a->path, "/openapi.json") == 0 ? "openapi" : "dashboard";
  if (not_modified(req, a->etag)) {
    xd_api_empty(resp, 304, mime_type(a->path));
  } else {
    char *body = xd_malloc(a->len ? a->len : 1);
    if (!body) {
      xd_api_errorf(resp, XD_ENOMEM, NULL, "out of memory");
      return XD_API_RESPOND;
    }
    memcpy(body, a->data, a->len);
    xd_free(resp->body);
    resp->status = 200;
    resp->body = body;
    resp->body_len = a->len;
    resp->content_type = mime_type(a->path);
  }
  xd_api_add_header(resp, "Cache-Control", "no-cache");
  xd_api_add_header(resp, "ETag", "%s", a->etag);
  xd_api_add_header(resp, "Content-Security-Policy", "%s", CSP);
  return XD_API_RESPOND;
}
