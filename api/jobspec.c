/* jobspec.c — batch jobs as chunks of an endpoint's own request (api/jobspec.h). */
#include "api/jobspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/alloc.h"
#include "api/endpoints.h"
#include "api/importance.h"
#include "api/json.h"
#include "api/jsonout.h"
#include "core/alloc.h"
#include "core/dataset.h"

/* How an attribution row of the CSV output is read from a line. */
typedef enum { ATTR_ROW, ATTR_LIME, ATTR_VALUE } attr_kind_t;

/* An endpoint with one answer for all its rows that decomposes over row blocks: a part
 * (or a shard) evaluates a range of blocks and reports their sums, its line
 * {"index": part, key: sums}; merge adds the sums in block order into the answer. */
typedef struct whole_ops {
  const char *key; /* the member of a part's line: "importance_shard" */
  int (*blocks)(xd_api_t *api, const json_t *body, size_t *n_blocks, xd_error_t *err);
  int (*shard)(xd_api_t *api, const json_t *body, size_t shard, size_t n_shards, json_t **out, xd_error_t *err);
  json_t *(*merge)(json_t *const *shards, size_t n, xd_error_t *err);
  xd_job_ops_t part_ops; /* a part as pool work */
} whole_ops_t;

struct xd_jobs_endpoint {
  const char *path;
  xd_endpoint_decode_fn decode;
  const char *per_instance[12]; /* members of the answer with one element per instance */
  const char *per_row[4];      /* fields of the body that may hold one element per instance */
  const char *attr;            /* the member the CSV output reads */
  attr_kind_t attr_kind;
  const whole_ops_t *whole; /* one answer for all rows: parts are row blocks, lines their sums */
};

/* ---- one answer from row blocks: a part is a range of 16 blocks of 1,024 rows --------------- */

#define BLOCKS_PER_PART 16

typedef struct whole_part {
  const whole_ops_t *ops;
  xd_api_t *api;
  json_t *body;
  size_t part, n_parts;
  json_t *out;
} whole_part_t;

static int whole_part_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  whole_part_t *p = state;
  (void)part, (void)cancel;
  return p->ops->shard(p->api, p->body, p->part, p->n_parts, &p->out, err);
}
static json_t *whole_part_encode(void *state, xd_error_t *err) {
  whole_part_t *p = state;
  json_t *o = p->out;
  p->out = NULL;
  if (!o) xd_error_set(err, XD_EINTERNAL, NULL, "no sums");
  return o;
}
static void whole_part_free(void *state) {
  whole_part_t *p = state;
  json_decref(p->body);
  json_decref(p->out);
  xd_free(p);
}
static const whole_ops_t importance_whole = {
    "importance_shard", xd_importance_shard_blocks, xd_importance_shard, xd_importance_merge,
    {.endpoint = "importance", .run = whole_part_run, .encode = whole_part_encode, .free = whole_part_free}};
static const whole_ops_t pdp_whole = {
    "pdp_shard", xd_pdp_shard_blocks, xd_pdp_shard, xd_pdp_merge,
    {.endpoint = "explain_pdp", .run = whole_part_run, .encode = whole_part_encode, .free = whole_part_free}};

/* The endpoints a job may run: those whose answer has one part per instance, and those
 * with one answer from per-block sums (permutation importance, partial dependence). */
