/* config.c — flags and EXPLAIND_* variables, from one table (see config.h).
 *
 * Order: defaults, then the environment, then argv, so a flag always wins. --help and
 * --version are looked for first, so `explaind --help` works whatever else is wrong. */
#include "server/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/cors.h"
#include "server/log.h"

/* ---- the table ------------------------------------------------------------------- */

typedef enum kind { K_LISTEN, K_PATH, K_UINT, K_SIZE, K_U64, K_BYTES, K_MS, K_LEVEL, K_KEYS, K_KEY, K_ORIGINS, K_BOOL } kind_t;

typedef struct option {
  const char *flag; /* without the leading "--" */
  const char *env;
  kind_t kind;
  size_t offset;    /* into xd_config_t */
  uint64_t min, max;
  const char *defval; /* shown by --help; NULL = computed, see help_default() */
  const char *help;
} option_t;

#define OFF(f) offsetof(xd_config_t, f)
#define LIM(f) (offsetof(xd_config_t, limits) + offsetof(xd_limits_t, f))
#define DAY_MS 86400000ULL

static const option_t options[] = {
    {"listen", "EXPLAIND_LISTEN", K_LISTEN, 0, 0, 0, "127.0.0.1:8080",
     "address to serve on: HOST:PORT, :PORT (every IPv4 address) or [V6ADDR]:PORT"},
    {"model-dir", "EXPLAIND_MODEL_DIR", K_PATH, OFF(model_dir), 0, 0, "./models",
     "folder of model bundles loaded at start-up"},
    {"threads", "EXPLAIND_THREADS", K_UINT, OFF(threads), 1, 256, "2", "network (libmicrohttpd) threads"},
    /* <= 64: Debian's OpenBLAS has buffers for 64 concurrent callers (docs/serving.md §6.4) */
    {"workers", "EXPLAIND_WORKERS", K_UINT, OFF(workers), 1, 64, NULL, "worker threads for model work"},
    {"queue-size", "EXPLAIND_QUEUE_SIZE", K_UINT, OFF(queue_size), 1, 1000000, NULL,
     "jobs admitted at once (queued + running); more are answered 503"},
    {"queue-work-rows", "EXPLAIND_QUEUE_WORK_ROWS", K_U64, OFF(queue_work_rows), 1, UINT64_MAX, NULL,
     "model rows (work units) admitted at once; requests over 1/64 of it are heavy and share 3/4 of it"},
    {"max-body", "EXPLAIND_MAX_BODY", K_BYTES, OFF(max_body), 1, 1ULL << 30, "8MiB",
     "largest request body (bytes; suffixes k, M, G)"},
    {"request-timeout", "EXPLAIND_REQUEST_TIMEOUT", K_MS, OFF(request_timeout_ms), 1, DAY_MS, "30000",
     "default deadline of a request (ms); past it the answer is 504"},
    {"drain-timeout", "EXPLAIND_DRAIN_TIMEOUT", K_MS, OFF(drain_timeout_ms), 0, DAY_MS, "30000",
     "on SIGTERM, longest wait for in-flight requests (ms)"},
    {"shutdown-delay", "EXPLAIND_SHUTDOWN_DELAY", K_MS, OFF(shutdown_delay_ms), 0, DAY_MS, "0",
     "on SIGTERM, keep accepting connections this long with /readyz 503 (ms)"},
    {"conn-timeout", "EXPLAIND_CONN_TIMEOUT", K_UINT, OFF(conn_timeout_s), 1, 86400, "75",
     "idle connection timeout (s); keep above the load balancer's keep-alive"},
    /* Connection control and memory at the edge (server/conn.h, docs/limits.md). */
    {"max-connections", "EXPLAIND_MAX_CONNECTIONS", K_UINT, OFF(max_connections), 1, 1000000, "4096",
     "open connections in all; more are closed at once (capped by the file-descriptor limit)"},
    {"max-connections-per-ip", "EXPLAIND_MAX_CONNECTIONS_PER_IP", K_UINT, OFF(max_connections_per_ip), 0, 1000000,
     "0", "open connections from one client address (0: no limit; keep 0 behind a load balancer)"},
    {"read-timeout", "EXPLAIND_READ_TIMEOUT", K_UINT, OFF(read_timeout_s), 1, 3600, "10",
     "seconds a request's line and headers may take to arrive, and its body may stall"},
    {"max-inflight-body", "EXPLAIND_MAX_INFLIGHT_BODY", K_BYTES, OFF(max_inflight_body), 1, 1ULL << 40, "256MiB",
     "request bodies held in memory at once, all connections together; past it 503"},
    {"log-level", "EXPLAIND_LOG_LEVEL", K_LEVEL, OFF(log_level), 0, 0, "info", "debug, info, warn or error"},
    {"inline-predict-rows", "EXPLAIND_INLINE_PREDICT_ROWS", K_U64, OFF(inline_predict_rows), 0, UINT64_MAX,
     "256", "/predict batches of at most this many rows run on the network thread (0: never)"},
    {"api-keys", "EXPLAIND_API_KEYS", K_KEYS, 0, 0, 0, "none (open)",
     "comma-separated keys accepted as 'Authorization: Bearer KEY' (prefer the variable: flags show in ps)"},
    {"admin-key", "EXPLAIND_ADMIN_KEY", K_KEY, OFF(admin_key), 0, 0, "none",
     "key for model management (PUT/DELETE /models); without it those answer 403"},
    {"api-key-file", "EXPLAIND_API_KEY_FILE", K_PATH, OFF(api_key_file), 0, 0, "none",
     "file of API keys, one a line (# comments, blank lines ignored); added to --api-keys"},
    {"admin-key-file", "EXPLAIND_ADMIN_KEY_FILE", K_PATH, OFF(admin_key_file), 0, 0, "none",
     "file holding the admin key (one line; # comments ignored); instead of --admin-key"},
    {"cors-origin", "EXPLAIND_CORS_ORIGINS", K_ORIGINS, 0, 0, 0, "none (same origin only)",
     "origin allowed to call the API from a browser, e.g. https://dash.example.com (repeat or comma-separate; * = any)"},
    {"tls-cert", "EXPLAIND_TLS_CERT", K_PATH, OFF(tls_cert), 0, 0, "none (plain HTTP)",
     "PEM certificate (chain) to serve HTTPS with; needs --tls-key"},
    {"tls-key", "EXPLAIND_TLS_KEY", K_PATH, OFF(tls_key), 0, 0, "none",
     "PEM private key of --tls-cert (unencrypted)"},
    {"max-rows", "EXPLAIND_MAX_ROWS", K_SIZE, LIM(max_rows), 1, 100000000, NULL, "instances per request"},
    {"max-samples", "EXPLAIND_MAX_SAMPLES", K_SIZE, LIM(max_samples), 1, 100000000, NULL,
     "LIME num_samples, SmoothGrad samples"},
    {"max-steps", "EXPLAIND_MAX_STEPS", K_SIZE, LIM(max_steps), 1, 1000000, NULL, "integrated-gradients steps"},
    {"max-work-rows", "EXPLAIND_MAX_WORK_ROWS", K_U64, LIM(max_work_rows), 1, UINT64_MAX, NULL,
     "model rows one request may evaluate"},
    /* The rest of xd_limits_t (api/json.h), so that every bound on what a request may ask
     * for can be set (docs/limits.md). */
    {"max-background", "EXPLAIND_MAX_BACKGROUND", K_SIZE, LIM(max_background), 1, 100000000, NULL,
     "background rows a request may send or summarize to (SHAP), data rows (importance, PDP)"},
    {"max-nsamples", "EXPLAIND_MAX_NSAMPLES", K_SIZE, LIM(max_nsamples), 1, 100000000, NULL,
     "Kernel SHAP coalitions (nsamples)"},
    {"max-repeats", "EXPLAIND_MAX_REPEATS", K_SIZE, LIM(max_repeats), 1, 1000000, NULL,
     "LIME repeats, permutation-importance n_repeats"},
    {"max-grid", "EXPLAIND_MAX_GRID", K_SIZE, LIM(max_grid), 2, 1000000, NULL, "PDP grid_resolution"},
    {"max-train-rows", "EXPLAIND_MAX_TRAIN_ROWS", K_SIZE, LIM(max_train_rows), 1, 100000000, NULL,
     "rows of a training table (POST /models/{name}/train)"},
    {"strict-models", "EXPLAIND_STRICT_MODELS", K_BOOL, OFF(strict_models), 0, 0, "false",
     "exit (status 1) if any bundle of the model folder fails to load; a bare flag means true"},
    {"allow-empty", "EXPLAIND_ALLOW_EMPTY", K_BOOL, OFF(allow_empty), 0, 0, "false",
     "/readyz is ready with no model loaded (else 503 until one is)"},
    {"train-background", "EXPLAIND_TRAIN_BACKGROUND", K_SIZE, LIM(train_background), 1, 100000, NULL,
     "background rows kept with a trained model"},
    {"job-dir", "EXPLAIND_JOB_DIR", K_PATH, OFF(job_dir), 0, 0, "none (a temporary folder)",
     "batch jobs' requests and results; unfinished jobs resume from it after a restart"},
    {"max-jobs", "EXPLAIND_MAX_JOBS", K_UINT, OFF(max_jobs), 1, 100000, "16", "batch jobs queued or running at once"},
    {"max-job-rows", "EXPLAIND_MAX_JOB_ROWS", K_SIZE, OFF(max_job_rows), 1, 1000000000, "1000000", "instances of one batch job"},
    {"job-ttl", "EXPLAIND_JOB_TTL", K_MS, OFF(job_ttl_ms), 1, 365 * DAY_MS, "86400000",
     "a finished job and its results are deleted this long after it ended"},
    {"max-work-memory", "EXPLAIND_MAX_WORK_MEMORY", K_BYTES, LIM(max_work_memory), 1, 1ULL << 40, "1GiB",
     "working memory one graph-model run may use (bytes; suffixes k, M, G); larger batches run in chunks, a row "
     "that does not fit is 413"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static void help_default(const option_t *o, const xd_limits_t *lim, char *buf, size_t cap) {
  if (o->defval) snprintf(buf, cap, "%s", o->defval);
  else if (strcmp(o->flag, "workers") == 0) snprintf(buf, cap, "nproc (%ld)", sysconf(_SC_NPROCESSORS_ONLN));
  else if (strcmp(o->flag, "queue-size") == 0) snprintf(buf, cap, "4 x workers");
  else if (o->offset == LIM(max_rows)) snprintf(buf, cap, "%zu", lim->max_rows);
  else if (o->offset == LIM(max_samples)) snprintf(buf, cap, "%zu", lim->max_samples);
  else if (o->offset == LIM(max_steps)) snprintf(buf, cap, "%zu", lim->max_steps);
  else if (o->offset == LIM(max_work_rows)) snprintf(buf, cap, "%" PRIu64, lim->max_work_rows);
  else if (o->offset == LIM(max_background)) snprintf(buf, cap, "%zu", lim->max_background);
  else if (o->offset == LIM(max_nsamples)) snprintf(buf, cap, "%zu", lim->max_nsamples);
  else if (o->offset == LIM(max_repeats)) snprintf(buf, cap, "%zu", lim->max_repeats);
  else if (o->offset == LIM(max_grid)) snprintf(buf, cap, "%zu", lim->max_grid);
  else if (o->offset == LIM(max_train_rows)) snprintf(buf, cap, "%zu", lim->max_train_rows);
  else if (o->offset == LIM(train_background)) snprintf(buf, cap, "%zu", lim->train_background);
  else snprintf(buf, cap, "-");
}

void xd_config_help(FILE *out) {
  xd_limits_t lim;
  xd_limits_default(&lim);
  fprintf(out,
          "explaind %s: serves neural-network models and their explanations over HTTP.\n\n"
          "usage: explaind [--flag VALUE | --flag=VALUE]...\n"
          "       explaind --healthcheck PORT|URL   GET PORT's /healthz (or URL); exit 0 on 200\n\n",
          XD_VERSION);
  fprintf(out, "  %-28s %-30s %s\n", "flag", "environment", "default");
  for (size_t i = 0; i < N_OPTIONS; i++) {
    char flag[64], def[64];
    snprintf(flag, sizeof flag, "--%s", options[i].flag);
    help_default(&options[i], &lim, def, sizeof def);
    fprintf(out, "  %-28s %-30s %s\n      %s\n", flag, options[i].env, def, options[i].help);
  }
  fprintf(out, "  %-28s %-30s %s\n      %s\n", "--healthcheck", "-", "-", "see above");
  fprintf(out, "  %-28s %-30s %s\n      %s\n", "--help", "-", "-", "print this table");
  fprintf(out, "  %-28s %-30s %s\n      %s\n", "--version", "-", "-", "print the version");
  fprintf(out,
          "\nThe flag wins over the environment variable. EXPLAIND_TEST_PART_DELAY_MS (tests only)\n"
          "makes every worker part sleep that long first, to hold jobs in flight.\n");
}

/* ---- value parsers ------------------------------------------------------------- */

/* Decimal unsigned integer, no sign, no trailing text. */
static int parse_u64(const char *s, uint64_t *out) {
  if (!s || *s < '0' || *s > '9') return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}

/* "8388608", "64k", "8M", "8MiB", "1G": binary multiples, as sizes are usually meant. */
static int parse_bytes(const char *s, uint64_t *out) {
  if (!s || *s < '0' || *s > '9') return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno) return -1;
  unsigned shift = 0;
  switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return -1;
  }
  if (shift && (strcmp(end, "") == 0 || strcmp(end, "B") == 0 || strcmp(end, "iB") == 0)) end += strlen(end);
  if (*end || (shift && v > (UINT64_MAX >> shift))) return -1;
  *out = (uint64_t)v << shift;
  return 0;
}

