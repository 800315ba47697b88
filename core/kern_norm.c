/* kern_norm.c — LayerNormalization, BatchNormalization (inference) and Softmax /
 * LogSoftmax over one axis, forward and backward.
 *
 * Statistics are accumulated in double in both types (a float sum over a long row loses
 * digits the reference frameworks keep). Softmax subtracts the row maximum first, so
 * exp never overflows; the float forward takes its exponentials with core/vmath.h. The float and double kernels come from one body,
 * core/kern_norm.inc, included twice.
 */
#include "core/kern.h"

#include <math.h>

#include "core/hotloop.h"
#include "core/vmath.h"

#define T float
#define F(name) name##_f
#define EXPT expf
#define VEXP xd_vexp_f /* the float forward's exponentials, vectorized (core/vmath.h) */
#include "core/kern_norm.inc"
#undef T
#undef F
#undef EXPT
#undef VEXP

#define T double
#define F(name) name##_d
#define EXPT exp
#include "core/kern_norm.inc"
#undef T
#undef F
#undef EXPT
