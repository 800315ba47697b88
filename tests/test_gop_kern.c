/* test_gop_kern.c — the operator rows over core/kern.h (core/gop_kern.c, core/gop_rnn.c),
 * called directly: attribute handling (auto_pad SAME_LOWER/SAME_UPPER, ConvTranspose's
 * output_shape, Softmax before and after opset 13, ceil_mode), shape inference, refusals
 * that name the attribute, and forward results equal to the kernels called with the
 * padding the attributes stand for. The engine's own tests run these rows in graphs. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/gop.h"
#include "core/kern.h"
#include "tests/test.h"

/* ---- a one-node harness -------------------------------------------------------------------- */

typedef struct node_run {
  xd_gnode_t nd;
  int32_t ids_in[8], ids_out[4];
  xd_tensor_t out_t[4];
  xd_tensor_t *out[4];
  void *scratch;
  xd_gop_env_t env;
} node_run_t;

static xd_gattr_t a_int(const char *name, int64_t v) { return (xd_gattr_t){.name = name, .type = XD_GATTR_INT, .i = v}; }
static xd_gattr_t a_ints(const char *name, const int64_t *v, size_t n) {
  return (xd_gattr_t){.name = name, .type = XD_GATTR_INTS, .ints = v, .n = n};
}
static xd_gattr_t a_str(const char *name, const char *s) {
  return (xd_gattr_t){.name = name, .type = XD_GATTR_STRING, .s = s, .n = strlen(s)};
}
static xd_gattr_t a_float(const char *name, double v) {
  return (xd_gattr_t){.name = name, .type = XD_GATTR_FLOAT, .f = v};
}

static xd_tensor_t tensor(size_t rank, const int64_t *dims, double *data) {
  xd_tensor_t t;
  memset(&t, 0, sizeof t);
  t.dtype = XD_DT_F64;
  t.rank = rank;
  for (size_t i = 0; i < rank; i++) t.dims[i] = dims[i];
  t.data = data;
  return t;
}

/* Parses and infers node `op` with the given inputs (NULL: absent); on XD_OK allocates the
 * outputs and runs forward in double. Returns the first failing status. */
static int run_node(node_run_t *r, const char *op, const xd_gattr_t *attrs, size_t na, long opset,
                    xd_tensor_t **in, size_t nin, size_t nout, xd_error_t *err) {
  memset(r, 0, sizeof *r);
  const xd_gop_t *row = xd_gop_find(op);
  if (!row) return XD_ENOTFOUND;
  r->nd.op = row;
  r->nd.name = (char *)"";
  r->nd.n_in = nin;
  r->nd.n_out = nout;
  r->nd.in = r->ids_in;
  r->nd.out = r->ids_out;
  r->nd.opset = opset;
  for (size_t k = 0; k < nin; k++) r->ids_in[k] = in[k] ? (int32_t)k : -1;
  for (size_t k = 0; k < nout; k++) {
    r->ids_out[k] = (int32_t)(nin + k);
    r->out[k] = &r->out_t[k];
  }
  xd_gattrs_t ga = {attrs, na, opset};
  int rc = row->parse ? row->parse(&r->nd, &ga, err) : XD_OK;
  if (rc) return rc;
  r->env.fdt = XD_DT_F64;
  if ((rc = row->infer(&r->nd, in, r->out, &r->env, err))) return rc;
  for (size_t k = 0; k < nout; k++) r->out_t[k].data = xd_calloc(xd_tensor_numel(&r->out_t[k]), 8);
  r->scratch = xd_calloc(r->env.scratch + 8, 1);
  return row->forward(&r->nd, in, r->out, r->scratch);
}

static void node_free(node_run_t *r) {
  for (size_t k = 0; k < 4; k++) xd_free(r->out_t[k].data);
  xd_free(r->scratch);
}

static double *seq(size_t n, double scale) {
  double *a = xd_malloc(n * sizeof *a);
  for (size_t i = 0; i < n; i++) a[i] = scale * sin(1.0 + (double)i * 0.7);
  return a;
}

static double maxdiff(const double *a, const double *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    if (!(fabs(a[i] - b[i]) <= m)) m = fabs(a[i] - b[i]);
  return m;
}

/* ---- tests ----------------------------------------------------------------------------------- */

