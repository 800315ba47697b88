/* test_kern.c — the graph engine's heavy kernels (core/kern.h): each fast kernel against
 * its naive twin on awkward shapes, every backward against central finite differences in
 * double, float against double forward, and backward accumulating (+=) into gradients. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/kern.h"
#include "core/rng.h"
#include "tests/test.h"

/* ---- helpers -------------------------------------------------------------------------- */

static xd_rng_t rng;

static double *dvec(size_t n) {
  double *a = xd_malloc((n ? n : 1) * sizeof *a);
  for (size_t i = 0; i < n; i++) a[i] = xd_rng_uniform(&rng) * 2 - 1;
  return a;
}
static double *dzeros(size_t n) { return xd_calloc(n ? n : 1, sizeof(double)); }
static float *fcopy(const double *a, size_t n) {
  float *f = xd_malloc((n ? n : 1) * sizeof *f);
  for (size_t i = 0; i < n; i++) f[i] = (float)a[i];
  return f;
}
static double *dcopy(const double *a, size_t n) {
  double *d = xd_malloc((n ? n : 1) * sizeof *d);
  memcpy(d, a, n * sizeof *d);
  return d;
}
static double max_rel_diff_fd(const float *a, const double *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]) / (1 + fabs(b[i]));
    if (!(d <= m)) m = d; /* NaN sticks */
  }
  return m;
}
static double max_rel_diff_dd(const double *a, const double *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]) / (1 + fabs(b[i]));
    if (!(d <= m)) m = d;
  }
  return m;
}

/* Central differences of loss() = Σ y·g with respect to param[i], for up to `probes`
 * indices spread over the array, against grad[i]. Returns the worst relative error. */
typedef double (*loss_fn)(void *ctx);
static double fd_check(loss_fn loss, void *ctx, double *param, size_t n, const double *grad, size_t probes) {
  double worst = 0, h = 1e-6;
  size_t step = n > probes ? n / probes : 1;
  for (size_t i = 0; i < n; i += step) {
    double keep = param[i];
    param[i] = keep + h;
    double lp = loss(ctx);
    param[i] = keep - h;
    double lm = loss(ctx);
    param[i] = keep;
    double fd = (lp - lm) / (2 * h), e = fabs(fd - grad[i]) / (1e-3 + fabs(fd) + fabs(grad[i]));
    if (!(e <= worst)) worst = e;
  }
  return worst;
}
static double dot(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

#define FD_TOL 1e-5 /* relative, with a floor of 1e-3: central differences at h = 1e-6 in double */

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
    CHECK_MSG(max_rel_diff_fd(yf, yn, ny) < 1e-5, "case %zu float fast vs double", ci);
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
    CHECK_MSG(fd_check(conv_loss, &c, c.x, nx, dx, 60) < FD_TOL, "case %zu fd dx", ci);
    { double e_ = fd_check(conv_loss, &c, c.w, nw, dw, 60); CHECK_MSG(e_ < FD_TOL, "case %zu fd dw %g", ci, e_); }
    CHECK_MSG(fd_check(conv_loss, &c, c.b, s.M, db, 60) < FD_TOL, "case %zu fd db", ci);
    /* float backward agrees with double; only dx wanted leaves the rest alone */
    float *dxf = xd_calloc(nx, 4), *dyf = fcopy(c.g, ny);
    xd_conv_backward_f(&s, xf, wf, dyf, dxf, NULL, NULL, sf);
    CHECK_MSG(max_rel_diff_fd(dxf, dx, nx) < 1e-5, "case %zu float dx", ci);
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

int main(void) {
  xd_rng_seed(&rng, 20261203);
  RUN(conv_matches_naive_and_fd);
  RUN(conv_shape_rejects_bad_attributes);
  return TEST_REPORT();
}