int xd_config_parse_listen(const char *s, char *host, size_t host_cap, int *port) {
  const char *colon, *h = s;
  size_t hlen;
  if (!s) return -1;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':') return -1;
    h = s + 1;
    hlen = (size_t)(close - h);
    colon = close + 1;
    if (hlen == 0) return -1;
  } else {
    colon = strrchr(s, ':');
    if (!colon || memchr(s, ':', (size_t)(colon - s))) return -1; /* bare IPv6 needs brackets */
    hlen = (size_t)(colon - s);
  }
  uint64_t p;
  if (hlen >= host_cap || parse_u64(colon + 1, &p) || p > 65535) return -1;
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  *port = (int)p;
  return 0;
}

/* A key: printable ASCII, no spaces or commas (it travels in a header). */
static int key_ok(const char *k, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (k[i] <= 0x20 || k[i] >= 0x7f || k[i] == ',') return 0;
  return 1;
}

/* "k1,k2,..." into cfg->api_keys (pointers into cfg->api_keys_buf). The value is never
 * echoed in messages: it is a secret. */
static int set_keys(xd_config_t *cfg, const char *value, const char *source, FILE *err) {
  if (strlen(value) >= sizeof cfg->api_keys_buf) {
    fprintf(err, "explaind: %s: the key list is too long\n", source);
    return -1;
  }
  snprintf(cfg->api_keys_buf, sizeof cfg->api_keys_buf, "%s", value);
  cfg->n_api_keys = 0;
  char *k = cfg->api_keys_buf;
  while (*k) {
    char *comma = strchr(k, ',');
    size_t n = comma ? (size_t)(comma - k) : strlen(k);
    if (!key_ok(k, n) || cfg->n_api_keys == XD_CONFIG_MAX_KEYS) {
      fprintf(err, "explaind: %s: expected up to %d comma-separated keys of printable characters\n", source,
              XD_CONFIG_MAX_KEYS);
      cfg->n_api_keys = 0;
      return -1;
    }
    cfg->api_keys[cfg->n_api_keys++] = k;
    if (!comma) break;
    *comma = '\0';
    k = comma + 1;
  }
  return 0;
}

