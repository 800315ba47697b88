/* predict.c — POST /predict: class probabilities and labels, or regression values.
 * The rows are evaluated in parts of PART_ROWS so a large batch spreads over workers.
 * Image rows are pixels or pictures, text rows strings (api/graph_rows.c); answers about
 * text add each row's tokens and offsets, and warnings for truncated texts. */
#include <string.h>

#include "api/endpoints.h"
#include "api/alloc.h"
#include "api/graph_rows.h"
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
    if (json_array_size(j->warnings)) json_object_set(o, "warnings", j->warnings);
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
static const xd_job_ops_t predict_ops = {"predict", predict_run, predict_encode_checked, predict_free};

int xd_predict_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  static const char *const keys[] = {"model", "instances", "timeout_ms", NULL};
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
    rc = xd_json_image_rows(m, body, 0, max_rows, &j->X, &j->n, err);
    break;
  case XD_INPUT_TEXT:
    if (!(j->warnings = json_array())) {
      rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
      break;
    }
    rc = xd_json_text_rows(m, body, 0, max_rows, &j->text, &j->n, j->warnings, err);
    break;
  default:
    rc = xd_json_instances(m, body, 0, max_rows, &j->X, &j->n, err);
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
  work->cost_rows = j->n;
  work->model = j->entry->name;
  return XD_OK;
fail:
  predict_free(j);
  return rc;
}
