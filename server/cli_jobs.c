/* cli_jobs.c — `explaind jobs run` and `explaind jobs merge` (server/cli_jobs.h).
 *
 * Shards are contiguous ranges: shard I of N explains instances
 * [floor(I * total / N), floor((I + 1) * total / N)), so merging is concatenating the
 * shards in order, and each shard's lines are those the server writes for the same
 * instances (api/jobspec.h: line i depends on i and the request only). A shard writes
 * FILE.partial as it goes (append + fsync per chunk) and renames it to FILE at the end;
 * run again after a crash (a Kubernetes pod restart), it resumes after the last whole
 * line of FILE.partial.
 */
#include "server/cli_jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/context.h"
#include "api/jsonout.h"
#include "api/jobspec.h"
#include "api/registry.h"
#include "api/store.h"
#include "core/alloc.h"
#include "core/mat.h"
#include "core/status.h"
#include "server/jobfile.h"

static const char usage[] =
    "usage: explaind jobs run SPEC.json --model-dir DIR [--shard I/N] --output FILE\n"
    "       explaind jobs merge FILE... --output FILE\n"
    "  run: explains shard I of N (instances floor(I*total/N) .. floor((I+1)*total/N)-1) of the job\n"
    "       SPEC.json (a POST /jobs body) and writes its NDJSON lines to FILE.\n"
    "  merge: concatenates shard files in index order into the file the server writes.\n"
    "  An \"/importance\" (method permutation) or \"/explain/pdp\" spec gives each shard's block sums;\n"
    "  merge turns them into the endpoint's answer. The request limits of a server do not apply here.\n"
    "  I may be given as $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) with --shard env/N.\n";

#define CHUNK 64

/* text plus a newline, written atomically */
static int write_line_atomic(const char *path, const char *text, size_t n) {
  char *b = xd_malloc(n + 2);
  if (!b) return XD_ENOMEM;
  memcpy(b, text, n);
  b[n] = '\n';
  int rc = xd_jobfile_write_atomic(path, b, n + 1);
  xd_free(b);
  return rc;
}

static void log_load(void *ctx, const char *msg) {
  (void)ctx;
  fprintf(stderr, "explaind jobs: %s\n", msg);
}

static int parse_shard(const char *s, size_t *i, size_t *n) {
  char *end;
  const char *slash = strchr(s, '/');
  if (!slash) return -1;
  if (strncmp(s, "env/", 4) == 0) { /* the index from a Kubernetes Indexed Job */
    const char *e = getenv("JOB_COMPLETION_INDEX");
    if (!e || !*e) return -1;
    errno = 0;
    *i = strtoull(e, &end, 10);
    if (errno || *end) return -1;
  } else {
    errno = 0;
    *i = strtoull(s, &end, 10);
    if (errno || end != slash) return -1;
  }
  errno = 0;
  *n = strtoull(slash + 1, &end, 10);
  return errno || *end || *n == 0 || *n > 100000 || *i >= *n ? -1 : 0;
}

/* A job with one answer (permutation importance, partial dependence) in shards: the
 * shard's block sums, one JSON line (docs/jobs.md). */
static int run_whole(xd_api_t *api, const xd_jobspec_t *spec, size_t si, size_t sn, const char *output) {
  json_t *out = NULL;
  xd_error_t err;
  xd_error_clear(&err);
  if (xd_jobspec_shard(api, spec, si, sn, &out, &err) != XD_OK) {
    fprintf(stderr, "explaind jobs: %s%s%s\n", err.field, err.field[0] ? ": " : "", err.text);
    return 1;
  }
  char *text = xd_json_print(out);
  json_decref(out);
  size_t n = text ? strlen(text) : 0;
  int ok = text && write_line_atomic(output, text, n) == XD_OK;
  if (!ok) fprintf(stderr, "explaind jobs: %s: %s\n", output, strerror(errno));
  else fprintf(stderr, "explaind jobs: %s shard %zu/%zu written to %s\n", spec->endpoint, si, sn, output);
  xd_free(text);
  return ok ? 0 : 1;
}

