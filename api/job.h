/* job.h — model work handed from the network thread to the worker pool.
 *
 * An endpoint's decoder (network thread) validates the request into a plain state struct
 * and describes the work as an xd_work_t, run in three stages:
 *   1. prepare (optional): once per job, before any part, on one worker. What every part
 *      reads and nobody should build twice goes here (a LIME plan, a background summary,
 *      the model's output on the instances). It may write anywhere in the state.
 *   2. n_parts independent parts (e.g. one per instance, or per column) that workers may
 *      run concurrently and in any order. Parts only read what prepare built and write
 *      only their own slots of the state: no part ever waits for another, so api/ needs
 *      no lock, condition variable or barrier.
 *   3. encode, once every part succeeded.
 * The runner (server/pool.c, or xd_work_run_inline) orders the stages; the happens-before
 * edges between them are its business. Every random stream is derived from the request
 * seed and the part index, so the answer does not depend on how many workers ran it.
 */
#ifndef XD_API_JOB_H
#define XD_API_JOB_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct xd_job_ops {
  const char *endpoint; /* metrics/log label, e.g. "explain_lime" */
  /* Runs part `part` of the job. Called on a worker thread, concurrently with other
   * parts of the same job. Returns XD_OK or an error (the whole job then fails with it;
   * the first error wins). Check cancel between batches. */
  int (*run)(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err);
  /* Builds the response body after all parts succeeded (worker thread). Returns a new
   * reference, or NULL with err set. */
  json_t *(*encode)(void *state, xd_error_t *err);
  /* Frees the state (and releases its model reference). Any thread. */
  void (*free)(void *state);
  /* Optional (NULL: nothing to prepare). Runs once, on a worker thread, before any part;
   * when it fails no part runs and the job fails with its error. Check cancel between
   * batches, as parts do. (Initialize xd_job_ops_t with designated members.) */
  int (*prepare)(void *state, const xd_cancel_t *cancel, xd_error_t *err);
} xd_job_ops_t;

typedef struct xd_work {
  const xd_job_ops_t *ops;
  void *state;
  size_t n_parts;     /* >= 1 */
  uint64_t cost_rows; /* estimated model rows evaluated (admission and metrics) */
  const char *model;  /* borrowed from state: model name for logs/metrics, or NULL */
  const char *method; /* static, from the endpoint's table of method names: the metrics'
                       * "method" label of an explanation (docs/metrics.md), or NULL */
  int64_t timeout_ms; /* request's own "timeout_ms", 0 = server default */
} xd_work_t;

/* Runs prepare, every part in order and encode, on the calling thread (tests, and small
 * requests answered inline). Returns the body or NULL with err set. Does not free. */
json_t *xd_work_run_inline(const xd_work_t *w, const xd_cancel_t *cancel, xd_error_t *err);

#endif
