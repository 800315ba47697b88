/* explain_lime.c — POST /explain/lime: LIME tabular explanations (core/lime.h).
 *
 * Decoding (network thread) validates every option of API.md's table strictly and builds
 * the LIME plan once per request; each instance is one part of the job, explained on a
 * worker with its own random stream (seed, instance index), so the answer is the same
 * whatever the number of workers. The encoder writes API.md's response plus what lets a
 * client check an explanation (docs/algorithms.md §8): the model's prediction, the instance's
 * interpretable representation z0 (so local_pred == intercept + Σ weight·z0), and with
 * repeats > 1 the spread of every number over the runs.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/metrics.h"
#include "api/endpoints.h"
#include "api/explain_common.h"
#include "api/explain_image.h"
#include "api/explain_text.h"
#include "api/alloc.h"
#include "core/alloc.h"
#include "core/lime.h"

typedef struct lime_job {
  xd_model_entry_t *entry;
  xd_lime_options_t opt;
  /* The plan's sampling tables take 0.1-0.3 ms to build: the job's prepare step builds
   * them once (on a worker, not the network thread) for every part. */
  int have_plan;
  xd_lime_plan_t plan;
  double *X; /* (n, d) instances */
  size_t n;
  xd_lime_result_t *res; /* n */
  uint64_t first; /* instance k draws from stream first + k (api/job.h set_first_index) */
  int diagnostics; /* "diagnostics": true adds each instance's z0 to the answer */
} lime_job_t;

static int lime_prepare(void *state, const xd_cancel_t *cancel, xd_error_t *err) {
  lime_job_t *j = state;
  (void)cancel; /* building the plan is short: no cancel point inside */
  int rc = xd_lime_plan_init(&j->plan, j->entry->model, &j->opt, err);
  j->have_plan = rc == XD_OK;
  return rc;
}

static int lime_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  lime_job_t *j = state;
  return xd_lime_explain(&j->plan, j->X + part * j->plan.d, j->first + part, &j->res[part], cancel, err);
}

/* ---- encode ------------------------------------------------------------------------ */

static json_t *label_json(const lime_job_t *j, const double *x, const xd_lime_label_exp_t *e, int repeats) {
  const xd_model_t *m = j->entry->model;
  const xd_feature_t *fs = xd_model_features(m);
  char *const *cls = xd_model_classes(m);
  json_t *o = json_object(), *ws = json_array();
  if (!o || !ws) goto fail;
  json_object_set_new(o, "label", json_string(cls ? cls[e->label] : "value"));
  json_object_set_new(o, "label_index", json_integer((json_int_t)e->label));
  json_object_set_new(o, "intercept", xd_json_real(e->intercept));
  json_object_set_new(o, "score", xd_json_real(e->score));
  json_object_set_new(o, "local_pred", xd_json_real(e->local_pred));
  if (repeats) {
    json_object_set_new(o, "intercept_std", xd_json_real(e->intercept_std));
    json_object_set_new(o, "score_std", xd_json_real(e->score_std));
    json_object_set_new(o, "local_pred_std", xd_json_real(e->local_pred_std));
  }
  for (size_t a = 0; a < e->n_weights; a++) {
    size_t f = e->feature[a];
    char cond[512];
    xd_lime_condition(&j->plan, f, x, cond, sizeof cond);
    json_t *w = json_object();
    if (!w || json_array_append_new(ws, w)) goto fail;
    json_object_set_new(w, "feature", json_string(fs[f].name));
    json_object_set_new(w, "feature_index", json_integer((json_int_t)f));
    json_object_set_new(w, "condition", json_string(cond));
    json_object_set_new(w, "weight", xd_json_real(e->weight[a]));
    if (repeats) {
      json_object_set_new(w, "std", xd_json_real(e->std[a]));
      json_object_set_new(w, "selected", json_integer((json_int_t)e->selected[a]));
    }
  }
  json_object_set_new(o, "weights", ws);
  return o;
fail:
  json_decref(o);
  json_decref(ws);
  return NULL;
}

/* Below this R² of the local surrogate on its weighted samples, the explanation describes
 * the model poorly near the instance: the answer says so (docs/API.md, "Warnings"). */
#define XD_LIME_LOW_SCORE 0.5

static int lime_warnings(const lime_job_t *j, json_t *body) {
  json_t *w = json_array();
  int rc = w ? XD_OK : XD_ENOMEM;
  size_t d = j->plan.d;
  if (rc == XD_OK && j->opt.num_features > d)
    rc = xd_json_warn(w, "num_features %zu is more than the model's %zu features: clamped to %zu",
                      j->opt.num_features, d, d);
  for (size_t i = 0; rc == XD_OK && i < j->n; i++)
    for (size_t l = 0; rc == XD_OK && l < j->res[i].n_labels; l++) {
      double s = j->res[i].labels[l].score;
      xd_metrics_quality(XD_QUALITY_LIME_SCORE, "lime", s);
      if (s < XD_LIME_LOW_SCORE)
        rc = xd_json_warn(w, "explanations[%zu].labels[%zu]: the local fit has score (R^2) %.3f, below %.1f: the "
                          "weights describe the model poorly here (try more num_samples or another kernel_width)",
                          i, l, s, XD_LIME_LOW_SCORE);
    }
  if (rc == XD_OK) xd_json_set_warnings(body, w);
  json_decref(w);
  return rc;
}

