/* main.c — explaind: configuration, start-up, signals and graceful shutdown.
 *
 * Start-up: parse the configuration; set OpenBLAS to one thread and refuse a BLAS that
 * is unsafe for concurrent callers; seed jansson's hash before we start any thread; block
 * SIGTERM/SIGINT/SIGHUP so every thread created later inherits the mask and the main
 * thread alone handles them (sigwait; see forward_to_main for OpenBLAS's own threads).
 * The HTTP server starts before the models load, so /healthz answers and /readyz says
 * 503 while they load.
 *
 * Shutdown on SIGTERM/SIGINT (docs/serving.md §5.2, 7.4): /readyz goes 503 at once; after the
 * optional --shutdown-delay (the load balancer notices) the daemon stops accepting and
 * the pool stops admitting; in-flight jobs finish within --drain-timeout (then they are
 * canceled) and their answers are sent; MHD is stopped only once no connection is
 * suspended; requests that arrive on open connections meanwhile are answered too (server/
 * http.c, server/conn.c). Exit 0. SIGHUP loads the model folder again (new versions of
 * changed bundles; in-flight requests keep the version they started with) and stops
 * serving models whose bundle file is gone. Start-up removes temporary files that a killed
 * writer left in the model folder.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "api/metrics.h"
#include "core/alloc.h"
#include "core/mat.h"
#include "server/config.h"
#include "server/cli_bundle.h"
#include "server/cli_jobs.h"
#include "server/jobs.h"
#include "server/healthcheck.h"
#include "server/http.h"
#include "server/log.h"
#include "server/pool.h"

/* xd_api_load_dir reports each bundle, loaded or skipped (with the reason). */
/* A skipped bundle is logged at warn (file and reason) and counted for --strict-models. */
static void log_load(void *ctx, const char *msg) {
  int skipped = strncmp(msg, "skipping ", 9) == 0;
  if (skipped && ctx) ++*(int *)ctx;
  xd_log(skipped ? XD_LOG_WARN : XD_LOG_INFO, "model folder: %s", msg);
}

static int load_models(xd_api_t *api, const char *dir, int *skipped) {
  int64_t t0 = xd_now_ns();
  int n = xd_api_load_dir(api, dir, log_load, skipped);
  if (n < 0) {
    xd_log(XD_LOG_ERROR, "cannot read the model folder %s", dir);
    return n;
  }
  xd_log(n ? XD_LOG_INFO : XD_LOG_WARN, "loaded %d model(s) from %s in %.1f ms; serving %zu", n, dir,
         (double)(xd_now_ns() - t0) / 1e6, xd_registry_count(xd_api_registry(api)));
  return n;
}

/* SIGHUP: a model whose bundle file was deleted from the folder is no longer served
 * (requests in flight keep their reference and finish). Models without a file (none
 * today) are left alone. */
static void unload_missing(xd_api_t *api) {
  xd_model_entry_t **all = NULL;
  size_t n = 0;
  if (xd_registry_list(xd_api_registry(api), &all, &n) != XD_OK) return;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (all[i]->source && stat(all[i]->source, &st) != 0 && errno == ENOENT) {
      xd_log(XD_LOG_INFO, "model folder: %s is gone; no longer serving %s", all[i]->source, all[i]->name);
      xd_registry_remove(xd_api_registry(api), all[i]->name);
    }
    xd_model_entry_release(all[i]);
  }
  xd_free(all);
}

/* Start-up: removes the temporary files of atomic writes (api/admin.c xd_write_atomic:
 * ".NAME.tmp.PID.N") that a killed process left behind: those whose writer is not a live
 * process here, and older than a minute (a writer in another container sharing the
 * folder, whose pid we cannot see, renames its file within seconds). */
static void remove_stale_temp(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  time_t now = time(NULL);
  while ((de = readdir(d)) != NULL) {
    const char *t = de->d_name[0] == '.' ? strstr(de->d_name, ".tmp.") : NULL;
    if (!t) continue;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    if (end == t + 5 || *end != '.' || pid <= 0) continue;
    char path[XD_CONFIG_PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || now - st.st_mtime < 60) continue;
    if ((pid_t)pid != getpid() && kill((pid_t)pid, 0) == 0) continue; /* its writer is alive */
    if (unlink(path) == 0) xd_log(XD_LOG_INFO, "model folder: removed the stale temporary file %s", path);
  }
  closedir(d);
}

/* Threads that exist before main() runs (OpenBLAS starts its pool in a library
 * constructor) did not inherit our signal mask, so the kernel may hand them a SIGTERM;
 * with the default action that would kill the process mid-drain. This handler only sends
 * the signal on to the main thread, where it waits blocked for sigwait: one place still
 * handles every signal. pthread_kill is async-signal-safe. */
