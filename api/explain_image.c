/* explain_image.c — /explain/gradient on image models (API.md Part 2; semantics in
 * core/image_explain.h and docs/image_explanations.md), and the image pieces the
 * occlusion endpoint shares.
 *
 * One part per PART_ROWS instances: each part is a single batched computation over all
 * its IG steps / noisy copies (core/image_explain.c chunks them to bounded memory). When
 * an instance's IG steps or noisy copies are enough work (xd_work_split), each instance
 * is instead split into `split` sub-parts over contiguous ranges of its rows; prepare
 * resolves targets and baselines, the sub-parts write their own partial sums, and encode
 * adds them in sub-part order, so the answer does not depend on the workers. */
#include "api/explain_image.h"

#include <string.h>

#include "api/alloc.h"
#include "api/explain_common.h"
#include "api/graph_rows.h"
#include "core/alloc.h"
#include "core/base64.h"
#include "core/render.h"

#define PART_ROWS 8

const char *const xd_imgx_baseline_names[] = {"black", "white", "blur", "mean", NULL};

/* ---- shared pieces ------------------------------------------------------------------- */

int xd_image_baseline_decode(const xd_model_t *m, const json_t *v, const char *field, unsigned allowed,
                             xd_imgx_baseline_t *kind, double *value, double **row, xd_error_t *err) {
  *value = 0;
  *row = NULL;
  if (!v || json_is_null(v)) return XD_OK; /* caller's default already in *kind */
  if (json_is_string(v)) {
    for (int k = 0; xd_imgx_baseline_names[k]; k++)
      if ((allowed >> k & 1u) && !strcmp(json_string_value(v), xd_imgx_baseline_names[k])) {
        *kind = (xd_imgx_baseline_t)k;
        return XD_OK;
      }
    char names[96] = "";
    for (int k = 0; xd_imgx_baseline_names[k]; k++)
      if (allowed >> k & 1u) {
        strcat(names, "\"");
        strcat(names, xd_imgx_baseline_names[k]);
        strcat(names, "\", ");
      }
    return xd_error_set(err, XD_EINVAL, field, "expected %sa number (model-input space) or an image", names);
  }
  if (json_is_number(v)) {
    *kind = XD_IMGX_ZERO;
    return xd_json_number(v, field, value, err);
  }
  size_t P = xd_model_n_inputs(m);
  if (!(*row = xd_malloc(P * sizeof **row))) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  *kind = XD_IMGX_ROW;
  return xd_json_image_row(m, v, field, *row, err);
}

json_t *xd_json_chw(const double *x, size_t n, size_t C, size_t H, size_t W) {
  json_t *all = json_array();
  for (size_t i = 0; all && i < n; i++) {
    json_t *ci = json_array();
    for (size_t c = 0; ci && c < C; c++) {
      json_t *m = xd_json_matrix(x + (i * C + c) * H * W, H, W);
      if (!m || json_array_append_new(ci, m)) {
        json_decref(ci);
        ci = NULL;
      }
    }
    if (!ci || json_array_append_new(all, ci)) {
      json_decref(all);
      return NULL;
    }
  }
  return all;
}

