/* explain_text.c — /explain/gradient and /explain/occlusion on text models (API.md
 * Part 2). One part per text: each is one graph run (all IG steps or noisy copies of
 * the text as rows of one run, float32 unless "precision" asks for float64) or one
 * batch of occluded copies. With integrated gradients on fewer than SPLIT_TEXTS texts,
 * each text's rows are split into fixed slices, one part each (prepare resolves the
 * targets, encode adds the slices' sums in slice order), so that one text uses every
 * worker and the answer does not depend on how many there are. */
#include <string.h>

#include "api/alloc.h"
#include "api/explain_common.h"
#include "api/explain_text.h"
#include "api/graph_rows.h"
#include "core/alloc.h"
#include "core/text_explain.h"

#define SPLIT_TEXTS 4
#define SLICE_ROWS 24 /* IG rows per slice at least (52 rows: 2 slices) */
#define MAX_SLICES 4

int xd_api_is_text_model(xd_api_t *api, const json_t *body) {
  xd_error_t e;
  xd_model_entry_t *peek = xd_api_model(api, body, &e);
  int text = peek && xd_model_input_kind(peek->model) == XD_INPUT_TEXT;
  xd_model_entry_release(peek);
  return text;
}

typedef struct tgrad_job {
  xd_model_entry_t *entry;
  xd_text_grad_opts_t o;
  int occlusion;
  xd_text_base_t base;
  xd_tok_encoding_t *rows;
  size_t n;
  size_t *target;
  double **attr;  /* (n) rows of rows[i].n */
  double *delta;  /* (n) IG */
  double *alpha, *wq;
  json_t *warnings;
  uint64_t first; /* row i draws from noise stream first + i (api/job.h set_first_index) */
  /* split integrated gradients: slices per text; per (text, slice) its sums and row size;
   * per text every row's explained value */
  size_t slices;
  double **acc, **f;
  size_t *rowsz;
} tgrad_job_t;

static int resolve_target(tgrad_job_t *j, size_t i, const xd_cancel_t *cancel, xd_error_t *err) {
  const xd_model_t *m = j->entry->model;
  int rc;
  if (j->target[i] == XD_TARGET_PREDICTED) {
    double p[256];
    size_t K = xd_model_n_outputs(m);
    if (K > 256) return xd_error_set(err, XD_EUNSUPPORTED, "target", "give the target of a model with %zu outputs", K);
    if ((rc = xd_model_predict_text(m, &j->rows[i], 1, p, cancel, err)) != XD_OK) return rc;
    j->target[i] = xd_model_argmax(m, p);
  }
  return XD_OK;
}

static int tgrad_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  tgrad_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  if (j->slices > 1) { /* slice s of text i's rows */
    size_t i = part / j->slices, s = part % j->slices, R = xd_text_grad_rows(&j->o);
    if (i >= j->n) return XD_OK;
    return xd_text_grad_part(m, &j->o, &j->rows[i], j->target[i], (size_t)(j->first + i), R * s / j->slices, R * (s + 1) / j->slices,
                             &j->acc[part], &j->rowsz[part], j->f[i], cancel, err);
  }
  size_t i = part;
  if (i >= j->n) return XD_OK;
  int rc = resolve_target(j, i, cancel, err);
  if (rc != XD_OK) return rc;
  if (j->occlusion)
    return xd_text_occlusion(m, &j->rows[i], j->target[i], j->base, j->o.output, j->attr[i], NULL, cancel, err);
  return xd_text_grad_explain(m, &j->o, &j->rows[i], j->target[i], (size_t)(j->first + i), j->attr[i], j->delta ? &j->delta[i] : NULL,
                              cancel, err);
}

