/* test_admin.c — model management end to end: the real server on a temporary copy of
 * models/ (tests/harness.h), with an admin key and a read key.
 *
 *   lifecycle:  PUT new -> 201, replace -> 200 with version+1 and a new sha256, both shown
 *               by GET /models and GET /models/{name} (with an ETag); If-None-Match: * and
 *               a stale If-Match -> 409, the current ETag -> 200; DELETE -> 204, gone from
 *               memory and disk;
 *   keys:       no key and a wrong key -> 401, a read key -> 403, no admin key configured
 *               -> 403; xd_secret_equal unit-tested, and the answer time of a wrong key does
 *               not depend on how long a prefix it shares with the real one (HTTP and CPU);
 *   crash:      kill -9 in the middle of a stream of PUTs (five models, one uploaded as
 *               ONNX, bundles of ~1 MB), restart: every model loads, each exactly the last
 *               acknowledged version or the one in flight (sha256, file, predictions);
 *   swap:       20 LIME explanations running while the model is replaced all answer 200,
 *               each identical to the old model's or the new model's answer;
 *   training:   POST /models/NAME/train with JSON csv, columns/rows and text/csv + query:
 *               recorded accuracy on iris and credit (tests/golden/train_reference.json),
 *               deterministic, then served and explainable; bad options name the option;
 *   onnx:       "onnx": {"base64": ...} and application/octet-stream uploads predict the
 *               fixture's PyTorch outputs; graph files are versioned and cleaned up;
 *               corrupted graphs -> 400 naming onnx.
 * Run from the repository root.
 */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/auth.h"
#include "api/utf8.h"
#include "api/bundle.h"
#include "core/sha256.h"
#include "tests/harness.h"
#include "tests/test.h"

#define ADMIN_KEY "adm-7f3c9e21b54d4a0c8e6f1a2b3c4d5e6f7a8b9c0d1e2f3a4b"
#define READ_KEY "read-0a1b2c3d4e5f"
#define AUTH "Authorization: Bearer " ADMIN_KEY "\r\n"

static xd_server_t srv;
static char dir[64]; /* the main server's model folder: a copy of models/ */

/* ---- helpers ------------------------------------------------------------------------------ */

static int copy_models(char *path, size_t cap) {
  snprintf(path, cap, "/tmp/xd-admin-XXXXXX");
  if (!mkdtemp(path)) return -1;
  char cmd[256];
  snprintf(cmd, sizeof cmd, "cp -r models/. %s/", path);
  return system(cmd) == 0 ? 0 : -1;
}

static void remove_dir(const char *path) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", path);
  if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", path);
}

static int start(xd_server_t *s, const char *model_dir, int with_admin) {
  const char *args[] = {"--model-dir", model_dir, "--queue-size", "64", "--max-body", "64M", "--workers", "2", NULL};
  const char *env_admin[] = {"EXPLAIND_ADMIN_KEY=" ADMIN_KEY, "EXPLAIND_API_KEYS=" READ_KEY, NULL};
  return xd_server_start(s, args, with_admin ? env_admin : NULL);
}

static json_t *load_json(const char *path) {
  json_error_t e;
  json_t *j = json_load_file(path, 0, &e);
  if (!j) fprintf(stderr, "  %s: %s\n", path, e.text);
  return j;
}

/* One request to port; returns the status (-1 on a connection error), the body as JSON in
 * *out when out is non-NULL (NULL when not JSON). */
static int call_port(int port, const char *method, const char *path, const char *headers, const char *body, size_t len,
                     json_t **out, xd_http_resp_t *keep) {
  xd_http_resp_t r;
  if (out) *out = NULL;
  if (xd_http(port, method, path, headers, body, body ? len : 0, &r) != 0) return -1;
  if (out) *out = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
  int st = r.status;
  if (keep)
    *keep = r;
  else
    xd_http_resp_free(&r);
  return st;
}

static int call(const char *method, const char *path, const char *headers, const char *body, json_t **out) {
  return call_port(srv.port, method, path, headers, body, body ? strlen(body) : 0, out, NULL);
}

static int put_json(int port, const char *name, json_t *bundle, const char *extra, json_t **out, xd_http_resp_t *keep) {
  char path[128], headers[512];
  snprintf(path, sizeof path, "/models/%s", name);
  snprintf(headers, sizeof headers, AUTH "%s", extra ? extra : "");
  char *text = json_dumps(bundle, JSON_COMPACT | JSON_REAL_PRECISION(17));
  int st = call_port(port, "PUT", path, headers, text, strlen(text), out, keep);
  free(text);
  return st;
}

static const char *error_code(const json_t *body) {
  return json_string_value(json_object_get(json_object_get(body, "error"), "code"));
}
static const char *error_field(const json_t *body) {
  return json_string_value(json_object_get(json_object_get(body, "error"), "field"));
}

static int is_hex64(const char *s) {
  if (!s || strlen(s) != 64) return 0;
  for (int i = 0; i < 64; i++)
    if (!strchr("0123456789abcdef", s[i])) return 0;
  return 1;
}

static int file_exists(const char *d, const char *name) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", d, name);
  struct stat st;
  return stat(p, &st) == 0;
}

static char *read_all(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(fp);
  if (b) b[n] = '\0';
  if (len) *len = (size_t)n;
  return b;
}

static char *base64(const unsigned char *p, size_t n) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *o = malloc(n / 3 * 4 + 8), *q = o;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    *q++ = a[v >> 18 & 63];
    *q++ = a[v >> 12 & 63];
    *q++ = i + 1 < n ? a[v >> 6 & 63] : '=';
    *q++ = i + 2 < n ? a[v & 63] : '=';
  }
  *q = '\0';
  return o;
}

/* tests/onnx/NAME.json as an upload: its "onnx" file replaced by {"base64": ...}. */
static json_t *onnx_upload(const char *fixture) {
  char p[256];
  snprintf(p, sizeof p, "tests/onnx/%s.json", fixture);
  json_t *b = load_json(p);
  snprintf(p, sizeof p, "tests/onnx/%s", json_string_value(json_object_get(b, "onnx")));
  size_t n;
  char *raw = read_all(p, &n);
  if (!b || !raw) {
    free(raw);
    json_decref(b);
    return NULL;
  }
  char *enc = base64((const unsigned char *)raw, n);
  json_object_set_new(b, "onnx", json_pack("{s:s}", "base64", enc));
  free(enc);
  free(raw);
  return b;
}

/* POST /predict of exp's "inputs" on model; compares to its "outputs" (probabilities or
 * predictions) to tol, relative above 1. Returns the number of mismatches (-1: no answer). */
static int predict_matches(int port, const char *model, const json_t *exp, double tol) {
  /* integral values as JSON integers: a categorical code must be one (0, not 0.0) */
  json_t *rows = json_deep_copy(json_object_get(exp, "inputs"));
  for (size_t i = 0; i < json_array_size(rows); i++) {
    json_t *row = json_array_get(rows, i);
    for (size_t j = 0; j < json_array_size(row); j++) {
      double v = json_number_value(json_array_get(row, j));
      if (v == floor(v) && fabs(v) < 1e15) json_array_set_new(row, j, json_integer((json_int_t)v));
    }
  }
  json_t *req = json_pack("{s:s, s:o}", "model", model, "instances", rows);
  char *text = json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(17));
  json_t *out = NULL;
  int st = call_port(port, "POST", "/predict", AUTH, text, strlen(text), &out, NULL);
  free(text);
  json_decref(req);
  if (st != 200) {
    json_decref(out);
    return -1;
  }
  const json_t *want = json_object_get(exp, "outputs");
  json_t *got = json_object_get(out, "probabilities");
  int bad = 0;
  for (size_t i = 0; i < json_array_size(want); i++) {
    const json_t *w = json_array_get(want, i);
    for (size_t c = 0; c < json_array_size(w); c++) {
      double y = got ? json_number_value(json_array_get(json_array_get(got, i), c))
                     : json_number_value(json_array_get(json_object_get(out, "predictions"), i));
      double x = json_number_value(json_array_get(w, c));
      if (!(fabs(y - x) <= tol * fmax(1.0, fabs(x)))) bad++;
    }
  }
  json_decref(out);
  return bad;
}

