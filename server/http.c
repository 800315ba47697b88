/* http.c — see http.h. The per-request state lives in *con_cls from the URI callback
 * (which also gives us the raw query string) until NOTIFY_COMPLETED frees it. Connection
 * limits and read timeouts are server/conn.c's; the disconnect watch server/disconnect.c's;
 * TLS files server/tls.c's. */
#include "server/wait.h"
#include "server/http.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/cors.h"
#include "api/json_guard.h"
#include "api/metrics.h"
#include "core/alloc.h"
#include "server/conn.h"
#include "server/disconnect.h"
#include "server/log.h"
#include "server/tls.h"

#define RID_MAX 64
#define XD_HTTP_MHD_SLACK 16 /* per network thread: libmicrohttpd's cap over ours */

struct xd_http {
  struct MHD_Daemon *d;
  xd_api_t *api;
  xd_pool_t *pool;
  size_t max_body;
  size_t max_inflight_body;     /* --max-inflight-body */
  atomic_size_t inflight_body;  /* bytes reserved by request bodies held now */
  atomic_int draining;          /* after quiesce: every answer closes its connection */
  xd_conns_t *conns;            /* connection limits and read timeouts (server/conn.h) */
  int port;
  MHD_socket listen_fd; /* after quiesce: ours to close, but only after MHD_stop_daemon */
  int quiesced;
  uint64_t rid_prefix;
  atomic_uint_fast64_t rid_counter;
  pthread_mutex_t mu; /* guards pending; signals drained */
  pthread_cond_t drained;
  unsigned pending;
  xd_tls_t tls;            /* PEM text given to MHD (server/tls.h) */
  xd_disconnect_t *watch;  /* cancels jobs whose client left (server/disconnect.h) */
  /* Streamed responses with nothing to send yet are parked (suspended) and resumed by
   * the ticker every XD_HTTP_STREAM_TICK_MS to ask again: MHD's content reader must not
   * block a network thread, and returning 0 without suspending would spin. */
  pthread_mutex_t park_mu;
  struct stream *parked;
  int streams_closing;
  int ticker_started, ticker_stop;
  pthread_cond_t ticker_cv;
  pthread_t ticker;
};
#define XD_HTTP_STREAM_TICK_MS 200

typedef struct req {
  xd_http_t *h;
  struct MHD_Connection *conn;
  int64_t t0;          /* CLOCK_MONOTONIC ns at the request line: the deadline counts from here */
  char *uri;           /* raw request target, for the query string */
  int started;         /* the handler has seen this request */
  char rid[RID_MAX + 1];
  char model[XD_MODEL_NAME_MAX + 1];
  const char *endpoint; /* the API's static route label, NULL before routing */
  const char *explain_method; /* static, or NULL: the metrics' method label */
  char method[16];     /* copies for the access log, written after the request ended */
  char *path;
  char *body;          /* malloc'd below BODY_MMAP_MIN, else mmap'd (body_mapped) */
  size_t len, cap;
  size_t reserved;     /* bytes of h->inflight_body this body holds (= cap) */
  int body_mapped;
  int too_big;         /* body over max_body: the rest is discarded, 413 at the end */
  int over_budget;     /* body past --max-inflight-body: the rest is discarded, 503 at the end */
  int close;           /* answer with Connection: close (the body was not read, or draining) */
  int queued;          /* handed to the pool; counted in h->pending */
  atomic_int done;     /* the pool's callback filled resp (release), then resumed */
  xd_disconnect_entry_t watch; /* server/disconnect.h; watch.peer_gone: the client closed */
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

/* A streamed response (api/response.h stream): MHD's content reader over the API's. */
typedef struct stream {
  long (*read)(void *ctx, uint64_t pos, char *buf, size_t max);
  void (*free)(void *ctx);
  void *ctx;
  xd_http_t *h;
  struct MHD_Connection *conn;
  struct stream *next; /* in h->parked */
  int parked;
} stream_t;
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  stream_t *st = cls;
  xd_http_t *h = st->h;
  pthread_mutex_lock(&h->park_mu);
  int closing = h->streams_closing;
  pthread_mutex_unlock(&h->park_mu);
  if (closing) return MHD_CONTENT_READER_END_OF_STREAM;
  long n = st->read(st->ctx, pos, buf, max);
  if (n != 0) return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
  pthread_mutex_lock(&h->park_mu); /* nothing yet: park until the next tick */
  MHD_suspend_connection(st->conn);
  st->parked = 1;
  st->next = h->parked;
  h->parked = st;
  pthread_mutex_unlock(&h->park_mu);
  return 0;
}
static void stream_done(void *cls) {
  stream_t *st = cls;
  xd_http_t *h = st->h;
  pthread_mutex_lock(&h->park_mu);
  for (stream_t **pp = &h->parked; *pp; pp = &(*pp)->next)
    if (*pp == st) {
      *pp = st->next;
      break;
    }
  pthread_mutex_unlock(&h->park_mu);
  if (st->free) st->free(st->ctx);
  free(st);
}
/* Resumes every parked stream (park_mu held). */
static void unpark_all(xd_http_t *h) {
  for (stream_t *st = h->parked; st; st = st->next) {
    st->parked = 0;
    MHD_resume_connection(st->conn);
  }
  h->parked = NULL;
}
static void *ticker(void *arg) {
  xd_http_t *h = arg;
  pthread_mutex_lock(&h->park_mu);
  while (!h->ticker_stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += XD_HTTP_STREAM_TICK_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&h->ticker_cv, &h->park_mu, &ts);
    unpark_all(h);
  }
  pthread_mutex_unlock(&h->park_mu);
  return NULL;
}

