/* pool.c — see pool.h for the design.
 *
 * Who touches what:
 *  - p->mu guards the inbox, the list of every submitted job (for cancel_all), the
 *    in-flight count, the closed/cancelled/stopping flags and each job's err.
 *  - The loop thread alone owns the round-robin ring, next_part of each job, the free
 *    work items and `outstanding`; it never blocks on a job.
 *  - job->remaining counts parts not yet accounted for (run or skipped). Whoever takes it
 *    to zero (a worker after its part, or the loop thread when it skips the rest)
 *    finishes the job, and nobody else touches the job after their own decrement.
 *  - A job whose ops have a prepare step first gets one work item for it alone and leaves
 *    the ring meanwhile; after_work_cb (loop thread) puts it back, and only then are its
 *    parts handed out. uv's queue/after_work ordering is the happens-before edge between
 *    prepare and the parts. The step does not count in `remaining`, so the job stays alive
 *    while it runs (nobody can finish a job that is out of the ring with parts left).
 *  - Prepare parts (work.n_prepare_parts) come before that step and are handed out like
 *    parts, to any worker; the job leaves the ring once the last is handed out, and the
 *    after_work_cb of the last to finish puts it back (prep_running, loop thread). A job
 *    with prepare parts running is never retired: pump only takes it out of the ring
 *    and the last of them brings it back to be retired (see stage_back).
 */
#include "server/wait.h"
#include "server/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "server/log.h"

struct xd_pool_job {
  xd_pool_t *pool;
  xd_work_t work;
  xd_pool_done_fn done;
  void *ctx;
  int64_t deadline_ns;
  int64_t timeout_ms;
  int64_t submit_ns;
  atomic_int started;       /* a part has begun (for the queue-time observer) */
  atomic_int_fast64_t compute_ns; /* summed run time of the parts */
  atomic_int cancel;        /* set by the first error or cancel_all; read by running parts */
  atomic_size_t remaining;  /* parts not yet run or skipped */
  xd_error_t err;           /* first error; under pool->mu */
  size_t next_part;         /* loop thread */
  int prepared;             /* loop thread: its prepare parts and step (if any) have finished */
  size_t next_prep_part;    /* loop thread: prepare parts handed out */
  size_t prep_running;      /* loop thread: prepare parts handed out and not yet back */
  xd_pool_job_t *rr_next, *rr_prev;   /* loop thread: the active ring */
  xd_pool_job_t *all_next, *all_prev; /* pool->mu: every submitted job */
  xd_pool_job_t *inbox_next;          /* pool->mu */
  /* cost-aware admission (pool->mu): what this job holds, released at its finish */
  uint64_t cost;
  uint64_t client;
  int heavy;
};

/* One uv work item runs one part. There are never more than `workers` of them, so they
 * are allocated once with the pool. */
typedef struct item {
  uv_work_t req;
  xd_pool_job_t *job;
  size_t part;
  int prepare;   /* runs the job's prepare step, not a part */
  int prep_part; /* runs prepare part `part`, not a part */
  int long_part; /* counted in pool->long_running (see pick_job) */
  struct item *next_free;
} item_t;

struct xd_pool {
  xd_pool_config_t cfg;
  uv_loop_t loop;
  uv_async_t wake;
  uv_timer_t timer; /* fires at the earliest deadline of a job still waiting for parts */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t idle;
  xd_pool_job_t *inbox_head, *inbox_tail;
  xd_pool_job_t *all;
  unsigned inflight; /* jobs not yet answered: drain waits for 0 */
  unsigned admitted; /* jobs holding an admission slot (<= inflight): released before the
                        answer goes out, so a client that sends its next request as soon as
                        it reads this one's answer never meets its own old slot */
  int closed, cancelled, stopping;
  /* cost-aware admission (mu; see admission_try) */
  uint64_t cost_all, cost_heavy;
  unsigned heavy_jobs;
  struct { uint64_t client, cost; } clients[XD_POOL_CLIENTS]; /* heavy cost held per client; open addressing */
  /* loop thread only */
  xd_pool_job_t *ring; /* next job to take a part from */
  unsigned outstanding;
  unsigned long_running; /* outstanding items running a long part */
  item_t *items, *free_items;
  int loop_closing;
};

