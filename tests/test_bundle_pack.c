/* test_bundle_pack.c — `explaind bundle pack DIR -o FILE` (server/cli_bundle.c).
 *
 * - Every demo folder bundle (models/NAME/) packs into a bundle that decodes with no
 *   folder to read from (inline only), keeps its features, classes and background rows,
 *   and predicts bit-identically to the folder bundle on its background rows.
 * - examples/iris_bundle.json is exactly what packing models/iris gives (kept current).
 * - An ONNX folder bundle packs with the graph as "onnx": {"base64": ...}; the real server
 *   accepts it with PUT /models/{name} (201) and predicts what the folder bundle predicts.
 * - Errors: a missing folder and a broken bundle exit 1 naming the path and field; a
 *   wrong command line exits 2 with the usage.
 * Closing line "N passed, N failed". Run from the repository root.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/bundle.h"
#include "api/files.h"
#include "core/alloc.h"
#include "core/dataset.h"
#include "core/model.h"
#include "tests/harness.h"
#include "tests/test.h"

static char bin[1024];
static char tmp[] = "/tmp/xd-pack-XXXXXX";

/* Runs sh -c cmd; stderr into *err_out (malloc'd) when non-NULL. Exit status or -1. */
static int run(const char *cmd, char **err_out) {
  char full[4096], errf[256];
  snprintf(errf, sizeof errf, "%s/stderr", tmp);
  snprintf(full, sizeof full, "%s 2>'%s'", cmd, errf);
  int st = system(full);
  if (err_out) {
    size_t len;
    xd_error_t e;
    *err_out = NULL;
    if (xd_read_file(errf, 1 << 20, err_out, &len, &e) != XD_OK) *err_out = NULL;
  }
  return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int same_outputs(const xd_model_t *a, const xd_model_t *b) {
  const xd_dataset_t *bg = xd_model_background(a);
  size_t n = bg->n, k = xd_model_n_outputs(a);
  if (k != xd_model_n_outputs(b)) return 0;
  double *pa = xd_malloc(n * k * sizeof *pa), *pb = xd_malloc(n * k * sizeof *pb);
  xd_error_t e;
  int same = pa && pb && xd_model_predict(a, bg->X, n, pa, NULL, &e) == XD_OK &&
             xd_model_predict(b, bg->X, n, pb, NULL, &e) == XD_OK && memcmp(pa, pb, n * k * sizeof *pa) == 0;
  xd_free(pa);
  xd_free(pb);
  return same;
}

TEST(demo_models_pack_and_predict_identically) {
  static const char *const names[] = {"iris", "breast_cancer", "wine", "diabetes", "credit"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char cmd[2048], out[512], path[512];
    snprintf(out, sizeof out, "%s/%s.json", tmp, names[i]);
    snprintf(cmd, sizeof cmd, "%s bundle pack models/%s -o %s", bin, names[i], out);
    CHECK_MSG(run(cmd, NULL) == 0, "%s", cmd);
    snprintf(path, sizeof path, "models/%s/model.json", names[i]);
    xd_error_t err;
    xd_model_t *folder = NULL, *packed = NULL;
    char *text = NULL;
    size_t len = 0;
    CHECK(xd_bundle_load_file(path, &folder, NULL, &err) == XD_OK);
    CHECK(xd_read_file(out, 64u << 20, &text, &len, &err) == XD_OK);
    /* dir NULL: only inline data is allowed, so nothing may still name a file */
    CHECK_MSG(text && xd_bundle_decode(text, len, NULL, &packed, &err) == XD_OK, "%s: %s: %s", names[i], err.field, err.text);
    if (folder && packed) {
      CHECK(xd_model_n_features(folder) == xd_model_n_features(packed));
      CHECK(xd_model_background(folder)->n == xd_model_background(packed)->n);
      CHECK(xd_model_background(folder)->n > 0);
      CHECK_MSG(same_outputs(folder, packed), "%s predicts differently once packed", names[i]);
    }
    json_error_t jerr;
    json_t *doc = text ? json_loads(text, 0, &jerr) : NULL;
    CHECK(doc && json_is_array(json_object_get(json_object_get(doc, "background"), "rows")));
    CHECK(doc && json_object_get(json_object_get(doc, "background"), "csv") == NULL);
    CHECK(doc && json_object_get(doc, "x-source") != NULL); /* the author's own keys are kept */
    json_decref(doc);
    xd_free(text);
    xd_model_free(folder);
    xd_model_free(packed);
  }
}

TEST(example_bundle_is_current) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s bundle pack models/iris -o - | cmp -s - examples/iris_bundle.json", bin);
  CHECK_MSG(run(cmd, NULL) == 0, "examples/iris_bundle.json is not what `explaind bundle pack models/iris` gives: "
                                 "regenerate it with: explaind bundle pack models/iris -o examples/iris_bundle.json");
}

