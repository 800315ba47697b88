/* v2.c — Open Inference Protocol (KServe V2) over the same models.
 *
 * Inputs: either one tensor of shape [n, n_features] (numeric features; categorical
 * ones as integer codes), or one tensor per feature named after it, of shape [n] or
 * [n, 1] (categorical features may then be BYTES holding category names). Data may be
 * flat or nested. Outputs: classification "probabilities" (FP64 [n, k]), "label"
 * (BYTES [n]) and "label_index" (INT64 [n]); regression "predictions" (FP64 [n, 1]).
 * "outputs" in the request selects among them. The model version is the registry's. */
#include "api/graph_rows.h"
#include "api/v2_graph.h"
#include "api/v2.h"
#include "api/alloc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

#define V2_VERSION "0.1.0"

static void oip_error(xd_api_response_t *resp, int code, const char *fmt, const char *arg) {
  xd_error_t e;
  xd_error_set(&e, code, NULL, fmt, arg);
  xd_api_error(&e, resp);
}

static json_t *tensor_meta(const char *name, const char *dt, json_int_t d0, json_int_t d1) {
  json_t *shape = d1 ? json_pack("[I, I]", d0, d1) : json_pack("[I]", d0);
  return json_pack("{s:s, s:s, s:o}", "name", name, "datatype", dt, "shape", shape);
}

static json_t *model_metadata(const xd_model_entry_t *e) {
  const xd_model_t *m = e->model;
  char ver[32];
  snprintf(ver, sizeof ver, "%llu", (unsigned long long)e->version);
  json_t *inputs = json_array(), *outputs = json_array();
  json_array_append_new(inputs, tensor_meta("input", "FP64", -1, (json_int_t)xd_model_n_features(m)));
  if (xd_model_task(m) == XD_TASK_CLASSIFICATION) {
    json_array_append_new(outputs, tensor_meta("probabilities", "FP64", -1, (json_int_t)xd_model_n_outputs(m)));
    json_array_append_new(outputs, tensor_meta("label", "BYTES", -1, 0));
    json_array_append_new(outputs, tensor_meta("label_index", "INT64", -1, 0));
  } else {
    json_array_append_new(outputs, tensor_meta("predictions", "FP64", -1, 1));
  }
  if (xd_model_input_kind(m) != XD_INPUT_TABULAR) { /* image and text models (api/v2_graph.c) */
    json_decref(inputs);
    return json_pack("{s:s, s:[s], s:s, s:o, s:o}", "name", e->name, "versions", ver, "platform", "explaind_graph",
                     "inputs", xd_v2_graph_input_meta(m), "outputs", outputs);
  }
  json_t *names = json_array();
  const xd_feature_t *fs = xd_model_features(m);
  for (size_t j = 0; j < xd_model_n_features(m); j++) json_array_append_new(names, json_string(fs[j].name));
  return json_pack("{s:s, s:[s], s:s, s:o, s:o, s:{s:o}}", "name", e->name, "versions", ver, "platform",
                   "explaind_dense", "inputs", inputs, "outputs", outputs, "parameters", "feature_names", names);
}

/* ---- tensors ------------------------------------------------------------------------ */

static int numeric_type(const char *dt) {
  static const char *const ok[] = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
                                   "UINT8", "UINT16", "UINT32", "UINT64", NULL};
  for (int i = 0; ok[i]; i++)
    if (strcmp(dt, ok[i]) == 0) return 1;
  return 0;
}

/* Flattens nested arrays of data into vals (numbers) or strs (BYTES), row-major. */
static int flatten(const json_t *v, int bytes, double *vals, const char **strs, size_t cap, size_t *n, int depth) {
  if (depth > 8) return -1;
  if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++)
      if (flatten(json_array_get(v, i), bytes, vals, strs, cap, n, depth + 1) != 0) return -1;
    return 0;
  }
  if (*n >= cap) return -1;
  if (bytes) {
    if (!json_is_string(v)) return -1;
    strs[(*n)++] = json_string_value(v);
  } else {
    if (!json_is_number(v) || !isfinite(json_number_value(v))) return -1;
    vals[(*n)++] = json_number_value(v);
  }
  return 0;
}

