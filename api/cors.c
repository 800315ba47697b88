/* cors.c — see cors.h. */
#include "api/cors.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

int xd_cors_origin_parse(const char *s, size_t n, char *out, size_t cap, const char **why) {
  *why = NULL;
  if (n == 1 && s[0] == '*') {
    if (cap < 2) return *why = "too long", -1;
    memcpy(out, "*", 2);
    return 0;
  }
  if (n + 1 > cap) return *why = "too long", -1;
  size_t p;
  if (n > 7 && strncasecmp(s, "http://", 7) == 0) p = 7;
  else if (n > 8 && strncasecmp(s, "https://", 8) == 0) p = 8;
  else return *why = "an origin starts with http:// or https://", -1;
  size_t host0 = p;
  if (s[p] == '[') { /* IPv6 literal */
    while (p < n && s[p] != ']') {
      if (!isxdigit((unsigned char)s[p]) && s[p] != ':' && s[p] != '.' && s[p] != '[')
        return *why = "bad character in the IPv6 address", -1;
      p++;
    }
    if (p == n) return *why = "unclosed [", -1;
    p++;
  } else {
    while (p < n && (isalnum((unsigned char)s[p]) || s[p] == '.' || s[p] == '-')) p++;
  }
  if (p == host0) return *why = "no host", -1;
  if (p < n && s[p] == ':') {
    size_t d0 = ++p;
    while (p < n && isdigit((unsigned char)s[p])) p++;
    if (p == d0 || p - d0 > 5) return *why = "bad port", -1;
  }
  if (p != n) return *why = "an origin is scheme://host[:port], without a path or trailing slash", -1;
  for (size_t i = 0; i < n; i++) out[i] = (char)tolower((unsigned char)s[i]);
  out[n] = '\0';
  return 0;
}

int xd_cors_allowed(const xd_api_t *api, const char *origin) {
  const xd_api_config_t *cfg = xd_api_config(api);
  if (!origin || !*origin || cfg->n_cors_origins == 0) return 0;
  /* An opaque origin (sandboxed frame, file://) sends "null": never allowed. */
  if (strcmp(origin, "null") == 0) return 0;
  for (size_t i = 0; i < cfg->n_cors_origins; i++) {
    const char *o = cfg->cors_origins[i];
    if (strcmp(o, "*") == 0 || strcasecmp(o, origin) == 0) return 1;
  }
  return 0;
}

static const char *hdr(const xd_api_request_t *req, const char *name) {
  return req->header ? req->header(req->header_ctx, name) : NULL;
}

int xd_cors_is_preflight(const xd_api_request_t *req) {
  return req->method && strcmp(req->method, "OPTIONS") == 0 && hdr(req, "Origin") &&
         hdr(req, "Access-Control-Request-Method");
}

void xd_cors_headers(const xd_api_t *api, const xd_api_request_t *req,
                     void (*add)(void *ctx, const char *name, const char *value), void *ctx) {
  if (xd_api_config(api)->n_cors_origins == 0) return; /* same origin only: no CORS headers at all */
  add(ctx, "Vary", "Origin");
  const char *origin = hdr(req, "Origin");
  if (!xd_cors_allowed(api, origin)) return;
  add(ctx, "Access-Control-Allow-Origin", origin);
  if (xd_cors_is_preflight(req)) {
    add(ctx, "Access-Control-Allow-Methods", XD_CORS_ALLOW_METHODS);
    add(ctx, "Access-Control-Allow-Headers", XD_CORS_ALLOW_HEADERS);
    add(ctx, "Access-Control-Max-Age", XD_CORS_MAX_AGE);
  } else {
    add(ctx, "Access-Control-Expose-Headers", XD_CORS_EXPOSE_HEADERS);
  }
}
