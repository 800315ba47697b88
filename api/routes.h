/* routes.h — the route table: every endpoint of the service, one row each (routes.c).
 *
 * A row says everything the router decides before a handler runs: method, path pattern,
 * who may call it (auth scope), where its work runs, its metrics label, and its handler.
 * 405 with Allow, 401/403, HEAD and CORS preflights are derived from the table by the
 * router (api/api.c), once, for every endpoint. Adding an endpoint is adding a row (see
 * docs/routing.md).
 */
#ifndef XD_API_ROUTES_H
#define XD_API_ROUTES_H

#include <stddef.h>

#include "api/auth.h"
#include "api/endpoints.h"

typedef enum xd_run {
  XD_RUN_INLINE,           /* answered on the network thread (cheap, no model work) */
  XD_RUN_POOL,             /* queued work runs on the worker pool */
  XD_RUN_POOL_UNLESS_SMALL /* on the pool, unless at most inline_predict_rows model rows */
} xd_run_t;

typedef struct xd_route {
  const char *method;  /* "GET" rows also answer HEAD */
  /* Literal segments and the placeholders {name} and {version}, each matching one
   * non-empty segment: "/models/{name}/train". NULL: the row matches when serves(path). */
  const char *pattern;
  xd_scope_t scope;
  xd_run_t run;
  const char *endpoint;         /* metrics and access-log label */
  xd_endpoint_decode_fn decode; /* JSON-body endpoints: the router parses the body... */
  xd_endpoint_fast_fn fast;     /* (optional: the decoder's fast path on the raw body) */
  xd_endpoint_answer_fn answer; /* ...or the handler reads the request itself */
  int (*serves)(const char *path);
} xd_route_t;

/* What the table says about a path when no row matched its method too. */
typedef struct xd_route_miss {
  const xd_route_t *first; /* the first row for the path (its label), or NULL: 404 */
  xd_scope_t scope;        /* the least scope among the path's rows */
  char allow[96];          /* the path's methods, "GET, HEAD, PUT, DELETE" */
} xd_route_miss_t;

/* The row for method and path with args filled, or NULL with miss filled. */
const xd_route_t *xd_routes_match(const char *method, const char *path, xd_route_args_t *args,
                                  xd_route_miss_t *miss);

/* The table itself (for tests and documentation tools). */
extern const xd_route_t xd_routes[];
extern const size_t xd_n_routes;

#endif
