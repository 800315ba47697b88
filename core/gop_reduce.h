/* gop_reduce.h — what the graph's load-time rewrites may ask of a reduction node
 * (core/gop_reduce.c keeps its parsed attributes private). Internal to core/. */
#ifndef XD_GOP_REDUCE_H
#define XD_GOP_REDUCE_H

#include <stddef.h>

#include "core/gop.h"

/* 1 when nd is a ReduceMean over exactly the last axis of a rank-`rank` input, with
 * keepdims; else 0. axes_in: the value of its axes input (opset 18 and later) when that
 * input is a constant, else NULL (then a node that takes its axes as an input is not
 * one). */
int xd_gop_reduce_is_mean_last(const xd_gnode_t *nd, const xd_tensor_t *axes_in, size_t rank);

#endif