/* "o1,o2" added to cfg->cors_origins; the first flag drops what the environment set. */
static int add_origins(xd_config_t *cfg, const char *value, const char *source, FILE *err) {
  if (strncmp(source, "--", 2) == 0 && !cfg->cors_from_flag) {
    cfg->cors_from_flag = 1;
    cfg->n_cors_origins = 0;
  }
  size_t used = 0;
  if (cfg->n_cors_origins) {
    const char *last = cfg->cors_origins[cfg->n_cors_origins - 1];
    used = (size_t)(last - cfg->cors_buf) + strlen(last) + 1;
  }
  const char *o = value;
  for (;;) {
    const char *comma = strchr(o, ',');
    size_t n = comma ? (size_t)(comma - o) : strlen(o);
    while (n && (*o == ' ' || *o == '\t')) o++, n--;
    while (n && (o[n - 1] == ' ' || o[n - 1] == '\t')) n--;
    const char *why = "too many origins";
    if (cfg->n_cors_origins == XD_CONFIG_MAX_ORIGINS ||
        xd_cors_origin_parse(o, n, cfg->cors_buf + used, sizeof cfg->cors_buf - used, &why) != 0) {
      fprintf(err, "explaind: %s: '%.*s': %s\n", source, (int)n, o, why);
      return -1;
    }
    cfg->cors_origins[cfg->n_cors_origins++] = cfg->cors_buf + used;
    used += n + 1;
    if (!comma) return 0;
    o = comma + 1;
  }
}

