/* healthcheck.c — see healthcheck.h. Plain sockets with poll() timeouts; https:// through
 * GnuTLS (the library libmicrohttpd serves TLS with), without certificate verification:
 * a probe of the local server asks "does it answer", not "is it who it says". */
#include "server/healthcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/status.h"
#include "server/config.h"

/* Splits target into host, port and path. */
static int parse_target(const char *t, char *host, size_t hcap, int *port, char *path, size_t pcap, int *tls) {
  int all_digits = t[0] != '\0';
  for (const char *c = t; *c; c++) all_digits &= *c >= '0' && *c <= '9';
  snprintf(path, pcap, "/healthz");
  if (all_digits) {
    snprintf(host, hcap, "127.0.0.1");
    *port = atoi(t);
    return *port > 0 && *port <= 65535 ? 0 : -1;
  }
  *tls = strncmp(t, "https://", 8) == 0;
  if (strncmp(t, "http://", 7) == 0) t += 7;
  else if (*tls) t += 8;
  char hp[512];
  const char *slash = strchr(t, '/');
  size_t n = slash ? (size_t)(slash - t) : strlen(t);
  if (n == 0 || n >= sizeof hp) return -1;
  memcpy(hp, t, n);
  hp[n] = '\0';
  if (slash) snprintf(path, pcap, "%s", slash);
  int has_port = hp[n - 1] != ']' && strrchr(hp, ':') && (hp[0] != '[' || strstr(hp, "]:"));
  if (!has_port) {
    if (strlen(hp) + 4 >= sizeof hp) return -1;
    strcat(hp, *tls ? ":443" : ":80");
  }
  if (xd_config_parse_listen(hp, host, hcap, port) || *port == 0) return -1;
  if (!host[0]) snprintf(host, hcap, "127.0.0.1");
  return 0;
}

/* Waits for fd to be ready for events until deadline (ns). */
static int wait_fd(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = (deadline - xd_now_ns()) / 1000000;
    if (left <= 0) return -1;
    struct pollfd p = {fd, events, 0};
    int rc = poll(&p, 1, (int)left);
    if (rc > 0) return 0;
    if (rc < 0 && errno != EINTR) return -1;
  }
}

/* TLS over the connected non-blocking fd: handshake, then the same exchange as below. */
typedef struct tls {
  gnutls_session_t s;
  gnutls_certificate_credentials_t cred;
} tls_t;

static int tls_wait(tls_t *t, int fd, int64_t deadline) {
  return wait_fd(fd, gnutls_record_get_direction(t->s) ? POLLOUT : POLLIN, deadline);
}

static int tls_open(tls_t *t, int fd, const char *host, int64_t deadline) {
  if (gnutls_certificate_allocate_credentials(&t->cred) != GNUTLS_E_SUCCESS) return -1;
  if (gnutls_init(&t->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK) != GNUTLS_E_SUCCESS) {
    t->s = NULL;
    return -1;
  }
  if (gnutls_set_default_priority(t->s) != GNUTLS_E_SUCCESS ||
      gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, t->cred) != GNUTLS_E_SUCCESS)
    return -1;
  if (!strchr(host, ':') && strspn(host, "0123456789.") != strlen(host)) /* SNI for names, not addresses */
    gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, host, strlen(host));
  gnutls_transport_set_int(t->s, fd);
  for (;;) {
    int rc = gnutls_handshake(t->s);
    if (rc == GNUTLS_E_SUCCESS) return 0;
    if (gnutls_error_is_fatal(rc) || tls_wait(t, fd, deadline)) {
      fprintf(stderr, "explaind: --healthcheck: TLS handshake failed: %s\n", gnutls_strerror(rc));
      return -1;
    }
  }
}

static void tls_close(tls_t *t) {
  if (t->s) gnutls_deinit(t->s);
  if (t->cred) gnutls_certificate_free_credentials(t->cred);
}

int xd_healthcheck(const char *target, int timeout_ms) {
  char host[256], path[1024], port_s[8], req[1400], buf[64];
  int port, fd = -1, status = -1, use_tls = 0;
  tls_t tls = {NULL, NULL};
  if (parse_target(target, host, sizeof host, &port, path, sizeof path, &use_tls)) {
    fprintf(stderr, "explaind: --healthcheck: '%s' is not a port or an http:// or https:// URL\n", target);
    return -1;
  }
  int64_t deadline = xd_now_ns() + (int64_t)timeout_ms * 1000000;
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  snprintf(port_s, sizeof port_s, "%d", port);
  if (getaddrinfo(host, port_s, &hints, &res) != 0) {
    fprintf(stderr, "explaind: --healthcheck: cannot resolve %s\n", host);
    return -1;
  }
  fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) goto done;
  if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    int err = 0;
    socklen_t el = sizeof err;
    if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err)
      goto done;
  }
  if (use_tls && tls_open(&tls, fd, host, deadline)) goto done;
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", path, host, port);
  for (int off = 0; off < n;) {
    ssize_t w;
    if (use_tls) {
      w = gnutls_record_send(tls.s, req + off, (size_t)(n - off));
      if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) {
        if (tls_wait(&tls, fd, deadline)) goto done;
        continue;
      }
      if (w < 0) goto done;
    } else {
      if (wait_fd(fd, POLLOUT, deadline)) goto done;
      w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN && errno != EINTR) goto done;
    }
    if (w > 0) off += (int)w;
  }
  size_t got = 0; /* only the status line matters: "HTTP/1.1 200 OK" */
  while (got < 12) {
    ssize_t r;
    if (use_tls) {
      r = gnutls_record_recv(tls.s, buf + got, sizeof buf - 1 - got);
      if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
        if (tls_wait(&tls, fd, deadline)) goto done;
        continue;
      }
      if (r == 0) break;
      if (r < 0) goto done;
    } else {
      if (wait_fd(fd, POLLIN, deadline)) goto done;
      r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
      if (r == 0) break;
      if (r < 0 && errno != EAGAIN && errno != EINTR) goto done;
    }
    if (r > 0) got += (size_t)r;
  }
  buf[got] = '\0';
  if (got >= 12 && strncmp(buf, "HTTP/1.", 7) == 0) status = atoi(buf + 9);
done:
  if (status < 0) fprintf(stderr, "explaind: --healthcheck: no HTTP answer from %s:%d%s\n", host, port, path);
  tls_close(&tls);
  if (fd >= 0) close(fd);
  freeaddrinfo(res);
  return status;
}
