/* test_onnx.c — ONNX import (core/onnx.c, api/bundle.c's "onnx").
 *
 * Golden: every tests/onnx/NAME.expected.json (made by tools/make_onnx_fixtures.py from
 * PyTorch exports and onnx.helper graphs) loads through its bundle and reproduces the
 * frozen outputs to 1e-5 with xd_model_predict. Invalid: every case of
 * tests/onnx/invalid.json is rejected with its code, field and text (the node named).
 * Structure: the layers each exported graph turns into (normalizations folded, GELU
 * recognized). Faults: every truncation of a small file, seeded random byte flips,
 * hostile nesting and message counts, and allocation failures at every step — all
 * rejected cleanly (run under ASan: `make asan`). */
#include <glob.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "api/bundle.h"
#include "api/files.h"
#include "core/alloc.h"
#include "core/onnx.h"
#include "core/rng.h"
#include "tests/test.h"

#define DIR "tests/onnx"

static char *slurp(const char *path, size_t *len) {
  char *data = NULL;
  xd_error_t err;
  if (xd_read_file(path, 1u << 26, &data, len, &err) != XD_OK) fprintf(stderr, "  %s: %s\n", path, err.text);
  return data;
}

static xd_model_t *load(const char *bundle, xd_error_t *err) {
  char p[512];
  snprintf(p, sizeof p, DIR "/%s", bundle);
  xd_model_t *m = NULL;
  xd_bundle_load_file(p, &m, NULL, err);
  return m;
}

/* Outputs of m on the rows of an expected.json's "inputs", compared to its "outputs". */
static int check_outputs(const xd_model_t *m, const json_t *exp, const char *name, double tol) {
  const json_t *in = json_object_get(exp, "inputs"), *want = json_object_get(exp, "outputs");
  size_t n = json_array_size(in), d = xd_model_n_features(m), k = xd_model_n_outputs(m);
  double *X = xd_calloc(n * d, sizeof *X), *Y = xd_calloc(n * k, sizeof *Y);
  xd_error_t err;
  int bad = 0;
  CHECK(X && Y && n > 0 && json_array_size(want) == n);
  if (!X || !Y) goto done;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < d; j++) X[i * d + j] = json_number_value(json_array_get(json_array_get(in, i), j));
  CHECK(xd_model_predict(m, X, n, Y, NULL, &err) == XD_OK);
  for (size_t i = 0; i < n; i++) {
    const json_t *row = json_array_get(want, i);
    CHECK_MSG(json_array_size(row) == k, "%s: row %zu has %zu outputs, model %zu", name, i, json_array_size(row), k);
    for (size_t c = 0; c < k && c < json_array_size(row); c++) {
      double w = json_number_value(json_array_get(row, c));
      if (!(fabs(Y[i * k + c] - w) <= tol)) bad++;
      CHECK_MSG(fabs(Y[i * k + c] - w) <= tol, "%s: row %zu output %zu = %.9g, PyTorch %.9g", name, i, c, Y[i * k + c],
                w);
    }
  }
done:
  xd_free(X);
  xd_free(Y);
  return bad;
}

/* ---- the activation the Erf form of GELU becomes ------------------------------------ */

TEST(gelu_erf_activation) {
  xd_act_t a;
  CHECK(xd_act_parse("gelu_erf", &a) == 0 && a == XD_ACT_GELU_ERF);
  CHECK(strcmp(xd_act_name(XD_ACT_GELU_ERF), "gelu_erf") == 0);
  for (double z = -9; z <= 9; z += 0.37) {
    CHECK_NEAR(xd_act_apply(XD_ACT_GELU_ERF, z), 0.5 * z * (1 + erf(z / sqrt(2))), 1e-15 + 1e-14 * fabs(z));
    double h = 1e-5, fd = (xd_act_apply(XD_ACT_GELU_ERF, z + h) - xd_act_apply(XD_ACT_GELU_ERF, z - h)) / (2 * h);
    CHECK_NEAR(xd_act_deriv(XD_ACT_GELU_ERF, z), fd, 1e-8);
  }
  /* Far left the exact GELU is a tiny negative number, not 0 or -0 from cancellation. */
  CHECK(xd_act_apply(XD_ACT_GELU_ERF, -8) < 0 && xd_act_apply(XD_ACT_GELU_ERF, -8) > -1e-13);
}