json_t *xd_json_render(const xd_model_t *m, const double *X, const double *heat, size_t n, int signed_map,
                       json_t **legends, xd_error_t *err) {
  const xd_image_prep_t *p = xd_model_image_prep(m);
  int C = (int)p->channels, H = (int)p->height, W = (int)p->width, L = xd_render_legend_height(H);
  size_t P = (size_t)C * H * W;
  float *xf = xd_malloc(P * sizeof *xf), *hf = xd_malloc((size_t)H * W * sizeof *hf);
  uint8_t *base = xd_malloc((size_t)H * W * 3), *out = xd_malloc((size_t)(H + L) * W * 3);
  json_t *a = json_array(), *lgs = legends ? json_array() : NULL;
  if (legends) *legends = NULL;
  if (!xf || !hf || !base || !out || !a || (legends && !lgs)) goto nomem;
  for (size_t i = 0; i < n; i++) {
    for (size_t v = 0; v < P; v++) xf[v] = (float)X[i * P + v];
    for (size_t v = 0; v < (size_t)H * W; v++) hf[v] = (float)heat[i * H * W + v];
    xd_render_display(xf, C, H, W, p->mean, p->std, base);
    xd_render_options_t o = {signed_map, 0.5, 1};
    xd_render_legend_t lg;
    if (xd_render_heatmap(&o, hf, H, W, base, out, &lg, err) != XD_OK) goto fail;
    if (lgs && json_array_append_new(lgs, json_pack("{s:s, s:o, s:o}", "colormap", signed_map ? "coolwarm" : "viridis",
                                                    "min", xd_json_real(lg.lo), "max", xd_json_real(lg.hi))))
      goto nomem;
    uint8_t *png = NULL;
    size_t len = 0, blen = 0;
    if (xd_image_encode_png(out, (size_t)W, (size_t)(H + L), 3, &png, &len, err) != XD_OK) goto fail;
    char *b64 = xd_base64_encode(png, len, &blen);
    xd_free(png);
    if (!b64) goto nomem;
    int bad = json_array_append_new(a, json_stringn(b64, blen));
    xd_free(b64);
    if (bad) goto nomem;
  }
  xd_free(xf);
  xd_free(hf);
  xd_free(base);
  xd_free(out);
  if (legends) *legends = lgs;
  return a;
nomem:
  xd_error_set(err, XD_ENOMEM, NULL, "out of memory rendering images");
fail:
  xd_free(xf);
  xd_free(hf);
  xd_free(base);
  xd_free(out);
  json_decref(a);
  json_decref(lgs);
  return NULL;
}

/* ---- /explain/gradient on images ------------------------------------------------------ */

#define METHOD_GRAD_CAM 7 /* after the tabular methods of xd_grad_method_names */

static const char *const method_names[] = {"saliency",      "gradient",       "input_x_gradient", "integrated_gradients",
                                           "smoothgrad",    "smoothgrad_sq",  "vargrad",          "grad_cam",
                                           NULL};

typedef struct img_job {
  xd_model_entry_t *entry;
  int method;
  xd_grad_opts_t o;
  double *X; /* (n, P) */
  size_t n, P;
  size_t *target;
  xd_imgx_baseline_t base;
  double base_value, blur_sigma;
  double *brow; /* (P) */
  double *B;    /* (n, P) IG baselines */
  double *attr, *delta, *heat;
  double *alpha, *wq;
  char *layer;
  size_t K, h, w;
  int relu, render;
  double *cam; /* (n, h*w) */
  uint64_t first; /* row i draws from noise stream first + i (api/job.h set_first_index) */
  size_t split;        /* sub-parts per instance (1: PART_ROWS instances per part) */
  double *sum, *sum2;  /* (n * split, P) partial sums of the sub-parts */
  double *fxb;         /* (n * split, 2) IG f(x), f(b) of the sub-part holding those rows */
} img_job_t;

/* Instance i's IG baseline into B (both paths). */
static int img_baseline(img_job_t *j, size_t i, xd_error_t *err) {
  double *b = j->B + i * j->P;
  int rc = xd_imgx_baseline(j->entry->model, j->base, j->X + i * j->P, j->blur_sigma, j->brow, b, err);
  if (rc == XD_OK && j->base == XD_IMGX_ZERO)
    for (size_t v = 0; v < j->P; v++) b[v] = j->base_value;
  return rc;
}

/* Split path: targets and baselines of every instance, once, before the sub-parts. */
static int img_prepare(void *state, const xd_cancel_t *cancel, xd_error_t *err) {
  img_job_t *j = state;
  if (j->split < 2) return XD_OK;
  int rc = xd_explain_resolve_targets(j->entry->model, j->X, j->n, j->target, cancel, err);
  for (size_t i = 0; rc == XD_OK && j->B && i < j->n; i++) rc = img_baseline(j, i, err);
  return rc;
}

/* Split path: sub-part k of instance i, over rows [a, b) of the instance's rows. */
static int img_run_split(img_job_t *j, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t i = part / j->split, k = part % j->split, a, b, P = j->P;
  xd_work_range(xd_grad_rows_per_instance(&j->o), j->split, k, &a, &b);
  return xd_imgx_gradient_range(j->entry->model, &j->o, j->X + i * P, j->target[i], j->B ? j->B + i * P : NULL, (size_t)(j->first + i), a,
                                b, j->sum + part * P, j->sum2 ? j->sum2 + part * P : NULL, j->fxb + part * 2, cancel,
                                err);
}

