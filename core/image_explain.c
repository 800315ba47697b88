/* image_explain.c — see image_explain.h. */
#include "core/image_explain.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/image.h"
#include "core/rng.h"

static size_t chunk_rows(size_t P) {
  size_t r = XD_IMGX_CHUNK_VALUES / (P ? P : 1);
  return r ? r : 1;
}

/* ---- baselines ------------------------------------------------------------------------ */

/* scipy.ndimage "reflect": d c b a | a b c d | d c b a. */
static size_t reflect(long i, size_t n) {
  long p = 2 * (long)n;
  i %= p;
  if (i < 0) i += p;
  return (size_t)(i < (long)n ? i : p - 1 - i);
}

/* One plane (h, w) blurred in place with a normalized Gaussian of radius
 * int(4 sigma + 0.5) (scipy's truncate 4), rows then columns. */
static void blur_plane(double *x, size_t h, size_t w, double sigma, double *tmp) {
  long r = (long)(4.0 * sigma + 0.5);
  double k[2 * 64 + 1], s = 0;
  if (r > 64) r = 64;
  for (long t = -r; t <= r; t++) s += (k[t + r] = exp(-0.5 * (double)(t * t) / (sigma * sigma)));
  for (long t = -r; t <= r; t++) k[t + r] /= s;
  for (size_t i = 0; i < h; i++)
    for (size_t j = 0; j < w; j++) {
      double a = 0;
      for (long t = -r; t <= r; t++) a += k[t + r] * x[i * w + reflect((long)j + t, w)];
      tmp[i * w + j] = a;
    }
  for (size_t i = 0; i < h; i++)
    for (size_t j = 0; j < w; j++) {
      double a = 0;
      for (long t = -r; t <= r; t++) a += k[t + r] * tmp[reflect((long)i + t, h) * w + j];
      x[i * w + j] = a;
    }
}

int xd_imgx_baseline(const xd_model_t *m, xd_imgx_baseline_t kind, const double *x, double sigma,
                     const double *row, double *b, xd_error_t *err) {
  const xd_image_prep_t *p = xd_model_image_prep(m);
  size_t C = p->channels, HW = p->height * p->width, nbg = 0;
  const double *bg = xd_model_background_images(m, &nbg);
  if (kind == XD_IMGX_MEAN && (!bg || !nbg)) kind = XD_IMGX_BLACK;
  for (size_t c = 0; c < C; c++) {
    double *bc = b + c * HW;
    switch (kind) {
    case XD_IMGX_BLACK:
    case XD_IMGX_WHITE: {
      double v = ((kind == XD_IMGX_WHITE ? 1.0 : 0.0) - p->mean[c]) / p->std[c];
      for (size_t k = 0; k < HW; k++) bc[k] = v;
      break;
    }
    case XD_IMGX_ZERO:
      memset(bc, 0, HW * sizeof *bc);
      break;
    case XD_IMGX_ROW:
      memcpy(bc, row + c * HW, HW * sizeof *bc);
      break;
    case XD_IMGX_MEAN:
      for (size_t k = 0; k < HW; k++) {
        double s = 0;
        for (size_t i = 0; i < nbg; i++) s += bg[i * C * HW + c * HW + k];
        bc[k] = s / (double)nbg;
      }
      break;
    case XD_IMGX_BLUR:
      memcpy(bc, x + c * HW, HW * sizeof *bc);
      break;
    }
  }
  if (kind == XD_IMGX_BLUR) {
    double *tmp = xd_malloc(HW * sizeof *tmp);
    if (!tmp) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory blurring the baseline");
    for (size_t c = 0; c < C; c++) blur_plane(b + c * HW, p->height, p->width, sigma, tmp);
    xd_free(tmp);
  }
  return XD_OK;
}

/* ---- gradient family ------------------------------------------------------------------- */

/* Rows of model work per instance and what row k of an instance is. */
static size_t rows_per(const xd_grad_opts_t *o) {
  if (o->method == XD_GRAD_INTEGRATED) return o->steps + 2;
  if (o->method >= XD_GRAD_SMOOTHGRAD) return o->samples;
  return 1;
}

