/* test_graph_fuse.c — the load-time rewrite of decomposed LayerNorm and GELU chains
 * (core/graph_fuse.c): the demo transformer loaded with and without it gives the same
 * probabilities and embedding gradients; its chains become 5 LayerNormalization and 2
 * Gelu nodes; the chains' intermediate tensors are no longer names a run accepts; and
 * small graphs that nearly match (an intermediate read elsewhere or a graph output, a
 * reduction over another axis, Pow 3, a wrong constant) are left as written and still
 * give the same answers. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "core/graph_int.h"
#include "tests/graph_testlib.h"
#include "tests/test.h"

static xd_graph_t *load_bytes(const void *bytes, size_t len, int flags) {
  xd_graph_t *g = NULL;
  xd_error_t err;
  xd_error_clear(&err);
  if (xd_graph__load(bytes, len, flags, &g, &err) != XD_OK) fprintf(stderr, "  load: %s: %s\n", err.field, err.text);
  return g;
}

static xd_graph_t *load_path(const char *path, int flags) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  void *b = malloc((size_t)n + 1);
  xd_graph_t *g = NULL;
  if (b && fread(b, 1, (size_t)n, f) == (size_t)n) g = load_bytes(b, (size_t)n, flags);
  free(b);
  fclose(f);
  return g;
}

static size_t count_op(const xd_graph_t *g, const char *op) {
  size_t n = 0;
  for (size_t j = 0; j < g->nn; j++) n += strcmp(g->nodes[j].op->name, op) == 0;
  return n;
}

/* ---- the demo transformer ----------------------------------------------------------------- */

#define BERT "models/reviews_bert/model.onnx"
#define FUSED XD_GRAPH__CHECK_ROWS
#define ASIS (XD_GRAPH__CHECK_ROWS | XD_GRAPH__NO_FUSE)

TEST(bert_chains_become_layernorm_and_gelu) {
  xd_graph_t *a = load_path(BERT, ASIS), *f = load_path(BERT, FUSED);
  CHECK(a && f);
  if (!a || !f) goto done;
  CHECK(count_op(a, "LayerNormalization") == 0 && count_op(a, "Gelu") == 0);
  CHECK(count_op(f, "LayerNormalization") == 5);
  CHECK(count_op(f, "Gelu") == 2);
  CHECK(count_op(f, "Erf") == 0 && count_op(f, "Pow") == 0 && count_op(f, "Sqrt") == 0);
  /* 8 nodes fewer per LayerNorm, 4 per GELU */
  CHECK_MSG(f->nn + 5 * 8 + 2 * 4 == a->nn, "%zu nodes fused, %zu as written", f->nn, a->nn);
  CHECK(f->nt + 5 * 8 + 2 * 4 == a->nt);
  /* the chains' last tensors keep their names; the intermediates are gone */
  const xd_graph_info_t *ln = xd_graph_find(f, "/ln/Add_1_output_0");
  CHECK(ln && strcmp(ln->op, "LayerNormalization") == 0 && ln->rank == 3);
  const xd_graph_info_t *ge = xd_graph_find(f, "/layers.0/Mul_1_output_0");
  CHECK(ge && strcmp(ge->op, "Gelu") == 0);
  CHECK(xd_graph_find(a, "/ln/Sub_output_0") != NULL);
  CHECK(xd_graph_find(f, "/ln/Sub_output_0") == NULL);
  CHECK(xd_graph_find(f, "/layers.0/Erf_output_0") == NULL);
  for (size_t i = 0; i < xd_graph_n_nodes(f); i++) { /* every listed layer resolves, none is an intermediate */
    const xd_graph_info_t *l = xd_graph_node(f, i);
    CHECK(xd_graph_find(f, l->name) == l);
    CHECK(strstr(l->name, "/ln/Sub") == NULL && strstr(l->name, "Erf") == NULL);
  }
  CHECK(xd_graph_n_nodes(f) + 5 * 8 + 2 * 4 == xd_graph_n_nodes(a));
  const char *la, *lf;
  CHECK(xd_graph_final(a, &la) == xd_graph_final(f, &lf) && strcmp(la, lf) == 0);
  CHECK(strcmp(xd_graph_embedding(a, NULL, NULL, NULL), xd_graph_embedding(f, NULL, NULL, NULL)) == 0);
  /* a run naming a dropped intermediate: unknown */
  int64_t ids[4] = {5, 6, 7, 8}, mask[4] = {1, 1, 1, 1};
  xd_tensor_t in[2] = {{XD_DT_I64, 2, {1, 4}, ids}, {XD_DT_I64, 2, {1, 4}, mask}};
  double out[2], grad[4 * 64];
  xd_graph_run_t r = {.inputs = in, .precision = XD_DT_F32, .out = out, .wrt = "/ln/Sub_output_0",
                      .grad = grad, .seed = (double[]){0, 1}};
  xd_error_t err;
  CHECK(xd_graph_run(f, &r, &err) == XD_ENOTFOUND);
done:
  xd_graph_free(a);
  xd_graph_free(f);
}