/* Split path: the sub-parts' sums added in sub-part order, then attributions and heatmaps. */
static void img_combine(img_job_t *j) {
  const xd_image_prep_t *p = xd_model_image_prep(j->entry->model);
  size_t P = j->P, HW = p->height * p->width, K = j->split;
  for (size_t i = 0; i < j->n; i++) {
    double *s = j->sum + i * K * P, *s2 = j->sum2 ? j->sum2 + i * K * P : NULL, fxb[2] = {0, 0};
    for (size_t k = 1; k < K; k++)
      for (size_t v = 0; v < P; v++) {
        s[v] += s[k * P + v];
        if (s2) s2[v] += s2[k * P + v];
      }
    /* f(x) and f(b): set by the sub-part holding those rows, 0 in the others (exact sums) */
    for (size_t k = 0; k < K; k++) {
      fxb[0] += j->fxb[(i * K + k) * 2];
      fxb[1] += j->fxb[(i * K + k) * 2 + 1];
    }
    xd_imgx_gradient_finish(&j->o, P, j->X + i * P, j->B ? j->B + i * P : NULL, s, s2, fxb, j->attr + i * P,
                            j->delta ? j->delta + i : NULL);
    for (size_t v = 0; v < HW; v++) {
      double t = 0;
      for (size_t ch = 0; ch < p->channels; ch++) t += j->attr[i * P + ch * HW + v];
      j->heat[i * HW + v] = t;
    }
  }
}

static int img_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  img_job_t *j = state;
  if (j->split > 1) return img_run_split(j, part, cancel, err);
  const xd_model_t *m = j->entry->model;
  const xd_image_prep_t *p = xd_model_image_prep(m);
  size_t s = part * PART_ROWS, P = j->P, HW = p->height * p->width;
  if (s >= j->n) return XD_OK;
  size_t c = j->n - s < PART_ROWS ? j->n - s : PART_ROWS;
  int rc = xd_explain_resolve_targets(m, j->X + s * P, c, j->target + s, cancel, err);
  if (rc != XD_OK) return rc;
  if (j->method == METHOD_GRAD_CAM)
    return xd_imgx_gradcam(m, j->layer, j->K, j->h, j->w, j->relu, j->o.output, j->o.precision, j->X + s * P, c,
                           j->target + s, j->cam + s * j->h * j->w, j->heat + s * HW, cancel, err);
  for (size_t i = s; j->B && i < s + c; i++)
    if ((rc = img_baseline(j, i, err)) != XD_OK) return rc;
  rc = xd_imgx_gradient(m, &j->o, j->X + s * P, c, j->target + s, j->B ? j->B + s * P : NULL, (size_t)(j->first + s), j->attr + s * P,
                        j->delta ? j->delta + s : NULL, cancel, err);
  for (size_t i = s; rc == XD_OK && i < s + c; i++)
    for (size_t v = 0; v < HW; v++) {
      double t = 0;
      for (size_t ch = 0; ch < p->channels; ch++) t += j->attr[i * P + ch * HW + v];
      j->heat[i * HW + v] = t;
    }
  return rc;
}