static const xd_jobs_endpoint_t endpoints[] = {
    /* "segments": image LIME's per-instance maps; "target": per-instance targets; an image
     * answer's "images" with "render", a text answer's "tokens" */
    {"/explain/lime", xd_lime_decode, {"explanations", "images", "tokens"}, {"target", "segments"}, "explanations", ATTR_LIME, NULL},
    /* tabular members, then an image model's ("outputs", "explanations": its segments,
     * "images" with "render"; its "nsamples" is one number for all), a text model's
     * ("tokens", "words") */
    {"/explain/shap", xd_shap_decode,
     {"targets", "expected_value", "shap_values", "model_output", "efficiency_gap", "nsamples", "outputs", "explanations",
      "images", "tokens", "words"},
     {"target", "segments"}, "shap_values", ATTR_ROW, NULL},
    /* tabular members, then an image model's ("cam", "heatmaps"; "images", "legends" with
     * "render") and a text model's ("tokens", "offsets") */
    {"/explain/gradient", xd_gradient_decode,
     {"targets", "attributions", "convergence_delta", "cam", "heatmaps", "images", "legends", "tokens", "offsets"},
     {"target"}, "attributions", ATTR_ROW, NULL},
    /* tabular, image and text kinds' per-instance members; "images" only with "render" */
    {"/explain/occlusion", xd_occlusion_decode,
     {"targets", "attributions", "heatmaps", "images", "legends", "tokens", "offsets"},
     {"target"}, "attributions", ATTR_ROW, NULL},
    {"/predict", xd_predict_decode, {"predictions", "label_indices", "probabilities"}, {NULL}, "predictions", ATTR_VALUE,
     NULL},
    {"/importance", xd_importance_decode, {NULL}, {NULL}, NULL, ATTR_VALUE, &importance_whole},
    {"/explain/pdp", xd_pdp_decode, {NULL}, {NULL}, NULL, ATTR_VALUE, &pdp_whole},
};

/* A per-row field holds one element per instance when it nests this deep along its first
 * elements ("target": any list; "segments": a list of [H][W] maps, not one map). */
static const struct {
  const char *name;
  int depth;
} per_row_depth[] = {{"target", 1}, {"segments", 3}};

/* name [name, end) is a per-row field's */
static int is_per_row_name(const char *name, const char *end) {
  for (size_t k = 0; k < sizeof per_row_depth / sizeof *per_row_depth; k++)
    if (strlen(per_row_depth[k].name) == (size_t)(end - name) && strncmp(per_row_depth[k].name, name, (size_t)(end - name)) == 0)
      return 1;
  return 0;
}

static int is_per_row(const char *name, const json_t *v) {
  int depth = 0;
  for (size_t k = 0; k < sizeof per_row_depth / sizeof *per_row_depth; k++)
    if (strcmp(per_row_depth[k].name, name) == 0) depth = per_row_depth[k].depth;
  for (int l = 0; l < depth; l++, v = json_array_get(v, 0))
    if (!json_is_array(v)) return 0;
  return depth > 0;
}
#define N_ENDPOINTS (sizeof endpoints / sizeof *endpoints)

void xd_jobspec_deinit(xd_jobspec_t *s) {
  json_decref(s->body);
  json_decref(s->instances);
  for (size_t f = 0; s->features && f < s->d; f++) xd_free(s->features[f]);
  xd_free(s->features);
  memset(s, 0, sizeof *s);
}

/* CSV text -> rows of numbers in the model's feature order (categories as codes). */
static json_t *csv_rows(const xd_model_t *m, const char *text, size_t len, size_t max_rows, xd_error_t *err) {
  xd_csv_t csv;
  if (xd_csv_parse(text, len, max_rows, &csv, err) != XD_OK) {
    if (err->field[0] == '\0') snprintf(err->field, sizeof err->field, "csv");
    return NULL;
  }
  xd_dataset_t ds;
  int rc = xd_dataset_from_csv(&csv, xd_model_features(m), xd_model_n_features(m), NULL, NULL, 0, "csv", &ds, err);
  xd_csv_deinit(&csv);
  if (rc != XD_OK) return NULL;
  const xd_feature_t *F = xd_model_features(m);
  json_t *rows = json_array();
  for (size_t i = 0; rows && i < ds.n; i++) {
    json_t *r = json_array();
    if (!r || json_array_append_new(rows, r)) break;
    for (size_t f = 0; f < ds.d; f++) {
      double v = ds.X[i * ds.d + f];
      json_array_append_new(r, F[f].kind == XD_FEAT_CATEGORICAL ? json_integer((json_int_t)v) : xd_json_real(v));
    }
  }
  xd_dataset_deinit(&ds);
  if (!rows) xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  return rows;
}

