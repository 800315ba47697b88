/* test_graph.c — the graph engine's operators (the rows of core/gop_*.c) through small
 * graphs built as ONNX protobufs (tests/graph_build.h): every differentiable operator's
 * backward against central finite differences in double, float runs (forward and
 * backward) against double runs, and the light operators' forward against plain loops. The planner, runs and import are
 * tested in tests/test_graph_engine.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/graph.h"
#include "core/mat.h"
#include "tests/graph_build.h"
#include "tests/graph_testlib.h"
#include "tests/test.h"

static double objective(const xd_graph_t *g, const inputs_t *in, const double *seed, size_t nout, double *buf) {
  xd_graph_run_t r = {.inputs = in->t, .precision = XD_DT_F64, .out = buf};
  xd_error_t err;
  if (xd_graph_run(g, &r, &err) != XD_OK) return NAN;
  double s = 0;
  for (size_t i = 0; i < nout; i++) s += seed[i] * buf[i];
  return s;
}

/* The gradient of Σ seed·output with respect to every float input, against central
 * differences (relative tolerance tol). */
static void fd_check(const char *what, xd_graph_t *g, inputs_t *in, double tol) {
  const char *out_name = xd_graph_output(g, 0)->name;
  size_t nout = N_BATCH * row_size(g, in, out_name);
  CHECK_MSG(nout > 0, "%s: output shape", what);
  if (!nout) return;
  double *seed = calloc(nout, 8), *buf = calloc(nout, 8);
  for (size_t i = 0; i < nout; i++) seed[i] = urand() - 0.5;
  for (size_t k = 0; k < in->n; k++) {
    xd_tensor_t *t = &in->t[k];
    if (t->dtype != XD_DT_F64) continue;
    size_t n = xd_tensor_numel(t);
    double *G = calloc(n, 8), *x = t->data;
    xd_graph_run_t r = {.inputs = in->t, .precision = XD_DT_F64, .wrt = xd_graph_input(g, k)->name, .grad = G,
                        .seed = seed};
    xd_error_t err;
    int rc = xd_graph_run(g, &r, &err);
    CHECK_MSG(rc == XD_OK, "%s: gradient run: %s", what, err.text);
    double worst = 0;
    for (size_t i = 0; i < n && rc == XD_OK; i++) {
      double h = 1e-6 * (fabs(x[i]) > 1 ? fabs(x[i]) : 1), x0 = x[i];
      x[i] = x0 + h;
      double fp = objective(g, in, seed, nout, buf);
      x[i] = x0 - h;
      double fm = objective(g, in, seed, nout, buf);
      x[i] = x0;
      double fd = (fp - fm) / (2 * h), e = fabs(fd - G[i]) / (fabs(fd) + fabs(G[i]) + 1e-6);
      if (e > worst) worst = e;
      CHECK_MSG(e < tol, "%s: input %zu element %zu: analytic %.10g, finite difference %.10g", what, k, i, G[i], fd);
      if (e >= tol) break;
    }
    free(G);
  }
  free(seed);
  free(buf);
}

/* ---- the gradient cases: one small graph per operator ---------------------------------- */

typedef struct gcase {
  const char *name;
  void (*build)(gb_t *b);
  int pos;  /* positive inputs (Log, Sqrt, Pow's base) */
  long opset;
} gcase_t;

static void unary(gb_t *b, const char *op) {
  gb_input(b, "x", GB_FLOAT, 3, X3);
  gb_node(b, op, "x", "y");
  gb_output(b, "y");
}
#define UNARY_CASE(fn, op) \
  static void fn(gb_t *b) { unary(b, op); }
