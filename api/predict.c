/* predict.c — POST /predict: class probabilities and labels, or regression values.
 * The rows are evaluated in parts of PART_ROWS so a large batch spreads over workers.
 * Image rows are pixels or pictures, text rows strings (api/graph_rows.c); answers about
 * text add each row's tokens and offsets, and warnings for truncated texts. */
#include <string.h>

#include "api/endpoints.h"
#include "api/alloc.h"
#include "api/graph_rows.h"
#include "api/numbody.h"
#include "core/alloc.h"

#define PART_ROWS 2048

typedef struct predict_job {
  xd_model_entry_t *entry;
  double *X;   /* (n, d) */
  double *out; /* (n, n_outputs) */
  size_t n;
  xd_tok_encoding_t *text; /* text models: n tokenized rows instead of X */
  json_t *warnings;        /* text models: truncations */
} predict_job_t;

static int predict_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  predict_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  size_t s = part * PART_ROWS, c = j->n - s < PART_ROWS ? j->n - s : PART_ROWS;
  if (j->text) return xd_model_predict_text(m, j->text + s, c, j->out + s * xd_model_n_outputs(m), cancel, err);
  size_t d = xd_model_input_kind(m) == XD_INPUT_IMAGE ? xd_model_n_inputs(m) : xd_model_n_features(m);
  return xd_model_predict(m, j->X + s * d, c, j->out + s * xd_model_n_outputs(m), cancel, err);
}

static json_t *predict_encode(void *state, xd_error_t *err) {
  predict_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  size_t k = xd_model_n_outputs(m);
  json_t *o = json_pack("{s:s}", "model", j->entry->name);
  json_t *preds = json_array();
  if (!o || !preds) goto nomem;
  if (xd_model_task(m) == XD_TASK_CLASSIFICATION) {
    json_t *idx = json_array(), *probs = xd_json_matrix(j->out, j->n, k);
    char *const *cls = xd_model_classes(m);
    for (size_t i = 0; i < j->n; i++) {
      size_t c = xd_model_argmax(m, j->out + i * k);
      json_array_append_new(preds, json_string(cls[c]));
      json_array_append_new(idx, json_integer((json_int_t)c));
    }
    json_object_set_new(o, "predictions", preds);
    json_object_set_new(o, "label_indices", idx);
    json_object_set_new(o, "probabilities", probs);
  } else {
    for (size_t i = 0; i < j->n; i++) json_array_append_new(preds, xd_json_real(j->out[i]));
    json_object_set_new(o, "predictions", preds);
  }
  if (j->text) {
    json_object_set_new(o, "tokens", xd_json_tokens(j->text, j->n));
    json_object_set_new(o, "offsets", xd_json_offsets(j->text, j->n));
    xd_json_set_warnings(o, j->warnings);
  }
  return o;
nomem:
  json_decref(o);
  json_decref(preds);
  xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
  return NULL;
}

static void predict_free(void *state) {
  predict_job_t *j = state;
  if (!j) return;
  xd_model_entry_release(j->entry);
  xd_free(j->X);
  xd_free(j->out);
  xd_tok_rows_free(j->text, j->n);
  json_decref(j->warnings);
  xd_free(j);
}

/* A JSON allocation failure while encoding turns the answer into a 500, a non-finite
 * result into a 400 (api/alloc.h). */
XD_JSON_RESULT_GUARDED(predict_encode_checked, predict_encode)
static const xd_job_ops_t predict_ops = {
    .endpoint = "predict", .run = predict_run, .encode = predict_encode_checked, .free = predict_free};

