/* explain_shap.c — POST /explain/shap (API.md; semantics in core/shap.h and
 * docs/gradients_shap.md).
 *
 * Work layout: with many instances, part i explains instance i from start to end (plan,
 * evaluation, solve), so memory holds only the plans being worked on. With few (fewer
 * than MAX_PARTS_PER_ROW), each instance is split into parts_per_row parts that evaluate
 * fixed slices of its coalitions — so a single-row request still uses every worker —
 * its plan is built up front and the solve runs in encode. What every part needs first
 * — the background summary, E_bg f, f(x), the targets and each instance's coalition
 * plan — is built by the job's prepare step (api/job.h), once, before any part runs;
 * the summary's 10 k-means runs before it, as prepare parts that any workers may run
 * concurrently. Parts never wait for each other.
 * Everything is drawn from the request seed (k-means run r from its own stream,
 * instance i's coalitions from stream i) and the part layout depends only on the
 * request, so the answer is bit-identical whatever the worker count.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/metrics.h"
#include "api/endpoints.h"
#include "api/explain_common.h"
#include "api/explain_tree.h"
#include "api/explain_image.h"
#include "api/explain_text.h"
#include "api/alloc.h"
#include "core/alloc.h"
#include "core/shap.h"

/* Model rows per part, to choose how many parts one instance is split into. */
#define PART_ROWS 16384
#define MAX_PARTS_PER_ROW 8

typedef struct shap_job {
  xd_model_entry_t *entry;
  xd_shap_opts_t o;        /* o.method: resolved (kernel, exact or linear) */
  size_t bg_size;
  int bg_size_given;       /* "background_size" was in the request (a clamp is then worth a warning) */
  int custom_bg;           /* bg given by the client (filled at decode) */
  xd_shap_bg_t bg;
  double *X;               /* (n, d) */
  size_t n;
  size_t *target;          /* (n) */
  size_t parts_per_row;
  /* k-means runs of the background summary (prepare step) */
  int need_kmeans;
  size_t km_k;             /* centres per run: min(bg_size, background rows) */
  double *km_C[XD_SHAP_KMEANS_RUNS];   /* (km_k, d) each */
  size_t *km_cnt[XD_SHAP_KMEANS_RUNS]; /* (km_k) each */
  double km_inertia[XD_SHAP_KMEANS_RUNS];
  /* built by the prepare step, read by the parts */
  double *fnull;           /* (n_outputs) */
  double *fx;              /* (n, n_outputs) */
  xd_shap_plan_t *plans;   /* (n) when parts_per_row > 1, else NULL */
  size_t *ncoal;           /* (n) coalitions evaluated per instance */
  xd_cancel_t run_cancel; /* the job's cancel, for the solves in encode (set by prepare) */
  int have_cancel;
  /* results (encode) */
  double *phi, *expected, *out; /* (n, d), (n), (n) */
  uint64_t first; /* instance i draws from stream first + i (api/job.h set_first_index) */
} shap_job_t;

/* Prepare part r (api/job.h): k-means run r of the background summary, from its own
 * stream of the seed, so the runs may go to any workers in any order; shap_prepare picks
 * the best (the first of equal inertia) exactly as xd_shap_kmeans does. */
static int shap_kmeans_part(void *state, size_t r, const xd_cancel_t *cancel, xd_error_t *err) {
  shap_job_t *j = state;
  const xd_dataset_t *mb = xd_model_background(j->entry->model);
  return xd_shap_kmeans_run(mb->X, mb->n, xd_model_n_features(j->entry->model), j->km_k, j->o.seed, (unsigned)r, j->km_C[r], j->km_cnt[r],
                            &j->km_inertia[r], cancel, err);
}