UNARY_CASE(c_relu, "Relu")
UNARY_CASE(c_sigmoid, "Sigmoid")
UNARY_CASE(c_tanh, "Tanh")
UNARY_CASE(c_erf, "Erf")
UNARY_CASE(c_sqrt, "Sqrt")
UNARY_CASE(c_neg, "Neg")
UNARY_CASE(c_exp, "Exp")
UNARY_CASE(c_log, "Log")
UNARY_CASE(c_abs, "Abs")
UNARY_CASE(c_recip, "Reciprocal")
UNARY_CASE(c_ident, "Identity")
UNARY_CASE(c_softplus, "Softplus")
UNARY_CASE(c_gelu, "Gelu")
UNARY_CASE(c_dropout, "Dropout")
static void c_leaky(gb_t *b) {
  unary(b, "LeakyRelu");
  gb_attr_f(b, b->nodes[0], "alpha", 0.2f);
}
static void c_gelu_tanh(gb_t *b) {
  unary(b, "Gelu");
  gb_attr_s(b, b->nodes[0], "approximate", "tanh");
}
static void c_clip(gb_t *b) {
  gb_input(b, "x", GB_FLOAT, 3, X3);
  gb_init_f(b, "lo", 0, NULL, (float[]){-1.0f});
  gb_init_f(b, "hi", 0, NULL, (float[]){0.9f});
  gb_node(b, "Clip", "x,lo,hi", "y");
  gb_output(b, "y");
}
static void c_cast(gb_t *b) {
  unary(b, "Cast");
  gb_attr_i(b, b->nodes[0], "to", 1);
}

/* binary: a [N,3,4] with b [N,1,4] (both differentiated), then with a constant [4] */
static void binary(gb_t *b, const char *op) {
  gb_input(b, "a", GB_FLOAT, 3, X3);
  gb_input(b, "b", GB_FLOAT, 3, (int64_t[]){-1, 1, 4});
  gb_init_f(b, "k", 1, (int64_t[]){4}, (float[]){0.7f, 1.3f, -0.9f, 1.1f});
  gb_node(b, op, "a,b", "t");
  gb_node(b, op, "t,k", "y");
  gb_output(b, "y");
}
#define BINARY_CASE(fn, op) \
  static void fn(gb_t *b) { binary(b, op); }
