/* test_graph_engine.c — the graph engine around its operators (core/graph.h): the
 * planner's arena reuse and batch chunks, gradients at and overrides of intermediate
 * tensors, output semantics and introspection, import errors that name the node and the
 * operator, the routing of xd_onnx_import, folding at load, the demo models against torch
 * float64 references, allocation failures, and concurrent runs. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/graph.h"
#include "core/graph_int.h"
#include "core/mat.h"
#include "core/onnx.h"
#include "tests/graph_build.h"
#include "tests/graph_testlib.h"
#include "tests/test.h"

/* ---- planner, chunks, intermediate tensors ------------------------------------------------ */

/* A chain of 12 elementwise steps with a skip connection: h1 is read again at the end. */
static void chain(gb_t *b) {
  gb_input(b, "x", GB_FLOAT, 2, (int64_t[]){-1, 64});
  gb_init_f(b, "k", 0, NULL, (float[]){0.9f});
  gb_node(b, "Mul", "x,k", "h1");
  const char *prev = "h1";
  static const char *names[] = {"t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9", "t10"};
  for (int i = 0; i < 10; i++) {
    char ins[32];
    snprintf(ins, sizeof ins, "%s", prev);
    gb_node(b, i % 2 ? "Tanh" : "Sigmoid", ins, names[i]);
    prev = names[i];
  }
  gb_node(b, "Add", "t10,h1", "y");
  gb_output(b, "y");
}

TEST(arena_reuses_memory) {
  gb_t b;
  gb_init(&b, 13);
  chain(&b);
  xd_error_t err;
  xd_graph_t *g = load(&b, &err);
  inputs_t in;
  make_inputs(g, &in, 0, 10);
  xd_graph__plan_t p;
  CHECK(xd_graph__plan(g, in.t, 100, XD_DT_F32, NULL, 0, &p, &err) == XD_OK);
  size_t one = 100 * 64 * sizeof(float);
  /* 13 tensors of `one` bytes each; alive at once: x, h1, one step's input and output */
  CHECK_MSG(p.arena <= 4 * one + 4 * 64, "arena %zu bytes for tensors of %zu", p.arena, one);
  xd_graph__plan_free(&p);
  CHECK(xd_graph__plan(g, in.t, 100, XD_DT_F32, NULL, 1, &p, &err) == XD_OK);
  CHECK(p.arena >= 13 * one); /* everything kept (a gradient pass) */
  xd_graph__plan_free(&p);
  free_inputs(&in);
  xd_graph_free(g);
  gb_free(&b);
}

TEST(chunks_give_identical_outputs) {
  gb_t b;
  gb_init(&b, 13);
  c_conv_pool(&b);
  xd_error_t err;
  xd_graph_t *g = load(&b, &err);
  const size_t n = 37;
  xd_tensor_t x = {.dtype = XD_DT_F32, .rank = 4, .dims = {n, 2, 5, 5}};
  float *xv = malloc(n * 50 * sizeof *xv);
  for (size_t i = 0; i < n * 50; i++) xv[i] = (float)away(0);
  x.data = xv;
  size_t row = row_size(g, &(inputs_t){1, {x}}, "y");
  double *y1 = calloc(n * row, 8), *y2 = calloc(n * row, 8), *g1 = calloc(n * 50, 8), *g2 = calloc(n * 50, 8);
  double *seed = calloc(n * row, 8);
  for (size_t i = 0; i < n * row; i++) seed[i] = urand();
  xd_graph_run_t r = {.inputs = &x, .precision = XD_DT_F32, .out = y1};
  CHECK(xd_graph_run(g, &r, &err) == XD_OK);
  r.out = y2;
  r.max_work_memory = 6000; /* a few rows per chunk */
  CHECK(xd_graph_run(g, &r, &err) == XD_OK);
  CHECK(memcmp(y1, y2, n * row * 8) == 0);
  r.max_work_memory = 100; /* not even one row: refused before allocating */
  CHECK(xd_graph_run(g, &r, &err) == XD_ETOOBIG && strstr(err.text, "one row"));
  xd_graph_run_t gr = {.inputs = &x, .precision = XD_DT_F64, .wrt = "x", .grad = g1, .seed = seed};
  CHECK(xd_graph_run(g, &gr, &err) == XD_OK);
  gr.grad = g2;
  gr.max_work_memory = 20000;
  CHECK(xd_graph_run(g, &gr, &err) == XD_OK);
  CHECK(memcmp(g1, g2, n * 50 * 8) == 0);
  free(xv);
  free(y1);
  free(y2);
  free(g1);
  free(g2);
  free(seed);
  xd_graph_free(g);
  gb_free(&b);
}