/* ---- golden: PyTorch (and numpy, for onnx.helper graphs) outputs -------------------- */

TEST(fixtures_reproduce_reference_outputs) {
  glob_t g;
  CHECK(glob(DIR "/*.expected.json", 0, NULL, &g) == 0);
  CHECK(g.gl_pathc >= 19);
  for (size_t f = 0; f < g.gl_pathc; f++) {
    json_error_t jerr;
    json_t *exp = json_load_file(g.gl_pathv[f], 0, &jerr);
    CHECK_MSG(exp != NULL, "%s: %s", g.gl_pathv[f], jerr.text);
    if (!exp) continue;
    const char *bundle = json_string_value(json_object_get(exp, "bundle"));
    xd_error_t err;
    xd_model_t *m = bundle ? load(bundle, &err) : NULL;
    CHECK_MSG(m != NULL, "%s: %s: %s", g.gl_pathv[f], err.field, err.text);
    if (m) check_outputs(m, exp, bundle, 1e-5);
    xd_model_free(m);
    json_decref(exp);
  }
  globfree(&g);
}

/* ---- what each export becomes ------------------------------------------------------------ */

static void expect_layers(const char *file, size_t n, const xd_act_t *acts, const size_t *widths) {
  char p[256];
  snprintf(p, sizeof p, DIR "/%s", file);
  size_t len;
  char *bytes = slurp(p, &len);
  xd_layer_spec_t *L = NULL;
  size_t nl = 0;
  xd_error_t err;
  int rc = bytes ? xd_onnx_to_layers(bytes, len, 0, &L, &nl, &err) : XD_EIO;
  CHECK_MSG(rc == XD_OK, "%s: %s", file, err.text);
  CHECK_MSG(nl == n, "%s: %zu layers, expected %zu", file, nl, n);
  for (size_t l = 0; l < n && l < nl; l++) {
    CHECK_MSG(L[l].act == acts[l], "%s: layer %zu is %s, expected %s", file, l, xd_act_name(L[l].act),
              xd_act_name(acts[l]));
    CHECK_MSG(L[l].out == widths[l], "%s: layer %zu has %zu units", file, l, L[l].out);
    CHECK(l == 0 || L[l].in == L[l - 1].out);
  }
  xd_onnx_layers_free(L, nl);
  xd_free(bytes);
}

TEST(exports_become_the_expected_layers) {
  expect_layers("gelu_op17.onnx", 3, (xd_act_t[]){XD_ACT_GELU_ERF, XD_ACT_GELU_ERF, XD_ACT_SOFTMAX},
                (size_t[]){6, 5, 3});
  expect_layers("helper_gelu_variant_op13.onnx", 2, (xd_act_t[]){XD_ACT_GELU_ERF, XD_ACT_IDENTITY}, (size_t[]){4, 1});
  expect_layers("helper_gelu_tanh_op20.onnx", 2, (xd_act_t[]){XD_ACT_GELU, XD_ACT_IDENTITY}, (size_t[]){4, 1});
  /* Sub/Div at the input fold into the first Gemm; Mul/Div around Softplus into its
   * neighbours; y*s+m after the last Gemm into it. */
  expect_layers("normalized_input_op13.onnx", 2, (xd_act_t[]){XD_ACT_TANH, XD_ACT_SOFTMAX}, (size_t[]){6, 3});
  expect_layers("softplus_beta2_op13.onnx", 2, (xd_act_t[]){XD_ACT_SOFTPLUS, XD_ACT_IDENTITY}, (size_t[]){7, 1});
  expect_layers("linear_linear_scaled_op9.onnx", 2, (xd_act_t[]){XD_ACT_IDENTITY, XD_ACT_IDENTITY}, (size_t[]){4, 1});
  expect_layers("batchnorm_nobias_op13.onnx", 2, (xd_act_t[]){XD_ACT_RELU, XD_ACT_IDENTITY}, (size_t[]){6, 1});
  expect_layers("matmul_add_op13.onnx", 2, (xd_act_t[]){XD_ACT_RELU, XD_ACT_IDENTITY}, (size_t[]){6, 1});
  expect_layers("leaky_relu_op11.onnx", 3, (xd_act_t[]){XD_ACT_LEAKY_RELU, XD_ACT_SIGMOID, XD_ACT_IDENTITY},
                (size_t[]){6, 4, 1});
  expect_layers("helper_ms_gelu_op13.onnx", 2, (xd_act_t[]){XD_ACT_GELU_ERF, XD_ACT_SOFTMAX}, (size_t[]){5, 3});
}

