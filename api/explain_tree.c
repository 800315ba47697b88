/* explain_tree.c — POST /explain/shap with "method": "tree" (the default for tree
 * ensembles): path-dependent or interventional TreeSHAP, and interaction values.
 *
 * Work layout: rows in parts of about PART_WORK tree-node visits each, so a large request
 * spreads over the pool and a small one stays one part. A part resolves its own rows'
 * predicted targets, then explains each row into its slots; nothing is shared between
 * parts, and there is no randomness: the answer does not depend on the worker count.
 */
#include "api/explain_tree.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/alloc.h"
#include "api/endpoints.h"
#include "api/explain_common.h"
#include "core/alloc.h"
#include "core/trees.h"

/* Node visits per part (rough): enough to amortize a part, small enough to spread. The
 * estimate counts trees x (depth + 1) per row; TreeSHAP's real cost grows with the leaves
 * and the squared depth, so parts are also capped at an eighth of the rows. */
#define PART_WORK 2000000

/* Interaction values one answer may hold (n x d x d doubles, 128 MiB, before JSON). */
#define MAX_INTERACTION_VALUES (UINT64_C(1) << 24)

enum { PATH = 0, INTERVENTIONAL = 1 };
enum { RAW = 0, PROBABILITY = 1 };
static const char *const perturbation_names[] = {"tree_path_dependent", "interventional", NULL};
static const char *const output_names[] = {"raw", "probability", NULL};

typedef struct tree_job {
  xd_model_entry_t *entry;
  const xd_model_t *m;
  const xd_trees_t *t;
  int perturbation, output, interactions;
  double *X; /* (n, d) */
  size_t n, d, rows_per_part;
  size_t *target; /* (n) output explained (XD_TARGET_PREDICTED until resolved) */
  double *B, *w;  /* interventional background (nb, d), weights (nb) */
  size_t nb;
  int own_bg;                         /* B, w allocated by the job */
  double *phi, *expected, *out, *Phi; /* (n, d), (n), (n), (n, d, d) */
} tree_job_t;

static void tree_free(void *state) {
  tree_job_t *j = state;
  if (!j) return;
  if (j->entry) xd_model_entry_release(j->entry);
  xd_free(j->X);
  xd_free(j->target);
  if (j->own_bg) xd_free(j->B);
  xd_free(j->w);
  xd_free(j->phi);
  xd_free(j->expected);
  xd_free(j->out);
  xd_free(j->Phi);
  xd_free(j);
}

static int tree_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  tree_job_t *j = state;
  size_t d = j->d, G = xd_trees_n_groups(j->t);
  size_t r0 = part * j->rows_per_part, nr = j->n - r0 < j->rows_per_part ? j->n - r0 : j->rows_per_part;
  size_t ns = xd_treeshap_scratch(j->t) + 3 * d + xd_treeshap_interv_scratch(j->t, d);
  double *scratch = xd_malloc(ns * sizeof *scratch), *Z = xd_malloc(xd_mul_size(nr, G) * sizeof *Z);
  int rc = XD_OK;
  if (!scratch || !Z) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  if ((rc = xd_cancel_check(cancel)) != XD_OK) {
    xd_error_set(err, rc, NULL, "%s", rc == XD_ETIMEDOUT ? "deadline exceeded" : "canceled");
    goto done;
  }
  xd_trees_margins(j->t, j->X + r0 * d, nr, d, Z);
  for (size_t q = 0; q < nr; q++) {
    size_t i = r0 + q;
    /* the predicted class: with several margins the link (softmax, or identity for forest
     * probabilities) keeps their order, so the largest margin is the largest output */
    if (j->target[i] == XD_TARGET_PREDICTED) {
      size_t best = 0;
      for (size_t g = 1; g < G; g++)
        if (Z[q * G + g] > Z[q * G + best]) best = g;
      j->target[i] = best;
    }
    size_t g = j->target[i];
    const double *x = j->X + i * d;
    double *phi = j->phi + i * d;
    j->out[i] = Z[q * G + g];
    if (j->perturbation == PATH) {
      if (j->interactions)
        xd_treeshap_interactions(j->t, x, d, g, j->Phi + i * d * d, phi, &j->expected[i], scratch);
      else
        xd_treeshap_path(j->t, x, d, g, phi, &j->expected[i], scratch);
    } else {
      if ((rc = xd_cancel_check(cancel)) != XD_OK) {
        xd_error_set(err, rc, NULL, "%s", rc == XD_ETIMEDOUT ? "deadline exceeded" : "canceled");
        goto done;
      }
      xd_treeshap_interventional(j->t, x, j->B, j->w, j->nb, d, g, j->output == PROBABILITY, phi, &j->expected[i],
                                 scratch);
      if (j->output == PROBABILITY) xd_trees_transform(j->t, j->out[i], &j->out[i]);
    }
  }