typedef struct seed_ctx {
  const int *target;
} seed_ctx_t;

static int seed_target(void *ctx, size_t row0, size_t n, const double *outv, double *seed) {
  (void)outv;
  const seed_ctx_t *s = ctx;
  memset(seed, 0, n * 2 * sizeof(double));
  for (size_t i = 0; i < n; i++) seed[i * 2 + (size_t)s->target[row0 + i]] = 1;
  return XD_OK;
}

/* The golden texts (right-padded, masked) through both graphs: probabilities and the
 * gradient of p[target] at the embedding output, in float and in double. */
TEST(bert_fused_answers_equal_unfused) {
  json_t *gold = json_load_file("tests/golden/graph/reviews_bert.json", 0, NULL);
  xd_graph_t *a = load_path(BERT, ASIS), *f = load_path(BERT, FUSED);
  CHECK(gold && a && f);
  if (!gold || !a || !f) goto done;
  json_t *inst = json_object_get(gold, "instances");
  size_t n = json_array_size(inst), T = 0, d = 0;
  const char *emb = xd_graph_embedding(f, NULL, NULL, &d);
  CHECK(n >= 4 && n <= 16 && emb);
  if (n < 4 || n > 16 || !emb) goto done;
  for (size_t i = 0; i < n; i++) {
    size_t t = json_array_size(json_object_get(json_array_get(inst, i), "ids"));
    T = t > T ? t : T;
  }
  int64_t *ids = calloc(n * T, 8), *mask = calloc(n * T, 8);
  double *p[2], *gr[2];
  int target[16];
  for (int v = 0; v < 2; v++) p[v] = calloc(n * 2, 8), gr[v] = calloc(n * T * d, 8);
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(inst, i), *v;
    size_t j;
    json_array_foreach(json_object_get(e, "ids"), j, v) ids[i * T + j] = json_integer_value(v), mask[i * T + j] = 1;
    target[i] = (int)(i % 2);
  }
  xd_tensor_t in[2] = {{XD_DT_I64, 2, {(int64_t)n, (int64_t)T}, ids}, {XD_DT_I64, 2, {(int64_t)n, (int64_t)T}, mask}};
  seed_ctx_t sc = {target};
  for (int prec = 0; prec < 2; prec++) {
    for (int v = 0; v < 2; v++) {
      xd_graph_run_t r = {.inputs = in, .precision = prec ? XD_DT_F64 : XD_DT_F32, .out = p[v], .wrt = emb,
                          .grad = gr[v], .seed_fn = seed_target, .seed_ctx = &sc};
      xd_error_t err;
      int rc = xd_graph_run(v ? f : a, &r, &err);
      CHECK_MSG(rc == XD_OK, "%s: %s", err.field, err.text);
    }
    /* double: the chain divides by sqrt 2 rounded to float, Gelu by sqrt 2 itself */
    double tol_p = prec ? 1e-10 : 1e-5, dmax = 0, gmax = 0, gabs = 0;
    for (size_t i = 0; i < n * 2; i++) dmax = fmax(dmax, fabs(p[0][i] - p[1][i]));
    CHECK_MSG(dmax <= tol_p, "precision %d: probabilities differ by %g", prec, dmax);
    for (size_t i = 0; i < n * T * d; i++) {
      gmax = fmax(gmax, fabs(gr[0][i] - gr[1][i]));
      gabs = fmax(gabs, fabs(gr[0][i]));
    }
    CHECK(gabs > 0);
    CHECK_MSG(gmax <= (prec ? 1e-6 : 1e-4) * gabs, "precision %d: gradients differ by %g (largest %g)", prec, gmax,
              gabs);
  }
  free(ids), free(mask);
  for (int v = 0; v < 2; v++) free(p[v]), free(gr[v]);
done:
  xd_graph_free(a);
  xd_graph_free(f);
  json_decref(gold);
}

/* ---- small graphs: the exact chains, and near misses ---------------------------------------- */

enum { LN_EXACT, LN_SHARED_MEAN, LN_OTHER_AXIS, LN_POW3, LN_OUTPUT_INTERMEDIATE, LN_SWAPPED_OPERANDS, LN_OPSET18 };

