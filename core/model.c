/* model.c — validation of a decoded bundle, the encoding of raw features, the dense
 * network family (batched forward in float, forward+backward in double) and the tree
 * family's hook into core/trees.h (raw rows, no encoding, no gradient).
 *
 * The family interface (struct family) is what a new model family implements; the
 * rest of this file (features, encoding, output semantics, background) is shared. */
#include "core/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

#include "core/hotloop.h"
#include "core/trees.h"
#include "core/model_graph.h"

/* ---- family interface --------------------------------------------------------------- */

typedef struct family {
  const char *name;
  /* E (n, n_inputs) float -> out (n, n_outputs) in the model's output semantics, with
   * n <= the block size b, and scratch of forward_scratch(m, b) floats. */
  int (*forward)(const xd_model_t *m, const float *E, size_t n, double *out, float *scratch);
  /* see xd_model_gradient; NULL if the family has no gradient */
  int (*gradient)(const xd_model_t *m, const double *E, size_t n, const size_t *target, xd_output_kind_t kind,
                  double *f, double *G, double *out_all, double *scratch);
  /* A family that reads raw rows (trees) or batches and bounds its own memory (the
   * graph engine) evaluates whole requests here instead of encode + forward on blocks;
   * see xd_model_predict for the contract. NULL for the dense family. */
  int (*predict)(const xd_model_t *m, const double *X, size_t n, double *out, const xd_cancel_t *cancel,
                 xd_error_t *err);
  /* The graph family's whole-request gradient (xd_model_gradient's contract). */
  int (*gradient_all)(const xd_model_t *m, xd_dtype_t precision, const double *E, size_t n, const size_t *target,
                      xd_output_kind_t kind, double *f, double *G, double *out_all, const xd_cancel_t *cancel,
                      xd_error_t *err);
} family_t;

struct xd_model {
  const family_t *fam;
  xd_task_t task;
  size_t n_features, n_inputs, n_outputs, n_classes;
  xd_feature_t *features;
  char **classes;
  size_t *in_off, *in_width; /* per feature */
  double *pre_mean, *pre_scale;
  double *pre_inv_scale; /* 1/pre_scale, for the float encoding */
  int all_numeric;       /* every feature numeric of width 1: the float encoding's fast path */
  size_t n_layers;
  xd_dense_t *layers;
  size_t max_width; /* widest layer output, for scratch sizing */
  xd_dataset_t background;
  xd_stats_t stats;
  int has_stats;
  xd_trees_t *trees; /* the tree family's ensemble */
  /* the output stage: activation and width of the last layer (dense) or of the tensor
   * the graph family reads (model_graph.c) */
  xd_act_t out_act;
  size_t out_k;
  xd_gmodel_t *gm; /* graph family only */
  uint64_t row_cost; /* graph family: xd_model_row_cost, from the graph's FLOPs at load */
};

/* ---- spec ------------------------------------------------------------------------------ */

static void features_free(xd_feature_t *f, size_t n) {
  if (!f) return;
  for (size_t j = 0; j < n; j++) {
    xd_free(f[j].name);
    for (size_t k = 0; k < f[j].n_categories; k++) xd_free(f[j].categories[k]);
    xd_free(f[j].categories);
  }
  xd_free(f);
}

static void strings_free(char **s, size_t n) {
  if (!s) return;
  for (size_t i = 0; i < n; i++) xd_free(s[i]);
  xd_free(s);
}

void xd_model_spec_deinit(xd_model_spec_t *spec) {
  if (!spec) return;
  features_free(spec->features, spec->n_features);
  strings_free(spec->classes, spec->n_classes);
  xd_free(spec->pre_mean);
  xd_free(spec->pre_scale);
  if (spec->layers)
    for (size_t l = 0; l < spec->n_layers; l++) {
      xd_free(spec->layers[l].weights);
      xd_free(spec->layers[l].bias);
    }
  xd_free(spec->layers);
  xd_dataset_deinit(&spec->background);
  xd_trees_spec_deinit(spec->trees);
  xd_free(spec->trees);
  xd_graph_spec_deinit(&spec->graph);
  memset(spec, 0, sizeof *spec);
}

void xd_model_free(xd_model_t *m) {
  if (!m) return;
  features_free(m->features, m->n_features);
  strings_free(m->classes, m->n_classes);
  xd_free(m->in_off);
  xd_free(m->in_width);
  xd_free(m->pre_inv_scale);
  xd_free(m->pre_mean);
  xd_free(m->pre_scale);
  if (m->layers)
    for (size_t l = 0; l < m->n_layers; l++) xd_dense_deinit(&m->layers[l]);
  xd_free(m->layers);
  xd_dataset_deinit(&m->background);
  if (m->has_stats) xd_stats_deinit(&m->stats);
  xd_trees_free(m->trees);
  xd_gmodel_free(m->gm);
  xd_free(m);
}

/* ---- validation --------------------------------------------------------------------- */

static int check_finite(const double *v, size_t n, const char *field, xd_error_t *err) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i])) {
      char f[XD_ERROR_FIELD_MAX];
      snprintf(f, sizeof f, "%s[%zu]", field, i);
      return xd_error_set(err, XD_EFORMAT, f, "value is not a finite number");
    }
  return XD_OK;
}

/* Class names: at least 2 and distinct for a classifier, none for a regression. */
static int validate_classes(const xd_model_spec_t *s, xd_error_t *err) {
  char f[XD_ERROR_FIELD_MAX];
  if (s->task == XD_TASK_CLASSIFICATION) {
    if (s->n_classes < 2) return xd_error_set(err, XD_EFORMAT, "classes", "classification needs at least 2 class names");
    for (size_t a = 0; a < s->n_classes; a++)
      for (size_t b = 0; b < a; b++)
        if (strcmp(s->classes[a], s->classes[b]) == 0) {
          snprintf(f, sizeof f, "classes[%zu]", a);
          return xd_error_set(err, XD_EFORMAT, f, "duplicate class name '%s'", s->classes[a]);
        }
  } else if (s->n_classes != 0) {
    return xd_error_set(err, XD_EFORMAT, "classes", "a regression model has no classes");
  }
  return XD_OK;
}

