/* test_kern.c — the graph engine's heavy kernels (core/kern.h; GRU and LSTM are in
 * test_kern_rnn.c): each fast kernel against its naive twin on awkward shapes, every
 * backward against central finite differences in double, float against double forward,
 * and backward accumulating (+=) into gradients. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/kern.h"
#include "core/mat.h"
#include "core/rng.h"
#include "tests/kern_testlib.h"
#include "tests/test.h"

/* ---- Conv -------------------------------------------------------------------------------- */

typedef struct conv_case {
  size_t nsp, N, C, M, group, in[3], k[3], st[3], dl[3], p0[3], p1[3];
} conv_case_t;

static const conv_case_t conv_cases[] = {
    {2, 2, 3, 4, 1, {7, 6}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},    /* plain, "same" padding */
    {2, 1, 2, 3, 1, {9, 8}, {3, 2}, {2, 1}, {1, 2}, {0, 2}, {1, 0}},    /* asymmetric pads, stride, dilation */
    {2, 3, 4, 6, 2, {5, 5}, {2, 2}, {2, 2}, {1, 1}, {0, 0}, {1, 1}},    /* groups */
    {2, 1, 3, 3, 3, {6, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},    /* depthwise */
    {2, 2, 6, 3, 3, {5, 4}, {3, 1}, {1, 1}, {1, 1}, {2, 0}, {0, 0}},    /* groups with M < C */
    {1, 2, 2, 3, 1, {11}, {3}, {2}, {2}, {1}, {2}},                      /* 1-D, dilation, odd pads */
    {2, 3, 5, 3, 1, {4, 4}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}},    /* 1×1: no im2col */
    {2, 1, 5, 2, 1, {3, 5}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}},    /* 1×1, one image */
    {2, 2, 1, 4, 1, {1, 13}, {1, 3}, {1, 1}, {1, 1}, {0, 1}, {0, 1}},   /* 1×N */
    {2, 2, 1, 1, 1, {5, 5}, {1, 1}, {2, 3}, {1, 1}, {0, 0}, {0, 0}},    /* K = 1, strided */
    {3, 1, 2, 2, 1, {3, 4, 5}, {2, 2, 3}, {1, 2, 1}, {1, 1, 1}, {1, 0, 1}, {0, 1, 1}}, /* 3-D */
    {2, 5, 2, 3, 1, {20, 20}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},  /* images batched, remainder */
    {2, 1, 2, 2, 1, {3, 3}, {3, 3}, {1, 1}, {3, 3}, {3, 3}, {3, 3}},    /* dilated kernel mostly in pads */
    {2, 1, 16, 2, 1, {181, 183}, {3, 3}, {1, 2}, {1, 1}, {1, 0}, {2, 1}}, /* large image: bands of rows */
    {2, 21, 1024, 2, 1, {4, 4}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}},  /* wide patches: fewer images per GEMM */
    {2, 1, 64, 1, 1, {40, 60}, {5, 3}, {1, 1}, {1, 1}, {30, 1}, {28, 1}}, /* bands wholly in the padding */
    {2, 2, 2, 4, 2, {7, 6}, {3, 2}, {2, 1}, {1, 2}, {1, 0}, {0, 1}},  /* depthwise x2 multiplier, strided */
    {1, 3, 4, 4, 4, {9}, {3}, {1}, {2}, {2}, {1}},                     /* depthwise 1-D, dilated */
    {2, 1, 1, 2, 1, {6, 6}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},  /* one input channel, strided */
};

static xd_conv_shape_t conv_shape(const conv_case_t *c) {
  xd_conv_shape_t s;
  memset(&s, 0, sizeof s);
  s.nsp = c->nsp;
  s.N = c->N;
  s.C = c->C;
  s.M = c->M;
  s.group = c->group;
  for (size_t i = 0; i < c->nsp; i++) {
    s.in[i] = c->in[i];
    s.k[i] = c->k[i];
    s.stride[i] = c->st[i];
    s.dil[i] = c->dl[i];
    s.pad0[i] = c->p0[i];
    s.pad1[i] = c->p1[i];
  }
  return s;
}

typedef struct conv_ctx {
  xd_conv_shape_t s;
  double *x, *w, *b, *g, *y, *scr;
  size_t ny;
} conv_ctx_t;

static double conv_loss(void *p) {
  conv_ctx_t *c = p;
  xd_conv_forward_d(&c->s, c->x, c->w, c->b, c->y, c->scr);
  return dot(c->y, c->g, c->ny);
}