/* The job's prepare step (api/job.h): everything the parts share. */
static int shap_prepare(void *state, const xd_cancel_t *cancel, xd_error_t *err) {
  shap_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  size_t d = xd_model_n_features(m), K = xd_model_n_outputs(m);
  int rc = XD_OK;
  const xd_dataset_t *mb = xd_model_background(m);
  if (cancel) { /* the same for every stage of the job: kept for encode's solves */
    j->run_cancel = *cancel;
    j->have_cancel = 1;
  }
  if (j->need_kmeans) { /* the runs were the prepare parts (shap_kmeans_part) */
    if ((rc = xd_shap_kmeans_pick(mb->X, mb->n, d, j->km_k, j->km_C, j->km_cnt, j->km_inertia, XD_SHAP_KMEANS_RUNS,
                                  &j->bg, err)) != XD_OK)
      return rc;
  } else if (!j->custom_bg) {
    /* as is: small enough, or linear, which uses the whole background (its mean costs
     * nothing and is exact) */
    if ((rc = xd_shap_summarize(mb, SIZE_MAX, j->o.seed, &j->bg, err)) != XD_OK) return rc;
  }
  j->fnull = xd_malloc(K * sizeof *j->fnull);
  j->fx = xd_malloc(xd_mul_size(j->n, K) * sizeof *j->fx);
  j->plans = j->parts_per_row > 1 ? xd_calloc(j->n, sizeof *j->plans) : NULL;
  if (!j->fnull || !j->fx || (j->parts_per_row > 1 && !j->plans))
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if ((rc = xd_model_predict(m, j->X, j->n, j->fx, cancel, err)) != XD_OK) return rc;
  for (size_t i = 0; i < j->n; i++)
    if (j->target[i] == XD_TARGET_PREDICTED) j->target[i] = xd_model_argmax(m, j->fx + i * K);
  if (j->o.method == XD_SHAP_LINEAR) return XD_OK;
  if ((rc = xd_shap_fnull(m, &j->bg, j->fnull, cancel, err)) != XD_OK) return rc;
  for (size_t i = 0; j->plans && i < j->n; i++) {
    xd_rng_t rng;
    xd_rng_seed_stream(&rng, j->o.seed, j->first + (uint64_t)i);
    if ((rc = xd_shap_plan_init(&j->plans[i], j->o.method, j->X + i * d, &j->bg, j->o.nsamples, &rng, err)) != XD_OK) {
      if (err->field[0] == '\0') snprintf(err->field, sizeof err->field, "instances[%zu]", i);
      return rc;
    }
    j->ncoal[i] = j->plans[i].K;
  }
  return XD_OK;
}

/* Solves instance i from its evaluated plan into phi/expected/out. */
static int solve_row(shap_job_t *j, const xd_shap_plan_t *pl, size_t i, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t d = pl->d, K = xd_model_n_outputs(j->entry->model), t = j->target[i];
  int rc = xd_shap_plan_solve(pl, j->o.link, j->fx[i * K + t], j->fnull[t], j->o.l1_k, j->phi + i * d, cancel, err);
  j->expected[i] = xd_shap_link(j->o.link, j->fnull[t]);
  j->out[i] = xd_shap_link(j->o.link, j->fx[i * K + t]);
  return rc;
}

/* Instance i from start to end on this thread (parts_per_row == 1). */
static int explain_row(shap_job_t *j, size_t i, const xd_cancel_t *cancel, xd_error_t *err) {
  const xd_model_t *m = j->entry->model;
  size_t d = xd_model_n_features(m);
  const double *x = j->X + i * d;
  xd_shap_plan_t pl;
  xd_rng_t rng;
  xd_rng_seed_stream(&rng, j->o.seed, j->first + (uint64_t)i);
  int rc = xd_shap_plan_init(&pl, j->o.method, x, &j->bg, j->o.nsamples, &rng, err);
  if (rc != XD_OK) {
    if (err->field[0] == '\0') snprintf(err->field, sizeof err->field, "instances[%zu]", i);
    return rc;
  }
  rc = xd_shap_plan_eval(m, &pl, x, &j->bg, j->target[i], 0, pl.K, cancel, err);
  if (rc == XD_OK) rc = solve_row(j, &pl, i, cancel, err);
  j->ncoal[i] = pl.K;
  xd_shap_plan_deinit(&pl);
  return rc;
}

static int shap_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  shap_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  size_t d = xd_model_n_features(m);
  size_t i = part / j->parts_per_row, s = part % j->parts_per_row;
  if (j->o.method == XD_SHAP_LINEAR)
    return s ? XD_OK
             : xd_shap_linear(m, j->X + i * d, j->target[i], j->o.link, &j->bg, j->phi + i * d, &j->expected[i],
                              &j->out[i], err);
  if (!j->plans) return explain_row(j, i, cancel, err);
  xd_shap_plan_t *pl = &j->plans[i];
  size_t k0 = pl->K * s / j->parts_per_row, k1 = pl->K * (s + 1) / j->parts_per_row;
  return xd_shap_plan_eval(m, pl, j->X + i * d, &j->bg, j->target[i], k0, k1, cancel, err);
}

