/* onnx.c — ONNX ModelProto -> dense layer specs (see onnx.h for the accepted subset).
 *
 * Three steps. (1) A structural pre-scan of the protobuf wire format, driven by the
 * descriptors protobuf-c generated (it decodes nothing itself), bounds the nesting depth
 * and the number of messages: protobuf-c's unpacker recurses once per nesting level and
 * allocates a struct per message, so without it a small hostile file could exhaust the
 * stack or memory. (2) protobuf-c unpacks the model through xd_malloc. (3) The graph is
 * interpreted symbolically: each tensor is a constant, or an affine map A·h + c of the
 * current "base" h (the graph input, or the output of the last emitted layer), or a
 * partial match of the Erf form of GELU. Activations turn the pending map into a layer
 * and make its output the new base; a tensor computed from an older base is a branch
 * (a skip connection), which a chain of dense layers cannot express.
 */
#include "core/onnx.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "core/alloc.h"
#include "core/onnx_conv.h" /* includes onnx.pb-c.h, generated into $(BUILD)/gen by protoc-c */

#define MAX_DEPTH 32            /* protobuf nesting; a dense graph needs about 8 */
#define MAX_MESSAGES (1u << 18) /* protobuf messages in one file */
#define MAX_RANK XD_ONNX__MAX_RANK
#define MAX_IO 16    /* inputs or outputs of one node */
#define MAX_ATTRS 64 /* attributes of one node */
#define NONE XD_ONNX__NONE
#define fail xd_onnx__fail

typedef xd_onnx__value_t value_t;
typedef xd_onnx__conv_t conv_t;
typedef xd_onnx__names_t names_t;
#define V_UNUSABLE XD_ONNX__UNUSABLE
#define V_CONST XD_ONNX__CONST
#define V_DATA XD_ONNX__DATA

/* ---- protobuf: pre-scan and allocator --------------------------------------------- */

static int rd_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v) {
  uint64_t x = 0;
  for (unsigned s = 0; s < 64; s += 7) {
    if (*i >= len) return -1;
    uint8_t b = p[(*i)++];
    x |= (uint64_t)(b & 0x7f) << s;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

/* Walks one message's fields, recursing into the length-delimited fields that d says
 * are messages. Returns 0, -1 (malformed), -2 (too deep) or -3 (too many messages). */
static int scan(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *d, int depth, size_t *msgs) {
  if (depth > MAX_DEPTH) return -2;
  if (++*msgs > MAX_MESSAGES) return -3;
  size_t i = 0;
  while (i < len) {
    uint64_t key, v;
    if (rd_varint(p, len, &i, &key) != 0) return -1;
    switch (key & 7) {
    case 0:
      if (rd_varint(p, len, &i, &v) != 0) return -1;
      break;
    case 1:
      if (len - i < 8) return -1;
      i += 8;
      break;
    case 5:
      if (len - i < 4) return -1;
      i += 4;
      break;
    case 2: {
      if (rd_varint(p, len, &i, &v) != 0 || v > len - i) return -1;
      const ProtobufCFieldDescriptor *f =
          (key >> 3) <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
      if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
        int rc = scan(p + i, (size_t)v, f->descriptor, depth + 1, msgs);
        if (rc != 0) return rc;
      }
      i += (size_t)v;
      break;
    }
    default: return -1; /* groups (3, 4) are not used by onnx.proto; 6, 7 do not exist */
    }
  }
  return 0;
}

static void *pb_alloc(void *data, size_t n) {
  void *p = xd_malloc(n);
  if (!p) *(int *)data = 1;
  return p;
}

static void pb_free(void *data, void *p) {
  (void)data;
  xd_free(p);
}

/* ---- a name -> index table (open addressing, sized once) ---------------------------- */

static int names_init(names_t *t, size_t n) {
  t->cap = 16;
  while (t->cap < 2 * n) t->cap *= 2;
  t->key = xd_calloc(t->cap, sizeof *t->key);
  t->val = xd_calloc(t->cap, sizeof *t->val);
  return t->key && t->val ? 0 : -1;
}

static void names_deinit(names_t *t) {
  xd_free(t->key);
  xd_free(t->val);
}

/* The slot of key: its own, or the empty one where it would go. */
static size_t names_slot(const names_t *t, const char *key) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char *s = (const unsigned char *)key; *s; s++) h = (h ^ *s) * 1099511628211ull;
  size_t i = (size_t)h & (t->cap - 1);
  while (t->key[i] && strcmp(t->key[i], key) != 0) i = (i + 1) & (t->cap - 1);
  return i;
}