/* ---- errors and completion (any thread) ------------------------------------------ */

/* Records err as the job's error unless one is set already (the first wins) and raises
 * the cancel flag so the job's other running parts stop early. */
static void job_fail(xd_pool_job_t *j, const xd_error_t *err) {
  xd_pool_t *p = j->pool;
  pthread_mutex_lock(&p->mu);
  if (j->err.code == XD_OK) j->err = *err;
  pthread_mutex_unlock(&p->mu);
  atomic_store(&j->cancel, 1);
}

static void job_fail_code(xd_pool_job_t *j, int code) {
  xd_error_t e;
  if (code == XD_ETIMEDOUT)
    xd_error_set(&e, code, NULL, "the request's deadline (%lld ms) passed before its work finished",
                 (long long)j->timeout_ms);
  else if (code == XD_EOVERLOAD)
    xd_error_set(&e, code, NULL, "the server is shutting down; retry on another instance");
  else
    xd_error_set(&e, code, NULL, "%s", xd_strerror(code));
  job_fail(j, &e);
}

/* ---- cost-aware admission (p->mu held) --------------------------------------------- */

/* The slot of client in the per-client table: its entry, or a free one (cost 0), or
 * NULL when the table is full of other clients' heavy work. */
static uint64_t *client_cost(xd_pool_t *p, uint64_t client) {
  size_t free_at = XD_POOL_CLIENTS;
  size_t h = (size_t)(client % XD_POOL_CLIENTS);
  for (size_t k = 0; k < XD_POOL_CLIENTS; k++) {
    size_t i = (h + k) % XD_POOL_CLIENTS;
    if (p->clients[i].cost && p->clients[i].client == client) return &p->clients[i].cost;
    if (!p->clients[i].cost && free_at == XD_POOL_CLIENTS) free_at = i;
  }
  if (free_at == XD_POOL_CLIENTS) return NULL;
  p->clients[free_at].client = client;
  return &p->clients[free_at].cost;
}

/* Decides whether a job of cost from client fits now (see xd_pool_config_t) and, if so,
 * books it on j. Returns XD_OK or XD_EOVERLOAD. */
static int admission_try(xd_pool_t *p, xd_pool_job_t *j, uint64_t cost, uint64_t client) {
  const xd_pool_config_t *c = &p->cfg;
  unsigned slots = c->capacity;
  int heavy = c->cost_budget && cost > c->cost_budget / XD_POOL_HEAVY_DIV;
  if (heavy) {
    /* a queue of one slot keeps nothing back */
    unsigned heavy_slots = slots < 2 ? slots : slots - (slots >= 4 ? slots / 4 : 1);
    uint64_t share = c->cost_budget - c->cost_budget / 4;
    if (p->admitted >= heavy_slots) return XD_EOVERLOAD;
    if (p->heavy_jobs > 0 && p->cost_heavy + cost > share) return XD_EOVERLOAD;
    uint64_t *mine = client_cost(p, client);
    if (!mine || (*mine > 0 && *mine + cost > share / 2)) return XD_EOVERLOAD;
    *mine += cost;
    p->cost_heavy += cost;
    p->heavy_jobs++;
  } else if (p->admitted >= slots) {
    return XD_EOVERLOAD;
  }
  j->cost = cost;
  j->client = client;
  j->heavy = heavy;
  p->cost_all += cost;
  return XD_OK;
}

static void admission_release(xd_pool_t *p, xd_pool_job_t *j) {
  p->cost_all -= j->cost;
  if (!j->heavy) return;
  p->cost_heavy -= j->cost;
  p->heavy_jobs--;
  uint64_t *mine = client_cost(p, j->client);
  if (mine) *mine -= j->cost;
}

/* 1 when the job's deadline has passed (its answer would be a 504 anyway). */
static int deadline_passed(const xd_pool_job_t *j) { return xd_now_ns() > j->deadline_ns; }

