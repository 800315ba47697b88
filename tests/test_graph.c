/* test_graph.c — the graph engine (core/graph.h, the operator rows of core/gop_*.c):
 * every differentiable operator's backward against central finite differences in
 * double, light operators' forward against plain loops, the planner's arena reuse and
 * batch chunking, gradients at and overrides of intermediate tensors, and import errors
 * that name the node and operator. Graphs are built here as ONNX protobufs
 * (tests/graph_build.h). */
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
#include "core/rng.h"
#include "tests/graph_build.h"
#include "tests/test.h"

#define N_BATCH 2
#define N_SEQ 3

static xd_graph_t *load(gb_t *b, xd_error_t *err) {
  size_t len;
  uint8_t *bytes = gb_pack(b, &len);
  xd_graph_t *g = NULL;
  int rc = xd_graph_from_onnx(bytes, len, &g, err);
  free(bytes);
  if (rc != XD_OK) fprintf(stderr, "  load: %s\n", err->text);
  return g;
}

static uint64_t rng_state = 12345;
static double urand(void) { /* splitmix64 -> [0, 1) */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

/* A value away from 0 and the usual kinks: ±[0.3, 1.7], or [0.3, 1.7] when pos. */
static double away(int pos) {
  double v = 0.3 + 1.4 * urand();
  return pos || urand() < 0.5 ? v : -v;
}

/* Inputs for every graph input: symbolic dims N_BATCH then N_SEQ; floats as doubles. */
typedef struct inputs {
  size_t n;
  xd_tensor_t t[8];
} inputs_t;

static void make_inputs(const xd_graph_t *g, inputs_t *in, int pos, int64_t ids_hi) {
  in->n = xd_graph_n_inputs(g);
  for (size_t k = 0; k < in->n; k++) {
    const xd_graph_info_t *f = xd_graph_input(g, k);
    xd_tensor_t *t = &in->t[k];
    memset(t, 0, sizeof *t);
    t->rank = f->rank;
    t->dtype = f->dtype == XD_DT_F32 ? XD_DT_F64 : f->dtype;
    for (size_t d = 0; d < f->rank; d++) t->dims[d] = d == 0 ? N_BATCH : f->dims[d].size >= 0 ? f->dims[d].size : N_SEQ;
    size_t n = xd_tensor_numel(t);
    t->data = calloc(n, 8);
    for (size_t i = 0; i < n; i++) {
      if (t->dtype == XD_DT_F64) ((double *)t->data)[i] = away(pos);
      else if (t->dtype == XD_DT_I64) ((int64_t *)t->data)[i] = (int64_t)(urand() * (double)ids_hi);
      else ((uint8_t *)t->data)[i] = urand() < 0.5;
    }
  }
}

static void free_inputs(inputs_t *in) {
  for (size_t k = 0; k < in->n; k++) free(in->t[k].data);
}

static size_t row_size(const xd_graph_t *g, const inputs_t *in, const char *name) {
  xd_tensor_t s;
  xd_error_t err;
  if (xd_graph_shape(g, in->t, name, &s, &err) != XD_OK) return 0;
  return xd_tensor_numel(&s) / (size_t)s.dims[0];
}

/* Σ seed·output in double. */
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

#define X3 ((int64_t[]){-1, 3, 4})
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
static void c_conv_pool(gb_t *b) {
  gb_input(b, "x", GB_FLOAT, 4, (int64_t[]){-1, 2, 5, 5});
  float w[3 * 2 * 3 * 3];
  for (int i = 0; i < 54; i++) w[i] = (float)(0.05 * ((i * 7) % 11) - 0.25);
  gb_init_f(b, "w", 4, (int64_t[]){3, 2, 3, 3}, w);
  gb_init_f(b, "bias", 1, (int64_t[]){3}, (float[]){0.1f, -0.1f, 0.05f});
  Onnx__NodeProto *c = gb_node(b, "Conv", "x,w,bias", "c");
  gb_attr_ints(b, c, "pads", 4, (int64_t[]){1, 1, 1, 1});
  gb_attr_ints(b, c, "kernel_shape", 2, (int64_t[]){3, 3});
  gb_init_f(b, "s", 1, (int64_t[]){3}, (float[]){1.1f, 0.9f, 1.2f});
  gb_init_f(b, "bb", 1, (int64_t[]){3}, (float[]){0.0f, 0.1f, -0.1f});
  gb_init_f(b, "m", 1, (int64_t[]){3}, (float[]){0.05f, -0.02f, 0.1f});
  gb_init_f(b, "v", 1, (int64_t[]){3}, (float[]){1.5f, 0.8f, 1.1f});
  gb_node(b, "BatchNormalization", "c,s,bb,m,v", "bn");
  Onnx__NodeProto *mp = gb_node(b, "MaxPool", "bn", "mp");
  gb_attr_ints(b, mp, "kernel_shape", 2, (int64_t[]){2, 2});
  gb_attr_ints(b, mp, "strides", 2, (int64_t[]){2, 2});
  Onnx__NodeProto *ap = gb_node(b, "AveragePool", "bn", "ap");
  gb_attr_ints(b, ap, "kernel_shape", 2, (int64_t[]){3, 3});
  gb_node(b, "GlobalAveragePool", "ap", "g");
  gb_node(b, "Flatten", "mp", "f1");
  gb_node(b, "Flatten", "g", "f2");
  gb_attr_i(b, gb_node(b, "Concat", "f1,f2", "y"), "axis", 1);
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

/* ---- forward of the light operators against plain loops -------------------------------- */

/* Runs the one-output graph g in double on in; out (N_BATCH·row values). */
static double *forward_d(xd_graph_t *g, inputs_t *in, size_t *n) {
  *n = N_BATCH * row_size(g, in, xd_graph_output(g, 0)->name);
  double *y = calloc(*n + 1, 8);
  xd_graph_run_t r = {.inputs = in->t, .precision = XD_DT_F64, .out = y};
  xd_error_t err;
  CHECK(xd_graph_run(g, &r, &err) == XD_OK);
  return y;
}

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
  RUN(backward_matches_finite_differences);
  RUN(float_forward_matches_double);
  RUN(unary_forward_matches_libm);
  RUN(binary_broadcast_matches_loops);
  RUN(shape_ops_match_loops);
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