BINARY_CASE(c_add, "Add")
BINARY_CASE(c_sub, "Sub")
BINARY_CASE(c_mul, "Mul")
BINARY_CASE(c_div, "Div")
BINARY_CASE(c_min, "Min")
BINARY_CASE(c_max, "Max")
static void c_pow(gb_t *b) {
  gb_input(b, "a", GB_FLOAT, 3, X3);
  gb_input(b, "b", GB_FLOAT, 3, (int64_t[]){-1, 1, 4});
  gb_init_f(b, "two", 0, NULL, (float[]){2.0f});
  gb_node(b, "Pow", "a,b", "t");
  gb_node(b, "Pow", "t,two", "y");
  gb_output(b, "y");
}
static void c_where(gb_t *b) {
  gb_input(b, "a", GB_FLOAT, 3, X3);
  gb_input(b, "b", GB_FLOAT, 3, (int64_t[]){-1, 1, 4});
  gb_init_f(b, "z", 0, NULL, (float[]){0.0f});
  gb_node(b, "Greater", "a,z", "c");
  gb_node(b, "Where", "c,a,b", "y");
  gb_output(b, "y");
}
static void reduce(gb_t *b, const char *op, int keep) {
  gb_input(b, "x", GB_FLOAT, 3, X3);
  Onnx__NodeProto *n = gb_node(b, op, "x", "y");
  gb_attr_ints(b, n, "axes", 1, (int64_t[]){1});
  gb_attr_i(b, n, "keepdims", keep);
  gb_output(b, "y");
}
static void c_rmean(gb_t *b) { reduce(b, "ReduceMean", 1); }
static void c_rmax(gb_t *b) { reduce(b, "ReduceMax", 0); }
static void c_rsum13(gb_t *b) { /* opset 13: axes as an input; last axis */
  gb_input(b, "x", GB_FLOAT, 3, X3);
  gb_init_i(b, "ax", 1, (int64_t[]){1}, (int64_t[]){-1});
  gb_node(b, "ReduceSum", "x,ax", "y");
  gb_output(b, "y");
}
static void c_transpose(gb_t *b) {
  gb_input(b, "x", GB_FLOAT, 3, X3);
  gb_attr_ints(b, gb_node(b, "Transpose", "x", "t"), "perm", 3, (int64_t[]){0, 2, 1});
  gb_init_f(b, "k", 1, (int64_t[]){3}, (float[]){1, 2, 3});
  gb_node(b, "Mul", "t,k", "y"); /* an asymmetric weight so that a wrong permutation shows */
  gb_output(b, "y");
}
static void c_reshape(gb_t *b) { /* the shape computed from Shape -> Gather -> Concat, folded per run */
  gb_input(b, "x", GB_FLOAT, 3, X3);
  gb_node(b, "Shape", "x", "s");
  gb_init_i(b, "i0", 0, NULL, (int64_t[]){0});
  gb_node(b, "Gather", "s,i0", "n");
  gb_init_i(b, "ax0", 1, (int64_t[]){1}, (int64_t[]){0});
  gb_node(b, "Unsqueeze", "n,ax0", "n1");
  gb_init_i(b, "rest", 1, (int64_t[]){2}, (int64_t[]){2, 6});
  gb_node(b, "Concat", "n1,rest", "shape");
  gb_attr_i(b, b->nodes[3], "axis", 0);
  gb_node(b, "Reshape", "x,shape", "r");
  gb_init_f(b, "k", 1, (int64_t[]){6}, (float[]){1, -2, 3, -4, 5, 6});
  gb_node(b, "Mul", "r,k", "y");
  gb_output(b, "y");
}
static void c_flatten_squeeze(gb_t *b) {
  gb_input(b, "x", GB_FLOAT, 3, X3);
  gb_init_i(b, "ax", 1, (int64_t[]){1}, (int64_t[]){1});
  gb_node(b, "Unsqueeze", "x,ax", "u");
  gb_node(b, "Squeeze", "u,ax", "s");
  gb_node(b, "Flatten", "s", "y");
  gb_output(b, "y");
}
static void c_concat_split(gb_t *b) {
  gb_input(b, "a", GB_FLOAT, 3, X3);
  gb_input(b, "b", GB_FLOAT, 3, (int64_t[]){-1, 2, 4});
  gb_attr_i(b, gb_node(b, "Concat", "a,b", "c"), "axis", 1);
  gb_init_i(b, "sp", 1, (int64_t[]){2}, (int64_t[]){1, 4});
  gb_attr_i(b, gb_node(b, "Split", "c,sp", "p,q"), "axis", 1);
  gb_node(b, "Sigmoid", "p", "ps");
  gb_attr_i(b, gb_node(b, "Concat", "q,ps", "y"), "axis", 1);
  gb_output(b, "y");
}
static void c_slice(gb_t *b) {
  gb_input(b, "x", GB_FLOAT, 3, X3);
  gb_init_i(b, "st", 1, (int64_t[]){2}, (int64_t[]){3, 0});
  gb_init_i(b, "en", 1, (int64_t[]){2}, (int64_t[]){INT64_MIN, 2});
  gb_init_i(b, "ax", 1, (int64_t[]){2}, (int64_t[]){2, 1});
  gb_init_i(b, "stp", 1, (int64_t[]){2}, (int64_t[]){-2, 1});
  gb_node(b, "Slice", "x,st,en,ax,stp", "y");
  gb_output(b, "y");
}
static void c_gather(gb_t *b) { /* picks token 0 and 2 of the sequence axis, as x[:, 0] does */
  gb_input(b, "x", GB_FLOAT, 3, X3);
  gb_init_i(b, "ix", 1, (int64_t[]){3}, (int64_t[]){0, 2, -3});
  gb_attr_i(b, gb_node(b, "Gather", "x,ix", "y"), "axis", 1);
  gb_output(b, "y");
}
static void c_expand(gb_t *b) {
  gb_input(b, "x", GB_FLOAT, 3, (int64_t[]){-1, 1, 4});
  gb_init_i(b, "sh", 1, (int64_t[]){3}, (int64_t[]){1, 3, 4});
  gb_node(b, "Expand", "x,sh", "e");
  gb_init_f(b, "k", 2, (int64_t[]){3, 1}, (float[]){1, 2, 3});
  gb_node(b, "Mul", "e,k", "y");
  gb_output(b, "y");
}
static void c_pad(gb_t *b) {
  gb_input(b, "x", GB_FLOAT, 3, X3);
  gb_init_i(b, "p", 1, (int64_t[]){6}, (int64_t[]){0, 1, 0, 0, 0, 2});
  gb_node(b, "Pad", "x,p", "t");
  gb_node(b, "Tanh", "t", "y");
  gb_output(b, "y");
}
/* the rows over core/kern.h, through the graph */
static void c_softmax(gb_t *b) { unary(b, "Softmax"); }
static void c_logsoftmax(gb_t *b) {
  unary(b, "LogSoftmax");
  gb_attr_i(b, b->nodes[0], "axis", 1);
}
static void c_matmul(gb_t *b) {
  gb_input(b, "a", GB_FLOAT, 3, X3);
  gb_input(b, "b", GB_FLOAT, 3, (int64_t[]){-1, 4, 2});
  gb_node(b, "MatMul", "a,b", "y");
  gb_output(b, "y");
}
static void c_gemm(gb_t *b) {
  gb_input(b, "x", GB_FLOAT, 2, (int64_t[]){-1, 4});
  float w[12];
  for (int i = 0; i < 12; i++) w[i] = (float)(0.1 * i - 0.5);
  gb_init_f(b, "w", 2, (int64_t[]){3, 4}, w);
  gb_init_f(b, "c", 1, (int64_t[]){3}, (float[]){0.1f, 0.2f, 0.3f});
  gb_attr_i(b, gb_node(b, "Gemm", "x,w,c", "y"), "transB", 1);
  gb_output(b, "y");
}
static void c_layernorm(gb_t *b) {
  gb_input(b, "x", GB_FLOAT, 3, X3);
  gb_init_f(b, "s", 1, (int64_t[]){4}, (float[]){1.0f, 0.5f, 1.5f, 2.0f});
  gb_init_f(b, "bb", 1, (int64_t[]){4}, (float[]){0.0f, 0.1f, -0.2f, 0.3f});
  gb_node(b, "LayerNormalization", "x,s,bb", "y");
  gb_output(b, "y");
}
static void rnn(gb_t *b, const char *op, int bi, int lbr) {
  int G = op[0] == 'G' ? 3 : 4, H = 3, I = 4, D = bi ? 2 : 1;
  gb_input(b, "x", GB_FLOAT, 3, (int64_t[]){-1, 3, 4}); /* batch first, as torch's batch_first */
  gb_attr_ints(b, gb_node(b, "Transpose", "x", "xt"), "perm", 3, (int64_t[]){1, 0, 2});
  float w[2 * 4 * 3 * 4], r[2 * 4 * 3 * 3], bias[2 * 8 * 3];
  for (int i = 0; i < D * G * H * I; i++) w[i] = (float)(0.3 * sin(i * 1.3));
  for (int i = 0; i < D * G * H * H; i++) r[i] = (float)(0.3 * cos(i * 0.7));
  for (int i = 0; i < D * 2 * G * H; i++) bias[i] = (float)(0.1 * sin(i * 0.9));
  gb_init_f(b, "W", 3, (int64_t[]){D, G * H, I}, w);
  gb_init_f(b, "R", 3, (int64_t[]){D, G * H, H}, r);
  gb_init_f(b, "B", 2, (int64_t[]){D, 2 * G * H}, bias);
  Onnx__NodeProto *n = gb_node(b, op, "xt,W,R,B", G == 3 ? "Y,Yh" : "Y,Yh,Yc");
  gb_attr_i(b, n, "hidden_size", H);
  if (bi) gb_attr_s(b, n, "direction", "bidirectional");
  if (lbr) gb_attr_i(b, n, "linear_before_reset", 1);
  gb_attr_ints(b, gb_node(b, "Transpose", "Y", "yt"), "perm", 4, (int64_t[]){2, 0, 1, 3});
  gb_node(b, "Flatten", "yt", "y");
  gb_output(b, "y");
}
static void c_gru(gb_t *b) { rnn(b, "GRU", 0, 1); }
static void c_bigru(gb_t *b) { rnn(b, "GRU", 1, 0); }
static void c_lstm(gb_t *b) { rnn(b, "LSTM", 0, 0); }
static void c_bilstm(gb_t *b) { rnn(b, "LSTM", 1, 0); }