/* One instance at a time: an instance's rows are never evaluated in one batch with another
 * instance's, because the engine's float results may depend on a batch's make-up (BLAS
 * picks kernels by size). So an instance's attributions depend on the instance and the
 * options only — not on which other instances share the request, a job's chunk or a
 * shard (api/jobspec.h promises a job's lines equal the synchronous answer, bit for bit). */
int xd_imgx_gradient(const xd_model_t *m, const xd_grad_opts_t *o, const double *X, size_t n, const size_t *target,
                     const double *B, size_t row0, double *attr, double *delta, const xd_cancel_t *cancel,
                     xd_error_t *err) {
  size_t P = xd_model_n_inputs(m);
  xd_grad_opts_t oo = *o;
  double *own = NULL;
  if (o->method == XD_GRAD_INTEGRATED && (!o->alpha || !o->weights)) {
    own = xd_malloc(2 * o->steps * sizeof *own);
    if (!own) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory computing gradients");
    int rc = xd_grad_quadrature(o->integration, o->steps, own, own + o->steps, err);
    if (rc != XD_OK) {
      xd_free(own);
      return rc;
    }
    oo.alpha = own;
    oo.weights = own + o->steps;
  }
  int several = o->method == XD_GRAD_INTEGRATED || o->method >= XD_GRAD_SMOOTHGRAD; /* rows per instance */
  double *sum = xd_calloc(P, sizeof *sum), *sum2 = several ? xd_calloc(P, sizeof *sum2) : NULL, f = 0;
  int rc = XD_OK;
  if (!sum || (several && !sum2)) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory computing gradients");
    goto done;
  }
  for (size_t i = 0; i < n && rc == XD_OK; i++) {
    const double *x = X + i * P, *b = B ? B + i * P : NULL;
    double *a = attr + i * P;
    if (several) {
      double fxb[2] = {0, 0};
      memset(sum, 0, P * sizeof *sum);
      memset(sum2, 0, P * sizeof *sum2);
      rc = xd_imgx_gradient_range(m, &oo, x, target[i], b, row0 + i, 0, rows_per(o), sum, sum2, fxb, cancel, err);
      if (rc == XD_OK) xd_imgx_gradient_finish(&oo, P, x, b, sum, sum2, fxb, a, delta ? delta + i : NULL);
      continue;
    }
    if ((rc = xd_model_gradient_prec(m, o->precision, x, 1, &target[i], o->output, &f, sum, NULL, cancel, err)) != XD_OK)
      break;
    for (size_t v = 0; v < P; v++)
      a[v] = o->method == XD_GRAD_SALIENCY ? fabs(sum[v]) : o->method == XD_GRAD_INPUT_X_GRADIENT ? x[v] * sum[v] : sum[v];
  }
done:
  xd_free(own);
  xd_free(sum);
  xd_free(sum2);
  return rc;
}

