/* json.c — strict request decoding helpers and number encoding. */
#include "api/json.h"

#include <stdarg.h>

#include "api/alloc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

static void join(char *out, size_t cap, const char *prefix, const char *key) {
  if (prefix && *prefix)
    snprintf(out, cap, "%s.%s", prefix, key);
  else
    snprintf(out, cap, "%s", key);
}

size_t xd_json_edit_distance(const char *a, const char *b) {
  enum { MAX = 64 }; /* longer names compare on their first MAX bytes */
  size_t la = strnlen(a, MAX), lb = strnlen(b, MAX), row[MAX + 1];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      diag = up;
      row[j] = best;
    }
  }
  return row[lb];
}

int xd_json_warn(json_t *warnings, const char *fmt, ...) {
  if (!warnings) return XD_ENOMEM;
  char w[XD_ERROR_TEXT_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w, sizeof w, fmt, ap);
  va_end(ap);
  return json_array_append_new(warnings, json_string(w)) == 0 ? XD_OK : XD_ENOMEM;
}

int xd_json_set_target_names(json_t *body, const xd_model_t *m, const size_t *targets, size_t n) {
  if (xd_model_task(m) != XD_TASK_CLASSIFICATION) return XD_OK; /* a regression's output has no class */
  char *const *cls = xd_model_classes(m);
  size_t k = xd_model_n_outputs(m);
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    if (json_array_append_new(a, targets[i] < k ? json_string(cls[targets[i]]) : json_null())) {
      json_decref(a);
      a = NULL;
    }
  return a && json_object_set_new(body, "target_names", a) == 0 ? XD_OK : XD_ENOMEM;
}

void xd_json_set_warnings(json_t *body, json_t *warnings) {
  if (body && json_array_size(warnings)) json_object_set(body, "warnings", warnings);
}

void xd_json_hint(xd_error_t *err, const char *hint) {
  if (!err) return;
  size_t n = strlen(err->text);
  if (n + 3 < sizeof err->text) snprintf(err->text + n, sizeof err->text - n, "; %s", hint);
}

/* The first at most max bytes of s, cut before a UTF-8 continuation byte so that the
 * message stays valid UTF-8 (jansson refuses anything else). out has cap >= max + 1. */
static const char *clip(const char *s, size_t max, char *out, size_t cap) {
  size_t n = strnlen(s, max < cap ? max : cap - 1);
  if (s[n] != '\0')
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  memcpy(out, s, n);
  out[n] = '\0';
  return out;
}

int xd_json_check_file_keys(const json_t *obj, const char *const *allowed, const char *prefix, xd_error_t *err) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    if (strncmp(key, "x-", 2) == 0) continue;
    int ok = 0;
    for (const char *const *a = allowed; *a && !ok; a++) ok = strcmp(*a, key) == 0;
    if (!ok) {
      char f[XD_ERROR_FIELD_MAX];
      snprintf(f, sizeof f, "%s%s%s", prefix, *prefix ? "." : "", key);
      return xd_error_set(err, XD_EFORMAT, f, "unknown key '%.100s'", key);
    }
  }
  return XD_OK;
}

int xd_json_check_keys(const json_t *obj, const char *const *allowed, const char *prefix, xd_error_t *err) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    int ok = 0;
    for (const char *const *a = allowed; *a && !ok; a++) ok = strcmp(*a, key) == 0;
    if (!ok) {
      char f[XD_ERROR_FIELD_MAX];
      join(f, sizeof f, prefix, key);
      /* the nearest allowed name (a typo), then every allowed name, bounded */
      const char *near = NULL;
      size_t best = (size_t)-1, limit = (strnlen(key, 64) + 2) / 3;
      char names[240] = "";
      size_t len = 0;
      for (const char *const *a = allowed; *a; a++) {
        size_t d = xd_json_edit_distance(key, *a);
        if (d <= limit && d < best) best = d, near = *a;
        int w = snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "", *a);
        if (w > 0 && (size_t)w < sizeof names - len) len += (size_t)w;
        else names[len] = '\0';
      }
      char k[72];
      clip(key, 64, k, sizeof k);
      if (near)
        return xd_error_set(err, XD_EINVAL, f, "unknown field '%s'; did you mean '%s'? allowed: %s", k, near, names);
      return xd_error_set(err, XD_EINVAL, f, "unknown field '%s'; must be one of: %s", k, names);
    }
  }
  return XD_OK;
}

