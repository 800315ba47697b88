/* explain_lime_image.c — /explain/lime on image models (API.md Part 2; core/lime_image.h):
 * segments given ("segments": one [H][W] map for every instance or one per instance) or
 * computed ("segmentation": quickshift, slic or grid, core/segment.h), lime_image's
 * sampling and tabular LIME's surrogate. One part per instance; or, for one instance of
 * one run (repeats 1) whose samples are enough work (xd_work_split), `split` sub-parts:
 * prepare segments the image, builds the fudged image and draws the samples, each
 * sub-part evaluates a contiguous range of the samples into its own rows of Y, and
 * encode fits the surrogate once, so the answer does not depend on the workers. Kernel
 * SHAP over segments (/explain/shap) splits the same way: prepare draws the coalitions,
 * the sub-parts evaluate ranges of them, encode solves once. */
#include <math.h>
#include <string.h>

#include "api/alloc.h"
#include "api/explain_common.h"
#include "api/explain_image.h"
#include "api/graph_rows.h"
#include "core/alloc.h"
#include "core/base64.h"
#include "core/lime_image.h"
#include "core/render.h"
#include "core/segment.h"

typedef struct limg_job {
  xd_model_entry_t *entry;
  xd_lime_image_opts_t o;
  double hide[XD_IMAGE_MAX_CHANNELS];
  int has_hide, render, seg_given;
  xd_segment_params_t sp;
  double *X;
  size_t n, P, HW;
  int32_t *seg; /* (n, HW) */
  size_t *S;    /* (n) */
  size_t labels[XD_LIME_MAX_LABELS], n_labels, top_labels;
  xd_lime_image_label_t *res; /* (n, n_labels) */
  size_t *lab;                /* (n, n_labels) labels explained */
  double *pred;               /* (n, K) */
  /* Kernel SHAP over the segments (/explain/shap) */
  int shap;
  size_t nsamples;
  size_t *target;             /* (n) */
  double *phi;                /* (n, HW): S[i] values used per row */
  double *expected, *fx;      /* (n) */
  uint64_t first; /* instance i draws from stream first + i (api/job.h set_first_index) */
  /* LIME of one instance split into sub-parts (split > 1): built by prepare */
  size_t split;
  double *fz, *Z, *dist, *Y;  /* (P), (num_samples, S), (num_samples), (num_samples, K) */
  xd_shap_plan_t pl;          /* Kernel SHAP split: the coalitions; Y (pl.K + 2) their f_t */
} limg_job_t;

int xd_api_is_image_model(xd_api_t *api, const json_t *body) {
  xd_error_t e;
  xd_model_entry_t *peek = xd_api_model(api, body, &e);
  int image = peek && xd_model_input_kind(peek->model) == XD_INPUT_IMAGE;
  xd_model_entry_release(peek);
  return image;
}

/* The instance's pixels as segment.h takes them: p = (x·std + mean) / scale. */
static int segment_instance(limg_job_t *j, size_t i, const xd_cancel_t *cancel, xd_error_t *err) {
  const xd_image_prep_t *p = xd_model_image_prep(j->entry->model);
  float *img = xd_malloc(j->P * sizeof *img);
  if (!img) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  for (size_t c = 0; c < p->channels; c++)
    for (size_t v = 0; v < j->HW; v++)
      img[c * j->HW + v] = (float)((j->X[i * j->P + c * j->HW + v] * p->std[c] + p->mean[c]) / p->scale);
  int S = 0;
  int rc = xd_segment_image(&j->sp, img, (int)p->channels, (int)p->height, (int)p->width, j->seg + i * j->HW, &S, cancel,
                            err);
  xd_free(img);
  j->S[i] = (size_t)S;
  return rc;
}

