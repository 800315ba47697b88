/* train.h — training a dense network from a CSV table (docs/training.md).
 *
 * xd_train_csv turns a parsed CSV (xd_csv_t) and a few options into an xd_model_spec_t
 * that xd_model_new accepts, plus the metrics of the run:
 *   - schema: every column but the target is a feature; a column whose every cell is a
 *     finite number is numeric, any other column is categorical (its distinct values,
 *     sorted bytewise, are the categories, one-hot encoded inside the model);
 *   - task (unless given): a non-numeric target, or a numeric target whose values are all
 *     integers with at most XD_TRAIN_MAX_INT_CLASSES distinct values, is classification;
 *     any other numeric target is regression;
 *   - split: a seeded permutation of the data rows (xd_train_split); standardization and
 *     the regression target's scaling are learned on the training rows only;
 *   - network: hidden dense layers (none = logistic / linear regression) and a softmax
 *     output (classification, one unit per class, also for two classes) or an identity
 *     output (regression, trained on the standardized target and folded back);
 *   - optimizer: mini-batch Adam on (mean data loss + l2/2 · Σ‖W‖²), one GEMM per layer
 *     and per pass over each mini-batch (core/train_net.h);
 *   - background: the training rows, or a seeded sample of at most max_background.
 *
 * Determinism: for one seed, the split, the initial weights, every epoch's shuffle and
 * the background sample come from separate xd_rng_t streams of that seed, and OpenBLAS
 * runs single-threaded (xd_blas_init), so two runs on the same machine give bit-identical
 * weights. Core only: never prints; any thread (all state is the caller's).
 */
#ifndef XD_TRAIN_H
#define XD_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/dataset.h"
#include "core/dense.h"
#include "core/model.h"
#include "core/status.h"

/* ---- bounds and defaults ------------------------------------------------------------ */

#define XD_TRAIN_MAX_COLUMNS 1024      /* CSV columns, target included */
#define XD_TRAIN_MAX_HIDDEN 8          /* hidden layers */
#define XD_TRAIN_MAX_WIDTH 4096        /* units per hidden layer */
#define XD_TRAIN_MAX_EPOCHS 10000
#define XD_TRAIN_MAX_BATCH 65536
#define XD_TRAIN_MAX_CATEGORIES 1024   /* distinct values of one categorical column */
#define XD_TRAIN_MAX_CLASSES 1024
#define XD_TRAIN_MAX_INPUTS 16384      /* encoded inputs (numeric + one-hot) */
#define XD_TRAIN_MAX_NAME 256          /* bytes of a column, category or class name */
#define XD_TRAIN_MAX_INT_CLASSES 20    /* task inference: integer targets with <= this many values */
#define XD_TRAIN_DEFAULT_MAX_ROWS 100000
#define XD_TRAIN_DEFAULT_MAX_BACKGROUND 1000
#define XD_TRAIN_MAX_BACKGROUND 100000   /* what a bundle may carry inline */

#define XD_TRAIN_TASK_AUTO (-1)

/* Options; xd_train_options_init fills the defaults. The caller owns every pointer. */
typedef struct xd_train_options {
  const char *target;        /* target column name (required) */
  int task;                  /* XD_TRAIN_TASK_AUTO, XD_TASK_CLASSIFICATION or XD_TASK_REGRESSION */
  size_t n_hidden;           /* hidden layers, 0 = logistic / linear regression */
  size_t hidden[XD_TRAIN_MAX_HIDDEN];
  xd_act_t activation;       /* of the hidden layers; relu */
  size_t epochs;             /* 200 */
  size_t batch_size;         /* 32 */
  double learning_rate;      /* 1e-3 */
  double l2;                 /* 1e-4, on weights (not biases) */
  double validation_split;   /* 0.2; fraction of rows held out, in [0, 0.9] */
  size_t patience;           /* 0 = off; else stop after this many epochs without a lower
                                validation loss and keep the best epoch's weights */
  uint64_t seed;             /* 0 */
  size_t max_rows;           /* XD_TRAIN_DEFAULT_MAX_ROWS; the server's configured limit */
  size_t max_background;     /* XD_TRAIN_DEFAULT_MAX_BACKGROUND; 0 = no background */
} xd_train_options_t;

