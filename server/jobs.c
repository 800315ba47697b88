/* jobs.c — the batch job manager (server/jobs.h, docs/jobs.md). */
#include "server/jobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/alloc.h"
#include "api/jobs.h"
#include "api/jsonout.h"
#include "core/alloc.h"
#include "server/jobfile.h"
#include "server/log.h"

typedef enum { QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED } status_t;
static const char *const status_names[] = {"queued", "running", "succeeded", "failed", "cancelled", NULL};
#define FINISHED(s) ((s) >= SUCCEEDED)

typedef struct job {
  char id[17];
  xd_jobspec_t spec;
  char model[XD_MODEL_NAME_MAX + 1];
  status_t status;
  size_t done;    /* finished lines, all in the results file */
  uint64_t bytes; /* their bytes */
  int fd;         /* results file, or -1 */
  double created, started, finished; /* Unix seconds, 0 = not yet */
  int64_t run_t0;  /* when this process started running it (rate) */
  size_t run_done0;
  xd_error_t err;
  int cancel;  /* asked to stop (mu) */
  int remove;  /* delete once stopped (mu) */
  xd_pool_job_t *pj; /* chunk in the pool (mu): cancellable while set */
  unsigned long version; /* bumped on each change of its status or progress (event streams) */
  struct job *next;
} job_t;

struct xd_jobs {
  xd_api_t *api;
  xd_api_t *job_api; /* the same registry, the limits of jobs (xd_jobs_new) */
  xd_pool_t *pool;
  xd_jobs_config_t cfg;
  char dir[4096];
  int tmp_dir;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* progress, chunk done, new job, stop */
  job_t *jobs;       /* newest first */
  job_t *last_run;   /* round robin over runnable jobs */
  job_t *busy;       /* the job the runner works on outside mu: not freed by others */
  int stop;
  pthread_t thread;
  /* the chunk in flight (one at a time) */
  int chunk_done;
  json_t *chunk_body;
  xd_error_t chunk_err;
  xd_jobs_backend_t backend;
};

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static json_t *time_json(double t) {
  if (t <= 0) return json_null();
  char buf[40];
  time_t s = (time_t)t;
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return json_string(buf);
}

static void path_of(const xd_jobs_t *m, const job_t *j, const char *file, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s%s%s", m->dir, j->id, file ? "/" : "", file ? file : "");
}

/* ---- status ------------------------------------------------------------------------- */

static json_t *error_json(const xd_error_t *e) {
  if (!e->code) return json_null();
  json_t *o = json_object();
  json_object_set_new(o, "code", json_string(xd_api_error_code(e->code)));
  if (e->field[0]) json_object_set_new(o, "field", json_string(e->field));
  json_object_set_new(o, "message", json_string(e->text));
  return o;
}

/* mu held */
static json_t *status_json(const xd_jobs_t *m, const job_t *j) {
  json_t *o = json_object(), *p = json_object(), *l = json_object();
  char buf[96];
  json_object_set_new(o, "id", json_string(j->id));
  json_object_set_new(o, "endpoint", json_string(j->spec.endpoint));
  json_object_set_new(o, "model", json_string(j->model));
  json_object_set_new(o, "status", json_string(status_names[j->status]));
  json_object_set_new(o, "total", json_integer((json_int_t)j->spec.total));
  double secs = j->run_t0 ? (double)(xd_now_ns() - j->run_t0) / 1e9 : 0;
  double rate = secs > 0 && j->status == RUNNING ? (double)(j->done - j->run_done0) / secs : 0;
  json_object_set_new(p, "done", json_integer((json_int_t)j->done));
  json_object_set_new(p, "total", json_integer((json_int_t)j->spec.total));
  json_object_set_new(p, "rate_per_s", json_real(rate));
  json_object_set_new(p, "eta_s", rate > 0 ? json_real((double)(j->spec.total - j->done) / rate)
                                           : FINISHED(j->status) ? json_real(0) : json_null());
  json_object_set_new(o, "progress", p);
  json_object_set_new(o, "created", time_json(j->created));
  json_object_set_new(o, "started", time_json(j->started));
  json_object_set_new(o, "finished", time_json(j->finished));
  json_object_set_new(o, "error", error_json(&j->err));
  snprintf(buf, sizeof buf, "/jobs/%s", j->id);
  json_object_set_new(l, "self", json_string(buf));
  snprintf(buf, sizeof buf, "/jobs/%s/results", j->id);
  json_object_set_new(l, "results", json_string(buf));
  snprintf(buf, sizeof buf, "/jobs/%s/events", j->id);
  json_object_set_new(l, "events", json_string(buf));
  json_object_set_new(o, "links", l);
  (void)m;
  return o;
}

