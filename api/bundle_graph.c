/* bundle_graph.c — "onnx", "input", "output" and the background of an image or text
 * bundle -> xd_graph_spec_t (core/model.h). */
#include "api/bundle_graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/bundle_limits.h"
#include "api/files.h"
#include "api/json.h"
#include "api/tokenizer_json.h"
#include "core/alloc.h"
#include "core/base64.h"
#include "core/image.h"

/* Reads a file named by a bundle (relative to dir) into *data; field names it. */
static int read_named(const json_t *v, const char *dir, size_t max, const char *field, char **data, size_t *len,
                      xd_error_t *err) {
  if (!json_is_string(v)) return xd_error_set(err, XD_EFORMAT, field, "must be a file name");
  const char *name = json_string_value(v);
  if (!dir) return xd_error_set(err, XD_EFORMAT, field, "a file is not allowed here: send the content inline");
  if (!name[0] || name[0] == '/' || strstr(name, ".."))
    return xd_error_set(err, XD_EFORMAT, field, "must be a relative file name inside the model folder");
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int rc = xd_read_file(path, max, data, len, err);
  if (rc != XD_OK) {
    xd_error_prefix_field(err, field);
    if (rc == XD_ENOMEM) return rc;
    return err ? (err->code = XD_EFORMAT) : XD_EFORMAT;
  }
  return XD_OK;
}

/* ---- input -------------------------------------------------------------------------------- */

static int size_in(const json_t *o, const char *key, size_t lo, size_t hi, size_t *out, xd_error_t *err) {
  json_t *v = json_object_get(o, key);
  char f[64];
  snprintf(f, sizeof f, "input.%s", key);
  if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo || json_integer_value(v) > (json_int_t)hi)
    return xd_error_set(err, XD_EFORMAT, f, "must be an integer between %zu and %zu", lo, hi);
  *out = (size_t)json_integer_value(v);
  return XD_OK;
}

/* "mean"/"std": one number per channel (a single number stands for every channel). */
static int per_channel(const json_t *o, const char *key, size_t c, double dflt, double *out, xd_error_t *err) {
  json_t *v = json_object_get(o, key);
  char f[64];
  for (size_t k = 0; k < c; k++) out[k] = dflt;
  if (!v) return XD_OK;
  if (json_is_number(v)) {
    for (size_t k = 0; k < c; k++) out[k] = json_number_value(v);
    return XD_OK;
  }
  snprintf(f, sizeof f, "input.%s", key);
  if (!json_is_array(v) || json_array_size(v) != c)
    return xd_error_set(err, XD_EFORMAT, f, "must be a list of %zu numbers (one per channel)", c);
  for (size_t k = 0; k < c; k++) {
    json_t *x = json_array_get(v, k);
    snprintf(f, sizeof f, "input.%s[%zu]", key, k);
    if (!json_is_number(x)) return xd_error_set(err, XD_EFORMAT, f, "must be a number");
    out[k] = json_number_value(x);
  }
  return XD_OK;
}

static int image_input(const json_t *in, xd_graph_spec_t *g, xd_error_t *err) {
  static const char *const keys[] = {"kind", "channels", "height", "width", "scale", "mean", "std", NULL};
  int rc = xd_json_check_file_keys(in, keys, "input", err);
  xd_image_prep_t *p = &g->image;
  if (rc == XD_OK) rc = size_in(in, "channels", 1, 3, &p->channels, err);
  if (rc == XD_OK && p->channels == 2) rc = xd_error_set(err, XD_EFORMAT, "input.channels", "must be 1 (gray) or 3 (RGB)");
  if (rc == XD_OK) rc = size_in(in, "height", 1, XD_IMAGE_MAX_SIDE, &p->height, err);
  if (rc == XD_OK) rc = size_in(in, "width", 1, XD_IMAGE_MAX_SIDE, &p->width, err);
  if (rc != XD_OK) return rc;
  json_t *sc = json_object_get(in, "scale");
  p->scale = 1;
  if (sc) {
    if (!json_is_number(sc)) return xd_error_set(err, XD_EFORMAT, "input.scale", "must be a number");
    p->scale = json_number_value(sc);
  }
  if ((rc = per_channel(in, "mean", p->channels, 0, p->mean, err)) != XD_OK ||
      (rc = per_channel(in, "std", p->channels, 1, p->std, err)) != XD_OK)
    return rc;
  return xd_image_prep_check(p, "input", err);
}

