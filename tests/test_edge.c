/* test_edge.c — the edge under hostile clients, end to end with the real binary on
 * loopback: stalled, trickling and half-open connections, connection limits per address,
 * the memory budget for request bodies, the key check before the body, the JSON
 * expansion guard, strict HTTP framing.
 *
 * A second client address matters where a per-address limit is in play: the "other"
 * client connects from 127.0.0.2 (all of 127.0.0.0/8 is loopback on Linux). Every loop
 * is bounded, every socket has a timeout; the figures printed are the measured ones.
 * Admission by cost, deadlines and shutdown are in test_edge_work.c.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/test.h"

static const char *const IRIS = "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]]}";

/* Timing bounds stretch under valgrind (~20x) and in sanitizer builds (~3x: the server is
 * built the same way, and a deadline is checked between batches that take 3x longer). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif
static int scaled(int ms) { return xd_under_valgrind() ? ms * 20 : SANITIZED ? ms * 3 : ms; }

/* ---- raw sockets ------------------------------------------------------------------------- */


/* Reads until the peer closes or the 5 s timeout; returns bytes read into buf (NUL-terminated). */
static size_t read_all(int fd, char *buf, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  return n;
}

/* Sends raw (a whole request as bytes) from 127.0.0.1 and returns the status of the
 * answer (0: none), and whether the server closed the connection after it. */
static int raw_status(int port, const char *raw, size_t len, int *closed) {
  int fd = xd_connect_from(NULL, port);
  if (fd < 0) return -1;
  xd_send_all(fd, raw, len);
  char buf[8192];
  size_t n = 0;
  int st = 0;
  /* read the status line and headers, then see whether the connection ends */
  while (n + 1 < sizeof buf) {
    ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
    if (r <= 0) {
      if (closed) *closed = r == 0 || (r < 0 && errno == ECONNRESET);
      break;
    }
    n += (size_t)r;
    buf[n] = '\0';
    if (strstr(buf, "\r\n\r\n") && closed == NULL) break;
  }
  buf[n] = '\0';
  if (n >= 12 && strncmp(buf, "HTTP/1.", 7) == 0) st = atoi(buf + 9);
  close(fd);
  return st;
}

/* /healthz from 127.0.0.2 on a new connection: its status (0: none) and latency. */
static int healthz_from_other(int port, double *ms) {
  double t0 = xd_ms_now();
  int fd = xd_connect_from("127.0.0.2", port);
  int st = 0;
  if (fd >= 0) {
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char buf[2048];
    if (xd_send_all(fd, req, strlen(req)) == 0 && read_all(fd, buf, sizeof buf) >= 12 && strncmp(buf, "HTTP/1.", 7) == 0)
      st = atoi(buf + 9);
    close(fd);
  }
  *ms = xd_ms_now() - t0;
  return st;
}

/* 1 once the server has closed fd (EOF or reset), without waiting. */
static int closed_by_peer(int fd) {
  char b[256];
  for (;;) {
    ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (r > 0) continue; /* an error answer: drain it */
    if (r == 0) return 1;
    return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
}

/* ---- the server's resources ---------------------------------------------------------------- */

static long rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return kb;
}

static int open_fds(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n - 2;
}

/* Waits until the server holds at most want descriptors, at most ms; returns the ms
 * waited or -1. */
static double wait_fds(pid_t pid, int want, int ms) {
  double t0 = xd_ms_now();
  while (xd_ms_now() - t0 < ms) {
    if (open_fds(pid) <= want) return xd_ms_now() - t0;
    xd_sleep_ms(20);
  }
  return -1;
}

static int start(xd_server_t *s, const char *const *args) {
  if (xd_server_start(s, args, NULL) != 0) return -1;
  return 0;
}

/* ---- connections ------------------------------------------------------------------------- */

/* 3,000 connections from 127.0.0.1 that send half a request line and stall: the
 * per-address limit refuses all but 256 at once (closed, not queued), /healthz from
 * 127.0.0.2 answers within a second throughout, and the 256 are closed once
 * --read-timeout passes. */
