/* onnx_graph.c — ONNX ModelProto -> xd_graph_t (the graph engine, core/graph.h).
 *
 * The protobuf is bounds-checked and unpacked by onnx.c (xd_onnx__read). This file turns
 * it into the engine's tables: initializers and Constant nodes become constant tensors
 * (floats kept in float and in double), graph inputs keep their declared dims with
 * dim_param names as symbols (dimension 0 is the batch of every input), and every other
 * node becomes an xd_gnode_t whose row (core/gop.h) parses its attributes. Node order,
 * cycles, dangling names and shapes are checked by xd_graph__finish (graph.c).
 * Every count and size read from the file is bounded before anything it sizes is
 * allocated; a tensor's element count must match the bytes the file really holds.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/graph_int.h"
#include "core/onnx.h"
#include "core/onnx_conv.h" /* the generated onnx.pb-c.h and xd_onnx__read */

typedef xd_graph__tensor_t gt_t;

static const char *str(const char *s) { return s ? s : ""; }

static int gfail(xd_error_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int gfail(xd_error_t *err, int code, const char *fmt, ...) {
  char msg[XD_ERROR_TEXT_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return xd_error_set(err, code, "onnx", "%s", msg);
}

static uint32_t le_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le_u64(const uint8_t *p) { return (uint64_t)le_u32(p) | (uint64_t)le_u32(p + 4) << 32; }

/* Decodes a TensorProto into t (data xd_malloc'd, floats as F32) and, for floats, *dcopy
 * (F64; may be NULL when not wanted). what names it in errors. */
static int tensor_decode(const Onnx__TensorProto *tp, xd_tensor_t *t, double **dcopy, const char *what,
                         xd_error_t *err) {
  memset(t, 0, sizeof *t);
  if (dcopy) *dcopy = NULL;
  if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
    return gfail(err, XD_EFORMAT, "%s keeps its data in an external file, which is not supported", what);
  if (tp->segment) return gfail(err, XD_EFORMAT, "%s is segmented, which is not supported", what);
  if (tp->n_dims > XD_TENSOR_MAX_RANK)
    return gfail(err, XD_EFORMAT, "%s has %zu dimensions (at most %d)", what, tp->n_dims, XD_TENSOR_MAX_RANK);
  size_t n = 1;
  for (size_t i = 0; i < tp->n_dims; i++) {
    if (tp->dims[i] < 0 || tp->dims[i] > XD_GRAPH_MAX_ELEMENTS || (double)n * (double)tp->dims[i] > (double)XD_GRAPH_MAX_ELEMENTS)
      return gfail(err, XD_EFORMAT, "%s has a negative or absurd dimension %lld", what, (long long)tp->dims[i]);
    n *= (size_t)tp->dims[i];
    t->dims[i] = tp->dims[i];
  }
  t->rank = tp->n_dims;
  int type = tp->has_data_type ? tp->data_type : 0;
  size_t esize = 0, typed = 0;
  switch (type) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: esize = 4, typed = tp->n_float_data, t->dtype = XD_DT_F32; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: esize = 8, typed = tp->n_double_data, t->dtype = XD_DT_F32; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: esize = 8, typed = tp->n_int64_data, t->dtype = XD_DT_I64; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: esize = 4, typed = tp->n_int32_data, t->dtype = XD_DT_I64; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: esize = 1, typed = tp->n_int32_data, t->dtype = XD_DT_BOOL; break;
  default:
    return gfail(err, XD_EFORMAT, "%s has data type %d (float, double, int32, int64 or bool only)", what, type);
  }
  int raw = tp->has_raw_data && tp->raw_data.len > 0;
  if (raw ? tp->raw_data.len != n * esize : typed != n)
    return gfail(err, XD_EFORMAT, "%s has %zu values for a shape of %zu", what, raw ? tp->raw_data.len / esize : typed,
                 n);
  t->data = xd_malloc(n ? n * xd_dtype_size(t->dtype) : 1);
  double *d = NULL;
  if (t->dtype == XD_DT_F32 && dcopy) d = xd_malloc(n ? n * sizeof *d : 1);
  if (!t->data || (t->dtype == XD_DT_F32 && dcopy && !d)) {
    xd_free(t->data);
    xd_free(d);
    t->data = NULL;
    return gfail(err, XD_ENOMEM, "out of memory reading %s", what);
  }
  const uint8_t *r = tp->raw_data.data;
  for (size_t i = 0; i < n; i++) {
    switch (type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
      double x;
      if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        float f;
        if (raw) {
          uint32_t u = le_u32(r + 4 * i);
          memcpy(&f, &u, sizeof f);
        } else {
          f = tp->float_data[i];
        }
        x = f;
      } else if (raw) {
        uint64_t u = le_u64(r + 8 * i);
        memcpy(&x, &u, sizeof x);
      } else {
        x = tp->double_data[i];
      }
      if (isnan(x)) {
        xd_free(t->data);
        xd_free(d);
        t->data = NULL;
        return gfail(err, XD_EFORMAT, "%s has a NaN at %zu", what, i);
      }
      ((float *)t->data)[i] = (float)x;
      if (d) d[i] = x;
      break;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
      ((int64_t *)t->data)[i] = raw ? (int64_t)le_u64(r + 8 * i) : tp->int64_data[i];
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
      ((int64_t *)t->data)[i] = raw ? (int32_t)le_u32(r + 4 * i) : tp->int32_data[i];
      break;
    default: ((uint8_t *)t->data)[i] = raw ? r[i] != 0 : tp->int32_data[i] != 0; break;
    }
  }
  if (dcopy) *dcopy = d;
  return XD_OK;
}