/* A job with one answer: the endpoint's body, its rows in "data" as in a request, or
 * given as a job's rows ("instances", "csv"), which become "data.instances". */
static int whole_parse(xd_api_t *api, const json_t *req, size_t max_rows, xd_jobspec_t *out, xd_error_t *err) {
  int rc = XD_OK;
  out->body = json_deep_copy(req);
  if (!out->body) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  json_object_del(out->body, "endpoint");
  xd_model_entry_t *entry = xd_api_model(api, out->body, err);
  if (!entry) {
    rc = err->code ? err->code : XD_ENOTFOUND;
    goto done;
  }
  json_t *inst = json_object_get(req, "instances"), *csv = json_object_get(req, "csv");
  if (inst && csv) {
    rc = xd_error_set(err, XD_EINVAL, "instances", "give the rows in \"instances\" or in \"csv\" (one of them)");
    goto done;
  }
  if (inst || csv) {
    json_t *data = json_object_get(out->body, "data"), *rows = NULL;
    if (data && (!json_is_object(data) || json_object_get(data, "instances"))) {
      rc = xd_error_set(err, XD_EINVAL, csv ? "csv" : "instances", "the rows are in \"data\" already: give them once");
      goto done;
    }
    if (csv && !json_is_string(csv)) {
      rc = xd_error_set(err, XD_EINVAL, "csv", "must be CSV text whose header names the model's features");
      goto done;
    }
    if (csv && !(rows = csv_rows(entry->model, json_string_value(csv), json_string_length(csv), max_rows + 1, err))) {
      rc = err->code ? err->code : XD_EINVAL;
      if (rc == XD_ETOOBIG) snprintf(err->field, sizeof err->field, "csv");
      goto done;
    }
    if (!csv) rows = json_incref(inst);
    if (!data) json_object_set_new(out->body, "data", data = json_object());
    if (!data || json_object_set_new(data, "instances", rows)) {
      rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
      goto done;
    }
    json_object_del(out->body, "instances");
    json_object_del(out->body, "csv");
  }
  size_t nb = 0, rows = json_array_size(json_object_get(json_object_get(out->body, "data"), "instances"));
  const char *rows_field = csv ? "csv" : inst ? "instances" : "data.instances";
  if (rows > max_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, rows_field, "%zu rows is more than the limit of %zu (--max-job-rows)", rows, max_rows);
    goto done;
  }
  rc = out->ep->whole->blocks(api, out->body, &nb, err);
  if (rc != XD_OK && (csv || inst) && strncmp(err->field, "data.instances", 14) == 0) { /* name the rows as given */
    char f[XD_ERROR_FIELD_MAX];
    snprintf(f, sizeof f, "%s%s", rows_field, csv ? "" : err->field + 14);
    snprintf(err->field, sizeof err->field, "%s", f);
  }
  out->total = (nb + BLOCKS_PER_PART - 1) / BLOCKS_PER_PART;
  out->instances = json_array();
  snprintf(out->model_sha256, sizeof out->model_sha256, "%s", entry->sha256);
done:
  if (entry) xd_model_entry_release(entry);
  if (rc != XD_OK) xd_jobspec_deinit(out);
  return rc;
}