TEST(stalled_connections_from_one_address_leave_room_for_others) {
  xd_server_t s;
  const char *args[] = {"--read-timeout", "2", "--max-connections-per-ip", "256", NULL};
  if (start(&s, args) != 0) {
    CHECK(0);
    return;
  }
  enum { N = 3000 };
  static int fds[N];
  int opened = 0;
  double worst = 0;
  int bad = 0;
  for (int i = 0; i < N; i++) {
    fds[i] = xd_connect_from(NULL, s.port);
    if (fds[i] >= 0) {
      opened++;
      xd_send_all(fds[i], "GET /hea", 8);
    }
    if (i % 500 == 499) {
      double ms;
      int st = healthz_from_other(s.port, &ms);
      if (st != 200) bad++;
      if (ms > worst) worst = ms;
    }
  }
  xd_sleep_ms(500);
  double ms;
  int st = healthz_from_other(s.port, &ms);
  if (ms > worst) worst = ms;
  int refused = 0;
  for (int i = 0; i < N; i++) refused += fds[i] >= 0 && closed_by_peer(fds[i]);
  printf("  %d connections opened from 127.0.0.1; %d closed by the server within 0.5 s; /healthz from 127.0.0.2: "
         "status %d, worst %.1f ms\n", opened, refused, st, worst);
  CHECK(opened >= N - 10);
  CHECK_MSG(refused >= opened - 256 - 8, "refused %d of %d (limit 256 per address)", refused, opened);
  CHECK(st == 200 && bad == 0);
  CHECK_MSG(worst < 1000, "/healthz took %.1f ms", worst);
  /* the stalled ones that were let in are closed by --read-timeout (2 s) */
  double t0 = xd_ms_now();
  int open_left = 0;
  do {
    xd_sleep_ms(100);
    open_left = 0;
    for (int i = 0; i < N; i++) open_left += fds[i] >= 0 && !closed_by_peer(fds[i]);
  } while (open_left > 0 && xd_ms_now() - t0 < scaled(4000));
  printf("  the %d admitted stalled connections were closed %.1f s after the refusals\n", opened - refused,
         (xd_ms_now() - t0) / 1e3);
  CHECK_MSG(open_left == 0, "%d still open after read-timeout + 2 s", open_left);
  for (int i = 0; i < N; i++)
    if (fds[i] >= 0) close(fds[i]);
  CHECK(xd_server_stop(&s) == 0);
}

/* Bursts of 1,100 connections that each send part of a request and close at once (no
 * per-address limit here, and the default 10 s --read-timeout): the server notices the
 * closes and frees the connections within about a second, and /healthz from another
 * address answers within a second after every burst. */
TEST(half_open_bursts_are_noticed) {
  xd_server_t s;
  if (start(&s, NULL) != 0) {
    CHECK(0);
    return;
  }
  int base = open_fds(s.pid);
  const char *part = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mo";
  for (int burst = 0; burst < 3; burst++) {
    enum { N = 1100 };
    static int fds[N];
    double t0 = xd_ms_now();
    for (int i = 0; i < N; i++) {
      fds[i] = xd_connect_from(NULL, s.port);
      if (fds[i] >= 0) xd_send_all(fds[i], part, strlen(part));
    }
    for (int i = 0; i < N; i++)
      if (fds[i] >= 0) close(fds[i]);
    double burst_ms = xd_ms_now() - t0;
    double ms;
    int st = healthz_from_other(s.port, &ms);
    double freed = wait_fds(s.pid, base + 8, scaled(3000));
    printf("  burst %d: %d half-open connections in %.0f ms; /healthz from 127.0.0.2 %d in %.1f ms; server back to "
           "%d descriptors after %.0f ms\n", burst + 1, N, burst_ms, st, ms, open_fds(s.pid), freed);
    CHECK(st == 200);
    CHECK_MSG(ms < 1000, "/healthz took %.1f ms", ms);
    CHECK_MSG(freed >= 0, "still %d descriptors (baseline %d) 3 s after the burst", open_fds(s.pid), base);
    if (freed < 0 && getenv("EDGE_DEBUG")) {
      char cmd[256];
      snprintf(cmd, sizeof cmd, "ss -tan '( sport = :%d )' | awk '{print $1}' | sort | uniq -c", s.port);
      if (system(cmd)) {
      }
    }
  }
  CHECK(xd_server_stop(&s) == 0);
}