/* Split path: the instance's segments, fudged image and samples (or coalitions), once. */
static int limg_prepare(void *state, const xd_cancel_t *cancel, xd_error_t *err) {
  limg_job_t *j = state;
  if (j->split < 2) return XD_OK;
  const xd_model_t *m = j->entry->model;
  int rc = j->seg_given ? XD_OK : segment_instance(j, 0, cancel, err);
  if (rc != XD_OK) return rc;
  if (j->shap) {
    if ((rc = xd_explain_resolve_targets(m, j->X, 1, j->target, cancel, err)) != XD_OK ||
        (rc = xd_shap_image_plan(j->S[0], j->nsamples, j->o.seed, (size_t)j->first, &j->pl, err)) != XD_OK)
      return rc;
    j->fz = xd_malloc(j->P * sizeof *j->fz);
    j->Y = xd_malloc((j->pl.K + 2) * sizeof *j->Y);
    if (!j->fz || !j->Y || xd_lime_image_fudge(m, j->X, j->seg, j->S[0], j->o.hide, j->fz) != XD_OK)
      return xd_error_set(err, XD_ENOMEM, NULL, "out of memory explaining an image with Kernel SHAP");
    return XD_OK;
  }
  size_t S = j->S[0], n = j->o.num_samples, K = xd_model_n_outputs(m);
  j->fz = xd_malloc(j->P * sizeof *j->fz);
  j->Z = xd_malloc(xd_mul_size(n, S ? S : 1) * sizeof *j->Z);
  j->dist = xd_malloc(n * sizeof *j->dist);
  j->Y = xd_malloc(xd_mul_size(n, K) * sizeof *j->Y);
  if (!j->fz || !j->Z || !j->dist || !j->Y || xd_lime_image_fudge(m, j->X, j->seg, S, j->o.hide, j->fz) != XD_OK)
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory explaining an image with LIME");
  xd_lime_image_sample(n, S, j->o.seed, (size_t)j->first, j->Z, j->dist); /* the instance's run 0: its stream */
  return XD_OK;
}

/* Split path: sub-part k evaluates samples [a, b). */
static int limg_run_split(limg_job_t *j, size_t k, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t a, b, K = xd_model_n_outputs(j->entry->model);
  if (j->shap) {
    xd_work_range(j->pl.K + 2, j->split, k, &a, &b);
    return xd_shap_image_eval(j->entry->model, j->X, j->fz, j->seg, j->S[0], &j->pl, j->target[0], a, b, j->Y + a,
                              cancel, err);
  }
  xd_work_range(j->o.num_samples, j->split, k, &a, &b);
  return xd_lime_image_eval(j->entry->model, j->X, j->fz, j->seg, j->S[0], j->Z, a, b, j->Y + a * K, cancel, err);
}

/* Split path, at encode: labels (the top ones from the samples' first row, the instance
 * itself), the model's output and the surrogate per label, once. */
static int limg_fit_split(limg_job_t *j, xd_error_t *err) {
  size_t K = xd_model_n_outputs(j->entry->model), nl = j->n_labels, S = j->S[0], *lab = j->lab;
  memcpy(j->pred, j->Y, K * sizeof *j->pred);
  if (!j->top_labels) memcpy(lab, j->labels, nl * sizeof *lab);
  for (size_t l = 0; j->top_labels && l < nl; l++) {
    size_t best = SIZE_MAX;
    for (size_t k = 0; k < K; k++) {
      int taken = 0;
      for (size_t q = 0; q < l; q++) taken |= lab[q] == k;
      if (!taken && (best == SIZE_MAX || j->pred[k] > j->pred[best])) best = k;
    }
    lab[l] = best;
  }
  xd_lime_image_opts_t o = j->o;
  if (o.num_features > S) o.num_features = S;
  for (size_t l = 0; l < nl; l++) {
    j->res[l].label = lab[l];
    if (!(j->res[l].coef = xd_calloc(S ? S : 1, sizeof *j->res[l].coef)))
      return xd_error_set(err, XD_ENOMEM, NULL, "out of memory explaining an image with LIME");
  }
  return xd_lime_image_fit(&o, S, j->Z, j->Y, K, j->dist, lab, nl, 1, j->res, err);
}

