/* service.c — health, readiness, model listing and metadata, model directory loading. */
#include "api/service.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/bundle.h"
#include "api/graph_rows.h"
#include "api/metrics.h"
#include "core/alloc.h"
#include "core/sha256.h"

static void method_not_allowed(xd_api_response_t *resp, const char *method, const char *allow) {
  xd_error_t err;
  xd_error_set(&err, XD_EMETHOD, NULL, "method %s is not allowed here", method);
  xd_api_error(&err, resp);
  xd_api_add_header(resp, "Allow", "%s", allow);
}

static json_t *model_summary(const xd_model_entry_t *e) {
  const xd_model_t *m = e->model;
  json_t *classes = json_array();
  char *const *cls = xd_model_classes(m);
  if (cls)
    for (size_t i = 0; i < xd_model_n_outputs(m); i++) json_array_append_new(classes, json_string(cls[i]));
  return json_pack("{s:s, s:s, s:I, s:I, s:o, s:I, s:s}", "name", e->name, "task",
                   xd_model_task(m) == XD_TASK_CLASSIFICATION ? "classification" : "regression", "n_features",
                   (json_int_t)xd_model_n_features(m), "n_outputs", (json_int_t)xd_model_n_outputs(m), "classes",
                   classes, "version", (json_int_t)e->version, "input_kind",
                   xd_input_kind_name(xd_model_input_kind(m)));
}

/* The "x-metrics" object of the bundle file a model came from (training writes it: the
 * held-out metric, api/train.c), or NULL. Read per request: bundles above 16 MiB are not
 * opened for it. */
static json_t *bundle_metrics(const xd_model_entry_t *e) {
  struct stat st;
  if (!e->source || stat(e->source, &st) != 0 || st.st_size > (16 << 20)) return NULL;
  json_error_t jerr;
  json_t *doc = json_load_file(e->source, 0, &jerr);
  json_t *m = json_object_get(doc, "x-metrics");
  if (json_is_object(m)) json_incref(m);
  else m = NULL;
  json_decref(doc);
  return m;
}

/* GET /models/{name}?background=N: up to N background rows (at most 1000), evenly spaced,
 * categories by name, for clients that explain over the background (the dashboard's SHAP
 * summary). 0 when the query does not ask; anything but digits counts as not asking. */
static size_t background_asked(const char *q) {
  for (const char *p = q; p && *p;) {
    if (strncmp(p, "background=", 11) == 0) {
      size_t n = 0, k = 0;
      for (p += 11; p[k] >= '0' && p[k] <= '9' && k < 5; k++) n = n * 10 + (size_t)(p[k] - '0');
      return k && (p[k] == '\0' || p[k] == '&') ? (n > 1000 ? 1000 : n) : 0;
    }
    const char *amp = strchr(p, '&');
    p = amp ? amp + 1 : NULL;
  }
  return 0;
}

static json_t *background_rows(const xd_model_t *m, size_t max) {
  const xd_dataset_t *bg = xd_model_background(m);
  size_t k = bg->n < max ? bg->n : max;
  json_t *rows = json_array();
  for (size_t r = 0; rows && r < k; r++) {
    const double *x = bg->X + (r * bg->n / k) * bg->d;
    json_t *row = json_array();
    for (size_t j = 0; row && j < bg->d; j++) json_array_append_new(row, xd_json_feature_value(m, j, x[j]));
    json_array_append_new(rows, row);
  }
  return rows;
}