static json_t *model_info(int port, const char *name, int *status) {
  char path[128];
  snprintf(path, sizeof path, "/models/%s", name);
  json_t *o = NULL;
  *status = call_port(port, "GET", path, AUTH, NULL, 0, &o, NULL);
  return o;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

TEST(put_replace_get_delete) {
  json_t *a = load_json("tests/exporters/sklearn_mlp_iris.json"), *b = load_json("tests/exporters/torch_iris_layers.json");
  json_t *exp_b = load_json("tests/exporters/torch_iris_layers.expected.json");
  CHECK(a && b && exp_b);
  if (!a || !b || !exp_b) goto out;
  json_t *o = NULL;
  xd_http_resp_t r;
  CHECK(put_json(srv.port, "t1", a, NULL, &o, &r) == 201);
  CHECK(json_integer_value(json_object_get(o, "version")) == 1);
  char sha1[65] = "", sha2[65] = "", want_etag[80];
  snprintf(sha1, sizeof sha1, "%s", json_string_value(json_object_get(o, "sha256")) ?: "");
  CHECK(is_hex64(sha1));
  snprintf(want_etag, sizeof want_etag, "\"%s\"", sha1);
  CHECK(xd_http_header(&r, "ETag") && strcmp(xd_http_header(&r, "ETag"), want_etag) == 0);
  xd_http_resp_free(&r);
  json_decref(o);

  /* replace: version + 1, a new digest; GET shows both */
  CHECK(put_json(srv.port, "t1", b, NULL, &o, NULL) == 200);
  CHECK(json_integer_value(json_object_get(o, "version")) == 2);
  snprintf(sha2, sizeof sha2, "%s", json_string_value(json_object_get(o, "sha256")) ?: "");
  CHECK(is_hex64(sha2) && strcmp(sha1, sha2) != 0);
  json_decref(o);
  CHECK(call("GET", "/models", AUTH, NULL, &o) == 200);
  int listed = 0;
  for (size_t i = 0; i < json_array_size(json_object_get(o, "models")); i++) {
    json_t *m = json_array_get(json_object_get(o, "models"), i);
    if (strcmp(json_string_value(json_object_get(m, "name")), "t1") == 0)
      listed = json_integer_value(json_object_get(m, "version")) == 2;
  }
  CHECK(listed);
  json_decref(o);
  CHECK(call_port(srv.port, "GET", "/models/t1", AUTH, NULL, 0, &o, &r) == 200);
  CHECK(json_integer_value(json_object_get(o, "version")) == 2);
  CHECK(json_string_value(json_object_get(o, "sha256")) && strcmp(json_string_value(json_object_get(o, "sha256")), sha2) == 0);
  snprintf(want_etag, sizeof want_etag, "\"%s\"", sha2);
  CHECK(xd_http_header(&r, "ETag") && strcmp(xd_http_header(&r, "ETag"), want_etag) == 0);
  xd_http_resp_free(&r);
  json_decref(o);
  CHECK(predict_matches(srv.port, "t1", exp_b, 1e-5) == 0); /* the new version serves */
  char p[256];
  snprintf(p, sizeof p, "%s/t1.json", dir);
  char *text = read_all(p, NULL);
  CHECK(text && strstr(text, "\"x-explaind-version\":2"));
  free(text);

  /* optimistic concurrency */
  CHECK(put_json(srv.port, "t1", a, "If-None-Match: *\r\n", &o, NULL) == 409);
  CHECK(error_code(o) && strcmp(error_code(o), "conflict") == 0);
  json_decref(o);
  char h[160];
  snprintf(h, sizeof h, "If-Match: \"%s\"\r\n", sha1);
  CHECK(put_json(srv.port, "t1", a, h, &o, NULL) == 409);
  json_decref(o);
  snprintf(h, sizeof h, "If-Match: \"%s\"\r\n", sha2);
  CHECK(put_json(srv.port, "t1", a, h, &o, NULL) == 200);
  CHECK(json_integer_value(json_object_get(o, "version")) == 3);
  json_decref(o);
  CHECK(put_json(srv.port, "t1_new", a, "If-None-Match: *\r\n", NULL, NULL) == 201);
  CHECK(put_json(srv.port, "t1_missing", a, "If-Match: *\r\n", NULL, NULL) == 409); /* If-Match needs a model */

  /* a client cannot set the version; a bad bundle changes nothing */
  json_object_set_new(a, "x-explaind-version", json_integer(99));
  CHECK(put_json(srv.port, "t1", a, NULL, &o, NULL) == 200);
  CHECK(json_integer_value(json_object_get(o, "version")) == 4);
  json_decref(o);
  json_t *bad = json_deep_copy(a);
  json_object_set_new(bad, "layers", json_array());
  CHECK(put_json(srv.port, "t1", bad, NULL, &o, NULL) == 400);
  CHECK(error_field(o) && strcmp(error_field(o), "layers") == 0);
  json_decref(o);
  json_decref(bad);
  int st;
  o = model_info(srv.port, "t1", &st);
  CHECK(st == 200 && json_integer_value(json_object_get(o, "version")) == 4);
  json_decref(o);

  /* delete: gone from memory and disk */
  CHECK(call("DELETE", "/models/t1", AUTH, NULL, NULL) == 204);
  CHECK(call("GET", "/models/t1", AUTH, NULL, NULL) == 404);
  CHECK(!file_exists(dir, "t1.json"));
  CHECK(call("DELETE", "/models/t1", AUTH, NULL, NULL) == 404);
  CHECK(call("DELETE", "/models/t1_new", AUTH, NULL, NULL) == 204);
  CHECK(call("POST", "/predict", AUTH, "{\"model\":\"t1\",\"instances\":[[1,2,3,4]]}", NULL) == 404);
  /* a demo model from a folder (DIR/NAME/model.json) can be deleted too */
  CHECK(call("DELETE", "/models/wine", AUTH, NULL, NULL) == 204);
  CHECK(!file_exists(dir, "wine/model.json"));
  CHECK(call("GET", "/models/wine", AUTH, NULL, NULL) == 404);
out:
  json_decref(a);
  json_decref(b);
  json_decref(exp_b);
}

/* ---- keys ------------------------------------------------------------------------------- */

TEST(admin_key_is_required) {
  const char *tiny = "{\"format\":\"explaind.model/v1\",\"task\":\"regression\",\"features\":[{\"name\":\"x\"}],"
                     "\"layers\":[{\"weights\":[[2]],\"bias\":[1],\"activation\":\"identity\"}]}";
  json_t *o = NULL;
  CHECK(call("PUT", "/models/k1", NULL, tiny, &o) == 401);
  CHECK(error_code(o) && strcmp(error_code(o), "unauthenticated") == 0);
  json_decref(o);
  CHECK(call("PUT", "/models/k1", "Authorization: Bearer not-the-key\r\n", tiny, &o) == 401);
  json_decref(o);
  CHECK(call("PUT", "/models/k1", "Authorization: Bearer " ADMIN_KEY "x\r\n", tiny, NULL) == 401);
  CHECK(call("PUT", "/models/k1", "Authorization: Basic " ADMIN_KEY "\r\n", tiny, NULL) == 401);
  CHECK(call("PUT", "/models/k1", "Authorization: Bearer " READ_KEY "\r\n", tiny, &o) == 403);
  CHECK(error_code(o) && strcmp(error_code(o), "permission_denied") == 0);
  json_decref(o);
  CHECK(call("DELETE", "/models/iris", "Authorization: Bearer " READ_KEY "\r\n", NULL, NULL) == 403);
  CHECK(call("DELETE", "/models/iris", NULL, NULL, NULL) == 401);
  CHECK(call("POST", "/models/k1/train", NULL, "{\"csv\":\"a,b\\n1,2\\n\",\"target\":\"b\"}", NULL) == 401);
  CHECK(call("POST", "/models/k1/train", "Authorization: Bearer " READ_KEY "\r\n",
             "{\"csv\":\"a,b\\n1,2\\n\",\"target\":\"b\"}", NULL) == 403);
  CHECK(call("GET", "/models/k1", AUTH, NULL, NULL) == 404); /* nothing was stored */
  CHECK(!file_exists(dir, "k1.json"));
  /* the read key reads, the admin key manages */
  CHECK(call("GET", "/models", "Authorization: Bearer " READ_KEY "\r\n", NULL, NULL) == 200);
  CHECK(call("PUT", "/models/k1", AUTH, tiny, NULL) == 201);
  CHECK(call("DELETE", "/models/k1", AUTH, NULL, NULL) == 204);

  /* a server started without an admin key (and open for reads) refuses management to
   * everyone, whatever key they send */
  xd_server_t s2;
  CHECK(start(&s2, dir, 0) == 0);
  CHECK(call_port(s2.port, "PUT", "/models/k2", AUTH, tiny, strlen(tiny), &o, NULL) == 403);
  CHECK(error_code(o) && strcmp(error_code(o), "permission_denied") == 0);
  json_decref(o);
  CHECK(call_port(s2.port, "PUT", "/models/k2", NULL, tiny, strlen(tiny), NULL, NULL) == 403);
  CHECK(call_port(s2.port, "DELETE", "/models/iris", AUTH, NULL, 0, NULL, NULL) == 403);
  CHECK(call_port(s2.port, "GET", "/models/iris", NULL, NULL, 0, NULL, NULL) == 200);
  CHECK(xd_server_stop(&s2) == 0);
}

TEST(secret_equal_unit) {
  CHECK(xd_secret_equal("abc", "abc") == 1);
  CHECK(xd_secret_equal("", "") == 1);
  CHECK(xd_secret_equal("abc", "abd") == 0);
  CHECK(xd_secret_equal("abc", "xbc") == 0);
  CHECK(xd_secret_equal("abc", "abcd") == 0);
  CHECK(xd_secret_equal("abcd", "abc") == 0);
  CHECK(xd_secret_equal("abc", "abcabc") == 0); /* the wrapped walk must not make a repeat equal */
  CHECK(xd_secret_equal("", "a") == 0);
  CHECK(xd_secret_equal("a", "") == 0);
  CHECK(xd_secret_equal(ADMIN_KEY, ADMIN_KEY) == 1);
  CHECK(xd_secret_equal(ADMIN_KEY, ADMIN_KEY "x") == 0);
}

/* The digest of an ONNX upload is built incrementally (bundle text, then graph bytes):
 * any split of the input gives the one-shot digest. */
TEST(sha256_incremental_equals_one_shot) {
  unsigned char buf[300];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 131 + 7);
  for (size_t n = 0; n <= sizeof buf; n += 7) {
    char one[65], inc[65];
    xd_sha256_hex(buf, n, one);
    for (size_t cut = 0; cut <= n; cut += 13) {
      xd_sha256_t c;
      xd_sha256_init(&c);
      xd_sha256_update(&c, buf, cut);
      for (size_t k = cut; k < n; k += 5) xd_sha256_update(&c, buf + k, n - k < 5 ? n - k : 5);
      xd_sha256_final_hex(&c, inc);
      CHECK_MSG(strcmp(one, inc) == 0, "length %zu, first piece %zu", n, cut);
    }
  }
}

