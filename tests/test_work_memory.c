/* test_work_memory.c — --max-work-memory over HTTP: the bound on a graph model's working
 * memory per run reaches every run. A tiny limit makes the demo CNN's /predict answer 413
 * naming the limit; a modest one runs the batch in chunks with the answer of the default
 * 1 GiB (same classes, probabilities within float32 rounding); tabular models do not care. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/test.h"

static xd_server_t big, tiny, modest;
static char *images_body;

/* A /predict body with every golden image of models/shapes as pixel arrays. */
static char *shapes_body(void) {
  json_error_t e;
  json_t *g = json_load_file("tests/golden/graph/shapes.json", 0, &e);
  if (!g) return NULL;
  json_t *rows = json_array(), *x;
  size_t i;
  json_array_foreach(json_object_get(g, "instances"), i, x) json_array_append(rows, json_object_get(x, "pixels"));
  json_t *body = json_pack("{s:s, s:o}", "model", "shapes", "instances", rows);
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  json_decref(g);
  return s;
}

static int post(const xd_server_t *s, const char *path, const char *body, xd_http_resp_t *r) {
  return xd_http(s->port, "POST", path, "Content-Type: application/json\r\n", body, strlen(body), r);
}

TEST(tiny_limit_is_413_naming_it) {
  xd_http_resp_t r;
  CHECK(post(&tiny, "/predict", images_body, &r) == 0);
  CHECK_MSG(r.status == 413, "status %d: %.*s", r.status, (int)r.body_len, r.body);
  CHECK_MSG(r.body && strstr(r.body, "max_work_memory") && strstr(r.body, "4096"), "%.*s", (int)r.body_len, r.body);
  xd_http_resp_free(&r);
  /* a tabular model has no graph: the limit does not apply */
  const char *tab = "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]]}";
  CHECK(post(&tiny, "/predict", tab, &r) == 0);
  CHECK(r.status == 200);
  xd_http_resp_free(&r);
}

TEST(modest_limit_chunks_with_identical_answers) {
  xd_http_resp_t a, b;
  CHECK(post(&big, "/predict", images_body, &a) == 0);
  CHECK(post(&modest, "/predict", images_body, &b) == 0);
  CHECK_MSG(a.status == 200 && b.status == 200, "status %d and %d: %.*s", a.status, b.status, (int)b.body_len,
            b.body);
  /* Same classes; probabilities equal up to float32 rounding: the float GEMMs sum in an
   * order that depends on the batch size (BLAS blocking), so chunks of 2 rows and one
   * batch of 6 may differ in the last bits of the logits. */
  json_t *ja = json_loadb(a.body, a.body_len, 0, NULL), *jb = json_loadb(b.body, b.body_len, 0, NULL);
  CHECK(ja && jb && json_equal(json_object_get(ja, "predictions"), json_object_get(jb, "predictions")));
  json_t *pa = json_object_get(ja, "probabilities"), *pb = json_object_get(jb, "probabilities");
  CHECK(json_array_size(pa) == 6 && json_array_size(pb) == 6);
  double worst = 0;
  for (size_t i = 0; i < json_array_size(pa); i++)
    for (size_t k = 0; k < json_array_size(json_array_get(pa, i)); k++) {
      double d = json_number_value(json_array_get(json_array_get(pa, i), k)) -
                 json_number_value(json_array_get(json_array_get(pb, i), k));
      if (!(fabs(d) <= worst)) worst = fabs(d);
    }
  CHECK_MSG(worst <= 1e-6, "probabilities differ by %g", worst);
  json_decref(ja);
  json_decref(jb);
  xd_http_resp_free(&a);
  xd_http_resp_free(&b);
}

int main(void) {
  images_body = shapes_body();
  if (!images_body) {
    fprintf(stderr, "cannot read tests/golden/graph/shapes.json\n");
    printf("0 passed, 1 failed\n");
    return 1;
  }
  const char *a_big[] = {"--workers", "1", NULL};
  const char *a_tiny[] = {"--workers", "1", "--max-work-memory", "4096", NULL};
  /* two images per chunk of the 3x32x32 CNN (one needs about 197 KB): 6 images, 3 chunks */
  const char *env_modest[] = {"EXPLAIND_MAX_WORK_MEMORY=400k", NULL};
  const char *a_modest[] = {"--workers", "1", NULL};
  if (xd_server_start(&big, a_big, NULL) != 0 || xd_server_start(&tiny, a_tiny, NULL) != 0 ||
      xd_server_start(&modest, a_modest, env_modest) != 0) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  RUN(tiny_limit_is_413_naming_it);
  RUN(modest_limit_chunks_with_identical_answers);
  if (xd_test_failed) xd_server_dump_log(&modest, 20);
  int st = xd_server_stop(&big) | xd_server_stop(&tiny) | xd_server_stop(&modest);
  if (st != 0) {
    fprintf(stderr, "FAIL server exit status\n");
    xd_test_failed++;
  }
  free(images_body);
  return TEST_REPORT();
}