/* Reads the keys of a key file: one a line, leading and trailing blanks dropped, blank
 * lines and lines starting with # skipped, "KEY # note" allowed. api keys are appended
 * to cfg->api_keys; the admin file must hold exactly one key. Messages name the file and
 * the line, never its text: it is a secret. */
static int load_key_file(xd_config_t *cfg, const char *path, int admin, FILE *err) {
  const char *what = admin ? "--admin-key-file" : "--api-key-file";
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(err, "explaind: %s %s: cannot read it: %s\n", what, path, strerror(errno));
    return -1;
  }
  size_t used = 0;
  if (cfg->n_api_keys) {
    const char *last = cfg->api_keys[cfg->n_api_keys - 1];
    used = (size_t)(last - cfg->api_keys_buf) + strlen(last) + 1;
  }
  char line[1024];
  int lineno = 0, found = 0, rc = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    lineno++;
    size_t len = strlen(line);
    if (len == sizeof line - 1 && line[len - 1] != '\n') {
      fprintf(err, "explaind: %s %s: line %d is too long\n", what, path, lineno);
      rc = -1;
      break;
    }
    char *k = line;
    while (*k == ' ' || *k == '\t') k++;
    size_t n = strcspn(k, " \t\r\n");
    const char *rest = k + n;
    while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n') rest++;
    if (n == 0 || *k == '#') continue;
    if ((*rest && *rest != '#') || !key_ok(k, n) || n >= XD_CONFIG_KEY_MAX) {
      fprintf(err, "explaind: %s %s: line %d is not a key (1..%d printable characters without spaces or commas)\n",
              what, path, lineno, XD_CONFIG_KEY_MAX - 1);
      rc = -1;
    } else if (admin) {
      if (found || cfg->admin_key[0]) {
        fprintf(err, "explaind: %s %s: one admin key only (line %d is another; or --admin-key is set too)\n", what,
                path, lineno);
        rc = -1;
      } else {
        memcpy(cfg->admin_key, k, n);
        cfg->admin_key[n] = '\0';
      }
    } else if (cfg->n_api_keys == XD_CONFIG_MAX_KEYS || used + n + 1 > sizeof cfg->api_keys_buf) {
      fprintf(err, "explaind: %s %s: more than %d keys in all\n", what, path, XD_CONFIG_MAX_KEYS);
      rc = -1;
    } else {
      memcpy(cfg->api_keys_buf + used, k, n);
      cfg->api_keys_buf[used + n] = '\0';
      cfg->api_keys[cfg->n_api_keys++] = cfg->api_keys_buf + used;
      used += n + 1;
    }
    found += rc == 0;
  }
  if (rc == 0 && ferror(f)) {
    fprintf(err, "explaind: %s %s: cannot read it: %s\n", what, path, strerror(errno));
    rc = -1;
  }
  if (rc == 0 && !found) {
    fprintf(err, "explaind: %s %s: holds no key\n", what, path);
    rc = -1;
  }
  explicit_bzero(line, sizeof line);
  fclose(f);
  return rc;
}