done:
  xd_free(scratch);
  xd_free(Z);
  return rc;
}

/* "target_names" as the other explainers give it: the class each target's margin belongs
 * to — with one margin (binary) the log-odds of class 1, else class g's own margin.
 * Regression answers have none. */
static int tree_target_names(json_t *o, const tree_job_t *j) {
  const xd_model_t *m = j->entry->model;
  char *const *cls = xd_model_classes(m);
  if (xd_model_task(m) != XD_TASK_CLASSIFICATION || !cls) return XD_OK;
  size_t G = xd_trees_n_groups(j->t), k = xd_model_n_outputs(m);
  json_t *a = json_array();
  for (size_t i = 0; a && i < j->n; i++) {
    size_t c = G == 1 ? 1 : j->target[i];
    if (json_array_append_new(a, c < k ? json_string(cls[c]) : json_null())) {
      json_decref(a);
      a = NULL;
    }
  }
  return a && json_object_set_new(o, "target_names", a) == 0 ? XD_OK : XD_ENOMEM;
}

static json_t *tree_encode(void *state, xd_error_t *err) {
  tree_job_t *j = state;
  size_t d = j->d;
  const xd_feature_t *F = xd_model_features(j->m);
  double *gap = xd_malloc((j->n ? j->n : 1) * sizeof *gap);
  json_t *o = json_object(), *t = json_array(), *names = json_array(), *inter = NULL;
  int bad = !gap || !o || !t || !names;
  for (size_t i = 0; !bad && i < j->n; i++) {
    double s = 0;
    for (size_t f = 0; f < d; f++) s += j->phi[i * d + f];
    gap[i] = s - (j->out[i] - j->expected[i]);
    bad |= json_array_append_new(t, json_integer((json_int_t)j->target[i]));
  }
  for (size_t f = 0; !bad && f < d; f++) bad |= json_array_append_new(names, json_string(F[f].name));
  if (!bad && j->interactions) {
    inter = json_array();
    bad |= !inter;
    for (size_t i = 0; !bad && i < j->n; i++)
      bad |= json_array_append_new(inter, xd_json_matrix(j->Phi + i * d * d, d, d));
  }
  if (bad) goto nomem;
  bad |= json_object_set_new(o, "model", json_string(j->entry->name));
  bad |= json_object_set_new(o, "method", json_string("tree"));
  bad |= json_object_set_new(o, "feature_perturbation", json_string(perturbation_names[j->perturbation]));
  bad |= json_object_set_new(o, "output", json_string(output_names[j->output]));
  bad |= json_object_set_new(o, "targets", t);
  t = NULL;
  bad |= tree_target_names(o, j) != XD_OK;
  bad |= json_object_set_new(o, "features", names);
  names = NULL;
  bad |= json_object_set_new(o, "expected_value", xd_json_reals(j->expected, j->n));
  bad |= json_object_set_new(o, "shap_values", xd_json_matrix(j->phi, j->n, d));
  bad |= json_object_set_new(o, "model_output", xd_json_reals(j->out, j->n));
  bad |= json_object_set_new(o, "efficiency_gap", xd_json_reals(gap, j->n));
  if (j->perturbation == INTERVENTIONAL)
    bad |= json_object_set_new(o, "background_size", json_integer((json_int_t)j->nb));
  if (inter) {
    bad |= json_object_set_new(o, "shap_interaction_values", inter);
    inter = NULL;
  }
  if (bad) goto nomem;
  xd_free(gap);
  return o;
nomem:
  xd_free(gap);
  json_decref(o);
  json_decref(t);
  json_decref(names);
  json_decref(inter);
  xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
  return NULL;
}

XD_JSON_RESULT_GUARDED(tree_encode_checked, tree_encode)
static const xd_job_ops_t tree_ops = {
    .endpoint = "explain_shap", .run = tree_run, .encode = tree_encode_checked, .free = tree_free};

/* ---- decoding ----------------------------------------------------------------------------- */

/* "target" for a model with one margin (binary or regression): only output 0 exists. */
static int single_margin_target(const tree_job_t *j, const json_t *body, xd_error_t *err) {
  const json_t *v = json_object_get(body, "target");
  if (!v || json_is_null(v) || (json_is_integer(v) && json_integer_value(v) == 0) ||
      (json_is_string(v) && !strcmp(json_string_value(v), "predicted"))) {
    for (size_t i = 0; i < j->n; i++) j->target[i] = 0;
    return XD_OK;
  }
  char *const *cls = xd_model_classes(j->m);
  return xd_error_set(err, XD_EINVAL, "target",
                      "model '%s' has one raw output (%s%s%s): target must be 0 or \"predicted\"", j->entry->name,
                      cls ? "the log-odds of class '" : "the regression margin", cls ? cls[1] : "", cls ? "'" : "");
}

