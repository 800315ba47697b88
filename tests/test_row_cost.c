/* test_row_cost.c — the cost of a row (core/model.h xd_model_row_cost) in the work
 * estimates: a dense row is 1 (tabular admission unchanged), a tree row follows trees x
 * depth, a graph row its FLOPs; over HTTP a one-image /predict on the demo CNN is answered
 * from the pool (it counts in the queue-time histogram) while a one-row tabular /predict
 * is still answered inline on the network thread (it does not). */
#include <stdlib.h>
#include <string.h>

#include "api/bundle.h"
#include "core/model.h"
#include "tests/harness.h"
#include "tests/test.h"

static xd_server_t srv;

static xd_model_t *load(const char *name) {
  char path[128], sha[65];
  snprintf(path, sizeof path, "models/%s/model.json", name);
  xd_model_t *m = NULL;
  xd_error_t err;
  if (xd_bundle_load_file(path, &m, sha, &err) != XD_OK) fprintf(stderr, "  load %s: %s\n", path, err.text);
  return m;
}

TEST(row_costs_by_family) {
  static const char *dense[] = {"iris", "breast_cancer", "credit", "wine", "diabetes"};
  for (size_t i = 0; i < sizeof dense / sizeof *dense; i++) {
    xd_model_t *m = load(dense[i]);
    CHECK(m != NULL);
    if (m) CHECK_MSG(xd_model_row_cost(m) == 1, "%s: %llu", dense[i], (unsigned long long)xd_model_row_cost(m));
    xd_model_free(m);
  }
  xd_model_t *t = load("credit_xgb"); /* 120 trees of depth 4 */
  CHECK(t != NULL);
  if (t) CHECK_MSG(xd_model_row_cost(t) == 48, "credit_xgb: %llu", (unsigned long long)xd_model_row_cost(t));
  xd_model_free(t);
  /* 3x32x32 CNN with 16-32-64 channels of 3x3 convolutions: about 5.6 MFLOP a row, over
   * 600 dense rows: more than --inline-predict-rows' default 256 */
  xd_model_t *g = load("shapes");
  CHECK(g != NULL);
  if (g) {
    uint64_t c = xd_model_row_cost(g);
    CHECK_MSG(c > 256 && c < 2000, "shapes: %llu", (unsigned long long)c);
  }
  xd_model_free(g);
}

/* explaind_queue_duration_seconds_count{endpoint="predict"}: jobs that went to the pool. */
static long pooled_predicts(void) {
  xd_http_resp_t r;
  if (xd_http(srv.port, "GET", "/metrics", NULL, NULL, 0, &r) != 0) return -1;
  long n = 0;
  const char *k = "explaind_queue_duration_seconds_count{endpoint=\"predict\"} ";
  const char *p = r.body ? strstr(r.body, k) : NULL;
  if (p) n = strtol(p + strlen(k), NULL, 10);
  xd_http_resp_free(&r);
  return n;
}

static int post(const char *body) {
  xd_http_resp_t r;
  if (xd_http(srv.port, "POST", "/predict", "Content-Type: application/json\r\n", body, strlen(body), &r) != 0)
    return -1;
  int st = r.status;
  if (st != 200) fprintf(stderr, "  %d: %.*s\n", st, (int)r.body_len, r.body);
  xd_http_resp_free(&r);
  return st;
}

TEST(one_image_goes_to_the_pool_one_tabular_row_stays_inline) {
  long before = pooled_predicts();
  CHECK(before >= 0);
  CHECK(post("{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]]}") == 200);
  CHECK(post("{\"model\":\"credit_xgb\",\"instances\":[[33,41816,0.2156,\"employed\",\"east\",1]]}") == 200);
  long mid = pooled_predicts();
  CHECK_MSG(mid == before, "tabular one-row /predict went to the pool (%ld -> %ld)", before, mid);
  /* one 3x32x32 image, all mid-grey */
  size_t cap = 3 * 32 * 32 * 4 + 256;
  char *body = malloc(cap);
  size_t n = (size_t)snprintf(body, cap, "{\"model\":\"shapes\",\"instances\":[[");
  for (int c = 0; c < 3; c++) {
    n += (size_t)snprintf(body + n, cap - n, "%s[", c ? "," : "");
    for (int y = 0; y < 32; y++) {
      n += (size_t)snprintf(body + n, cap - n, "%s[", y ? "," : "");
      for (int x = 0; x < 32; x++) n += (size_t)snprintf(body + n, cap - n, "%s0.5", x ? "," : "");
      n += (size_t)snprintf(body + n, cap - n, "]");
    }
    n += (size_t)snprintf(body + n, cap - n, "]");
  }
  snprintf(body + n, cap - n, "]]}");
  CHECK(post(body) == 200);
  free(body);
  long after = pooled_predicts();
  CHECK_MSG(after == mid + 1, "one-image /predict was not answered from the pool (%ld -> %ld)", mid, after);
}

int main(void) {
  RUN(row_costs_by_family);
  const char *args[] = {"--workers", "1", NULL};
  if (xd_server_start(&srv, args, NULL) != 0) {
    printf("%d passed, %d failed\n", xd_test_passed, xd_test_failed + 1);
    return 1;
  }
  RUN(one_image_goes_to_the_pool_one_tabular_row_stays_inline);
  if (xd_test_failed) xd_server_dump_log(&srv, 20);
  if (xd_server_stop(&srv) != 0) {
    fprintf(stderr, "FAIL server exit status\n");
    xd_test_failed++;
  }
  return TEST_REPORT();
}
