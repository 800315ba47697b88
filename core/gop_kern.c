/* gop_kern.c — operator-table rows over the heavy kernels of core/kern.h: Conv, pools,
 * MatMul, Gemm, BatchNormalization, LayerNormalization, Softmax, LogSoftmax, GRU, LSTM.
 * See core/gop.h for the contract of a row. */
#include "core/gop.h"

const xd_gop_t xd_gop_kern_rows[] = {
    {.name = NULL},
};