/* Error texts quoting binary input are made valid UTF-8; raw CSV is checked. */
TEST(utf8_checks) {
  CHECK(xd_utf8_valid_prefix("abc", 3) == 3);
  CHECK(xd_utf8_valid_prefix("h\xc3\xa9llo", 6) == 6);
  CHECK(xd_utf8_valid_prefix("ab\xff", 3) == 2);
  CHECK(xd_utf8_valid_prefix("a\xc3", 2) == 1);              /* truncated sequence */
  CHECK(xd_utf8_valid_prefix("\xc0\xaf", 2) == 0);          /* overlong */
  CHECK(xd_utf8_valid_prefix("\xed\xa0\x80", 3) == 0);      /* surrogate */
  CHECK(xd_utf8_valid_prefix("\xf0\x9f\x98\x80", 4) == 4); /* U+1F600 */
  CHECK(xd_utf8_valid_prefix("\xf4\x90\x80\x80", 4) == 0); /* above U+10FFFF */
  char s[] = "node '/2/Ge\xff\xfe_output' \xc3\xa9";
  xd_utf8_sanitize(s);
  CHECK(strcmp(s, "node '/2/Ge??_output' \xc3\xa9") == 0);
}

static double time_compare(const char *a, const char *b, int n) {
  double t0 = xd_ms_now();
  volatile int sink = 0;
  for (int i = 0; i < n; i++) sink += xd_secret_equal(a, b);
  (void)sink;
  return xd_ms_now() - t0;
}

/* CPU time of the comparison itself: a difference at the first byte and at the last cost
 * the same (best of several rounds, interleaved, so machine noise cancels). */