static int limg_run(void *state, size_t i, const xd_cancel_t *cancel, xd_error_t *err) {
  limg_job_t *j = state;
  if (j->split > 1) return limg_run_split(j, i, cancel, err);
  const xd_model_t *m = j->entry->model;
  size_t K = xd_model_n_outputs(m);
  int rc = XD_OK;
  if (!j->seg_given && (rc = segment_instance(j, i, cancel, err)) != XD_OK) return rc;
  if (j->shap) {
    if ((rc = xd_explain_resolve_targets(m, j->X + i * j->P, 1, j->target + i, cancel, err)) != XD_OK) return rc;
    return xd_shap_image_explain(m, j->X + i * j->P, j->seg + i * j->HW, j->S[i], j->o.hide, j->nsamples, j->o.seed,
                                 (size_t)(j->first + i), j->target[i], j->phi + i * j->HW, j->expected + i, j->fx + i, cancel, err);
  }
  size_t *lab = j->lab + i * j->n_labels, nl = j->n_labels;
  if (!j->top_labels) {
    memcpy(lab, j->labels, nl * sizeof *lab);
  } else { /* top labels: the instance's own prediction first */
    double *pr = j->pred + i * K;
    if ((rc = xd_model_predict(m, j->X + i * j->P, 1, pr, cancel, err)) != XD_OK) return rc;
    for (size_t l = 0; l < nl; l++) {
      size_t best = SIZE_MAX;
      for (size_t k = 0; k < K; k++) {
        int taken = 0;
        for (size_t q = 0; q < l; q++) taken |= lab[q] == k;
        if (!taken && (best == SIZE_MAX || pr[k] > pr[best])) best = k;
      }
      lab[l] = best;
    }
  }
  xd_lime_image_opts_t o = j->o;
  if (o.num_features > j->S[i]) o.num_features = j->S[i];
  return xd_lime_image_explain(m, &o, j->X + i * j->P, j->seg + i * j->HW, j->S[i], lab, nl, (size_t)(j->first + i),
                               j->res + i * j->n_labels, j->pred + i * K, cancel, err);
}