static json_t *model_detail(const xd_model_entry_t *e) {
  const xd_model_t *m = e->model;
  json_t *o = model_summary(e);
  if (!o) return NULL;
  const xd_stats_t *st = xd_model_stats(m);
  const xd_feature_t *fs = xd_model_features(m);
  json_t *feats = json_array();
  for (size_t j = 0; j < xd_model_n_features(m); j++) {
    json_t *f = json_pack("{s:s, s:s}", "name", fs[j].name, "type",
                          fs[j].kind == XD_FEAT_CATEGORICAL ? "categorical" : "numeric");
    if (fs[j].kind == XD_FEAT_CATEGORICAL) {
      json_t *c = json_array();
      for (size_t k = 0; k < fs[j].n_categories; k++) json_array_append_new(c, json_string(fs[j].categories[k]));
      json_object_set_new(f, "categories", c);
      if (st) json_object_set_new(f, "frequencies", xd_json_reals(st->f[j].cat_freq, fs[j].n_categories));
    }
    if (st) {
      json_object_set_new(f, "min", xd_json_real(st->f[j].min));
      json_object_set_new(f, "max", xd_json_real(st->f[j].max));
      json_object_set_new(f, "mean", xd_json_real(st->f[j].mean));
      json_object_set_new(f, "std", xd_json_real(st->f[j].std));
    }
    json_array_append_new(feats, f);
  }
  json_object_set_new(o, "features", feats);
  size_t nl;
  const xd_dense_t *L = xd_model_dense_layers(m, &nl);
  json_t *layers = json_array();
  for (size_t l = 0; l < nl; l++)
    json_array_append_new(layers, json_pack("{s:I, s:I, s:s}", "in", (json_int_t)L[l].in, "out",
                                            (json_int_t)L[l].out, "activation", xd_act_name(L[l].act)));
  json_object_set_new(o, "layers", layers);
  json_object_set_new(o, "input", xd_json_model_input(m));
  if (xd_model_graph(m)) json_object_set_new(o, "nodes", xd_json_model_nodes(m));
  json_object_set_new(o, "family", json_string(xd_model_family(m)));
  json_object_set_new(o, "n_inputs", json_integer((json_int_t)xd_model_n_inputs(m)));
  json_object_set_new(o, "background_rows", json_integer((json_int_t)xd_model_background(m)->n));
  json_object_set_new(o, "background_targets", json_boolean(xd_model_background(m)->y != NULL));
  json_object_set_new(o, "sha256", json_string(e->sha256));
  char when[64];
  time_t t = (time_t)e->loaded_at;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_object_set_new(o, "loaded_at", json_string(when));
  json_t *metrics = bundle_metrics(e);
  if (metrics) json_object_set_new(o, "metrics", metrics);
  /* A background row, so clients (the dashboard) can prefill an instance. */
  const xd_dataset_t *bg = xd_model_background(m);
  if (bg->n > 0) {
    json_t *row = json_array();
    for (size_t j = 0; j < bg->d; j++) json_array_append_new(row, xd_json_feature_value(m, j, bg->X[j]));
    json_object_set_new(o, "example", row);
  }
  return o;
}

int xd_service_handle(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp) {
  const char *p = req->path;
  int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
  if (strcmp(p, "/healthz") == 0) {
    resp->endpoint = "healthz";
    if (!get) return method_not_allowed(resp, req->method, "GET, HEAD"), 1;
    xd_api_json(resp, 200, json_pack("{s:s}", "status", "ok"));
    return 1;
  }
  if (strcmp(p, "/readyz") == 0) {
    resp->endpoint = "readyz";
    if (!get) return method_not_allowed(resp, req->method, "GET, HEAD"), 1;
    if (xd_api_ready(api))
      xd_api_json(resp, 200,
                  json_pack("{s:s, s:I}", "status", "ready", "models", (json_int_t)xd_registry_count(xd_api_registry(api))));
    else {
      xd_error_t err;
      xd_error_set(&err, XD_EOVERLOAD, NULL, "not ready: loading models or shutting down");
      xd_api_error(&err, resp);
    }
    return 1;
  }
  if (strcmp(p, "/metrics") == 0) {
    resp->endpoint = "metrics";
    if (!get) return method_not_allowed(resp, req->method, "GET, HEAD"), 1;
    xd_metrics_render(api, resp);
    return 1;
  }
  if (strcmp(p, "/models") == 0) {
    resp->endpoint = "models";
    if (!get) return method_not_allowed(resp, req->method, "GET, HEAD"), 1;
    xd_model_entry_t **es;
    size_t n;
    if (xd_registry_list(xd_api_registry(api), &es, &n) != XD_OK) {
      xd_error_t err;
      xd_error_set(&err, XD_ENOMEM, NULL, "out of memory");
      xd_api_error(&err, resp);
      return 1;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
      json_array_append_new(arr, model_summary(es[i]));
      xd_model_entry_release(es[i]);
    }
    xd_free(es);
    xd_api_json(resp, 200, json_pack("{s:o}", "models", arr));
    return 1;
  }
  if (strncmp(p, "/models/", 8) == 0 && !strchr(p + 8, '/')) {
    resp->endpoint = "model";
    const char *name = p + 8;
    snprintf(resp->model, sizeof resp->model, "%.64s", name);
    if (!get) return method_not_allowed(resp, req->method, "GET, HEAD, PUT, DELETE"), 1;
    xd_model_entry_t *e = xd_model_name_valid(name) ? xd_registry_get(xd_api_registry(api), name) : NULL;
    if (!e) {
      xd_error_t err;
      xd_error_set(&err, XD_ENOTFOUND, "model", "model '%.64s' is not loaded", name);
      xd_api_error(&err, resp);
      return 1;
    }
    json_t *detail = model_detail(e);
    size_t nb = background_asked(req->query);
    if (detail && nb) json_object_set_new(detail, "background", background_rows(e->model, nb));
    xd_api_json(resp, 200, detail);
    xd_api_add_header(resp, "ETag", "\"%s\"", e->sha256); /* for If-Match on PUT */
    xd_model_entry_release(e);
    return 1;
  }
  return 0;
}