typedef struct v2_job {
  xd_model_entry_t *entry;
  double *X, *out;
  size_t n;
  json_t *id;        /* echoed */
  unsigned want;     /* bit mask of requested outputs: 1 probabilities, 2 label, 4 label_index, 8 predictions */
  xd_tok_encoding_t *text; /* text models: the rows, tokenized */
  json_t *warnings;        /* text models: truncations, answered in "parameters" */
} v2_job_t;

static int v2_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  v2_job_t *j = state;
  (void)part;
  if (j->text) return xd_model_predict_text(j->entry->model, j->text, j->n, j->out, cancel, err);
  return xd_model_predict(j->entry->model, j->X, j->n, j->out, cancel, err);
}

static json_t *out_tensor(const char *name, const char *dt, size_t n, size_t k, json_t *data) {
  json_t *shape = k ? json_pack("[I, I]", (json_int_t)n, (json_int_t)k) : json_pack("[I]", (json_int_t)n);
  return json_pack("{s:s, s:s, s:o, s:o}", "name", name, "datatype", dt, "shape", shape, "data", data);
}

static json_t *v2_encode(void *state, xd_error_t *err) {
  v2_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  size_t k = xd_model_n_outputs(m);
  char ver[32];
  snprintf(ver, sizeof ver, "%llu", (unsigned long long)j->entry->version);
  json_t *outs = json_array();
  if (xd_model_task(m) == XD_TASK_CLASSIFICATION) {
    if (j->want & 1) json_array_append_new(outs, out_tensor("probabilities", "FP64", j->n, k, xd_json_reals(j->out, j->n * k)));
    json_t *lab = json_array(), *idx = json_array();
    for (size_t i = 0; i < j->n; i++) {
      size_t c = xd_model_argmax(m, j->out + i * k);
      json_array_append_new(lab, json_string(xd_model_classes(m)[c]));
      json_array_append_new(idx, json_integer((json_int_t)c));
    }
    if (j->want & 2) json_array_append_new(outs, out_tensor("label", "BYTES", j->n, 0, lab));
    else json_decref(lab);
    if (j->want & 4) json_array_append_new(outs, out_tensor("label_index", "INT64", j->n, 0, idx));
    else json_decref(idx);
  } else {
    json_array_append_new(outs, out_tensor("predictions", "FP64", j->n, 1, xd_json_reals(j->out, j->n)));
  }
  json_t *o = json_pack("{s:s, s:s, s:o}", "model_name", j->entry->name, "model_version", ver, "outputs", outs);
  if (!o) {
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    return NULL;
  }
  if (j->id) json_object_set(o, "id", j->id);
  if (json_array_size(j->warnings)) json_object_set_new(o, "parameters", json_pack("{s:O}", "warnings", j->warnings));
  return o;
}

static void v2_free(void *state) {
  v2_job_t *j = state;
  if (!j) return;
  xd_model_entry_release(j->entry);
  json_decref(j->id);
  xd_free(j->X);
  xd_free(j->out);
  xd_tok_rows_free(j->text, j->n);
  json_decref(j->warnings);
  xd_free(j);
}

/* A JSON allocation failure while encoding turns the answer into a 500, a non-finite
 * result into a 400 (api/alloc.h). */
XD_JSON_RESULT_GUARDED(v2_encode_checked, v2_encode)
static const xd_job_ops_t v2_ops = {"v2_infer", v2_run, v2_encode_checked, v2_free};

