/* auth.h — who may call what: API keys and the admin key (Authorization: Bearer KEY).
 *
 * Every route names its scope in the route table (api/routes.c) and the router checks
 * it here, once, before the handler runs. Keys come from xd_api_config_t and are
 * compared in constant time.
 */
#ifndef XD_API_AUTH_H
#define XD_API_AUTH_H

#include "api/context.h"
#include "api/response.h"

typedef enum xd_scope {
  XD_SCOPE_OPEN = 0, /* no key: probes, the dashboard and the API description */
  XD_SCOPE_READ,     /* an API key (or the admin key) when keys are configured */
  XD_SCOPE_ADMIN,    /* the admin key; 403 when none is configured */
} xd_scope_t;

/* Checks req's Authorization header for scope. Returns XD_OK, XD_EUNAUTH (missing or
 * unknown key) or XD_EPERM (a read key on an admin endpoint, or no admin key
 * configured), with err set. Any thread. */
int xd_auth_check(const xd_api_t *api, const xd_api_request_t *req, xd_scope_t scope, xd_error_t *err);

/* Constant-time comparison of two NUL-terminated secrets: the time depends only on
 * the lengths, never on where they first differ. Returns 1 when equal. */
int xd_secret_equal(const char *a, const char *b);

#endif
