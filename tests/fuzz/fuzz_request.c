/* fuzz_request.c — request decoding and validation for every endpoint, against the demo
 * models: the first byte picks the route, the rest is the JSON body. Model work runs
 * inline under small limits and a short deadline, as a worker would run it. */
#include <string.h>

#include "api/api.h"
#include "core/mat.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_api.h"

static const char *const routes[][2] = {
    {"POST", "/predict"},         {"POST", "/explain/lime"}, {"POST", "/explain/gradient"},
    {"POST", "/explain/shap"},    {"POST", "/importance"},   {"POST", "/explain/pdp"},
    {"POST", "/v2/models/iris/infer"}, {"POST", "/v2/models/credit/infer"},
};

static xd_api_t *setup(void) { return xd_fuzz_api(NULL, 0, NULL); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  xd_api_t *api = setup();
  size_t r = data[0] % (sizeof routes / sizeof *routes);
  xd_api_request_t req = {routes[r][0], routes[r][1], NULL, (const char *)data + 1, size - 1, NULL, NULL};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  /* A generous deadline, as a worker would have, so slow inputs end as 504. */
  xd_cancel_t cancel = {NULL, xd_now_ns() + 2000000000LL};
  xd_api_handle_sync(api, &req, &resp, &cancel);
  /* Every answer is a status and a body; a 500 from input would be a bug. */
  if (resp.status == 500) __builtin_trap();
  xd_api_response_deinit(&resp);
  return 0;
}
