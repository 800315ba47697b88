/* onnx_ops.c — the ONNX operators a dense network is exported with, one rule each.
 *
 * Each rule reads its inputs from the converter's value table, checks what a chain of
 * dense layers can express (a constant where a weight is expected, a 2-D tensor, the
 * attributes the dense family supports) and produces the value of the node's output.
 * Errors name the reason; xd_onnx__fail prefixes the node's name and op type.
 * References: the ONNX operator specs (onnx/docs/Operators.md) for opsets 9–21, and
 * PyTorch's exporter (torch/onnx/symbolic_opset9.py: gelu -> Div, Erf, Add, Mul, Mul;
 * softplus with beta != 1 -> Mul, Softplus, Div).
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/onnx.h"
#include "core/onnx_conv.h"

typedef xd_onnx__value_t value_t;
typedef xd_onnx__conv_t conv_t;
#define NONE XD_ONNX__NONE
#define fail xd_onnx__fail
#define NEAR(a, b) (fabs((a) - (b)) <= 1e-6 * fabs(b))
#define GELU_FORM "x*0.5*(1+erf(x/sqrt(2)))"

static const char *str(const char *s) { return s ? s : ""; }

/* ---- attributes and inputs ------------------------------------------------------------ */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *nd, const char *name) {
  for (size_t i = 0; i < nd->n_attribute; i++)
    if (strcmp(str(nd->attribute[i]->name), name) == 0) return nd->attribute[i];
  return NULL;
}

static double attr_f(const Onnx__NodeProto *nd, const char *name, double def) {
  const Onnx__AttributeProto *a = attr(nd, name);
  return a && a->has_f ? a->f : def;
}

static long attr_i(const Onnx__NodeProto *nd, const char *name, long def) {
  const Onnx__AttributeProto *a = attr(nd, name);
  return a && a->has_i ? (long)a->i : def;
}

/* The value index of optional input k (consuming one use), or NONE when it is absent. */
static int opt_input(conv_t *cv, const Onnx__NodeProto *nd, size_t k, size_t *idx) {
  *idx = NONE;
  if (k >= nd->n_input || !nd->input[k][0]) return XD_OK;
  size_t i = xd_onnx__lookup(cv, nd->input[k]);
  if (i == NONE)
    return fail(cv, XD_EFORMAT, "input '%.80s' is not defined before this node (nodes must be in topological order)",
                nd->input[k]);
  if (cv->v[i].kind == XD_ONNX__UNUSABLE)
    return fail(cv, XD_EFORMAT, "input '%.80s' is an output the converter does not model (e.g. Dropout's mask)",
                nd->input[k]);
  if (cv->v[i].uses) cv->v[i].uses--;
  *idx = i;
  return XD_OK;
}

/* The value index of required input k (consuming one use). */
static int input(conv_t *cv, const Onnx__NodeProto *nd, size_t k, size_t *idx) {
  int rc = opt_input(cv, nd, k, idx);
  if (rc == XD_OK && *idx == NONE) return fail(cv, XD_EFORMAT, "input %zu is missing", k);
  return rc;
}

static int n_inputs(conv_t *cv, const Onnx__NodeProto *nd, size_t lo, size_t hi) {
  if (nd->n_input < lo || nd->n_input > hi || !nd->input[0][0])
    return fail(cv, XD_EFORMAT, "has %zu inputs; expected %zu%s", nd->n_input, lo, lo == hi ? "" : " or more");
  if (nd->n_output != 1 && strcmp(str(nd->op_type), "Dropout") != 0)
    return fail(cv, XD_EFORMAT, "has %zu outputs; expected 1", nd->n_output);
  return XD_OK;
}

/* v[i] as a decoded constant, or an error saying what the input should have been. */
static int constant(conv_t *cv, size_t i, const char *what, value_t **out) {
  value_t *v = &cv->v[i];
  if (v->kind != XD_ONNX__CONST) return fail(cv, XD_EFORMAT, "%s must be a constant (an initializer)", what);
  if (!v->decoded) {
    int rc = xd_onnx__tensor_decode(cv, v->tp, v);
    if (rc != XD_OK) return rc;
  }
  *out = v;
  return XD_OK;
}

/* v[i] as a computed tensor that more layers may follow. */
static int data(conv_t *cv, size_t i) {
  int rc = xd_onnx__as_data(cv, i);
  if (rc != XD_OK) return rc;
  if (cv->v[i].final) return fail(cv, XD_EFORMAT, "only the graph output may follow Softmax");
  return XD_OK;
}