static json_t *shap_encode(void *state, xd_error_t *err) {
  shap_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  size_t d = xd_model_n_features(m);
  const xd_feature_t *F = xd_model_features(m);
  double *gap = xd_malloc(j->n * sizeof *gap);
  json_t *o = NULL, *t = NULL, *names = NULL, *ns = NULL;
  if (!gap) goto nomem;
  for (size_t i = 0; i < j->n; i++) {
    /* the parts' deadline still binds the solves done here (the pool's job is alive) */
    if (j->o.method != XD_SHAP_LINEAR && j->plans &&
        solve_row(j, &j->plans[i], i, j->have_cancel ? &j->run_cancel : NULL, err) != XD_OK) {
      xd_free(gap);
      return NULL;
    }
    double s = 0;
    for (size_t f = 0; f < d; f++) s += j->phi[i * d + f];
    gap[i] = s - (j->out[i] - j->expected[i]);
    xd_metrics_quality(XD_QUALITY_SHAP_GAP, xd_shap_method_names[j->o.method], gap[i]);
  }
  o = json_object();
  t = json_array();
  names = json_array();
  ns = json_array();
  int bad = !o || !t || !names || !ns;
  for (size_t i = 0; !bad && i < j->n; i++) {
    bad |= json_array_append_new(t, json_integer((json_int_t)j->target[i]));
    bad |= json_array_append_new(ns, json_integer((json_int_t)j->ncoal[i]));
  }
  for (size_t f = 0; !bad && f < d; f++) bad |= json_array_append_new(names, json_string(F[f].name));
  if (bad) goto nomem;
  bad |= json_object_set_new(o, "model", json_string(j->entry->name));
  bad |= json_object_set_new(o, "method", json_string(xd_shap_method_names[j->o.method]));
  bad |= json_object_set_new(o, "link", json_string(xd_shap_link_names[j->o.link]));
  bad |= json_object_set_new(o, "targets", t);
  t = NULL;
  bad |= json_object_set_new(o, "features", names);
  names = NULL;
  bad |= json_object_set_new(o, "expected_value", xd_json_reals(j->expected, j->n));
  bad |= json_object_set_new(o, "shap_values", xd_json_matrix(j->phi, j->n, d));
  bad |= json_object_set_new(o, "model_output", xd_json_reals(j->out, j->n));
  bad |= json_object_set_new(o, "efficiency_gap", xd_json_reals(gap, j->n));
  bad |= json_object_set_new(o, "nsamples", ns);
  ns = NULL;
  bad |= json_object_set_new(o, "background_size", json_integer((json_int_t)j->bg.n));
  bad |= json_object_set_new(o, "seed", xd_explain_seed_json(j->o.seed));
  if (j->o.l1_k) {
    char buf[48];
    snprintf(buf, sizeof buf, "num_features(%zu)", j->o.l1_k);
    bad |= json_object_set_new(o, "l1_reg", json_string(buf));
  } else {
    bad |= json_object_set_new(o, "l1_reg", json_false());
  }
  bad |= !bad && xd_json_set_target_names(o, m, j->target, j->n) != XD_OK;
  if (!bad) { /* Kernel SHAP with fewer coalitions than twice the features (and short of
               * enumerating them all) is a poorly determined regression */
    json_t *w = json_array();
    bad |= !w;
    if (!bad && j->bg_size_given && !j->custom_bg && j->bg_size > j->bg.n)
      bad |= xd_json_warn(w, "background_size %zu is more than the model's %zu background rows: clamped to %zu",
                          j->bg_size, j->bg.n, j->bg.n) != XD_OK;
    for (size_t i = 0; !bad && i < j->n; i++)
      if (j->o.method == XD_SHAP_KERNEL && d < 62 && j->ncoal[i] < 2 * d && j->ncoal[i] < ((size_t)1 << d) - 2)
        bad |= xd_json_warn(w, "instances[%zu]: nsamples %zu is too small for %zu features (at least %zu is advised): "
                            "the values are poorly determined", i, (size_t)j->ncoal[i], d, 2 * d) != XD_OK;
    if (!bad) xd_json_set_warnings(o, w);
    json_decref(w);
  }
  if (bad) goto nomem;
  xd_free(gap);
  return o;
nomem:
  xd_free(gap);
  json_decref(o);
  json_decref(t);
  json_decref(names);
  json_decref(ns);
  xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
  return NULL;
}