/* x (N, 3, W) -> LayerNorm chain -> y; variant v changes one thing. */
static void ln_chain_w(gb_t *b, int v, int64_t W) {
  gb_init(b, v == LN_OPSET18 ? 18 : 13);
  gb_input(b, "x", GB_FLOAT, 3, (int64_t[]){-1, 3, W});
  float gamma[512], beta[512];
  for (int64_t j = 0; j < W && j < 512; j++) gamma[j] = (float)(1.5 * cos(0.9 * (double)j)), beta[j] = (float)(0.3 * sin((double)j));
  gb_init_f(b, "gamma", 1, (int64_t[]){W}, gamma);
  gb_init_f(b, "beta", 1, (int64_t[]){W}, beta);
  gb_init_f(b, "two", 0, NULL, (float[]){v == LN_POW3 ? 3.0f : 2.0f});
  gb_init_f(b, "eps", 0, NULL, (float[]){1e-5f});
  Onnx__NodeProto *r1, *r2;
  if (v == LN_OPSET18) {
    gb_init_i(b, "axes", 1, (int64_t[]){1}, (int64_t[]){-1});
    r1 = gb_node(b, "ReduceMean", "x,axes", "m");
    r2 = gb_node(b, "ReduceMean", "p,axes", "var");
  } else {
    r1 = gb_node(b, "ReduceMean", "x", "m");
    r2 = gb_node(b, "ReduceMean", "p", "var");
    gb_attr_ints(b, r1, "axes", 1, (int64_t[]){v == LN_OTHER_AXIS ? 1 : -1});
    gb_attr_ints(b, r2, "axes", 1, (int64_t[]){2});
  }
  gb_node(b, "Sub", "x,m", "d");
  gb_node(b, "Pow", "d,two", "p");
  gb_node(b, "Add", v == LN_SWAPPED_OPERANDS ? "eps,var" : "var,eps", "ve");
  gb_node(b, "Sqrt", "ve", "s");
  gb_node(b, "Div", "d,s", "n");
  gb_node(b, "Mul", v == LN_SWAPPED_OPERANDS ? "gamma,n" : "n,gamma", "k");
  gb_node(b, "Add", v == LN_SWAPPED_OPERANDS ? "beta,k" : "k,beta", v == LN_SHARED_MEAN ? "y0" : "y");
  if (v == LN_SHARED_MEAN) gb_node(b, "Add", "y0,m", "y"); /* the mean read outside the chain */
  gb_output(b, "y");
  if (v == LN_OUTPUT_INTERMEDIATE) gb_output(b, "n");
}

static void ln_chain(gb_t *b, int v) { ln_chain_w(b, v, 4); }

enum { GE_EXACT, GE_SWAPPED, GE_WRONG_ROOT, GE_HALF_WRONG, GE_ERF_SHARED };

/* x (N, 3, W) -> GELU chain -> y. */
static void gelu_chain_w(gb_t *b, int v, int64_t W) {
  gb_init(b, 13);
  gb_input(b, "x", GB_FLOAT, 3, (int64_t[]){-1, 3, W});
  gb_init_f(b, "rt2", 0, NULL, (float[]){v == GE_WRONG_ROOT ? 1.5f : 1.4142135381698608f});
  gb_init_f(b, "one", 0, NULL, (float[]){1});
  gb_init_f(b, "half", 0, NULL, (float[]){v == GE_HALF_WRONG ? 0.25f : 0.5f});
  gb_node(b, "Div", "x,rt2", "q");
  gb_node(b, "Erf", "q", "e");
  gb_node(b, "Add", v == GE_SWAPPED ? "one,e" : "e,one", "a");
  gb_node(b, "Mul", v == GE_SWAPPED ? "a,x" : "x,a", "k");
  gb_node(b, "Mul", v == GE_SWAPPED ? "half,k" : "k,half", v == GE_ERF_SHARED ? "y0" : "y");
  if (v == GE_ERF_SHARED) gb_node(b, "Add", "y0,e", "y");
  gb_output(b, "y");
}

static void gelu_chain(gb_t *b, int v) { gelu_chain_w(b, v, 4); }

/* Loads b's graph as written and fused; checks the fused count and equal outputs (every
 * output) and gradients at x, in double and in float. */
