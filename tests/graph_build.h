/* graph_build.h — builds small ONNX models in C (protobuf-c, the generated onnx.pb-c.h)
 * for the graph engine's tests and the fuzz corpus. Header-only, tests only.
 *
 *   gb_t b; gb_init(&b, 13);
 *   gb_input(&b, "x", GB_FLOAT, 3, (int64_t[]){-1, 3, 4});   -1: symbolic ("N" first, then "S")
 *   gb_init_f(&b, "w", 1, (int64_t[]){4}, w);
 *   Onnx__NodeProto *n = gb_node(&b, "Mul", "x,w", "y"); gb_attr_i(&b, n, "axis", 1);
 *   gb_output(&b, "y");
 *   size_t len; uint8_t *bytes = gb_pack(&b, &len); ... free(bytes); gb_free(&b);
 * Everything is calloc'd and tracked by b; gb_free releases it.
 */
#ifndef XD_TESTS_GRAPH_BUILD_H
#define XD_TESTS_GRAPH_BUILD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

#define GB_FLOAT 1
#define GB_INT64 7
#define GB_BOOL 9
#define GB_MAX 256

typedef struct gb {
  Onnx__ModelProto m;
  Onnx__GraphProto g;
  Onnx__OperatorSetIdProto ops, *opsp;
  Onnx__NodeProto *nodes[GB_MAX];
  Onnx__TensorProto *inits[GB_MAX];
  Onnx__ValueInfoProto *ins[16], *outs[16];
  void *mem[8 * GB_MAX];
  size_t nmem;
} gb_t;

static __attribute__((unused)) void *gb_mem(gb_t *b, size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (b->nmem < sizeof b->mem / sizeof *b->mem) b->mem[b->nmem++] = p;
  return p;
}

static __attribute__((unused)) char *gb_str(gb_t *b, const char *s) {
  char *p = gb_mem(b, strlen(s) + 1);
  memcpy(p, s, strlen(s) + 1);
  return p;
}

static __attribute__((unused)) void gb_init(gb_t *b, long opset) {
  memset(b, 0, sizeof *b);
  onnx__model_proto__init(&b->m);
  onnx__graph_proto__init(&b->g);
  onnx__operator_set_id_proto__init(&b->ops);
  b->ops.has_version = 1;
  b->ops.version = opset;
  b->ops.domain = "";
  b->opsp = &b->ops;
  b->m.n_opset_import = 1;
  b->m.opset_import = &b->opsp;
  b->m.has_ir_version = 1;
  b->m.ir_version = 8;
  b->m.graph = &b->g;
  b->g.name = "g";
  b->g.node = b->nodes;
  b->g.initializer = b->inits;
  b->g.input = b->ins;
  b->g.output = b->outs;
}

static __attribute__((unused)) Onnx__ValueInfoProto *gb_value(gb_t *b, const char *name, int elem, size_t rank, const int64_t *dims) {
  Onnx__ValueInfoProto *v = gb_mem(b, sizeof *v);
  onnx__value_info_proto__init(v);
  v->name = gb_str(b, name);
  Onnx__TypeProto *t = gb_mem(b, sizeof *t);
  onnx__type_proto__init(t);
  Onnx__TypeProto__Tensor *tt = gb_mem(b, sizeof *tt);
  onnx__type_proto__tensor__init(tt);
  tt->has_elem_type = 1;
  tt->elem_type = elem;
  t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  t->tensor_type = tt;
  v->type = t;
  if (dims) {
    Onnx__TensorShapeProto *s = gb_mem(b, sizeof *s);
    onnx__tensor_shape_proto__init(s);
    s->n_dim = rank;
    s->dim = gb_mem(b, (rank + 1) * sizeof *s->dim);
    for (size_t d = 0; d < rank; d++) {
      Onnx__TensorShapeProto__Dimension *x = gb_mem(b, sizeof *x);
      onnx__tensor_shape_proto__dimension__init(x);
      if (dims[d] >= 0) {
        x->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        x->dim_value = dims[d];
      } else {
        x->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        x->dim_param = d == 0 ? "N" : "S";
      }
      s->dim[d] = x;
    }
    tt->shape = s;
  }
  return v;
}

static __attribute__((unused)) void gb_input(gb_t *b, const char *name, int elem, size_t rank, const int64_t *dims) {
  b->ins[b->g.n_input++] = gb_value(b, name, elem, rank, dims);
}

static __attribute__((unused)) void gb_output(gb_t *b, const char *name) { b->outs[b->g.n_output++] = gb_value(b, name, GB_FLOAT, 0, NULL); }

