/* explain_tree.h — /explain/shap on tree ensembles: TreeSHAP (API.md "Tree ensembles";
 * algorithms in core/trees.h and docs/trees.md). */
#ifndef XD_API_EXPLAIN_TREE_H
#define XD_API_EXPLAIN_TREE_H

#include <jansson.h>

#include "api/endpoints.h"

/* Returned by xd_tree_shap_decode when the request is not TreeSHAP's (a model that is
 * not a tree ensemble, or an explicit Kernel SHAP "method"): the caller decodes it as
 * Kernel SHAP. */
#define XD_TREE_SHAP_NOT_MINE 1

/* Decodes an /explain/shap body whose model is a tree ensemble and whose "method" is
 * absent, "auto" or "tree" into TreeSHAP work (parts of rows on the worker pool).
 * "method": "tree" on any other model is a 400 naming "method". Network thread. Returns
 * XD_OK, XD_TREE_SHAP_NOT_MINE or an error naming the field. */
int xd_tree_shap_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err);

#endif