TEST(conv_same_lower_pads_at_the_start) {
  int64_t xd[] = {1, 2, 5, 5}, wd[] = {3, 2, 4, 4};
  double *x = seq(50, 1), *w = seq(96, 0.3);
  xd_tensor_t X = tensor(4, xd, x), W = tensor(4, wd, w);
  xd_tensor_t *in[] = {&X, &W, NULL};
  xd_gattr_t at[] = {a_str("auto_pad", "SAME_LOWER")};
  node_run_t r;
  xd_error_t err;
  CHECK(run_node(&r, "Conv", at, 1, 13, in, 3, 1, &err) == XD_OK);
  CHECK(r.out_t[0].rank == 4 && r.out_t[0].dims[1] == 3 && r.out_t[0].dims[2] == 5 && r.out_t[0].dims[3] == 5);
  /* total padding 3 on each axis: 2 before, 1 after */
  xd_conv_shape_t s = {.nsp = 2, .N = 1, .C = 2, .M = 3, .group = 1, .in = {5, 5}, .k = {4, 4},
                       .pad0 = {2, 2}, .pad1 = {1, 1}};
  CHECK(xd_conv_shape_init(&s, NULL) == XD_OK);
  double *want = xd_calloc(75, 8);
  xd_conv_forward_d_naive(&s, x, w, NULL, want);
  if (r.out_t[0].data) CHECK(maxdiff(r.out_t[0].data, want, 75) < 1e-12);
  node_free(&r);
  xd_free(want);
  xd_free(x);
  xd_free(w);
}

TEST(conv_transpose_output_shape_and_same) {
  int64_t xd[] = {1, 1, 3, 3}, wd[] = {1, 2, 3, 3}, st[] = {2, 2}, os[] = {6, 6};
  double *x = seq(9, 1), *w = seq(18, 0.5);
  xd_tensor_t X = tensor(4, xd, x), W = tensor(4, wd, w);
  xd_tensor_t *in[] = {&X, &W, NULL};
  /* full size 2·2 + 3 = 7; output_shape 6 trims one: at the start (NOTSET), at the end (SAME_UPPER) */
  for (int upper = 0; upper < 2; upper++) {
    xd_gattr_t at[] = {a_ints("strides", st, 2), upper ? a_str("auto_pad", "SAME_UPPER") : a_ints("output_shape", os, 2)};
    node_run_t r;
    xd_error_t err;
    CHECK_MSG(run_node(&r, "ConvTranspose", at, 2, 13, in, 3, 1, &err) == XD_OK, "%s", err.text);
    CHECK(r.out_t[0].dims[1] == 2 && r.out_t[0].dims[2] == 6 && r.out_t[0].dims[3] == 6);
    xd_convt_shape_t s = {.nsp = 2, .N = 1, .C = 1, .M = 2, .group = 1, .in = {3, 3}, .k = {3, 3}, .stride = {2, 2},
                          .pad0 = {upper ? 0u : 1u, upper ? 0u : 1u}, .pad1 = {upper ? 1u : 0u, upper ? 1u : 0u}};
    CHECK(xd_convt_shape_init(&s, NULL) == XD_OK);
    double *want = xd_calloc(72, 8), *scr = xd_calloc(xd_convt_scratch(&s), 8);
    xd_convt_forward_d(&s, x, w, NULL, want, scr);
    if (r.out_t[0].data) CHECK_MSG(maxdiff(r.out_t[0].data, want, 72) < 1e-12, "upper %d", upper);
    node_free(&r);
    xd_free(want);
    xd_free(scr);
  }
  xd_free(x);
  xd_free(w);
}

TEST(softmax_axis_before_and_after_opset_13) {
  int64_t d[] = {2, 3, 4};
  double *x = seq(24, 2);
  xd_tensor_t X = tensor(3, d, x);
  xd_tensor_t *in[] = {&X};
  xd_gattr_t at[] = {a_int("axis", 1)};
  node_run_t r;
  xd_error_t err;
  /* opset 11: the input flattened to (2, 12), each row sums to 1 */
  CHECK(run_node(&r, "Softmax", at, 1, 11, in, 1, 1, &err) == XD_OK);
  const double *y = r.out_t[0].data;
  double s = 0;
  for (size_t i = 0; i < 12; i++) s += y[i];
  CHECK_NEAR(s, 1, 1e-14);
  CHECK(*(const int64_t *)r.nd.params == 1); /* the graph reads the axis first */
  node_free(&r);
  /* opset 13: over axis 1 only, for each of the 4 positions after it */
  CHECK(run_node(&r, "Softmax", at, 1, 13, in, 1, 1, &err) == XD_OK);
  y = r.out_t[0].data;
  s = y[1] + y[5] + y[9];
  CHECK_NEAR(s, 1, 1e-14);
  node_free(&r);
  /* no axis at opset 13: the last one */
  CHECK(run_node(&r, "LogSoftmax", NULL, 0, 13, in, 1, 1, &err) == XD_OK);
  y = r.out_t[0].data;
  CHECK_NEAR(exp(y[4]) + exp(y[5]) + exp(y[6]) + exp(y[7]), 1, 1e-14);
  CHECK(*(const int64_t *)r.nd.params == -1);
  node_free(&r);
  xd_free(x);
}