/* The deadline a job gets: the request's own timeout_ms may only shorten the server's. */
static int64_t job_timeout_ms(const xd_pool_t *p, const xd_work_t *w) {
  int64_t d = p->cfg.default_timeout_ms;
  return w->timeout_ms > 0 && w->timeout_ms < d ? w->timeout_ms : d;
}

/* Encodes (unless a part failed), frees the work state, calls done, releases the
 * admission slot. Runs on whichever thread accounted for the job's last part. */
static void job_finish(xd_pool_job_t *j) {
  xd_pool_t *p = j->pool;
  xd_error_t err;
  pthread_mutex_lock(&p->mu);
  err = j->err;
  pthread_mutex_unlock(&p->mu);
  json_t *body = NULL;
  if (err.code == XD_OK && deadline_passed(j)) { /* the last part ended late: do not encode for nothing */
    job_fail_code(j, XD_ETIMEDOUT);
    pthread_mutex_lock(&p->mu);
    err = j->err;
    pthread_mutex_unlock(&p->mu);
  }
  if (err.code == XD_OK) {
    xd_cancel_t cancel = {&j->cancel, j->deadline_ns};
    body = j->work.ops->encode_cancel ? j->work.ops->encode_cancel(j->work.state, &cancel, &err)
                                      : j->work.ops->encode(j->work.state, &err);
    if (!body && err.code == XD_OK) xd_error_set(&err, XD_EINTERNAL, NULL, "encoding the answer failed");
  }
  if (p->cfg.observe_compute && atomic_load(&j->started))
    p->cfg.observe_compute(&j->work, (double)atomic_load(&j->compute_ns) / 1e9);
  j->work.ops->free(j->work.state);
  pthread_mutex_lock(&p->mu);
  p->admitted--;
  admission_release(p, j);
  pthread_mutex_unlock(&p->mu);
  xd_cancel_t print_cancel = {&j->cancel, j->deadline_ns};
  j->done(j->ctx, body, body ? NULL : &err, &print_cancel); /* done prints the answer: at most until the deadline */

  pthread_mutex_lock(&p->mu);
  if (j->all_prev) j->all_prev->all_next = j->all_next;
  else p->all = j->all_next;
  if (j->all_next) j->all_next->all_prev = j->all_prev;
  if (--p->inflight == 0) pthread_cond_broadcast(&p->idle);
  pthread_mutex_unlock(&p->mu);
  free(j);
}

/* ---- workers --------------------------------------------------------------------- */

/* Tests only: hold the part for ms, waking every 10 ms to honour cancel and deadline. */
static int test_delay(const xd_cancel_t *c, int64_t ms) {
  int64_t end = xd_now_ns() + ms * 1000000;
  for (;;) {
    int rc = xd_cancel_check(c);
    if (rc) return rc;
    int64_t left = end - xd_now_ns();
    if (left <= 0) return XD_OK;
    if (left > 10000000) left = 10000000;
    struct timespec ts = {0, (long)left};
    nanosleep(&ts, NULL);
  }
}

static void work_cb(uv_work_t *req) {
  item_t *it = req->data;
  xd_pool_job_t *j = it->job;
  xd_cancel_t cancel = {&j->cancel, j->deadline_ns};
  xd_error_t err;
  xd_error_clear(&err);
  const xd_pool_config_t *cfg = &j->pool->cfg;
  int rc = xd_cancel_check(&cancel); /* a part not started by the deadline is skipped */
  if (rc == XD_OK && cfg->test_part_delay_ms > 0 && !it->prepare && !it->prep_part) rc = test_delay(&cancel, cfg->test_part_delay_ms);
  if (rc == XD_OK) {
    int64_t t0 = xd_now_ns();
    if (atomic_exchange(&j->started, 1) == 0 && cfg->observe_queue)
      cfg->observe_queue(&j->work, (double)(t0 - j->submit_ns) / 1e9);
    rc = it->prep_part ? j->work.ops->prepare_part(j->work.state, it->part, &cancel, &err)
         : it->prepare ? j->work.ops->prepare(j->work.state, &cancel, &err)
                       : j->work.ops->run(j->work.state, it->part, &cancel, &err);
    atomic_fetch_add(&j->compute_ns, xd_now_ns() - t0);
  }
  if (rc == XD_ETIMEDOUT || (rc != XD_OK && err.code == XD_OK)) job_fail_code(j, rc);
  else if (rc != XD_OK) job_fail(j, &err);
  if (it->prepare || it->prep_part) return; /* not a part: after_work_cb puts the job back */
  if (atomic_fetch_sub(&j->remaining, 1) == 1) job_finish(j);
  /* j may be gone now */
}

