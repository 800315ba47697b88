/* test_pool.c — the worker pool (server/pool.h) with synthetic jobs: every part runs
 * once, encode once, free once; fair round robin between a huge job and a later small
 * one; deadlines for queued and running parts; first error wins; admission capacity;
 * drain, close, cancel_all, cancel of one job, and free with work in flight. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "server/pool.h"
#include "tests/harness.h"
#include "tests/test.h"

/* What a job did, owned by the test (the job's state is freed by the pool). */
typedef struct probe {
  atomic_int ran, encoded, freed, done_calls;
  int sleep_ms;      /* per part */
  int check_cancel;  /* sleep in 1 ms slices, returning at cancel */
  long fail_part;    /* -1: none */
  atomic_int *watch; /* another job's `ran`, read when this one completes */
  int watch_at_done;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  int code;
  char field[XD_ERROR_FIELD_MAX];
  long long value; /* encoded body's integer */
  double t_done;
  /* jobs with a prepare step (ops_prepared) */
  atomic_int prepares, early; /* prepare calls; parts that ran before prepare had finished */
  atomic_int ready;           /* set at the end of prepare */
  int prepare_ms, prepare_fail;
  /* jobs with prepare parts (ops_prep_parts) */
  atomic_int prep_ran, prep_done, prep_now, prep_max; /* started, finished, running, most at once */
  atomic_int prep_late;                               /* prepare parts that began after prepare */
  atomic_int prepare_early;                           /* prepare calls before every prepare part ended */
  int prep_ms;      /* per prepare part, in 1 ms slices returning at cancel */
  long prep_fail;   /* -1: none */
  size_t n_prep;
} probe_t;

typedef struct state {
  probe_t *p;
} state_t;

static void probe_init(probe_t *p, int sleep_ms) {
  memset(p, 0, sizeof *p);
  p->sleep_ms = sleep_ms;
  p->fail_part = -1;
  p->prep_fail = -1;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
}

static void probe_deinit(probe_t *p) {
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
}

static int run(void *s, size_t part, const xd_cancel_t *c, xd_error_t *err) {
  probe_t *p = ((state_t *)s)->p;
  atomic_fetch_add(&p->ran, 1);
  if (p->check_cancel) {
    for (int i = 0; i < p->sleep_ms; i++) {
      int rc = xd_cancel_check(c);
      if (rc) return rc;
      xd_sleep_ms(1);
    }
  } else if (p->sleep_ms) {
    xd_sleep_ms(p->sleep_ms);
  }
  if ((long)part == p->fail_part) return xd_error_set(err, XD_EINVAL, "instances[3]", "part %zu failed", part);
  return XD_OK;
}

static json_t *encode(void *s, xd_error_t *err) {
  probe_t *p = ((state_t *)s)->p;
  atomic_fetch_add(&p->encoded, 1);
  return json_integer(atomic_load(&p->ran));
}

static void free_state(void *s) {
  atomic_fetch_add(&((state_t *)s)->p->freed, 1);
  free(s);
}

static const xd_job_ops_t ops = {.endpoint = "test", .run = run, .encode = encode, .free = free_state};

/* Sleeps prepare_ms in 1 ms slices (returning at cancel), then fails or marks ready. */
static int prepare(void *s, const xd_cancel_t *c, xd_error_t *err) {
  probe_t *p = ((state_t *)s)->p;
  atomic_fetch_add(&p->prepares, 1);
  for (int i = 0; i < p->prepare_ms; i++) {
    int rc = xd_cancel_check(c);
    if (rc) return rc;
    xd_sleep_ms(1);
  }
  if (p->prepare_fail) return xd_error_set(err, XD_EINVAL, "background", "prepare failed");
  atomic_store(&p->ready, 1);
  return XD_OK;
}

static int run_after_prepare(void *s, size_t part, const xd_cancel_t *c, xd_error_t *err) {
  probe_t *p = ((state_t *)s)->p;
  if (!atomic_load(&p->ready)) atomic_fetch_add(&p->early, 1);
  return run(s, part, c, err);
}

static const xd_job_ops_t ops_prepared = {
    .endpoint = "test", .prepare = prepare, .run = run_after_prepare, .encode = encode, .free = free_state};