/* The gradient at an intermediate tensor, checked by overriding that tensor with
 * perturbed values; fetch returns the tensor's own values. */
TEST(gradient_at_intermediate_and_override) {
  gb_t b;
  gb_init(&b, 13);
  c_conv_pool(&b);
  xd_error_t err;
  xd_graph_t *g = load(&b, &err);
  inputs_t in;
  make_inputs(g, &in, 0, 10);
  const char *mid = "bn";
  size_t rm = row_size(g, &in, mid), ro = row_size(g, &in, "y"), nm = N_BATCH * rm, no = N_BATCH * ro;
  double *A = calloc(nm, 8), *dA = calloc(nm, 8), *seed = calloc(no, 8), *y = calloc(no, 8), *h = calloc(nm, 8);
  for (size_t i = 0; i < no; i++) seed[i] = urand() - 0.5;
  xd_graph_run_t r = {.inputs = in.t, .precision = XD_DT_F64, .fetch = mid, .fetch_out = A, .wrt = mid, .grad = dA,
                      .seed = seed, .out = y};
  CHECK(xd_graph_run(g, &r, &err) == XD_OK);
  double f0 = 0;
  for (size_t i = 0; i < no; i++) f0 += seed[i] * y[i];
  /* override with A itself: same output */
  xd_graph_run_t o = {.inputs = in.t, .precision = XD_DT_F64, .out = y, .override = mid, .override_values = h};
  memcpy(h, A, nm * 8);
  CHECK(xd_graph_run(g, &o, &err) == XD_OK);
  double f1 = 0;
  for (size_t i = 0; i < no; i++) f1 += seed[i] * y[i];
  CHECK_NEAR(f1, f0, 1e-12);
  for (size_t e = 0; e < nm; e += 7) {
    double hh = 1e-6, fp = 0, fm = 0;
    h[e] = A[e] + hh;
    CHECK(xd_graph_run(g, &o, &err) == XD_OK);
    for (size_t i = 0; i < no; i++) fp += seed[i] * y[i];
    h[e] = A[e] - hh;
    CHECK(xd_graph_run(g, &o, &err) == XD_OK);
    for (size_t i = 0; i < no; i++) fm += seed[i] * y[i];
    h[e] = A[e];
    CHECK_NEAR(dA[e], (fp - fm) / (2 * hh), 1e-6 * (1 + fabs(dA[e])));
  }
  /* an override of zeros changes the output */
  memset(h, 0, nm * 8);
  CHECK(xd_graph_run(g, &o, &err) == XD_OK);
  double f2 = 0;
  for (size_t i = 0; i < no; i++) f2 += seed[i] * y[i];
  CHECK(fabs(f2 - f0) > 1e-6);
  /* unknown names and non-batch tensors */
  xd_graph_run_t bad = {.inputs = in.t, .precision = XD_DT_F64, .out = y, .fetch = "nope", .fetch_out = A};
  CHECK(xd_graph_run(g, &bad, &err) == XD_ENOTFOUND && strcmp(err.field, "fetch") == 0);
  bad.fetch = "w";
  CHECK(xd_graph_run(g, &bad, &err) == XD_EUNSUPPORTED);
  free(A);
  free(dA);
  free(seed);
  free(y);
  free(h);
  free_inputs(&in);
  xd_graph_free(g);
  gb_free(&b);
}

