/* test_graph_ort.c — the graph engine against ONNX Runtime, operator by operator.
 *
 * For every fixture tests/onnx/ops/<case>.onnx with its input spec <case>.json
 * ({"inputs": [{"name", "dtype", "shape", "low", "high"}]}), random inputs are drawn
 * from the spec (seeded by the case name), written as JSON, evaluated by ONNX Runtime
 * (node tests/onnxrt/run.mjs) and by the engine in float and in double, and every graph
 * output is compared (|a-b| <= 1e-4·(1+|b|); integers and bools exactly).
 * Needs node and the npm package onnxruntime-node (`make onnxrt-deps`); without them the
 * test says it is skipped, and fails under CI=true.
 */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/graph.h"
#include "core/graph_int.h"
#include "core/mat.h"
#include "tests/test.h"

#define OPS_DIR "tests/onnx/ops"

static uint64_t rs;
static double urand(void) {
  uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  if (b) b[n] = 0;
  if (len) *len = (size_t)n;
  return b;
}

static int have_ort(void) {
  return system("node --version >/dev/null 2>&1") == 0 && access("tests/onnxrt/node_modules/onnxruntime-node", F_OK) == 0;
}

static xd_dtype_t dtype_of(const char *s) {
  return strcmp(s, "int64") == 0 ? XD_DT_I64 : strcmp(s, "bool") == 0 ? XD_DT_BOOL : XD_DT_F32;
}

