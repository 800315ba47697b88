/* importance.c — POST /importance: decode, run and encode global feature importance.
 *
 * Methods (API.md; semantics in docs/importance_pdp.md):
 *   permutation        scikit-learn permutation_importance: one part per column plus the
 *                      baseline, so columns spread over the worker pool;
 *   olden, garson      connection weights of the dense network (one part, no data rows);
 *   mean_abs_gradient  mean over the rows of |∂f_target/∂x| (parts of GRAD_CHUNK rows);
 *   mean_abs_shap      mean over the rows of |φ| of Kernel SHAP (core/shap.h, the
 *                      defaults of /explain/shap: 50-point k-means background, auto
 *                      nsamples, identity link, no L1), SHAP_CHUNK rows per part;
 *                      for tree models path-dependent TreeSHAP of the raw margin
 *                      (core/trees.h), TREE_CHUNK rows per part;
 *   weight, gain, total_gain, cover, total_cover
 *                      tree ensembles: XGBoost's get_score over the splits (one part).
 * The decoder validates every field strictly and takes the model reference that the
 * job's free releases. */
#include "api/graph_rows.h"
#include "api/importance.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/endpoints.h"
#include "api/alloc.h"
#include "core/alloc.h"
#include "core/importance.h"
#include "core/shap.h"
#include "core/trees.h"

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

enum { M_PERMUTATION, M_OLDEN, M_GARSON, M_GRADIENT, M_SHAP, M_WEIGHT, M_GAIN, M_TOTAL_GAIN, M_COVER, M_TOTAL_COVER };
static const char *const method_names[] = {"permutation", "olden", "garson", "mean_abs_gradient", "mean_abs_shap",
                                           "weight", "gain", "total_gain", "cover", "total_cover", NULL};
/* The split importances, in method order from M_WEIGHT (core/trees.h's order). */
static const xd_trees_imp_t split_types[] = {XD_TREES_IMP_WEIGHT, XD_TREES_IMP_GAIN, XD_TREES_IMP_TOTAL_GAIN,
                                             XD_TREES_IMP_COVER, XD_TREES_IMP_TOTAL_COVER};
/* Rows per TreeSHAP part of mean_abs_shap on a tree model. */
#define TREE_CHUNK 64
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
  /* mean_abs_shap: the summarized background, made once by the prepare step */
  xd_shap_bg_t bg;
  double *expected, *out; /* (n) each, required by xd_shap_explain */
  /* its k-means runs (the prepare parts) when the background is summarized */
  xd_dataset_t km_ds;                  /* the rows summarized (borrowed) */
  size_t km_k;
  double *km_C[XD_SHAP_KMEANS_RUNS];   /* (km_k, d) each */
  size_t *km_cnt[XD_SHAP_KMEANS_RUNS]; /* (km_k) each */
  double km_inertia[XD_SHAP_KMEANS_RUNS];
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
  for (int r = 0; r < XD_SHAP_KMEANS_RUNS; r++) {
    xd_free(s->km_C[r]);
    xd_free(s->km_cnt[r]);
  }
  if (s->entry) xd_model_entry_release(s->entry);
  xd_free(s);
}

/* mean_abs_shap on a tree model: |path-dependent TreeSHAP| of the raw margin of each row's
 * target (the predicted class, or the one margin of a binary or regression model). */
static int tree_shap_part(imp_state_t *s, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  const xd_trees_t *t = xd_model_trees(s->m);
  const size_t d = xd_model_n_features(s->m), K = xd_model_n_outputs(s->m), G = xd_trees_n_groups(t);
  size_t r0 = part * TREE_CHUNK, nr = s->data.n - r0 < TREE_CHUNK ? s->data.n - r0 : TREE_CHUNK;
  double *scratch = xd_malloc(xd_treeshap_scratch(t) * sizeof *scratch), *P = xd_malloc(nr * K * sizeof *P);
  int rc = XD_OK;
  if (!scratch || !P) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  if (s->target_predicted && (rc = xd_model_predict(s->m, s->data.X + r0 * d, nr, P, cancel, err)) != XD_OK) goto done;
  for (size_t i = 0; i < nr; i++) {
    size_t tg = s->target_predicted ? xd_model_argmax(s->m, P + i * K) : s->targets[r0 + i];
    double e, *phi = s->values + (r0 + i) * d;
    xd_treeshap_path(t, s->data.X + (r0 + i) * d, d, G == 1 ? 0 : tg, phi, &e, scratch);
    for (size_t j = 0; j < d; j++) phi[j] = fabs(phi[j]);
  }
done:
  xd_free(scratch);
  xd_free(P);
  return rc;
}

