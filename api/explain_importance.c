/* importance.c — POST /importance: decode, run and encode global feature importance.
 *
 * Methods (API.md; semantics in docs/importance_pdp.md):
 *   permutation        scikit-learn permutation_importance: one part per column plus the
 *                      baseline, so columns spread over the worker pool;
 *   olden, garson      connection weights of the dense network (one part, no data rows);
 *   mean_abs_gradient  mean over the rows of |∂f_target/∂x| (parts of GRAD_CHUNK rows);
 *   mean_abs_shap      mean over the rows of |φ| of Kernel SHAP (core/shap.h, the
 *                      defaults of /explain/shap: 50-point k-means background, auto
 *                      nsamples, identity link, no L1), SHAP_CHUNK rows per part.
 * The decoder validates every field strictly and takes the model reference that the
 * job's free releases. */
#include "api/graph_rows.h"
#include "api/importance.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/endpoints.h"
#include "api/alloc.h"
#include "core/alloc.h"
#include "core/importance.h"
#include "core/shap.h"

/* ==== data ============================================================================== */

void xd_imp_data_deinit(xd_imp_data_t *d) {
  if (!d) return;
  xd_free(d->X_owned);
  xd_free(d->y_owned);
  memset(d, 0, sizeof *d);
}

static int decode_targets(const xd_model_t *m, const json_t *t, size_t n, double *y, xd_error_t *err) {
  if (!json_is_array(t)) return xd_error_set(err, XD_EINVAL, "data.targets", "must be a list with one target per row");
  if (json_array_size(t) != n)
    return xd_error_set(err, XD_EINVAL, "data.targets", "has %zu targets for %zu instances", json_array_size(t), n);
  char f[XD_ERROR_FIELD_MAX];
  for (size_t i = 0; i < n; i++) {
    snprintf(f, sizeof f, "data.targets[%zu]", i);
    const json_t *v = json_array_get(t, i);
    int rc;
    if (xd_model_task(m) == XD_TASK_CLASSIFICATION) {
      size_t c = 0;
      rc = xd_json_label(m, v, f, &c, err);
      y[i] = (double)c;
    } else {
      rc = xd_json_number(v, f, &y[i], err);
    }
    if (rc != XD_OK) return rc;
  }
  return XD_OK;
}

int xd_imp_data_decode(const xd_api_t *api, const xd_model_t *m, const char *model_name, const json_t *body,
                       int need_targets, xd_imp_data_t *out, xd_error_t *err) {
  memset(out, 0, sizeof *out);
  const json_t *data = json_object_get(body, "data");
  int rc;
  if (!data || json_is_null(data)) {
    const xd_dataset_t *bg = xd_model_background(m);
    if (!bg || bg->n == 0)
      return xd_error_set(err, XD_EINVAL, "data",
                          "model '%s' has no background data: send data.instances%s", model_name,
                          need_targets ? " and data.targets" : "");
    if (need_targets && !bg->y)
      return xd_error_set(err, XD_EINVAL, "data",
                          "model '%s' has no background targets: send data.instances and data.targets", model_name);
    out->X = bg->X;
    out->y = bg->y;
    out->n = bg->n;
    out->from_background = 1;
    return XD_OK;
  }
  if (!json_is_object(data))
    return xd_error_set(err, XD_EINVAL, "data", "must be an object {\"instances\": [...], \"targets\": [...]}");
  static const char *const keys[] = {"instances", "targets", NULL};
  rc = xd_json_check_keys(data, keys, "data", err);
  if (rc != XD_OK) return rc;
  double *X = NULL;
  size_t n = 0;
  rc = xd_json_instances(m, data, 0, xd_api_limits(api)->max_background, &X, &n, err);
  if (rc != XD_OK) {
    xd_error_prefix_field(err, "data");
    return rc;
  }
  out->X = out->X_owned = X;
  out->n = n;
  const json_t *t = json_object_get(data, "targets");
  if (t && !json_is_null(t)) {
    out->y_owned = xd_calloc(n, sizeof *out->y_owned);
    if (!out->y_owned) {
      xd_imp_data_deinit(out);
      return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    }
    rc = decode_targets(m, t, n, out->y_owned, err);
    if (rc != XD_OK) {
      xd_imp_data_deinit(out);
      return rc;
    }
    out->y = out->y_owned;
  } else if (need_targets) {
    xd_imp_data_deinit(out);
    return xd_error_set(err, XD_EINVAL, "data.targets", "required with data.instances: one target per row");
  }
  return XD_OK;
}

