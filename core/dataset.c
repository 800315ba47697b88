/* dataset.c — RFC 4180 CSV parsing and CSV -> raw feature table. */
#include "core/dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

void xd_dataset_deinit(xd_dataset_t *ds) {
  if (!ds) return;
  xd_free(ds->X);
  xd_free(ds->y);
  memset(ds, 0, sizeof *ds);
}

/* ---- CSV ---------------------------------------------------------------------------- */

void xd_csv_deinit(xd_csv_t *csv) {
  if (!csv) return;
  if (csv->header)
    for (size_t j = 0; j < csv->n_cols; j++) xd_free(csv->header[j]);
  xd_free(csv->header);
  if (csv->rows)
    for (size_t i = 0; i < csv->n_rows; i++) {
      if (!csv->rows[i]) continue;
      for (size_t j = 0; j < csv->n_cols; j++) xd_free(csv->rows[i][j]);
      xd_free(csv->rows[i]);
    }
  xd_free(csv->rows);
  memset(csv, 0, sizeof *csv);
}

/* Reads one record starting at *pos; fills cells (growable array) and advances *pos past
 * the line end. Returns number of cells, 0 at end of input, or -1 on error. */
static long read_record(const char *t, size_t len, size_t *pos, char ***cells, size_t *cap, size_t line,
                        xd_error_t *err) {
  size_t p = *pos;
  if (p >= len) return 0;
  size_t n = 0;
  char buf[XD_CSV_MAX_CELL + 1];
  for (;;) {
    size_t bl = 0;
    int quoted = 0;
    if (p < len && t[p] == '"') {
      quoted = 1;
      p++;
      for (;;) {
        if (p >= len) {
          xd_error_set(err, XD_EINVAL, NULL, "line %zu: unterminated quoted field", line);
          goto fail;
        }
        if (t[p] == '"') {
          if (p + 1 < len && t[p + 1] == '"') {
            p += 2;
            if (bl >= XD_CSV_MAX_CELL) goto too_long;
            buf[bl++] = '"';
            continue;
          }
          p++;
          break;
        }
        if (bl >= XD_CSV_MAX_CELL) goto too_long;
        buf[bl++] = t[p++];
      }
    }
    while (p < len && t[p] != ',' && t[p] != '\n' && t[p] != '\r') {
      if (quoted) {
        xd_error_set(err, XD_EINVAL, NULL, "line %zu: characters after a closing quote", line);
        goto fail;
      }
      if (t[p] == '\0') {
        xd_error_set(err, XD_EINVAL, NULL, "line %zu: NUL byte in CSV", line);
        goto fail;
      }
      if (bl >= XD_CSV_MAX_CELL) goto too_long;
      buf[bl++] = t[p++];
    }
    if (n >= XD_CSV_MAX_COLS) {
      xd_error_set(err, XD_ETOOBIG, NULL, "line %zu: more than %d columns", line, XD_CSV_MAX_COLS);
      goto fail;
    }
    if (n == *cap) {
      size_t nc = *cap ? *cap * 2 : 16;
      char **g = xd_realloc(*cells, nc * sizeof *g);
      if (!g) goto nomem;
      *cells = g;
      *cap = nc;
    }
    (*cells)[n] = xd_strndup(buf, bl);
    if (!(*cells)[n]) goto nomem;
    n++;
    if (p < len && t[p] == ',') {
      p++;
      continue;
    }
    if (p < len && t[p] == '\r') p++;
    if (p < len && t[p] == '\n') p++;
    break;
  }
  *pos = p;
  return (long)n;
too_long:
  xd_error_set(err, XD_ETOOBIG, NULL, "line %zu: a cell is longer than %d bytes", line, XD_CSV_MAX_CELL);
  goto fail;
nomem:
  xd_error_set(err, XD_ENOMEM, NULL, "out of memory reading CSV");
fail:
  for (size_t i = 0; i < n; i++) xd_free((*cells)[i]);
  return -1;
}

