/* auth.c — API keys and the admin key (auth.h). */
#include "api/auth.h"

#include <string.h>
#include <strings.h>

int xd_secret_equal(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), n = la > lb ? la : lb;
  unsigned char diff = (unsigned char)(la != lb);
  /* Walk the longer length over both strings (wrapping the shorter), so neither the
   * position of the first difference nor an early exit leaks through timing. */
  for (size_t i = 0; i < n; i++) {
    unsigned char x = la ? (unsigned char)a[i % la] : 0, y = lb ? (unsigned char)b[i % lb] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

static const char *bearer(const xd_api_request_t *req) {
  const char *h = xd_api_header(req, "Authorization");
  if (!h || strncasecmp(h, "Bearer ", 7) != 0) return NULL;
  h += 7;
  while (*h == ' ') h++;
  return *h ? h : NULL;
}

int xd_auth_check(const xd_api_t *api, const xd_api_request_t *req, xd_scope_t scope, xd_error_t *err) {
  if (scope == XD_SCOPE_OPEN) return XD_OK;
  const xd_api_config_t *cfg = xd_api_config(api);
  const char *key = bearer(req);
  int is_admin = key && cfg->admin_key && xd_secret_equal(key, cfg->admin_key);
  int is_reader = 0;
  for (size_t i = 0; key && i < cfg->n_api_keys; i++) is_reader |= xd_secret_equal(key, cfg->api_keys[i]);
  int is_known = cfg->n_api_keys == 0 || is_reader || is_admin;
  if (scope == XD_SCOPE_ADMIN) {
    /* A caller without any valid key is told that first (401), as on read endpoints. */
    if (!is_known) return xd_error_set(err, XD_EUNAUTH, NULL, "an API key is required (Authorization: Bearer ...)");
    if (!cfg->admin_key) return xd_error_set(err, XD_EPERM, NULL, "model management is disabled: start the server with an admin key");
    if (is_admin) return XD_OK;
    if (is_reader) return xd_error_set(err, XD_EPERM, NULL, "this key may not manage models");
    return xd_error_set(err, XD_EUNAUTH, NULL, "an admin key is required (Authorization: Bearer ...)");
  }
  if (is_known) return XD_OK;
  return xd_error_set(err, XD_EUNAUTH, NULL, "an API key is required (Authorization: Bearer ...)");
}