TEST(conv_matches_naive_and_fd) {
  for (size_t ci = 0; ci < sizeof conv_cases / sizeof *conv_cases; ci++) {
    xd_conv_shape_t s = conv_shape(&conv_cases[ci]);
    xd_error_t err;
    CHECK(xd_conv_shape_init(&s, &err) == XD_OK);
    size_t isp = 1, ksp = 1, osp = 1;
    for (size_t i = 0; i < s.nsp; i++) {
      isp *= s.in[i];
      ksp *= s.k[i];
      osp *= s.out[i];
    }
    size_t nx = s.N * s.C * isp, nw = s.M * (s.C / s.group) * ksp, ny = s.N * s.M * osp;
    conv_ctx_t c = {s, dvec(nx), dvec(nw), dvec(s.M), dvec(ny), dzeros(ny), dzeros(xd_conv_scratch(&s)), ny};
    double *yn = dzeros(ny), *scr = c.scr;
    float *xf = fcopy(c.x, nx), *wf = fcopy(c.w, nw), *bf = fcopy(c.b, s.M), *yf = xd_malloc(ny * 4),
          *ynf = xd_malloc(ny * 4), *sf = xd_malloc(xd_conv_scratch(&s) * 4);
    /* forward: fast vs naive, both types, and with and without bias */
    xd_conv_forward_d(&s, c.x, c.w, c.b, c.y, scr);
    xd_conv_forward_d_naive(&s, c.x, c.w, c.b, yn);
    CHECK_MSG(max_rel_diff_dd(c.y, yn, ny) < 1e-12, "case %zu", ci);
    xd_conv_forward_f(&s, xf, wf, bf, yf, sf);
    xd_conv_forward_f_naive(&s, xf, wf, bf, ynf);
    /* float sums of ck products round at about sqrt(ck)·2^-24 of their size */
    double ftol = 1e-5 * (1 + (double)(s.C / s.group * ksp) / 500);
    CHECK_MSG(max_rel_diff_fd(yf, yn, ny) < ftol, "case %zu float fast vs double", ci);
    CHECK_MSG(max_rel_diff_fd(ynf, yn, ny) < 1e-5, "case %zu float naive vs double", ci);
    xd_conv_forward_d(&s, c.x, c.w, NULL, c.y, scr);
    xd_conv_forward_d_naive(&s, c.x, c.w, NULL, yn);
    CHECK_MSG(max_rel_diff_dd(c.y, yn, ny) < 1e-12, "case %zu no bias", ci);
    /* backward: fast vs naive, accumulating onto a non-zero start */
    double *dx = dvec(nx), *dw = dvec(nw), *db = dvec(s.M);
    double *dx2 = dcopy(dx, nx), *dw2 = dcopy(dw, nw), *db2 = dcopy(db, s.M);
    xd_conv_backward_d(&s, c.x, c.w, c.g, dx, dw, db, scr);
    xd_conv_backward_d_naive(&s, c.x, c.w, c.g, dx2, dw2, db2);
    CHECK_MSG(max_rel_diff_dd(dx, dx2, nx) < 1e-12, "case %zu dx", ci);
    CHECK_MSG(max_rel_diff_dd(dw, dw2, nw) < 1e-12, "case %zu dw", ci);
    CHECK_MSG(max_rel_diff_dd(db, db2, s.M) < 1e-12, "case %zu db", ci);
    /* backward against finite differences, from zero */
    memset(dx, 0, nx * 8);
    memset(dw, 0, nw * 8);
    memset(db, 0, s.M * 8);
    xd_conv_backward_d(&s, c.x, c.w, c.g, dx, dw, db, scr);
    /* each probe is two forward passes: fewer probes on the large cases */
    size_t probes = ny * (s.C / s.group) * ksp > 1000000 ? 8 : 60;
    CHECK_MSG(fd_check(conv_loss, &c, c.x, nx, dx, probes) < FD_TOL, "case %zu fd dx", ci);
    CHECK_MSG(fd_check(conv_loss, &c, c.w, nw, dw, probes) < FD_TOL, "case %zu fd dw", ci);
    CHECK_MSG(fd_check(conv_loss, &c, c.b, s.M, db, probes) < FD_TOL, "case %zu fd db", ci);
    /* float backward agrees with double; only dx wanted leaves the rest alone */
    float *dxf = xd_calloc(nx, 4), *dyf = fcopy(c.g, ny);
    xd_conv_backward_f(&s, xf, wf, dyf, dxf, NULL, NULL, sf);
    CHECK_MSG(max_rel_diff_fd(dxf, dx, nx) < ftol, "case %zu float dx", ci);
    xd_free(dxf);
    xd_free(dyf);
    xd_free(dx);
    xd_free(dw);
    xd_free(db);
    xd_free(dx2);
    xd_free(dw2);
    xd_free(db2);
    xd_free(c.x);
    xd_free(c.w);
    xd_free(c.b);
    xd_free(c.g);
    xd_free(c.y);
    xd_free(c.scr);
    xd_free(yn);
    xd_free(xf);
    xd_free(wf);
    xd_free(bf);
    xd_free(yf);
    xd_free(ynf);
    xd_free(sf);
  }
}

TEST(conv_shape_rejects_bad_attributes) {
  xd_error_t err;
  conv_case_t bad_group = {2, 1, 3, 4, 2, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0}};
  xd_conv_shape_t s = conv_shape(&bad_group);
  CHECK(xd_conv_shape_init(&s, &err) == XD_EINVAL);
  CHECK(strcmp(err.field, "group") == 0);
  conv_case_t too_big = {2, 1, 1, 1, 1, {3, 3}, {5, 5}, {1, 1}, {1, 1}, {0, 0}, {0, 1}};
  s = conv_shape(&too_big);
  CHECK(xd_conv_shape_init(&s, &err) == XD_EINVAL);
  conv_case_t ok = {2, 1, 1, 1, 1, {3, 3}, {5, 5}, {1, 1}, {1, 1}, {1, 1}, {1, 1}};
  s = conv_shape(&ok);
  CHECK(xd_conv_shape_init(&s, &err) == XD_OK);
  CHECK(s.out[0] == 1 && s.out[1] == 1);
  /* SAME_UPPER / SAME_LOWER put the odd padding at the end / the beginning */
  size_t p0, p1;
  xd_kern_auto_pad(7, 4, 1, 1, 1, &p0, &p1);
  CHECK(p0 == 1 && p1 == 2);
  xd_kern_auto_pad(7, 4, 1, 1, 0, &p0, &p1);
  CHECK(p0 == 2 && p1 == 1);
  xd_kern_auto_pad(8, 3, 2, 1, 1, &p0, &p1); /* out 4: need 2·3+3 = 9 -> total 1 */
  CHECK(p0 == 0 && p1 == 1);
}

