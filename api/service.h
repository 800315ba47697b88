/* service.h — the service endpoints answered without a worker: /healthz, /readyz,
 * /models, /models/{name}. */
#ifndef XD_API_SERVICE_H
#define XD_API_SERVICE_H

#include "api/api.h"

/* Answers req into resp and returns 1 if its path is a service endpoint (including its
 * 405 answers); returns 0 otherwise. */
int xd_service_handle(xd_api_t *api, const xd_api_request_t *req, xd_api_response_t *resp);

#endif