static int validate(const xd_model_spec_t *s, size_t *n_inputs, xd_error_t *err) {
  char f[XD_ERROR_FIELD_MAX];
  if (s->n_features == 0) return xd_error_set(err, XD_EFORMAT, "features", "at least one feature is required");
  size_t in = 0;
  for (size_t j = 0; j < s->n_features; j++) {
    const xd_feature_t *ft = &s->features[j];
    snprintf(f, sizeof f, "features[%zu].name", j);
    if (!ft->name || !ft->name[0]) return xd_error_set(err, XD_EFORMAT, f, "feature name is empty");
    for (size_t k = 0; k < j; k++)
      if (strcmp(s->features[k].name, ft->name) == 0)
        return xd_error_set(err, XD_EFORMAT, f, "duplicate feature name '%s'", ft->name);
    if (ft->kind == XD_FEAT_CATEGORICAL) {
      snprintf(f, sizeof f, "features[%zu].categories", j);
      if (ft->n_categories < 2) return xd_error_set(err, XD_EFORMAT, f, "a categorical feature needs at least 2 categories");
      for (size_t a = 0; a < ft->n_categories; a++)
        for (size_t b = 0; b < a; b++)
          if (strcmp(ft->categories[a], ft->categories[b]) == 0) {
            snprintf(f, sizeof f, "features[%zu].categories[%zu]", j, a);
            return xd_error_set(err, XD_EFORMAT, f, "duplicate category '%s'", ft->categories[a]);
          }
      in += ft->n_categories;
    } else {
      in += 1;
    }
  }
  int rc = validate_classes(s, err);
  if (rc != XD_OK) return rc;
  if ((s->pre_mean == NULL) != (s->pre_scale == NULL))
    return xd_error_set(err, XD_EFORMAT, "preprocess", "mean and scale must both be given");
  if (s->pre_mean) {
    rc = check_finite(s->pre_mean, s->n_features, "preprocess.mean", err);
    if (rc == XD_OK) rc = check_finite(s->pre_scale, s->n_features, "preprocess.scale", err);
    if (rc != XD_OK) return rc;
    for (size_t j = 0; j < s->n_features; j++) {
      if (s->features[j].kind == XD_FEAT_CATEGORICAL) {
        if (s->pre_mean[j] != 0 || s->pre_scale[j] != 1) {
          snprintf(f, sizeof f, "preprocess.mean[%zu]", j);
          if (s->pre_mean[j] == 0) snprintf(f, sizeof f, "preprocess.scale[%zu]", j);
          return xd_error_set(err, XD_EFORMAT, f, "categorical feature '%s' must have mean 0 and scale 1",
                              s->features[j].name);
        }
      } else if (s->pre_scale[j] == 0) {
        snprintf(f, sizeof f, "preprocess.scale[%zu]", j);
        return xd_error_set(err, XD_EFORMAT, f, "scale must be non-zero");
      }
    }
  }
  if (s->trees) { /* the trees see raw values: no layers, no encoding (xd_trees_new checks the rest) */
    if (s->n_layers) return xd_error_set(err, XD_EFORMAT, "layers", "give either layers or trees, not both");
    if (s->pre_mean) return xd_error_set(err, XD_EFORMAT, "preprocess", "tree models read raw values: no preprocess");
    in = s->n_features;
    goto background;
  }
  if (s->n_layers == 0) return xd_error_set(err, XD_EFORMAT, "layers", "at least one layer is required");
  size_t prev = in;
  for (size_t l = 0; l < s->n_layers; l++) {
    const xd_layer_spec_t *L = &s->layers[l];
    snprintf(f, sizeof f, "layers[%zu].weights", l);
    if (L->in != prev)
      return xd_error_set(err, XD_EFORMAT, f, "expected %zu inputs per row (%s), got %zu", prev,
                          l == 0 ? "numeric features plus categories" : "previous layer's outputs", L->in);
    if (L->out == 0) return xd_error_set(err, XD_EFORMAT, f, "a layer needs at least one output");
    rc = check_finite(L->weights, L->in * L->out, f, err);
    if (rc != XD_OK) return rc;
    snprintf(f, sizeof f, "layers[%zu].bias", l);
    if ((rc = check_finite(L->bias, L->out, f, err)) != XD_OK) return rc;
    if (L->act == XD_ACT_SOFTMAX && l + 1 != s->n_layers) {
      snprintf(f, sizeof f, "layers[%zu].activation", l);
      return xd_error_set(err, XD_EFORMAT, f, "softmax is allowed on the last layer only");
    }
    prev = L->out;
  }
  const xd_layer_spec_t *last = &s->layers[s->n_layers - 1];
  snprintf(f, sizeof f, "layers[%zu]", s->n_layers - 1);
  if (s->task == XD_TASK_CLASSIFICATION) {
    if (last->act == XD_ACT_SIGMOID) {
      if (last->out != 1 || s->n_classes != 2)
        return xd_error_set(err, XD_EFORMAT, f,
                            "a sigmoid output layer is a binary classifier: 1 output and 2 classes (got %zu outputs, %zu classes)",
                            last->out, s->n_classes);
    } else if (last->act == XD_ACT_SOFTMAX) {
      if (last->out != s->n_classes)
        return xd_error_set(err, XD_EFORMAT, f, "expected %zu outputs (one per class), got %zu", s->n_classes,
                            last->out);
    } else {
      snprintf(f, sizeof f, "layers[%zu].activation", s->n_layers - 1);
      return xd_error_set(err, XD_EFORMAT, f, "a classifier's last layer must be softmax or sigmoid, not %s",
                          xd_act_name(last->act));
    }
  } else {
    if (last->out != 1) return xd_error_set(err, XD_EFORMAT, f, "a regression model has 1 output, got %zu", last->out);
    if (last->act == XD_ACT_SOFTMAX) {
      snprintf(f, sizeof f, "layers[%zu].activation", s->n_layers - 1);
      return xd_error_set(err, XD_EFORMAT, f, "softmax makes no sense on a single regression output");
    }
  }
background:;
  const xd_dataset_t *bg = &s->background;
  if (bg->n > 0) {
    if (bg->d != s->n_features)
      return xd_error_set(err, XD_EFORMAT, "background", "rows have %zu values, model has %zu features", bg->d,
                          s->n_features);
    for (size_t i = 0; i < bg->n; i++)
      for (size_t j = 0; j < bg->d; j++) {
        double v = bg->X[i * bg->d + j];
        if (s->trees && isnan(v)) continue; /* a missing value: trees route it */
        int bad = !isfinite(v);
        if (!bad && s->features[j].kind == XD_FEAT_CATEGORICAL)
          bad = v != floor(v) || v < 0 || v >= (double)s->features[j].n_categories;
        if (bad) {
          snprintf(f, sizeof f, "background.rows[%zu][%zu]", i, j);
          return xd_error_set(err, XD_EFORMAT, f, "not a valid value of feature '%s'", s->features[j].name);
        }
      }
    if (bg->y)
      for (size_t i = 0; i < bg->n; i++) {
        double v = bg->y[i];
        int bad = !isfinite(v);
        if (!bad && s->task == XD_TASK_CLASSIFICATION) bad = v != floor(v) || v < 0 || v >= (double)s->n_classes;
        if (bad) {
          snprintf(f, sizeof f, "background.targets[%zu]", i);
          return xd_error_set(err, XD_EFORMAT, f, "not a valid target");
        }
      }
  }
  *n_inputs = in;
  return XD_OK;
}