static size_t names_get(const names_t *t, const char *key) {
  size_t i = names_slot(t, key);
  return t->key[i] ? t->val[i] : NONE;
}

size_t xd_onnx__lookup(const conv_t *cv, const char *name) { return names_get(&cv->names, name); }

/* ---- errors and work memory ---------------------------------------------------------- */

static const char *str(const char *s) { return s ? s : ""; }

/* Sets the error, naming the node being converted; returns the code. */
int xd_onnx__fail(conv_t *cv, int code, const char *fmt, ...) {
  char msg[XD_ERROR_TEXT_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const Onnx__NodeProto *nd = cv->node;
  if (!nd)
    xd_error_set(cv->err, code, "onnx", "%s", msg);
  else if (nd->name && nd->name[0])
    xd_error_set(cv->err, code, "onnx", "node '%.80s' (%.40s): %s", nd->name, str(nd->op_type), msg);
  else
    xd_error_set(cv->err, code, "onnx", "node #%zu (%.40s): %s", cv->node_i, str(nd->op_type), msg);
  return cv->rc = code;
}

/* A zeroed work array of n doubles, charged to the budget. */
double *xd_onnx__work(conv_t *cv, size_t n) {
  if (n == 0 || n > cv->budget) {
    fail(cv, XD_EFORMAT, "the converted network would need more than %zu values of memory", cv->budget);
    return NULL;
  }
  cv->budget -= n;
  double *p = xd_calloc(n, sizeof *p);
  if (!p) fail(cv, XD_ENOMEM, "out of memory");
  return p;
}

static double *work_copy(conv_t *cv, const double *src, size_t n) {
  if (!src) return NULL;
  double *p = xd_onnx__work(cv, n);
  if (p) memcpy(p, src, n * sizeof *p);
  return p;
}

void xd_onnx__value_deinit(value_t *v) {
  xd_free(v->k);
  xd_free(v->A);
  xd_free(v->d);
  xd_free(v->c);
  v->k = v->A = v->d = v->c = NULL;
}

value_t xd_onnx__identity(size_t base, size_t width, size_t drank) {
  value_t v = {.kind = V_DATA, .base = base, .cols = width, .width = width, .drank = drank, .src = NONE, .x = NONE};
  return v;
}

/* ---- constants ------------------------------------------------------------------------- */

/* Little-endian loads: raw_data is little-endian whatever the host. */
static uint32_t le_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le_u64(const uint8_t *p) { return (uint64_t)le_u32(p) | (uint64_t)le_u32(p + 4) << 32; }

/* Decodes a TensorProto (float, double, int32 or int64; raw or typed) into v. */
int xd_onnx__tensor_decode(conv_t *cv, const Onnx__TensorProto *t, value_t *v) {
  const char *nm = str(t->name);
  if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
    return fail(cv, XD_EFORMAT, "tensor '%.80s' keeps its data in an external file, which is not supported", nm);
  if (t->segment) return fail(cv, XD_EFORMAT, "tensor '%.80s' is segmented, which is not supported", nm);
  if (t->n_dims > MAX_RANK)
    return fail(cv, XD_EFORMAT, "tensor '%.80s' has %zu dimensions (at most %d)", nm, t->n_dims, MAX_RANK);
  size_t n = 1;
  for (size_t i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 1 || (uint64_t)t->dims[i] > XD_ONNX_MAX_ELEMENTS || n * (size_t)t->dims[i] > XD_ONNX_MAX_ELEMENTS)
      return fail(cv, XD_EFORMAT, "tensor '%.80s' has an empty or too large shape (at most %u values)", nm,
                  XD_ONNX_MAX_ELEMENTS);
    n *= (size_t)t->dims[i];
    v->dims[i] = t->dims[i];
  }
  v->rank = t->n_dims;
  v->n = n;
  int type = t->has_data_type ? t->data_type : 0;
  size_t esize = type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32    ? 4
                 : type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE || type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? 8
                                                                                                                 : 0;
  if (!esize)
    return fail(cv, XD_EFORMAT, "tensor '%.80s' has data type %d (float, double, int32 or int64 only)", nm, type);
  size_t typed = type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT    ? t->n_float_data
                 : type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? t->n_double_data
                 : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32  ? t->n_int32_data
                                                                 : t->n_int64_data;
  int raw = t->has_raw_data && t->raw_data.len > 0;
  if (raw ? t->raw_data.len != n * esize : typed != n)
    return fail(cv, XD_EFORMAT, "tensor '%.80s' has %zu values for a shape of %zu", nm,
                raw ? t->raw_data.len / esize : typed, n);
  if (!(v->k = xd_onnx__work(cv, n))) return cv->rc;
  const uint8_t *r = t->raw_data.data;
  for (size_t i = 0; i < n; i++) {
    double x;
    switch (type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
      if (raw) {
        uint32_t u = le_u32(r + 4 * i);
        float f;
        memcpy(&f, &u, sizeof f);
        x = f;
      } else {
        x = t->float_data[i];
      }
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
      if (raw) {
        uint64_t u = le_u64(r + 8 * i);
        memcpy(&x, &u, sizeof x);
      } else {
        x = t->double_data[i];
      }
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: x = raw ? (double)(int32_t)le_u32(r + 4 * i) : t->int32_data[i]; break;
    default: x = raw ? (double)(int64_t)le_u64(r + 8 * i) : (double)t->int64_data[i]; break;
    }
    if (!isfinite(x)) return fail(cv, XD_EFORMAT, "tensor '%.80s' has a non-finite value at %zu", nm, i);
    v->k[i] = x;
  }
  v->decoded = 1;
  return XD_OK;
}

