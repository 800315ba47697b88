/* importance.h — the "data" field shared by the global-explanation endpoints
 * (POST /importance, POST /explain/pdp): rows and targets to explain over, and both
 * endpoints' shards (one answer over more rows than a request takes, docs/jobs.md).
 *
 * `"data": {"instances": [...], "targets": [...]}` (targets: class names or indices for a
 * classifier, numbers for a regressor), or, when "data" is absent, the model's background
 * with its targets. Network thread (decoders); the result is read by workers.
 */
#ifndef XD_API_IMPORTANCE_H
#define XD_API_IMPORTANCE_H

#include <jansson.h>
#include <stddef.h>

#include "api/context.h"

typedef struct xd_imp_data {
  const double *X; /* (n, n_features): owned copy or the model's background (borrowed:
                      valid while the request holds its model reference) */
  const double *y; /* (n) or NULL when no targets are known */
  size_t n;
  int from_background;
  double *X_owned, *y_owned;
} xd_imp_data_t;

/* Decodes body's optional "data" for model m. need_targets: fail (XD_EINVAL, field
 * "data.targets", or "data" for the background) when no targets are available. Rows are
 * bounded by limits->max_background (XD_ETOOBIG). Errors name the field
 * ("data.instances[3]", "data.targets[0]"). Returns XD_OK (out filled; deinit it) or an
 * error (out left empty). */
int xd_imp_data_decode(const xd_api_t *api, const xd_model_t *m, const char *model_name, const json_t *body,
                       int need_targets, xd_imp_data_t *out, xd_error_t *err);
void xd_imp_data_deinit(xd_imp_data_t *d);

/* Sharded permutation importance (docs/jobs.md "Importance in shards"): shard `shard` of
 * n_shards of a POST /importance body (method permutation) as its per-block sums
 * (core/importance.h xd_imp_perm_sums), {"importance_shard": {...}} (new reference). */
int xd_importance_shard(xd_api_t *api, const json_t *body, size_t shard, size_t n_shards, json_t **out,
                        xd_error_t *err);
/* Validates a /importance body for sharding (permutation, not balanced_accuracy) and
 * gives its row blocks (the most a split can use). */
int xd_importance_shard_blocks(xd_api_t *api, const json_t *body, size_t *n_blocks, xd_error_t *err);
/* The importance answer from every shard of a job (any order): the block sums added in
 * block order, so the scores do not depend on the shard count. NULL with err when the
 * shards do not tile the rows or are not of one job. */
json_t *xd_importance_merge(json_t *const *shards, size_t n, xd_error_t *err);

/* Partial dependence over large data (docs/jobs.md "PDP over large data"), as sharded
 * importance: every shard decodes the whole POST /explain/pdp body and builds the grid from
 * all its rows (the same rows give the same grid), then evaluates its range of 1,024-row
 * blocks (core/pdp.h xd_pdp_block_sums) at every grid point: {"pdp_shard": {the answer's
 * model, features, feature_indices, kind, grid_values, outputs; n_rows, block, blocks
 * [b0, b1), sums (outputs, grid points, blocks), individual (outputs, its rows, grid) unless
 * kind is "average"}} (new reference). */
int xd_pdp_shard(xd_api_t *api, const json_t *body, size_t shard, size_t n_shards, json_t **out, xd_error_t *err);
/* Validates a /explain/pdp body (every field, the grid) and gives its row blocks. */
int xd_pdp_shard_blocks(xd_api_t *api, const json_t *body, size_t *n_blocks, xd_error_t *err);
/* The /explain/pdp answer from every shard of a job (any order): block sums added in block
 * order, divided by the row count, ICE rows concatenated: bit for bit the synchronous
 * answer. NULL with err when the shards do not tile the rows or are not of one job. */
json_t *xd_pdp_merge(json_t *const *shards, size_t n, xd_error_t *err);

#endif