static int is_scalar(const value_t *k) { return k->n == 1; }

/* ---- GELU in its Erf form ------------------------------------------------------------------ */

int xd_onnx__as_data(conv_t *cv, size_t i) {
  value_t *v = &cv->v[i];
  if (v->kind == XD_ONNX__DATA) return XD_OK;
  if (v->kind == XD_ONNX__CONST) return fail(cv, XD_EFORMAT, "expects a computed tensor where it got a constant");
  if (v->kind != XD_ONNX__GELU || !v->has_x || !NEAR(v->f, 0.5))
    return fail(cv, XD_EFORMAT,
                "uses a partial Erf expression: Erf is supported only in the exact GELU form " GELU_FORM);
  /* x·0.5·(1+erf(x/√2)) complete: x's pending map becomes a GELU_ERF layer. */
  value_t t;
  int rc = xd_onnx__take(cv, &cv->v[v->x], &t);
  if (rc == XD_OK && (rc = xd_onnx__emit_layer(cv, &t, XD_ACT_GELU_ERF)) != XD_OK) xd_onnx__value_deinit(&t);
  if (rc != XD_OK) return rc;
  t.uses = v->uses;
  *v = t;
  return XD_OK;
}

static int op_erf(conv_t *cv, const Onnx__NodeProto *nd, value_t *res) {
  size_t i;
  int rc = n_inputs(cv, nd, 1, 1);
  if (rc != XD_OK || (rc = input(cv, nd, 0, &i)) != XD_OK) return rc;
  const value_t *u = &cv->v[i];
  if (u->kind != XD_ONNX__DATA || u->src == NONE || !NEAR(u->scale, M_SQRT1_2))
    return fail(cv, XD_EFORMAT, "Erf is supported only in the exact GELU form " GELU_FORM);
  *res = (value_t){.kind = XD_ONNX__ERF, .x = u->src, .src = NONE};
  return XD_OK;
}

/* Add, Mul or Div where one side is a partial GELU. Returns 1 when handled (rc set). */
static int gelu_step(conv_t *cv, const char *op, size_t a, size_t b, value_t *res, int *rc) {
  value_t *va = &cv->v[a], *vb = &cv->v[b];
  int ka = va->kind, kb = vb->kind;
  if (ka != XD_ONNX__ERF && ka != XD_ONNX__GELU && kb != XD_ONNX__ERF && kb != XD_ONNX__GELU) return 0;
  *rc = XD_OK;
  value_t *g = ka == XD_ONNX__ERF || ka == XD_ONNX__GELU ? va : vb, *o = g == va ? vb : va, *k = NULL;
  if (o->kind == XD_ONNX__CONST && (*rc = constant(cv, (size_t)(o - cv->v), "the other input", &k)) != XD_OK) return 1;
  if (k && !is_scalar(k)) k = NULL;
  *res = *g;
  res->uses = 0;
  if (strcmp(op, "Add") == 0 && g->kind == XD_ONNX__ERF && k && NEAR(k->k[0], 1.0)) {
    *res = (value_t){.kind = XD_ONNX__GELU, .x = g->x, .f = 1, .src = NONE};
  } else if (g->kind == XD_ONNX__GELU && k && strcmp(op, "Mul") == 0) {
    res->f *= k->k[0];
  } else if (g->kind == XD_ONNX__GELU && k && strcmp(op, "Div") == 0 && g == va && k->k[0] != 0) {
    res->f /= k->k[0];
  } else if (g->kind == XD_ONNX__GELU && !g->has_x && o->kind == XD_ONNX__DATA && strcmp(op, "Mul") == 0 &&
             ((size_t)(o - cv->v) == g->x || o->src == g->x)) {
    res->has_x = 1;
    if ((size_t)(o - cv->v) != g->x) res->f *= o->scale; /* (x·s)·(1+erf) */
  } else {
    *rc = fail(cv, XD_EFORMAT, "Erf is supported only in the exact GELU form " GELU_FORM);
  }
  return 1;
}

/* ---- the operators ------------------------------------------------------------------------ */

