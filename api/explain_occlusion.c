/* explain_occlusion.c — POST /explain/occlusion (API.md Part 2): Captum's Occlusion for
 * image models (windows over [C][H][W]) and FeatureAblation for tabular models (one
 * feature per window). Computation in core/image_explain.c: every occluded copy of every
 * instance is a row of large xd_model_predict batches, differences taken in double.
 *
 * One part per PART_ROWS instances; or, when an instance's windows are enough work
 * (xd_work_split), `split` sub-parts per instance over contiguous ranges of its rows
 * (x itself, then the windows): prepare resolves targets and baselines, each sub-part
 * writes f_t of its rows into its own slots, and encode combines them per instance, so
 * the answer does not depend on the workers. */
#include <string.h>

#include "api/alloc.h"
#include "api/endpoints.h"
#include "api/explain_common.h"
#include "api/explain_image.h"
#include "api/explain_text.h"
#include "api/graph_rows.h"
#include "core/alloc.h"

#define PART_ROWS 4

typedef struct occl_job {
  xd_model_entry_t *entry;
  xd_input_kind_t kind;
  double *X, *B; /* (n, d) instances and their baselines */
  size_t n, d;
  size_t *target;
  xd_occl_plan_t plan;
  xd_imgx_baseline_t base;
  double base_value, blur_sigma;
  double *brow; /* image: (P) given baseline image; tabular: (d) baseline row */
  int base_mean, render;
  double *attr, *heat;
  size_t split; /* sub-parts per instance (1: PART_ROWS instances per part) */
  double *f;    /* split: (n, n_windows + 1) f_t of every row */
} occl_job_t;

static int occl_baseline(occl_job_t *j, size_t i, xd_error_t *err) {
  double *b = j->B + i * j->d;
  if (j->kind == XD_INPUT_TABULAR) {
    memcpy(b, j->brow, j->d * sizeof *b);
    return XD_OK;
  }
  int rc = xd_imgx_baseline(j->entry->model, j->base, j->X + i * j->d, j->blur_sigma, j->brow, b, err);
  if (rc == XD_OK && j->base == XD_IMGX_ZERO)
    for (size_t v = 0; v < j->d; v++) b[v] = j->base_value;
  return rc;
}

/* The heatmap of image instance i: attributions summed over channels. */
static void occl_heat(occl_job_t *j, size_t i) {
  size_t C = j->plan.dims[0], HW = j->plan.dims[1] * j->plan.dims[2], d = j->d;
  for (size_t v = 0; v < HW; v++) {
    double t = 0;
    for (size_t ch = 0; ch < C; ch++) t += j->attr[i * d + ch * HW + v];
    j->heat[i * HW + v] = t;
  }
}

/* Split path: targets and baselines of every instance, once, before the sub-parts. */
static int occl_prepare(void *state, const xd_cancel_t *cancel, xd_error_t *err) {
  occl_job_t *j = state;
  if (j->split < 2) return XD_OK;
  int rc = xd_explain_resolve_targets(j->entry->model, j->X, j->n, j->target, cancel, err);
  for (size_t i = 0; rc == XD_OK && i < j->n; i++) rc = occl_baseline(j, i, err);
  return rc;
}

/* Split path: sub-part k of instance i evaluates its rows [a, b). */
static int occl_run_split(occl_job_t *j, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t i = part / j->split, rows = j->plan.n_windows + 1, a, b;
  xd_work_range(rows, j->split, part % j->split, &a, &b);
  return xd_imgx_occlusion_eval(j->entry->model, &j->plan, j->X + i * j->d, j->target[i], j->B + i * j->d, a, b,
                                j->f + i * rows + a, cancel, err);
}