/* Queues r->resp (taking its body). Only on a call where upload_data is NULL. */
static enum MHD_Result send_response(req_t *r) {
  xd_api_response_t *rs = &r->resp;
  struct MHD_Response *m;
  if (rs->stream) { /* Server-Sent Events: MHD pulls the bytes as they come */
    stream_t *st = malloc(sizeof *st);
    m = st ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stream_read, st, stream_done) : NULL;
    if (m) {
      *st = (stream_t){rs->stream, rs->stream_free, rs->stream_ctx, r->h, r->conn, NULL, 0};
      rs->stream = NULL, rs->stream_free = NULL, rs->stream_ctx = NULL; /* MHD owns it now */
    } else {
      free(st);
    }
  } else if (rs->body) {
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
  if (r->close || atomic_load(&r->h->draining)) MHD_add_response_header(m, MHD_HTTP_HEADER_CONNECTION, "close");
  r->status = rs->status;
  enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)rs->status, m);
  MHD_destroy_response(m);
  return ok;
}

/* Answers with the API's JSON error for code (so the body has the one error shape). */
static enum MHD_Result send_err(req_t *r, const xd_error_t *e);
static enum MHD_Result send_error(req_t *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum MHD_Result send_err(req_t *r, const xd_error_t *e) {
  /* /v2 routes answer errors in the Open Inference Protocol's shape: keep the API's
   * choice, or decide from the path when the API has not seen the request (413). */
  int oip = r->resp.oip_errors || (r->path && strncmp(r->path, "/v2/", 4) == 0);
  xd_api_response_deinit(&r->resp);
  memset(&r->resp, 0, sizeof r->resp);
  r->resp.oip_errors = oip;
  xd_api_error(e, &r->resp); /* adds Retry-After: 1 for XD_EOVERLOAD */
  return send_response(r);
}

static enum MHD_Result send_error(req_t *r, int code, const char *fmt, ...) {
  xd_error_t e;
  xd_error_clear(&e);
  e.code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.text, sizeof e.text, fmt, ap);
  va_end(ap);
  return send_err(r, &e);
}

/* ---- the pool's completion (worker or loop thread) ---------------------------------- */

static void on_done(void *ctx, json_t *body, const xd_error_t *err, const xd_cancel_t *print_cancel) {
  req_t *r = ctx;
  xd_api_finish_cancel(body, err, print_cancel, &r->resp); /* errors get Retry-After from xd_api_error where due */
  xd_disconnect_remove(r->h->watch, &r->watch);
  atomic_store_explicit(&r->done, 1, memory_order_release);
  MHD_resume_connection(r->conn); /* last touch: r may be freed once MHD sends the answer */
}

/* ---- MHD callbacks (network threads) ----------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
  xd_http_t *h = cls;
  req_t *r = calloc(1, sizeof *r);
  xd_conns_phase(h->conns, c, XD_CONN_ARRIVING); /* the request line is in: --read-timeout runs */
  if (!r) return NULL; /* the handler then allocates (without a query string) */
  r->h = h;
  r->conn = c;
  r->t0 = xd_now_ns();
  r->uri = strdup(uri ? uri : "");
  return r;
}

static const char *header_cb(void *ctx, const char *name) {
  return MHD_lookup_connection_value((struct MHD_Connection *)ctx, MHD_HEADER_KIND, name);
}