static int seed_from_logits(void *ctx, size_t row0, size_t n, const double *z, double *seed) {
  (void)row0;
  size_t k = *(size_t *)ctx;
  for (size_t i = 0; i < n * k; i++) seed[i] = z[i] > 0 ? 1 : -1;
  return XD_OK;
}

TEST(final_softmax_and_introspection) {
  gb_t b;
  gb_init(&b, 13);
  gb_input(&b, "ids", GB_INT64, 2, (int64_t[]){-1, -1});
  float E[10 * 4];
  for (int i = 0; i < 40; i++) E[i] = (float)sin(i);
  gb_init_f(&b, "emb", 2, (int64_t[]){10, 4}, E);
  gb_node(&b, "Gather", "emb,ids", "e");
  gb_init_i(&b, "ax", 1, (int64_t[]){1}, (int64_t[]){1});
  gb_node(&b, "ReduceMean", "e,ax", "m"); /* opset 13 ReduceMean: axes attribute */
  b.nodes[1]->n_input = 1;
  gb_attr_ints(&b, b.nodes[1], "axes", 1, (int64_t[]){1});
  gb_attr_i(&b, b.nodes[1], "keepdims", 0);
  gb_node(&b, "Softmax", "m", "p");
  gb_output(&b, "p");
  xd_error_t err;
  xd_graph_t *g = load(&b, &err);
  CHECK(g != NULL);
  const char *logits = NULL;
  CHECK(xd_graph_final(g, &logits) == XD_GRAPH_FINAL_SOFTMAX && strcmp(logits, "m") == 0);
  size_t V = 0, d = 0;
  const float *M = NULL;
  CHECK(xd_graph_embedding(g, &M, &V, &d) && strcmp(xd_graph_embedding(g, NULL, NULL, NULL), "e") == 0);
  CHECK(V == 10 && d == 4 && M && M[5] == E[5]);
  const xd_graph_info_t *in = xd_graph_input(g, 0), *e = xd_graph_find(g, "e");
  CHECK(in->dims[0].symbol && strcmp(in->dims[0].symbol, "N") == 0 && in->dims[1].symbol && strcmp(in->dims[1].symbol, "S") == 0);
  CHECK(e && e->rank == 3 && e->dims[1].symbol && strcmp(e->dims[1].symbol, "S") == 0 && e->dims[2].size == 4);
  CHECK(xd_graph_n_nodes(g) == 3 && strcmp(xd_graph_node(g, 0)->op, "Gather") == 0);
  CHECK(xd_graph_last_conv(g) == NULL);
  /* a gradient at the embedding output seeded from the logits */
  int64_t ids[2 * 5] = {1, 2, 3, 4, 5, 9, 8, 7, 6, 0};
  xd_tensor_t x = {.dtype = XD_DT_I64, .rank = 2, .dims = {2, 5}, .data = ids};
  double z[8], G[2 * 5 * 4];
  size_t k = 4;
  xd_graph_run_t r = {.inputs = &x, .precision = XD_DT_F64, .output = logits, .out = z, .wrt = "e", .grad = G,
                      .seed_fn = seed_from_logits, .seed_ctx = &k};
  CHECK(xd_graph_run(g, &r, &err) == XD_OK);
  for (size_t i = 0; i < 2; i++)
    for (size_t t = 0; t < 5; t++)
      for (size_t j = 0; j < 4; j++) CHECK_NEAR(G[(i * 5 + t) * 4 + j], (z[i * 4 + j] > 0 ? 1 : -1) / 5.0, 1e-15);
  /* a token id outside the vocabulary is an error naming the node, not a crash */
  ids[3] = 10;
  CHECK(xd_graph_run(g, &r, &err) == XD_EINVAL && strstr(err.text, "Gather"));
  /* a gradient through an operator that has none */
  ids[3] = 4;
  r.wrt = "ids";
  CHECK(xd_graph_run(g, &r, &err) != XD_OK);
  xd_graph_free(g);
  gb_free(&b);
}