static int text_input(const json_t *in, const char *dir, xd_graph_spec_t *g, xd_error_t *err) {
  static const char *const keys[] = {"kind", "tokenizer", "max_length", "embedding", NULL};
  int rc = xd_json_check_file_keys(in, keys, "input", err);
  if (rc == XD_OK) rc = size_in(in, "max_length", 1, XD_TOK_MAX_LENGTH, &g->max_length, err);
  if (rc != XD_OK) return rc;
  json_t *tok = json_object_get(in, "tokenizer"), *emb = json_object_get(in, "embedding");
  if (json_is_object(tok)) {
    rc = xd_tokenizer_json_new(tok, &g->tokenizer, err);
  } else if (json_is_string(tok)) {
    char *data = NULL;
    size_t len = 0;
    rc = read_named(tok, dir, XD_TOKENIZER_JSON_MAX_BYTES, "input.tokenizer", &data, &len, err);
    if (rc != XD_OK) return rc;
    rc = xd_tokenizer_json_load(data, len, &g->tokenizer, err);
    xd_free(data);
  } else {
    return xd_error_set(err, XD_EFORMAT, "input.tokenizer", "must be a tokenizer.json file name or its object");
  }
  if (rc != XD_OK) {
    if (err && err->field[0]) xd_error_prefix_field(err, "input.tokenizer");
    else if (err) snprintf(err->field, sizeof err->field, "input.tokenizer");
    if (rc != XD_ENOMEM && err) err->code = rc = XD_EFORMAT;
    return rc;
  }
  if (emb) {
    if (!json_is_string(emb) || !json_string_length(emb))
      return xd_error_set(err, XD_EFORMAT, "input.embedding", "must be a tensor name");
    if (!(g->embedding = xd_strdup(json_string_value(emb)))) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  return XD_OK;
}

/* ---- background ------------------------------------------------------------------------ */

/* One background picture (a file name, or {"b64": ...}) into row x. */
static int bg_image(const json_t *v, const char *dir, const char *field, const xd_image_prep_t *p, double *x,
                    xd_error_t *err) {
  char *data = NULL;
  uint8_t *raw = NULL;
  size_t len = 0;
  int rc;
  if (json_is_object(v)) {
    json_t *b = json_object_get(v, "b64");
    if (!json_is_string(b) || json_object_size(v) != 1)
      return xd_error_set(err, XD_EFORMAT, field, "must be a file name or {\"b64\": \"<PNG or JPEG>\"}");
    rc = xd_base64_decode(json_string_value(b), json_string_length(b), &raw, &len, err);
    if (rc != XD_OK) {
      if (err) snprintf(err->field, sizeof err->field, "%.150s.b64", field);
      return rc == XD_ENOMEM ? rc : (err ? (err->code = XD_EFORMAT) : XD_EFORMAT);
    }
  } else if ((rc = read_named(v, dir, XD_BUNDLE_MAX_IMAGE_BYTES, field, &data, &len, err)) != XD_OK) {
    return rc;
  }
  xd_image_t img;
  rc = xd_image_decode(raw ? raw : (const uint8_t *)data, len, XD_BUNDLE_MAX_IMAGE_BYTES, &img, err);
  xd_free(data);
  xd_free(raw);
  if (rc == XD_OK) {
    rc = xd_image_to_input(&img, p, x, err);
    xd_image_deinit(&img);
  }
  if (rc != XD_OK && err) {
    snprintf(err->field, sizeof err->field, "%s", field);
    if (rc != XD_ENOMEM) err->code = rc = XD_EFORMAT;
  }
  return rc;
}

static int background(const json_t *bg, const char *dir, xd_graph_spec_t *g, xd_error_t *err) {
  if (!json_is_object(bg)) return xd_error_set(err, XD_EFORMAT, "background", "must be an object");
  int image = g->kind == XD_INPUT_IMAGE;
  static const char *const ikeys[] = {"images", NULL}, *const tkeys[] = {"texts", NULL};
  int rc = xd_json_check_file_keys(bg, image ? ikeys : tkeys, "background", err);
  if (rc != XD_OK) return rc;
  const char *key = image ? "background.images" : "background.texts";
  json_t *list = json_object_get(bg, image ? "images" : "texts");
  size_t n = json_array_size(list), max = image ? XD_BUNDLE_MAX_BG_IMAGES : XD_BUNDLE_MAX_BG_TEXTS;
  if (!json_is_array(list) || n == 0 || n > max)
    return xd_error_set(err, XD_EFORMAT, key, "must be a list of 1 to %zu %s", max, image ? "pictures" : "texts");
  char f[XD_ERROR_FIELD_MAX];
  if (image) {
    size_t d = g->image.channels * g->image.height * g->image.width;
    if (n * d > XD_BUNDLE_MAX_BG_VALUES)
      return xd_error_set(err, XD_EFORMAT, key, "%zu pictures of %zu values are over the limit of %zu values", n, d,
                          XD_BUNDLE_MAX_BG_VALUES);
    if (!(g->background_images = xd_malloc(n * d * sizeof *g->background_images)))
      return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
      snprintf(f, sizeof f, "%s[%zu]", key, i);
      if ((rc = bg_image(json_array_get(list, i), dir, f, &g->image, g->background_images + i * d, err)) != XD_OK)
        return rc;
    }
  } else {
    if (!(g->background_texts = xd_calloc(n, sizeof *g->background_texts)))
      return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
      json_t *t = json_array_get(list, i);
      snprintf(f, sizeof f, "%s[%zu]", key, i);
      if (!json_is_string(t)) return xd_error_set(err, XD_EFORMAT, f, "must be a string");
      if (memchr(json_string_value(t), 0, json_string_length(t))) return xd_error_set(err, XD_EFORMAT, f, "must not contain NUL");
      if (!(g->background_texts[i] = xd_strdup(json_string_value(t))))
        return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
      g->n_background = i + 1;
    }
  }
  g->n_background = n;
  return XD_OK;
}