/* A scalar or vector Constant attribute (value_float(s), value_int(s)) as a tensor. */
static int constant_attr(const Onnx__AttributeProto *a, xd_tensor_t *t, double **dcopy, xd_error_t *err) {
  memset(t, 0, sizeof *t);
  *dcopy = NULL;
  const char *nm = str(a->name);
  size_t n;
  int isf = strncmp(nm, "value_float", 11) == 0, vec = nm[strlen(nm) - 1] == 's';
  if (strcmp(nm, "value_float") && strcmp(nm, "value_floats") && strcmp(nm, "value_int") && strcmp(nm, "value_ints"))
    return gfail(err, XD_EFORMAT, "Constant attribute '%.40s' is not supported", nm);
  n = vec ? (isf ? a->n_floats : a->n_ints) : 1;
  t->rank = vec ? 1 : 0;
  t->dims[0] = (int64_t)n;
  t->dtype = isf ? XD_DT_F32 : XD_DT_I64;
  t->data = xd_malloc(n ? n * 8 : 1);
  if (isf) *dcopy = xd_malloc(n ? n * 8 : 1);
  if (!t->data || (isf && !*dcopy)) return gfail(err, XD_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    if (isf) {
      float f = vec ? a->floats[i] : a->f;
      ((float *)t->data)[i] = f;
      (*dcopy)[i] = f;
    } else {
      ((int64_t *)t->data)[i] = vec ? a->ints[i] : a->i;
    }
  }
  return XD_OK;
}

/* ---- building ---------------------------------------------------------------------------- */

typedef struct build {
  xd_graph_t *g;
  int flags; /* XD_GRAPH__CHECK_ROWS, XD_GRAPH__NO_FUSE */
  size_t cap_t;
  xd_error_t *err;
} build_t;

static int add_tensor(build_t *b, const char *name, int kind, gt_t **out) {
  xd_graph_t *g = b->g;
  if (g->nt >= b->cap_t) return gfail(b->err, XD_EFORMAT, "more than %zu tensors", b->cap_t);
  gt_t *t = &g->t[g->nt];
  memset(t, 0, sizeof *t);
  t->name = xd_strdup(name);
  if (!t->name) return gfail(b->err, XD_ENOMEM, "out of memory");
  t->kind = kind;
  t->producer = -1;
  t->fixed0 = -1;
  for (int d = 0; d < XD_TENSOR_MAX_RANK; d++) t->sym[d] = -1;
  g->nt++;
  *out = t;
  return XD_OK;
}

static int symbol(xd_graph_t *g, const char *name, xd_error_t *err) {
  for (size_t s = 0; s < g->nsym; s++)
    if (strcmp(g->sym[s], name) == 0) return (int)s;
  if (g->nsym == XD_GRAPH__MAX_SYMBOLS)
    return gfail(err, XD_EFORMAT, "more than %d symbolic dimensions", XD_GRAPH__MAX_SYMBOLS), -1;
  if (!(g->sym[g->nsym] = xd_strdup(name))) return gfail(err, XD_ENOMEM, "out of memory"), -1;
  return (int)g->nsym++;
}

