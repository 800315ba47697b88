/* v2_graph.c — Open Inference Protocol input tensors of image and text models. */
#include "api/v2_graph.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/graph_rows.h"
#include "api/json.h"
#include "core/alloc.h"

static int numeric(const char *dt) {
  static const char *const ok[] = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
                                   "UINT8", "UINT16", "UINT32", "UINT64", NULL};
  for (int i = 0; ok[i]; i++)
    if (strcmp(dt, ok[i]) == 0) return 1;
  return 0;
}

/* Appends the leaves of nested arrays v to out (a flat JSON array), at most cap. */
static int leaves(const json_t *v, json_t *out, size_t cap, int depth) {
  if (depth > 6) return -1;
  if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++)
      if (leaves(json_array_get(v, i), out, cap, depth + 1) != 0) return -1;
    return 0;
  }
  if (json_array_size(out) >= cap) return -1;
  return json_array_append(out, (json_t *)v) == 0 ? 0 : -1;
}

int xd_v2_graph_inputs(const xd_model_t *m, const json_t *inputs, size_t max_rows, double **X, xd_tok_encoding_t **text,
                       size_t *n, json_t *warnings, xd_error_t *err) {
  *X = NULL;
  *text = NULL;
  *n = 0;
  xd_input_kind_t kind = xd_model_input_kind(m);
  const char *f = "inputs[0]";
  if (!json_is_array(inputs) || json_array_size(inputs) != 1)
    return xd_error_set(err, XD_EINVAL, "inputs", "an %s model takes one input tensor", kind == XD_INPUT_IMAGE ? "image" : "text");
  const json_t *in = json_array_get(inputs, 0);
  static const char *const keys[] = {"name", "shape", "datatype", "data", "parameters", NULL};
  if (!json_is_object(in)) return xd_error_set(err, XD_EINVAL, f, "a tensor is an object");
  int rc = xd_json_check_keys(in, keys, f, err);
  if (rc != XD_OK) return rc;
  const char *dt = json_string_value(json_object_get(in, "datatype"));
  const json_t *shape = json_object_get(in, "shape"), *data = json_object_get(in, "data");
  if (!json_string_value(json_object_get(in, "name")) || !dt || !json_is_array(shape) || !data)
    return xd_error_set(err, XD_EINVAL, f, "a tensor needs name, shape, datatype and data");
  size_t rank = json_array_size(shape), dims[4] = {0}, elems = 1;
  if (rank < 1 || rank > 4) return xd_error_set(err, XD_EINVAL, f, "shape has 1 to 4 dimensions");
  for (size_t r = 0; r < rank; r++) {
    json_t *dim = json_array_get(shape, r);
    if (!json_is_integer(dim) || json_integer_value(dim) < 1 || json_integer_value(dim) > (json_int_t)1 << 30)
      return xd_error_set(err, XD_EINVAL, f, "shape dimensions must be positive integers");
    dims[r] = (size_t)json_integer_value(dim);
    if (elems > ((size_t)1 << 34) / dims[r]) return xd_error_set(err, XD_ETOOBIG, f, "the tensor is too large");
    elems *= dims[r];
  }
  if (dims[0] > max_rows) return xd_error_set(err, XD_ETOOBIG, f, "%zu rows is more than the limit of %zu", dims[0], max_rows);
  int bytes = strcmp(dt, "BYTES") == 0;
  const xd_image_prep_t *p = xd_model_image_prep(m);
  if (kind == XD_INPUT_IMAGE && !bytes) {
    if (!numeric(dt)) return xd_error_set(err, XD_EINVAL, f, "datatype %.20s is not supported (a number type, or BYTES)", dt);
    if (rank != 4 || dims[1] != p->channels || dims[2] != p->height || dims[3] != p->width)
      return xd_error_set(err, XD_EINVAL, f, "an image tensor has shape [n, %zu, %zu, %zu] (pixel values)", p->channels,
                          p->height, p->width);
    if (elems > XD_GRAPH_ROWS_MAX_VALUES)
      return xd_error_set(err, XD_ETOOBIG, f, "%zu values are more than the limit of %zu", elems, XD_GRAPH_ROWS_MAX_VALUES);
  } else if (!bytes) {
    return xd_error_set(err, XD_EINVAL, f, "a text model's input is a BYTES tensor of texts");
  } else if (rank > 2 || (rank == 2 && dims[1] != 1)) {
    return xd_error_set(err, XD_EINVAL, f, "a BYTES tensor has shape [n] or [n, 1]");
  }
  json_t *flat = json_array();
  if (!flat) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if (leaves(data, flat, elems, 0) != 0 || json_array_size(flat) != elems) {
    json_decref(flat);
    return xd_error_set(err, XD_EINVAL, f, "data must hold exactly %zu %s (the product of shape)", elems,
                        bytes ? "strings" : "numbers");
  }
  size_t rows = dims[0];
  if (kind == XD_INPUT_IMAGE && !bytes) {
    double *x = xd_malloc(elems * sizeof *x);
    if (!x) rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; x && i < elems; i++) {
      json_t *v = json_array_get(flat, i);
      if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        char g[64];
        snprintf(g, sizeof g, "%s.data[%zu]", f, i);
        rc = xd_error_set(err, XD_EINVAL, g, "must be a finite number");
        break;
      }
      x[i] = json_number_value(v);
    }
    size_t d = xd_model_n_inputs(m);
    for (size_t i = 0; rc == XD_OK && i < rows; i++) xd_image_normalize(p, x + i * d);
    if (rc == XD_OK) *X = x;
    else xd_free(x);
  } else {
    /* the rows as a body {"instances": [...]} for the /predict decoders, whose errors
     * then name inputs[0].data[i] */
    json_t *body = json_pack("{s:O}", "instances", flat);
    if (!body) rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; rc == XD_OK && kind == XD_INPUT_IMAGE && i < rows; i++) {
      json_t *s = json_array_get(flat, i);
      if (!json_is_string(s)) {
        char g[64];
        snprintf(g, sizeof g, "%s.data[%zu]", f, i);
        rc = xd_error_set(err, XD_EINVAL, g, "must be a string (base64 PNG or JPEG)");
      } else {
        json_array_set_new(json_object_get(body, "instances"), i, json_pack("{s:O}", "b64", s));
      }
    }
    if (rc == XD_OK)
      rc = kind == XD_INPUT_IMAGE ? xd_json_image_rows(m, body, 0, max_rows, X, &rows, err)
                                  : xd_json_text_rows(m, body, 0, max_rows, text, &rows, warnings, err);
    if (rc != XD_OK && err && strncmp(err->field, "instances[", 10) == 0) {
      char g[XD_ERROR_FIELD_MAX];
      snprintf(g, sizeof g, "%s.data%.140s", f, err->field + 9);
      snprintf(err->field, sizeof err->field, "%s", g);
    }
    json_decref(body);
  }
  json_decref(flat);
  if (rc == XD_OK) *n = rows;
  return rc;
}

json_t *xd_v2_graph_input_meta(const xd_model_t *m) {
  const xd_image_prep_t *p = xd_model_image_prep(m);
  if (p)
    return json_pack("[{s:s, s:s, s:[i, I, I, I]}]", "name", "input", "datatype", "FP32", "shape", -1,
                     (json_int_t)p->channels, (json_int_t)p->height, (json_int_t)p->width);
  return json_pack("[{s:s, s:s, s:[i]}]", "name", "text", "datatype", "BYTES", "shape", -1);
}
