/* test_web.c — the embedded web files, the OpenAPI document and the dashboard.
 *
 * - Unit: api/static.c serves every embedded file with its type, Cache-Control and ETag
 *   (304 on If-None-Match), refuses other methods with 405 + Allow, answers 500 when the
 *   copy cannot be allocated, and leaves other paths alone.
 * - The OpenAPI document (web/openapi.json): every route of API.md is in it; it lints
 *   clean with Redocly's CLI (recommended-strict rules, tests/web/redocly.yaml); and the
 *   real server's answers (service endpoints, /predict and its errors, the explanation,
 *   V2 and metrics endpoints) conform to it (tests/web/conform.mjs, ajv).
 * - The dashboard end to end in headless Chromium (Debian's chromium driven by npm
 *   playwright-core, tests/web/dashboard.mjs) against the real server; the screenshot is
 *   saved as $BUILD/artifacts/dashboard.png. The text and image views likewise
 *   (tests/web/text_view.mjs, tests/web/image_view.mjs).
 *
 * node, the npm packages (tests/web/node_modules) and chromium come from `make
 * web-deps`. A missing one is a skip, printed with how to get it, except under CI=true,
 * where it is a failure (a broken install step must not pass as a skip). Network: none
 * but the loopback server. Closing line "N passed, N failed, N skipped". Run from the
 * repository root.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/api.h"
#include "api/static.h"
#include "core/alloc.h"
#include "tests/harness.h"
#include "tests/test.h"

#define SPEC "web/openapi.json"
#define CHROMIUM "/usr/bin/chromium"
/* Redocly must not phone home (telemetry, update check): no network but loopback. */
#define NODE_ENV "REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1 "

static int n_skipped;

static int under_ci(void) {
  const char *ci = getenv("CI");
  return ci && *ci && strcmp(ci, "false") != 0 && strcmp(ci, "0") != 0;
}

/* Counts name as skipped with the reason; under CI a tool that `make web-deps` installs
 * being missing is a failure instead. */