/* ---- layers ------------------------------------------------------------------------------ */

/* Moves (no uses left, not pinned) or copies value from into *out, a new value of the
 * same content. */
int xd_onnx__take(conv_t *cv, value_t *from, value_t *out) {
  if (from->moved) return fail(cv, XD_EINTERNAL, "internal error: a consumed tensor was used again");
  *out = xd_onnx__identity(from->base, from->width, from->drank);
  out->cols = from->cols;
  out->final = from->final;
  size_t na = xd_mul_size(from->width, from->cols);
  if (from->uses == 0 && !from->pinned) {
    out->A = from->A;
    out->d = from->d;
    out->c = from->c;
    from->A = from->d = from->c = NULL;
    from->moved = 1;
    return XD_OK;
  }
  if ((from->A && !(out->A = work_copy(cv, from->A, na))) ||
      (from->d && !(out->d = work_copy(cv, from->d, from->width))) ||
      (from->c && !(out->c = work_copy(cv, from->c, from->width)))) {
    xd_onnx__value_deinit(out);
    return cv->rc;
  }
  return XD_OK;
}

static int require_current(conv_t *cv, const value_t *v) {
  if (v->base != cv->n_layers)
    return fail(cv, XD_EFORMAT,
                "uses a tensor computed before layer %zu: branches and skip connections are not supported",
                cv->n_layers);
  if (v->drank != 2) return fail(cv, XD_EFORMAT, "expects a 2-D tensor (batch, features); add a Flatten first");
  return XD_OK;
}

/* Turns the pending map of v (owned) into layer n_layers+1 with activation act; v
 * becomes the identity on the new layer's output. */