/* Decodes "inputs" into j->X; returns XD_OK or an error naming the input. */
static int decode_inputs(xd_api_t *api, const json_t *inputs, v2_job_t *j, xd_error_t *err) {
  const xd_model_t *m = j->entry->model;
  size_t d = xd_model_n_features(m), max_rows = xd_api_limits(api)->max_rows;
  const xd_feature_t *fs = xd_model_features(m);
  if (!json_is_array(inputs) || json_array_size(inputs) == 0)
    return xd_error_set(err, XD_EINVAL, "inputs", "must be a non-empty list of tensors");
  size_t ni = json_array_size(inputs);
  /* One [n, d] tensor is the matrix form, unless (d == 1) it is named after the feature. */
  const json_t *in0 = json_array_get(inputs, 0), *shape0 = json_object_get(in0, "shape");
  const char *name0 = json_string_value(json_object_get(in0, "name"));
  int matrix = ni == 1 && json_array_size(shape0) == 2 &&
               json_integer_value(json_array_get(shape0, 1)) == (json_int_t)d &&
               !(d == 1 && name0 && strcmp(name0, fs[0].name) == 0);
  if (!matrix && ni != d)
    return xd_error_set(err, XD_EINVAL, "inputs", "give one tensor of shape [n, %zu] or one tensor per feature (%zu)", d, d);
  size_t n = 0;
  for (size_t t = 0; t < ni; t++) {
    const json_t *in = json_array_get(inputs, t);
    char f[64];
    snprintf(f, sizeof f, "inputs[%zu]", t);
    static const char *const keys[] = {"name", "shape", "datatype", "data", "parameters", NULL};
    int rc;
    if (!json_is_object(in)) return xd_error_set(err, XD_EINVAL, f, "a tensor is an object");
    if ((rc = xd_json_check_keys(in, keys, f, err)) != XD_OK) return rc;
    const char *name = json_string_value(json_object_get(in, "name"));
    const char *dt = json_string_value(json_object_get(in, "datatype"));
    const json_t *shape = json_object_get(in, "shape");
    if (!name || !dt || !json_is_array(shape) || !json_object_get(in, "data"))
      return xd_error_set(err, XD_EINVAL, f, "a tensor needs name, shape, datatype and data");
    size_t col = 0;
    if (!matrix) {
      while (col < d && strcmp(fs[col].name, name) != 0) col++;
      if (col == d) return xd_error_set(err, XD_EINVAL, f, "'%.100s' is not a feature of the model", name);
    }
    int bytes = strcmp(dt, "BYTES") == 0;
    if (!bytes && !numeric_type(dt)) return xd_error_set(err, XD_EINVAL, f, "datatype %.20s is not supported (FP32, FP64, INT*, UINT*)", dt);
    if (bytes && (matrix || fs[col].kind != XD_FEAT_CATEGORICAL))
      return xd_error_set(err, XD_EINVAL, f, "BYTES is accepted only for a categorical feature's own tensor");
    size_t rank = json_array_size(shape), elems = 1, rows = 0;
    if (rank < 1 || rank > 2) return xd_error_set(err, XD_EINVAL, f, "shape must be [n] or [n, k]");
    for (size_t r = 0; r < rank; r++) {
      json_t *dim = json_array_get(shape, r);
      if (!json_is_integer(dim) || json_integer_value(dim) < 1 || (size_t)json_integer_value(dim) > max_rows * (d + 1))
        return xd_error_set(err, XD_EINVAL, f, "shape dimensions must be positive integers within the limits");
      elems *= (size_t)json_integer_value(dim);
      if (r == 0) rows = (size_t)json_integer_value(dim);
    }
    if (!matrix && rank == 2 && json_integer_value(json_array_get(shape, 1)) != 1)
      return xd_error_set(err, XD_EINVAL, f, "a per-feature tensor has shape [n] or [n, 1]");
    if (rows > max_rows) return xd_error_set(err, XD_ETOOBIG, f, "%zu rows is more than the limit of %zu", rows, max_rows);
    if (t == 0) {
      n = rows;
      j->X = xd_malloc(xd_mul_size(n, d) * sizeof *j->X);
      if (!j->X) return xd_error_set(err, XD_ENOMEM, f, "out of memory");
    } else if (rows != n) {
      return xd_error_set(err, XD_EINVAL, f, "every input must have the same number of rows (%zu)", n);
    }
    double *vals = bytes ? NULL : xd_malloc(elems * sizeof *vals);
    const char **strs = bytes ? xd_malloc(elems * sizeof *strs) : NULL;
    size_t got = 0;
    if ((!bytes && !vals) || (bytes && !strs)) {
      xd_free(vals);
      xd_free(strs);
      return xd_error_set(err, XD_ENOMEM, f, "out of memory");
    }
    rc = flatten(json_object_get(in, "data"), bytes, vals, strs, elems, &got, 0);
    if (rc != 0 || got != elems) {
      xd_free(vals);
      xd_free(strs);
      return xd_error_set(err, XD_EINVAL, f, "data must hold exactly %zu %s (the product of shape)", elems,
                          bytes ? "strings" : "finite numbers");
    }
    for (size_t i = 0; i < elems; i++) {
      size_t row = matrix ? i / d : i, c = matrix ? i % d : col;
      double v;
      if (bytes) {
        long k = xd_feature_category(&fs[c], strs[i]);
        if (k < 0) {
          xd_free(strs);
          return xd_error_set(err, XD_EINVAL, f, "'%.100s' is not a category of the feature", strs[i]);
        }
        v = (double)k;
      } else {
        v = vals[i];
        if (fs[c].kind == XD_FEAT_CATEGORICAL && (v != floor(v) || v < 0 || v >= (double)fs[c].n_categories)) {
          xd_free(vals);
          return xd_error_set(err, XD_EINVAL, f, "feature '%s' takes category codes 0..%zu", fs[c].name, fs[c].n_categories - 1);
        }
      }
      j->X[row * d + c] = v;
    }
    xd_free(vals);
    xd_free(strs);
  }
  j->n = n;
  return XD_OK;
}