/* ---- request bodies: a global budget, and memory that goes back to the system --------- */

/* Bodies of this size and above live in their own mapping (mmap/mremap), so their memory
 * returns to the kernel when they are freed whatever the allocator keeps in its heap. */
#define BODY_MMAP_MIN ((size_t)64 * 1024)
#define BODY_PAGE ((size_t)4096)

/* Reserves n more bytes of --max-inflight-body; 0, or -1 when they do not fit. */
static int budget_take(xd_http_t *h, size_t n) {
  size_t cur = atomic_load(&h->inflight_body);
  do {
    if (n > h->max_inflight_body || cur > h->max_inflight_body - n) return -1;
  } while (!atomic_compare_exchange_weak(&h->inflight_body, &cur, cur + n));
  return 0;
}

static void budget_give(xd_http_t *h, size_t n) {
  if (n) atomic_fetch_sub(&h->inflight_body, n);
}

/* Frees the body and gives its reservation back. */
static void body_release(req_t *r) {
  if (r->body) {
    if (r->body_mapped) munmap(r->body, r->cap);
    else free(r->body);
  }
  if (r->cap >= ((size_t)1 << 20)) xd_conns_want_trim(r->h->conns);
  budget_give(r->h, r->reserved);
  r->body = NULL;
  r->len = r->cap = r->reserved = 0;
  r->body_mapped = 0;
}

/* Grows the body's buffer to cap bytes (reserved first). 0, or -1 (nothing changed). */
static int body_grow(req_t *r, size_t cap) {
  if (cap >= BODY_MMAP_MIN) cap = (cap + BODY_PAGE - 1) & ~(BODY_PAGE - 1);
  if (budget_take(r->h, cap - r->cap)) return -1;
  char *b;
  if (cap < BODY_MMAP_MIN) {
    b = realloc(r->body, cap);
  } else if (r->body_mapped) {
    b = mremap(r->body, r->cap, cap, MREMAP_MAYMOVE);
    if (b == MAP_FAILED) b = NULL;
  } else {
    b = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) {
      b = NULL;
    } else {
      if (r->len) memcpy(b, r->body, r->len);
      free(r->body);
      r->body_mapped = 1;
    }
  }
  if (!b) {
    budget_give(r->h, cap - r->cap);
    return -1;
  }
  r->body = b;
  r->reserved += cap - r->cap;
  r->cap = cap;
  return 0;
}

/* Appends a body chunk, or marks the body too big / over the budget (then drops what
 * came so far and discards the rest: the answer goes out once the body has been read). */
static void append_body(req_t *r, const char *data, size_t n) {
  size_t max = r->h->max_body;
  xd_conns_body(r->h->conns, r->conn, n);
  if (r->too_big || r->over_budget) return;
  if (n > max - r->len) {
    r->too_big = 1;
    body_release(r);
    return;
  }
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + n + 1) cap *= 2;
    if (cap > max + 1) cap = max + 1;
    if (body_grow(r, cap)) { /* over the budget, or no memory: 503, and we keep going */
      r->over_budget = 1;
      body_release(r);
      return;
    }
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  r->body[r->len] = '\0'; /* for decoders that like C strings; not counted in len */
}

/* ---- strict HTTP (RFC 9112) ------------------------------------------------------------- */

typedef struct head_scan {
  int n_length, chunked_or_te;
  char length[32];
  const char *why;
  const char *prev_end; /* just past the previous header's value, in MHD's read buffer */
} head_scan_t;

/* libmicrohttpd hands header values out as C strings, so "Bearer k1\0junk" reads as
 * "Bearer k1". But the values point into its read buffer, where it replaced each line's
 * CR LF by NULs: between the end of one value and the start of the next header's name,
 * or the end of the header block, there is nothing but those NULs. Any other byte there
 * sat behind a NUL inside the line. 1 when [from, to) holds only NULs. */
