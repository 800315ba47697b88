/* explain_gradient.c — POST /explain/gradient (API.md; semantics in core/gradient.h and
 * docs/gradients_shap.md).
 *
 * The decoder validates every field into a grad_job_t; rows are split into parts of
 * about PART_UNITS gradient rows each, so a request spreads over the worker pool while
 * every part is still one efficient batched forward + backward. Row i draws its noise
 * from stream i of the seed, so the answer is bit-identical whatever the worker count.
 */
#include <string.h>

#include "api/metrics.h"
#include "api/endpoints.h"
#include "api/explain_common.h"
#include "api/explain_text.h"
#include "api/explain_image.h"
#include "api/alloc.h"
#include "core/alloc.h"
#include "core/gradient.h"

/* Gradient rows (path points, noisy copies) per part: enough for full-speed GEMMs,
 * few enough that a 100-row IG request splits into ~10 parts for the pool. */
#define PART_UNITS 512

typedef enum baseline_kind { BASE_MEAN = 0, BASE_ZEROS, BASE_ROW } baseline_kind_t;

typedef struct grad_job {
  xd_model_entry_t *entry;
  xd_grad_opts_t o;
  double *X; /* (n, d) raw rows */
  size_t n;
  size_t *target;       /* (n); XD_TARGET_PREDICTED until a worker resolves it */
  baseline_kind_t base; /* IG */
  double *brow;         /* (d) raw baseline row for BASE_ZEROS / BASE_ROW */
  double *Eb;           /* (n_inputs) encoded baseline */
  double *attr;         /* (n, d) */
  double *delta;        /* (n), IG */
  double *alpha, *wq;   /* (steps) IG quadrature, computed once for every part */
  size_t rows_per_part;
  uint64_t first; /* row k draws from stream first + k (api/job.h set_first_index) */
} grad_job_t;

static int grad_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  grad_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  size_t d = xd_model_n_features(m), s = part * j->rows_per_part;
  if (s >= j->n) return XD_OK;
  size_t c = j->n - s < j->rows_per_part ? j->n - s : j->rows_per_part;
  int rc = xd_explain_resolve_targets(m, j->X + s * d, c, j->target + s, cancel, err);
  if (rc != XD_OK) return rc;
  return xd_grad_explain(m, &j->o, j->X + s * d, c, j->target + s, j->Eb, j->first + s, j->attr + s * d,
                         j->delta ? j->delta + s : NULL, cancel, err);
}

/* The baseline as the client would send it; a categorical feature of the "mean"
 * baseline is its category frequencies, {"name": frequency, ...}. */