int xd_jobspec_parse(xd_api_t *api, const json_t *req, size_t max_rows, xd_jobspec_t *out, xd_error_t *err) {
  memset(out, 0, sizeof *out);
  json_t *ep = json_object_get(req, "endpoint");
  char valid[160] = "";
  for (size_t i = 0; i < N_ENDPOINTS; i++)
    snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%s", i ? ", " : "", endpoints[i].path);
  if (!json_is_string(ep)) return xd_error_set(err, XD_EINVAL, "endpoint", "required: one of %s", valid);
  for (size_t i = 0; i < N_ENDPOINTS && !out->ep; i++)
    if (strcmp(json_string_value(ep), endpoints[i].path) == 0) out->ep = &endpoints[i];
  if (!out->ep)
    return xd_error_set(err, XD_EINVAL, "endpoint", "'%.60s' cannot run as a job: give one of %s", json_string_value(ep),
                        valid);
  snprintf(out->endpoint, sizeof out->endpoint, "%s", out->ep->path);
  if (out->ep->whole) return whole_parse(api, req, max_rows, out, err);
  if (json_object_get(req, "instance"))
    return xd_error_set(err, XD_EINVAL, "instance", "a job takes its rows in \"instances\" or \"csv\"");
  json_t *inst = json_object_get(req, "instances"), *csv = json_object_get(req, "csv");
  if (!!inst == !!csv) return xd_error_set(err, XD_EINVAL, "instances", "give the rows in \"instances\" or in \"csv\" (one of them)");
  xd_model_entry_t *entry = xd_api_model(api, req, err);
  if (!entry) return err->code;
  const xd_model_t *m = entry->model;
  int rc = XD_OK;
  if (csv) {
    if (!json_is_string(csv)) {
      rc = xd_error_set(err, XD_EINVAL, "csv", "must be CSV text whose header names the model's features");
      goto done;
    }
    /* one row over the limit is enough to tell */
    out->instances = csv_rows(m, json_string_value(csv), json_string_length(csv), max_rows + 1, err);
    if (!out->instances) {
      rc = err->code ? err->code : XD_EINVAL;
      if (rc == XD_ETOOBIG) snprintf(err->field, sizeof err->field, "csv");
      goto done;
    }
  } else {
    if (!json_is_array(inst) || json_array_size(inst) == 0) {
      rc = xd_error_set(err, XD_EINVAL, "instances", "must be a non-empty list of rows");
      goto done;
    }
    out->instances = json_incref(inst);
  }
  out->total = json_array_size(out->instances);
  if (out->total == 0) {
    rc = xd_error_set(err, XD_EINVAL, csv ? "csv" : "instances", "has no rows");
    goto done;
  }
  if (out->total > max_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, csv ? "csv" : "instances", "%zu rows is more than the limit of %zu (--max-job-rows)",
                      out->total, max_rows);
    goto done;
  }
  out->body = json_deep_copy(req);
  if (!out->body) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  json_object_del(out->body, "endpoint");
  json_object_del(out->body, "csv");
  json_object_del(out->body, "instances");
  snprintf(out->model_sha256, sizeof out->model_sha256, "%s", entry->sha256);
  out->d = xd_model_n_features(m);
  out->features = xd_calloc(out->d, sizeof *out->features);
  for (size_t f = 0; out->features && f < out->d; f++) out->features[f] = xd_strdup(xd_model_features(m)[f].name);
  for (size_t f = 0; f < 4 && out->ep->per_row[f]; f++) {
    const char *name = out->ep->per_row[f];
    json_t *v = json_object_get(out->body, name);
    if (is_per_row(name, v) && json_array_size(v) != out->total) {
      rc = xd_error_set(err, XD_EINVAL, name, "a list needs one element per instance (%zu), got %zu", out->total,
                        json_array_size(v));
      goto done;
    }
  }
  /* The endpoint's own options, checked now on the first row. */
  xd_work_t w;
  if ((rc = xd_jobspec_chunk(api, out, 0, 1, &w, err)) == XD_OK) {
    out->row_cost = w.cost_rows;
    w.ops->free(w.state);
  }
  else if (strncmp(err->field, "instances[0]", 12) == 0 && csv)
    snprintf(err->field, sizeof err->field, "csv");
done:
  xd_model_entry_release(entry);
  if (rc != XD_OK) xd_jobspec_deinit(out);
  return rc;
}

json_t *xd_jobspec_request(const xd_jobspec_t *s) {
  json_t *r = json_deep_copy(s->body);
  if (!r) return NULL;
  json_object_set_new(r, "endpoint", json_string(s->endpoint));
  if (!s->ep->whole) json_object_set(r, "instances", s->instances);
  return r;
}

