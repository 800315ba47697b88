/* train.c — CSV -> schema -> split -> standardized, encoded matrices -> mini-batch Adam
 * (core/train_net.c) -> an xd_model_spec_t and the run's metrics.
 *
 * The steps, in order (docs/training.md has the user's view):
 *   1. options and the CSV header are checked (bounds, unique non-empty names);
 *   2. each column is typed: numeric when every cell is a finite number, else
 *      categorical with its distinct values sorted bytewise (strcmp) as categories;
 *      the target gives the task (unless the options give it) and the sorted classes;
 *   3. the rows are split by a seeded permutation (xd_train_split);
 *   4. means and population standard deviations of the numeric features (and of a
 *      regression target) are learned on the training rows only, as scikit-learn's
 *      StandardScaler does, so validation rows never leak into the model;
 *   5. the training rows are encoded once into a dense (n_train, n_inputs) matrix and
 *      trained on in shuffled mini-batches; every buffer is allocated before epoch 1;
 *   6. the network becomes layers of the spec (the regression scaling folded into the
 *      last layer), with preprocess, features, classes and the background sample.
 */
#include "core/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "core/train_net.h"

/* Values of all encoded matrices together, and parameters of the network: bounds on
 * memory (8 bytes each; parameters are kept four times: value, gradient, two moments). */
#define MAX_ENCODED_VALUES ((size_t)1 << 26)
#define MAX_PARAMS ((size_t)1 << 24)
#define MAX_SCRATCH_VALUES ((size_t)1 << 26)
/* Rows per evaluation chunk when the mini-batch is smaller. */
#define EVAL_ROWS 256

/* ---- options ---------------------------------------------------------------------------- */

void xd_train_options_init(xd_train_options_t *opt) {
  memset(opt, 0, sizeof *opt);
  opt->task = XD_TRAIN_TASK_AUTO;
  opt->activation = XD_ACT_RELU;
  opt->epochs = 200;
  opt->batch_size = 32;
  opt->learning_rate = 1e-3;
  opt->l2 = 1e-4;
  opt->validation_split = 0.2;
  opt->max_rows = XD_TRAIN_DEFAULT_MAX_ROWS;
  opt->max_background = XD_TRAIN_DEFAULT_MAX_BACKGROUND;
}

int xd_train_options_check(const xd_train_options_t *o, xd_error_t *err) {
  if (!o->target || !o->target[0]) return xd_error_set(err, XD_EINVAL, "target", "the target column is required");
  if (o->task != XD_TRAIN_TASK_AUTO && o->task != XD_TASK_CLASSIFICATION && o->task != XD_TASK_REGRESSION)
    return xd_error_set(err, XD_EINVAL, "task", "must be \"classification\" or \"regression\" (or absent)");
  if (o->n_hidden > XD_TRAIN_MAX_HIDDEN)
    return xd_error_set(err, XD_EINVAL, "hidden", "at most %d hidden layers, got %zu", XD_TRAIN_MAX_HIDDEN,
                        o->n_hidden);
  for (size_t l = 0; l < o->n_hidden; l++)
    if (o->hidden[l] < 1 || o->hidden[l] > XD_TRAIN_MAX_WIDTH) {
      char f[32];
      snprintf(f, sizeof f, "hidden[%zu]", l);
      return xd_error_set(err, XD_EINVAL, f, "a layer has 1 to %d units, got %zu", XD_TRAIN_MAX_WIDTH, o->hidden[l]);
    }
  switch (o->activation) {
  case XD_ACT_IDENTITY: case XD_ACT_RELU: case XD_ACT_LEAKY_RELU: case XD_ACT_TANH: case XD_ACT_SIGMOID:
  case XD_ACT_SOFTPLUS: case XD_ACT_GELU: case XD_ACT_GELU_ERF: break;
  default:
    return xd_error_set(err, XD_EINVAL, "activation",
                        "must be one of identity, relu, leaky_relu, tanh, sigmoid, softplus, gelu, gelu_erf");
  }
  if (o->epochs < 1 || o->epochs > XD_TRAIN_MAX_EPOCHS)
    return xd_error_set(err, XD_EINVAL, "epochs", "must be between 1 and %d", XD_TRAIN_MAX_EPOCHS);
  if (o->patience > XD_TRAIN_MAX_EPOCHS)
    return xd_error_set(err, XD_EINVAL, "patience", "must be between 0 and %d", XD_TRAIN_MAX_EPOCHS);
  if (o->patience > 0 && !(o->validation_split > 0))
    return xd_error_set(err, XD_EINVAL, "patience", "early stopping needs held-out rows: set validation_split > 0");
  if (o->batch_size < 1 || o->batch_size > XD_TRAIN_MAX_BATCH)
    return xd_error_set(err, XD_EINVAL, "batch_size", "must be between 1 and %d", XD_TRAIN_MAX_BATCH);
  if (!(o->learning_rate > 0 && o->learning_rate <= 10))
    return xd_error_set(err, XD_EINVAL, "learning_rate", "must be a number in (0, 10]");
  if (!(o->l2 >= 0 && o->l2 <= 1e3)) return xd_error_set(err, XD_EINVAL, "l2", "must be a number in [0, 1000]");
  if (!(o->validation_split >= 0 && o->validation_split <= 0.9))
    return xd_error_set(err, XD_EINVAL, "validation_split", "must be a number in [0, 0.9]");
  if (o->max_rows < 2) return xd_error_set(err, XD_EINVAL, "max_rows", "must be at least 2");
  if (o->max_background > XD_TRAIN_MAX_BACKGROUND)
    return xd_error_set(err, XD_EINVAL, "max_background", "must be at most %d", XD_TRAIN_MAX_BACKGROUND);
  return XD_OK;
}