/* ---- invalid graphs ------------------------------------------------------------------------ */

TEST(invalid_fixtures_are_rejected_with_the_node_named) {
  json_error_t jerr;
  json_t *cases = json_load_file(DIR "/invalid.json", 0, &jerr);
  CHECK_MSG(cases != NULL, "%s", jerr.text);
  CHECK(json_array_size(cases) >= 16);
  for (size_t i = 0; i < json_array_size(cases); i++) {
    const json_t *c = json_array_get(cases, i);
    const char *bundle = json_string_value(json_object_get(c, "bundle"));
    const char *raw = json_string_value(json_object_get(c, "onnx"));
    const char *field = json_string_value(json_object_get(c, "field"));
    const char *text = json_string_value(json_object_get(c, "text"));
    xd_error_t err;
    memset(&err, 0, sizeof err);
    if (raw) { /* a graph alone, converted directly */
      char p[256];
      size_t len;
      snprintf(p, sizeof p, DIR "/%s", raw);
      char *bytes = slurp(p, &len);
      xd_layer_spec_t *L = NULL;
      size_t nl = 0;
      CHECK_MSG(bytes && xd_onnx_to_layers(bytes, len, 0, &L, &nl, &err) != XD_OK, "%s was accepted", raw);
      xd_onnx_layers_free(L, nl);
      xd_free(bytes);
      bundle = raw;
    } else {
      xd_model_t *m = load(bundle, &err);
      CHECK_MSG(m == NULL, "%s was accepted", bundle);
      xd_model_free(m);
    }
    CHECK_MSG(err.code == XD_EFORMAT, "%s: code %d", bundle, err.code);
    CHECK_MSG(strcmp(err.field, field) == 0, "%s: field '%s', expected '%s'", bundle, err.field, field);
    CHECK_MSG(strstr(err.text, text) != NULL, "%s: text '%s' lacks '%s'", bundle, err.text, text);
  }
  json_decref(cases);
}