static int graph_input(build_t *b, const Onnx__ValueInfoProto *vi, size_t k) {
  xd_graph_t *g = b->g;
  const char *nm = str(vi->name);
  if (!nm[0]) return gfail(b->err, XD_EFORMAT, "graph input %zu has no name", k);
  const Onnx__TypeProto *tp = vi->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type->shape)
    return gfail(b->err, XD_EFORMAT, "graph input '%.80s' must be a tensor with a shape", nm);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  xd_dtype_t dt;
  switch (tt->has_elem_type ? tt->elem_type : 1) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: dt = XD_DT_F32; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: dt = XD_DT_I64; break; /* integers are int64 inside */
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: dt = XD_DT_BOOL; break;
  default:
    return gfail(b->err, XD_EFORMAT, "graph input '%.80s' has element type %d (float, double, int32, int64 or bool only)",
                 nm, tt->elem_type);
  }
  size_t rank = tt->shape->n_dim;
  if (rank < 1 || rank > XD_TENSOR_MAX_RANK)
    return gfail(b->err, XD_EFORMAT, "graph input '%.80s' has %zu dimensions (1 to %d: the batch first)", nm, rank,
                 XD_TENSOR_MAX_RANK);
  gt_t *t;
  int rc = add_tensor(b, nm, XD_GRAPH__T_INPUT, &t);
  if (rc != XD_OK) return rc;
  t->init.dtype = dt;
  t->init.rank = rank;
  for (size_t d = 0; d < rank; d++) {
    const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
    char buf[64];
    const char *sname = NULL;
    int sym0 = dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    if (d == 0) {
      if (!sym0 && (dim->dim_value < 1 || dim->dim_value > (1 << 24)))
        return gfail(b->err, XD_EFORMAT, "graph input '%.80s' dimension 0 is %lld (1 to %d)", nm,
                     (long long)dim->dim_value, 1 << 24);
      t->fixed0 = sym0 ? -1 : dim->dim_value;
    }
    if (d == 0 && (k == 0 || sym0)) {
      /* the batch: dimension 0 of the first input whatever the file says, and of every
       * other input whose dimension 0 is symbolic; named after the first input's symbol */
      sname = g->nsym ? g->sym[0]
              : dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dim->dim_param[0]
                  ? dim->dim_param
                  : "batch";
    } else if (!sym0) {
      if (dim->dim_value < 1 || dim->dim_value > (1 << 24))
        return gfail(b->err, XD_EFORMAT, "graph input '%.80s' dimension %zu is %lld (1 to %d)", nm, d,
                     (long long)dim->dim_value, 1 << 24);
      t->init.dims[d] = dim->dim_value;
      continue;
    } else if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dim->dim_param[0]) {
      sname = dim->dim_param;
    } else {
      snprintf(buf, sizeof buf, "%.40s_dim%zu", nm, d);
      sname = buf;
    }
    int s = symbol(g, sname, b->err);
    if (s < 0) return b->err->code;
    t->sym[d] = s;
    t->init.dims[d] = -1;
  }
  return XD_OK;
}

/* Attributes of nd as the rows see them; tensors decoded into tens (freed by caller). */
static int node_attrs(build_t *b, const Onnx__NodeProto *nd, xd_gattr_t *a, xd_tensor_t *tens, size_t *nt) {
  *nt = 0;
  for (size_t i = 0; i < nd->n_attribute; i++) {
    const Onnx__AttributeProto *p = nd->attribute[i];
    xd_gattr_t *x = &a[i];
    memset(x, 0, sizeof *x);
    x->name = str(p->name);
    int type = p->has_type ? p->type : 0;
    switch (type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: x->type = XD_GATTR_INT, x->i = p->i; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: x->type = XD_GATTR_FLOAT, x->f = p->f; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: x->type = XD_GATTR_INTS, x->ints = p->ints, x->n = p->n_ints; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
      x->type = XD_GATTR_FLOATS, x->floats = p->floats, x->n = p->n_floats;
      break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
      x->type = XD_GATTR_STRING, x->s = (const char *)p->s.data, x->n = p->s.len;
      break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
      if (!p->t) return gfail(b->err, XD_EFORMAT, "attribute '%.40s' has no tensor", x->name);
      {
        char what[96];
        snprintf(what, sizeof what, "attribute '%.40s'", x->name);
        int rc = tensor_decode(p->t, &tens[*nt], NULL, what, b->err);
        if (rc != XD_OK) return rc;
      }
      x->type = XD_GATTR_TENSOR;
      x->t = &tens[(*nt)++];
      break;
    default: x->type = XD_GATTR_OTHER; break;
    }
  }
  return XD_OK;
}