TEST(maxpool_ceil_shape_and_refusals) {
  int64_t d[] = {1, 1, 5, 5}, k[] = {2, 2}, st[] = {2, 2}, pads[] = {1, 1, 1, 1};
  double *x = seq(25, 1);
  xd_tensor_t X = tensor(4, d, x);
  xd_tensor_t *in[] = {&X};
  xd_gattr_t at[] = {a_ints("kernel_shape", k, 2), a_ints("strides", st, 2), a_ints("pads", pads, 4),
                     a_int("ceil_mode", 1)};
  node_run_t r;
  xd_error_t err;
  CHECK(run_node(&r, "MaxPool", at, 4, 13, in, 1, 1, &err) == XD_OK);
  CHECK(r.out_t[0].dims[2] == 3 && r.out_t[0].dims[3] == 3); /* not 4: that window starts in the pad */
  if (r.out_t[0].data) CHECK_NEAR(((double *)r.out_t[0].data)[0], x[0], 0);
  node_free(&r);
  xd_gattr_t bad[] = {a_ints("kernel_shape", k, 2), a_int("storage_order", 1)};
  CHECK(run_node(&r, "MaxPool", bad, 2, 13, in, 1, 1, &err) == XD_EUNSUPPORTED);
  CHECK(strcmp(err.field, "storage_order") == 0);
  node_free(&r);
  xd_gattr_t nok[] = {a_ints("strides", st, 2)};
  CHECK(run_node(&r, "AveragePool", nok, 1, 13, in, 1, 1, &err) == XD_EINVAL); /* kernel_shape missing */
  CHECK(strcmp(err.field, "kernel_shape") == 0);
  node_free(&r);
  xd_free(x);
}

TEST(gemm_c_broadcast_rules) {
  int64_t ad[] = {4, 3}, bd[] = {4, 2}, c_ok[] = {3, 1}, c_bad[] = {2, 1};
  double *a = seq(12, 1), *b = seq(8, 1), *c = seq(3, 1);
  xd_tensor_t A = tensor(2, ad, a), B = tensor(2, bd, b), C = tensor(2, c_ok, c), Cb = tensor(2, c_bad, c);
  xd_tensor_t *in[] = {&A, &B, &C};
  xd_gattr_t at[] = {a_int("transA", 1), a_float("beta", 2.0)};
  node_run_t r;
  xd_error_t err;
  CHECK(run_node(&r, "Gemm", at, 2, 13, in, 3, 1, &err) == XD_OK);
  CHECK(r.out_t[0].dims[0] == 3 && r.out_t[0].dims[1] == 2);
  if (r.out_t[0].data) { /* Y[2][1] = Σ_k A[k][2]·B[k][1] + 2·C[2] */
    double want = 2 * c[2];
    for (size_t kk = 0; kk < 4; kk++) want += a[kk * 3 + 2] * b[kk * 2 + 1];
    CHECK_NEAR(((double *)r.out_t[0].data)[2 * 2 + 1], want, 1e-13);
  }
  node_free(&r);
  in[2] = &Cb;
  CHECK(run_node(&r, "Gemm", at, 2, 13, in, 3, 1, &err) == XD_EINVAL);
  CHECK(strcmp(err.field, "C") == 0);
  node_free(&r);
  xd_free(a);
  xd_free(b);
  xd_free(c);
}