TEST(onnx_bundle_packs_and_uploads) {
  char cmd[2048], out[512];
  snprintf(out, sizeof out, "%s/onnx.json", tmp);
  snprintf(cmd, sizeof cmd, "%s bundle pack tests/onnx/categorical_op13.json -o %s", bin, out);
  CHECK_MSG(run(cmd, NULL) == 0, "%s", cmd);
  xd_error_t err;
  char *text = NULL;
  size_t len = 0;
  CHECK(xd_read_file(out, 64u << 20, &text, &len, &err) == XD_OK);
  if (!text) return;
  json_error_t jerr;
  json_t *doc = json_loads(text, 0, &jerr);
  const char *b64 = json_string_value(json_object_get(json_object_get(doc, "onnx"), "base64"));
  CHECK(b64 && strlen(b64) > 100);
  json_decref(doc);

  static const char *const env[] = {"EXPLAIND_ADMIN_KEY=pack-test-admin", NULL};
  char dir[512];
  snprintf(dir, sizeof dir, "%s/models", tmp);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  CHECK(system(cmd) == 0);
  const char *args[] = {"--model-dir", dir, NULL};
  xd_server_t s;
  if (xd_server_start(&s, args, env) != 0) {
    CHECK_MSG(0, "the server did not start");
    xd_free(text);
    return;
  }
  xd_http_resp_t r;
  CHECK(xd_http(s.port, "PUT", "/models/cat", "Authorization: Bearer pack-test-admin\r\nContent-Type: application/json\r\n",
                text, len, &r) == 0);
  CHECK_MSG(r.status == 201, "PUT: %d %s", r.status, r.body ? r.body : "");
  xd_http_resp_free(&r);
  static const char req[] = "{\"model\":\"cat\",\"instances\":[[165.0,\"red\",60.0]]}";
  CHECK(xd_http(s.port, "POST", "/predict", NULL, req, sizeof req - 1, &r) == 0);
  CHECK(r.status == 200);
  /* tests/onnx/categorical_op13.expected.json: the reference outputs of that row */
  json_t *exp = json_load_file("tests/onnx/categorical_op13.expected.json", 0, &jerr);
  json_t *got = r.body ? json_loads(r.body, 0, &jerr) : NULL;
  json_t *pe = json_array_get(json_object_get(exp, "outputs"), 0);
  json_t *pg = json_array_get(json_object_get(got, "probabilities"), 0);
  CHECK(pe && pg && json_array_size(pe) == json_array_size(pg));
  for (size_t k = 0; pe && pg && k < json_array_size(pe); k++) {
    double a = json_number_value(json_array_get(pe, k)), b = json_number_value(json_array_get(pg, k));
    CHECK_MSG(a - b < 1e-5 && b - a < 1e-5, "output %zu: %.9g vs %.9g", k, a, b);
  }
  json_decref(exp);
  json_decref(got);
  xd_http_resp_free(&r);
  CHECK(xd_server_stop(&s) == 0);
  xd_free(text);
}

TEST(errors) {
  char cmd[2048], *err = NULL;
  snprintf(cmd, sizeof cmd, "%s bundle pack %s/no-such-folder -o %s/x.json", bin, tmp, tmp);
  CHECK(run(cmd, &err) == 1);
  CHECK(err && strstr(err, "no-such-folder") != NULL);
  xd_free(err);
  /* A folder bundle with a wrong shape: the loader's error, with its field. */
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s/broken && sed 's/\"sepal length (cm)\"/\"sepal length (cm)\", \"type\": \"numeric\", \"x\": 1/' "
           "models/iris/model.json > %s/broken/model.json && cp models/iris/background.csv %s/broken/",
           tmp, tmp, tmp);
  CHECK(system(cmd) == 0);
  snprintf(cmd, sizeof cmd, "%s bundle pack %s/broken -o %s/broken.json", bin, tmp, tmp);
  CHECK(run(cmd, &err) == 1);
  CHECK_MSG(err && strstr(err, "features[0]") != NULL, "%s", err ? err : "");
  xd_free(err);
  snprintf(cmd, sizeof cmd, "test ! -e %s/broken.json", tmp);
  CHECK(system(cmd) == 0);
  snprintf(cmd, sizeof cmd, "%s bundle unpack x", bin);
  CHECK(run(cmd, &err) == 2);
  CHECK(err && strstr(err, "usage: explaind bundle pack") != NULL);
  xd_free(err);
  snprintf(cmd, sizeof cmd, "%s bundle pack a b", bin);
  CHECK(run(cmd, NULL) == 2);
}

int main(void) {
  if (access("examples/iris_bundle.json", R_OK) != 0 || !mkdtemp(tmp)) {
    fprintf(stderr, "run from the repository root\n");
    printf("0 passed, 1 failed\n");
    return 1;
  }
  const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
  snprintf(bin, sizeof bin, "%s/explaind", build);
  RUN(demo_models_pack_and_predict_identically);
  RUN(example_bundle_is_current);
  RUN(onnx_bundle_packs_and_uploads);
  RUN(errors);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
  return TEST_REPORT();
}
