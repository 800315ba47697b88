/* bundle.c — JSON bundle -> xd_model_spec_t -> xd_model_new. */
#include "api/bundle.h"

#include <errno.h>
#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api/alloc.h"
#include "api/bundle_graph.h"
#include "api/bundle_trees.h"
#include "api/files.h"
#include "api/json.h"
#include "core/alloc.h"
#include "core/onnx.h"
#include "core/sha256.h"

static char *dup_string(const json_t *v, const char *field, size_t maxlen, xd_error_t *err) {
  if (!json_is_string(v)) {
    xd_error_set(err, XD_EFORMAT, field, "must be a string");
    return NULL;
  }
  size_t n = json_string_length(v);
  if (n == 0 || n > maxlen) {
    xd_error_set(err, XD_EFORMAT, field, "must be a non-empty string of at most %zu bytes", maxlen);
    return NULL;
  }
  if (memchr(json_string_value(v), '\0', n)) {
    xd_error_set(err, XD_EFORMAT, field, "must not contain NUL characters");
    return NULL;
  }
  char *s = xd_strdup(json_string_value(v));
  if (!s) xd_error_set(err, XD_ENOMEM, field, "out of memory");
  return s;
}

/* An array of exactly n finite numbers (n == 0: any length up to max, written to *n). */
static int numbers(const json_t *v, const char *field, size_t want, double *out, xd_error_t *err) {
  if (!json_is_array(v)) return xd_error_set(err, XD_EFORMAT, field, "must be an array of numbers");
  if (json_array_size(v) != want)
    return xd_error_set(err, XD_EFORMAT, field, "expected %zu values, got %zu", want, json_array_size(v));
  char f[XD_ERROR_FIELD_MAX];
  for (size_t i = 0; i < want; i++) {
    json_t *x = json_array_get(v, i);
    if (!json_is_number(x)) {
      snprintf(f, sizeof f, "%s[%zu]", field, i);
      return xd_error_set(err, XD_EFORMAT, f, "must be a number");
    }
    out[i] = json_number_value(x);
  }
  return XD_OK;
}

static int decode_features(const json_t *v, xd_model_spec_t *s, xd_error_t *err) {
  if (!json_is_array(v) || json_array_size(v) == 0)
    return xd_error_set(err, XD_EFORMAT, "features", "must be a non-empty array");
  size_t n = json_array_size(v);
  if (n > XD_BUNDLE_MAX_FEATURES)
    return xd_error_set(err, XD_EFORMAT, "features", "at most %d features", XD_BUNDLE_MAX_FEATURES);
  s->features = xd_calloc(n, sizeof *s->features);
  if (!s->features) return xd_error_set(err, XD_ENOMEM, "features", "out of memory");
  s->n_features = n;
  static const char *const keys[] = {"name", "type", "categories", NULL};
  char f[XD_ERROR_FIELD_MAX];
  for (size_t j = 0; j < n; j++) {
    json_t *o = json_array_get(v, j);
    snprintf(f, sizeof f, "features[%zu]", j);
    if (!json_is_object(o)) return xd_error_set(err, XD_EFORMAT, f, "must be an object with a name");
    int rc = xd_json_check_file_keys(o, keys, f, err);
    if (rc != XD_OK) return rc;
    snprintf(f, sizeof f, "features[%zu].name", j);
    if (!(s->features[j].name = dup_string(json_object_get(o, "name"), f, 256, err))) return err ? err->code : XD_EFORMAT;
    json_t *t = json_object_get(o, "type");
    json_t *cats = json_object_get(o, "categories");
    int categorical = 0;
    if (t) {
      snprintf(f, sizeof f, "features[%zu].type", j);
      if (json_is_string(t) && strcmp(json_string_value(t), "categorical") == 0)
        categorical = 1;
      else if (!json_is_string(t) || strcmp(json_string_value(t), "numeric") != 0)
        return xd_error_set(err, XD_EFORMAT, f, "must be \"numeric\" or \"categorical\"");
    }
    snprintf(f, sizeof f, "features[%zu].categories", j);
    if (!categorical) {
      if (cats) return xd_error_set(err, XD_EFORMAT, f, "only categorical features have categories");
      continue;
    }
    if (!json_is_array(cats)) return xd_error_set(err, XD_EFORMAT, f, "a categorical feature needs a list of categories");
    size_t k = json_array_size(cats);
    if (k > XD_BUNDLE_MAX_CATEGORIES) return xd_error_set(err, XD_EFORMAT, f, "at most %d categories", XD_BUNDLE_MAX_CATEGORIES);
    s->features[j].kind = XD_FEAT_CATEGORICAL;
    s->features[j].categories = xd_calloc(k ? k : 1, sizeof(char *));
    if (!s->features[j].categories) return xd_error_set(err, XD_ENOMEM, f, "out of memory");
    for (size_t c = 0; c < k; c++) {
      char fc[XD_ERROR_FIELD_MAX];
      snprintf(fc, sizeof fc, "features[%zu].categories[%zu]", j, c);
      if (!(s->features[j].categories[c] = dup_string(json_array_get(cats, c), fc, 256, err)))
        return err ? err->code : XD_EFORMAT;
      s->features[j].n_categories = c + 1;
    }
  }
  return XD_OK;
}

