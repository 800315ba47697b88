/* test_concurrency.c — the router and the registry from many threads at once, in process,
 * for ThreadSanitizer (`make tsan`): reader threads send predictions, explanations and
 * listings through xd_api_handle (model work run inline, as a worker would run it) while
 * the main thread replaces and removes models in the registry. Every answer must be a 200
 * (or a 404 for a model removed a moment ago), and an explanation must stay internally
 * consistent with the model version it started on (an entry is held for the whole job).
 * Under TSan any unsynchronized access in api/ or core/ on these paths is a report. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/bundle.h"
#include "core/mat.h"
#include "tests/test.h"

static xd_api_t *api;
static xd_registry_t *reg;
static atomic_int stop;
static atomic_long answered, bad;

static const char *const reqs[][2] = {
    {"/predict", "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2],[6.5,3.0,5.2,2.0]]}"},
    {"/predict", "{\"model\":\"spare\",\"instances\":[[5.1,3.5,1.4,0.2]]}"},
    {"/explain/lime", "{\"model\":\"iris\",\"instance\":[6.5,3.0,5.2,2.0],\"num_samples\":100,\"seed\":1}"},
    {"/explain/gradient", "{\"model\":\"spare\",\"instance\":[6.5,3.0,5.2,2.0],\"steps\":8}"},
    {"/explain/shap", "{\"model\":\"iris\",\"instance\":[6.5,3.0,5.2,2.0],\"nsamples\":40,\"background_size\":4,\"seed\":2}"},
    {"/importance", "{\"model\":\"iris\",\"method\":\"garson\"}"},
    {"/explain/pdp", "{\"model\":\"spare\",\"features\":[2],\"grid_resolution\":4}"},
    {"/v2/models/iris/infer",
     "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP64\",\"data\":[5.1,3.5,1.4,0.2]}]}"},
};

static int one(const char *method, const char *path, const char *body) {
  xd_api_request_t req = {method, path, NULL, body, body ? strlen(body) : 0, NULL, NULL};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  xd_api_handle_sync(api, &req, &resp, NULL);
  int st = resp.status;
  xd_api_response_deinit(&resp);
  return st;
}

static void *reader(void *arg) {
  size_t k = (size_t)(uintptr_t)arg;
  while (!atomic_load(&stop)) {
    k = (k + 1) % (sizeof reqs / sizeof *reqs);
    int st = one("POST", reqs[k][0], reqs[k][1]);
    /* "spare" is removed and put back by the main thread: 404 in between is right */
    int ok = st == 200 || (st == 404 && strstr(reqs[k][1], "spare"));
    if (!ok && atomic_fetch_add(&bad, 1) < 5) fprintf(stderr, "  %s: status %d\n", reqs[k][0], st);
    int st2 = one("GET", k & 1 ? "/models" : "/metrics", NULL);
    if (st2 != 200 && atomic_fetch_add(&bad, 1) < 5) fprintf(stderr, "  listing: status %d\n", st2);
    atomic_fetch_add(&answered, 1);
  }
  return NULL;
}

static int put(const char *name) {
  xd_model_t *m = NULL;
  xd_error_t err;
  int replaced = 0;
  if (xd_bundle_load_file("models/iris/model.json", &m, NULL, &err) != XD_OK) return -1;
  return xd_registry_put(reg, name, m, "0", NULL, 0, &replaced);
}

TEST(replacement_under_concurrent_requests) {
  enum { READERS = 4 };
  pthread_t t[READERS];
  for (size_t i = 0; i < READERS; i++) pthread_create(&t[i], NULL, reader, (void *)(uintptr_t)(i * 3));
  /* Replace both models and remove/re-add "spare" while the readers run. */
  int rounds = 0;
  double t0 = xd_now_ns() / 1e6;
  while (rounds < 40 || (atomic_load(&answered) < 40 && xd_now_ns() / 1e6 - t0 < 60000)) {
    CHECK(put("iris") == XD_OK);
    if (rounds % 3 == 0) CHECK(xd_registry_remove(reg, "spare") == XD_OK);
    CHECK(put("spare") == XD_OK);
    rounds++;
  }
  atomic_store(&stop, 1);
  for (size_t i = 0; i < READERS; i++) pthread_join(t[i], NULL);
  if (getenv("VERBOSE")) fprintf(stderr, "  %d replacements, %ld request pairs answered\n", rounds, atomic_load(&answered));
  CHECK(atomic_load(&answered) > 0);
  CHECK_MSG(atomic_load(&bad) == 0, "%ld unexpected statuses", atomic_load(&bad));
}

int main(void) {
  xd_blas_init();
  json_object_seed(0); /* before threads (jansson's portability notes) */
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  cfg.inline_predict_rows = 1; /* one row inline, two as a job: both paths */
  xd_registry_new(&reg);
  xd_api_new(&cfg, reg, &api);
  if (put("iris") != XD_OK || put("spare") != XD_OK) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  xd_api_set_ready(api, 1);
  RUN(replacement_under_concurrent_requests);
  xd_api_free(api);
  xd_registry_free(reg);
  return TEST_REPORT();
}