/* The rows mean_abs_shap summarizes and into how many points (SIZE_MAX: as they are). */
static xd_dataset_t shap_bg_rows(const imp_state_t *s, size_t *k) {
  const size_t d = xd_model_n_features(s->m);
  const xd_dataset_t *bg = xd_model_background(s->m);
  xd_dataset_t own = {s->data.n, d, (double *)s->data.X, NULL};
  xd_dataset_t use = bg && bg->n ? *bg : own;
  /* as /explain/shap: the linear closed form takes the whole background (its mean is
   * exact and costs nothing), the others a k-means summary */
  *k = xd_shap_resolve_method(s->m, XD_SHAP_AUTO, XD_SHAP_LINK_IDENTITY, use.n) == XD_SHAP_LINEAR ? SIZE_MAX
                                                                                                  : SHAP_BG;
  return use;
}

/* Prepare part r (api/job.h): k-means run r of mean_abs_shap's summary, from its own
 * stream of the seed; imp_prepare picks the best as xd_shap_kmeans does. */
static int imp_kmeans_part(void *state, size_t r, const xd_cancel_t *cancel, xd_error_t *err) {
  imp_state_t *s = state;
  return xd_shap_kmeans_run(s->km_ds.X, s->km_ds.n, s->km_ds.d, s->km_k, s->seed, (unsigned)r, s->km_C[r],
                            s->km_cnt[r], &s->km_inertia[r], cancel, err);
}

/* The job's prepare step (api/job.h): mean_abs_shap's summary of the background, drawn
 * from the request seed, made once before any part runs (from the k-means runs of the
 * prepare parts when there are any). */
static int imp_prepare(void *state, const xd_cancel_t *cancel, xd_error_t *err) {
  imp_state_t *s = state;
  (void)cancel;
  if (s->method != M_SHAP || xd_model_trees(s->m)) return XD_OK; /* trees: TreeSHAP, no summary */
  if (s->km_k)
    return xd_shap_kmeans_pick(s->km_ds.X, s->km_ds.n, s->km_ds.d, s->km_k, s->km_C, s->km_cnt, s->km_inertia,
                               XD_SHAP_KMEANS_RUNS, &s->bg, err);
  size_t k;
  xd_dataset_t use = shap_bg_rows(s, &k);
  return xd_shap_summarize(&use, k, s->seed, &s->bg, err); /* as is: nothing to summarize */
}