/* ==== the job ============================================================================= */

enum { M_PERMUTATION, M_OLDEN, M_GARSON, M_GRADIENT, M_SHAP };
static const char *const method_names[] = {"permutation", "olden", "garson", "mean_abs_gradient", "mean_abs_shap",
                                           NULL};
static const char *const scoring_names[] = {"accuracy", "balanced_accuracy", "neg_log_loss", "r2",
                                            "neg_mean_squared_error", NULL};

/* Rows per mean_abs_gradient part: one batched backward each, and enough parts for the
 * pool on large data. */
#define GRAD_CHUNK 1024
/* Rows per mean_abs_shap part: each row is thousands of coalitions x background rows. */
#define SHAP_CHUNK 4
/* Background points of the SHAP summary (/explain/shap's background_size default). */
#define SHAP_BG 50

typedef struct imp_state {
  xd_model_entry_t *entry;
  const xd_model_t *m;
  int method;
  xd_imp_data_t data;
  size_t target;         /* olden/garson, and the per-row methods unless predicted */
  int target_predicted;  /* per-row methods: each row's predicted class */
  size_t *targets;       /* (n) per-row targets, when not predicted */
  size_t n_repeats, n_sub;
  uint64_t seed;
  xd_imp_scoring_t scoring;
  xd_imp_perm_t perm;
  double *values; /* olden/garson: (d); gradient, shap: (n, d) */
  /* mean_abs_shap: the summarized background, made once by the first part to run */
  pthread_mutex_t lock;
  int lock_init, bg_ready, bg_rc;
  xd_error_t bg_err;
  xd_shap_bg_t bg;
  double *expected, *out; /* (n) each, required by xd_shap_explain */
} imp_state_t;

static void imp_free(void *state) {
  imp_state_t *s = state;
  if (!s) return;
  xd_imp_perm_deinit(&s->perm);
  xd_imp_data_deinit(&s->data);
  xd_free(s->targets);
  xd_free(s->values);
  xd_free(s->expected);
  xd_free(s->out);
  xd_shap_bg_deinit(&s->bg);
  if (s->lock_init) pthread_mutex_destroy(&s->lock);
  if (s->entry) xd_model_entry_release(s->entry);
  xd_free(s);
}

/* The k-means summary is drawn from the request seed, so whichever part makes it, it is
 * the same summary; the lock only keeps it from being made twice. */
static int shap_part(imp_state_t *s, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  const size_t d = xd_model_n_features(s->m);
  pthread_mutex_lock(&s->lock);
  if (!s->bg_ready) {
    xd_error_clear(&s->bg_err);
    const xd_dataset_t *bg = xd_model_background(s->m);
    xd_dataset_t own = {s->data.n, d, (double *)s->data.X, NULL};
    const xd_dataset_t *use = bg && bg->n ? bg : &own;
    /* as /explain/shap: the linear closed form takes the whole background (its mean is
     * exact and costs nothing), the others a k-means summary */
    size_t k = xd_shap_resolve_method(s->m, XD_SHAP_AUTO, XD_SHAP_LINK_IDENTITY, use->n) == XD_SHAP_LINEAR
                   ? SIZE_MAX
                   : SHAP_BG;
    s->bg_rc = xd_shap_summarize(use, k, s->seed, &s->bg, &s->bg_err);
    s->bg_ready = 1;
  }
  pthread_mutex_unlock(&s->lock);
  if (s->bg_rc != XD_OK) {
    *err = s->bg_err;
    return s->bg_rc;
  }
  size_t r0 = part * SHAP_CHUNK, nr = s->data.n - r0 < SHAP_CHUNK ? s->data.n - r0 : SHAP_CHUNK;
  xd_shap_opts_t o = {XD_SHAP_AUTO, XD_SHAP_LINK_IDENTITY, 0, 0, s->seed};
  /* rows use SHAP streams r0.. of the seed: the answer does not depend on the chunking */
  int rc = xd_shap_explain(s->m, &o, &s->bg, s->data.X + r0 * d, nr, s->targets + r0, r0, s->values + r0 * d,
                           s->expected + r0, s->out + r0, NULL, cancel, err);
  if (rc == XD_OK)
    for (size_t i = 0; i < nr * d; i++) s->values[r0 * d + i] = fabs(s->values[r0 * d + i]);
  return rc;
}

