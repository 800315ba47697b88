/* dataset.h — a table of raw feature rows with optional targets, and CSV parsing.
 *
 * Raw rows are what clients send: numeric features as numbers, categorical features as
 * their integer code 0..k-1 (stored as a double). Targets are class indices (as doubles)
 * for classification and values for regression. A dataset owns its arrays.
 */
#ifndef XD_DATASET_H
#define XD_DATASET_H

#include <stddef.h>

#include "core/status.h"

/* Hard bounds on anything read from a CSV (configurable limits sit below these). */
#define XD_CSV_MAX_COLS 4096
#define XD_CSV_MAX_CELL 4096

typedef enum xd_feat_kind { XD_FEAT_NUMERIC = 0, XD_FEAT_CATEGORICAL = 1 } xd_feat_kind_t;

typedef struct xd_feature {
  char *name;
  xd_feat_kind_t kind;
  size_t n_categories; /* categorical only */
  char **categories;   /* category names, code order */
} xd_feature_t;

typedef struct xd_dataset {
  size_t n, d;  /* rows, features */
  double *X;    /* (n, d) raw values */
  double *y;    /* (n) targets, or NULL */
} xd_dataset_t;

void xd_dataset_deinit(xd_dataset_t *ds);

/* A parsed CSV: a header and rows of cells (strings), all owned. */
typedef struct xd_csv {
  size_t n_cols, n_rows;
  char **header;   /* n_cols */
  char ***rows;    /* n_rows x n_cols */
} xd_csv_t;

/* Parses RFC 4180 CSV text (quoted fields, "" escapes, CRLF or LF, optional final newline).
 * Every row must have as many cells as the header. Bounds: max_rows data rows,
 * XD_CSV_MAX_COLS columns, XD_CSV_MAX_CELL bytes per cell. Errors name "line N". */
int xd_csv_parse(const char *text, size_t len, size_t max_rows, xd_csv_t *out, xd_error_t *err);
void xd_csv_deinit(xd_csv_t *csv);

/* Parses a finite number from a whole cell ("1.5", " 2e3 "); returns 0 or -1. */
int xd_parse_number(const char *s, double *out);

/* Looks up a category by name, or by its integer code written as a number.
 * Returns the code or -1. */
long xd_feature_category(const xd_feature_t *f, const char *s);

/* Builds a dataset from a CSV whose header names every feature (any order; extra
 * columns other than the target are an error) and, if target is non-NULL, the target
 * column. classes (n_classes > 0) maps class names or indices to indices; n_classes == 0
 * reads numeric targets. Errors name "<field_prefix>" row and column. */
int xd_dataset_from_csv(const xd_csv_t *csv, const xd_feature_t *features, size_t d, const char *target,
                        char *const *classes, size_t n_classes, const char *field_prefix, xd_dataset_t *out,
                        xd_error_t *err);

#endif