int xd_jobspec_whole(const xd_jobspec_t *s) { return s->ep && s->ep->whole; }

json_t *xd_jobspec_merge(const xd_jobspec_t *s, const char *ndjson, size_t len, xd_error_t *err) {
  json_t **lines = xd_calloc(s->total ? s->total : 1, sizeof *lines), *out = NULL;
  size_t n = 0;
  for (size_t p = 0; lines && p < len && n < s->total;) {
    const char *nl = memchr(ndjson + p, '\n', len - p);
    size_t l = nl ? (size_t)(nl - (ndjson + p)) : len - p;
    if (!(lines[n] = json_loadb(ndjson + p, l, 0, NULL))) break;
    n++;
    p += l + 1;
  }
  if (!lines) xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  else if (n != s->total) xd_error_set(err, XD_EINTERNAL, NULL, "%zu of %zu parts' sums are readable", n, s->total);
  else out = s->ep->whole->merge(lines, n, err);
  for (size_t i = 0; lines && i < n; i++) json_decref(lines[i]);
  xd_free(lines);
  return out;
}

static int same_model(xd_api_t *api, const xd_jobspec_t *s, xd_error_t *err);

int xd_jobspec_shard(xd_api_t *api, const xd_jobspec_t *s, size_t shard, size_t n_shards, json_t **out,
                     xd_error_t *err) {
  if (!s->ep->whole) return xd_error_set(err, XD_EINVAL, "endpoint", "%s answers per instance: its shards are lines", s->endpoint);
  if (s->model_sha256[0] && same_model(api, s, err) != XD_OK) return XD_ECONFLICT;
  return s->ep->whole->shard(api, s->body, shard, n_shards, out, err);
}

/* The endpoint row whose shard documents have key (the first member of text), or NULL. */
static const whole_ops_t *whole_of_text(const char *text, size_t len) {
  for (size_t i = 0; i < N_ENDPOINTS; i++) {
    const whole_ops_t *w = endpoints[i].whole;
    size_t k = w ? strlen(w->key) : 0;
    if (w && len > k + 4 && text[0] == '{' && text[1] == '"' && memcmp(text + 2, w->key, k) == 0 && text[k + 2] == '"' &&
        text[k + 3] == ':')
      return w;
  }
  return NULL;
}

int xd_jobspec_is_shard(const char *text, size_t len) { return whole_of_text(text, len) != NULL; }

json_t *xd_jobspec_merge_shards(json_t *const *docs, size_t n, xd_error_t *err) {
  for (size_t i = 0; n && i < N_ENDPOINTS; i++)
    if (endpoints[i].whole && json_object_get(docs[0], endpoints[i].whole->key)) return endpoints[i].whole->merge(docs, n, err);
  return xd_error_set(err, XD_EINVAL, NULL, "not the shards of a job with one answer"), NULL;
}

size_t xd_jobspec_chunk_rows(xd_api_t *api, const xd_jobspec_t *s, size_t max_chunk) {
  if (s->ep->whole) return 1;
  const xd_limits_t *lim = xd_api_limits(api);
  size_t n = max_chunk < lim->max_rows ? max_chunk : lim->max_rows;
  if (s->row_cost > 0 && (uint64_t)n * s->row_cost > lim->max_work_rows) n = (size_t)(lim->max_work_rows / s->row_cost);
  return n ? n : 1;
}

/* XD_OK when the registry's model of the job still has the job's digest. */
static int same_model(xd_api_t *api, const xd_jobspec_t *s, xd_error_t *err) {
  const char *name = json_string_value(json_object_get(s->body, "model"));
  xd_model_entry_t *e = name ? xd_registry_get(xd_api_registry(api), name) : NULL;
  int same = e && strcmp(e->sha256, s->model_sha256) == 0;
  xd_model_entry_release(e);
  return same ? XD_OK
              : xd_error_set(err, XD_ECONFLICT, "model", "model '%s' was replaced or removed since the job started: "
                             "its lines would mix two models (submit the job again)", name ? name : "");
}

