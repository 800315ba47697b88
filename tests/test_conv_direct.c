/* test_conv_direct.c — the float direct convolution (core/kern_conv_direct.h): every
 * instruction set this CPU has, in every tile shape it picks (the cases below make each
 * variant pick each of its shapes at least once), on awkward shapes, forward and input gradient, against the double direct-loop twin; the
 * AVX2 and AVX-512 variants agree bit for bit; and which shapes it takes. */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/kern.h"
#include "core/kern_conv_direct.h"
#include "tests/kern_testlib.h"
#include "tests/test.h"

typedef struct dcase {
  size_t nsp, N, C, M, in[2], k[2], p0[2], p1[2];
} dcase_t;

static const dcase_t cases[] = {
    {2, 2, 3, 16, {32, 32}, {3, 3}, {1, 1}, {1, 1}},  /* the demo CNN's first layer */
    {2, 3, 5, 3, {7, 9}, {3, 3}, {1, 1}, {1, 1}},     /* three outputs: the narrow tile */
    {2, 1, 4, 11, {5, 13}, {5, 3}, {2, 0}, {1, 2}},   /* asymmetric kernel and pads, 11 outputs */
    {1, 2, 1, 9, {17}, {4}, {1}, {2}},                /* 1-D, even kernel */
    {2, 1, 2, 20, {6, 6}, {2, 2}, {1, 1}, {0, 0}},    /* even kernel, padded at the start only */
    {2, 2, 32, 64, {8, 8}, {3, 3}, {1, 1}, {1, 1}},   /* the demo CNN's last layer */
    {2, 1, 7, 5, {3, 40}, {3, 7}, {0, 3}, {2, 3}},    /* wider than a tile, padded rows at the end */
    {1, 2, 3, 6, {6}, {3}, {1}, {1}},                 /* six outputs on one short row */
};

static xd_conv_shape_t shape_of(const dcase_t *c) {
  xd_conv_shape_t s;
  memset(&s, 0, sizeof s);
  s.nsp = c->nsp, s.N = c->N, s.C = c->C, s.M = c->M, s.group = 1;
  for (size_t i = 0; i < c->nsp; i++) {
    s.in[i] = c->in[i], s.k[i] = c->k[i], s.pad0[i] = c->p0[i], s.pad1[i] = c->p1[i];
    s.stride[i] = s.dil[i] = 1;
  }
  return s;
}

static size_t prod(const size_t *v, size_t n) {
  size_t p = 1;
  for (size_t i = 0; i < n; i++) p *= v[i];
  return p;
}

