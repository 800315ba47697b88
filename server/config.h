/* config.h — the server's configuration: command-line flags and EXPLAIND_* variables.
 *
 * Every setting has a flag (--queue-size N or --queue-size=N) and an environment variable
 * (EXPLAIND_QUEUE_SIZE); the flag wins over the variable, which wins over the default.
 * One table in config.c lists them all and also prints --help, so the two cannot drift.
 * Invalid values are reported with the flag or variable that carried them. Main thread,
 * before any other thread exists (reads the environment).
 */
#ifndef XD_SERVER_CONFIG_H
#define XD_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "api/limits.h"

#define XD_CONFIG_HOST_MAX 256
#define XD_CONFIG_PATH_MAX 4096
#define XD_CONFIG_KEYS_MAX 4096 /* all API keys, comma-separated */
#define XD_CONFIG_MAX_KEYS 32
#define XD_CONFIG_KEY_MAX 256
#define XD_CONFIG_MAX_ORIGINS 32

typedef struct xd_config {
  char host[XD_CONFIG_HOST_MAX]; /* numeric or name; "" = every IPv4 address */
  int port;                      /* 0 = any free port (tests) */
  char model_dir[XD_CONFIG_PATH_MAX];
  unsigned threads;              /* MHD network threads */
  unsigned workers;              /* worker threads (libuv pool size) */
  unsigned queue_size;           /* admitted jobs (queued + running) */
  uint64_t queue_work_rows;      /* admitted work units (cost_rows); 0 = 4 x max_work_rows */
  size_t max_body;               /* bytes */
  int64_t request_timeout_ms;    /* default job deadline */
  int64_t drain_timeout_ms;      /* shutdown: longest wait for in-flight jobs */
  int64_t shutdown_delay_ms;     /* shutdown: keep accepting (readiness 503) this long */
  unsigned conn_timeout_s;       /* idle connection timeout */
  unsigned max_connections;      /* open connections in all (server/conn.h) */
  unsigned max_connections_per_ip; /* from one address; 0 = no limit */
  unsigned read_timeout_s;       /* request line + headers; body without progress */
  size_t max_inflight_body;      /* bytes of request bodies held at once, all connections */
  int log_level;                 /* XD_LOG_* */
  int strict_models;             /* exit when a bundle of model_dir fails to load */
  int allow_empty;               /* ready with no model loaded */
  uint64_t inline_predict_rows;  /* /predict rows at or below which it runs inline; 0 = never */
  xd_limits_t limits;
  /* Authentication: the keys point into api_keys_buf, so use cfg in place (do not copy
   * the struct) for as long as the API borrows them. Never logged. */
  char api_keys_buf[XD_CONFIG_KEYS_MAX];
  const char *api_keys[XD_CONFIG_MAX_KEYS];
  size_t n_api_keys;
  char admin_key[XD_CONFIG_KEY_MAX]; /* "" = none: model management answers 403 */
  /* --api-key-file / --admin-key-file: read once the flags are parsed, their keys added
   * to the above (one key a line, # comments); "" = none. An unreadable or keyless file
   * is a usage error (exit 2). */
  char api_key_file[XD_CONFIG_PATH_MAX];
  char admin_key_file[XD_CONFIG_PATH_MAX];
  /* --cors-origin: allowed origins (normalized, see api/cors.h), pointers into cors_buf;
   * the flag replaces EXPLAIND_CORS_ORIGINS, repeated flags add up. Use cfg in place. */
  char cors_buf[XD_CONFIG_KEYS_MAX];
  const char *cors_origins[XD_CONFIG_MAX_ORIGINS];
  size_t n_cors_origins;
  int cors_from_flag;
  /* --tls-cert / --tls-key: PEM files (both or neither; checked readable here, read by
   * server/http.c). "" = plain HTTP. */
  char tls_cert[XD_CONFIG_PATH_MAX];
  char tls_key[XD_CONFIG_PATH_MAX];
  /* Batch jobs (docs/jobs.md) */
  char job_dir[XD_CONFIG_PATH_MAX]; /* "" = jobs kept in a temporary folder, lost on exit */
  unsigned max_jobs;             /* queued + running jobs at once */
  size_t max_job_rows;           /* instances of one job */
  int64_t job_ttl_ms;            /* a finished job is forgotten this long after it ended */
  int64_t test_part_delay_ms;    /* EXPLAIND_TEST_PART_DELAY_MS: tests only, see pool.h */
  char healthcheck[XD_CONFIG_PATH_MAX]; /* --healthcheck target, "" when not asked */
} xd_config_t;

enum { XD_CONFIG_RUN = 0, XD_CONFIG_EXIT_OK = 1, XD_CONFIG_EXIT_USAGE = 2 };

/* Fills cfg from defaults, the environment and argv. Returns XD_CONFIG_RUN to start the
 * server, XD_CONFIG_EXIT_OK after printing --help or --version to out, or
 * XD_CONFIG_EXIT_USAGE after printing a message naming the bad flag to err (the caller
 * exits with that value: 0 or 2). */
int xd_config_load(xd_config_t *cfg, int argc, char **argv, FILE *out, FILE *err);

/* Prints the table of flags, variables and defaults. */
void xd_config_help(FILE *out);

/* Parses "HOST:PORT", ":PORT" (every address) or "[V6ADDR]:PORT" into host (without
 * brackets) and port (0..65535). Returns 0, or -1 for a malformed value. */
int xd_config_parse_listen(const char *s, char *host, size_t host_cap, int *port);

/* One line describing cfg, for the start-up log. */
void xd_config_describe(const xd_config_t *cfg, char *buf, size_t cap);

#define XD_VERSION "0.1.0"

#endif