/* Clients that trickle their headers a byte at a time, each byte well within the idle
 * timeout: closed at --read-timeout, not kept alive by each byte. */
TEST(trickling_headers_closed_at_read_timeout) {
  xd_server_t s;
  const char *args[] = {"--read-timeout", "1", NULL};
  if (start(&s, args) != 0) {
    CHECK(0);
    return;
  }
  int fd = xd_connect_from(NULL, s.port);
  const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
  double t0 = xd_ms_now();
  int closed = 0;
  for (size_t i = 0; i < strlen(req) && !closed; i++) {
    if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1) break;
    xd_sleep_ms(100);
    closed = closed_by_peer(fd);
  }
  double ms = xd_ms_now() - t0;
  printf("  a header sent one byte every 100 ms was cut off after %.0f ms (--read-timeout 1)\n", ms);
  CHECK_MSG(closed && ms < scaled(1000 + 2 * 100 + 400), "closed=%d after %.0f ms", closed, ms);
  close(fd);
  CHECK(xd_server_stop(&s) == 0);
}

/* ---- request bodies ------------------------------------------------------------------------ */

/* 300 connections each declare an 8 MiB body, send 2 MiB of it and stall. The bodies held
 * at once are capped by --max-inflight-body (64 MiB here): the server's RSS rises by
 * about that, not by 600 MB; a complete request meanwhile gets 503 + Retry-After; and
 * once the stalled clients are gone, RSS is back near where it started. */