static int decode_layers(const json_t *v, xd_model_spec_t *s, xd_error_t *err) {
  if (!json_is_array(v) || json_array_size(v) == 0)
    return xd_error_set(err, XD_EFORMAT, "layers", "must be a non-empty array of layers");
  size_t n = json_array_size(v);
  if (n > XD_BUNDLE_MAX_LAYERS) return xd_error_set(err, XD_EFORMAT, "layers", "at most %d layers", XD_BUNDLE_MAX_LAYERS);
  s->layers = xd_calloc(n, sizeof *s->layers);
  if (!s->layers) return xd_error_set(err, XD_ENOMEM, "layers", "out of memory");
  s->n_layers = n;
  static const char *const keys[] = {"weights", "bias", "activation", NULL};
  char f[XD_ERROR_FIELD_MAX];
  for (size_t l = 0; l < n; l++) {
    json_t *o = json_array_get(v, l);
    xd_layer_spec_t *L = &s->layers[l];
    snprintf(f, sizeof f, "layers[%zu]", l);
    if (!json_is_object(o)) return xd_error_set(err, XD_EFORMAT, f, "must be an object");
    int rc = xd_json_check_file_keys(o, keys, f, err);
    if (rc != XD_OK) return rc;
    json_t *w = json_object_get(o, "weights");
    snprintf(f, sizeof f, "layers[%zu].weights", l);
    if (!json_is_array(w) || json_array_size(w) == 0)
      return xd_error_set(err, XD_EFORMAT, f, "must be a non-empty array of rows [out][in]");
    L->out = json_array_size(w);
    json_t *r0 = json_array_get(w, 0);
    L->in = json_is_array(r0) ? json_array_size(r0) : 0;
    if (L->out > XD_BUNDLE_MAX_WIDTH || L->in > XD_BUNDLE_MAX_WIDTH || L->in == 0) {
      snprintf(f, sizeof f, "layers[%zu].weights[0]", l);
      return xd_error_set(err, XD_EFORMAT, f, "rows must be non-empty arrays of at most %d numbers", XD_BUNDLE_MAX_WIDTH);
    }
    L->weights = xd_malloc(xd_mul_size(L->in, L->out) * sizeof *L->weights);
    L->bias = xd_malloc(L->out * sizeof *L->bias);
    if (!L->weights || !L->bias) return xd_error_set(err, XD_ENOMEM, f, "out of memory");
    for (size_t i = 0; i < L->out; i++) {
      snprintf(f, sizeof f, "layers[%zu].weights[%zu]", l, i);
      if ((rc = numbers(json_array_get(w, i), f, L->in, L->weights + i * L->in, err)) != XD_OK) return rc;
    }
    snprintf(f, sizeof f, "layers[%zu].bias", l);
    if ((rc = numbers(json_object_get(o, "bias"), f, L->out, L->bias, err)) != XD_OK) return rc;
    json_t *a = json_object_get(o, "activation");
    snprintf(f, sizeof f, "layers[%zu].activation", l);
    if (!json_is_string(a) || xd_act_parse(json_string_value(a), &L->act) != 0)
      return xd_error_set(err, XD_EFORMAT, f,
                          "must be one of identity, relu, leaky_relu, tanh, sigmoid, softplus, gelu, gelu_erf, "
                          "softmax");
  }
  return XD_OK;
}

/* The layers from an ONNX graph: bytes when given (an upload), else the file that v names
 * (relative to dir, as background.csv). The graph's input is layer 1's: the numeric
 * features plus the one-hot categories. */
