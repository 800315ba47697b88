/* http.c — see http.h. The per-request state lives in *con_cls from the URI callback
 * (which also gives us the raw query string) until NOTIFY_COMPLETED frees it. */
#include "server/wait.h"
#include "server/http.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/cors.h"
#include "api/metrics.h"
#include "core/alloc.h"
#include "server/log.h"

#define RID_MAX 64

struct xd_http {
  struct MHD_Daemon *d;
  xd_api_t *api;
  xd_pool_t *pool;
  size_t max_body;
  int port;
  MHD_socket listen_fd; /* after quiesce: ours to close, but only after MHD_stop_daemon */
  int quiesced;
  uint64_t rid_prefix;
  atomic_uint_fast64_t rid_counter;
  pthread_mutex_t mu; /* guards pending; signals drained */
  pthread_cond_t drained;
  unsigned pending;
  char *tls_cert, *tls_key; /* PEM text given to MHD (--tls-cert/--tls-key); the key is wiped at stop */
  size_t tls_key_len;
  /* Disconnect watch (see watch_main): requests whose job is in the pool, checked every
   * WATCH_PERIOD_MS for a closed peer. watch_mu guards the list, the flags below and each
   * listed request's watch_* fields. */
  pthread_mutex_t watch_mu;
  pthread_cond_t watch_cv;
  pthread_t watcher;
  int watcher_running, watch_stop;
  struct req *watched;
};

typedef struct req {
  xd_http_t *h;
  struct MHD_Connection *conn;
  int64_t t0;          /* CLOCK_MONOTONIC ns at the request line: the deadline counts from here */
  char *uri;           /* raw request target, for the query string */
  int started;         /* the handler has seen this request */
  char rid[RID_MAX + 1];
  char model[XD_MODEL_NAME_MAX + 1];
  const char *endpoint; /* the API's static route label, NULL before routing */
  char method[16];     /* copies for the access log, written after the request ended */
  char *path;
  char *body;
  size_t len, cap;
  int too_big;         /* body over max_body: the rest is discarded, 413 at the end */
  int queued;          /* handed to the pool; counted in h->pending */
  atomic_int done;     /* the pool's callback filled resp (release), then resumed */
  xd_pool_job_t *job;  /* watch_mu: the pool's job while listed in h->watched */
  struct req *watch_next, *watch_prev; /* watch_mu */
  int watch_listed;    /* watch_mu: in h->watched */
  int watch_finished;  /* watch_mu: on_done ran; never list it (again) */
  int peer_gone;       /* watch_mu until on_done, then read-only: the client closed */
  int status;          /* what was queued, for the access log (0: nothing) */
  xd_api_response_t resp;
} req_t;

/* ---- request ids ------------------------------------------------------------------- */

/* The client's X-Request-Id when it is 1..64 printable ASCII characters (so it is safe to
 * echo in a header and a log line), else a new one: a per-process random prefix and a
 * counter, unique within the process and unguessable across restarts. */
static void set_request_id(xd_http_t *h, req_t *r) {
  const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
  size_t n = v ? strlen(v) : 0;
  int ok = n >= 1 && n <= RID_MAX;
  for (size_t i = 0; ok && i < n; i++) ok = v[i] >= 0x20 && v[i] <= 0x7e;
  if (ok) {
    memcpy(r->rid, v, n + 1);
    return;
  }
  uint64_t c = atomic_fetch_add(&h->rid_counter, 1);
  snprintf(r->rid, sizeof r->rid, "%016" PRIx64 "-%08" PRIx64, h->rid_prefix, c);
}

/* ---- responses --------------------------------------------------------------------- */

/* CORS headers (api/cors.h) go straight onto the MHD response: the echoed Origin may be
 * longer than a response header slot. */
static const char *conn_header(void *ctx, const char *name) {
  return MHD_lookup_connection_value((struct MHD_Connection *)ctx, MHD_HEADER_KIND, name);
}
static void add_mhd_header(void *ctx, const char *name, const char *value) {
  MHD_add_response_header((struct MHD_Response *)ctx, name, value);
}

