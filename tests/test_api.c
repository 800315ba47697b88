/* test_api.c — the router without sockets: every case of the request suite through
 * xd_api_handle (model work run inline), plus the error table and registry rules. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/bundle.h"
#include "core/alloc.h"
#include "core/mat.h"
#include "tests/cases.h"
#include "tests/test.h"

static xd_api_t *api;
static xd_registry_t *reg;

static const char *case_header(void *ctx, const char *name) {
  json_t *h = json_object_get(((xd_case_t *)ctx)->spec, "headers");
  const char *k;
  json_t *v;
  json_object_foreach(h, k, v) if (strcasecmp(k, name) == 0) return json_string_value(v);
  return NULL;
}

static int run_case(xd_case_t *c) {
  xd_api_request_t req = {json_string_value(json_object_get(c->spec, "method")),
                          json_string_value(json_object_get(c->spec, "path")),
                          NULL,
                          c->body,
                          c->body_len,
                          case_header,
                          c};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  xd_api_handle_sync(api, &req, &resp, NULL);
  int ok = xd_case_check(c, resp.status, resp.body, resp.body_len);
  if (resp.status == 405) {
    int allow = 0;
    for (size_t i = 0; i < resp.n_headers; i++) allow |= strcmp(resp.header_names[i], "Allow") == 0;
    if (!allow) fprintf(stderr, "  case %s: 405 without Allow\n", c->name);
    ok &= allow;
  }
  xd_api_response_deinit(&resp);
  return ok;
}

static void run_dir(const char *dir, size_t min_cases) {
  xd_case_t *cs;
  size_t n = xd_cases_load(dir, &cs), ran = 0;
  CHECK_MSG(n >= min_cases, "%s has %zu cases", dir, n);
  for (size_t i = 0; i < n; i++) {
    if (json_is_true(json_object_get(cs[i].spec, "http_only"))) continue;
    CHECK_MSG(run_case(&cs[i]), "case %s", cs[i].name);
    ran++;
  }
  CHECK(ran > 0);
  xd_cases_free(cs, n);
}

TEST(invalid_requests_get_their_error) { run_dir("tests/requests/invalid", 30); }
TEST(valid_requests_succeed) { run_dir("tests/requests/valid", 5); }

TEST(error_table_maps_codes) {
  CHECK(xd_api_http_status(XD_EINVAL) == 400 && strcmp(xd_api_error_code(XD_EINVAL), "invalid_argument") == 0);
  CHECK(xd_api_http_status(XD_EJSON) == 400 && strcmp(xd_api_error_code(XD_EJSON), "invalid_json") == 0);
  CHECK(xd_api_http_status(XD_ENOTFOUND) == 404);
  CHECK(xd_api_http_status(XD_ETOOBIG) == 413);
  CHECK(xd_api_http_status(XD_EOVERLOAD) == 503 && strcmp(xd_api_error_code(XD_EOVERLOAD), "overloaded") == 0);
  CHECK(xd_api_http_status(XD_ETIMEDOUT) == 504 && strcmp(xd_api_error_code(XD_ETIMEDOUT), "deadline_exceeded") == 0);
  CHECK(xd_api_http_status(XD_ENOMEM) == 500 && strcmp(xd_api_error_code(XD_ENOMEM), "internal") == 0);
  xd_api_response_t r;
  memset(&r, 0, sizeof r);
  xd_error_t e;
  xd_error_set(&e, XD_EOVERLOAD, NULL, "busy");
  xd_api_error(&e, &r);
  CHECK(r.status == 503 && r.n_headers == 1 && strcmp(r.header_names[0], "Retry-After") == 0);
  xd_api_response_deinit(&r);
}

TEST(model_names) {
  CHECK(xd_model_name_valid("iris"));
  CHECK(xd_model_name_valid("a.b-c_1"));
  CHECK(!xd_model_name_valid(""));
  CHECK(!xd_model_name_valid("-x"));
  CHECK(!xd_model_name_valid("a/b"));
  char longname[80];
  memset(longname, 'a', 65);
  longname[65] = '\0';
  CHECK(!xd_model_name_valid(longname));
  longname[64] = '\0';
  CHECK(xd_model_name_valid(longname));
}

TEST(registry_replacement_keeps_old_entry_alive) {
  xd_model_entry_t *old = xd_registry_get(reg, "iris");
  CHECK(old != NULL);
  if (!old) return;
  uint64_t v = old->version;
  xd_model_t *m;
  xd_error_t err;
  CHECK(xd_bundle_load_file("models/iris/model.json", &m, NULL, &err) == XD_OK);
  int replaced = 0;
  CHECK(xd_registry_put(reg, "iris", m, "x", NULL, 0, &replaced) == XD_OK && replaced);
  xd_model_entry_t *now = xd_registry_get(reg, "iris");
  CHECK(now && now != old && now->version == v + 1);
  /* the old entry is still usable by its holder */
  CHECK(xd_model_n_features(old->model) == 4);
  xd_model_entry_release(old);
  xd_model_entry_release(now);
  CHECK(xd_registry_remove(reg, "nope") == XD_ENOTFOUND);
}