/* meta.json: what the results file does not tell (mu held). */
static void write_meta(xd_jobs_t *m, job_t *j) {
  json_t *o = json_object();
  json_object_set_new(o, "id", json_string(j->id));
  json_object_set_new(o, "status", json_string(status_names[j->status]));
  json_object_set_new(o, "created", json_real(j->created));
  json_object_set_new(o, "started", json_real(j->started));
  json_object_set_new(o, "finished", json_real(j->finished));
  json_object_set_new(o, "error", error_json(&j->err));
  json_object_set_new(o, "model_sha256", json_string(j->spec.model_sha256));
  char *text = xd_json_print(o);
  json_decref(o);
  char path[4200];
  path_of(m, j, "meta.json", path, sizeof path);
  if (!text || xd_jobfile_write_atomic(path, text, strlen(text)) != XD_OK)
    xd_log(XD_LOG_WARN, "job %s: could not write %s: %s", j->id, path, strerror(errno));
  xd_free(text);
}

static void changed(xd_jobs_t *m) {
  pthread_cond_broadcast(&m->cv);
}

static void set_status(xd_jobs_t *m, job_t *j, status_t s) {
  j->status = s;
  j->version++;
  if (s == RUNNING && !j->started) j->started = wall_now();
  if (FINISHED(s)) j->finished = wall_now();
  write_meta(m, j);
  changed(m);
}

static void job_free(xd_jobs_t *m, job_t *j, int delete_files) {
  if (j->fd >= 0) close(j->fd);
  if (delete_files) {
    char path[4200];
    static const char *const files[] = {"results.ndjson", "meta.json", "request.json", "answer.json"};
    for (size_t i = 0; i < 4; i++) {
      path_of(m, j, files[i], path, sizeof path);
      unlink(path);
    }
    path_of(m, j, NULL, path, sizeof path);
    rmdir(path);
  }
  xd_jobspec_deinit(&j->spec);
  xd_free(j);
}

/* Unlinks j from the list (mu held). */
static void unlink_job(xd_jobs_t *m, job_t *j) {
  for (job_t **pp = &m->jobs; *pp; pp = &(*pp)->next)
    if (*pp == j) {
      *pp = j->next;
      break;
    }
  if (m->last_run == j) m->last_run = NULL;
}

static job_t *find(xd_jobs_t *m, const char *id) {
  for (job_t *j = m->jobs; j; j = j->next)
    if (strcmp(j->id, id) == 0) return j;
  return NULL;
}

/* ---- running ------------------------------------------------------------------------ */

static void on_chunk_done(void *ctx, json_t *body, const xd_error_t *err, const xd_cancel_t *print_cancel) {
  (void)print_cancel; /* the runner thread writes the chunk's lines itself, under its own checks */
  xd_jobs_t *m = ctx;
  pthread_mutex_lock(&m->mu);
  m->chunk_body = body;
  if (err) m->chunk_err = *err;
  else xd_error_clear(&m->chunk_err);
  m->chunk_done = 1;
  if (m->busy) m->busy->pj = NULL; /* from now on the pool forgets the chunk */
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
}

/* Runs rows [first, first + n) of j through the pool; the answer or NULL with err.
 * Called without mu. */
static json_t *pool_run(xd_jobs_t *m, job_t *j, size_t first, size_t n, xd_error_t *err) {
  xd_work_t w;
  if (xd_jobspec_chunk(m->job_api, &j->spec, first, n, &w, err) != XD_OK) return NULL;
  xd_pool_job_t *pj = NULL;
  for (;;) {
    int rc = xd_pool_admit_work(m->pool, &w, 0, &pj);
    if (rc == XD_OK) break;
    pthread_mutex_lock(&m->mu);
    int cancelled = j->cancel;
    int stop = m->stop || cancelled || xd_pool_closed(m->pool) || rc != XD_EOVERLOAD;
    if (!stop) { /* the pool is full of interactive work: wait for room */
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 20 * 1000000L;
      if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
      pthread_cond_timedwait(&m->cv, &m->mu, &ts);
    }
    pthread_mutex_unlock(&m->mu);
    if (stop) {
      w.ops->free(w.state);
      xd_error_set(err, cancelled ? XD_ECANCELED : XD_EOVERLOAD, NULL, cancelled ? "cancelled" : "the server is shutting down");
      return NULL;
    }
  }
  pthread_mutex_lock(&m->mu);
  m->chunk_done = 0;
  m->chunk_body = NULL;
  j->pj = pj;
  pthread_mutex_unlock(&m->mu);
  xd_pool_submit(m->pool, pj, &w, xd_now_ns(), on_chunk_done, m);
  pthread_mutex_lock(&m->mu);
  while (!m->chunk_done) pthread_cond_wait(&m->cv, &m->mu);
  json_t *body = m->chunk_body;
  if (!body) *err = m->chunk_err;
  pthread_mutex_unlock(&m->mu);
  return body;
}

