/* pool.h — the worker pool: model work (api/job.h xd_work_t) on libuv's thread pool.
 *
 * Design (docs/serving.md §5.2). Network threads admit a job against a fixed capacity and hand
 * it over through a mutex-protected inbox and uv_async_send; one loop thread owns the
 * scheduling. Jobs are split into parts, and parts are scheduled fairly: the loop keeps
 * a round-robin ring of active jobs and each uv work item takes the next part of the
 * next job, with at most `workers` work items outstanding. So a 10,000-part job shares
 * the workers with the small jobs that arrive after it instead of holding all of them.
 * A job with a prepare step (api/job.h) gets it run first, alone, on one worker; its parts
 * are handed out once it has finished, so no part ever waits for another.
 *
 * Every job has a deadline. Parts not started by then are skipped, and running parts see
 * it through their xd_cancel_t; the job then fails with XD_ETIMEDOUT. The first failing
 * part cancels its siblings. The worker that accounts for a job's last part encodes the
 * answer (ops->encode), frees the work state and calls the job's completion callback.
 *
 * Threads: xd_pool_admit / xd_pool_submit / xd_pool_close / xd_pool_drain /
 * xd_pool_cancel_all / xd_pool_cancel_job / xd_pool_inflight from any thread;
 * xd_pool_new and xd_pool_free from the owning (main) thread.
 */
#ifndef XD_SERVER_POOL_H
#define XD_SERVER_POOL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/job.h"
#include "core/status.h"

typedef struct xd_pool xd_pool_t;
typedef struct xd_pool_job xd_pool_job_t;

typedef struct xd_pool_config {
  unsigned workers;           /* uv work items outstanding at once; also UV_THREADPOOL_SIZE */
  unsigned capacity;          /* jobs admitted at once (queued + running) */
  int64_t default_timeout_ms; /* deadline of a job; a request's work.timeout_ms may only shorten it */
  /* Cost-aware admission (xd_pool_admit_work; 0 = off: jobs are only counted). Work units
   * are xd_work_t.cost_rows. A job above cost_budget / XD_POOL_HEAVY_DIV is "heavy":
   * heavy jobs may hold at most 3/4 of cost_budget and 3/4 of the job slots together
   * (the rest is kept for light ones), and a client that holds a heavy job already may
   * not take more than half of the heavy share. A heavy job alone is always admitted
   * when slots are free (the per-request limits let it through). */
  uint64_t cost_budget;
  int64_t test_part_delay_ms; /* tests only: each part first sleeps this long (cancellable) */
  /* Optional observers (metrics); worker threads; may be NULL. observe_queue: once per
   * job, seconds from submit to its first part starting. observe_compute: once per job
   * in which a part ran, summed seconds of its parts' run calls, before the state is freed
   * (so w->model is still valid). */
  void (*observe_queue)(const xd_work_t *w, double seconds);
  void (*observe_compute)(const xd_work_t *w, double seconds);
} xd_pool_config_t;

/* Called exactly once per submitted job, on a worker thread (or on the loop thread when
 * the job failed before any part ran), with either body (a new reference the callee
 * owns) or err, and print_cancel: the job's cancellation and deadline, which printing the
 * body should honour (a large answer can take seconds to print). The work state has been
 * freed already; after the callback returns the pool forgets the job. Must not block. */
typedef void (*xd_pool_done_fn)(void *ctx, json_t *body, const xd_error_t *err, const xd_cancel_t *print_cancel);

/* Sets UV_THREADPOOL_SIZE (libuv reads it once, at the first pool use in the process, so
 * call before other threads read the environment and before any other libuv work), and
 * starts the loop thread. Returns XD_OK, XD_EINVAL or XD_ENOMEM. */
int xd_pool_new(const xd_pool_config_t *cfg, xd_pool_t **out);

/* Admission: reserves a slot for one job. Returns XD_OK with *out, XD_EOVERLOAD when
 * capacity jobs are in flight or the pool is closed, or XD_ENOMEM. Never blocks. An
 * admitted job must be submitted (a reservation cannot be returned). */
int xd_pool_admit(xd_pool_t *p, xd_pool_job_t **out);

#define XD_POOL_HEAVY_DIV 64
/* Parts over cost_budget / XD_POOL_LONG_PART_DIV model rows are "long": with two workers
 * or more, they run on at most workers - 1 of them at once (pool.c pick_job). */
#define XD_POOL_LONG_PART_DIV 200
#define XD_POOL_CLIENTS 256 /* distinct clients holding heavy work tracked at once */

/* As xd_pool_admit, but for w's cost (w->cost_rows) on behalf of client (a hash of the
 * API key or the address; 0 = unknown), under the cost rules of xd_pool_config_t.
 * XD_EOVERLOAD also when the cost does not fit. The job must then be submitted with the
 * same w. */
int xd_pool_admit_work(xd_pool_t *p, const xd_work_t *w, uint64_t client, xd_pool_job_t **out);

/* Work units admitted now (heavy jobs only / all), for metrics and tests. */
void xd_pool_cost(xd_pool_t *p, uint64_t *heavy, uint64_t *all);

/* Queues admitted job for work (copied; ownership of work->state passes to the pool).
 * The deadline is start_ns (CLOCK_MONOTONIC, when the request arrived) plus the
 * smaller of work->timeout_ms (when > 0) and the pool's default_timeout_ms. done may run before this returns, on another
 * thread: make the caller's state ready for it first. */
void xd_pool_submit(xd_pool_t *p, xd_pool_job_t *job, const xd_work_t *work, int64_t start_ns,
                    xd_pool_done_fn done, void *ctx);

/* Stops admitting: later xd_pool_admit calls return XD_EOVERLOAD. */
void xd_pool_close(xd_pool_t *p);
/* 1 after xd_pool_close (to tell "draining" from "queue full"). */
int xd_pool_closed(xd_pool_t *p);

/* Waits until no job is in flight, at most timeout_ms. Returns XD_OK or XD_ETIMEDOUT. */
int xd_pool_drain(xd_pool_t *p, int64_t timeout_ms);

/* Fails every job in flight with err code XD_EOVERLOAD ("shutting down"): parts not
 * started are skipped, running parts see their cancel flag. */
void xd_pool_cancel_all(xd_pool_t *p);

/* Fails one submitted job with err (code and sentence; e.g. XD_ECANCELED when its
 * client went away): parts not started are skipped, running parts see their cancel
 * flag at their next check. An earlier error is kept. The caller must know
 * that the job is still alive, i.e. its done callback has not returned yet (http.c
 * knows: on_done takes the same lock as its caller). Any thread. */
void xd_pool_cancel_job(xd_pool_t *p, xd_pool_job_t *job, const xd_error_t *err);

/* Jobs admitted and not yet completed. */
unsigned xd_pool_inflight(xd_pool_t *p);

/* Cancels what is still in flight, waits for it, stops the loop thread and frees the
 * pool. Call after the network side can no longer submit. p may be NULL. */
void xd_pool_free(xd_pool_t *p);

#endif