static int blank_line(const char *t, size_t len, size_t p) {
  while (p < len && (t[p] == ' ' || t[p] == '\t')) p++;
  return p >= len || t[p] == '\n' || t[p] == '\r';
}

int xd_csv_parse(const char *text, size_t len, size_t max_rows, xd_csv_t *out, xd_error_t *err) {
  memset(out, 0, sizeof *out);
  size_t pos = 0, cap = 0, line = 1, rows_cap = 0;
  char **cells = NULL;
  if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
      (unsigned char)text[2] == 0xBF)
    pos = 3; /* UTF-8 byte order mark */
  long n = read_record(text, len, &pos, &cells, &cap, line, err);
  if (n <= 0) {
    if (n == 0) xd_error_set(err, XD_EINVAL, NULL, "CSV is empty: a header row is required");
    goto fail;
  }
  out->n_cols = (size_t)n;
  out->header = cells;
  cells = NULL;
  cap = 0;
  for (;;) {
    line++;
    if (pos < len && blank_line(text, len, pos)) {
      /* Skip blank lines (a trailing newline, or CRLF leftovers). */
      while (pos < len && text[pos] != '\n') pos++;
      if (pos < len) pos++;
      continue;
    }
    n = read_record(text, len, &pos, &cells, &cap, line, err);
    if (n < 0) goto fail;
    if (n == 0) break;
    if ((size_t)n != out->n_cols) {
      for (long i = 0; i < n; i++) xd_free(cells[i]);
      xd_error_set(err, XD_EINVAL, NULL, "line %zu: %ld cells, header has %zu", line, n, out->n_cols);
      goto fail;
    }
    if (out->n_rows >= max_rows) {
      for (long i = 0; i < n; i++) xd_free(cells[i]);
      xd_error_set(err, XD_ETOOBIG, NULL, "CSV has more than %zu data rows", max_rows);
      goto fail;
    }
    if (out->n_rows == rows_cap) {
      size_t nc = rows_cap ? rows_cap * 2 : 64;
      char ***g = xd_realloc(out->rows, nc * sizeof *g);
      if (!g) {
        for (long i = 0; i < n; i++) xd_free(cells[i]);
        xd_error_set(err, XD_ENOMEM, NULL, "out of memory reading CSV");
        goto fail;
      }
      out->rows = g;
      rows_cap = nc;
    }
    out->rows[out->n_rows++] = cells;
    cells = NULL;
    cap = 0;
  }
  xd_free(cells);
  return XD_OK;
fail:
  xd_free(cells);
  xd_csv_deinit(out);
  return err ? err->code : XD_EINVAL;
}

/* ---- cells -> numbers ----------------------------------------------------------------- */

int xd_parse_number(const char *s, double *out) {
  while (*s == ' ' || *s == '\t') s++;
  if (!*s) return -1;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (end == s || errno == ERANGE || !isfinite(v)) return -1;
  while (*end == ' ' || *end == '\t') end++;
  if (*end) return -1;
  *out = v;
  return 0;
}

long xd_feature_category(const xd_feature_t *f, const char *s) {
  for (size_t k = 0; k < f->n_categories; k++)
    if (strcmp(f->categories[k], s) == 0) return (long)k;
  double v;
  if (xd_parse_number(s, &v) == 0 && v == floor(v) && v >= 0 && v < (double)f->n_categories) return (long)v;
  return -1;
}

