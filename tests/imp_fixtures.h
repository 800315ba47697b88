/* imp_fixtures.h — hand-built models and demo-bundle loading for test_importance.c and
 * test_pdp.c (static helpers: included, not linked). */
#ifndef XD_TEST_IMP_FIXTURES_H
#define XD_TEST_IMP_FIXTURES_H

#include <stdio.h>
#include <string.h>

#include "api/bundle.h"
#include "core/alloc.h"
#include "core/model.h"
#include "core/rng.h"

typedef struct fx_layer {
  size_t in, out;
  const double *w; /* (out, in) */
  const double *b; /* (out), NULL: zeros */
  xd_act_t act;
} fx_layer_t;

static double *fx_dup(const double *v, size_t n) {
  double *c = xd_calloc(n ? n : 1, sizeof *c);
  if (c && v) memcpy(c, v, n * sizeof *c);
  return c;
}

/* A model with features x0..x{d-1} (cat_counts[j] > 0: categorical with that many
 * categories c0.., NULL: all numeric), classes k0.. (classification), the given layers,
 * optional preprocess, and optional background (bg_X (bg_n, d), bg_y). NULL on error
 * (printed). */
static xd_model_t *fx_build(xd_task_t task, size_t d, const size_t *cat_counts, size_t n_classes,
                            const fx_layer_t *layers, size_t nl, const double *pre_mean, const double *pre_scale,
                            const double *bg_X, const double *bg_y, size_t bg_n) {
  xd_model_spec_t s;
  memset(&s, 0, sizeof s);
  s.task = task;
  s.n_features = d;
  s.features = xd_calloc(d, sizeof *s.features);
  char name[32];
  for (size_t j = 0; j < d; j++) {
    snprintf(name, sizeof name, "x%zu", j);
    s.features[j].name = xd_strdup(name);
    if (cat_counts && cat_counts[j]) {
      s.features[j].kind = XD_FEAT_CATEGORICAL;
      s.features[j].n_categories = cat_counts[j];
      s.features[j].categories = xd_calloc(cat_counts[j], sizeof(char *));
      for (size_t c = 0; c < cat_counts[j]; c++) {
        snprintf(name, sizeof name, "c%zu", c);
        s.features[j].categories[c] = xd_strdup(name);
      }
    }
  }
  s.n_classes = n_classes;
  if (n_classes) {
    s.classes = xd_calloc(n_classes, sizeof(char *));
    for (size_t c = 0; c < n_classes; c++) {
      snprintf(name, sizeof name, "k%zu", c);
      s.classes[c] = xd_strdup(name);
    }
  }
  if (pre_mean) {
    s.pre_mean = fx_dup(pre_mean, d);
    s.pre_scale = fx_dup(pre_scale, d);
  }
  s.n_layers = nl;
  s.layers = xd_calloc(nl, sizeof *s.layers);
  for (size_t l = 0; l < nl; l++) {
    s.layers[l].in = layers[l].in;
    s.layers[l].out = layers[l].out;
    s.layers[l].weights = fx_dup(layers[l].w, layers[l].in * layers[l].out);
    s.layers[l].bias = fx_dup(layers[l].b, layers[l].out);
    s.layers[l].act = layers[l].act;
  }
  if (bg_n) {
    s.background.n = bg_n;
    s.background.d = d;
    s.background.X = fx_dup(bg_X, bg_n * d);
    s.background.y = bg_y ? fx_dup(bg_y, bg_n) : NULL;
  }
  xd_model_t *m = NULL;
  xd_error_t err;
  xd_error_clear(&err);
  if (xd_model_new(&s, &m, &err) != XD_OK) {
    fprintf(stderr, "fx_build: %s: %s\n", err.field, err.text);
    return NULL;
  }
  return m;
}

/* A linear regression model f = w·x + c (one identity layer, no preprocess). */
__attribute__((unused)) static xd_model_t *fx_linear(size_t d, const double *w, double c) {
  fx_layer_t L = {d, 1, w, &c, XD_ACT_IDENTITY};
  return fx_build(XD_TASK_REGRESSION, d, NULL, 0, &L, 1, NULL, NULL, NULL, NULL, 0);
}

/* Loads models/<name>/model.json (tests run from the repository root). */
__attribute__((unused)) static xd_model_t *fx_demo(const char *name) {
  char path[256];
  snprintf(path, sizeof path, "models/%s/model.json", name);
  xd_model_t *m = NULL;
  xd_error_t err;
  xd_error_clear(&err);
  if (xd_bundle_load_file(path, &m, NULL, &err) != XD_OK) {
    fprintf(stderr, "fx_demo(%s): %s: %s\n", name, err.field, err.text);
    return NULL;
  }
  return m;
}

/* Fills X (n, d) with N(mu_j, sd_j) draws. */
__attribute__((unused)) static void fx_normal(xd_rng_t *r, double *X, size_t n, size_t d, const double *mu, const double *sd) {
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < d; j++) X[i * d + j] = (mu ? mu[j] : 0) + (sd ? sd[j] : 1) * xd_rng_normal(r);
}

#endif