/* ---- the bundle ------------------------------------------------------------------------------ */

int xd_bundle_graph_decode(const json_t *root, const char *dir, const void *onnx, size_t onnx_len,
                           xd_model_spec_t *s, xd_error_t *err) {
  xd_graph_spec_t *g = &s->graph;
  static const char *const tabular[] = {"features", "preprocess", "layers", NULL};
  for (const char *const *k = tabular; *k; k++)
    if (json_object_get(root, *k))
      return xd_error_set(err, XD_EFORMAT, *k, "an image or text model (with \"input\") has no %s", *k);
  json_t *in = json_object_get(root, "input"), *kind = json_object_get(in, "kind");
  if (!json_is_object(in)) return xd_error_set(err, XD_EFORMAT, "input", "must be an object with a \"kind\"");
  const char *k = json_string_value(kind);
  int rc;
  if (k && strcmp(k, "image") == 0) {
    g->kind = XD_INPUT_IMAGE;
    rc = image_input(in, g, err);
  } else if (k && strcmp(k, "text") == 0) {
    g->kind = XD_INPUT_TEXT;
    rc = text_input(in, dir, g, err);
  } else {
    return xd_error_set(err, XD_EFORMAT, "input.kind", "must be \"image\" or \"text\"");
  }
  if (rc != XD_OK) return rc;
  json_t *out = json_object_get(root, "output");
  if (out) {
    const char *o = json_string_value(out);
    if (!o || (strcmp(o, "probabilities") != 0 && strcmp(o, "logits") != 0))
      return xd_error_set(err, XD_EFORMAT, "output", "must be \"probabilities\" or \"logits\"");
    g->output_logits = strcmp(o, "logits") == 0;
  }
  json_t *bg = json_object_get(root, "background");
  if (bg && (rc = background(bg, dir, g, err)) != XD_OK) return rc;
  /* the graph last: its errors are the longest to reach */
  char *data = NULL;
  json_t *jonnx = json_object_get(root, "onnx");
  if (onnx && jonnx) return xd_error_set(err, XD_EFORMAT, "onnx", "the ONNX graph comes with the upload: leave out onnx");
  if (!onnx) {
    if (!jonnx) return xd_error_set(err, XD_EFORMAT, "onnx", "an image or text model needs its ONNX graph");
    if ((rc = read_named(jonnx, dir, XD_BUNDLE_MAX_BYTES, "onnx", &data, &onnx_len, err)) != XD_OK) return rc;
    onnx = data;
  }
  rc = xd_graph_from_onnx(onnx, onnx_len, &g->graph, err);
  xd_free(data);
  if (rc != XD_OK && rc != XD_ENOMEM && err) err->code = rc = XD_EFORMAT;
  return rc;
}

/* One helper for every file a bundle names, so the digest and decoding agree on paths. */
void xd_bundle_digest_file(xd_sha256_t *c, const char *dir, const json_t *name) {
  if (!dir || !json_is_string(name)) return;
  const char *n = json_string_value(name);
  if (!n[0] || n[0] == '/' || strstr(n, "..")) return;
  char path[4096], *data = NULL;
  size_t len = 0;
  snprintf(path, sizeof path, "%s/%s", dir, n);
  if (xd_read_file(path, XD_BUNDLE_MAX_BYTES, &data, &len, NULL) != XD_OK) return;
  xd_sha256_update(c, data, len);
  xd_free(data);
}

void xd_bundle_graph_digest(xd_sha256_t *c, const json_t *root, const char *dir) {
  json_t *in = json_object_get(root, "input"), *bg = json_object_get(root, "background");
  if (!json_is_object(in)) return;
  xd_bundle_digest_file(c, dir, json_object_get(in, "tokenizer"));
  json_t *imgs = json_object_get(bg, "images");
  for (size_t i = 0; i < json_array_size(imgs); i++) xd_bundle_digest_file(c, dir, json_array_get(imgs, i));
}