/* A TLS file must exist and be readable now, so a typo fails at start with exit 2. */
static int check_readable(const char *path, const char *what, FILE *err) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(err, "explaind: %s %s: cannot read it: %s\n", what, path, strerror(errno));
    return -1;
  }
  int c = fgetc(f);
  fclose(f);
  if (c == EOF) {
    fprintf(err, "explaind: %s %s: the file is empty\n", what, path);
    return -1;
  }
  return 0;
}

/* Applies value to option o; on error prints "<source>: <why>" to err. */
static int apply(xd_config_t *cfg, const option_t *o, const char *value, const char *source, FILE *err) {
  char *base = (char *)cfg;
  uint64_t v = 0;
  switch (o->kind) {
    case K_LISTEN:
      if (xd_config_parse_listen(value, cfg->host, sizeof cfg->host, &cfg->port) == 0) return 0;
      fprintf(err, "explaind: %s: '%s' is not HOST:PORT, :PORT or [V6ADDR]:PORT\n", source, value);
      return -1;
    case K_PATH:
      if (value[0] && strlen(value) < XD_CONFIG_PATH_MAX) {
        snprintf(base + o->offset, XD_CONFIG_PATH_MAX, "%s", value);
        return 0;
      }
      fprintf(err, "explaind: %s: path is empty or too long\n", source);
      return -1;
    case K_LEVEL: {
      int l = xd_log_level_parse(value);
      if (l >= 0) {
        *(int *)(base + o->offset) = l;
        return 0;
      }
      fprintf(err, "explaind: %s: '%s' is not debug, info, warn or error\n", source, value);
      return -1;
    }
    case K_BOOL:
      if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes") || !strcmp(value, "on")) {
        *(int *)(base + o->offset) = 1;
        return 0;
      }
      if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no") || !strcmp(value, "off")) {
        *(int *)(base + o->offset) = 0;
        return 0;
      }
      fprintf(err, "explaind: %s: '%s' must be true or false (or 1/0, yes/no, on/off)\n", source, value);
      return -1;
    case K_KEYS: return set_keys(cfg, value, source, err);
    case K_ORIGINS: return add_origins(cfg, value, source, err);
    case K_KEY:
      if (key_ok(value, strlen(value)) && strlen(value) < XD_CONFIG_KEY_MAX) {
        snprintf(base + o->offset, XD_CONFIG_KEY_MAX, "%s", value);
        return 0;
      }
      fprintf(err, "explaind: %s: a key is 1..%d printable characters without spaces or commas\n", source,
              XD_CONFIG_KEY_MAX - 1);
      return -1;
    default: break;
  }
  int bad = o->kind == K_BYTES ? parse_bytes(value, &v) : parse_u64(value, &v);
  if (bad || v < o->min || v > o->max) {
    fprintf(err, "explaind: %s: '%s' is not an integer in [%" PRIu64 ", %" PRIu64 "]\n", source, value, o->min,
            o->max);
    return -1;
  }
  switch (o->kind) {
    case K_UINT: *(unsigned *)(base + o->offset) = (unsigned)v; break;
    case K_SIZE:
    case K_BYTES: *(size_t *)(base + o->offset) = (size_t)v; break;
    case K_U64: *(uint64_t *)(base + o->offset) = v; break;
    case K_MS: *(int64_t *)(base + o->offset) = (int64_t)v; break;
    default: break;
  }
  return 0;
}