static json_t *img_encode(void *state, xd_error_t *err) {
  img_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  const xd_image_prep_t *p = xd_model_image_prep(m);
  if (j->split > 1) img_combine(j);
  json_t *o = json_object(), *t = json_array();
  int bad = !o || !t;
  for (size_t i = 0; !bad && i < j->n; i++) bad |= json_array_append_new(t, json_integer((json_int_t)j->target[i]));
  if (bad) goto nomem;
  bad |= json_object_set_new(o, "model", json_string(j->entry->name));
  bad |= json_object_set_new(o, "method", json_string(method_names[j->method]));
  bad |= json_object_set_new(o, "output", json_string(j->o.output == XD_OUTPUT_LOGIT ? "logit" : "probability"));
  bad |= json_object_set_new(o, "precision", json_string(j->o.precision == XD_DT_F64 ? "float64" : "float32"));
  bad |= json_object_set_new(o, "targets", t);
  t = NULL;
  if (j->method == METHOD_GRAD_CAM) {
    bad |= json_object_set_new(o, "layer", json_string(j->layer));
    bad |= json_object_set_new(o, "relu", json_boolean(j->relu));
    json_t *cam = json_array();
    for (size_t i = 0; cam && i < j->n; i++)
      bad |= json_array_append_new(cam, xd_json_matrix(j->cam + i * j->h * j->w, j->h, j->w));
    bad |= json_object_set_new(o, "cam", cam);
  } else {
    bad |= json_object_set_new(o, "attributions", xd_json_chw(j->attr, j->n, p->channels, p->height, p->width));
  }
  if (j->method == XD_GRAD_INTEGRATED) {
    bad |= json_object_set_new(o, "baseline", j->base == XD_IMGX_ZERO ? xd_json_real(j->base_value) :
                                              j->base == XD_IMGX_ROW ? json_string("row") :
                                              json_string(xd_imgx_baseline_names[j->base]));
    if (j->base == XD_IMGX_BLUR) bad |= json_object_set_new(o, "blur_sigma", xd_json_real(j->blur_sigma));
    bad |= json_object_set_new(o, "steps", json_integer((json_int_t)j->o.steps));
    bad |= json_object_set_new(o, "integration", json_string(xd_grad_integration_names[j->o.integration]));
    bad |= json_object_set_new(o, "convergence_delta", xd_json_reals(j->delta, j->n));
  }
  if (j->method >= XD_GRAD_SMOOTHGRAD && j->method != METHOD_GRAD_CAM) {
    bad |= json_object_set_new(o, "samples", json_integer((json_int_t)j->o.samples));
    bad |= json_object_set_new(o, "noise_stddev", xd_json_real(j->o.noise_stddev));
    bad |= json_object_set_new(o, "seed", xd_explain_seed_json(j->o.seed));
  }
  json_t *heat = json_array();
  for (size_t i = 0; heat && i < j->n; i++)
    bad |= json_array_append_new(heat, xd_json_matrix(j->heat + i * p->height * p->width, p->height, p->width));
  bad |= json_object_set_new(o, "heatmaps", heat);
  if (bad) goto nomem;
  if (j->render) {
    int signed_map = j->method != XD_GRAD_SALIENCY && j->method != XD_GRAD_SMOOTHGRAD_SQ &&
                     j->method != XD_GRAD_VARGRAD && !(j->method == METHOD_GRAD_CAM && j->relu);
    json_t *lgs = NULL, *imgs = xd_json_render(m, j->X, j->heat, j->n, signed_map, &lgs, err);
    if (!imgs) {
      json_decref(o);
      return NULL;
    }
    if (json_object_set_new(o, "images", imgs) || json_object_set_new(o, "legends", lgs)) goto nomem;
  }
  return o;
nomem:
  json_decref(o);
  json_decref(t);
  xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
  return NULL;
}

static void img_free(void *state) {
  img_job_t *j = state;
  if (!j) return;
  xd_model_entry_release(j->entry);
  xd_free(j->X);
  xd_free(j->target);
  xd_free(j->brow);
  xd_free(j->B);
  xd_free(j->attr);
  xd_free(j->delta);
  xd_free(j->heat);
  xd_free(j->alpha);
  xd_free(j->wq);
  xd_free(j->layer);
  xd_free(j->cam);
  xd_free(j->sum);
  xd_free(j->sum2);
  xd_free(j->fxb);
  xd_free(j);
}

XD_JSON_RESULT_GUARDED(img_encode_checked, img_encode)
static void img_set_first(void *state, uint64_t first) { ((img_job_t *)state)->first = first; }
static const xd_job_ops_t img_ops = {.endpoint = "explain_gradient",
                                     .run = img_run,
                                     .encode = img_encode_checked,
                                     .free = img_free,
                                     .prepare = img_prepare,
                                     .set_first_index = img_set_first};