static const gcase_t gcases[] = {
    {"Relu", c_relu, 0, 13},        {"LeakyRelu", c_leaky, 0, 13},     {"Sigmoid", c_sigmoid, 0, 13},
    {"Tanh", c_tanh, 0, 13},        {"Erf", c_erf, 0, 13},             {"Sqrt", c_sqrt, 1, 13},
    {"Neg", c_neg, 0, 13},          {"Exp", c_exp, 0, 13},             {"Log", c_log, 1, 13},
    {"Abs", c_abs, 0, 13},          {"Reciprocal", c_recip, 0, 13},    {"Identity", c_ident, 0, 13},
    {"Softplus", c_softplus, 0, 13}, {"Gelu", c_gelu, 0, 20},          {"Gelu tanh", c_gelu_tanh, 0, 20},
    {"Dropout", c_dropout, 0, 13},  {"Clip", c_clip, 0, 13},           {"Cast", c_cast, 0, 13},
    {"Add", c_add, 0, 13},          {"Sub", c_sub, 0, 13},             {"Mul", c_mul, 0, 13},
    {"Div", c_div, 0, 13},          {"Min", c_min, 0, 13},             {"Max", c_max, 0, 13},
    {"Pow", c_pow, 1, 13},          {"Where", c_where, 0, 13},         {"ReduceMean", c_rmean, 0, 13},
    {"ReduceMax", c_rmax, 0, 13},   {"ReduceSum", c_rsum13, 0, 13},    {"Transpose", c_transpose, 0, 13},
    {"Reshape", c_reshape, 0, 13},  {"Flatten/Squeeze", c_flatten_squeeze, 0, 13},
    {"Concat/Split", c_concat_split, 0, 13}, {"Slice", c_slice, 0, 13}, {"Gather", c_gather, 0, 13},
    {"Expand", c_expand, 0, 13},    {"Pad", c_pad, 0, 13},             {"Softmax", c_softmax, 0, 13},
    {"LogSoftmax", c_logsoftmax, 0, 13}, {"MatMul", c_matmul, 0, 13},  {"Gemm", c_gemm, 0, 13},
    {"Conv/BN/pools", c_conv_pool, 0, 13}, {"LayerNormalization", c_layernorm, 0, 17},
    {"GRU", c_gru, 0, 13},          {"GRU bidirectional", c_bigru, 0, 13}, {"LSTM", c_lstm, 0, 13},
    {"LSTM bidirectional", c_bilstm, 0, 13},
};