int xd_jobspec_chunk(xd_api_t *api, const xd_jobspec_t *s, size_t first, size_t n, xd_work_t *work,
                     xd_error_t *err) {
  if (s->model_sha256[0] && same_model(api, s, err) != XD_OK) return XD_ECONFLICT;
  if (s->ep->whole) { /* parts [first, first + n): one at a time */
    whole_part_t *p = xd_calloc(1, sizeof *p);
    if (!p) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    *p = (whole_part_t){s->ep->whole, api, json_incref(s->body), first, s->total, NULL};
    memset(work, 0, sizeof *work);
    work->ops = &s->ep->whole->part_ops;
    work->state = p;
    work->n_parts = 1;
    work->cost_rows = 1;
    work->low_priority = 1;
    (void)n;
    return XD_OK;
  }
  json_t *body = json_copy(s->body), *rows = json_array();
  int rc = XD_OK;
  if (!body || !rows) rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  for (size_t i = first; rc == XD_OK && i < first + n && i < s->total; i++)
    if (json_array_append(rows, json_array_get(s->instances, i))) rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if (rc == XD_OK && json_object_set(body, "instances", rows)) rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  /* per-instance fields ("target": [...] one per row) are cut as the rows are */
  for (size_t f = 0; rc == XD_OK && f < 4 && s->ep->per_row[f]; f++) {
    json_t *v = json_object_get(s->body, s->ep->per_row[f]), *part = NULL;
    if (!is_per_row(s->ep->per_row[f], v)) continue;
    if (!(part = json_array())) rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    for (size_t i = first; rc == XD_OK && i < first + n && i < s->total; i++)
      if (json_array_append(part, json_array_get(v, i))) rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    if (rc == XD_OK && json_object_set(body, s->ep->per_row[f], part)) rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    json_decref(part);
  }
  memset(work, 0, sizeof *work);
  work->request_rows = s->total; /* cut each row's work as the whole request would */
  if (rc == XD_OK) rc = s->ep->decode(api, body, work, err);
  json_decref(body);
  json_decref(rows);
  if (rc != XD_OK) return rc;
  if (s->model_sha256[0] && same_model(api, s, err) != XD_OK) { /* replaced while decoding */
    work->ops->free(work->state);
    memset(work, 0, sizeof *work);
    return XD_ECONFLICT;
  }
  if (work->ops->set_first_index) work->ops->set_first_index(work->state, first);
  work->low_priority = 1;
  return XD_OK;
}

static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
  if (*len + n + 1 > *cap) {
    size_t c = *cap ? *cap : 4096;
    while (c < *len + n + 1) c *= 2;
    char *nb = xd_realloc(*buf, c);
    if (!nb) return XD_ENOMEM;
    *buf = nb;
    *cap = c;
  }
  memcpy(*buf + *len, s, n);
  *len += n;
  (*buf)[*len] = '\0';
  return XD_OK;
}

static int append_json_line(json_t *o, char **buf, size_t *len, size_t *cap) {
  char *t = xd_json_print(o);
  if (!t) return XD_ENOMEM;
  int rc = append(buf, len, cap, t, strlen(t));
  if (rc == XD_OK) rc = append(buf, len, cap, "\n", 1);
  xd_free(t);
  return rc;
}