int xd_imgx_gradient_range(const xd_model_t *m, const xd_grad_opts_t *o, const double *x, size_t target, const double *b,
                           size_t row, size_t k0, size_t k1, double *sum, double *sum2, double *fxb,
                           const xd_cancel_t *cancel, xd_error_t *err) {
  size_t P = xd_model_n_inputs(m), cr = chunk_rows(P), ig = o->method == XD_GRAD_INTEGRATED;
  if (k1 <= k0) return XD_OK;
  if (cr > k1 - k0) cr = k1 - k0;
  double *E = xd_malloc(xd_mul_size(cr, P) * sizeof *E), *G = xd_malloc(xd_mul_size(cr, P) * sizeof *G);
  double *f = xd_malloc(cr * sizeof *f);
  size_t *tc = xd_malloc(cr * sizeof *tc);
  int rc = XD_OK;
  if (!E || !G || !f || !tc) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory computing gradients");
    goto done;
  }
  for (size_t q = 0; q < cr; q++) tc[q] = target;
  xd_rng_t rng;
  double sd = 0;
  if (!ig) { /* the instance's stream, advanced past the copies of earlier ranges */
    xd_rng_seed_stream(&rng, o->seed, row);
    double lo = x[0], hi = x[0];
    for (size_t v = 1; v < P; v++) {
      lo = x[v] < lo ? x[v] : lo;
      hi = x[v] > hi ? x[v] : hi;
    }
    sd = o->noise_stddev * (hi - lo);
    for (size_t skip = 0; skip < k0 * P; skip++) (void)xd_rng_normal(&rng);
  }
  for (size_t r0 = k0; r0 < k1 && rc == XD_OK; r0 += cr) {
    size_t c = k1 - r0 < cr ? k1 - r0 : cr;
    for (size_t q = 0; q < c; q++) {
      size_t k = r0 + q;
      double *e = E + q * P;
      if (ig && k < o->steps)
        for (size_t v = 0; v < P; v++) e[v] = b[v] + o->alpha[k] * (x[v] - b[v]);
      else if (ig) memcpy(e, k == o->steps ? x : b, P * sizeof *e);
      else
        for (size_t v = 0; v < P; v++) e[v] = x[v] + sd * xd_rng_normal(&rng);
    }
    rc = xd_model_gradient_prec(m, o->precision, E, c, tc, o->output, f, G, NULL, cancel, err);
    for (size_t q = 0; rc == XD_OK && q < c; q++) {
      size_t k = r0 + q;
      const double *g = G + q * P;
      if (ig && k < o->steps)
        for (size_t v = 0; v < P; v++) sum[v] += o->weights[k] * g[v];
      else if (ig) fxb[k - o->steps] = f[q];
      else
        for (size_t v = 0; v < P; v++) {
          sum[v] += g[v];
          sum2[v] += g[v] * g[v];
        }
    }
  }
done:
  xd_free(E);
  xd_free(G);
  xd_free(f);
  xd_free(tc);
  return rc;
}

void xd_imgx_gradient_finish(const xd_grad_opts_t *o, size_t P, const double *x, const double *b, const double *sum,
                             const double *sum2, const double *fxb, double *attr, double *delta) {
  if (o->method == XD_GRAD_INTEGRATED) {
    double s = 0;
    for (size_t v = 0; v < P; v++) s += (attr[v] = sum[v] * (x[v] - b[v]));
    if (delta) *delta = s - (fxb[0] - fxb[1]);
    return;
  }
  double inv = 1.0 / (double)o->samples;
  for (size_t v = 0; v < P; v++) {
    double mu = sum[v] * inv, sq = sum2[v] * inv;
    attr[v] = o->method == XD_GRAD_SMOOTHGRAD ? mu : o->method == XD_GRAD_SMOOTHGRAD_SQ ? sq : sq - mu * mu;
  }
}

/* ---- Grad-CAM ----------------------------------------------------------------------- */

int xd_imgx_gradcam(const xd_model_t *m, const char *layer, size_t K, size_t h, size_t w, int relu,
                    xd_output_kind_t output, xd_dtype_t precision, const double *X, size_t n, const size_t *target,
                    double *cam, double *heat, const xd_cancel_t *cancel, xd_error_t *err) {
  const xd_image_prep_t *p = xd_model_image_prep(m);
  size_t P = xd_model_n_inputs(m), L = K * h * w, hw = h * w;
  /* one image per run, as in xd_imgx_gradient: an image's map never depends on the
   * other images of the request */
  size_t cr = 1;
  double *A = xd_malloc(xd_mul_size(cr, L) * sizeof *A), *dA = xd_malloc(xd_mul_size(cr, L) * sizeof *dA);
  int rc = XD_OK;
  if (!A || !dA) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory computing Grad-CAM");
    goto done;
  }
  for (size_t r0 = 0; r0 < n && rc == XD_OK; r0 += cr) {
    size_t c = n - r0 < cr ? n - r0 : cr;
    memset(dA, 0, xd_mul_size(c, L) * sizeof *dA);
    rc = xd_model_layer_gradient(m, precision, X + r0 * P, c, target + r0, output, layer, A, dA, NULL, cancel, err);
    for (size_t q = 0; rc == XD_OK && q < c; q++) {
      double *cm = cam + (r0 + q) * hw;
      memset(cm, 0, hw * sizeof *cm);
      for (size_t k = 0; k < K; k++) {
        const double *a = A + q * L + k * hw, *g = dA + q * L + k * hw;
        double al = 0;
        for (size_t v = 0; v < hw; v++) al += g[v];
        al /= (double)hw;
        for (size_t v = 0; v < hw; v++) cm[v] += al * a[v];
      }
      if (relu)
        for (size_t v = 0; v < hw; v++) cm[v] = cm[v] > 0 ? cm[v] : 0;
      xd_image_resize(cm, 1, h, w, heat + (r0 + q) * p->height * p->width, p->height, p->width);
    }
  }