static int op_constant(conv_t *cv, const Onnx__NodeProto *nd, value_t *res) {
  const Onnx__AttributeProto *a;
  *res = (value_t){.kind = XD_ONNX__CONST, .src = NONE, .x = NONE};
  if ((a = attr(nd, "value")) && a->t) return xd_onnx__tensor_decode(cv, a->t, res);
  size_t n = 0, rank = 1;
  const float *fs = NULL;
  const int64_t *is = NULL;
  if ((a = attr(nd, "value_float")) && a->has_f) {
    n = 1;
    rank = 0;
    fs = &a->f;
  } else if ((a = attr(nd, "value_floats"))) {
    n = a->n_floats;
    fs = a->floats;
  } else if ((a = attr(nd, "value_int")) && a->has_i) {
    n = 1;
    rank = 0;
    is = &a->i;
  } else if ((a = attr(nd, "value_ints"))) {
    n = a->n_ints;
    is = a->ints;
  }
  if (n == 0 || n > XD_ONNX_MAX_ELEMENTS)
    return fail(cv, XD_EFORMAT, "needs a value, value_float(s) or value_int(s) attribute");
  if (!(res->k = xd_onnx__work(cv, n))) return cv->rc;
  for (size_t i = 0; i < n; i++) {
    res->k[i] = fs ? fs[i] : (double)is[i];
    if (!isfinite(res->k[i])) return fail(cv, XD_EFORMAT, "has a non-finite value");
  }
  res->rank = rank;
  res->dims[0] = (int64_t)n;
  res->n = n;
  res->decoded = 1;
  return XD_OK;
}

static const struct {
  const char *op;
  xd_act_t act;
} activations[] = {{"Relu", XD_ACT_RELU},       {"LeakyRelu", XD_ACT_LEAKY_RELU}, {"Tanh", XD_ACT_TANH},
                   {"Sigmoid", XD_ACT_SIGMOID}, {"Softplus", XD_ACT_SOFTPLUS},    {"Gelu", XD_ACT_GELU_ERF},
                   {"Softmax", XD_ACT_SOFTMAX}};

static int op_activation(conv_t *cv, const Onnx__NodeProto *nd, xd_act_t act, value_t *res) {
  size_t i;
  int rc = n_inputs(cv, nd, 1, 1);
  if (rc != XD_OK || (rc = input(cv, nd, 0, &i)) != XD_OK || (rc = data(cv, i)) != XD_OK) return rc;
  if (act == XD_ACT_LEAKY_RELU && !NEAR(attr_f(nd, "alpha", 0.01), 0.01))
    return fail(cv, XD_EFORMAT,
                "alpha %g is not supported: the dense family's leaky_relu has slope 0.01 (PyTorch's default)",
                attr_f(nd, "alpha", 0.01));
  if (act == XD_ACT_GELU_ERF) {
    const Onnx__AttributeProto *a = attr(nd, "approximate");
    if (a && a->has_s && a->s.len == 4 && memcmp(a->s.data, "tanh", 4) == 0)
      act = XD_ACT_GELU;
    else if (a && a->has_s && !(a->s.len == 4 && memcmp(a->s.data, "none", 4) == 0))
      return fail(cv, XD_EFORMAT, "approximate must be \"none\" or \"tanh\"");
  }
  if (act == XD_ACT_SOFTMAX) {
    long axis = attr_i(nd, "axis", cv->opset >= 13 ? -1 : 1);
    if (cv->v[i].drank != 2 || (axis != 1 && axis != -1))
      return fail(cv, XD_EFORMAT,
                  "axis %ld of a %zu-D tensor is not supported: Softmax must run over the classes of a "
                  "(batch, classes) tensor (axis 1 or -1)",
                  axis, cv->v[i].drank);
  }
  if ((rc = xd_onnx__take(cv, &cv->v[i], res)) != XD_OK) return rc;
  return xd_onnx__emit_layer(cv, res, act);
}