/* A prepare part: sleeps prep_ms (returning at cancel), then fails or counts itself. */
static int prep_part(void *s, size_t part, const xd_cancel_t *c, xd_error_t *err) {
  probe_t *p = ((state_t *)s)->p;
  atomic_fetch_add(&p->prep_ran, 1);
  if (atomic_load(&p->prepares)) atomic_fetch_add(&p->prep_late, 1);
  int now = atomic_fetch_add(&p->prep_now, 1) + 1, max = atomic_load(&p->prep_max);
  while (now > max && !atomic_compare_exchange_weak(&p->prep_max, &max, now)) {
  }
  int rc = XD_OK;
  for (int i = 0; i < p->prep_ms && rc == XD_OK; i++) {
    rc = xd_cancel_check(c);
    if (rc == XD_OK) xd_sleep_ms(1);
  }
  atomic_fetch_sub(&p->prep_now, 1);
  if (rc) return rc;
  if ((long)part == p->prep_fail) return xd_error_set(err, XD_EINVAL, "background", "prepare part %zu failed", part);
  atomic_fetch_add(&p->prep_done, 1);
  return XD_OK;
}

static int prepare_after_parts(void *s, const xd_cancel_t *c, xd_error_t *err) {
  probe_t *p = ((state_t *)s)->p;
  if ((size_t)atomic_load(&p->prep_done) != p->n_prep) atomic_fetch_add(&p->prepare_early, 1);
  return prepare(s, c, err);
}

static const xd_job_ops_t ops_prep_parts = {.endpoint = "test",
                                            .prepare_part = prep_part,
                                            .prepare = prepare_after_parts,
                                            .run = run_after_prepare,
                                            .encode = encode,
                                            .free = free_state};

