/* bundle.h — the JSON model bundle (format explaind.model/v1, see docs/MODEL_FORMAT.md)
 * decoded into a core model.
 *
 * Decoding is strict: unknown keys are errors (except "x-..." keys, free for users), and
 * every error names the exact path of the offending value ("layers[1].weights[2]").
 * Shapes and numbers are then validated by xd_model_new. Any thread.
 */
#ifndef XD_API_BUNDLE_H
#define XD_API_BUNDLE_H

#include <stddef.h>

#include "api/bundle_limits.h"
#include "core/model.h"

/* Decodes bundle bytes. dir is the folder that relative file names (background CSV, the
 * "onnx" graph that may replace "layers") are resolved against, or NULL to allow only
 * inline data. On success *out is a new model owned by the caller. */
int xd_bundle_decode(const char *data, size_t len, const char *dir, xd_model_t **out, xd_error_t *err);

/* Decodes a bundle whose network is an uploaded ONNX graph (PUT /models/NAME with an
 * ONNX body): json_meta is a bundle without "layers" and "onnx" (features, classes,
 * preprocess, background: as in a file bundle), onnx[0..onnx_len) the serialized
 * ModelProto, whose input is what layer 1 sees (after preprocess and one-hot encoding).
 * dir as for xd_bundle_decode. ONNX errors have field "onnx" and name the node
 * (core/onnx.h). On success *out is a new model owned by the caller. Any thread. */
int xd_bundle_decode_onnx(const char *json_meta, size_t meta_len, const void *onnx, size_t onnx_len, const char *dir,
                          xd_model_t **out, xd_error_t *err);

/* The model's digest (its sha256 and ETag): SHA-256 over the bundle bytes followed by
 * the bytes of the files it names, the "onnx" graph first, then "background.csv"
 * (resolved against dir; skipped when dir is NULL or a file cannot be read, which
 * decoding then reports). So the digest changes when an ONNX graph or a background file
 * changes under an unchanged bundle, and an upload (bundle text + the ONNX bytes it
 * stores) gets the same digest back when the folder is loaded again. Any thread. */
void xd_bundle_digest(const char *data, size_t len, const char *dir, char sha256[65]);

/* Reads and decodes a bundle file; sha256 (may be NULL) receives xd_bundle_digest. */
int xd_bundle_load_file(const char *path, xd_model_t **out, char sha256[65], xd_error_t *err);

#endif