static void skip(const char *name, const char *why) {
  if (under_ci()) {
    xd_test_failed++;
    fprintf(stderr, "FAIL %s: %s (a skip is a failure under CI: make web-deps installs it)\n", name, why);
    return;
  }
  n_skipped++;
  fprintf(stderr, "skip %s: %s\n", name, why);
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Why the node tools cannot run (NULL when they can). */
static const char *node_missing(void) {
  if (system("command -v node >/dev/null 2>&1") != 0) return "node is not installed (make web-deps)";
  if (!exists("tests/web/node_modules/.package-lock.json"))
    return "tests/web/node_modules is missing (make web-deps: npm ci in tests/web)";
  return NULL;
}

/* Runs cmd with sh; returns its exit status (-1 when it could not run or was killed). */
static int run(const char *cmd) {
  fflush(stdout);
  fflush(stderr);
  int st = system(cmd);
  if (st == -1 || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}

/* ---- api/static.c ---------------------------------------------------------------- */

static const char *no_header(void *ctx, const char *name) { return NULL; }

static const char *inm_header(void *ctx, const char *name) {
  return strcasecmp(name, "If-None-Match") == 0 ? ctx : NULL;
}

static const char *resp_header(const xd_api_response_t *r, const char *name) {
  for (size_t i = 0; i < r->n_headers; i++)
    if (strcasecmp(r->header_names[i], name) == 0) return r->header_values[i];
  return NULL;
}

/* The router over an empty registry, no keys: what the server does with the request. */
static xd_api_t *web_api;

/* Routes the request; returns 1 when the embedded files' route answered it. */
static int serve(const char *method, const char *path, const char *inm, xd_api_response_t *r) {
  memset(r, 0, sizeof *r);
  xd_api_request_t q = {.method = method, .path = path, .header = inm ? inm_header : no_header, .header_ctx = (void *)inm};
  xd_api_handle_sync(web_api, &q, r, NULL);
  return r->endpoint && (strcmp(r->endpoint, "dashboard") == 0 || strcmp(r->endpoint, "openapi") == 0);
}

TEST(static_serves_every_file) {
  static const struct {
    const char *path, *type, *needle;
  } files[] = {
      {"/", "text/html; charset=utf-8", "<html"},
      {"/index.html", "text/html; charset=utf-8", "/app.js"},
      {"/app.js", "text/javascript; charset=utf-8", "barChart"},
      {"/app.css", "text/css; charset=utf-8", ".bars"},
      {"/openapi.json", "application/json", "\"openapi\""},
  };
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    xd_api_response_t r;
    CHECK_MSG(serve("GET", files[i].path, NULL, &r) == 1, "%s", files[i].path);
    CHECK_MSG(r.status == 200, "%s: %d", files[i].path, r.status);
    CHECK_MSG(r.content_type && strcmp(r.content_type, files[i].type) == 0, "%s: %s", files[i].path, r.content_type);
    const xd_static_asset_t *a = xd_static_find(files[i].path);
    CHECK(a != NULL);
    CHECK(a && r.body_len == a->len && r.body && memcmp(r.body, a->data, a->len) == 0);
    CHECK(r.body && memmem(r.body, r.body_len, files[i].needle, strlen(files[i].needle)) != NULL);
    const char *cc = resp_header(&r, "Cache-Control"), *etag = resp_header(&r, "ETag");
    CHECK(cc && strcmp(cc, "no-cache") == 0);
    CHECK(etag && a && strcmp(etag, a->etag) == 0 && etag[0] == '"');
    CHECK(resp_header(&r, "Content-Security-Policy") != NULL);
    CHECK(r.endpoint && strcmp(r.endpoint, i == 4 ? "openapi" : "dashboard") == 0);
    xd_api_response_deinit(&r);
  }
  /* HEAD is answered as GET (the server sends no body for HEAD). */
  xd_api_response_t r;
  CHECK(serve("HEAD", "/app.css", NULL, &r) == 1 && r.status == 200);
  xd_api_response_deinit(&r);
}

TEST(static_revalidation_and_methods) {
  const xd_static_asset_t *a = xd_static_find("/app.js");
  CHECK(a != NULL);
  if (!a) return;
  xd_api_response_t r;
  char list[128];
  snprintf(list, sizeof list, "\"0-0\", W/%s", a->etag);
  CHECK(serve("GET", "/app.js", a->etag, &r) == 1 && r.status == 304 && r.body == NULL && r.body_len == 0);
  CHECK(resp_header(&r, "ETag") != NULL);
  xd_api_response_deinit(&r);
  CHECK(serve("GET", "/app.js", list, &r) == 1 && r.status == 304);
  xd_api_response_deinit(&r);
  CHECK(serve("GET", "/app.js", "\"0-0\"", &r) == 1 && r.status == 200 && r.body_len == a->len);
  xd_api_response_deinit(&r);

  CHECK(serve("POST", "/", NULL, &r) == 1 && r.status == 405);
  CHECK(resp_header(&r, "Allow") && strcmp(resp_header(&r, "Allow"), "GET, HEAD") == 0);
  CHECK(r.body && strstr(r.body, "\"method_not_allowed\"") != NULL);
  xd_api_response_deinit(&r);

  /* Not embedded files: other routes, or 404. */
  static const char *const others[] = {"/healthz", "/models", "/index", "/app.js/", "//", "/web/app.js", "", "/app"};
  for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
    CHECK_MSG(serve("GET", others[i], NULL, &r) == 0, "%s", others[i]);
    CHECK(!resp_header(&r, "Content-Security-Policy"));
    CHECK_MSG(i < 2 ? r.status == 200 : r.status == 404, "%s: %d", others[i], r.status);
    xd_api_response_deinit(&r);
  }
}

TEST(static_allocation_failure) {
  xd_api_response_t r;
  xd_alloc_fail_after(1);
  CHECK(serve("GET", "/openapi.json", NULL, &r) == 1);
  xd_alloc_fail_after(0);
  CHECK(r.status == 500);
  CHECK(r.body && strstr(r.body, "\"internal\"") != NULL);
  xd_api_response_deinit(&r);
}