TEST(bundle_rules_for_onnx) {
  static const char *head =
      "{\"format\":\"explaind.model/v1\",\"task\":\"regression\",\"features\":[{\"name\":\"a\"}],";
  const char *cases[][2] = {
      {"\"onnx\":\"/etc/passwd\"}", "relative file name"},
      {"\"onnx\":\"../x.onnx\"}", "relative file name"},
      {"\"onnx\":3}", "must be a file name"},
      {"\"onnx\":\"missing.onnx\"}", "cannot open"},
      {"\"onnx\":\"a.onnx\",\"layers\":[]}", "either layers or onnx"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char b[512];
    snprintf(b, sizeof b, "%s%s", head, cases[i][0]);
    xd_model_t *m = NULL;
    xd_error_t err;
    CHECK(xd_bundle_decode(b, strlen(b), DIR, &m, &err) == XD_EFORMAT && m == NULL);
    CHECK_MSG(strncmp(err.field, "onnx", 4) == 0 && strstr(err.text, cases[i][1]), "%s: %s: %s", cases[i][0], err.field,
              err.text);
  }
  /* Without a folder (an inline upload) a file name is refused. */
  const char *b = "{\"format\":\"explaind.model/v1\",\"task\":\"regression\",\"features\":[{\"name\":\"a\"}],"
                  "\"onnx\":\"a.onnx\"}";
  xd_model_t *m = NULL;
  xd_error_t err;
  CHECK(xd_bundle_decode(b, strlen(b), NULL, &m, &err) == XD_EFORMAT && strcmp(err.field, "onnx") == 0);
}

/* ---- the upload path: metadata JSON + ONNX bytes ------------------------------------------- */

TEST(upload_decodes_like_the_file_bundle) {
  size_t jlen, olen;
  char *js = slurp(DIR "/categorical_op13.json", &jlen), *onnx = slurp(DIR "/categorical_op13.onnx", &olen);
  json_t *meta = js ? json_loads(js, 0, NULL) : NULL,
         *exp = json_load_file(DIR "/categorical_op13.expected.json", 0, NULL);
  CHECK(meta && onnx && exp);
  if (!meta || !onnx || !exp) goto done;
  json_object_del(meta, "onnx");
  char *mj = json_dumps(meta, JSON_COMPACT);
  xd_model_t *m = NULL;
  xd_error_t err;
  CHECK_MSG(xd_bundle_decode_onnx(mj, strlen(mj), onnx, olen, NULL, &m, &err) == XD_OK, "%s: %s", err.field, err.text);
  if (m) check_outputs(m, exp, "upload", 1e-5);
  xd_model_free(m);
  /* the metadata may not name a network of its own */
  json_object_set_new(meta, "onnx", json_string("x.onnx"));
  char *mj2 = json_dumps(meta, JSON_COMPACT);
  CHECK(xd_bundle_decode_onnx(mj2, strlen(mj2), onnx, olen, NULL, &m, &err) == XD_EFORMAT &&
        strcmp(err.field, "onnx") == 0);
  json_object_del(meta, "onnx");
  json_object_set_new(meta, "layers", json_array());
  char *mj3 = json_dumps(meta, JSON_COMPACT);
  CHECK(xd_bundle_decode_onnx(mj3, strlen(mj3), onnx, olen, NULL, &m, &err) == XD_EFORMAT &&
        strcmp(err.field, "layers") == 0);
  CHECK(xd_bundle_decode_onnx(mj, strlen(mj), NULL, 0, NULL, &m, &err) == XD_EFORMAT && m == NULL);
  /* a graph that is not what the features encode to: 5 inputs expected, iris-like 4 given */
  size_t l2;
  char *other = slurp(DIR "/relu_softmax_op13.onnx", &l2);
  CHECK(other && xd_bundle_decode_onnx(mj, strlen(mj), other, l2, NULL, &m, &err) == XD_EFORMAT &&
        strstr(err.text, "has 4 columns, expected 5"));
  xd_free(other);
  free(mj);
  free(mj2);
  free(mj3);
done:
  json_decref(meta);
  json_decref(exp);
  xd_free(js);
  xd_free(onnx);
}

/* ---- faults ------------------------------------------------------------------------------- */

/* Converts an exact-size copy (so ASan sees any read past the end); 1 when accepted. */
static int try_bytes(const uint8_t *src, size_t len, size_t n_inputs, int *rc_out) {
  uint8_t *b = xd_malloc(len);
  if (len) memcpy(b, src, len);
  xd_layer_spec_t *L = NULL;
  size_t nl = 0;
  xd_error_t err;
  int rc = xd_onnx_to_layers(b, len, n_inputs, &L, &nl, &err);
  *rc_out = rc;
  if (rc == XD_OK) {
    CHECK(nl >= 1 && L[0].in == n_inputs);
    for (size_t l = 1; l < nl; l++) CHECK(L[l].in == L[l - 1].out);
  } else {
    CHECK(L == NULL && nl == 0 && strcmp(err.field, "onnx") == 0 && err.text[0]);
  }
  xd_onnx_layers_free(L, nl);
  xd_free(b);
  return rc == XD_OK;
}

TEST(every_truncation_is_rejected) {
  size_t len;
  uint8_t *good = (uint8_t *)slurp(DIR "/relu_softmax_op13.onnx", &len);
  CHECK(good && len > 100);
  if (!good) return;
  int rc;
  CHECK(try_bytes(good, len, 4, &rc) == 1);
  size_t accepted = 0;
  for (size_t n = 0; n < len; n++) {
    accepted += (size_t)try_bytes(good, n, 4, &rc);
    CHECK_MSG(rc == XD_EFORMAT || rc == XD_OK, "length %zu: code %d", n, rc);
  }
  CHECK_MSG(accepted == 0, "%zu truncations were accepted", accepted);
  xd_free(good);
}

TEST(random_byte_flips_never_crash) {
  const char *files[] = {DIR "/gelu_op17.onnx", DIR "/relu_softmax_typed.onnx", DIR "/helper_double_reshape_op13.onnx"};
  const size_t widths[] = {4, 4, 4};
  xd_rng_t r;
  xd_rng_seed(&r, 20261129);
  for (size_t f = 0; f < 3; f++) {
    size_t len;
    uint8_t *good = (uint8_t *)slurp(files[f], &len);
    CHECK(good != NULL);
    if (!good) continue;
    uint8_t *b = xd_malloc(len);
    size_t rejected = 0, trials = 1500;
    for (size_t t = 0; t < trials; t++) {
      memcpy(b, good, len);
      size_t flips = 1 + xd_rng_below(&r, 4);
      for (size_t k = 0; k < flips; k++) b[xd_rng_below(&r, len)] ^= (uint8_t)(1 + xd_rng_below(&r, 255));
      int rc;
      rejected += !try_bytes(b, len, widths[f], &rc);
      CHECK_MSG(rc == XD_OK || rc == XD_EFORMAT, "%s trial %zu: code %d", files[f], t, rc);
    }
    CHECK(rejected > trials / 10); /* most flips land in names and structure */
    xd_free(b);
    xd_free(good);
  }
}

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return n;
}

