/* limits.h — what one request may ask for; set from the server configuration and
 * checked by every decoder before it allocates. */
#ifndef XD_API_LIMITS_H
#define XD_API_LIMITS_H

#include <stddef.h>
#include <stdint.h>

typedef struct xd_limits {
  size_t max_rows;          /* instances per request (default 10000) */
  size_t max_samples;       /* LIME num_samples, SmoothGrad samples (default 100000) */
  size_t max_steps;         /* IG steps (default 1024) */
  uint64_t max_work_rows;   /* model rows one request may evaluate (default 50,000,000) */
  size_t max_background;    /* background rows for SHAP / data rows (default 10000) */
  size_t max_nsamples;      /* Kernel SHAP coalitions (default 100000) */
  size_t max_repeats;       /* LIME repeats, permutation n_repeats (default 100) */
  size_t max_grid;          /* PDP grid_resolution (default 1000) */
  size_t max_train_rows;    /* rows of a training CSV (default 100000) */
  size_t train_background;  /* background rows kept with a trained model (default 1000) */
  size_t max_work_memory;   /* bytes of working memory one graph-model run may use (default
                               1 GiB); set on each model as it is loaded (api/store.c) */
} xd_limits_t;

/* Fills l with the defaults above. */
void xd_limits_default(xd_limits_t *l);

#endif