/* Split integrated gradients: every text's target and row values, before the parts. */
static int tgrad_prepare(void *state, const xd_cancel_t *cancel, xd_error_t *err) {
  tgrad_job_t *j = state;
  if (j->slices <= 1) return XD_OK;
  for (size_t i = 0; i < j->n; i++) {
    int rc = resolve_target(j, i, cancel, err);
    if (rc != XD_OK) return rc;
    if (!(j->f[i] = xd_calloc(xd_text_grad_rows(&j->o) + 1, sizeof *j->f[i])))
      return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  return XD_OK;
}

static json_t *tgrad_encode(void *state, xd_error_t *err) {
  tgrad_job_t *j = state;
  for (size_t i = 0; j->slices > 1 && i < j->n; i++) /* the slices' sums, in slice order */
    xd_text_grad_finish(&j->o, j->rows[i].n, j->rowsz[i * j->slices], j->acc + i * j->slices, j->slices, j->f[i],
                        j->attr[i], j->delta ? &j->delta[i] : NULL);
  json_t *o = json_object(), *t = json_array(), *a = json_array();
  int bad = !o || !t || !a;
  for (size_t i = 0; !bad && i < j->n; i++) {
    bad |= json_array_append_new(t, json_integer((json_int_t)j->target[i]));
    bad |= json_array_append_new(a, xd_json_reals(j->attr[i], j->rows[i].n));
  }
  bad |= json_object_set_new(o, "model", json_string(j->entry->name));
  if (!j->occlusion) {
    bad |= json_object_set_new(o, "method", json_string(xd_grad_method_names[j->o.method]));
    bad |= json_object_set_new(o, "output", json_string(j->o.output == XD_OUTPUT_LOGIT ? "logit" : "probability"));
    bad |= json_object_set_new(o, "precision", json_string(j->o.precision == XD_DT_F64 ? "float64" : "float32"));
  }
  bad |= json_object_set_new(o, "targets", t);
  bad |= xd_json_set_target_names(o, j->entry->model, j->target, j->n) != XD_OK;
  bad |= json_object_set_new(o, "tokens", xd_json_tokens(j->rows, j->n));
  bad |= json_object_set_new(o, "offsets", xd_json_offsets(j->rows, j->n));
  if (j->occlusion || j->o.method == XD_GRAD_INTEGRATED)
    bad |= json_object_set_new(o, "baseline", json_string(xd_text_base_names[j->occlusion ? j->base : j->o.baseline]));
  if (j->occlusion) {
    bad |= json_object_set_new(o, "window", json_integer(1));
    bad |= json_object_set_new(o, "strides", json_integer(1));
  } else if (j->o.method == XD_GRAD_INTEGRATED) {
    bad |= json_object_set_new(o, "steps", json_integer((json_int_t)j->o.steps));
  } else if (j->o.method >= XD_GRAD_SMOOTHGRAD) {
    bad |= json_object_set_new(o, "samples", json_integer((json_int_t)j->o.samples));
    bad |= json_object_set_new(o, "noise_stddev", xd_json_real(j->o.noise_stddev));
    bad |= json_object_set_new(o, "seed", xd_explain_seed_json(j->o.seed));
  }
  bad |= json_object_set_new(o, "attributions", a);
  if (j->delta) bad |= json_object_set_new(o, "convergence_delta", xd_json_reals(j->delta, j->n));
  if (json_array_size(j->warnings)) bad |= json_object_set(o, "warnings", j->warnings);
  if (bad) {
    json_decref(o);
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
    return NULL;
  }
  return o;
}

static void tgrad_free(void *state) {
  tgrad_job_t *j = state;
  if (!j) return;
  xd_model_entry_release(j->entry);
  for (size_t i = 0; j->attr && i < j->n; i++) xd_free(j->attr[i]);
  xd_free(j->attr);
  xd_tok_rows_free(j->rows, j->n);
  xd_free(j->target);
  xd_free(j->delta);
  xd_free(j->alpha);
  xd_free(j->wq);
  json_decref(j->warnings);
  for (size_t i = 0; j->acc && i < j->n * j->slices; i++) xd_free(j->acc[i]);
  for (size_t i = 0; j->f && i < j->n; i++) xd_free(j->f[i]);
  xd_free(j->acc);
  xd_free(j->f);
  xd_free(j->rowsz);
  xd_free(j);
}

XD_JSON_RESULT_GUARDED(tgrad_encode_checked, tgrad_encode)
static void tgrad_set_first(void *state, uint64_t first) { ((tgrad_job_t *)state)->first = first; }
static const xd_job_ops_t tgrad_ops = {.endpoint = "explain_gradient",
                                       .run = tgrad_run,
                                       .encode = tgrad_encode_checked,
                                       .free = tgrad_free,
                                       .prepare = tgrad_prepare,
                                       .set_first_index = tgrad_set_first};
static const xd_job_ops_t tocc_ops = {
    .endpoint = "explain_occlusion", .run = tgrad_run, .encode = tgrad_encode_checked, .free = tgrad_free};

/* window / strides: 1, [1] or absent — a token is the only unit text occlusion knows. */
static int check_unit(const json_t *body, const char *key, xd_error_t *err) {
  const json_t *v = json_object_get(body, key);
  if (!v || json_is_null(v)) return XD_OK;
  if (json_is_array(v) && json_array_size(v) == 1) v = json_array_get(v, 0);
  if (json_is_integer(v) && json_integer_value(v) == 1) return XD_OK;
  return xd_error_set(err, XD_EINVAL, key, "text occlusion works on single tokens: %s must be 1", key);
}

static int text_job_common(xd_api_t *api, const json_t *body, tgrad_job_t *j, xd_work_t *work, xd_error_t *err) {
  const xd_limits_t *lim = xd_api_limits(api);
  int rc;
  if (!(j->entry = xd_api_model(api, body, err))) return err->code;
  const xd_model_t *m = j->entry->model;
  if (!(j->warnings = json_array())) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK) return rc;
  if ((rc = xd_json_text_rows(m, body, 1, lim->max_rows, &j->rows, &j->n, j->warnings, err)) != XD_OK) return rc;
  j->target = xd_malloc(j->n * sizeof *j->target);
  j->attr = xd_calloc(j->n, sizeof *j->attr);
  if (!j->target || !j->attr) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  for (size_t i = 0; i < j->n; i++)
    if (!(j->attr[i] = xd_calloc(j->rows[i].n, sizeof *j->attr[i])))
      return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  return xd_explain_targets(m, body, j->n, j->target, err);
}