/* "layer": a name of the graph's nodes (default: the last Conv after its activation). */
static int decode_layer(img_job_t *j, const json_t *body, xd_error_t *err) {
  const xd_model_t *m = j->entry->model;
  const xd_graph_t *g = xd_model_graph(m);
  json_t *v = json_object_get(body, "layer");
  const char *name = NULL;
  if (v && !json_is_null(v)) {
    if (!json_is_string(v)) return xd_error_set(err, XD_EINVAL, "layer", "expected a tensor name");
    name = json_string_value(v);
    int known = 0;
    for (size_t i = 0; i < xd_graph_n_nodes(g); i++) known |= !strcmp(xd_graph_node(g, i)->name, name);
    if (!known) {
      char list[512] = "";
      size_t used = 0;
      for (size_t i = 0; i < xd_graph_n_nodes(g) && used + 8 < sizeof list; i++) {
        const xd_graph_info_t *in = xd_graph_node(g, i);
        if (in->rank != 4) continue;
        int w = snprintf(list + used, sizeof list - used, "%s'%s'", used ? ", " : "", in->name);
        if (w < 0 || (size_t)w >= sizeof list - used) break;
        used += (size_t)w;
      }
      return xd_error_set(err, XD_EINVAL, "layer", "unknown layer '%.64s'; must be one of the model's 4-D layers: %s", name, list);
    }
  } else if (!(name = xd_graph_last_conv(g))) {
    return xd_error_set(err, XD_EINVAL, "layer", "the model has no Conv layer; name a 4-D tensor of its nodes");
  }
  size_t rank = 0;
  int64_t dims[3] = {0, 0, 0};
  int rc = xd_model_layer_shape(m, name, &rank, dims, err);
  if (rc != XD_OK) return rc;
  if (rank != 3)
    return xd_error_set(err, XD_EINVAL, "layer", "Grad-CAM needs a layer of shape [K][h][w]; '%.64s' has rank %zu", name,
                        rank + 1);
  j->K = (size_t)dims[0];
  j->h = (size_t)dims[1];
  j->w = (size_t)dims[2];
  size_t l = strlen(name);
  if (!(j->layer = xd_malloc(l + 1))) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  memcpy(j->layer, name, l + 1);
  return XD_OK;
}