/* ---- the loop thread: ring, scheduling, deadlines -------------------------------- */

static void ring_insert_tail(xd_pool_t *p, xd_pool_job_t *j) {
  if (!p->ring) {
    j->rr_next = j->rr_prev = j;
    p->ring = j;
  } else { /* just before the head: served after every job already waiting */
    j->rr_next = p->ring;
    j->rr_prev = p->ring->rr_prev;
    j->rr_prev->rr_next = j;
    p->ring->rr_prev = j;
  }
}

static void ring_remove(xd_pool_t *p, xd_pool_job_t *j) {
  if (j->rr_next == j) {
    p->ring = NULL;
  } else {
    j->rr_prev->rr_next = j->rr_next;
    j->rr_next->rr_prev = j->rr_prev;
    if (p->ring == j) p->ring = j->rr_next;
  }
  j->rr_next = j->rr_prev = NULL;
}

/* Skips the job's undispatched parts (deadline passed, or it failed/was cancelled). */
static void retire(xd_pool_t *p, xd_pool_job_t *j, int code) {
  size_t skipped = j->work.n_parts - j->next_part;
  j->next_part = j->work.n_parts;
  ring_remove(p, j);
  if (code) job_fail_code(j, code);
  if (atomic_fetch_sub(&j->remaining, skipped) == skipped) job_finish(j);
}

static void after_work_cb(uv_work_t *req, int status);
static void timer_cb(uv_timer_t *t);

/* ---- the loop thread: a worker kept for short parts -------------------------------- */

/* 1 when j's parts are long: over cost_budget / XD_POOL_LONG_PART_DIV model rows each. */
static int part_is_long(const xd_pool_t *p, const xd_pool_job_t *j) {
  if (!p->cfg.cost_budget || p->cfg.workers < 2) return 0;
  uint64_t per_part = j->work.cost_rows / (j->work.n_parts ? j->work.n_parts : 1);
  return per_part > p->cfg.cost_budget / XD_POOL_LONG_PART_DIV;
}

/* The next job in ring order whose part may start now: long parts (which hold a worker
 * for seconds: one LIME instance with 100 repeats of 100,000 samples is one part) may
 * occupy at most workers - 1 workers, so one worker always turns over short parts and a
 * light request never waits behind them. NULL when only long parts wait and their
 * share is taken (the free worker then waits for short work). */
static xd_pool_job_t *pick_job(xd_pool_t *p, int *is_long) {
  xd_pool_job_t *j = p->ring;
  if (!j) return NULL;
  /* Two passes: interactive jobs first; low-priority (batch) work only when no
   * interactive job can take the worker. */
  for (int low = 0; low <= 1; low++) {
    j = p->ring;
    do {
      if (!!j->work.low_priority == low) {
        *is_long = part_is_long(p, j);
        if (!*is_long || p->long_running + 1 < p->cfg.workers) return j;
      }
      j = j->rr_next;
    } while (j != p->ring);
  }
  return NULL;
}

/* ---- the loop thread: prepare parts and the prepare step ---------------------------- */

/* Sets what item it runs for j: its next prepare part, then its prepare step, then its
 * next part; takes j out of the ring while it has nothing more to hand out. */