int xd_gradient_text_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  static const char *const keys[] = {"model",  "instances", "instance", "method",  "target",       "output",
                                     "baseline", "steps",   "integration", "samples", "noise_stddev", "seed",
                                     "timeout_ms", "precision", NULL};
  static const char *const outputs[] = {"probability", "logit", NULL};
  static const char *const bases[] = {"pad", "unk", "zeros", NULL};
  static const char *const precisions[] = {"float32", "float64", NULL}; /* XD_DT_F32, XD_DT_F64 */
  int precision = XD_DT_F32;
  const xd_limits_t *lim = xd_api_limits(api);
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  tgrad_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  int method = XD_GRAD_INTEGRATED, output = XD_OUTPUT_PROBABILITY, integ = XD_GRAD_GAUSSLEGENDRE, base = 0;
  j->o.steps = 50;
  j->o.samples = 25;
  j->o.noise_stddev = 0.1;
  if ((rc = xd_json_opt_enum(body, "method", xd_grad_method_names, &method, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "output", outputs, &output, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "integration", xd_grad_integration_names, &integ, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "steps", 1, lim->max_steps, &j->o.steps, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "samples", 1, lim->max_samples, &j->o.samples, err)) != XD_OK ||
      (rc = xd_json_opt_double(body, "noise_stddev", 0, 1e6, &j->o.noise_stddev, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "precision", precisions, &precision, err)) != XD_OK ||
      (rc = xd_explain_seed(body, &j->o.seed, err)) != XD_OK)
    goto fail;
  j->o.precision = (xd_dtype_t)precision;
  const json_t *bv = json_object_get(body, "baseline");
  if (bv && !json_is_null(bv) && !json_is_string(bv)) {
    rc = xd_error_set(err, XD_EINVAL, "baseline", "a text model's baseline must be one of \"pad\", \"unk\" or \"zeros\"");
    goto fail;
  }
  if ((rc = xd_json_opt_enum(body, "baseline", bases, &base, err)) != XD_OK) goto fail;
  j->o.method = (xd_grad_method_t)method;
  j->o.output = (xd_output_kind_t)output;
  j->o.baseline = (xd_text_base_t)base;
  if (j->o.method == XD_GRAD_INTEGRATED && j->o.steps < 2 &&
      (integ == XD_GRAD_RIEMANN_LEFT || integ == XD_GRAD_RIEMANN_TRAPEZOID)) {
    rc = xd_error_set(err, XD_EINVAL, "steps", "integration '%s' needs at least 2 steps", xd_grad_integration_names[integ]);
    goto fail;
  }
  if ((rc = text_job_common(api, body, j, work, err)) != XD_OK) goto fail;
  if (!xd_model_embedding(j->entry->model)) {
    rc = xd_error_set(err, XD_EUNSUPPORTED, "model", "model '%s' has no token-embedding tensor to take gradients at",
                      j->entry->name);
    goto fail;
  }
  uint64_t cost = 0;
  for (size_t i = 0; i < j->n; i++) cost += (uint64_t)xd_text_grad_rows(&j->o) * j->rows[i].n;
  if (cost > lim->max_work_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, "instances", "%zu texts x %zu gradient rows each exceed the limit of %llu "
                      "model rows (counted per token)", j->n, xd_text_grad_rows(&j->o),
                      (unsigned long long)lim->max_work_rows);
    goto fail;
  }
  if (j->o.method == XD_GRAD_INTEGRATED) {
    j->delta = xd_calloc(j->n, sizeof *j->delta);
    j->alpha = xd_malloc(j->o.steps * sizeof *j->alpha);
    j->wq = xd_malloc(j->o.steps * sizeof *j->wq);
    if (!j->delta || !j->alpha || !j->wq) {
      rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
      goto fail;
    }
    if ((rc = xd_grad_quadrature((xd_grad_integration_t)integ, j->o.steps, j->alpha, j->wq, err)) != XD_OK) goto fail;
    j->o.alpha = j->alpha;
    j->o.weights = j->wq;
  }
  j->slices = 1;
  if (j->o.method == XD_GRAD_INTEGRATED && xd_work_request_rows(work, j->n) < SPLIT_TEXTS) { /* few texts: their rows over the workers */
    size_t S = xd_text_grad_rows(&j->o) / SLICE_ROWS;
    if (S > 1) {
      j->slices = S > MAX_SLICES ? MAX_SLICES : S;
      j->acc = xd_calloc(j->n * j->slices, sizeof *j->acc);
      j->rowsz = xd_calloc(j->n * j->slices, sizeof *j->rowsz);
      j->f = xd_calloc(j->n, sizeof *j->f);
      if (!j->acc || !j->rowsz || !j->f) {
        rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
        goto fail;
      }
    }
  }
  work->ops = &tgrad_ops;
  work->state = j;
  work->n_parts = j->n * j->slices;
  work->cost_rows = cost;
  work->model = j->entry->name;
  return XD_OK;