static void shap_set_first(void *state, uint64_t first) { ((shap_job_t *)state)->first = first; }

static void shap_free(void *state) {
  shap_job_t *j = state;
  if (!j) return;
  xd_model_entry_release(j->entry);
  for (int r = 0; r < XD_SHAP_KMEANS_RUNS; r++) {
    xd_free(j->km_C[r]);
    xd_free(j->km_cnt[r]);
  }
  xd_shap_bg_deinit(&j->bg);
  if (j->plans)
    for (size_t i = 0; i < j->n; i++) xd_shap_plan_deinit(&j->plans[i]);
  xd_free(j->plans);
  xd_free(j->X);
  xd_free(j->target);
  xd_free(j->fnull);
  xd_free(j->fx);
  xd_free(j->ncoal);
  xd_free(j->phi);
  xd_free(j->expected);
  xd_free(j->out);
  xd_free(j);
}

/* A JSON allocation failure while encoding turns the answer into a 500, a non-finite
 * result into a 400 (api/alloc.h). */
XD_JSON_RESULT_GUARDED(shap_encode_checked, shap_encode)
static const xd_job_ops_t shap_ops = {
    .endpoint = "explain_shap", .prepare = shap_prepare, .prepare_part = shap_kmeans_part, .run = shap_run,
    .encode = shap_encode_checked, .free = shap_free, .set_first_index = shap_set_first};

/* ---- decoding -------------------------------------------------------------------------- */

/* "background" rows and optional "background_weights" (normalized to sum 1). */
static int decode_background(shap_job_t *j, const json_t *body, size_t max_rows, xd_error_t *err) {
  const xd_model_t *m = j->entry->model;
  size_t d = xd_model_n_features(m);
  json_t *rows = json_object_get(body, "background"), *w = json_object_get(body, "background_weights");
  if (!rows || json_is_null(rows)) {
    if (w && !json_is_null(w))
      return xd_error_set(err, XD_EINVAL, "background_weights", "background_weights needs background rows");
    return XD_OK;
  }
  if (!json_is_array(rows) || json_array_size(rows) == 0)
    return xd_error_set(err, XD_EINVAL, "background", "expected a non-empty list of rows");
  size_t n = json_array_size(rows);
  if (n > max_rows)
    return xd_error_set(err, XD_ETOOBIG, "background", "%zu background rows exceed the limit of %zu", n, max_rows);
  j->custom_bg = 1;
  j->bg.X = xd_malloc(xd_mul_size(n, d) * sizeof *j->bg.X);
  j->bg.w = xd_malloc(n * sizeof *j->bg.w);
  if (!j->bg.X || !j->bg.w) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  j->bg.n = n;
  j->bg.d = d;
  for (size_t i = 0; i < n; i++) {
    char f[48];
    snprintf(f, sizeof f, "background[%zu]", i);
    int rc = xd_json_row(m, json_array_get(rows, i), f, j->bg.X + i * d, err);
    if (rc != XD_OK) return rc;
  }
  double sum = 0;
  if (w && !json_is_null(w)) {
    if (!json_is_array(w) || json_array_size(w) != n)
      return xd_error_set(err, XD_EINVAL, "background_weights", "expected a list of %zu weights", n);
    for (size_t i = 0; i < n; i++) {
      char f[48];
      snprintf(f, sizeof f, "background_weights[%zu]", i);
      int rc = xd_json_number(json_array_get(w, i), f, &j->bg.w[i], err);
      if (rc != XD_OK) return rc;
      if (j->bg.w[i] < 0) return xd_error_set(err, XD_EINVAL, f, "weights must be non-negative");
      sum += j->bg.w[i];
    }
    if (!(sum > 0) || !isfinite(sum))
      return xd_error_set(err, XD_EINVAL, "background_weights", "weights must have a positive, finite sum");
  } else {
    for (size_t i = 0; i < n; i++) j->bg.w[i] = 1;
    sum = (double)n;
  }
  for (size_t i = 0; i < n; i++) j->bg.w[i] /= sum;
  return XD_OK;
}