/* ---- import errors name the node and the operator ------------------------------------------- */

static int load_rc(gb_t *b, xd_error_t *err) {
  size_t len;
  uint8_t *bytes = gb_pack(b, &len);
  xd_graph_t *g = NULL;
  int rc = xd_graph_from_onnx(bytes, len, &g, err);
  free(bytes);
  xd_graph_free(g);
  return rc;
}

TEST(import_errors_are_named) {
  gb_t b;
  xd_error_t err;
  /* a cycle: t1 = Relu(t2), t2 = Tanh(t1) */
  gb_init(&b, 13);
  gb_input(&b, "x", GB_FLOAT, 2, (int64_t[]){-1, 3});
  gb_node(&b, "Add", "x,t2", "t1");
  gb_node(&b, "Tanh", "t1", "t2");
  gb_output(&b, "t2");
  CHECK(load_rc(&b, &err) == XD_EFORMAT && strstr(err.text, "cycle") && strstr(err.text, "nodes[") &&
        strcmp(err.field, "onnx") == 0);
  gb_free(&b);
  /* a dangling name */
  gb_init(&b, 13);
  gb_input(&b, "x", GB_FLOAT, 2, (int64_t[]){-1, 3});
  gb_node(&b, "Relu", "x", "t");
  gb_node(&b, "Add", "t,ghost", "y");
  gb_output(&b, "y");
  CHECK(load_rc(&b, &err) == XD_EFORMAT && strstr(err.text, "nodes[1] (Add 'Add')") && strstr(err.text, "ghost"));
  gb_free(&b);
  /* an unsupported operator */
  gb_init(&b, 13);
  gb_input(&b, "x", GB_FLOAT, 2, (int64_t[]){-1, 3});
  gb_node(&b, "Relu", "x", "t");
  gb_node(&b, "FancyOp", "t", "y");
  gb_output(&b, "y");
  CHECK(load_rc(&b, &err) == XD_EFORMAT && strstr(err.text, "nodes[1] (FancyOp") && strstr(err.text, "unsupported"));
  gb_free(&b);
  /* absurd dimensions: a constant shape of 10^12 elements, refused before allocating */
  gb_init(&b, 13);
  gb_input(&b, "x", GB_FLOAT, 2, (int64_t[]){-1, 3});
  gb_init_i(&b, "s", 1, (int64_t[]){2}, (int64_t[]){1000000, 1000000});
  gb_node(&b, "ConstantOfShape", "s", "big");
  gb_node(&b, "Add", "x,big", "y");
  gb_output(&b, "y");
  CHECK(load_rc(&b, &err) == XD_EFORMAT && strstr(err.text, "ConstantOfShape") && strstr(err.text, "elements"));
  gb_free(&b);
  /* an initializer that declares more values than the file holds */
  gb_init(&b, 13);
  gb_input(&b, "x", GB_FLOAT, 2, (int64_t[]){-1, 3});
  gb_init_f(&b, "w", 1, (int64_t[]){3}, (float[]){1, 2, 3});
  b.inits[0]->dims[0] = (int64_t)1 << 40;
  gb_node(&b, "Add", "x,w", "y");
  gb_output(&b, "y");
  CHECK(load_rc(&b, &err) == XD_EFORMAT && strstr(err.text, "'w'"));
  gb_free(&b);
  /* shapes that do not fit: found by the probe at load, naming the node */
  gb_init(&b, 13);
  gb_input(&b, "x", GB_FLOAT, 2, (int64_t[]){-1, 3});
  gb_init_f(&b, "w", 2, (int64_t[]){4, 2}, (float[]){1, 2, 3, 4, 5, 6, 7, 8});
  gb_node(&b, "MatMul", "x,w", "y");
  gb_output(&b, "y");
  CHECK(load_rc(&b, &err) == XD_EFORMAT && strstr(err.text, "nodes[0] (MatMul"));
  gb_free(&b);
  /* a tensor defined twice */
  gb_init(&b, 13);
  gb_input(&b, "x", GB_FLOAT, 2, (int64_t[]){-1, 3});
  gb_node(&b, "Relu", "x", "y");
  gb_node(&b, "Tanh", "x", "y");
  gb_output(&b, "y");
  CHECK(load_rc(&b, &err) == XD_EFORMAT && strstr(err.text, "twice"));
  gb_free(&b);
  /* not a protobuf */
  CHECK(xd_graph_from_onnx("\xff\xff\xff", 3, &(xd_graph_t *){NULL}, &err) == XD_EFORMAT);
}