TEST(secret_equal_time_does_not_depend_on_prefix) {
  char key[257], first[257], last[257];
  for (int i = 0; i < 256; i++) key[i] = (char)('a' + i % 26);
  key[256] = '\0';
  memcpy(first, key, sizeof key);
  memcpy(last, key, sizeof key);
  first[0] = 'Z';
  last[255] = 'Z';
  double best_first = 1e30, best_last = 1e30;
  for (int round = 0; round < 7; round++) {
    best_first = fmin(best_first, time_compare(key, first, 20000));
    best_last = fmin(best_last, time_compare(key, last, 20000));
  }
  fprintf(stderr, "  20000 comparisons of 256 bytes: differing first %.3f ms, last %.3f ms\n", best_first, best_last);
  CHECK(best_first > 0 && best_last > 0);
  /* generous: an early-exit comparison would differ by a factor of about 256 here */
  CHECK_MSG(best_first / best_last > 0.5 && best_first / best_last < 2.0, "ratio %.3f", best_first / best_last);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Mean of the fastest 90% (a shared machine's stalls are not the server's doing). */
static double trimmed_mean(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  int k = n * 9 / 10;
  double s = 0;
  for (int i = 0; i < k; i++) s += v[i];
  return s / k;
}

/* Over HTTP: wrong keys of the real key's length that share no character with it, or all
 * but the last, are refused in the same time (interleaved attempts, generous bound). */
TEST(wrong_key_timing_does_not_depend_on_prefix) {
  enum { N = 300 };
  static double t0[N], t1[N];
  char none[sizeof ADMIN_KEY], most[sizeof ADMIN_KEY], h0[160], h1[160];
  memset(none, 'Z', sizeof none - 1);
  none[sizeof none - 1] = '\0';
  memcpy(most, ADMIN_KEY, sizeof most);
  most[sizeof most - 2] = most[sizeof most - 2] == 'Z' ? 'Y' : 'Z';
  snprintf(h0, sizeof h0, "Authorization: Bearer %s\r\n", none);
  snprintf(h1, sizeof h1, "Authorization: Bearer %s\r\n", most);
  const char *body = "{}";
  int ok = 1;
  for (int i = 0; i < N && ok; i++) {
    for (int w = 0; w < 2; w++) { /* alternate which goes first */
      int which = (i + w) & 1;
      double s = xd_ms_now();
      int st = call("PUT", "/models/timing", which ? h1 : h0, body, NULL);
      double e = xd_ms_now() - s;
      ok &= st == 401;
      (which ? t1 : t0)[i] = e;
    }
  }
  CHECK(ok);
  double m0 = trimmed_mean(t0, N), m1 = trimmed_mean(t1, N);
  double bound = fmax(0.3, 0.3 * fmin(m0, m1));
  fprintf(stderr, "  %d attempts each: sharing no character %.4f ms, all but the last %.4f ms (bound %.3f)\n", N, m0,
          m1, bound);
  CHECK_MSG(fabs(m0 - m1) < bound, "means %.4f and %.4f ms", m0, m1);
}

/* ---- kill -9 in the middle of a stream of PUTs ---------------------------------------------- */

#define N_LIN 4
#define N_MODELS (N_LIN + 1) /* m0..m3 (linear regression, ~1 MB), mo (ONNX) */
#define BG_ROWS 5000

static const char *const onnx_alt[2] = {"relu_softmax_op13", "gelu_op17"};

typedef struct stream {
  int port;
  json_t *lin;               /* tests/exporters/sklearn_linreg_diabetes.json with a big background */
  json_t *onnx[2];           /* the two ONNX uploads mo alternates between (by version parity) */
  long acked[N_MODELS];      /* last acknowledged version */
  char sha[N_MODELS][65];    /* and its sha256 */
  int inflight_model;        /* -1: none */
  long inflight_version;
  volatile int stop;
  pthread_mutex_t mu; /* guards the counters below, read by the killing thread */
  long sent;
  double inflight_start;         /* ms: when the PUT in flight started */
  double put_ms_sum[N_MODELS];   /* total time of acknowledged PUTs, per model */
  long put_n[N_MODELS];
} stream_t;

static long stream_sent(stream_t *s, double *mean, double *started) {
  pthread_mutex_lock(&s->mu);
  long n = s->sent;
  int m = __atomic_load_n(&s->inflight_model, __ATOMIC_SEQ_CST);
  if (mean) *mean = m >= 0 && s->put_n[m] ? s->put_ms_sum[m] / (double)s->put_n[m] : 20;
  if (started) *started = s->inflight_start;
  pthread_mutex_unlock(&s->mu);
  return n;
}

static void stream_name(int m, char *out, size_t cap) {
  if (cap < 16) return;
  if (m < N_LIN)
    snprintf(out, cap, "crash%d", m);
  else
    snprintf(out, cap, "crash_onnx");
}

/* Model m's bundle at version v: a distinct bias (m0..m3: prediction + 1000 m + v) and a tag. */
static json_t *stream_bundle(stream_t *s, int m, long v) {
  json_t *b;
  if (m < N_LIN) {
    b = json_deep_copy(s->lin);
    json_t *bias = json_object_get(json_array_get(json_object_get(b, "layers"), 0), "bias");
    json_array_set_new(bias, 0, json_real(json_number_value(json_array_get(bias, 0)) + 1000.0 * m + (double)v));
  } else {
    b = json_deep_copy(s->onnx[v & 1]);
  }
  char tag[64];
  stream_name(m, tag, sizeof tag);
  snprintf(tag + strlen(tag), sizeof tag - strlen(tag), "-v%ld", v);
  json_object_set_new(b, "x-test-tag", json_string(tag));
  return b;
}

static void *stream_run(void *arg) {
  stream_t *s = arg;
  /* stop is set by the main thread: atomic loads and stores (ThreadSanitizer, make tsan) */
  for (long round = 0; !__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST); round++) {
    for (int m = 0; m < N_MODELS && !__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST); m++) {
      long v = s->acked[m] + 1;
      char name[64];
      stream_name(m, name, sizeof name);
      json_t *b = stream_bundle(s, m, v), *o = NULL;
      char *text = json_dumps(b, JSON_COMPACT | JSON_REAL_PRECISION(17));
      json_decref(b);
      char path[128];
      snprintf(path, sizeof path, "/models/%s", name);
      s->inflight_version = v;
      double t0 = xd_ms_now();
      pthread_mutex_lock(&s->mu);
      s->inflight_start = t0;
      pthread_mutex_unlock(&s->mu);
      __atomic_store_n(&s->inflight_model, m, __ATOMIC_SEQ_CST);
      int st = call_port(s->port, "PUT", path, AUTH, text, strlen(text), &o, NULL);
      free(text);
      if (st == 200 || st == 201) {
        if (json_integer_value(json_object_get(o, "version")) != v)
          fprintf(stderr, "  %s: stored as version %lld, expected %ld\n", name,
                  (long long)json_integer_value(json_object_get(o, "version")), v);
        snprintf(s->sha[m], sizeof s->sha[m], "%s", json_string_value(json_object_get(o, "sha256")) ?: "");
        s->acked[m] = v;
        pthread_mutex_lock(&s->mu);
        s->put_ms_sum[m] += xd_ms_now() - t0;
        s->put_n[m]++;
        s->sent++;
        pthread_mutex_unlock(&s->mu);
        __atomic_store_n(&s->inflight_model, -1, __ATOMIC_SEQ_CST);
      } else {
        json_decref(o);
        return NULL; /* the server is gone: this PUT stays "in flight" */
      }
      json_decref(o);
    }
  }
  return NULL;
}

/* After a restart: each stream model is its acknowledged version or the one in flight. */
static void check_stream_state(stream_t *s, const char *d, int inflight_model, long inflight_version) {
  json_t *lexp = load_json("tests/exporters/sklearn_linreg_diabetes.expected.json");
  for (int m = 0; m < N_MODELS; m++) {
    char name[64];
    stream_name(m, name, sizeof name);
    int st;
    json_t *info = model_info(s->port, name, &st);
    if (st == 404 && s->acked[m] == 0) { /* never stored: the first PUT was the one in flight, or none yet */
      char fn[96];
      snprintf(fn, sizeof fn, "%s.json", name);
      CHECK_MSG(!file_exists(d, fn), "%s", name);
      json_decref(info);
      continue;
    }
    CHECK_MSG(st == 200, "%s did not load", name);
    long v = (long)json_integer_value(json_object_get(info, "version"));
    const char *sha = json_string_value(json_object_get(info, "sha256"));
    int is_old = v == s->acked[m], is_new = m == inflight_model && v == inflight_version;
    CHECK_MSG(is_old || is_new, "%s: version %ld after the crash; acknowledged %ld, in flight %s v%ld", name, v,
              s->acked[m], inflight_model == m ? "this" : "another", inflight_version);
    if (is_old) CHECK_MSG(sha && strcmp(sha, s->sha[m]) == 0, "%s: sha256 differs from the acknowledged one", name);
    if (is_new) {
      fprintf(stderr, "  %s: the PUT in flight (v%ld) had landed\n", name, v);
      s->acked[m] = v; /* the stream goes on from here */
      snprintf(s->sha[m], sizeof s->sha[m], "%s", sha ? sha : "");
    }
    json_decref(info);
    /* the file holds exactly that version's bundle */
    char p[512], tag[96];
    snprintf(p, sizeof p, "%s/%s.json", d, name);
    json_t *stored = load_json(p);
    snprintf(tag, sizeof tag, "%s-v%ld", name, v);
    const char *got = json_string_value(json_object_get(stored, "x-test-tag"));
    CHECK_MSG(got && strcmp(got, tag) == 0, "%s: the stored bundle is %s, expected %s", name, got ? got : "?", tag);
    if (m == N_LIN) { /* its graph file is that version's */
      char want[96];
      snprintf(want, sizeof want, "%s.v%ld.onnx", name, v);
      const char *f = json_string_value(json_object_get(stored, "onnx"));
      CHECK_MSG(f && strcmp(f, want) == 0 && file_exists(d, want), "%s: graph %s", name, f ? f : "?");
    }
    json_decref(stored);
    /* and serves that version's predictions */
    if (m < N_LIN) {
      json_t *e = json_deep_copy(lexp);
      json_t *outs = json_object_get(e, "outputs");
      for (size_t i = 0; i < json_array_size(outs); i++) {
        json_t *row = json_array_get(outs, i);
        json_array_set_new(row, 0, json_real(json_number_value(json_array_get(row, 0)) + 1000.0 * m + (double)v));
      }
      CHECK_MSG(predict_matches(s->port, name, e, 1e-6) == 0, "%s: predictions are not version %ld's", name, v);
      json_decref(e);
    } else {
      char ep[256];
      snprintf(ep, sizeof ep, "tests/onnx/%s.expected.json", onnx_alt[v & 1]);
      json_t *e = load_json(ep);
      CHECK_MSG(predict_matches(s->port, name, e, 1e-5) == 0, "%s: predictions are not version %ld's", name, v);
      json_decref(e);
    }
  }
  json_decref(lexp);
}

