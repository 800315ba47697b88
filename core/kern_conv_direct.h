/* kern_conv_direct.h — internal to core/kern_conv*.c (and their tests): float Conv with
 * stride 1 by register-blocked direct loops, no im2col.
 *
 * im2col + GEMM copies every input value once per kernel tap and then BLAS packs that copy
 * again; on small images (the demo CNN's 32×32, 16×16, 8×8 planes with 3 to 64 channels)
 * the copies cost as much as the arithmetic. Here each image is copied once into a
 * zero-padded plane, and a tile of output channels × consecutive output positions is
 * accumulated in vector registers over every (input channel, tap): one load of the input
 * per tap feeds MB output channels. The input gradient of such a Conv is the same kind of
 * convolution (of dy, with the kernel flipped and its two channel axes swapped), so one
 * kernel serves both directions. Not part of kern.h's contract.
 */
#ifndef XD_KERN_CONV_DIRECT_H
#define XD_KERN_CONV_DIRECT_H

#include <stddef.h>

#include "core/kern.h"

/* Instruction sets of the tile kernel; XD_CONVD_AUTO picks the best the CPU has. The
 * variants differ only in vector width and tile shape; each output is summed in the same
 * order (input channel, then tap row, then tap column) in all of them, and with fused
 * multiply-adds in the AVX2 and AVX-512 ones, so those two agree bit for bit. */
enum { XD_CONVD_AUTO = -1, XD_CONVD_PORTABLE = 0, XD_CONVD_AVX2 = 1, XD_CONVD_AVX512 = 2 };

/* 1 when s is a convolution the direct kernel takes: one group, stride and dilation 1
 * on every axis, kernel not 1×1 without padding (that one is already a plain GEMM), at
 * most 11 taps a side, the padded image small enough, and (backward) pads below the
 * kernel size, so the input gradient is a convolution of the same kind. */
int xd_convd_fits(const xd_conv_shape_t *s, int backward);
/* Floats of scratch xd_convd_forward / xd_convd_backward_dx need (0 if it does not fit). */
size_t xd_convd_scratch(const xd_conv_shape_t *s);
/* 1 when this CPU runs variant isa (XD_CONVD_PORTABLE always). */
int xd_convd_isa_available(int isa);

/* x (N,C,in...), w (M,C,k...), b (M) or NULL -> y (N,M,out...) */
void xd_convd_forward(const xd_conv_shape_t *s, const float *x, const float *w, const float *b, float *y,
                      float *scratch, int isa);
/* dy (N,M,out...) -> dx (N,C,in...) += */
void xd_convd_backward_dx(const xd_conv_shape_t *s, const float *w, const float *dy, float *dx, float *scratch,
                          int isa);

#endif