/* Gemm: Y = alpha·A'·B' + beta·C with A the computed tensor; MatMul: Y = A·B. */
static int op_gemm(conv_t *cv, const Onnx__NodeProto *nd, int matmul, value_t *res) {
  size_t ia, ib, ic;
  int rc = n_inputs(cv, nd, 2, matmul ? 2 : 3);
  if (rc != XD_OK || (rc = input(cv, nd, 0, &ia)) != XD_OK || (rc = input(cv, nd, 1, &ib)) != XD_OK ||
      (rc = opt_input(cv, nd, 2, &ic)) != XD_OK)
    return rc;
  if (cv->v[ia].kind == XD_ONNX__CONST && cv->v[ib].kind != XD_ONNX__CONST)
    return fail(cv, XD_EFORMAT, "the computed tensor must be the first input (constant times tensor is not supported)");
  if ((rc = data(cv, ia)) != XD_OK) return rc;
  if (!matmul && attr_i(nd, "transA", 0) != 0)
    return fail(cv, XD_EFORMAT, "transA=1 (a transposed batch) is not supported");
  long transB = matmul ? 0 : attr_i(nd, "transB", 0);
  double alpha = matmul ? 1 : attr_f(nd, "alpha", 1), beta = matmul ? 1 : attr_f(nd, "beta", 1);
  value_t *B, *C = NULL;
  if ((rc = constant(cv, ib, "the weight input B", &B)) != XD_OK) return rc;
  if (ic != NONE && (rc = constant(cv, ic, "the bias input C", &C)) != XD_OK) return rc;
  size_t w = cv->v[ia].width;
  if (B->rank != 2 || (size_t)B->dims[transB ? 1 : 0] != w)
    return fail(cv, XD_EFORMAT, "weights of shape [%lld%s%lld] do not fit an input of %zu values per row",
                (long long)B->dims[0], B->rank == 2 ? ", " : "", B->rank == 2 ? (long long)B->dims[1] : 0LL, w);
  size_t out = (size_t)B->dims[transB ? 0 : 1];
  if (out > XD_ONNX_MAX_WIDTH) return fail(cv, XD_EFORMAT, "a layer of %zu units (at most %d)", out, XD_ONNX_MAX_WIDTH);
  if (C && !(C->n == 1 || (C->n == out && (C->rank == 1 || (C->rank == 2 && C->dims[0] == 1)))))
    return fail(cv, XD_EFORMAT, "bias C of %zu values does not broadcast to (batch, %zu)", C->n, out);
  double *W = xd_onnx__work(cv, xd_mul_size(out, w)), *b = W ? xd_onnx__work(cv, out) : NULL;
  if (!b) {
    xd_free(W);
    return cv->rc;
  }
  for (size_t o = 0; o < out; o++) {
    for (size_t j = 0; j < w; j++) W[o * w + j] = alpha * (transB ? B->k[o * w + j] : B->k[j * out + o]);
    b[o] = C ? beta * C->k[C->n == 1 ? 0 : o] : 0;
  }
  rc = xd_onnx__take(cv, &cv->v[ia], res);
  if (rc == XD_OK) rc = xd_onnx__affine(cv, res, W, b, out);
  xd_free(W);
  xd_free(b);
  return rc;
}

/* Add, Sub, Mul, Div of a computed tensor and a constant (either order where affine). */
static int op_binary(conv_t *cv, const Onnx__NodeProto *nd, const char *op, value_t *res) {
  size_t ia, ib;
  int rc = n_inputs(cv, nd, 2, 2);
  if (rc != XD_OK || (rc = input(cv, nd, 0, &ia)) != XD_OK || (rc = input(cv, nd, 1, &ib)) != XD_OK) return rc;
  if (gelu_step(cv, op, ia, ib, res, &rc)) return rc;
  int ca = cv->v[ia].kind == XD_ONNX__CONST, cb = cv->v[ib].kind == XD_ONNX__CONST;
  if (ca && cb) return fail(cv, XD_EFORMAT, "both inputs are constants (export with constant folding)");
  if (!ca && !cb && ia == ib && strcmp(op, "Mul") == 0)
    return fail(cv, XD_EFORMAT,
                "multiplies a tensor by itself (a polynomial, e.g. the tanh form of GELU as opsets up to 17 write "
                "it): export the exact nn.GELU(), or Gelu with opset 20");
  if (!ca && !cb)
    return fail(cv, XD_EFORMAT, "combines two computed tensors: branches and skip connections are not supported");
  size_t id = ca ? ib : ia;
  value_t *k;
  if ((rc = data(cv, id)) != XD_OK || (rc = constant(cv, ca ? ia : ib, "the other input", &k)) != XD_OK) return rc;
  const value_t *x = &cv->v[id];
  if (!is_scalar(k) && !(x->drank == 2 && k->n == x->width && (k->rank == 1 || (k->rank == 2 && k->dims[0] == 1))))
    return fail(cv, XD_EFORMAT, "a constant of %zu values does not broadcast over (batch, %zu)", k->n, x->width);
  int mul = strcmp(op, "Mul") == 0, div = strcmp(op, "Div") == 0, sub = strcmp(op, "Sub") == 0;
  if (div && ca) return fail(cv, XD_EFORMAT, "divides by a computed tensor, which is not an affine map");
  double *t = xd_onnx__work(cv, k->n);
  if (!t) return cv->rc;
  for (size_t i = 0; i < k->n; i++) {
    if (div && k->k[i] == 0) {
      xd_free(t);
      return fail(cv, XD_EFORMAT, "divides by zero");
    }
    t[i] = div ? 1 / k->k[i] : sub && !ca ? -k->k[i] : k->k[i];
  }
  static const double minus1 = -1;
  if ((mul || div) && is_scalar(k)) cv->v[id].pinned = 1; /* x stays whole for a GELU that names it */
  if ((rc = xd_onnx__take(cv, &cv->v[id], res)) == XD_OK) {
    if (mul || div)
      rc = xd_onnx__elementwise(cv, res, t, k->n, NULL, 0);
    else /* Add, Sub (x - k: add -k; k - x: negate, then add k) */
      rc = xd_onnx__elementwise(cv, res, &minus1, sub && ca ? 1 : 0, t, k->n);
    if ((mul || div) && is_scalar(k)) {
      res->src = id;
      res->scale = t[0];
    }
  }
  xd_free(t);
  return rc;
}