static int decode_onnx(const json_t *v, const char *dir, const void *bytes, size_t len, xd_model_spec_t *s,
                       xd_error_t *err) {
  char *data = NULL;
  int rc;
  if (!bytes) {
    if (!json_is_string(v)) return xd_error_set(err, XD_EFORMAT, "onnx", "must be a file name");
    const char *name = json_string_value(v);
    if (!dir) return xd_error_set(err, XD_EFORMAT, "onnx", "a file is not allowed here: upload the ONNX graph");
    if (name[0] == '/' || strstr(name, "..") || !name[0])
      return xd_error_set(err, XD_EFORMAT, "onnx", "must be a relative file name inside the model folder");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if ((rc = xd_read_file(path, XD_BUNDLE_MAX_BYTES, &data, &len, err)) != XD_OK) {
      xd_error_prefix_field(err, "onnx");
      /* Out of memory stays a 500 (not the bundle's fault); the rest is the bundle's. */
      if (rc == XD_ENOMEM) return rc;
      return err ? (err->code = XD_EFORMAT) : XD_EFORMAT;
    }
    bytes = data;
  }
  size_t n_inputs = 0;
  for (size_t j = 0; j < s->n_features; j++)
    n_inputs += s->features[j].kind == XD_FEAT_CATEGORICAL ? s->features[j].n_categories : 1;
  rc = xd_onnx_to_layers(bytes, len, n_inputs, &s->layers, &s->n_layers, err);
  xd_free(data);
  return rc;
}

/* xd_model_new names the converted layers ("layers[1].activation"), which an ONNX bundle
 * does not have: point at "onnx" and keep the layer's path in the text. */
static void onnx_error_path(xd_error_t *err) {
  if (!err || strncmp(err->field, "layers", 6) != 0) return;
  char text[XD_ERROR_TEXT_MAX];
  snprintf(text, sizeof text, "%s", err->text);
  int code = err->code;
  char field[XD_ERROR_FIELD_MAX];
  snprintf(field, sizeof field, "%s", err->field);
  xd_error_set(err, code, "onnx", "converted %s: %s", field, text);
}

