/* service.c — health, readiness, model listing and metadata, model directory loading. */
#include "api/service.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/bundle.h"
#include "core/alloc.h"

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
  return json_pack("{s:s, s:s, s:I, s:I, s:o, s:I}", "name", e->name, "task",
                   xd_model_task(m) == XD_TASK_CLASSIFICATION ? "classification" : "regression", "n_features",
                   (json_int_t)xd_model_n_features(m), "n_outputs", (json_int_t)xd_model_n_outputs(m), "classes",
                   classes, "version", (json_int_t)e->version);
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
    if (!get) return method_not_allowed(resp, req->method, "GET, HEAD"), 1;
    xd_model_entry_t *e = xd_model_name_valid(name) ? xd_registry_get(xd_api_registry(api), name) : NULL;
    if (!e) {
      xd_error_t err;
      xd_error_set(&err, XD_ENOTFOUND, "model", "model '%.64s' is not loaded", name);
      xd_api_error(&err, resp);
      return 1;
    }
    xd_api_json(resp, 200, model_detail(e));
    xd_model_entry_release(e);
    return 1;
  }
  return 0;
}

/* ---- model directory ------------------------------------------------------------------- */

static int load_one(xd_api_t *api, const char *name, const char *path, void (*log)(void *, const char *), void *ctx) {
  xd_model_t *m = NULL;
  char sha[65];
  xd_error_t err;
  xd_error_clear(&err);
  char msg[1024];
  if (!xd_model_name_valid(name)) {
    snprintf(msg, sizeof msg, "skipping %s: '%s' is not a valid model name", path, name);
    if (log) log(ctx, msg);
    return 0;
  }
  if (xd_bundle_load_file(path, &m, sha, &err) != XD_OK) {
    snprintf(msg, sizeof msg, "skipping %s: %s%s%s", path, err.field, err.field[0] ? ": " : "", err.text);
    if (log) log(ctx, msg);
    return 0;
  }
  if (xd_registry_put(xd_api_registry(api), name, m, sha, path, 0, NULL) != XD_OK) {
    snprintf(msg, sizeof msg, "skipping %s: out of memory", path);
    if (log) log(ctx, msg);
    return 0;
  }
  snprintf(msg, sizeof msg, "loaded model '%s' from %s", name, path);
  if (log) log(ctx, msg);
  return 1;
}

int xd_api_load_dir(xd_api_t *api, const char *dir, void (*log)(void *ctx, const char *msg), void *ctx) {
  DIR *d = opendir(dir);
  char msg[1024];
  if (!d) {
    snprintf(msg, sizeof msg, "cannot open model directory %s", dir);
    if (log) log(ctx, msg);
    return 0;
  }
  int loaded = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    if (n[0] == '.') continue;
    char path[4096], name[256];
    size_t len = strlen(n);
    if (len > 5 && strcmp(n + len - 5, ".json") == 0) {
      snprintf(name, sizeof name, "%.*s", (int)(len - 5), n);
      snprintf(path, sizeof path, "%s/%s", dir, n);
      loaded += load_one(api, name, path, log, ctx);
      continue;
    }
    snprintf(path, sizeof path, "%s/%s/model.json", dir, n);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) loaded += load_one(api, n, path, log, ctx);
  }
  closedir(d);
  return loaded;
}
