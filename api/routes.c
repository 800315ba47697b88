/* routes.c — every model-work endpoint, one line each. Service endpoints (health,
 * model metadata) are answered in api.c without a decoder. */
#include "api/routes.h"

#include <stdio.h>
#include <string.h>

static const xd_route_t routes[] = {
    {"POST", "/predict", "predict", xd_predict_decode},
    {"POST", "/explain/gradient", "explain_gradient", xd_gradient_decode},
    {"POST", "/explain/shap", "explain_shap", xd_shap_decode},
    {"POST", "/importance", "importance", xd_importance_decode},
    {"POST", "/explain/pdp", "explain_pdp", xd_pdp_decode},
    {"POST", "/explain/lime", "explain_lime", xd_lime_decode},
    {"POST", "/explain/occlusion", "explain_occlusion", xd_occlusion_decode},
};

const xd_route_t *xd_routes_find(const char *method, const char *path, int *path_known, char *allow,
                                 size_t allow_cap) {
  const xd_route_t *hit = NULL;
  *path_known = 0;
  if (allow_cap) allow[0] = '\0';
  for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
    if (strcmp(routes[i].path, path) != 0) continue;
    *path_known = 1;
    if (allow_cap) {
      size_t l = strlen(allow);
      snprintf(allow + l, allow_cap - l, "%s%s", l ? ", " : "", routes[i].method);
    }
    if (strcmp(routes[i].method, method) == 0) hit = &routes[i];
  }
  return hit;
}
