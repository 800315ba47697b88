/* kern_geo.h — internal to core/kern_*.c: the spatial axes of Conv and the pools as 3-D.
 *
 * The kernels handle spatial ranks 1..3 with one code path by treating every shape as
 * 3-D with leading axes of size 1 (and no padding there); this is that lifting, shared so
 * the convolution and pool geometries cannot disagree on it. Not part of kern.h's contract.
 */
#ifndef XD_KERN_GEO_H
#define XD_KERN_GEO_H

#include <stddef.h>

/* out[3] = v[0..nsp) right-aligned, the leading 3 - nsp axes set to fill (1 for sizes,
 * strides and dilations, 0 for pads). nsp is 1..3 (checked by the shape's _init). */
static inline void xd_kern_as3d(size_t nsp, const size_t *v, size_t fill, size_t out[3]) {
  size_t off = 3 - nsp;
  for (size_t i = 0; i < 3; i++) out[i] = i < off ? fill : v[i - off];
}

/* Fills g's 3-D in, k, out, st, dl, p0, p1 from shape s's nsp-axis in, k, out, stride,
 * dil, pad0, pad1: the fields xd_conv_shape_t and xd_pool_shape_t share, lifted into the
 * kernels' private geometry structs (a macro, as the two pairs of types differ). */
#define XD_KERN_LIFT3(g, s)                            \
  do {                                                 \
    xd_kern_as3d((s)->nsp, (s)->in, 1, (g)->in);       \
    xd_kern_as3d((s)->nsp, (s)->k, 1, (g)->k);         \
    xd_kern_as3d((s)->nsp, (s)->out, 1, (g)->out);     \
    xd_kern_as3d((s)->nsp, (s)->stride, 1, (g)->st);   \
    xd_kern_as3d((s)->nsp, (s)->dil, 1, (g)->dl);      \
    xd_kern_as3d((s)->nsp, (s)->pad0, 0, (g)->p0);     \
    xd_kern_as3d((s)->nsp, (s)->pad1, 0, (g)->p1);     \
  } while (0)

#endif