static int decode_background(const json_t *v, const char *dir, xd_model_spec_t *s, xd_error_t *err) {
  if (!json_is_object(v)) return xd_error_set(err, XD_EFORMAT, "background", "must be an object");
  static const char *const keys[] = {"csv", "target", "rows", "targets", NULL};
  int rc = xd_json_check_file_keys(v, keys, "background", err);
  if (rc != XD_OK) return rc;
  json_t *csv = json_object_get(v, "csv"), *rows = json_object_get(v, "rows");
  int cls = s->task == XD_TASK_CLASSIFICATION;
  if ((csv != NULL) == (rows != NULL))
    return xd_error_set(err, XD_EFORMAT, "background", "give either csv (a file) or rows (inline)");
  if (csv) {
    if (json_object_get(v, "targets")) return xd_error_set(err, XD_EFORMAT, "background.targets", "inline targets go with rows, not csv");
    if (!json_is_string(csv)) return xd_error_set(err, XD_EFORMAT, "background.csv", "must be a file name");
    const char *name = json_string_value(csv);
    if (!dir) return xd_error_set(err, XD_EFORMAT, "background.csv", "a file is not allowed here: send rows inline");
    if (name[0] == '/' || strstr(name, "..") || !name[0])
      return xd_error_set(err, XD_EFORMAT, "background.csv", "must be a relative file name inside the model folder");
    json_t *t = json_object_get(v, "target");
    if (t && !json_is_string(t)) return xd_error_set(err, XD_EFORMAT, "background.target", "must be a column name");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *data = NULL;
    size_t len = 0;
    if ((rc = xd_read_file(path, XD_BUNDLE_MAX_BYTES, &data, &len, err)) != XD_OK) {
      xd_error_prefix_field(err, "background.csv");
      if (rc == XD_ENOMEM) return rc; /* out of memory stays a 500 */
      return err ? (err->code = XD_EFORMAT) : XD_EFORMAT;
    }
    xd_csv_t table;
    rc = xd_csv_parse(data, len, XD_BUNDLE_MAX_BACKGROUND, &table, err);
    xd_free(data);
    if (rc != XD_OK) {
      /* Copy the parser's text first: formatting err->text into itself garbled it. */
      char why[XD_ERROR_TEXT_MAX];
      snprintf(why, sizeof why, "%s", err ? err->text : "invalid CSV");
      if (rc != XD_ENOMEM) rc = XD_EFORMAT;
      xd_error_set(err, rc, "background.csv", "%s: %s", name, why);
      return rc;
    }
    rc = xd_dataset_from_csv(&table, s->features, s->n_features, t ? json_string_value(t) : NULL,
                             cls ? s->classes : NULL, cls ? s->n_classes : 0, "background.csv", &s->background, err);
    xd_csv_deinit(&table);
    if (rc != XD_OK && rc != XD_ENOMEM && err) err->code = rc = XD_EFORMAT;
    return rc;
  }
  if (json_object_get(v, "target")) return xd_error_set(err, XD_EFORMAT, "background.target", "target names a CSV column; use targets with rows");
  if (!json_is_array(rows) || json_array_size(rows) == 0)
    return xd_error_set(err, XD_EFORMAT, "background.rows", "must be a non-empty array of rows");
  size_t n = json_array_size(rows), d = s->n_features;
  if (n > XD_BUNDLE_MAX_BACKGROUND)
    return xd_error_set(err, XD_EFORMAT, "background.rows", "at most %d rows", XD_BUNDLE_MAX_BACKGROUND);
  json_t *targets = json_object_get(v, "targets");
  if (targets && (!json_is_array(targets) || json_array_size(targets) != n))
    return xd_error_set(err, XD_EFORMAT, "background.targets", "must be an array with one target per row (%zu)", n);
  xd_dataset_t *bg = &s->background;
  bg->n = n;
  bg->d = d;
  bg->X = xd_malloc(xd_mul_size(n, d) * sizeof *bg->X);
  bg->y = targets ? xd_malloc(n * sizeof *bg->y) : NULL;
  if (!bg->X || (targets && !bg->y)) return xd_error_set(err, XD_ENOMEM, "background", "out of memory");
  char f[XD_ERROR_FIELD_MAX];
  for (size_t i = 0; i < n; i++) {
    json_t *r = json_array_get(rows, i);
    snprintf(f, sizeof f, "background.rows[%zu]", i);
    if (!json_is_array(r) || json_array_size(r) != d)
      return xd_error_set(err, XD_EFORMAT, f, "expected %zu values, got %zu", d, json_is_array(r) ? json_array_size(r) : 0);
    for (size_t j = 0; j < d; j++) {
      json_t *x = json_array_get(r, j);
      snprintf(f, sizeof f, "background.rows[%zu][%zu]", i, j);
      if (s->features[j].kind == XD_FEAT_CATEGORICAL && json_is_string(x)) {
        long k = xd_feature_category(&s->features[j], json_string_value(x));
        if (k < 0) return xd_error_set(err, XD_EFORMAT, f, "'%.100s' is not a category of '%s'", json_string_value(x), s->features[j].name);
        bg->X[i * d + j] = (double)k;
      } else if (json_is_number(x)) {
        bg->X[i * d + j] = json_number_value(x);
      } else if (s->trees && json_is_null(x)) { /* a missing value: the trees route it */
        bg->X[i * d + j] = NAN;
      } else {
        return xd_error_set(err, XD_EFORMAT, f, "must be a number%s", s->features[j].kind == XD_FEAT_CATEGORICAL ? " or a category name" : "");
      }
    }
    if (targets) {
      json_t *t = json_array_get(targets, i);
      snprintf(f, sizeof f, "background.targets[%zu]", i);
      if (cls && json_is_string(t)) {
        long k = -1;
        for (size_t c = 0; c < s->n_classes; c++)
          if (strcmp(s->classes[c], json_string_value(t)) == 0) k = (long)c;
        if (k < 0) return xd_error_set(err, XD_EFORMAT, f, "'%.100s' is not a class", json_string_value(t));
        bg->y[i] = (double)k;
      } else if (json_is_number(t)) {
        bg->y[i] = json_number_value(t);
      } else {
        return xd_error_set(err, XD_EFORMAT, f, "must be a %s", cls ? "class name or index" : "number");
      }
    }
  }
  return XD_OK;
}