static int constant_node(build_t *b, const Onnx__NodeProto *nd) {
  if (nd->n_output != 1 || !nd->output[0][0] || nd->n_attribute != 1)
    return gfail(b->err, XD_EFORMAT, "a Constant needs one output and one value attribute");
  gt_t *t;
  int rc = add_tensor(b, nd->output[0], XD_GRAPH__T_INIT, &t);
  if (rc != XD_OK) return rc;
  const Onnx__AttributeProto *a = nd->attribute[0];
  if (strcmp(str(a->name), "value") == 0 && a->t) return tensor_decode(a->t, &t->init, &t->init_d, "its value", b->err);
  return constant_attr(a, &t->init, &t->init_d, b->err);
}

static int op_node(build_t *b, const Onnx__NodeProto *nd, size_t i) {
  xd_graph_t *g = b->g;
  xd_gnode_t *n = &g->nodes[g->nn];
  memset(n, 0, sizeof *n);
  n->index = i;
  n->opset = g->opset;
  if (!(n->name = xd_strdup(str(nd->name)))) return gfail(b->err, XD_ENOMEM, "out of memory");
  g->nn++;
  const char *op = str(nd->op_type), *dom = str(nd->domain);
  if (dom[0] && strcmp(dom, "ai.onnx") != 0)
    return gfail(b->err, XD_EFORMAT, "operator of domain '%.60s' is not supported (only the default ONNX domain)", dom);
  if (!(n->op = xd_gop_find(op)))
    return gfail(b->err, XD_EFORMAT, "unsupported operator (supported: %s)", xd_gop_names());
  if (nd->n_input < n->op->min_in || nd->n_input > n->op->max_in || nd->n_output < n->op->min_out ||
      nd->n_output > n->op->max_out)
    return gfail(b->err, XD_EFORMAT, "has %zu inputs and %zu outputs; expected %u to %u inputs and %u to %u outputs",
                 nd->n_input, nd->n_output, n->op->min_in, n->op->max_in, n->op->min_out, n->op->max_out);
  n->n_in = nd->n_input;
  n->n_out = nd->n_output;
  n->in = xd_calloc(n->n_in + 1, sizeof *n->in);
  n->out = xd_calloc(n->n_out + 1, sizeof *n->out);
  if (!n->in || !n->out) return gfail(b->err, XD_ENOMEM, "out of memory");
  for (size_t k = 0; k < n->n_out; k++) {
    /* an unnamed output still gets a tensor (a name no ONNX file can use), so every
     * row always receives every output */
    char anon[48];
    snprintf(anon, sizeof anon, "\x1f%zu:%zu", i, k);
    gt_t *t;
    int rc = add_tensor(b, nd->output[k][0] ? nd->output[k] : anon, XD_GRAPH__T_NODE, &t);
    if (rc != XD_OK) return rc;
    t->producer = (int32_t)(g->nn - 1);
    t->out_slot = (int32_t)k;
    n->out[k] = (int32_t)(g->nt - 1);
  }
  /* inputs are resolved by name once every tensor exists (nodes may come in any order) */
  xd_gattr_t attrs[64];
  xd_tensor_t tens[64];
  size_t nt = 0;
  if (nd->n_attribute > 64) return gfail(b->err, XD_EFORMAT, "more than 64 attributes");
  int rc = node_attrs(b, nd, attrs, tens, &nt);
  if (rc == XD_OK && n->op->parse) {
    xd_gattrs_t as = {.a = attrs, .n = nd->n_attribute, .opset = g->opset};
    rc = n->op->parse(n, &as, b->err);
    if (rc != XD_OK) gfail(b->err, rc, "%s", b->err->text);
  }
  for (size_t k = 0; k < nt; k++) xd_free(tens[k].data);
  return rc;
}