/* Lines of rows [first, first + n) into buf; a chunk that fails is run row by row, so
 * that only the rows that fail get an error line. Returns XD_OK or the error that stops
 * the job (cancel, shutdown, out of memory). */
static int run_chunk(xd_jobs_t *m, job_t *j, size_t first, size_t n, char **buf, size_t *len, size_t *cap,
                     xd_error_t *err) {
  xd_error_clear(err);
  json_t *ans = pool_run(m, j, first, n, err);
  if (ans) {
    int rc = xd_jobspec_lines(&j->spec, ans, first, n, buf, len, cap, err);
    json_decref(ans);
    return rc;
  }
  if (err->code == XD_ECANCELED || err->code == XD_EOVERLOAD || err->code == XD_ENOMEM || err->code == XD_ECONFLICT)
    return err->code;
  for (size_t i = first; i < first + n; i++) {
    xd_error_t e;
    xd_error_clear(&e);
    json_t *one = n == 1 ? NULL : pool_run(m, j, i, 1, &e);
    if (n == 1) e = *err;
    if (one) {
      int rc = xd_jobspec_lines(&j->spec, one, i, 1, buf, len, cap, err);
      json_decref(one);
      if (rc != XD_OK) return rc;
      continue;
    }
    if (e.code == XD_ECANCELED || e.code == XD_EOVERLOAD || e.code == XD_ECONFLICT) return *err = e, e.code;
    if (xd_jobspec_error_line(i, &e, buf, len, cap) != XD_OK) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  xd_error_clear(err);
  return XD_OK;
}

/* The next job to run a chunk of, round robin (mu held). */
static job_t *next_runnable(xd_jobs_t *m) {
  job_t *start = m->last_run && m->last_run->next ? m->last_run->next : m->jobs;
  job_t *j = start;
  for (int lap = 0; j && lap < 2;) {
    if (!FINISHED(j->status) && !j->cancel) return m->last_run = j;
    j = j->next;
    if (!j) j = m->jobs, lap++;
    if (j == start) break;
  }
  return NULL;
}

/* Finished jobs past their time to live (mu held). */
static void expire(xd_jobs_t *m) {
  double now = wall_now();
  for (job_t *j = m->jobs, *next; j; j = next) {
    next = j->next;
    if (FINISHED(j->status) && j->finished > 0 && (now - j->finished) * 1e3 > (double)m->cfg.ttl_ms) {
      unlink_job(m, j);
      job_free(m, j, 1);
      changed(m);
    }
  }
}

/* A job that was asked to stop: cancelled (and deleted when asked) (mu held). */
static void settle_cancelled(xd_jobs_t *m, job_t *j) {
  if (!FINISHED(j->status)) {
    xd_error_set(&j->err, XD_ECANCELED, NULL, "cancelled by DELETE /jobs/%s", j->id);
    set_status(m, j, CANCELLED);
  }
  if (j->remove) {
    unlink_job(m, j);
    job_free(m, j, 1);
    changed(m);
  }
}

/* A job with one answer (importance, PDP): merges its parts' lines into answer.json once all are
 * done (mu held; reads the job's own files). */
static void finish_whole(xd_jobs_t *m, job_t *j) {
  char path[4200], *text = NULL;
  size_t len = 0;
  xd_error_t err;
  xd_error_clear(&err);
  path_of(m, j, "results.ndjson", path, sizeof path);
  json_t *ans = NULL;
  if (xd_jobfile_read(path, (size_t)1 << 40, &text, &len) != XD_OK) xd_error_set(&err, XD_EIO, NULL, "cannot read the parts' sums");
  else ans = xd_jobspec_merge(&j->spec, text, len < j->bytes ? len : j->bytes, &err);
  xd_free(text);
  char *out = ans ? xd_json_print(ans) : NULL;
  json_decref(ans);
  path_of(m, j, "answer.json", path, sizeof path);
  size_t olen = out ? strlen(out) : 0;
  char *line = out ? xd_malloc(olen + 1) : NULL; /* one line, as the command line's merge writes it */
  if (line) memcpy(line, out, olen), line[olen] = '\n';
  xd_free(out);
  out = line;
  if (out && xd_jobfile_write_atomic(path, out, olen + 1) != XD_OK)
    xd_error_set(&err, XD_EIO, NULL, "could not write the answer: %s", strerror(errno));
  if (out && err.code == XD_OK) {
    set_status(m, j, SUCCEEDED);
  } else {
    if (!err.code) xd_error_set(&err, XD_ENOMEM, NULL, "out of memory merging the parts");
    j->err = err;
    set_status(m, j, FAILED);
  }
  xd_free(out);
}

static void *runner(void *arg) {
  xd_jobs_t *m = arg;
  char *buf = NULL;
  size_t cap = 0;
  pthread_mutex_lock(&m->mu);
  while (!m->stop) {
    expire(m);
    job_t *j = next_runnable(m);
    if (!j) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait(&m->cv, &m->mu, &ts);
      continue;
    }
    if (j->status == QUEUED) {
      j->run_t0 = xd_now_ns();
      j->run_done0 = j->done;
      set_status(m, j, RUNNING);
    }
    if (j->done == j->spec.total) { /* every part done before a restart: only the answer is left */
      if (xd_jobspec_whole(&j->spec)) finish_whole(m, j);
      else set_status(m, j, SUCCEEDED);
      continue;
    }
    size_t first = j->done, n = j->spec.total - first;
    size_t chunk = xd_jobspec_chunk_rows(m->api, &j->spec, m->cfg.chunk_rows);
    if (n > chunk) n = chunk;
    m->busy = j;
    pthread_mutex_unlock(&m->mu);
    size_t len = 0;
    xd_error_t err;
    int rc = run_chunk(m, j, first, n, &buf, &len, &cap, &err);
    pthread_mutex_lock(&m->mu);
    /* the lines reach the disk before the progress counts them (under mu: a cancelled
     * job's file gets nothing more) */
    if (rc == XD_OK && !j->cancel && xd_jobfile_append(j->fd, buf, len) != XD_OK)
      rc = xd_error_set(&err, XD_EIO, NULL, "could not write the results: %s", strerror(errno));
    m->busy = NULL;
    if (j->cancel) {
      settle_cancelled(m, j);
    } else if (rc == XD_OK) {
      j->done += n;
      j->bytes += len;
      j->version++;
      if (j->done < j->spec.total) changed(m);
      else if (xd_jobspec_whole(&j->spec)) finish_whole(m, j);
      else set_status(m, j, SUCCEEDED);
    } else if (rc == XD_EOVERLOAD) {
      /* shutting down: the job resumes at the next start */
    } else {
      j->err = err;
      set_status(m, j, FAILED);
    }
  }
  pthread_mutex_unlock(&m->mu);
  xd_free(buf);
  return NULL;
}

