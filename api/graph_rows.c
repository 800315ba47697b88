/* graph_rows.c — image and text rows of requests, and the JSON of tokens, offsets and a
 * graph model's input description. */
#include "api/graph_rows.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/base64.h"
#include "core/image.h"

const char *xd_input_kind_name(xd_input_kind_t k) {
  return k == XD_INPUT_IMAGE ? "image" : k == XD_INPUT_TEXT ? "text" : "tabular";
}

int xd_api_require_tabular(const xd_model_t *m, const char *name, const char *endpoint, xd_error_t *err) {
  xd_input_kind_t k = xd_model_input_kind(m);
  if (k == XD_INPUT_TABULAR) return XD_OK;
  return xd_error_set(err, XD_EINVAL, "model",
                      "model '%s' is an %s model: %s is defined on tabular features; for %s models use /predict, "
                      "/explain/gradient, /explain/occlusion, /explain/lime or /explain/shap",
                      name, xd_input_kind_name(k), endpoint, xd_input_kind_name(k));
}

/* The rows list of a body: "instances", or "instance" as a one-row list. *single set
 * when it was "instance". */
static int rows_of(const json_t *body, int allow_single, size_t max_rows, const json_t **list, int *single,
                   xd_error_t *err) {
  json_t *many = json_object_get(body, "instances"), *one = allow_single ? json_object_get(body, "instance") : NULL;
  if (many && one) return xd_error_set(err, XD_EINVAL, "instances", "give instances or instance, not both");
  if (!many && !one)
    return xd_error_set(err, XD_EINVAL, "instances", allow_single ? "instances (a list of rows) or instance is required"
                                                                  : "instances (a list of rows) is required");
  *single = one != NULL;
  *list = many;
  if (many) {
    if (!json_is_array(many) || json_array_size(many) == 0)
      return xd_error_set(err, XD_EINVAL, "instances", "must be a non-empty list of rows");
    if (json_array_size(many) > max_rows)
      return xd_error_set(err, XD_ETOOBIG, "instances", "%zu rows is more than the limit of %zu", json_array_size(many),
                          max_rows);
  }
  return XD_OK;
}

static const json_t *row_at(const json_t *body, const json_t *list, int single, size_t i, char *field, size_t cap) {
  if (single) {
    snprintf(field, cap, "instance");
    return json_object_get(body, "instance");
  }
  snprintf(field, cap, "instances[%zu]", i);
  return json_array_get(list, i);
}

/* ---- images -------------------------------------------------------------------------- */

/* {"b64": ...}: decoded, converted, resized, normalized. */
static int picture_row(const xd_image_prep_t *p, const json_t *v, const char *field, double *x, xd_error_t *err) {
  json_t *b = json_object_get(v, "b64");
  char f[XD_ERROR_FIELD_MAX];
  if (!json_is_string(b) || json_object_size(v) != 1)
    return xd_error_set(err, XD_EINVAL, field, "an image row is [C][H][W] pixel values or {\"b64\": \"<PNG or JPEG>\"}");
  snprintf(f, sizeof f, "%.150s.b64", field);
  uint8_t *raw = NULL;
  size_t len = 0;
  int rc = xd_base64_decode(json_string_value(b), json_string_length(b), &raw, &len, err);
  if (rc != XD_OK) {
    if (err) snprintf(err->field, sizeof err->field, "%s", f);
    return rc;
  }
  xd_image_t img;
  /* decoded pixels: at most what the largest picture needs (header-checked first) */
  rc = xd_image_decode(raw, len, (size_t)XD_IMAGE_MAX_PIXELS * 3, &img, err);
  xd_free(raw);
  if (rc == XD_OK) {
    rc = xd_image_to_input(&img, p, x, err);
    xd_image_deinit(&img);
  }
  if (rc != XD_OK && err) {
    snprintf(err->field, sizeof err->field, "%s", f);
    if (rc == XD_ETOOBIG) err->code = rc = XD_EINVAL; /* the picture, not the request, is too large */
  }
  return rc;
}

