/* routes.h — the static table of model-work endpoints (one line per endpoint). */
#ifndef XD_API_ROUTES_H
#define XD_API_ROUTES_H

#include "api/endpoints.h"

typedef struct xd_route {
  const char *method;
  const char *path;
  const char *endpoint; /* metrics/log label */
  xd_endpoint_decode_fn decode;
} xd_route_t;

/* The route for method and path, or NULL. *path_known is set when some route has that
 * path (so a NULL means 405 rather than 404); allow receives its methods. */
const xd_route_t *xd_routes_find(const char *method, const char *path, int *path_known, char *allow, size_t allow_cap);

#endif
