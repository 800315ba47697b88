/* bundle_trees.h — the "trees" member of a model bundle (docs/MODEL_FORMAT.md, "Tree
 * ensembles") decoded into a core/trees.h spec:
 *   {"xgboost": FILE | {...}}  XGBoost's JSON model (Booster.save_model("m.json")) or its
 *                              UBJSON form (".ubj", recognized by its bytes), as a file
 *                              relative to the bundle's folder or inline;
 *   {"nodes": {...}}           explaind's own node arrays (tools/export_sklearn.py).
 * Decoding is strict and bounded (every array length checked against the node count and
 * XD_TREES_MAX_* before allocation); structure (children, cycles, features) is validated
 * by xd_trees_new, which names "trees[i].nodes[k]". Any thread.
 */
#ifndef XD_API_BUNDLE_TREES_H
#define XD_API_BUNDLE_TREES_H

#include <jansson.h>
#include <stddef.h>

#include "core/model.h"

/* Decodes v (the bundle's "trees" value) for the spec s whose task, features and classes
 * are already decoded; sets s->trees. dir resolves a file name (NULL: inline only).
 * Returns XD_OK, XD_EFORMAT (field "trees..." and a sentence) or XD_ENOMEM. */
int xd_bundle_trees_decode(const json_t *v, const char *dir, xd_model_spec_t *s, xd_error_t *err);

/* Decodes an XGBoost model given as bytes (JSON text or UBJSON) into a spec for a model
 * of n_features features and n_classes classes (0: regression). Used by the fuzz target
 * and by xd_bundle_trees_decode. On success *spec is filled (caller deinits it). */
int xd_bundle_trees_xgboost_bytes(const void *data, size_t len, size_t n_features, size_t n_classes,
                                  struct xd_trees_spec *spec, xd_error_t *err);

#endif