/* "nsamples": "auto" (0) or a count. */
static int decode_nsamples(const json_t *body, size_t max, size_t *out, xd_error_t *err) {
  json_t *v = json_object_get(body, "nsamples");
  *out = 0;
  if (!v || json_is_null(v) || (json_is_string(v) && !strcmp(json_string_value(v), "auto"))) return XD_OK;
  if (json_is_string(v)) return xd_error_set(err, XD_EINVAL, "nsamples", "expected \"auto\" or an integer");
  return xd_json_opt_size(body, "nsamples", 1, max, out, err);
}

/* "l1_reg": false / 0 (off) or "num_features(k)". */
static int decode_l1(const json_t *body, size_t d, size_t *k, xd_error_t *err) {
  json_t *v = json_object_get(body, "l1_reg");
  *k = 0;
  if (!v || json_is_null(v) || json_is_false(v) || (json_is_integer(v) && json_integer_value(v) == 0)) return XD_OK;
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    unsigned long long r;
    int used = 0;
    if (sscanf(s, "num_features(%llu)%n", &r, &used) == 1 && s[used] == '\0' && r >= 1 && r <= 1000000) {
      *k = r >= d ? 0 : (size_t)r; /* selecting every feature is no selection */
      return XD_OK;
    }
  }
  return xd_error_set(err, XD_EINVAL, "l1_reg", "expected false or \"num_features(k)\" with k >= 1");
}