/* The bundle in data; the network from its "layers", its "onnx" file, or onnx bytes. */
static int decode(const char *data, size_t len, const char *dir, const void *onnx, size_t onnx_len,
                  xd_model_t **out, xd_error_t *err) {
  *out = NULL;
  xd_model_spec_t s;
  memset(&s, 0, sizeof s);
  json_error_t jerr;
  int oom = 0;
  json_t *root = xd_json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr, &oom);
  int rc = XD_OK;
  if (oom) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory reading the bundle");
  if (!root) return xd_error_set(err, XD_EFORMAT, "", "not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
  static const char *const keys[] = {"format", "task",  "features", "classes",    "preprocess", "layers",
                                     "onnx",   "input", "output",   "background", "trees",      NULL};
  if (!json_is_object(root)) {
    rc = xd_error_set(err, XD_EFORMAT, "", "a bundle is a JSON object");
    goto done;
  }
  if ((rc = xd_json_check_file_keys(root, keys, "", err)) != XD_OK) goto done;
  json_t *fmt = json_object_get(root, "format");
  if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "explaind.model/v1") != 0) {
    rc = xd_error_set(err, XD_EFORMAT, "format", "must be \"explaind.model/v1\"");
    goto done;
  }
  json_t *task = json_object_get(root, "task");
  if (json_is_string(task) && strcmp(json_string_value(task), "classification") == 0)
    s.task = XD_TASK_CLASSIFICATION;
  else if (json_is_string(task) && strcmp(json_string_value(task), "regression") == 0)
    s.task = XD_TASK_REGRESSION;
  else {
    rc = xd_error_set(err, XD_EFORMAT, "task", "must be \"classification\" or \"regression\"");
    goto done;
  }
  /* An image or text model ("input", MODEL_FORMAT "Graph models") has no tabular features. */
  int graph = json_object_get(root, "input") != NULL;
  if (!graph && json_object_get(root, "output")) {
    rc = xd_error_set(err, XD_EFORMAT, "output", "goes with \"input\" (an image or text model)");
    goto done;
  }
  if (graph && json_object_get(root, "trees")) {
    rc = xd_error_set(err, XD_EFORMAT, "trees", "an image or text model (\"input\") is a graph, not a tree ensemble");
    goto done;
  }
  if (!graph && (rc = decode_features(json_object_get(root, "features"), &s, err)) != XD_OK) goto done;
  json_t *classes = json_object_get(root, "classes");
  if (classes) {
    if (!json_is_array(classes) || json_array_size(classes) > XD_BUNDLE_MAX_CLASSES) {
      rc = xd_error_set(err, XD_EFORMAT, "classes", "must be an array of at most %d class names", XD_BUNDLE_MAX_CLASSES);
      goto done;
    }
    size_t k = json_array_size(classes);
    s.classes = xd_calloc(k ? k : 1, sizeof *s.classes);
    if (!s.classes) {
      rc = xd_error_set(err, XD_ENOMEM, "classes", "out of memory");
      goto done;
    }
    for (size_t c = 0; c < k; c++) {
      char f[XD_ERROR_FIELD_MAX];
      snprintf(f, sizeof f, "classes[%zu]", c);
      if (!(s.classes[c] = dup_string(json_array_get(classes, c), f, 256, err))) {
        rc = err ? err->code : XD_EFORMAT;
        goto done;
      }
      s.n_classes = c + 1;
    }
  } else if (s.task == XD_TASK_CLASSIFICATION) {
    rc = xd_error_set(err, XD_EFORMAT, "classes", "a classifier needs its class names");
    goto done;
  }
  if (graph) {
    if ((rc = xd_bundle_graph_decode(root, dir, onnx, onnx_len, &s, err)) != XD_OK) goto done;
    json_decref(root);
    return xd_model_new(&s, out, err); /* takes the spec's contents either way */
  }
  json_t *pre = json_object_get(root, "preprocess");
  if (pre) {
    static const char *const pkeys[] = {"mean", "scale", NULL};
    if (!json_is_object(pre)) {
      rc = xd_error_set(err, XD_EFORMAT, "preprocess", "must be an object with mean and scale");
      goto done;
    }
    if ((rc = xd_json_check_file_keys(pre, pkeys, "preprocess", err)) != XD_OK) goto done;
    s.pre_mean = xd_malloc(s.n_features * sizeof *s.pre_mean);
    s.pre_scale = xd_malloc(s.n_features * sizeof *s.pre_scale);
    if (!s.pre_mean || !s.pre_scale) {
      rc = xd_error_set(err, XD_ENOMEM, "preprocess", "out of memory");
      goto done;
    }
    if ((rc = numbers(json_object_get(pre, "mean"), "preprocess.mean", s.n_features, s.pre_mean, err)) != XD_OK ||
        (rc = numbers(json_object_get(pre, "scale"), "preprocess.scale", s.n_features, s.pre_scale, err)) != XD_OK)
      goto done;
  }
  json_t *jonnx = json_object_get(root, "onnx"), *jlayers = json_object_get(root, "layers");
  json_t *jtrees = json_object_get(root, "trees");
  if (jtrees && (jonnx || jlayers || onnx)) {
    rc = xd_error_set(err, XD_EFORMAT, "trees", "give either trees or a network (layers, onnx), not both");
    goto done;
  }
  if (jtrees) { /* a tree ensemble (api/bundle_trees.c) */
    if ((rc = xd_bundle_trees_decode(jtrees, dir, &s, err)) != XD_OK) goto done;
    goto background;
  }
  int from_onnx = onnx || jonnx;
  if (onnx && (jonnx || jlayers)) {
    rc = xd_error_set(err, XD_EFORMAT, jonnx ? "onnx" : "layers",
                      "the ONNX graph comes with the upload: leave out layers and onnx");
    goto done;
  }
  if (jonnx && jlayers) {
    rc = xd_error_set(err, XD_EFORMAT, "onnx", "give either layers or onnx, not both");
    goto done;
  }
  if (from_onnx ? (rc = decode_onnx(jonnx, dir, onnx, onnx_len, &s, err)) != XD_OK
                : (rc = decode_layers(jlayers, &s, err)) != XD_OK)
    goto done;