/* Queues r->resp (taking its body). Only on a call where upload_data is NULL. */
static enum MHD_Result send_response(req_t *r) {
  xd_api_response_t *rs = &r->resp;
  struct MHD_Response *m;
  if (rs->body) {
    m = MHD_create_response_from_buffer_with_free_callback(rs->body_len, rs->body, xd_free);
    if (m) rs->body = NULL; /* MHD owns it now */
  } else {
    m = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  }
  if (!m) return MHD_NO; /* out of memory: MHD closes the connection */
  MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE, rs->content_type ? rs->content_type : "application/json");
  MHD_add_response_header(m, "X-Request-Id", r->rid);
  xd_api_request_t q = {.method = r->method, .path = r->path, .header = conn_header, .header_ctx = r->conn};
  xd_cors_headers(r->h->api, &q, add_mhd_header, m);
  for (size_t i = 0; i < rs->n_headers && i < XD_API_MAX_HEADERS; i++)
    if (rs->header_names[i]) MHD_add_response_header(m, rs->header_names[i], rs->header_values[i]);
  r->status = rs->status;
  enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)rs->status, m);
  MHD_destroy_response(m);
  return ok;
}

/* Answers with the API's JSON error for code (so the body has the one error shape). */
static enum MHD_Result send_error(req_t *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum MHD_Result send_error(req_t *r, int code, const char *fmt, ...) {
  xd_error_t e;
  xd_error_clear(&e);
  e.code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.text, sizeof e.text, fmt, ap);
  va_end(ap);
  /* /v2 routes answer errors in the Open Inference Protocol's shape: keep the API's
   * choice, or decide from the path when the API has not seen the request (413). */
  int oip = r->resp.oip_errors || (r->path && strncmp(r->path, "/v2/", 4) == 0);
  xd_api_response_deinit(&r->resp);
  memset(&r->resp, 0, sizeof r->resp);
  r->resp.oip_errors = oip;
  xd_api_error(&e, &r->resp); /* adds Retry-After: 1 for XD_EOVERLOAD */
  return send_response(r);
}

/* ---- disconnect watch ---------------------------------------------------------------- */

/* libmicrohttpd does not read a suspended connection, so it never notices that the
 * client went away, and the job would run to its end for nobody (docs/serving.md §4.4). One
 * small thread looks at the socket of every request whose job is in the pool, every
 * WATCH_PERIOD_MS: recv(MSG_PEEK) returning 0 means the peer closed (FIN), an error
 * such as ECONNRESET means it is gone too. Then the job is canceled through the pool
 * (parts not started are skipped; running ones stop at their next xd_cancel_check) and
 * its slot and worker are free again. The thread sleeps while nothing is suspended.
 * A client that half-closes (shutdown(SHUT_WR)) and still waits for its answer looks
 * the same as one that left: it gets the canceled job's 503 (HTTP clients do not do this).
 *
 * Lifetime: a request is listed only between its submit and its on_done, and on_done
 * unlists it under watch_mu before resuming the connection, so while the watcher holds
 * watch_mu every listed request, its connection and its job are alive. */
#define WATCH_PERIOD_MS 100

static int peer_closed(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!ci || ci->connect_fd == MHD_INVALID_SOCKET) return 0;
  char b;
  ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return 0; /* a pipelined next request: still there */
  if (n == 0) return 1;
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