static void quiet(void *ctx, const char *msg) { (void)ctx, (void)msg; }

static void collect(void *ctx, const char *msg) {
  char *buf = ctx;
  size_t l = strlen(buf);
  snprintf(buf + l, 8192 - l, "%s\n", msg);
}

TEST(model_dir_skips_broken_bundles_and_names_them) {
  char dir[] = "/tmp/xd-models-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char path[512], cmd[1024];
  /* a good folder bundle, a broken file bundle, a file whose name is not a model name */
  snprintf(cmd, sizeof cmd, "cp -r models/iris %s/good && printf '{\"format\":\"explaind.model/v1\",\"task\":\"x\"}' > %s/broken.json && cp models/iris/model.json '%s/bad name.json'", dir, dir, dir);
  CHECK(system(cmd) == 0);
  xd_registry_t *r2;
  xd_api_t *a2;
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  xd_registry_new(&r2);
  xd_api_new(&cfg, r2, &a2);
  char log[8192] = "";
  CHECK(xd_api_load_dir(a2, dir, collect, log) == 1);
  CHECK(xd_registry_count(r2) == 1);
  xd_model_entry_t *e = xd_registry_get(r2, "good");
  CHECK(e != NULL);
  xd_model_entry_release(e);
  snprintf(path, sizeof path, "%s/broken.json", dir);
  CHECK_MSG(strstr(log, path) && strstr(log, "task"), "log: %s", log);
  CHECK_MSG(strstr(log, "bad name") && strstr(log, "not a valid model name"), "log: %s", log);
  /* a rescan of unchanged files keeps the version */
  CHECK(xd_api_load_dir(a2, dir, quiet, NULL) == 1);
  e = xd_registry_get(r2, "good");
  CHECK(e && e->version == 1);
  xd_model_entry_release(e);
  CHECK(xd_api_load_dir(a2, "/nonexistent/dir", quiet, NULL) == -1);
  xd_api_free(a2);
  xd_registry_free(r2);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
}

int main(void) {
  xd_blas_init();
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  cfg.limits.max_rows = 100; /* the suite's too_many_rows case sends 101 */
  cfg.inline_predict_rows = 64;
  xd_registry_new(&reg);
  xd_api_new(&cfg, reg, &api);
  int n = xd_api_load_dir(api, "models", quiet, NULL);
  if (n != 8) fprintf(stderr, "loaded %d models, want 8\n", n);
  xd_api_set_ready(api, 1);
  RUN(invalid_requests_get_their_error);
  RUN(valid_requests_succeed);
  RUN(error_table_maps_codes);
  RUN(model_names);
  RUN(registry_replacement_keeps_old_entry_alive);
  RUN(model_dir_skips_broken_bundles_and_names_them);
  xd_api_free(api);
  xd_registry_free(reg);
  return TEST_REPORT();
}
