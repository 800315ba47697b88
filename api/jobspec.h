/* jobspec.h — batch jobs without threads or files: what a job is and how a chunk of it runs.
 *
 * A job is an explanation endpoint's body plus "endpoint" ("/explain/shap"), with its rows
 * in "instances" or as CSV text in "csv" (header = feature names). It runs in chunks of
 * instances [first, first + n): a chunk is the endpoint's own body with those rows, decoded
 * by the endpoint's own decoder, whose random streams start at `first`
 * (xd_job_ops_t.set_first_index), run like any request and encoded by the endpoint's own
 * encoder; the body's per-instance lists ("target": one per row) are cut as the rows
 * are. The answer is then cut into one NDJSON line per instance: {"index": i, then
 * the instance's element of every per-instance member of the answer}. So line i is, bit
 * for bit, instance i's part of the synchronous answer to the whole body, whatever the
 * chunking, the worker count or the machine (docs/jobs.md). The server (server/jobs.c)
 * and the command line (server/cli_jobs.c) share this module.
 */
#ifndef XD_API_JOBSPEC_H
#define XD_API_JOBSPEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/context.h"
#include "api/job.h"
#include "core/status.h"

typedef struct xd_jobs_endpoint xd_jobs_endpoint_t; /* a row of jobspec.c's table */

typedef struct xd_jobspec {
  const xd_jobs_endpoint_t *ep;
  char endpoint[32]; /* "/explain/shap" */
  json_t *body;      /* the endpoint's body, without "endpoint", "csv" and "instances" */
  json_t *instances; /* the rows (an array) */
  size_t total;
  uint64_t row_cost; /* model rows one instance costs (the endpoint's admission estimate) */
  char model_sha256[65]; /* the model's digest at parse: every chunk must run on it */
  char **features; /* the model's feature names, d of them (CSV output) */
  size_t d;
} xd_jobspec_t;

/* Validates a job request (the POST /jobs body): "endpoint" among those that explain
 * instances, rows in "instances" or "csv" (header checked against the model's features),
 * at most max_rows rows, and the endpoint's own options (decoded once on the first row,
 * so a bad option is a 400 at submission, not a failed job). Errors name the field. */
int xd_jobspec_parse(xd_api_t *api, const json_t *req, size_t max_rows, xd_jobspec_t *out, xd_error_t *err);
void xd_jobspec_deinit(xd_jobspec_t *s);

/* The normalized request (CSV rows turned into "instances"): parsing it again gives the
 * same job. New reference. */
json_t *xd_jobspec_request(const xd_jobspec_t *s);

/* Instances per chunk: at most max_chunk, and few enough that a chunk stays within the
 * per-request limits (--max-rows, --max-work-rows), which the endpoint's decoder applies. */
size_t xd_jobspec_chunk_rows(xd_api_t *api, const xd_jobspec_t *s, size_t max_chunk);

/* 1 for a job with one answer for all its rows (permutation importance, partial
 * dependence): its parts are ranges of row blocks, its lines their sums
 * ({"index": part, "importance_shard": ...}, {"index": part, "pdp_shard": ...}), and
 * xd_jobspec_merge turns the lines into the answer. Such endpoints are one table row each
 * in jobspec.c (blocks, shard, merge), shared by the server and the command line. */
int xd_jobspec_whole(const xd_jobspec_t *s);
json_t *xd_jobspec_merge(const xd_jobspec_t *s, const char *ndjson, size_t len, xd_error_t *err);

/* Shard `shard` of n_shards of a job with one answer, on the calling thread: its block
 * sums as a shard document ({"importance_shard": ...} or {"pdp_shard": ...}; new
 * reference). XD_EINVAL for a job answered per instance. */
int xd_jobspec_shard(xd_api_t *api, const xd_jobspec_t *s, size_t shard, size_t n_shards, json_t **out,
                     xd_error_t *err);
/* 1 when text starts as a shard document of a job with one answer. */
int xd_jobspec_is_shard(const char *text, size_t len);
/* The answer from all the shard documents of one job (any order), or NULL with err. */
json_t *xd_jobspec_merge_shards(json_t *const *docs, size_t n, xd_error_t *err);

/* Decodes rows [first, first + n) into work (low priority, streams from first). When the
 * model is no longer the one the job was parsed against (replaced since), XD_ECONFLICT
 * naming "model": a job's lines never mix two versions of a model. */
int xd_jobspec_chunk(xd_api_t *api, const xd_jobspec_t *s, size_t first, size_t n, xd_work_t *work,
                     xd_error_t *err);

/* Appends to *buf (xd_malloc'd, grown) the n NDJSON lines of a chunk's answer. */
int xd_jobspec_lines(const xd_jobspec_t *s, const json_t *answer, size_t first, size_t n, char **buf, size_t *len,
                     size_t *cap, xd_error_t *err);

/* The line of a row that failed on its own: {"index": i, "error": {...}}. */
int xd_jobspec_error_line(size_t index, const xd_error_t *e, char **buf, size_t *len, size_t *cap);

/* Runs rows [first, first + n) on the calling thread and appends their lines; when the
 * chunk fails, runs its rows one by one so that a failing row gets an error line and the
 * others their answers (the command line's runner; the server does the same through
 * its pool). Returns XD_OK, or the error of a cancelled run. */
int xd_jobspec_run_inline(xd_api_t *api, const xd_jobspec_t *s, size_t first, size_t n, const xd_cancel_t *cancel,
                          char **buf, size_t *len, size_t *cap, xd_error_t *err);

/* One CSV row (index, then one attribution per feature; for /predict, index and the
 * prediction) for an NDJSON line; header when line is NULL. Appends to *buf. */
int xd_jobspec_csv_row(const xd_jobspec_t *s, const char *line, size_t line_len, char **buf, size_t *len,
                       size_t *cap);

#endif
