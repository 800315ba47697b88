/* cors.h — Cross-Origin Resource Sharing for dashboards served from other origins.
 *
 * Policy (docs/security.md): nothing is allowed by default, i.e. only same-origin pages
 * can read answers, and no response carries a CORS header. With allowed origins
 * configured (xd_api_config_t.cors_origins, from --cors-origin):
 *   - every response carries "Vary: Origin" (caches must keep per-origin copies);
 *   - a request whose Origin is allowed gets Access-Control-Allow-Origin: <that origin>
 *     and Access-Control-Expose-Headers: X-Request-Id, Retry-After, ETag;
 *   - a preflight (OPTIONS with Origin and Access-Control-Request-Method) on any path
 *     is answered 204 (by the router, api/api.c) with -Allow-Methods, -Allow-Headers and -Max-Age, before the API
 *     key check (browsers never send Authorization on a preflight);
 *   - a preflight from an origin not allowed is answered 403 permission_denied, without
 *     CORS headers; an actual request from such an origin is served as usual (the
 *     browser, not the server, withholds the answer) without CORS headers.
 * No Access-Control-Allow-Credentials: the API authenticates with a Bearer header that
 * the page sets itself, not with cookies. The origin "*" allows every origin (its own
 * Origin is echoed, never "*", so Vary keeps caches right).
 * No sockets here: the HTTP layer calls xd_cors_headers for every response it sends.
 */
#ifndef XD_API_CORS_H
#define XD_API_CORS_H

#include "api/context.h"
#include "api/response.h"

#define XD_CORS_ALLOW_METHODS "GET, POST, PUT, DELETE, OPTIONS"
#define XD_CORS_ALLOW_HEADERS "Content-Type, Authorization, X-Request-Id, If-Match, If-None-Match"
#define XD_CORS_EXPOSE_HEADERS "X-Request-Id, Retry-After, ETag"
#define XD_CORS_MAX_AGE "600"

/* Checks and normalizes one configured origin ("https://dash.example.com:8443"): scheme
 * http or https, a host, an optional port, no path, query or trailing slash; or "*".
 * Writes the lower-cased form to out. Returns 0, or -1 with a reason in *why. */
int xd_cors_origin_parse(const char *s, size_t n, char *out, size_t cap, const char **why);

/* 1 when origin (the request's Origin header) is allowed by the configuration. */
int xd_cors_allowed(const xd_api_t *api, const char *origin);

/* 1 when req is a CORS preflight: OPTIONS with Origin and Access-Control-Request-Method. */
int xd_cors_is_preflight(const xd_api_request_t *req);

/* Calls add(ctx, name, value) for each CORS header the response to req carries (see
 * above); names and values live at least as long as req and the API. */
void xd_cors_headers(const xd_api_t *api, const xd_api_request_t *req,
                     void (*add)(void *ctx, const char *name, const char *value), void *ctx);

#endif
