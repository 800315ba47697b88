/* jobs.h — the batch job manager (docs/jobs.md): queues, runs, persists and forgets jobs.
 *
 * One runner thread takes the jobs in turn, a chunk of instances at a time
 * (api/jobspec.h), and hands each chunk to the worker pool as low-priority work
 * (xd_work_t.low_priority): interactive requests keep the workers first. A chunk's lines
 * are appended to the job's results file and fsync'd before the job's progress counts
 * them; status changes are written to a metadata file by write + fsync + rename. After a
 * crash or a restart, xd_jobs_new finds the unfinished jobs in the job folder, cuts a torn
 * last line, and resumes each at its first missing instance: no line is lost or written
 * twice. Finished jobs are deleted job_ttl_ms after they ended.
 *
 * Files of a job, under DIR/ID/: request.json (the normalized request), meta.json
 * (status, times, error), results.ndjson (one line per finished instance, in order).
 *
 * Threads: xd_jobs_new / xd_jobs_free from the main thread, after the models are loaded
 * and before serving / after serving stopped; the backend's functions from any thread.
 */
#ifndef XD_SERVER_JOBS_H
#define XD_SERVER_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "api/context.h"
#include "server/pool.h"

typedef struct xd_jobs xd_jobs_t;

typedef struct xd_jobs_config {
  const char *dir;     /* NULL or "": a private temporary folder, removed at exit */
  unsigned max_jobs;   /* queued + running */
  size_t max_rows;     /* instances of one job */
  int64_t ttl_ms;      /* finished jobs are deleted this long after they ended */
  size_t chunk_rows;   /* instances per chunk; 0 = 64 */
} xd_jobs_config_t;

/* Creates the manager, recovers the jobs of cfg->dir, registers the /jobs backend with
 * api (xd_api_set_jobs) and starts the runner. Returns XD_OK, XD_EIO (the folder) or
 * XD_ENOMEM, with err filled. */
int xd_jobs_new(const xd_jobs_config_t *cfg, xd_api_t *api, xd_pool_t *pool, xd_jobs_t **out, xd_error_t *err);

/* Stops the runner (a chunk in flight is cancelled; its job resumes at the next start
 * when it has a job folder), unregisters the backend and frees everything. m may be NULL. */
void xd_jobs_free(xd_jobs_t *m);

#endif