static void *watch_main(void *arg) {
  xd_http_t *h = arg;
  pthread_mutex_lock(&h->watch_mu);
  while (!h->watch_stop) {
    if (!h->watched) {
      pthread_cond_wait(&h->watch_cv, &h->watch_mu);
      continue;
    }
    for (req_t *r = h->watched; r; r = r->watch_next) {
      if (r->peer_gone || !peer_closed(r->conn)) continue;
      r->peer_gone = 1;
      xd_error_t e;
      xd_error_set(&e, XD_ECANCELED, NULL, "the client closed the connection before the answer");
      xd_pool_cancel_job(h->pool, r->job, &e);
      xd_log(XD_LOG_INFO, "rid=%s client closed the connection: job canceled", r->rid);
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += WATCH_PERIOD_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&h->watch_cv, &h->watch_mu, &until);
  }
  pthread_mutex_unlock(&h->watch_mu);
  return NULL;
}

/* After xd_pool_submit (network thread): list r unless its job finished already. r
 * cannot be freed meanwhile: this thread owns its connection until the handler returns. */
static void watch_add(xd_http_t *h, req_t *r, xd_pool_job_t *job) {
  pthread_mutex_lock(&h->watch_mu);
  if (h->watcher_running && !r->watch_finished) {
    r->job = job;
    r->watch_prev = NULL;
    r->watch_next = h->watched;
    if (h->watched) h->watched->watch_prev = r;
    else pthread_cond_signal(&h->watch_cv); /* the watcher sleeps while the list is empty */
    h->watched = r;
    r->watch_listed = 1;
  }
  pthread_mutex_unlock(&h->watch_mu);
}

/* From on_done, before the resume: after this the watcher no longer touches r or its job. */
static void watch_remove(xd_http_t *h, req_t *r) {
  pthread_mutex_lock(&h->watch_mu);
  r->watch_finished = 1;
  if (r->watch_listed) {
    if (r->watch_prev) r->watch_prev->watch_next = r->watch_next;
    else h->watched = r->watch_next;
    if (r->watch_next) r->watch_next->watch_prev = r->watch_prev;
    r->watch_listed = 0;
    r->job = NULL;
  }
  pthread_mutex_unlock(&h->watch_mu);
}

/* ---- the pool's completion (worker or loop thread) ---------------------------------- */

static void on_done(void *ctx, json_t *body, const xd_error_t *err) {
  req_t *r = ctx;
  xd_api_finish(body, err, &r->resp); /* errors get Retry-After from xd_api_error where due */
  watch_remove(r->h, r);
  atomic_store_explicit(&r->done, 1, memory_order_release);
  MHD_resume_connection(r->conn); /* last touch: r may be freed once MHD sends the answer */
}

/* ---- MHD callbacks (network threads) ----------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
  req_t *r = calloc(1, sizeof *r);
  if (!r) return NULL; /* the handler then allocates (without a query string) */
  r->h = cls;
  r->conn = c;
  r->t0 = xd_now_ns();
  r->uri = strdup(uri ? uri : "");
  return r;
}

static const char *header_cb(void *ctx, const char *name) {
  return MHD_lookup_connection_value((struct MHD_Connection *)ctx, MHD_HEADER_KIND, name);
}

/* Appends a body chunk, or marks the body too big (then drops what came so far). */
static void append_body(req_t *r, const char *data, size_t n) {
  size_t max = r->h->max_body;
  if (r->too_big) return;
  if (n > max - r->len) {
    r->too_big = 1;
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    return;
  }
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + n + 1) cap *= 2;
    if (cap > max + 1) cap = max + 1;
    char *b = realloc(r->body, cap);
    if (!b) { /* treat like an over-long body: the client gets an answer, we keep going */
      r->too_big = 1;
      free(r->body);
      r->body = NULL;
      r->len = r->cap = 0;
      return;
    }
    r->body = b;
    r->cap = cap;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  r->body[r->len] = '\0'; /* for decoders that like C strings; not counted in len */
}

static enum MHD_Result first_call(xd_http_t *h, req_t *r, const char *url, const char *method) {
  r->started = 1;
  set_request_id(h, r);
  snprintf(r->method, sizeof r->method, "%s", method);
  r->path = strdup(url);
  const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl) {
    errno = 0;
    char *end;
    unsigned long long n = strtoull(cl, &end, 10);
    if (errno == ERANGE || (end != cl && n > h->max_body)) {
      /* Before the upload: MHD skips "100 Continue", discards the body and closes. */
      r->too_big = 1;
      xd_metrics_rejected(NULL, "too_large");
      return send_error(r, XD_ETOOBIG, "the request body (%.32s bytes) is over the limit of %zu bytes", cl,
                        h->max_body);
    }
  }
  return MHD_YES;
}