static void stage_assign(xd_pool_t *p, xd_pool_job_t *j, item_t *it) {
  it->prepare = it->prep_part = 0;
  if (!j->prepared && j->next_prep_part < j->work.n_prepare_parts) {
    it->prep_part = 1;
    it->part = j->next_prep_part++;
    j->prep_running++;
    if (j->next_prep_part == j->work.n_prepare_parts) ring_remove(p, j); /* back when all are done */
    else p->ring = j->rr_next;
  } else if (!j->prepared && j->work.ops->prepare) {
    it->prepare = 1;
    ring_remove(p, j); /* alone until prepared: see the header comment */
  } else {
    j->prepared = 1;
    it->part = j->next_part++;
    if (j->next_part == j->work.n_parts) ring_remove(p, j); /* last part handed out */
    else p->ring = j->rr_next;                              /* next item: next job */
  }
}

/* A prepare part or the prepare step of j came back (it->prep_part / it->prepare): puts
 * j back in the ring when its next stage may start, or when it failed while out of it
 * (the pump then retires it). */
static void stage_back(xd_pool_t *p, xd_pool_job_t *j, const item_t *it) {
  if (it->prep_part) {
    if (--j->prep_running > 0 || j->rr_next) return; /* others still run, or still in the ring */
    if (j->next_prep_part == j->work.n_prepare_parts && !j->work.ops->prepare) j->prepared = 1;
  } else {
    j->prepared = 1;
  }
  ring_insert_tail(p, j);
}

/* Hands parts to free workers, round robin over the ring, and re-arms the deadline
 * timer. Called whenever something changed: new jobs, a finished part, a deadline. */
static void pump(xd_pool_t *p) {
  if (p->loop_closing) return;
  int64_t now = xd_now_ns();
  /* Retire jobs that can no longer succeed, so their clients get an answer now rather
   * than when a worker frees up. */
  if (p->ring) {
    xd_pool_job_t *j = p->ring, *stop = p->ring->rr_prev;
    for (;;) {
      xd_pool_job_t *next = j->rr_next;
      int last = j == stop;
      if (j->prep_running && (atomic_load(&j->cancel) || now > j->deadline_ns))
        ring_remove(p, j); /* its running prepare parts end first (stage_back) */
      else if (atomic_load(&j->cancel)) retire(p, j, 0);
      else if (now > j->deadline_ns) retire(p, j, XD_ETIMEDOUT);
      if (last || !p->ring) break;
      j = next;
    }
  }
  int is_long = 0;
  xd_pool_job_t *pj;
  while (p->outstanding < p->cfg.workers && (pj = pick_job(p, &is_long)) != NULL) {
    xd_pool_job_t *j = pj;
    item_t *it = p->free_items;
    p->free_items = it->next_free;
    it->job = j;
    it->long_part = is_long; /* a job's prepare step counts as one of its parts */
    p->long_running += is_long;
    stage_assign(p, j, it);
    it->req.data = it;
    p->outstanding++;
    int rc = uv_queue_work(&p->loop, &it->req, work_cb, after_work_cb);
    if (rc != 0) { /* cannot happen with valid arguments; fail the part rather than hang */
      xd_log(XD_LOG_ERROR, "uv_queue_work: %s", uv_strerror(rc));
      p->outstanding--;
      p->long_running -= it->long_part;
      it->next_free = p->free_items;
      p->free_items = it;
      job_fail_code(j, XD_EINTERNAL);
      if (it->prepare || it->prep_part) { /* back in the ring, failed: retired at the next pump */
        stage_back(p, j, it);
      } else if (atomic_fetch_sub(&j->remaining, 1) == 1) {
        job_finish(j);
      }
    }
  }
  if (p->ring) {
    int64_t first = INT64_MAX;
    xd_pool_job_t *j = p->ring;
    do {
      if (j->deadline_ns < first) first = j->deadline_ns;
      j = j->rr_next;
    } while (j != p->ring);
    int64_t ms = (first - now) / 1000000 + 1;
    uv_timer_start(&p->timer, timer_cb, ms > 0 ? (uint64_t)ms : 0, 0);
  } else {
    uv_timer_stop(&p->timer);
  }
}