static void same_answers(gb_t *b, const char *what, const char *op, size_t want_fused) {
  size_t len;
  uint8_t *bytes = gb_pack(b, &len);
  xd_graph_t *a = load_bytes(bytes, len, ASIS), *f = load_bytes(bytes, len, FUSED);
  free(bytes);
  CHECK_MSG(a && f, "%s", what);
  if (!a || !f) goto done;
  CHECK_MSG(count_op(f, op) == want_fused, "%s: %zu %s nodes", what, count_op(f, op), op);
  CHECK_MSG(want_fused ? f->nn < a->nn : f->nn == a->nn, "%s: %zu nodes, %zu as written", what, f->nn, a->nn);
  inputs_t in;
  rng_state = 777;
  make_inputs(a, &in, 0, 0);
  size_t nx = xd_tensor_numel(&in.t[0]);
  for (size_t o = 0; o < xd_graph_n_outputs(a); o++) {
    const char *name = xd_graph_output(a, o)->name;
    size_t row = row_size(a, &in, name);
    CHECK(row > 0 && row == row_size(f, &in, name));
    double *ya = calloc(N_BATCH * row, 8), *yf = calloc(N_BATCH * row, 8);
    double *ga = calloc(nx, 8), *gf = calloc(nx, 8), *seed = calloc(N_BATCH * row, 8);
    for (size_t i = 0; i < N_BATCH * row; i++) seed[i] = sin(1.0 + (double)i);
    for (int prec = 0; prec < 2; prec++) {
      for (int v = 0; v < 2; v++) {
        xd_graph_run_t r = {.inputs = in.t, .precision = prec ? XD_DT_F64 : XD_DT_F32, .output = name,
                            .out = v ? yf : ya, .wrt = "x", .grad = v ? gf : ga, .seed = seed};
        xd_error_t err;
        CHECK_MSG(xd_graph_run(v ? f : a, &r, &err) == XD_OK, "%s: %s", what, err.text);
      }
      double dy = 0, dg = 0;
      for (size_t i = 0; i < N_BATCH * row; i++) dy = fmax(dy, fabs(ya[i] - yf[i]));
      for (size_t i = 0; i < nx; i++) dg = fmax(dg, fabs(ga[i] - gf[i]));
      /* left as written: the same graph, the same numbers; fused: within the float
       * rounding of the chain's constants (sqrt 2) in double, of float in float */
      double tol = !want_fused ? 0 : prec ? 1e-7 : 2e-5;
      CHECK_MSG(dy <= tol && dg <= tol, "%s output %s, %s: values differ by %g, gradients by %g", what, name,
                prec ? "double" : "float", dy, dg);
    }
    free(ya), free(yf), free(ga), free(gf), free(seed);
  }
  free_inputs(&in);
done:
  xd_graph_free(a);
  xd_graph_free(f);
}

TEST(layernorm_exact_chains_fuse) {
  static const struct {
    int v;
    const char *what;
  } cases[] = {{LN_EXACT, "exact"}, {LN_SWAPPED_OPERANDS, "swapped operands"}, {LN_OPSET18, "axes as an input"}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    gb_t b;
    ln_chain(&b, cases[c].v);
    same_answers(&b, cases[c].what, "LayerNormalization", 1);
    gb_free(&b);
  }
}

TEST(layernorm_near_misses_stay) {
  static const struct {
    int v;
    const char *what;
  } cases[] = {{LN_SHARED_MEAN, "mean read elsewhere"},
               {LN_OTHER_AXIS, "reduction over axis 1"},
               {LN_POW3, "Pow 3"},
               {LN_OUTPUT_INTERMEDIATE, "intermediate is a graph output"}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    gb_t b;
    ln_chain(&b, cases[c].v);
    same_answers(&b, cases[c].what, "LayerNormalization", 0);
    gb_free(&b);
  }
}

TEST(gelu_chains) {
  static const struct {
    int v;
    const char *what;
    size_t fused;
  } cases[] = {{GE_EXACT, "gelu exact", 1},
               {GE_SWAPPED, "gelu swapped operands", 1},
               {GE_WRONG_ROOT, "gelu divided by 1.5", 0},
               {GE_HALF_WRONG, "gelu times 0.25", 0},
               {GE_ERF_SHARED, "gelu erf read elsewhere", 0}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    gb_t b;
    gelu_chain(&b, cases[c].v);
    same_answers(&b, cases[c].what, "Gelu", cases[c].fused);
    gb_free(&b);
  }
}

/* Rows of other widths: the LayerNorm kernel's partial sums with a tail (not a multiple of
 * four), and Gelu's float blocks of 256 with a tail. */
TEST(other_widths) {
  static const int64_t widths[] = {1, 7, 37, 300};
  for (size_t k = 0; k < sizeof widths / sizeof *widths; k++) {
    char what[64];
    gb_t b;
    snprintf(what, sizeof what, "layernorm width %lld", (long long)widths[k]);
    ln_chain_w(&b, LN_EXACT, widths[k]);
    same_answers(&b, what, "LayerNormalization", 1);
    gb_free(&b);
    snprintf(what, sizeof what, "gelu width %lld", (long long)widths[k]);
    gelu_chain_w(&b, GE_EXACT, widths[k]);
    same_answers(&b, what, "Gelu", 1);
    gb_free(&b);
  }
}

int main(void) {
  RUN(bert_chains_become_layernorm_and_gelu);
  RUN(bert_fused_answers_equal_unfused);
  RUN(layernorm_exact_chains_fuse);
  RUN(layernorm_near_misses_stay);
  RUN(gelu_chains);
  RUN(other_widths);
  return TEST_REPORT();
}
