/* tensor.h — the value type of the graph engine: a dense, row-major array with a dtype
 * and a shape of at most XD_TENSOR_MAX_RANK dimensions.
 *
 * A tensor is a plain struct the caller owns; it never owns its data (the graph's arena,
 * an initializer or the caller's buffer does). Four element types: float32 (the
 * prediction path), float64 (the gradient path: the same graph run in double), int64
 * (ids, shapes, indices) and bool (masks, one byte per element, 0 or 1).
 * Any thread; pure functions.
 */
#ifndef XD_TENSOR_H
#define XD_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define XD_TENSOR_MAX_RANK 8

typedef enum xd_dtype { XD_DT_F32 = 0, XD_DT_F64 = 1, XD_DT_I64 = 2, XD_DT_BOOL = 3 } xd_dtype_t;

typedef struct xd_tensor {
  xd_dtype_t dtype;
  size_t rank;                      /* 0 (a scalar) .. XD_TENSOR_MAX_RANK */
  int64_t dims[XD_TENSOR_MAX_RANK]; /* each >= 0 */
  void *data;                       /* numel elements of dtype, or NULL (shape only) */
} xd_tensor_t;

/* Bytes of one element (4, 8, 8, 1). */
size_t xd_dtype_size(xd_dtype_t t);
/* "float32", "float64", "int64", "bool". */
const char *xd_dtype_name(xd_dtype_t t);
/* 1 for the float types. */
int xd_dtype_is_float(xd_dtype_t t);

/* Product of the dims (1 for a scalar). Shapes are bounded where they are made, so this
 * cannot overflow for a tensor that passed shape inference. */
size_t xd_tensor_numel(const xd_tensor_t *t);
/* numel times the element size. */
size_t xd_tensor_bytes(const xd_tensor_t *t);
/* Elements after axis `axis` (the stride of that axis). */
size_t xd_tensor_stride(const xd_tensor_t *t, size_t axis);
/* 1 when both shapes are equal (rank and dims). */
int xd_tensor_same_shape(const xd_tensor_t *a, const xd_tensor_t *b);
/* Element i as a double / as an int64 (any dtype). */
double xd_tensor_get_d(const xd_tensor_t *t, size_t i);
int64_t xd_tensor_get_i(const xd_tensor_t *t, size_t i);
/* Stores v at element i, converted to t's dtype. */
void xd_tensor_set_d(xd_tensor_t *t, size_t i, double v);
/* Converts n elements from src (dtype s) into dst (dtype d); bool is v != 0, float to
 * int truncates toward zero (ONNX Cast). */
void xd_tensor_convert(xd_dtype_t d, void *dst, xd_dtype_t s, const void *src, size_t n);
/* Writes "[2, 3, 4]" into buf (always terminated). */
void xd_tensor_shape_str(const xd_tensor_t *t, char *buf, size_t cap);

#endif
