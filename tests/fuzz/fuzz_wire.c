/* fuzz_wire.c — the HTTP layer as a whole: raw bytes through a loopback connection to
 * the real server (libmicrohttpd, server/http.c's body accumulation, 413/400 paths,
 * suspend/resume through the worker pool, then api/). The server runs in this process
 * (so ASan/UBSan see both sides) on 127.0.0.1 with the demo models, one worker, small
 * limits (20,000 model rows a request) and a 1 s request deadline. Each input is written
 * to a fresh connection whose write side is then shut, and one response is read (see
 * below). A crash, a sanitizer report or a hang is a finding; the answers themselves are
 * not checked (the router's are, by fuzz_http). Slow by nature (tens of inputs a second):
 * it is the only target that reaches server/http.c and libmicrohttpd. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem; `make fuzz` compiles targets without the library's flags */
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api.h"
#include "core/mat.h"
#include "server/config.h"
#include "server/http.h"
#include "server/pool.h"
#include "tests/fuzz/fuzz.h"

static int port;

static int setup(void) {
  if (port) return port;
  xd_blas_init();
  json_object_seed(0);
  static char *argv[] = {"explaind", "--listen", "127.0.0.1:0", "--model-dir", "models", "--workers", "1",
                         "--threads", "1", "--request-timeout", "1000", "--max-body", "65536", "--max-rows", "8",
                         "--max-samples", "300", "--max-steps", "32", "--max-work-rows", "20000", "--log-level", "error", NULL};
  static xd_config_t cfg;
  FILE *null = fopen("/dev/null", "w");
  if (xd_config_load(&cfg, (int)(sizeof argv / sizeof *argv) - 1, argv, null, null) != 0) __builtin_trap();
  cfg.limits.max_background = 50;
  cfg.limits.max_nsamples = 300;
  cfg.limits.max_repeats = 3;
  cfg.limits.max_grid = 20;
  xd_registry_t *reg = NULL;
  xd_api_t *api = NULL;
  xd_pool_t *pool = NULL;
  xd_http_t *http = NULL;
  xd_api_config_t acfg;
  memset(&acfg, 0, sizeof acfg);
  acfg.limits = cfg.limits;
  acfg.inline_predict_rows = 8;
  if (xd_registry_new(&reg) != XD_OK || xd_api_new(&acfg, reg, &api) != XD_OK) __builtin_trap();
  xd_api_load_dir(api, "models", NULL, NULL);
  xd_api_set_ready(api, 1);
  xd_pool_config_t pcfg;
  memset(&pcfg, 0, sizeof pcfg);
  pcfg.workers = 1;
  pcfg.capacity = 4;
  pcfg.default_timeout_ms = 1000;
  if (xd_pool_new(&pcfg, &pool) != XD_OK || xd_http_start(&cfg, api, pool, &http) != XD_OK) __builtin_trap();
  port = xd_http_port(http);
  return port; /* the server lives until the process ends */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int p = setup();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)p);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return 0;
  }
  size_t off = 0;
  while (off < size) {
    ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (w <= 0) break;
    off += (size_t)w;
  }
  shutdown(fd, SHUT_WR);
  /* Read one whole response (the server keeps the connection open after it): headers,
   * then Content-Length bytes; a 100 Continue is skipped. Gives up after 100 ms of
   * silence (a request the server still waits on; closing then is the "client left"
   * path, which cancels queued work) or 1.5 s in all. */
  static char buf[1 << 16];
  size_t got = 0, start = 0;
  for (int rounds = 0, quiet = 0; rounds < 150 && quiet < 10 && got < sizeof buf; rounds++) {
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 10) == 0) {
      quiet++;
      continue;
    }
    quiet = 0;
    ssize_t r = recv(fd, buf + got, sizeof buf - got, 0);
    if (r <= 0) break;
    got += (size_t)r;
    char *eoh = memmem(buf + start, got - start, "\r\n\r\n", 4);
    if (!eoh) continue;
    size_t hlen = (size_t)(eoh + 4 - (buf + start));
    if (got - start >= 12 && memcmp(buf + start + 9, "100", 3) == 0) {
      start += hlen;
      continue;
    }
    char *cl = memmem(buf + start, hlen, "Content-Length:", 15);
    if (cl && got - start >= hlen + strtoul(cl + 15, NULL, 10)) break;
  }
  close(fd);
  return 0;
}
