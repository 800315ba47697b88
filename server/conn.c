/* conn.c — see conn.h. */
#include "server/conn.h"

#include <netinet/in.h>
#include <poll.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "api/metrics.h"
#include "core/status.h"
#include "server/log.h"

#define IP_BUCKETS 4096

/* A client address as a key: the family and the 4 or 16 address bytes (no port). */
typedef struct addr_key {
  unsigned char b[17];
} addr_key_t;

typedef struct ip_entry {
  addr_key_t key;
  unsigned count;
  struct ip_entry *next;
} ip_entry_t;

typedef struct conn {
  MHD_socket fd;
  addr_key_t key;
  xd_conn_phase_t phase;
  int64_t since_ns;    /* start of the phase */
  int64_t progress_ns; /* last body bytes (ARRIVING) */
  size_t body_bytes;
  int rdhup;           /* the peer's close was seen on the last sweep, in this phase */
  int shut;            /* shut down by the sweep; waiting for libmicrohttpd to close it */
  struct conn *next, *prev;
} conn_t;

struct xd_conns {
  xd_conns_config_t cfg;
  pthread_mutex_t mu; /* guards everything below */
  pthread_cond_t cv;
  pthread_t thread;
  int running, stop;
  conn_t *head;
  unsigned open;
  ip_entry_t *ips[IP_BUCKETS];
  xd_conns_stats_t stats;
  int64_t last_refusal_log_ns;
  int draining;
  atomic_int want_trim;
  int64_t last_trim_ns;
  struct pollfd *pfd; /* sweep scratch */
  conn_t **pconn;
  size_t pcap;
};

static int64_t now_ns(void) { return xd_now_ns(); }

static void key_of(const struct sockaddr *a, addr_key_t *k) {
  memset(k, 0, sizeof *k);
  if (!a) return;
  if (a->sa_family == AF_INET) {
    k->b[0] = 4;
    memcpy(k->b + 1, &((const struct sockaddr_in *)a)->sin_addr, 4);
  } else if (a->sa_family == AF_INET6) {
    const struct in6_addr *v6 = &((const struct sockaddr_in6 *)a)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(v6)) { /* ::ffff:a.b.c.d is the IPv4 client a.b.c.d */
      k->b[0] = 4;
      memcpy(k->b + 1, v6->s6_addr + 12, 4);
    } else {
      k->b[0] = 6;
      memcpy(k->b + 1, v6->s6_addr, 16);
    }
  }
}

static unsigned key_hash(const addr_key_t *k) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < sizeof k->b; i++) h = (h ^ k->b[i]) * 16777619u;
  return h % IP_BUCKETS;
}

static ip_entry_t **ip_find(xd_conns_t *cs, const addr_key_t *k) {
  ip_entry_t **p = &cs->ips[key_hash(k)];
  while (*p && memcmp((*p)->key.b, k->b, sizeof k->b) != 0) p = &(*p)->next;
  return p;
}

unsigned xd_conns_raise_fd_limit(unsigned threads, unsigned per_thread_slack) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1;
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? 1048576 : rl.rlim_max;
    struct rlimit r2 = {want, rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &r2) == 0) rl.rlim_cur = want;
  }
  rlim_t reserve = XD_CONN_FD_RESERVE + (rlim_t)threads * per_thread_slack;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576) rl.rlim_cur = 1048576;
  return rl.rlim_cur > reserve + 16 ? (unsigned)(rl.rlim_cur - reserve) : 16;
}

enum MHD_Result xd_conns_accept(void *cls, const struct sockaddr *addr, socklen_t len) {
  (void)len;
  xd_conns_t *cs = cls;
  addr_key_t k;
  key_of(addr, &k);
  const char *why = NULL;
  pthread_mutex_lock(&cs->mu);
  if (cs->open >= cs->cfg.max_connections) {
    why = "connections";
    cs->stats.refused_total++;
  } else if (cs->cfg.max_per_ip) {
    ip_entry_t *e = *ip_find(cs, &k);
    if (e && e->count >= cs->cfg.max_per_ip) {
      why = "connections_per_ip";
      cs->stats.refused_per_ip++;
    }
  }
  int64_t t = now_ns();
  int log_it = why && t - cs->last_refusal_log_ns > 1000000000LL; /* one line a second at most */
  if (log_it) cs->last_refusal_log_ns = t;
  unsigned open = cs->open;
  pthread_mutex_unlock(&cs->mu);
  if (!why) return MHD_YES;
  xd_metrics_rejected(NULL, why);
  if (log_it)
    xd_log(XD_LOG_WARN, "refusing connections: %s limit reached (%u open; --max-connections %u, "
                        "--max-connections-per-ip %u)", why, open, cs->cfg.max_connections, cs->cfg.max_per_ip);
  return MHD_NO;
}

