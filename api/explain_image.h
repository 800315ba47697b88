/* explain_image.h — request pieces for image models shared by /explain/gradient and
 * /explain/occlusion (api/explain_image.c): baselines, [C][H][W] answers, rendered PNGs.
 * Network thread for decoding, worker threads for the rest. */
#ifndef XD_API_EXPLAIN_IMAGE_H
#define XD_API_EXPLAIN_IMAGE_H

#include <jansson.h>

#include "api/endpoints.h"
#include "core/image_explain.h"

/* /explain/gradient on an image model (API.md Part 2). */
int xd_gradient_image_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);

/* /explain/lime on an image model (api/explain_lime_image.c). */
int xd_lime_image_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
/* /explain/shap on an image model: Kernel SHAP over segments (api/explain_lime_image.c). */
int xd_shap_image_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);
/* 1 when body's "model" names a loaded image model (dispatch before any other check). */
int xd_api_is_image_model(xd_api_t *api, const json_t *body);

/* A baseline field: "black" | "white" | "blur" | "mean" | a number (model-input space,
 * XD_IMGX_ZERO plus *value) | a row [C][H][W] or {"b64"} (*row (P) xd_malloc'd).
 * allowed: bit k set when baseline kind k may be named. */
int xd_image_baseline_decode(const xd_model_t *m, const json_t *v, const char *field, unsigned allowed,
                             xd_imgx_baseline_t *kind, double *value, double **row, xd_error_t *err);
extern const char *const xd_imgx_baseline_names[];

/* [[C][H][W]] of n rows (n, C*H*W) and [[H][W]] of n maps (n, H*W). */
json_t *xd_json_chw(const double *x, size_t n, size_t C, size_t H, size_t W);

/* Base64 PNGs: heat (n, H*W) over the instances X (n, P) with a legend; signed_map picks
 * the diverging map. *legends (when legends is not NULL) gets the numbers of each
 * picture's colour bar, [{"colormap": "coolwarm"|"viridis", "min", "max"}], so that a
 * client can label the bar the PNG carries without deciding the range itself. */
json_t *xd_json_render(const xd_model_t *m, const double *X, const double *heat, size_t n, int signed_map,
                       json_t **legends, xd_error_t *err);

#endif
