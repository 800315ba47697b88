/* explain_common.h — request pieces shared by /explain/gradient and /explain/shap:
 * per-row targets ("predicted", an index, a class name, or a list of them), the request
 * seed (given, or drawn and echoed), and resolving "predicted" on a worker. */
#ifndef XD_API_EXPLAIN_COMMON_H
#define XD_API_EXPLAIN_COMMON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/model.h"
#include "core/status.h"

/* Marks a row whose target is the model's predicted class (resolved on a worker). */
#define XD_TARGET_PREDICTED SIZE_MAX

/* Decodes body's optional "target" for n rows into target (n): absent or "predicted"
 * gives XD_TARGET_PREDICTED, a label (xd_json_label) applies to every row, and a list of
 * n labels or "predicted" gives one per row. Errors name "target" or "target[i]".
 * Network thread. */
int xd_explain_targets(const xd_model_t *m, const json_t *body, size_t n, size_t *target, xd_error_t *err);

/* Decodes body's optional "seed"; without one, draws a fresh seed below 2^53 (so that
 * it echoes exactly as a JSON integer). */
int xd_explain_seed(const json_t *body, uint64_t *seed, xd_error_t *err);
/* New JSON value echoing seed (an integer; a real above 2^63-1, as jansson's int64). */
json_t *xd_explain_seed_json(uint64_t seed);

/* Replaces XD_TARGET_PREDICTED entries of target (n) by the predicted class of the rows
 * of X (n, n_features; an image model's rows are n_inputs long), evaluating only those rows. Worker thread. */
int xd_explain_resolve_targets(const xd_model_t *m, const double *X, size_t n, size_t *target,
                               const xd_cancel_t *cancel, xd_error_t *err);

#endif