/* One fixture: returns the number of failed comparisons (0 = pass). */
static int check_case(const char *name) {
  char path[512], spec_path[512], in_path[] = "/tmp/xd-ort-XXXXXX";
  snprintf(path, sizeof path, OPS_DIR "/%s.onnx", name);
  snprintf(spec_path, sizeof spec_path, OPS_DIR "/%s.json", name);
  int fails = 0;
  json_error_t je;
  json_t *spec = json_load_file(spec_path, 0, &je), *ins = json_object_get(spec, "inputs");
  if (!json_is_array(ins)) {
    fprintf(stderr, "  %s: no inputs in %s\n", name, spec_path);
    json_decref(spec);
    return 1;
  }
  rs = 0;
  for (const char *c = name; *c; c++) rs = rs * 131 + (unsigned char)*c;
  size_t ni = json_array_size(ins);
  xd_tensor_t t[16];
  const char *names[16];
  json_t *feed = json_object();
  for (size_t k = 0; k < ni && k < 16; k++) {
    json_t *x = json_array_get(ins, k), *sh = json_object_get(x, "shape");
    names[k] = json_string_value(json_object_get(x, "name"));
    const char *dt = json_string_value(json_object_get(x, "dtype"));
    double lo = json_number_value(json_object_get(x, "low")), hi = json_number_value(json_object_get(x, "high"));
    memset(&t[k], 0, sizeof t[k]);
    t[k].dtype = dtype_of(dt ? dt : "float32");
    t[k].rank = json_array_size(sh);
    for (size_t d = 0; d < t[k].rank; d++) t[k].dims[d] = json_integer_value(json_array_get(sh, d));
    size_t n = xd_tensor_numel(&t[k]);
    t[k].data = calloc(n + 1, 8);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++) {
      if (t[k].dtype == XD_DT_F32) {
        float v = (float)(lo + (hi - lo) * urand());
        ((float *)t[k].data)[i] = v;
        json_array_append_new(data, json_real(v));
      } else {
        int64_t v = (int64_t)floor(lo + (hi - lo + 1) * urand());
        if (v > (int64_t)hi) v = (int64_t)hi;
        if (t[k].dtype == XD_DT_I64) ((int64_t *)t[k].data)[i] = v;
        else ((uint8_t *)t[k].data)[i] = v != 0;
        json_array_append_new(data, t[k].dtype == XD_DT_BOOL ? json_boolean(v) : json_integer(v));
      }
    }
    json_object_set_new(feed, names[k], json_pack("{s:s, s:O, s:o}", "dtype", dt ? dt : "float32", "shape", sh, "data", data));
  }
  int fd = mkstemp(in_path);
  if (fd >= 0) close(fd);
  json_dump_file(feed, in_path, JSON_COMPACT);
  json_decref(feed);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "node tests/onnxrt/run.mjs %s %s", path, in_path);
  FILE *p = popen(cmd, "r");
  json_t *ref = p ? json_loadf(p, 0, &je) : NULL;
  if (p) pclose(p);
  unlink(in_path);
  size_t len;
  char *bytes = slurp(path, &len);
  xd_graph_t *g = NULL;
  xd_error_t err;
  if (!ref) {
    fprintf(stderr, "  %s: ONNX Runtime gave no answer\n", name);
    fails++;
  } else if (!bytes || xd_graph__load(bytes, len, 0, &g, &err) != XD_OK) {
    fprintf(stderr, "  %s: load: %s\n", name, bytes ? err.text : "unreadable");
    fails++;
  }
  for (int prec = 0; g && prec < 2 && !fails; prec++) {
    xd_tensor_t ordered[16], outs[16];
    size_t gi = xd_graph_n_inputs(g);
    for (size_t k = 0; k < gi; k++) {
      size_t m = 0;
      while (m < ni && strcmp(names[m], xd_graph_input(g, k)->name) != 0) m++;
      if (m == ni) {
        fprintf(stderr, "  %s: graph input %s not in the spec\n", name, xd_graph_input(g, k)->name);
        fails++;
        break;
      }
      ordered[k] = t[m];
    }
    if (fails) break;
    if (xd_graph__eval(g, ordered, prec ? XD_DT_F64 : XD_DT_F32, (size_t)1 << 30, outs, &err) != XD_OK) {
      fprintf(stderr, "  %s: eval: %s\n", name, err.text);
      fails++;
      break;
    }
    for (size_t o = 0; o < xd_graph_n_outputs(g); o++) {
      json_t *r = json_object_get(ref, xd_graph_output(g, o)->name), *rd = json_object_get(r, "data");
      json_t *rsh = json_object_get(r, "shape");
      size_t n = xd_tensor_numel(&outs[o]);
      int shape_ok = json_array_size(rsh) == outs[o].rank && json_array_size(rd) == n;
      for (size_t d = 0; shape_ok && d < outs[o].rank; d++)
        shape_ok = json_integer_value(json_array_get(rsh, d)) == outs[o].dims[d];
      if (!shape_ok) {
        fprintf(stderr, "  %s: output %zu has another shape than ONNX Runtime's\n", name, o);
        fails++;
      }
      for (size_t i = 0; shape_ok && i < n; i++) {
        json_t *v = json_array_get(rd, i);
        double b = json_is_boolean(v) ? json_is_true(v) : json_number_value(v), a = xd_tensor_get_d(&outs[o], i);
        int ok = xd_dtype_is_float(outs[o].dtype) ? fabs(a - b) <= 1e-4 * (1 + fabs(b)) : a == b;
        if (!ok) {
          fprintf(stderr, "  %s (%s): output %zu element %zu: engine %.9g, ONNX Runtime %.9g\n", name,
                  prec ? "double" : "float", o, i, a, b);
          fails++;
          break;
        }
      }
      xd_free(outs[o].data);
    }
  }
  xd_graph_free(g);
  free(bytes);
  json_decref(ref);
  json_decref(spec);
  for (size_t k = 0; k < ni && k < 16; k++) free(t[k].data);
  return fails;
}

TEST(operators_match_onnx_runtime) {
  if (!have_ort()) {
    const char *ci = getenv("CI");
    fprintf(stderr, "  skipped: node or onnxruntime-node missing (make onnxrt-deps)\n");
    CHECK_MSG(!(ci && strcmp(ci, "true") == 0), "a skip is a failure under CI");
    return;
  }
  DIR *d = opendir(OPS_DIR);
  CHECK(d != NULL);
  if (!d) return;
  struct dirent *e;
  size_t cases = 0, failed = 0;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 6 || strcmp(e->d_name + n - 5, ".onnx") != 0) continue;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(n - 5), e->d_name);
    cases++;
    int f = check_case(name);
    if (f) failed++;
    CHECK_MSG(f == 0, "%s differs from ONNX Runtime", name);
  }
  closedir(d);
  fprintf(stderr, "  %zu operator cases, %zu differ\n", cases, failed);
  CHECK(cases >= 50);
}

int main(void) {
  xd_blas_init();
  RUN(operators_match_onnx_runtime);
  return TEST_REPORT();
}