/* ---- the demo models against torch (float64), frozen in tests/golden/graph ------------------ */

/* Seed of d p_t / d logits for one row: p_t (δ_tj − p_j), with 1 − p_t summed from the other
 * classes so that saturated rows keep their digits. */
static int softmax_seed(void *ctx, size_t row0, size_t n, const double *z, double *seed) {
  const size_t *tk = ctx; /* target, classes */
  size_t k = tk[1];
  for (size_t i = 0; i < n; i++) {
    const double *zi = z + i * k;
    double *si = seed + i * k, mx = -INFINITY, s = 0, p[16];
    for (size_t j = 0; j < k; j++) mx = zi[j] > mx ? zi[j] : mx;
    for (size_t j = 0; j < k; j++) s += (p[j] = exp(zi[j] - mx));
    double rest = 0;
    for (size_t j = 0; j < k; j++) {
      p[j] /= s;
      if (j != tk[0]) rest += p[j];
    }
    for (size_t j = 0; j < k; j++) si[j] = j == tk[0] ? p[j] * rest : -p[tk[0]] * p[j];
  }
  (void)row0;
  return XD_OK;
}

static xd_graph_t *load_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *b = malloc((size_t)n);
  size_t got = fread(b, 1, (size_t)n, f);
  fclose(f);
  xd_graph_t *g = NULL;
  xd_error_t err;
  if (got != (size_t)n || xd_graph_from_onnx(b, (size_t)n, &g, &err) != XD_OK) g = NULL;
  free(b);
  return g;
}

/* Every value of the nested JSON array a, flattened, within tol·(scale) of v. */
static size_t flat(json_t *a, double *out, size_t cap) {
  if (json_is_number(a)) {
    if (cap) out[0] = json_number_value(a);
    return 1;
  }
  size_t n = 0;
  for (size_t i = 0; i < json_array_size(a); i++) n += flat(json_array_get(a, i), out + n, cap > n ? cap - n : 0);
  return n;
}

static void compare(const char *what, const double *a, const double *b, size_t n, double rtol) {
  double mx = 0;
  for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(b[i]));
  for (size_t i = 0; i < n; i++)
    if (!(fabs(a[i] - b[i]) <= rtol * mx + 1e-300)) {
      CHECK_MSG(0, "%s[%zu]: engine %.12g, torch %.12g", what, i, a[i], b[i]);
      return;
    }
}

