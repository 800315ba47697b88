/* jobs.h — the /jobs routes (docs/jobs.md) and the backend that runs and stores jobs.
 *
 * The handlers (api/jobs.c) read requests and shape answers; the server's job manager
 * (server/jobs.c) queues, runs, persists and forgets jobs, behind this table of
 * functions (set with xd_api_set_jobs). Every function may be called from any network
 * thread; ids are the backend's ("0123456789abcdef").
 */
#ifndef XD_API_JOBS_H
#define XD_API_JOBS_H

#include <jansson.h>
#include <stddef.h>

#include "api/jobspec.h"
#include "api/response.h"
#include "core/status.h"

typedef struct xd_jobs_backend {
  void *ctx;
  xd_api_t *api;   /* the API jobs are decoded with (the limits of jobs), or NULL: the caller's */
  size_t max_rows; /* --max-job-rows */
  /* Takes *spec (zeroed on success) and answers the new job's status (new reference). */
  int (*submit)(void *ctx, xd_jobspec_t *spec, json_t **status, xd_error_t *err);
  json_t *(*status)(void *ctx, const char *id); /* new reference, NULL: no such job */
  json_t *(*list)(void *ctx);                   /* {"jobs": [status, ...]} */
  /* The finished prefix of the results, NDJSON or (csv) CSV, xd_malloc'd; an importance
   * job's answer once it has succeeded. *type: their static content type. */
  int (*results)(void *ctx, const char *id, int csv, char **text, size_t *len, const char **type, xd_error_t *err);
  /* Cancels a queued or running job, deletes a finished one. */
  int (*remove)(void *ctx, const char *id, json_t **status, xd_error_t *err);
  /* Server-Sent Events: progress until the job ends (the server streams it). */
  int (*events)(void *ctx, const char *id, xd_api_response_t *resp, xd_error_t *err);
} xd_jobs_backend_t;

#endif