int xd_json_image_row(const xd_model_t *m, const json_t *v, const char *field, double *x, xd_error_t *err) {
  const xd_image_prep_t *p = xd_model_image_prep(m);
  if (!p) return xd_error_set(err, XD_EINVAL, field, "not an image model");
  if (json_is_object(v)) return picture_row(p, v, field, x, err);
  size_t C = p->channels, H = p->height, W = p->width;
  char f[XD_ERROR_FIELD_MAX];
  if (!json_is_array(v) || json_array_size(v) != C)
    return xd_error_set(err, XD_EINVAL, field, "an image row is a [%zu][%zu][%zu] list of pixel values (channels, "
                        "height, width) or {\"b64\": \"<PNG or JPEG>\"}", C, H, W);
  for (size_t c = 0; c < C; c++) {
    json_t *plane = json_array_get(v, c);
    if (!json_is_array(plane) || json_array_size(plane) != H) {
      snprintf(f, sizeof f, "%.80s[%zu]", field, c);
      return xd_error_set(err, XD_EINVAL, f, "expected %zu rows of pixels", H);
    }
    for (size_t y = 0; y < H; y++) {
      json_t *row = json_array_get(plane, y);
      if (!json_is_array(row) || json_array_size(row) != W) {
        snprintf(f, sizeof f, "%.80s[%zu][%zu]", field, c, y);
        return xd_error_set(err, XD_EINVAL, f, "expected %zu pixel values", W);
      }
      for (size_t xx = 0; xx < W; xx++) {
        json_t *px = json_array_get(row, xx);
        double val = json_number_value(px);
        if (!json_is_number(px) || !isfinite(val)) {
          snprintf(f, sizeof f, "%.80s[%zu][%zu][%zu]", field, c, y, xx);
          return xd_error_set(err, XD_EINVAL, f, "must be a finite number");
        }
        x[(c * H + y) * W + xx] = val;
      }
    }
  }
  xd_image_normalize(p, x);
  return XD_OK;
}

int xd_json_image_rows(const xd_model_t *m, const json_t *body, int allow_single, size_t max_rows, double **X,
                       size_t *n, xd_error_t *err) {
  *X = NULL;
  *n = 0;
  const json_t *list = NULL;
  int single = 0;
  int rc = rows_of(body, allow_single, max_rows, &list, &single, err);
  if (rc != XD_OK) return rc;
  size_t rows = single ? 1 : json_array_size(list), d = xd_model_n_inputs(m);
  if (rows * d > XD_GRAPH_ROWS_MAX_VALUES)
    return xd_error_set(err, XD_ETOOBIG, single ? "instance" : "instances",
                        "%zu images of %zu values are more than the limit of %zu values per request", rows, d,
                        XD_GRAPH_ROWS_MAX_VALUES);
  double *x = xd_malloc(rows * d * sizeof *x);
  if (!x) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  char f[64];
  for (size_t i = 0; i < rows; i++) {
    const json_t *v = row_at(body, list, single, i, f, sizeof f);
    if ((rc = xd_json_image_row(m, v, f, x + i * d, err)) != XD_OK) {
      xd_free(x);
      return rc;
    }
  }
  *X = x;
  *n = rows;
  return XD_OK;
}

/* ---- text ----------------------------------------------------------------------------------- */

void xd_tok_rows_free(xd_tok_encoding_t *rows, size_t n) {
  for (size_t i = 0; rows && i < n; i++) xd_tok_encoding_deinit(&rows[i]);
  xd_free(rows);
}

int xd_json_text_rows(const xd_model_t *m, const json_t *body, int allow_single, size_t max_rows,
                      xd_tok_encoding_t **out, size_t *n, json_t *warnings, xd_error_t *err) {
  *out = NULL;
  *n = 0;
  const xd_tokenizer_t *tok = xd_model_tokenizer(m);
  if (!tok) return xd_error_set(err, XD_EINVAL, "model", "not a text model");
  const json_t *list = NULL;
  int single = 0;
  int rc = rows_of(body, allow_single, max_rows, &list, &single, err);
  if (rc != XD_OK) return rc;
  size_t count = single ? 1 : json_array_size(list), max_length = xd_model_max_length(m);
  xd_tok_encoding_t *rows = xd_calloc(count, sizeof *rows);
  if (!rows) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  char f[64];
  for (size_t i = 0; i < count; i++) {
    const json_t *v = row_at(body, list, single, i, f, sizeof f);
    if (!json_is_string(v)) {
      rc = xd_error_set(err, XD_EINVAL, f, "a text model's row is a string, not %s",
                        json_is_number(v) ? "a number" : json_is_array(v) ? "a list" : json_is_object(v) ? "an object" : "null or a boolean");
      break;
    }
    rc = xd_tokenizer_encode(tok, json_string_value(v), json_string_length(v), max_length, &rows[i], err);
    if (rc != XD_OK) {
      if (err) snprintf(err->field, sizeof err->field, "%s", f);
      if (rc == XD_ETOOBIG && err) err->code = rc = XD_EINVAL;
      break;
    }
    if (rows[i].n == 0) {
      rc = xd_error_set(err, XD_EINVAL, f, "the text gives no tokens");
      break;
    }
    if (rows[i].truncated && warnings) {
      char w[128];
      snprintf(w, sizeof w, "%s: text truncated to %zu tokens", f, max_length);
      if (json_array_append_new(warnings, json_string(w)) != 0) {
        rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
        break;
      }
    }
  }
  if (rc != XD_OK) {
    xd_tok_rows_free(rows, count);
    return rc;
  }
  *out = rows;
  *n = count;
  return XD_OK;
}