/* What a run reports. Arrays are xd_malloc'd and owned by the result
 * (xd_train_result_deinit). */
typedef struct xd_train_result {
  xd_task_t task;            /* the task trained (given or inferred) */
  size_t epochs;             /* epochs run (options.epochs, or fewer when stopped early) */
  size_t best_epoch;         /* 1-based epoch whose weights were kept (patience > 0), else 0 */
  double *train_loss;        /* (epochs) mean data loss over the epoch's mini-batches */
  double *val_loss;          /* (epochs) data loss on the validation rows after each epoch;
                                NULL when there are no validation rows */
  double train_metric;       /* final accuracy (classification) or R² (regression) */
  double val_metric;         /* the same on the validation rows; NAN without them */
  size_t n_rows;             /* data rows used (all of the CSV's) */
  size_t n_train, n_val;
  size_t *val_rows;          /* (n_val) ascending 0-based data-row indices held out */
  size_t n_inputs;           /* encoded inputs of the network */
} xd_train_result_t;

/* Fills the defaults above. */
void xd_train_options_init(xd_train_options_t *opt);

/* Checks every option against its bounds. Returns XD_OK or XD_EINVAL with err->field
 * the option's name ("hidden[2]", "learning_rate"). */
int xd_train_options_check(const xd_train_options_t *opt, xd_error_t *err);

/* Number of validation rows for n rows: round(n·split) (halves up), at least 1 when
 * split > 0, at most n-1. */
size_t xd_train_n_validation(size_t n, double validation_split);

/* The validation rows: a Fisher–Yates shuffle (xd_rng_shuffle) of 0..n-1 with the
 * generator xd_rng_seed_stream(seed, XD_TRAIN_STREAM_SPLIT); its first
 * xd_train_n_validation(n, split) entries, sorted ascending, go to val_rows (caller's
 * storage of at least that many entries). Returns the count. tools/train_reference.py
 * reproduces it. Allocates a permutation: returns (size_t)-1 when out of memory. */
size_t xd_train_split(size_t n, double validation_split, uint64_t seed, size_t *val_rows);

/* The rng streams of one seed (documented so other tools can reproduce them). */
enum { XD_TRAIN_STREAM_SPLIT = 1, XD_TRAIN_STREAM_INIT = 2, XD_TRAIN_STREAM_SHUFFLE = 3,
       XD_TRAIN_STREAM_BACKGROUND = 4 };

/* Trains on csv with opt. On XD_OK, *spec is a complete model description (task,
 * features, classes, preprocess, layers, background with targets) for xd_model_new,
 * owned by the caller (xd_model_new takes it, or xd_model_spec_deinit), and *res is
 * filled (xd_train_result_deinit). cancel (may be NULL) is checked before every mini-batch: a
 * stop returns XD_ECANCELED or XD_ETIMEDOUT and no model. On any error, *spec and *res
 * are left empty and err names the option ("epochs") or the CSV column ("csv.region",
 * "csv[12].age" for one cell, "target"). Errors: XD_EINVAL, XD_ETOOBIG, XD_ENOMEM,
 * XD_ECANCELED, XD_ETIMEDOUT. Does not keep csv. */
int xd_train_csv(const xd_csv_t *csv, const xd_train_options_t *opt, const xd_cancel_t *cancel,
                 xd_model_spec_t *spec, xd_train_result_t *res, xd_error_t *err);

/* Frees what a result owns and zeroes it (NULL or already empty: no-op). */
void xd_train_result_deinit(xd_train_result_t *res);

#endif