static json_t *lime_encode(void *state, xd_error_t *err) {
  lime_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  const xd_lime_options_t *o = &j->plan.opt;
  size_t d = j->plan.d;
  json_t *body = json_object(), *exps = json_array();
  if (!body || !exps) goto nomem;
  json_object_set_new(body, "model", json_string(j->entry->name));
  json_object_set_new(body, "seed", xd_explain_seed_json(o->seed));
  json_object_set_new(body, "num_samples", json_integer((json_int_t)o->num_samples));
  json_object_set_new(body, "num_features", json_integer((json_int_t)o->num_features));
  json_object_set_new(body, "kernel_width", xd_json_real(o->kernel_width));
  json_object_set_new(body, "discretize", json_string(xd_lime_disc_names[o->discretize]));
  json_object_set_new(body, "feature_selection", json_string(xd_lime_fs_names[o->feature_selection]));
  json_object_set_new(body, "sample_around_instance", json_boolean(o->sample_around_instance));
  json_object_set_new(body, "repeats", json_integer((json_int_t)o->repeats));
  for (size_t i = 0; i < j->n; i++) {
    const xd_lime_result_t *r = &j->res[i];
    json_t *e = json_object(), *labels = json_array();
    if (!e || !labels) { /* drop whichever was made: e leaked when only labels failed */
      json_decref(e);
      json_decref(labels);
      goto nomem;
    }
    if (json_array_append_new(exps, e)) { /* consumes e even when it fails */
      json_decref(labels);
      goto nomem;
    }
    if (j->plan.classification) {
      json_object_set_new(e, "probabilities", xd_json_reals(r->prediction, r->n_outputs));
      json_object_set_new(e, "prediction", json_string(xd_model_classes(m)[xd_model_argmax(m, r->prediction)]));
    } else {
      json_object_set_new(e, "prediction", xd_json_real(r->prediction[0]));
    }
    if (j->diagnostics) json_object_set_new(e, "z0", xd_json_reals(r->z0, d)); /* only when asked for */
    for (size_t l = 0; l < r->n_labels; l++) {
      json_t *lj = label_json(j, j->X + i * d, &r->labels[l], o->repeats > 1);
      if (!lj || json_array_append_new(labels, lj)) {
        json_decref(labels);
        goto nomem;
      }
    }
    json_object_set_new(e, "labels", labels);
  }
  json_object_set_new(body, "explanations", exps);
  if (lime_warnings(j, body) != XD_OK) {
    exps = NULL; /* owned by body now */
    goto nomem;
  }
  return body;
nomem:
  json_decref(body);
  json_decref(exps);
  xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
  return NULL;
}

static void lime_set_first(void *state, uint64_t first) { ((lime_job_t *)state)->first = first; }

static void lime_free(void *state) {
  lime_job_t *j = state;
  if (!j) return;
  if (j->res)
    for (size_t i = 0; i < j->n; i++) xd_lime_result_deinit(&j->res[i]);
  xd_free(j->res);
  if (j->have_plan) xd_lime_plan_deinit(&j->plan);
  xd_free(j->X);
  xd_model_entry_release(j->entry);
  xd_free(j);
}

/* A JSON allocation failure while encoding turns the answer into a 500, a non-finite
 * result into a 400 (api/alloc.h). */
XD_JSON_RESULT_GUARDED(lime_encode_checked, lime_encode)
static const xd_job_ops_t lime_ops = {
    .endpoint = "explain_lime", .prepare = lime_prepare, .run = lime_run, .encode = lime_encode_checked, .free = lime_free,
    .set_first_index = lime_set_first};

/* ---- decode ------------------------------------------------------------------------ */

/* "labels": a list of labels (index or class name), or one label. */
static int decode_labels(const xd_model_t *m, const json_t *body, xd_lime_options_t *o, xd_error_t *err) {
  json_t *v = json_object_get(body, "labels");
  if (!v || json_is_null(v)) return XD_OK;
  if (!json_is_array(v)) {
    o->n_labels = 1;
    return xd_json_label(m, v, "labels", &o->labels[0], err);
  }
  size_t k = json_array_size(v);
  if (k == 0) return xd_error_set(err, XD_EINVAL, "labels", "must not be empty (leave it out to use top_labels)");
  if (k > XD_LIME_MAX_LABELS) return xd_error_set(err, XD_EINVAL, "labels", "at most %d labels", XD_LIME_MAX_LABELS);
  for (size_t i = 0; i < k; i++) {
    char f[32];
    snprintf(f, sizeof f, "labels[%zu]", i);
    int rc = xd_json_label(m, json_array_get(v, i), f, &o->labels[i], err);
    if (rc != XD_OK) return rc;
  }
  o->n_labels = k;
  return XD_OK;
}