TEST(backward_matches_finite_differences) {
  for (size_t c = 0; c < sizeof gcases / sizeof *gcases; c++) {
    gb_t b;
    gb_init(&b, gcases[c].opset);
    gcases[c].build(&b);
    xd_error_t err;
    xd_graph_t *g = load(&b, &err);
    CHECK_MSG(g != NULL, "%s: %s", gcases[c].name, err.text);
    if (g) {
      inputs_t in;
      make_inputs(g, &in, gcases[c].pos, 10);
      fd_check(gcases[c].name, g, &in, 1e-6);
      free_inputs(&in);
    }
    xd_graph_free(g);
    gb_free(&b);
  }
}


/* The float run agrees with the double run on every case (the prediction path). */
TEST(float_forward_matches_double) {
  for (size_t c = 0; c < sizeof gcases / sizeof *gcases; c++) {
    gb_t b;
    gb_init(&b, gcases[c].opset);
    gcases[c].build(&b);
    xd_error_t err;
    xd_graph_t *g = load(&b, &err);
    if (g) {
      inputs_t in;
      make_inputs(g, &in, gcases[c].pos, 10);
      size_t n = N_BATCH * row_size(g, &in, xd_graph_output(g, 0)->name);
      double *yf = calloc(n, 8), *yd = calloc(n, 8);
      xd_graph_run_t r = {.inputs = in.t, .precision = XD_DT_F32, .out = yf};
      CHECK(xd_graph_run(g, &r, &err) == XD_OK);
      r.precision = XD_DT_F64;
      r.out = yd;
      CHECK(xd_graph_run(g, &r, &err) == XD_OK);
      for (size_t i = 0; i < n; i++) CHECK_MSG(fabs(yf[i] - yd[i]) <= 1e-5 * (1 + fabs(yd[i])), "%s[%zu]: %g vs %g", gcases[c].name, i, yf[i], yd[i]);
      free(yf);
      free(yd);
      free_inputs(&in);
    }
    xd_graph_free(g);
    gb_free(&b);
  }
}

/* The float backward agrees with the double backward on every case (the default path of
 * image and text gradients; the double one is checked against finite differences above):
 * the same seed, every float input's gradient within 1e-4 of the double one, relative to
 * the gradient's largest element. */