/* BatchNormalization in inference: y = scale·(x - mean)/sqrt(var + epsilon) + B per
 * column of a (batch, C) tensor, folded like any per-column affine map. */
static int op_batchnorm(conv_t *cv, const Onnx__NodeProto *nd, value_t *res) {
  size_t ix, ip[4];
  value_t *p[4];
  static const char *names[4] = {"scale", "B", "mean", "var"};
  int rc = n_inputs(cv, nd, 5, 5);
  if (rc != XD_OK || (rc = input(cv, nd, 0, &ix)) != XD_OK || (rc = data(cv, ix)) != XD_OK) return rc;
  if (attr_i(nd, "training_mode", 0) != 0)
    return fail(cv, XD_EFORMAT, "training_mode is set; export the model in eval mode");
  size_t w = cv->v[ix].width;
  if (cv->v[ix].drank != 2) return fail(cv, XD_EFORMAT, "only the (batch, features) form of BatchNorm1d is supported");
  for (int j = 0; j < 4; j++) {
    if ((rc = input(cv, nd, (size_t)j + 1, &ip[j])) != XD_OK || (rc = constant(cv, ip[j], names[j], &p[j])) != XD_OK)
      return rc;
    if (p[j]->n != w) return fail(cv, XD_EFORMAT, "%s has %zu values for %zu features", names[j], p[j]->n, w);
  }
  double eps = attr_f(nd, "epsilon", 1e-5);
  double *s = xd_onnx__work(cv, w), *add = s ? xd_onnx__work(cv, w) : NULL;
  if (!add) {
    xd_free(s);
    return cv->rc;
  }
  for (size_t i = 0; i < w && rc == XD_OK; i++) {
    if (!(p[3]->k[i] + eps > 0)) rc = fail(cv, XD_EFORMAT, "var + epsilon is not positive at feature %zu", i);
    s[i] = p[0]->k[i] / sqrt(p[3]->k[i] + eps);
    add[i] = p[1]->k[i] - p[2]->k[i] * s[i];
  }
  if (rc == XD_OK && (rc = xd_onnx__take(cv, &cv->v[ix], res)) == XD_OK)
    rc = xd_onnx__elementwise(cv, res, s, w, add, w);
  xd_free(s);
  xd_free(add);
  return rc;
}