static int decode_options(xd_api_t *api, const xd_model_t *m, const json_t *body, xd_lime_options_t *o,
                          xd_error_t *err) {
  const xd_limits_t *lim = xd_api_limits(api);
  int rc, e;
  xd_lime_options_default(o);
  if ((rc = xd_json_opt_size(body, "num_samples", 1, lim->max_samples, &o->num_samples, err))) return rc;
  if ((rc = xd_json_opt_size(body, "num_features", 1, 1000000, &o->num_features, err))) return rc;
  if ((rc = decode_labels(m, body, o, err))) return rc;
  size_t max_top = xd_model_task(m) == XD_TASK_CLASSIFICATION ? xd_model_n_outputs(m) : 1000000;
  if ((rc = xd_json_opt_size(body, "top_labels", 1, max_top, &o->top_labels, err))) return rc;
  json_t *tl = json_object_get(body, "top_labels");
  if (o->n_labels && tl && !json_is_null(tl))
    return xd_error_set(err, XD_EINVAL, "top_labels", "give labels or top_labels, not both");
  e = (int)o->discretize;
  if ((rc = xd_json_opt_enum(body, "discretize", xd_lime_disc_names, &e, err))) return rc;
  o->discretize = (xd_lime_disc_t)e;
  json_t *kw = json_object_get(body, "kernel_width");
  if (kw && !json_is_null(kw)) {
    if ((rc = xd_json_number(kw, "kernel_width", &o->kernel_width, err))) return rc;
    if (!(o->kernel_width > 0) || o->kernel_width > 1e150)
      return xd_error_set(err, XD_EINVAL, "kernel_width", "must be a positive number (at most 1e150)");
  }
  e = (int)o->feature_selection;
  if ((rc = xd_json_opt_enum(body, "feature_selection", xd_lime_fs_names, &e, err))) return rc;
  o->feature_selection = (xd_lime_fs_t)e;
  if ((rc = xd_json_opt_bool(body, "sample_around_instance", &o->sample_around_instance, err))) return rc;
  if ((rc = xd_json_opt_size(body, "repeats", 1, lim->max_repeats, &o->repeats, err))) return rc;
  return xd_explain_seed(body, &o->seed, err);
}

int xd_lime_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  if (xd_api_is_text_model(api, body)) return xd_lime_text_decode(api, body, work, err); /* api/explain_text_lime.c */
  if (xd_api_is_image_model(api, body)) return xd_lime_image_decode(api, body, work, err); /* api/explain_lime_image.c */
  static const char *const keys[] = {"model",  "instances", "instance", "num_samples", "num_features",
                                     "labels", "top_labels", "discretize", "kernel_width", "feature_selection",
                                     "sample_around_instance", "repeats", "seed", "diagnostics", "timeout_ms", NULL};
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  lime_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if (!(j->entry = xd_api_model(api, body, err))) {
    rc = err->code;
    goto fail;
  }
  const xd_model_t *m = j->entry->model;
  const xd_limits_t *lim = xd_api_limits(api);
  xd_lime_options_t o;
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err))) goto fail;
  if ((rc = decode_options(api, m, body, &o, err))) goto fail;
  if ((rc = xd_json_opt_bool(body, "diagnostics", &j->diagnostics, err))) goto fail;
  if ((rc = xd_json_instances(m, body, 1, lim->max_rows, &j->X, &j->n, err))) goto fail;
  /* Admission: every instance evaluates num_samples rows per repeat. */
  double work_rows = (double)j->n * (double)o.num_samples * (double)o.repeats;
  if (work_rows > (double)lim->max_work_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, "num_samples",
                      "%zu instances x %zu samples x %zu repeats is more than the limit of %llu model rows", j->n,
                      o.num_samples, o.repeats, (unsigned long long)lim->max_work_rows);
    goto fail;
  }
  if ((rc = xd_lime_plan_check(m, &o, err))) goto fail;
  j->opt = o;
  j->res = xd_calloc(j->n, sizeof *j->res);
  if (!j->res) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  work->ops = &lime_ops;
  work->state = j;
  work->n_parts = j->n;
  work->cost_rows = xd_work_cost((uint64_t)work_rows, xd_model_row_cost(m));
  work->model = j->entry->name;
  work->method = "lime";
  return XD_OK;
fail:
  lime_free(j);
  return rc;
}