/* ---- the dense family ---------------------------------------------------------------- */

/* Rows per block of the float forward pass: the encoded block and both activation
 * buffers (BLOCK x widest layer) stay in L2 between layers. One 5,000-row batch as a
 * whole spilled every layer's activations to L3 and took 1.6x its GEMMs' time. */
#ifndef FWD_BLOCK
#define FWD_BLOCK 512
#endif

/* Softmax of one row of k logits into o (k): max-subtracted, as exp(z - max). The max
 * element's exp(0) is exactly 1: skipping that call halves the exps of a binary
 * softmax without changing a bit. */
#define SOFTMAX_ROW(Z)                                          \
  do {                                                          \
    double mx = -INFINITY, s = 0;                               \
    for (size_t j = 0; j < k; j++) mx = Z(j) > mx ? Z(j) : mx;   \
    for (size_t j = 0; j < k; j++) {                            \
      double u = Z(j) - mx;                                     \
      s += (o[j] = u == 0 ? 1.0 : exp(u));                      \
    }                                                           \
    for (size_t j = 0; j < k; j++) o[j] /= s;                   \
  } while (0)

/* Output stage in double from the last layer's pre-activations z (n, out):
 * classification probabilities or the regression value. zf (float) or zd (double);
 * one loop per case so the common float softmax has no per-element branch. */
static void output_stage(const xd_model_t *m, const float *zf, const double *zd, size_t n, double *out) {
  xd_act_t act = m->out_act;
  size_t k = m->out_k;
  if (act == XD_ACT_SOFTMAX) {
    for (size_t i = 0; i < n; i++) {
      double *o = out + i * m->n_outputs;
      if (zf) {
#define ZF(j) ((double)zf[i * k + (j)])
        SOFTMAX_ROW(ZF);
#undef ZF
      } else {
#define ZD(j) (zd[i * k + (j)])
        SOFTMAX_ROW(ZD);
#undef ZD
      }
    }
    return;
  }
  if (act == XD_ACT_IDENTITY && m->task == XD_TASK_CLASSIFICATION) { /* a graph's own probabilities */
    for (size_t i = 0; i < n * k; i++) out[i] = zf ? (double)zf[i] : zd[i];
    return;
  }
  for (size_t i = 0; i < n; i++) {
    double *o = out + i * m->n_outputs;
    double z = zf ? (double)zf[i * k] : zd[i * k];
    if (m->task == XD_TASK_CLASSIFICATION) { /* single sigmoid unit */
      o[1] = xd_act_apply(XD_ACT_SIGMOID, z);
      o[0] = xd_act_apply(XD_ACT_SIGMOID, -z); /* not 1-p: keeps tiny p0's digits */
    } else {
      o[0] = xd_act_apply(act, z);
    }
  }
}

/* Floats of scratch dense_forward needs for blocks of b rows: two ping-pong buffers (b, max_width). */
static size_t forward_scratch(const xd_model_t *m, size_t b) { return xd_mul_size(2 * b, m->max_width); }

/* E (n, n_inputs) -> out (n, n_outputs); scratch from the caller (forward_scratch). */
static int dense_forward(const xd_model_t *m, const float *E, size_t n, double *out, float *scratch) {
  size_t w = m->max_width;
  const float *x = E;
  float *bufs[2] = {scratch, scratch + n * w};
  for (size_t l = 0; l < m->n_layers; l++) {
    float *z = bufs[l & 1];
    int last = l + 1 == m->n_layers;
    xd_dense_forward_f(&m->layers[l], x, n, z, !last);
    x = z;
  }
  output_stage(m, x, NULL, n, out);
  return XD_OK;
}

/* Derivative of the explained output with respect to the last layer's pre-activations,
 * for one row: z (k) logits, t target. Writes dz (k) and returns f. Everything in double
 * from the logits, so 1-p is the sum of the other classes and never a cancellation. */