/* ---- the OpenAPI document ---------------------------------------------------------- */

TEST(openapi_documents_every_route) {
  json_error_t jerr;
  json_t *doc = json_load_file(SPEC, 0, &jerr);
  CHECK_MSG(doc != NULL, "%s: %s (line %d)", SPEC, jerr.text, jerr.line);
  if (!doc) return;
  /* The document served is the one in the tree. */
  const xd_static_asset_t *a = xd_static_find("/openapi.json");
  json_t *embedded = a ? json_loadb((const char *)a->data, a->len, 0, &jerr) : NULL;
  CHECK(embedded && json_equal(doc, embedded));
  json_decref(embedded);
  const char *ver = json_string_value(json_object_get(doc, "openapi"));
  CHECK(ver && strncmp(ver, "3.", 2) == 0);
  static const struct {
    const char *path, *method;
  } routes[] = {
      {"/healthz", "get"},        {"/readyz", "get"},          {"/models", "get"},
      {"/models/{name}", "get"},  {"/models/{name}", "put"},   {"/models/{name}", "delete"},
      {"/models/{name}/train", "post"},
      {"/predict", "post"},       {"/explain/lime", "post"},   {"/explain/gradient", "post"},
      {"/explain/shap", "post"},  {"/importance", "post"},     {"/explain/pdp", "post"},
      {"/metrics", "get"},        {"/openapi.json", "get"},    {"/", "get"},
      {"/v2", "get"},             {"/v2/health/live", "get"},  {"/v2/health/ready", "get"},
      {"/v2/models/{name}", "get"}, {"/v2/models/{name}/ready", "get"}, {"/v2/models/{name}/infer", "post"},
      {"/jobs", "post"},          {"/jobs", "get"},            {"/jobs/{id}", "get"},
      {"/jobs/{id}", "delete"},   {"/jobs/{id}/results", "get"}, {"/jobs/{id}/events", "get"},
  };
  json_t *paths = json_object_get(doc, "paths");
  for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
    json_t *op = json_object_get(json_object_get(paths, routes[i].path), routes[i].method);
    CHECK_MSG(op != NULL, "%s %s is not documented", routes[i].method, routes[i].path);
    CHECK_MSG(json_object_get(op, "responses") != NULL, "%s %s has no responses", routes[i].method, routes[i].path);
  }
  /* Every native error code of API.md is in the error schema. */
  json_t *codes = json_object_get(
      json_object_get(json_object_get(json_object_get(json_object_get(json_object_get(json_object_get(doc, "components"),
                                                                                       "schemas"),
                                                                       "Error"),
                                                      "properties"),
                                      "error"),
                      "properties"),
      "code");
  const char *want[] = {"invalid_json",      "invalid_argument",       "unauthenticated", "permission_denied",
                        "not_found",         "method_not_allowed",     "conflict",        "payload_too_large",
                        "unsupported_media_type", "overloaded",        "deadline_exceeded", "internal"};
  json_t *en = json_object_get(codes, "enum");
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    int found = 0;
    for (size_t k = 0; k < json_array_size(en); k++)
      found |= strcmp(json_string_value(json_array_get(en, k)), want[i]) == 0;
    CHECK_MSG(found, "error code %s is not in components.schemas.Error", want[i]);
  }
  json_decref(doc);
}

