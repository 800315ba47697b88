/* routes.c — every endpoint of the service, one row each, and the path matcher.
 *
 * Rows are matched in order; the first row whose pattern and method match wins. A GET
 * row also answers HEAD. Scopes: OPEN needs no key (probes: an orchestrator must be able
 * to ask; the dashboard and API description hold no data, and a browser cannot send a
 * Bearer header when it opens a page), READ needs an API key when keys are configured,
 * ADMIN the admin key. */
#include "api/routes.h"

#include <stdio.h>
#include <string.h>

#include "api/static.h"

static int is_asset(const char *path) { return xd_static_find(path) != NULL; }

#define OPEN XD_SCOPE_OPEN
#define READ XD_SCOPE_READ
#define ADMIN XD_SCOPE_ADMIN
#define INLINE XD_RUN_INLINE
#define POOL XD_RUN_POOL
#define SMALL_INLINE XD_RUN_POOL_UNLESS_SMALL

const xd_route_t xd_routes[] = {
    /* method  pattern                                      scope  runs          label               handler */
    {"GET",    "/healthz",                                  OPEN,  INLINE,       "healthz",          .answer = xd_service_healthz},
    {"GET",    "/readyz",                                   OPEN,  INLINE,       "readyz",           .answer = xd_service_readyz},
    {"GET",    "/metrics",                                  READ,  INLINE,       "metrics",          .answer = xd_service_metrics},
    {"GET",    "/models",                                   READ,  INLINE,       "models",           .answer = xd_service_models},
    {"GET",    "/models/{name}",                            READ,  INLINE,       "model",            .answer = xd_service_model},
    {"PUT",    "/models/{name}",                            ADMIN, INLINE,       "model_admin",      .answer = xd_admin_put},
    {"DELETE", "/models/{name}",                            ADMIN, INLINE,       "model_admin",      .answer = xd_admin_delete},
    {"POST",   "/models/{name}/train",                      ADMIN, POOL,         "train",            .answer = xd_train_answer},
    {"POST",   "/predict",                                  READ,  SMALL_INLINE, "predict",          .decode = xd_predict_decode, .fast = xd_predict_fast},
    {"POST",   "/explain/gradient",                         READ,  POOL,         "explain_gradient", .decode = xd_gradient_decode},
    {"POST",   "/explain/shap",                             READ,  POOL,         "explain_shap",     .decode = xd_shap_decode},
    {"POST",   "/importance",                               READ,  POOL,         "importance",       .decode = xd_importance_decode},
    {"POST",   "/explain/pdp",                              READ,  POOL,         "explain_pdp",      .decode = xd_pdp_decode},
    {"POST",   "/explain/lime",                             READ,  POOL,         "explain_lime",     .decode = xd_lime_decode},
    {"POST",   "/explain/occlusion",                        READ,  POOL,         "explain_occlusion", .decode = xd_occlusion_decode},
    /* batch jobs (docs/jobs.md) */
    {"POST",   "/jobs",                                     READ,  INLINE,       "jobs",             .answer = xd_jobs_post},
    {"GET",    "/jobs",                                     READ,  INLINE,       "jobs",             .answer = xd_jobs_list},
    {"GET",    "/jobs/{name}",                              READ,  INLINE,       "jobs",             .answer = xd_jobs_get},
    {"DELETE", "/jobs/{name}",                              READ,  INLINE,       "jobs",             .answer = xd_jobs_delete},
    {"GET",    "/jobs/{name}/results",                      READ,  INLINE,       "jobs",             .answer = xd_jobs_results},
    {"GET",    "/jobs/{name}/events",                       READ,  INLINE,       "jobs",             .answer = xd_jobs_events},
    /* the Open Inference Protocol (docs/v2.md); errors in its own shape under /v2 */
    {"GET",    "/v2",                                       READ,  INLINE,       "v2",               .answer = xd_v2_server},
    {"GET",    "/v2/",                                      READ,  INLINE,       "v2",               .answer = xd_v2_server},
    {"GET",    "/v2/health/live",                           OPEN,  INLINE,       "v2",               .answer = xd_v2_live},
    {"GET",    "/v2/health/ready",                          OPEN,  INLINE,       "v2",               .answer = xd_v2_ready},
    {"GET",    "/v2/models/{name}",                         READ,  INLINE,       "v2",               .answer = xd_v2_model},
    {"GET",    "/v2/models/{name}/versions/{version}",      READ,  INLINE,       "v2",               .answer = xd_v2_model},
    {"GET",    "/v2/models/{name}/ready",                   READ,  INLINE,       "v2",               .answer = xd_v2_model_ready},
    {"GET",    "/v2/models/{name}/versions/{version}/ready", READ, INLINE,       "v2",               .answer = xd_v2_model_ready},
    {"POST",   "/v2/models/{name}/infer",                   READ,  SMALL_INLINE, "v2_infer",         .answer = xd_v2_infer},
    {"POST",   "/v2/models/{name}/versions/{version}/infer", READ, SMALL_INLINE, "v2_infer",         .answer = xd_v2_infer},
    /* the embedded dashboard and /openapi.json (api/static.h) */
    {"GET",    NULL,                                        OPEN,  INLINE,       "dashboard",        .answer = xd_static_answer, .serves = is_asset},
};
const size_t xd_n_routes = sizeof xd_routes / sizeof *xd_routes;

/* 1 when path matches pattern; fills the placeholders' segments into args. A trailing
 * slash is one more (empty) segment, so "/v2/" is not "/v2". */
static int match(const char *pattern, const char *path, xd_route_args_t *args) {
  memset(args, 0, sizeof *args);
  const char *p = pattern, *s = path;
  while (*p && *s) {
    if (*p == '{') {
      const char *close = strchr(p, '}');
      size_t n = strcspn(s, "/");
      if (!close || n == 0) return 0;
      if (strncmp(p, "{name}", 6) == 0) args->name = s, args->name_len = n;
      else args->version = s, args->version_len = n;
      p = close + 1;
      s += n;
    } else if (*p++ != *s++) {
      return 0;
    }
  }
  return *p == '\0' && *s == '\0';
}

static int path_matches(const xd_route_t *r, const char *path, xd_route_args_t *args) {
  if (!r->pattern) {
    memset(args, 0, sizeof *args);
    return r->serves && r->serves(path);
  }
  return match(r->pattern, path, args);
}

static void allow_add(char *allow, size_t cap, const char *method) {
  size_t l = strlen(allow);
  if (strstr(allow, method)) return; /* each method once ("GET" rows of one path) */
  snprintf(allow + l, cap - l, "%s%s", l ? ", " : "", method);
}

const xd_route_t *xd_routes_match(const char *method, const char *path, xd_route_args_t *args,
                                  xd_route_miss_t *miss) {
  int head = strcmp(method, "HEAD") == 0;
  memset(miss, 0, sizeof *miss);
  miss->scope = XD_SCOPE_ADMIN;
  for (size_t i = 0; i < xd_n_routes; i++) {
    const xd_route_t *r = &xd_routes[i];
    xd_route_args_t a;
    if (!path_matches(r, path, &a)) continue;
    if (strcmp(r->method, method) == 0 || (head && strcmp(r->method, "GET") == 0)) {
      *args = a;
      return r;
    }
    if (!miss->first) miss->first = r;
    if (r->scope < miss->scope) miss->scope = r->scope;
    allow_add(miss->allow, sizeof miss->allow, r->method);
    if (strcmp(r->method, "GET") == 0) allow_add(miss->allow, sizeof miss->allow, "HEAD");
  }
  return NULL;
}