static double output_deriv(const xd_model_t *m, const double *z, size_t t, xd_output_kind_t kind, double *dz,
                           double *all) {
  xd_act_t act = m->out_act;
  size_t k = m->out_k;
  for (size_t j = 0; j < k; j++) dz[j] = 0;
  if (act == XD_ACT_SOFTMAX) {
    double mx = -INFINITY, s = 0, p[64], *pp = k <= 64 ? p : all; /* all is (k) when k > 64 */
    for (size_t j = 0; j < k; j++) mx = z[j] > mx ? z[j] : mx;
    for (size_t j = 0; j < k; j++) s += (pp[j] = exp(z[j] - mx));
    for (size_t j = 0; j < k; j++) pp[j] /= s;
    if (all && pp != all) memcpy(all, pp, k * sizeof *all);
    if (kind == XD_OUTPUT_LOGIT) {
      dz[t] = 1;
      return z[t];
    }
    double rest = 0; /* 1 - p_t, summed from the other classes */
    for (size_t j = 0; j < k; j++)
      if (j != t) rest += pp[j];
    for (size_t j = 0; j < k; j++) dz[j] = j == t ? pp[t] * rest : -pp[t] * pp[j];
    return pp[t];
  }
  if (act == XD_ACT_IDENTITY && m->task == XD_TASK_CLASSIFICATION) { /* a graph's own probabilities */
    if (all) memcpy(all, z, k * sizeof *all);
    dz[t] = 1;
    return z[t];
  }
  if (m->task == XD_TASK_CLASSIFICATION) { /* single sigmoid unit: class 1 is z, class 0 is -z */
    double sgn = t == 1 ? 1.0 : -1.0;
    double p1 = xd_act_apply(XD_ACT_SIGMOID, z[0]), p0 = xd_act_apply(XD_ACT_SIGMOID, -z[0]);
    if (all) {
      all[0] = p0;
      all[1] = p1;
    }
    if (kind == XD_OUTPUT_LOGIT) {
      dz[0] = sgn;
      return sgn * z[0];
    }
    dz[0] = sgn * p1 * p0;
    return t == 1 ? p1 : p0;
  }
  double v = xd_act_apply(act, z[0]);
  if (all) all[0] = v;
  if (kind == XD_OUTPUT_LOGIT) {
    dz[0] = 1;
    return z[0];
  }
  dz[0] = xd_act_deriv(act, z[0]);
  return v;
}

/* Rows per block of the gradient pass: every layer's Z and A plus two gradient buffers
 * (about 2.6 KB a row for breast_cancer) stay in L2. Whole 5,200-row chunks (13 MB of
 * scratch, allocated per call) ran at a fifth of the dgemm rate. */
#define GRAD_BLOCK 256

/* Doubles of scratch dense_gradient needs for blocks of b rows. */
static size_t gradient_scratch(const xd_model_t *m, size_t b) {
  size_t tot = 0, w = m->max_width > m->n_inputs ? m->max_width : m->n_inputs;
  for (size_t l = 0; l < m->n_layers; l++) tot += m->layers[l].out;
  return xd_mul_size(b, 2 * tot + 2 * w);
}

/* ReLU of z into a (m): a vectorized select, the same bits as the scalar loop. */
XD_HOT_LOOP static void relu_copy_d(const double *restrict z, double *restrict a, size_t m) {
  for (size_t i = 0; i < m; i++) a[i] = z[i] > 0 ? z[i] : 0;
}

/* E (n, n_inputs) double -> f (n), G (n, n_inputs). Keeps every layer's pre-activation
 * Z_l and activation A_l (n, out_l) for the backward walk, which visits the layers in
 * exactly the reverse order of the forward one. Scratch: gradient_scratch(m, n) doubles. */
static int dense_gradient(const xd_model_t *m, const double *E, size_t n, const size_t *target,
                          xd_output_kind_t kind, double *f, double *G, double *out_all, double *Z) {
  size_t nl = m->n_layers, tot = 0;
  for (size_t l = 0; l < nl; l++) tot += m->layers[l].out;
  size_t w = m->max_width > m->n_inputs ? m->max_width : m->n_inputs;
  size_t k = m->layers[nl - 1].out;
  double *tmp_all = k > 64 ? xd_malloc(k * sizeof *tmp_all) : NULL;
  if (k > 64 && !tmp_all) return XD_ENOMEM;
  double *A = Z + n * tot;           /* activations, same layout as Z */
  double *d1 = A + n * tot, *d2 = d1 + n * w;
  size_t off[64 + 1], *offs = off;
  size_t *heap_off = NULL;
  if (nl + 1 > 65) {
    heap_off = xd_malloc((nl + 1) * sizeof *heap_off);
    if (!heap_off) {
      xd_free(tmp_all);
      return XD_ENOMEM;
    }
    offs = heap_off;
  }
  offs[0] = 0;
  for (size_t l = 0; l < nl; l++) offs[l + 1] = offs[l] + n * m->layers[l].out;
  const double *x = E;
  for (size_t l = 0; l < nl; l++) {
    const xd_dense_t *L = &m->layers[l];
    double *z = Z + offs[l], *a = A + offs[l];
    xd_dense_forward_d(L, x, n, z, 0);
    if (L->act == XD_ACT_RELU)
      relu_copy_d(z, a, n * L->out);
    else
      for (size_t i = 0; i < n * L->out; i++) a[i] = xd_act_apply(L->act, z[i]);
    x = a;
  }
  /* output layer: dZ_L per row */
  const double *zl = Z + offs[nl - 1];
  for (size_t i = 0; i < n; i++) {
    size_t t = target ? target[i] : 0;
    double *all = out_all ? out_all + i * m->n_outputs : (k > 64 ? tmp_all : NULL);
    double fv = output_deriv(m, zl + i * k, t, kind, d1 + i * k, all);
    if (f) f[i] = fv;
  }
  for (size_t l = nl; l-- > 0;) {
    const xd_dense_t *L = &m->layers[l];
    double *dx = l == 0 ? G : d2;
    xd_dense_backward_d(L, Z + offs[l], d1, n, dx, l + 1 != nl);
    if (l > 0) {
      double *t = d1;
      d1 = d2;
      d2 = t;
    }
  }
  xd_free(heap_off);
  xd_free(tmp_all);
  return XD_OK;
}

static const family_t dense_family = {.name = "dense", .forward = dense_forward, .gradient = dense_gradient};