static json_t *baseline_json(const grad_job_t *j) {
  const xd_model_t *m = j->entry->model;
  const xd_feature_t *F = xd_model_features(m);
  const xd_stats_t *st = xd_model_stats(m);
  size_t d = xd_model_n_features(m);
  json_t *a = json_array();
  for (size_t f = 0; a && f < d; f++) {
    json_t *v;
    if (j->base != BASE_MEAN || !st) {
      v = F[f].kind == XD_FEAT_CATEGORICAL ? xd_json_feature_value(m, f, j->brow[f]) : xd_json_real(j->brow[f]);
    } else if (F[f].kind == XD_FEAT_NUMERIC) {
      v = xd_json_real(st->f[f].mean);
    } else {
      v = json_object();
      for (size_t c = 0; v && c < F[f].n_categories; c++)
        json_object_set_new(v, F[f].categories[c], xd_json_real(st->f[f].cat_freq ? st->f[f].cat_freq[c] : 0));
    }
    if (json_array_append_new(a, v) != 0) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

static json_t *grad_encode(void *state, xd_error_t *err) {
  grad_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  size_t d = xd_model_n_features(m);
  const xd_feature_t *F = xd_model_features(m);
  json_t *o = json_object(), *t = json_array(), *names = json_array();
  int bad = !o || !t || !names;
  for (size_t i = 0; !bad && i < j->n; i++) bad |= json_array_append_new(t, json_integer((json_int_t)j->target[i]));
  for (size_t f = 0; !bad && f < d; f++) bad |= json_array_append_new(names, json_string(F[f].name));
  if (bad) goto nomem;
  bad |= json_object_set_new(o, "model", json_string(j->entry->name));
  bad |= json_object_set_new(o, "method", json_string(xd_grad_method_names[j->o.method]));
  bad |= json_object_set_new(o, "output", json_string(j->o.output == XD_OUTPUT_LOGIT ? "logit" : "probability"));
  bad |= json_object_set_new(o, "targets", t);
  t = NULL;
  bad |= xd_json_set_target_names(o, m, j->target, j->n) != XD_OK;
  bad |= json_object_set_new(o, "features", names);
  names = NULL;
  if (j->o.method == XD_GRAD_INTEGRATED) {
    bad |= json_object_set_new(o, "baseline", baseline_json(j));
    bad |= json_object_set_new(o, "steps", json_integer((json_int_t)j->o.steps));
    bad |= json_object_set_new(o, "integration", json_string(xd_grad_integration_names[j->o.integration]));
  }
  if (j->o.method >= XD_GRAD_SMOOTHGRAD) {
    bad |= json_object_set_new(o, "samples", json_integer((json_int_t)j->o.samples));
    bad |= json_object_set_new(o, "noise_stddev", xd_json_real(j->o.noise_stddev));
    bad |= json_object_set_new(o, "seed", xd_explain_seed_json(j->o.seed));
  }
  bad |= json_object_set_new(o, "attributions", xd_json_matrix(j->attr, j->n, d));
  if (j->delta) {
    bad |= json_object_set_new(o, "convergence_delta", xd_json_reals(j->delta, j->n));
    for (size_t i = 0; i < j->n; i++)
      xd_metrics_quality(XD_QUALITY_IG_DELTA, xd_grad_method_names[j->o.method], j->delta[i]);
  }
  if (bad) goto nomem;
  return o;
nomem:
  json_decref(o);
  json_decref(t);
  json_decref(names);
  xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
  return NULL;
}

static void grad_set_first(void *state, uint64_t first) { ((grad_job_t *)state)->first = first; }

static void grad_free(void *state) {
  grad_job_t *j = state;
  if (!j) return;
  xd_model_entry_release(j->entry);
  xd_free(j->X);
  xd_free(j->target);
  xd_free(j->brow);
  xd_free(j->Eb);
  xd_free(j->attr);
  xd_free(j->delta);
  xd_free(j->alpha);
  xd_free(j->wq);
  xd_free(j);
}

/* A JSON allocation failure while encoding turns the answer into a 500, a non-finite
 * result into a 400 (api/alloc.h). */
XD_JSON_RESULT_GUARDED(grad_encode_checked, grad_encode)
static const xd_job_ops_t grad_ops = {
    .endpoint = "explain_gradient", .run = grad_run, .encode = grad_encode_checked, .free = grad_free,
    .set_first_index = grad_set_first};

/* "baseline": "mean" | "zeros" | a row. */
static int decode_baseline(grad_job_t *j, const json_t *body, xd_error_t *err) {
  const xd_model_t *m = j->entry->model;
  size_t d = xd_model_n_features(m), p = xd_model_n_inputs(m);
  json_t *v = json_object_get(body, "baseline");
  j->base = BASE_MEAN;
  if (v && json_is_string(v)) {
    if (!strcmp(json_string_value(v), "mean")) j->base = BASE_MEAN;
    else if (!strcmp(json_string_value(v), "zeros")) j->base = BASE_ZEROS;
    else return xd_error_set(err, XD_EINVAL, "baseline", "expected \"mean\", \"zeros\" or a row");
  } else if (v && !json_is_null(v)) {
    j->base = BASE_ROW;
  }
  if (j->base == BASE_MEAN && !xd_model_stats(m)) j->base = BASE_ZEROS; /* no background: API.md */
  j->brow = xd_calloc(d, sizeof *j->brow);
  j->Eb = xd_malloc(p * sizeof *j->Eb);
  if (!j->brow || !j->Eb) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if (j->base == BASE_ROW) {
    int rc = xd_json_row(m, v, "baseline", j->brow, err);
    if (rc != XD_OK) return rc;
  }
  if (j->base == BASE_MEAN) xd_grad_baseline_mean(m, j->Eb);
  else xd_model_encode_d(m, j->brow, 1, j->Eb);
  return XD_OK;
}

int xd_gradient_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  if (xd_api_is_text_model(api, body)) return xd_gradient_text_decode(api, body, work, err); /* api/explain_text.c */
  static const char *const keys[] = {"model",  "instances",   "instance", "method",       "target",
                                     "output", "baseline",    "steps",    "integration",  "samples",
                                     "noise_stddev", "seed",  "timeout_ms", NULL};
  static const char *const outputs[] = {"probability", "logit", NULL};
  const xd_limits_t *lim = xd_api_limits(api);
  xd_model_entry_t *peek = xd_api_model(api, body, err); /* image models: api/explain_image.c */
  int image = peek && xd_model_input_kind(peek->model) == XD_INPUT_IMAGE;
  xd_model_entry_release(peek);
  if (image) return xd_gradient_image_decode(api, body, work, err);
  memset(err, 0, sizeof *err); /* a failed peek is reported below, in the usual order */
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  grad_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if (!(j->entry = xd_api_model(api, body, err))) {
    rc = err->code;
    goto fail;
  }
  const xd_model_t *m = j->entry->model;
  if (xd_model_trees(m)) { /* a client error, not a missing feature: say what does apply */
    rc = xd_error_set(err, XD_EINVAL, "model",
                      "model '%s' is a tree ensemble: it has no input gradient; use /explain/shap (TreeSHAP), "
                      "/explain/lime, /explain/occlusion, /importance or /explain/pdp",
                      j->entry->name);
    goto fail;
  }
  if (!xd_model_has_gradient(m)) {
    rc = xd_error_set(err, XD_EUNSUPPORTED, "model", "model '%s' has no input gradient", j->entry->name);
    goto fail;
  }
  int method = XD_GRAD_INTEGRATED, output = XD_OUTPUT_PROBABILITY, integ = XD_GRAD_GAUSSLEGENDRE;
  j->o.steps = 50;
  j->o.samples = 25;
  j->o.noise_stddev = 0.1;
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "method", xd_grad_method_names, &method, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "output", outputs, &output, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "integration", xd_grad_integration_names, &integ, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "steps", 1, lim->max_steps, &j->o.steps, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "samples", 1, lim->max_samples, &j->o.samples, err)) != XD_OK ||
      (rc = xd_json_opt_double(body, "noise_stddev", 0, 1e6, &j->o.noise_stddev, err)) != XD_OK ||
      (rc = xd_explain_seed(body, &j->o.seed, err)) != XD_OK)
    goto fail;
  j->o.method = (xd_grad_method_t)method;
  j->o.output = (xd_output_kind_t)output;
  j->o.integration = (xd_grad_integration_t)integ;
  if (j->o.method == XD_GRAD_INTEGRATED && j->o.steps < 2 &&
      (j->o.integration == XD_GRAD_RIEMANN_LEFT || j->o.integration == XD_GRAD_RIEMANN_TRAPEZOID)) {
    rc = xd_error_set(err, XD_EINVAL, "steps", "integration '%s' needs at least 2 steps",
                      xd_grad_integration_names[j->o.integration]);
    goto fail;
  }
  if ((rc = xd_json_instances(m, body, 1, lim->max_rows, &j->X, &j->n, err)) != XD_OK) goto fail;
  size_t d = xd_model_n_features(m), per = xd_grad_rows_per_instance(&j->o);
  uint64_t cost = (uint64_t)j->n * per;
  if (cost > lim->max_work_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, "instances",
                      "%zu instances x %zu gradient rows each exceed the limit of %llu model rows", j->n, per,
                      (unsigned long long)lim->max_work_rows);
    goto fail;
  }
  j->target = xd_malloc(j->n * sizeof *j->target);
  j->attr = xd_calloc(xd_mul_size(j->n, d), sizeof *j->attr);
  if (!j->target || !j->attr) goto nomem;
  if (j->o.method == XD_GRAD_INTEGRATED) {
    j->delta = xd_calloc(j->n, sizeof *j->delta);
    j->alpha = xd_malloc(j->o.steps * sizeof *j->alpha);
    j->wq = xd_malloc(j->o.steps * sizeof *j->wq);
    if (!j->delta || !j->alpha || !j->wq) goto nomem;
    if ((rc = xd_grad_quadrature(j->o.integration, j->o.steps, j->alpha, j->wq, err)) != XD_OK) goto fail;
    j->o.alpha = j->alpha;
    j->o.weights = j->wq;
  }
  if ((rc = xd_explain_targets(m, body, j->n, j->target, err)) != XD_OK) goto fail;
  if ((rc = decode_baseline(j, body, err)) != XD_OK) goto fail;

  j->rows_per_part = PART_UNITS / per ? PART_UNITS / per : 1;
  work->ops = &grad_ops;
  work->state = j;
  work->n_parts = (j->n + j->rows_per_part - 1) / j->rows_per_part;
  work->cost_rows = xd_work_cost(cost, xd_model_row_cost(m));
  work->model = j->entry->name;
  work->method = xd_grad_method_names[j->o.method];
  return XD_OK;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
fail:
  grad_free(j);
  return rc;
}
