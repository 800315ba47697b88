/* response.h — the base layer of api/: the request and response values, the one table
 * that maps status codes to HTTP statuses and API error codes, and the helpers every
 * handler answers with. No handler builds error JSON by hand.
 *
 * This module depends on no other part of api/ except the JSON allocator (api/alloc.h):
 * handlers, the router and the server all use it, and it uses none of them.
 * Every function here is thread-safe on distinct responses.
 */
#ifndef XD_API_RESPONSE_H
#define XD_API_RESPONSE_H

#include <jansson.h>
#include <stddef.h>

#include "core/status.h"

/* A request as the HTTP layer hands it over: no sockets. */
typedef struct xd_api_request {
  const char *method;
  const char *path;   /* without the query string */
  const char *query;  /* raw query string or NULL */
  const char *body;
  size_t body_len;
  /* Header lookup (case-insensitive); returns NULL when absent. */
  const char *(*header)(void *ctx, const char *name);
  void *header_ctx;
} xd_api_request_t;

/* The request's header name, or NULL (also when the request has no header lookup). */
const char *xd_api_header(const xd_api_request_t *req, const char *name);

#define XD_API_MAX_HEADERS 4
#define XD_API_MODEL_LABEL_MAX 64

typedef struct xd_api_response {
  int status;
  char *body; /* xd_malloc'd, owned by the response */
  size_t body_len;
  const char *content_type; /* static */
  const char *header_names[XD_API_MAX_HEADERS]; /* static names */
  char header_values[XD_API_MAX_HEADERS][96];
  size_t n_headers;
  char model[XD_API_MODEL_LABEL_MAX + 1]; /* for the access log and metrics; "" if none */
  const char *endpoint;                    /* static route label */
  const char *explain_method;              /* static: the explanation method (metrics), or NULL */
  int oip_errors; /* errors in the Open Inference Protocol's shape {"error": "..."} */
  /* A streamed body instead of body (Server-Sent Events of a job): the server calls
   * stream(stream_ctx, pos, buf, max) for the next bytes; it returns their count (> 0),
   * or -1 at the end. It may wait a little (a fraction of a second) for news. The server
   * calls stream_free(stream_ctx) once the response is done (deinit does when it never
   * went out). */
  long (*stream)(void *ctx, uint64_t pos, char *buf, size_t max);
  void (*stream_free)(void *ctx);
  void *stream_ctx;
} xd_api_response_t;

typedef enum xd_api_outcome { XD_API_RESPOND = 0, XD_API_QUEUE = 1 } xd_api_outcome_t;

/* HTTP status and API error code ("invalid_argument") for a status code. */
int xd_api_http_status(int code);
const char *xd_api_error_code(int code);

/* Fills resp with the JSON error for err (status from the code table; the shape follows
 * resp->oip_errors). Adds Retry-After where the code calls for it. */
void xd_api_error(const xd_error_t *err, xd_api_response_t *resp);
/* Shorthand: the error (code, field, printf-style sentence) into resp. */
void xd_api_errorf(xd_api_response_t *resp, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Adds a response header (name static). Headers beyond XD_API_MAX_HEADERS are dropped. */
void xd_api_add_header(xd_api_response_t *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets resp's body to the compact serialization of body (consumes the reference); a
 * failed serialization answers 500. */
void xd_api_json(xd_api_response_t *resp, int status, json_t *body);
/* Sets an empty answer with the given status (204, 304). */
void xd_api_empty(xd_api_response_t *resp, int status, const char *content_type);

/* Turns a finished job into a response: body (a new reference, consumed) on success,
 * or the error. Any thread. */
void xd_api_finish(json_t *body, const xd_error_t *err, xd_api_response_t *resp);
/* As xd_api_finish, checking cancel (NULL: nothing) while printing the body and answering
 * its status instead (504 past the deadline): a job's completion callback prints its
 * answer, and a 90 MB answer takes seconds. */
void xd_api_finish_cancel(json_t *body, const xd_error_t *err, const xd_cancel_t *cancel, xd_api_response_t *resp);

void xd_api_response_deinit(xd_api_response_t *resp);

#endif
