/* api.h — the HTTP API without sockets: what the server calls.
 *
 * The server gives xd_api_handle a request (method, path, headers through a callback,
 * body). The router looks the request up in the route table (api/routes.h), checks the
 * caller's scope, and runs the route's handler: cheap requests are answered at once
 * (health, metadata, small predictions); model work comes back as an xd_work_t for the
 * worker pool, and xd_api_finish (api/response.h) turns its outcome into a response.
 *
 * Layers inside api/ (each includes only those below it; `make test` checks there is no
 * cycle): this router -> the route table -> handlers (one file per endpoint family) ->
 * context (the API object), auth, json, store -> response (errors, the code table).
 */
#ifndef XD_API_API_H
#define XD_API_API_H

#include "api/context.h"
#include "api/job.h"
#include "api/json.h"
#include "api/registry.h"
#include "api/response.h"
#include "api/store.h"

/* Routes and decodes req. Either fills resp (XD_API_RESPOND) or fills work and returns
 * XD_API_QUEUE; resp->endpoint and resp->model are set in both cases. Network thread;
 * never blocks on model work (work small enough to answer inline is run here). */
xd_api_outcome_t xd_api_handle(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp, xd_work_t *work);

/* The key decision of xd_api_handle from the request line and headers alone, for the
 * server to refuse a request 401/403 before it reads (and holds) its body: XD_OK, or
 * XD_EUNAUTH / XD_EPERM with err filled. The same route table decides both, so the two
 * always agree. header: case-insensitive lookup, NULL when absent. Any thread. */
int xd_api_authorize(const xd_api_t *api, const char *method, const char *path,
                     const char *(*header)(void *ctx, const char *name), void *ctx, xd_error_t *err);

/* Routes req and answers it entirely on the calling thread, running any model work
 * inline under cancel (may be NULL): what a worker pool would do, without one. For tests,
 * fuzzers and tools. resp must be zeroed by the caller; deinit it after. */
void xd_api_handle_sync(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp,
                        const xd_cancel_t *cancel);

#endif
