/* job.h — model work handed from the network thread to the worker pool.
 *
 * An endpoint's decoder (network thread) validates the request into a plain state struct
 * and describes the work as an xd_work_t, run in three stages:
 *   0. n_prepare_parts prepare parts (optional): independent pieces of the preparation
 *      (e.g. the 10 k-means runs of a background summary) that workers may run
 *      concurrently and in any order, before prepare and before any part. Each writes
 *      only its own slots of the state; prepare then combines them.
 *   1. prepare (optional): once per job, after every prepare part, before any part, on
 *      one worker. What every part reads and nobody should build twice goes here (a LIME
 *      plan, a background summary, the model's output on the instances). It may write
 *      anywhere in the state.
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
  /* Optional, for endpoints whose instance i draws from random stream i: makes the
   * state's first instance draw from stream `first` (and instance k from first + k), so
   * that a batch job (api/jobspec.h) explaining rows [first, first + n) of a larger
   * request in a chunk gives every row exactly the answer of the whole request. Called
   * once, after decode and before prepare. */
  void (*set_first_index)(void *state, uint64_t first);
  /* Optional (NULL: none; required when xd_work_t.n_prepare_parts > 0). Runs prepare part
   * `part` (< n_prepare_parts) on a worker thread, concurrently with the job's other
   * prepare parts, before prepare and any part. A failure fails the job as prepare's
   * does: prepare and the parts then do not run. */
  int (*prepare_part)(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err);
  /* Optional (NULL: encode is used). As encode, for answers large enough that building
   * them can outlast the deadline (PDP's ICE curves: millions of values): checks cancel
   * every few thousand values and fails with its status (XD_ETIMEDOUT: 504) once it
   * fires. When set, the runners call it instead of encode. */
  json_t *(*encode_cancel)(void *state, const xd_cancel_t *cancel, xd_error_t *err);
} xd_job_ops_t;

typedef struct xd_work {
  const xd_job_ops_t *ops;
  void *state;
  size_t n_parts;     /* >= 1 */
  size_t n_prepare_parts; /* ops->prepare_part calls before prepare; 0 = none */
  uint64_t cost_rows; /* estimated work in dense model rows: rows evaluated x the model's
                         xd_model_row_cost (inline or pool, admission, long parts) */
  const char *model;  /* borrowed from state: model name for logs/metrics, or NULL */
  const char *method; /* static, from the endpoint's table of method names: the metrics'
                       * "method" label of an explanation (docs/metrics.md), or NULL */
  int64_t timeout_ms; /* request's own "timeout_ms", 0 = server default */
  int low_priority;   /* background work (batch jobs): the pool hands its parts out only
                         when no interactive job is waiting for a worker */
  /* Set by the caller before decode (0 for a request): the number of instances of the
   * whole request whose slice this body is (a batch job's chunk or shard). A decoder
   * whose way of cutting an instance's work depends on how many instances there are
   * decides with xd_work_request_rows, so that a slice cuts each instance exactly as the
   * whole request does, and its answers equal the whole request's bit for bit. */
  size_t request_rows;
} xd_work_t;

/* The instance count the way of cutting work is decided by: the whole request's. */
static inline size_t xd_work_request_rows(const xd_work_t *w, size_t n) { return w->request_rows ? w->request_rows : n; }

/* rows model rows of a model whose row costs row_cost dense rows (xd_model_row_cost), in
 * the unit of cost_rows; saturates instead of wrapping. */
static inline uint64_t xd_work_cost(uint64_t rows, uint64_t row_cost) {
  return row_cost && rows > UINT64_MAX / row_cost ? UINT64_MAX : rows * row_cost;
}

/* One instance's work split into sub-parts (a single large explanation on several
 * workers). The count is decided by the work alone (cost, as cost_rows: model rows x
 * row cost), never by the number of workers, so the answer is the same whatever ran it:
 * 1 below 2 x XD_WORK_SPLIT_COST, 2 from it, XD_WORK_SPLIT_MAX (4) from 4x it, so that
 * every sub-part has at least XD_WORK_SPLIT_COST. A sub-part
 * below XD_WORK_SPLIT_COST (~1 ms of one core on a 32x32 CNN) would cost more to hand out
 * and to add up than it saves. Endpoints that split add the sub-parts' partial results in
 * sub-part order (docs/serving.md, "One request on several workers"). */
#define XD_WORK_SPLIT_COST 4096u
#define XD_WORK_SPLIT_MAX 4u
static inline size_t xd_work_split(uint64_t cost) {
  return cost >= (uint64_t)XD_WORK_SPLIT_MAX * XD_WORK_SPLIT_COST ? XD_WORK_SPLIT_MAX
         : cost >= 2u * (uint64_t)XD_WORK_SPLIT_COST               ? 2
                                                                    : 1;
}

/* Sub-part k of K over n items: [*a, *b), contiguous, in order, sizes differing by at most 1. */
static inline void xd_work_range(size_t n, size_t K, size_t k, size_t *a, size_t *b) {
  *a = n * k / K;
  *b = n * (k + 1) / K;
}

/* Runs every prepare part in order, prepare, every part in order and encode, on the calling thread (tests, and small
 * requests answered inline). Returns the body or NULL with err set. Does not free. */
json_t *xd_work_run_inline(const xd_work_t *w, const xd_cancel_t *cancel, xd_error_t *err);

#endif