/* ---- the backend (network threads) ---------------------------------------------------- */

static size_t active_jobs(xd_jobs_t *m) {
  size_t n = 0;
  for (job_t *j = m->jobs; j; j = j->next) n += !FINISHED(j->status);
  return n;
}

static int new_id(char id[17]) {
  uint8_t r[8];
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) return XD_EIO;
  for (size_t i = 0; i < 8; i++) snprintf(id + 2 * i, 3, "%02x", r[i]);
  return XD_OK;
}

/* Opens (creating) j's results file for appending. */
static int open_results(xd_jobs_t *m, job_t *j) {
  char path[4200];
  path_of(m, j, "results.ndjson", path, sizeof path);
  j->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  return j->fd >= 0 ? XD_OK : XD_EIO;
}

static int be_submit(void *ctx, xd_jobspec_t *spec, json_t **status, xd_error_t *err) {
  xd_jobs_t *m = ctx;
  job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  j->fd = -1;
  json_t *req = xd_jobspec_request(spec);
  char *text = req ? xd_json_print(req) : NULL;
  json_decref(req);
  if (!text || new_id(j->id) != XD_OK) {
    xd_free(text);
    xd_free(j);
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  j->spec = *spec;
  memset(spec, 0, sizeof *spec);
  snprintf(j->model, sizeof j->model, "%s", json_string_value(json_object_get(j->spec.body, "model")));
  j->created = wall_now();
  pthread_mutex_lock(&m->mu);
  int rc = XD_OK;
  if (active_jobs(m) >= m->cfg.max_jobs) {
    rc = xd_error_set(err, XD_EOVERLOAD, NULL, "%u jobs are queued or running already (--max-jobs); retry when one has finished",
                      m->cfg.max_jobs);
  } else {
    char path[4200];
    path_of(m, j, NULL, path, sizeof path);
    if (mkdir(path, 0755) != 0) rc = xd_error_set(err, XD_EIO, NULL, "could not create the job's folder: %s", strerror(errno));
    path_of(m, j, "request.json", path, sizeof path);
    if (rc == XD_OK && xd_jobfile_write_atomic(path, text, strlen(text)) != XD_OK)
      rc = xd_error_set(err, XD_EIO, NULL, "could not store the job's request: %s", strerror(errno));
    if (rc == XD_OK && open_results(m, j) != XD_OK)
      rc = xd_error_set(err, XD_EIO, NULL, "could not create the results file: %s", strerror(errno));
  }
  if (rc == XD_OK) {
    write_meta(m, j);
    j->next = m->jobs;
    m->jobs = j;
    *status = status_json(m, j);
    changed(m);
  }
  pthread_mutex_unlock(&m->mu);
  xd_free(text);
  if (rc != XD_OK) job_free(m, j, 1);
  return rc;
}

static json_t *be_status(void *ctx, const char *id) {
  xd_jobs_t *m = ctx;
  pthread_mutex_lock(&m->mu);
  job_t *j = find(m, id);
  json_t *o = j ? status_json(m, j) : NULL;
  pthread_mutex_unlock(&m->mu);
  return o;
}

static json_t *be_list(void *ctx) {
  xd_jobs_t *m = ctx;
  json_t *a = json_array(), *o = json_object();
  pthread_mutex_lock(&m->mu);
  for (job_t *j = m->jobs; j; j = j->next) json_array_append_new(a, status_json(m, j));
  pthread_mutex_unlock(&m->mu);
  json_object_set_new(o, "jobs", a);
  return o;
}

/* Reads the results file's finished prefix (mu held: the job cannot go away). */
static int be_results(void *ctx, const char *id, int csv, char **text, size_t *len, const char **type,
                      xd_error_t *err) {
  xd_jobs_t *m = ctx;
  int rc = XD_OK;
  char *raw = NULL;
  pthread_mutex_lock(&m->mu);
  job_t *j = find(m, id);
  *type = csv ? "text/csv" : "application/x-ndjson";
  if (!j) {
    rc = xd_error_set(err, XD_ENOTFOUND, "id", "no job '%s': give the id of a job that GET /jobs lists", id);
  } else if (xd_jobspec_whole(&j->spec) && j->status == SUCCEEDED) { /* the one answer */
    char path[4200];
    path_of(m, j, "answer.json", path, sizeof path);
    rc = xd_jobfile_read(path, (size_t)1 << 32, text, len);
    if (rc != XD_OK) xd_error_set(err, rc, NULL, "could not read the answer");
    *type = "application/json";
  } else if (xd_jobspec_whole(&j->spec) && csv) {
    rc = xd_error_set(err, XD_EINVAL, "Accept", "a job with one answer (importance, PDP) answers JSON, not CSV");
  } else {
    char path[4200];
    path_of(m, j, "results.ndjson", path, sizeof path);
    raw = xd_malloc(j->bytes + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    while (raw && fd >= 0 && got < j->bytes) {
      ssize_t r = pread(fd, raw + got, j->bytes - got, (off_t)got);
      if (r <= 0) break;
      got += (size_t)r;
    }
    if (fd >= 0) close(fd);
    if (!raw || got != j->bytes) {
      rc = xd_error_set(err, raw ? XD_EIO : XD_ENOMEM, NULL, "could not read the results");
    } else if (!csv) {
      raw[got] = '\0';
      *text = raw, *len = got, raw = NULL;
    } else {
      char *out = NULL;
      size_t n = 0, c = 0;
      rc = xd_jobspec_csv_row(&j->spec, NULL, 0, &out, &n, &c);
      for (size_t p = 0; rc == XD_OK && p < got;) {
        char *nl = memchr(raw + p, '\n', got - p);
        size_t l = (size_t)(nl - (raw + p));
        rc = xd_jobspec_csv_row(&j->spec, raw + p, l, &out, &n, &c);
        p += l + 1;
      }
      if (rc != XD_OK) {
        xd_free(out);
        xd_error_set(err, rc, NULL, "could not convert the results to CSV");
      } else {
        *text = out, *len = n;
      }
    }
  }
  pthread_mutex_unlock(&m->mu);
  xd_free(raw);
  return rc;
}

static int be_remove(void *ctx, const char *id, json_t **status, xd_error_t *err) {
  xd_jobs_t *m = ctx;
  int rc = XD_OK;
  pthread_mutex_lock(&m->mu);
  job_t *j = find(m, id);
  if (!j) {
    rc = xd_error_set(err, XD_ENOTFOUND, "id", "no job '%s': give the id of a job that GET /jobs lists", id);
  } else if (FINISHED(j->status)) { /* delete it */
    *status = status_json(m, j);
    json_object_set_new(*status, "deleted", json_true());
    if (m->busy == j) { /* cancelled a moment ago, its last chunk not back yet */
      j->remove = 1;
    } else {
      unlink_job(m, j);
      job_free(m, j, 1);
    }
    changed(m);
  } else { /* cancel it: a chunk in flight stops at its next cancel check */
    j->cancel = 1;
    if (j->pj) {
      xd_error_t e;
      xd_error_set(&e, XD_ECANCELED, NULL, "cancelled");
      xd_pool_cancel_job(m->pool, j->pj, &e);
    }
    settle_cancelled(m, j); /* the runner, if on it, drops its chunk when it comes back */
    *status = status_json(m, j);
    changed(m);
  }
  pthread_mutex_unlock(&m->mu);
  return rc;
}

/* ---- Server-Sent Events ------------------------------------------------------------ */

typedef struct sse {
  xd_jobs_t *m;
  char id[17];
  unsigned long seen; /* the job's version last reported */
  int sent_any, ended;
  int64_t last_ns;    /* last bytes sent (keep-alive comments) */
} sse_t;

/* The next event of the stream: the job's status whenever it changed; the end once the
 * job has finished (or is gone). 0 when there is no news (the server parks the
 * connection and asks again a moment later). */
static long sse_read(void *ctx, uint64_t pos, char *buf, size_t max) {
  sse_t *s = ctx;
  xd_jobs_t *m = s->m;
  (void)pos;
  if (s->ended) return -1;
  long n = 0;
  pthread_mutex_lock(&m->mu);
  job_t *j = find(m, s->id);
  if (!j || m->stop) {
    s->ended = 1;
    n = -1;
  } else if (!s->sent_any || s->seen != j->version) {
    json_t *st = status_json(m, j);
    char *text = xd_json_print(st);
    json_decref(st);
    const char *ev = FINISHED(j->status) ? "end" : "progress";
    int w = text ? snprintf(buf, max, "event: %s\ndata: %s\n\n", ev, text) : -1;
    xd_free(text);
    if (w > 0 && (size_t)w < max) {
      n = w;
      s->seen = j->version;
      s->sent_any = 1;
      if (FINISHED(j->status)) s->ended = 1;
    } else {
      s->ended = 1;
      n = -1;
    }
  } else if (xd_now_ns() - s->last_ns > 15 * 1000000000LL && max > 16) { /* keep proxies from timing out */
    memcpy(buf, ": keep-alive\n\n", 14);
    n = 14;
  }
  pthread_mutex_unlock(&m->mu);
  if (n > 0) s->last_ns = xd_now_ns();
  return n;
}

static void sse_free(void *ctx) { xd_free(ctx); }

static int be_events(void *ctx, const char *id, xd_api_response_t *resp, xd_error_t *err) {
  xd_jobs_t *m = ctx;
  pthread_mutex_lock(&m->mu);
  int found = find(m, id) != NULL;
  pthread_mutex_unlock(&m->mu);
  if (!found) return xd_error_set(err, XD_ENOTFOUND, "id", "no job '%s': give the id of a job that GET /jobs lists", id);
  sse_t *s = xd_calloc(1, sizeof *s);
  if (!s) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  s->m = m;
  snprintf(s->id, sizeof s->id, "%s", id);
  s->last_ns = xd_now_ns();
  resp->stream = sse_read;
  resp->stream_free = sse_free;
  resp->stream_ctx = s;
  return XD_OK;
}

/* ---- recovery ------------------------------------------------------------------------- */

/* Loads DIR/ID: the request, the status, and the finished prefix of the results (cutting
 * what follows it). A job that was queued or running is queued again. */
static void recover_one(xd_jobs_t *m, const char *id) {
  job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return;
  j->fd = -1;
  snprintf(j->id, sizeof j->id, "%s", id);
  char path[4200], *text = NULL;
  size_t len = 0;
  xd_error_t err;
  xd_error_clear(&err);
  path_of(m, j, "request.json", path, sizeof path);
  json_t *req = NULL;
  if (xd_jobfile_read(path, (size_t)1 << 34, &text, &len) == XD_OK) req = json_loadb(text, len, 0, NULL);
  xd_free(text);
  text = NULL;
  if (!req || xd_jobspec_parse(m->job_api, req, m->cfg.max_rows, &j->spec, &err) != XD_OK) {
    xd_log(XD_LOG_WARN, "job %s: cannot resume: %s%s%s", id, err.field, err.field[0] ? ": " : "",
           req ? err.text : "request.json is missing or not JSON");
    json_decref(req);
    xd_jobspec_deinit(&j->spec);
    xd_free(j);
    return;
  }
  snprintf(j->model, sizeof j->model, "%s", json_string_value(json_object_get(req, "model")));
  json_decref(req);
  path_of(m, j, "meta.json", path, sizeof path);
  json_t *meta = NULL;
  if (xd_jobfile_read(path, 1 << 20, &text, &len) == XD_OK) meta = json_loadb(text, len, 0, NULL);
  xd_free(text);
  text = NULL;
  const char *st = json_string_value(json_object_get(meta, "status"));
  j->status = QUEUED;
  for (int s = 0; st && status_names[s]; s++)
    if (strcmp(st, status_names[s]) == 0) j->status = (status_t)s;
  if (j->status == RUNNING) j->status = QUEUED;
  j->created = json_number_value(json_object_get(meta, "created"));
  j->started = json_number_value(json_object_get(meta, "started"));
  j->finished = json_number_value(json_object_get(meta, "finished"));
  json_t *e = json_object_get(meta, "error");
  if (json_is_object(e)) {
    j->err.code = j->status == CANCELLED ? XD_ECANCELED : XD_EINTERNAL;
    snprintf(j->err.field, sizeof j->err.field, "%s", json_string_value(json_object_get(e, "field")) ? json_string_value(json_object_get(e, "field")) : "");
    snprintf(j->err.text, sizeof j->err.text, "%s", json_string_value(json_object_get(e, "message")) ? json_string_value(json_object_get(e, "message")) : "");
  }
  /* a model changed while the server was down: resuming would mix two models */
  const char *sha = json_string_value(json_object_get(meta, "model_sha256"));
  if (!FINISHED(j->status) && sha && strcmp(sha, j->spec.model_sha256) != 0) {
    xd_error_set(&j->err, XD_ECONFLICT, "model", "model '%s' changed while the server was down: "
                 "its lines would mix two models (submit the job again)", j->model);
    j->status = FAILED;
    j->finished = wall_now();
  }
  json_decref(meta);
  /* the finished lines: whole lines with the expected indexes; the rest is cut */
  path_of(m, j, "results.ndjson", path, sizeof path);
  if (xd_jobfile_read(path, (size_t)1 << 40, &text, &len) == XD_OK) {
    size_t good = 0;
    j->done = xd_jobfile_scan(text, len, 0, &good);
    if (j->done > j->spec.total) j->done = j->spec.total;
    j->bytes = good;
    if (good < len && truncate(path, (off_t)good) != 0)
      xd_log(XD_LOG_WARN, "job %s: could not cut the torn end of its results: %s", id, strerror(errno));
    else if (good < len)
      xd_log(XD_LOG_INFO, "job %s: cut %zu bytes after its last whole line", id, len - good);
    xd_free(text);
  }
  if (open_results(m, j) != XD_OK) {
    xd_log(XD_LOG_WARN, "job %s: cannot open its results: %s", id, strerror(errno));
    job_free(m, j, 0);
    return;
  }
  if (!FINISHED(j->status) && j->done == j->spec.total && !xd_jobspec_whole(&j->spec))
    j->status = SUCCEEDED, j->finished = wall_now();
  write_meta(m, j);
  j->next = m->jobs;
  m->jobs = j;
  xd_log(XD_LOG_INFO, "job %s: %s, %zu of %zu instances done%s", id, status_names[j->status], j->done, j->spec.total,
         FINISHED(j->status) ? "" : ": resuming");
}

static void recover(xd_jobs_t *m) {
  DIR *d = opendir(m->dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name), ok = n > 0 && n < 17;
    for (size_t i = 0; ok && i < n; i++) ok = (e->d_name[i] >= '0' && e->d_name[i] <= '9') || (e->d_name[i] >= 'a' && e->d_name[i] <= 'f');
    if (ok) recover_one(m, e->d_name);
  }
  closedir(d);
}

/* ---- life ------------------------------------------------------------------------------ */

int xd_jobs_new(const xd_jobs_config_t *cfg, xd_api_t *api, xd_pool_t *pool, xd_jobs_t **out, xd_error_t *err) {
  xd_jobs_t *m = xd_calloc(1, sizeof *m);
  if (!m) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  m->api = api;
  m->pool = pool;
  m->cfg = *cfg;
  if (!m->cfg.chunk_rows) m->cfg.chunk_rows = 64;
  if (cfg->dir && cfg->dir[0]) {
    snprintf(m->dir, sizeof m->dir, "%s", cfg->dir);
    if (mkdir(m->dir, 0755) != 0 && errno != EEXIST) {
      xd_free(m);
      return xd_error_set(err, XD_EIO, "job-dir", "cannot create %s: %s", cfg->dir, strerror(errno));
    }
  } else {
    const char *t = getenv("TMPDIR");
    snprintf(m->dir, sizeof m->dir, "%s/explaind-jobs-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(m->dir)) {
      xd_free(m);
      return xd_error_set(err, XD_EIO, "job-dir", "cannot create a temporary folder: %s", strerror(errno));
    }
    m->tmp_dir = 1;
  }
  /* Jobs decode with the server's limits but two: the rows an importance or PDP job reads
   * (--max-background) and the model rows of the whole job (--max-work-rows), which a job
   * splits into parts; chunks of instances stay within the request limits
   * (xd_jobspec_chunk_rows with the server's API). */
  xd_api_config_t jc = *xd_api_config(api);
  if (jc.limits.max_background < m->cfg.max_rows) jc.limits.max_background = m->cfg.max_rows;
  jc.limits.max_work_rows = UINT64_MAX / 4;
  if (xd_api_new(&jc, xd_api_registry(api), &m->job_api) != XD_OK) {
    xd_free(m);
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv, NULL);
  if (!m->tmp_dir) recover(m);
  m->backend = (xd_jobs_backend_t){.ctx = m, .api = m->job_api, .max_rows = m->cfg.max_rows, .submit = be_submit, .status = be_status,
                                   .list = be_list, .results = be_results, .remove = be_remove, .events = be_events};
  if (pthread_create(&m->thread, NULL, runner, m) != 0) {
    m->backend.ctx = NULL; /* no runner to join */
    xd_jobs_free(m);
    return xd_error_set(err, XD_ENOMEM, NULL, "cannot start the job runner");
  }
  xd_api_set_jobs(api, &m->backend);
  *out = m;
  return XD_OK;
}

void xd_jobs_free(xd_jobs_t *m) {
  if (!m) return;
  xd_api_set_jobs(m->api, NULL);
  pthread_mutex_lock(&m->mu);
  int started = m->backend.ctx != NULL;
  m->stop = 1;
  if (m->busy && m->busy->pj) { /* the chunk in flight: its job resumes at the next start */
    xd_error_t e;
    xd_error_set(&e, XD_EOVERLOAD, NULL, "the server is shutting down");
    xd_pool_cancel_job(m->pool, m->busy->pj, &e);
  }
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
  if (started) pthread_join(m->thread, NULL);
  while (m->jobs) {
    job_t *j = m->jobs;
    m->jobs = j->next;
    job_free(m, j, m->tmp_dir);
  }
  if (m->tmp_dir) rmdir(m->dir);
  xd_api_free(m->job_api);
  pthread_cond_destroy(&m->cv);
  pthread_mutex_destroy(&m->mu);
  xd_free(m);
}