/* ---- the tree family (core/trees.h) ---------------------------------------------------- */

static void stopped(xd_error_t *err, int rc);

/* Raw rows X (n, n_features), NaN = missing: margins in blocks of 256 rows, then the
 * link; the cancel check every XD_MODEL_BATCH rows, as for the other families. */
static int trees_predict(const xd_model_t *m, const double *X, size_t n, double *out, const xd_cancel_t *cancel,
                         xd_error_t *err) {
  size_t G = xd_trees_n_groups(m->trees), b = 256;
  double zb[256 * 4], *Z = G <= 4 ? zb : xd_malloc(b * G * sizeof *Z);
  if (!Z) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory evaluating the model");
  int rc = XD_OK;
  for (size_t s = 0; s < n; s += b) {
    if (s % XD_MODEL_BATCH == 0 && (rc = xd_cancel_check(cancel)) != XD_OK) {
      stopped(err, rc);
      break;
    }
    size_t c = n - s < b ? n - s : b;
    xd_trees_margins(m->trees, X + s * m->n_features, c, m->n_features, Z);
    xd_trees_outputs(m->trees, Z, c, out + s * m->n_outputs);
  }
  if (Z != zb) xd_free(Z);
  return rc;
}

static const family_t trees_family = {.name = "trees", .predict = trees_predict};

/* ---- the graph family (core/model_graph.c runs the graph; the output stage is here) --- */

/* Image rows X (n, n_inputs): blocks of FWD_BLOCK rows converted to float, run to the
 * output tensor, then the output stage in double. Text models go through
 * xd_model_predict_text. */
static int graph_predict(const xd_model_t *m, const double *X, size_t n, double *out, const xd_cancel_t *cancel,
                         xd_error_t *err) {
  if (xd_gmodel_kind(m->gm) != XD_INPUT_IMAGE)
    return xd_error_set(err, XD_EUNSUPPORTED, NULL, "a text model's rows are token sequences (xd_model_predict_text)");
  size_t b = n < FWD_BLOCK ? n : FWD_BLOCK, d = m->n_inputs;
  float *E = xd_malloc(xd_mul_size(b, d) * sizeof *E);
  double *z = xd_malloc(xd_mul_size(b, m->out_k) * sizeof *z);
  int rc = E && z ? XD_OK : xd_error_set(err, XD_ENOMEM, NULL, "out of memory evaluating the model");
  for (size_t s = 0; s < n && rc == XD_OK; s += b) {
    size_t c = n - s < b ? n - s : b;
    for (size_t i = 0; i < c * d; i++) E[i] = (float)X[s * d + i];
    rc = xd_gmodel_forward_image(m->gm, E, c, z, cancel, err);
    if (rc == XD_OK) output_stage(m, NULL, z, c, out + s * m->n_outputs);
  }
  xd_free(E);
  xd_free(z);
  return rc;
}

int xd_model_predict_image_f32(const xd_model_t *m, const float *E, size_t n, double *out, const xd_cancel_t *cancel,
                               xd_error_t *err) {
  if (!m->gm || xd_gmodel_kind(m->gm) != XD_INPUT_IMAGE)
    return xd_error_set(err, XD_EUNSUPPORTED, NULL, "float rows are for image models (xd_model_predict)");
  size_t b = n < FWD_BLOCK ? n : FWD_BLOCK, d = m->n_inputs;
  double *z = n ? xd_malloc(xd_mul_size(b, m->out_k) * sizeof *z) : NULL;
  int rc = z || !n ? XD_OK : xd_error_set(err, XD_ENOMEM, NULL, "out of memory evaluating the model");
  for (size_t s = 0; s < n && rc == XD_OK; s += b) { /* graph_predict's blocks, without the copy */
    size_t c = n - s < b ? n - s : b;
    rc = xd_gmodel_forward_image(m->gm, E + s * d, c, z, cancel, err);
    if (rc == XD_OK) output_stage(m, NULL, z, c, out + s * m->n_outputs);
  }
  xd_free(z);
  return rc;
}

typedef struct graph_seed {
  const xd_model_t *m;
  const size_t *target;
  xd_output_kind_t kind;
  double *f, *out_all, *tmp_all; /* tmp_all (out_k) when out_all is NULL and out_k > 64 */
} graph_seed_t;

/* The engine's seed callback: dp/dz of the explained output from the logits, in double
 * (output_deriv, as the dense family), for rows [row0, row0 + c). */
static int graph_seed(void *ctx, size_t row0, size_t c, const double *z, double *seed) {
  graph_seed_t *g = ctx;
  const xd_model_t *m = g->m;
  size_t k = m->out_k;
  for (size_t i = 0; i < c; i++) {
    size_t r = row0 + i, t = g->target ? g->target[r] : 0;
    double *all = g->out_all ? g->out_all + r * m->n_outputs : g->tmp_all;
    double fv = output_deriv(m, z + i * k, t, g->kind, seed + i * k, all);
    if (g->f) g->f[r] = fv;
  }
  return XD_OK;
}

static int graph_gradient_all(const xd_model_t *m, xd_dtype_t precision, const double *E, size_t n,
                              const size_t *target, xd_output_kind_t kind, double *f, double *G, double *out_all,
                              const xd_cancel_t *cancel, xd_error_t *err) {
  if (xd_gmodel_kind(m->gm) != XD_INPUT_IMAGE)
    return xd_error_set(err, XD_EUNSUPPORTED, NULL, "a text model is differentiated at its token embedding");
  graph_seed_t g = {m, target, kind, f, out_all, NULL};
  if (!out_all && m->out_k > 64 && !(g.tmp_all = xd_malloc(m->out_k * sizeof *g.tmp_all)))
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory computing gradients");
  int rc = xd_gmodel_gradient_image(m->gm, precision, E, n, graph_seed, &g, G, cancel, err);
  xd_free(g.tmp_all);
  return rc;
}