void xd_json_describe(const json_t *v, char *out, size_t cap) {
  char c[32];
  if (json_is_string(v))
    snprintf(out, cap, "\"%s\"%s", clip(json_string_value(v), 24, c, sizeof c), json_string_length(v) > 24 ? ".." : "");
  else if (json_is_null(v))
    snprintf(out, cap, "null");
  else if (json_is_boolean(v))
    snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
  else if (json_is_array(v))
    snprintf(out, cap, "a list");
  else if (json_is_object(v))
    snprintf(out, cap, "an object");
  else if (json_is_number(v))
    snprintf(out, cap, "%g", json_number_value(v));
  else
    snprintf(out, cap, "a value of another type");
}

int xd_json_number(const json_t *v, const char *field, double *out, xd_error_t *err) {
  if (!json_is_number(v)) return xd_error_set(err, XD_EINVAL, field, "must be a number");
  double x = json_number_value(v);
  if (!isfinite(x)) return xd_error_set(err, XD_EINVAL, field, "must be a finite number");
  *out = x;
  return XD_OK;
}

int xd_json_opt_size(const json_t *obj, const char *key, size_t min, size_t max, size_t *out, xd_error_t *err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return XD_OK;
  if (!json_is_integer(v)) return xd_error_set(err, XD_EINVAL, key, "must be an integer");
  json_int_t x = json_integer_value(v);
  if (x < 0 || (unsigned long long)x < min || (unsigned long long)x > max)
    return xd_error_set(err, XD_EINVAL, key, "must be between %zu and %zu", min, max);
  *out = (size_t)x;
  return XD_OK;
}

int xd_json_opt_double(const json_t *obj, const char *key, double min, double max, double *out, xd_error_t *err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return XD_OK;
  double x;
  int rc = xd_json_number(v, key, &x, err);
  if (rc != XD_OK) return rc;
  if (x < min || x > max) return xd_error_set(err, XD_EINVAL, key, "must be between %g and %g", min, max);
  *out = x;
  return XD_OK;
}

int xd_json_opt_bool(const json_t *obj, const char *key, int *out, xd_error_t *err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return XD_OK;
  if (!json_is_boolean(v)) return xd_error_set(err, XD_EINVAL, key, "must be true or false");
  *out = json_is_true(v);
  return XD_OK;
}

int xd_json_opt_enum(const json_t *obj, const char *key, const char *const *names, int *out, xd_error_t *err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return XD_OK;
  if (json_is_string(v))
    for (int i = 0; names[i]; i++)
      if (strcmp(names[i], json_string_value(v)) == 0) {
        *out = i;
        return XD_OK;
      }
  char list[256] = "";
  for (int i = 0; names[i]; i++) {
    size_t l = strlen(list);
    snprintf(list + l, sizeof list - l, "%s\"%s\"", i ? ", " : "", names[i]);
  }
  return xd_error_set(err, XD_EINVAL, key, "must be one of %s", list);
}

int xd_json_opt_seed(const json_t *obj, const char *key, uint64_t *out, int *given, xd_error_t *err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return XD_OK;
  if (json_is_integer(v) && json_integer_value(v) >= 0) {
    *out = (uint64_t)json_integer_value(v);
    if (given) *given = 1;
    return XD_OK;
  }
  /* jansson holds integers as int64: seeds above 2^63-1 arrive as reals when exact, or
   * can be sent as a decimal string. */
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (d >= 0 && d < 18446744073709551616.0 && d == floor(d)) {
      *out = (uint64_t)d;
      if (given) *given = 1;
      return XD_OK;
    }
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *end;
    if (*s >= '0' && *s <= '9') {
      unsigned long long x = strtoull(s, &end, 10);
      if (*end == '\0' && strlen(s) <= 20) {
        *out = x;
        if (given) *given = 1;
        return XD_OK;
      }
    }
  }
  return xd_error_set(err, XD_EINVAL, key, "must be an unsigned 64-bit integer");
}