static int occl_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  occl_job_t *j = state;
  if (j->split > 1) return occl_run_split(j, part, cancel, err);
  const xd_model_t *m = j->entry->model;
  size_t s = part * PART_ROWS, d = j->d;
  if (s >= j->n) return XD_OK;
  size_t c = j->n - s < PART_ROWS ? j->n - s : PART_ROWS;
  int rc = xd_explain_resolve_targets(m, j->X + s * d, c, j->target + s, cancel, err);
  for (size_t i = s; rc == XD_OK && i < s + c; i++) rc = occl_baseline(j, i, err);
  if (rc != XD_OK) return rc;
  rc = xd_imgx_occlusion(m, &j->plan, j->X + s * d, c, j->target + s, j->B + s * d, j->attr + s * d, cancel, err);
  for (size_t i = s; rc == XD_OK && j->kind == XD_INPUT_IMAGE && i < s + c; i++) occl_heat(j, i);
  return rc;
}

static json_t *occl_encode(void *state, xd_error_t *err) {
  occl_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  for (size_t i = 0; j->split > 1 && i < j->n; i++) {
    xd_imgx_occlusion_combine(&j->plan, j->f + i * (j->plan.n_windows + 1), j->attr + i * j->d);
    if (j->kind == XD_INPUT_IMAGE) occl_heat(j, i);
  }
  json_t *o = json_object(), *t = json_array(), *win = json_array(), *str = json_array();
  int bad = !o || !t || !win || !str;
  for (size_t i = 0; !bad && i < j->n; i++) bad |= json_array_append_new(t, json_integer((json_int_t)j->target[i]));
  for (size_t k = 0; !bad && k < j->plan.rank; k++) {
    bad |= json_array_append_new(win, json_integer((json_int_t)j->plan.window[k]));
    bad |= json_array_append_new(str, json_integer((json_int_t)j->plan.stride[k]));
  }
  if (bad) goto nomem;
  bad |= json_object_set_new(o, "model", json_string(j->entry->name));
  bad |= json_object_set_new(o, "targets", t);
  bad |= json_object_set_new(o, "window", win);
  bad |= json_object_set_new(o, "strides", str);
  t = win = str = NULL;
  if (j->kind == XD_INPUT_IMAGE) {
    size_t C = j->plan.dims[0], H = j->plan.dims[1], W = j->plan.dims[2];
    bad |= json_object_set_new(o, "baseline", j->base == XD_IMGX_ZERO ? xd_json_real(j->base_value) :
                                              j->base == XD_IMGX_ROW ? json_string("row") :
                                              json_string(xd_imgx_baseline_names[j->base]));
    bad |= json_object_set_new(o, "attributions", xd_json_chw(j->attr, j->n, C, H, W));
    json_t *heat = json_array();
    for (size_t i = 0; heat && i < j->n; i++)
      bad |= json_array_append_new(heat, xd_json_matrix(j->heat + i * H * W, H, W));
    bad |= json_object_set_new(o, "heatmaps", heat);
    if (!bad && j->render) {
      json_t *lgs = NULL, *imgs = xd_json_render(m, j->X, j->heat, j->n, 1, &lgs, err);
      if (!imgs) {
        json_decref(o);
        return NULL;
      }
      bad |= json_object_set_new(o, "images", imgs);
      bad |= json_object_set_new(o, "legends", lgs);
    }
  } else {
    const xd_feature_t *F = xd_model_features(m);
    json_t *names = json_array(), *b = json_array();
    for (size_t f = 0; names && f < j->d; f++) bad |= json_array_append_new(names, json_string(F[f].name));
    for (size_t f = 0; b && f < j->d; f++)
      bad |= json_array_append_new(b, F[f].kind == XD_FEAT_CATEGORICAL ? xd_json_feature_value(m, f, j->brow[f])
                                                                       : xd_json_real(j->brow[f]));
    bad |= json_object_set_new(o, "features", names);
    bad |= json_object_set_new(o, "baseline", b);
    bad |= json_object_set_new(o, "attributions", xd_json_matrix(j->attr, j->n, j->d));
  }
  if (bad) goto nomem;
  return o;
nomem:
  json_decref(o);
  json_decref(t);
  json_decref(win);
  json_decref(str);
  xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
  return NULL;
}