int xd_predict_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  /* "instance" (one row) is accepted wherever "instances" is */
  static const char *const keys[] = {"model", "instances", "instance", "timeout_ms", NULL};
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  predict_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if (!(j->entry = xd_api_model(api, body, err))) {
    rc = err->code;
    goto fail;
  }
  const xd_model_t *m = j->entry->model;
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK) goto fail;
  size_t max_rows = xd_api_limits(api)->max_rows;
  switch (xd_model_input_kind(m)) {
  case XD_INPUT_IMAGE:
    rc = xd_json_image_rows(m, body, 1, max_rows, &j->X, &j->n, err);
    break;
  case XD_INPUT_TEXT:
    if (!(j->warnings = json_array())) {
      rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
      break;
    }
    rc = xd_json_text_rows(m, body, 1, max_rows, &j->text, &j->n, j->warnings, err);
    break;
  default:
    rc = xd_json_instances(m, body, 1, max_rows, &j->X, &j->n, err);
  }
  if (rc != XD_OK) goto fail;
  j->out = xd_malloc(xd_mul_size(j->n, xd_model_n_outputs(m)) * sizeof *j->out);
  if (!j->out) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  work->ops = &predict_ops;
  work->state = j;
  work->n_parts = (j->n + PART_ROWS - 1) / PART_ROWS;
  work->cost_rows = xd_work_cost(j->n, xd_model_row_cost(j->entry->model));
  work->model = j->entry->name;
  return XD_OK;
fail:
  predict_free(j);
  return rc;
}

/* The fast path (api/numbody.h): a body of only "model", "instances" as lists of numbers
 * and "timeout_ms", every value valid, becomes the same job as xd_predict_decode makes
 * from jansson's document. Anything else — including every request that is an error —
 * returns 0 and goes the jansson way, so answers and errors are the same either way. */
int xd_predict_fast(xd_api_t *api, const char *body, size_t len, xd_work_t *work) {
  static const char *const keys[] = {"model", "instances", "timeout_ms", NULL};
  const xd_limits_t *lim = xd_api_limits(api);
  xd_numbody_t nb;
  if (!xd_numbody_parse(body, len, keys, len / 2 + 1, &nb)) return 0; /* a number takes 2 bytes or more */
  const xd_numbody_value_t *name = &nb.v[0], *inst = &nb.v[1], *to = &nb.v[2];
  predict_job_t *j = NULL;
  char nm[XD_MODEL_NAME_MAX + 1];
  if (name->kind != XD_NB_STRING || name->str_len > XD_MODEL_NAME_MAX || inst->kind != XD_NB_ROWS ||
      inst->n_rows > lim->max_rows || (to->kind && (to->kind != XD_NB_INTEGER || to->integer < 1 || to->integer > 3600000)))
    goto no;
  memcpy(nm, name->str, name->str_len);
  nm[name->str_len] = '\0';
  if (!xd_model_name_valid(nm) || !(j = xd_calloc(1, sizeof *j))) goto no;
  if (!(j->entry = xd_registry_get(xd_api_registry(api), nm))) goto no;
  const xd_model_t *m = j->entry->model;
  size_t d = xd_model_n_features(m);
  const xd_feature_t *fs = xd_model_features(m);
  if (inst->row_len != d) goto no;
  for (size_t f = 0; f < d; f++) /* categorical features take integer codes only */
    if (fs[f].kind == XD_FEAT_CATEGORICAL)
      for (size_t i = 0; i < inst->n_rows; i++) {
        double v = inst->x[i * d + f];
        if (!inst->is_int[i * d + f] || v < 0 || v >= (double)fs[f].n_categories) goto no;
      }
  j->n = inst->n_rows;
  j->X = nb.v[1].x; /* taken over */
  nb.v[1].x = NULL;
  j->out = xd_malloc(xd_mul_size(j->n, xd_model_n_outputs(m)) * sizeof *j->out);
  if (!j->out) goto no;
  int64_t timeout_ms = to->kind ? to->integer : 0;
  xd_numbody_deinit(&nb);
  work->ops = &predict_ops;
  work->state = j;
  work->n_parts = (j->n + PART_ROWS - 1) / PART_ROWS;
  work->cost_rows = xd_work_cost(j->n, xd_model_row_cost(j->entry->model));
  work->model = j->entry->name;
  work->timeout_ms = timeout_ms;
  return 1;
no:
  predict_free(j);
  xd_numbody_deinit(&nb);
  return 0;
}
