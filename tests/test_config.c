/* test_config.c — server/config.h (listen forms, sizes, defaults, env vs flag, errors) and
 * server/log.h (levels, one escaped access-log line per request). */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"
#include "server/log.h"
#include "tests/test.h"

static FILE *sink(void) {
  static FILE *f;
  if (!f) f = fopen("/dev/null", "w");
  return f;
}

static int load(xd_config_t *c, const char *const *args) {
  char *argv[32];
  int n = 0;
  argv[n++] = "explaind";
  for (int i = 0; args && args[i]; i++) argv[n++] = (char *)args[i];
  argv[n] = NULL;
  return xd_config_load(c, n, argv, sink(), sink());
}

TEST(listen_forms) {
  char host[256];
  int port;
  CHECK(xd_config_parse_listen("127.0.0.1:8080", host, sizeof host, &port) == 0);
  CHECK(strcmp(host, "127.0.0.1") == 0 && port == 8080);
  CHECK(xd_config_parse_listen(":9000", host, sizeof host, &port) == 0);
  CHECK(host[0] == '\0' && port == 9000);
  CHECK(xd_config_parse_listen("[::1]:8081", host, sizeof host, &port) == 0);
  CHECK(strcmp(host, "::1") == 0 && port == 8081);
  CHECK(xd_config_parse_listen("localhost:0", host, sizeof host, &port) == 0 && port == 0);
  const char *bad[] = {"8080", "host", "host:", "host:65536", "host:-1", "::1:80", "[::1]", "[]:80", "[::1]80",
                       "h:80x", NULL};
  for (int i = 0; bad[i]; i++) CHECK_MSG(xd_config_parse_listen(bad[i], host, sizeof host, &port) == -1, "%s", bad[i]);
}

TEST(defaults) {
  xd_config_t c;
  CHECK(load(&c, NULL) == XD_CONFIG_RUN);
  CHECK(strcmp(c.host, "127.0.0.1") == 0 && c.port == 8080);
  CHECK(strcmp(c.model_dir, "./models") == 0);
  CHECK(c.threads == 2);
  CHECK(c.workers >= 1);
  CHECK(c.queue_size == 4 * c.workers);
  CHECK(c.max_body == 8u << 20);
  CHECK(c.request_timeout_ms == 30000 && c.drain_timeout_ms == 30000);
  CHECK(c.conn_timeout_s == 75);
  CHECK(c.log_level == XD_LOG_INFO);
  xd_limits_t l;
  xd_limits_default(&l);
  CHECK(c.limits.max_rows == l.max_rows && c.limits.max_work_rows == l.max_work_rows);
  CHECK(c.healthcheck[0] == '\0');
}

TEST(flags_both_forms_and_sizes) {
  xd_config_t c;
  const char *a[] = {"--listen=[::1]:0", "--workers", "3", "--max-body=64k", "--max-rows", "7", "--max-work-rows",
                     "123456789012", "--log-level", "debug", "--model-dir", "/srv/m", NULL};
  CHECK(load(&c, a) == XD_CONFIG_RUN);
  CHECK(strcmp(c.host, "::1") == 0 && c.port == 0);
  CHECK(c.workers == 3 && c.queue_size == 12);
  CHECK(c.max_body == 65536);
  CHECK(c.limits.max_rows == 7 && c.limits.max_work_rows == 123456789012ULL);
  CHECK(c.log_level == XD_LOG_DEBUG);
  CHECK(strcmp(c.model_dir, "/srv/m") == 0);
  const char *b[] = {"--max-body", "8MiB", NULL};
  CHECK(load(&c, b) == XD_CONFIG_RUN && c.max_body == 8u << 20);
}

TEST(flag_wins_over_env) {
  xd_config_t c;
  setenv("EXPLAIND_QUEUE_SIZE", "5", 1);
  setenv("EXPLAIND_THREADS", "4", 1);
  const char *a[] = {"--queue-size", "3", NULL};
  CHECK(load(&c, a) == XD_CONFIG_RUN);
  CHECK(c.queue_size == 3 && c.threads == 4);
  setenv("EXPLAIND_THREADS", "zero", 1);
  CHECK(load(&c, NULL) == XD_CONFIG_EXIT_USAGE); /* a bad variable is an error too */
  unsetenv("EXPLAIND_QUEUE_SIZE");
  unsetenv("EXPLAIND_THREADS");
}

/* --strict-models and --allow-empty: a bare flag is true and takes no value, so the next
 * flag is read as a flag; =false, the environment and a bad value. */