static int only_nuls(const char *from, const char *to) {
  if (!from || !to || to < from || to - from > 65536) return 1; /* not laid out as expected: no verdict */
  for (const char *p = from; p < to; p++)
    if (*p) return 0;
  return 1;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size) {
  (void)kind;
  head_scan_t *s = cls;
  if (strlen(key) != key_size || (value && strlen(value) != value_size) || !only_nuls(s->prev_end, key)) {
    s->why = "a header holds a NUL byte";
    return MHD_NO;
  }
  s->prev_end = value ? value + value_size : key + key_size;
  for (size_t i = 0; value && i < value_size; i++) {
    unsigned char ch = (unsigned char)value[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
      s->why = "a header value holds a control character";
      return MHD_NO;
    }
  }
  if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
    const char *v = value ? value : "";
    if (!v[0] || strspn(v, "0123456789") != strlen(v) || strlen(v) >= sizeof s->length) {
      s->why = "Content-Length is not a decimal number";
      return MHD_NO;
    }
    if (s->n_length++ && strcmp(s->length, v) != 0) {
      s->why = "two Content-Length headers with different values";
      return MHD_NO;
    }
    snprintf(s->length, sizeof s->length, "%s", v);
  } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
    s->chunked_or_te = 1;
  }
  return MHD_YES;
}

/* Hex digit value or -1. */
static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* NULL when the request's framing and bytes are acceptable, else why not (-> 400). Path:
 * no control byte, raw or %-encoded; query: no %00 (names and values are C strings). */
static const char *strict_check(const req_t *r, const char *method) {
  head_scan_t s;
  memset(&s, 0, sizeof s);
  MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan_header, &s);
  if (s.why) return s.why;
  /* after the last header: its line end and the blank line, all NULs now (method points
   * at the start of the request in the same buffer; the header block's size is known) */
  const union MHD_ConnectionInfo *hs = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
  if (hs && s.prev_end && !only_nuls(s.prev_end, method + hs->header_size)) return "a header holds a NUL byte";
  if (s.n_length && s.chunked_or_te) return "Content-Length together with Transfer-Encoding";
  int in_query = 0;
  for (const char *p = r->uri ? r->uri : ""; *p; p++) {
    int ch = (unsigned char)*p;
    if (*p == '?') in_query = 1;
    if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) ch = hexval(p[1]) * 16 + hexval(p[2]);
    if (ch == 0 || (!in_query && (ch < 0x20 || ch == 0x7f)))
      return in_query ? "the query string holds an encoded NUL (%00)" : "the path holds a NUL or control byte";
  }
  return NULL;
}

/* ---- the access handler's calls ----------------------------------------------------------- */

static enum MHD_Result first_call(xd_http_t *h, req_t *r, const char *url, const char *method) {
  r->started = 1;
  set_request_id(h, r);
  snprintf(r->method, sizeof r->method, "%s", method);
  r->path = strdup(url);
  xd_conns_body(h->conns, r->conn, 0); /* the headers are progress */
  /* Every answer from here on is sent before the body is read: MHD skips "100 Continue",
   * discards the body and we close the connection. */
  const char *bad = strict_check(r, method);
  if (bad) {
    r->close = 1;
    xd_metrics_rejected(NULL, "bad_request");
    return send_error(r, XD_EINVAL, "malformed request: %s", bad);
  }
  xd_error_t e;
  xd_error_clear(&e);
  if (xd_api_authorize(h->api, method, url, header_cb, r->conn, &e) != XD_OK) {
    r->close = 1;
    return send_err(r, &e);
  }
  const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl) {
    errno = 0;
    char *end;
    unsigned long long n = strtoull(cl, &end, 10);
    if (errno == ERANGE || (end != cl && n > h->max_body)) {
      r->too_big = 1;
      r->close = 1;
      xd_metrics_rejected(NULL, "too_large");
      return send_error(r, XD_ETOOBIG, "the request body (%.32s bytes) is over the limit of %zu bytes", cl,
                        h->max_body);
    }
    if (n > h->max_inflight_body - atomic_load(&h->inflight_body) || n > h->max_inflight_body) {
      r->close = 1;
      xd_metrics_rejected(NULL, "body_memory");
      return send_error(r, XD_EOVERLOAD, "request bodies being received fill the server's memory budget "
                                         "(--max-inflight-body); retry shortly");
    }
  }
  return MHD_YES;
}

/* Who a request is for admission's fairness: its API key when it sends one (clients
 * behind one proxy are told apart by their keys), else its address. A 64-bit hash. */
static uint64_t client_of(struct MHD_Connection *c) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (auth && *auth) {
    for (const char *p = auth; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h | 1;
  }
  const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ai ? ai->client_addr : NULL;
  const unsigned char *b = NULL;
  size_t n = 0;
  if (sa && sa->sa_family == AF_INET) {
    b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    n = 4;
  } else if (sa && sa->sa_family == AF_INET6) {
    b = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    n = 16;
  }
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
  return h & ~(uint64_t)1; /* keys and addresses never collide */
}