int xd_shap_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  if (xd_api_is_text_model(api, body)) return xd_shap_text_decode(api, body, work, err); /* api/explain_text_lime.c */
  if (xd_api_is_image_model(api, body)) return xd_shap_image_decode(api, body, work, err); /* api/explain_lime_image.c */
  /* tree ensembles default to TreeSHAP (api/explain_tree.c); Kernel SHAP when asked */
  int trc = xd_tree_shap_decode(api, body, work, err);
  if (trc != XD_TREE_SHAP_NOT_MINE) return trc;
  static const char *const keys[] = {"model",   "instances", "instance",        "target",     "nsamples",
                                     "background_size", "background", "background_weights", "link", "l1_reg",
                                     "method",  "seed",      "timeout_ms",      NULL};
  const xd_limits_t *lim = xd_api_limits(api);
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  shap_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if (!(j->entry = xd_api_model(api, body, err))) {
    rc = err->code;
    goto fail;
  }
  const xd_model_t *m = j->entry->model;
  size_t d = xd_model_n_features(m);
  int link = XD_SHAP_LINK_IDENTITY, method = XD_SHAP_AUTO;
  j->bg_size = 50;
  j->bg_size_given = json_object_get(body, "background_size") != NULL;
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "link", xd_shap_link_names, &link, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "method", xd_shap_method_names, &method, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "background_size", 1, lim->max_background, &j->bg_size, err)) != XD_OK ||
      (rc = decode_nsamples(body, lim->max_nsamples, &j->o.nsamples, err)) != XD_OK ||
      (rc = decode_l1(body, d, &j->o.l1_k, err)) != XD_OK || (rc = xd_explain_seed(body, &j->o.seed, err)) != XD_OK)
    goto fail;
  j->o.link = (xd_shap_link_t)link;
  if (j->o.link == XD_SHAP_LINK_LOGIT && xd_model_task(m) != XD_TASK_CLASSIFICATION) {
    rc = xd_error_set(err, XD_EINVAL, "link", "link 'logit' needs a classification model");
    goto fail;
  }
  if ((rc = xd_json_instances(m, body, 1, lim->max_rows, &j->X, &j->n, err)) != XD_OK) goto fail;
  if ((rc = decode_background(j, body, lim->max_background, err)) != XD_OK) goto fail;
  const xd_dataset_t *mb = xd_model_background(m);
  if (!j->custom_bg && (!mb || mb->n == 0)) {
    rc = xd_error_set(err, XD_EINVAL, "background", "model '%s' has no background data: give background rows",
                      j->entry->name);
    goto fail;
  }
  /* resolve the method now so that errors are 400s, not failed jobs */
  j->o.method = xd_shap_resolve_method(m, (xd_shap_method_t)method, j->o.link, j->custom_bg ? j->bg.n : 0);
  if (j->o.method == XD_SHAP_LINEAR && !xd_shap_is_linear(m, j->o.link)) {
    rc = xd_error_set(err, XD_EINVAL, "method",
                      "method 'linear' needs a model linear in its inputs (one identity layer, or with link 'logit' "
                      "one sigmoid unit or a two-class softmax)");
    goto fail;
  }
  if (j->o.method == XD_SHAP_EXACT && d > XD_SHAP_EXACT_MAX) {
    rc = xd_error_set(err, XD_EINVAL, "method", "method 'exact' supports at most %d features; model '%s' has %zu",
                      XD_SHAP_EXACT_MAX, j->entry->name, d);
    goto fail;
  }
  size_t N = j->custom_bg ? j->bg.n : (mb->n < j->bg_size ? mb->n : j->bg_size);
  uint64_t coal = 1;
  if (j->o.method == XD_SHAP_EXACT) {
    coal = (uint64_t)1 << d;
  } else if (j->o.method == XD_SHAP_KERNEL) {
    coal = j->o.nsamples ? j->o.nsamples : 2 * (uint64_t)d + 2048;
    if (d <= 30 && coal > ((uint64_t)1 << d) - 2) coal = ((uint64_t)1 << d) - 2;
  }
  uint64_t per_row = coal * N, cost = per_row * j->n;
  if (j->o.method != XD_SHAP_LINEAR && (per_row / N != coal || cost / j->n != per_row || cost > lim->max_work_rows)) {
    rc = xd_error_set(err, XD_ETOOBIG, "instances",
                      "%zu instances x %llu coalitions x %zu background rows exceed the limit of %llu model rows",
                      j->n, (unsigned long long)coal, N, (unsigned long long)lim->max_work_rows);
    goto fail;
  }
  j->target = xd_malloc(j->n * sizeof *j->target);
  j->phi = xd_calloc(xd_mul_size(j->n, d), sizeof *j->phi);
  j->expected = xd_calloc(j->n, sizeof *j->expected);
  j->out = xd_calloc(j->n, sizeof *j->out);
  j->ncoal = xd_calloc(j->n, sizeof *j->ncoal);
  if (!j->target || !j->phi || !j->expected || !j->out || !j->ncoal) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  if ((rc = xd_explain_targets(m, body, j->n, j->target, err)) != XD_OK) goto fail;
  if (!j->custom_bg && j->o.method != XD_SHAP_LINEAR && mb->n > j->bg_size) {
    j->need_kmeans = 1;
    j->km_k = j->bg_size;
    for (int r = 0; r < XD_SHAP_KMEANS_RUNS; r++) {
      j->km_C[r] = xd_malloc(xd_mul_size(j->km_k, d) * sizeof **j->km_C);
      j->km_cnt[r] = xd_malloc(j->km_k * sizeof **j->km_cnt);
      if (!j->km_C[r] || !j->km_cnt[r]) {
        rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
        goto fail;
      }
    }
  }

  /* split an instance's coalitions only when there are few instances to spread */
  j->parts_per_row = 1;
  if (j->o.method != XD_SHAP_LINEAR && j->n < MAX_PARTS_PER_ROW) {
    uint64_t p = per_row / PART_ROWS;
    j->parts_per_row = p < 1 ? 1 : p > MAX_PARTS_PER_ROW ? MAX_PARTS_PER_ROW : (size_t)p;
  }
  work->ops = &shap_ops;
  work->state = j;
  work->n_parts = j->n * j->parts_per_row;
  work->n_prepare_parts = j->need_kmeans ? XD_SHAP_KMEANS_RUNS : 0;
  work->cost_rows = xd_work_cost(j->o.method == XD_SHAP_LINEAR ? j->n : cost, xd_model_row_cost(m));
  work->model = j->entry->name;
  work->method = xd_shap_method_names[j->o.method];
  return XD_OK;
fail:
  shap_free(j);
  return rc;
}