static int shap_part(imp_state_t *s, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  const size_t d = xd_model_n_features(s->m);
  if (xd_model_trees(s->m)) return tree_shap_part(s, part, cancel, err);
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
  case M_WEIGHT:
  case M_GAIN:
  case M_TOTAL_GAIN:
  case M_COVER:
  case M_TOTAL_COVER: xd_trees_importance(xd_model_trees(s->m), split_types[s->method - M_WEIGHT], d, s->values); return XD_OK;
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
  } else if (s->method < M_WEIGHT) { /* the split importances are about no output */
    bad |= json_object_set_new(body, "target", target_json(s));
    if (!s->target_predicted && xd_model_task(s->m) == XD_TASK_CLASSIFICATION && s->target < xd_model_n_outputs(s->m))
      bad |= json_object_set_new(body, "target_name", json_string(xd_model_classes(s->m)[s->target]));
  }
  if (s->method == M_PERMUTATION || s->method == M_SHAP) {
    /* seeds above 2^63 do not fit jansson's integer: echo those as reals */
    bad |= json_object_set_new(body, "seed", s->seed <= (uint64_t)INT64_MAX ? json_integer((json_int_t)s->seed)
                                                                            : json_real((double)s->seed));
  }
  if (s->method == M_SHAP && !xd_model_trees(s->m))
    bad |= json_object_set_new(body, "background_points", json_integer((json_int_t)s->bg.n));
  if (s->method == M_SHAP && xd_model_trees(s->m))
    bad |= json_object_set_new(body, "shap_method", json_string("tree_path_dependent"));
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
static const xd_job_ops_t imp_ops = {
    .endpoint = "importance", .prepare = imp_prepare,
    .prepare_part = imp_kmeans_part, .run = imp_run, .encode = imp_encode_checked, .free = imp_free};

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
    rc = xd_error_set(err, XD_EINVAL, "scoring", "scoring '%s' does not apply to a %s model (must be a scoring of that task, docs/API.md)",
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
  int split_imp = method >= M_WEIGHT;
  int weights_only = method == M_OLDEN || method == M_GARSON || split_imp;
  s->target = xd_imp_default_weight_target(m);
  s->target_predicted = per_row;
  if ((rc = decode_target(m, body, !weights_only, &s->target, &s->target_predicted, err)) != XD_OK) goto fail;
  if (!per_row) s->target_predicted = 0;
  if (per_row && xd_model_task(m) == XD_TASK_REGRESSION) {
    s->target_predicted = 0;
    s->target = 0;
  }

  if (split_imp && !xd_model_trees(m)) {
    rc = xd_error_set(err, XD_EINVAL, "method", "method '%s' needs a tree ensemble; model '%s' is a %s model",
                      method_names[method], s->entry->name, xd_model_family(m));
    goto fail;
  }
  if (weights_only && !split_imp) {
    size_t nl = 0;
    if (!xd_model_dense_layers(m, &nl) || nl == 0) {
      rc = xd_error_set(err, XD_EINVAL, "method", "method '%s' needs a dense network; model '%s' is a %s model",
                        method_names[method], s->entry->name, xd_model_family(m));
      goto fail;
    }
  }
  if (method == M_GRADIENT && !xd_model_has_gradient(m)) {
    rc = xd_error_set(err, XD_EINVAL, "method", "model '%s' has no input gradient%s", s->entry->name,
                      xd_model_trees(m) ? " (a tree ensemble: use gain, total_gain, weight, cover, mean_abs_shap or "
                                          "permutation)"
                                        : "");
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
  case M_WEIGHT:
  case M_GAIN:
  case M_TOTAL_GAIN:
  case M_COVER:
  case M_TOTAL_COVER:
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
    if (xd_model_trees(m)) { /* TreeSHAP: one walk of every tree per row, no model rows */
      rows = n;
      s->values = xd_calloc(xd_mul_size(n, d), sizeof *s->values);
      s->targets = xd_calloc(n, sizeof *s->targets);
      if (!s->values || !s->targets) goto nomem;
      for (size_t i = 0; i < n; i++) s->targets[i] = s->target;
      parts = (n + TREE_CHUNK - 1) / TREE_CHUNK;
      break;
    }
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
    parts = (n + SHAP_CHUNK - 1) / SHAP_CHUNK;
    size_t km_k;
    xd_dataset_t use = shap_bg_rows(s, &km_k);
    if (use.n > km_k) { /* summarized: its k-means runs become prepare parts */
      s->km_ds = use;
      s->km_k = km_k;
      for (int r = 0; r < XD_SHAP_KMEANS_RUNS; r++) {
        s->km_C[r] = xd_malloc(xd_mul_size(km_k, use.d) * sizeof **s->km_C);
        s->km_cnt[r] = xd_malloc(km_k * sizeof **s->km_cnt);
        if (!s->km_C[r] || !s->km_cnt[r]) goto nomem;
      }
    }
    break;
  }
  }
  work->ops = &imp_ops;
  work->state = s;
  work->n_parts = parts;
  work->n_prepare_parts = s->km_k ? XD_SHAP_KMEANS_RUNS : 0;
  work->cost_rows = xd_work_cost(rows, xd_model_row_cost(s->m));
  work->model = s->entry->name;
  work->method = method_names[s->method];
  return XD_OK;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
fail:
  imp_free(s);
  return rc;
}

/* ---- sharded permutation importance (docs/jobs.md, docs/algorithms.md §14) ---------------- */

/* Blocks [b0, b1) of nb for shard `shard` of n_shards: contiguous, on block boundaries. */
static void shard_blocks(size_t nb, size_t shard, size_t n_shards, size_t *b0, size_t *b1) {
  *b0 = shard * nb / n_shards;
  *b1 = (shard + 1) * nb / n_shards;
}