/* 1 when the body will be decoded as JSON (not a CSV or ONNX upload). */
static int body_is_json(struct MHD_Connection *c) {
  const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  return !ct || strcasestr(ct, "json") != NULL;
}

static enum MHD_Result final_call(xd_http_t *h, req_t *r, const char *url, const char *method) {
  xd_conns_phase(h->conns, r->conn, XD_CONN_BUSY);
  if (r->too_big) {
    xd_metrics_rejected(NULL, "too_large");
    return send_error(r, XD_ETOOBIG, "the request body is over the limit of %zu bytes", h->max_body);
  }
  if (r->over_budget) {
    xd_metrics_rejected(NULL, "body_memory");
    return send_error(r, XD_EOVERLOAD, "request bodies being received fill the server's memory budget "
                                       "(--max-inflight-body); retry shortly");
  }
  if (r->len && body_is_json(r->conn)) {
    xd_error_t e;
    xd_error_clear(&e);
    if (xd_json_guard(r->body, r->len, &e) != XD_OK) {
      body_release(r);
      xd_metrics_rejected(NULL, "too_large");
      return send_err(r, &e);
    }
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
  size_t body_len = r->len;
  xd_api_outcome_t out = xd_api_handle(h->api, &in, &r->resp, &work);
  snprintf(r->model, sizeof r->model, "%s", r->resp.model);
  r->endpoint = r->resp.endpoint;
  r->explain_method = r->resp.explain_method;
  body_release(r); /* decoded into the work state or answered: the raw body is done */
  if (body_len >= ((size_t)1 << 20)) xd_conns_want_trim(h->conns); /* its decoded form too, soon */
  if (out == XD_API_RESPOND) return send_response(r);
  if (!work.ops || !work.ops->run || !work.ops->encode || !work.ops->free) /* an api/ bug; never hang */
    return send_error(r, XD_EINTERNAL, "internal error: no work to queue");

  xd_pool_job_t *job;
  int rc = xd_pool_admit_work(h->pool, &work, client_of(r->conn), &job);
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
  xd_disconnect_add(h->watch, &r->watch, r->conn, job, r->rid); /* cancel the job if the client leaves */
  return MHD_YES; /* r belongs to the pool's callback until it resumes the connection */
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size,
                               void **con_cls) {
  (void)version;
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
    if (r->watch.peer_gone) { /* the canceled job's 503 goes nowhere (returning MHD_NO would log a
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
  xd_conns_phase(h->conns, c, XD_CONN_IDLE); /* kept alive: --conn-timeout runs */
  if (!r) return;
  *con_cls = NULL;
  if (r->started) {
    double ms = (double)(xd_now_ns() - r->t0) / 1e6;
    if (r->status) xd_metrics_request_method(r->endpoint, r->model, r->explain_method, r->status, ms / 1e3);
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
  body_release(r);
  free(r->uri);
  free(r->path);
  free(r);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
  /* Per-connection events a client causes at will (it leaves mid-request, a refused
   * connection): a flood of them must not flood the log. Debug level; counted in metrics. */
  static const char *const noise[] = {"closed by remote side", "connection limit", "rejected by application",
                                      "disconnected when reading", "closed when reading", "timed out",
                                      "Failed to send data", "Failed to receive data"};
  for (size_t i = 0; i < sizeof noise / sizeof noise[0]; i++)
    if (strstr(buf, noise[i])) {
      xd_log(XD_LOG_DEBUG, "libmicrohttpd: %s", buf);
      return;
    }
  xd_log(XD_LOG_WARN, "libmicrohttpd: %s", buf);
}

/* ---- lifecycle --------------------------------------------------------------------- */

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
  h->max_inflight_body = cfg->max_inflight_body ? cfg->max_inflight_body : (size_t)256 << 20;
  atomic_init(&h->inflight_body, 0);
  atomic_init(&h->draining, 0);
  h->listen_fd = MHD_INVALID_SOCKET;
  if (getrandom(&h->rid_prefix, sizeof h->rid_prefix, 0) != (ssize_t)sizeof h->rid_prefix)
    h->rid_prefix = (uint64_t)xd_now_ns() ^ ((uint64_t)getpid() << 32);
  atomic_init(&h->rid_counter, 1);
  pthread_mutex_init(&h->mu, NULL);
  pthread_mutex_init(&h->park_mu, NULL);
  pthread_cond_init(&h->ticker_cv, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->drained, &ca);
  pthread_condattr_destroy(&ca);

  /* Our limit decides (refusing at once); libmicrohttpd's, which it divides among its
   * threads and at which it stops accepting, sits above it so it is never reached. */
  unsigned fit = xd_conns_raise_fd_limit(cfg->threads, XD_HTTP_MHD_SLACK);
  unsigned max_conn = cfg->max_connections ? cfg->max_connections : 4096; /* 0: a config not from xd_config_load */
  if (max_conn > fit) {
    xd_log(XD_LOG_WARN, "--max-connections %u is over what the file-descriptor limit allows; using %u", max_conn, fit);
    max_conn = fit;
  }
  xd_conns_config_t ccfg = {.max_connections = max_conn, .max_per_ip = cfg->max_connections_per_ip,
                            .read_timeout_s = cfg->read_timeout_s ? cfg->read_timeout_s : 10,
                            .idle_timeout_s = cfg->conn_timeout_s ? cfg->conn_timeout_s : 75};
  if (xd_tls_load(&h->tls, cfg->tls_cert, cfg->tls_key) != 0 || xd_conns_new(&ccfg, &h->conns) != XD_OK) {
    int rc = h->tls.cert || !cfg->tls_cert[0] ? XD_ENOMEM : XD_EIO;
    xd_tls_free(&h->tls);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->drained);
    free(h);
    return rc;
  }
  xd_disconnect_new(pool, &h->watch); /* without a thread it lists nothing (logged) */

  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  if (h->tls.cert) flags |= MHD_USE_TLS;
  /* the logger goes first, or MHD reports early option errors with its own logger */
  h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, xd_conns_accept, h->conns, handler, h,
                          MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, h,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout_s,
                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                          MHD_OPTION_CONNECTION_LIMIT, max_conn + XD_HTTP_MHD_SLACK * cfg->threads,
                          MHD_OPTION_NOTIFY_CONNECTION, xd_conns_notify, h->conns,
                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                          MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
                          MHD_OPTION_ARRAY, h->tls.opts,
                          /* last: with one thread the list ends here, as MHD warns about a
                           * pool size of 0 or 1 */
                          cfg->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (unsigned)cfg->threads,
                          MHD_OPTION_END);
  if (!h->d) {
    xd_log(XD_LOG_ERROR, "cannot listen on %s:%d (address in use, or not allowed%s)", cfg->host[0] ? cfg->host : "0.0.0.0",
           cfg->port, h->tls.cert ? ", or the TLS certificate and key were refused" : "");
    xd_disconnect_free(h->watch);
    xd_conns_free(h->conns);
    xd_tls_free(&h->tls);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->drained);
    free(h);
    return XD_EIO;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  h->port = di ? di->port : cfg->port;
  h->ticker_started = pthread_create(&h->ticker, NULL, ticker, h) == 0;
  *out = h;
  return XD_OK;
}