static int cmd_run(int argc, char **argv) {
  const char *spec_path = NULL, *model_dir = NULL, *output = NULL, *shard = "0/1";
  for (int a = 1; a < argc; a++) {
    if (strcmp(argv[a], "--model-dir") == 0 && a + 1 < argc) model_dir = argv[++a];
    else if (strcmp(argv[a], "--output") == 0 && a + 1 < argc) output = argv[++a];
    else if (strcmp(argv[a], "--shard") == 0 && a + 1 < argc) shard = argv[++a];
    else if (argv[a][0] != '-' && !spec_path) spec_path = argv[a];
    else return fprintf(stderr, "%s", usage), 2;
  }
  size_t si, sn;
  if (!spec_path || !model_dir || !output) return fprintf(stderr, "%s", usage), 2;
  if (parse_shard(shard, &si, &sn) != 0) {
    fprintf(stderr, "explaind jobs: --shard %s: give I/N with 0 <= I < N (or env/N with JOB_COMPLETION_INDEX set)\n", shard);
    return 2;
  }
  xd_blas_init();
  json_object_seed(0);
  char *text = NULL;
  size_t len = 0;
  if (xd_jobfile_read(spec_path, (size_t)1 << 34, &text, &len) != XD_OK) {
    fprintf(stderr, "explaind jobs: cannot read %s: %s\n", spec_path, strerror(errno));
    return 1;
  }
  json_error_t jerr;
  json_t *req = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  xd_free(text);
  if (!json_is_object(req)) {
    fprintf(stderr, "explaind jobs: %s: not a JSON object (%s, line %d)\n", spec_path, jerr.text, jerr.line);
    json_decref(req);
    return 1;
  }
  xd_registry_t *reg = NULL;
  xd_api_t *api = NULL;
  xd_api_config_t acfg = {.model_dir = model_dir};
  /* No request limits: the spec is the operator's own, and a shard is the way past the
   * limits a server puts on one request (rows, background, model rows) */
  xd_limits_default(&acfg.limits);
  acfg.limits.max_rows = 100000000;
  acfg.limits.max_samples = 100000000;
  acfg.limits.max_steps = 1000000;
  acfg.limits.max_work_rows = 1000000000000000ULL;
  acfg.limits.max_background = 100000000;
  acfg.limits.max_nsamples = 100000000;
  acfg.limits.max_repeats = 1000000;
  acfg.limits.max_grid = 1000000;
  int status = 1, fd = -1;
  xd_jobspec_t spec = {0};
  xd_error_t err;
  xd_error_clear(&err);
  char *buf = NULL, partial[4200];
  size_t cap = 0;
  snprintf(partial, sizeof partial, "%s.partial", output);
  if (xd_registry_new(&reg) != XD_OK || xd_api_new(&acfg, reg, &api) != XD_OK) goto done;
  if (xd_api_load_dir(api, model_dir, log_load, NULL) < 0) {
    fprintf(stderr, "explaind jobs: cannot read --model-dir %s\n", model_dir);
    goto done;
  }
  if (xd_jobspec_parse(api, req, (size_t)1 << 40, &spec, &err) != XD_OK) {
    fprintf(stderr, "explaind jobs: %s: %s%s%s\n", spec_path, err.field, err.field[0] ? ": " : "", err.text);
    goto done;
  }
  if (xd_jobspec_whole(&spec)) {
    status = run_whole(api, &spec, si, sn, output);
    goto done;
  }
  size_t lo = si * spec.total / sn, hi = (si + 1) * spec.total / sn, next = lo;
  /* resume after the last whole line of a previous run */
  if (xd_jobfile_read(partial, (size_t)1 << 40, &text, &len) == XD_OK) {
    size_t good = 0;
    next = lo + xd_jobfile_scan(text, len, lo, &good);
    xd_free(text);
    if (truncate(partial, (off_t)good) != 0) goto io;
  }
  fd = open(partial, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) goto io;
  while (next < hi) {
    size_t c = xd_jobspec_chunk_rows(api, &spec, CHUNK), n = hi - next < c ? hi - next : c, blen = 0;
    if (xd_jobspec_run_inline(api, &spec, next, n, NULL, &buf, &blen, &cap, &err) != XD_OK) {
      fprintf(stderr, "explaind jobs: instances %zu..%zu: %s\n", next, next + n - 1, err.text);
      goto done;
    }
    if (xd_jobfile_append(fd, buf, blen) != XD_OK) goto io;
    next += n;
  }
  close(fd);
  fd = -1;
  if (rename(partial, output) != 0) goto io;
  fprintf(stderr, "explaind jobs: shard %zu/%zu: instances [%zu, %zu) of %zu written to %s\n", si, sn, lo, hi, spec.total, output);
  status = 0;
  goto done;
io:
  fprintf(stderr, "explaind jobs: %s: %s\n", partial, strerror(errno));
done:
  if (fd >= 0) close(fd);
  xd_free(buf);
  xd_jobspec_deinit(&spec);
  json_decref(req);
  xd_api_free(api);
  xd_registry_free(reg);
  return status;
}

typedef struct shard_file {
  const char *path;
  char *text;
  size_t len;
  long long first; /* index of its first line, -1 when empty */
} shard_file_t;