/* Names a failing node in err: "nodes[12] (Conv 'conv1'): " + text. */
static int name_node(xd_error_t *err, const Onnx__NodeProto *nd, size_t i, int rc) {
  char text[XD_ERROR_TEXT_MAX];
  snprintf(text, sizeof text, "%s", err->text);
  if (nd->name && nd->name[0])
    xd_error_set(err, rc, "onnx", "nodes[%zu] (%.40s '%.80s'): %s", i, str(nd->op_type), nd->name, text);
  else
    xd_error_set(err, rc, "onnx", "nodes[%zu] (%.40s): %s", i, str(nd->op_type), text);
  return rc;
}

static int resolve_inputs(build_t *b, const Onnx__GraphProto *gp) {
  xd_graph_t *g = b->g;
  for (size_t j = 0; j < g->nn; j++) {
    xd_gnode_t *n = &g->nodes[j];
    const Onnx__NodeProto *nd = gp->node[n->index];
    for (size_t k = 0; k < n->n_in; k++) {
      n->in[k] = -1;
      if (!nd->input[k][0] && k < n->op->min_in) {
        gfail(b->err, XD_EFORMAT, "input %zu is required but has no name", k);
        return name_node(b->err, nd, n->index, XD_EFORMAT);
      }
      if (!nd->input[k][0]) continue;
      int32_t id = xd_graph__lookup(g, nd->input[k]);
      if (id < 0) {
        gfail(b->err, XD_EFORMAT, "input '%.80s' is not defined by any node, initializer or graph input",
              nd->input[k]);
        return name_node(b->err, nd, n->index, XD_EFORMAT);
      }
      n->in[k] = id;
    }
  }
  return XD_OK;
}

static int build(build_t *b, const Onnx__ModelProto *m) {
  xd_graph_t *g = b->g;
  const Onnx__GraphProto *gp = m->graph;
  g->opset = -1;
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const char *d = str(m->opset_import[i]->domain);
    if ((!d[0] || strcmp(d, "ai.onnx") == 0) && m->opset_import[i]->has_version)
      g->opset = (long)m->opset_import[i]->version;
  }
  if (g->opset < 0) return gfail(b->err, XD_EFORMAT, "the model imports no opset of the default domain");
  if (g->opset < 7 || g->opset > XD_ONNX_OPSET_MAX)
    return gfail(b->err, XD_EFORMAT, "opset %ld of the default domain is not supported (7 to %d)", g->opset,
                 XD_ONNX_OPSET_MAX);
  if (!gp) return gfail(b->err, XD_EFORMAT, "the model has no graph");
  if (gp->n_node > XD_GRAPH_MAX_NODES || gp->n_initializer > XD_GRAPH_MAX_TENSORS || gp->n_input > 64 ||
      gp->n_output > 64)
    return gfail(b->err, XD_EFORMAT, "the graph has more than %d nodes, %d initializers, or 64 inputs or outputs",
                 XD_GRAPH_MAX_NODES, XD_GRAPH_MAX_TENSORS);
  size_t cap = gp->n_initializer + gp->n_input;
  for (size_t i = 0; i < gp->n_node; i++) {
    if (gp->node[i]->n_input > XD_GRAPH_MAX_IO || gp->node[i]->n_output > XD_GRAPH_MAX_IO) {
      gfail(b->err, XD_EFORMAT, "more than %d inputs or outputs", XD_GRAPH_MAX_IO);
      return name_node(b->err, gp->node[i], i, XD_EFORMAT);
    }
    cap += gp->node[i]->n_output;
  }
  if (cap > XD_GRAPH_MAX_TENSORS) return gfail(b->err, XD_EFORMAT, "more than %d tensors", XD_GRAPH_MAX_TENSORS);
  b->cap_t = cap;
  g->t = xd_calloc(cap + 1, sizeof *g->t);
  g->nodes = xd_calloc(gp->n_node + 1, sizeof *g->nodes);
  g->in = xd_calloc(gp->n_input + 1, sizeof *g->in);
  g->out = xd_calloc(gp->n_output + 1, sizeof *g->out);
  if (!g->t || !g->nodes || !g->in || !g->out) return gfail(b->err, XD_ENOMEM, "out of memory");
  int rc;
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const Onnx__TensorProto *tp = gp->initializer[i];
    gt_t *t;
    char what[128];
    snprintf(what, sizeof what, "initializer '%.80s'", str(tp->name));
    if (!str(tp->name)[0]) return gfail(b->err, XD_EFORMAT, "initializer %zu has no name", i);
    if ((rc = add_tensor(b, tp->name, XD_GRAPH__T_INIT, &t)) != XD_OK) return rc;
    if ((rc = tensor_decode(tp, &t->init, &t->init_d, what, b->err)) != XD_OK) return rc;
  }
  for (size_t i = 0; i < gp->n_input; i++) {
    int dup = 0;
    for (size_t j = 0; j < gp->n_initializer && !dup; j++)
      dup = strcmp(str(gp->input[i]->name), str(gp->initializer[j]->name)) == 0;
    if (dup) continue; /* an initializer also listed as an input (older exporters) */
    if ((rc = graph_input(b, gp->input[i], i)) != XD_OK) return rc;
    g->in[g->n_in++] = (int32_t)(g->nt - 1);
  }
  if (g->n_in == 0) return gfail(b->err, XD_EFORMAT, "the graph has no input");
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *nd = gp->node[i];
    rc = strcmp(str(nd->op_type), "Constant") == 0 && !str(nd->domain)[0] ? constant_node(b, nd) : op_node(b, nd, i);
    if (rc != XD_OK) return name_node(b->err, nd, i, rc);
  }
  if ((rc = xd_graph__names_build(g, b->err)) != XD_OK) return rc;
  if ((rc = resolve_inputs(b, gp)) != XD_OK) return rc;
  if (gp->n_output == 0) return gfail(b->err, XD_EFORMAT, "the graph has no output");
  for (size_t i = 0; i < gp->n_output; i++) {
    int32_t id = xd_graph__lookup(g, str(gp->output[i]->name));
    if (id < 0)
      return gfail(b->err, XD_EFORMAT, "graph output '%.80s' is not computed by any node", str(gp->output[i]->name));
    g->out[g->n_out++] = id;
  }
  return xd_graph__finish(g, b->flags, b->err);
}

