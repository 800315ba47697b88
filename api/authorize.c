/* authorize.c — see authorize.h. */
#include "api/authorize.h"

#include <string.h>

#include "api/admin.h"
#include "api/cors.h"
#include "api/static.h"

/* PUT/DELETE /models/{name} and POST /models/{name}/train, as api.c routes them. */
static int is_management(const char *method, const char *path) {
  if (strncmp(path, "/models/", 8) != 0) return 0;
  const char *slash = strchr(path + 8, '/');
  if (!slash) return strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0;
  return strcmp(slash, "/train") == 0 && strcmp(method, "POST") == 0;
}

int xd_api_authorize(const xd_api_t *api, const char *method, const char *path,
                     const char *(*header)(void *ctx, const char *name), void *ctx, xd_error_t *err) {
  xd_api_request_t req = {.method = method, .path = path, .header = header, .header_ctx = ctx};
  if (xd_cors_is_preflight(&req) || xd_static_find(path)) return XD_OK;
  if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 || strncmp(path, "/v2/health/", 11) == 0)
    return XD_OK;
  int rc = xd_auth_check(api, &req, 0, err);
  if (rc == XD_OK && is_management(method, path)) rc = xd_auth_check(api, &req, 1, err);
  return rc;
}