int xd_json_row(const xd_model_t *m, const json_t *v, const char *field, double *row, xd_error_t *err) {
  size_t d = xd_model_n_features(m);
  const xd_feature_t *fs = xd_model_features(m);
  char f[XD_ERROR_FIELD_MAX];
  if (json_is_array(v)) {
    if (json_array_size(v) != d)
      return xd_error_set(err, XD_EINVAL, field, "%s has %zu values, model expects %zu", field,
                          json_array_size(v), d);
  } else if (json_is_object(v)) {
    const char *key;
    json_t *x;
    json_object_foreach((json_t *)v, key, x) {
      size_t j = 0;
      while (j < d && strcmp(fs[j].name, key) != 0) j++;
      if (j == d) {
        snprintf(f, sizeof f, "%s.%s", field, key);
        return xd_error_set(err, XD_EINVAL, f, "'%.100s' is not a feature of the model (must be one of the names GET /models/{name} lists)", key);
      }
    }
  } else {
    return xd_error_set(err, XD_EINVAL, field, "a row must be an array of values or an object by feature name");
  }
  /* The value's path is formatted only when it is needed for an error: on the success
   * path a snprintf per value was most of the decoding cost of a large batch. */
#define VALUE_FIELD()                                                   \
  (json_is_array(v) ? snprintf(f, sizeof f, "%s[%zu]", field, j)        \
                    : snprintf(f, sizeof f, "%s.%s", field, fs[j].name), \
   f)
  for (size_t j = 0; j < d; j++) {
    json_t *x = json_is_array(v) ? json_array_get(v, j) : json_object_get(v, fs[j].name);
    if (!x) return xd_error_set(err, XD_EINVAL, VALUE_FIELD(), "feature '%s' is missing: an object row must give every feature", fs[j].name);
    if (json_is_null(x) && xd_model_trees(m)) { /* a missing value: tree models route it */
      row[j] = NAN;
      continue;
    }
    if (fs[j].kind == XD_FEAT_CATEGORICAL) {
      long k = -1;
      if (json_is_string(x)) {
        for (size_t c = 0; c < fs[j].n_categories && k < 0; c++)
          if (strcmp(fs[j].categories[c], json_string_value(x)) == 0) k = (long)c;
      } else if (json_is_integer(x)) {
        json_int_t c = json_integer_value(x);
        if (c >= 0 && (size_t)c < fs[j].n_categories) k = (long)c;
      }
      if (k < 0)
        return xd_error_set(err, XD_EINVAL, VALUE_FIELD(), "must be a category of '%s' (a name or a code 0..%zu)",
                            fs[j].name, fs[j].n_categories - 1);
      row[j] = (double)k;
    } else if (json_is_number(x) && isfinite(json_number_value(x))) {
      row[j] = json_number_value(x);
    } else {
      /* names the feature and what was received, not only the position */
      char got[48];
      xd_json_describe(x, got, sizeof got);
      return xd_error_set(err, XD_EINVAL, VALUE_FIELD(), "feature '%.64s': expected a finite number, got %s",
                          fs[j].name, got);
    }
  }
#undef VALUE_FIELD
  return XD_OK;
}

