/* tensor.c — element types and small helpers of xd_tensor_t (see tensor.h). */
#include "core/tensor.h"

#include <stdio.h>
#include <string.h>

size_t xd_dtype_size(xd_dtype_t t) { return t == XD_DT_F32 ? 4 : t == XD_DT_BOOL ? 1 : 8; }

const char *xd_dtype_name(xd_dtype_t t) {
  static const char *names[] = {"float32", "float64", "int64", "bool"};
  return (unsigned)t < 4 ? names[t] : "?";
}

int xd_dtype_is_float(xd_dtype_t t) { return t == XD_DT_F32 || t == XD_DT_F64; }

size_t xd_tensor_numel(const xd_tensor_t *t) {
  size_t n = 1;
  for (size_t i = 0; i < t->rank; i++) n *= (size_t)t->dims[i];
  return n;
}

size_t xd_tensor_bytes(const xd_tensor_t *t) { return xd_tensor_numel(t) * xd_dtype_size(t->dtype); }

size_t xd_tensor_stride(const xd_tensor_t *t, size_t axis) {
  size_t s = 1;
  for (size_t i = axis + 1; i < t->rank; i++) s *= (size_t)t->dims[i];
  return s;
}

int xd_tensor_same_shape(const xd_tensor_t *a, const xd_tensor_t *b) {
  if (a->rank != b->rank) return 0;
  for (size_t i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  return 1;
}

double xd_tensor_get_d(const xd_tensor_t *t, size_t i) {
  switch (t->dtype) {
  case XD_DT_F32: return ((const float *)t->data)[i];
  case XD_DT_F64: return ((const double *)t->data)[i];
  case XD_DT_I64: return (double)((const int64_t *)t->data)[i];
  default: return ((const uint8_t *)t->data)[i] != 0;
  }
}

int64_t xd_tensor_get_i(const xd_tensor_t *t, size_t i) {
  switch (t->dtype) {
  case XD_DT_I64: return ((const int64_t *)t->data)[i];
  case XD_DT_BOOL: return ((const uint8_t *)t->data)[i] != 0;
  default: {
    double v = xd_tensor_get_d(t, i);
    /* saturate: a float shape value out of int64 range is clamped, never UB */
    return v != v ? 0 : v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)v;
  }
  }
}

void xd_tensor_set_d(xd_tensor_t *t, size_t i, double v) { xd_tensor_convert(t->dtype, (char *)t->data + i * xd_dtype_size(t->dtype), XD_DT_F64, &v, 1); }

#define CONVERT_FROM(S)                                                              \
  do {                                                                               \
    const S *sp = src;                                                                \
    switch (d) {                                                                     \
    case XD_DT_F32:                                                                  \
      for (size_t i = 0; i < n; i++) ((float *)dst)[i] = (float)sp[i];                \
      break;                                                                         \
    case XD_DT_F64:                                                                  \
      for (size_t i = 0; i < n; i++) ((double *)dst)[i] = (double)sp[i];              \
      break;                                                                         \
    case XD_DT_I64:                                                                  \
      for (size_t i = 0; i < n; i++) {                                               \
        double v = (double)sp[i];                                                     \
        ((int64_t *)dst)[i] = v != v ? 0 : v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)sp[i]; \
      }                                                                              \
      break;                                                                         \
    default:                                                                         \
      for (size_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = sp[i] != 0;                \
      break;                                                                         \
    }                                                                                \
  } while (0)

void xd_tensor_convert(xd_dtype_t d, void *dst, xd_dtype_t s, const void *src, size_t n) {
  if (d == s) {
    memmove(dst, src, n * xd_dtype_size(d));
    return;
  }
  switch (s) {
  case XD_DT_F32: CONVERT_FROM(float); break;
  case XD_DT_F64: CONVERT_FROM(double); break;
  case XD_DT_I64: CONVERT_FROM(int64_t); break;
  default: CONVERT_FROM(uint8_t); break;
  }
}

void xd_tensor_shape_str(const xd_tensor_t *t, char *buf, size_t cap) {
  size_t o = 0;
  if (!cap) return;
  buf[0] = 0;
  o += (size_t)snprintf(buf + o, o < cap ? cap - o : 0, "[");
  for (size_t i = 0; i < t->rank && o < cap; i++)
    o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
  if (o < cap) snprintf(buf + o, cap - o, "]");
}