/* Identity, Dropout (inference: the identity), Neg, Flatten, Reshape. */
static int op_shape(conv_t *cv, const Onnx__NodeProto *nd, const char *op, value_t *res) {
  size_t i, is = NONE;
  int reshape = strcmp(op, "Reshape") == 0, dropout = strcmp(op, "Dropout") == 0;
  int rc = n_inputs(cv, nd, reshape ? 2 : 1, dropout ? 3 : reshape ? 2 : 1);
  if (rc != XD_OK || (rc = input(cv, nd, 0, &i)) != XD_OK) return rc;
  if (dropout && (rc = opt_input(cv, nd, 2, &is)) != XD_OK) return rc;
  if (reshape && (rc = input(cv, nd, 1, &is)) != XD_OK) return rc;
  value_t *k = NULL;
  if (is != NONE && (rc = constant(cv, is, reshape ? "the shape" : "training_mode", &k)) != XD_OK) return rc;
  if (dropout && k && k->k[0] != 0) return fail(cv, XD_EFORMAT, "training_mode is true; export the model in eval mode");
  if (strcmp(op, "Identity") == 0 && cv->v[i].kind == XD_ONNX__CONST) { /* an alias of a weight */
    value_t *c;
    if ((rc = constant(cv, i, "the input", &c)) != XD_OK) return rc;
    *res = *c;
    res->uses = 0;
    res->k = xd_onnx__work(cv, c->n);
    if (!res->k) return cv->rc;
    memcpy(res->k, c->k, c->n * sizeof *res->k);
    return XD_OK;
  }
  if ((rc = strcmp(op, "Identity") == 0 || dropout ? xd_onnx__as_data(cv, i) : data(cv, i)) != XD_OK) return rc;
  size_t width = cv->v[i].width, drank = cv->v[i].drank;
  if (strcmp(op, "Flatten") == 0) {
    long axis = attr_i(nd, "axis", 1);
    if (axis < 0) axis += (long)drank;
    if (axis != 1) return fail(cv, XD_EFORMAT, "axis %ld would mix the batch into the features; only axis 1", axis);
  } else if (reshape) {
    /* [0 or -1, width] or [0, -1]; compared as doubles, so no cast of a wild value */
    double s0 = k->n == 2 ? k->k[0] : 1, s1 = k->n == 2 ? k->k[1] : 0;
    if (k->n != 2 || !(s0 == 0 || s0 == -1) || !(s1 == (double)width || (s1 == -1 && s0 == 0)) ||
        attr_i(nd, "allowzero", 0) != 0)
      return fail(cv, XD_EFORMAT, "reshapes to a shape other than (batch, %zu)", width);
  }
  if ((rc = xd_onnx__take(cv, &cv->v[i], res)) != XD_OK) return rc;
  if (strcmp(op, "Flatten") == 0 || reshape) res->drank = 2;
  if (strcmp(op, "Neg") == 0) {
    static const double minus1 = -1;
    return xd_onnx__elementwise(cv, res, &minus1, 1, NULL, 0);
  }
  return XD_OK;
}

int xd_onnx__node(conv_t *cv, const Onnx__NodeProto *nd, value_t *res) {
  const char *op = str(nd->op_type), *dom = str(nd->domain);
  if (dom[0] && strcmp(dom, "ai.onnx") != 0 && !(strcmp(dom, "com.microsoft") == 0 && strcmp(op, "Gelu") == 0))
    return fail(cv, XD_EFORMAT, "unsupported operator (domain '%.60s')", dom);
  if (strcmp(op, "Constant") == 0) return op_constant(cv, nd, res);
  if (strcmp(op, "Gemm") == 0 || strcmp(op, "MatMul") == 0) return op_gemm(cv, nd, op[0] == 'M', res);
  if (strcmp(op, "Add") == 0 || strcmp(op, "Sub") == 0 || strcmp(op, "Mul") == 0 || strcmp(op, "Div") == 0)
    return op_binary(cv, nd, op, res);
  if (strcmp(op, "Erf") == 0) return op_erf(cv, nd, res);
  if (strcmp(op, "BatchNormalization") == 0) return op_batchnorm(cv, nd, res);
  for (size_t a = 0; a < sizeof activations / sizeof *activations; a++)
    if (strcmp(op, activations[a].op) == 0) return op_activation(cv, nd, activations[a].act, res);
  if (strcmp(op, "Identity") == 0 || strcmp(op, "Dropout") == 0 || strcmp(op, "Neg") == 0 ||
      strcmp(op, "Flatten") == 0 || strcmp(op, "Reshape") == 0)
    return op_shape(cv, nd, op, res);
  return fail(cv, XD_EFORMAT,
              "unsupported operator (a dense network is built from Gemm or MatMul+Add, Relu, LeakyRelu, Tanh, Sigmoid, "
              "Softplus, Gelu, Softmax, BatchNormalization, Flatten, Reshape, Identity, Dropout and Add/Sub/Mul/Div by "
              "constants)");
}