TEST(direct_matches_naive_on_every_instruction_set) {
  for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
    xd_conv_shape_t s = shape_of(&cases[ci]);
    xd_error_t err;
    CHECK(xd_conv_shape_init(&s, &err) == XD_OK);
    CHECK_MSG(xd_convd_fits(&s, 0) && xd_convd_fits(&s, 1), "case %zu fits", ci);
    if (!xd_convd_fits(&s, 0) || !xd_convd_fits(&s, 1)) continue;
    size_t nx = s.N * s.C * prod(s.in, s.nsp), nw = s.M * s.C * prod(s.k, s.nsp), ny = s.N * s.M * prod(s.out, s.nsp);
    double *x = dvec(nx), *w = dvec(nw), *b = dvec(s.M), *dy = dvec(ny), *dx0 = dvec(nx);
    float *xf = fcopy(x, nx), *wf = fcopy(w, nw), *bf = fcopy(b, s.M), *dyf = fcopy(dy, ny);
    /* the reference from the float inputs, in double */
    double *xr = xd_malloc(nx * 8), *wr = xd_malloc(nw * 8), *br = xd_malloc(s.M * 8), *dyr = xd_malloc(ny * 8);
    for (size_t i = 0; i < nx; i++) xr[i] = xf[i];
    for (size_t i = 0; i < nw; i++) wr[i] = wf[i];
    for (size_t i = 0; i < s.M; i++) br[i] = bf[i];
    for (size_t i = 0; i < ny; i++) dyr[i] = dyf[i];
    double *yn = dzeros(ny), *dxn = dcopy(dx0, nx);
    for (size_t i = 0; i < nx; i++) dxn[i] = (float)dx0[i];
    xd_conv_forward_d_naive(&s, xr, wr, br, yn);
    xd_conv_backward_d_naive(&s, xr, wr, dyr, dxn, NULL, NULL);
    float *scr = xd_malloc(xd_convd_scratch(&s) * 4), *y[3] = {0}, *dx[3] = {0};
    for (int isa = XD_CONVD_PORTABLE; isa <= XD_CONVD_AVX512; isa++) {
      if (!xd_convd_isa_available(isa)) {
        printf("note: instruction set %d is not on this CPU\n", isa);
        continue;
      }
      y[isa] = xd_malloc(ny * 4);
      dx[isa] = fcopy(dx0, nx); /* the input gradient adds onto what is there */
      xd_convd_forward(&s, xf, wf, bf, y[isa], scr, isa);
      xd_convd_backward_dx(&s, wf, dyf, dx[isa], scr, isa);
      CHECK_MSG(max_rel_diff_fd(y[isa], yn, ny) < 1e-5, "case %zu isa %d forward", ci, isa);
      CHECK_MSG(max_rel_diff_fd(dx[isa], dxn, nx) < 1e-5, "case %zu isa %d dx", ci, isa);
    }
    if (y[XD_CONVD_AVX2] && y[XD_CONVD_AVX512]) {
      CHECK_MSG(!memcmp(y[XD_CONVD_AVX2], y[XD_CONVD_AVX512], ny * 4), "case %zu: AVX2 = AVX-512 forward", ci);
      CHECK_MSG(!memcmp(dx[XD_CONVD_AVX2], dx[XD_CONVD_AVX512], nx * 4), "case %zu: AVX2 = AVX-512 dx", ci);
    }
    /* the public kernels take this path and give the best variant's answer */
    float *yk = xd_malloc(ny * 4), *ks = xd_malloc(xd_conv_scratch(&s) * 4);
    xd_conv_forward_f(&s, xf, wf, bf, yk, ks);
    CHECK_MSG(max_rel_diff_fd(yk, yn, ny) < 1e-5, "case %zu xd_conv_forward_f", ci);
    for (int isa = XD_CONVD_AVX512; isa >= XD_CONVD_PORTABLE; isa--)
      if (y[isa]) {
        CHECK_MSG(!memcmp(yk, y[isa], ny * 4), "case %zu: xd_conv_forward_f is the best variant", ci);
        break;
      }
    for (int isa = 0; isa < 3; isa++) {
      xd_free(y[isa]);
      xd_free(dx[isa]);
    }
    xd_free(yk);
    xd_free(ks);
    xd_free(scr);
    xd_free(x), xd_free(w), xd_free(b), xd_free(dy), xd_free(dx0);
    xd_free(xf), xd_free(wf), xd_free(bf), xd_free(dyf);
    xd_free(xr), xd_free(wr), xd_free(br), xd_free(dyr), xd_free(yn), xd_free(dxn);
  }
}

TEST(direct_takes_only_what_it_computes) {
  xd_error_t err;
  dcase_t pads_over_kernel = {2, 1, 2, 3, {4, 4}, {2, 2}, {3, 3}, {3, 3}};
  xd_conv_shape_t s = shape_of(&pads_over_kernel);
  CHECK(xd_conv_shape_init(&s, &err) == XD_OK);
  CHECK(xd_convd_fits(&s, 0));  /* forward: any padding */
  CHECK(!xd_convd_fits(&s, 1)); /* its adjoint would need negative padding */
  dcase_t one_padded = {2, 1, 2, 3, {4, 4}, {1, 1}, {1, 1}, {1, 1}};
  s = shape_of(&one_padded);
  CHECK(xd_conv_shape_init(&s, &err) == XD_OK);
  CHECK(xd_convd_fits(&s, 0) && !xd_convd_fits(&s, 1)); /* 1×1 padded: its gradient crops */
  dcase_t plain = {2, 1, 2, 3, {4, 4}, {1, 1}, {0, 0}, {0, 0}};
  s = shape_of(&plain);
  CHECK(xd_conv_shape_init(&s, &err) == XD_OK);
  CHECK(!xd_convd_fits(&s, 0)); /* 1×1 unpadded: a plain GEMM already */
  CHECK(xd_convd_scratch(&s) == 0);
  s = shape_of(&cases[0]);
  s.stride[0] = 2;
  CHECK(xd_conv_shape_init(&s, &err) == XD_OK);
  CHECK(!xd_convd_fits(&s, 0));
  s = shape_of(&cases[0]);
  s.group = s.C = s.M = 3;
  CHECK(xd_conv_shape_init(&s, &err) == XD_OK);
  CHECK(!xd_convd_fits(&s, 0)); /* groups keep the lowering */
  s = shape_of(&cases[0]);
  s.in[0] = s.in[1] = 2048; /* 3 planes of 2050² floats: over the padded-image bound */
  CHECK(xd_conv_shape_init(&s, &err) == XD_OK);
  CHECK(!xd_convd_fits(&s, 0));
}

int main(void) {
  xd_rng_seed(&rng, 20261203);
  RUN(direct_matches_naive_on_every_instruction_set);
  RUN(direct_takes_only_what_it_computes);
  return TEST_REPORT();
}