static json_t *seg_json(const int32_t *seg, size_t H, size_t W) {
  json_t *a = json_array();
  for (size_t y = 0; a && y < H; y++) {
    json_t *r = json_array();
    for (size_t x = 0; r && x < W; x++) json_array_append_new(r, json_integer(seg[y * W + x]));
    if (!r || json_array_append_new(a, r)) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

/* One PNG outlining the 5 strongest positive segments of the first label. */
static json_t *outline_png(const limg_job_t *j, size_t i) {
  const double *weights = j->shap ? j->phi + i * j->HW : j->res[i * j->n_labels].coef;
  const xd_image_prep_t *p = xd_model_image_prep(j->entry->model);
  int H = (int)p->height, W = (int)p->width;
  float *xf = xd_malloc(j->P * sizeof *xf);
  uint8_t *rgb = xd_malloc(j->HW * 3), *png = NULL;
  void *scratch = xd_malloc(xd_render_outline_scratch(H, W));
  json_t *s = NULL;
  size_t len = 0, blen = 0;
  xd_error_t e;
  if (xf && rgb && scratch) {
    for (size_t v = 0; v < j->P; v++) xf[v] = (float)j->X[i * j->P + v];
    xd_render_display(xf, (int)p->channels, H, W, p->mean, p->std, rgb);
    xd_render_outline_top(rgb, H, W, j->seg + i * j->HW, (int)j->S[i], weights, 5, NULL, scratch);
    if (xd_image_encode_png(rgb, (size_t)W, (size_t)H, 3, &png, &len, &e) == XD_OK) {
      char *b = xd_base64_encode(png, len, &blen);
      if (b) s = json_stringn(b, blen);
      xd_free(b);
    }
  }
  xd_free(png);
  xd_free(xf);
  xd_free(rgb);
  xd_free(scratch);
  return s;
}

static json_t *limg_encode(void *state, xd_error_t *err) {
  limg_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  const xd_image_prep_t *p = xd_model_image_prep(m);
  char *const *cls = xd_model_classes(m);
  size_t K = xd_model_n_outputs(m);
  if (j->split > 1 && !j->shap && limg_fit_split(j, err) != XD_OK) return NULL;
  if (j->split > 1 && j->shap) { /* the coalitions' values into the plan, solved once */
    j->fx[0] = j->Y[0];
    j->expected[0] = j->Y[1];
    if (j->pl.K) memcpy(j->pl.ey, j->Y + 2, j->pl.K * sizeof *j->Y);
    if (xd_shap_plan_solve(&j->pl, XD_SHAP_LINK_IDENTITY, j->fx[0], j->expected[0], 0, j->phi, NULL, err) != XD_OK)
      return NULL;
  }
  json_t *body = json_object(), *exps = json_array(), *imgs = j->render ? json_array() : NULL;
  int bad = !body || !exps || (j->render && !imgs);
  bad |= json_object_set_new(body, "model", json_string(j->entry->name));
  bad |= json_object_set_new(body, "seed", xd_explain_seed_json(j->o.seed));
  if (!j->shap) {
    bad |= json_object_set_new(body, "num_samples", json_integer((json_int_t)j->o.num_samples));
    bad |= json_object_set_new(body, "kernel_width", xd_json_real(j->o.kernel_width));
    bad |= json_object_set_new(body, "feature_selection", json_string(xd_lime_fs_names[j->o.feature_selection]));
    bad |= json_object_set_new(body, "repeats", json_integer((json_int_t)j->o.repeats));
  }
  bad |= json_object_set_new(body, "hide_color", j->has_hide ? xd_json_reals(j->hide, p->channels) : json_null());
  if (j->seg_given) {
    bad |= json_object_set_new(body, "segmentation", json_pack("{s:s}", "method", "given"));
  } else {
    json_t *sg = json_pack("{s:s}", "method", xd_segment_method_names[j->sp.method]);
    if (j->sp.method == XD_SEGMENT_SLIC) {
      json_object_set_new(sg, "n_segments", json_integer(j->sp.n_segments));
      json_object_set_new(sg, "compactness", xd_json_real(j->sp.compactness));
      json_object_set_new(sg, "sigma", xd_json_real(j->sp.sigma));
    } else if (j->sp.method == XD_SEGMENT_QUICKSHIFT) {
      json_object_set_new(sg, "kernel_size", xd_json_real(j->sp.kernel_size));
      json_object_set_new(sg, "max_dist", xd_json_real(j->sp.max_dist));
      json_object_set_new(sg, "ratio", xd_json_real(j->sp.ratio));
      json_object_set_new(sg, "sigma", xd_json_real(j->sp.sigma));
    } else {
      json_object_set_new(sg, "size", json_integer(j->sp.size));
    }
    bad |= json_object_set_new(body, "segmentation", sg);
  }
  if (j->shap) {
    json_t *sv = json_array(), *t = json_array();
    for (size_t i = 0; !bad && i < j->n; i++) {
      json_t *e = json_object();
      bad |= !e || json_object_set_new(e, "segments", seg_json(j->seg + i * j->HW, p->height, p->width));
      bad |= json_object_set_new(e, "n_segments", json_integer((json_int_t)j->S[i]));
      bad |= json_array_append_new(exps, e);
      bad |= json_array_append_new(sv, xd_json_reals(j->phi + i * j->HW, j->S[i]));
      bad |= json_array_append_new(t, json_integer((json_int_t)j->target[i]));
    }
    bad |= json_object_set_new(body, "targets", t);
    bad |= json_object_set_new(body, "nsamples", j->nsamples ? json_integer((json_int_t)j->nsamples) : json_string("auto"));
    bad |= json_object_set_new(body, "link", json_string("identity"));
    bad |= json_object_set_new(body, "expected_value", xd_json_reals(j->expected, j->n));
    bad |= json_object_set_new(body, "outputs", xd_json_reals(j->fx, j->n));
    bad |= json_object_set_new(body, "shap_values", sv);
    for (size_t i = 0; !bad && imgs && i < j->n; i++) {
      json_t *png = outline_png(j, i);
      bad |= !png || json_array_append_new(imgs, png);
    }
  }
  for (size_t i = 0; !bad && !j->shap && i < j->n; i++) {
    json_t *e = json_object(), *labels = json_array();
    bad |= !e || !labels;
    bad |= json_object_set_new(e, "segments", seg_json(j->seg + i * j->HW, p->height, p->width));
    bad |= json_object_set_new(e, "n_segments", json_integer((json_int_t)j->S[i]));
    bad |= json_object_set_new(e, "probabilities", xd_json_reals(j->pred + i * K, K));
    for (size_t l = 0; !bad && l < j->n_labels; l++) {
      const xd_lime_image_label_t *r = &j->res[i * j->n_labels + l];
      json_t *o = json_object(), *ws = json_array();
      bad |= !o || !ws;
      bad |= json_object_set_new(o, "label", json_string(cls ? cls[r->label] : "value"));
      bad |= json_object_set_new(o, "label_index", json_integer((json_int_t)r->label));
      bad |= json_object_set_new(o, "intercept", xd_json_real(r->intercept));
      bad |= json_object_set_new(o, "score", xd_json_real(r->score));
      bad |= json_object_set_new(o, "local_pred", xd_json_real(r->local_pred));
      /* sorted by |weight| (ties: lower segment), non-zero weights of the selected segments */
      size_t S = j->S[i];
      char *done = xd_calloc(S ? S : 1, 1);
      bad |= !done;
      for (size_t q = 0; !bad && q < S; q++) {
        size_t best = SIZE_MAX;
        for (size_t s = 0; s < S; s++)
          if (!done[s] && (best == SIZE_MAX || fabs(r->coef[s]) > fabs(r->coef[best]))) best = s;
        done[best] = 1;
        if (r->coef[best] == 0 && q >= j->o.num_features) break;
        bad |= json_array_append_new(ws, json_pack("{s:i, s:o}", "segment", (json_int_t)best, "weight",
                                                   xd_json_real(r->coef[best])));
      }
      xd_free(done);
      bad |= json_object_set_new(o, "weights", ws);
      bad |= json_array_append_new(labels, o);
    }
    bad |= json_object_set_new(e, "labels", labels);
    bad |= json_array_append_new(exps, e);
    if (!bad && imgs) {
      json_t *png = outline_png(j, i);
      bad |= !png || json_array_append_new(imgs, png);
    }
  }
  bad |= json_object_set_new(body, "explanations", exps);
  if (imgs) bad |= json_object_set_new(body, "images", imgs);
  if (bad) {
    json_decref(body);
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
    return NULL;
  }
  return body;
}

static void limg_free(void *state) {
  limg_job_t *j = state;
  if (!j) return;
  if (j->res) xd_lime_image_free(j->res, j->n * j->n_labels);
  xd_model_entry_release(j->entry);
  xd_free(j->X);
  xd_free(j->seg);
  xd_free(j->S);
  xd_free(j->res);
  xd_free(j->lab);
  xd_free(j->pred);
  xd_free(j->target);
  xd_free(j->phi);
  xd_free(j->expected);
  xd_free(j->fx);
  xd_free(j->fz);
  xd_free(j->Z);
  xd_free(j->dist);
  xd_free(j->Y);
  xd_shap_plan_deinit(&j->pl);
  xd_free(j);
}

XD_JSON_RESULT_GUARDED(limg_encode_checked, limg_encode)
static void limg_set_first(void *state, uint64_t first) { ((limg_job_t *)state)->first = first; }
static const xd_job_ops_t limg_ops = {.endpoint = "explain_lime",
                                      .run = limg_run,
                                      .encode = limg_encode_checked,
                                      .free = limg_free,
                                      .prepare = limg_prepare,
                                      .set_first_index = limg_set_first};
static const xd_job_ops_t simg_ops = {.endpoint = "explain_shap",
                                      .run = limg_run,
                                      .encode = limg_encode_checked,
                                      .free = limg_free,
                                      .prepare = limg_prepare,
                                      .set_first_index = limg_set_first};

/* One [H][W] map at v into seg; labels 0..S-1 without gaps. */
static int decode_map(const json_t *v, const char *field, size_t H, size_t W, int32_t *seg, size_t *S,
                      xd_error_t *err) {
  if (!json_is_array(v) || json_array_size(v) != H)
    return xd_error_set(err, XD_EINVAL, field, "expected a [%zu][%zu] map of segment labels", H, W);
  int32_t mx = -1;
  for (size_t y = 0; y < H; y++) {
    json_t *r = json_array_get(v, y);
    if (!json_is_array(r) || json_array_size(r) != W)
      return xd_error_set(err, XD_EINVAL, field, "expected a [%zu][%zu] map of segment labels", H, W);
    for (size_t x = 0; x < W; x++) {
      json_t *e = json_array_get(r, x);
      if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) >= (json_int_t)(H * W))
        return xd_error_set(err, XD_EINVAL, field, "[%zu][%zu]: labels are integers 0..S-1 (S <= %zu)", y, x, H * W);
      seg[y * W + x] = (int32_t)json_integer_value(e);
      if (seg[y * W + x] > mx) mx = seg[y * W + x];
    }
  }
  char *seen = xd_calloc((size_t)mx + 1, 1);
  if (!seen) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  for (size_t v2 = 0; v2 < H * W; v2++) seen[seg[v2]] = 1;
  for (int32_t s = 0; s <= mx; s++)
    if (!seen[s]) {
      xd_free(seen);
      return xd_error_set(err, XD_EINVAL, field, "label %d is missing: labels must be 0..S-1 without gaps", (int)s);
    }
  xd_free(seen);
  *S = (size_t)mx + 1;
  return XD_OK;
}