static const option_t *find(const char *flag, size_t len) {
  for (size_t i = 0; i < N_OPTIONS; i++)
    if (strlen(options[i].flag) == len && strncmp(options[i].flag, flag, len) == 0) return &options[i];
  return NULL;
}

/* ---- loading ---------------------------------------------------------------------- */

static void set_defaults(xd_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  xd_config_parse_listen("127.0.0.1:8080", cfg->host, sizeof cfg->host, &cfg->port);
  snprintf(cfg->model_dir, sizeof cfg->model_dir, "./models");
  cfg->threads = 2;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  cfg->workers = n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
  cfg->queue_size = 0; /* 4 x workers, once workers is known */
  cfg->max_body = 8u << 20;
  cfg->request_timeout_ms = 30000;
  cfg->drain_timeout_ms = 30000;
  cfg->conn_timeout_s = 75;
  cfg->max_connections = 4096;
  cfg->read_timeout_s = 10;
  cfg->max_inflight_body = (size_t)256 << 20;
  cfg->log_level = XD_LOG_INFO;
  cfg->inline_predict_rows = 256;
  cfg->max_jobs = 16;
  cfg->max_job_rows = 1000000;
  cfg->job_ttl_ms = 86400000;
  xd_limits_default(&cfg->limits);
}

int xd_config_load(xd_config_t *cfg, int argc, char **argv, FILE *out, FILE *err) {
  set_defaults(cfg);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      xd_config_help(out);
      return XD_CONFIG_EXIT_OK;
    }
    if (strcmp(argv[i], "--version") == 0) {
      fprintf(out, "explaind %s\n", XD_VERSION);
      return XD_CONFIG_EXIT_OK;
    }
  }
  for (size_t i = 0; i < N_OPTIONS; i++) {
    const char *v = getenv(options[i].env);
    if (v && apply(cfg, &options[i], v, options[i].env, err)) return XD_CONFIG_EXIT_USAGE;
  }
  const char *v = getenv("EXPLAIND_TEST_PART_DELAY_MS");
  uint64_t delay;
  if (v && *v) {
    if (parse_u64(v, &delay) || delay > DAY_MS) {
      fprintf(err, "explaind: EXPLAIND_TEST_PART_DELAY_MS: '%s' is not a number of ms\n", v);
      return XD_CONFIG_EXIT_USAGE;
    }
    cfg->test_part_delay_ms = (int64_t)delay;
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0) {
      fprintf(err, "explaind: unexpected argument '%s' (see --help)\n", a);
      return XD_CONFIG_EXIT_USAGE;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
    int is_hc = len == 11 && strncmp(name, "healthcheck", 11) == 0;
    const option_t *o = is_hc ? NULL : find(name, len);
    int bare = o && o->kind == K_BOOL && !eq; /* "--strict-models" alone means true */
    if (bare) value = "true";
    if (!o && !is_hc) {
      fprintf(err, "explaind: unknown flag '%.*s' (see --help)\n", (int)len + 2, a);
      return XD_CONFIG_EXIT_USAGE;
    }
    if (!value) {
      fprintf(err, "explaind: %s needs a value\n", a);
      return XD_CONFIG_EXIT_USAGE;
    }
    if (!eq && !bare) i++;
    char source[80];
    snprintf(source, sizeof source, "--%.*s", (int)len, name);
    if (is_hc) {
      if (!value[0] || strlen(value) >= sizeof cfg->healthcheck) {
        fprintf(err, "explaind: --healthcheck needs a port or a URL\n");
        return XD_CONFIG_EXIT_USAGE;
      }
      snprintf(cfg->healthcheck, sizeof cfg->healthcheck, "%s", value);
    } else if (apply(cfg, o, value, source, err)) {
      return XD_CONFIG_EXIT_USAGE;
    }
  }
  if (cfg->queue_size == 0) cfg->queue_size = 4 * cfg->workers;
  if (cfg->queue_work_rows == 0) /* four requests at --max-work-rows */
    cfg->queue_work_rows = cfg->limits.max_work_rows > UINT64_MAX / 4 ? UINT64_MAX : 4 * cfg->limits.max_work_rows;
  if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
    fprintf(err, "explaind: --tls-cert and --tls-key go together (give both, or neither for plain HTTP)\n");
    return XD_CONFIG_EXIT_USAGE;
  }
  if (cfg->healthcheck[0]) return XD_CONFIG_RUN; /* a probe needs no keys */
  if (cfg->tls_cert[0] && (check_readable(cfg->tls_cert, "--tls-cert", err) || check_readable(cfg->tls_key, "--tls-key", err)))
    return XD_CONFIG_EXIT_USAGE;
  if (cfg->api_key_file[0] && load_key_file(cfg, cfg->api_key_file, 0, err)) return XD_CONFIG_EXIT_USAGE;
  if (cfg->admin_key_file[0] && load_key_file(cfg, cfg->admin_key_file, 1, err)) return XD_CONFIG_EXIT_USAGE;
  return XD_CONFIG_RUN;
}