int xd_jobspec_lines(const xd_jobspec_t *s, const json_t *answer, size_t first, size_t n, char **buf, size_t *len,
                     size_t *cap, xd_error_t *err) {
  if (s->ep->whole) { /* {"index": part, "importance_shard": {...}} */
    json_t *o = json_object();
    if (!o) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    json_object_set_new(o, "index", json_integer((json_int_t)first));
    json_object_set(o, s->ep->whole->key, json_object_get(answer, s->ep->whole->key));
    int rc = append_json_line(o, buf, len, cap);
    json_decref(o);
    return rc == XD_OK ? XD_OK : xd_error_set(err, rc, NULL, "out of memory");
  }
  for (size_t k = 0; k < n; k++) {
    json_t *o = json_object();
    if (!o) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    json_object_set_new(o, "index", json_integer((json_int_t)(first + k)));
    for (size_t m = 0; m < 12 && s->ep->per_instance[m]; m++) {
      json_t *v = json_object_get(answer, s->ep->per_instance[m]);
      /* optional members (probabilities of a regressor, IG's delta); a member that is one
       * value for all instances in this kind of model (an image SHAP's "nsamples") is left
       * out as the answer's other shared members */
      if (!v || !json_is_array(v)) continue;
      if (json_array_size(v) != n) {
        json_decref(o);
        return xd_error_set(err, XD_EINTERNAL, s->ep->per_instance[m], "the answer does not have one element per instance");
      }
      json_object_set(o, s->ep->per_instance[m], json_array_get(v, k));
    }
    int rc = append_json_line(o, buf, len, cap);
    json_decref(o);
    if (rc != XD_OK) return xd_error_set(err, rc, NULL, "out of memory");
  }
  return XD_OK;
}

int xd_jobspec_error_line(size_t index, const xd_error_t *e, char **buf, size_t *len, size_t *cap) {
  json_t *o = json_object(), *eo = json_object();
  if (!o || !eo) {
    json_decref(o);
    json_decref(eo);
    return XD_ENOMEM;
  }
  json_object_set_new(o, "index", json_integer((json_int_t)index));
  json_object_set_new(eo, "code", json_string(xd_api_error_code(e->code)));
  char field[XD_ERROR_FIELD_MAX + 32];
  /* a row run alone is "instances[0]" ("target[0]") to its decoder: name it by its place
   * in the job */
  const char *br = strchr(e->field, '[');
  int per_row = br && strncmp(br, "[0]", 3) == 0 && (strncmp(e->field, "instances[", 10) == 0 || is_per_row_name(e->field, br));
  if (per_row) snprintf(field, sizeof field, "%.*s[%zu]%s", (int)(br - e->field), e->field, index, br + 3);
  else snprintf(field, sizeof field, "%s", e->field);
  if (field[0]) json_object_set_new(eo, "field", json_string(field));
  json_object_set_new(eo, "message", json_string(e->text));
  json_object_set_new(o, "error", eo);
  int rc = append_json_line(o, buf, len, cap);
  json_decref(o);
  return rc;
}

static int run_one(xd_api_t *api, const xd_jobspec_t *s, size_t first, size_t n, const xd_cancel_t *cancel, char **buf,
                   size_t *len, size_t *cap, xd_error_t *err) {
  xd_work_t w;
  int rc = xd_jobspec_chunk(api, s, first, n, &w, err);
  if (rc != XD_OK) return rc;
  json_t *ans = xd_work_run_inline(&w, cancel, err);
  w.ops->free(w.state);
  if (!ans) return err->code ? err->code : XD_EINTERNAL;
  rc = xd_jobspec_lines(s, ans, first, n, buf, len, cap, err);
  json_decref(ans);
  return rc;
}

static int cancelled(const xd_cancel_t *c) { return xd_cancel_check(c) != XD_OK; }