int xd_onnx__emit_layer(conv_t *cv, value_t *v, xd_act_t act) {
  int rc = require_current(cv, v);
  if (rc != XD_OK) return rc;
  if (cv->n_layers == XD_ONNX_MAX_LAYERS) return fail(cv, XD_EFORMAT, "more than %d layers", XD_ONNX_MAX_LAYERS);
  if (v->width > XD_ONNX_MAX_WIDTH)
    return fail(cv, XD_EFORMAT, "a layer of %zu units (at most %d)", v->width, XD_ONNX_MAX_WIDTH);
  double *W = v->A, *b = v->c;
  if (!W) { /* diag(d): an elementwise map applied right before an activation */
    if (!(W = xd_onnx__work(cv, xd_mul_size(v->width, v->width)))) return cv->rc;
    for (size_t i = 0; i < v->width; i++) W[i * v->width + i] = v->d ? v->d[i] : 1.0;
  }
  if (!b && !(b = xd_onnx__work(cv, v->width))) {
    if (W != v->A) xd_free(W);
    return cv->rc;
  }
  xd_layer_spec_t *L = &cv->layers[cv->n_layers++];
  *L = (xd_layer_spec_t){.in = v->cols, .out = v->width, .weights = W, .bias = b, .act = act};
  if (W != v->A) xd_free(v->A);
  xd_free(v->d);
  v->A = v->d = v->c = NULL;
  cv->base_width = v->width;
  value_t id = xd_onnx__identity(cv->n_layers, v->width, 2);
  id.final = act == XD_ACT_SOFTMAX;
  *v = id;
  return XD_OK;
}

/* v (owned) -> W·v + b with W (out, v->width) and b (out) or NULL. A pending full
 * matrix becomes an identity layer first, so that each Gemm stays one layer. */
int xd_onnx__affine(conv_t *cv, value_t *v, const double *W, const double *b, size_t out) {
  int rc = require_current(cv, v);
  if (rc != XD_OK) return rc;
  if (v->A && (rc = xd_onnx__emit_layer(cv, v, XD_ACT_IDENTITY)) != XD_OK) return rc;
  size_t w = v->width;
  double *A = xd_onnx__work(cv, xd_mul_size(out, w)), *c = A ? xd_onnx__work(cv, out) : NULL;
  if (!c) {
    xd_free(A);
    return cv->rc;
  }
  for (size_t o = 0; o < out; o++) {
    double s = b ? b[o] : 0;
    for (size_t i = 0; i < w; i++) {
      A[o * w + i] = W[o * w + i] * (v->d ? v->d[i] : 1.0);
      if (v->c) s += W[o * w + i] * v->c[i];
    }
    c[o] = s;
  }
  xd_free(v->d);
  xd_free(v->c);
  v->A = A;
  v->d = NULL;
  v->c = c;
  v->width = out;
  return XD_OK;
}

/* Rows of v times s (ns values: 1 or width), then c += add (na values, 0 for none). */
int xd_onnx__elementwise(conv_t *cv, value_t *v, const double *s, size_t ns, const double *add, size_t na) {
  if (ns) {
    if (!v->A && !v->d) {
      if (!(v->d = xd_onnx__work(cv, v->width))) return cv->rc;
      for (size_t i = 0; i < v->width; i++) v->d[i] = 1;
    }
    for (size_t i = 0; i < v->width; i++) {
      double si = s[ns == 1 ? 0 : i];
      if (v->A)
        for (size_t j = 0; j < v->cols; j++) v->A[i * v->cols + j] *= si;
      else
        v->d[i] *= si;
      if (v->c) v->c[i] *= si;
    }
  }
  if (na) {
    if (!v->c && !(v->c = xd_onnx__work(cv, v->width))) return cv->rc;
    for (size_t i = 0; i < v->width; i++) v->c[i] += add[na == 1 ? 0 : i];
  }
  return XD_OK;
}

/* ---- the graph ---------------------------------------------------------------------------- */

