/* gs_fixtures.h — small models built directly with xd_model_spec_t for test_gradient.c
 * and test_shap.c: random dense networks over numeric and categorical features, with a
 * preprocess and a background, so closed forms can be checked against the layer weights
 * read back with xd_model_dense_layers. Header-only (static helpers). */
#ifndef XD_TESTS_GS_FIXTURES_H
#define XD_TESTS_GS_FIXTURES_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/model.h"
#include "core/rng.h"

#define GS_UNUSED __attribute__((unused))

typedef struct gs_net {
  xd_task_t task;
  size_t d;              /* raw features */
  const size_t *cats;    /* (d) categories per feature, 0 = numeric; NULL: all numeric */
  size_t n_layers;
  const size_t *hidden;  /* (n_layers-1) hidden widths */
  xd_act_t act;          /* hidden activation */
  xd_act_t out_act;      /* last layer */
  size_t n_out;          /* last layer width */
  double wscale;         /* weight std (default 1) */
  size_t n_bg;           /* background rows (random), 0 = none */
  int preprocess;        /* random mean/scale for numeric features */
  uint64_t seed;
} gs_net_t;

/* A raw row of the net's features: numeric ~ mean + scale·N(0,1), categorical uniform. */
static GS_UNUSED void gs_row(const gs_net_t *g, const double *mean, const double *scale, xd_rng_t *r, double *x) {
  for (size_t j = 0; j < g->d; j++) {
    if (g->cats && g->cats[j]) x[j] = (double)xd_rng_below(r, g->cats[j]);
    else x[j] = (mean ? mean[j] : 0) + (scale ? scale[j] : 1) * xd_rng_normal(r);
  }
}

static GS_UNUSED xd_model_t *gs_build(const gs_net_t *g) {
  xd_rng_t r;
  xd_rng_seed(&r, g->seed);
  xd_model_spec_t s;
  memset(&s, 0, sizeof s);
  s.task = g->task;
  s.n_features = g->d;
  s.features = xd_calloc(g->d, sizeof *s.features);
  size_t n_in = 0;
  for (size_t j = 0; j < g->d; j++) {
    char nm[24];
    snprintf(nm, sizeof nm, "f%zu", j);
    s.features[j].name = xd_strdup(nm);
    size_t k = g->cats ? g->cats[j] : 0;
    if (k) {
      s.features[j].kind = XD_FEAT_CATEGORICAL;
      s.features[j].n_categories = k;
      s.features[j].categories = xd_calloc(k, sizeof(char *));
      for (size_t c = 0; c < k; c++) {
        snprintf(nm, sizeof nm, "v%zu", c);
        s.features[j].categories[c] = xd_strdup(nm);
      }
    }
    n_in += k ? k : 1;
  }
  if (g->task == XD_TASK_CLASSIFICATION) {
    s.n_classes = g->out_act == XD_ACT_SIGMOID ? 2 : g->n_out;
    s.classes = xd_calloc(s.n_classes, sizeof *s.classes);
    for (size_t c = 0; c < s.n_classes; c++) {
      char nm[24];
      snprintf(nm, sizeof nm, "c%zu", c);
      s.classes[c] = xd_strdup(nm);
    }
  }
  double *mean = NULL, *scale = NULL;
  if (g->preprocess) {
    s.pre_mean = xd_calloc(g->d, sizeof *s.pre_mean);
    s.pre_scale = xd_calloc(g->d, sizeof *s.pre_scale);
    for (size_t j = 0; j < g->d; j++) {
      int cat = g->cats && g->cats[j];
      s.pre_mean[j] = cat ? 0 : 3 * xd_rng_normal(&r);
      s.pre_scale[j] = cat ? 1 : 0.5 + 2 * xd_rng_uniform(&r);
    }
    mean = s.pre_mean;
    scale = s.pre_scale;
  }
  s.n_layers = g->n_layers;
  s.layers = xd_calloc(g->n_layers, sizeof *s.layers);
  double ws = g->wscale > 0 ? g->wscale : 1;
  size_t prev = n_in;
  for (size_t l = 0; l < g->n_layers; l++) {
    xd_layer_spec_t *L = &s.layers[l];
    L->in = prev;
    L->out = l + 1 == g->n_layers ? g->n_out : g->hidden[l];
    L->act = l + 1 == g->n_layers ? g->out_act : g->act;
    L->weights = xd_malloc(L->in * L->out * sizeof(double));
    L->bias = xd_malloc(L->out * sizeof(double));
    for (size_t i = 0; i < L->in * L->out; i++) L->weights[i] = ws * xd_rng_normal(&r) / sqrt((double)L->in);
    for (size_t i = 0; i < L->out; i++) L->bias[i] = 0.3 * xd_rng_normal(&r);
    prev = L->out;
  }
  if (g->n_bg) {
    s.background.n = g->n_bg;
    s.background.d = g->d;
    s.background.X = xd_malloc(g->n_bg * g->d * sizeof(double));
    for (size_t i = 0; i < g->n_bg; i++) gs_row(g, mean, scale, &r, s.background.X + i * g->d);
  }
  xd_model_t *m = NULL;
  xd_error_t err;
  if (xd_model_new(&s, &m, &err) != XD_OK) fprintf(stderr, "gs_build: %s: %s\n", err.field, err.text);
  return m;
}

/* Raw rows near the model's own preprocess (or N(0,1)). */
static GS_UNUSED void gs_rows(const xd_model_t *m, const gs_net_t *g, size_t n, uint64_t seed, double *X) {
  xd_rng_t r;
  xd_rng_seed(&r, seed);
  double mean[64], scale[64];
  for (size_t j = 0; j < g->d; j++) mean[j] = xd_model_pre_mean(m, j), scale[j] = xd_model_pre_scale(m, j);
  for (size_t i = 0; i < n; i++) gs_row(g, mean, scale, &r, X + i * g->d);
}

#endif