TEST(recurrent_rows_shapes_and_refusals) {
  int64_t xd[] = {4, 2, 3}, wd[] = {2, 15, 3}, rd[] = {2, 15, 5}, bd[] = {2, 30};
  double *x = seq(24, 1), *w = seq(90, 0.3), *rr = seq(150, 0.3), *b = seq(60, 0.1);
  xd_tensor_t X = tensor(3, xd, x), W = tensor(3, wd, w), R = tensor(3, rd, rr), B = tensor(2, bd, b);
  xd_tensor_t *in[] = {&X, &W, &R, &B};
  xd_gattr_t at[] = {a_int("hidden_size", 5), a_str("direction", "bidirectional"), a_int("linear_before_reset", 1)};
  node_run_t r;
  xd_error_t err;
  CHECK_MSG(run_node(&r, "GRU", at, 3, 14, in, 4, 2, &err) == XD_OK, "%s", err.text);
  CHECK(r.out_t[0].rank == 4 && r.out_t[0].dims[0] == 4 && r.out_t[0].dims[1] == 2 && r.out_t[0].dims[2] == 2 &&
        r.out_t[0].dims[3] == 5);
  CHECK(r.out_t[1].rank == 3 && r.out_t[1].dims[0] == 2 && r.out_t[1].dims[2] == 5);
  if (r.out_t[0].data && r.out_t[1].data) { /* Y_h of the backward direction is its state at time 0 */
    const double *y = r.out_t[0].data, *yh = r.out_t[1].data;
    CHECK_NEAR(yh[10 + 3], y[(0 * 2 + 1) * 10 + 3], 0);
    CHECK_NEAR(yh[3], y[(3 * 2 + 0) * 10 + 3], 0);
  }
  node_free(&r);
  xd_gattr_t clip[] = {a_int("hidden_size", 5), a_str("direction", "bidirectional"), a_float("clip", 3.0)};
  CHECK(run_node(&r, "GRU", clip, 3, 14, in, 4, 2, &err) == XD_EUNSUPPORTED);
  CHECK(strcmp(err.field, "clip") == 0);
  node_free(&r);
  xd_gattr_t dir[] = {a_int("hidden_size", 5), a_str("direction", "sideways")};
  CHECK(run_node(&r, "GRU", dir, 2, 14, in, 4, 2, &err) == XD_EINVAL);
  CHECK(strcmp(err.field, "direction") == 0);
  node_free(&r);
  /* an LSTM needs 4 gates in W: the GRU's weights are refused, naming W */
  xd_gattr_t lat[] = {a_int("hidden_size", 5), a_str("direction", "bidirectional")};
  CHECK(run_node(&r, "LSTM", lat, 2, 14, in, 4, 3, &err) == XD_EINVAL);
  CHECK(strcmp(err.field, "W") == 0);
  node_free(&r);
  xd_free(x);
  xd_free(w);
  xd_free(rr);
  xd_free(b);
}

TEST(layernorm_statistics_outputs) {
  int64_t d[] = {2, 3, 4}, sd[] = {3, 4};
  double *x = seq(24, 2), *sc = seq(12, 1);
  xd_tensor_t X = tensor(3, d, x), S = tensor(2, sd, sc);
  xd_tensor_t *in[] = {&X, &S, NULL};
  xd_gattr_t at[] = {a_int("axis", -2)};
  node_run_t r;
  xd_error_t err;
  CHECK(run_node(&r, "LayerNormalization", at, 1, 17, in, 3, 3, &err) == XD_OK);
  CHECK(r.out_t[1].rank == 3 && r.out_t[1].dims[0] == 2 && r.out_t[1].dims[1] == 1 && r.out_t[1].dims[2] == 1);
  if (r.out_t[1].data) {
    double mu = 0;
    for (size_t i = 12; i < 24; i++) mu += x[i];
    CHECK_NEAR(((double *)r.out_t[1].data)[1], mu / 12, 1e-15);
  }
  node_free(&r);
  int64_t bad[] = {4};
  xd_tensor_t Sb = tensor(1, bad, sc);
  in[1] = &Sb;
  CHECK(run_node(&r, "LayerNormalization", at, 1, 17, in, 3, 1, &err) == XD_EINVAL);
  CHECK(strcmp(err.field, "Scale") == 0);
  node_free(&r);
  xd_free(x);
  xd_free(sc);
}

int main(void) {
  RUN(conv_same_lower_pads_at_the_start);
  RUN(conv_transpose_output_shape_and_same);
  RUN(softmax_axis_before_and_after_opset_13);
  RUN(maxpool_ceil_shape_and_refusals);
  RUN(gemm_c_broadcast_rules);
  RUN(recurrent_rows_shapes_and_refusals);
  RUN(layernorm_statistics_outputs);
  return TEST_REPORT();
}