static int define(conv_t *cv, const char *name, value_t *v) {
  if (!name || !name[0]) {
    xd_onnx__value_deinit(v);
    return XD_OK;
  }
  size_t i = names_slot(&cv->names, name);
  if (cv->names.key[i]) {
    xd_onnx__value_deinit(v);
    return fail(cv, XD_EFORMAT, "tensor '%.80s' is defined twice", name);
  }
  size_t u = names_get(&cv->uses, name);
  v->uses = u == NONE ? 0 : u;
  cv->names.key[i] = name;
  cv->names.val[i] = cv->nv;
  cv->v[cv->nv++] = *v;
  return XD_OK;
}

/* Marks the nodes that the graph output depends on and counts the uses of every tensor;
 * dead nodes are skipped, so that an unused side computation cannot break the chain. */
static int liveness(conv_t *cv, const Onnx__GraphProto *g, unsigned char *live) {
  names_t *u = &cv->uses;
  size_t i = names_slot(u, g->output[0]->name);
  u->key[i] = g->output[0]->name;
  u->val[i] = 1;
  for (size_t n = g->n_node; n-- > 0;) {
    const Onnx__NodeProto *nd = g->node[n];
    for (size_t o = 0; o < nd->n_output && !live[n]; o++)
      live[n] = nd->output[o][0] && names_get(u, nd->output[o]) != NONE;
    if (!live[n]) continue;
    for (size_t k = 0; k < nd->n_input; k++) {
      if (!nd->input[k][0]) continue;
      size_t s = names_slot(u, nd->input[k]);
      if (!u->key[s]) u->key[s] = nd->input[k];
      u->val[s]++;
    }
  }
  return XD_OK;
}

static int graph_input(conv_t *cv, const Onnx__GraphProto *g, size_t n_inputs) {
  const Onnx__ValueInfoProto *in = NULL;
  for (size_t i = 0; i < g->n_input; i++) {
    if (names_get(&cv->names, str(g->input[i]->name)) != NONE) continue; /* an initializer listed as input */
    if (in)
      return fail(cv, XD_EFORMAT, "the graph has more than one input ('%.80s', '%.80s'); a dense network has one",
                  str(in->name), str(g->input[i]->name));
    in = g->input[i];
  }
  if (!in || !in->name || !in->name[0]) return fail(cv, XD_EFORMAT, "the graph has no input");
  const Onnx__TypeProto *tp = in->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type->shape)
    return fail(cv, XD_EFORMAT, "graph input '%.80s' must be a tensor with a shape", in->name);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
      tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
    return fail(cv, XD_EFORMAT, "graph input '%.80s' has element type %d; float or double only", in->name,
                tt->elem_type);
  size_t rank = tt->shape->n_dim, width = 1;
  if (rank < 2 || rank > MAX_RANK)
    return fail(cv, XD_EFORMAT, "graph input '%.80s' has %zu dimensions; expected (batch, features)", in->name, rank);
  for (size_t j = 1; j < rank; j++) {
    const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[j];
    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
      if (d->dim_value < 1 || d->dim_value > XD_ONNX_MAX_WIDTH || width * (size_t)d->dim_value > XD_ONNX_MAX_WIDTH)
        return fail(cv, XD_EFORMAT, "graph input '%.80s' is wider than %d values per row", in->name, XD_ONNX_MAX_WIDTH);
      width *= (size_t)d->dim_value;
    } else if (rank == 2 && n_inputs > 0) {
      width = n_inputs; /* symbolic width: the caller's */
    } else {
      return fail(cv, XD_EFORMAT, "graph input '%.80s' has a symbolic dimension %zu; only the batch may be symbolic",
                  in->name, j);
    }
  }
  if (n_inputs > 0 && width != n_inputs)
    return fail(cv, XD_EFORMAT,
                "graph input '%.80s' has %zu columns, expected %zu (what layer 1 sees: the numeric features plus the "
                "one-hot categories)",
                in->name, width, n_inputs);
  value_t v = xd_onnx__identity(0, width, rank);
  cv->base_width = width;
  return define(cv, in->name, &v);
}