int xd_dataset_from_csv(const xd_csv_t *csv, const xd_feature_t *features, size_t d, const char *target,
                        char *const *classes, size_t n_classes, const char *field_prefix, xd_dataset_t *out,
                        xd_error_t *err) {
  memset(out, 0, sizeof *out);
  const char *fp = field_prefix ? field_prefix : "csv";
  size_t *col_of = xd_calloc(d ? d : 1, sizeof *col_of);
  long tcol = -1;
  int rc = XD_OK;
  if (!col_of) return xd_error_set(err, XD_ENOMEM, fp, "out of memory");
  for (size_t j = 0; j < d; j++) col_of[j] = (size_t)-1;
  for (size_t c = 0; c < csv->n_cols; c++) {
    const char *h = csv->header[c];
    if (target && strcmp(h, target) == 0) {
      tcol = (long)c;
      continue;
    }
    size_t j = 0;
    while (j < d && strcmp(features[j].name, h) != 0) j++;
    if (j == d) {
      rc = xd_error_set(err, XD_EINVAL, fp,
                        "column '%s' is neither a feature nor the target: the header must name the model's "
                        "features (the first is '%s')",
                        h, d ? features[0].name : "");
      goto done;
    }
    if (col_of[j] != (size_t)-1) {
      rc = xd_error_set(err, XD_EINVAL, fp, "column '%s' appears twice", h);
      goto done;
    }
    col_of[j] = c;
  }
  for (size_t j = 0; j < d; j++)
    if (col_of[j] == (size_t)-1) {
      rc = xd_error_set(err, XD_EINVAL, fp, "feature '%s' has no column", features[j].name);
      goto done;
    }
  if (target && tcol < 0) {
    rc = xd_error_set(err, XD_EINVAL, fp, "target column '%s' not found", target);
    goto done;
  }
  if (csv->n_rows == 0) {
    rc = xd_error_set(err, XD_EINVAL, fp, "CSV has no data rows");
    goto done;
  }
  out->n = csv->n_rows;
  out->d = d;
  out->X = xd_malloc(xd_mul_size(out->n, d ? d : 1) * sizeof *out->X);
  out->y = target ? xd_malloc(out->n * sizeof *out->y) : NULL;
  if (!out->X || (target && !out->y)) {
    rc = xd_error_set(err, XD_ENOMEM, fp, "out of memory");
    goto done;
  }
  char field[XD_ERROR_FIELD_MAX];
  for (size_t i = 0; i < out->n; i++) {
    char **row = csv->rows[i];
    for (size_t j = 0; j < d; j++) {
      const char *cell = row[col_of[j]];
      double v;
      if (features[j].kind == XD_FEAT_CATEGORICAL) {
        long k = xd_feature_category(&features[j], cell);
        if (k < 0) {
          snprintf(field, sizeof field, "%s[%zu].%s", fp, i, features[j].name);
          rc = xd_error_set(err, XD_EINVAL, field, "'%s' is not a category of '%s'", cell, features[j].name);
          goto done;
        }
        v = (double)k;
      } else if (xd_parse_number(cell, &v) != 0) {
        snprintf(field, sizeof field, "%s[%zu].%s", fp, i, features[j].name);
        rc = xd_error_set(err, XD_EINVAL, field, "'%s' is not a finite number", cell);
        goto done;
      }
      out->X[i * d + j] = v;
    }
    if (target) {
      const char *cell = row[tcol];
      double v;
      if (n_classes > 0) {
        long k = -1;
        for (size_t c = 0; c < n_classes; c++)
          if (strcmp(classes[c], cell) == 0) k = (long)c;
        if (k < 0 && xd_parse_number(cell, &v) == 0 && v == floor(v) && v >= 0 && v < (double)n_classes)
          k = (long)v;
        if (k < 0) {
          snprintf(field, sizeof field, "%s[%zu].%s", fp, i, target);
          rc = xd_error_set(err, XD_EINVAL, field, "'%s' is not a class of the model", cell);
          goto done;
        }
        v = (double)k;
      } else if (xd_parse_number(cell, &v) != 0) {
        snprintf(field, sizeof field, "%s[%zu].%s", fp, i, target);
        rc = xd_error_set(err, XD_EINVAL, field, "target '%s' is not a finite number", cell);
        goto done;
      }
      out->y[i] = v;
    }
  }
done:
  xd_free(col_of);
  if (rc != XD_OK) xd_dataset_deinit(out);
  return rc;
}