json_t *xd_json_tokens(const xd_tok_encoding_t *rows, size_t n) {
  json_t *all = json_array();
  for (size_t i = 0; all && i < n; i++) {
    json_t *r = json_array();
    for (size_t k = 0; r && k < rows[i].n; k++) json_array_append_new(r, json_string(rows[i].tokens[k]));
    json_array_append_new(all, r);
  }
  return all;
}

json_t *xd_json_offsets(const xd_tok_encoding_t *rows, size_t n) {
  json_t *all = json_array();
  for (size_t i = 0; all && i < n; i++) {
    json_t *r = json_array();
    for (size_t k = 0; r && k < rows[i].n; k++)
      json_array_append_new(r, rows[i].start[k] == XD_TOK_NO_OFFSET
                                   ? json_null()
                                   : json_pack("[I, I]", (json_int_t)rows[i].start[k], (json_int_t)rows[i].end[k]));
    json_array_append_new(all, r);
  }
  return all;
}

/* ---- metadata ---------------------------------------------------------------------------------- */

static json_t *shape_json(const xd_graph_info_t *t) {
  json_t *a = json_array();
  for (size_t d = 0; a && d < t->rank; d++)
    json_array_append_new(a, t->dims[d].size >= 0 ? json_integer((json_int_t)t->dims[d].size)
                                                  : json_string(t->dims[d].symbol ? t->dims[d].symbol : "?"));
  return a;
}

json_t *xd_json_model_input(const xd_model_t *m) {
  xd_input_kind_t k = xd_model_input_kind(m);
  json_t *o = json_pack("{s:s}", "kind", xd_input_kind_name(k));
  if (!o) return NULL;
  if (k == XD_INPUT_IMAGE) {
    const xd_image_prep_t *p = xd_model_image_prep(m);
    json_object_set_new(o, "channels", json_integer((json_int_t)p->channels));
    json_object_set_new(o, "height", json_integer((json_int_t)p->height));
    json_object_set_new(o, "width", json_integer((json_int_t)p->width));
    json_object_set_new(o, "scale", json_real(p->scale));
    json_t *mean = json_array(), *std = json_array();
    for (size_t c = 0; c < p->channels; c++) {
      json_array_append_new(mean, json_real(p->mean[c]));
      json_array_append_new(std, json_real(p->std[c]));
    }
    json_object_set_new(o, "mean", mean);
    json_object_set_new(o, "std", std);
  } else if (k == XD_INPUT_TEXT) {
    const xd_tokenizer_t *t = xd_model_tokenizer(m);
    json_object_set_new(o, "max_length", json_integer((json_int_t)xd_model_max_length(m)));
    json_object_set_new(o, "vocab_size", json_integer((json_int_t)xd_tokenizer_vocab_size(t)));
    json_t *sp = json_object();
    json_object_set_new(sp, "unk", json_string(xd_tokenizer_unk_token(t)));
    if (xd_tokenizer_pad_token(t)) json_object_set_new(sp, "pad", json_string(xd_tokenizer_pad_token(t)));
    static const char *const names[][2] = {{"cls", "[CLS]"}, {"sep", "[SEP]"}, {"mask", "[MASK]"}};
    for (size_t i = 0; i < 3; i++)
      if (xd_tokenizer_token_id(t, names[i][1]) >= 0) json_object_set_new(sp, names[i][0], json_string(names[i][1]));
    json_object_set_new(o, "special_tokens", sp);
    const char *emb = xd_model_embedding(m);
    json_object_set_new(o, "embedding", emb ? json_string(emb) : json_null());
  }
  return o;
}

json_t *xd_json_model_nodes(const xd_model_t *m) {
  const xd_graph_t *g = xd_model_graph(m);
  json_t *a = json_array();
  for (size_t i = 0; a && g && i < xd_graph_n_nodes(g); i++) {
    const xd_graph_info_t *t = xd_graph_node(g, i);
    json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "name", t->name, "op", t->op, "shape", shape_json(t)));
  }
  return a;
}