static int imp_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  imp_state_t *s = state;
  const size_t d = xd_model_n_features(s->m);
  switch (s->method) {
  case M_PERMUTATION: return xd_imp_perm_run(&s->perm, part, cancel, err);
  case M_OLDEN:
  case M_GARSON: {
    double *in = xd_calloc(xd_model_n_inputs(s->m), sizeof *in);
    if (!in) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    int rc = s->method == M_OLDEN ? xd_imp_olden(s->m, s->target, in, err) : xd_imp_garson(s->m, s->target, in, err);
    if (rc == XD_OK) xd_imp_sum_inputs(s->m, in, s->values);
    xd_free(in);
    return rc;
  }
  case M_GRADIENT: {
    size_t r0 = part * GRAD_CHUNK, nr = s->data.n - r0 < GRAD_CHUNK ? s->data.n - r0 : GRAD_CHUNK;
    return xd_imp_abs_gradient(s->m, s->data.X + r0 * d, nr, s->target_predicted ? NULL : s->targets + r0,
                               s->values + r0 * d, cancel, err);
  }
  case M_SHAP: return shap_part(s, part, cancel, err);
  }
  return xd_error_set(err, XD_EINTERNAL, NULL, "unknown importance method");
}

/* Feature order of the response: decreasing key, ties by feature index (a stable
 * insertion sort; d is small). */
static void sort_by_key(const double *key, size_t d, size_t *order) {
  for (size_t j = 0; j < d; j++) {
    size_t i = j;
    while (i > 0 && key[order[i - 1]] < key[j]) {
      order[i] = order[i - 1];
      i--;
    }
    order[i] = j;
  }
}

static json_t *target_json(const imp_state_t *s) {
  if (s->target_predicted) return json_string("predicted");
  return json_integer((json_int_t)s->target);
}