TEST(demo_models_match_torch) {
  static const char *models[] = {"reviews_bert", "reviews_gru", "shapes"};
  for (size_t m = 0; m < 3; m++) {
    char path[128];
    snprintf(path, sizeof path, "tests/golden/graph/%s.json", models[m]);
    json_error_t je;
    json_t *gold = json_load_file(path, 0, &je);
    snprintf(path, sizeof path, "models/%s/model.onnx", models[m]);
    xd_graph_t *g = load_file(path);
    CHECK_MSG(gold && g, "%s: golden file or model missing", models[m]);
    if (!gold || !g) {
      json_decref(gold);
      xd_graph_free(g);
      continue;
    }
    int image = m == 2;
    const char *logits, *wrt = image ? xd_graph_input(g, 0)->name
                                     : json_string_value(json_object_get(gold, "embedding_tensor"));
    CHECK(xd_graph_final(g, &logits) == XD_GRAPH_FINAL_SOFTMAX);
    json_t *insts = json_object_get(gold, "instances");
    for (size_t i = 0; i < json_array_size(insts); i++) {
      json_t *it = json_object_get(json_array_get(insts, i), image ? "pixels" : "ids");
      json_t *inst = json_array_get(insts, i);
      static double buf[8192], z[8], ref[8192], G[8192];
      static int64_t ids[256], mask[256];
      size_t n = flat(it, buf, 8192);
      xd_tensor_t in[2];
      if (image) {
        json_t *pre = json_object_get(gold, "input");
        double sc = json_number_value(json_object_get(pre, "scale"));
        for (size_t e = 0; e < n; e++) {
          size_t c = e / 1024;
          buf[e] = (buf[e] * sc - json_number_value(json_array_get(json_object_get(pre, "mean"), c))) /
                   json_number_value(json_array_get(json_object_get(pre, "std"), c));
        }
        in[0] = (xd_tensor_t){.dtype = XD_DT_F64, .rank = 4, .dims = {1, 3, 32, 32}, .data = buf};
      } else {
        for (size_t e = 0; e < n; e++) {
          ids[e] = (int64_t)buf[e];
          mask[e] = 1;
        }
        in[0] = (xd_tensor_t){.dtype = XD_DT_I64, .rank = 2, .dims = {1, (int64_t)n}, .data = ids};
        in[1] = (xd_tensor_t){.dtype = XD_DT_I64, .rank = 2, .dims = {1, (int64_t)n}, .data = mask};
      }
      size_t tk[2] = {(size_t)json_integer_value(json_object_get(inst, "target")),
                      json_array_size(json_object_get(gold, "classes"))};
      xd_graph_run_t r = {.inputs = in, .precision = XD_DT_F64, .output = logits, .out = z, .wrt = wrt, .grad = G,
                          .seed_fn = softmax_seed, .seed_ctx = tk};
      xd_error_t err;
      CHECK_MSG(xd_graph_run(g, &r, &err) == XD_OK, "%s: %s", models[m], err.text);
      size_t k = flat(json_object_get(inst, "logits"), ref, 8);
      compare("logits", z, ref, k, 1e-9);
      size_t ng = flat(json_object_get(inst, "gradient"), ref, 8192);
      char lbl[64];
      snprintf(lbl, sizeof lbl, "%s instance %zu gradient", models[m], i);
      compare(lbl, G, ref, ng, 1e-6); /* sums that cancel: double rounding, relative to the largest */
      if (image && json_object_get(inst, "gradcam")) { /* Grad-CAM's activation and its gradient */
        json_t *gc = json_object_get(inst, "gradcam");
        const char *layer = json_string_value(json_object_get(gc, "layer"));
        static double A[4096], dA[4096], rA[4096];
        xd_graph_run_t c = {.inputs = in, .precision = XD_DT_F64, .output = logits, .fetch = layer, .fetch_out = A,
                            .wrt = layer, .grad = dA, .seed_fn = softmax_seed, .seed_ctx = tk};
        CHECK(xd_graph_run(g, &c, &err) == XD_OK);
        size_t na = flat(json_object_get(gc, "activation"), rA, 4096);
        compare("gradcam activation", A, rA, na, 1e-7); /* stored with 9 digits */
        flat(json_object_get(gc, "gradient"), rA, 4096);
        compare("gradcam gradient", dA, rA, na, 1e-6);
        CHECK(strcmp(xd_graph_last_conv(g), layer) == 0);
      }
    }
    json_decref(gold);
    xd_graph_free(g);
  }
}


/* xd_onnx_import: dense chains stay dense, other graphs go to the engine, and the
 * dense converter's width error stands for a (batch, width) graph of another width. */