TEST(kill9_during_puts_leaves_old_or_new) {
  char d[64];
  CHECK(copy_models(d, sizeof d) == 0);
  static stream_t s;
  memset(&s, 0, sizeof s);
  pthread_mutex_init(&s.mu, NULL);
  s.lin = load_json("tests/exporters/sklearn_linreg_diabetes.json");
  s.onnx[0] = onnx_upload(onnx_alt[0]);
  s.onnx[1] = onnx_upload(onnx_alt[1]);
  CHECK(s.lin && s.onnx[0] && s.onnx[1]);
  if (!s.lin || !s.onnx[0] || !s.onnx[1]) goto out;
  { /* a background of BG_ROWS rows (the 40 exported ones, repeated): ~1 MB per bundle */
    json_t *bg = json_object_get(s.lin, "background"), *rows = json_array(), *targets = json_array();
    json_t *r0 = json_object_get(bg, "rows"), *t0 = json_object_get(bg, "targets");
    for (size_t i = 0; i < BG_ROWS; i++) {
      json_t *row = json_deep_copy(json_array_get(r0, i % json_array_size(r0)));
      json_array_set_new(row, 0, json_real(json_number_value(json_array_get(row, 0)) + 1e-6 * (double)i));
      json_array_append_new(rows, row);
      json_array_append(targets, json_array_get(t0, i % json_array_size(t0)));
    }
    json_object_set_new(bg, "rows", rows);
    json_object_set_new(bg, "targets", targets);
  }
  s.inflight_model = -1;
  xd_server_t cs;
  int kills = 0, landed_total = 0;
  enum { ROUNDS = 8 };
  double t_start = xd_ms_now();
  for (int round = 0; round <= ROUNDS; round++) {
    CHECK(start(&cs, d, 1) == 0);
    s.port = cs.port;
    if (round > 0) {
      int im = s.inflight_model;
      long before[N_MODELS];
      memcpy(before, s.acked, sizeof before);
      check_stream_state(&s, d, im, s.inflight_version);
      for (int m = 0; m < N_MODELS; m++) landed_total += s.acked[m] != before[m];
      /* every demo model loaded as well, and nothing was skipped */
      json_t *o = NULL;
      CHECK(call_port(cs.port, "GET", "/models", AUTH, NULL, 0, &o, NULL) == 200);
      size_t stored = 0;
      for (int m = 0; m < N_MODELS; m++) stored += s.acked[m] > 0;
      CHECK_MSG(json_array_size(json_object_get(o, "models")) == 9 + stored, "%zu models loaded, %zu expected",
                json_array_size(json_object_get(o, "models")), 9 + stored);
      json_decref(o);
      CHECK(!xd_server_log_contains(&cs, "skipping"));
    }
    if (round == ROUNDS) break;
    __atomic_store_n(&s.stop, 0, __ATOMIC_SEQ_CST);
    s.inflight_model = -1;
    long sent0 = stream_sent(&s, NULL, NULL);
    pthread_t th;
    pthread_create(&th, NULL, stream_run, &s);
    /* Let some PUTs complete, then kill at a moment that sweeps the last part of a PUT
     * (where the files are written): a fraction of the mean PUT time after one starts. */
    double t0 = xd_ms_now(), mean, started, frac = 0.75 + 0.06 * round;
    while (stream_sent(&s, NULL, NULL) - sent0 < (round == 0 ? N_MODELS + 1 : 2 + round) && xd_ms_now() - t0 < 30000)
      xd_sleep_ms(2);
    long seen = stream_sent(&s, NULL, NULL);
    while ((stream_sent(&s, &mean, &started) == seen || __atomic_load_n(&s.inflight_model, __ATOMIC_SEQ_CST) < 0) &&
           xd_ms_now() - t0 < 30000)
      usleep(100); /* a new PUT has started */
    double due = started + frac * mean;
    while (xd_ms_now() < due) usleep(100);
    kill(cs.pid, SIGKILL);
    __atomic_store_n(&s.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    CHECK(xd_server_wait(&cs, 10000) == 128 + SIGKILL);
    kills++;
    fprintf(stderr, "  round %d: %ld PUTs acknowledged (mean %.1f ms), killed %.0f%% into one\n", round,
            s.sent - sent0, mean, frac * 100);
  }
  /* a clean PUT after the crashes leaves one graph file for the ONNX model */
  json_t *b = stream_bundle(&s, N_LIN, s.acked[N_LIN] + 1);
  CHECK(put_json(cs.port, "crash_onnx", b, NULL, NULL, NULL) == 200);
  json_decref(b);
  int graphs = 0;
  DIR *dd = opendir(d);
  struct dirent *de;
  while (dd && (de = readdir(dd)) != NULL) graphs += strncmp(de->d_name, "crash_onnx.v", 12) == 0;
  if (dd) closedir(dd);
  CHECK_MSG(graphs == 1, "%d graph files of crash_onnx", graphs);
  int temps = 0; /* writes the kills interrupted: ignored by the loader (dot files) */
  dd = opendir(d);
  while (dd && (de = readdir(dd)) != NULL) temps += de->d_name[0] == '.' && strstr(de->d_name, ".tmp.") != NULL;
  if (dd) closedir(dd);
  fprintf(stderr, "  %d interrupted temporary files left behind\n", temps);
  CHECK(xd_server_stop(&cs) == 0);
  fprintf(stderr, "  %d kills, %ld PUTs acknowledged, %d in-flight PUTs found stored after a restart (%.1f s)\n", kills,
          s.sent, landed_total, (xd_ms_now() - t_start) / 1e3);
out:
  json_decref(s.lin);
  json_decref(s.onnx[0]);
  json_decref(s.onnx[1]);
  remove_dir(d);
}

/* ---- replacing a model under 20 running explanations ------------------------------------- */

typedef struct lime_call {
  const char *model;
  json_t *instance;
  int seed, status, delay_ms;
  char *explanations; /* canonical text of the answer's "explanations" */
} lime_call_t;

static void *lime_run(void *arg) {
  lime_call_t *c = arg;
  if (c->delay_ms) xd_sleep_ms(c->delay_ms);
  json_t *req = json_pack("{s:s, s:O, s:i, s:i}", "model", c->model, "instance", c->instance, "seed", c->seed,
                          "num_samples", 4000);
  char *text = json_dumps(req, JSON_COMPACT);
  json_t *out = NULL;
  c->status = call_port(srv.port, "POST", "/explain/lime", AUTH, text, strlen(text), &out, NULL);
  c->explanations = out ? json_dumps(json_object_get(out, "explanations"), JSON_COMPACT | JSON_SORT_KEYS |
                                                                               JSON_REAL_PRECISION(17))
                        : NULL;
  free(text);
  json_decref(req);
  json_decref(out);
  return NULL;
}

TEST(replace_under_20_explanations) {
  enum { N = 20 };
  json_t *a = load_json("tests/exporters/sklearn_mlp_iris.json"), *b = load_json("tests/exporters/torch_iris_layers.json");
  CHECK(a && b);
  if (!a || !b) goto out;
  CHECK(put_json(srv.port, "swap_a", a, NULL, NULL, NULL) == 201);
  CHECK(put_json(srv.port, "swap_b", b, NULL, NULL, NULL) == 201);
  CHECK(put_json(srv.port, "swap", a, NULL, NULL, NULL) == 201);
  json_t *rows = json_object_get(json_object_get(a, "background"), "rows");
  static lime_call_t ref_a[N], ref_b[N], live[N];
  for (int i = 0; i < N; i++) { /* what the old and the new model answer to each request */
    ref_a[i] = (lime_call_t){"swap_a", json_array_get(rows, (size_t)i * 2), 1000 + i, 0, 0, NULL};
    ref_b[i] = ref_a[i];
    ref_b[i].model = "swap_b";
    live[i] = ref_a[i];
    live[i].model = "swap";
    live[i].delay_ms = 6 * i; /* staggered: the replacement lands among them */
    lime_run(&ref_a[i]);
    lime_run(&ref_b[i]);
    CHECK(ref_a[i].status == 200 && ref_b[i].status == 200);
    CHECK(ref_a[i].explanations && ref_b[i].explanations && strcmp(ref_a[i].explanations, ref_b[i].explanations) != 0);
  }
  pthread_t th[N];
  for (int i = 0; i < N; i++) pthread_create(&th[i], NULL, lime_run, &live[i]);
  xd_sleep_ms(55);
  json_t *o = NULL;
  CHECK(put_json(srv.port, "swap", b, NULL, &o, NULL) == 200);
  CHECK(json_integer_value(json_object_get(o, "version")) == 2);
  json_decref(o);
  for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
  int old = 0, neu = 0;
  for (int i = 0; i < N; i++) {
    CHECK_MSG(live[i].status == 200, "request %d: status %d", i, live[i].status);
    int is_a = live[i].explanations && ref_a[i].explanations && strcmp(live[i].explanations, ref_a[i].explanations) == 0;
    int is_b = live[i].explanations && ref_b[i].explanations && strcmp(live[i].explanations, ref_b[i].explanations) == 0;
    CHECK_MSG(is_a || is_b, "request %d matches neither the old nor the new model", i);
    old += is_a;
    neu += is_b;
  }
  fprintf(stderr, "  20 explanations during the swap: %d from the old model, %d from the new\n", old, neu);
  for (int i = 0; i < N; i++) {
    free(ref_a[i].explanations);
    free(ref_b[i].explanations);
    free(live[i].explanations);
  }
  for (int i = 0; i < 3; i++) CHECK(call("DELETE", i == 0 ? "/models/swap" : i == 1 ? "/models/swap_a" : "/models/swap_b", AUTH, NULL, NULL) == 204);
out:
  json_decref(a);
  json_decref(b);
}

/* ---- training over HTTP -------------------------------------------------------------------- */

static json_t *train(const char *name, const char *query, const char *content_type, const char *body, int *status) {
  char path[512], headers[256];
  snprintf(path, sizeof path, "/models/%s/train%s%s", name, query ? "?" : "", query ? query : "");
  snprintf(headers, sizeof headers, AUTH "%s%s%s", content_type ? "Content-Type: " : "", content_type ? content_type : "",
           content_type ? "\r\n" : "");
  json_t *o = NULL;
  *status = call_port(srv.port, "POST", path, headers, body, strlen(body), &o, NULL);
  return o;
}

static char *train_json(const char *csv, const char *extra) {
  json_t *o = json_loads(extra, 0, NULL);
  json_object_set_new(o, "csv", json_string(csv));
  char *t = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return t;
}

/* {"columns", "rows"} from a CSV text: numbers as numbers, everything else as strings. */
static char *train_rows_json(const char *csv, const char *extra) {
  json_t *o = json_loads(extra, 0, NULL), *cols = json_array(), *rows = json_array();
  char *copy = strdup(csv), *save = NULL;
  int first = 1;
  for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    json_t *row = json_array();
    char *s2 = NULL;
    size_t ll = strlen(line);
    if (ll && line[ll - 1] == '\r') line[ll - 1] = '\0'; /* data/ files end lines with CRLF */
    for (char *cell = strtok_r(line, ",", &s2); cell; cell = strtok_r(NULL, ",", &s2)) {
      char *end;
      double v = strtod(cell, &end);
      json_array_append_new(first ? cols : row, !first && *cell && !*end ? json_real(v) : json_string(cell));
    }
    if (first)
      json_decref(row);
    else
      json_array_append_new(rows, row);
    first = 0;
  }
  free(copy);
  json_object_set_new(o, "columns", cols);
  json_object_set_new(o, "rows", rows);
  char *t = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
  json_decref(o);
  return t;
}