/* Interventional background: "background" rows (with optional "background_weights"), or
 * the model's background, uniform. */
static int decode_background(tree_job_t *j, const json_t *body, size_t max_rows, xd_error_t *err) {
  const json_t *rows = json_object_get(body, "background"), *w = json_object_get(body, "background_weights");
  size_t d = j->d;
  if (!rows || json_is_null(rows)) {
    if (w && !json_is_null(w))
      return xd_error_set(err, XD_EINVAL, "background_weights", "background_weights needs background rows");
    const xd_dataset_t *bg = xd_model_background(j->m);
    if (!bg || bg->n == 0)
      return xd_error_set(err, XD_EINVAL, "background",
                          "model '%s' has no background data: give background rows for interventional TreeSHAP",
                          j->entry->name);
    j->B = bg->X;
    j->nb = bg->n;
  } else {
    if (!json_is_array(rows) || json_array_size(rows) == 0)
      return xd_error_set(err, XD_EINVAL, "background", "expected a non-empty list of rows");
    j->nb = json_array_size(rows);
    if (j->nb > max_rows)
      return xd_error_set(err, XD_ETOOBIG, "background", "%zu background rows exceed the limit of %zu", j->nb,
                          max_rows);
    j->B = xd_malloc(xd_mul_size(j->nb, d) * sizeof *j->B);
    j->own_bg = 1;
    if (!j->B) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < j->nb; i++) {
      char f[48];
      snprintf(f, sizeof f, "background[%zu]", i);
      int rc = xd_json_row(j->m, json_array_get(rows, i), f, j->B + i * d, err);
      if (rc != XD_OK) return rc;
    }
  }
  j->w = xd_malloc(j->nb * sizeof *j->w);
  if (!j->w) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  double sum = 0;
  if (w && !json_is_null(w)) {
    if (!json_is_array(w) || json_array_size(w) != j->nb)
      return xd_error_set(err, XD_EINVAL, "background_weights", "expected a list of %zu weights", j->nb);
    for (size_t i = 0; i < j->nb; i++) {
      char f[48];
      snprintf(f, sizeof f, "background_weights[%zu]", i);
      int rc = xd_json_number(json_array_get(w, i), f, &j->w[i], err);
      if (rc != XD_OK) return rc;
      if (j->w[i] < 0) return xd_error_set(err, XD_EINVAL, f, "weights must be non-negative");
      sum += j->w[i];
    }
    if (!(sum > 0) || !isfinite(sum))
      return xd_error_set(err, XD_EINVAL, "background_weights", "weights must have a positive, finite sum");
  } else {
    for (size_t i = 0; i < j->nb; i++) j->w[i] = 1;
    sum = (double)j->nb;
  }
  for (size_t i = 0; i < j->nb; i++) j->w[i] /= sum;
  return XD_OK;
}