int xd_model_layer_gradient(const xd_model_t *m, xd_dtype_t precision, const double *E, size_t n,
                            const size_t *target, xd_output_kind_t kind, const char *layer, double *A, double *dA,
                            double *f, const xd_cancel_t *cancel, xd_error_t *err) {
  if (!m->gm || xd_gmodel_kind(m->gm) != XD_INPUT_IMAGE)
    return xd_error_set(err, XD_EUNSUPPORTED, "model", "layer gradients are for image models");
  graph_seed_t g = {m, target, kind, f, NULL, NULL};
  if (m->out_k > 64 && !(g.tmp_all = xd_malloc(m->out_k * sizeof *g.tmp_all)))
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory computing gradients");
  int rc = xd_gmodel_layer_image(m->gm, precision, E, n, layer, graph_seed, &g, A, dA, cancel, err);
  xd_free(g.tmp_all);
  return rc;
}

int xd_model_layer_shape(const xd_model_t *m, const char *layer, size_t *rank, int64_t dims[3], xd_error_t *err) {
  if (!m->gm || xd_gmodel_kind(m->gm) != XD_INPUT_IMAGE)
    return xd_error_set(err, XD_EUNSUPPORTED, "model", "layer gradients are for image models");
  return xd_gmodel_layer_shape(m->gm, layer, rank, dims, err);
}

static const family_t graph_family = {.name = "graph", .predict = graph_predict, .gradient_all = graph_gradient_all};

/* A graph model: classes as any model, then the graph against the bundle's input and
 * output (model_graph.c). No tabular features, preprocess, layers or background rows. */
static int graph_model_new(xd_model_spec_t *spec, xd_model_t **out, xd_error_t *err) {
  xd_model_t *m = NULL;
  int rc = validate_classes(spec, err);
  if (rc == XD_OK && (spec->n_features || spec->pre_mean || spec->n_layers || spec->background.n))
    rc = xd_error_set(err, XD_EFORMAT, spec->n_features ? "features" : spec->pre_mean ? "preprocess" :
                      spec->n_layers ? "layers" : "background",
                      "an image or text model takes no tabular features, preprocess, layers or background rows");
  if (rc != XD_OK) goto fail;
  if (!(m = xd_calloc(1, sizeof *m))) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory building the model");
    goto fail;
  }
  xd_gmodel_out_t info;
  if ((rc = xd_gmodel_new(&spec->graph, spec->task, spec->n_classes, &m->gm, &info, err)) != XD_OK) goto fail;
  m->row_cost = (uint64_t)ceil(xd_gmodel_flops_per_row(m->gm) / XD_MODEL_DENSE_ROW_FLOPS);
  m->fam = &graph_family;
  m->task = spec->task;
  m->n_classes = spec->n_classes;
  m->n_outputs = spec->task == XD_TASK_CLASSIFICATION ? spec->n_classes : 1;
  m->classes = spec->classes;
  spec->classes = NULL;
  m->n_inputs = info.n_inputs;
  m->out_act = info.act;
  m->out_k = m->max_width = info.width;
  xd_model_spec_deinit(spec);
  *out = m;
  return XD_OK;
fail:
  xd_model_free(m);
  xd_model_spec_deinit(spec);
  return rc;
}

/* ---- construction ------------------------------------------------------------------- */

int xd_model_new(xd_model_spec_t *spec, xd_model_t **out, xd_error_t *err) {
  *out = NULL;
  if (spec->graph.kind != XD_INPUT_TABULAR || spec->graph.graph) return graph_model_new(spec, out, err);
  size_t n_inputs = 0;
  int rc = validate(spec, &n_inputs, err);
  if (rc != XD_OK) {
    xd_model_spec_deinit(spec);
    return rc;
  }
  xd_model_t *m = xd_calloc(1, sizeof *m);
  if (!m) goto nomem;
  m->fam = spec->trees ? &trees_family : &dense_family;
  m->task = spec->task;
  m->n_features = spec->n_features;
  m->n_inputs = n_inputs;
  m->n_classes = spec->n_classes;
  m->n_outputs = spec->task == XD_TASK_CLASSIFICATION ? spec->n_classes : 1;
  m->features = spec->features;
  spec->features = NULL;
  m->classes = spec->classes;
  spec->classes = NULL;
  m->background = spec->background;
  memset(&spec->background, 0, sizeof spec->background);
  m->in_off = xd_malloc(m->n_features * sizeof *m->in_off);
  m->in_width = xd_malloc(m->n_features * sizeof *m->in_width);
  m->pre_mean = xd_malloc(m->n_features * sizeof *m->pre_mean);
  m->pre_scale = xd_malloc(m->n_features * sizeof *m->pre_scale);
  m->pre_inv_scale = xd_malloc(m->n_features * sizeof *m->pre_inv_scale);
  m->layers = xd_calloc(spec->n_layers, sizeof *m->layers);
  if (!m->in_off || !m->in_width || !m->pre_mean || !m->pre_scale || !m->pre_inv_scale || !m->layers) goto nomem;
  size_t o = 0;
  for (size_t j = 0; j < m->n_features; j++) {
    m->in_off[j] = o;
    m->in_width[j] = m->features[j].kind == XD_FEAT_CATEGORICAL && !spec->trees ? m->features[j].n_categories : 1;
    o += m->in_width[j];
    m->pre_mean[j] = spec->pre_mean ? spec->pre_mean[j] : 0;
    m->pre_scale[j] = spec->pre_scale ? spec->pre_scale[j] : 1;
    m->pre_inv_scale[j] = 1.0 / m->pre_scale[j];
  }
  m->all_numeric = m->n_inputs == m->n_features;
  for (size_t j = 0; j < m->n_features; j++)
    if (m->features[j].kind != XD_FEAT_NUMERIC) m->all_numeric = 0;
  for (size_t l = 0; l < spec->n_layers; l++) {
    xd_layer_spec_t *L = &spec->layers[l];
    if (xd_dense_init(&m->layers[l], L->in, L->out, L->act, L->weights, L->bias) != 0) goto nomem;
    m->n_layers = l + 1;
    if (L->out > m->max_width) m->max_width = L->out;
  }
  if (spec->trees) {
    rc = xd_trees_new(spec->trees, m->n_features, m->n_outputs, m->task == XD_TASK_CLASSIFICATION, &m->trees, err);
    if (rc != XD_OK) goto fail;
  }
  if (m->n_layers) { /* the output stage of the dense family (trees have their own link) */
    m->out_act = m->layers[m->n_layers - 1].act;
    m->out_k = m->layers[m->n_layers - 1].out;
  }
  if (m->background.n > 0) {
    rc = xd_stats_compute(&m->background, m->features, m->task == XD_TASK_CLASSIFICATION ? m->n_classes : 0,
                          &m->stats, err);
    if (rc != XD_OK) goto fail;
    m->has_stats = 1;
  }
  xd_model_spec_deinit(spec);
  *out = m;
  return XD_OK;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory building the model");
fail:
  xd_model_free(m);
  xd_model_spec_deinit(spec);
  return rc;
}

