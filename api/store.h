/* store.h — the model folder and the registry, kept in step: loading the folder at
 * start-up (and on SIGHUP), and the changes PUT, DELETE and training make.
 *
 * Changes are persisted before they are served: a bundle is written to a temporary file
 * in the model folder, fsync'd, renamed over DIR/NAME.json and the folder fsync'd, so a
 * crash at any moment leaves the old bundle or the new one, never half of one. An ONNX
 * upload stores the graph as DIR/NAME.vN.onnx before the bundle that names it
 * (docs/models.md). The new version serves new requests while in-flight requests finish
 * on the old one (the registry's reference counting). Changes are serialized with each
 * other: they are rare, and cost one parse and one fsync. Any thread.
 */
#ifndef XD_API_STORE_H
#define XD_API_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "api/context.h"

/* What xd_store_put stored. */
typedef struct xd_store_stored {
  uint64_t version;
  char sha256[65]; /* xd_bundle_digest of what was written: the model's ETag */
  int replaced;    /* 1 when a model of that name was being served */
} xd_store_stored_t;

/* Persists model m (decoded from doc, plus onnx[0..onnx_len) when the graph was uploaded)
 * as name's next version and serves it; used by PUT and by training. Checks if_match /
 * if_none (NULL: absent) against the model being served (XD_ECONFLICT). When onnx is
 * non-NULL the graph is written first as DIR/NAME.vN.onnx and doc gets "onnx": that file
 * name; doc always gets "x-explaind-version": N; then DIR/NAME.json is written; graphs of
 * older versions are removed once it is in place. XD_EPERM without a model folder.
 * Ownership of m passes in (freed on error); doc is modified. */
int xd_store_put(xd_api_t *api, const char *name, json_t *doc, const void *onnx, size_t onnx_len, xd_model_t *m,
                 const char *if_match, const char *if_none, xd_store_stored_t *out, xd_error_t *err);

/* Stops serving name and removes its files. XD_OK, or XD_ENOTFOUND when not served. */
int xd_store_delete(xd_api_t *api, const char *name);

/* Loads every bundle of the model directory into the registry: DIR/NAME.json and
 * DIR/NAME/model.json. A bundle that fails is reported through log (file and reason)
 * and skipped; an unchanged one is left alone. Returns the number of models loaded, or
 * -1 when DIR cannot be read. */
int xd_api_load_dir(xd_api_t *api, const char *dir, void (*log)(void *ctx, const char *msg), void *ctx);

#endif