static int decode_infer(xd_api_t *api, const xd_api_request_t *req, xd_model_entry_t *e, xd_work_t *work, xd_error_t *err) {
  json_error_t jerr;
  int oom = 0;
  json_t *body = xd_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr, &oom);
  if (!body || !json_is_object(body)) {
    json_decref(body);
    xd_model_entry_release(e);
    if (oom) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory reading the body");
    return xd_error_set(err, XD_EJSON, NULL, "body is not a JSON object: %s", body ? "" : jerr.text);
  }
  v2_job_t *j = xd_calloc(1, sizeof *j);
  int rc;
  if (!j) {
    xd_model_entry_release(e);
    json_decref(body);
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  j->entry = e;
  static const char *const keys[] = {"id", "parameters", "inputs", "outputs", NULL};
  if ((rc = xd_json_check_keys(body, keys, NULL, err)) != XD_OK) goto fail;
  json_t *id = json_object_get(body, "id");
  if (id && !json_is_string(id)) {
    rc = xd_error_set(err, XD_EINVAL, "id", "must be a string");
    goto fail;
  }
  j->id = json_incref(id);
  if (xd_model_input_kind(e->model) != XD_INPUT_TABULAR) {
    if (!(j->warnings = json_array())) {
      rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
      goto fail;
    }
    rc = xd_v2_graph_inputs(e->model, json_object_get(body, "inputs"), xd_api_limits(api)->max_rows, &j->X, &j->text,
                            &j->n, j->warnings, err);
  } else {
    rc = decode_inputs(api, json_object_get(body, "inputs"), j, err);
  }
  if (rc != XD_OK) goto fail;
  json_t *outputs = json_object_get(body, "outputs");
  j->want = outputs ? 0 : 15;
  if (outputs && !json_is_array(outputs)) {
    rc = xd_error_set(err, XD_EINVAL, "outputs", "must be a list of {\"name\": ...}");
    goto fail;
  }
  for (size_t i = 0; outputs && i < json_array_size(outputs); i++) {
    const char *nm = json_string_value(json_object_get(json_array_get(outputs, i), "name"));
    static const char *const names[] = {"probabilities", "label", "label_index", "predictions"};
    unsigned bit = 0;
    for (unsigned b = 0; b < 4 && nm; b++)
      if (strcmp(nm, names[b]) == 0) bit = 1u << b;
    int regression = xd_model_task(e->model) == XD_TASK_REGRESSION;
    if (!bit || (regression != (bit == 8))) {
      char f[32];
      snprintf(f, sizeof f, "outputs[%zu]", i);
      rc = xd_error_set(err, XD_EINVAL, f, "unknown output '%.100s'", nm ? nm : "");
      goto fail;
    }
    j->want |= bit;
  }
  j->out = xd_malloc(xd_mul_size(j->n, xd_model_n_outputs(e->model)) * sizeof *j->out);
  if (!j->out) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  json_decref(body);
  work->ops = &v2_ops;
  work->state = j;
  work->n_parts = 1;
  work->cost_rows = j->n;
  work->model = e->name;
  return XD_OK;
fail:
  json_decref(body);
  v2_free(j);
  return rc;
}