static pthread_t main_thread;
static void forward_to_main(int sig) { pthread_kill(main_thread, sig); }

/* ---- metrics wiring: the pool and the pool's size feed api/metrics -------------- */

static void observe_queue(const xd_work_t *w, double s) { xd_metrics_queue(w->ops->endpoint, s); }
static void observe_compute(const xd_work_t *w, double s) {
  xd_metrics_compute(w->ops->endpoint, w->model, s, (unsigned long long)w->cost_rows);
}
static unsigned gauge_inflight(void *pool) { return xd_pool_inflight(pool); }
static unsigned queue_capacity;
static unsigned gauge_capacity(void *pool) {
  (void)pool;
  return queue_capacity;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) { /* EINTR: sleep the rest */
  }
}

/* Waits for SIGTERM or SIGINT; SIGHUP reloads the models and goes on waiting. */
static int wait_for_stop(const sigset_t *set, xd_api_t *api, const char *model_dir) {
  for (;;) {
    int sig = 0;
    if (sigwait(set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      xd_log(XD_LOG_INFO, "SIGHUP: reloading models from %s", model_dir);
      load_models(api, model_dir, NULL);
      unload_missing(api);
      continue;
    }
    return sig;
  }
}

static void shutdown_gracefully(const xd_config_t *cfg, xd_api_t *api, xd_http_t *http, xd_pool_t *pool) {
  xd_api_set_ready(api, 0);
  xd_log(XD_LOG_INFO, "draining: readiness is 503; %u job(s) in flight", xd_pool_inflight(pool));
  if (cfg->shutdown_delay_ms > 0) sleep_ms(cfg->shutdown_delay_ms);
  xd_http_quiesce(http);
  xd_pool_close(pool); /* requests on open keep-alive connections now get 503 + Retry-After */
  int64_t t0 = xd_now_ns();
  if (xd_pool_drain(pool, cfg->drain_timeout_ms) != XD_OK) {
    xd_log(XD_LOG_WARN, "drain timeout: canceling %u job(s)", xd_pool_inflight(pool));
    xd_pool_cancel_all(pool);
    xd_pool_drain(pool, INT32_MAX); /* canceled parts stop at their next cancel check */
  }
  /* Every job's connection is resumed now; give their answers a moment to go out. */
  int64_t left = cfg->drain_timeout_ms - (xd_now_ns() - t0) / 1000000;
  if (xd_http_drain(http, left > 1000 ? left : 1000) != XD_OK)
    xd_log(XD_LOG_WARN, "%u answer(s) not sent before stopping", xd_http_pending(http));
}

int main(int argc, char **argv) {
  /* Subcommands run before any configuration is read and start nothing. */
  if (argc >= 2 && strcmp(argv[1], "bundle") == 0) return xd_cli_bundle(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "jobs") == 0) return xd_cli_jobs(argc - 1, argv + 1);
  xd_config_t cfg;
  int rc = xd_config_load(&cfg, argc, argv, stdout, stderr);
  if (rc == XD_CONFIG_EXIT_OK) return 0;
  if (rc != XD_CONFIG_RUN) return 2;
  if (cfg.healthcheck[0]) {
    /* With TLS configured (EXPLAIND_TLS_CERT in the container's environment), a bare port
     * means the HTTPS health endpoint: the image's HEALTHCHECK works either way. */
    char url[64];
    const char *t = cfg.healthcheck;
    if (cfg.tls_cert[0] && strspn(t, "0123456789") == strlen(t)) {
      snprintf(url, sizeof url, "https://127.0.0.1:%.8s/healthz", t);
      t = url;
    }
    return xd_healthcheck(t, 3000) == 200 ? 0 : 1;
  }
  xd_log_set_level(cfg.log_level);

  /* Every explanation allocates a few MB of scratch and frees it at the end. With
   * glibc's defaults those blocks are mmap'd and returned to the kernel each time, so the
   * next request faults them back in page by page (over 1 ms per LIME explanation).
   * Keep freed memory in the heap instead; RSS stays bounded by the peak working set. */
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);

  /* Before we start any thread, so all inherit the mask (MHD, libuv pool, loop). */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  main_thread = pthread_self();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward_to_main;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  xd_blas_init();
  xd_log(XD_LOG_INFO, "OpenBLAS: %s", xd_blas_config());
  if (!xd_blas_threadsafe()) {
    xd_log(XD_LOG_ERROR, "the linked OpenBLAS is the serial build, which returns wrong results under concurrent "
                         "callers; install libopenblas0-pthread");
    return 1;
  }
  json_object_seed(0); /* jansson's hash seed, once, before threads (its portability notes) */

  char desc[1536];
  xd_config_describe(&cfg, desc, sizeof desc);
  xd_log(XD_LOG_INFO, "explaind %s starting: %s", XD_VERSION, desc);
  if (cfg.test_part_delay_ms) xd_log(XD_LOG_WARN, "EXPLAIND_TEST_PART_DELAY_MS=%lld: for tests only",
                                     (long long)cfg.test_part_delay_ms);

  xd_registry_t *reg = NULL;
  xd_api_t *api = NULL;
  xd_pool_t *pool = NULL;
  xd_http_t *http = NULL;
  xd_jobs_t *jobs = NULL;
  int status = 1;
  xd_api_config_t acfg = {.limits = cfg.limits, .model_dir = cfg.model_dir,
                          .inline_predict_rows = cfg.inline_predict_rows,
                          .api_keys = cfg.api_keys, .n_api_keys = cfg.n_api_keys,
                          .admin_key = cfg.admin_key[0] ? cfg.admin_key : NULL,
                          .cors_origins = cfg.cors_origins, .n_cors_origins = cfg.n_cors_origins,
                          .allow_empty = cfg.allow_empty};
  if (xd_registry_new(&reg) != XD_OK || xd_api_new(&acfg, reg, &api) != XD_OK) {
    xd_log(XD_LOG_ERROR, "cannot create the API (out of memory)");
    goto done;
  }
  xd_api_set_ready(api, 0);
  xd_pool_config_t pcfg = {.workers = cfg.workers, .capacity = cfg.queue_size,
                           .default_timeout_ms = cfg.request_timeout_ms, .cost_budget = cfg.queue_work_rows,
                           .test_part_delay_ms = cfg.test_part_delay_ms,
                           .observe_queue = observe_queue, .observe_compute = observe_compute};
  if (xd_pool_new(&pcfg, &pool) != XD_OK) {
    xd_log(XD_LOG_ERROR, "cannot start the worker pool");
    goto done;
  }
  queue_capacity = cfg.queue_size;
  xd_metrics_gauges_t gauges = {.inflight = gauge_inflight, .capacity = gauge_capacity, .ctx = pool,
                                .mhd_version = MHD_get_version()};
  xd_metrics_set_gauges(&gauges);
  /* A folder that cannot be read is a configuration error: say so before listening. */
  DIR *md = opendir(cfg.model_dir);
  if (!md) {
    xd_log(XD_LOG_ERROR, "--model-dir %s: %s (it must be a readable folder of model bundles)", cfg.model_dir,
           strerror(errno));
    status = 2;
    goto done;
  }
  closedir(md);
  if (xd_http_start(&cfg, api, pool, &http) != XD_OK) goto done; /* logged */
  xd_log(XD_LOG_INFO, "listening on port %d", xd_http_port(http));

  remove_stale_temp(cfg.model_dir);
  int skipped = 0;
  if (load_models(api, cfg.model_dir, &skipped) < 0) goto done;
  if (cfg.strict_models && skipped) {
    xd_log(XD_LOG_ERROR, "--strict-models: %d bundle(s) of %s failed to load (each named above with the reason)",
           skipped, cfg.model_dir);
    goto done;
  }
  if (!cfg.allow_empty && xd_registry_count(reg) == 0)
    xd_log(XD_LOG_WARN, "no model loaded: /readyz answers 503 until one is (--allow-empty to be ready without)");
  /* after the models: the jobs it resumes need theirs */
  xd_jobs_config_t jcfg = {.dir = cfg.job_dir, .max_jobs = cfg.max_jobs, .max_rows = cfg.max_job_rows,
                           .ttl_ms = cfg.job_ttl_ms};
  xd_error_t jerr;
  if (xd_jobs_new(&jcfg, api, pool, &jobs, &jerr) != XD_OK) {
    xd_log(XD_LOG_ERROR, "--%s: %s", jerr.field, jerr.text);
    goto done;
  }
  xd_api_set_ready(api, 1);
  xd_log(XD_LOG_INFO, "ready");

  int sig = wait_for_stop(&set, api, cfg.model_dir);
  xd_log(XD_LOG_INFO, "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  shutdown_gracefully(&cfg, api, http, pool);
  status = 0;

done:
  if (http && status != 0) { /* failed start-up: resume anything suspended before stopping */
    xd_http_quiesce(http);
    xd_pool_close(pool);
    xd_pool_cancel_all(pool);
    xd_pool_drain(pool, INT32_MAX);
  }
  xd_http_stop(http); /* only after every suspended connection was resumed */
  xd_jobs_free(jobs);  /* after the event streams, before the pool its chunk runs on */
  xd_pool_free(pool);
  xd_api_free(api);
  xd_registry_free(reg);
  uv_library_shutdown(); /* joins libuv's pool threads, so valgrind sees no leak */
  xd_log(XD_LOG_INFO, "stopped (exit %d)", status);
  return status;
}