done:
  xd_free(A);
  xd_free(dA);
  return rc;
}

/* ---- occlusion ----------------------------------------------------------------------- */

int xd_occl_plan(xd_occl_plan_t *p, size_t rank, const size_t *dims, const size_t *window, const size_t *stride,
                 xd_error_t *err) {
  memset(p, 0, sizeof *p);
  p->rank = rank;
  p->n_windows = 1;
  for (size_t k = 0; k < rank; k++) {
    if (window[k] < 1 || window[k] > dims[k])
      return xd_error_set(err, XD_EINVAL, "window", "window[%zu] = %zu must be in 1..%zu (the input's size)", k,
                          window[k], dims[k]);
    if (stride[k] < 1) return xd_error_set(err, XD_EINVAL, "strides", "strides[%zu] must be at least 1", k);
    p->dims[k] = dims[k];
    p->window[k] = window[k];
    p->stride[k] = stride[k];
    p->count[k] = (dims[k] - window[k]) / stride[k] + 1;
    p->n_windows *= p->count[k];
  }
  for (size_t k = rank; k < 3; k++) p->dims[k] = p->window[k] = p->stride[k] = p->count[k] = 1;
  return XD_OK;
}

/* Calls fn(ctx, flat index) for every element of window wi of plan p. */
#define FOR_WINDOW(p, wi, idx, BODY)                                                                        \
  do {                                                                                                      \
    size_t w2_ = (wi) % (p)->count[2], w1_ = (wi) / (p)->count[2] % (p)->count[1],                          \
           w0_ = (wi) / ((p)->count[2] * (p)->count[1]);                                                     \
    for (size_t a_ = 0; a_ < (p)->window[0]; a_++)                                                          \
      for (size_t b_ = 0; b_ < (p)->window[1]; b_++)                                                        \
        for (size_t c_ = 0; c_ < (p)->window[2]; c_++) {                                                    \
          size_t idx = ((w0_ * (p)->stride[0] + a_) * (p)->dims[1] + w1_ * (p)->stride[1] + b_) * (p)->dims[2] + \
                       w2_ * (p)->stride[2] + c_;                                                            \
          BODY;                                                                                             \
        }                                                                                                   \
  } while (0)

int xd_imgx_occlusion(const xd_model_t *m, const xd_occl_plan_t *p, const double *X, size_t n,
                      const size_t *target, const double *B, double *attr, const xd_cancel_t *cancel,
                      xd_error_t *err) {
  /* per instance: its n_windows + 1 rows in batches (xd_imgx_occlusion_eval), then the
   * attributions from their outputs, as a request split into sub-parts computes them */
  size_t d = p->dims[0] * p->dims[1] * p->dims[2], per = p->n_windows + 1;
  double *f = xd_malloc(per * sizeof *f);
  int rc = f ? XD_OK : xd_error_set(err, XD_ENOMEM, NULL, "out of memory computing occlusion");
  for (size_t i = 0; i < n && rc == XD_OK; i++) {
    rc = xd_imgx_occlusion_eval(m, p, X + i * d, target[i], B + i * d, 0, per, f, cancel, err);
    if (rc == XD_OK) xd_imgx_occlusion_combine(p, f, attr + i * d);
  }
  xd_free(f);
  return rc;
}