int xd_gradient_image_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  static const char *const keys[] = {"model",   "instances",    "instance", "method",     "target",     "output",
                                     "baseline", "blur_sigma",  "steps",    "integration", "samples",   "noise_stddev",
                                     "seed",    "layer",        "relu",     "render",     "timeout_ms", "precision",
                                     NULL};
  static const char *const outputs[] = {"probability", "logit", NULL};
  static const char *const precisions[] = {"float32", "float64", NULL}; /* XD_DT_F32, XD_DT_F64 */
  int precision = XD_DT_F32;
  const xd_limits_t *lim = xd_api_limits(api);
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  img_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if (!(j->entry = xd_api_model(api, body, err))) {
    rc = err->code;
    goto fail;
  }
  const xd_model_t *m = j->entry->model;
  int method = XD_GRAD_INTEGRATED, output = XD_OUTPUT_PROBABILITY, integ = XD_GRAD_GAUSSLEGENDRE;
  j->o.steps = 50;
  j->o.samples = 25;
  j->o.noise_stddev = 0.15;
  j->blur_sigma = 5;
  j->relu = 1;
  j->base = XD_IMGX_BLACK;
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "method", method_names, &method, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "output", outputs, &output, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "integration", xd_grad_integration_names, &integ, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "steps", 1, lim->max_steps, &j->o.steps, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "samples", 1, lim->max_samples, &j->o.samples, err)) != XD_OK ||
      (rc = xd_json_opt_double(body, "noise_stddev", 0, 1e6, &j->o.noise_stddev, err)) != XD_OK ||
      (rc = xd_json_opt_double(body, "blur_sigma", 1e-3, 16, &j->blur_sigma, err)) != XD_OK ||
      (rc = xd_json_opt_bool(body, "relu", &j->relu, err)) != XD_OK ||
      (rc = xd_json_opt_bool(body, "render", &j->render, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "precision", precisions, &precision, err)) != XD_OK ||
      (rc = xd_explain_seed(body, &j->o.seed, err)) != XD_OK)
    goto fail;
  j->o.precision = (xd_dtype_t)precision;
  j->method = method;
  j->o.method = method == METHOD_GRAD_CAM ? XD_GRAD_GRADIENT : (xd_grad_method_t)method;
  j->o.output = (xd_output_kind_t)output;
  j->o.integration = (xd_grad_integration_t)integ;
  if (method == XD_GRAD_INTEGRATED && j->o.steps < 2 &&
      (j->o.integration == XD_GRAD_RIEMANN_LEFT || j->o.integration == XD_GRAD_RIEMANN_TRAPEZOID)) {
    rc = xd_error_set(err, XD_EINVAL, "steps", "integration '%s' needs at least 2 steps",
                      xd_grad_integration_names[j->o.integration]);
    goto fail;
  }
  if ((rc = xd_json_image_rows(m, body, 1, lim->max_rows, &j->X, &j->n, err)) != XD_OK) goto fail;
  const xd_image_prep_t *p = xd_model_image_prep(m);
  j->P = xd_model_n_inputs(m);
  size_t per = method == METHOD_GRAD_CAM ? 1 : xd_grad_rows_per_instance(&j->o), HW = p->height * p->width;
  uint64_t cost = (uint64_t)j->n * per;
  if (cost > lim->max_work_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, "instances",
                      "%zu instances x %zu gradient rows each exceed the limit of %llu model rows", j->n, per,
                      (unsigned long long)lim->max_work_rows);
    goto fail;
  }
  j->target = xd_malloc(j->n * sizeof *j->target);
  j->heat = xd_calloc(xd_mul_size(j->n, HW), sizeof *j->heat);
  if (!j->target || !j->heat) goto nomem;
  if ((rc = xd_explain_targets(m, body, j->n, j->target, err)) != XD_OK) goto fail;
  if (method == METHOD_GRAD_CAM) {
    if ((rc = decode_layer(j, body, err)) != XD_OK) goto fail;
    if (!(j->cam = xd_calloc(xd_mul_size(j->n, j->h * j->w), sizeof *j->cam))) goto nomem;
  } else {
    if (!(j->attr = xd_calloc(xd_mul_size(j->n, j->P), sizeof *j->attr))) goto nomem;
  }
  if (method == XD_GRAD_INTEGRATED) {
    j->delta = xd_calloc(j->n, sizeof *j->delta);
    j->alpha = xd_malloc(j->o.steps * sizeof *j->alpha);
    j->wq = xd_malloc(j->o.steps * sizeof *j->wq);
    j->B = xd_malloc(xd_mul_size(j->n, j->P) * sizeof *j->B);
    if (!j->delta || !j->alpha || !j->wq || !j->B) goto nomem;
    if ((rc = xd_grad_quadrature(j->o.integration, j->o.steps, j->alpha, j->wq, err)) != XD_OK) goto fail;
    j->o.alpha = j->alpha;
    j->o.weights = j->wq;
    if ((rc = xd_image_baseline_decode(m, json_object_get(body, "baseline"), "baseline", 0xF, &j->base,
                                       &j->base_value, &j->brow, err)) != XD_OK)
      goto fail;
  }
  /* IG steps / noisy copies of one instance on several workers when they are enough work */
  j->split = per > 1 && method != METHOD_GRAD_CAM ? xd_work_split(xd_work_cost(per, xd_model_row_cost(m))) : 1;
  if (j->split > 1) {
    size_t parts = j->n * j->split;
    j->sum = xd_calloc(xd_mul_size(parts, j->P), sizeof *j->sum);
    j->fxb = xd_calloc(xd_mul_size(parts, 2), sizeof *j->fxb);
    if (method >= XD_GRAD_SMOOTHGRAD) j->sum2 = xd_calloc(xd_mul_size(parts, j->P), sizeof *j->sum2);
    if (!j->sum || !j->fxb || (method >= XD_GRAD_SMOOTHGRAD && !j->sum2)) goto nomem;
  }
  work->ops = &img_ops;
  work->state = j;
  work->n_parts = j->split > 1 ? j->n * j->split : (j->n + PART_ROWS - 1) / PART_ROWS;
  work->cost_rows = cost;
  work->model = j->entry->name;
  return XD_OK;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
fail:
  img_free(j);
  return rc;
}