int xd_graph_from_onnx(const void *bytes, size_t len, xd_graph_t **out, xd_error_t *err) {
  return xd_graph__load(bytes, len, XD_GRAPH__CHECK_ROWS, out, err);
}

int xd_graph__load(const void *bytes, size_t len, int flags, xd_graph_t **out, xd_error_t *err) {
  *out = NULL;
  Onnx__ModelProto *m;
  int rc = xd_onnx__read(bytes, len, &m, err);
  if (rc != XD_OK) return rc;
  xd_graph_t *g = xd_calloc(1, sizeof *g);
  if (!g) {
    xd_onnx__release(m);
    return gfail(err, XD_ENOMEM, "out of memory");
  }
  build_t b = {.g = g, .err = err, .flags = flags};
  g->fold_budget = ((size_t)64 << 20) + 4 * len; /* folded constants: a few times what the file holds */
  rc = build(&b, m);
  xd_onnx__release(m);
  if (rc != XD_OK) {
    xd_graph_free(g);
    return rc;
  }
  *out = g;
  return XD_OK;
}

/* Dense chains keep the dense family (tabular speed); every other graph goes to the
 * graph engine. A graph the dense converter refused only for its input width is not a
 * graph model either: that error stands. */
int xd_onnx_import(const void *bytes, size_t len, size_t n_inputs, xd_layer_spec_t **layers, size_t *n_layers,
                   xd_graph_t **graph, xd_error_t *err) {
  *graph = NULL;
  int rc = xd_onnx_to_layers(bytes, len, n_inputs, layers, n_layers, err);
  if (rc != XD_EFORMAT) return rc;
  xd_error_t dense_err = *err, gerr;
  xd_error_clear(&gerr);
  rc = xd_graph_from_onnx(bytes, len, graph, &gerr);
  if (rc != XD_OK) {
    *err = gerr;
    return rc;
  }
  const xd_graph_info_t *in = xd_graph_input(*graph, 0);
  if (n_inputs > 0 && xd_graph_n_inputs(*graph) == 1 && in->rank == 2 && in->dims[1].size >= 0 &&
      (size_t)in->dims[1].size != n_inputs) {
    xd_graph_free(*graph);
    *graph = NULL;
    *err = dense_err;
    return XD_EFORMAT;
  }
  xd_error_clear(err);
  return XD_OK;
}