/* xd_segment_method_names in the enum's order, NULL-terminated for xd_json_opt_enum. */
static const char *const seg_methods[] = {"quickshift", "slic", "grid", NULL};

static int decode_segmentation(limg_job_t *j, const json_t *body, xd_error_t *err) {
  const xd_image_prep_t *p = xd_model_image_prep(j->entry->model);
  json_t *segs = json_object_get(body, "segments"), *sg = json_object_get(body, "segmentation");
  if (segs && sg) return xd_error_set(err, XD_EINVAL, "segments", "give either segments or segmentation");
  if (segs) {
    j->seg_given = 1;
    json_t *first = json_array_get(segs, 0);
    int per_instance = json_is_array(first) && json_is_array(json_array_get(first, 0));
    if (per_instance && json_array_size(segs) != j->n)
      return xd_error_set(err, XD_EINVAL, "segments", "expected one map for every instance or %zu maps", j->n);
    for (size_t i = 0; i < j->n; i++) {
      char f[48];
      snprintf(f, sizeof f, per_instance ? "segments[%zu]" : "segments", i);
      if (per_instance || i == 0) {
        int rc = decode_map(per_instance ? json_array_get(segs, i) : segs, f, p->height, p->width, j->seg + i * j->HW,
                            &j->S[i], err);
        if (rc != XD_OK) return rc;
      } else {
        memcpy(j->seg + i * j->HW, j->seg, j->HW * sizeof *j->seg);
        j->S[i] = j->S[0];
      }
    }
    return XD_OK;
  }
  int method = (p->height < p->width ? p->height : p->width) >= 64 ? XD_SEGMENT_QUICKSHIFT : XD_SEGMENT_SLIC;
  if (sg && !json_is_object(sg)) return xd_error_set(err, XD_EINVAL, "segmentation", "expected an object");
  int rc = xd_json_opt_enum(sg, "method", seg_methods, &method, err);
  if (rc != XD_OK) return rc;
  xd_segment_params_default(&j->sp, (xd_segment_method_t)method);
  static const char *const keys[] = {"method", "n_segments", "compactness", "sigma", "kernel_size", "max_dist", "ratio",
                                     "size", NULL};
  size_t ns = (size_t)j->sp.n_segments, size = (size_t)j->sp.size;
  if (sg && ((rc = xd_json_check_keys(sg, keys, "segmentation.", err)) != XD_OK ||
             (rc = xd_json_opt_size(sg, "n_segments", 1, 4096, &ns, err)) != XD_OK ||
             (rc = xd_json_opt_double(sg, "compactness", 1e-6, 1e6, &j->sp.compactness, err)) != XD_OK ||
             (rc = xd_json_opt_double(sg, "sigma", 0, 100, &j->sp.sigma, err)) != XD_OK ||
             (rc = xd_json_opt_double(sg, "kernel_size", 1, 20, &j->sp.kernel_size, err)) != XD_OK ||
             (rc = xd_json_opt_double(sg, "max_dist", 0, 1e6, &j->sp.max_dist, err)) != XD_OK ||
             (rc = xd_json_opt_double(sg, "ratio", 0, 1, &j->sp.ratio, err)) != XD_OK ||
             (rc = xd_json_opt_size(sg, "size", 1, XD_IMAGE_MAX_SIDE, &size, err)) != XD_OK))
    return rc;
  j->sp.n_segments = (int)ns;
  j->sp.size = (int)size;
  j->sp.seed = j->o.seed;
  return xd_segment_check(&j->sp, (int)p->channels, (int)p->height, (int)p->width, err);
}