static enum MHD_Result final_call(xd_http_t *h, req_t *r, const char *url, const char *method) {
  if (r->too_big) {
    xd_metrics_rejected(NULL, "too_large");
    return send_error(r, XD_ETOOBIG, "the request body is over the limit of %zu bytes", h->max_body);
  }
  const char *q = r->uri ? strchr(r->uri, '?') : NULL;
  xd_api_request_t in = {
      .method = method,
      .path = url,
      .query = q ? q + 1 : NULL,
      .body = r->body ? r->body : "",
      .body_len = r->len,
      .header = header_cb,
      .header_ctx = r->conn,
  };
  xd_work_t work;
  memset(&work, 0, sizeof work);
  memset(&r->resp, 0, sizeof r->resp);
  xd_api_outcome_t out = xd_api_handle(h->api, &in, &r->resp, &work);
  snprintf(r->model, sizeof r->model, "%s", r->resp.model);
  r->endpoint = r->resp.endpoint;
  free(r->body); /* decoded into the work state or answered: the raw body is done */
  r->body = NULL;
  r->len = r->cap = 0;
  if (out == XD_API_RESPOND) return send_response(r);
  if (!work.ops || !work.ops->run || !work.ops->encode || !work.ops->free) /* an api/ bug; never hang */
    return send_error(r, XD_EINTERNAL, "internal error: no work to queue");

  xd_pool_job_t *job;
  int rc = xd_pool_admit(h->pool, &job);
  if (rc != XD_OK) {
    work.ops->free(work.state);
    xd_metrics_rejected(r->endpoint, rc != XD_EOVERLOAD ? "no_memory" : xd_pool_closed(h->pool) ? "draining" : "queue_full");
    if (rc == XD_EOVERLOAD)
      return send_error(r, XD_EOVERLOAD, "the work queue is full or the server is shutting down; retry shortly");
    return send_error(r, XD_ENOMEM, "out of memory");
  }
  pthread_mutex_lock(&h->mu);
  h->pending++;
  pthread_mutex_unlock(&h->mu);
  r->queued = 1;
  MHD_suspend_connection(r->conn); /* before submit: the job may finish at once */
  xd_pool_submit(h->pool, job, &work, r->t0, on_done, r);
  watch_add(h, r, job); /* cancel the job if the client leaves (see watch_main) */
  return MHD_YES; /* r belongs to the pool's callback until it resumes the connection */
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls) {
  xd_http_t *h = cls;
  req_t *r = *con_cls;
  if (!r) { /* the URI callback could not allocate: try once more */
    r = on_uri(h, NULL, c);
    if (!r) return MHD_NO;
    *con_cls = r;
  }
  if (!r->started) return first_call(h, r, url, method);
  if (*upload_data_size) {
    append_body(r, upload_data, *upload_data_size);
    *upload_data_size = 0; /* always consume, even when discarding: else MHD aborts */
    return MHD_YES;
  }
  if (r->queued) {
    if (!atomic_load_explicit(&r->done, memory_order_acquire)) return MHD_YES; /* not resumed by us */
    if (r->peer_gone) { /* the canceled job's 503 goes nowhere (returning MHD_NO would log a
                         * warning); logged and counted as nginx's 499 "client closed request" */
      enum MHD_Result ok = send_response(r);
      r->status = 499;
      return ok;
    }
    return send_response(r);
  }
  return final_call(h, r, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  xd_http_t *h = cls;
  req_t *r = *con_cls;
  if (!r) return;
  *con_cls = NULL;
  if (r->started) {
    double ms = (double)(xd_now_ns() - r->t0) / 1e6;
    if (r->status) xd_metrics_request(r->endpoint, r->model, r->status, ms / 1e3);
    xd_log_access(r->rid, r->method, r->path ? r->path : "?", r->model, r->status, ms);
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && xd_log_enabled(XD_LOG_DEBUG))
      xd_log(XD_LOG_DEBUG, "rid=%s connection ended before the answer was sent (%d)", r->rid, (int)toe);
  }
  if (r->queued) {
    pthread_mutex_lock(&h->mu);
    if (--h->pending == 0) pthread_cond_broadcast(&h->drained);
    pthread_mutex_unlock(&h->mu);
  }
  xd_api_response_deinit(&r->resp);
  free(r->body);
  free(r->uri);
  free(r->path);
  free(r);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
  xd_log(XD_LOG_WARN, "libmicrohttpd: %s", buf);
}

