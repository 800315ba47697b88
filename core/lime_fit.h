/* lime_fit.h — LIME's surrogate (lime_base.LimeBase): feature selection and the weighted
 * ridge, all computed from one centred weighted Gram matrix.
 *
 * Internal to core/lime.c (and its test hook). The neighbourhood Z (n,d) is centred with
 * the kernel-weighted means and scaled by sqrt(w) in place (Ac), the explained outputs
 * likewise (Yc, n×L); then C = Acᵀ·Ac (d,d) and B = Acᵀ·Yc (d,L) come from two dgemm
 * calls, and every later step — forward selection (a sweep on [C b; bᵀ syy]),
 * highest_weights (ridge 0.01), LARS-lasso, the final alpha-1 ridge — works on those
 * (d,d) numbers, so nothing after the Gram costs more than O(n·d). That is sklearn's
 * weighted Ridge exactly: it centres with the weighted means, rescales rows by sqrt(w)
 * and solves (XcᵀWXc + αI) coef = XcᵀWyc without rescaling α.
 * Not thread-safe per workspace; one workspace per explanation.
 */
#ifndef XD_LIME_FIT_H
#define XD_LIME_FIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/lime.h"

typedef struct xd_lime_ws {
  size_t n, d, L;
  int binary;    /* prepared by xd_lime_ws_prepare_binary: Z kept as is, not centred */
  double *C;     /* (d,d) centred weighted Gram */
  double *B;     /* (d,L) centred weighted cross-moments */
  double *syy;   /* (L) centred weighted total sum of squares */
  double *xbar;  /* (d) weighted means of Z */
  double *ybar;  /* (L) weighted means of the outputs */
  double *sw;    /* (n) sqrt of the kernel weights */
  double *M;     /* ((d+1)²) sweep matrix / small systems */
  double *S;     /* ((d+1)²) small systems */
  double *v;     /* (6·d) vectors */
  double *tmp;   /* (n,L) */
  uint32_t *u32; /* (n + d·d + d + 2) counters and row order */
  size_t *iv;    /* (3·d) index vectors */
} xd_lime_ws_t;

/* Doubles and size_t's a workspace needs (carved from the caller's block by
 * xd_lime_ws_carve, which returns the number of doubles it took). */
size_t xd_lime_ws_doubles(size_t n, size_t d, size_t L);
size_t xd_lime_ws_sizes(size_t d);
void xd_lime_ws_carve(xd_lime_ws_t *ws, size_t n, size_t d, size_t L, double *dbl, size_t *sz);

/* Centres and weights: Z (n,d) becomes Ac in place; Yc (n,L) gets sqrt(w)·(Y[:,col_l] -
 * ȳ_l) from Y (n, y_stride); fills C, B, syy, xbar, ybar. w (n) are kernel weights > 0. */
void xd_lime_ws_prepare(xd_lime_ws_t *ws, double *Z, const double *Y, size_t y_stride, const size_t *cols,
                        const double *w, double *Yc);

/* The same for the discretized representation (Z binary, row masks given): Z is left
 * as is. mask[i] has bit j set when Z[i,j] == 1 (d <= 64). The Gram is exact: rows are
 * grouped by their kernel weight (a function of how many features moved), and within a
 * group the co-occurrence counts of every feature pair come from 64-row bit-matrix
 * transposes and popcounts: O(n·d) bit work instead of an O(n·d²) dgemm. */
void xd_lime_ws_prepare_binary(xd_lime_ws_t *ws, const double *Z, const uint64_t *mask, const double *Y,
                               size_t y_stride, const size_t *cols, const double *w, double *Yc);

/* Fits label l: selection fs with num_features, then the alpha-1 ridge. Ac and Yc as
 * left by prepare (Z itself after prepare_binary), z0 (d) the instance's representation. Fills out (used sorted by
 * decreasing |coef|, coef dense). Returns XD_OK or XD_EINTERNAL (LAPACK failure). */
int xd_lime_ws_fit(xd_lime_ws_t *ws, size_t l, const double *Ac, const double *Yc, const double *z0,
                   xd_lime_fs_t fs, size_t num_features, xd_lime_fit_out_t *out, xd_error_t *err);

#endif