void xd_conns_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode code) {
  xd_conns_t *cs = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    conn_t *n = calloc(1, sizeof *n);
    *socket_context = n;
    if (!n) return; /* not swept: libmicrohttpd's own timeout still applies */
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    n->fd = fi ? fi->connect_fd : MHD_INVALID_SOCKET;
    key_of(ai ? ai->client_addr : NULL, &n->key);
    n->phase = XD_CONN_WAITING;
    n->since_ns = now_ns();
    pthread_mutex_lock(&cs->mu);
    n->next = cs->head;
    if (cs->head) cs->head->prev = n;
    cs->head = n;
    cs->open++;
    ip_entry_t **p = ip_find(cs, &n->key);
    if (!*p) {
      *p = calloc(1, sizeof **p);
      if (*p) (*p)->key = n->key;
    }
    if (*p) (*p)->count++;
    pthread_mutex_unlock(&cs->mu);
    return;
  }
  conn_t *n = *socket_context; /* CLOSED: before libmicrohttpd closes the socket */
  if (!n) return;
  *socket_context = NULL;
  pthread_mutex_lock(&cs->mu);
  if (n->prev) n->prev->next = n->next;
  else cs->head = n->next;
  if (n->next) n->next->prev = n->prev;
  cs->open--;
  ip_entry_t **p = ip_find(cs, &n->key);
  if (*p && --(*p)->count == 0) {
    ip_entry_t *e = *p;
    *p = e->next;
    free(e);
  }
  pthread_mutex_unlock(&cs->mu);
  free(n);
}

static conn_t *conn_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

void xd_conns_phase(xd_conns_t *cs, struct MHD_Connection *c, xd_conn_phase_t phase) {
  conn_t *n = conn_of(c);
  if (!n) return;
  pthread_mutex_lock(&cs->mu);
  /* The first request line keeps the connection's start: waiting and arriving share
   * one --read-timeout. */
  if (!(phase == XD_CONN_ARRIVING && n->phase == XD_CONN_WAITING)) n->since_ns = now_ns();
  n->phase = phase;
  n->progress_ns = now_ns();
  n->body_bytes = 0;
  n->rdhup = 0;
  pthread_mutex_unlock(&cs->mu);
}

void xd_conns_body(xd_conns_t *cs, struct MHD_Connection *c, size_t bytes) {
  conn_t *n = conn_of(c);
  if (!n) return;
  pthread_mutex_lock(&cs->mu);
  n->body_bytes += bytes;
  n->progress_ns = now_ns();
  pthread_mutex_unlock(&cs->mu);
}

/* 1 when n is past its phase's time (cs->mu held). */
static int overdue(const xd_conns_t *cs, const conn_t *n, int64_t t) {
  int64_t rt = (int64_t)cs->cfg.read_timeout_s * 1000000000LL;
  switch (n->phase) {
    case XD_CONN_WAITING:
      return t - n->since_ns > rt;
    case XD_CONN_ARRIVING: {
      if (t - n->progress_ns > rt) return 1; /* nothing new for read_timeout */
      /* headers, then a body at >= XD_CONN_MIN_BODY_RATE on average */
      int64_t allowed = rt + (int64_t)(n->body_bytes / XD_CONN_MIN_BODY_RATE) * 1000000000LL;
      return t - n->since_ns > allowed;
    }
    case XD_CONN_IDLE:
      return t - n->since_ns > (int64_t)cs->cfg.idle_timeout_s * 1000000000LL;
    default: return 0;
  }
}