/* [[sum, ...] per block] of nb blocks from sums (nb, XD_IMP_NSUMS). */
static json_t *blocks_json(const double *sums, size_t nb) {
  json_t *a = json_array();
  for (size_t b = 0; a && b < nb; b++) json_array_append_new(a, xd_json_reals(sums + b * XD_IMP_NSUMS, XD_IMP_NSUMS));
  return a;
}

int xd_importance_shard(xd_api_t *api, const json_t *body, size_t shard, size_t n_shards, json_t **out,
                        xd_error_t *err) {
  xd_work_t w;
  memset(&w, 0, sizeof w);
  int rc = xd_importance_decode(api, body, &w, err);
  if (rc != XD_OK) return rc;
  imp_state_t *s = w.state;
  const xd_imp_perm_t *p = &s->perm;
  const size_t d = xd_model_n_features(s->m), R = s->n_repeats, B = XD_IMP_SUM_BLOCK;
  json_t *o = NULL, *cols = NULL, *names = NULL;
  double *sums = NULL;
  if (s->method != M_PERMUTATION) {
    rc = xd_error_set(err, XD_EUNSUPPORTED, "method", "only permutation importance runs in shards");
    goto done;
  }
  size_t nbb = (p->n + B - 1) / B, nbs = (p->n_sub + B - 1) / B, a0, a1, c0, c1;
  shard_blocks(nbb, shard, n_shards, &a0, &a1);
  shard_blocks(nbs, shard, n_shards, &c0, &c1);
  size_t most = (a1 - a0) > (c1 - c0) * R ? (a1 - a0) : (c1 - c0) * R;
  sums = xd_malloc((most ? most : 1) * XD_IMP_NSUMS * sizeof *sums);
  o = json_object();
  cols = json_array();
  names = json_array();
  if (!sums || !o || !cols || !names) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  size_t r1 = a1 * B < p->n ? a1 * B : p->n;
  if ((rc = xd_imp_perm_sums(p, d, a0 * B, r1, sums, NULL, err)) != XD_OK) goto done;
  json_object_set_new(o, "baseline", blocks_json(sums, a1 - a0));
  r1 = c1 * B < p->n_sub ? c1 * B : p->n_sub;
  for (size_t j = 0; j < d; j++) {
    if ((rc = xd_imp_perm_sums(p, j, c0 * B, r1, sums, NULL, err)) != XD_OK) goto done;
    json_t *reps = json_array();
    for (size_t r = 0; r < R; r++) json_array_append_new(reps, blocks_json(sums + r * (c1 - c0) * XD_IMP_NSUMS, c1 - c0));
    json_array_append_new(cols, reps);
    json_array_append_new(names, json_string(xd_model_features(s->m)[j].name));
  }
  json_object_set_new(o, "model", json_string(s->entry->name));
  json_object_set_new(o, "scoring", json_string(xd_imp_scoring_name(s->scoring)));
  json_object_set_new(o, "n_rows", json_integer((json_int_t)p->n));
  json_object_set_new(o, "max_samples", json_integer((json_int_t)p->n_sub));
  json_object_set_new(o, "n_repeats", json_integer((json_int_t)R));
  json_object_set_new(o, "seed", s->seed <= (uint64_t)INT64_MAX ? json_integer((json_int_t)s->seed) : json_real((double)s->seed));
  json_object_set_new(o, "block", json_integer((json_int_t)B));
  json_object_set_new(o, "baseline_blocks", json_pack("[I,I]", (json_int_t)a0, (json_int_t)a1));
  json_object_set_new(o, "sample_blocks", json_pack("[I,I]", (json_int_t)c0, (json_int_t)c1));
  json_object_set_new(o, "features", names);
  names = NULL;
  json_object_set_new(o, "columns", cols);
  cols = NULL;
  *out = json_pack("{s:o}", "importance_shard", o);
  o = NULL;
done:
  json_decref(o);
  json_decref(cols);
  json_decref(names);
  xd_free(sums);
  imp_free(s);
  return rc;
}