TEST(stalled_bodies_bounded_by_the_body_budget) {
#if defined(__SANITIZE_THREAD__)
  printf("  skip: ThreadSanitizer's shadow memory makes the server's RSS meaningless here\n");
  return;
#endif
  xd_server_t s;
  const char *args[] = {"--read-timeout", "3", "--max-inflight-body", "64MiB", NULL};
  if (start(&s, args) != 0) {
    CHECK(0);
    return;
  }
  long rss0 = rss_kb(s.pid);
  enum { N = 300, PART = 2 << 20 };
  static int fds[N];
  char *chunk = malloc(PART);
  memset(chunk, ' ', PART);
  const char *head = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 8388608\r\n\r\n";
  long peak = rss0;
  for (int i = 0; i < N; i++) {
    fds[i] = xd_connect_from(NULL, s.port);
    if (fds[i] < 0) continue;
    struct timeval tv = {0, 200000}; /* a refused body stops being read: do not wait on it */
    setsockopt(fds[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    xd_send_all(fds[i], head, strlen(head));
    xd_send_all(fds[i], chunk, PART);
    if (i % 25 == 0) {
      long r = rss_kb(s.pid);
      if (r > peak) peak = r;
    }
  }
  xd_sleep_ms(300);
  long r = rss_kb(s.pid);
  if (r > peak) peak = r;
  /* a whole small request now: the budget is full */
  xd_http_resp_t resp;
  char *big = malloc(1 << 20);
  memset(big, ' ', 1 << 20);
  memcpy(big, "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]]}", 48);
  int rc = xd_http(s.port, "POST", "/predict", NULL, big, 1 << 20, &resp);
  int st = rc == 0 ? resp.status : -1;
  const char *ra = rc == 0 ? xd_http_header(&resp, "Retry-After") : NULL;
  printf("  RSS %ld MB before, peak %ld MB with %d stalled 2 MiB bodies (budget 64 MiB); a 1 MiB request meanwhile: %d%s\n",
         rss0 / 1024, peak / 1024, N, st, ra ? " with Retry-After" : "");
  CHECK_MSG(peak - rss0 < (64 + 48) * 1024, "RSS grew by %ld MB", (peak - rss0) / 1024);
  CHECK(st == 503 && ra != NULL);
  if (rc == 0) xd_http_resp_free(&resp);
  for (int i = 0; i < N; i++)
    if (fds[i] >= 0) close(fds[i]);
  xd_sleep_ms(scaled(1500));
  long after = rss_kb(s.pid);
  /* the budget is free again */
  rc = xd_http(s.port, "POST", "/predict", NULL, big, 1 << 20, &resp);
  st = rc == 0 ? resp.status : -1;
  if (rc == 0) xd_http_resp_free(&resp);
  printf("  RSS %ld MB once they left; the same 1 MiB request then: %d\n", after / 1024, st);
  CHECK_MSG(after - rss0 < 24 * 1024, "RSS %ld MB above the start after the burst", (after - rss0) / 1024);
  CHECK(st == 200);
  free(big);
  free(chunk);
  CHECK(xd_server_stop(&s) == 0);
}

/* With API keys configured, a request without a key is refused 401 as soon as its headers
 * are in: the server does not wait for (or hold) the 8 MiB body it announced. */
TEST(no_key_refused_before_the_body) {
  xd_server_t s;
  const char *args[] = {"--api-keys", "edge-key-1", NULL};
  if (start(&s, args) != 0) {
    CHECK(0);
    return;
  }
  int fd = xd_connect_from(NULL, s.port);
  const char *head = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 8000000\r\n\r\n";
  xd_send_all(fd, head, strlen(head));
  char buf[4096];
  double t0 = xd_ms_now();
  size_t n = read_all(fd, buf, sizeof buf);
  double ms = xd_ms_now() - t0;
  printf("  no key, 8 MB announced, no body sent: status %.3s after %.1f ms\n", n >= 12 ? buf + 9 : "---", ms);
  CHECK(n >= 12 && strncmp(buf + 9, "401", 3) == 0);
  CHECK(ms < 1000);
  close(fd);
  /* with the key, the same announced body is waited for (no early answer) */
  fd = xd_connect_from(NULL, s.port);
  const char *head2 = "POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer edge-key-1\r\nContent-Type: "
                      "application/json\r\nContent-Length: 48\r\n\r\n";
  xd_send_all(fd, head2, strlen(head2));
  xd_sleep_ms(200);
  CHECK(!closed_by_peer(fd));
  xd_send_all(fd, IRIS, 48);
  n = read_all(fd, buf, sizeof buf);
  CHECK(n >= 12 && strncmp(buf + 9, "200", 3) == 0);
  close(fd);
  CHECK(xd_server_stop(&s) == 0);
}

/* 8 MiB of `[{},{},...]` would take jansson over 600 MB: refused 413 by the guard before
 * decoding, and the server's RSS hardly moves. An ordinary body of the same size with
 * one-digit numbers still passes the guard (it fails later, on the model's shape). */
TEST(json_expansion_refused_without_a_large_allocation) {
  xd_server_t s;
  if (start(&s, NULL) != 0) {
    CHECK(0);
    return;
  }
  size_t n = (size_t)8 << 20;
  char *b = malloc(n + 1);
  size_t pos = (size_t)sprintf(b, "{\"model\":\"iris\",\"instances\":[");
  while (pos + 8 < n) {
    memcpy(b + pos, "{},", 3);
    pos += 3;
  }
  memcpy(b + pos, "{}]}", 4);
  pos += 4;
  long rss0 = rss_kb(s.pid);
  xd_http_resp_t r;
  double t0 = xd_ms_now();
  int rc = xd_http(s.port, "POST", "/predict", NULL, b, pos, &r);
  double ms = xd_ms_now() - t0;
  long rss1 = rss_kb(s.pid);
  printf("  8 MiB of [{},...]: status %d in %.0f ms; RSS %ld -> %ld MB\n", rc == 0 ? r.status : -1, ms, rss0 / 1024,
         rss1 / 1024);
  CHECK(rc == 0 && r.status == 413 && r.body && strstr(r.body, "payload_too_large"));
  CHECK_MSG(rss1 - rss0 < 40 * 1024, "RSS grew by %ld MB", (rss1 - rss0) / 1024);
  if (rc == 0) xd_http_resp_free(&r);
  /* 1 MiB of one-digit numbers: passes the guard (400 for the shape, not 413) */
  pos = (size_t)sprintf(b, "{\"model\":\"iris\",\"instances\":[[");
  while (pos + 8 < ((size_t)1 << 20)) {
    memcpy(b + pos, "0,", 2);
    pos += 2;
  }
  memcpy(b + pos, "0]]}", 4);
  pos += 4;
  rc = xd_http(s.port, "POST", "/predict", NULL, b, pos, &r);
  CHECK_MSG(rc == 0 && r.status == 400, "status %d", rc == 0 ? r.status : -1);
  if (rc == 0) xd_http_resp_free(&r);
  free(b);
  CHECK(xd_server_stop(&s) == 0);
}

/* ---- strict HTTP ------------------------------------------------------------------------- */

TEST(strict_framing_and_nul_bytes) {
  xd_server_t s;
  const char *args[] = {"--api-keys", "k1", "--admin-key", "adm1", NULL};
  if (start(&s, args) != 0) {
    CHECK(0);
    return;
  }
  int closed = 0;
  /* two different Content-Lengths: request smuggling behind a lenient proxy */
  const char *two = "POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\nContent-Type: application/json\r\n"
                    "Content-Length: 48\r\nContent-Length: 5\r\n\r\n{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]]}";
  CHECK(raw_status(s.port, two, strlen(two), &closed) == 400 && closed);
  /* Content-Length with Transfer-Encoding */
  closed = 0;
  const char *both = "POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\nContent-Type: application/json\r\n"
                     "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  CHECK(raw_status(s.port, both, strlen(both), &closed) == 400 && closed);
  /* the same Content-Length twice is not ambiguous: served */
  const char *same = "POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\nContent-Length: 48\r\nContent-Length: 48\r\n\r\n"
                     "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]]}";
  CHECK(raw_status(s.port, same, strlen(same), NULL) == 200);
  /* %00 in the path: never a model named "a" */
  closed = 0;
  const char *nul = "PUT /models/a%00b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer adm1\r\nContent-Type: "
                    "application/json\r\nContent-Length: 2\r\n\r\n{}";
  CHECK(raw_status(s.port, nul, strlen(nul), &closed) == 400 && closed);
  xd_http_resp_t r;
  CHECK(xd_http(s.port, "GET", "/models/a", "Authorization: Bearer k1\r\n", NULL, 0, &r) == 0 && r.status == 404);
  xd_http_resp_free(&r);
  /* an encoded control byte in the path */
  const char *ctl = "GET /healthz%0a HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK(raw_status(s.port, ctl, strlen(ctl), NULL) == 400);
  /* a NUL inside the key: "k1\0junk" is not k1 */
  static const char key_nul[] = "GET /models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\0junk\r\n\r\n";
  int st = raw_status(s.port, key_nul, sizeof key_nul - 1, NULL);
  printf("  'Bearer k1\\0junk': %d\n", st);
  CHECK(st == 400 || st == 401);
  /* a control byte in a header value */
  const char *hctl = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\001b\r\n\r\n";
  st = raw_status(s.port, hctl, strlen(hctl), NULL);
  CHECK_MSG(st == 400, "status %d", st);
  /* and the ordinary request is fine */
  CHECK(xd_http(s.port, "GET", "/models", "Authorization: Bearer k1\r\n", NULL, 0, &r) == 0 && r.status == 200);
  xd_http_resp_free(&r);
  CHECK(xd_server_stop(&s) == 0);
}

/* An argument runs only the tests whose name contains it (while working on one). */
int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);
  if (!only || strstr("strict_framing_and_nul_bytes", only)) RUN(strict_framing_and_nul_bytes);
  if (!only || strstr("no_key_refused_before_the_body", only)) RUN(no_key_refused_before_the_body);
  if (!only || strstr("json_expansion_refused_without_a_large_allocation", only)) RUN(json_expansion_refused_without_a_large_allocation);
  if (!only || strstr("trickling_headers_closed_at_read_timeout", only)) RUN(trickling_headers_closed_at_read_timeout);
  if (!only || strstr("stalled_connections_from_one_address_leave_room_for_others", only)) RUN(stalled_connections_from_one_address_leave_room_for_others);
  if (!only || strstr("half_open_bursts_are_noticed", only)) RUN(half_open_bursts_are_noticed);
  if (!only || strstr("stalled_bodies_bounded_by_the_body_budget", only)) RUN(stalled_bodies_bounded_by_the_body_budget);
  return TEST_REPORT();
}