static int opset_of(conv_t *cv, const Onnx__ModelProto *m) {
  cv->opset = -1;
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const char *d = str(m->opset_import[i]->domain);
    if ((!d[0] || strcmp(d, "ai.onnx") == 0) && m->opset_import[i]->has_version)
      cv->opset = (long)m->opset_import[i]->version;
  }
  if (cv->opset < 0) return fail(cv, XD_EFORMAT, "the model imports no opset of the default domain");
  if (cv->opset < XD_ONNX_OPSET_MIN || cv->opset > XD_ONNX_OPSET_MAX)
    return fail(cv, XD_EFORMAT, "opset %ld of the default domain is not supported (%d to %d)", cv->opset,
                XD_ONNX_OPSET_MIN, XD_ONNX_OPSET_MAX);
  return XD_OK;
}

static int convert(conv_t *cv, const Onnx__ModelProto *m, size_t n_inputs) {
  const Onnx__GraphProto *g = m->graph;
  int rc = opset_of(cv, m);
  if (rc != XD_OK) return rc;
  if (!g) return fail(cv, XD_EFORMAT, "the model has no graph");
  if (g->n_node > XD_ONNX_MAX_NODES || g->n_initializer > XD_ONNX_MAX_INITIALIZERS ||
      g->n_input > XD_ONNX_MAX_INITIALIZERS)
    return fail(cv, XD_EFORMAT, "the graph has more than %d nodes, initializers or inputs", XD_ONNX_MAX_NODES);
  if (g->n_output != 1 || !g->output[0]->name || !g->output[0]->name[0])
    return fail(cv, XD_EFORMAT, "the graph has %zu outputs; a dense network has one", g->n_output);
  size_t entries = g->n_initializer + g->n_input + 1;
  for (size_t n = 0; n < g->n_node; n++) {
    const Onnx__NodeProto *nd = g->node[n];
    cv->node = nd;
    cv->node_i = n;
    if (nd->n_input > MAX_IO || nd->n_output > MAX_IO || nd->n_attribute > MAX_ATTRS)
      return fail(cv, XD_EFORMAT, "more than %d inputs, %d outputs or %d attributes", MAX_IO, MAX_IO, MAX_ATTRS);
    entries += nd->n_output + nd->n_input;
  }
  cv->node = NULL;
  cv->cap = entries;
  unsigned char *live = xd_calloc(g->n_node + 1, 1);
  cv->v = xd_calloc(entries, sizeof *cv->v);
  cv->layers = xd_calloc(XD_ONNX_MAX_LAYERS, sizeof *cv->layers);
  if (!live || !cv->v || !cv->layers || names_init(&cv->names, entries) != 0 || names_init(&cv->uses, entries) != 0) {
    rc = fail(cv, XD_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = liveness(cv, g, live)) != XD_OK) goto done;
  for (size_t i = 0; i < g->n_initializer; i++) {
    const Onnx__TensorProto *t = g->initializer[i];
    value_t v = {.kind = V_CONST, .tp = t, .src = NONE, .x = NONE};
    if ((rc = define(cv, str(t->name), &v)) != XD_OK) goto done;
  }
  /* Work arrays, counted cumulatively: a few times the values the file really holds (not
   * what its shapes claim), so that memory stays proportional to the file whatever it
   * declares. A legitimate conversion charges about 3 to 6 times the weights (decoded
   * tensor, Gemm's matrix, the pending map, copies of a tensor GELU reads twice). */
  cv->budget = (size_t)1 << 22;
  for (size_t i = 0; i < g->n_initializer; i++) {
    const Onnx__TensorProto *t = g->initializer[i];
    cv->budget += 8 * (t->raw_data.len / 4 + t->n_float_data + t->n_double_data + t->n_int32_data + t->n_int64_data);
  }
  if ((rc = graph_input(cv, g, n_inputs)) != XD_OK) goto done;
  for (size_t n = 0; n < g->n_node; n++) {
    if (!live[n]) continue;
    cv->node = g->node[n];
    cv->node_i = n;
    const Onnx__NodeProto *nd = g->node[n];
    value_t res = {.src = NONE, .x = NONE};
    if ((rc = xd_onnx__node(cv, nd, &res)) != XD_OK) {
      xd_onnx__value_deinit(&res);
      goto done;
    }
    if ((rc = define(cv, nd->n_output ? nd->output[0] : NULL, &res)) != XD_OK) goto done;
    for (size_t o = 1; o < nd->n_output; o++) {
      value_t unusable = {.kind = V_UNUSABLE, .src = NONE, .x = NONE};
      if ((rc = define(cv, nd->output[o], &unusable)) != XD_OK) goto done;
    }
  }
  cv->node = NULL;
  size_t out = names_get(&cv->names, g->output[0]->name);
  if (out == NONE) {
    rc = fail(cv, XD_EFORMAT, "graph output '%.80s' is not computed by any node", g->output[0]->name);
    goto done;
  }
  if ((rc = xd_onnx__as_data(cv, out)) != XD_OK) goto done;
  value_t *v = &cv->v[out];
  if ((rc = require_current(cv, v)) != XD_OK) goto done;
  if ((v->A || v->d || v->c) && (rc = xd_onnx__emit_layer(cv, v, XD_ACT_IDENTITY)) != XD_OK) goto done;
  if (cv->n_layers == 0) rc = fail(cv, XD_EFORMAT, "the graph computes no layer");
done:
  xd_free(live);
  return rc;
}

