/* explain_text.h — /explain/gradient, /explain/occlusion, /explain/lime and /explain/shap
 * on text models (API.md Part 2; docs/text_explanations.md). Each endpoint's decoder
 * hands a text model's request here; computation in core/text_explain.h and
 * core/text_lime.h. Network thread for decoding, worker threads for the parts. */
#ifndef XD_API_EXPLAIN_TEXT_H
#define XD_API_EXPLAIN_TEXT_H

#include <jansson.h>

#include "api/endpoints.h"

int xd_gradient_text_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_occlusion_text_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_lime_text_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_shap_text_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);

/* 1 when body's "model" names a loaded text model (the decoders' dispatch test). */
int xd_api_is_text_model(xd_api_t *api, const json_t *body);

#endif
