/* harness.c — see harness.h. Blocking sockets with SO_RCVTIMEO/SO_SNDTIMEO, so a hung
 * server fails a test instead of hanging it. */
#include "tests/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int xd_http_timeout_ms = 30000;

/* ---- small helpers --------------------------------------------------------------- */

void xd_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

double xd_ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int xd_under_valgrind(void) {
  const char *v = getenv("VALGRIND");
  return v && *v && strcmp(v, "0") != 0;
}

int xd_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

/* ---- the client ------------------------------------------------------------------ */

static int connect_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {xd_http_timeout_ms / 1000, (xd_http_timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int xd_send_all(int fd, const void *p, size_t n) { return send_all(fd, (const char *)p, n); }

int xd_connect_from(const char *src, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET};
  if (src && (inet_pton(AF_INET, src, &a.sin_addr) != 1 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0)) {
    close(fd);
    return -1;
  }
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* A growable buffer of what was received. */
typedef struct buf {
  char *p;
  size_t len, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 8192;
  while (cap < b->len + extra + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

/* Reads more into b; returns bytes read, 0 at EOF, -1 on error or timeout. */
static ssize_t recv_more(int fd, buf_t *b) {
  if (buf_reserve(b, 65536)) return -1;
  for (;;) {
    ssize_t r = recv(fd, b->p + b->len, b->cap - b->len - 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) {
      b->len += (size_t)r;
      b->p[b->len] = '\0';
    }
    return r;
  }
}

/* Decodes a chunked body from src (len bytes) into out; returns 1 when complete, 0 when
 * more bytes are needed, -1 when malformed. */
static int dechunk(const char *src, size_t len, buf_t *out) {
  size_t pos = 0;
  out->len = 0;
  for (;;) {
    const char *crlf = memmem(src + pos, len - pos, "\r\n", 2);
    if (!crlf) return 0;
    char *end;
    unsigned long n = strtoul(src + pos, &end, 16);
    if (end == src + pos) return -1;
    pos = (size_t)(crlf - src) + 2;
    if (n == 0) /* then optional trailers and a blank line */
      return (len - pos >= 2 && memcmp(src + pos, "\r\n", 2) == 0) || memmem(src + pos, len - pos, "\r\n\r\n", 4);
    if (len < pos + n + 2) return 0;
    if (buf_reserve(out, n)) return -1;
    memcpy(out->p + out->len, src + pos, n);
    out->len += n;
    out->p[out->len] = '\0';
    pos += n + 2;
  }
}

/* Splits the header block (NUL-terminated, without the blank line) into r. */
static void parse_head(xd_http_resp_t *r) {
  char *line = r->head, *next;
  r->status = (strncmp(line, "HTTP/1.", 7) == 0) ? atoi(line + 9) : -1;
  for (; line; line = next) {
    next = strstr(line, "\r\n");
    if (next) {
      *next = '\0';
      next += 2;
    }
    char *colon = strchr(line, ':');
    if (line == r->head || !colon || r->n_headers >= XD_HTTP_MAX_HEADERS) continue;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    r->names[r->n_headers] = line;
    r->values[r->n_headers++] = v;
  }
}

/* Reads one response (skipping 1xx interim answers). */
static int read_response(int fd, xd_http_resp_t *out) {
  buf_t in = {0}, body = {0};
  size_t head_end = 0;
  for (;;) {
    char *e = in.p ? strstr(in.p, "\r\n\r\n") : NULL;
    if (e) {
      if (strncmp(in.p, "HTTP/1.1 1", 10) == 0) { /* 100 Continue: drop it */
        size_t skip = (size_t)(e - in.p) + 4;
        memmove(in.p, in.p + skip, in.len - skip + 1);
        in.len -= skip;
        continue;
      }
      head_end = (size_t)(e - in.p);
      break;
    }
    if (recv_more(fd, &in) <= 0) goto fail;
  }
  out->head = malloc(head_end + 1);
  if (!out->head) goto fail;
  memcpy(out->head, in.p, head_end);
  out->head[head_end] = '\0';
  parse_head(out);
  const char *te = xd_http_header(out, "Transfer-Encoding");
  const char *cl = xd_http_header(out, "Content-Length");
  size_t start = head_end + 4;
  if (te && strcasestr(te, "chunked")) {
    int rc;
    while ((rc = dechunk(in.p + start, in.len - start, &body)) == 0)
      if (recv_more(fd, &in) <= 0) goto fail;
    if (rc < 0) goto fail;
  } else if (cl) {
    size_t n = strtoul(cl, NULL, 10);
    while (in.len - start < n)
      if (recv_more(fd, &in) <= 0) goto fail;
    if (buf_reserve(&body, n)) goto fail;
    memcpy(body.p, in.p + start, n);
    body.len = n;
  } else { /* until the server closes */
    ssize_t r;
    while ((r = recv_more(fd, &in)) > 0) {
    }
    if (r < 0) goto fail;
    size_t n = in.len - start;
    if (buf_reserve(&body, n)) goto fail;
    memcpy(body.p, in.p + start, n);
    body.len = n;
  }
  if (buf_reserve(&body, 0)) goto fail;
  body.p[body.len] = '\0';
  out->body = body.p;
  out->body_len = body.len;
  free(in.p);
  return 0;
fail:
  free(in.p);
  free(body.p);
  xd_http_resp_free(out);
  return -1;
}

static int request(int port, const char *method, const char *path, const char *headers, const char *body,
                   size_t body_len, size_t chunk, xd_http_resp_t *out) {
  memset(out, 0, sizeof *out);
  int fd = connect_port(port);
  if (fd < 0) return -1;
  char head[4096];
  int has_cl = headers && strcasestr(headers, "Content-Length:");
  int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s", method,
                   path, port, headers ? headers : "");
  if (body && chunk) n += snprintf(head + n, sizeof head - (size_t)n, "Transfer-Encoding: chunked\r\n");
  else if (body && !has_cl) n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", body_len);
  if (body && !(headers && strcasestr(headers, "Content-Type:")))
    n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: application/json\r\n");
  n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
  if ((size_t)n >= sizeof head) {
    close(fd);
    return -1;
  }
  /* A failed send is not the end: the server may have answered early (413) and closed;
   * its answer is still waiting to be read. */
  int ok = send_all(fd, head, (size_t)n) == 0;
  if (ok && body && chunk) {
    for (size_t off = 0; ok && off < body_len; off += chunk) {
      size_t c = body_len - off < chunk ? body_len - off : chunk;
      char sz[32];
      int m = snprintf(sz, sizeof sz, "%zx\r\n", c);
      ok = send_all(fd, sz, (size_t)m) == 0 && send_all(fd, body + off, c) == 0 && send_all(fd, "\r\n", 2) == 0;
    }
    if (ok) ok = send_all(fd, "0\r\n\r\n", 5) == 0;
  } else if (ok && body && body_len) {
    send_all(fd, body, body_len);
  }
  (void)ok;
  int rc = read_response(fd, out);
  close(fd);
  return rc;
}

int xd_http(int port, const char *method, const char *path, const char *headers, const char *body,
            size_t body_len, xd_http_resp_t *out) {
  return request(port, method, path, headers, body, body_len, 0, out);
}

int xd_http_chunked(int port, const char *method, const char *path, const char *headers, const char *body,
                    size_t body_len, size_t chunk, xd_http_resp_t *out) {
  return request(port, method, path, headers, body ? body : "", body_len, chunk ? chunk : 1, out);
}

const char *xd_http_header(const xd_http_resp_t *r, const char *name) {
  for (size_t i = 0; i < r->n_headers; i++)
    if (strcasecmp(r->names[i], name) == 0) return r->values[i];
  return NULL;
}

void xd_http_resp_free(xd_http_resp_t *r) {
  free(r->head);
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* ---- the server ------------------------------------------------------------------ */

static const char *build_dir(void) {
  const char *b = getenv("BUILD");
  return b && *b ? b : "build";
}

void xd_server_dump_log(const xd_server_t *s, int lines) {
  FILE *f = fopen(s->log_path, "r");
  if (!f) return;
  char *ring[64] = {0};
  char line[2048];
  int n = 0;
  if (lines > 64) lines = 64;
  if (lines < 1) lines = 1;
  while (fgets(line, sizeof line, f)) {
    free(ring[n % lines]);
    ring[n % lines] = strdup(line);
    n++;
  }
  fclose(f);
  fprintf(stderr, "  --- last lines of %s ---\n", s->log_path);
  for (int i = n > lines ? n - lines : 0; i < n; i++) fprintf(stderr, "  | %s", ring[i % lines] ? ring[i % lines] : "\n");
  for (int i = 0; i < lines; i++) free(ring[i]);
}

int xd_server_log_contains(const xd_server_t *s, const char *text) {
  FILE *f = fopen(s->log_path, "r");
  if (!f) return 0;
  char line[4096];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) found = strstr(line, text) != NULL;
  fclose(f);
  return found;
}

static int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

int xd_server_wait(xd_server_t *s, int timeout_ms) {
  double end = xd_ms_now() + timeout_ms;
  for (;;) {
    int st;
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == s->pid) {
      s->pid = 0;
      return decode_status(st);
    }
    if (r < 0) return -1;
    if (xd_ms_now() >= end) return -2;
    xd_sleep_ms(10); /* a child exit has no fd to poll here; 10 ms naps are plenty */
  }
}

int xd_server_start(xd_server_t *s, const char *const *args, const char *const *env) {
  memset(s, 0, sizeof *s);
  s->port = xd_free_port();
  if (s->port < 0) return -1;
  const char *tmp = getenv("TMPDIR");
  snprintf(s->log_path, sizeof s->log_path, "%s/explaind-test-%d-%d.log", tmp && *tmp ? tmp : "/tmp", (int)getpid(),
           s->port);
  char exe[1024], listen[64];
  snprintf(exe, sizeof exe, "%s/explaind", build_dir());
  snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
  const char *argv[64];
  int n = 0, has_dir = 0;
  if (xd_under_valgrind()) {
    argv[n++] = "valgrind";
    argv[n++] = "--quiet";
    argv[n++] = "--error-exitcode=99";
    argv[n++] = "--leak-check=full";
    argv[n++] = "--errors-for-leak-kinds=definite,indirect";
  }
  argv[n++] = exe;
  argv[n++] = "--listen";
  argv[n++] = listen;
  /* Many tests start from an empty folder and upload models: ready at once, as before
   * --allow-empty existed. A test of readiness passes --allow-empty=false after it. */
  argv[n++] = "--allow-empty";
  for (int i = 0; args && args[i] && n < 60; i++) {
    has_dir |= strcmp(args[i], "--model-dir") == 0 || strncmp(args[i], "--model-dir=", 12) == 0;
    argv[n++] = args[i];
  }
  if (!has_dir) {
    argv[n++] = "--model-dir";
    argv[n++] = "models";
  }
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    for (int i = 0; env && env[i]; i++) putenv((char *)env[i]);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  s->pid = pid;
  double end = xd_ms_now() + (xd_under_valgrind() ? 60000 : 10000);
  int saved = xd_http_timeout_ms;
  xd_http_timeout_ms = 2000;
  while (xd_ms_now() < end) {
    xd_http_resp_t r;
    /* /readyz, not /healthz: the models load after the server starts answering. */
    if (xd_http(s->port, "GET", "/readyz", NULL, NULL, 0, &r) == 0) {
      int st = r.status;
      xd_http_resp_free(&r);
      if (st == 200) {
        xd_http_timeout_ms = saved;
        return 0;
      }
    }
    int st = xd_server_wait(s, 0);
    if (st != -2) {
      fprintf(stderr, "  explaind exited during start-up (status %d)\n", st);
      xd_server_dump_log(s, 20);
      xd_http_timeout_ms = saved;
      return -1;
    }
    xd_sleep_ms(20);
  }
  xd_http_timeout_ms = saved;
  fprintf(stderr, "  explaind was not ready (/readyz) on port %d in time\n", s->port);
  xd_server_dump_log(s, 20);
  kill(s->pid, SIGKILL);
  xd_server_wait(s, 5000);
  return -1;
}

int xd_server_wait_ready(const xd_server_t *s, int timeout_ms) {
  double end = xd_ms_now() + (xd_under_valgrind() ? 5 * timeout_ms : timeout_ms);
  for (;;) {
    xd_http_resp_t r;
    int st = xd_http(s->port, "GET", "/readyz", NULL, NULL, 0, &r) == 0 ? r.status : 0;
    xd_http_resp_free(&r);
    if (st == 200) return 0;
    if (xd_ms_now() >= end) break;
    xd_sleep_ms(20);
  }
  fprintf(stderr, "  explaind on port %d did not become ready in time\n", s->port);
  xd_server_dump_log(s, 20);
  return -1;
}

int xd_server_stop(xd_server_t *s) {
  if (s->pid <= 0) return -1;
  kill(s->pid, SIGTERM);
  int st = xd_server_wait(s, xd_under_valgrind() ? 120000 : 30000);
  if (st == -2) {
    kill(s->pid, SIGKILL);
    xd_server_wait(s, 5000);
    fprintf(stderr, "  explaind did not stop within 30 s of SIGTERM; killed\n");
    xd_server_dump_log(s, 20);
    return -1;
  }
  if (st != 0) {
    fprintf(stderr, "  explaind exited with status %d\n", st);
    xd_server_dump_log(s, 30);
  } else if (!getenv("KEEP_LOGS")) {
    unlink(s->log_path);
  }
  return st;
}