static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  uint8_t *b = malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  fclose(f);
  return b;
}

TEST(import_routes_dense_and_graph) {
  static const struct {
    const char *file;
    size_t n_inputs;
    int want; /* 0 dense, 1 graph, 2 error */
    const char *text;
  } cases[] = {
      {"tests/onnx/gelu_op17.onnx", 0, 0, NULL},
      {"tests/onnx/bad_residual.onnx", 0, 1, NULL},    /* a skip connection */
      {"tests/onnx/bad_conv.onnx", 0, 1, NULL},        /* a convolution */
      {"tests/onnx/bad_two_inputs.onnx", 0, 1, NULL},  /* two inputs */
      {"tests/onnx/bad_wrong_width.onnx", 4, 2, "columns"},
      {"tests/onnx/bad_elu.onnx", 0, 2, "(Elu"},
      {"tests/onnx/bad_softmax_axis0.onnx", 0, 2, "rows"},
      {"tests/onnx/bad_truncated.onnx", 0, 2, "ONNX"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    size_t len = 0;
    uint8_t *b = read_all(cases[c].file, &len);
    CHECK_MSG(b != NULL, "%s missing", cases[c].file);
    if (!b) continue;
    xd_layer_spec_t *L = NULL;
    size_t nl = 0;
    xd_graph_t *g = NULL;
    xd_error_t err;
    int rc = xd_onnx_import(b, len, cases[c].n_inputs, &L, &nl, &g, &err);
    int got = rc != XD_OK ? 2 : g ? 1 : 0;
    CHECK_MSG(got == cases[c].want, "%s: got %d (%s)", cases[c].file, got, rc ? err.text : "");
    if (cases[c].text) CHECK_MSG(rc != XD_OK && strstr(err.text, cases[c].text), "%s: %s", cases[c].file, err.text);
    CHECK(got != 0 || (L && nl > 0 && !g));
    xd_onnx_layers_free(L, nl);
    xd_graph_free(g);
    free(b);
  }
}


/* Shape computations on static shapes are constants after load: Shape(m) of a [3, 4]
 * tensor folds, and the Reshape it feeds reads a constant. */
TEST(static_shapes_fold_at_load) {
  gb_t b;
  gb_init(&b, 13);
  gb_input(&b, "x", GB_FLOAT, 3, X3);
  Onnx__NodeProto *n = gb_node(&b, "ReduceMean", "x", "m");
  gb_attr_ints(&b, n, "axes", 1, (int64_t[]){0});
  gb_attr_i(&b, n, "keepdims", 0);
  gb_node(&b, "Shape", "m", "s");
  gb_node(&b, "Reshape", "m,s", "y");
  gb_output(&b, "y");
  size_t len;
  uint8_t *bytes = gb_pack(&b, &len);
  xd_graph_t *g = NULL;
  xd_error_t err;
  CHECK(xd_graph__load(bytes, len, 0, &g, &err) == XD_OK);
  int shapes = 0;
  for (size_t j = 0; g && j < g->nn; j++) shapes += strcmp(g->nodes[j].op->name, "Shape") == 0;
  CHECK(g && shapes == 0 && g->nn == 2);
  const xd_graph_info_t *s = g ? xd_graph_find(g, "s") : NULL;
  CHECK(s && strcmp(s->op, "initializer") == 0);
  free(bytes);
  xd_graph_free(g);
  gb_free(&b);
}


/* Every allocation of load and run may fail: the answer is a clean error (ENOMEM, or the
 * error the failure led to), never a crash, and nothing leaks (run under ASan/valgrind). */
TEST(allocation_failures_are_clean) {
  gb_t b;
  gb_init(&b, 13);
  c_conv_pool(&b);
  size_t len;
  uint8_t *bytes = gb_pack(&b, &len);
  int loaded_once = 0, ran_once = 0;
  for (long n = 1; n < 400 && !(loaded_once && ran_once); n++) {
    xd_graph_t *g = NULL;
    xd_error_t err;
    xd_alloc_fail_after(n);
    int rc = xd_graph_from_onnx(bytes, len, &g, &err);
    xd_alloc_fail_after(0);
    CHECK_MSG(rc == XD_OK || rc == XD_ENOMEM, "load with allocation %ld failing: %d %s", n, rc, err.text);
    if (rc != XD_OK) continue;
    loaded_once = 1;
    inputs_t in;
    make_inputs(g, &in, 0, 10);
    double y[2 * 64], G[2 * 50], seed[2 * 64];
    for (size_t i = 0; i < 2 * 64; i++) seed[i] = 1;
    for (long m = 1; m < 200; m++) {
      xd_graph_run_t r = {.inputs = in.t, .precision = XD_DT_F64, .out = y, .wrt = "x", .grad = G, .seed = seed};
      long before = xd_alloc_failures();
      xd_alloc_fail_after(m);
      rc = xd_graph_run(g, &r, &err);
      xd_alloc_fail_after(0);
      CHECK_MSG(rc == XD_OK || rc == XD_ENOMEM, "run with allocation %ld failing: %d %s", m, rc, err.text);
      CHECK_MSG(rc == XD_OK || xd_alloc_failures() > before, "run failed without an injected failure: %s", err.text);
      if (xd_alloc_failures() == before) { /* no allocation left to fail */
        ran_once = 1;
        break;
      }
    }
    free_inputs(&in);
    xd_graph_free(g);
  }
  CHECK(loaded_once && ran_once);
  free(bytes);
  gb_free(&b);
}


/* One graph, run by several threads at once (each with its own arena), gives every
 * thread the answer a lone run gives. */
typedef struct conc {
  xd_graph_t *g;
  inputs_t *in;
  const double *want;
  size_t n;
  int bad;
} conc_t;

static void *conc_worker(void *arg) {
  conc_t *c = arg;
  double *y = calloc(c->n, 8), *G = calloc(2 * 50, 8), seed[2 * 64];
  for (size_t i = 0; i < 2 * 64; i++) seed[i] = 0.5;
  for (int rep = 0; rep < 20; rep++) {
    xd_graph_run_t r = {.inputs = c->in->t, .precision = XD_DT_F64, .out = y, .wrt = "x", .grad = G, .seed = seed};
    xd_error_t err;
    if (xd_graph_run(c->g, &r, &err) != XD_OK || memcmp(y, c->want, c->n * 8) != 0) c->bad++;
  }
  free(y);
  free(G);
  return NULL;
}

TEST(concurrent_runs_agree) {
  gb_t b;
  gb_init(&b, 13);
  c_conv_pool(&b);
  xd_error_t err;
  xd_graph_t *g = load(&b, &err);
  inputs_t in;
  make_inputs(g, &in, 0, 10);
  size_t n;
  double *want = forward_d(g, &in, &n);
  conc_t c[4];
  pthread_t th[4];
  for (int t = 0; t < 4; t++) {
    c[t] = (conc_t){.g = g, .in = &in, .want = want, .n = n};
    pthread_create(&th[t], NULL, conc_worker, &c[t]);
  }
  for (int t = 0; t < 4; t++) {
    pthread_join(th[t], NULL);
    CHECK(c[t].bad == 0);
  }
  free(want);
  free_inputs(&in);
  xd_graph_free(g);
  gb_free(&b);
}

int main(void) {
  xd_blas_init();
  RUN(arena_reuses_memory);
  RUN(chunks_give_identical_outputs);
  RUN(gradient_at_intermediate_and_override);
  RUN(final_softmax_and_introspection);
  RUN(import_errors_are_named);
  RUN(demo_models_match_torch);
  RUN(import_routes_dense_and_graph);
  RUN(static_shapes_fold_at_load);
  RUN(allocation_failures_are_clean);
  RUN(concurrent_runs_agree);
  return TEST_REPORT();
}