typedef struct convt_ctx {
  xd_convt_shape_t s;
  double *x, *w, *b, *g, *y, *scr;
  size_t ny;
} convt_ctx_t;

static double convt_loss(void *p) {
  convt_ctx_t *c = p;
  xd_convt_forward_d(&c->s, c->x, c->w, c->b, c->y, c->scr);
  return dot(c->y, c->g, c->ny);
}

TEST(conv_transpose_fd) {
  /* 2-D with asymmetric pads, groups and output_padding; 1-D with dilation */
  xd_convt_shape_t cases[2];
  memset(cases, 0, sizeof cases);
  cases[0] = (xd_convt_shape_t){.nsp = 2, .N = 2, .C = 4, .M = 2, .group = 2, .in = {3, 4}, .k = {3, 2},
                                .stride = {2, 3}, .dil = {1, 1}, .outpad = {1, 2}, .pad0 = {0, 1}, .pad1 = {2, 0}};
  cases[1] = (xd_convt_shape_t){.nsp = 1, .N = 1, .C = 3, .M = 2, .group = 1, .in = {5}, .k = {3},
                                .stride = {1}, .dil = {2}, .pad0 = {1}, .pad1 = {2}};
  for (size_t ci = 0; ci < 2; ci++) {
    convt_ctx_t c = {cases[ci], NULL, NULL, NULL, NULL, NULL, NULL, 0};
    CHECK(xd_convt_shape_init(&c.s, NULL) == XD_OK);
    size_t isp = 1, ksp = 1, osp = 1;
    for (size_t i = 0; i < c.s.nsp; i++) {
      isp *= c.s.in[i];
      ksp *= c.s.k[i];
      osp *= c.s.out[i];
    }
    size_t nx = c.s.N * c.s.C * isp, nw = c.s.C * (c.s.M / c.s.group) * ksp;
    c.ny = c.s.N * c.s.M * osp;
    c.x = dvec(nx);
    c.w = dvec(nw);
    c.b = dvec(c.s.M);
    c.g = dvec(c.ny);
    c.y = dzeros(c.ny);
    c.scr = dzeros(xd_convt_scratch(&c.s));
    double *dx = dzeros(nx), *dw = dzeros(nw), *db = dzeros(c.s.M);
    xd_convt_backward_d(&c.s, c.x, c.w, c.g, dx, dw, db, c.scr);
    CHECK_MSG(fd_check(convt_loss, &c, c.x, nx, dx, 60) < FD_TOL, "case %zu dx", ci);
    CHECK_MSG(fd_check(convt_loss, &c, c.w, nw, dw, 60) < FD_TOL, "case %zu dw", ci);
    CHECK_MSG(fd_check(convt_loss, &c, c.b, c.s.M, db, 60) < FD_TOL, "case %zu db", ci);
    float *xf = fcopy(c.x, nx), *wf = fcopy(c.w, nw), *bf = fcopy(c.b, c.s.M), *yf = xd_malloc(c.ny * 4),
          *sf = xd_malloc(xd_convt_scratch(&c.s) * 4);
    xd_convt_forward_f(&c.s, xf, wf, bf, yf, sf);
    convt_loss(&c);
    CHECK(max_rel_diff_fd(yf, c.y, c.ny) < 1e-5);
    double *all[] = {c.x, c.w, c.b, c.g, c.y, c.scr, dx, dw, db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xd_free(all[i]);
    float *allf[] = {xf, wf, bf, yf, sf};
    for (size_t i = 0; i < sizeof allf / sizeof *allf; i++) xd_free(allf[i]);
  }
  xd_convt_shape_t bad = cases[0];
  bad.outpad[0] = 2; /* not below the stride */
  CHECK(xd_convt_shape_init(&bad, NULL) == XD_EINVAL);
}

/* ---- pools ------------------------------------------------------------------------------- */

typedef struct pool_case {
  size_t nsp, N, C, in[2], k[2], st[2], dl[2], p0[2], p1[2];
  int ceil, incl;
} pool_case_t;

static const pool_case_t pool_cases[] = {
    {2, 2, 3, {8, 6}, {2, 2}, {2, 2}, {1, 1}, {0, 0}, {0, 0}, 0, 0}, /* the CNN case */
    {2, 1, 2, {7, 5}, {2, 2}, {2, 2}, {1, 1}, {0, 0}, {0, 0}, 1, 0}, /* ceil: partial windows */
    {2, 1, 2, {5, 5}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 0, 1}, /* pads counted */
    {2, 1, 2, {5, 5}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 0, 0}, /* pads not counted */
    {2, 2, 1, {6, 7}, {3, 2}, {2, 3}, {1, 1}, {0, 1}, {2, 0}, 1, 1}, /* asymmetric, ceil, counted */
    {2, 1, 1, {9, 9}, {3, 3}, {1, 2}, {2, 2}, {2, 1}, {1, 2}, 0, 0}, /* dilation */
    {1, 2, 2, {11, 0}, {3, 0}, {2, 0}, {1, 0}, {1, 0}, {1, 0}, 1, 1}, /* 1-D */
    {2, 1, 1, {5, 5}, {2, 2}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 1, 1}, /* ceil drops a window in the pad */
};

static xd_pool_shape_t pool_shape(const pool_case_t *c) {
  xd_pool_shape_t s;
  memset(&s, 0, sizeof s);
  s.nsp = c->nsp;
  s.N = c->N;
  s.C = c->C;
  for (size_t i = 0; i < c->nsp; i++) {
    s.in[i] = c->in[i];
    s.k[i] = c->k[i];
    s.stride[i] = c->st[i];
    s.dil[i] = c->dl[i];
    s.pad0[i] = c->p0[i];
    s.pad1[i] = c->p1[i];
  }
  s.ceil_mode = c->ceil;
  s.count_include_pad = c->incl;
  return s;
}

/* The definition on an explicitly padded plane (2-D; 1-D as height 1): cells of the
 * padded input are pads unless inside the input; a window counts the cells it covers
 * inside the padded input for count_include_pad. */
static void pool_ref(const xd_pool_shape_t *s, const double *x, double *ymax, double *yavg) {
  size_t H = s->nsp == 2 ? s->in[0] : 1, W = s->in[s->nsp - 1];
  size_t oh = s->nsp == 2 ? s->out[0] : 1, ow = s->out[s->nsp - 1];
  size_t kh = s->nsp == 2 ? s->k[0] : 1, kw = s->k[s->nsp - 1];
  size_t sh = s->nsp == 2 ? s->stride[0] : 1, sw = s->stride[s->nsp - 1];
  size_t dh = s->nsp == 2 ? s->dil[0] : 1, dw = s->dil[s->nsp - 1];
  size_t ph0 = s->nsp == 2 ? s->pad0[0] : 0, pw0 = s->pad0[s->nsp - 1];
  size_t ph1 = s->nsp == 2 ? s->pad1[0] : 0, pw1 = s->pad1[s->nsp - 1];
  for (size_t p = 0; p < s->N * s->C; p++)
    for (size_t i = 0; i < oh; i++)
      for (size_t j = 0; j < ow; j++) {
        double m = -INFINITY, sum = 0;
        size_t real = 0, padded = 0;
        for (size_t a = 0; a < kh; a++)
          for (size_t b = 0; b < kw; b++) {
            size_t ph = i * sh + a * dh, pw = j * sw + b * dw; /* in padded coordinates */
            if (ph < H + ph0 + ph1 && pw < W + pw0 + pw1) padded++;
            if (ph < ph0 || ph >= ph0 + H || pw < pw0 || pw >= pw0 + W) continue;
            double v = x[p * H * W + (ph - ph0) * W + (pw - pw0)];
            m = v > m ? v : m;
            sum += v;
            real++;
          }
        ymax[p * oh * ow + i * ow + j] = m;
        yavg[p * oh * ow + i * ow + j] = sum / (double)(s->count_include_pad ? padded : real);
      }
}

typedef struct pool_ctx {
  xd_pool_shape_t s;
  double *x, *g, *y;
  size_t ny;
  int max;
} pool_ctx_t;

static double pool_loss(void *p) {
  pool_ctx_t *c = p;
  if (c->max)
    xd_maxpool_forward_d(&c->s, c->x, c->y);
  else
    xd_avgpool_forward_d(&c->s, c->x, c->y);
  return dot(c->y, c->g, c->ny);
}

TEST(pools_match_definition_and_fd) {
  for (size_t ci = 0; ci < sizeof pool_cases / sizeof *pool_cases; ci++) {
    xd_pool_shape_t s = pool_shape(&pool_cases[ci]);
    xd_error_t err;
    CHECK_MSG(xd_pool_shape_init(&s, &err) == XD_OK, "case %zu: %s", ci, err.text);
    size_t isp = 1, osp = 1;
    for (size_t i = 0; i < s.nsp; i++) {
      isp *= s.in[i];
      osp *= s.out[i];
    }
    size_t nx = s.N * s.C * isp, ny = s.N * s.C * osp;
    double *x = dvec(nx), *y = dzeros(ny), *rmax = dzeros(ny), *ravg = dzeros(ny);
    pool_ref(&s, x, rmax, ravg);
    xd_maxpool_forward_d(&s, x, y);
    CHECK_MSG(max_rel_diff_dd(y, rmax, ny) < 1e-15, "case %zu max", ci);
    xd_avgpool_forward_d(&s, x, y);
    CHECK_MSG(max_rel_diff_dd(y, ravg, ny) < 1e-14, "case %zu avg", ci);
    float *xf = fcopy(x, nx), *yf = xd_malloc(ny * 4);
    xd_maxpool_forward_f(&s, xf, yf);
    CHECK_MSG(max_rel_diff_fd(yf, rmax, ny) < 1e-6, "case %zu max float", ci);
    xd_avgpool_forward_f(&s, xf, yf);
    CHECK_MSG(max_rel_diff_fd(yf, ravg, ny) < 1e-6, "case %zu avg float", ci);
    for (int max = 0; max < 2; max++) {
      pool_ctx_t c = {s, x, dvec(ny), y, ny, max};
      double *dx = dzeros(nx);
      if (max)
        xd_maxpool_backward_d(&s, x, c.g, dx);
      else
        xd_avgpool_backward_d(&s, c.g, dx);
      CHECK_MSG(fd_check(pool_loss, &c, x, nx, dx, 80) < FD_TOL, "case %zu fd %s", ci, max ? "max" : "avg");
      xd_free(c.g);
      xd_free(dx);
    }
    xd_free(x);
    xd_free(y);
    xd_free(rmax);
    xd_free(ravg);
    xd_free(xf);
    xd_free(yf);
  }
}

/* The 2×2 / stride 2 max pool's backward (a branch-free fast path) against the rule, on
 * values full of ties: each window's gradient to its first maximum in row-major order,
 * float and double, exactly. */
TEST(maxpool_2x2_backward_ties_go_to_the_first) {
  xd_pool_shape_t s = {.nsp = 2, .N = 2, .C = 3, .in = {6, 8}, .k = {2, 2}, .stride = {2, 2}, .dil = {1, 1}};
  xd_error_t err;
  CHECK(xd_pool_shape_init(&s, &err) == XD_OK && s.out[0] == 3 && s.out[1] == 4);
  size_t nx = 2 * 3 * 48, ny = 2 * 3 * 12;
  double x[288], g[72], ref[288], dd[288];
  float xf[288], gf[72], df[288];
  for (size_t i = 0; i < nx; i++) xf[i] = (float)(x[i] = (double)((i * 7 + i / 5) % 3)); /* 0, 1, 2: ties */
  for (size_t i = 0; i < ny; i++) gf[i] = (float)(g[i] = 1.0 + (double)i);
  for (size_t i = 0; i < nx; i++) ref[i] = dd[i] = df[i] = 0.5f; /* accumulates */
  for (size_t p = 0; p < 6; p++)
    for (size_t o1 = 0; o1 < 3; o1++)
      for (size_t o2 = 0; o2 < 4; o2++) {
        size_t best = p * 48 + 2 * o1 * 8 + 2 * o2;
        for (size_t a = 0; a < 2; a++)
          for (size_t b = 0; b < 2; b++) {
            size_t i = p * 48 + (2 * o1 + a) * 8 + 2 * o2 + b;
            if (x[i] > x[best]) best = i;
          }
        ref[best] += g[p * 12 + o1 * 4 + o2];
      }
  xd_maxpool_backward_d(&s, x, g, dd);
  xd_maxpool_backward_f(&s, xf, gf, df);
  for (size_t i = 0; i < nx; i++) {
    CHECK_MSG(dd[i] == ref[i], "double [%zu]: %g vs %g", i, dd[i], ref[i]);
    CHECK_MSG(df[i] == (float)ref[i], "float [%zu]: %g vs %g", i, (double)df[i], ref[i]);
  }
}

TEST(pool_output_sizes_follow_torch) {
  /* torch.nn.MaxPool1d(2, 2, padding=1, ceil_mode=True) on length 5 gives 3, not 4 */
  xd_error_t err;
  pool_case_t a = {1, 1, 1, {5, 0}, {2, 0}, {2, 0}, {1, 0}, {1, 0}, {1, 0}, 1, 0};
  xd_pool_shape_t s = pool_shape(&a);
  CHECK(xd_pool_shape_init(&s, &err) == XD_OK && s.out[0] == 3);
  pool_case_t b = {1, 1, 1, {5, 0}, {2, 0}, {2, 0}, {1, 0}, {0, 0}, {0, 0}, 1, 0}; /* ceil(3/2)+1 */
  s = pool_shape(&b);
  CHECK(xd_pool_shape_init(&s, &err) == XD_OK && s.out[0] == 3);
  b.ceil = 0;
  s = pool_shape(&b);
  CHECK(xd_pool_shape_init(&s, &err) == XD_OK && s.out[0] == 2);
  pool_case_t c = {1, 1, 1, {5, 0}, {2, 0}, {2, 0}, {1, 0}, {2, 0}, {0, 0}, 0, 0}; /* pad = whole window */
  s = pool_shape(&c);
  CHECK(xd_pool_shape_init(&s, &err) == XD_EINVAL);
}

TEST(global_average_pool) {
  size_t nc = 5, sp = 7;
  double *x = dvec(nc * sp), *y = dzeros(nc), *dy = dvec(nc), *dx = dzeros(nc * sp);
  xd_gap_forward_d(nc, sp, x, y);
  for (size_t i = 0; i < nc; i++) {
    double s = 0;
    for (size_t j = 0; j < sp; j++) s += x[i * sp + j];
    CHECK_NEAR(y[i], s / 7, 1e-15);
  }
  xd_gap_backward_d(nc, sp, dy, dx);
  CHECK_NEAR(dx[3 * sp + 4], dy[3] / 7, 1e-16);
  xd_free(x);
  xd_free(y);
  xd_free(dy);
  xd_free(dx);
}

/* ---- norms and softmax ---------------------------------------------------------------------- */

typedef struct norm_ctx {
  size_t outer, n, inner;
  double *x, *scale, *bias, *mean, *var, *g, *y;
  int kind; /* 0 layernorm, 1 batchnorm, 2 softmax, 3 logsoftmax */
} norm_ctx_t;

static double norm_loss(void *p) {
  norm_ctx_t *c = p;
  size_t total = c->outer * c->n * c->inner;
  switch (c->kind) {
  case 0: xd_layernorm_forward_d(c->outer, c->n, 1e-5, c->x, c->scale, c->bias, c->y, NULL, NULL); break;
  case 1:
    xd_batchnorm_forward_d(c->outer, c->n, c->inner, 1e-5, c->x, c->scale, c->bias, c->mean, c->var, c->y);
    break;
  case 2: xd_softmax_forward_d(c->outer, c->n, c->inner, c->x, c->y); break;
  default: xd_logsoftmax_forward_d(c->outer, c->n, c->inner, c->x, c->y); break;
  }
  return dot(c->y, c->g, total);
}

TEST(norms_and_softmax_fd) {
  size_t outer = 3, n = 5, inner = 4, total = outer * n * inner;
  norm_ctx_t c = {outer, n, inner, dvec(total), dvec(n * inner), dvec(n * inner), dvec(n), dvec(n), dvec(total),
                  dzeros(total), 0};
  for (size_t i = 0; i < n; i++) c.var[i] = 0.5 + c.var[i] * c.var[i];
  /* LayerNormalization over the last n·inner values */
  c.outer = outer;
  c.n = n * inner;
  c.inner = 1;
  double *mean = dzeros(outer), *inv = dzeros(outer);
  xd_layernorm_forward_d(outer, n * inner, 1e-5, c.x, c.scale, c.bias, c.y, mean, inv);
  {
    double mu = 0, v = 0;
    for (size_t j = 0; j < n * inner; j++) mu += c.x[j];
    mu /= (double)(n * inner);
    for (size_t j = 0; j < n * inner; j++) v += (c.x[j] - mu) * (c.x[j] - mu);
    v /= (double)(n * inner);
    CHECK_NEAR(mean[0], mu, 1e-15);
    CHECK_NEAR(inv[0], 1 / sqrt(v + 1e-5), 1e-12);
    CHECK_NEAR(c.y[2], (c.x[2] - mu) / sqrt(v + 1e-5) * c.scale[2] + c.bias[2], 1e-12);
  }
  double *dx = dzeros(total), *ds = dzeros(n * inner), *dbias = dzeros(n * inner);
  xd_layernorm_backward_d(outer, n * inner, 1e-5, c.x, c.scale, c.g, dx, ds, dbias);
  CHECK(fd_check(norm_loss, &c, c.x, total, dx, 60) < FD_TOL);
  CHECK(fd_check(norm_loss, &c, c.scale, n * inner, ds, 60) < FD_TOL);
  CHECK(fd_check(norm_loss, &c, c.bias, n * inner, dbias, 60) < FD_TOL);
  float *xf = fcopy(c.x, total), *sf = fcopy(c.scale, n * inner), *bf = fcopy(c.bias, n * inner),
        *yf = xd_malloc(total * 4);
  xd_layernorm_forward_f(outer, n * inner, 1e-5, xf, sf, bf, yf, NULL, NULL);
  xd_layernorm_forward_d(outer, n * inner, 1e-5, c.x, c.scale, c.bias, c.y, NULL, NULL);
  CHECK(max_rel_diff_fd(yf, c.y, total) < 1e-5);
  /* BatchNormalization (N = outer, C = n, sp = inner): input gradient */
  c.n = n;
  c.inner = inner;
  c.kind = 1;
  memset(dx, 0, total * 8);
  xd_batchnorm_backward_d(outer, n, inner, 1e-5, c.scale, c.var, c.g, dx);
  CHECK(fd_check(norm_loss, &c, c.x, total, dx, 60) < FD_TOL);
  float *mf = fcopy(c.mean, n), *vf = fcopy(c.var, n);
  xd_batchnorm_forward_f(outer, n, inner, 1e-5, xf, sf, bf, mf, vf, yf);
  norm_loss(&c);
  CHECK(max_rel_diff_fd(yf, c.y, total) < 1e-5);
  CHECK_NEAR(c.y[1 * n * inner + 2 * inner + 3],
             (c.x[1 * n * inner + 2 * inner + 3] - c.mean[2]) / sqrt(c.var[2] + 1e-5) * c.scale[2] + c.bias[2],
             1e-12);
  /* Softmax and LogSoftmax over the middle axis; large inputs do not overflow */
  for (int kind = 2; kind < 4; kind++) {
    c.kind = kind;
    norm_loss(&c);
    memset(dx, 0, total * 8);
    if (kind == 2)
      xd_softmax_backward_d(outer, n, inner, c.y, c.g, dx);
    else
      xd_logsoftmax_backward_d(outer, n, inner, c.y, c.g, dx);
    CHECK_MSG(fd_check(norm_loss, &c, c.x, total, dx, 60) < FD_TOL, "kind %d", kind);
    double s = 0;
    for (size_t j = 0; j < n; j++) s += kind == 2 ? c.y[j * inner + 1] : exp(c.y[j * inner + 1]);
    CHECK_NEAR(s, 1, 1e-14);
  }
  double big[3] = {1000, 1001, 1002}, sm[3];
  xd_softmax_forward_d(1, 3, 1, big, sm);
  CHECK_NEAR(sm[2], 1 / (1 + exp(-1) + exp(-2)), 1e-15);
  xd_softmax_forward_f(outer, n, inner, xf, yf);
  xd_softmax_forward_d(outer, n, inner, c.x, c.y);
  CHECK(max_rel_diff_fd(yf, c.y, total) < 1e-6);
  xd_free(c.x);
  xd_free(c.scale);
  xd_free(c.bias);
  xd_free(c.mean);
  xd_free(c.var);
  xd_free(c.g);
  xd_free(c.y);
  xd_free(mean);
  xd_free(inv);
  xd_free(dx);
  xd_free(ds);
  xd_free(dbias);
  xd_free(xf);
  xd_free(sf);
  xd_free(bf);
  xd_free(yf);
  xd_free(mf);
  xd_free(vf);
}

/* ---- MatMul and Gemm ------------------------------------------------------------------------ */

typedef struct mm_case {
  size_t ar, br;
  int64_t ad[4], bd[4];
  size_t cr;
  int64_t cd[4];
} mm_case_t;

static const mm_case_t mm_cases[] = {
    {4, 2, {2, 3, 4, 5}, {5, 6}, 4, {2, 3, 4, 6}},             /* shared weight: one GEMM */
    {4, 4, {2, 1, 3, 4}, {1, 3, 4, 5}, 4, {2, 3, 3, 5}},       /* both broadcast */
    {1, 3, {4}, {2, 4, 3}, 2, {2, 3}},                         /* 1-D A */
    {3, 1, {2, 3, 4}, {4}, 2, {2, 3}},                         /* 1-D B */
    {1, 1, {7}, {7}, 0, {0}},                                  /* dot product */
    {2, 2, {3, 1}, {1, 5}, 2, {3, 5}},                         /* K = 1 */
    {2, 2, {1, 5}, {5, 1}, 2, {1, 1}},                         /* 1×N · N×1 */
    {3, 3, {2, 3, 4}, {2, 4, 5}, 3, {2, 3, 5}},                /* plain batch */
    {2, 3, {4, 5}, {3, 5, 2}, 3, {3, 4, 2}},                   /* A shared */
    {3, 4, {1, 2, 3}, {2, 2, 3, 2}, 4, {2, 2, 2, 2}},          /* batch 1 against 2, ranks differ */
};

typedef struct mm_ctx {
  xd_matmul_shape_t s;
  double *a, *b, *g, *c;
  size_t nc;
} mm_ctx_t;

static double mm_loss(void *p) {
  mm_ctx_t *c = p;
  xd_matmul_forward_d(&c->s, c->a, c->b, c->c);
  return dot(c->c, c->g, c->nc);
}

static size_t prod64(const int64_t *d, size_t r) {
  size_t n = 1;
  for (size_t i = 0; i < r; i++) n *= (size_t)d[i];
  return n;
}

TEST(matmul_matches_naive_and_fd) {
  for (size_t ci = 0; ci < sizeof mm_cases / sizeof *mm_cases; ci++) {
    const mm_case_t *k = &mm_cases[ci];
    mm_ctx_t c;
    xd_error_t err;
    CHECK(xd_matmul_shape_init(&c.s, k->ad, k->ar, k->bd, k->br, &err) == XD_OK);
    CHECK_MSG(c.s.crank == k->cr, "case %zu rank %zu", ci, c.s.crank);
    for (size_t i = 0; i < k->cr && i < c.s.crank; i++) CHECK_MSG(c.s.cdims[i] == k->cd[i], "case %zu dim %zu", ci, i);
    size_t na = prod64(k->ad, k->ar), nb = prod64(k->bd, k->br), nc = prod64(k->cd, k->cr);
    c.a = dvec(na);
    c.b = dvec(nb);
    c.g = dvec(nc);
    c.c = dzeros(nc);
    c.nc = nc;
    double *cn = dzeros(nc);
    xd_matmul_forward_d(&c.s, c.a, c.b, c.c);
    xd_matmul_forward_d_naive(&c.s, c.a, c.b, cn);
    CHECK_MSG(max_rel_diff_dd(c.c, cn, nc) < 1e-13, "case %zu", ci);
    float *af = fcopy(c.a, na), *bf = fcopy(c.b, nb), *cf = xd_malloc(nc * 4);
    xd_matmul_forward_f(&c.s, af, bf, cf);
    CHECK_MSG(max_rel_diff_fd(cf, cn, nc) < 1e-5, "case %zu float", ci);
    xd_matmul_forward_f_naive(&c.s, af, bf, cf);
    CHECK_MSG(max_rel_diff_fd(cf, cn, nc) < 1e-5, "case %zu float naive", ci);
    double *da = dvec(na), *db = dvec(nb), *da2 = dcopy(da, na), *db2 = dcopy(db, nb);
    xd_matmul_backward_d(&c.s, c.a, c.b, c.g, da, db);
    xd_matmul_backward_d_naive(&c.s, c.a, c.b, c.g, da2, db2);
    CHECK_MSG(max_rel_diff_dd(da, da2, na) < 1e-13, "case %zu dA", ci);
    CHECK_MSG(max_rel_diff_dd(db, db2, nb) < 1e-13, "case %zu dB", ci);
    memset(da, 0, na * 8);
    memset(db, 0, nb * 8);
    xd_matmul_backward_d(&c.s, c.a, c.b, c.g, da, db);
    CHECK_MSG(fd_check(mm_loss, &c, c.a, na, da, 60) < FD_TOL, "case %zu fd dA", ci);
    CHECK_MSG(fd_check(mm_loss, &c, c.b, nb, db, 60) < FD_TOL, "case %zu fd dB", ci);
    xd_free(c.a);
    xd_free(c.b);
    xd_free(c.g);
    xd_free(c.c);
    xd_free(cn);
    xd_free(af);
    xd_free(bf);
    xd_free(cf);
    xd_free(da);
    xd_free(db);
    xd_free(da2);
    xd_free(db2);
  }
  xd_matmul_shape_t s;
  xd_error_t err;
  int64_t a[] = {2, 3, 4}, b[] = {3, 4, 5}, b2[] = {2, 5, 5};
  CHECK(xd_matmul_shape_init(&s, a, 3, b, 3, &err) == XD_EINVAL); /* batch 2 vs 3 */
  CHECK(xd_matmul_shape_init(&s, a, 3, b2, 3, &err) == XD_EINVAL); /* K 4 vs 5 */
}

typedef struct gemm_ctx {
  xd_gemm_shape_t s;
  double *a, *b, *c, *g, *y;
} gemm_ctx_t;

static double gemm_loss(void *p) {
  gemm_ctx_t *c = p;
  xd_gemm_forward_d(&c->s, c->a, c->b, c->c, c->y);
  return dot(c->y, c->g, c->s.M * c->s.N);
}

TEST(gemm_all_transposes_and_c_shapes) {
  size_t M = 3, N = 4, K = 5;
  size_t cshape[5][2] = {{0, 0}, {1, 1}, {1, 4}, {3, 1}, {3, 4}};
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (size_t cs = 0; cs < 5; cs++) {
        gemm_ctx_t c = {{M, N, K, ta, tb, 0.7, 1.3, cshape[cs][0], cshape[cs][1]},
                        dvec(M * K), dvec(K * N), dvec(12), dvec(M * N), dzeros(M * N)};
        xd_gemm_forward_d(&c.s, c.a, c.b, cs ? c.c : NULL, c.y);
        for (size_t i = 0; i < M; i++)
          for (size_t j = 0; j < N; j++) {
            double r = 0;
            for (size_t k = 0; k < K; k++) r += (ta ? c.a[k * M + i] : c.a[i * K + k]) * (tb ? c.b[j * K + k] : c.b[k * N + j]);
            r *= 0.7;
            if (cs) r += 1.3 * c.c[(c.s.cm == 1 ? 0 : i) * c.s.cn + (c.s.cn == 1 ? 0 : j)];
            CHECK_NEAR(c.y[i * N + j], r, 1e-13);
          }
        double *da = dzeros(M * K), *db = dzeros(K * N), *dc = dzeros(12);
        xd_gemm_backward_d(&c.s, c.a, c.b, c.g, da, db, dc);
        CHECK_MSG(fd_check(gemm_loss, &c, c.a, M * K, da, 60) < FD_TOL, "ta %d tb %d", ta, tb);
        CHECK_MSG(fd_check(gemm_loss, &c, c.b, K * N, db, 60) < FD_TOL, "ta %d tb %d", ta, tb);
        if (cs) CHECK_MSG(fd_check(gemm_loss, &c, c.c, c.s.cm * c.s.cn, dc, 60) < FD_TOL, "cs %zu", cs);
        float *af = fcopy(c.a, M * K), *bf = fcopy(c.b, K * N), *cf = fcopy(c.c, 12), *yf = xd_malloc(M * N * 4);
        xd_gemm_forward_f(&c.s, af, bf, cs ? cf : NULL, yf);
        xd_gemm_forward_d(&c.s, c.a, c.b, cs ? c.c : NULL, c.y);
        CHECK(max_rel_diff_fd(yf, c.y, M * N) < 1e-5);
        xd_free(af);
        xd_free(bf);
        xd_free(cf);
        xd_free(yf);
        xd_free(da);
        xd_free(db);
        xd_free(dc);
        xd_free(c.a);
        xd_free(c.b);
        xd_free(c.c);
        xd_free(c.g);
        xd_free(c.y);
      }
}

/* ---- mat.h's strided GEMM ---------------------------------------------------------------------- */

TEST(strided_gemm_matches_naive) {
  /* M, N, K with row strides larger than the rows (sub-blocks), every transpose, beta 0 and 1 */
  size_t shapes[][3] = {{1, 1, 1}, {1, 9, 4}, {7, 1, 3}, {5, 6, 1}, {13, 11, 17}, {4, 3, 0}};
  for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        size_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
        size_t lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 3, ldc = N + 1;
        double *A = dvec((ta ? K : M) * lda + 1), *B = dvec((tb ? N : K) * ldb + 1), *C = dvec(M * ldc),
               *C2 = dcopy(C, M * ldc);
        xd_dgemm(ta, tb, M, N, K, 0.5, A, lda, B, ldb, 1, C, ldc);
        xd_dgemm_naive(ta, tb, M, N, K, 0.5, A, lda, B, ldb, 1, C2, ldc);
        CHECK_MSG(max_rel_diff_dd(C, C2, M * ldc) < 1e-14, "shape %zu ta %d tb %d", si, ta, tb);
        float *Af = fcopy(A, (ta ? K : M) * lda + 1), *Bf = fcopy(B, (tb ? N : K) * ldb + 1),
              *Cf = fcopy(C, M * ldc), *Cf2 = fcopy(C, M * ldc);
        xd_sgemm(ta, tb, M, N, K, 2, Af, lda, Bf, ldb, 0, Cf, ldc);
        xd_sgemm_naive(ta, tb, M, N, K, 2, Af, lda, Bf, ldb, 0, Cf2, ldc);
        double *Cd = xd_malloc(M * ldc * 8 + 8);
        for (size_t i = 0; i < M * ldc; i++) Cd[i] = Cf2[i];
        CHECK_MSG(max_rel_diff_fd(Cf, Cd, M * ldc) < 1e-5, "float shape %zu", si);
        xd_free(A);
        xd_free(B);
        xd_free(C);
        xd_free(C2);
        xd_free(Af);
        xd_free(Bf);
        xd_free(Cf);
        xd_free(Cf2);
        xd_free(Cd);
      }
}

int main(void) {
  xd_rng_seed(&rng, 20261203);
  RUN(conv_matches_naive_and_fd);
  RUN(conv_shape_rejects_bad_attributes);
  RUN(conv_transpose_fd);
  RUN(pools_match_definition_and_fd);
  RUN(maxpool_2x2_backward_ties_go_to_the_first);
  RUN(pool_output_sizes_follow_torch);
  RUN(global_average_pool);
  RUN(norms_and_softmax_fd);
  RUN(matmul_matches_naive_and_fd);
  RUN(gemm_all_transposes_and_c_shapes);
  RUN(strided_gemm_matches_naive);
  return TEST_REPORT();
}