/* "hide_color": null (segment means), a pixel value for every channel, or one per channel. */
static int decode_hide(limg_job_t *j, const json_t *body, xd_error_t *err) {
  const xd_image_prep_t *p = xd_model_image_prep(j->entry->model);
  json_t *hc = json_object_get(body, "hide_color");
  if (!hc || json_is_null(hc)) return XD_OK;
  j->has_hide = 1;
  for (size_t c = 0; c < p->channels; c++) {
    json_t *e = json_is_array(hc) ? json_array_get(hc, c) : hc;
    double v;
    if (json_is_array(hc) && json_array_size(hc) != p->channels) e = NULL;
    if (!e || xd_json_number(e, "hide_color", &v, err) != XD_OK)
      return xd_error_set(err, XD_EINVAL, "hide_color", "expected null, a pixel value or %zu of them", p->channels);
    j->hide[c] = (v * p->scale - p->mean[c]) / p->std[c];
  }
  j->o.hide = j->hide;
  return XD_OK;
}

int xd_shap_image_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  static const char *const keys[] = {"model",   "instances", "instance", "segments", "segmentation", "hide_color",
                                     "nsamples", "target",   "seed",     "render",   "timeout_ms",   NULL};
  const xd_limits_t *lim = xd_api_limits(api);
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  limg_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  j->shap = 1;
  if (!(j->entry = xd_api_model(api, body, err))) {
    rc = err->code;
    goto fail;
  }
  const xd_model_t *m = j->entry->model;
  const xd_image_prep_t *p = xd_model_image_prep(m);
  json_t *ns = json_object_get(body, "nsamples");
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK ||
      (!(ns && json_is_string(ns) && !strcmp(json_string_value(ns), "auto")) &&
       (rc = xd_json_opt_size(body, "nsamples", 1, lim->max_nsamples, &j->nsamples, err)) != XD_OK) ||
      (rc = xd_json_opt_bool(body, "render", &j->render, err)) != XD_OK ||
      (rc = xd_explain_seed(body, &j->o.seed, err)) != XD_OK || (rc = decode_hide(j, body, err)) != XD_OK ||
      (rc = xd_json_image_rows(m, body, 1, lim->max_rows, &j->X, &j->n, err)) != XD_OK)
    goto fail;
  j->P = xd_model_n_inputs(m);
  j->HW = p->height * p->width;
  /* auto: 2S + 2048 coalitions with S at most H·W; admitted on that bound */
  double per = (double)(j->nsamples ? j->nsamples : 2 * j->HW + 2048) + 2, work_rows = (double)j->n * per;
  if (work_rows > (double)lim->max_work_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, "nsamples", "%zu instances x %.0f coalitions is more than the limit of %llu model rows",
                      j->n, per, (unsigned long long)lim->max_work_rows);
    goto fail;
  }
  j->seg = xd_malloc(xd_mul_size(j->n, j->HW) * sizeof *j->seg);
  j->S = xd_calloc(j->n, sizeof *j->S);
  j->target = xd_malloc(j->n * sizeof *j->target);
  j->phi = xd_calloc(xd_mul_size(j->n, j->HW), sizeof *j->phi);
  j->expected = xd_calloc(j->n, sizeof *j->expected);
  j->fx = xd_calloc(j->n, sizeof *j->fx);
  if (!j->seg || !j->S || !j->target || !j->phi || !j->expected || !j->fx) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  if ((rc = xd_explain_targets(m, body, j->n, j->target, err)) != XD_OK ||
      (rc = decode_segmentation(j, body, err)) != XD_OK)
    goto fail;
  /* one instance's coalitions on several workers when they are enough work (auto: on the
   * admission bound, as S is known only once segmented) */
  if (xd_work_request_rows(work, j->n) == 1) j->split = xd_work_split(xd_work_cost((uint64_t)per, xd_model_row_cost(m)));
  work->ops = &simg_ops;
  work->state = j;
  work->n_parts = j->split > 1 ? j->split : j->n;
  work->cost_rows = (uint64_t)work_rows;
  work->model = j->entry->name;
  return XD_OK;