static json_t *imp_encode(void *state, xd_error_t *err) {
  imp_state_t *s = state;
  const size_t d = xd_model_n_features(s->m), R = s->n_repeats;
  const xd_feature_t *fs = xd_model_features(s->m);
  double *mean = xd_calloc(d, sizeof *mean), *std = xd_calloc(d, sizeof *std), *key = xd_calloc(d, sizeof *key);
  double *vals = NULL;
  size_t *order = xd_calloc(d, sizeof *order);
  json_t *body = NULL, *list = NULL;
  if (!mean || !std || !key || !order) goto nomem;
  size_t nv = 1; /* values per feature */
  if (s->method == M_PERMUTATION) {
    nv = R;
    vals = xd_calloc(xd_mul_size(d, R), sizeof *vals);
    if (!vals) goto nomem;
    xd_imp_perm_result(&s->perm, vals, mean, std);
  } else if (s->method == M_GRADIENT || s->method == M_SHAP) {
    /* mean and population std over the rows, summed in row order (deterministic) */
    const size_t n = s->data.n;
    for (size_t j = 0; j < d; j++) {
      double sum = 0, ss = 0;
      for (size_t i = 0; i < n; i++) sum += s->values[i * d + j];
      double mu = sum / (double)n;
      for (size_t i = 0; i < n; i++) ss += (s->values[i * d + j] - mu) * (s->values[i * d + j] - mu);
      mean[j] = mu;
      std[j] = sqrt(ss / (double)n);
    }
  } else {
    for (size_t j = 0; j < d; j++) mean[j] = s->values[j];
  }
  for (size_t j = 0; j < d; j++) key[j] = s->method == M_OLDEN ? fabs(mean[j]) : mean[j];
  sort_by_key(key, d, order);

  list = json_array();
  if (!list) goto nomem;
  for (size_t r = 0; r < d; r++) {
    size_t j = order[r];
    json_t *v = vals ? xd_json_reals(vals + j * R, nv) : xd_json_reals(&mean[j], 1);
    json_t *o = v ? json_pack("{s:s, s:I, s:o, s:o, s:o}", "feature", fs[j].name, "feature_index", (json_int_t)j,
                              "mean", xd_json_real(mean[j]), "std", xd_json_real(std[j]), "values", v)
                  : NULL;
    if (!o || json_array_append_new(list, o) != 0) goto nomem;
  }
  body = json_pack("{s:s, s:s, s:o}", "model", s->entry->name, "method", method_names[s->method], "baseline_score",
                   s->method == M_PERMUTATION ? xd_json_real(s->perm.baseline) : json_null());
  if (!body) goto nomem;
  int bad = 0;
  if (s->data.n) bad |= json_object_set_new(body, "n_rows", json_integer((json_int_t)s->data.n));
  if (s->method == M_PERMUTATION) {
    bad |= json_object_set_new(body, "scoring", json_string(xd_imp_scoring_name(s->scoring)));
    bad |= json_object_set_new(body, "n_repeats", json_integer((json_int_t)R));
    bad |= json_object_set_new(body, "max_samples", json_integer((json_int_t)s->n_sub));
  } else {
    bad |= json_object_set_new(body, "target", target_json(s));
  }
  if (s->method == M_PERMUTATION || s->method == M_SHAP) {
    /* seeds above 2^63 do not fit jansson's integer: echo those as reals */
    bad |= json_object_set_new(body, "seed", s->seed <= (uint64_t)INT64_MAX ? json_integer((json_int_t)s->seed)
                                                                            : json_real((double)s->seed));
  }
  if (s->method == M_SHAP) bad |= json_object_set_new(body, "background_points", json_integer((json_int_t)s->bg.n));
  bad |= json_object_set_new(body, "importances", list);
  list = NULL;
  if (bad) goto nomem;
  goto done;
nomem:
  json_decref(body);
  body = NULL;
  xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
done:
  json_decref(list);
  xd_free(mean);
  xd_free(std);
  xd_free(key);
  xd_free(vals);
  xd_free(order);
  return body;
}

/* A JSON allocation failure while encoding turns the answer into a 500, a non-finite
 * result into a 400 (api/alloc.h). */
XD_JSON_RESULT_GUARDED(imp_encode_checked, imp_encode)
static const xd_job_ops_t imp_ops = {"importance", imp_run, imp_encode_checked, imp_free};

/* ==== decoding ============================================================================= */

/* "max_samples": an integer is a row count (1..n), a real a fraction of n in (0, 1],
 * truncated as scikit-learn's int(max_samples * n). n == 0 (a method without data rows):
 * only the form is checked. */
static int decode_max_samples(const json_t *body, size_t n, size_t *n_sub, xd_error_t *err) {
  const json_t *v = json_object_get(body, "max_samples");
  *n_sub = n;
  if (!v || json_is_null(v)) return XD_OK;
  if (json_is_integer(v)) {
    json_int_t c = json_integer_value(v);
    if (c < 1 || (n && (uint64_t)c > n))
      return xd_error_set(err, XD_EINVAL, "max_samples", "a row count must be between 1 and %zu (the data rows)", n);
    *n_sub = (size_t)c;
    return XD_OK;
  }
  if (!json_is_real(v))
    return xd_error_set(err, XD_EINVAL, "max_samples", "must be a fraction in (0, 1] or a row count");
  double f = json_real_value(v);
  if (!(f > 0 && f <= 1))
    return xd_error_set(err, XD_EINVAL, "max_samples", "a fraction must be in (0, 1] (an integer is a row count)");
  size_t c = (size_t)(f * (double)n);
  if (c < 1 && n)
    return xd_error_set(err, XD_EINVAL, "max_samples", "%g of %zu rows is less than one row", f, n);
  *n_sub = c;
  return XD_OK;
}

