/* authorize.h — the API's key decision from the request line and headers alone.
 *
 * The server calls this as soon as the headers are in, before it reads (and holds) a
 * body: a request that would be refused 401/403 is refused without the upload. It gives
 * the same answer the router gives later for the same request (xd_api_handle checks
 * again): CORS preflights, the embedded static files and the health probes need no key;
 * model management (PUT/DELETE /models/{name}, POST /models/{name}/train) needs the
 * admin key; everything else a read key when read keys are configured.
 */
#ifndef XD_API_AUTHORIZE_H
#define XD_API_AUTHORIZE_H

#include "api/api.h"

/* XD_OK, or XD_EUNAUTH / XD_EPERM with err filled. path without the query string.
 * header: case-insensitive lookup, NULL when absent. Any thread. */
int xd_api_authorize(const xd_api_t *api, const char *method, const char *path,
                     const char *(*header)(void *ctx, const char *name), void *ctx, xd_error_t *err);

#endif