TEST(float_backward_matches_double) {
  for (size_t c = 0; c < sizeof gcases / sizeof *gcases; c++) {
    gb_t b;
    gb_init(&b, gcases[c].opset);
    gcases[c].build(&b);
    xd_error_t err;
    xd_graph_t *g = load(&b, &err);
    if (g) {
      inputs_t in;
      make_inputs(g, &in, gcases[c].pos, 10);
      size_t nout = N_BATCH * row_size(g, &in, xd_graph_output(g, 0)->name);
      double *seed = calloc(nout, 8), worst = 0;
      for (size_t i = 0; i < nout; i++) seed[i] = urand() - 0.5;
      for (size_t k = 0; k < in.n; k++) {
        if (in.t[k].dtype != XD_DT_F64) continue;
        size_t n = xd_tensor_numel(&in.t[k]);
        double *gf = calloc(n, 8), *gd = calloc(n, 8), mx = 0;
        xd_graph_run_t r = {.inputs = in.t, .precision = XD_DT_F32, .wrt = xd_graph_input(g, k)->name, .grad = gf,
                            .seed = seed};
        int rc = xd_graph_run(g, &r, &err);
        CHECK_MSG(rc == XD_OK, "%s: float gradient run: %s", gcases[c].name, err.text);
        r.precision = XD_DT_F64;
        r.grad = gd;
        CHECK(xd_graph_run(g, &r, &err) == XD_OK);
        for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(gd[i]));
        for (size_t i = 0; i < n && rc == XD_OK; i++) {
          double e = fabs(gf[i] - gd[i]) / (mx + 1e-12);
          worst = fmax(worst, e);
          CHECK_MSG(e <= 1e-4, "%s: input %zu element %zu: float %.8g, double %.8g", gcases[c].name, k, i, gf[i], gd[i]);
          if (e > 1e-4) break;
        }
        free(gf);
        free(gd);
      }
      free(seed);
      free_inputs(&in);
      if (worst > 1e-5) printf("  %s: float backward within %.1e of double\n", gcases[c].name, worst);
    }
    xd_graph_free(g);
    gb_free(&b);
  }
}

/* ---- forward of the light operators against plain loops -------------------------------- */

TEST(unary_forward_matches_libm) {
  static const struct {
    void (*build)(gb_t *);
    double (*f)(double);
    int pos;
  } u[] = {{c_tanh, tanh, 0}, {c_erf, erf, 0}, {c_sqrt, sqrt, 1}, {c_exp, exp, 0}, {c_log, log, 1}, {c_abs, fabs, 0}};
  for (size_t c = 0; c < sizeof u / sizeof *u; c++) {
    gb_t b;
    gb_init(&b, 13);
    u[c].build(&b);
    xd_error_t err;
    xd_graph_t *g = load(&b, &err);
    inputs_t in;
    make_inputs(g, &in, u[c].pos, 10);
    size_t n;
    double *y = forward_d(g, &in, &n);
    const double *x = in.t[0].data;
    CHECK(n == N_BATCH * 12);
    for (size_t i = 0; i < n; i++) CHECK_NEAR(y[i], u[c].f(x[i]), 1e-15 * (1 + fabs(y[i])));
    free(y);
    free_inputs(&in);
    xd_graph_free(g);
    gb_free(&b);
  }
}

TEST(binary_broadcast_matches_loops) {
  static const float k[4] = {0.7f, 1.3f, -0.9f, 1.1f};
  static void (*const builds[])(gb_t *) = {c_add, c_sub, c_mul, c_div, c_min, c_max};
  for (int op = 0; op < 6; op++) {
    gb_t b;
    gb_init(&b, 13);
    builds[op](&b);
    xd_error_t err;
    xd_graph_t *g = load(&b, &err);
    inputs_t in;
    make_inputs(g, &in, 0, 10);
    size_t n;
    double *y = forward_d(g, &in, &n);
    const double *A = in.t[0].data, *B = in.t[1].data;
    for (size_t i = 0; i < N_BATCH; i++)
      for (size_t r = 0; r < 3; r++)
        for (size_t c = 0; c < 4; c++) {
          double a = A[(i * 3 + r) * 4 + c], bb = B[i * 4 + c], kk = k[c], t, e;
#define OP(x, z) (op == 0 ? (x) + (z) : op == 1 ? (x) - (z) : op == 2 ? (x) * (z) : op == 3 ? (x) / (z) : op == 4 ? fmin(x, z) : fmax(x, z))
          t = OP(a, bb);
          e = OP(t, kk);
#undef OP
          CHECK_NEAR(y[(i * 3 + r) * 4 + c], e, 1e-12);
        }
    free(y);
    free_inputs(&in);
    xd_graph_free(g);
    gb_free(&b);
  }
}

