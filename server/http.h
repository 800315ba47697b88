/* http.h — the HTTP front: a libmicrohttpd daemon that reads bodies, asks api/ for the
 * answer and parks model work on the worker pool.
 *
 * Flow per request (docs/serving.md §4.3-4.4): the access handler accumulates the body (413
 * from Content-Length before the upload, or at the end of an over-long chunked body),
 * then calls xd_api_handle. An answer is queued at once; model work is admitted to the
 * pool (503 overloaded + Retry-After: 1 when full), the connection is suspended, and the
 * pool's completion callback fills the response (xd_api_finish) and resumes the
 * connection as its last touch; MHD then calls the handler again, which queues it.
 * Every response carries X-Request-Id and the API's Content-Type and headers.
 *
 * Threads: xd_http_start / xd_http_quiesce / xd_http_stop from the main thread; the rest
 * is MHD's threads and the pool's.
 */
#ifndef XD_SERVER_HTTP_H
#define XD_SERVER_HTTP_H

#include <stdint.h>

#include "api/api.h"
#include "server/config.h"
#include "server/pool.h"

typedef struct xd_http xd_http_t;

/* Binds cfg->host:port (port 0 = any free port) and starts the daemon with cfg->threads
 * network threads. api and pool are borrowed and must outlive the server. Returns XD_OK,
 * XD_EIO (cannot resolve or bind; logged) or XD_ENOMEM. */
int xd_http_start(const xd_config_t *cfg, xd_api_t *api, xd_pool_t *pool, xd_http_t **out);

/* The port actually bound. */
int xd_http_port(const xd_http_t *h);

/* Stops accepting new connections; open ones go on being served. Idempotent. */
void xd_http_quiesce(xd_http_t *h);

/* Waits, at most timeout_ms, until every request that went to the pool has had its
 * response sent (or its connection closed). Returns XD_OK or XD_ETIMEDOUT. */
int xd_http_drain(xd_http_t *h, int64_t timeout_ms);

/* Requests handed to the pool whose response is not yet sent. */
unsigned xd_http_pending(xd_http_t *h);

/* Stops the daemon, closes every connection and frees h (NULL is a no-op). Precondition:
 * no connection is suspended, i.e. the pool has finished every job (xd_pool_drain, or
 * xd_pool_free which cancels the rest): MHD forbids stopping with suspended ones. */
void xd_http_stop(xd_http_t *h);

#endif
