/* endpoints.h — the contract between the router (api/api.c, table in api/routes.c) and
 * the handlers, one file per endpoint family.
 *
 * A handler is one of two kinds, named in its route table row:
 *   - a decoder (xd_endpoint_decode_fn), for endpoints whose body is a JSON object: the
 *     router has checked the Content-Type and parsed the body; the decoder validates it
 *     strictly (unknown keys are errors, every count bounded by xd_api_limits), takes a
 *     reference to the model it names (xd_api_model) into its state, and fills work.
 *     It returns XD_OK or an error naming the field, and must not evaluate the model
 *     beyond trivial checks.
 *   - an answerer (xd_endpoint_answer_fn), for everything else (GETs, uploads, raw CSV):
 *     it reads the request itself and either answers into resp (XD_API_RESPOND) or fills
 *     work (XD_API_QUEUE).
 * Both run on the network thread, after the router has checked authentication, method
 * and path. Handlers include this header, never api/api.h: the router depends on them,
 * not the other way round.
 */
#ifndef XD_API_ENDPOINTS_H
#define XD_API_ENDPOINTS_H

#include <jansson.h>
#include <stddef.h>

#include "api/context.h"
#include "api/job.h"
#include "api/json.h"
#include "api/response.h"

/* The path segments a pattern's placeholders matched ("/models/{name}"): pointers into
 * the request path and lengths; NULL and 0 when the pattern has no such placeholder. */
typedef struct xd_route_args {
  const char *name;
  size_t name_len;
  const char *version;
  size_t version_len;
} xd_route_args_t;

/* Copies a matched segment into buf (cap > 1), cut to cap - 1 bytes: a buffer of
 * XD_MODEL_NAME_MAX + 2 keeps an over-long name over-long, so the name check refuses it. */
static inline void xd_route_arg_copy(const char *seg, size_t len, char *buf, size_t cap) {
  size_t n = len < cap - 1 ? len : cap - 1;
  for (size_t i = 0; i < n; i++) buf[i] = seg[i];
  buf[n] = '\0';
}

typedef int (*xd_endpoint_decode_fn)(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
/* A decoder's optional fast path, tried on the raw body before jansson parses it:
 * returns 1 with work filled when it took the body, 0 to leave it to the decoder (it
 * must take only bodies the decoder accepts, into the same work: see api/numbody.h). */
typedef int (*xd_endpoint_fast_fn)(xd_api_t *api, const char *body, size_t len, xd_work_t *work);
typedef xd_api_outcome_t (*xd_endpoint_answer_fn)(xd_api_t *api, const xd_api_request_t *req,
                                                  const xd_route_args_t *args, xd_api_response_t *resp,
                                                  xd_work_t *work);

/* ---- decoders (one file each) ---- */
int xd_predict_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_predict_fast(xd_api_t *api, const char *body, size_t len, xd_work_t *work);
int xd_gradient_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_occlusion_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_shap_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_importance_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_pdp_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
int xd_lime_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);

/* ---- answerers ---- */
/* api/service.c: GET /healthz, /readyz, /metrics, /models, /models/{name} */
xd_api_outcome_t xd_service_healthz(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *,
                                    xd_api_response_t *, xd_work_t *);
xd_api_outcome_t xd_service_readyz(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *,
                                   xd_api_response_t *, xd_work_t *);
xd_api_outcome_t xd_service_metrics(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *,
                                    xd_api_response_t *, xd_work_t *);
xd_api_outcome_t xd_service_models(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *,
                                   xd_api_response_t *, xd_work_t *);
xd_api_outcome_t xd_service_model(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *,
                                  xd_api_response_t *, xd_work_t *);
/* api/jobs.c: the /jobs routes (docs/jobs.md) */
#define XD_JOBS_ANSWER(fn) \
  xd_api_outcome_t fn(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *, xd_api_response_t *, xd_work_t *);
XD_JOBS_ANSWER(xd_jobs_post)
XD_JOBS_ANSWER(xd_jobs_list)
XD_JOBS_ANSWER(xd_jobs_get)
XD_JOBS_ANSWER(xd_jobs_delete)
XD_JOBS_ANSWER(xd_jobs_results)
XD_JOBS_ANSWER(xd_jobs_events)
/* api/admin.c: PUT and DELETE /models/{name} */
xd_api_outcome_t xd_admin_put(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *, xd_api_response_t *,
                              xd_work_t *);
xd_api_outcome_t xd_admin_delete(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *,
                                 xd_api_response_t *, xd_work_t *);
/* api/train.c: POST /models/{name}/train */
xd_api_outcome_t xd_train_answer(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *,
                                 xd_api_response_t *, xd_work_t *);
/* api/v2.c: the Open Inference Protocol routes */
xd_api_outcome_t xd_v2_server(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *, xd_api_response_t *,
                              xd_work_t *);
xd_api_outcome_t xd_v2_live(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *, xd_api_response_t *,
                            xd_work_t *);
xd_api_outcome_t xd_v2_ready(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *, xd_api_response_t *,
                             xd_work_t *);
xd_api_outcome_t xd_v2_model(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *, xd_api_response_t *,
                             xd_work_t *);
xd_api_outcome_t xd_v2_model_ready(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *,
                                   xd_api_response_t *, xd_work_t *);
xd_api_outcome_t xd_v2_infer(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *, xd_api_response_t *,
                             xd_work_t *);
/* api/static.c: the embedded dashboard and OpenAPI document */
xd_api_outcome_t xd_static_answer(xd_api_t *, const xd_api_request_t *, const xd_route_args_t *,
                                  xd_api_response_t *, xd_work_t *);

#endif