int xd_jobspec_run_inline(xd_api_t *api, const xd_jobspec_t *s, size_t first, size_t n, const xd_cancel_t *cancel,
                          char **buf, size_t *len, size_t *cap, xd_error_t *err) {
  size_t mark = *len;
  xd_error_clear(err);
  if (run_one(api, s, first, n, cancel, buf, len, cap, err) == XD_OK) return XD_OK;
  if (cancelled(cancel) || err->code == XD_ENOMEM || err->code == XD_ECONFLICT) return err->code;
  *len = mark; /* run the rows alone: only the failing ones get an error line */
  for (size_t i = first; i < first + n; i++) {
    xd_error_t e;
    xd_error_clear(&e);
    if (run_one(api, s, i, 1, cancel, buf, len, cap, &e) == XD_OK) continue;
    if (cancelled(cancel) || e.code == XD_ECONFLICT) return *err = e, e.code;
    if (xd_jobspec_error_line(i, &e, buf, len, cap) != XD_OK) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  xd_error_clear(err);
  return XD_OK;
}

/* One attribution per feature of a line, as CSV cells ("" where there is none). */
static int csv_cells(const xd_jobspec_t *s, const json_t *o, char **buf, size_t *len, size_t *cap) {
  const json_t *a = json_object_get(o, s->ep->attr);
  char cell[40];
  for (size_t f = 0; f < s->d; f++) {
    double v = 0;
    int have = 0;
    if (s->ep->attr_kind == ATTR_ROW && json_is_array(a) && json_is_number(json_array_get(a, f))) {
      v = json_number_value(json_array_get(a, f));
      have = 1;
    } else if (s->ep->attr_kind == ATTR_LIME) { /* the first label's weights */
      const json_t *ws = json_object_get(json_array_get(json_object_get(a, "labels"), 0), "weights");
      for (size_t k = 0; k < json_array_size(ws); k++) {
        const json_t *w = json_array_get(ws, k);
        if ((size_t)json_integer_value(json_object_get(w, "feature_index")) == f && json_is_number(json_object_get(w, "weight"))) {
          v = json_number_value(json_object_get(w, "weight"));
          have = 1;
        }
      }
    }
    size_t n = have ? xd_json_format_real(v, cell) : 0;
    if (append(buf, len, cap, ",", 1) || append(buf, len, cap, cell, n)) return XD_ENOMEM;
  }
  return XD_OK;
}

int xd_jobspec_csv_row(const xd_jobspec_t *s, const char *line, size_t line_len, char **buf, size_t *len,
                       size_t *cap) {
  if (!line) { /* header */
    int rc = append(buf, len, cap, "index", 5);
    for (size_t f = 0; rc == XD_OK && s->ep->attr_kind != ATTR_VALUE && f < s->d; f++) {
      rc = append(buf, len, cap, ",", 1);
      /* feature names are identifiers; quote anyway when one holds a separator */
      int q = strpbrk(s->features[f], ",\"\n") != NULL;
      if (rc == XD_OK && q) rc = append(buf, len, cap, "\"", 1);
      for (const char *c = s->features[f]; rc == XD_OK && *c; c++)
        rc = *c == '"' ? append(buf, len, cap, "\"\"", 2) : append(buf, len, cap, c, 1);
      if (rc == XD_OK && q) rc = append(buf, len, cap, "\"", 1);
    }
    if (s->ep->attr_kind == ATTR_VALUE && rc == XD_OK) rc = append(buf, len, cap, ",value", 6);
    return rc == XD_OK ? append(buf, len, cap, "\n", 1) : rc;
  }
  json_t *o = json_loadb(line, line_len, 0, NULL);
  if (!o) return XD_EINVAL;
  char idx[32];
  int rc = append(buf, len, cap, idx, (size_t)snprintf(idx, sizeof idx, "%lld", (long long)json_integer_value(json_object_get(o, "index"))));
  if (rc == XD_OK && s->ep->attr_kind != ATTR_VALUE) rc = csv_cells(s, o, buf, len, cap);
  if (rc == XD_OK && s->ep->attr_kind == ATTR_VALUE) {
    const json_t *v = json_object_get(o, s->ep->attr);
    char cell[40];
    size_t n = 0;
    if (json_is_number(v)) n = xd_json_format_real(json_number_value(v), cell);
    else if (json_is_string(v)) n = (size_t)snprintf(cell, sizeof cell, "%.38s", json_string_value(v));
    rc = append(buf, len, cap, ",", 1);
    if (rc == XD_OK) rc = append(buf, len, cap, cell, n);
  }
  json_decref(o);
  return rc == XD_OK ? append(buf, len, cap, "\n", 1) : rc;
}
