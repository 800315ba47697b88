/* lime_image.c — see lime_image.h. */
#include "core/lime_image.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/image_explain.h"
#include "core/rng.h"
#include "core/shap.h"

void xd_lime_image_free(xd_lime_image_label_t *out, size_t n_labels) {
  for (size_t l = 0; out && l < n_labels; l++) {
    xd_free(out[l].coef);
    out[l].coef = NULL;
  }
}

/* The fudged image: segment means per channel, or hide everywhere. */
int xd_lime_image_fudge(const xd_model_t *m, const double *x, const int32_t *seg, size_t S, const double *hide,
                        double *fz) {
  const xd_image_prep_t *p = xd_model_image_prep(m);
  size_t C = p->channels, HW = p->height * p->width;
  if (hide) {
    for (size_t c = 0; c < C; c++)
      for (size_t v = 0; v < HW; v++) fz[c * HW + v] = hide[c];
    return XD_OK;
  }
  double *sum = xd_calloc(S * (C + 1), sizeof *sum);
  if (!sum) return XD_ENOMEM;
  for (size_t v = 0; v < HW; v++) {
    size_t s = (size_t)seg[v];
    sum[s * (C + 1) + C] += 1;
    for (size_t c = 0; c < C; c++) sum[s * (C + 1) + c] += x[c * HW + v];
  }
  for (size_t v = 0; v < HW; v++) {
    size_t s = (size_t)seg[v];
    for (size_t c = 0; c < C; c++) fz[c * HW + v] = sum[s * (C + 1) + c] / sum[s * (C + 1) + C];
  }
  xd_free(sum);
  return XD_OK;
}

void xd_lime_image_sample(size_t n, size_t S, uint64_t seed, uint64_t stream, double *Z, double *dist) {
  xd_rng_t rng;
  xd_rng_seed_stream(&rng, seed, stream);
  for (size_t i = 0; i < n; i++) {
    double on = 0;
    for (size_t s = 0; s < S; s++) on += (Z[i * S + s] = i == 0 ? 1.0 : (double)xd_rng_below(&rng, 2));
    /* cosine distance to the all-ones row; a zero row has similarity 0 */
    dist[i] = on > 0 ? 1.0 - on / (sqrt(on) * sqrt((double)S)) : 1.0;
    if (dist[i] < 0) dist[i] = 0;
  }
}

/* Rows [r0, r1) of a segment-masking explanation into Y (r1 - r0, K), built in float as
 * the graph runs them (x and the fudged image fz rounded once): row r shows the segments
 * on_of(ctx, r, on) switches on (S flags) from x and the others from fz. LIME's samples and
 * Kernel SHAP's coalitions differ only in on_of. */
typedef void (*seg_on_fn)(const void *ctx, size_t r, unsigned char *on);

static int masked_eval(const xd_model_t *m, const double *x, const double *fz, const int32_t *seg, size_t S,
                       seg_on_fn on_of, const void *ctx, size_t r0, size_t r1, double *Y, const xd_cancel_t *cancel,
                       xd_error_t *err) {
  const xd_image_prep_t *p = xd_model_image_prep(m);
  size_t C = p->channels, HW = p->height * p->width, P = C * HW, K = xd_model_n_outputs(m);
  size_t cr = XD_IMGX_CHUNK_VALUES / P ? XD_IMGX_CHUNK_VALUES / P : 1;
  if (r1 <= r0) return XD_OK;
  if (cr > r1 - r0) cr = r1 - r0;
  float *E = xd_malloc((xd_mul_size(cr, P) + 2 * P) * sizeof *E), *xf = E ? E + cr * P : NULL, *ff = xf ? xf + P : NULL;
  unsigned char *on = xd_malloc((S ? S : 1) + HW), *px = on ? on + (S ? S : 1) : NULL;
  int rc = E && on ? XD_OK : xd_error_set(err, XD_ENOMEM, NULL, "out of memory explaining an image by its segments");
  for (size_t k = 0; rc == XD_OK && k < P; k++) {
    xf[k] = (float)x[k];
    ff[k] = (float)fz[k];
  }
  for (size_t a = r0; a < r1 && rc == XD_OK; a += cr) {
    size_t c = r1 - a < cr ? r1 - a : cr;
    for (size_t q = 0; q < c; q++) {
      float *e = E + q * P;
      on_of(ctx, a + q, on);
      for (size_t v = 0; v < HW; v++) px[v] = on[seg[v]]; /* once per pixel, then per channel */
      for (size_t ch = 0; ch < C; ch++) {
        const float *xc = xf + ch * HW, *fc = ff + ch * HW;
        float *ec = e + ch * HW;
        for (size_t v = 0; v < HW; v++) ec[v] = px[v] ? xc[v] : fc[v];
      }
    }
    rc = xd_model_predict_image_f32(m, E, c, Y + (a - r0) * K, cancel, err);
  }
  xd_free(E);
  xd_free(on);
  return rc;
}

