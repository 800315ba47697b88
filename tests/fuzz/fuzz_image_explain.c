/* fuzz_image_explain.c — the image explanation decoders (/explain/gradient, /explain/occlusion,
 * /explain/lime, /explain/shap on image models: baselines, windows, layers, segment maps,
 * segmentation objects, hide_color) against the demo models: the first byte picks the
 * route, the rest is the JSON body. Work runs inline under the small fuzzing limits. */
#include <string.h>

#include "api/api.h"
#include "core/mat.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_api.h"

static const char *const routes[] = {"/explain/gradient", "/explain/occlusion", "/explain/lime", "/explain/shap"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  xd_api_t *api = xd_fuzz_api(NULL, 0, NULL);
  size_t r = data[0] % (sizeof routes / sizeof *routes);
  xd_api_request_t req = {"POST", routes[r], NULL, (const char *)data + 1, size - 1, NULL, NULL};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  xd_cancel_t cancel = {NULL, xd_now_ns() + 2000000000LL};
  xd_api_handle_sync(api, &req, &resp, &cancel);
  if (resp.status == 500) __builtin_trap(); /* a 500 from input would be a bug */
  xd_api_response_deinit(&resp);
  return 0;
}