/* ---- metadata --------------------------------------------------------------------------- */

xd_task_t xd_model_task(const xd_model_t *m) { return m->task; }
const char *xd_model_family(const xd_model_t *m) { return m->fam->name; }
size_t xd_model_n_features(const xd_model_t *m) { return m->n_features; }
const xd_feature_t *xd_model_features(const xd_model_t *m) { return m->features; }
size_t xd_model_n_inputs(const xd_model_t *m) { return m->n_inputs; }
size_t xd_model_n_outputs(const xd_model_t *m) { return m->n_outputs; }
char *const *xd_model_classes(const xd_model_t *m) { return m->classes; }
size_t xd_model_input_offset(const xd_model_t *m, size_t j) { return m->in_off[j]; }
size_t xd_model_input_width(const xd_model_t *m, size_t j) { return m->in_width[j]; }
double xd_model_pre_mean(const xd_model_t *m, size_t j) { return m->pre_mean[j]; }
double xd_model_pre_scale(const xd_model_t *m, size_t j) { return m->pre_scale[j]; }
const xd_dataset_t *xd_model_background(const xd_model_t *m) { return &m->background; }
const xd_stats_t *xd_model_stats(const xd_model_t *m) { return m->has_stats ? &m->stats : NULL; }
const struct xd_trees *xd_model_trees(const xd_model_t *m) { return m->trees; }
int xd_model_has_gradient(const xd_model_t *m) {
  return m->fam->gradient != NULL || (m->gm && xd_gmodel_kind(m->gm) == XD_INPUT_IMAGE);
}

xd_input_kind_t xd_model_input_kind(const xd_model_t *m) { return m->gm ? xd_gmodel_kind(m->gm) : XD_INPUT_TABULAR; }
const xd_graph_t *xd_model_graph(const xd_model_t *m) { return m->gm ? xd_gmodel_graph(m->gm) : NULL; }
const xd_image_prep_t *xd_model_image_prep(const xd_model_t *m) { return m->gm ? xd_gmodel_image_prep(m->gm) : NULL; }
const xd_tokenizer_t *xd_model_tokenizer(const xd_model_t *m) { return m->gm ? xd_gmodel_tokenizer(m->gm) : NULL; }
size_t xd_model_max_length(const xd_model_t *m) { return m->gm ? xd_gmodel_max_length(m->gm) : 0; }
const char *xd_model_embedding(const xd_model_t *m) { return m->gm ? xd_gmodel_embedding(m->gm) : NULL; }
uint64_t xd_model_row_cost(const xd_model_t *m) {
  double c = 1;
  if (m->gm) c = (double)m->row_cost;
  else if (m->trees)
    c = ceil((double)xd_trees_n_trees(m->trees) * (double)xd_trees_max_depth(m->trees) / XD_MODEL_TREE_VISITS_PER_ROW);
  return c >= 1 ? (c < 1e15 ? (uint64_t)c : (uint64_t)1e15) : 1;
}

void xd_model_set_max_work_memory(xd_model_t *m, size_t bytes) {
  if (m->gm) xd_gmodel_set_max_work_memory(m->gm, bytes);
}
const char *xd_model_output_tensor(const xd_model_t *m, xd_act_t *act, size_t *width) {
  if (act) *act = m->out_act;
  if (width) *width = m->out_k;
  return m->gm ? xd_gmodel_output_tensor(m->gm) : NULL;
}
const double *xd_model_background_images(const xd_model_t *m, size_t *n) {
  *n = 0;
  return m->gm ? xd_gmodel_background_images(m->gm, n) : NULL;
}
char *const *xd_model_background_texts(const xd_model_t *m, size_t *n) {
  *n = 0;
  return m->gm ? xd_gmodel_background_texts(m->gm, n) : NULL;
}

const xd_dense_t *xd_model_dense_layers(const xd_model_t *m, size_t *n) {
  *n = m->fam == &dense_family ? m->n_layers : 0;
  return *n ? m->layers : NULL;
}

size_t xd_model_argmax(const xd_model_t *m, const double *o) {
  size_t best = 0;
  if (m->task != XD_TASK_CLASSIFICATION) return 0;
  for (size_t j = 1; j < m->n_outputs; j++)
    if (o[j] > o[best]) best = j;
  return best;
}

/* ---- evaluation ------------------------------------------------------------------------ */

#define ENCODE_BODY(T)                                                               \
  for (size_t i = 0; i < n; i++) {                                                   \
    const double *x = X + i * m->n_features;                                         \
    T *e = E + i * m->n_inputs;                                                      \
    for (size_t j = 0; j < m->n_features; j++) {                                     \
      size_t o = m->in_off[j];                                                       \
      if (m->in_width[j] == 1 && m->features[j].kind == XD_FEAT_NUMERIC) {           \
        e[o] = (T)((x[j] - m->pre_mean[j]) / m->pre_scale[j]);                       \
      } else {                                                                       \
        for (size_t k = 0; k < m->in_width[j]; k++) e[o + k] = 0;                    \
        double c = x[j];                                                             \
        if (c >= 0 && c < (double)m->in_width[j]) e[o + (size_t)c] = 1;              \
      }                                                                              \
    }                                                                                \
  }

