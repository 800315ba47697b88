/* train.h — POST /models/{name}/train (admin): train a dense model from a CSV on the
 * worker pool and store it like an upload (see docs/training.md).
 *
 * Bodies: JSON {"csv": "<text>", "target": ..., options} or {"columns": [...],
 * "rows": [[...]], "target": ..., options}, or raw CSV (Content-Type: text/csv) with the
 * options in the query string (hidden=16,8&epochs=100). The answer carries the training
 * and validation metrics and the stored model's name, version and sha256. */
#ifndef XD_API_TRAIN_H
#define XD_API_TRAIN_H

#include "api/api.h"

/* Decodes a training request for model `name` into work. Network thread. */
int xd_train_decode(xd_api_t *api, const xd_api_request_t *req, const char *name, xd_work_t *work, xd_error_t *err);

#endif
