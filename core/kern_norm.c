/* kern_norm.c — LayerNormalization, BatchNormalization (inference) and Softmax /
 * LogSoftmax over one axis, forward and backward.
 *
 * Statistics are accumulated in double in both types (a float sum over a long row loses
 * digits the reference frameworks keep). Softmax subtracts the row maximum first, so
 * exp never overflows. The float and double kernels come from one body,
 * core/kern_norm.inc, included twice.
 */
#include "core/kern.h"

#include <math.h>

#define T float
#define F(name) name##_f
#include "core/kern_norm.inc"
#undef T
#undef F

#define T double
#define F(name) name##_d
#include "core/kern_norm.inc"
#undef T
#undef F