/* The float encoding of an all-numeric model is one multiply per element by the
 * reciprocal scale, a loop the compiler vectorizes (the division it replaces cost as
 * much as the first layer's GEMM). The product differs from the quotient by at most an
 * ulp of the double, below the float it is rounded to. The double encoding (gradients)
 * keeps the division. */
XD_HOT_LOOP static void encode_numeric_f(const xd_model_t *m, const double *X, size_t n, float *E) {
  size_t d = m->n_features;
  const double *mu = m->pre_mean, *inv = m->pre_inv_scale;
  for (size_t i = 0; i < n; i++) {
    const double *x = X + i * d;
    float *e = E + i * d;
    for (size_t j = 0; j < d; j++) e[j] = (float)((x[j] - mu[j]) * inv[j]);
  }
}

void xd_model_encode_f(const xd_model_t *m, const double *X, size_t n, float *E) {
  if (m->gm) { /* image rows are already the model input */
    for (size_t i = 0; i < n * m->n_inputs; i++) E[i] = (float)X[i];
    return;
  }
  if (m->all_numeric) {
    encode_numeric_f(m, X, n, E);
    return;
  }
  ENCODE_BODY(float)
}
void xd_model_encode_d(const xd_model_t *m, const double *X, size_t n, double *E) {
  if (m->gm) {
    memcpy(E, X, n * m->n_inputs * sizeof *E);
    return;
  }
  ENCODE_BODY(double)
}

/* Fills err for a stop asked by xd_cancel_check (rc: XD_ECANCELED or XD_ETIMEDOUT). */
static void stopped(xd_error_t *err, int rc) {
  xd_error_set(err, rc, NULL, "%s", rc == XD_ETIMEDOUT ? "deadline exceeded" : "canceled");
}

int xd_model_predict(const xd_model_t *m, const double *X, size_t n, double *out, const xd_cancel_t *cancel,
                     xd_error_t *err) {
  /* Blocks of FWD_BLOCK rows (see there), the cancel check between them, and one
   * allocation for the encoded block and the activations. */
  size_t b = n < FWD_BLOCK ? n : FWD_BLOCK;
  if (n == 0) return XD_OK;
  if (m->fam->predict) return m->fam->predict(m, X, n, out, cancel, err);
  size_t ne = xd_mul_size(b, m->n_inputs);
  float *E = xd_malloc((ne + forward_scratch(m, b)) * sizeof *E);
  if (!E) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory evaluating the model");
  int rc = XD_OK;
  for (size_t s = 0; s < n; s += b) {
    size_t c = n - s < b ? n - s : b;
    if ((rc = xd_cancel_check(cancel)) != XD_OK) {
      stopped(err, rc);
      break;
    }
    xd_model_encode_f(m, X + s * m->n_features, c, E);
    if ((rc = m->fam->forward(m, E, c, out + s * m->n_outputs, E + ne)) != XD_OK) {
      xd_error_set(err, rc, NULL, "out of memory evaluating the model");
      break;
    }
  }
  xd_free(E);
  return rc;
}

int xd_model_gradient(const xd_model_t *m, const double *E, size_t n, const size_t *target, xd_output_kind_t kind,
                      double *f, double *G, double *out_all, const xd_cancel_t *cancel, xd_error_t *err) {
  return xd_model_gradient_prec(m, XD_DT_F64, E, n, target, kind, f, G, out_all, cancel, err);
}

int xd_model_gradient_prec(const xd_model_t *m, xd_dtype_t precision, const double *E, size_t n, const size_t *target,
                           xd_output_kind_t kind, double *f, double *G, double *out_all, const xd_cancel_t *cancel,
                           xd_error_t *err) {
  if (n == 0) return XD_OK;
  if (m->fam->gradient_all) return m->fam->gradient_all(m, precision, E, n, target, kind, f, G, out_all, cancel, err);
  if (!m->fam->gradient) return xd_error_set(err, XD_EUNSUPPORTED, NULL, "this model family has no gradient");
  /* Blocks of GRAD_BLOCK rows (see there) with one scratch allocation per call. */
  size_t b = n < GRAD_BLOCK ? n : GRAD_BLOCK, ns = gradient_scratch(m, b);
  double *scratch = ns ? xd_malloc(ns * sizeof *scratch) : NULL;
  if (!scratch) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory computing gradients");
  int rc = XD_OK;
  for (size_t s = 0; s < n; s += b) {
    size_t c = n - s < b ? n - s : b;
    if ((rc = xd_cancel_check(cancel)) != XD_OK) {
      stopped(err, rc);
      break;
    }
    rc = m->fam->gradient(m, E + s * m->n_inputs, c, target ? target + s : NULL, kind, f ? f + s : NULL,
                          G + s * m->n_inputs, out_all ? out_all + s * m->n_outputs : NULL, scratch);
    if (rc != XD_OK) {
      xd_error_set(err, rc, NULL, "out of memory computing gradients");
      break;
    }
  }
  xd_free(scratch);
  return rc;
}

int xd_model_predict_text(const xd_model_t *m, const xd_tok_encoding_t *rows, size_t n, double *out,
                          const xd_cancel_t *cancel, xd_error_t *err) {
  if (!m->gm || xd_gmodel_kind(m->gm) != XD_INPUT_TEXT)
    return xd_error_set(err, XD_EUNSUPPORTED, NULL, "not a text model");
  if (n == 0) return XD_OK;
  double *z = xd_malloc(xd_mul_size(n, m->out_k) * sizeof *z);
  if (!z) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory evaluating the model");
  int rc = xd_gmodel_forward_tokens(m->gm, rows, n, z, cancel, err);
  if (rc == XD_OK) output_stage(m, NULL, z, n, out);
  xd_free(z);
  return rc;
}