void xd_config_describe(const xd_config_t *c, char *buf, size_t cap) {
  snprintf(buf, cap,
           "listen=%s%s%s:%d model_dir=%s threads=%u workers=%u queue_size=%u queue_work_rows=%" PRIu64 " max_body=%zu "
           "request_timeout_ms=%" PRId64 " drain_timeout_ms=%" PRId64 " shutdown_delay_ms=%" PRId64
           " conn_timeout_s=%u max_connections=%u max_connections_per_ip=%u read_timeout_s=%u max_inflight_body=%zu"
           " log_level=%s inline_predict_rows=%" PRIu64 " max_rows=%zu max_samples=%zu "
           "max_steps=%zu max_work_rows=%" PRIu64 " api_keys=%zu admin_key=%s cors_origins=%zu tls=%s strict_models=%d"
           " allow_empty=%d%s",
           strchr(c->host, ':') ? "[" : "", c->host[0] ? c->host : "0.0.0.0", strchr(c->host, ':') ? "]" : "",
           c->port, c->model_dir, c->threads, c->workers, c->queue_size, c->queue_work_rows, c->max_body, c->request_timeout_ms,
           c->drain_timeout_ms, c->shutdown_delay_ms, c->conn_timeout_s, c->max_connections, c->max_connections_per_ip,
           c->read_timeout_s, c->max_inflight_body, xd_log_level_name(c->log_level),
           c->inline_predict_rows, c->limits.max_rows, c->limits.max_samples, c->limits.max_steps,
           c->limits.max_work_rows, c->n_api_keys, c->admin_key[0] ? "set" : "none", c->n_cors_origins,
           c->tls_cert[0] ? "on" : "off", c->strict_models, c->allow_empty,
           c->test_part_delay_ms ? " TEST_PART_DELAY" : "");
}