typedef struct lime_rows {
  const double *Z;
  size_t S;
} lime_rows_t;

static void lime_on(const void *ctx, size_t r, unsigned char *on) { /* LIME: sample r's on/off row */
  const lime_rows_t *l = ctx;
  for (size_t s = 0; s < l->S; s++) on[s] = l->Z[r * l->S + s] != 0;
}

int xd_lime_image_eval(const xd_model_t *m, const double *x, const double *fz, const int32_t *seg, size_t S,
                       const double *Z, size_t r0, size_t r1, double *Y, const xd_cancel_t *cancel, xd_error_t *err) {
  lime_rows_t l = {Z, S};
  return masked_eval(m, x, fz, seg, S, lime_on, &l, r0, r1, Y, cancel, err);
}

int xd_lime_image_fit(const xd_lime_image_opts_t *o, size_t S, const double *Z, const double *Y, size_t K,
                      const double *dist, const size_t *labels, size_t n_labels, size_t runs,
                      xd_lime_image_label_t *out, xd_error_t *err) {
  size_t n = o->num_samples;
  double *y = xd_malloc(n * sizeof *y), *coef = xd_malloc((S ? S : 1) * sizeof *coef);
  size_t *used = xd_malloc((S ? S : 1) * sizeof *used);
  int rc = y && coef && used ? XD_OK : xd_error_set(err, XD_ENOMEM, NULL, "out of memory explaining an image with LIME");
  for (size_t l = 0; l < n_labels && rc == XD_OK; l++) {
    for (size_t i = 0; i < n; i++) y[i] = Y[i * K + labels[l]];
    xd_lime_fit_out_t fo = {0, 0, 0, 0, used, coef};
    rc = xd_lime_fit_neighbourhood(n, S, Z, y, dist, o->kernel_width, o->feature_selection, o->num_features, &fo, err);
    if (rc != XD_OK) break;
    for (size_t s = 0; s < S; s++) out[l].coef[s] += coef[s] / (double)runs;
    out[l].intercept += fo.intercept / (double)runs;
    out[l].score += fo.score / (double)runs;
    out[l].local_pred += fo.local_pred / (double)runs;
  }
  xd_free(y);
  xd_free(coef);
  xd_free(used);
  return rc;
}

int xd_lime_image_explain(const xd_model_t *m, const xd_lime_image_opts_t *o, const double *x, const int32_t *segments,
                          size_t S, const size_t *labels, size_t n_labels, size_t instance_index,
                          xd_lime_image_label_t *out, double *pred, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t P = xd_model_n_inputs(m), n = o->num_samples, K = xd_model_n_outputs(m), R = o->repeats ? o->repeats : 1;
  memset(out, 0, n_labels * sizeof *out);
  double *fz = xd_malloc(P * sizeof *fz), *Z = xd_malloc(xd_mul_size(n, S) * sizeof *Z);
  double *Y = xd_malloc(xd_mul_size(n, K) * sizeof *Y), *dist = xd_malloc(n * sizeof *dist);
  int rc = XD_OK;
  if (!fz || !Z || !Y || !dist || xd_lime_image_fudge(m, x, segments, S, o->hide, fz) != XD_OK) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory explaining an image with LIME");
    goto done;
  }
  for (size_t l = 0; l < n_labels; l++) {
    out[l].label = labels[l];
    if (!(out[l].coef = xd_calloc(S ? S : 1, sizeof *out[l].coef))) {
      rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory explaining an image with LIME");
      goto done;
    }
  }
  for (size_t r = 0; r < R && rc == XD_OK; r++) {
    xd_lime_image_sample(n, S, o->seed, (uint64_t)instance_index * R + r, Z, dist);
    rc = xd_lime_image_eval(m, x, fz, segments, S, Z, 0, n, Y, cancel, err);
    if (rc != XD_OK) break;
    if (pred && r == 0) memcpy(pred, Y, K * sizeof *pred);
    rc = xd_lime_image_fit(o, S, Z, Y, K, dist, labels, n_labels, R, out, err);
  }