background:;
  json_t *bg = json_object_get(root, "background");
  if (bg && (rc = decode_background(bg, dir, &s, err)) != XD_OK) goto done;
  json_decref(root);
  root = NULL;
  rc = xd_model_new(&s, out, err); /* takes the spec's contents either way */
  if (rc != XD_OK && (onnx || jonnx)) onnx_error_path(err);
  return rc;
done:
  if (root) json_decref(root);
  xd_model_spec_deinit(&s);
  if (rc == XD_EINVAL) rc = XD_EFORMAT;
  if (err) err->code = rc;
  return rc;
}

int xd_bundle_decode(const char *data, size_t len, const char *dir, xd_model_t **out, xd_error_t *err) {
  return decode(data, len, dir, NULL, 0, out, err);
}

int xd_bundle_decode_onnx(const char *json_meta, size_t meta_len, const void *onnx, size_t onnx_len, const char *dir,
                          xd_model_t **out, xd_error_t *err) {
  *out = NULL;
  if (!onnx) return xd_error_set(err, XD_EFORMAT, "onnx", "no ONNX graph was uploaded");
  return decode(json_meta, meta_len, dir, onnx, onnx_len, out, err);
}

void xd_bundle_digest(const char *data, size_t len, const char *dir, char sha256[65]) {
  xd_sha256_t c;
  xd_sha256_init(&c);
  xd_sha256_update(&c, data, len);
  if (dir) {
    json_t *root = json_loadb(data, len, 0, NULL);
    if (json_is_object(root)) {
      xd_bundle_digest_file(&c, dir, json_object_get(root, "onnx"));
      xd_bundle_digest_file(&c, dir, json_object_get(json_object_get(root, "trees"), "xgboost"));
      json_t *bg = json_object_get(root, "background");
      if (json_is_object(bg)) xd_bundle_digest_file(&c, dir, json_object_get(bg, "csv"));
      xd_bundle_graph_digest(&c, root, dir);
    }
    json_decref(root);
  }
  xd_sha256_final_hex(&c, sha256);
}

int xd_bundle_load_file(const char *path, xd_model_t **out, char sha256[65], xd_error_t *err) {
  char *data;
  size_t len;
  *out = NULL;
  int rc = xd_read_file(path, XD_BUNDLE_MAX_BYTES, &data, &len, err);
  if (rc != XD_OK) return rc;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  else
    snprintf(dir, sizeof dir, ".");
  if (sha256) xd_bundle_digest(data, len, dir, sha256);
  rc = xd_bundle_decode(data, len, dir, out, err);
  xd_free(data);
  return rc;
}