TEST(shape_ops_match_loops) {
  xd_error_t err;
  /* Transpose (0,2,1) then times (1,2,3) */
  gb_t b;
  gb_init(&b, 13);
  c_transpose(&b);
  xd_graph_t *g = load(&b, &err);
  inputs_t in;
  make_inputs(g, &in, 0, 10);
  size_t n;
  double *y = forward_d(g, &in, &n), *x = in.t[0].data;
  for (size_t i = 0; i < N_BATCH; i++)
    for (size_t c = 0; c < 4; c++)
      for (size_t r = 0; r < 3; r++) CHECK_NEAR(y[(i * 4 + c) * 3 + r], x[(i * 3 + r) * 4 + c] * (double)(r + 1), 1e-15);
  free(y);
  free_inputs(&in);
  xd_graph_free(g);
  gb_free(&b);
  /* Slice: axis 2 from 3 down by -2 (columns 3, 1), axis 1 rows 0..1 */
  gb_init(&b, 13);
  c_slice(&b);
  g = load(&b, &err);
  make_inputs(g, &in, 0, 10);
  y = forward_d(g, &in, &n);
  x = in.t[0].data;
  CHECK(n == N_BATCH * 2 * 2);
  for (size_t i = 0; i < N_BATCH; i++)
    for (size_t r = 0; r < 2; r++)
      for (size_t c = 0; c < 2; c++) CHECK(y[(i * 2 + r) * 2 + c] == x[(i * 3 + r) * 4 + (c ? 1 : 3)]);
  free(y);
  free_inputs(&in);
  xd_graph_free(g);
  gb_free(&b);
  /* Gather on axis 1 with indices 0, 2, -3 */
  gb_init(&b, 13);
  c_gather(&b);
  g = load(&b, &err);
  make_inputs(g, &in, 0, 10);
  y = forward_d(g, &in, &n);
  x = in.t[0].data;
  for (size_t i = 0; i < N_BATCH; i++)
    for (size_t k = 0; k < 3; k++)
      for (size_t c = 0; c < 4; c++) CHECK(y[(i * 3 + k) * 4 + c] == x[(i * 3 + (k == 1 ? 2 : 0)) * 4 + c]);
  free(y);
  free_inputs(&in);
  xd_graph_free(g);
  gb_free(&b);
  /* ReduceMean over axis 1, kept */
  gb_init(&b, 13);
  c_rmean(&b);
  g = load(&b, &err);
  make_inputs(g, &in, 0, 10);
  y = forward_d(g, &in, &n);
  x = in.t[0].data;
  for (size_t i = 0; i < N_BATCH; i++)
    for (size_t c = 0; c < 4; c++)
      CHECK_NEAR(y[i * 4 + c], (x[(i * 3) * 4 + c] + x[(i * 3 + 1) * 4 + c] + x[(i * 3 + 2) * 4 + c]) / 3, 1e-15);
  free(y);
  free_inputs(&in);
  xd_graph_free(g);
  gb_free(&b);
  /* Pad: one row before on axis 1, two columns after on axis 2, then Tanh */
  gb_init(&b, 13);
  c_pad(&b);
  g = load(&b, &err);
  make_inputs(g, &in, 0, 10);
  y = forward_d(g, &in, &n);
  x = in.t[0].data;
  CHECK(n == N_BATCH * 4 * 6);
  for (size_t i = 0; i < N_BATCH; i++)
    for (size_t r = 0; r < 4; r++)
      for (size_t c = 0; c < 6; c++)
        CHECK_NEAR(y[(i * 4 + r) * 6 + c], r == 0 || c >= 4 ? 0 : tanh(x[(i * 3 + r - 1) * 4 + c]), 1e-15);
  free(y);
  free_inputs(&in);
  xd_graph_free(g);
  gb_free(&b);
}

int main(void) {
  xd_blas_init();
  RUN(backward_matches_finite_differences);
  RUN(float_forward_matches_double);
  RUN(float_backward_matches_double);
  RUN(unary_forward_matches_libm);
  RUN(binary_broadcast_matches_loops);
  RUN(shape_ops_match_loops);
  return TEST_REPORT();
}
