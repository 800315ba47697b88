/* v2.h — the Open Inference Protocol (KServe V2) REST routes beside the native API:
 * GET /v2, /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{v}],
 * .../ready, and POST .../infer with the protocol's tensor JSON. Errors use the
 * protocol's shape {"error": "..."} with the native status codes. See docs/v2.md. */
#ifndef XD_API_V2_H
#define XD_API_V2_H

#include "api/api.h"

/* Handles any path under /v2 (404 for unknown ones). */
xd_api_outcome_t xd_v2_handle(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp, xd_work_t *work);

#endif