static void occl_free(void *state) {
  occl_job_t *j = state;
  if (!j) return;
  xd_model_entry_release(j->entry);
  xd_free(j->X);
  xd_free(j->B);
  xd_free(j->target);
  xd_free(j->brow);
  xd_free(j->attr);
  xd_free(j->heat);
  xd_free(j->f);
  xd_free(j);
}

XD_JSON_RESULT_GUARDED(occl_encode_checked, occl_encode)
static const xd_job_ops_t occl_ops = {
    .endpoint = "explain_occlusion", .run = occl_run, .encode = occl_encode_checked, .free = occl_free,
    .prepare = occl_prepare};

/* "window" / "strides": a list of rank positive integers, or (rank 1) one integer. */
static int decode_dims(const json_t *body, const char *key, size_t rank, size_t *out, xd_error_t *err) {
  json_t *v = json_object_get(body, key);
  if (!v || json_is_null(v)) return XD_OK;
  if (rank == 1 && json_is_integer(v)) {
    if (json_integer_value(v) < 1) return xd_error_set(err, XD_EINVAL, key, "must be a positive integer");
    out[0] = (size_t)json_integer_value(v);
    return XD_OK;
  }
  if (!json_is_array(v) || json_array_size(v) != rank)
    return xd_error_set(err, XD_EINVAL, key, "expected a list of %zu positive integers", rank);
  for (size_t k = 0; k < rank; k++) {
    json_t *e = json_array_get(v, k);
    if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > (json_int_t)XD_IMAGE_MAX_SIDE)
      return xd_error_set(err, XD_EINVAL, key, "%s[%zu] must be an integer in 1..%d", key, k, XD_IMAGE_MAX_SIDE);
    out[k] = (size_t)json_integer_value(e);
  }
  return XD_OK;
}

/* Tabular "baseline": "mean" (numeric features at their background mean, categorical at
 * their most frequent category; zeros without a background) or a row. */
static int tabular_baseline(occl_job_t *j, const json_t *body, xd_error_t *err) {
  const xd_model_t *m = j->entry->model;
  const xd_feature_t *F = xd_model_features(m);
  const xd_stats_t *st = xd_model_stats(m);
  json_t *v = json_object_get(body, "baseline");
  if (!(j->brow = xd_calloc(j->d, sizeof *j->brow))) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if (v && !json_is_null(v) && !json_is_string(v)) return xd_json_row(m, v, "baseline", j->brow, err);
  if (v && json_is_string(v) && strcmp(json_string_value(v), "mean"))
    return xd_error_set(err, XD_EINVAL, "baseline", "expected \"mean\" or a row");
  for (size_t f = 0; st && f < j->d; f++) {
    if (F[f].kind == XD_FEAT_NUMERIC) {
      j->brow[f] = st->f[f].mean;
    } else if (st->f[f].cat_freq) {
      size_t best = 0;
      for (size_t c = 1; c < F[f].n_categories; c++)
        if (st->f[f].cat_freq[c] > st->f[f].cat_freq[best]) best = c;
      j->brow[f] = (double)best;
    }
  }
  return XD_OK;
}