static int same_json(const json_t *a, const json_t *b) { return a && b && json_equal((json_t *)a, (json_t *)b); }

TEST(train_over_http) {
  json_t *golden = load_json("tests/golden/train_reference.json");
  char *iris = read_all("data/iris.csv", NULL), *credit = read_all("data/credit.csv", NULL);
  CHECK(golden && iris && credit);
  if (!golden || !iris || !credit) goto out;
  json_t *gi = json_object_get(golden, "iris"), *gc = json_object_get(golden, "credit");
  int st;

  /* iris, three body forms, one seed: the same model each time */
  char *body = train_json(iris, "{\"target\":\"species\",\"hidden\":[16],\"seed\":7,\"diagnostics\":true}");
  json_t *r1 = train("iris-t", NULL, NULL, body, &st);
  CHECK_MSG(st == 200, "status %d", st);
  double acc = json_number_value(json_object_get(r1, "validation_metric"));
  double rec = json_number_value(json_object_get(gi, "explaind_recorded"));
  fprintf(stderr, "  iris over HTTP: validation accuracy %.4f (recorded %.4f)\n", acc, rec);
  CHECK(acc >= rec - 1.0 / 30 - 1e-12);
  CHECK(json_integer_value(json_object_get(r1, "validation_rows")) == 30);
  json_t *r2 = train("iris-t", NULL, NULL, body, &st);
  free(body);
  CHECK(st == 200);
  CHECK(same_json(json_object_get(r1, "train_loss"), json_object_get(r2, "train_loss")));
  CHECK(same_json(json_object_get(r1, "validation_metric"), json_object_get(r2, "validation_metric")));
  CHECK(json_integer_value(json_object_get(r2, "version")) == json_integer_value(json_object_get(r1, "version")) + 1);
  body = train_rows_json(iris, "{\"target\":\"species\",\"hidden\":[16],\"seed\":7,\"diagnostics\":true}");
  json_t *r3 = train("iris-t", NULL, NULL, body, &st);
  free(body);
  CHECK(st == 200 && same_json(json_object_get(r1, "train_loss"), json_object_get(r3, "train_loss")));
  json_t *r4 = train("iris-t", "target=species&hidden=16&seed=7&diagnostics=true", "text/csv", iris, &st);
  CHECK(st == 200 && same_json(json_object_get(r1, "train_loss"), json_object_get(r4, "train_loss")));
  CHECK(json_integer_value(json_object_get(r4, "version")) == json_integer_value(json_object_get(r1, "version")) + 3);
  /* the stored model is the one GET reports, and it is served and explainable */
  json_t *info = model_info(srv.port, "iris-t", &st);
  CHECK(st == 200 && same_json(json_object_get(info, "sha256"), json_object_get(r4, "sha256")));
  CHECK(json_integer_value(json_object_get(info, "background_rows")) == 120);
  json_decref(info);
  CHECK(call("POST", "/predict", AUTH, "{\"model\":\"iris-t\",\"instances\":[[5.1,3.5,1.4,0.2]]}", NULL) == 200);
  json_t *o = NULL;
  CHECK(call("POST", "/explain/lime", AUTH, "{\"model\":\"iris-t\",\"instance\":[6.7,3.0,5.2,2.3],\"seed\":1}", &o) == 200);
  CHECK(json_array_size(json_object_get(o, "explanations")) == 1);
  json_decref(o);
  CHECK(call("POST", "/explain/gradient", AUTH, "{\"model\":\"iris-t\",\"instance\":[6.7,3.0,5.2,2.3]}", NULL) == 200);
  json_decref(r1);
  json_decref(r2);
  json_decref(r3);
  json_decref(r4);

  /* credit: at least scikit-learn's LogisticRegression on the same split */
  body = train_json(credit, "{\"target\":\"approved\",\"hidden\":[],\"seed\":7,\"diagnostics\":true}");
  json_t *c1 = train("credit-t", NULL, NULL, body, &st);
  free(body);
  CHECK(st == 200);
  acc = json_number_value(json_object_get(c1, "validation_metric"));
  rec = json_number_value(json_object_get(gc, "explaind_recorded"));
  double skl = json_number_value(json_object_get(gc, "sklearn_logistic_regression_accuracy"));
  fprintf(stderr, "  credit over HTTP: validation accuracy %.4f (recorded %.4f, scikit-learn %.4f)\n", acc, rec, skl);
  CHECK(acc >= rec - 1.0 / 800 - 1e-12);
  CHECK(acc >= skl - 1.0 / 800 - 1e-12);
  json_t *c2 = train("credit-t", "target=approved&seed=7&diagnostics=true", "text/csv", credit, &st);
  CHECK(st == 200 && same_json(json_object_get(c1, "train_loss"), json_object_get(c2, "train_loss")));
  /* the loss per epoch is a diagnostic: left out unless asked for */
  json_t *c3 = train("credit-t", "target=approved&seed=7", "text/csv", credit, &st);
  CHECK(st == 200 && json_object_get(c3, "train_metric") && !json_object_get(c3, "train_loss") &&
        !json_object_get(c3, "validation_loss"));
  json_decref(c3);
  CHECK(call("POST", "/explain/lime", AUTH,
             "{\"model\":\"credit-t\",\"instance\":{\"age\":40,\"income\":50000,\"debt_ratio\":0.3,"
             "\"employment\":\"employed\",\"region\":\"west\",\"late_payments\":1},\"seed\":3,\"num_samples\":1000}",
             NULL) == 200);
  json_decref(c1);
  json_decref(c2);

  /* bad options: 400 naming the option; nothing stored */
  static const struct {
    const char *query, *json, *field;
  } bad[] = {
      {NULL, "{\"target\":\"species\",\"epochs\":0}", "epochs"},
      {NULL, "{\"target\":\"species\",\"hidden\":[0]}", "hidden[0]"},
      {NULL, "{\"target\":\"species\",\"learning_rate\":-1}", "learning_rate"},
      {NULL, "{\"target\":\"species\",\"activation\":\"softmax\"}", "activation"},
      {NULL, "{\"target\":\"species\",\"validation_split\":0.95}", "validation_split"},
      {NULL, "{\"target\":\"species\",\"task\":\"clustering\"}", "task"},
      {NULL, "{\"target\":\"species\",\"bogus\":1}", "bogus"},
      {NULL, "{\"target\":\"no_such_column\"}", NULL},
      {NULL, "{}", "target"},
      {"target=species&batch_size=0", NULL, "batch_size"},
      {"target=species&hidden=16,x", NULL, "hidden[1]"},
      {"target=species&frobnicate=2", NULL, "frobnicate"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *b = bad[i].json ? train_json(iris, bad[i].json) : NULL;
    o = train("bad-t", bad[i].query, bad[i].json ? NULL : "text/csv", b ? b : iris, &st);
    free(b);
    const char *f = error_field(o);
    CHECK_MSG(st == 400, "case %zu: status %d", i, st);
    if (bad[i].field)
      CHECK_MSG(f && strstr(f, bad[i].field), "case %zu: field '%s', expected '%s'", i, f ? f : "", bad[i].field);
    else
      CHECK_MSG(f && *f, "case %zu: no field", i);
    json_decref(o);
  }
  /* names from a raw CSV or query end up in JSON: bytes that are not UTF-8 are a 400 */
  o = train("bad-t", "target=b", "text/csv", "a,b\n1,x\n\xff,y\n2,x\n", &st);
  CHECK(st == 400 && error_field(o) && strcmp(error_field(o), "csv") == 0);
  json_decref(o);
  o = train("bad-t", "target=b&ep\xffochs=3", "text/csv", "a,b\n1,x\n3,y\n2,x\n", &st);
  CHECK(st == 400 && error_field(o) && strcmp(error_field(o), "query") == 0);
  json_decref(o);
  CHECK(call("GET", "/models/bad-t", AUTH, NULL, NULL) == 404);
  CHECK(call("DELETE", "/models/iris-t", AUTH, NULL, NULL) == 204);
  CHECK(call("DELETE", "/models/credit-t", AUTH, NULL, NULL) == 204);
out:
  json_decref(golden);
  free(iris);
  free(credit);
}

/* ---- ONNX uploads ------------------------------------------------------------------------- */

static int count_graphs(const char *d, const char *name) {
  int n = 0;
  size_t nl = strlen(name);
  DIR *dd = opendir(d);
  struct dirent *de;
  while (dd && (de = readdir(dd)) != NULL) n += strncmp(de->d_name, name, nl) == 0 && strstr(de->d_name, ".onnx");
  if (dd) closedir(dd);
  return n;
}

TEST(onnx_uploads) {
  json_t *up = onnx_upload("relu_softmax_op13"), *up2 = onnx_upload("gelu_op17");
  json_t *exp = load_json("tests/onnx/relu_softmax_op13.expected.json"), *exp2 = load_json("tests/onnx/gelu_op17.expected.json");
  CHECK(up && up2 && exp && exp2);
  if (!up || !up2 || !exp || !exp2) goto out;
  json_t *o = NULL;
  CHECK(put_json(srv.port, "ox", up, NULL, &o, NULL) == 201);
  char sha1[65];
  snprintf(sha1, sizeof sha1, "%s", json_string_value(json_object_get(o, "sha256")) ?: "");
  json_decref(o);
  CHECK(predict_matches(srv.port, "ox", exp, 1e-5) == 0);
  CHECK(file_exists(dir, "ox.v1.onnx") && file_exists(dir, "ox.json"));
  /* the stored bundle names the graph file; the sha covers bundle and graph */
  char p[256];
  snprintf(p, sizeof p, "%s/ox.json", dir);
  json_t *stored = load_json(p);
  CHECK(stored && json_is_string(json_object_get(stored, "onnx")) &&
        strcmp(json_string_value(json_object_get(stored, "onnx")), "ox.v1.onnx") == 0);
  json_decref(stored);
  /* a new graph: new version, new sha, the old graph file removed */
  CHECK(put_json(srv.port, "ox", up2, NULL, &o, NULL) == 200);
  CHECK(json_integer_value(json_object_get(o, "version")) == 2);
  CHECK(json_string_value(json_object_get(o, "sha256")) && strcmp(json_string_value(json_object_get(o, "sha256")), sha1) != 0);
  json_decref(o);
  CHECK(predict_matches(srv.port, "ox", exp2, 1e-5) == 0);
  CHECK(file_exists(dir, "ox.v2.onnx") && !file_exists(dir, "ox.v1.onnx"));
  CHECK(count_graphs(dir, "ox.") == 1);
  /* the graph as the body, the rest of the bundle in a header (JSON or base64) */
  json_t *meta = load_json("tests/onnx/categorical_op13.json"), *mexp = load_json("tests/onnx/categorical_op13.expected.json");
  size_t n;
  char *raw = read_all("tests/onnx/categorical_op13.onnx", &n);
  CHECK(meta && mexp && raw);
  if (meta && mexp && raw) {
    json_object_del(meta, "onnx");
    char *mt = json_dumps(meta, JSON_COMPACT), *m64 = base64((const unsigned char *)mt, strlen(mt));
    char h[4096];
    snprintf(h, sizeof h, AUTH "Content-Type: application/octet-stream\r\nX-Explaind-Bundle: %s\r\n", mt);
    CHECK(call_port(srv.port, "PUT", "/models/oct", h, raw, n, NULL, NULL) == 201);
    CHECK(predict_matches(srv.port, "oct", mexp, 1e-5) == 0);
    snprintf(h, sizeof h, AUTH "Content-Type: application/octet-stream\r\nX-Explaind-Bundle: %s\r\n", m64);
    CHECK(call_port(srv.port, "PUT", "/models/oct", h, raw, n, &o, NULL) == 200);
    CHECK(json_integer_value(json_object_get(o, "version")) == 2);
    json_decref(o);
    CHECK(predict_matches(srv.port, "oct", mexp, 1e-5) == 0);
    CHECK(file_exists(dir, "oct.v2.onnx") && !file_exists(dir, "oct.v1.onnx"));
    /* without the header: 400 naming it; a corrupted body: 400 naming onnx */
    CHECK(call_port(srv.port, "PUT", "/models/oct", AUTH "Content-Type: application/octet-stream\r\n", raw, n, &o,
                    NULL) == 400);
    CHECK(error_field(o) && strcmp(error_field(o), "X-Explaind-Bundle") == 0);
    json_decref(o);
    raw[n / 2] ^= 0x5a;
    raw[n / 2 + 1] ^= 0xff;
    CHECK(call_port(srv.port, "PUT", "/models/oct", h, raw, n / 2 + 7, &o, NULL) == 400);
    CHECK(error_field(o) && strcmp(error_field(o), "onnx") == 0);
    json_decref(o);
    free(mt);
    free(m64);
    CHECK(call("DELETE", "/models/oct", AUTH, NULL, NULL) == 204);
    CHECK(count_graphs(dir, "oct.") == 0 && !file_exists(dir, "oct.json"));
  }
  free(raw);
  json_decref(meta);
  json_decref(mexp);
  /* a graph whose node names are not UTF-8 (found by fuzz_upload): a 400 naming onnx */
  raw = read_all("tests/fuzz/crashes/upload/onnx_node_name_not_utf8", &n);
  CHECK(raw != NULL);
  if (raw) {
    char *nl = memchr(raw + 1, '\n', n - 1), h[4096];
    CHECK(nl != NULL);
    if (nl) {
      snprintf(h, sizeof h, AUTH "Content-Type: application/octet-stream\r\nX-Explaind-Bundle: %.*s\r\n",
               (int)(nl - raw - 1), raw + 1);
      CHECK(call_port(srv.port, "PUT", "/models/ox", h, nl + 1, n - (size_t)(nl + 1 - raw), &o, NULL) == 400);
      CHECK(error_field(o) && strcmp(error_field(o), "onnx") == 0);
      json_decref(o);
    }
    free(raw);
  }
  /* corrupted and truncated graphs, bad base64, a file name: 400 naming onnx */
  static const char *const broken[] = {"bad_corrupted.onnx", "bad_truncated.onnx", "bad_conv.onnx"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "tests/onnx/%s", broken[i]);
    raw = read_all(p, &n);
    CHECK(raw != NULL);
    if (!raw) continue;
    char *enc = base64((const unsigned char *)raw, n);
    json_t *b = json_deep_copy(up);
    json_object_set_new(b, "onnx", json_pack("{s:s}", "base64", enc));
    CHECK(put_json(srv.port, "ox", b, NULL, &o, NULL) == 400);
    CHECK_MSG(error_field(o) && strcmp(error_field(o), "onnx") == 0, "%s: field %s", broken[i], error_field(o));
    json_decref(o);
    json_decref(b);
    free(enc);
    free(raw);
  }
  json_t *b = json_deep_copy(up);
  json_object_set_new(b, "onnx", json_pack("{s:s}", "base64", "not*base64"));
  CHECK(put_json(srv.port, "ox", b, NULL, &o, NULL) == 400);
  CHECK(error_field(o) && strcmp(error_field(o), "onnx.base64") == 0);
  json_decref(o);
  json_object_set_new(b, "onnx", json_string("../relu_softmax_op13.onnx"));
  CHECK(put_json(srv.port, "ox", b, NULL, &o, NULL) == 400);
  CHECK(error_field(o) && strcmp(error_field(o), "onnx") == 0);
  json_decref(o);
  json_decref(b);
  /* nothing changed by the failures; DELETE removes the graph too */
  int st;
  o = model_info(srv.port, "ox", &st);
  CHECK(st == 200 && json_integer_value(json_object_get(o, "version")) == 2);
  json_decref(o);
  CHECK(count_graphs(dir, "ox.") == 1);
  CHECK(call("DELETE", "/models/ox", AUTH, NULL, NULL) == 204);
  CHECK(count_graphs(dir, "ox.") == 0 && !file_exists(dir, "ox.json"));
out:
  json_decref(up);
  json_decref(up2);
  json_decref(exp);
  json_decref(exp2);
}