fail:
  tgrad_free(j);
  return rc;
}

int xd_occlusion_text_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  static const char *const keys[] = {"model", "instances", "instance", "target", "baseline", "window", "strides",
                                     "render", "timeout_ms", NULL};
  static const char *const bases[] = {"pad", "unk", "delete", NULL}; /* index 2 is XD_TEXT_BASE_DELETE */
  const xd_limits_t *lim = xd_api_limits(api);
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  tgrad_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  j->occlusion = 1;
  j->o.output = XD_OUTPUT_PROBABILITY;
  int base = XD_TEXT_BASE_PAD, render = 0;
  const json_t *bv = json_object_get(body, "baseline");
  if (bv && !json_is_null(bv) && !json_is_string(bv)) {
    rc = xd_error_set(err, XD_EINVAL, "baseline", "a text model's baseline must be one of \"pad\", \"unk\" or \"delete\"");
    goto fail;
  }
  if ((rc = xd_json_opt_enum(body, "baseline", bases, &base, err)) != XD_OK ||
      (rc = check_unit(body, "window", err)) != XD_OK || (rc = check_unit(body, "strides", err)) != XD_OK ||
      (rc = xd_json_opt_bool(body, "render", &render, err)) != XD_OK)
    goto fail;
  j->base = base == 2 ? XD_TEXT_BASE_DELETE : (xd_text_base_t)base;
  if ((rc = text_job_common(api, body, j, work, err)) != XD_OK) goto fail;
  uint64_t cost = 0;
  for (size_t i = 0; i < j->n; i++) cost += (uint64_t)(j->rows[i].n + 1);
  if (cost > lim->max_work_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, "instances", "the occluded copies (%llu) exceed the limit of %llu model rows",
                      (unsigned long long)cost, (unsigned long long)lim->max_work_rows);
    goto fail;
  }
  work->ops = &tocc_ops;
  work->state = j;
  work->n_parts = j->n;
  work->cost_rows = cost;
  work->model = j->entry->name;
  return XD_OK;
fail:
  tgrad_free(j);
  return rc;
}