/* ---- model directory ------------------------------------------------------------------- */

/* The version a bundle written by PUT carries ("x-explaind-version"), or 0. */
static uint64_t stored_version(const char *data, size_t len) {
  json_t *doc = json_loadb(data, len, 0, NULL);
  json_t *v = json_object_get(doc, "x-explaind-version");
  uint64_t ver = json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
  json_decref(doc);
  return ver;
}

static int load_one(xd_api_t *api, const char *name, const char *path, void (*log)(void *, const char *), void *ctx) {
  xd_model_t *m = NULL;
  char sha[65], msg[1024];
  xd_error_t err;
  xd_error_clear(&err);
  if (!xd_model_name_valid(name)) {
    snprintf(msg, sizeof msg, "skipping %s: '%s' is not a valid model name", path, name);
    if (log) log(ctx, msg);
    return 0;
  }
  char *data = NULL;
  size_t len = 0;
  if (xd_read_file(path, XD_BUNDLE_MAX_BYTES, &data, &len, &err) != XD_OK) {
    snprintf(msg, sizeof msg, "skipping %s: %s", path, err.text);
    if (log) log(ctx, msg);
    return 0;
  }
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  /* The bundle and the files it names (an ONNX graph, a background CSV): what PUT
   * reports as sha256 for an ONNX upload, and a change to any of them is a new version. */
  xd_bundle_digest(data, len, slash ? dir : ".", sha);
  /* A rescan (SIGHUP) leaves unchanged bundles alone: same bytes, same version. */
  xd_model_entry_t *cur = xd_registry_get(xd_api_registry(api), name);
  int same = cur && strcmp(cur->sha256, sha) == 0;
  xd_model_entry_release(cur);
  if (same) {
    xd_free(data);
    return 1;
  }
  int rc = xd_bundle_decode(data, len, slash ? dir : ".", &m, &err);
  uint64_t version = rc == XD_OK ? stored_version(data, len) : 0;
  xd_free(data);
  if (rc != XD_OK) {
    snprintf(msg, sizeof msg, "skipping %s: %s%s%s", path, err.field, err.field[0] ? ": " : "", err.text);
    if (log) log(ctx, msg);
    return 0;
  }
  /* A rescan that read a bundle while a PUT of the same name landed may hold the older
   * version: PUT's bundles carry theirs, so never go back to an older one. */
  cur = version ? xd_registry_get(xd_api_registry(api), name) : NULL;
  int stale = cur && cur->version > version;
  xd_model_entry_release(cur);
  if (stale) {
    xd_model_free(m);
    return 1;
  }
  if (xd_registry_put(xd_api_registry(api), name, m, sha, path, version, NULL) != XD_OK) {
    snprintf(msg, sizeof msg, "skipping %s: out of memory", path);
    if (log) log(ctx, msg);
    return 0;
  }
  snprintf(msg, sizeof msg, "loaded model '%s' from %s", name, path);
  if (log) log(ctx, msg);
  return 1;
}

/* Two passes: folders (DIR/NAME/model.json) first, then files (DIR/NAME.json), so that a
 * bundle uploaded with PUT, which is always written as DIR/NAME.json, wins over a
 * folder of the same name whatever order readdir returns. */
int xd_api_load_dir(xd_api_t *api, const char *dir, void (*log)(void *ctx, const char *msg), void *ctx) {
  char msg[1024];
  int loaded = 0;
  for (int pass = 0; pass < 2; pass++) {
    DIR *d = opendir(dir);
    if (!d) {
      snprintf(msg, sizeof msg, "cannot open model directory %s", dir);
      if (log) log(ctx, msg);
      return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      const char *n = de->d_name;
      if (n[0] == '.') continue; /* also skips PUT's temporary files */
      char path[4096], name[256];
      size_t len = strlen(n);
      int is_json = len > 5 && strcmp(n + len - 5, ".json") == 0;
      if (pass == 1 && is_json) {
        snprintf(name, sizeof name, "%.*s", (int)(len - 5), n);
        snprintf(path, sizeof path, "%s/%s", dir, n);
        loaded += load_one(api, name, path, log, ctx);
      } else if (pass == 0 && !is_json) {
        snprintf(path, sizeof path, "%s/%s/model.json", dir, n);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) loaded += load_one(api, n, path, log, ctx);
      }
    }
    closedir(d);
  }
  return loaded;
}