int xd_http_port(const xd_http_t *h) { return h->port; }

void xd_http_quiesce(xd_http_t *h) {
  if (h->quiesced) return;
  h->quiesced = 1;
  atomic_store(&h->draining, 1); /* answers close their connection: no new request on them */
  xd_conns_drain(h->conns);      /* idle keep-alive connections are closed: nothing of theirs was accepted */
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
  int rc = xd_wait_zero(&h->mu, &h->drained, &h->pending, timeout_ms);
  /* Requests that arrived on open connections while the pool drained are answered too
   * (503 + Retry-After now that the pool is closed) before the daemon stops. */
  if (rc == XD_OK) rc = xd_conns_wait_quiet(h->conns, timeout_ms);
  return rc;
}

void xd_http_stop(xd_http_t *h) {
  if (!h) return;
  xd_disconnect_free(h->watch); /* nothing is suspended now, so nothing is listed */
  pthread_mutex_lock(&h->park_mu); /* event streams end; none may stay suspended */
  h->streams_closing = 1;
  h->ticker_stop = 1;
  unpark_all(h);
  pthread_cond_broadcast(&h->ticker_cv);
  pthread_mutex_unlock(&h->park_mu);
  if (h->ticker_started) pthread_join(h->ticker, NULL);
  MHD_stop_daemon(h->d); /* closes every connection; NOTIFY_COMPLETED runs for each */
  xd_conns_free(h->conns);
  if (h->listen_fd != MHD_INVALID_SOCKET) close(h->listen_fd);
  xd_tls_free(&h->tls); /* after MHD_stop_daemon: MHD keeps pointers to the PEM text */
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->drained);
  pthread_mutex_destroy(&h->park_mu);
  pthread_cond_destroy(&h->ticker_cv);
  free(h);
}