static __attribute__((unused)) Onnx__TensorProto *gb_tensor(gb_t *b, const char *name, int type, size_t rank, const int64_t *dims,
                                    const void *vals) {
  Onnx__TensorProto *t = gb_mem(b, sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = gb_str(b, name);
  t->has_data_type = 1;
  t->data_type = type;
  t->n_dims = rank;
  t->dims = gb_mem(b, (rank + 1) * sizeof(int64_t));
  size_t n = 1;
  for (size_t d = 0; d < rank; d++) {
    t->dims[d] = dims[d];
    n *= (size_t)(dims[d] > 0 ? dims[d] : 0);
  }
  if (type == GB_FLOAT) {
    t->n_float_data = n;
    t->float_data = gb_mem(b, n * sizeof(float));
    if (vals) memcpy(t->float_data, vals, n * sizeof(float));
  } else {
    t->n_int64_data = n;
    t->int64_data = gb_mem(b, n * sizeof(int64_t));
    if (vals) memcpy(t->int64_data, vals, n * sizeof(int64_t));
  }
  return t;
}

static __attribute__((unused)) void gb_init_f(gb_t *b, const char *name, size_t rank, const int64_t *dims, const float *v) {
  b->inits[b->g.n_initializer++] = gb_tensor(b, name, GB_FLOAT, rank, dims, v);
}

static __attribute__((unused)) void gb_init_i(gb_t *b, const char *name, size_t rank, const int64_t *dims, const int64_t *v) {
  b->inits[b->g.n_initializer++] = gb_tensor(b, name, GB_INT64, rank, dims, v);
}

/* Splits "a,b,,c" into names ("" for an absent optional input). */
static __attribute__((unused)) char **gb_names(gb_t *b, const char *csv, size_t *n) {
  *n = 0;
  if (!csv) return NULL;
  size_t cnt = 1;
  for (const char *p = csv; *p; p++) cnt += *p == ',';
  char **v = gb_mem(b, (cnt + 1) * sizeof *v);
  const char *s = csv;
  for (size_t i = 0; i < cnt; i++) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    v[i] = gb_mem(b, len + 1);
    memcpy(v[i], s, len);
    s = e ? e + 1 : s + len;
  }
  *n = cnt;
  return v;
}

static __attribute__((unused)) Onnx__NodeProto *gb_node(gb_t *b, const char *op, const char *ins, const char *outs) {
  Onnx__NodeProto *n = gb_mem(b, sizeof *n);
  onnx__node_proto__init(n);
  n->op_type = gb_str(b, op);
  n->name = gb_str(b, op);
  n->input = gb_names(b, ins, &n->n_input);
  n->output = gb_names(b, outs, &n->n_output);
  n->attribute = gb_mem(b, 16 * sizeof *n->attribute);
  b->nodes[b->g.n_node++] = n;
  return n;
}

static __attribute__((unused)) Onnx__AttributeProto *gb_attr(gb_t *b, Onnx__NodeProto *n, const char *name, int type) {
  Onnx__AttributeProto *a = gb_mem(b, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = gb_str(b, name);
  a->has_type = 1;
  a->type = type;
  n->attribute[n->n_attribute++] = a;
  return a;
}

static __attribute__((unused)) void gb_attr_i(gb_t *b, Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *a = gb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = 1;
  a->i = v;
}

static __attribute__((unused)) void gb_attr_f(gb_t *b, Onnx__NodeProto *n, const char *name, float v) {
  Onnx__AttributeProto *a = gb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  a->has_f = 1;
  a->f = v;
}

static __attribute__((unused)) void gb_attr_ints(gb_t *b, Onnx__NodeProto *n, const char *name, size_t k, const int64_t *v) {
  Onnx__AttributeProto *a = gb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = k;
  a->ints = gb_mem(b, (k + 1) * sizeof *a->ints);
  memcpy(a->ints, v, k * sizeof *v);
}

static __attribute__((unused)) void gb_attr_s(gb_t *b, Onnx__NodeProto *n, const char *name, const char *s) {
  Onnx__AttributeProto *a = gb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  a->has_s = 1;
  a->s.len = strlen(s);
  a->s.data = (uint8_t *)gb_str(b, s);
}

static __attribute__((unused)) void gb_attr_t(gb_t *b, Onnx__NodeProto *n, const char *name, int type, size_t rank, const int64_t *dims,
                      const void *vals) {
  Onnx__AttributeProto *a = gb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
  a->t = gb_tensor(b, "", type, rank, dims, vals);
}

static __attribute__((unused)) uint8_t *gb_pack(gb_t *b, size_t *len) {
  *len = onnx__model_proto__get_packed_size(&b->m);
  uint8_t *p = malloc(*len ? *len : 1);
  onnx__model_proto__pack(&b->m, p);
  return p;
}

static __attribute__((unused)) void gb_free(gb_t *b) {
  for (size_t i = 0; i < b->nmem; i++) free(b->mem[i]);
  b->nmem = 0;
}

#endif