int xd_json_instances(const xd_model_t *m, const json_t *body, int allow_single, size_t max_rows, double **X,
                      size_t *n, xd_error_t *err) {
  *X = NULL;
  *n = 0;
  json_t *many = json_object_get(body, "instances");
  json_t *one = allow_single ? json_object_get(body, "instance") : NULL;
  if (many && one) return xd_error_set(err, XD_EINVAL, "instance", "give either instances or instance, not both");
  if (!many && !one)
    return xd_error_set(err, XD_EINVAL, "instances", "required%s", allow_single ? " (or instance)" : "");
  size_t rows = 1;
  if (many) {
    if (!json_is_array(many)) return xd_error_set(err, XD_EINVAL, "instances", "must be a list of rows");
    rows = json_array_size(many);
    if (rows == 0) return xd_error_set(err, XD_EINVAL, "instances", "must not be empty");
    if (rows > max_rows)
      return xd_error_set(err, XD_ETOOBIG, "instances", "%zu rows is more than the limit of %zu", rows, max_rows);
  }
  /* Image and text rows have their own decoders (api/graph_rows.h): an endpoint that
   * reaches this one for such a model does not take them. */
  if (xd_model_input_kind(m) != XD_INPUT_TABULAR)
    return xd_error_set(err, XD_EINVAL, many ? "instances" : "instance",
                        "this model takes %s rows, which this endpoint does not accept (GET /models/{name} shows "
                        "the model's input)", xd_model_input_kind(m) == XD_INPUT_IMAGE ? "image" : "text");
  size_t d = xd_model_n_features(m);
  double *x = xd_malloc(xd_mul_size(rows, d) * sizeof *x);
  if (!x) return xd_error_set(err, XD_ENOMEM, "instances", "out of memory");
  char f[XD_ERROR_FIELD_MAX];
  for (size_t i = 0; i < rows; i++) {
    const json_t *r = many ? json_array_get(many, i) : one;
    if (many)
      snprintf(f, sizeof f, "instances[%zu]", i);
    else
      snprintf(f, sizeof f, "instance");
    int rc = xd_json_row(m, r, f, x + i * d, err);
    if (rc != XD_OK) {
      xd_free(x);
      return rc;
    }
  }
  *X = x;
  *n = rows;
  return XD_OK;
}

int xd_json_label(const xd_model_t *m, const json_t *v, const char *field, size_t *out, xd_error_t *err) {
  size_t k = xd_model_n_outputs(m);
  if (xd_model_task(m) == XD_TASK_REGRESSION) {
    if (json_is_integer(v) && json_integer_value(v) == 0) {
      *out = 0;
      return XD_OK;
    }
    return xd_error_set(err, XD_EINVAL, field, "a regression model has the single output 0");
  }
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i >= 0 && (size_t)i < k) {
      *out = (size_t)i;
      return XD_OK;
    }
    return xd_error_set(err, XD_EINVAL, field, "class index must be between 0 and %zu", k - 1);
  }
  if (json_is_string(v)) {
    char *const *cls = xd_model_classes(m);
    for (size_t i = 0; i < k; i++)
      if (strcmp(cls[i], json_string_value(v)) == 0) {
        *out = i;
        return XD_OK;
      }
    char names[200] = "";
    size_t len = 0;
    for (size_t i = 0; i < k; i++) {
      int w = snprintf(names + len, sizeof names - len, "%s'%s'", i ? ", " : "", cls[i]);
      if (w < 0 || (size_t)w >= sizeof names - len) {
        snprintf(names + (len < sizeof names - 5 ? len : sizeof names - 5), 5, ", ..");
        break;
      }
      len += (size_t)w;
    }
    char l[72];
    return xd_error_set(err, XD_EINVAL, field, "unknown label '%s'; must be a class index 0..%zu or one of %s",
                        clip(json_string_value(v), 64, l, sizeof l), k - 1, names);
  }
  return xd_error_set(err, XD_EINVAL, field, "a label is a class index or a class name");
}

json_t *xd_json_real(double x) {
  if (!isfinite(x)) {
    xd_json_nonfinite_note(); /* explanation endpoints refuse such a result (api/alloc.h) */
    return json_null();
  }
  return json_real(x);
}

json_t *xd_json_reals(const double *x, size_t n) {
  json_t *a = json_array();
  if (!a) return NULL;
  for (size_t i = 0; i < n; i++)
    if (json_array_append_new(a, xd_json_real(x[i])) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

json_t *xd_json_matrix(const double *x, size_t rows, size_t cols) {
  json_t *a = json_array();
  if (!a) return NULL;
  for (size_t i = 0; i < rows; i++)
    if (json_array_append_new(a, xd_json_reals(x + i * cols, cols)) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

json_t *xd_json_feature_value(const xd_model_t *m, size_t j, double v) {
  const xd_feature_t *f = &xd_model_features(m)[j];
  if (f->kind == XD_FEAT_CATEGORICAL && v >= 0 && v < (double)f->n_categories)
    return json_string(f->categories[(size_t)v]);
  return xd_json_real(v);
}