int xd_tree_shap_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  const json_t *jm = json_object_get(body, "method");
  const char *method = json_is_string(jm) ? json_string_value(jm) : NULL;
  int asked_tree = method && !strcmp(method, "tree");
  if (method && !asked_tree && strcmp(method, "auto") != 0) return XD_TREE_SHAP_NOT_MINE;
  if (!json_is_object(body)) return XD_TREE_SHAP_NOT_MINE;
  xd_error_t peek;
  xd_model_entry_t *entry = xd_api_model(api, body, &peek);
  if (!entry) return XD_TREE_SHAP_NOT_MINE; /* Kernel SHAP's decoder reports it */
  if (!xd_model_trees(entry->model)) {
    int rc = XD_TREE_SHAP_NOT_MINE;
    if (asked_tree)
      rc = xd_error_set(err, XD_EINVAL, "method", "method 'tree' needs a tree ensemble; model '%s' is a %s model",
                        entry->name, xd_model_family(entry->model));
    xd_model_entry_release(entry);
    return rc;
  }
  static const char *const keys[] = {"model",      "instances",
                                     "instance",   "target",
                                     "method",     "feature_perturbation",
                                     "output",     "interactions",
                                     "background", "background_weights",
                                     "seed",       "timeout_ms",
                                     NULL};
  const xd_limits_t *lim = xd_api_limits(api);
  tree_job_t *j = xd_calloc(1, sizeof *j);
  int rc;
  if (!j) {
    xd_model_entry_release(entry);
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  j->entry = entry;
  j->m = entry->model;
  j->t = xd_model_trees(j->m);
  j->d = xd_model_n_features(j->m);
  size_t G = xd_trees_n_groups(j->t);
  uint64_t seed_unused; /* accepted as on every SHAP request; TreeSHAP draws nothing */
  if ((rc = xd_json_check_keys(body, keys, NULL, err)) != XD_OK ||
      (rc = xd_json_opt_seed(body, "seed", &seed_unused, NULL, err)) != XD_OK ||
      (rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "feature_perturbation", perturbation_names, &j->perturbation, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "output", output_names, &j->output, err)) != XD_OK ||
      (rc = xd_json_opt_bool(body, "interactions", &j->interactions, err)) != XD_OK)
    goto fail;
  if (j->output == PROBABILITY) {
    double probe;
    if (j->perturbation != INTERVENTIONAL) {
      rc = xd_error_set(err, XD_EINVAL, "output",
                        "output 'probability' needs feature_perturbation 'interventional' (path-dependent values "
                        "explain the raw margin)");
      goto fail;
    }
    if (xd_trees_transform(j->t, 0, &probe) != XD_OK) {
      rc = xd_error_set(err, XD_EINVAL, "output",
                        "output 'probability' needs one margin per output (model '%s' uses a %s link): use 'raw'",
                        entry->name, xd_trees_link_names[xd_trees_link(j->t)]);
      goto fail;
    }
  }
  if (j->interactions && j->perturbation != PATH) {
    rc = xd_error_set(err, XD_EINVAL, "interactions",
                      "interaction values need feature_perturbation 'tree_path_dependent'");
    goto fail;
  }
  if ((rc = xd_json_instances(j->m, body, 1, lim->max_rows, &j->X, &j->n, err)) != XD_OK) goto fail;
  if (j->interactions && (uint64_t)j->n * j->d * j->d > MAX_INTERACTION_VALUES) {
    rc = xd_error_set(err, XD_ETOOBIG, "interactions",
                      "%zu instances x %zu x %zu interaction values exceed the limit of %llu: send fewer instances",
                      j->n, j->d, j->d, (unsigned long long)MAX_INTERACTION_VALUES);
    goto fail;
  }
  j->target = xd_malloc(j->n * sizeof *j->target);
  j->phi = xd_calloc(xd_mul_size(j->n, j->d), sizeof *j->phi);
  j->expected = xd_calloc(j->n, sizeof *j->expected);
  j->out = xd_calloc(j->n, sizeof *j->out);
  if (j->interactions) j->Phi = xd_calloc(xd_mul_size(xd_mul_size(j->n, j->d), j->d), sizeof *j->Phi);
  if (!j->target || !j->phi || !j->expected || !j->out || (j->interactions && !j->Phi)) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  rc = G == 1 ? single_margin_target(j, body, err) : xd_explain_targets(j->m, body, j->n, j->target, err);
  if (rc != XD_OK) goto fail;
  if (j->perturbation == INTERVENTIONAL) {
    if ((rc = decode_background(j, body, lim->max_background, err)) != XD_OK) goto fail;
  } else if (json_object_get(body, "background") || json_object_get(body, "background_weights")) {
    rc = xd_error_set(err, XD_EINVAL, json_object_get(body, "background") ? "background" : "background_weights",
                      "background rows are used by feature_perturbation 'interventional' only");
    goto fail;
  }
  /* cost: node visits per row ~ trees x (depth + 1), times the background rows
   * (interventional) or the features (interactions: two conditioned walks each) */
  uint64_t per_row = (uint64_t)xd_trees_n_trees(j->t) / (G ? G : 1) * (xd_trees_max_depth(j->t) + 1);
  if (j->perturbation == INTERVENTIONAL) per_row *= j->nb;
  if (j->interactions) per_row *= 2 * j->d + 1;
  if (per_row == 0) per_row = 1;
  uint64_t rows_equiv = per_row / 64 * j->n; /* in model-row units: one prediction walks every tree once */
  if (rows_equiv > lim->max_work_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, "instances",
                      "%zu instances need about %llu tree walks, over the work limit: send fewer instances%s", j->n,
                      (unsigned long long)(per_row * j->n),
                      j->perturbation == INTERVENTIONAL ? " or background rows" : "");
    goto fail;
  }
  /* at most 8 parts' worth of rows per part, so even a modest batch uses every worker */
  j->rows_per_part = per_row >= PART_WORK ? 1 : PART_WORK / per_row;
  if (j->rows_per_part > (j->n + 7) / 8) j->rows_per_part = (j->n + 7) / 8;
  if (j->rows_per_part == 0) j->rows_per_part = 1;
  work->ops = &tree_ops;
  work->state = j;
  work->n_parts = (j->n + j->rows_per_part - 1) / j->rows_per_part;
  work->cost_rows = rows_equiv ? rows_equiv : j->n;
  work->model = j->entry->name;
  work->method = "tree";
  return XD_OK;
fail:
  tree_free(j);
  return rc;
}
