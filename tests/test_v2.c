/* test_v2.c — the Open Inference Protocol (KServe V2) routes over HTTP: health, server
 * and model metadata, inference in the matrix and per-feature forms, output selection,
 * and errors in the protocol's {"error": "..."} shape. */
#include <jansson.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/test.h"

static xd_server_t srv;

static json_t *call(const char *method, const char *path, const char *body, int *status) {
  xd_http_resp_t r;
  *status = -1;
  if (xd_http(srv.port, method, path, body ? "Content-Type: application/json\r\n" : NULL, body, body ? strlen(body) : 0, &r) != 0)
    return NULL;
  *status = r.status;
  json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
  xd_http_resp_free(&r);
  return j;
}

/* An error in the protocol's shape: {"error": "<non-empty string>"} and nothing else. */
static int oip_error(json_t *j) {
  return j && json_object_size(j) == 1 && json_is_string(json_object_get(j, "error")) &&
         json_string_length(json_object_get(j, "error")) > 0;
}

TEST(health_and_server_metadata) {
  int st;
  json_t *j = call("GET", "/v2/health/live", NULL, &st);
  CHECK(st == 200 && json_is_true(json_object_get(j, "live")));
  json_decref(j);
  j = call("GET", "/v2/health/ready", NULL, &st);
  CHECK(st == 200 && json_is_true(json_object_get(j, "ready")));
  json_decref(j);
  j = call("GET", "/v2", NULL, &st);
  CHECK(st == 200 && strcmp(json_string_value(json_object_get(j, "name")), "explaind") == 0);
  CHECK(json_is_array(json_object_get(j, "extensions")));
  json_decref(j);
}

TEST(model_metadata_and_ready) {
  int st;
  json_t *j = call("GET", "/v2/models/iris", NULL, &st);
  CHECK(st == 200);
  CHECK(strcmp(json_string_value(json_object_get(j, "name")), "iris") == 0);
  json_t *in = json_array_get(json_object_get(j, "inputs"), 0);
  CHECK(json_integer_value(json_array_get(json_object_get(in, "shape"), 1)) == 4);
  const char *ver = json_string_value(json_array_get(json_object_get(j, "versions"), 0));
  CHECK(ver != NULL);
  char path[128];
  snprintf(path, sizeof path, "/v2/models/iris/versions/%s/ready", ver ? ver : "1");
  json_t *r = call("GET", path, NULL, &st);
  CHECK(st == 200 && json_is_true(json_object_get(r, "ready")));
  json_decref(r);
  r = call("GET", "/v2/models/iris/versions/999/ready", NULL, &st);
  CHECK(st == 404 && oip_error(r));
  json_decref(r);
  json_decref(j);
}

TEST(infer_matrix_flat_and_nested_agree_with_predict) {
  int st;
  const char *flat = "{\"id\":\"req-7\",\"inputs\":[{\"name\":\"input\",\"shape\":[2,4],\"datatype\":\"FP32\","
                     "\"data\":[5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3]}]}";
  const char *nested = "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,4],\"datatype\":\"FP64\","
                       "\"data\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}]}";
  json_t *a = call("POST", "/v2/models/iris/infer", flat, &st);
  CHECK(st == 200);
  CHECK(strcmp(json_string_value(json_object_get(a, "id")), "req-7") == 0);
  CHECK(strcmp(json_string_value(json_object_get(a, "model_name")), "iris") == 0);
  json_t *b = call("POST", "/v2/models/iris/infer", nested, &st);
  CHECK(st == 200);
  json_t *p = call("POST", "/predict", "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}", &st);
  json_t *oa = json_object_get(a, "outputs"), *ob = json_object_get(b, "outputs");
  CHECK(json_equal(oa, ob));
  json_t *probs = NULL, *labels = NULL;
  for (size_t i = 0; i < json_array_size(oa); i++) {
    const char *nm = json_string_value(json_object_get(json_array_get(oa, i), "name"));
    if (strcmp(nm, "probabilities") == 0) probs = json_array_get(oa, i);
    if (strcmp(nm, "label") == 0) labels = json_array_get(oa, i);
  }
  CHECK(probs && labels);
  if (probs && labels) {
    json_t *d = json_object_get(probs, "data"), *pp = json_object_get(p, "probabilities");
    CHECK(json_array_size(d) == 6);
    for (size_t i = 0; i < 6; i++)
      CHECK_NEAR(json_number_value(json_array_get(d, i)), json_number_value(json_array_get(json_array_get(pp, i / 3), i % 3)), 1e-12);
    CHECK(json_equal(json_object_get(labels, "data"), json_object_get(p, "predictions")));
  }
  json_decref(a), json_decref(b), json_decref(p);
}

