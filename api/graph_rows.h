/* graph_rows.h — request rows for image and text models (API.md Part 2), decoded into
 * what core/model.h takes, and the per-token fields of answers about text.
 *
 * Image rows: a nested list [C][H][W] of pixel values, or {"b64": "<PNG or JPEG>"};
 * both through the bundle's preprocessing, pictures also converted to the model's
 * channels and resized (core/image.h). Text rows: strings, tokenized with the bundle's
 * tokenizer and truncated to its max_length, each truncation reported in `warnings`.
 * Errors are XD_EINVAL naming the row ("instances[3]"); XD_ETOOBIG when the rows'
 * values would pass XD_GRAPH_ROWS_MAX_VALUES. Any thread.
 */
#ifndef XD_API_GRAPH_ROWS_H
#define XD_API_GRAPH_ROWS_H

#include <jansson.h>

#include "core/model.h"

/* Bound on the model-input values of one request's image rows (n x C*H*W). */
#define XD_GRAPH_ROWS_MAX_VALUES ((size_t)1 << 25)

/* "instances" (or, with allow_single, "instance") of an image model -> X (n, C*H*W),
 * xd_malloc'd, preprocessed. At most max_rows rows. */
int xd_json_image_rows(const xd_model_t *m, const json_t *body, int allow_single, size_t max_rows, double **X,
                       size_t *n, xd_error_t *err);

/* One image row at v (field names it) into x (C*H*W). */
int xd_json_image_row(const xd_model_t *m, const json_t *v, const char *field, double *x, xd_error_t *err);

/* "instances"/"instance" of a text model -> *rows (n encodings, xd_tok_rows_free). When
 * warnings is not NULL, "instances[i]: text truncated to N tokens" is appended to it for
 * each truncated row. */
int xd_json_text_rows(const xd_model_t *m, const json_t *body, int allow_single, size_t max_rows,
                      xd_tok_encoding_t **rows, size_t *n, json_t *warnings, xd_error_t *err);
void xd_tok_rows_free(xd_tok_encoding_t *rows, size_t n);

/* New JSON arrays for answers about text: tokens [[...]] and offsets [[[start, end] or
 * null, ...]] per row. */
json_t *xd_json_tokens(const xd_tok_encoding_t *rows, size_t n);
json_t *xd_json_offsets(const xd_tok_encoding_t *rows, size_t n);

/* XD_OK for a tabular model; else XD_EINVAL (field "model") saying that `endpoint` is
 * defined on tabular features and which endpoints serve image and text models. */
int xd_api_require_tabular(const xd_model_t *m, const char *name, const char *endpoint, xd_error_t *err);

/* "tabular", "image" or "text". */
const char *xd_input_kind_name(xd_input_kind_t k);

/* GET /models/{name} for a graph model: "input" (kind and its parameters) and "nodes"
 * (the tensors a request may name as `layer`). New references; NULL on no memory. */
json_t *xd_json_model_input(const xd_model_t *m);
json_t *xd_json_model_nodes(const xd_model_t *m);

#endif