fail:
  limg_free(j);
  return rc;
}

int xd_lime_image_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  static const char *const keys[] = {"model",        "instances",  "instance",  "segments",          "segmentation",
                                     "hide_color",   "num_samples", "num_features", "kernel_width",   "labels",
                                     "top_labels",   "feature_selection", "seed", "repeats",          "render",
                                     "timeout_ms",   NULL};
  const xd_limits_t *lim = xd_api_limits(api);
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  limg_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if (!(j->entry = xd_api_model(api, body, err))) {
    rc = err->code;
    goto fail;
  }
  const xd_model_t *m = j->entry->model;
  const xd_image_prep_t *p = xd_model_image_prep(m);
  size_t K = xd_model_n_outputs(m);
  int fs = XD_LIME_FS_AUTO;
  j->o.num_samples = 1000;
  j->o.num_features = 100000;
  j->o.repeats = 1;
  j->o.kernel_width = 0.25;
  j->top_labels = 1;
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "num_samples", 1, lim->max_samples, &j->o.num_samples, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "num_features", 1, 100000, &j->o.num_features, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "repeats", 1, lim->max_repeats, &j->o.repeats, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "top_labels", 1, K, &j->top_labels, err)) != XD_OK ||
      (rc = xd_json_opt_double(body, "kernel_width", 1e-9, 1e9, &j->o.kernel_width, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "feature_selection", xd_lime_fs_names, &fs, err)) != XD_OK ||
      (rc = xd_json_opt_bool(body, "render", &j->render, err)) != XD_OK ||
      (rc = xd_explain_seed(body, &j->o.seed, err)) != XD_OK)
    goto fail;
  j->o.feature_selection = (xd_lime_fs_t)fs;
  j->n_labels = j->top_labels;
  json_t *lv = json_object_get(body, "labels");
  if (lv && !json_is_null(lv)) {
    if (!json_is_array(lv) || json_array_size(lv) < 1 || json_array_size(lv) > XD_LIME_MAX_LABELS) {
      rc = xd_error_set(err, XD_EINVAL, "labels", "expected a list of 1..%d labels", XD_LIME_MAX_LABELS);
      goto fail;
    }
    for (size_t l = 0; l < json_array_size(lv); l++) {
      char f[32];
      snprintf(f, sizeof f, "labels[%zu]", l);
      if ((rc = xd_json_label(m, json_array_get(lv, l), f, &j->labels[l], err)) != XD_OK) goto fail;
    }
    j->n_labels = json_array_size(lv);
    j->top_labels = 0;
  }
  if ((rc = decode_hide(j, body, err)) != XD_OK ||
      (rc = xd_json_image_rows(m, body, 1, lim->max_rows, &j->X, &j->n, err)) != XD_OK)
    goto fail;
  j->P = xd_model_n_inputs(m);
  j->HW = p->height * p->width;
  double work_rows = (double)j->n * (double)j->o.num_samples * (double)j->o.repeats;
  if (work_rows > (double)lim->max_work_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, "num_samples",
                      "%zu instances x %zu samples x %zu repeats is more than the limit of %llu model rows", j->n,
                      j->o.num_samples, j->o.repeats, (unsigned long long)lim->max_work_rows);
    goto fail;
  }
  j->seg = xd_malloc(xd_mul_size(j->n, j->HW) * sizeof *j->seg);
  j->S = xd_calloc(j->n, sizeof *j->S);
  j->res = xd_calloc(xd_mul_size(j->n, j->n_labels), sizeof *j->res);
  j->lab = xd_calloc(xd_mul_size(j->n, j->n_labels), sizeof *j->lab);
  j->pred = xd_calloc(xd_mul_size(j->n, K), sizeof *j->pred);
  if (!j->seg || !j->S || !j->res || !j->lab || !j->pred) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  if ((rc = decode_segmentation(j, body, err)) != XD_OK) goto fail;
  /* one instance's samples on several workers when they are enough work */
  if (xd_work_request_rows(work, j->n) == 1 && j->o.repeats == 1) j->split = xd_work_split(xd_work_cost(j->o.num_samples, xd_model_row_cost(m)));
  work->ops = &limg_ops;
  work->state = j;
  work->n_parts = j->split > 1 ? j->split : j->n;
  work->cost_rows = (uint64_t)work_rows;
  work->model = j->entry->name;
  return XD_OK;
fail:
  limg_free(j);
  return rc;
}
