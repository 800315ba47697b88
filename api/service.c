/* service.c — the service endpoints answered without a worker: health, readiness,
 * metrics, model listing and metadata. */
#include "api/endpoints.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/bundle.h"
#include "api/graph_rows.h"
#include "api/metrics.h"
#include "core/trees.h"
#include "core/alloc.h"
#include "core/base64.h"
#include "core/image.h"
#include "core/sha256.h"

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

/* An image model's background pictures for ?background=N: up to N (at most 100), evenly
 * spaced, each as an instance row {"b64": PNG} that the explanation endpoints accept back
 * (the dashboard's image view picks from them). The stored rows are preprocessed; the
 * pixels are p = round((x·std[c] + mean[c]) / scale), clamped to 0..255, which gives back
 * the 8-bit pictures of the bundle (after any resize to the model's size). NULL when out
 * of memory. */
static json_t *background_pictures(const xd_model_t *m, size_t max) {
  size_t nb = 0;
  const double *X = xd_model_background_images(m, &nb);
  const xd_image_prep_t *p = xd_model_image_prep(m);
  if (max > 100) max = 100;
  size_t k = nb < max ? nb : max, C = p->channels, HW = p->height * p->width;
  uint8_t *px = xd_malloc(C * HW);
  json_t *rows = json_array();
  for (size_t r = 0; px && rows && r < k; r++) {
    const double *x = X + (r * nb / k) * C * HW;
    for (size_t c = 0; c < C; c++)
      for (size_t i = 0; i < HW; i++) {
        double v = round((x[c * HW + i] * p->std[c] + p->mean[c]) / p->scale);
        px[i * C + c] = (uint8_t)(v > 0 ? (v < 255 ? v : 255) : 0);
      }
    uint8_t *png = NULL;
    size_t len = 0, blen = 0;
    xd_error_t err;
    char *b64 = NULL;
    if (xd_image_encode_png(px, p->width, p->height, C, &png, &len, &err) == XD_OK) b64 = xd_base64_encode(png, len, &blen);
    xd_free(png);
    json_t *row = b64 ? json_pack("{s:s%}", "b64", b64, blen) : NULL;
    xd_free(b64);
    if (!row || json_array_append_new(rows, row)) {
      json_decref(rows);
      rows = NULL;
    }
  }
  xd_free(px);
  if (!px) json_decref(rows);
  return px ? rows : NULL;
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
  const xd_trees_t *tr = xd_model_trees(m);
  if (tr) /* a tree ensemble: its source, size and raw outputs (docs/trees.md) */
    json_object_set_new(o, "trees", json_pack("{s:s, s:I, s:I, s:I, s:s}", "source", xd_trees_source(tr), "n_trees",
                                              (json_int_t)xd_trees_n_trees(tr), "max_depth",
                                              (json_int_t)xd_trees_max_depth(tr), "n_groups",
                                              (json_int_t)xd_trees_n_groups(tr), "link",
                                              xd_trees_link_names[xd_trees_link(tr)]));
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

xd_api_outcome_t xd_service_healthz(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                                    xd_api_response_t *resp, xd_work_t *work) {
  xd_api_json(resp, 200, json_pack("{s:s}", "status", "ok"));
  return XD_API_RESPOND;
}

/* Ready for traffic: loaded and not draining, and with a model unless --allow-empty.
 * /readyz and the explaind_ready gauge answer the same. */
static int empty_not_allowed(xd_api_t *api) {
  return !xd_api_config(api)->allow_empty && xd_registry_count(xd_api_registry(api)) == 0;
}

xd_api_outcome_t xd_service_readyz(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                                   xd_api_response_t *resp, xd_work_t *work) {
  if (xd_api_ready(api) && empty_not_allowed(api))
    xd_api_errorf(resp, XD_EOVERLOAD, NULL,
                  "not ready: no model is loaded; add a bundle to the model folder (then SIGHUP), upload one with "
                  "PUT /models/{name}, or start with --allow-empty");
  else if (xd_api_ready(api))
    xd_api_json(resp, 200,
                json_pack("{s:s, s:I}", "status", "ready", "models", (json_int_t)xd_registry_count(xd_api_registry(api))));
  else
    xd_api_errorf(resp, XD_EOVERLOAD, NULL, "not ready: loading models or shutting down");
  return XD_API_RESPOND;
}

xd_api_outcome_t xd_service_metrics(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                                    xd_api_response_t *resp, xd_work_t *work) {
  xd_metrics_render(xd_api_registry(api), xd_api_ready(api) && !empty_not_allowed(api), resp);
  return XD_API_RESPOND;
}

xd_api_outcome_t xd_service_models(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                                   xd_api_response_t *resp, xd_work_t *work) {
  xd_model_entry_t **es;
  size_t n;
  if (xd_registry_list(xd_api_registry(api), &es, &n) != XD_OK) {
    xd_api_errorf(resp, XD_ENOMEM, NULL, "out of memory");
    return XD_API_RESPOND;
  }
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    json_array_append_new(arr, model_summary(es[i]));
    xd_model_entry_release(es[i]);
  }
  xd_free(es);
  xd_api_json(resp, 200, json_pack("{s:o}", "models", arr));
  return XD_API_RESPOND;
}

xd_api_outcome_t xd_service_model(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                                  xd_api_response_t *resp, xd_work_t *work) {
  char name[XD_MODEL_NAME_MAX + 2];
  xd_route_arg_copy(args->name, args->name_len, name, sizeof name);
  xd_model_entry_t *e = xd_model_name_valid(name) ? xd_registry_get(xd_api_registry(api), name) : NULL;
  if (!e) {
    xd_error_t err;
    xd_error_clear(&err);
    xd_api_unknown_model(xd_api_registry(api), name, &err);
    xd_api_error(&err, resp);
    return XD_API_RESPOND;
  }
  json_t *detail = model_detail(e);
  size_t nb = background_asked(req->query);
  if (detail && nb && xd_model_input_kind(e->model) == XD_INPUT_IMAGE) {
    json_t *pics = background_pictures(e->model, nb);
    if (pics) json_object_set_new(detail, "background", pics);
  } else if (detail && nb) {
    json_object_set_new(detail, "background", background_rows(e->model, nb));
  }
  xd_api_json(resp, 200, detail);
  xd_api_add_header(resp, "ETag", "\"%s\"", e->sha256); /* for If-Match on PUT */
  xd_model_entry_release(e);
  return XD_API_RESPOND;
}