TEST(openapi_lint) {
  CHECK(run("cd tests/web && " NODE_ENV "timeout 180 node node_modules/@redocly/cli/bin/cli.js lint "
            "--config redocly.yaml --format stylish ../../" SPEC " >&2") == 0);
  /* The linter is real: a broken copy must fail. */
  char bad[] = "/tmp/xd-openapi-bad-XXXXXX";
  int fd = mkstemp(bad);
  CHECK(fd >= 0);
  if (fd < 0) return;
  static const char broken[] = "{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"x\"},\"paths\":{\"/a\":{\"get\":"
                               "{\"responses\":{\"200\":{\"content\":{\"application/json\":{\"schema\":"
                               "{\"$ref\":\"#/components/schemas/Nope\"}}}}}}}}}";
  CHECK(write(fd, broken, sizeof broken - 1) == (ssize_t)(sizeof broken - 1));
  close(fd);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "cd tests/web && " NODE_ENV "timeout 180 node node_modules/@redocly/cli/bin/cli.js lint "
           "--config redocly.yaml --format stylish %s >/dev/null 2>&1",
           bad);
  CHECK_MSG(run(cmd) == 1, "a broken document passed the lint");
  unlink(bad);
}

/* ---- against the real server ---------------------------------------------------- */

/* Under valgrind Kernel SHAP on breast_cancer takes longer than the default deadline. */
static const char *const *server_args(void) {
  static const char *const slow[] = {"--request-timeout", "600000", NULL};
  return xd_under_valgrind() ? slow : NULL;
}

TEST(conformance) {
  /* A model folder of its own, so that PUT, DELETE and training never touch models/. */
  char dir[] = "/tmp/xd-web-models-XXXXXX", cmd[512];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(cmd, sizeof cmd, "cp -R models/. '%s'/", dir);
  CHECK(run(cmd) == 0);
  const char *args[] = {"--model-dir", dir, NULL, NULL, NULL};
  if (xd_under_valgrind()) args[2] = "--request-timeout", args[3] = "600000";
  static const char *const env[] = {"EXPLAIND_ADMIN_KEY=web-test-admin-key", NULL};
  xd_server_t s;
  if (xd_server_start(&s, args, env) == 0) {
    snprintf(cmd, sizeof cmd, "cd tests/web && ADMIN_KEY=web-test-admin-key timeout 300 node conform.mjs ../../" SPEC " %d >&2",
             s.port);
    CHECK_MSG(run(cmd) == 0, "answers do not conform to %s (see above)", SPEC);
    CHECK(xd_server_stop(&s) == 0);
  } else {
    CHECK_MSG(0, "the server did not start");
  }
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  run(cmd);
}

TEST(dashboard) {
  const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
  char art[512], cmd[2048];
  snprintf(art, sizeof art, "%s/artifacts", build);
  xd_server_t s;
  if (xd_server_start(&s, server_args(), NULL) != 0) {
    CHECK_MSG(0, "the server did not start");
    return;
  }
  /* An absolute artifact folder: the script runs in tests/web. */
  char cwd[512];
  CHECK(getcwd(cwd, sizeof cwd) != NULL);
  snprintf(cmd, sizeof cmd, "cd tests/web && DASHBOARD_TIMEOUT_MS=%d timeout 600 node dashboard.mjs %d '%s%s%s' >&2",
           xd_under_valgrind() ? 300000 : 60000, s.port, art[0] == '/' ? "" : cwd, art[0] == '/' ? "" : "/", art);
  CHECK_MSG(run(cmd) == 0, "the dashboard run failed (see above)");
  snprintf(cmd, sizeof cmd, "%s/dashboard.png", art);
  CHECK_MSG(exists(cmd), "no screenshot at %s", cmd);
  CHECK(xd_server_stop(&s) == 0);
}

/* The text view (/text.html, tests/web/text_view.mjs): tokens and words shaded with the
 * API's values; screenshot $BUILD/artifacts/dashboard-text.png. */
TEST(dashboard_text) {
  const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
  char art[512], cmd[2048], cwd[512];
  snprintf(art, sizeof art, "%s/artifacts", build);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", art);
  run(cmd);
  xd_server_t s;
  if (xd_server_start(&s, server_args(), NULL) != 0) {
    CHECK_MSG(0, "the server did not start");
    return;
  }
  CHECK(getcwd(cwd, sizeof cwd) != NULL);
  snprintf(cmd, sizeof cmd, "cd tests/web && timeout 300 node text_view.mjs %d '%s%s%s' >&2", s.port,
           art[0] == '/' ? "" : cwd, art[0] == '/' ? "" : "/", art);
  CHECK_MSG(run(cmd) == 0, "the text view run failed (see above)");
  snprintf(cmd, sizeof cmd, "%s/dashboard-text.png", art);
  CHECK_MSG(exists(cmd), "no screenshot at %s", cmd);
  CHECK(xd_server_stop(&s) == 0);
}