int xd_importance_shard_blocks(xd_api_t *api, const json_t *body, size_t *n_blocks, xd_error_t *err) {
  xd_work_t w;
  memset(&w, 0, sizeof w);
  int rc = xd_importance_decode(api, body, &w, err);
  if (rc != XD_OK) return rc;
  imp_state_t *s = w.state;
  if (s->method != M_PERMUTATION) rc = xd_error_set(err, XD_EINVAL, "method", "only permutation importance runs as a job");
  else if (s->scoring == XD_IMP_BALANCED_ACCURACY)
    rc = xd_error_set(err, XD_EINVAL, "scoring", "balanced_accuracy does not split into per-row sums: run it in one request");
  size_t a = (s->perm.n + XD_IMP_SUM_BLOCK - 1) / XD_IMP_SUM_BLOCK, b = (s->perm.n_sub + XD_IMP_SUM_BLOCK - 1) / XD_IMP_SUM_BLOCK;
  *n_blocks = a > b ? a : b;
  imp_free(s);
  return rc;
}

/* Adds the blocks of a (array of [sums]) to tot in order; the block count, or -1. */
static long add_blocks(const json_t *a, double *tot) {
  if (!json_is_array(a)) return -1;
  for (size_t b = 0; b < json_array_size(a); b++) {
    const json_t *v = json_array_get(a, b);
    if (json_array_size(v) != XD_IMP_NSUMS) return -1;
    for (size_t q = 0; q < XD_IMP_NSUMS; q++) tot[q] += json_number_value(json_array_get(v, q));
  }
  return (long)json_array_size(a);
}

static int by_first_block(const void *a, const void *b) {
  json_int_t x = json_integer_value(json_array_get(json_object_get(*(json_t *const *)a, "baseline_blocks"), 0));
  json_int_t y = json_integer_value(json_array_get(json_object_get(*(json_t *const *)b, "baseline_blocks"), 0));
  return x < y ? -1 : x > y;
}

