/* endpoints.h — the decoders of the model-work endpoints, one file each.
 *
 * Each decoder runs on the network thread: it validates body strictly (unknown keys are
 * errors, every count bounded by xd_api_limits), takes a reference to the model it names
 * (xd_api_model) and stores it in its state, and fills work. It returns XD_OK or an
 * error naming the field. It must not evaluate the model beyond trivial checks.
 */
#ifndef XD_API_ENDPOINTS_H
#define XD_API_ENDPOINTS_H

#include <jansson.h>

#include "api/api.h"

typedef int (*xd_endpoint_decode_fn)(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);

/* Reads body's "model" (required string, valid name) and returns a new reference to its
 * entry, or NULL with err set (XD_EINVAL or XD_ENOTFOUND, field "model"). */
xd_model_entry_t *xd_api_model(xd_api_t *api, const json_t *body, xd_error_t *err);

/* Reads the optional "timeout_ms" field shared by every model-work endpoint. */
int xd_api_timeout(const json_t *body, int64_t *timeout_ms, xd_error_t *err);

int xd_predict_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_gradient_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_occlusion_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_shap_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_importance_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_pdp_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_lime_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);

#endif