TEST(boolean_flags) {
  xd_config_t c;
  CHECK(load(&c, NULL) == XD_CONFIG_RUN && c.strict_models == 0 && c.allow_empty == 0);
  const char *a[] = {"--strict-models", "--workers", "3", "--allow-empty=yes", NULL};
  CHECK(load(&c, a) == XD_CONFIG_RUN && c.strict_models == 1 && c.allow_empty == 1 && c.workers == 3);
  const char *b[] = {"--allow-empty", "--allow-empty=false", NULL}; /* the last one wins */
  CHECK(load(&c, b) == XD_CONFIG_RUN && c.allow_empty == 0);
  setenv("EXPLAIND_STRICT_MODELS", "1", 1);
  CHECK(load(&c, NULL) == XD_CONFIG_RUN && c.strict_models == 1);
  const char *f[] = {"--strict-models=off", NULL};
  CHECK(load(&c, f) == XD_CONFIG_RUN && c.strict_models == 0);
  setenv("EXPLAIND_STRICT_MODELS", "maybe", 1);
  CHECK(load(&c, NULL) == XD_CONFIG_EXIT_USAGE);
  unsetenv("EXPLAIND_STRICT_MODELS");
  const char *bad[] = {"--allow-empty=2", NULL};
  CHECK(load(&c, bad) == XD_CONFIG_EXIT_USAGE);
  char desc[1536];
  CHECK(load(&c, a) == XD_CONFIG_RUN);
  xd_config_describe(&c, desc, sizeof desc);
  CHECK(strstr(desc, "strict_models=1") && strstr(desc, "allow_empty=1"));
}

TEST(invalid_values_are_usage_errors) {
  xd_config_t c;
  const char *bad[][3] = {{"--threads", "0", NULL},        {"--workers", "65", NULL},     {"--max-body", "0", NULL},
                          {"--max-body", "1T", NULL},      {"--request-timeout", "-1", NULL},
                          {"--conn-timeout", "", NULL},    {"--unknown", "1", NULL},      {"--workers", NULL, NULL},
                          {"positional", NULL, NULL},      {"--queue-size", "99999999999999999999", NULL}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_MSG(load(&c, bad[i]) == XD_CONFIG_EXIT_USAGE, "%s %s", bad[i][0], bad[i][1] ? bad[i][1] : "");
}

TEST(help_version_healthcheck) {
  xd_config_t c;
  const char *h[] = {"--workers", "bogus", "--help", NULL}; /* --help wins over errors */
  CHECK(load(&c, h) == XD_CONFIG_EXIT_OK);
  const char *v[] = {"--version", NULL};
  CHECK(load(&c, v) == XD_CONFIG_EXIT_OK);
  const char *hc[] = {"--healthcheck", "8080", NULL};
  CHECK(load(&c, hc) == XD_CONFIG_RUN && strcmp(c.healthcheck, "8080") == 0);
}

TEST(log_levels) {
  CHECK(xd_log_level_parse("debug") == XD_LOG_DEBUG);
  CHECK(xd_log_level_parse("error") == XD_LOG_ERROR);
  CHECK(xd_log_level_parse("verbose") == -1);
  CHECK(xd_log_level_parse(NULL) == -1);
}

/* Runs the logging calls with stderr sent to a file; returns what they wrote. */
static char *capture_log(void (*fn)(void)) {
  static char buf[4096];
  char path[64];
  snprintf(path, sizeof path, "/tmp/xd-log-%d.txt", (int)getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), saved = dup(2);
  dup2(fd, 2);
  fn();
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  buf[n > 0 ? n : 0] = '\0';
  close(fd);
  unlink(path);
  return buf;
}

static void write_access(void) {
  xd_log_set_level(XD_LOG_INFO);
  xd_log_access("r-1", "GET", "/a b\n\"x\" FAKE status=200", "iris", 404, 1.5);
  xd_log(XD_LOG_DEBUG, "hidden at info");
  xd_log(XD_LOG_WARN, "shown %d", 7);
}

TEST(access_log_one_escaped_line) {
  char *out = capture_log(write_access);
  CHECK(strstr(out, "access rid=r-1 method=GET path=/a\\x20b\\x0a\\x22x\\x22\\x20FAKE\\x20status=200 model=iris status=404 ms=1.500\n"));
  CHECK(strstr(out, "hidden") == NULL);
  CHECK(strstr(out, "warn  shown 7\n") != NULL);
  int lines = 0;
  for (char *c = out; *c; c++) lines += *c == '\n';
  CHECK_MSG(lines == 2, "%d lines: %s", lines, out);
}

int main(void) {
  RUN(listen_forms);
  RUN(defaults);
  RUN(flags_both_forms_and_sizes);
  RUN(flag_wins_over_env);
  RUN(boolean_flags);
  RUN(invalid_values_are_usage_errors);
  RUN(help_version_healthcheck);
  RUN(log_levels);
  RUN(access_log_one_escaped_line);
  return TEST_REPORT();
}