TEST(hostile_nesting_and_message_counts) {
  /* Model.graph -> (Graph.node -> Node.attribute -> Attribute.g)*: 30000 levels in ~100 KB,
   * which would take protobuf-c's recursive unpacker far down the stack. */
  enum { LEVELS = 30000 };
  static const uint8_t tags[3] = {0x0a, 0x2a, 0x32}; /* fields 1, 5, 6; length-delimited */
  size_t *size = xd_calloc(LEVELS + 1, sizeof *size);
  uint8_t tmp[10];
  for (size_t l = LEVELS; l-- > 0;) size[l] = 1 + put_varint(tmp, size[l + 1]) + size[l + 1];
  uint8_t *b = xd_malloc(size[0]), *p = b;
  for (size_t l = 0; l < LEVELS; l++) {
    *p++ = l == 0 ? 0x3a : tags[(l - 1) % 3];
    p += put_varint(p, size[l + 1]);
  }
  int rc;
  CHECK(try_bytes(b, size[0], 3, &rc) == 0 && rc == XD_EFORMAT);
  xd_free(b);
  xd_free(size);
  /* 400000 empty nodes: 800 KB that would unpack into ~100 MB of structs. */
  size_t n = 400000, inner = 2 * n;
  b = xd_malloc(inner + 16);
  p = b;
  *p++ = 0x3a;
  p += put_varint(p, inner);
  for (size_t i = 0; i < n; i++) {
    *p++ = 0x0a;
    *p++ = 0x00;
  }
  xd_error_t err;
  xd_layer_spec_t *L;
  size_t nl;
  CHECK(xd_onnx_to_layers(b, (size_t)(p - b), 3, &L, &nl, &err) == XD_EFORMAT && strstr(err.text, "messages"));
  xd_free(b);
  CHECK(xd_onnx_to_layers("", 0, 3, &L, &nl, &err) == XD_EFORMAT);
}

TEST(allocation_failures_are_clean) {
  const char *files[] = {DIR "/gelu_op17.onnx", DIR "/helper_double_reshape_op13.onnx"};
  for (size_t f = 0; f < 2; f++) {
    size_t len;
    char *bytes = slurp(files[f], &len);
    CHECK(bytes != NULL);
    if (!bytes) continue;
    int ok = 0;
    for (long k = 1; k < 100000 && !ok; k++) {
      long before = xd_alloc_failures();
      xd_alloc_fail_after(k);
      xd_layer_spec_t *L = NULL;
      size_t nl = 0;
      xd_error_t err;
      int rc = xd_onnx_to_layers(bytes, len, 0, &L, &nl, &err);
      int injected = xd_alloc_failures() > before;
      xd_alloc_fail_after(0);
      if (!injected) {
        CHECK(rc == XD_OK);
        ok = 1;
      } else {
        CHECK_MSG(rc == XD_ENOMEM && L == NULL, "%s: failure %ld gave code %d (%s)", files[f], k, rc, err.text);
      }
      xd_onnx_layers_free(L, nl);
    }
    CHECK(ok);
    xd_free(bytes);
  }
}

int main(void) {
  RUN(gelu_erf_activation);
  RUN(fixtures_reproduce_reference_outputs);
  RUN(exports_become_the_expected_layers);
  RUN(invalid_fixtures_are_rejected_with_the_node_named);
  RUN(bundle_rules_for_onnx);
  RUN(upload_decodes_like_the_file_bundle);
  RUN(every_truncation_is_rejected);
  RUN(random_byte_flips_never_crash);
  RUN(hostile_nesting_and_message_counts);
  RUN(allocation_failures_are_clean);
  return TEST_REPORT();
}