int xd_imgx_occlusion_eval(const xd_model_t *m, const xd_occl_plan_t *p, const double *x, size_t target,
                           const double *b, size_t k0, size_t k1, double *f, const xd_cancel_t *cancel,
                           xd_error_t *err) {
  size_t d = p->dims[0] * p->dims[1] * p->dims[2], K = xd_model_n_outputs(m), cr = chunk_rows(d);
  if (k1 <= k0) return XD_OK;
  if (cr > k1 - k0) cr = k1 - k0;
  /* image models: rows in float, as the graph runs them (x and b rounded once); others
   * (tabular FeatureAblation) in double */
  int img = xd_model_input_kind(m) == XD_INPUT_IMAGE;
  double *R = img ? NULL : xd_malloc(xd_mul_size(cr, d) * sizeof *R), *out = xd_malloc(xd_mul_size(cr, K) * sizeof *out);
  float *F = img ? xd_malloc((xd_mul_size(cr, d) + 2 * d) * sizeof *F) : NULL, *xf = F ? F + cr * d : NULL;
  float *bf = xf ? xf + d : NULL;
  int rc = (img ? F != NULL : R != NULL) && out ? XD_OK : xd_error_set(err, XD_ENOMEM, NULL, "out of memory computing occlusion");
  for (size_t v = 0; rc == XD_OK && img && v < d; v++) {
    xf[v] = (float)x[v];
    bf[v] = (float)b[v];
  }
  for (size_t r0 = k0; r0 < k1 && rc == XD_OK; r0 += cr) {
    size_t c = k1 - r0 < cr ? k1 - r0 : cr;
    for (size_t q = 0; q < c; q++) {
      if (img) {
        float *e = F + q * d;
        memcpy(e, xf, d * sizeof *e);
        if (r0 + q > 0) FOR_WINDOW(p, r0 + q - 1, v, e[v] = bf[v]);
      } else {
        double *e = R + q * d;
        memcpy(e, x, d * sizeof *e);
        if (r0 + q > 0) FOR_WINDOW(p, r0 + q - 1, v, e[v] = b[v]);
      }
    }
    rc = img ? xd_model_predict_image_f32(m, F, c, out, cancel, err) : xd_model_predict(m, R, c, out, cancel, err);
    for (size_t q = 0; rc == XD_OK && q < c; q++) f[r0 + q - k0] = out[q * K + target];
  }
  xd_free(R);
  xd_free(F);
  xd_free(out);
  return rc;
}

/* Windows of plan p covering position pos of dim k. */
static size_t covering(const xd_occl_plan_t *p, size_t k, size_t pos) {
  size_t n = 0;
  for (size_t w = 0; w < p->count[k]; w++) n += w * p->stride[k] <= pos && pos < w * p->stride[k] + p->window[k];
  return n;
}

void xd_imgx_occlusion_combine(const xd_occl_plan_t *p, const double *f, double *attr) {
  size_t d = p->dims[0] * p->dims[1] * p->dims[2];
  memset(attr, 0, d * sizeof *attr);
  for (size_t wi = 0; wi < p->n_windows; wi++) {
    double diff = f[0] - f[wi + 1];
    FOR_WINDOW(p, wi, v, attr[v] += diff);
  }
  for (size_t a = 0; a < p->dims[0]; a++)
    for (size_t bb = 0; bb < p->dims[1]; bb++)
      for (size_t c = 0; c < p->dims[2]; c++) {
        double cnt = (double)(covering(p, 0, a) * covering(p, 1, bb) * covering(p, 2, c));
        size_t v = (a * p->dims[1] + bb) * p->dims[2] + c;
        attr[v] = cnt > 0 ? attr[v] / cnt : 0;
      }
}