/* ---- lifecycle --------------------------------------------------------------------- */

/* Reads a whole PEM file into a NUL-terminated buffer (MHD wants the text, not a path). */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 8192, n = 0;
  char *b = malloc(cap);
  while (b) {
    n += fread(b + n, 1, cap - n - 1, f);
    if (n < cap - 1) break;
    char *g = realloc(b, cap * 2);
    if (!g) {
      explicit_bzero(b, n);
      free(b);
      b = NULL;
      break;
    }
    b = g;
    cap *= 2;
  }
  if (b && (ferror(f) || n == 0)) {
    explicit_bzero(b, n);
    free(b);
    b = NULL;
  }
  fclose(f);
  if (b) b[n] = '\0';
  *len = n;
  return b;
}

static void free_tls(xd_http_t *h) {
  free(h->tls_cert);
  if (h->tls_key) explicit_bzero(h->tls_key, h->tls_key_len);
  free(h->tls_key);
  h->tls_cert = h->tls_key = NULL;
}

/* TLS 1.2 and 1.3 only, AEAD ciphers, forward secrecy; the server's order wins. */
#define TLS_PRIORITIES \
  "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
  "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA:%SERVER_PRECEDENCE"

/* Resolves host:port into *ss; "" means every IPv4 address. */
static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = host[0] ? AF_UNSPEC : AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  char ps[8];
  snprintf(ps, sizeof ps, "%d", port);
  int rc = getaddrinfo(host[0] ? host : NULL, ps, &hints, &res);
  if (rc != 0) {
    xd_log(XD_LOG_ERROR, "cannot resolve listen address '%s': %s", host, gai_strerror(rc));
    return -1;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

int xd_http_start(const xd_config_t *cfg, xd_api_t *api, xd_pool_t *pool, xd_http_t **out) {
  *out = NULL;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (resolve(cfg->host, cfg->port, &ss, &sl)) return XD_EIO;
  xd_http_t *h = calloc(1, sizeof *h);
  if (!h) return XD_ENOMEM;
  h->api = api;
  h->pool = pool;
  h->max_body = cfg->max_body;
  h->listen_fd = MHD_INVALID_SOCKET;
  if (getrandom(&h->rid_prefix, sizeof h->rid_prefix, 0) != (ssize_t)sizeof h->rid_prefix)
    h->rid_prefix = (uint64_t)xd_now_ns() ^ ((uint64_t)getpid() << 32);
  atomic_init(&h->rid_counter, 1);
  pthread_mutex_init(&h->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->drained, &ca);
  pthread_mutex_init(&h->watch_mu, NULL); /* before the daemon: its handler lists requests */
  pthread_cond_init(&h->watch_cv, &ca);
  pthread_condattr_destroy(&ca);

  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  struct MHD_OptionItem tls_opts[4] = {{MHD_OPTION_END, 0, NULL}};
  if (cfg->tls_cert[0]) {
    size_t cl = 0;
    h->tls_cert = read_file(cfg->tls_cert, &cl);
    h->tls_key = read_file(cfg->tls_key, &h->tls_key_len);
    if (!h->tls_cert || !h->tls_key) {
      xd_log(XD_LOG_ERROR, "cannot read the TLS %s file %s", h->tls_cert ? "key" : "certificate",
             h->tls_cert ? cfg->tls_key : cfg->tls_cert);
      free_tls(h);
      pthread_mutex_destroy(&h->mu);
      pthread_cond_destroy(&h->drained);
      free(h);
      return XD_EIO;
    }
    flags |= MHD_USE_TLS;
    tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert};
    tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key};
    tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES};
    tls_opts[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  }
  /* the logger goes first, or MHD reports early option errors with its own logger */
  h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, handler, h,
                          MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, h,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout_s,
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                          MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
                          MHD_OPTION_ARRAY, tls_opts,
                          /* last: with one thread the list ends here, as MHD warns about a
                           * pool size of 0 or 1 */
                          cfg->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (unsigned)cfg->threads,
                          MHD_OPTION_END);
  if (!h->d) {
    xd_log(XD_LOG_ERROR, "cannot listen on %s:%d (address in use, or not allowed%s)", cfg->host[0] ? cfg->host : "0.0.0.0",
           cfg->port, h->tls_cert ? ", or the TLS certificate and key were refused" : "");
    free_tls(h);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->drained);
    pthread_mutex_destroy(&h->watch_mu);
    pthread_cond_destroy(&h->watch_cv);
    free(h);
    return XD_EIO;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  h->port = di ? di->port : cfg->port;
  pthread_mutex_lock(&h->watch_mu); /* requests may already be arriving */
  h->watcher_running = pthread_create(&h->watcher, NULL, watch_main, h) == 0;
  pthread_mutex_unlock(&h->watch_mu);
  if (!h->watcher_running) xd_log(XD_LOG_WARN, "no disconnect watch (cannot start a thread): jobs of clients that "
                                               "leave run to their end");
  *out = h;
  return XD_OK;
}

