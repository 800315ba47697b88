/* fuzz_upload.c — PUT /models/NAME as the admin, into a scratch model folder: the JSON
 * bundle with "onnx": {"base64": ...} (base64 decoding, then the ONNX importer) and the
 * application/octet-stream form (the X-Explaind-Bundle header, JSON or base64, and the
 * graph as the body). The first byte picks the form; for octet-stream the header value is
 * the input up to the first newline and the body the rest. Whatever the input, the answer
 * is a status (never 500) and a successful upload leaves a model that loads back. Under
 * libFuzzer the scratch folder (/tmp/xd-fuzz-upload-*) outlives the run: delete it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api.h"
#include "api/bundle.h"
#include "core/mat.h"
#include "tests/fuzz/fuzz.h"

static char scratch[64];

static void cleanup(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", scratch);
  if (scratch[0] && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", scratch);
}

static xd_api_t *setup(void) {
  static xd_api_t *api;
  if (api) return api;
  xd_blas_init();
  snprintf(scratch, sizeof scratch, "/tmp/xd-fuzz-upload-XXXXXX");
  if (!mkdtemp(scratch)) abort();
  atexit(cleanup);
  static xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  cfg.model_dir = scratch;
  cfg.admin_key = "fuzz-admin";
  xd_registry_t *reg;
  xd_registry_new(&reg);
  xd_api_new(&cfg, reg, &api);
  xd_api_set_ready(api, 1);
  return api;
}

typedef struct hdrs {
  const char *content_type, *bundle;
} hdrs_t;

static const char *header(void *ctx, const char *name) {
  hdrs_t *h = ctx;
  if (strcasecmp(name, "Authorization") == 0) return "Bearer fuzz-admin";
  if (strcasecmp(name, "Content-Type") == 0) return h->content_type;
  if (strcasecmp(name, "X-Explaind-Bundle") == 0) return h->bundle;
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  xd_api_t *api = setup();
  hdrs_t h = {"application/json", NULL};
  const char *body = (const char *)data + 1;
  size_t len = size - 1;
  char *value = NULL;
  if (data[0] & 1) { /* octet-stream: header line, then the graph */
    const char *nl = memchr(body, '\n', len);
    size_t hl = nl ? (size_t)(nl - body) : len;
    value = malloc(hl + 1);
    if (!value) return 0;
    memcpy(value, body, hl);
    value[hl] = '\0';
    if (strlen(value) != hl) value[0] = '\0'; /* a header value has no NUL */
    h.content_type = "application/octet-stream";
    h.bundle = value;
    body = nl ? nl + 1 : body + len;
    len -= nl ? hl + 1 : hl;
  }
  xd_api_request_t req = {"PUT", "/models/fz", NULL, body, len, header, &h};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  xd_cancel_t cancel = {NULL, xd_now_ns() + 2000000000LL};
  xd_api_handle_sync(api, &req, &resp, &cancel);
  if (getenv("XD_FUZZ_VERBOSE")) fprintf(stderr, "%d %.*s\n", resp.status, (int)resp.body_len, resp.body);
  if (resp.status == 500) __builtin_trap();
  if (resp.status == 200 || resp.status == 201) { /* what was stored loads back */
    char path[128];
    snprintf(path, sizeof path, "%s/fz.json", scratch);
    xd_model_t *m = NULL;
    xd_error_t err;
    if (xd_bundle_load_file(path, &m, NULL, &err) != XD_OK) __builtin_trap();
    xd_model_free(m);
  }
  xd_api_response_deinit(&resp);
  free(value);
  return 0;
}