/* Pre-scan and unpack (see the top of this file); shared with the graph importer. */
int xd_onnx__read(const void *bytes, size_t len, Onnx__ModelProto **out, xd_error_t *err) {
  conv_t cv = {.err = err};
  *out = NULL;
  size_t msgs = 0;
  int rc = scan(bytes, len, &onnx__model_proto__descriptor, 0, &msgs);
  if (rc == -2)
    return fail(&cv, XD_EFORMAT, "not a valid ONNX model: protobuf messages nested deeper than %d", MAX_DEPTH);
  if (rc == -3) return fail(&cv, XD_EFORMAT, "not a valid ONNX model: more than %u protobuf messages", MAX_MESSAGES);
  if (rc != 0 || len == 0)
    return fail(&cv, XD_EFORMAT, "not a valid ONNX model (truncated or corrupted protobuf, %zu bytes)", len);
  int nomem = 0;
  ProtobufCAllocator alloc = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &nomem};
  Onnx__ModelProto *m = onnx__model_proto__unpack(&alloc, len, bytes);
  if (!m) {
    if (nomem) return fail(&cv, XD_ENOMEM, "out of memory reading the ONNX model");
    return fail(&cv, XD_EFORMAT, "not a valid ONNX model (truncated or corrupted protobuf, %zu bytes)", len);
  }
  *out = m;
  return XD_OK;
}

void xd_onnx__release(Onnx__ModelProto *m) {
  int nomem = 0;
  ProtobufCAllocator alloc = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &nomem};
  if (m) onnx__model_proto__free_unpacked(m, &alloc);
}

int xd_onnx_to_layers(const void *bytes, size_t len, size_t n_inputs, xd_layer_spec_t **layers, size_t *n_layers,
                      xd_error_t *err) {
  *layers = NULL;
  *n_layers = 0;
  conv_t cv = {.err = err};
  Onnx__ModelProto *m;
  int rc = xd_onnx__read(bytes, len, &m, err);
  if (rc != XD_OK) return rc;
  rc = convert(&cv, m, n_inputs);
  for (size_t i = 0; i < cv.nv; i++) xd_onnx__value_deinit(&cv.v[i]);
  xd_free(cv.v);
  names_deinit(&cv.names);
  names_deinit(&cv.uses);
  xd_onnx__release(m);
  if (rc != XD_OK) {
    xd_onnx_layers_free(cv.layers, cv.n_layers);
    return rc;
  }
  *layers = cv.layers;
  *n_layers = cv.n_layers;
  return XD_OK;
}

void xd_onnx_layers_free(xd_layer_spec_t *layers, size_t n_layers) {
  if (!layers) return;
  for (size_t l = 0; l < n_layers; l++) {
    xd_free(layers[l].weights);
    xd_free(layers[l].bias);
  }
  xd_free(layers);
}