static int by_first(const void *a, const void *b) {
  long long x = ((const shard_file_t *)a)->first, y = ((const shard_file_t *)b)->first;
  return x < y ? -1 : x > y;
}

/* Shards of a job with one answer: the merged answer, one JSON line. */
static int merge_whole(const shard_file_t *f, size_t n, const char *output) {
  json_t **docs = xd_calloc(n, sizeof *docs), *out = NULL;
  int status = 1;
  xd_error_t err;
  xd_error_clear(&err);
  for (size_t i = 0; docs && i < n; i++)
    if (!(docs[i] = json_loadb(f[i].text, f[i].len, 0, NULL))) {
      fprintf(stderr, "explaind jobs: %s: not a shard of a job with one answer (not JSON)\n", f[i].path);
      goto done;
    }
  if (docs && !(out = xd_jobspec_merge_shards(docs, n, &err))) {
    fprintf(stderr, "explaind jobs: %s%s%s\n", err.field, err.field[0] ? ": " : "", err.text);
    goto done;
  }
  char *text = out ? xd_json_print(out) : NULL;
  if (text && write_line_atomic(output, text, strlen(text)) == XD_OK) {
    fprintf(stderr, "explaind jobs: the answer from %zu shard(s) written to %s\n", n, output);
    status = 0;
  }
  xd_free(text);
done:
  for (size_t i = 0; docs && i < n; i++) json_decref(docs[i]);
  xd_free(docs);
  json_decref(out);
  return status;
}

static int cmd_merge(int argc, char **argv) {
  const char *output = NULL;
  shard_file_t *f = xd_calloc((size_t)argc, sizeof *f);
  size_t n = 0;
  int status = 1;
  if (!f) return 1;
  for (int a = 1; a < argc; a++) {
    if (strcmp(argv[a], "--output") == 0 && a + 1 < argc) output = argv[++a];
    else if (argv[a][0] != '-') f[n++].path = argv[a];
    else {
      xd_free(f);
      return fprintf(stderr, "%s", usage), 2;
    }
  }
  if (!output || n == 0) {
    xd_free(f);
    return fprintf(stderr, "%s", usage), 2;
  }
  for (size_t i = 0; i < n; i++) {
    if (xd_jobfile_read(f[i].path, (size_t)1 << 40, &f[i].text, &f[i].len) != XD_OK) {
      fprintf(stderr, "explaind jobs: cannot read %s\n", f[i].path);
      goto done;
    }
    f[i].first = f[i].len ? xd_jobfile_line_index(f[i].text, f[i].len) : -1;
    if (f[i].len && f[i].first < 0 && !xd_jobspec_is_shard(f[i].text, f[i].len)) {
      fprintf(stderr, "explaind jobs: %s: not a shard's NDJSON (its first line has no \"index\")\n", f[i].path);
      goto done;
    }
  }
  if (xd_jobspec_is_shard(f[0].text, f[0].len)) {
    status = merge_whole(f, n, output);
    goto done;
  }
  qsort(f, n, sizeof *f, by_first);
  size_t total_len = 0;
  unsigned long long next = 0;
  for (size_t i = 0; i < n; i++) {
    if (f[i].first < 0) continue; /* an empty shard (more shards than instances) */
    size_t good = 0, lines = xd_jobfile_scan(f[i].text, f[i].len, next, &good);
    if (good != f[i].len || lines == 0) {
      fprintf(stderr, "explaind jobs: %s: expected instance %llu next (after line %zu of it the indexes do not follow, "
                      "or a line is cut): a shard is missing or unfinished\n", f[i].path, next + lines, lines);
      goto done;
    }
    next += lines;
    total_len += f[i].len;
  }
  char *all = xd_malloc(total_len + 1), *p = all;
  if (!all) goto done;
  for (size_t i = 0; i < n; i++) {
    memcpy(p, f[i].text, f[i].len);
    p += f[i].len;
  }
  if (xd_jobfile_write_atomic(output, all, total_len) != XD_OK) fprintf(stderr, "explaind jobs: %s: %s\n", output, strerror(errno));
  else {
    fprintf(stderr, "explaind jobs: %llu instances from %zu shard(s) written to %s\n", next, n, output);
    status = 0;
  }
  xd_free(all);
done:
  for (size_t i = 0; i < n; i++) xd_free(f[i].text);
  xd_free(f);
  return status;
}

int xd_cli_jobs(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "run") == 0) return cmd_run(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "merge") == 0) return cmd_merge(argc - 1, argv + 1);
  fprintf(stderr, "%s", usage);
  return 2;
}