/* "target": "predicted" (allow_predicted), an output index or a class name. */
static int decode_target(const xd_model_t *m, const json_t *body, int allow_predicted, size_t *target,
                         int *predicted, xd_error_t *err) {
  const json_t *v = json_object_get(body, "target");
  if (!v || json_is_null(v)) return XD_OK;
  if (json_is_string(v) && strcmp(json_string_value(v), "predicted") == 0) {
    if (!allow_predicted)
      return xd_error_set(err, XD_EINVAL, "target",
                          "connection weights explain one output: give an output index or class name");
    *predicted = 1;
    return XD_OK;
  }
  *predicted = 0;
  return xd_json_label(m, v, "target", target, err);
}

int xd_importance_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  static const char *const keys[] = {"model",   "method",      "data", "target", "n_repeats", "scoring",
                                     "max_samples", "seed", "timeout_ms", NULL};
  const xd_limits_t *lim = xd_api_limits(api);
  imp_state_t *s = NULL;
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  s = xd_calloc(1, sizeof *s);
  if (!s) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  s->entry = xd_api_model(api, body, err);
  if (!s->entry) {
    rc = err->code ? err->code : XD_ENOTFOUND;
    goto fail;
  }
  s->m = s->entry->model;
  const xd_model_t *m = s->m;
  if ((rc = xd_api_require_tabular(s->m, s->entry->name, "/importance", err)) != XD_OK) goto fail;
  const size_t d = xd_model_n_features(m);
  int method = M_PERMUTATION;
  if ((rc = xd_json_opt_enum(body, "method", method_names, &method, err)) != XD_OK) goto fail;
  s->method = method;
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK) goto fail;

  /* options: every field is validated even when the method does not use it */
  int scoring = xd_model_task(m) == XD_TASK_CLASSIFICATION ? XD_IMP_ACCURACY : XD_IMP_R2;
  if ((rc = xd_json_opt_enum(body, "scoring", scoring_names, &scoring, err)) != XD_OK) goto fail;
  s->scoring = (xd_imp_scoring_t)scoring;
  if (xd_imp_scoring_is_classification(s->scoring) != (xd_model_task(m) == XD_TASK_CLASSIFICATION)) {
    rc = xd_error_set(err, XD_EINVAL, "scoring", "scoring '%s' does not apply to a %s model",
                      scoring_names[scoring],
                      xd_model_task(m) == XD_TASK_CLASSIFICATION ? "classification" : "regression");
    goto fail;
  }
  s->n_repeats = 5;
  if ((rc = xd_json_opt_size(body, "n_repeats", 1, lim->max_repeats, &s->n_repeats, err)) != XD_OK) goto fail;
  s->seed = 0;
  if ((rc = xd_json_opt_seed(body, "seed", &s->seed, NULL, err)) != XD_OK) goto fail;
  /* target: one output for the connection weights; "predicted" (default) or one output for
   * the per-row methods; validated but unused by permutation */
  int per_row = method == M_GRADIENT || method == M_SHAP;
  int weights_only = method == M_OLDEN || method == M_GARSON;
  s->target = xd_imp_default_weight_target(m);
  s->target_predicted = per_row;
  if ((rc = decode_target(m, body, !weights_only, &s->target, &s->target_predicted, err)) != XD_OK) goto fail;
  if (!per_row) s->target_predicted = 0;
  if (per_row && xd_model_task(m) == XD_TASK_REGRESSION) {
    s->target_predicted = 0;
    s->target = 0;
  }

  if (weights_only) {
    size_t nl = 0;
    if (!xd_model_dense_layers(m, &nl) || nl == 0) {
      rc = xd_error_set(err, XD_EINVAL, "method", "method '%s' needs a dense network; model '%s' is a %s model",
                        method_names[method], s->entry->name, xd_model_family(m));
      goto fail;
    }
  }
  if (method == M_GRADIENT && !xd_model_has_gradient(m)) {
    rc = xd_error_set(err, XD_EINVAL, "method", "model '%s' has no input gradient", s->entry->name);
    goto fail;
  }

  /* data: connection weights read none, but a given "data" is still validated */
  if (!weights_only || json_object_get(body, "data")) {
    rc = xd_imp_data_decode(api, m, s->entry->name, body, method == M_PERMUTATION, &s->data, err);
    if (rc != XD_OK) goto fail;
  }
  const size_t n = s->data.n;
  if ((rc = decode_max_samples(body, n, &s->n_sub, err)) != XD_OK) goto fail;

  uint64_t rows = 0;
  size_t parts = 1;
  switch (method) {
  case M_PERMUTATION:
    rows = xd_imp_perm_work_rows(n, d, s->n_repeats, s->n_sub);
    if (rows > lim->max_work_rows) {
      rc = xd_error_set(err, XD_ETOOBIG, "n_repeats",
                        "permutation importance needs %llu model rows (%zu features x %zu repeats x %zu rows), "
                        "over the limit of %llu",
                        (unsigned long long)rows, d, s->n_repeats, s->n_sub, (unsigned long long)lim->max_work_rows);
      goto fail;
    }
    rc = xd_imp_perm_init(&s->perm, m, s->data.X, s->data.y, n, s->scoring, s->n_repeats, s->n_sub, s->seed, err);
    if (rc != XD_OK) goto fail;
    parts = xd_imp_perm_parts(&s->perm);
    break;
  case M_OLDEN:
  case M_GARSON:
    s->values = xd_calloc(d, sizeof *s->values);
    if (!s->values) goto nomem;
    rows = 1;
    break;
  case M_GRADIENT:
    rows = 2 * (uint64_t)n; /* a forward for the predicted class, then forward + backward */
    if (rows > lim->max_work_rows) {
      rc = xd_error_set(err, XD_ETOOBIG, "data", "too many rows for the work limit");
      goto fail;
    }
    s->values = xd_calloc(xd_mul_size(n, d), sizeof *s->values);
    if (!s->values) goto nomem;
    if (!s->target_predicted) {
      s->targets = xd_calloc(n, sizeof *s->targets);
      if (!s->targets) goto nomem;
      for (size_t i = 0; i < n; i++) s->targets[i] = s->target;
    }
    parts = (n + GRAD_CHUNK - 1) / GRAD_CHUNK;
    break;
  case M_SHAP: {
    /* Kernel SHAP evaluates about min(2M + 2048, 2^M - 2) coalitions x the summary's
     * rows per data row (fewer for a linear model, which has a closed form). */
    const xd_dataset_t *bg = xd_model_background(m);
    size_t bgn = bg && bg->n ? bg->n : n;
    if (bgn > SHAP_BG) bgn = SHAP_BG;
    uint64_t coal = d < 62 ? ((UINT64_C(1) << d) - 2) : UINT64_MAX;
    if (coal > 2 * (uint64_t)d + 2048) coal = 2 * (uint64_t)d + 2048;
    rows = (uint64_t)n * (coal * bgn + 1) + bgn;
    if (rows > lim->max_work_rows) {
      rc = xd_error_set(err, XD_ETOOBIG, "data",
                        "mean_abs_shap needs about %llu model rows (%zu rows x %llu coalitions x %zu background "
                        "points), over the limit of %llu: send fewer data.instances",
                        (unsigned long long)rows, n, (unsigned long long)coal, bgn,
                        (unsigned long long)lim->max_work_rows);
      goto fail;
    }
    s->values = xd_calloc(xd_mul_size(n, d), sizeof *s->values);
    s->expected = xd_calloc(n, sizeof *s->expected);
    s->out = xd_calloc(n, sizeof *s->out);
    s->targets = xd_calloc(n, sizeof *s->targets);
    if (!s->values || !s->expected || !s->out || !s->targets) goto nomem;
    for (size_t i = 0; i < n; i++) s->targets[i] = s->target_predicted ? SIZE_MAX : s->target;
    if (pthread_mutex_init(&s->lock, NULL) != 0) goto nomem;
    s->lock_init = 1;
    parts = (n + SHAP_CHUNK - 1) / SHAP_CHUNK;
    break;
  }
  }
  work->ops = &imp_ops;
  work->state = s;
  work->n_parts = parts;
  work->cost_rows = rows;
  work->model = s->entry->name;
  return XD_OK;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
fail:
  imp_free(s);
  return rc;
}