int xd_http_port(const xd_http_t *h) { return h->port; }

void xd_http_quiesce(xd_http_t *h) {
  if (h->quiesced) return;
  h->quiesced = 1;
  h->listen_fd = MHD_quiesce_daemon(h->d);
  /* MHD only stops accepting: the socket still listens, so the kernel would complete new
   * handshakes into the backlog and those clients would hang until we exit. shutdown()
   * of a listening socket makes Linux stop listening (queued connections are reset, new
   * ones refused), so the load balancer fails over at once; the fd itself stays open
   * until after MHD_stop_daemon, as MHD requires. */
  if (h->listen_fd != MHD_INVALID_SOCKET) shutdown(h->listen_fd, SHUT_RDWR);
}

unsigned xd_http_pending(xd_http_t *h) {
  pthread_mutex_lock(&h->mu);
  unsigned n = h->pending;
  pthread_mutex_unlock(&h->mu);
  return n;
}

int xd_http_drain(xd_http_t *h, int64_t timeout_ms) {
  return xd_wait_zero(&h->mu, &h->drained, &h->pending, timeout_ms);
}

void xd_http_stop(xd_http_t *h) {
  if (!h) return;
  pthread_mutex_lock(&h->watch_mu); /* nothing is suspended now, so the list is empty */
  h->watch_stop = 1;
  pthread_cond_signal(&h->watch_cv);
  pthread_mutex_unlock(&h->watch_mu);
  if (h->watcher_running) pthread_join(h->watcher, NULL);
  pthread_mutex_destroy(&h->watch_mu);
  pthread_cond_destroy(&h->watch_cv);
  MHD_stop_daemon(h->d); /* closes every connection; NOTIFY_COMPLETED runs for each */
  if (h->listen_fd != MHD_INVALID_SOCKET) close(h->listen_fd);
  free_tls(h); /* after MHD_stop_daemon: MHD keeps pointers to the PEM text */
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->drained);
  free(h);
}