xd_api_outcome_t xd_v2_handle(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp, xd_work_t *work) {
  const char *p = req->path;
  int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
  char name[XD_MODEL_NAME_MAX + 2] = "", ver[32] = "", verb[16] = ""; /* before any goto method */
  resp->endpoint = "v2";
  if (strcmp(p, "/v2") == 0 || strcmp(p, "/v2/") == 0) {
    if (!get) goto method;
    xd_api_json(resp, 200, json_pack("{s:s, s:s, s:[]}", "name", "explaind", "version", V2_VERSION, "extensions"));
    return XD_API_RESPOND;
  }
  if (strcmp(p, "/v2/health/live") == 0) {
    if (!get) goto method;
    xd_api_json(resp, 200, json_pack("{s:b}", "live", 1));
    return XD_API_RESPOND;
  }
  if (strcmp(p, "/v2/health/ready") == 0) {
    if (!get) goto method;
    if (xd_api_ready(api))
      xd_api_json(resp, 200, json_pack("{s:b}", "ready", 1));
    else
      oip_error(resp, XD_EOVERLOAD, "%s", "not ready: loading models or shutting down");
    return XD_API_RESPOND;
  }
  if (strncmp(p, "/v2/models/", 11) != 0) {
    oip_error(resp, XD_ENOTFOUND, "no such path: %.200s", p);
    return XD_API_RESPOND;
  }
  /* /v2/models/{name}[/versions/{v}][/ready|/infer] */
  const char *s = p + 11, *slash = strchr(s, '/');
  size_t nl = slash ? (size_t)(slash - s) : strlen(s);
  if (nl == 0 || nl > XD_MODEL_NAME_MAX) {
    oip_error(resp, XD_ENOTFOUND, "no such model: %.80s", s);
    return XD_API_RESPOND;
  }
  memcpy(name, s, nl);
  s += nl;
  if (strncmp(s, "/versions/", 10) == 0) {
    s += 10;
    size_t vl = strcspn(s, "/");
    if (vl == 0 || vl >= sizeof ver) {
      oip_error(resp, XD_ENOTFOUND, "no such version%s", "");
      return XD_API_RESPOND;
    }
    memcpy(ver, s, vl);
    s += vl;
  }
  if (*s == '/') {
    snprintf(verb, sizeof verb, "%.15s", s + 1);
    if (strcmp(verb, "ready") != 0 && strcmp(verb, "infer") != 0) {
      oip_error(resp, XD_ENOTFOUND, "no such path: %.200s", p);
      return XD_API_RESPOND;
    }
  }
  snprintf(resp->model, sizeof resp->model, "%.64s", name);
  int post = strcmp(req->method, "POST") == 0;
  if ((strcmp(verb, "infer") == 0) != post) goto method;
  xd_model_entry_t *e = xd_model_name_valid(name) ? xd_registry_get(xd_api_registry(api), name) : NULL;
  if (!e) {
    oip_error(resp, XD_ENOTFOUND, "Model with name %s does not exist.", name);
    return XD_API_RESPOND;
  }
  char cur[32];
  snprintf(cur, sizeof cur, "%llu", (unsigned long long)e->version);
  if (ver[0] && strcmp(ver, cur) != 0) {
    xd_model_entry_release(e);
    oip_error(resp, XD_ENOTFOUND, "version %s is not served (the current one is listed in the model's metadata)", ver);
    return XD_API_RESPOND;
  }
  if (strcmp(verb, "ready") == 0) {
    xd_api_json(resp, 200, json_pack("{s:s, s:b}", "name", name, "ready", 1));
    xd_model_entry_release(e);
    return XD_API_RESPOND;
  }
  if (!verb[0]) {
    xd_api_json(resp, 200, model_metadata(e));
    xd_model_entry_release(e);
    return XD_API_RESPOND;
  }
  resp->endpoint = "v2_infer";
  xd_error_t err;
  xd_error_clear(&err);
  if (decode_infer(api, req, e, work, &err) != XD_OK) { /* takes e either way */
    xd_api_error(&err, resp);
    return XD_API_RESPOND;
  }
  return xd_api_maybe_inline(api, work, resp);
method:
  oip_error(resp, XD_EMETHOD, "method %s is not allowed here", req->method);
  xd_api_add_header(resp, "Allow", "%s", strcmp(verb, "infer") == 0 ? "POST" : "GET, HEAD");
  return XD_API_RESPOND;
}
