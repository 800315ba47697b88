/* conn.h — connection control: how many connections, from whom, and how long a request
 * may take to arrive.
 *
 * libmicrohttpd alone keeps a connection as long as it sees some activity within
 * --conn-timeout, caps connections at 1,020 by default and, at its cap, stops accepting
 * (new clients wait silently in the kernel's backlog). So a few thousand stalled,
 * trickling or half-open clients could take the server (and /healthz) offline. Here:
 *
 *  - Admission at accept (libmicrohttpd's accept-policy callback): past --max-connections
 *    in all, or --max-connections-per-ip from one address, a new connection is closed at
 *    once (the client sees the close, nothing waits in a queue). libmicrohttpd's own cap
 *    is set above ours so it never stops accepting.
 *  - Phases: each connection is WAITING (for its first request line), ARRIVING (request
 *    line seen, headers or body still coming), BUSY (complete; being answered) or IDLE
 *    (kept alive between requests). A sweep thread, every XD_CONN_SWEEP_MS, closes:
 *      WAITING/ARRIVING past --read-timeout from the phase's start (headers), or body
 *      bytes not progressing for --read-timeout, or the body slower on average than
 *      XD_CONN_MIN_BODY_RATE bytes/s after that;
 *      IDLE past --conn-timeout;
 *      WAITING/ARRIVING/IDLE whose peer has closed its side (POLLRDHUP seen on two sweeps
 *      in the same phase: such a request can never complete).
 *    BUSY connections are left to the request deadline and the disconnect watch.
 *    "Closing" is shutdown(fd, SHUT_RDWR) on libmicrohttpd's socket: the socket stays
 *    open (no fd reuse race) and libmicrohttpd sees end-of-file at once and closes it
 *    itself. The fd is known to be open while listed: libmicrohttpd reports the close
 *    (NOTIFY_CONNECTION) before it closes the socket.
 *
 * Threads: the callbacks run on libmicrohttpd's threads, the sweep on its own; one mutex.
 */
#ifndef XD_SERVER_CONN_H
#define XD_SERVER_CONN_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#define XD_CONN_SWEEP_MS 100
#define XD_CONN_MIN_BODY_RATE (16 * 1024) /* bytes/s a body must average after --read-timeout */
#define XD_CONN_DRAIN_GRACE_MS 500
#define XD_CONN_FD_RESERVE 64              /* descriptors kept for models, logs and libraries */

typedef struct xd_conns xd_conns_t;

typedef enum xd_conn_phase { XD_CONN_WAITING, XD_CONN_ARRIVING, XD_CONN_BUSY, XD_CONN_IDLE } xd_conn_phase_t;

typedef struct xd_conns_config {
  unsigned max_connections; /* in all (> 0) */
  unsigned max_per_ip;      /* 0: no per-address limit */
  unsigned read_timeout_s;  /* request line, headers and body */
  unsigned idle_timeout_s;  /* keep-alive between requests (--conn-timeout) */
} xd_conns_config_t;

/* Raises the soft RLIMIT_NOFILE to the hard limit and returns how many connections fit
 * in it (the limit less XD_CONN_FD_RESERVE and per_thread_slack per network thread). */
unsigned xd_conns_raise_fd_limit(unsigned threads, unsigned per_thread_slack);

/* Starts the sweep. Returns XD_OK or XD_ENOMEM. */
int xd_conns_new(const xd_conns_config_t *cfg, xd_conns_t **out);
/* Stops the sweep and frees (NULL: no-op). After MHD_stop_daemon. */
void xd_conns_free(xd_conns_t *cs);

/* libmicrohttpd callbacks: pass cs as their closure. */
enum MHD_Result xd_conns_accept(void *cs, const struct sockaddr *addr, socklen_t len);
void xd_conns_notify(void *cs, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code);

/* Phase changes and body progress, from the access handler (network thread). */
void xd_conns_phase(xd_conns_t *cs, struct MHD_Connection *c, xd_conn_phase_t phase);
void xd_conns_body(xd_conns_t *cs, struct MHD_Connection *c, size_t bytes);

/* Shutdown: from now on IDLE and WAITING connections are closed by the sweep once they
 * have been so for XD_CONN_DRAIN_GRACE_MS (no request of theirs was accepted; a client
 * that sends one within the grace is answered, with Connection: close); requests
 * arriving or being answered go on. */
void xd_conns_drain(xd_conns_t *cs);
/* Waits, at most timeout_ms, until every connection is closed or shut down by the
 * drain: no request is arriving or being answered. Returns XD_OK or XD_ETIMEDOUT. */
int xd_conns_wait_quiet(xd_conns_t *cs, int64_t timeout_ms);

/* Asks the sweep thread to give freed heap memory back to the system (malloc_trim) soon:
 * after a large body or a large decoded document was freed. At most once a second. */
void xd_conns_want_trim(xd_conns_t *cs);

/* Connections open now, and closed by the sweep or refused at accept so far. */
typedef struct xd_conns_stats {
  unsigned open;
  unsigned long long refused_total, refused_per_ip, timed_out, half_closed;
} xd_conns_stats_t;
void xd_conns_stats(xd_conns_t *cs, xd_conns_stats_t *out);

#endif
