/* bundle_write.h — a loaded model back to its JSON bundle (format explaind.model/v1,
 * docs/MODEL_FORMAT.md): the inverse of xd_bundle_decode.
 *
 * Used to store a trained model and to hand any model back to a client. Everything the
 * model holds goes inline (no file references), so the text is self-contained:
 * features (categorical ones with their categories), classes, preprocess, dense layers
 * ([out][in] weights), and background rows (categorical values as category names) with
 * targets (class names, or numbers). Doubles are printed with 17 significant digits so
 * every value reads back as the same double: decoding the text gives a model that
 * predicts bit-identically. Any thread (reads the immutable model only).
 */
#ifndef XD_API_BUNDLE_WRITE_H
#define XD_API_BUNDLE_WRITE_H

#include <jansson.h>
#include <stddef.h>

#include "core/model.h"

/* Encodes m as a bundle. At most max_background_rows background rows are written (0:
 * no background); when the model has more, rows i·n/max for i = 0..max−1 are taken
 * (evenly spaced, deterministic). Returns a NUL-terminated xd_malloc'd string the caller
 * frees with xd_free, or NULL with err filled: XD_EUNSUPPORTED for a model family
 * without dense layers, XD_ENOMEM. */
char *xd_bundle_encode(const xd_model_t *m, size_t max_background_rows, xd_error_t *err);

/* The model's background as the bundle's inline "background" object ({"rows", "targets"},
 * rows chosen as for xd_bundle_encode), for any model family; NULL when the model has no
 * background or out of memory. The caller owns the reference. */
json_t *xd_bundle_background_json(const xd_model_t *m, size_t max_rows);

#endif