static void after_work_cb(uv_work_t *req, int status) {
  (void)status; /* never canceled: we do not call uv_cancel */
  item_t *it = req->data;
  xd_pool_t *p = req->loop->data;
  if (it->prepare || it->prep_part) /* the job is alive: its parts are all still to come */
    stage_back(p, it->job, it);      /* a failed one is retired by the pump below */
  it->job = NULL; /* the job may be freed already; the item no longer refers to it */
  p->outstanding--;
  p->long_running -= it->long_part;
  it->next_free = p->free_items;
  p->free_items = it;
  pump(p);
}

static void timer_cb(uv_timer_t *t) { pump(t->loop->data); }

static void async_cb(uv_async_t *a) {
  xd_pool_t *p = a->loop->data;
  pthread_mutex_lock(&p->mu);
  xd_pool_job_t *j = p->inbox_head;
  p->inbox_head = p->inbox_tail = NULL;
  int stopping = p->stopping;
  pthread_mutex_unlock(&p->mu);
  while (j) { /* uv_async_send coalesces: take the whole inbox */
    xd_pool_job_t *next = j->inbox_next;
    ring_insert_tail(p, j);
    j = next;
  }
  pump(p);
  if (stopping && !p->loop_closing) {
    /* xd_pool_free waited for every job, so the ring is empty; in-flight uv work items
     * (their after_work_cb) still keep uv_run going until they are done. */
    p->loop_closing = 1;
    uv_close((uv_handle_t *)&p->timer, NULL);
    uv_close((uv_handle_t *)&p->wake, NULL);
  }
}

