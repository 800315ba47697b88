/* bundle_write.c — xd_model_t -> JSON bundle text (the inverse of bundle.c).
 *
 * Built as a jansson tree, then dumped through a callback into an xd_realloc'd buffer
 * so the caller frees with xd_free and allocation faults are injectable like everywhere
 * else. JSON_REAL_PRECISION(17): 17 significant digits always identify a double
 * uniquely, so weights, means and scales read back bit-identical. */
#include "api/bundle_write.h"

#include <jansson.h>
#include <string.h>

#include "core/alloc.h"

/* ---- building the tree ---------------------------------------------------------------- */

/* Appends v to arr, stealing the reference; fails when v is NULL (out of memory). */
static int push(json_t *arr, json_t *v) { return v && json_array_append_new(arr, v) == 0 ? 0 : -1; }
static int put(json_t *obj, const char *key, json_t *v) { return v && json_object_set_new(obj, key, v) == 0 ? 0 : -1; }

static json_t *reals(const double *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    if (push(a, json_real(v[i])) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

static json_t *strings(char *const *s, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    if (push(a, json_string(s[i])) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

static json_t *features_json(const xd_model_t *m) {
  const xd_feature_t *f = xd_model_features(m);
  json_t *a = json_array();
  for (size_t j = 0; a && j < xd_model_n_features(m); j++) {
    json_t *o = json_object();
    int bad = !o || put(o, "name", json_string(f[j].name)) != 0;
    if (!bad && f[j].kind == XD_FEAT_CATEGORICAL)
      bad = put(o, "type", json_string("categorical")) != 0 ||
            put(o, "categories", strings(f[j].categories, f[j].n_categories)) != 0;
    if (bad || push(a, o) != 0) {
      if (bad) json_decref(o);
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

/* preprocess, or NULL in *out when every feature has mean 0 and scale 1 (nothing to do).
 * Returns -1 when out of memory. */
static int preprocess_json(const xd_model_t *m, json_t **out) {
  size_t d = xd_model_n_features(m);
  int any = 0;
  *out = NULL;
  for (size_t j = 0; j < d; j++) any |= xd_model_pre_mean(m, j) != 0 || xd_model_pre_scale(m, j) != 1;
  if (!any) return 0;
  json_t *o = json_object(), *mean = json_array(), *scale = json_array();
  int bad = !o || !mean || !scale;
  for (size_t j = 0; !bad && j < d; j++)
    bad = push(mean, json_real(xd_model_pre_mean(m, j))) != 0 || push(scale, json_real(xd_model_pre_scale(m, j))) != 0;
  if (bad) {
    json_decref(mean);
    json_decref(scale);
    json_decref(o);
    return -1;
  }
  /* json_object_set_new drops the value's reference even when it fails */
  if (put(o, "mean", mean) != 0) {
    json_decref(scale);
    json_decref(o);
    return -1;
  }
  if (put(o, "scale", scale) != 0) {
    json_decref(o);
    return -1;
  }
  *out = o;
  return 0;
}

static json_t *layers_json(const xd_dense_t *L, size_t nl) {
  json_t *a = json_array();
  for (size_t l = 0; a && l < nl; l++) {
    json_t *o = json_object(), *w = json_array();
    int bad = !o || !w;
    for (size_t i = 0; !bad && i < L[l].out; i++) bad = push(w, reals(L[l].wd + i * L[l].in, L[l].in)) != 0;
    if (bad) json_decref(w);
    if (bad || put(o, "weights", w) != 0 || put(o, "bias", reals(L[l].bd, L[l].out)) != 0 ||
        put(o, "activation", json_string(xd_act_name(L[l].act))) != 0 || push(a, o) != 0) {
      json_decref(o);
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

/* Inline background: rows i·n/k (k = min(n, max_rows)), categorical values by name,
 * targets by class name or as numbers. */
static json_t *background_json(const xd_model_t *m, const xd_dataset_t *bg, size_t max_rows) {
  const xd_feature_t *f = xd_model_features(m);
  char *const *classes = xd_model_classes(m);
  int cls = xd_model_task(m) == XD_TASK_CLASSIFICATION;
  size_t k = bg->n < max_rows ? bg->n : max_rows;
  json_t *o = json_object(), *rows = json_array(), *targets = bg->y ? json_array() : NULL;
  int bad = !o || !rows || (bg->y && !targets);
  for (size_t r = 0; !bad && r < k; r++) {
    /* (r·n)/k without overflow for any n this process can hold */
    size_t i = (size_t)(((unsigned __int128)r * bg->n) / k);
    const double *x = bg->X + i * bg->d;
    json_t *row = json_array();
    bad = !row;
    for (size_t j = 0; !bad && j < bg->d; j++) {
      if (f[j].kind == XD_FEAT_CATEGORICAL && x[j] >= 0 && x[j] < (double)f[j].n_categories)
        bad = push(row, json_string(f[j].categories[(size_t)x[j]])) != 0;
      else
        bad = push(row, json_real(x[j])) != 0;
    }
    if (bad) {
      json_decref(row);
      break;
    }
    bad = push(rows, row) != 0;
    if (!bad && targets) {
      double t = bg->y[i];
      if (cls && t >= 0 && t < (double)xd_model_n_outputs(m))
        bad = push(targets, json_string(classes[(size_t)t])) != 0;
      else
        bad = push(targets, json_real(t)) != 0;
    }
  }
  if (bad || put(o, "rows", rows) != 0) {
    if (bad) json_decref(rows);
    json_decref(targets);
    json_decref(o);
    return NULL;
  }
  if (targets && put(o, "targets", targets) != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *xd_bundle_background_json(const xd_model_t *m, size_t max_rows) {
  const xd_dataset_t *bg = xd_model_background(m);
  return bg && bg->n > 0 && max_rows > 0 ? background_json(m, bg, max_rows) : NULL;
}

/* ---- dumping ------------------------------------------------------------------------------ */

typedef struct sink {
  char *buf;
  size_t len, cap;
} sink_t;

static int sink_write(const char *data, size_t size, void *ud) {
  sink_t *s = ud;
  if (s->len + size + 1 > s->cap) {
    size_t nc = s->cap ? s->cap : 4096;
    while (nc < s->len + size + 1) nc *= 2;
    char *g = xd_realloc(s->buf, nc);
    if (!g) return -1;
    s->buf = g;
    s->cap = nc;
  }
  memcpy(s->buf + s->len, data, size);
  s->len += size;
  s->buf[s->len] = '\0';
  return 0;
}

char *xd_bundle_encode(const xd_model_t *m, size_t max_background_rows, xd_error_t *err) {
  size_t nl = 0;
  const xd_dense_t *layers = xd_model_dense_layers(m, &nl);
  if (!layers) {
    xd_error_set(err, XD_EUNSUPPORTED, "layers", "a %s model has no dense layers to write", xd_model_family(m));
    return NULL;
  }
  int cls = xd_model_task(m) == XD_TASK_CLASSIFICATION;
  const xd_dataset_t *bg = xd_model_background(m);
  json_t *root = json_object(), *pre = NULL;
  sink_t s = {NULL, 0, 0};
  int bad = !root || put(root, "format", json_string("explaind.model/v1")) != 0 ||
            put(root, "task", json_string(cls ? "classification" : "regression")) != 0 ||
            put(root, "features", features_json(m)) != 0 ||
            (cls && put(root, "classes", strings(xd_model_classes(m), xd_model_n_outputs(m))) != 0) ||
            preprocess_json(m, &pre) != 0 || (pre && put(root, "preprocess", pre) != 0) ||
            put(root, "layers", layers_json(layers, nl)) != 0 ||
            (bg->n > 0 && max_background_rows > 0 &&
             put(root, "background", background_json(m, bg, max_background_rows)) != 0);
  /* Compact except for a newline per top-level key would need a custom printer; one
   * compact line is what machines read, and bundles this size are not edited by hand. */
  if (!bad) bad = json_dump_callback(root, sink_write, &s, JSON_COMPACT | JSON_REAL_PRECISION(17)) != 0;
  json_decref(root);
  if (bad) {
    xd_free(s.buf);
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the model bundle");
    return NULL;
  }
  return s.buf;
}