/* The image view (/image.html, tests/web/image_view.mjs): overlays, legends and errors of
 * the real server's answers; screenshots $BUILD/artifacts/dashboard-image*.png. */
TEST(dashboard_image) {
  const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
  char art[512], cmd[2048], cwd[512];
  snprintf(art, sizeof art, "%s/artifacts", build);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", art);
  run(cmd);
  xd_server_t s;
  if (xd_server_start(&s, server_args(), NULL) != 0) {
    CHECK_MSG(0, "the server did not start");
    return;
  }
  CHECK(getcwd(cwd, sizeof cwd) != NULL);
  snprintf(cmd, sizeof cmd, "cd tests/web && timeout 600 node image_view.mjs %d '%s%s%s' >&2", s.port,
           art[0] == '/' ? "" : cwd, art[0] == '/' ? "" : "/", art);
  CHECK_MSG(run(cmd) == 0, "the image view run failed (see above)");
  snprintf(cmd, sizeof cmd, "%s/dashboard-image.png", art);
  CHECK_MSG(exists(cmd), "no screenshot at %s", cmd);
  CHECK(xd_server_stop(&s) == 0);
}

/* With API keys the page itself needs none (it holds no data), shows the API's 401 and
 * works once the key is typed in. */
TEST(dashboard_api_key) {
  static const char *const env[] = {"EXPLAIND_API_KEYS=web-test-key", NULL};
  xd_server_t s;
  if (xd_server_start(&s, server_args(), env) != 0) {
    CHECK_MSG(0, "the server did not start");
    return;
  }
  char cmd[512];
  snprintf(cmd, sizeof cmd, "cd tests/web && API_KEY=web-test-key DASHBOARD_TIMEOUT_MS=%d timeout 300 node dashboard.mjs %d /tmp >&2",
           xd_under_valgrind() ? 300000 : 60000, s.port);
  CHECK_MSG(run(cmd) == 0, "the dashboard with an API key failed (see above)");
  CHECK(xd_server_stop(&s) == 0);
}

int main(void) {
  if (!exists(SPEC)) {
    fprintf(stderr, "run from the repository root (no %s here)\n", SPEC);
    printf("0 passed, 1 failed\n");
    return 1;
  }
  xd_registry_t *reg = NULL;
  xd_api_config_t cfg = {0};
  xd_limits_default(&cfg.limits);
  if (xd_registry_new(&reg) != XD_OK || xd_api_new(&cfg, reg, &web_api) != XD_OK) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  xd_api_set_ready(web_api, 1);
  RUN(static_serves_every_file);
  RUN(static_revalidation_and_methods);
  RUN(static_allocation_failure);
  RUN(openapi_documents_every_route);

  const char *why = node_missing();
  if (why) {
    skip("openapi_lint", why);
    skip("openapi_conformance", why);
  } else {
    RUN(openapi_lint);
    RUN(conformance);
  }
  if (!why && access(CHROMIUM, X_OK) != 0) why = CHROMIUM " is missing (make web-deps: apt-get install chromium)";
  if (why) {
    skip("dashboard", why);
    skip("dashboard_api_key", why);
    skip("dashboard_text", why);
    skip("dashboard_image", why);
  } else {
    RUN(dashboard);
    RUN(dashboard_api_key);
    RUN(dashboard_text);
    RUN(dashboard_image);
  }

  xd_api_free(web_api);
  xd_registry_free(reg);
  printf("%d passed, %d failed, %d skipped\n", xd_test_passed, xd_test_failed, n_skipped);
  return xd_test_failed ? 1 : 0;
}
