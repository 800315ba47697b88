/* json.h — strict decoding helpers and number encoding over jansson.
 *
 * json_t stops at api/: handlers decode a request body into a plain C struct with these
 * helpers, which check types and ranges and name the offending field in the error
 * (XD_EINVAL, field "num_samples"). Unknown keys are errors (xd_json_check_keys).
 * All helpers are thread-safe on distinct json_t values.
 */
#ifndef XD_API_JSON_H
#define XD_API_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/model.h"
#include "core/status.h"


/* Fails with XD_EINVAL naming "<prefix>.<key>" (or "<key>") for any key of obj not in
 * allowed (NULL-terminated). Keys starting "x-" are not allowed in requests. */
int xd_json_check_keys(const json_t *obj, const char *const *allowed, const char *prefix, xd_error_t *err);
/* The same check for files (model bundles), where keys starting "x-" are extensions that
 * readers skip, and an unknown key is a format error (XD_EFORMAT) naming "<prefix>.<key>"
 * (or "<key>" when prefix is empty). */
int xd_json_check_file_keys(const json_t *obj, const char *const *allowed, const char *prefix, xd_error_t *err);

/* Optional getters: leave *out untouched when the key is absent or null; otherwise check
 * type and range [min, max] and fail naming key. */
int xd_json_opt_size(const json_t *obj, const char *key, size_t min, size_t max, size_t *out, xd_error_t *err);
int xd_json_opt_double(const json_t *obj, const char *key, double min, double max, double *out, xd_error_t *err);
int xd_json_opt_bool(const json_t *obj, const char *key, int *out, xd_error_t *err);
/* String among names (NULL-terminated); *out is the index. */
int xd_json_opt_enum(const json_t *obj, const char *key, const char *const *names, int *out, xd_error_t *err);
/* "seed": unsigned 64-bit integer. *given set to 1 when present. */
int xd_json_opt_seed(const json_t *obj, const char *key, uint64_t *out, int *given, xd_error_t *err);

/* Levenshtein distance of two names (compared on their first 64 bytes). */
size_t xd_json_edit_distance(const char *a, const char *b);

/* Warnings: a request answered but degenerate (a clamped value, a poor fit) gets a
 * "warnings" list of sentences in its answer. Every endpoint uses these two, so the list
 * looks the same everywhere: xd_json_warn appends one sentence (printf-style) to an array
 * (XD_ENOMEM on failure), xd_json_set_warnings adds the array to the answer when it is
 * not empty (a new reference; the caller keeps its own). */
/* Adds "target_names": the class name of each output index of targets (n), beside an
 * answer's "targets", for a classification model (nothing for a regression). */
int xd_json_set_target_names(json_t *body, const xd_model_t *m, const size_t *targets, size_t n);

int xd_json_warn(json_t *warnings, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void xd_json_set_warnings(json_t *body, json_t *warnings);

/* Appends "; hint" to err's sentence (when it fits): what would have been valid. */
void xd_json_hint(xd_error_t *err, const char *hint);

/* A short description of v for an error message: "\"abc\"", "null", "true", "a list". */
void xd_json_describe(const json_t *v, char *out, size_t cap);

/* A finite number (integer or real) at v; field names it in errors. */
int xd_json_number(const json_t *v, const char *field, double *out, xd_error_t *err);

/* Decodes one raw row for model m: an array of n_features values in feature order, or an
 * object naming every feature. Categorical values are category names or integer codes.
 * Writes n_features doubles to row. field is the row's path ("instances[3]"). */
int xd_json_row(const xd_model_t *m, const json_t *v, const char *field, double *row, xd_error_t *err);

/* Decodes body's "instances" (a non-empty list of rows) or, when allow_single,
 * "instance" (one row); exactly one of them must be present. At most max_rows rows
 * (XD_ETOOBIG beyond). *X (n, n_features) is allocated with xd_malloc; caller frees. */
int xd_json_instances(const xd_model_t *m, const json_t *body, int allow_single, size_t max_rows, double **X,
                      size_t *n, xd_error_t *err);

/* A label: class index or class name (classification), or 0 (regression). */
int xd_json_label(const xd_model_t *m, const json_t *v, const char *field, size_t *out, xd_error_t *err);

/* New reference to a JSON number for x; non-finite x becomes null (callers that must
 * not emit null check first). Reals print with 17 significant digits. */
json_t *xd_json_real(double x);
/* New JSON array of n numbers. */
json_t *xd_json_reals(const double *x, size_t n);
/* New JSON array of rows x cols numbers (row-major). */
json_t *xd_json_matrix(const double *x, size_t rows, size_t cols);
/* New JSON string for a feature value of m (category name for categorical features). */
json_t *xd_json_feature_value(const xd_model_t *m, size_t j, double v);

#endif