int xd_occlusion_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  if (xd_api_is_text_model(api, body)) return xd_occlusion_text_decode(api, body, work, err); /* api/explain_text.c */
  static const char *const keys[] = {"model",  "instances",  "instance", "target",     "window", "strides",
                                     "baseline", "blur_sigma", "render", "timeout_ms", NULL};
  const xd_limits_t *lim = xd_api_limits(api);
  occl_job_t *j = xd_calloc(1, sizeof *j);
  int rc;
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if (!(j->entry = xd_api_model(api, body, err))) {
    rc = err->code;
    goto fail;
  }
  const xd_model_t *m = j->entry->model;
  j->kind = xd_model_input_kind(m); /* text models were dispatched above */
  if ((rc = xd_json_check_keys(body, keys, NULL, err)) != XD_OK) goto fail;
  j->blur_sigma = 5;
  j->base = XD_IMGX_ZERO;
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK ||
      (rc = xd_json_opt_double(body, "blur_sigma", 1e-3, 16, &j->blur_sigma, err)) != XD_OK ||
      (rc = xd_json_opt_bool(body, "render", &j->render, err)) != XD_OK)
    goto fail;
  size_t dims[3], window[3], stride[3], rank;
  if (j->kind == XD_INPUT_IMAGE) {
    const xd_image_prep_t *p = xd_model_image_prep(m);
    rank = 3;
    dims[0] = p->channels;
    dims[1] = p->height;
    dims[2] = p->width;
    window[0] = stride[0] = p->channels;
    window[1] = window[2] = 4;
    stride[1] = stride[2] = 2;
    if (window[1] > dims[1]) window[1] = dims[1];
    if (window[2] > dims[2]) window[2] = dims[2];
    if ((rc = xd_json_image_rows(m, body, 1, lim->max_rows, &j->X, &j->n, err)) != XD_OK) goto fail;
  } else {
    rank = 1;
    dims[0] = xd_model_n_features(m);
    window[0] = stride[0] = 1;
    if (json_object_get(body, "blur_sigma")) {
      rc = xd_error_set(err, XD_EINVAL, "blur_sigma", "blur_sigma applies to image models");
      goto fail;
    }
    if ((rc = xd_json_instances(m, body, 1, lim->max_rows, &j->X, &j->n, err)) != XD_OK) goto fail;
  }
  if ((rc = decode_dims(body, "window", rank, window, err)) != XD_OK ||
      (rc = decode_dims(body, "strides", rank, stride, err)) != XD_OK ||
      (rc = xd_occl_plan(&j->plan, rank, dims, window, stride, err)) != XD_OK)
    goto fail;
  j->d = dims[0] * (rank == 3 ? dims[1] * dims[2] : 1);
  uint64_t cost = (uint64_t)j->n * (j->plan.n_windows + 1);
  if (cost > lim->max_work_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, "window",
                      "%zu instances x %zu occluded copies each exceed the limit of %llu model rows", j->n,
                      j->plan.n_windows + 1, (unsigned long long)lim->max_work_rows);
    goto fail;
  }
  j->target = xd_malloc(j->n * sizeof *j->target);
  j->attr = xd_calloc(xd_mul_size(j->n, j->d), sizeof *j->attr);
  j->B = xd_malloc(xd_mul_size(j->n, j->d) * sizeof *j->B);
  if (!j->target || !j->attr || !j->B) goto nomem;
  if ((rc = xd_explain_targets(m, body, j->n, j->target, err)) != XD_OK) goto fail;
  if (j->kind == XD_INPUT_IMAGE) {
    if (!(j->heat = xd_calloc(xd_mul_size(j->n, dims[1] * dims[2]), sizeof *j->heat))) goto nomem;
    /* black, mean, blur (bits 0, 2, 3), a number or an image */
    if ((rc = xd_image_baseline_decode(m, json_object_get(body, "baseline"), "baseline", 0xD, &j->base,
                                       &j->base_value, &j->brow, err)) != XD_OK)
      goto fail;
  } else if ((rc = tabular_baseline(j, body, err)) != XD_OK) {
    goto fail;
  }
  /* one instance's windows on several workers when they are enough work */
  j->split = xd_work_split(xd_work_cost(j->plan.n_windows + 1, xd_model_row_cost(m)));
  if (j->split > 1 && !(j->f = xd_calloc(xd_mul_size(j->n, j->plan.n_windows + 1), sizeof *j->f))) goto nomem;
  work->ops = &occl_ops;
  work->state = j;
  work->n_parts = j->split > 1 ? j->n * j->split : (j->n + PART_ROWS - 1) / PART_ROWS;
  work->cost_rows = cost;
  work->model = j->entry->name;
  return XD_OK;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
fail:
  occl_free(j);
  return rc;
}