/* ---- the split ------------------------------------------------------------------------------ */

size_t xd_train_n_validation(size_t n, double validation_split) {
  if (n < 2 || !(validation_split > 0)) return 0;
  size_t v = (size_t)floor((double)n * validation_split + 0.5);
  if (v < 1) v = 1;
  if (v > n - 1) v = n - 1;
  return v;
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

size_t xd_train_split(size_t n, double validation_split, uint64_t seed, size_t *val_rows) {
  size_t nv = xd_train_n_validation(n, validation_split);
  if (nv == 0) return 0;
  size_t *perm = xd_malloc(n * sizeof *perm);
  if (!perm) return (size_t)-1;
  for (size_t i = 0; i < n; i++) perm[i] = i;
  xd_rng_t r;
  xd_rng_seed_stream(&r, seed, XD_TRAIN_STREAM_SPLIT);
  xd_rng_shuffle(&r, perm, n);
  memcpy(val_rows, perm, nv * sizeof *val_rows);
  qsort(val_rows, nv, sizeof *val_rows, cmp_size);
  xd_free(perm);
  return nv;
}

/* ---- the table: column types, categories, classes ---------------------------------------- */

typedef struct column {
  int categorical;
  size_t n_cat;
  const char **cats; /* sorted distinct cells (borrowed from the CSV) */
} column_t;

typedef struct table {
  size_t n, n_cols, tcol;
  column_t *cols;    /* n_cols; the target's entry describes the target */
  xd_task_t task;
  size_t n_classes;
  int numeric_classes;
  double *class_vals; /* numeric classes, sorted */
  double *X;          /* (n, d) raw values: numbers or category codes, feature order */
  double *y;          /* (n) class index or value */
  size_t d;           /* features = n_cols - 1 */
} table_t;

static void table_deinit(table_t *t) {
  if (t->cols)
    for (size_t c = 0; c < t->n_cols; c++) xd_free(t->cols[c].cats);
  xd_free(t->cols);
  xd_free(t->class_vals);
  xd_free(t->X);
  xd_free(t->y);
  memset(t, 0, sizeof *t);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Sorted distinct cells of column c into a new array (*out, *k). scratch has n slots. */
static int distinct_cells(const xd_csv_t *csv, size_t c, const char **scratch, const char ***out, size_t *k) {
  size_t n = csv->n_rows, u = 0;
  for (size_t i = 0; i < n; i++) scratch[i] = csv->rows[i][c];
  qsort(scratch, n, sizeof *scratch, cmp_str);
  for (size_t i = 0; i < n; i++)
    if (u == 0 || strcmp(scratch[u - 1], scratch[i]) != 0) scratch[u++] = scratch[i];
  *out = xd_malloc(u * sizeof **out);
  if (!*out) return XD_ENOMEM;
  memcpy(*out, scratch, u * sizeof **out);
  *k = u;
  return XD_OK;
}

static size_t code_of(const column_t *col, const char *cell) {
  const char **hit = bsearch(&cell, col->cats, col->n_cat, sizeof *col->cats, cmp_str);
  return (size_t)(hit - col->cats);
}

static int blank(const char *s) {
  while (*s == ' ' || *s == '\t') s++;
  return *s == '\0';
}

/* Steps 1 and 2: checks the header and the cells, types every column, infers the task
 * and fills t->X (raw feature values) and t->y (class indices or values). */
static int build_table(const xd_csv_t *csv, const xd_train_options_t *o, table_t *t, xd_error_t *err) {
  char f[XD_ERROR_FIELD_MAX];
  const char **scratch = NULL;
  double *vals = NULL;
  int rc = XD_OK;
  memset(t, 0, sizeof *t);
  t->n = csv->n_rows;
  t->n_cols = csv->n_cols;
  if (csv->n_cols > XD_TRAIN_MAX_COLUMNS)
    return xd_error_set(err, XD_ETOOBIG, "csv", "at most %d columns, got %zu", XD_TRAIN_MAX_COLUMNS, csv->n_cols);
  if (t->n > o->max_rows)
    return xd_error_set(err, XD_ETOOBIG, "csv", "at most %zu data rows, got %zu", o->max_rows, t->n);
  if (t->n < 2) return xd_error_set(err, XD_EINVAL, "csv", "at least 2 data rows are needed, got %zu", t->n);
  t->tcol = (size_t)-1;
  for (size_t c = 0; c < csv->n_cols; c++) {
    const char *h = csv->header[c];
    snprintf(f, sizeof f, "csv.%.100s", h);
    if (!h[0] || strlen(h) > XD_TRAIN_MAX_NAME)
      return xd_error_set(err, XD_EINVAL, "csv", "column %zu: a column name has 1 to %d bytes", c + 1,
                          XD_TRAIN_MAX_NAME);
    for (size_t b = 0; b < c; b++)
      if (strcmp(csv->header[b], h) == 0) return xd_error_set(err, XD_EINVAL, f, "column '%s' appears twice", h);
    if (strcmp(h, o->target) == 0) t->tcol = c;
  }
  if (t->tcol == (size_t)-1)
    return xd_error_set(err, XD_EINVAL, "target", "column '%.200s' is not in the CSV header", o->target);
  if (csv->n_cols < 2) return xd_error_set(err, XD_EINVAL, "csv", "no feature columns besides the target");
  t->d = csv->n_cols - 1;
  t->cols = xd_calloc(csv->n_cols, sizeof *t->cols);
  scratch = xd_malloc(t->n * sizeof *scratch);
  vals = xd_malloc(t->n * sizeof *vals);
  t->X = xd_malloc(xd_mul_size(t->n, t->d) * sizeof *t->X);
  t->y = xd_malloc(t->n * sizeof *t->y);
  if (!t->cols || !scratch || !vals || !t->X || !t->y) {
    rc = xd_error_set(err, XD_ENOMEM, "csv", "out of memory reading the table");
    goto done;
  }
  for (size_t c = 0; c < csv->n_cols; c++) {
    const char *h = csv->header[c];
    column_t *col = &t->cols[c];
    int is_target = c == t->tcol;
    for (size_t i = 0; i < t->n; i++) {
      const char *cell = csv->rows[i][c];
      if (blank(cell)) {
        snprintf(f, sizeof f, "csv[%zu].%.100s", i, h);
        rc = xd_error_set(err, XD_EINVAL, f, "empty cell: missing values are not supported");
        goto done;
      }
      if (!col->categorical && xd_parse_number(cell, &vals[i]) != 0) col->categorical = 1;
    }
    if (!col->categorical) { /* numeric: a numeric target's classes, if any, come below */
      if (is_target) memcpy(t->y, vals, t->n * sizeof *vals);
      continue;
    }
    if (is_target && o->task == XD_TASK_REGRESSION) {
      rc = xd_error_set(err, XD_EINVAL, "target", "regression needs a numeric target, column '%s' is not", h);
      goto done;
    }
    for (size_t i = 0; i < t->n; i++)
      if (strlen(csv->rows[i][c]) > XD_TRAIN_MAX_NAME) {
        snprintf(f, sizeof f, "csv[%zu].%.100s", i, h);
        rc = xd_error_set(err, XD_EINVAL, f, "a %s name has at most %d bytes", is_target ? "class" : "category",
                          XD_TRAIN_MAX_NAME);
        goto done;
      }
    if ((rc = distinct_cells(csv, c, scratch, &col->cats, &col->n_cat)) != XD_OK) {
      xd_error_set(err, rc, "csv", "out of memory reading the table");
      goto done;
    }
    size_t lim = is_target ? XD_TRAIN_MAX_CLASSES : XD_TRAIN_MAX_CATEGORIES;
    snprintf(f, sizeof f, "csv.%.100s", h);
    if (col->n_cat > lim) {
      rc = xd_error_set(err, XD_ETOOBIG, is_target ? "target" : f,
                        "column '%s' has %zu distinct values, at most %zu allowed", h, col->n_cat, lim);
      goto done;
    }
    if (col->n_cat < 2) {
      rc = xd_error_set(err, XD_EINVAL, is_target ? "target" : f,
                        "column '%s' has a single value ('%.100s'): it carries no information", h, col->cats[0]);
      goto done;
    }
  }
  /* The target: task and classes. */
  column_t *tc = &t->cols[t->tcol];
  if (tc->categorical) {
    t->task = XD_TASK_CLASSIFICATION;
    t->n_classes = tc->n_cat;
    for (size_t i = 0; i < t->n; i++) t->y[i] = (double)code_of(tc, csv->rows[i][t->tcol]);
  } else {
    /* Numeric target: its distinct values decide the task unless the options do. */
    memcpy(vals, t->y, t->n * sizeof *vals);
    qsort(vals, t->n, sizeof *vals, cmp_double);
    size_t u = 0;
    int integers = 1;
    for (size_t i = 0; i < t->n; i++) {
      if (vals[i] != floor(vals[i])) integers = 0;
      if (u == 0 || vals[u - 1] != vals[i]) vals[u++] = vals[i];
    }
    if (o->task == XD_TRAIN_TASK_AUTO)
      t->task = integers && u <= XD_TRAIN_MAX_INT_CLASSES ? XD_TASK_CLASSIFICATION : XD_TASK_REGRESSION;
    else
      t->task = (xd_task_t)o->task;
    if (t->task == XD_TASK_CLASSIFICATION) {
      if (u < 2 || u > XD_TRAIN_MAX_CLASSES) {
        rc = xd_error_set(err, u < 2 ? XD_EINVAL : XD_ETOOBIG, "target",
                          "classification needs 2 to %d distinct target values, column '%s' has %zu",
                          XD_TRAIN_MAX_CLASSES, csv->header[t->tcol], u);
        goto done;
      }
      t->numeric_classes = 1;
      t->n_classes = u;
      t->class_vals = xd_malloc(u * sizeof *t->class_vals);
      if (!t->class_vals) {
        rc = xd_error_set(err, XD_ENOMEM, "target", "out of memory");
        goto done;
      }
      memcpy(t->class_vals, vals, u * sizeof *vals);
      for (size_t i = 0; i < t->n; i++) {
        const double *hit = bsearch(&t->y[i], t->class_vals, u, sizeof *vals, cmp_double);
        t->y[i] = (double)(hit - t->class_vals);
      }
    }
  }
  /* Raw feature values in feature order (the CSV's column order without the target). */
  for (size_t c = 0, j = 0; c < csv->n_cols; c++) {
    if (c == t->tcol) continue;
    const column_t *col = &t->cols[c];
    for (size_t i = 0; i < t->n; i++) {
      double v = 0;
      if (col->categorical)
        v = (double)code_of(col, csv->rows[i][c]);
      else
        xd_parse_number(csv->rows[i][c], &v); /* checked above */
      t->X[i * t->d + j] = v;
    }
    j++;
  }
done:
  xd_free(scratch);
  xd_free(vals);
  if (rc != XD_OK) table_deinit(t);
  return rc;
}

/* ---- encoding ---------------------------------------------------------------------------- */

/* The encoding of the model (core/model.c): numeric (x − mean)/scale, categorical one-hot,
 * in feature order. Raw rows X[rows[i]] (d) -> E (n, n_in). */
static void encode_rows(const table_t *t, const double *mean, const double *scale, const size_t *rows, size_t n,
                        size_t n_in, double *E) {
  for (size_t i = 0; i < n; i++) {
    const double *x = t->X + rows[i] * t->d;
    double *e = E + i * n_in;
    size_t o = 0;
    for (size_t c = 0, j = 0; c < t->n_cols; c++) {
      if (c == t->tcol) continue;
      const column_t *col = &t->cols[c];
      if (col->categorical) {
        for (size_t k = 0; k < col->n_cat; k++) e[o + k] = 0;
        e[o + (size_t)x[j]] = 1;
        o += col->n_cat;
      } else {
        e[o++] = (x[j] - mean[j]) / scale[j];
      }
      j++;
    }
  }
}

/* Mean and population standard deviation of v over rows (two passes: the one-pass formula
 * loses every digit when the mean is large next to the spread). A zero spread scales by 1,
 * as StandardScaler does. */
static void standardize(const double *v, size_t stride, const size_t *rows, size_t n, double *mean, double *scale) {
  double s = 0, q = 0;
  for (size_t i = 0; i < n; i++) s += v[rows[i] * stride];
  double m = s / (double)n;
  for (size_t i = 0; i < n; i++) {
    double dv = v[rows[i] * stride] - m;
    q += dv * dv;
  }
  double sd = sqrt(q / (double)n);
  *mean = m;
  *scale = sd > 0 && isfinite(sd) ? sd : 1.0;
}

/* ---- metrics ---------------------------------------------------------------------------- */

/* Data loss summed over E (n, n_in), y (n), in chunks of the net's scratch rows. */
static double evaluate(xd_train_net_t *net, const double *E, const double *y, size_t n, size_t *correct) {
  double sum = 0;
  if (correct) *correct = 0;
  for (size_t s = 0; s < n; s += net->max_rows) {
    size_t c = n - s < net->max_rows ? n - s : net->max_rows;
    xd_train_net_forward(net, E + s * net->dim[0], c);
    sum += xd_train_net_loss(net, y + s, c, correct);
  }
  return sum;
}

/* Accuracy, or R² = 1 − SSE/SST (sse in the units of y; 1 or 0 when y is constant, as
 * scikit-learn's r2_score). */
static double metric(xd_task_t task, size_t correct, double sse, const double *y, size_t n) {
  if (task == XD_TASK_CLASSIFICATION) return (double)correct / (double)n;
  double m = 0, sst = 0;
  for (size_t i = 0; i < n; i++) m += y[i];
  m /= (double)n;
  for (size_t i = 0; i < n; i++) sst += (y[i] - m) * (y[i] - m);
  if (sst == 0) return sse == 0 ? 1.0 : 0.0;
  return 1.0 - sse / sst;
}

/* The epochs: mini-batch Adam over the training rows in a fresh seeded order each epoch,
 * the validation loss after each. Uses only the buffers in dt and the net's scratch. */
typedef struct data {
  const double *E_tr, *y_tr; /* (nt, n_in), (nt) */
  size_t nt;
  const double *E_va, *y_va; /* (nv, n_in), (nv) */
  size_t nv;
  double *Xb, *yb; /* one gathered mini-batch: (batch_size, n_in), (batch_size) */
  size_t *order;   /* (nt) permutation of the training rows */
  double *best;    /* (n_params) the best epoch's parameters (patience > 0), else NULL */
} data_t;

static int fit(xd_train_net_t *net, const data_t *dt, const xd_train_options_t *o, double loss_unit,
               const xd_cancel_t *cancel, xd_train_result_t *res, xd_error_t *err) {
  xd_rng_t rng_init, rng_shuffle;
  const size_t bs = o->batch_size, n_in = net->dim[0], nt = dt->nt;
  int rc;
  xd_rng_seed_stream(&rng_init, o->seed, XD_TRAIN_STREAM_INIT);
  xd_rng_seed_stream(&rng_shuffle, o->seed, XD_TRAIN_STREAM_SHUFFLE);
  xd_train_net_init_weights(net, &rng_init);
  for (size_t i = 0; i < nt; i++) dt->order[i] = i;
  for (size_t e = 0; e < o->epochs; e++) {
    if ((rc = xd_cancel_check(cancel)) != XD_OK) goto stopped;
    xd_rng_shuffle(&rng_shuffle, dt->order, nt);
    double sum = 0;
    for (size_t s = 0, b = 0; s < nt; s += bs, b++) {
      /* every mini-batch: one of a wide network takes tens of ms, the check tens of ns */
      if (b > 0 && (rc = xd_cancel_check(cancel)) != XD_OK) goto stopped;
      size_t nb = nt - s < bs ? nt - s : bs;
      /* Gather the batch's rows into one contiguous block so each layer is one GEMM. */
      for (size_t i = 0; i < nb; i++) {
        memcpy(dt->Xb + i * n_in, dt->E_tr + dt->order[s + i] * n_in, n_in * sizeof *dt->Xb);
        dt->yb[i] = dt->y_tr[dt->order[s + i]];
      }
      sum += xd_train_net_loss_grad(net, dt->Xb, dt->yb, nb, o->l2) * (double)nb;
      xd_train_net_adam_step(net, o->learning_rate);
    }
    res->train_loss[e] = sum / (double)nt * loss_unit;
    if (dt->nv) res->val_loss[e] = evaluate(net, dt->E_va, dt->y_va, dt->nv, NULL) / (double)dt->nv * loss_unit;
    res->epochs = e + 1;
    if (!isfinite(res->train_loss[e]))
      return xd_error_set(err, XD_EINVAL, "learning_rate",
                          "training diverged (the loss is not finite after epoch %zu): lower the learning rate", e + 1);
    /* Early stopping (Keras' EarlyStopping(patience, restore_best_weights=True) with
     * min_delta 0): the epoch with the lowest validation loss so far is kept; after
     * `patience` epochs without a strictly lower one, training stops. */
    if (dt->best) {
      if (res->best_epoch == 0 || res->val_loss[e] < res->val_loss[res->best_epoch - 1]) {
        res->best_epoch = e + 1;
        memcpy(dt->best, net->params, net->n_params * sizeof *dt->best);
      } else if (e + 1 - res->best_epoch >= o->patience) {
        break;
      }
    }
  }
  if (dt->best) memcpy(net->params, dt->best, net->n_params * sizeof *dt->best);
  return XD_OK;
stopped:
  return xd_error_set(err, rc, NULL, "training stopped after %zu of %zu epochs: %s", res->epochs, o->epochs,
                      rc == XD_ETIMEDOUT ? "deadline exceeded" : "canceled");
}

/* ---- the spec ----------------------------------------------------------------------------- */

/* A class name for a numeric class value: the shortest of %.15g / %.17g that reads back
 * as the same double ("1", "2.5"). */
static char *number_name(double v) {
  char b[40];
  snprintf(b, sizeof b, "%.15g", v);
  if (strtod(b, NULL) != v) snprintf(b, sizeof b, "%.17g", v);
  return xd_strdup(b);
}

/* Everything of the spec but the layers: features, classes, preprocess, background. */
static int fill_spec(const xd_csv_t *csv, const table_t *t, const double *mean, const double *scale,
                     const size_t *bg_rows, size_t n_bg, xd_model_spec_t *s) {
  s->task = t->task;
  s->n_features = t->d;
  s->features = xd_calloc(t->d, sizeof *s->features);
  s->pre_mean = xd_malloc(t->d * sizeof *s->pre_mean);
  s->pre_scale = xd_malloc(t->d * sizeof *s->pre_scale);
  if (!s->features || !s->pre_mean || !s->pre_scale) return XD_ENOMEM;
  for (size_t c = 0, j = 0; c < t->n_cols; c++) {
    if (c == t->tcol) continue;
    const column_t *col = &t->cols[c];
    xd_feature_t *ft = &s->features[j];
    if (!(ft->name = xd_strdup(csv->header[c]))) return XD_ENOMEM;
    s->pre_mean[j] = col->categorical ? 0.0 : mean[j];
    s->pre_scale[j] = col->categorical ? 1.0 : scale[j];
    if (col->categorical) {
      ft->kind = XD_FEAT_CATEGORICAL;
      if (!(ft->categories = xd_calloc(col->n_cat, sizeof *ft->categories))) return XD_ENOMEM;
      for (size_t k = 0; k < col->n_cat; k++) {
        if (!(ft->categories[k] = xd_strdup(col->cats[k]))) return XD_ENOMEM;
        ft->n_categories = k + 1;
      }
    }
    j++;
  }
  if (t->task == XD_TASK_CLASSIFICATION) {
    if (!(s->classes = xd_calloc(t->n_classes, sizeof *s->classes))) return XD_ENOMEM;
    for (size_t k = 0; k < t->n_classes; k++) {
      s->classes[k] = t->numeric_classes ? number_name(t->class_vals[k]) : xd_strdup(t->cols[t->tcol].cats[k]);
      if (!s->classes[k]) return XD_ENOMEM;
      s->n_classes = k + 1;
    }
  }
  if (n_bg > 0) {
    xd_dataset_t *bg = &s->background;
    bg->X = xd_malloc(xd_mul_size(n_bg, t->d) * sizeof *bg->X);
    bg->y = xd_malloc(n_bg * sizeof *bg->y);
    if (!bg->X || !bg->y) return XD_ENOMEM;
    bg->n = n_bg;
    bg->d = t->d;
    for (size_t i = 0; i < n_bg; i++) {
      memcpy(bg->X + i * t->d, t->X + bg_rows[i] * t->d, t->d * sizeof *bg->X);
      bg->y[i] = t->y[bg_rows[i]];
    }
  }
  return XD_OK;
}

/* The trained parameters as spec layers. A regression net learned y' = (y − ym)/ys, so
 * its last layer becomes W' = ys·W, b' = ys·b + ym and the model predicts y itself. */
static int fill_layers(const xd_train_net_t *net, double ym, double ys, xd_model_spec_t *s) {
  s->layers = xd_calloc(net->n_layers, sizeof *s->layers);
  if (!s->layers) return XD_ENOMEM;
  s->n_layers = net->n_layers;
  for (size_t l = 0; l < net->n_layers; l++) {
    xd_layer_spec_t *L = &s->layers[l];
    int last = l + 1 == net->n_layers;
    L->in = net->dim[l];
    L->out = net->dim[l + 1];
    L->act = last ? (net->softmax ? XD_ACT_SOFTMAX : XD_ACT_IDENTITY) : net->act;
    L->weights = xd_malloc(L->in * L->out * sizeof *L->weights);
    L->bias = xd_malloc(L->out * sizeof *L->bias);
    if (!L->weights || !L->bias) return XD_ENOMEM;
    memcpy(L->weights, net->params + net->w_off[l], L->in * L->out * sizeof *L->weights);
    memcpy(L->bias, net->params + net->b_off[l], L->out * sizeof *L->bias);
    if (last && !net->softmax) {
      for (size_t i = 0; i < L->in * L->out; i++) L->weights[i] *= ys;
      for (size_t i = 0; i < L->out; i++) L->bias[i] = ys * L->bias[i] + ym;
    }
  }
  return XD_OK;
}

/* ---- training ------------------------------------------------------------------------------ */

void xd_train_result_deinit(xd_train_result_t *res) {
  if (!res) return;
  xd_free(res->train_loss);
  xd_free(res->val_loss);
  xd_free(res->val_rows);
  memset(res, 0, sizeof *res);
}

int xd_train_csv(const xd_csv_t *csv, const xd_train_options_t *o, const xd_cancel_t *cancel,
                 xd_model_spec_t *spec, xd_train_result_t *res, xd_error_t *err) {
  table_t t;
  xd_train_net_t net;
  size_t *tr_rows = NULL, *order = NULL, *bg_rows = NULL;
  double *mean = NULL, *scale = NULL, *E_tr = NULL, *E_va = NULL, *y_tr = NULL, *y_va = NULL;
  double *Xb = NULL, *yb = NULL, *best = NULL;
  int rc;
  memset(spec, 0, sizeof *spec);
  memset(res, 0, sizeof *res);
  memset(&t, 0, sizeof t);
  memset(&net, 0, sizeof net);
  if ((rc = xd_train_options_check(o, err)) != XD_OK) return rc;
  if ((rc = build_table(csv, o, &t, err)) != XD_OK) return rc;
  const int cls = t.task == XD_TASK_CLASSIFICATION;
  const size_t n = t.n, d = t.d;

  /* Step 3: the split. val_rows ascending, tr_rows the rest ascending. */
  size_t nv_max = xd_train_n_validation(n, o->validation_split);
  res->val_rows = xd_malloc((nv_max ? nv_max : 1) * sizeof *res->val_rows);
  tr_rows = xd_malloc(n * sizeof *tr_rows);
  if (!res->val_rows || !tr_rows) goto nomem;
  size_t nv = xd_train_split(n, o->validation_split, o->seed, res->val_rows);
  if (nv == (size_t)-1) goto nomem;
  size_t nt = 0;
  for (size_t i = 0, k = 0; i < n; i++) {
    if (k < nv && res->val_rows[k] == i)
      k++;
    else
      tr_rows[nt++] = i;
  }

  /* Step 4: standardization on the training rows. */
  mean = xd_malloc((d + 1) * sizeof *mean);
  scale = xd_malloc((d + 1) * sizeof *scale);
  if (!mean || !scale) goto nomem;
  size_t n_in = 0;
  for (size_t c = 0, j = 0; c < t.n_cols; c++) {
    if (c == t.tcol) continue;
    mean[j] = 0;
    scale[j] = 1;
    if (t.cols[c].categorical)
      n_in += t.cols[c].n_cat;
    else {
      standardize(t.X + j, d, tr_rows, nt, &mean[j], &scale[j]);
      n_in++;
    }
    j++;
  }
  double ym = 0, ys = 1;
  if (!cls) standardize(t.y, 1, tr_rows, nt, &ym, &ys);
  if (n_in > XD_TRAIN_MAX_INPUTS) {
    rc = xd_error_set(err, XD_ETOOBIG, "csv", "%zu encoded inputs (numeric columns plus categories), at most %d",
                      n_in, XD_TRAIN_MAX_INPUTS);
    goto done;
  }
  if (xd_mul_size(n, n_in) == 0 || xd_mul_size(n, n_in) > MAX_ENCODED_VALUES) {
    rc = xd_error_set(err, XD_ETOOBIG, "csv", "%zu rows of %zu encoded inputs are more than %zu values", n, n_in,
                      MAX_ENCODED_VALUES);
    goto done;
  }
  size_t n_out = cls ? t.n_classes : 1;
  size_t params = 0, units = n_out, prev = n_in;
  for (size_t l = 0; l < o->n_hidden; l++) {
    params += (prev + 1) * o->hidden[l];
    units += o->hidden[l];
    prev = o->hidden[l];
  }
  params += (prev + 1) * n_out;
  size_t rows = o->batch_size > EVAL_ROWS ? o->batch_size : EVAL_ROWS;
  if (rows > n) rows = n;
  if (params > MAX_PARAMS) {
    rc = xd_error_set(err, XD_ETOOBIG, "hidden", "the network would have %zu parameters, at most %zu", params,
                      MAX_PARAMS);
    goto done;
  }
  if (xd_mul_size(rows, units) > MAX_SCRATCH_VALUES / 4) {
    rc = xd_error_set(err, XD_ETOOBIG, "batch_size", "batch_size times the units of all layers is too large");
    goto done;
  }

  /* Step 5: every buffer of the run, then the epochs. */
  E_tr = xd_malloc(xd_mul_size(nt, n_in) * sizeof *E_tr);
  E_va = xd_malloc(xd_mul_size(nv ? nv : 1, n_in) * sizeof *E_va);
  y_tr = xd_malloc(nt * sizeof *y_tr);
  y_va = xd_malloc((nv ? nv : 1) * sizeof *y_va);
  order = xd_malloc(nt * sizeof *order);
  Xb = xd_malloc(xd_mul_size(rows, n_in) * sizeof *Xb);
  yb = xd_malloc(rows * sizeof *yb);
  res->train_loss = xd_malloc(o->epochs * sizeof *res->train_loss);
  res->val_loss = nv ? xd_malloc(o->epochs * sizeof *res->val_loss) : NULL;
  if (!E_tr || !E_va || !y_tr || !y_va || !order || !Xb || !yb || !res->train_loss || (nv && !res->val_loss))
    goto nomem;
  if (xd_train_net_init(&net, n_in, o->hidden, o->n_hidden, o->activation, n_out, cls, rows) != 0) goto nomem;
  if (o->patience > 0 && nv > 0 && !(best = xd_malloc(net.n_params * sizeof *best))) goto nomem;
  encode_rows(&t, mean, scale, tr_rows, nt, n_in, E_tr);
  encode_rows(&t, mean, scale, res->val_rows, nv, n_in, E_va);
  for (size_t i = 0; i < nt; i++) y_tr[i] = cls ? t.y[tr_rows[i]] : (t.y[tr_rows[i]] - ym) / ys;
  for (size_t i = 0; i < nv; i++) y_va[i] = cls ? t.y[res->val_rows[i]] : (t.y[res->val_rows[i]] - ym) / ys;

  /* Losses are reported in the target's units: a regression net's squared error is in
   * standardized units, ys² times smaller. */
  data_t dt = {E_tr, y_tr, nt, E_va, y_va, nv, Xb, yb, order, best};
  if ((rc = fit(&net, &dt, o, cls ? 1.0 : ys * ys, cancel, res, err)) != XD_OK) goto done;

  /* Final metrics, on the weights kept (the last epoch's, or the best one's). */
  size_t correct = 0;
  double sse = evaluate(&net, E_tr, y_tr, nt, &correct);
  res->train_metric = metric(t.task, correct, sse, y_tr, nt);
  res->val_metric = NAN;
  if (nv) {
    sse = evaluate(&net, E_va, y_va, nv, &correct);
    res->val_metric = metric(t.task, correct, sse, y_va, nv);
  }
  res->task = t.task;
  res->n_rows = n;
  res->n_train = nt;
  res->n_val = nv;
  res->n_inputs = n_in;

  /* Step 6: the spec, with the training rows (or a seeded sample) as background. */
  size_t n_bg = nt < o->max_background ? nt : o->max_background;
  bg_rows = xd_malloc((n_bg ? n_bg : 1) * sizeof *bg_rows);
  if (!bg_rows) goto nomem;
  if (n_bg < nt) {
    xd_rng_t rng_bg;
    xd_rng_seed_stream(&rng_bg, o->seed, XD_TRAIN_STREAM_BACKGROUND);
    for (size_t i = 0; i < nt; i++) order[i] = tr_rows[i];
    xd_rng_shuffle(&rng_bg, order, nt);
    memcpy(bg_rows, order, n_bg * sizeof *bg_rows);
    qsort(bg_rows, n_bg, sizeof *bg_rows, cmp_size);
  } else {
    memcpy(bg_rows, tr_rows, n_bg * sizeof *bg_rows);
  }
  if (fill_spec(csv, &t, mean, scale, bg_rows, n_bg, spec) != XD_OK || fill_layers(&net, ym, ys, spec) != XD_OK)
    goto nomem;
  rc = XD_OK;
  goto done;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory training the model");
done:
  xd_train_net_deinit(&net);
  table_deinit(&t);
  xd_free(tr_rows);
  xd_free(order);
  xd_free(bg_rows);
  xd_free(mean);
  xd_free(scale);
  xd_free(E_tr);
  xd_free(E_va);
  xd_free(y_tr);
  xd_free(y_va);
  xd_free(Xb);
  xd_free(yb);
  xd_free(best);
  if (rc != XD_OK) {
    xd_model_spec_deinit(spec);
    xd_train_result_deinit(res);
  }
  return rc;
}
