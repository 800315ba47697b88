/* v2_graph.h — Open Inference Protocol inputs for image and text models (api/v2.c's
 * infer route; docs/v2.md).
 *
 * Image models take one tensor: numbers of shape [n, C, H, W] (pixel values, preprocessed
 * as in /predict), or BYTES of shape [n] whose strings are base64 PNG or JPEG files. Text
 * models take one BYTES tensor of shape [n] (or [n, 1]) of UTF-8 texts. Errors are
 * XD_EINVAL naming "inputs[0]" or the row ("inputs[0].data[3]"). Any thread.
 */
#ifndef XD_API_V2_GRAPH_H
#define XD_API_V2_GRAPH_H

#include <jansson.h>

#include "core/model.h"

/* Decodes "inputs" for graph model m: image rows into *X (n, C*H*W), or text rows into
 * *text (xd_tok_rows_free); warnings (may be NULL) receives truncations. */
int xd_v2_graph_inputs(const xd_model_t *m, const json_t *inputs, size_t max_rows, double **X, xd_tok_encoding_t **text,
                       size_t *n, json_t *warnings, xd_error_t *err);

/* The "inputs" metadata of a graph model: [{"name", "datatype", "shape"}]. */
json_t *xd_v2_graph_input_meta(const xd_model_t *m);

#endif