static void on_done(void *ctx, json_t *body, const xd_error_t *err, const xd_cancel_t *print_cancel) {
  (void)print_cancel;
  probe_t *p = ctx;
  atomic_fetch_add(&p->done_calls, 1);
  pthread_mutex_lock(&p->mu);
  p->code = body ? XD_OK : err->code;
  if (err) snprintf(p->field, sizeof p->field, "%s", err->field);
  p->value = body ? json_integer_value(body) : -1;
  json_decref(body);
  if (p->watch) p->watch_at_done = atomic_load(p->watch);
  p->t_done = xd_ms_now();
  p->done = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static int wait_done(probe_t *p, int timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000 + 1;
  pthread_mutex_lock(&p->mu);
  while (!p->done)
    if (pthread_cond_timedwait(&p->cv, &p->mu, &until) != 0) break;
  int d = p->done;
  pthread_mutex_unlock(&p->mu);
  return d;
}

/* Admits and submits a job of n parts (timeout 0 = the pool's default). */
static int submit_ops(xd_pool_t *pool, const xd_job_ops_t *o, probe_t *p, size_t n, int64_t timeout_ms) {
  xd_pool_job_t *job;
  int rc = xd_pool_admit(pool, &job);
  if (rc != XD_OK) return rc;
  state_t *s = malloc(sizeof *s);
  s->p = p;
  xd_work_t w = {.ops = o, .state = s, .n_parts = n, .timeout_ms = timeout_ms};
  xd_pool_submit(pool, job, &w, xd_now_ns(), on_done, p);
  return XD_OK;
}

/* As submit_ops with ops_prep_parts and p->n_prep prepare parts; *job_out: the job. */
static int submit_prep(xd_pool_t *pool, probe_t *p, size_t n, int64_t timeout_ms, xd_pool_job_t **job_out) {
  xd_pool_job_t *job;
  int rc = xd_pool_admit(pool, &job);
  if (rc != XD_OK) return rc;
  state_t *s = malloc(sizeof *s);
  s->p = p;
  xd_work_t w = {.ops = &ops_prep_parts, .state = s, .n_parts = n, .n_prepare_parts = p->n_prep,
                 .timeout_ms = timeout_ms};
  if (job_out) *job_out = job;
  xd_pool_submit(pool, job, &w, xd_now_ns(), on_done, p);
  return XD_OK;
}

static int submit(xd_pool_t *pool, probe_t *p, size_t n, int64_t timeout_ms) {
  return submit_ops(pool, &ops, p, n, timeout_ms);
}

static xd_pool_t *new_pool(unsigned workers, unsigned cap, int64_t timeout_ms) {
  xd_pool_config_t c = {.workers = workers, .capacity = cap, .default_timeout_ms = timeout_ms};
  xd_pool_t *p = NULL;
  return xd_pool_new(&c, &p) == XD_OK ? p : NULL;
}

TEST(every_part_once_then_encode_once) {
  xd_pool_t *pool = new_pool(4, 64, 60000);
  CHECK(pool != NULL);
  enum { JOBS = 40 };
  static probe_t p[JOBS];
  for (int i = 0; i < JOBS; i++) {
    probe_init(&p[i], 0);
    CHECK(submit(pool, &p[i], (size_t)(1 + i * 7 % 23), 0) == XD_OK);
  }
  for (int i = 0; i < JOBS; i++) {
    CHECK(wait_done(&p[i], 10000));
    CHECK(p[i].code == XD_OK);
    CHECK(p[i].value == 1 + i * 7 % 23);
    CHECK(atomic_load(&p[i].encoded) == 1);
    CHECK(atomic_load(&p[i].freed) == 1);
    CHECK(atomic_load(&p[i].done_calls) == 1);
  }
  CHECK(xd_pool_drain(pool, 1000) == XD_OK);
  CHECK(xd_pool_inflight(pool) == 0);
  xd_pool_free(pool);
  for (int i = 0; i < JOBS; i++) probe_deinit(&p[i]);
}

/* The prepare step runs once per job, and no part of that job starts before it ends,
 * while other jobs keep the workers busy. */
TEST(prepare_runs_once_before_any_part) {
  xd_pool_t *pool = new_pool(4, 64, 60000);
  enum { JOBS = 6 };
  static probe_t p[JOBS];
  for (int i = 0; i < JOBS; i++) {
    probe_init(&p[i], 1);
    p[i].prepare_ms = 20;
    CHECK(submit_ops(pool, &ops_prepared, &p[i], 12, 0) == XD_OK);
  }
  for (int i = 0; i < JOBS; i++) {
    CHECK(wait_done(&p[i], 10000));
    CHECK(p[i].code == XD_OK && p[i].value == 12);
    CHECK(atomic_load(&p[i].prepares) == 1);
    CHECK_MSG(atomic_load(&p[i].early) == 0, "job %d: %d parts ran before prepare finished", i,
              atomic_load(&p[i].early));
    CHECK(atomic_load(&p[i].encoded) == 1 && atomic_load(&p[i].freed) == 1);
  }
  xd_pool_free(pool);
  for (int i = 0; i < JOBS; i++) probe_deinit(&p[i]);
}

/* A failing prepare fails the job with its own error; no part runs. */
TEST(failed_prepare_fails_the_job_without_parts) {
  xd_pool_t *pool = new_pool(2, 8, 60000);
  probe_t p;
  probe_init(&p, 0);
  p.prepare_fail = 1;
  CHECK(submit_ops(pool, &ops_prepared, &p, 50, 0) == XD_OK);
  CHECK(wait_done(&p, 5000));
  CHECK(p.code == XD_EINVAL && strcmp(p.field, "background") == 0);
  CHECK(atomic_load(&p.prepares) == 1);
  CHECK(atomic_load(&p.ran) == 0);
  CHECK(atomic_load(&p.encoded) == 0 && atomic_load(&p.freed) == 1 && atomic_load(&p.done_calls) == 1);
  CHECK(xd_pool_drain(pool, 1000) == XD_OK);
  xd_pool_free(pool);
  probe_deinit(&p);
}

/* prepare sees the job's deadline through its cancel: a long one ends at the deadline. */
TEST(prepare_is_cancellable_by_the_deadline) {
  xd_pool_t *pool = new_pool(2, 8, 60000);
  probe_t p;
  probe_init(&p, 0);
  p.prepare_ms = 3000;
  double t0 = xd_ms_now();
  CHECK(submit_ops(pool, &ops_prepared, &p, 4, 80) == XD_OK);
  CHECK(wait_done(&p, 5000));
  CHECK(p.code == XD_ETIMEDOUT);
  CHECK(atomic_load(&p.ran) == 0);
  CHECK_MSG(p.t_done - t0 < 1000, "answered after %.0f ms", p.t_done - t0);
  xd_pool_free(pool);
  probe_deinit(&p);
}

/* Prepare parts all run and end before prepare starts; no part starts before prepare
 * has ended; other jobs share the workers meanwhile; a job alone gets its prepare parts
 * run on both workers at once. */
TEST(prepare_parts_run_concurrently_before_prepare_and_parts) {
  xd_pool_t *pool = new_pool(2, 64, 60000);
  enum { JOBS = 4 };
  static probe_t p[JOBS];
  for (int i = 0; i < JOBS; i++) {
    probe_init(&p[i], 1);
    p[i].n_prep = 10;
    p[i].prep_ms = 15;
    p[i].prepare_ms = 2;
    CHECK(submit_prep(pool, &p[i], 6, 0, NULL) == XD_OK);
  }
  int max = 0;
  for (int i = 0; i < JOBS; i++) {
    CHECK(wait_done(&p[i], 20000));
    CHECK(p[i].code == XD_OK && p[i].value == 6);
    CHECK(atomic_load(&p[i].prep_ran) == 10 && atomic_load(&p[i].prep_done) == 10);
    CHECK(atomic_load(&p[i].prepares) == 1);
    CHECK_MSG(atomic_load(&p[i].prepare_early) == 0, "job %d: prepare began before its prepare parts ended", i);
    CHECK(atomic_load(&p[i].prep_late) == 0);
    CHECK(atomic_load(&p[i].early) == 0);
    CHECK(atomic_load(&p[i].encoded) == 1 && atomic_load(&p[i].freed) == 1);
    if (atomic_load(&p[i].prep_max) > max) max = atomic_load(&p[i].prep_max);
  }
  CHECK(max <= 2);
  /* alone, a job's prepare parts take both workers */
  probe_t one;
  probe_init(&one, 0);
  one.n_prep = 10;
  one.prep_ms = 15;
  CHECK(submit_prep(pool, &one, 2, 0, NULL) == XD_OK);
  CHECK(wait_done(&one, 20000));
  CHECK(one.code == XD_OK && atomic_load(&one.prep_done) == 10);
  CHECK_MSG(atomic_load(&one.prep_max) == 2, "prepare parts never ran on both workers at once (max %d)",
            atomic_load(&one.prep_max));
  probe_deinit(&one);
  CHECK(xd_pool_drain(pool, 1000) == XD_OK);
  xd_pool_free(pool);
  for (int i = 0; i < JOBS; i++) probe_deinit(&p[i]);
}

/* Prepare parts without a prepare step: the parts follow them. */
TEST(prepare_parts_without_prepare) {
  static const xd_job_ops_t o = {.endpoint = "test", .prepare_part = prep_part, .run = run, .encode = encode,
                                 .free = free_state};
  xd_pool_t *pool = new_pool(2, 8, 60000);
  probe_t p;
  probe_init(&p, 0);
  xd_pool_job_t *job;
  CHECK(xd_pool_admit(pool, &job) == XD_OK);
  state_t *s = malloc(sizeof *s);
  s->p = &p;
  xd_work_t w = {.ops = &o, .state = s, .n_parts = 3, .n_prepare_parts = 5};
  xd_pool_submit(pool, job, &w, xd_now_ns(), on_done, &p);
  CHECK(wait_done(&p, 5000));
  CHECK(p.code == XD_OK && p.value == 3);
  CHECK(atomic_load(&p.prep_done) == 5);
  xd_pool_free(pool);
  probe_deinit(&p);
}

/* A failing prepare part fails the job with its error: prepare and the parts never run,
 * the parts not yet started are skipped, and the job is answered and freed once. */
TEST(failed_prepare_part_fails_the_job) {
  xd_pool_t *pool = new_pool(2, 8, 60000);
  probe_t p;
  probe_init(&p, 0);
  p.n_prep = 40;
  p.prep_ms = 5;
  p.prep_fail = 1;
  CHECK(submit_prep(pool, &p, 50, 0, NULL) == XD_OK);
  CHECK(wait_done(&p, 5000));
  CHECK(p.code == XD_EINVAL && strcmp(p.field, "background") == 0);
  CHECK(atomic_load(&p.prepares) == 0 && atomic_load(&p.ran) == 0);
  CHECK_MSG(atomic_load(&p.prep_ran) < 40, "all %d prepare parts ran after one failed", atomic_load(&p.prep_ran));
  CHECK(atomic_load(&p.encoded) == 0 && atomic_load(&p.freed) == 1 && atomic_load(&p.done_calls) == 1);
  CHECK(xd_pool_drain(pool, 1000) == XD_OK);
  xd_pool_free(pool);
  probe_deinit(&p);
}

/* Cancelling a job during its prepare parts answers it with the cancel's error. */
TEST(cancelled_prepare_parts_fail_the_job) {
  xd_pool_t *pool = new_pool(2, 8, 60000);
  probe_t p;
  probe_init(&p, 0);
  p.n_prep = 8;
  p.prep_ms = 3000;
  xd_pool_job_t *job = NULL;
  double t0 = xd_ms_now();
  CHECK(submit_prep(pool, &p, 4, 0, &job) == XD_OK);
  for (int i = 0; i < 2000 && atomic_load(&p.prep_ran) == 0; i++) xd_sleep_ms(1);
  xd_error_t e;
  xd_error_set(&e, XD_ECANCELED, NULL, "client went away");
  xd_pool_cancel_job(pool, job, &e);
  CHECK(wait_done(&p, 5000));
  CHECK(p.code == XD_ECANCELED);
  CHECK(atomic_load(&p.prepares) == 0 && atomic_load(&p.ran) == 0);
  CHECK_MSG(p.t_done - t0 < 2500, "answered after %.0f ms", p.t_done - t0);
  CHECK(atomic_load(&p.freed) == 1 && atomic_load(&p.done_calls) == 1);
  xd_pool_free(pool);
  probe_deinit(&p);
}

/* Prepare parts see the job's deadline: long ones end at it, with XD_ETIMEDOUT. */
TEST(prepare_parts_are_cancellable_by_the_deadline) {
  xd_pool_t *pool = new_pool(2, 8, 60000);
  probe_t p;
  probe_init(&p, 0);
  p.n_prep = 6;
  p.prep_ms = 3000;
  double t0 = xd_ms_now();
  CHECK(submit_prep(pool, &p, 4, 80, NULL) == XD_OK);
  CHECK(wait_done(&p, 5000));
  CHECK(p.code == XD_ETIMEDOUT);
  CHECK(atomic_load(&p.prepares) == 0 && atomic_load(&p.ran) == 0);
  CHECK_MSG(p.t_done - t0 < 1500, "answered after %.0f ms", p.t_done - t0);
  CHECK(atomic_load(&p.freed) == 1 && atomic_load(&p.done_calls) == 1);
  xd_pool_free(pool);
  probe_deinit(&p);
}

TEST(round_robin_lets_a_small_job_through) {
  xd_pool_t *pool = new_pool(1, 8, 60000); /* one work item at a time */
  probe_t big, small;
  probe_init(&big, 2);
  probe_init(&small, 2);
  small.watch = &big.ran;
  CHECK(submit(pool, &big, 400, 0) == XD_OK);
  xd_sleep_ms(20);
  CHECK(submit(pool, &small, 3, 0) == XD_OK);
  CHECK(wait_done(&small, 10000));
  CHECK(small.code == XD_OK);
  /* FIFO would make the small job wait for all 400 parts (0.8 s) */
  CHECK_MSG(small.watch_at_done < 40, "the big job ran %d parts before the small one finished", small.watch_at_done);
  CHECK(wait_done(&big, 20000));
  CHECK(big.code == XD_OK && big.value == 400);
  xd_pool_free(pool);
  probe_deinit(&big);
  probe_deinit(&small);
}

TEST(deadline_skips_parts_not_started) {
  xd_pool_t *pool = new_pool(1, 8, 60000);
  probe_t p;
  probe_init(&p, 20);
  double t0 = xd_ms_now();
  CHECK(submit(pool, &p, 100, 100) == XD_OK); /* 100 x 20 ms, deadline 100 ms */
  CHECK(wait_done(&p, 5000));
  CHECK(p.code == XD_ETIMEDOUT);
  CHECK(atomic_load(&p.ran) < 20);
  CHECK(atomic_load(&p.encoded) == 0);
  CHECK(atomic_load(&p.freed) == 1);
  CHECK(p.t_done - t0 < 1000);
  xd_pool_free(pool);
  probe_deinit(&p);
}

TEST(deadline_of_a_queued_job_answers_on_time) {
  xd_pool_t *pool = new_pool(1, 8, 60000);
  probe_t hog, waiting;
  probe_init(&hog, 600); /* one part that ignores cancellation */
  probe_init(&waiting, 0);
  double t0 = xd_ms_now();
  CHECK(submit(pool, &hog, 1, 0) == XD_OK);
  xd_sleep_ms(20);
  CHECK(submit(pool, &waiting, 1, 50) == XD_OK);
  CHECK(wait_done(&waiting, 5000));
  CHECK(waiting.code == XD_ETIMEDOUT);
  CHECK(atomic_load(&waiting.ran) == 0);
  CHECK_MSG(waiting.t_done - t0 < 400, "answered after %.0f ms, not at its 50 ms deadline", waiting.t_done - t0);
  CHECK(wait_done(&hog, 5000) && hog.code == XD_OK);
  xd_pool_free(pool);
  probe_deinit(&hog);
  probe_deinit(&waiting);
}

TEST(first_error_wins_and_cancels) {
  xd_pool_t *pool = new_pool(2, 8, 60000);
  probe_t p;
  probe_init(&p, 1);
  p.fail_part = 3;
  CHECK(submit(pool, &p, 200, 0) == XD_OK);
  CHECK(wait_done(&p, 5000));
  CHECK(p.code == XD_EINVAL);
  CHECK(strcmp(p.field, "instances[3]") == 0);
  CHECK(atomic_load(&p.ran) < 200); /* the rest was skipped */
  CHECK(atomic_load(&p.encoded) == 0);
  CHECK(atomic_load(&p.freed) == 1);
  xd_pool_free(pool);
  probe_deinit(&p);
}

/* xd_pool_cancel_job (used when a client disconnects): the job ends early with the given
 * error, its running part stops at the cancel check, and another job is untouched. */
TEST(cancel_one_job) {
  xd_pool_t *pool = new_pool(1, 8, 60000);
  probe_t p, other;
  probe_init(&p, 20);
  probe_init(&other, 1);
  p.check_cancel = 1;
  xd_pool_job_t *job;
  CHECK(xd_pool_admit(pool, &job) == XD_OK);
  state_t *s = malloc(sizeof *s);
  s->p = &p;
  xd_work_t w = {.ops = &ops, .state = s, .n_parts = 50}; /* 50 x 20 ms */
  xd_pool_submit(pool, job, &w, xd_now_ns(), on_done, &p);
  CHECK(submit(pool, &other, 3, 0) == XD_OK);
  xd_sleep_ms(100);
  double t0 = xd_ms_now();
  xd_error_t e;
  xd_error_set(&e, XD_ECANCELED, NULL, "the client closed the connection");
  xd_pool_cancel_job(pool, job, &e); /* alive: its done has not run (it needs ~1 s) */
  CHECK(wait_done(&p, 5000));
  CHECK(p.code == XD_ECANCELED);
  CHECK_MSG(p.t_done - t0 < 200, "ended %.0f ms after the cancel", p.t_done - t0);
  CHECK(atomic_load(&p.ran) < 20);
  CHECK(atomic_load(&p.encoded) == 0);
  CHECK(atomic_load(&p.freed) == 1);
  CHECK(atomic_load(&p.done_calls) == 1);
  CHECK(wait_done(&other, 5000) && other.code == XD_OK && other.value == 3);
  xd_pool_free(pool);
  probe_deinit(&p);
  probe_deinit(&other);
}

TEST(admission_capacity_then_recovery) {
  xd_pool_t *pool = new_pool(2, 2, 60000);
  probe_t a, b, c;
  probe_init(&a, 200);
  probe_init(&b, 200);
  probe_init(&c, 0);
  CHECK(submit(pool, &a, 1, 0) == XD_OK);
  CHECK(submit(pool, &b, 1, 0) == XD_OK);
  CHECK(xd_pool_inflight(pool) == 2);
  CHECK(submit(pool, &c, 1, 0) == XD_EOVERLOAD); /* at once, not after a wait */
  CHECK(wait_done(&a, 5000) && wait_done(&b, 5000));
  CHECK(xd_pool_drain(pool, 1000) == XD_OK);
  CHECK(submit(pool, &c, 1, 0) == XD_OK);
  CHECK(wait_done(&c, 5000) && c.code == XD_OK);
  xd_pool_close(pool);
  probe_t d;
  probe_init(&d, 0);
  CHECK(submit(pool, &d, 1, 0) == XD_EOVERLOAD);
  xd_pool_free(pool);
  probe_deinit(&a);
  probe_deinit(&b);
  probe_deinit(&c);
  probe_deinit(&d);
}

TEST(drain_cancel_all_and_free_with_work_in_flight) {
  xd_pool_t *pool = new_pool(2, 8, 60000);
  probe_t a, b, c;
  probe_init(&a, 10000);
  a.check_cancel = 1;
  probe_init(&b, 10);
  probe_init(&c, 10000);
  c.check_cancel = 1;
  CHECK(submit(pool, &a, 1, 0) == XD_OK);
  CHECK(submit(pool, &b, 50, 0) == XD_OK);
  CHECK(xd_pool_drain(pool, 50) == XD_ETIMEDOUT);
  double t0 = xd_ms_now();
  xd_pool_cancel_all(pool);
  CHECK(wait_done(&a, 5000) && wait_done(&b, 5000));
  CHECK(a.code == XD_EOVERLOAD && b.code == XD_EOVERLOAD);
  CHECK(xd_ms_now() - t0 < 1000);
  CHECK(xd_pool_drain(pool, 1000) == XD_OK);
  /* a job submitted after cancel_all fails at once too */
  CHECK(submit(pool, &c, 1, 0) == XD_OK);
  CHECK(wait_done(&c, 5000) && c.code == XD_EOVERLOAD);
  xd_pool_free(pool);

  /* free with a job still running: it is canceled, answered and freed */
  pool = new_pool(2, 8, 60000);
  probe_t d;
  probe_init(&d, 10000);
  d.check_cancel = 1;
  CHECK(submit(pool, &d, 3, 0) == XD_OK);
  xd_sleep_ms(20);
  t0 = xd_ms_now();
  xd_pool_free(pool);
  CHECK(d.done && d.code == XD_EOVERLOAD && atomic_load(&d.freed) == 1);
  CHECK(xd_ms_now() - t0 < 1000);
  probe_deinit(&a);
  probe_deinit(&b);
  probe_deinit(&c);
  probe_deinit(&d);
}

TEST(rejects_bad_config) {
  xd_pool_t *p = (xd_pool_t *)1;
  xd_pool_config_t c = {.workers = 0, .capacity = 1, .default_timeout_ms = 1};
  CHECK(xd_pool_new(&c, &p) == XD_EINVAL && p == NULL);
  c.workers = 1;
  c.capacity = 0;
  CHECK(xd_pool_new(&c, &p) == XD_EINVAL);
  xd_pool_free(NULL);
}

int main(void) {
  RUN(every_part_once_then_encode_once); /* first: sizes libuv's pool to 4 threads */
  RUN(prepare_runs_once_before_any_part);
  RUN(failed_prepare_fails_the_job_without_parts);
  RUN(prepare_is_cancellable_by_the_deadline);
  RUN(prepare_parts_run_concurrently_before_prepare_and_parts);
  RUN(prepare_parts_without_prepare);
  RUN(failed_prepare_part_fails_the_job);
  RUN(cancelled_prepare_parts_fail_the_job);
  RUN(prepare_parts_are_cancellable_by_the_deadline);
  RUN(round_robin_lets_a_small_job_through);
  RUN(deadline_skips_parts_not_started);
  RUN(deadline_of_a_queued_job_answers_on_time);
  RUN(first_error_wins_and_cancels);
  RUN(cancel_one_job);
  RUN(admission_capacity_then_recovery);
  RUN(drain_cancel_all_and_free_with_work_in_flight);
  RUN(rejects_bad_config);
  return TEST_REPORT();
}