static void *loop_main(void *arg) {
  xd_pool_t *p = arg;
  uv_run(&p->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* ---- public ---------------------------------------------------------------------- */

int xd_pool_new(const xd_pool_config_t *cfg, xd_pool_t **out) {
  *out = NULL;
  if (!cfg || cfg->workers < 1 || cfg->workers > 1024 || cfg->capacity < 1 || cfg->default_timeout_ms < 1)
    return XD_EINVAL;
  char n[16];
  snprintf(n, sizeof n, "%u", cfg->workers);
  setenv("UV_THREADPOOL_SIZE", n, 1);

  xd_pool_t *p = calloc(1, sizeof *p);
  if (!p) return XD_ENOMEM;
  p->cfg = *cfg;
  p->items = calloc(cfg->workers, sizeof *p->items);
  if (!p->items) goto fail_alloc;
  for (unsigned i = 0; i < cfg->workers; i++) {
    p->items[i].next_free = p->free_items;
    p->free_items = &p->items[i];
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* drain timeouts ignore wall-clock jumps */
  pthread_cond_init(&p->idle, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&p->mu, NULL);
  if (uv_loop_init(&p->loop) != 0) goto fail_sync;
  p->loop.data = p;
  /* both before the loop thread runs: uv_async_init is not thread-safe */
  uv_async_init(&p->loop, &p->wake, async_cb);
  uv_timer_init(&p->loop, &p->timer);
  if (pthread_create(&p->thread, NULL, loop_main, p) != 0) {
    uv_close((uv_handle_t *)&p->wake, NULL);
    uv_close((uv_handle_t *)&p->timer, NULL);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    uv_loop_close(&p->loop);
    goto fail_sync;
  }
  *out = p;
  return XD_OK;
fail_sync:
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->idle);
fail_alloc:
  free(p->items);
  free(p);
  return XD_ENOMEM;
}

int xd_pool_admit(xd_pool_t *p, xd_pool_job_t **out) {
  xd_work_t none;
  memset(&none, 0, sizeof none);
  return xd_pool_admit_work(p, &none, 0, out);
}

int xd_pool_admit_work(xd_pool_t *p, const xd_work_t *w, uint64_t client, xd_pool_job_t **out) {
  *out = NULL;
  xd_pool_job_t *j = calloc(1, sizeof *j);
  if (!j) return XD_ENOMEM;
  pthread_mutex_lock(&p->mu);
  if (p->closed || admission_try(p, j, w->cost_rows, client) != XD_OK) {
    pthread_mutex_unlock(&p->mu);
    free(j);
    return XD_EOVERLOAD;
  }
  p->inflight++;
  p->admitted++;
  pthread_mutex_unlock(&p->mu);
  j->pool = p;
  *out = j;
  return XD_OK;
}

void xd_pool_cost(xd_pool_t *p, uint64_t *heavy, uint64_t *all) {
  pthread_mutex_lock(&p->mu);
  *heavy = p->cost_heavy;
  *all = p->cost_all;
  pthread_mutex_unlock(&p->mu);
}

void xd_pool_submit(xd_pool_t *p, xd_pool_job_t *j, const xd_work_t *work, int64_t start_ns,
                    xd_pool_done_fn done, void *ctx) {
  j->work = *work;
  if (j->work.n_parts == 0) j->work.n_parts = 1; /* job.h promises >= 1; be safe */
  j->done = done;
  j->ctx = ctx;
  j->timeout_ms = job_timeout_ms(p, work);
  j->deadline_ns = start_ns + j->timeout_ms * 1000000;
  j->submit_ns = xd_now_ns();
  atomic_init(&j->cancel, 0);
  atomic_init(&j->started, 0);
  atomic_init(&j->compute_ns, 0);
  atomic_init(&j->remaining, j->work.n_parts);
  xd_error_clear(&j->err);
  pthread_mutex_lock(&p->mu);
  if (p->cancelled) {
    xd_error_set(&j->err, XD_EOVERLOAD, NULL, "the server is shutting down; retry on another instance");
    atomic_store(&j->cancel, 1);
  }
  j->all_next = p->all;
  if (p->all) p->all->all_prev = j;
  p->all = j;
  if (p->inbox_tail) p->inbox_tail->inbox_next = j;
  else p->inbox_head = j;
  p->inbox_tail = j;
  pthread_mutex_unlock(&p->mu);
  uv_async_send(&p->wake);
}

void xd_pool_close(xd_pool_t *p) {
  pthread_mutex_lock(&p->mu);
  p->closed = 1;
  pthread_mutex_unlock(&p->mu);
}

int xd_pool_closed(xd_pool_t *p) {
  pthread_mutex_lock(&p->mu);
  int c = p->closed;
  pthread_mutex_unlock(&p->mu);
  return c;
}

int xd_pool_drain(xd_pool_t *p, int64_t timeout_ms) {
  return xd_wait_zero(&p->mu, &p->idle, &p->inflight, timeout_ms);
}

void xd_pool_cancel_all(xd_pool_t *p) {
  pthread_mutex_lock(&p->mu);
  p->cancelled = 1;
  for (xd_pool_job_t *j = p->all; j; j = j->all_next) {
    if (j->err.code == XD_OK)
      xd_error_set(&j->err, XD_EOVERLOAD, NULL, "the server is shutting down; retry on another instance");
    atomic_store(&j->cancel, 1);
  }
  pthread_mutex_unlock(&p->mu);
  uv_async_send(&p->wake); /* the loop retires jobs still waiting for parts */
}

void xd_pool_cancel_job(xd_pool_t *p, xd_pool_job_t *j, const xd_error_t *err) {
  job_fail(j, err);        /* first error wins; raises the flag running parts check */
  uv_async_send(&p->wake); /* the loop retires the parts not started yet (pump) */
}

unsigned xd_pool_inflight(xd_pool_t *p) {
  pthread_mutex_lock(&p->mu);
  unsigned n = p->inflight;
  pthread_mutex_unlock(&p->mu);
  return n;
}

void xd_pool_free(xd_pool_t *p) {
  if (!p) return;
  xd_pool_close(p);
  if (xd_pool_drain(p, 0) != XD_OK) {
    xd_pool_cancel_all(p);
    xd_pool_drain(p, INT32_MAX); /* canceled parts end at their next cancel check */
  }
  pthread_mutex_lock(&p->mu);
  p->stopping = 1;
  pthread_mutex_unlock(&p->mu);
  uv_async_send(&p->wake);
  pthread_join(p->thread, NULL);
  if (uv_loop_close(&p->loop) != 0) xd_log(XD_LOG_WARN, "pool: libuv loop still busy at close");
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->idle);
  free(p->items);
  free(p);
}