static void sweep(xd_conns_t *cs) {
  int64_t t = now_ns();
  size_t m = 0;
  if (cs->pcap < cs->open) {
    size_t cap = cs->open + 256;
    struct pollfd *p = realloc(cs->pfd, cap * sizeof *p);
    if (p) cs->pfd = p;
    conn_t **q = realloc(cs->pconn, cap * sizeof *q);
    if (q) cs->pconn = q;
    if (p && q) cs->pcap = cap;
  }
  for (conn_t *n = cs->head; n; n = n->next) {
    if (n->shut || n->fd == MHD_INVALID_SOCKET || n->phase == XD_CONN_BUSY) continue;
    int drain = cs->draining && (n->phase == XD_CONN_IDLE || n->phase == XD_CONN_WAITING) &&
                t - n->since_ns > XD_CONN_DRAIN_GRACE_MS * 1000000LL;
    if (drain) {
      shutdown(n->fd, SHUT_RDWR);
      n->shut = 1;
      continue;
    }
    if (overdue(cs, n, t)) {
      shutdown(n->fd, SHUT_RDWR);
      n->shut = 1;
      cs->stats.timed_out++;
      continue;
    }
    if (m < cs->pcap) {
      cs->pfd[m] = (struct pollfd){.fd = n->fd, .events = POLLRDHUP};
      cs->pconn[m++] = n;
    }
  }
  if (m == 0 || poll(cs->pfd, m, 0) <= 0) return;
  for (size_t i = 0; i < m; i++) {
    conn_t *n = cs->pconn[i];
    if (!(cs->pfd[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
      n->rdhup = 0;
      continue;
    }
    /* Seen twice in the same phase: libmicrohttpd had a sweep's time to act on what
     * arrived before the close, so the request cannot complete any more. */
    if (!n->rdhup) {
      n->rdhup = 1;
      continue;
    }
    shutdown(n->fd, SHUT_RDWR);
    n->shut = 1;
    cs->stats.half_closed++;
  }
}

static void *sweep_main(void *arg) {
  xd_conns_t *cs = arg;
  pthread_mutex_lock(&cs->mu);
  while (!cs->stop) {
    sweep(cs);
    if (atomic_load(&cs->want_trim) && now_ns() - cs->last_trim_ns > 1000000000LL) {
      atomic_store(&cs->want_trim, 0);
      cs->last_trim_ns = now_ns();
      pthread_mutex_unlock(&cs->mu); /* malloc_trim walks the heaps: do not hold up the callbacks */
      malloc_trim(0);
      pthread_mutex_lock(&cs->mu);
      continue;
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += XD_CONN_SWEEP_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&cs->cv, &cs->mu, &until);
  }
  pthread_mutex_unlock(&cs->mu);
  return NULL;
}

int xd_conns_new(const xd_conns_config_t *cfg, xd_conns_t **out) {
  *out = NULL;
  xd_conns_t *cs = calloc(1, sizeof *cs);
  if (!cs) return XD_ENOMEM;
  cs->cfg = *cfg;
  if (cs->cfg.max_connections == 0) cs->cfg.max_connections = 1;
  pthread_mutex_init(&cs->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&cs->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_lock(&cs->mu);
  cs->running = pthread_create(&cs->thread, NULL, sweep_main, cs) == 0;
  pthread_mutex_unlock(&cs->mu);
  if (!cs->running) {
    pthread_mutex_destroy(&cs->mu);
    pthread_cond_destroy(&cs->cv);
    free(cs);
    return XD_ENOMEM;
  }
  *out = cs;
  return XD_OK;
}

void xd_conns_drain(xd_conns_t *cs) {
  pthread_mutex_lock(&cs->mu);
  cs->draining = 1;
  pthread_mutex_unlock(&cs->mu);
}

int xd_conns_wait_quiet(xd_conns_t *cs, int64_t timeout_ms) {
  int64_t end = now_ns() + timeout_ms * 1000000LL;
  for (;;) {
    /* every connection closed, or shut by the sweep: an idle one only once it has been
     * idle for the grace time (a request sent on it before then is still answered) */
    unsigned busy = 0;
    pthread_mutex_lock(&cs->mu);
    for (conn_t *n = cs->head; n; n = n->next) busy += !n->shut && n->fd != MHD_INVALID_SOCKET;
    pthread_mutex_unlock(&cs->mu);
    if (busy == 0) return XD_OK;
    if (now_ns() >= end) return XD_ETIMEDOUT;
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

void xd_conns_want_trim(xd_conns_t *cs) { atomic_store(&cs->want_trim, 1); }

void xd_conns_stats(xd_conns_t *cs, xd_conns_stats_t *out) {
  pthread_mutex_lock(&cs->mu);
  *out = cs->stats;
  out->open = cs->open;
  pthread_mutex_unlock(&cs->mu);
}

void xd_conns_free(xd_conns_t *cs) {
  if (!cs) return;
  pthread_mutex_lock(&cs->mu);
  cs->stop = 1;
  pthread_cond_signal(&cs->cv);
  pthread_mutex_unlock(&cs->mu);
  pthread_join(cs->thread, NULL);
  for (size_t i = 0; i < IP_BUCKETS; i++)
    while (cs->ips[i]) {
      ip_entry_t *e = cs->ips[i];
      cs->ips[i] = e->next;
      free(e);
    }
  while (cs->head) { /* only if MHD did not report every close */
    conn_t *n = cs->head;
    cs->head = n->next;
    free(n);
  }
  free(cs->pfd);
  free(cs->pconn);
  pthread_mutex_destroy(&cs->mu);
  pthread_cond_destroy(&cs->cv);
  free(cs);
}
