/* admin.h — authentication and model management (PUT/DELETE /models/{name}).
 *
 * Uploads are persisted before the answer: the bundle is written to a temporary file in
 * the model folder, fsync'd, renamed over DIR/NAME.json and the folder fsync'd, so a
 * crash at any moment leaves the old bundle or the new one, never half of one. An ONNX
 * upload ("onnx": {"base64": ...} in the JSON bundle, or an application/octet-stream
 * body with the bundle in the X-Explaind-Bundle header) stores the graph as
 * DIR/NAME.vN.onnx before the bundle that names it (docs/models.md). The new
 * version serves new requests while in-flight requests finish on the old one (the
 * registry's reference counting). Management runs on the network thread, serialized
 * by a mutex: it is rare, and its cost is one parse and one fsync.
 */
#ifndef XD_API_ADMIN_H
#define XD_API_ADMIN_H

#include <stdint.h>

#include "api/api.h"

/* Checks the request's Authorization header against the configured keys. admin: the
 * endpoint needs the admin key. Returns XD_OK, XD_EUNAUTH (missing or unknown key) or
 * XD_EPERM (a read key on an admin endpoint, or no admin key configured). */
int xd_auth_check(const xd_api_t *api, const xd_api_request_t *req, int admin, xd_error_t *err);

/* Constant-time comparison of two NUL-terminated secrets: the time depends only on
 * the lengths, never on where they first differ. Returns 1 when equal. */
int xd_secret_equal(const char *a, const char *b);

/* PUT or DELETE /models/{name}: answers into resp. */
void xd_admin_models(xd_api_t *api, const xd_api_request_t *req, const char *name, xd_api_response_t *resp);

/* What xd_admin_store stored. */
typedef struct xd_admin_stored {
  uint64_t version;
  char sha256[65]; /* xd_bundle_digest of what was written: the model's ETag */
  int replaced;    /* 1 when a model of that name was being served */
} xd_admin_stored_t;

/* Persists model m (decoded from doc, plus onnx[0..onnx_len) when the graph was uploaded)
 * as name's next version and serves it; used by PUT and by training. Serialized with
 * every other model change. Checks if_match / if_none (NULL: absent) against the model
 * being served (XD_ECONFLICT). When onnx is non-NULL the graph is written first as
 * DIR/NAME.vN.onnx and doc gets "onnx": that file name; doc always gets
 * "x-explaind-version": N; then DIR/NAME.json is written; graphs of older versions are
 * removed once it is in place. Each write is atomic (xd_write_atomic). Ownership of m
 * passes in (freed on error); doc is modified. Any thread. */
int xd_admin_store(xd_api_t *api, const char *name, json_t *doc, const void *onnx, size_t onnx_len, xd_model_t *m,
                   const char *if_match, const char *if_none, xd_admin_stored_t *out, xd_error_t *err);

/* Writes data to dir/name atomically (temporary file, fsync, rename, fsync dir). */
int xd_write_atomic(const char *dir, const char *name, const char *data, size_t len, xd_error_t *err);

#endif