done:
  if (rc != XD_OK) xd_lime_image_free(out, n_labels);
  xd_free(fz);
  xd_free(Z);
  xd_free(Y);
  xd_free(dist);
  return rc;
}

int xd_shap_image_plan(size_t S, size_t nsamples, uint64_t seed, size_t instance_index, xd_shap_plan_t *pl,
                       xd_error_t *err) {
  memset(pl, 0, sizeof *pl);
  double *ones = xd_malloc((S ? S : 1) * sizeof *ones), *zeros = xd_calloc(S ? S : 1, sizeof *zeros), w1 = 1;
  int rc = ones && zeros ? XD_OK : xd_error_set(err, XD_ENOMEM, NULL, "out of memory explaining an image with Kernel SHAP");
  if (rc == XD_OK) {
    for (size_t s = 0; s < S; s++) ones[s] = 1;
    /* the players: segments; "x" all ones against one background row of zeros */
    xd_shap_bg_t bg = {1, S, zeros, &w1};
    xd_rng_t rng;
    xd_rng_seed_stream(&rng, seed, instance_index);
    rc = xd_shap_plan_init(pl, XD_SHAP_KERNEL, ones, &bg, nsamples, &rng, err);
  }
  xd_free(ones);
  xd_free(zeros);
  return rc;
}

typedef struct shap_rows {
  const xd_shap_plan_t *pl;
  size_t S;
} shap_rows_t;

static void shap_on(const void *ctx, size_t r, unsigned char *on) { /* all on, all off, then the coalitions */
  const shap_rows_t *h = ctx;
  if (r < 2) {
    memset(on, r == 0, h->S);
    return;
  }
  memset(on, 0, h->S);
  for (size_t k = 0; k < h->pl->M; k++) on[h->pl->varying[k]] = h->pl->masks[(r - 2) * h->pl->M + k];
}

int xd_shap_image_eval(const xd_model_t *m, const double *x, const double *fz, const int32_t *segments, size_t S,
                       const xd_shap_plan_t *pl, size_t target, size_t r0, size_t r1, double *y,
                       const xd_cancel_t *cancel, xd_error_t *err) {
  size_t K = xd_model_n_outputs(m);
  if (r1 <= r0) return XD_OK;
  double *Y = xd_malloc(xd_mul_size(r1 - r0, K) * sizeof *Y);
  if (!Y) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory explaining an image with Kernel SHAP");
  shap_rows_t h = {pl, S};
  int rc = masked_eval(m, x, fz, segments, S, shap_on, &h, r0, r1, Y, cancel, err);
  for (size_t r = 0; rc == XD_OK && r < r1 - r0; r++) y[r] = Y[r * K + target];
  xd_free(Y);
  return rc;
}

int xd_shap_image_explain(const xd_model_t *m, const double *x, const int32_t *segments, size_t S,
                          const double *hide, size_t nsamples, uint64_t seed, size_t instance_index, size_t target,
                          double *phi, double *expected, double *fx, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t P = xd_model_n_inputs(m);
  double *fz = xd_malloc(P * sizeof *fz), *y = NULL;
  xd_shap_plan_t pl;
  memset(&pl, 0, sizeof pl);
  int rc = XD_OK;
  if (!fz || xd_lime_image_fudge(m, x, segments, S, hide, fz) != XD_OK) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory explaining an image with Kernel SHAP");
    goto done;
  }
  if ((rc = xd_shap_image_plan(S, nsamples, seed, instance_index, &pl, err)) != XD_OK) goto done;
  /* rows: everything shown, everything hidden, then the coalitions */
  if (!(y = xd_malloc((pl.K + 2) * sizeof *y))) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory explaining an image with Kernel SHAP");
    goto done;
  }
  rc = xd_shap_image_eval(m, x, fz, segments, S, &pl, target, 0, pl.K + 2, y, cancel, err);
  if (rc == XD_OK) {
    *fx = y[0];
    *expected = y[1];
    memcpy(pl.ey, y + 2, pl.K * sizeof *y);
    rc = xd_shap_plan_solve(&pl, XD_SHAP_LINK_IDENTITY, *fx, *expected, 0, phi, cancel, err);
  }
done:
  xd_shap_plan_deinit(&pl);
  xd_free(fz);
  xd_free(y);
  return rc;
}