TEST(infer_per_feature_with_bytes_categories) {
  int st;
  const char *body = "{\"inputs\":["
                     "{\"name\":\"age\",\"shape\":[1],\"datatype\":\"INT32\",\"data\":[33]},"
                     "{\"name\":\"income\",\"shape\":[1],\"datatype\":\"FP64\",\"data\":[41816]},"
                     "{\"name\":\"debt_ratio\",\"shape\":[1,1],\"datatype\":\"FP64\",\"data\":[[0.2156]]},"
                     "{\"name\":\"employment\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"employed\"]},"
                     "{\"name\":\"region\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"east\"]},"
                     "{\"name\":\"late_payments\",\"shape\":[1],\"datatype\":\"INT64\",\"data\":[1]}],"
                     "\"outputs\":[{\"name\":\"label\"}]}";
  json_t *j = call("POST", "/v2/models/credit/infer", body, &st);
  CHECK(st == 200);
  json_t *outs = json_object_get(j, "outputs");
  CHECK(json_array_size(outs) == 1); /* only the selected output */
  json_t *p = call("POST", "/predict", "{\"model\":\"credit\",\"instances\":[[33,41816,0.2156,\"employed\",\"east\",1]]}", &st);
  CHECK(json_equal(json_object_get(json_array_get(outs, 0), "data"), json_object_get(p, "predictions")));
  json_decref(j), json_decref(p);
}

TEST(errors_use_the_protocol_shape) {
  static const struct {
    const char *method, *path, *body;
    int status;
  } cases[] = {
      {"POST", "/v2/models/nope/infer", "{\"inputs\":[]}", 404},
      {"POST", "/v2/models/iris/infer", "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"BYTES\",\"data\":[\"a\",\"b\",\"c\",\"d\"]}]}", 400},
      {"POST", "/v2/models/iris/infer", "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}", 400},
      {"POST", "/v2/models/iris/infer", "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}", 400},
      {"POST", "/v2/models/iris/infer", "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}],\"outputs\":[{\"name\":\"logits\"}]}", 400},
      {"POST", "/v2/models/iris/infer", "not json", 400},
      {"POST", "/v2/models/iris/infer", "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}],\"extra\":1}", 400},
      {"POST", "/v2/models/iris/versions/42/infer", "{\"inputs\":[]}", 404},
      {"GET", "/v2/models/iris/infer", NULL, 405},
      {"GET", "/v2/unknown", NULL, 404},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int st;
    json_t *j = call(cases[i].method, cases[i].path, cases[i].body, &st);
    CHECK_MSG(st == cases[i].status, "case %zu: status %d, want %d", i, st, cases[i].status);
    CHECK_MSG(oip_error(j), "case %zu: not {\"error\": \"...\"}", i);
    json_decref(j);
  }
}

int main(void) {
  if (xd_server_start(&srv, NULL, NULL) != 0) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  RUN(health_and_server_metadata);
  RUN(model_metadata_and_ready);
  RUN(infer_matrix_flat_and_nested_agree_with_predict);
  RUN(infer_per_feature_with_bytes_categories);
  RUN(errors_use_the_protocol_shape);
  int st = xd_server_stop(&srv);
  CHECK_MSG(st == 0, "server exit status %d", st);
  if (st != 0) xd_test_failed++;
  return TEST_REPORT();
}
