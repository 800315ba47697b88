/* admin.h — authentication and model management (PUT/DELETE /models/{name}).
 *
 * Uploads are persisted before the answer: the bundle is written to a temporary file in
 * the model folder, fsync'd, renamed over DIR/NAME.json and the folder fsync'd, so a
 * crash at any moment leaves the old bundle or the new one, never half of one. The new
 * version serves new requests while in-flight requests finish on the old one (the
 * registry's reference counting). Management runs on the network thread, serialized
 * by a mutex: it is rare, and its cost is one parse and one fsync.
 */
#ifndef XD_API_ADMIN_H
#define XD_API_ADMIN_H

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

/* Writes data to dir/name atomically (temporary file, fsync, rename, fsync dir). */
int xd_write_atomic(const char *dir, const char *name, const char *data, size_t len, xd_error_t *err);

#endif