json_t *xd_importance_merge(json_t *const *shards, size_t n, xd_error_t *err) {
  json_t **sh = xd_calloc(n ? n : 1, sizeof *sh), *body = NULL, *list = NULL;
  double *scores = NULL, *mean = NULL, *std = NULL, *vals = NULL;
  size_t *order = NULL;
  if (!sh) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory"), NULL;
  for (size_t i = 0; i < n; i++) sh[i] = json_object_get(shards[i], "importance_shard");
  const json_t *h = n ? sh[0] : NULL;
  const size_t d = json_array_size(json_object_get(h, "features")), R = (size_t)json_integer_value(json_object_get(h, "n_repeats"));
  const size_t nr = (size_t)json_integer_value(json_object_get(h, "n_rows")), ns = (size_t)json_integer_value(json_object_get(h, "max_samples"));
  const char *scoring = json_string_value(json_object_get(h, "scoring"));
  xd_imp_scoring_t sc = XD_IMP_ACCURACY;
  for (int k = 0; k <= XD_IMP_NEG_MSE; k++)
    if (scoring && strcmp(scoring, xd_imp_scoring_name((xd_imp_scoring_t)k)) == 0) sc = (xd_imp_scoring_t)k;
  for (size_t i = 0; i < n; i++)
    if (!sh[i] || !json_equal(json_object_get(sh[i], "features"), json_object_get(h, "features")) ||
        !json_equal(json_object_get(sh[i], "scoring"), json_object_get(h, "scoring")) ||
        !json_equal(json_object_get(sh[i], "n_repeats"), json_object_get(h, "n_repeats")) ||
        !json_equal(json_object_get(sh[i], "n_rows"), json_object_get(h, "n_rows")) ||
        !json_equal(json_object_get(sh[i], "max_samples"), json_object_get(h, "max_samples"))) {
      xd_error_set(err, XD_EINVAL, NULL, "shard %zu is not an importance shard of the same job", i);
      goto done;
    }
  /* sizes as the documents claim them: bounded before any use (a shard file is input) */
  if (!h || d == 0 || R == 0 || nr == 0 || ns == 0 || R > 1000000 || nr > ((size_t)1 << 40) || ns > nr) {
    xd_error_set(err, XD_EINVAL, NULL, "no importance shards");
    goto done;
  }
  qsort(sh, n, sizeof *sh, by_first_block);
  scores = xd_calloc((d * R + 1) * XD_IMP_NSUMS, sizeof *scores);
  mean = xd_calloc(d, sizeof *mean), std = xd_calloc(d, sizeof *std), vals = xd_calloc(d * R, sizeof *vals);
  order = xd_calloc(d, sizeof *order);
  if (!scores || !mean || !std || !vals || !order) {
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  /* totals: the block sums in block order, shard after shard; the blocks must tile */
  long nbb = 0, nbs = 0;
  for (size_t i = 0; i < n; i++) {
    const json_t *bb = json_object_get(sh[i], "baseline_blocks"), *sb = json_object_get(sh[i], "sample_blocks");
    long got = add_blocks(json_object_get(sh[i], "baseline"), scores + d * R * XD_IMP_NSUMS);
    if (json_integer_value(json_array_get(bb, 0)) != nbb || got != json_integer_value(json_array_get(bb, 1)) - nbb ||
        json_integer_value(json_array_get(sb, 0)) != nbs) {
      xd_error_set(err, XD_EINVAL, NULL, "the shards do not tile the rows: a shard is missing or repeated (expected "
                   "block %ld next)", nbb);
      goto done;
    }
    long ns_blocks = (long)(json_integer_value(json_array_get(sb, 1)) - nbs);
    if (ns_blocks < 0 || got < 0) {
      xd_error_set(err, XD_EINVAL, NULL, "shard %zu: its block ranges are not ranges", i);
      goto done;
    }
    for (size_t j = 0; j < d; j++)
      for (size_t r = 0; r < R; r++)
        if (add_blocks(json_array_get(json_array_get(json_object_get(sh[i], "columns"), j), r),
                       scores + (j * R + r) * XD_IMP_NSUMS) != ns_blocks) {
          xd_error_set(err, XD_EINVAL, "columns", "shard %zu: feature %zu, repeat %zu has the wrong block count", i, j, r);
          goto done;
        }
    nbb += got;
    nbs += ns_blocks;
  }
  if ((size_t)nbb != (nr + XD_IMP_SUM_BLOCK - 1) / XD_IMP_SUM_BLOCK || (size_t)nbs != (ns + XD_IMP_SUM_BLOCK - 1) / XD_IMP_SUM_BLOCK) {
    xd_error_set(err, XD_EINVAL, NULL, "the shards cover %ld of %zu row blocks: a shard is missing", nbb,
                 (nr + XD_IMP_SUM_BLOCK - 1) / XD_IMP_SUM_BLOCK);
    goto done;
  }
  /* scores, then as xd_imp_perm_result: baseline - score, mean and population std */
  double baseline = xd_imp_score_from_sums(sc, scores + d * R * XD_IMP_NSUMS, nr);
  for (size_t j = 0; j < d; j++) {
    double sum = 0, ss = 0;
    for (size_t r = 0; r < R; r++) sum += vals[j * R + r] = baseline - xd_imp_score_from_sums(sc, scores + (j * R + r) * XD_IMP_NSUMS, ns);
    mean[j] = sum / (double)R;
    for (size_t r = 0; r < R; r++) ss += (vals[j * R + r] - mean[j]) * (vals[j * R + r] - mean[j]);
    std[j] = sqrt(ss / (double)R);
  }
  sort_by_key(mean, d, order);
  list = json_array();
  for (size_t r = 0; list && r < d; r++) {
    size_t j = order[r];
    json_array_append_new(list, json_pack("{s:O, s:I, s:o, s:o, s:o}", "feature", json_array_get(json_object_get(h, "features"), j),
                                          "feature_index", (json_int_t)j, "mean", xd_json_real(mean[j]), "std",
                                          xd_json_real(std[j]), "values", xd_json_reals(vals + j * R, R)));
  }
  body = json_pack("{s:O, s:s, s:o, s:I, s:O, s:I, s:I, s:O, s:O}", "model", json_object_get(h, "model"), "method", "permutation",
                   "baseline_score", xd_json_real(baseline), "n_rows", (json_int_t)nr, "scoring", json_object_get(h, "scoring"),
                   "n_repeats", (json_int_t)R, "max_samples", (json_int_t)ns, "seed", json_object_get(h, "seed"),
                   "importances", list);
  if (!body) xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
done:
  json_decref(list);
  xd_free(sh);
  xd_free(scores);
  xd_free(mean);
  xd_free(std);
  xd_free(vals);
  xd_free(order);
  return body;
}