/* A restart keeps versions, digests and ONNX models (the uploads are files now). */
TEST(restart_keeps_versions_and_digests) {
  json_t *up = onnx_upload("relu_softmax_op13"), *exp = load_json("tests/onnx/relu_softmax_op13.expected.json");
  json_t *a = load_json("tests/exporters/sklearn_mlp_iris.json");
  CHECK(up && exp && a);
  if (!up || !exp || !a) goto out;
  json_t *o = NULL;
  CHECK(put_json(srv.port, "keep_onnx", up, NULL, NULL, NULL) == 201);
  CHECK(put_json(srv.port, "keep_onnx", up, NULL, &o, NULL) == 200);
  char sha_onnx[65], sha_layers[65];
  snprintf(sha_onnx, sizeof sha_onnx, "%s", json_string_value(json_object_get(o, "sha256")) ?: "");
  json_decref(o);
  CHECK(put_json(srv.port, "keep_layers", a, NULL, &o, NULL) == 201);
  snprintf(sha_layers, sizeof sha_layers, "%s", json_string_value(json_object_get(o, "sha256")) ?: "");
  json_decref(o);
  CHECK(xd_server_stop(&srv) == 0);
  CHECK(start(&srv, dir, 1) == 0);
  int st;
  o = model_info(srv.port, "keep_onnx", &st);
  CHECK(st == 200 && json_integer_value(json_object_get(o, "version")) == 2);
  CHECK(json_string_value(json_object_get(o, "sha256")) && strcmp(json_string_value(json_object_get(o, "sha256")), sha_onnx) == 0);
  json_decref(o);
  o = model_info(srv.port, "keep_layers", &st);
  CHECK(st == 200 && json_string_value(json_object_get(o, "sha256")) &&
        strcmp(json_string_value(json_object_get(o, "sha256")), sha_layers) == 0);
  json_decref(o);
  CHECK(predict_matches(srv.port, "keep_onnx", exp, 1e-5) == 0);
  /* SIGHUP with nothing changed: same versions */
  kill(srv.pid, SIGHUP);
  xd_sleep_ms(300);
  o = model_info(srv.port, "keep_onnx", &st);
  CHECK(st == 200 && json_integer_value(json_object_get(o, "version")) == 2);
  json_decref(o);
  CHECK(put_json(srv.port, "keep_onnx", up, NULL, &o, NULL) == 200);
  CHECK(json_integer_value(json_object_get(o, "version")) == 3);
  json_decref(o);
out:
  json_decref(up);
  json_decref(exp);
  json_decref(a);
}

int main(void) {
  if (copy_models(dir, sizeof dir) != 0 || start(&srv, dir, 1) != 0) {
    fprintf(stderr, "cannot start the server on a copy of models/\n");
    printf("0 passed, 1 failed\n");
    return 1;
  }
  RUN(put_replace_get_delete);
  RUN(admin_key_is_required);
  RUN(secret_equal_unit);
  RUN(sha256_incremental_equals_one_shot);
  RUN(utf8_checks);
  RUN(secret_equal_time_does_not_depend_on_prefix);
  RUN(wrong_key_timing_does_not_depend_on_prefix);
  RUN(onnx_uploads);
  RUN(replace_under_20_explanations);
  RUN(train_over_http);
  RUN(restart_keeps_versions_and_digests);
  RUN(kill9_during_puts_leaves_old_or_new);
  int rc = xd_server_stop(&srv);
  if (rc != 0) {
    fprintf(stderr, "FAIL server exit status %d\n", rc);
    xd_test_failed++;
  }
  remove_dir(dir);
  return TEST_REPORT();
}
