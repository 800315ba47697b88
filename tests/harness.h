/* harness.h — end-to-end test helpers: run the real explaind binary and talk HTTP to it.
 *
 * Linked into every test program (every tests/ source not named test_). The server is
 * $BUILD/explaind (BUILD from the environment, default "build"), started on a free
 * loopback port with its log in a temporary file. With VALGRIND=1 in the environment the
 * server itself runs under valgrind (memcheck, leaks included), and any error shows up as
 * a non-zero exit status from xd_server_stop. Not thread-safe: start and stop servers
 * from the main thread; xd_http and friends may be called from any thread.
 */
#ifndef XD_TESTS_HARNESS_H
#define XD_TESTS_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

/* ---- the server ---------------------------------------------------------------------- */

typedef struct xd_server {
  pid_t pid;
  int port;
  char log_path[256];
} xd_server_t;

/* Starts explaind with the NULL-terminated args (may be NULL) plus --listen
 * 127.0.0.1:PORT (and --model-dir models unless args set it); env is a NULL-terminated
 * list of "NAME=VALUE" added to the environment (may be NULL). Waits until /readyz
 * answers 200, i.e. the models are loaded (10 s; longer under valgrind). Returns 0, or
 * -1 after printing why and the tail of the server's log. */
int xd_server_start(xd_server_t *s, const char *const *args, const char *const *env);

/* Waits until /readyz answers 200 (the models are loaded: /healthz answers before
 * that), at most timeout_ms (scaled up under valgrind). Returns 0 or -1. */
int xd_server_wait_ready(const xd_server_t *s, int timeout_ms);

/* Sends SIGTERM and waits for the exit. Returns the exit status (0..255), 128+N when
 * killed by signal N, or -1 if it had to be killed after 30 s. Removes the log unless
 * the exit status was non-zero or KEEP_LOGS is set. */
int xd_server_stop(xd_server_t *s);

/* Waits at most timeout_ms for the server to exit after a signal you sent yourself
 * (kill(s->pid, ...)). Returns the status as xd_server_stop, or -2 while still running. */
int xd_server_wait(xd_server_t *s, int timeout_ms);

/* Prints the last `lines` lines of the server's log to stderr (for failed checks). */
void xd_server_dump_log(const xd_server_t *s, int lines);

/* 1 when the server's log contains text. */
int xd_server_log_contains(const xd_server_t *s, const char *text);

/* ---- a small HTTP/1.1 client ----------------------------------------------------- */

#define XD_HTTP_MAX_HEADERS 32

typedef struct xd_http_resp {
  int status;
  char *head; /* owned: the raw header block, split in place into the arrays below */
  const char *names[XD_HTTP_MAX_HEADERS], *values[XD_HTTP_MAX_HEADERS];
  size_t n_headers;
  char *body; /* owned, NUL-terminated (not counted in body_len) */
  size_t body_len;
} xd_http_resp_t;

/* Socket timeout for every send and receive, ms (default 30000). */
extern int xd_http_timeout_ms;

/* One request on a new connection (Connection: close). headers are extra "K: V\r\n"
 * lines or NULL; when body is non-NULL a Content-Length is added unless headers already
 * carry one (to test a declared length without sending it). Handles Content-Length,
 * chunked and until-close responses. Returns 0 with *out filled (free it), or -1 on a
 * connection error or timeout (then *out is empty). */
int xd_http(int port, const char *method, const char *path, const char *headers, const char *body,
            size_t body_len, xd_http_resp_t *out);

/* As xd_http, but sends the body with Transfer-Encoding: chunked in chunk-byte pieces. */
int xd_http_chunked(int port, const char *method, const char *path, const char *headers, const char *body,
                    size_t body_len, size_t chunk, xd_http_resp_t *out);

/* A blocking TCP connection to 127.0.0.1:port from the local address src (e.g.
 * "127.0.0.2": every 127.x address is loopback, so tests can be a second client; NULL:
 * the default), with 5 s send/receive timeouts and TCP_NODELAY. -1 on failure. */
int xd_connect_from(const char *src, int port);

/* Sends all n bytes (MSG_NOSIGNAL); 0, or -1 when the connection failed. */
int xd_send_all(int fd, const void *p, size_t n);

/* Value of the first header named name (case-insensitive), or NULL. Borrowed. */
const char *xd_http_header(const xd_http_resp_t *r, const char *name);

void xd_http_resp_free(xd_http_resp_t *r);

/* ---- small helpers --------------------------------------------------------------- */

/* A loopback TCP port that was free a moment ago (bind to port 0). -1 on error. */
int xd_free_port(void);
/* Sleeps ms milliseconds. */
void xd_sleep_ms(int ms);
/* Monotonic milliseconds. */
double xd_ms_now(void);
/* 1 when running under VALGRIND=1 (tests scale their waits). */
int xd_under_valgrind(void);

#endif
